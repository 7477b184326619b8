"""Own-list imports staged in chunks and published in short transactions.

* All or nothing: a bad line late in a file, or an id that appears twice,
  leaves every table of the list as it was (records, change log, index,
  exchange log), on SQLite and PostgreSQL.
* A record changed by someone else between staging and publishing is
  published on top of that change, not over it.
* Memory is bounded by the chunk: the peak of an import of 4N records is
  about that of N.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from support.nodes import NodeMaker, StorageFactory, record

from wlx.node.audit import exchange_log
from wlx.node.core import records as records_module
from wlx.node.core.node import Node
from wlx.node.core.records import Record, RecordError
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import bulk_import, ownlist
from wlx.node.outgoing.ownlist import load_record


def person(n: int, **overrides: object) -> Record:
    fields: dict[str, object] = {
        "names": [f"Bulk Person {n:06d}"],
        "documents": [{"type": "P", "country": "CHN", "number": f"B{n:08d}"}],
    }
    fields.update(overrides)
    return record(f"CN-{n:06d}", **fields)


def people(count: int, *, bad_at: int = 0, **overrides: object) -> Iterator[tuple[int, Record]]:
    """``(line, record)`` made one at a time, as a file is read; a parse
    error at line ``bad_at``."""
    for n in range(1, count + 1):
        if n == bad_at:
            raise RecordError(n, "field 'expires' must be a date YYYY-MM-DD")
        yield n, person(n, **overrides)


def state(node: Node) -> dict[str, Any]:
    """Everything an import changes, as plain values."""
    with node.store.read() as tx:
        return {
            "records": [
                (r.id, r.version, r.expires, r.suspended, load_record(node, r))
                for r in tx.iter_records()
            ],
            "changes": [(c.record_id, c.op, c.version) for c in tx.changes_after(0, 10**6)],
            "entries": tx.count_entries(node.node_id),
            "log": exchange_log.head(tx),
            "import": tx.get_meta(bulk_import.STATE_META) or b"",
        }


def nothing_staged(node: Node) -> bool:
    with node.store.write() as tx:
        return tx.drop_imports(1) == 0


def hits(node: Node, n: int) -> int:
    query = Query(documents=(("P", "CHN", f"B{n:08d}"),))
    return len(Lookup(node).check(query))


def test_a_bad_line_late_in_the_file_changes_nothing(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", storage=backend)
    ownlist.import_records(cn, [person(n) for n in range(1, 41)])
    before = state(cn)
    with pytest.raises(RecordError, match="line 590"):
        bulk_import.import_stream(
            cn, people(600, bad_at=590, authority="another authority"), chunk=50
        )
    assert state(cn) == before  # eleven chunks were staged, then discarded
    assert nothing_staged(cn)
    assert hits(cn, 100) == 0 and hits(cn, 1) == 1
    result = bulk_import.import_stream(cn, people(60, authority="another authority"), chunk=50)
    assert (result.added, result.updated, result.unchanged) == (20, 40, 0)
    assert hits(cn, 60) == 1
    assert nothing_staged(cn) and state(cn)["import"] == b""


def test_an_id_twice_in_different_chunks_names_both_lines(make_node: NodeMaker) -> None:
    cn = make_node("CN")
    ownlist.import_records(cn, [person(1)])
    before = state(cn)

    def twice() -> Iterator[tuple[int, Record]]:
        yield from people(30)
        yield 31, person(7)

    with pytest.raises(RecordError, match=r"line 31: record id 'CN-000007' already on line 7"):
        bulk_import.import_stream(cn, twice(), chunk=10)
    assert state(cn) == before


def test_unchanged_records_are_left_alone(make_node: NodeMaker) -> None:
    cn = make_node("CN")
    ownlist.import_records(cn, [person(n) for n in range(1, 11)])
    before = state(cn)
    result = bulk_import.import_stream(cn, people(10), chunk=3)
    assert (result.added, result.updated, result.unchanged) == (0, 0, 10)
    assert state(cn)["records"] == before["records"]
    assert state(cn)["changes"] == before["changes"]


def test_a_record_changed_while_staged_is_published_on_top(make_node: NodeMaker) -> None:
    cn = make_node("CN")
    ownlist.import_records(cn, [person(n) for n in range(1, 4)])

    def meanwhile() -> Iterator[tuple[int, Record]]:
        for line, rec in people(30, authority="new authority"):
            if line == 20:  # CN-000001..3 are staged: change them under the import
                ownlist.suspend_record(cn, "CN-000001", suspended=True)
                ownlist.remove_record(cn, "CN-000002")
            yield line, rec

    bulk_import.import_stream(cn, meanwhile(), chunk=5)
    with cn.store.read() as tx:
        first, second, third = (tx.get_record(f"CN-00000{n}") for n in (1, 2, 3))
    assert first is not None and second is not None and third is not None
    assert (first.version, first.suspended) == (3, True)  # suspended (2), then imported (3)
    assert load_record(cn, first).authority == "new authority"
    assert (second.version, load_record(cn, second).authority) == (1, "new authority")
    assert third.version == 2
    assert hits(cn, 1) == 1 and hits(cn, 2) == 1 and hits(cn, 30) == 1
    with cn.store.read() as tx:
        assert tx.count_entries(cn.node_id) == tx.count_records() == 30


def _peak(node: Node, count: int, offset: int) -> int:
    def lazily() -> Iterator[tuple[int, Record]]:
        for n in range(1, count + 1):
            yield n, person(offset + n, names=["Bulk Person"])  # one entry in the name cache

    tracemalloc.start()
    try:
        bulk_import.import_stream(node, lazily(), chunk=25)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunk_not_the_file(
    make_node: NodeMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The keying cache is bounded on its own (65,536 records); keep it small
    # here so that what is measured is the import's own memory.
    small = functools.lru_cache(maxsize=64)(records_module._identifier_keys.__wrapped__)
    monkeypatch.setattr(records_module, "_identifier_keys", small)
    cn = make_node("CN")
    ownlist.import_records(cn, [person(0)])  # opens every code path once
    small_peak = _peak(cn, 100, 1_000)
    large_peak = _peak(cn, 400, 10_000)
    assert large_peak < 1.25 * small_peak, (small_peak, large_peak)  # 4x the records
    with cn.store.read() as tx:
        assert tx.count_records() == 1 + 100 + 400
