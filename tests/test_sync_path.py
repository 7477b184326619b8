"""The sync path: snapshots after a fast-forward, concurrent syncs, explicit rejections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FederationMaker, record

from wlx.node import origin, ownlist, sync
from wlx.node.node_status import node_status


def _entries(fed_node: object) -> int:
    from wlx.node.app import Node

    assert isinstance(fed_node, Node)
    with fed_node.store.read() as tx:
        return tx.count_entries("CN")


def test_a_snapshot_after_a_fast_forward_is_followed_by_batches(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8.7: the position a fast-forwarded snapshot gives the peer is one the
    origin continues from (batches, receipts accepted), not `unknown-position`."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    origin.materialise(cn, "RU")  # batches kept in CN's outbox before the snapshot
    fetch = sync._snapshot_parts

    def busy_origin(*args: Any, **kwargs: Any) -> Iterator[Any]:
        # A change lands between RU's pull and its snapshot request: the
        # snapshot fast-forwards the stream past it.
        ownlist.import_records(cn, [record("CN-2")])
        return fetch(*args, **kwargs)

    monkeypatch.setattr(sync, "_snapshot_parts", busy_origin)
    first = fed.sync("RU", "CN")
    monkeypatch.undo()
    assert first.ok and first.snapshot_entries == 2, first
    for n in range(3, 6):  # a busy origin: every pull finds new changes
        ownlist.import_records(cn, [record(f"CN-{n}")])
        ownlist.remove_record(cn, f"CN-{n - 2}")
        report = fed.sync("RU", "CN")
        assert report.ok, report.error
        assert report.snapshot_entries is None, f"resync instead of batches at round {n}"
        assert report.batches == 1 and report.ops == 2
        assert _entries(ru) == 2
    (ru_seen_from_cn,) = node_status(cn).peers
    assert ru_seen_from_cn.unconfirmed_removals == ()  # every receipt was accepted
    assert ru_seen_from_cn.acked_seq == ru_seen_from_cn.sent_seq
    with ru.store.read() as tx:
        assert tx.list_rejections() == []
