"""The life of a listing across real nodes: suspension, receipts, expiry,
retention, compaction and resync, detail requests, status."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from support.nodes import FakeClock, Federation, FederationMaker, StorageFactory, record

from wlx.node import detail, maintenance
from wlx.node.audit import exchange_log
from wlx.node.incoming import receiver
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist, receipts
from wlx.node.protocol.detail_rules import Direction
from wlx.node.protocol.messages import ReceiptKind, Sealed, SignedRequest
from wlx.node.report import node_status
from wlx.node.rpc.server import detail_sender
from wlx.node.store.sql import SqlTx
from wlx.v1 import admin_pb2, admin_pb2_grpc, lookup_pb2, lookup_pb2_grpc

DAY = 86_400


def by_name(ref: str) -> Query:
    return Query(names=(f"Test Person {ref.replace('-', ' ')}",), dob="1980-05-17")


def hits(fed: Federation, at: str, ref: str) -> list[tuple[str, str, bool]]:
    return [(h.ref, h.action, h.suspended) for h in Lookup(fed[at].node).check(by_name(ref))]


def test_a_suspended_listing_still_hits_with_no_action(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    assert ownlist.suspend_record(fed["CN"].node, "CN-1", suspended=True)
    assert not ownlist.suspend_record(fed["CN"].node, "CN-1", suspended=True)
    fed.sync("RU", "CN")
    assert hits(fed, "RU", "CN-1") == [("CN-1", "", True)]
    assert hits(fed, "CN", "CN-1") == [("CN-1", "", True)]
    # Re-importing the same listing keeps it suspended until it is lifted.
    ownlist.import_records(fed["CN"].node, [record("CN-1", legal_basis="amended")])
    fed.sync("RU", "CN")
    assert hits(fed, "RU", "CN-1") == [("CN-1", "", True)]
    ownlist.suspend_record(fed["CN"].node, "CN-1", suspended=False)
    fed.sync("RU", "CN")
    assert hits(fed, "RU", "CN-1") == [("CN-1", "arrest", False)]


def test_receipts_prove_when_a_removal_reached_the_peer(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2")])
    fed.sync_all()
    ownlist.remove_record(cn, "CN-1")
    origin.materialise(cn, "RU")
    (ru_seen_from_cn,) = node_status(cn).peers
    assert ru_seen_from_cn.unconfirmed_removals == ("CN-1",)
    assert ru_seen_from_cn.acked_seq < ru_seen_from_cn.sent_seq

    assert fed.sync("RU", "CN").ok
    (ru_seen_from_cn,) = node_status(cn).peers
    assert ru_seen_from_cn.unconfirmed_removals == ()
    assert ru_seen_from_cn.acked_seq == ru_seen_from_cn.sent_seq
    with cn.store.read() as tx:
        state = tx.get_outbound("RU")
        assert state is not None
        digest = tx.outbox_digest_at("RU", state.epoch, state.last_seq)
    assert digest == state.last_digest
    # RU's side: it knows how far behind CN's head it is (not at all).
    (cn_seen_from_ru,) = node_status(fed["RU"].node).peers
    assert cn_seen_from_ru.behind == 0 and cn_seen_from_ru.origin_head == cn_seen_from_ru.seq


def test_receipts_are_kept_until_the_origin_takes_them(federation: FederationMaker) -> None:
    from wlx.crypto.signing import Purpose
    from wlx.node.protocol.envelopes import seal_presigned

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    ownlist.remove_record(cn, "CN-1")
    state = origin.materialise(cn, "RU")
    with cn.store.read() as tx:
        (row,) = tx.outbox_after("RU", state.epoch, state.last_seq - 1, 10)
    # RU applies the batch while CN is unreachable for the acknowledgement.
    sealed = seal_presigned(row.signed, Purpose.BATCH, sender="CN", to=ru.card)
    receiver.apply_batch(ru, "CN", sealed)
    fed["CN"].server.stop(grace=None)
    assert not fed.sync("RU", "CN").ok
    with ru.store.read() as tx:
        assert len(tx.pending_receipts("CN", 10)) == 1
    assert node_status(cn).peers[0].unconfirmed_removals == ("CN-1",)
    # CN back (same store, new server): the receipt is delivered at the next sync.
    from wlx.node.rpc.server import build_server

    server, _ = build_server(cn, f"127.0.0.1:{fed['CN'].port}")
    server.start()
    try:
        assert fed.sync("RU", "CN").ok
    finally:
        server.stop(grace=None)
    with ru.store.read() as tx:
        assert tx.pending_receipts("CN", 10) == []
    assert node_status(cn).peers[0].unconfirmed_removals == ()


def test_forged_receipts_are_not_recorded(federation: FederationMaker) -> None:
    from wlx.crypto.keys import SigningKey
    from wlx.crypto.signing import Purpose
    from wlx.node.protocol import codec
    from wlx.node.protocol.envelopes import sign_message
    from wlx.node.protocol.messages import Receipt

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    origin.materialise(cn, "RU")
    with cn.store.read() as tx:
        state = tx.get_outbound("RU")
    assert state is not None and state.last_seq == 1
    wrong = Receipt("CN", "RU", state.epoch, ReceiptKind.BATCH, 1, 1, b"\x00" * 32, 0)
    right = Receipt("CN", "RU", state.epoch, ReceiptKind.BATCH, 1, 1, state.last_digest, 0)

    def signed(receipt: Receipt, key: SigningKey = ru.signing_key) -> SignedRequest:
        return sign_message(
            codec.encode_receipt(receipt), Purpose.RECEIPT, signer="RU", key=key, recipient="CN"
        )

    assert receipts.acknowledge(cn, [signed(wrong)]) == 0
    assert receipts.acknowledge(cn, [signed(right, SigningKey.generate())]) == 0
    with cn.store.read() as tx:
        assert tx.get_outbound("RU").acked_seq == 0  # type: ignore[union-attr]
    assert receipts.acknowledge(cn, [signed(right)]) == 1
    with cn.store.read() as tx:
        assert tx.get_outbound("RU").acked_seq == 1  # type: ignore[union-attr]


def test_expired_listings_are_purged_with_the_origin_offline(
    federation: FederationMaker, clock: FakeClock
) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(
        fed["CN"].node,
        [record("CN-1", expires="2027-01-16"), record("CN-2", expires="2099-01-01")],
    )
    fed.sync_all()
    assert hits(fed, "RU", "CN-1") == [("CN-1", "arrest", False)]
    fed["CN"].server.stop(grace=None)
    clock.now = 1_800_000_000 + 60 * DAY  # 2027-03-16: CN-1 has expired
    assert hits(fed, "RU", "CN-1") == []  # never shown once expired, even before the purge
    purged = receiver.purge_expired(fed["RU"].node)
    assert purged.by_origin == {"CN": 1}
    with fed["RU"].node.store.read() as tx:
        assert tx.count_entries("CN") == 1
    assert hits(fed, "RU", "CN-2") == [("CN-2", "arrest", False)]


def test_retention_removes_expired_own_records_and_peers_follow(
    federation: FederationMaker, clock: FakeClock
) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1", expires="2027-01-16")])
    fed.sync_all()
    clock.now = 1_800_000_000 + 5 * DAY  # 2027-01-20
    assert ownlist.enforce_retention(fed["CN"].node, grace_days=30) == []
    clock.now = 1_800_000_000 + 40 * DAY
    assert ownlist.enforce_retention(fed["CN"].node, grace_days=30) == ["CN-1"]
    with fed["CN"].node.store.read() as tx:
        assert tx.count_records() == 0
    report = fed.sync("RU", "CN")
    assert report.ok and report.ops == 1
    with fed["RU"].node.store.read() as tx:
        assert tx.count_entries("CN") == 0


def converged(fed: Federation, a: str, b: str) -> None:
    """``a`` holds exactly ``b``'s live list."""
    with fed[b].node.store.read() as tx:
        own = {r.id for r in tx.iter_records()}
    with fed[a].node.store.read() as tx:
        assert tx.count_entries(b) == len(own)
    for ref in sorted(own)[:20]:
        assert [h.ref for h in Lookup(fed[a].node).check(by_name(ref))] == [ref]


