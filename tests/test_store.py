"""Contract tests of the ``Store`` interface (node/store/base.py), on SQLite and PostgreSQL.

Every test runs against both backends through the ``backend`` fixture; the
store is opened directly (no node around it), as ``wlx.node.directory`` opens it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from support.nodes import PG_DSN, StorageFactory

from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.errors import InternalError, Rejected, UserError
from wlx.node.protocol.messages import ChangeOp, Remove, TokenEntry, Upsert
from wlx.node.store import sql
from wlx.node.store.base import (
    CheckpointRow,
    InboundState,
    OutboundState,
    OutboxRow,
    PeerRow,
    RejectionRow,
    Store,
    StoredRecord,
    TokenRow,
    Tx,
)
from wlx.node.store.postgres import open_postgres
from wlx.node.store.sqlite import open_sqlite

StoreOpener = Callable[[str], Store]


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


def _b(n: int = 16) -> bytes:
    return os.urandom(n)


def upsert(handle: bytes, tokens: list[bytes], expires: str = "2099-12-31") -> Upsert:
    return Upsert(handle, expires, tuple(TokenEntry(t, b"sealed:" + t) for t in tokens))


def inbound(origin: str, **kw: object) -> InboundState:
    fields: dict[str, object] = {
        "origin": origin,
        "epoch": 1,
        "token_key": b"wrapped-key",
        "seq": 0,
        "digest": b"d" * 32,
        "synced_at": 0,
    }
    fields.update(kw)
    return InboundState(**fields)  # type: ignore[arg-type]


@pytest.fixture
def opener(backend: StorageFactory, tmp_path: Path) -> Iterator[StoreOpener]:
    """``opener(name)`` opens (or reopens) the store called ``name`` on the backend."""
    opened: list[Store] = []
    configs: dict[str, object] = {}

    def open_(name: str) -> Store:
        if name not in configs:
            configs[name] = backend.config(name)
        config = configs[name]
        if backend.backend == "sqlite":
            store: Store = open_sqlite(tmp_path / f"{name}.db")
        else:
            store = open_postgres(config.dsn, config.schema)  # type: ignore[attr-defined]
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: StoreOpener) -> Store:
    return opener("n1")


@dataclass(frozen=True)
class _AtFive:
    """A node whose clock reads 5 (what the exchange log needs of a node)."""

    node_id: str

    def now(self) -> int:
        return 5


def _everything(tx: Tx) -> None:
    """One write of every kind, as a node makes them."""
    tx.set_meta("k", b"v")
    tx.lock_changes()
    tx.put_record(StoredRecord("R-1", 1, b"body", "2099-12-31", 5))
    tx.append_change("R-1", ChangeOp.UPSERT, 1, 5)
    tx.put_peer(PeerRow("RU", b"card", "127.0.0.1:1", 5))
    tx.put_outbound(OutboundState("RU", 1, b"key", 1, 1, b"x" * 32, 5))
    tx.add_outbox("RU", 1, OutboxRow(1, 1, b"x" * 32, b"signed"), 5)
    tx.put_inbound(inbound("CN", seq=3))
    tx.add_applied("CN", 1, 3, b"y" * 32)
    tx.apply_ops("CN", [upsert(b"h" * 16, [b"t" * 16])])
    tx.stage_entries(b"s" * 16, "CN", [upsert(b"g" * 16, [b"u" * 16])])
    tx.add_rejection(RejectionRow(5, "CN", Rejected.BATCH, "gap", "detail"))
    exchange_log.record(tx, _AtFive("RU"), kind=Event.REJECTED, origin="CN", reason="gap")


def _assert_empty(tx: Tx) -> None:
    assert tx.get_meta("k") is None
    assert tx.get_record("R-1") is None and tx.count_records() == 0
    assert tx.change_head() == 0 and tx.changes_after(0, 10) == []
    assert tx.list_peers() == [] and tx.get_outbound("RU") is None
    assert tx.outbox_after("RU", 1, 0, 10) == [] and tx.outbox_oldest("RU", 1) is None
    assert tx.get_inbound("CN") is None and tx.applied_digest("CN", 1, 3) is None
    assert tx.count_entries("CN") == 0 and tx.find_tokens("CN", [b"t" * 16]) == []
    assert tx.staged_counts(b"s" * 16, "CN") == (0, 0)
    assert tx.list_rejections() == []
    assert exchange_log.size(tx) == 0 and tx.audit_entries(0, 10) == []


# ------------------------------------------------------------------ transactions


def test_a_transaction_commits_everything_at_the_end(store: Store) -> None:
    with store.write() as tx:
        _everything(tx)
    with store.read() as tx:
        assert tx.get_meta("k") == b"v"
        assert tx.count_records() == 1 and tx.change_head() == 1
        assert tx.count_entries("CN") == 1 and tx.staged_counts(b"s" * 16, "CN") == (1, 1)
        assert len(tx.list_rejections()) == 1


def test_an_exception_inside_write_leaves_no_trace(store: Store) -> None:
    with pytest.raises(Boom), store.write() as tx:
        _everything(tx)
        raise Boom
    with store.read() as tx:
        _assert_empty(tx)
    # The store is still usable, and the next transaction starts clean.
    with store.write() as tx:
        tx.set_meta("after", b"1")
    with store.read() as tx:
        assert tx.get_meta("after") == b"1" and tx.get_meta("k") is None


def test_a_failed_statement_rolls_back_the_whole_transaction(store: Store) -> None:
    with store.write() as tx:
        tx.add_applied("CN", 1, 1, b"a" * 32)
    with pytest.raises(Exception), store.write() as tx:  # noqa: B017 - backend's own error type
        tx.set_meta("k", b"v")
        tx.add_applied("CN", 1, 1, b"b" * 32)  # primary key violation
    with store.read() as tx:
        assert tx.get_meta("k") is None
        assert tx.applied_digest("CN", 1, 1) == b"a" * 32


def test_a_read_transaction_sees_one_consistent_snapshot(store: Store) -> None:
    with store.write() as tx:
        tx.set_meta("k", b"old")
    seen: list[bytes | None] = []
    with store.read() as tx:
        seen.append(tx.get_meta("k"))

        def writer() -> None:
            with store.write() as wtx:
                wtx.set_meta("k", b"new")

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()
        seen.append(tx.get_meta("k"))
    with store.read() as tx:
        seen.append(tx.get_meta("k"))
    assert seen == [b"old", b"old", b"new"]


def test_concurrent_writers_of_the_change_log_get_distinct_increasing_seqs(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(15):
                with store.write() as tx:
                    tx.lock_changes()
                    tx.append_change(f"{name}-{i}", ChangeOp.UPSERT, 1, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"W{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with store.read() as tx:
        changes = tx.changes_after(0, 1000)
        assert tx.change_head() == changes[-1].seq
    seqs = [c.seq for c in changes]
    assert len(changes) == 60 and seqs == sorted(set(seqs))
    for n in range(4):  # each writer's changes appear in its own order
        mine = [c.record_id for c in changes if c.record_id.startswith(f"W{n}-")]
        assert mine == [f"W{n}-{i}" for i in range(15)]


# ------------------------------------------------------------------ meta, records, changes


def test_meta(store: Store) -> None:
    with store.write() as tx:
        assert tx.get_meta("x") is None
        tx.set_meta("x", b"1")
        tx.set_meta("x", b"\x00\xff2")
    with store.read() as tx:
        assert tx.get_meta("x") == b"\x00\xff2"


def test_records(store: Store) -> None:
    with store.write() as tx:
        tx.put_record(StoredRecord("B", 1, b"b1", "2099-01-01", 10))
        tx.put_record(StoredRecord("A", 1, b"a1", "2098-01-01", 11))
        tx.put_record(StoredRecord("B", 2, b"b2", "2097-01-01", 12))
    with store.read() as tx:
        assert tx.count_records() == 2
        assert tx.get_record("B") == StoredRecord("B", 2, b"b2", "2097-01-01", 12)
        assert tx.get_record("missing") is None
        assert [r.id for r in tx.iter_records()] == ["A", "B"]
    with store.write() as tx:
        tx.delete_record("A")
        tx.delete_record("never-there")
    with store.read() as tx:
        assert tx.count_records() == 1 and tx.get_record("A") is None


def test_iter_records_reads_every_record_in_id_order_across_pages(store: Store) -> None:
    ids = [f"R-{i:05d}" for i in range(2_150)]
    with store.write() as tx:
        for rid in reversed(ids):
            tx.put_record(StoredRecord(rid, 1, rid.encode(), "2099-12-31", 1))
    with store.read() as tx:
        got = list(tx.iter_records())
    assert [r.id for r in got] == ids
    assert all(r.body == r.id.encode() for r in got)


def test_append_change_is_increasing_and_changes_after_pages_in_order(store: Store) -> None:
    with store.write() as tx:
        assert tx.change_head() == 0
        seqs = [tx.append_change(f"R-{i}", ChangeOp.UPSERT, i + 1, 100 + i) for i in range(10)]
        seqs.append(tx.append_change("R-3", ChangeOp.REMOVE, 5, 200))
    assert seqs == sorted(seqs) and len(set(seqs)) == 11
    with store.read() as tx:
        assert tx.change_head() == seqs[-1]
        everything = tx.changes_after(0, 100)
        assert [c.seq for c in everything] == seqs
        last = everything[-1]
        assert (last.record_id, last.op, last.version, last.at) == ("R-3", "remove", 5, 200)
        assert [c.seq for c in tx.changes_after(seqs[2], 3)] == seqs[3:6]
        assert tx.changes_after(seqs[-1], 10) == []
    with store.write() as tx:  # the sequence keeps increasing after a commit
        assert tx.append_change("R-9", ChangeOp.UPSERT, 2, 300) > seqs[-1]


def test_the_change_log_accepts_only_upsert_and_remove(store: Store) -> None:
    with pytest.raises(Exception), store.write() as tx:  # noqa: B017 - backend's own error type
        tx.append_change("R-1", "delete", 1, 1)  # type: ignore[arg-type]  # refused, not typed
    with store.read() as tx:
        assert tx.change_head() == 0


# ------------------------------------------------------------------ peers, origin side


def test_peers(store: Store) -> None:
    with store.write() as tx:
        tx.put_peer(PeerRow("RU", b"card-ru", "127.0.0.1:2", 7))
        tx.put_peer(PeerRow("AR", b"card-ar", "127.0.0.1:3", 8))
        tx.put_peer(PeerRow("RU", b"card-ru", "10.0.0.1:2", 7))
    with store.read() as tx:
        assert tx.get_peer("RU") == PeerRow("RU", b"card-ru", "10.0.0.1:2", 7)
        assert tx.get_peer("XX") is None
        assert [p.node_id for p in tx.list_peers()] == ["AR", "RU"]


def test_outbound_state(store: Store) -> None:
    first = OutboundState("RU", 1, b"key1", 0, 0, b"g" * 32, 100)
    with store.write() as tx:
        tx.put_outbound(first)
        assert tx.get_outbound("RU", for_update=True) == first
        tx.put_outbound(OutboundState("RU", 2, b"key2", 7, 9, b"h" * 32, 200))
    with store.read() as tx:
        assert tx.get_outbound("RU") == OutboundState("RU", 2, b"key2", 7, 9, b"h" * 32, 200)
        assert tx.get_outbound("AR") is None


def test_outbox(store: Store) -> None:
    def row(first: int, last: int) -> OutboxRow:
        return OutboxRow(first, last, bytes([last]) * 32, f"signed {first}-{last}".encode())

    with store.read() as tx:
        assert tx.outbox_oldest("RU", 1) is None
    with store.write() as tx:
        for first, last in [(4, 6), (1, 3), (7, 7), (8, 12)]:
            tx.add_outbox("RU", 1, row(first, last), 1)
        tx.add_outbox("AR", 1, row(1, 50), 1)  # another peer
        tx.add_outbox("RU", 2, row(1, 2), 1)  # another epoch
    with store.read() as tx:
        assert tx.outbox_after("RU", 1, 0, 100) == [row(1, 3), row(4, 6), row(7, 7), row(8, 12)]
        assert tx.outbox_after("RU", 1, 3, 2) == [row(4, 6), row(7, 7)]
        assert tx.outbox_after("RU", 1, 12, 10) == []
        assert tx.outbox_after("RU", 2, 0, 10) == [row(1, 2)]
        assert tx.outbox_digest_at("RU", 1, 6) == bytes([6]) * 32
        assert tx.outbox_digest_at("RU", 1, 5) is None  # not a batch boundary
        assert tx.outbox_digest_at("RU", 3, 6) is None
        assert tx.outbox_oldest("RU", 1) == 1
        assert tx.outbox_oldest("RU", 2) == 1
        assert tx.outbox_oldest("XX", 1) is None
    with pytest.raises(Exception), store.write() as tx:  # noqa: B017 - same batch twice
        tx.add_outbox("RU", 1, row(4, 6), 1)


# ------------------------------------------------------------------ recipient side


def test_inbound_state_and_sync_status(store: Store) -> None:
    with store.write() as tx:
        tx.put_inbound(inbound("RU", epoch=0, token_key=b"", digest=b""))
        tx.put_inbound(inbound("CN", seq=5, synced_at=10))
        tx.put_inbound(inbound("AR"))
    with store.read() as tx:
        assert [s.origin for s in tx.list_inbound()] == ["AR", "CN", "RU"]
        assert tx.get_inbound("CN", for_update=False) == inbound("CN", seq=5, synced_at=10)
        assert tx.get_inbound("XX") is None
    with store.write() as tx:
        tx.set_sync_status("CN", at=20, error="peer CN is unreachable")
    with store.read() as tx:
        state = tx.get_inbound("CN")
        assert state is not None
        assert (state.synced_at, state.last_error, state.last_error_at) == (
            10,
            "peer CN is unreachable",
            20,
        )
        assert (state.seq, state.digest) == (5, b"d" * 32)  # the cursor is untouched
    with store.write() as tx:
        tx.set_sync_status("CN", at=30, error=None)
        tx.set_sync_status("XX", at=30, error="no such origin: nothing happens")
        assert tx.get_inbound("CN", for_update=True) is not None
    with store.read() as tx:
        state = tx.get_inbound("CN")
        assert state is not None and state.synced_at == 30
        assert tx.get_inbound("XX") is None


def test_applied(store: Store) -> None:
    with store.write() as tx:
        tx.add_applied("CN", 1, 10, b"a" * 32)
        tx.add_applied("CN", 1, 20, b"b" * 32)
        tx.add_applied("CN", 2, 10, b"c" * 32)
        tx.add_applied("AR", 1, 10, b"d" * 32)
    with store.read() as tx:
        assert tx.applied_digest("CN", 1, 10) == b"a" * 32
        assert tx.applied_digest("CN", 2, 10) == b"c" * 32
        assert tx.applied_digest("CN", 1, 15) is None
    with store.write() as tx:
        tx.clear_applied("CN")
    with store.read() as tx:
        assert tx.applied_digest("CN", 1, 10) is None and tx.applied_digest("CN", 2, 10) is None
        assert tx.applied_digest("AR", 1, 10) == b"d" * 32


def test_apply_ops_upsert_replaces_every_token_of_the_handle(store: Store) -> None:
    h, t1, t2, t3 = _b(), _b(), _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t1, t2], "2090-01-01")])
    with store.read() as tx:
        rows = tx.find_tokens("CN", [t1, t2, t3])
        assert sorted((r.token, r.handle, r.sealed, r.expires, r.origin) for r in rows) == sorted(
            [
                (t1, h, b"sealed:" + t1, "2090-01-01", "CN"),
                (t2, h, b"sealed:" + t2, "2090-01-01", "CN"),
            ]
        )
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t3], "2091-01-01")])
    with store.read() as tx:
        assert tx.count_entries("CN") == 1
        assert tx.find_tokens("CN", [t1, t2]) == []
        rows = tx.find_tokens("CN", [t1, t2, t3])
        assert [(r.token, r.expires) for r in rows] == [(t3, "2091-01-01")]


def test_apply_ops_remove_deletes_the_entry_and_its_tokens_only(store: Store) -> None:
    h1, h2, shared, own1, own2 = _b(), _b(), _b(), _b(), _b()
    with store.write() as tx:
        # Two listings sharing a token (same name and date of birth).
        tx.apply_ops("CN", [upsert(h1, [shared, own1]), upsert(h2, [shared, own2])])
    with store.read() as tx:
        assert len(tx.find_tokens("CN", [shared])) == 2
    with store.write() as tx:
        tx.apply_ops("CN", [Remove(h1), Remove(_b())])  # removing an unknown handle is a no-op
    with store.read() as tx:
        assert tx.count_entries("CN") == 1
        assert tx.find_tokens("CN", [own1]) == []
        assert [(r.handle, r.token) for r in tx.find_tokens("CN", [shared, own1, own2])] in (
            [(h2, shared), (h2, own2)],
            [(h2, own2), (h2, shared)],
        )


def test_apply_ops_in_one_call_apply_in_order(store: Store) -> None:
    h, t1, t2 = _b(), _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t1]), Remove(h), upsert(h, [t2]), upsert(_b(), [t1])])
    with store.read() as tx:
        assert tx.count_entries("CN") == 2
        assert {r.handle for r in tx.find_tokens("CN", [t1])} != {h}
        assert [r.handle for r in tx.find_tokens("CN", [t2])] == [h]


def test_find_tokens_and_count_entries_are_per_origin(store: Store) -> None:
    h, t = _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t])])
        tx.apply_ops("AR", [upsert(h, [t]), upsert(_b(), [_b()])])
    with store.read() as tx:
        assert [r.origin for r in tx.find_tokens("CN", [t])] == ["CN"]
        assert [r.origin for r in tx.find_tokens("AR", [t])] == ["AR"]
        assert tx.find_tokens("RU", [t]) == []
        assert (tx.count_entries("CN"), tx.count_entries("AR")) == (1, 2)
    with store.write() as tx:
        tx.apply_ops("AR", [Remove(h)])
        tx.clear_origin("XX")
    with store.read() as tx:
        assert [r.origin for r in tx.find_tokens("CN", [t])] == ["CN"]
        assert tx.find_tokens("AR", [t]) == []
    with store.write() as tx:
        tx.clear_origin("CN")
    with store.read() as tx:
        assert tx.count_entries("CN") == 0 and tx.find_tokens("CN", [t]) == []
        assert tx.count_entries("AR") == 1


def test_find_tokens_with_many_tokens_and_duplicates_in_the_query(store: Store) -> None:
    tokens = [_b() for _ in range(1_203)]
    handles = [_b() for _ in tokens]
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t]) for h, t in zip(handles, tokens, strict=True)])
    wanted = tokens[::2] + tokens[:10] + [_b() for _ in range(300)]
    with store.read() as tx:
        rows = tx.find_tokens("CN", wanted)
    assert sorted(r.token for r in rows) == sorted(set(tokens[::2]) | set(tokens[:10]))


def test_find_tokens_of_every_origin_at_once_reads_each_origins_live_slot(store: Store) -> None:
    shared, cn_only, ar_only = _b(), _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(_b(), [shared, cn_only])])
        tx.apply_ops("AR", [upsert(_b(), [shared, ar_only])])
    snap, staged = _b(), _b()
    with store.write() as tx:  # CN's listings now live in a slot of their own
        tx.stage_entries(snap, "CN", [upsert(_b(), [staged, shared])])
        assert tx.apply_staged(snap, "CN") == 1
    with store.read() as tx:
        rows = tx.find_tokens_of(
            {
                "CN": [shared, cn_only, staged, ar_only],
                "AR": [shared, ar_only, staged],
                "RU": [shared],
            }
        )
        by_origin = {o: tx.find_tokens(o, [shared, cn_only, ar_only, staged]) for o in ("CN", "AR")}
        assert tx.find_tokens_of({}) == []
    assert sorted((r.origin, r.token) for r in rows) == sorted(
        [("CN", shared), ("CN", staged), ("AR", shared), ("AR", ar_only)]
    )
    assert sorted(rows, key=lambda r: (r.origin, r.token)) == sorted(
        by_origin["CN"] + by_origin["AR"], key=lambda r: (r.origin, r.token)
    )


def test_find_tokens_of_split_across_statements_finds_the_same_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    origins = [f"O{i}" for i in range(7)]
    tokens = {o: [_b() for _ in range(9)] for o in origins}
    with store.write() as tx:
        for o in origins:
            tx.apply_ops(o, [upsert(_b(), [t]) for t in tokens[o][::2]])
    wanted = {o: tokens[o] + tokens[o][:3] for o in origins}  # duplicates too
    with store.read() as tx:
        whole = tx.find_tokens_of(wanted)
    monkeypatch.setattr(sql, "FIND_PARAMS", 4)  # an origin across statements
    monkeypatch.setattr(sql, "FIND_BRANCHES", 3)
    with store.read() as tx:
        split = tx.find_tokens_of(wanted)

    def key(row: TokenRow) -> tuple[str, bytes]:
        return row.origin, row.token

    assert sorted(split, key=key) == sorted(whole, key=key)
    assert sorted(key(r) for r in whole) == sorted((o, t) for o in origins for t in tokens[o][::2])


def test_get_metas_reads_the_keys_that_are_set(store: Store) -> None:
    with store.write() as tx:
        tx.set_meta("a", b"1")
        tx.set_meta("b", b"")
    with store.read() as tx:
        assert tx.get_metas(["a", "b", "c", "a"]) == {"a": b"1", "b": b""}
        assert tx.get_metas([]) == {}


# ------------------------------------------------------------------ snapshot staging


def test_staging_counts_and_first_copy_of_a_handle_wins(store: Store) -> None:
    snap = _b()
    h1, h2, t1, t2, t3 = _b(), _b(), _b(), _b(), _b()
    with store.write() as tx:
        tx.stage_entries(snap, "CN", [upsert(h1, [t1, t2])])
        tx.stage_entries(snap, "CN", [upsert(h2, [t1])])  # a token shared by two listings
    with store.read() as tx:
        assert tx.staged_counts(snap, "CN") == (2, 3)
        assert tx.staged_counts(_b(), "CN") == (0, 0)
    with store.write() as tx:  # the same handle again, with the same tokens
        tx.stage_entries(snap, "CN", [upsert(h1, [t1, t2])])
    with store.read() as tx:
        assert tx.staged_counts(snap, "CN") == (2, 3)  # the entry count shows the repetition
    with store.write() as tx:  # the same handle again, with other tokens
        tx.stage_entries(snap, "CN", [upsert(h1, [t3])])
    with store.read() as tx:
        assert tx.staged_counts(snap, "CN") == (2, None)


def test_staged_counts_detects_a_token_repeated_within_an_entry(store: Store) -> None:
    snap, t = _b(), _b()
    with store.write() as tx:
        tx.stage_entries(snap, "CN", [upsert(_b(), [t, t])])
    with store.read() as tx:
        assert tx.staged_counts(snap, "CN") == (1, None)


def test_apply_staged_replaces_the_origins_entries_only(store: Store) -> None:
    old_h, old_t, other_t = _b(), _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(old_h, [old_t])])
        tx.apply_ops("AR", [upsert(_b(), [other_t])])
    snap, other_snap = _b(), _b()
    new = [upsert(_b(), [_b(), _b()], "2095-05-05") for _ in range(30)]
    with store.write() as tx:
        tx.stage_entries(snap, "CN", new[:10])
        tx.stage_entries(snap, "CN", new[10:])
        tx.stage_entries(other_snap, "CN", [upsert(_b(), [_b()])])
    with store.write() as tx:
        assert tx.apply_staged(snap, "CN") == 30
    with store.read() as tx:
        assert tx.count_entries("CN") == 30
        assert tx.find_tokens("CN", [old_t]) == []
        all_new = [t.token for u in new for t in u.tokens]
        rows = tx.find_tokens("CN", all_new)
        assert len(rows) == 60 and {r.expires for r in rows} == {"2095-05-05"}
        assert {(r.token, r.sealed) for r in rows} == {(t, b"sealed:" + t) for t in all_new}
        assert tx.count_entries("AR") == 1 and len(tx.find_tokens("AR", [other_t])) == 1
        assert tx.staged_counts(snap, "CN") == (0, 0)  # its staging is gone
        assert tx.staged_counts(other_snap, "CN") == (1, 1)  # another snapshot's is not


def test_apply_staged_of_an_empty_snapshot_empties_the_origin(store: Store) -> None:
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(_b(), [_b()])])
        assert tx.apply_staged(_b(), "CN") == 0
    with store.read() as tx:
        assert tx.count_entries("CN") == 0


def test_drop_staging(store: Store) -> None:
    a, b = _b(), _b()
    with store.write() as tx:
        tx.stage_entries(a, "CN", [upsert(_b(), [_b()])])
        tx.stage_entries(b, "AR", [upsert(_b(), [_b()])])
        tx.drop_staging(a)
    with store.read() as tx:
        assert tx.staged_counts(a, "CN") == (0, 0) and tx.staged_counts(b, "AR") == (1, 1)
    with store.write() as tx:
        tx.drop_staging()
    with store.read() as tx:
        assert tx.staged_counts(b, "AR") == (0, 0)


def test_a_swap_retires_the_replaced_listings_which_drain_in_chunks(store: Store) -> None:
    """Swapping a snapshot in moves a pointer: the replaced listings are not
    held any more (lookups, counts, expiry) and are deleted chunk by chunk."""
    old = [upsert(_b(), [_b(), _b()], "2000-01-01") for _ in range(25)]
    new = [upsert(_b(), [_b()], "2000-01-01") for _ in range(5)]
    snap = _b()
    with store.write() as tx:
        tx.apply_ops("CN", old)
        tx.stage_entries(snap, "CN", new)
        assert {o for o, _ in tx.expired_entries("2001-01-01", 100)} == {"CN"}
        assert len(tx.expired_entries("2001-01-01", 100)) == 25  # staged: not held yet
        assert tx.apply_staged(snap, "CN") == 5
    with store.read() as tx:
        assert tx.find_tokens("CN", [t.token for u in old for t in u.tokens]) == []
        assert sorted(h for _, h in tx.expired_entries("2001-01-01", 100)) == sorted(
            u.handle for u in new
        )
    rounds = 0
    while True:
        with store.write() as tx:
            if not tx.drain_old_slots(10):
                break
        rounds += 1
    assert rounds >= 5  # 50 token rows, 25 entries, at most 10 a round
    with store.read() as tx:
        assert tx.count_entries("CN") == 5
        assert len(tx.find_tokens("CN", [t.token for u in new for t in u.tokens])) == 5
    with store.write() as tx:  # later batches go to the swapped-in listings
        tx.apply_ops("CN", [Remove(new[0].handle)])
        assert tx.count_entries("CN") == 4


def test_clear_origin_and_a_dropped_staging_leave_nothing_held(store: Store) -> None:
    snap, later = _b(), _b()
    with store.write() as tx:
        tx.stage_entries(snap, "CN", [upsert(_b(), [_b()])])
        tx.apply_staged(snap, "CN")
        tx.stage_entries(later, "CN", [upsert(_b(), [_b()])])
        tx.drop_staged_snapshot("CN")
        tx.clear_origin("CN")
        assert tx.count_entries("CN") == 0 and tx.staged_counts(later, "CN") == (0, 0)
    with store.write() as tx:
        while tx.drain_old_slots(100):
            pass
    with store.read() as tx:
        assert tx.expired_entries("2100-01-01", 10) == []


def test_staged_progress_without_its_staged_listings_is_none(store: Store) -> None:
    """Progress staged by an earlier version (its entries in retired tables)
    does not resume: resuming would count none of them and blame the origin."""
    with store.write() as tx:
        tx.put_staged_snapshot("CN", _b(), b"progress")
        assert tx.staged_snapshot("CN") is None


def test_staging_survives_opening_the_store_and_is_dropped_per_origin(
    opener: StoreOpener,
) -> None:
    """Opening the store (any CLI command beside a serving node) must not
    destroy a snapshot another process is staging (issue 9 item 1)."""
    store = opener("n1")
    snap, other = _b(), _b()
    with store.write() as tx:
        tx.stage_entries(snap, "CN", [upsert(_b(), [_b()])])
        tx.put_staged_snapshot("CN", snap, b"progress")
        tx.stage_entries(other, "AR", [upsert(_b(), [_b()])])
    second = opener("n1")
    with second.read() as tx:
        assert tx.staged_counts(snap, "CN") == (1, 1)
        assert tx.staged_snapshot("CN") == (snap, b"progress")
    with second.write() as tx:
        tx.drop_staged_snapshot("CN")
    with store.read() as tx:
        assert tx.staged_counts(snap, "CN") == (0, 0) and tx.staged_snapshot("CN") is None
        assert tx.staged_counts(other, "AR") == (1, 1)
    store.close()


# ------------------------------------------------------------------ rejections


def test_rejections_newest_first_by_origin_and_limited(store: Store) -> None:
    rows = [
        RejectionRow(100 + i, "CN" if i % 2 else "AR", Rejected.BATCH, "gap", f"r{i}")
        for i in range(7)
    ]
    with store.write() as tx:
        for row in rows[:4]:
            tx.add_rejection(row)
    with store.write() as tx:
        for row in rows[4:]:
            tx.add_rejection(row)
    with store.read() as tx:
        assert tx.list_rejections() == rows[::-1]
        assert tx.list_rejections(limit=2) == [rows[6], rows[5]]
        assert tx.list_rejections("CN") == [rows[5], rows[3], rows[1]]
        assert tx.list_rejections("CN", limit=1) == [rows[5]]
        assert tx.list_rejections("XX") == []


def test_rejections_keep_insertion_order_even_with_equal_or_older_times(store: Store) -> None:
    with store.write() as tx:
        tx.add_rejection(RejectionRow(50, "CN", Rejected.BATCH, "gap", "first"))
        tx.add_rejection(RejectionRow(50, "CN", Rejected.BATCH, "fork", "second"))
        tx.add_rejection(
            RejectionRow(10, "CN", Rejected.SNAPSHOT, "malformed", "third (clock went back)")
        )
    with store.read() as tx:
        assert [r.detail for r in tx.list_rejections()] == [
            "third (clock went back)",
            "second",
            "first",
        ]


# ------------------------------------------------------------------ durability, isolation


def _fill(store: Store) -> None:
    with store.write() as tx:
        _everything(tx)


def test_reopening_a_store_keeps_its_data(opener: StoreOpener) -> None:
    store = opener("n1")
    _fill(store)
    store.close()
    reopened = opener("n1")
    with reopened.read() as tx:
        assert tx.get_meta("k") == b"v"
        assert tx.get_record("R-1") == StoredRecord("R-1", 1, b"body", "2099-12-31", 5)
        assert tx.change_head() == 1
        assert tx.get_peer("RU") == PeerRow("RU", b"card", "127.0.0.1:1", 5)
        assert tx.outbox_digest_at("RU", 1, 1) == b"x" * 32
        assert tx.get_inbound("CN") == inbound("CN", seq=3)
        assert tx.applied_digest("CN", 1, 3) == b"y" * 32
        assert [r.token for r in tx.find_tokens("CN", [b"t" * 16])] == [b"t" * 16]
        assert len(tx.list_rejections()) == 1
        assert exchange_log.size(tx) == 1 and b'"reason":"gap"' in tx.audit_entries(0, 1)[0][1]
    with reopened.write() as tx:  # the change log continues where it was
        assert tx.append_change("R-2", ChangeOp.UPSERT, 1, 6) > 1


def test_a_store_of_another_schema_version_is_refused(opener: StoreOpener) -> None:
    store = opener("n1")
    with store.write() as tx:
        tx.set_meta("schema_version", b"99")
    store.close()
    with pytest.raises(InternalError, match="schema version 99"):
        opener("n1")


def test_two_sqlite_files_are_independent(tmp_path: Path) -> None:
    a, b = open_sqlite(tmp_path / "a.db"), open_sqlite(tmp_path / "b.db")
    try:
        _fill(a)
        with b.read() as tx:
            _assert_empty(tx)
    finally:
        a.close()
        b.close()


@pytest.mark.postgres
def test_two_nodes_share_one_postgres_database_in_separate_schemas() -> None:
    schemas = [f"t_share_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    stores = [open_postgres(PG_DSN, s) for s in schemas]
    try:
        _fill(stores[0])
        with stores[1].read() as tx:
            _assert_empty(tx)
        with stores[1].write() as tx:
            tx.put_peer(PeerRow("AR", b"other", "127.0.0.1:9", 1))
            tx.lock_changes()
            tx.append_change("R-1", ChangeOp.REMOVE, 2, 1)
        with stores[0].read() as tx:
            assert [p.node_id for p in tx.list_peers()] == ["RU"]
            assert [c.op for c in tx.changes_after(0, 10)] == ["upsert"]
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in schemas:
                tables = {
                    r[0]
                    for r in conn.execute(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        (schema,),
                    )
                }
                assert {"records", "changes", "tokens", "entries", "inbound"} <= tables
            peers = conn.execute(f'SELECT node_id FROM "{schemas[1]}".peers').fetchall()
            assert peers == [("AR",)]
    finally:
        for store in stores:
            store.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
@pytest.mark.parametrize("name", ["Bad-Name", "x; drop schema public", "", "1" * 64])
def test_an_invalid_postgres_schema_name_is_refused(name: str) -> None:
    with pytest.raises(UserError, match="schema name"):
        open_postgres(PG_DSN, name)


# ------------------------------------------------------------------ sync path


def test_exclusive_is_held_across_handles_and_released(opener: StoreOpener) -> None:
    """The node-wide lock works across every handle on one store (as across
    processes), and is free again once its holder leaves."""
    from wlx.node.core.errors import Unavailable

    first, second = opener("n1"), opener("n1")
    with first.exclusive("sync", timeout=0):
        with (
            pytest.raises(Unavailable, match="another process"),
            second.exclusive("sync", timeout=0.1),
        ):
            pass
        with second.exclusive("other", timeout=0):  # another name: not contended
            pass
    with second.exclusive("sync", timeout=0):
        pass


def test_stream_digest_at_knows_batches_and_anchors(store: Store) -> None:
    with store.write() as tx:
        tx.add_outbox("RU", 1, OutboxRow(1, 2, b"b" * 32, b"signed"), 0)
        tx.add_anchor("RU", 1, 3, b"s" * 32)
    with store.read() as tx:
        assert tx.stream_digest_at("RU", 1, 2) == b"b" * 32
        assert tx.stream_digest_at("RU", 1, 3) == b"s" * 32
        assert tx.stream_digest_at("RU", 1, 4) is None
        assert tx.stream_digest_at("RU", 2, 3) is None
    with store.write() as tx:  # a later epoch's compaction forgets the old anchors
        tx.delete_outbox("RU", epoch=2, keep_seq=None)
    with store.read() as tx:
        assert tx.stream_digest_at("RU", 1, 3) is None


def test_delete_outbox_without_a_batch_to_keep_empties_the_epoch(store: Store) -> None:
    """``keep_seq=None`` (not a -1 that no sequence number equals) drops every
    batch of the epoch and of older ones, whenever they were made."""
    with store.write() as tx:
        tx.add_outbox("RU", 1, OutboxRow(1, 2, b"a" * 32, b"s"), 100)
        tx.add_outbox("RU", 2, OutboxRow(1, 3, b"b" * 32, b"s"), 100)
        tx.add_outbox("RU", 2, OutboxRow(4, 5, b"c" * 32, b"s"), 200)
        tx.add_outbox("AR", 2, OutboxRow(1, 1, b"d" * 32, b"s"), 100)
    with store.write() as tx:  # keeping the acknowledged batch: only older epochs go
        assert tx.delete_outbox("RU", epoch=2, keep_seq=3, before_time=0) == 1
    with store.write() as tx:
        assert tx.delete_outbox("RU", epoch=2, keep_seq=None) == 2
    with store.read() as tx:
        assert tx.outbox_after("RU", 2, 0, 10) == []
        assert len(tx.outbox_after("AR", 2, 0, 10)) == 1


def test_list_checkpoints_from_the_first(store: Store) -> None:
    with store.write() as tx:
        for size in (0, 1, 5):
            tx.add_checkpoint(CheckpointRow(size, bytes(32), b"note", 0))
    with store.read() as tx:
        assert [r.size for r in tx.list_checkpoints(None, 10)] == [0, 1, 5]
        assert [r.size for r in tx.list_checkpoints(0, 10)] == [1, 5]
        assert [r.size for r in tx.list_checkpoints(None, 2)] == [0, 1]


def upsert_v2(handle: bytes, tokens: list[bytes], expires: str = "2099-12-31") -> Upsert:
    """A protocol-2 listing (§4.3): sealed once, a 17-byte wrap per token."""
    entries = tuple(TokenEntry(t, b"", b"w" + t) for t in tokens)
    return Upsert(handle, expires, entries, sealed=b"listing:" + handle)


def test_protocol_1_and_2_listings_side_by_side(store: Store) -> None:
    h1, h2, shared, t1, t2 = _b(), _b(), _b(), _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h1, [shared, t1]), upsert_v2(h2, [shared, t2])])
    with store.read() as tx:
        rows = {(r.handle, r.token): r for r in tx.find_tokens("CN", [shared, t1, t2])}
        assert len(rows) == 4
        old, new = rows[h1, t1], rows[h2, t2]
        assert (old.sealed, old.wrap) == (b"sealed:" + t1, b"")
        assert (new.sealed, new.wrap) == (b"listing:" + h2, b"w" + t2)
        assert rows[h2, shared].wrap == b"w" + shared
    with store.write() as tx:  # a listing changes format at the next epoch: replaced whole
        tx.apply_ops("CN", [upsert_v2(h1, [t1]), upsert(h2, [t2])])
    with store.read() as tx:
        rows = {(r.handle, r.token): r for r in tx.find_tokens("CN", [shared, t1, t2])}
        assert set(rows) == {(h1, t1), (h2, t2)}
        assert (rows[h1, t1].sealed, rows[h1, t1].wrap) == (b"listing:" + h1, b"w" + t1)
        assert (rows[h2, t2].sealed, rows[h2, t2].wrap) == (b"sealed:" + t2, b"")
        assert tx.count_entries("CN") == 2


def test_protocol_2_listings_are_staged_and_swapped_in(store: Store) -> None:
    sid, h, t = _b(), _b(), _b()
    with store.write() as tx:
        tx.stage_entries(sid, "CN", [upsert_v2(h, [t, _b()])])
        assert tx.staged_counts(sid, "CN") == (1, 2)
        assert tx.apply_staged(sid, "CN") == 1
    with store.read() as tx:
        [row] = tx.find_tokens("CN", [t])
        assert (row.handle, row.sealed, row.wrap) == (h, b"listing:" + h, b"w" + t)


def test_a_store_of_schema_version_1_is_migrated_keeping_its_listings(
    opener: StoreOpener,
) -> None:
    h, t = _b(), _b()
    store = opener("n1")
    with store.write() as tx:
        tx.apply_ops("CN", [upsert(h, [t])])
        tx.set_meta("schema_version", b"1")
    with store._connector.transaction(write=True) as cur:  # type: ignore[attr-defined]
        cur.execute("ALTER TABLE entries DROP COLUMN sealed")  # as version 1 made it
    store.close()
    store = opener("n1")
    with store.read() as tx:
        assert tx.get_meta("schema_version") == b"2"
        [row] = tx.find_tokens("CN", [t])
        assert (row.handle, row.sealed, row.wrap) == (h, b"sealed:" + t, b"")
    h2, t2 = _b(), _b()
    with store.write() as tx:
        tx.apply_ops("CN", [upsert_v2(h2, [t2])])
    with store.read() as tx:
        [row] = tx.find_tokens("CN", [t2])
        assert (row.sealed, row.wrap) == (b"listing:" + h2, b"w" + t2)
