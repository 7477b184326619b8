"""The sync path: snapshots after a fast-forward, concurrent syncs, explicit rejections."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from support.nodes import FederationMaker, StorageFactory, record

from wlx.node import daemon
from wlx.node.core.errors import Unavailable
from wlx.node.directory import open_node
from wlx.node.incoming import receiver
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.messages import Cursor, Sealed
from wlx.node.report import node_status
from wlx.node.rpc import sync_client as sync
from wlx.node.rpc.transport import peer_channel
from wlx.v1 import federation_pb2_grpc


def _entries(fed_node: object) -> int:
    from wlx.node.core.node import Node

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


def _parts_then(monkeypatch: pytest.MonkeyPatch, after_first: Any) -> None:
    """Run ``after_first()`` once, after the first snapshot part reached the receiver."""
    fetch = sync._snapshot_parts
    done: list[bool] = []

    def parts(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, part in enumerate(fetch(*args, **kwargs)):
            yield part
            if n == 0 and not done:
                done.append(True)
                after_first()

    monkeypatch.setattr(sync, "_snapshot_parts", parts)
    monkeypatch.setattr(outbound, "ENTRIES_PER_PART", 10)


def test_opening_the_store_beside_a_sync_keeps_its_staged_snapshot(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.1: a CLI command (any ``open_node``) while the node receives a
    snapshot must not destroy it, nor make the node accuse its peer."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{n}") for n in range(35)])

    def cli_command() -> None:
        other = open_node(ru.paths.root)  # e.g. `wlx records count RU` in another process
        other.close()

    _parts_then(monkeypatch, cli_command)
    report = fed.sync("RU", "CN")
    assert report.ok, report.error
    assert report.snapshot_entries == 35 and _entries(ru) == 35
    with ru.store.read() as tx:
        assert tx.list_rejections() == []


def test_a_second_sync_of_the_same_node_waits_instead_of_racing(
    federation: FederationMaker, backend: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.1: `wlx sync DIR` while the serving node's own loop pulls (two
    handles on one store) waits for it: no `rollback`, no `malformed`."""
    fed = federation(["CN", "RU"], storage=backend)
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{n}") for n in range(35)])
    second = open_node(ru.paths.root, clock=ru.clock)
    waited = threading.Event()
    reports: list[sync.SyncReport] = []

    def cli_sync() -> None:
        reports.extend(sync.sync_all(second, on_wait=waited.set))

    thread = threading.Thread(target=cli_sync)

    def start_second_sync() -> None:
        thread.start()
        # Either it waits for our lock (fixed), or it runs to its end first.
        deadline = time.monotonic() + 30
        while not waited.is_set() and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    _parts_then(monkeypatch, start_second_sync)
    try:
        first = sync.sync_all(ru)
        thread.join(timeout=60)
    finally:
        second.close()
    assert waited.is_set()
    assert [r.ok for r in first + reports] == [True, True], [r.error for r in first + reports]
    assert _entries(ru) == 35
    with ru.store.read() as tx:
        assert tx.list_rejections() == []


def test_the_server_loop_skips_its_sync_while_another_process_syncs(
    federation: FederationMaker, caplog: pytest.LogCaptureFixture
) -> None:
    fed = federation(["CN", "RU"])
    ru = fed["RU"].node
    with ru.store.exclusive(sync.SYNC_LOCK, timeout=0):
        with pytest.raises(Unavailable, match="another process"):
            sync.sync_all(ru, wait=0)
        with caplog.at_level(logging.INFO, logger="wlx.sync"):
            daemon.SyncLoop(ru, 3600)._sync()
    assert "skips the sync" in caplog.text
    assert all(r.ok for r in sync.sync_all(ru, wait=0))


