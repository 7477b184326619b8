"""The exchange log's group commit (``wlx.node.audit.journal``): every entry
durable before ``record`` returns, concurrent callers share commits, a failed
commit fails every caller of its group and nobody else."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from support.nodes import NodeMaker, StorageFactory

from wlx.node.audit import exchange_log, journal
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.core.errors import InternalError
from wlx.node.core.node import Node


def logged(node: Node, index: int) -> dict[str, Any]:
    with node.store.read() as tx:
        [(_, entry)] = tx.audit_entries(index, index + 1)
    parsed: dict[str, Any] = json.loads(entry)
    return parsed


def test_concurrent_entries_are_each_committed_before_record_returns(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    node = make_node("RU", backend)
    log = journal.Journal(node)
    seen: dict[int, int] = {}
    errors: list[BaseException] = []

    def caller(n: int) -> None:
        try:
            for i in range(10):
                index = log.record(Event.LOOKUP, call="check", people=n * 100 + i)
                assert logged(node, index)["people"] == n * 100 + i  # durable on return
                seen[n * 100 + i] = index
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert errors == []
    assert len(set(seen.values())) == 80
    with node.store.read() as tx:
        assert exchange_log.size(tx) >= 80


def test_callers_arriving_during_a_commit_share_the_next_one(
    make_node: NodeMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node("RU")
    log = journal.Journal(node)
    groups: list[int] = []
    inside, release = threading.Event(), threading.Event()
    record_many = exchange_log.record_many

    def slow(tx: Any, n: Any, events: Sequence[tuple[Event, Mapping[str, Field]]]) -> int:
        groups.append(len(events))
        if len(groups) == 1:
            inside.set()
            release.wait(10)
        return record_many(tx, n, events)

    monkeypatch.setattr(exchange_log, "record_many", slow)
    first = threading.Thread(target=log.record, args=(Event.LOOKUP,))
    first.start()
    assert inside.wait(10)
    others = [threading.Thread(target=log.record, args=(Event.LOOKUP,)) for _ in range(5)]
    for t in others:
        t.start()
    while log._queue.qsize() < 5:  # all five queued behind the commit
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join()
    assert groups == [1, 5]


def test_a_failed_commit_fails_its_callers_and_the_next_commit_works(
    make_node: NodeMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_node("RU")
    log = journal.Journal(node)
    record_many = exchange_log.record_many

    def broken(*args: Any) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(exchange_log, "record_many", broken)
    with pytest.raises(InternalError, match="exchange log unavailable"):
        log.record(Event.LOOKUP, call="check")
    monkeypatch.setattr(exchange_log, "record_many", record_many)
    index = log.record(Event.LOOKUP, call="screen")
    assert logged(node, index)["call"] == "screen"
