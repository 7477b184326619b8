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
import gc
import json
import signal
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.nodes import NodeMaker, StorageFactory, record
from support.processes import CLEAN_ENV, WLX, free_port, start_serve

from wlx.client import Client
from wlx.node.audit import exchange_log
from wlx.node.core import records as records_module
from wlx.node.core.node import Node
from wlx.node.core.records import Record, RecordError
from wlx.node.directory import open_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import bulk_import, ownlist
from wlx.node.outgoing.ownlist import load_record
from wlx.node.protocol import outbound
from wlx.node.store.sql import SqlTx


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
    with node.store.read() as tx:
        assert isinstance(tx, SqlTx)
        return tx._all("SELECT COUNT(*) FROM import_records") == [(0,)]


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


def test_ctrl_c_while_staging_changes_nothing(make_node: NodeMaker) -> None:
    cn = make_node("CN")
    ownlist.import_records(cn, [person(n) for n in range(1, 6)])
    before = state(cn)

    def interrupted() -> Iterator[tuple[int, Record]]:
        for line, rec in people(40, authority="another authority"):
            if line == 35:
                raise KeyboardInterrupt
            yield line, rec

    with pytest.raises(KeyboardInterrupt):
        bulk_import.import_stream(cn, interrupted(), chunk=10)
    assert state(cn) == before and nothing_staged(cn)


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


# ------------------------------------------------------------------ real processes


def _jsonl(path: Path, first: int, count: int, authority: str) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(first, first + count):
            obj = json.loads(person(n, authority=authority).to_json())
            out.write(json.dumps(obj) + "\n")
    return path


def _cli(*args: str | Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(CLEAN_ENV)
    if failpoint:
        env["WLX_FAILPOINT"] = failpoint
    return subprocess.run(
        [WLX, *map(str, args)], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def _listed(directory: Path) -> tuple[list[tuple[str, int, str]], int, int]:
    """``(id, version, authority)`` of every record, own index size, log size."""
    node = open_node(directory)  # completes a published import
    try:
        with node.store.read() as tx:
            rows = [(r.id, r.version, load_record(node, r).authority) for r in tx.iter_records()]
            return rows, tx.count_entries(node.node_id), exchange_log.size(tx)
    finally:
        node.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failpoint", "published"),
    [
        ("import.staged@3", False),  # killed while staging: the old list
        ("import.switched", True),  # killed right after the switch: the new list
        ("import.published@2", True),  # killed while publishing: the new list
    ],
)
def test_an_import_killed_anywhere_leaves_the_old_list_or_the_new(
    tmp_path: Path, failpoint: str, published: bool
) -> None:
    node_dir = tmp_path / "cn"
    assert _cli("init", node_dir, "--node-id", "CN", "--listen", "127.0.0.1:1").returncode == 0
    first = _cli("records", "import", node_dir, _jsonl(tmp_path / "a.jsonl", 1, 30, "old"))
    assert first.returncode == 0, first.stderr
    old, old_index, _ = _listed(node_dir)
    update = _jsonl(tmp_path / "b.jsonl", 1, 250, "new")  # 30 updates, 220 additions
    killed = _cli("records", "import", node_dir, update, "--chunk-size", "50", failpoint=failpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after, index, log_size = _listed(node_dir)
    if not published:
        assert (after, index) == (old, old_index)
    else:
        assert [(i, a) for i, _, a in after] == [(f"CN-{n:06d}", "new") for n in range(1, 251)]
        assert [v for _, v, _ in after] == [2] * 30 + [1] * 220
        assert index == 250
    again = _cli("records", "import", node_dir, update, "--chunk-size", "50")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    final, index, final_log = _listed(node_dir)
    assert [(i, v, a) for i, v, a in final] == [
        (f"CN-{n:06d}", 2 if n <= 30 else 1, "new") for n in range(1, 251)
    ]
    assert index == 250
    if published:  # nothing left to do: every record stands as imported
        assert final_log == log_size


@pytest.mark.slow
def test_lookups_are_answered_while_a_large_import_runs(tmp_path: Path) -> None:
    """A real node serves on loopback while ``wlx records import`` stages and
    publishes beside it: lookups keep being answered during the import."""
    port = free_port()
    node_dir = tmp_path / "cn"
    assert (
        _cli("init", node_dir, "--node-id", "CN", "--listen", f"127.0.0.1:{port}").returncode == 0
    )
    assert (
        _cli("records", "import", node_dir, _jsonl(tmp_path / "a.jsonl", 1, 1, "x")).returncode == 0
    )
    officer = tmp_path / "officer.json"
    issued = _cli(
        "credential", "issue", node_dir, "--role", "officer", "--name", "post", "--out", officer
    )
    assert issued.returncode == 0, issued.stderr
    big = _jsonl(tmp_path / "big.jsonl", 2, 2_000, "x")
    server = start_serve(node_dir, port)
    try:
        with Client.from_credential(officer) as client:
            assert client.lookup(documents=["P:CHN:B00000001"])  # warm
            importer = subprocess.Popen(
                [WLX, "records", "import", str(node_dir), str(big), "--chunk-size", "100"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=CLEAN_ENV,
            )
            answered = 0
            deadline = time.monotonic() + 280
            while importer.poll() is None and time.monotonic() < deadline:
                assert client.lookup(documents=["P:CHN:B00000001"])
                answered += 1
                time.sleep(0.05)
            assert importer.wait(timeout=30) == 0
            assert answered >= 5, answered
            assert client.lookup(documents=["P:CHN:B00002001"])  # the import's last record
    finally:
        server.terminate()
        server.wait(timeout=30)


# ------------------------------------------------------------------ how it is written


def test_the_own_index_holds_each_listing_as_staged(
    make_node: NodeMaker, backend: StorageFactory
) -> None:
    cn = make_node("CN", backend)
    ownlist.import_records(cn, [person(n) for n in range(1, 6)])
    before = outbound.upsert_for(person(2), 1, cn.own_epoch_key())
    again = [person(n, names=["Changed Person"]) if n == 2 else person(n) for n in range(1, 8)]
    assert ownlist.import_records(cn, again) == ownlist.ImportResult(2, 1, 4)
    key = cn.own_epoch_key()
    with cn.store.read() as tx:
        expected = {}
        for stored in tx.iter_records():
            op = ownlist.upsert_of(cn, stored, key)
            expected[op.handle] = sorted(t.token for t in op.tokens)
        assert tx.count_entries(cn.node_id) == len(expected) == 7
        for handle, tokens in expected.items():
            rows = tx.find_tokens(cn.node_id, tokens)
            assert sorted(r.token for r in rows if r.handle == handle) == tokens
        gone = [t.token for t in before.tokens if t.token not in expected[before.handle]]
        assert gone and tx.find_tokens(cn.node_id, gone) == []  # the old listing's tokens
    assert [hits(cn, n) for n in range(1, 8)] == [1] * 7  # each sealed hit opens


def test_an_import_leaves_the_store_and_the_collector_as_it_found_them(
    make_node: NodeMaker,
) -> None:
    cn = make_node("CN")

    def secure_delete() -> object:
        with cn.store.read() as tx:
            assert isinstance(tx, SqlTx)
            return tx._all("PRAGMA secure_delete")

    setting = secure_delete()
    ownlist.import_records(cn, [person(n) for n in range(1, 4)])
    assert secure_delete() == setting and gc.get_freeze_count() == 0
    with pytest.raises(RecordError):
        bulk_import.import_stream(cn, people(5, bad_at=4), chunk=2)
    assert secure_delete() == setting and gc.get_freeze_count() == 0 and nothing_staged(cn)