def test_a_batch_that_does_not_decode_is_recorded(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9.3: every rejection is recorded, whatever its message says."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    assert fed.sync("RU", "CN").ok
    ownlist.import_records(cn, [record("CN-2")])
    real_encode = codec.encode_sealed

    def garbled(sealed: Sealed) -> Any:
        envelope = real_encode(sealed)
        envelope.version = 99  # a batch that does not decode at the receiver
        return envelope

    monkeypatch.setattr(codec, "encode_sealed", garbled)
    report = fed.sync("RU", "CN")
    assert not report.ok and "malformed" in report.error
    with ru.store.read() as tx:
        (rejection,) = tx.list_rejections()
    assert (rejection.origin, rejection.what, rejection.reason) == ("CN", "batch", "malformed")


def test_closing_the_store_under_a_streaming_snapshot_ends_it_cleanly(
    federation: FederationMaker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13: shutdown during a snapshot gives the handler `Unavailable`, not
    "Cannot operate on a closed database" and a traceback."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{n}") for n in range(60)])
    monkeypatch.setattr(outbound, "ENTRIES_PER_PART", 1)
    monkeypatch.setattr(origin, "SNAPSHOT_PAGE", 5)
    card = ru.trusted("CN")
    assert card is not None
    with (
        caplog.at_level(logging.INFO),
        peer_channel(ru, card, fed["CN"].address) as channel,
    ):
        stub = federation_pb2_grpc.FederationStub(channel)
        parts = sync._snapshot_parts(ru, stub, "CN")
        next(parts)  # the origin is streaming
        cn.close()  # `wlx serve` shutting down
        with pytest.raises(grpc.RpcError) as caught:
            for _ in parts:
                pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (caught.value.details() or "")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_snapshot_cut_off_resumes_at_the_next_sync(
    federation: FederationMaker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 13.2: a snapshot interrupted (the connection dropped) is not
    discarded: the next sync continues after the parts staged, even though
    the origin's list changed meanwhile, and ends at exactly its list."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{n:02d}") for n in range(45)])
    monkeypatch.setattr(outbound, "ENTRIES_PER_PART", 10)
    fetch = sync._snapshot_parts

    def dropped(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, part in enumerate(fetch(*args, **kwargs)):
            if n == 2:
                raise Unavailable("the connection dropped")
            yield part

    monkeypatch.setattr(sync, "_snapshot_parts", dropped)
    cut = fed.sync("RU", "CN")
    assert not cut.ok and "connection dropped" in cut.error
    with ru.store.read() as tx:
        staged = tx.staged_snapshot("CN")
    assert staged is not None and _entries(ru) == 0
    # The list changes before RU comes back.
    ownlist.import_records(cn, [record(f"CN-{n:02d}", action="refuse-entry") for n in (3, 33)])
    ownlist.remove_record(cn, "CN-05")
    ownlist.remove_record(cn, "CN-40")
    ownlist.import_records(cn, [record("CN-99")])
    monkeypatch.setattr(sync, "_snapshot_parts", fetch)
    with caplog.at_level(logging.INFO):
        report = fed.sync("RU", "CN")
    assert report.ok, report.error
    assert "resumed at part 2" in caplog.text
    assert _entries(ru) == 44
    with ru.store.read() as tx:
        assert tx.list_rejections() == [] and tx.staged_snapshot("CN") is None
    with cn.store.read() as tx:
        out = tx.get_outbound("RU")
    assert out is not None
    assert receiver.cursor(ru, "CN") == Cursor(out.epoch, out.last_seq, out.last_digest)
    actions = {
        n: [
            h.action
            for h in Lookup(ru).check(Query(names=(f"Test Person CN {n:02d}",), dob="1980-05-17"))
        ]
        for n in (3, 5, 33, 40, 99)
    }
    assert actions[3] == actions[33] == ["refuse-entry"]
    assert actions[5] == actions[40] == [] and actions[99] == ["arrest"]


def test_a_snapshots_staging_space_goes_back_to_the_file_system(
    federation: FederationMaker,
) -> None:
    """Staged rows are copied then deleted: their pages do not stay in the file."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record(f"CN-{n}") for n in range(300)])
    assert fed.sync("RU", "CN").ok
    conn = sqlite3.connect(ru.paths.root / ru.config.storage.path)
    try:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_snapshot_is_recorded_as_sent_before_its_final_part_leaves(
    federation: FederationMaker,
) -> None:
    """A receiver may stop reading right after the final part (or crash) and
    still apply the snapshot: the origin has logged it as sent by then, so the
    receipt and the audit reconciliation find it."""
    from wlx.crypto.signing import Purpose
    from wlx.node.outgoing import sent_snapshots
    from wlx.node.protocol.envelopes import sign_message
    from wlx.node.protocol.messages import SnapshotParams

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    params = SnapshotParams("RU", "CN", cn.now(), bytes(16))
    request = sign_message(
        codec.encode_snapshot_params(params),
        Purpose.SNAPSHOT,
        signer="RU",
        key=ru.signing_key,
        recipient="CN",
    )
    parts = origin.snapshot(cn, request)
    next(parts)  # the only, final part; the stream is not read to its end
    with cn.store.read() as tx:
        out = tx.get_outbound("RU")
        assert out is not None
        assert sent_snapshots.digest_at(tx, "RU", out.epoch, out.last_seq) == out.last_digest
    parts.close()