def test_a_peer_offline_for_thousands_of_changes_catches_up(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(200)])
    fed.sync_all()
    for round_ in range(5):
        ownlist.import_records(
            cn, [record(f"CN-{i}", action=f"act-{round_}") for i in range(round_, 3000, 3)]
        )
        for i in range(round_ * 20, round_ * 20 + 20):
            ownlist.remove_record(cn, f"CN-{i}")
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries is None
    assert report.ops > 3000
    converged(fed, "RU", "CN")
    assert [h.action for h in Lookup(fed["RU"].node).check(by_name("CN-2998"))] == ["act-4"]


@pytest.mark.parametrize("ru_pulled_part", [False, True])
def test_compaction_while_a_peer_lags_forces_a_snapshot_and_loses_nothing(
    federation: FederationMaker, clock: FakeClock, ru_pulled_part: bool
) -> None:
    fed = federation(["CN", "RU", "AR"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(50)])
    fed.sync_all()
    ownlist.import_records(cn, [record(f"CN-{i}") for i in range(50, 1500)])
    if ru_pulled_part:
        origin.materialise(cn, "RU")  # made for RU, never acknowledged
    for i in range(10):
        ownlist.remove_record(cn, f"CN-{i}")
    assert fed.sync("AR", "CN").ok  # AR keeps up; RU lags
    clock.advance(31 * DAY)
    batches, changes = maintenance.compact(cn, keep_seconds=30 * DAY)
    assert batches > 0 and changes > 0
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 1490
    converged(fed, "RU", "CN")
    # AR, which acknowledged everything, continues with deltas, no snapshot.
    ownlist.remove_record(cn, "CN-20")
    report = fed.sync("AR", "CN")
    assert report.ok and report.snapshot_entries is None and report.ops == 1
    converged(fed, "AR", "CN")


def test_compaction_keeps_what_an_up_to_date_peer_needs(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    for i in range(5):
        ownlist.import_records(cn, [record(f"CN-{i}")])
        assert fed.sync("RU", "CN").ok
    maintenance.compact(cn, keep_seconds=0)
    with cn.store.read() as tx:
        state = tx.get_outbound("RU")
        assert state is not None
        assert tx.outbox_oldest("RU", state.epoch) == state.acked_seq
    ownlist.import_records(cn, [record("CN-9")])
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries is None and report.ops == 1


def test_compaction_deletes_the_change_log_a_chunk_per_transaction(
    federation: FederationMaker, backend: StorageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long change log is compacted in bounded write transactions (a
    million-listing origin held the write lock for ten minutes in one), each
    chunk logged with its count, and nothing an up-to-date peer needs is lost."""
    fed = federation(["CN", "RU"], storage=backend)
    cn = fed["CN"].node
    for i in range(7):
        ownlist.import_records(cn, [record(f"CN-{i}")])
    assert fed.sync("RU", "CN").ok
    with cn.store.read() as tx:
        logged = exchange_log.size(tx)
        pending = len(tx.changes_after(0, 1_000))
    assert pending >= 7
    monkeypatch.setattr(maintenance, "COMPACT_CHUNK", 3)
    deleted: list[int] = []
    real = SqlTx.delete_changes_upto

    def counted(tx: SqlTx, pos: int, limit: int | None = None) -> int:
        n = real(tx, pos, limit)
        deleted.append(n)
        return n

    monkeypatch.setattr(SqlTx, "delete_changes_upto", counted)
    _, changes = maintenance.compact(cn, keep_seconds=0)
    assert changes == pending and max(deleted) <= 3 and sum(deleted) == pending
    with cn.store.read() as tx:
        assert tx.changes_after(0, 1_000) == []
        rows = [json.loads(e) for _, e in tx.audit_entries(logged, exchange_log.size(tx))]
    assert [r["changes"] for r in rows if r["kind"] == "compaction"] == [n for n in deleted if n]
    ownlist.import_records(cn, [record("CN-9")])
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries is None and report.ops == 1


def detail_stub(fed: Federation, at: str) -> lookup_pb2_grpc.LookupStub:
    return lookup_pb2_grpc.LookupStub(fed.channel(at))


def test_detail_request_granted_after_a_hit_and_logged_on_both_sides(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    ownlist.import_records(fed["CN"].node, [record("CN-1", legal_basis="Art. 26")])
    fed.sync_all()
    stub = detail_stub(fed, "RU")
    person = lookup_pb2.Person(names=["Test Person CN 1"], dob="1980-05-17")
    hit = stub.Check(lookup_pb2.CheckRequest(person=person, purpose="border-check")).hits[0]
    result = stub.Detail(lookup_pb2.DetailQuery(ref=hit.ref, purpose="arrest", case_id="K-1"))
    assert result.granted and result.denial == ""
    rec = json.loads(result.record_json)
    assert rec["id"] == "CN-1" and rec["legal_basis"] == "Art. 26"
    assert rec["names"] == ["Test Person CN 1"]
    with fed["CN"].node.store.read() as tx:
        assert tx.count_details("RU", Direction.IN, 0) == 1
    with fed["RU"].node.store.read() as tx:
        assert tx.count_details("CN", Direction.OUT, 0) == 1


def test_detail_requests_without_a_hit_or_for_a_suspended_listing_are_denied(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2")])
    fed.sync_all()

    def ask(ref: str, seal_key: bytes | None) -> detail.DetailOutcome:
        return detail.request(
            ru,
            origin="CN",
            ref=ref,
            purpose="check",
            case_id="",
            officer="post-1",
            seal_key=seal_key,
            send=detail_sender(ru),
        )

    # Fishing by ref, without a hit: denied.
    assert ask("CN-2", None) == detail.DetailOutcome(False, "no-hit", "")
    assert ask("CN-404", None).denial == "no-hit"  # the same answer: no existence oracle
    # A proof made for another listing does not open this one.
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    key_1 = lookup.hits.recall("", "CN", "CN-1", ru.now())
    assert key_1 is not None
    assert ask("CN-2", key_1).denial == "no-hit"
    assert ask("CN-1", key_1).granted
    ownlist.suspend_record(cn, "CN-1", suspended=True)
    assert ask("CN-1", key_1).denial == "suspended"
    with cn.store.read() as tx:
        assert tx.count_details("RU", Direction.IN, 0) == 5


def test_detail_quota(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    lookup = Lookup(fed["RU"].node)
    lookup.check(by_name("CN-1"))
    key = lookup.hits.recall("", "CN", "CN-1", fed["RU"].node.now())
    outcomes = []
    for _ in range(4):
        sealed_request = detail.request
        outcome = sealed_request(
            fed["RU"].node,
            origin="CN",
            ref="CN-1",
            purpose="check",
            case_id="",
            officer="",
            seal_key=key,
            send=lambda peer, signed: detail_answer_with_quota(fed, signed, quota=2),
        )
        outcomes.append(outcome.denial or "granted")
    assert outcomes == ["granted", "granted", "quota", "quota"]


def detail_answer_with_quota(fed: Federation, signed: SignedRequest, quota: int) -> Sealed:
    return detail.answer(fed["CN"].node, signed, quota=quota)


def test_status_rpc_and_freshness(federation: FederationMaker, clock: FakeClock) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    synced_at = int(clock.now)
    clock.advance(3600)
    (hit,) = Lookup(fed["RU"].node).check(by_name("CN-1"))
    assert hit.list_synced_at == synced_at
    stub = admin_pb2_grpc.AdminStub(fed.channel("RU", role="operator"))
    response = stub.Status(admin_pb2.StatusRequest())
    assert response.node_id == "RU"
    (peer,) = response.peers
    assert (peer.peer, peer.listings, peer.last_sync, peer.behind) == ("CN", 1, synced_at, 0)
    assert peer.acked_seq == peer.sent_seq


@pytest.mark.parametrize("part_size", [1, 7, 1000])
def test_snapshots_arrive_in_parts(federation: FederationMaker, part_size: int) -> None:
    from wlx.node.protocol import outbound

    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record(f"CN-{i}") for i in range(30)])
    original = outbound.ENTRIES_PER_PART
    try:
        outbound.ENTRIES_PER_PART = part_size
        report = fed.sync("RU", "CN")
    finally:
        outbound.ENTRIES_PER_PART = original
    assert report.ok and report.snapshot_entries == 30
    converged(fed, "RU", "CN")


def test_an_abandoned_snapshot_request_does_not_strand_the_peer(
    federation: FederationMaker,
) -> None:
    from wlx.crypto.signing import Purpose
    from wlx.node.protocol import codec
    from wlx.node.protocol.envelopes import sign_message
    from wlx.node.protocol.messages import SnapshotParams

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    assert fed.sync("RU", "CN").ok
    ownlist.import_records(cn, [record("CN-2")])  # pending for RU, not yet made into a batch
    params = SnapshotParams("RU", "CN", cn.now(), bytes(16))
    request = sign_message(
        codec.encode_snapshot_params(params),
        Purpose.SNAPSHOT,
        signer="RU",
        key=ru.signing_key,
        recipient="CN",
    )
    next(origin.snapshot(cn, request))  # RU asked for a snapshot, then went away
    ownlist.import_records(cn, [record("CN-3")])
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 3
    converged(fed, "RU", "CN")


def test_a_detail_request_for_an_own_record_is_answered_locally_and_logged(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    stub = detail_stub(fed, "CN")
    person = lookup_pb2.Person(names=["Test Person CN 1"], dob="1980-05-17")
    stub.Check(lookup_pb2.CheckRequest(person=person, purpose="border-check"))
    result = stub.Detail(
        lookup_pb2.DetailQuery(origin="CN", ref="CN-1", purpose="own case", case_id="K-9")
    )
    assert result.granted and json.loads(result.record_json)["id"] == "CN-1"
    with fed["CN"].node.store.read() as tx:
        assert tx.count_details("CN", Direction.OUT, 0) == 1


def test_prefetch_hands_over_items_errors_and_stops_its_thread() -> None:
    import threading
    import time

    from wlx.node.rpc.sync_client import prefetch

    assert list(prefetch(iter(range(10)), 2)) == list(range(10))

    def broken() -> Iterator[int]:
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(prefetch(broken(), 2))

    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    items = prefetch(endless(), 3)
    assert next(items) == 0
    items.close()  # the consumer stops early: the helper thread must end
    deadline = time.monotonic() + 5
    while any(t.name == "wlx-prefetch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "prefetch thread still running"
        time.sleep(0.05)
    assert len(produced) <= 6
