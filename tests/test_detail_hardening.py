"""Detail requests under attack (issue 8, items 1 and 5): an officer reading the
node's own list without a hit, fishing at a peer by ref, and burning a
country's quota with refused requests."""

from __future__ import annotations

import hmac
import json
import threading
from typing import Any

import pytest
from support.audit import bundle_of, keyring
from support.nodes import FakeClock, Federation, FederationMaker, StorageFactory, record

from wlx.crypto.signing import Purpose
from wlx.node import detail
from wlx.node.audit.offline.reconcile import reconcile
from wlx.node.audit.offline.verify import verify_bundle
from wlx.node.core.errors import Rejection
from wlx.node.core.policy import SharingPolicy
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.outgoing.origin import MAX_CLOCK_SKEW
from wlx.node.outgoing.ownlist import load_record
from wlx.node.outgoing.previous_epochs import PROOF_GRACE
from wlx.node.protocol import codec
from wlx.node.protocol.detail_rules import PROVEN, Denial, Direction
from wlx.node.protocol.envelopes import open_envelope
from wlx.node.protocol.messages import DetailAnswer
from wlx.node.rpc.cosign import checkpoint_round
from wlx.node.trust import lifecycle
from wlx.v1 import lookup_pb2, lookup_pb2_grpc


def by_name(ref: str) -> Query:
    return Query(names=(f"Test Person {ref.replace('-', ' ')}",), dob="1980-05-17")


def person(ref: str) -> lookup_pb2.Person:
    return lookup_pb2.Person(names=[f"Test Person {ref.replace('-', ' ')}"], dob="1980-05-17")


def ask_own(stub: lookup_pb2_grpc.LookupStub, ref: str) -> lookup_pb2.DetailResult:
    result: lookup_pb2.DetailResult = stub.Detail(
        lookup_pb2.DetailQuery(origin="CN", ref=ref, purpose="own case", case_id="K-9")
    )
    return result


def test_an_officer_cannot_read_an_own_record_without_a_hit(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2")])
    ownlist.suspend_record(cn, "CN-2", suspended=True)
    stub = lookup_pb2_grpc.LookupStub(fed.channel("CN"))
    # No hit: the same denial for a listed ref, a suspended one and a missing one.
    for ref in ("CN-1", "CN-2", "CN-404"):
        result = ask_own(stub, ref)
        assert (result.granted, result.denial, result.record_json) == (False, Denial.NO_HIT, "")
    # Another officer's hit proves nothing for this one.
    other = lookup_pb2_grpc.LookupStub(fed.channel("CN"))
    other.Check(lookup_pb2.CheckRequest(person=person("CN-1"), purpose="border-check"))
    assert ask_own(stub, "CN-1").denial == Denial.NO_HIT
    # After this officer's own hit: granted; a suspended listing stays withheld.
    stub.Check(lookup_pb2.CheckRequest(person=person("CN-1"), purpose="border-check"))
    result = ask_own(stub, "CN-1")
    assert result.granted and json.loads(result.record_json)["id"] == "CN-1"
    stub.Check(lookup_pb2.CheckRequest(person=person("CN-2"), purpose="border-check"))
    assert ask_own(stub, "CN-2").denial == "suspended"
    with cn.store.read() as tx:
        assert tx.count_details("CN", Direction.OUT, 0) == 6
        assert tx.count_details("CN", Direction.OUT, 0, sorted(PROVEN)) == 2


def test_own_record_requests_are_within_a_quota(federation: FederationMaker) -> None:
    fed = federation(["CN"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1")])
    lookup = Lookup(cn)
    lookup.check(by_name("CN-1"), caller="officer-1")
    key = lookup.hits.recall("officer-1", "CN", "CN-1", cn.now())
    assert key is not None
    outcomes = [
        detail.own_record(
            cn, "CN-1", officer="officer-1", purpose="p", case_id="", seal_key=key, quota=2
        ).denial
        or "granted"
        for _ in range(3)
    ]
    assert outcomes == ["granted", "granted", "quota"]


def _ask(fed: Federation, ref: str, seal_key: bytes | None, quota: int) -> str:
    ru = fed["RU"].node
    outcome = detail.request(
        ru,
        origin="CN",
        ref=ref,
        purpose="check",
        case_id="",
        officer="post-1",
        seal_key=seal_key,
        send=lambda peer, signed: detail.answer(fed["CN"].node, signed, quota=quota),
    )
    return outcome.denial or "granted"


def test_a_detail_request_without_a_proof_learns_nothing_and_costs_no_quota(
    federation: FederationMaker,
) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(
        cn, [record("CN-1"), record("CN-2"), record("CN-3", category="terrorism")]
    )
    ownlist.suspend_record(cn, "CN-2", suspended=True)
    origin.set_policy(cn, "RU", SharingPolicy.make(categories=["wanted"]))
    fed.sync_all()
    # Listed, suspended, withheld by policy, missing: one answer without a proof.
    for ref in ("CN-1", "CN-2", "CN-3", "CN-404"):
        assert _ask(fed, ref, None, quota=2) == Denial.NO_HIT
        assert _ask(fed, ref, bytes(32), quota=2) == Denial.NO_HIT
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    key = lookup.hits.recall("", "CN", "CN-1", ru.now())
    # The eight refusals did not count: the quota of two is intact.
    assert [_ask(fed, "CN-1", key, quota=2) for _ in range(3)] == ["granted", "granted", "quota"]
    with cn.store.read() as tx:
        assert tx.count_details("RU", Direction.IN, 0) == 11


def test_the_quota_holds_under_concurrent_requests(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(["CN", "RU"], storage=backend)
    ru = fed["RU"].node
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    key = lookup.hits.recall("", "CN", "CN-1", ru.now())
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def one() -> None:
        barrier.wait()
        outcomes.append(_ask(fed, "CN-1", key, quota=2))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["granted", "granted", "quota", "quota", "quota", "quota"]


def test_a_hit_from_the_previous_epoch_is_provable_for_a_grace_period(
    federation: FederationMaker, clock: FakeClock
) -> None:
    """Issue 8, item 10: ``epoch new`` (or a rotation) does not void officers'
    outstanding hits at once; they stay provable for ``PROOF_GRACE``."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    key = lookup.hits.recall("", "CN", "CN-1", ru.now())
    lifecycle.new_epoch(cn, "RU")  # RU has not resynced yet
    assert _ask(fed, "CN-1", key, quota=10) == "granted"
    clock.advance(PROOF_GRACE + 1)
    assert _ask(fed, "CN-1", key, quota=10) == Denial.NO_HIT
    # After the resync, the new epoch's hits prove as ever.
    assert fed.sync("RU", "CN").ok
    lookup.check(by_name("CN-1"))
    assert _ask(fed, "CN-1", lookup.hits.recall("", "CN", "CN-1", ru.now()), quota=10) == "granted"


def test_a_revocation_voids_the_previous_epochs_hits(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    key = lookup.hits.recall("", "CN", "CN-1", ru.now())
    lifecycle.new_epoch(cn, "RU")
    lifecycle.revoke_peer(cn, "RU")
    origin.add_peer(cn, ru.card.raw, fed["RU"].address)  # trusted again: a fresh start
    assert _ask(fed, "CN-1", key, quota=10) == Denial.NO_HIT


def test_not_found_and_a_wrong_proof_do_the_same_work(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 8: "no such ref" and "wrong proof" are one answer, and one piece
    of work: a missing ref is checked against a stand-in record, opened and
    parsed the same way, every key tried (no timing measured here)."""
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    opened: list[str] = []
    compared: list[int] = []
    real_load, real_compare = load_record, hmac.compare_digest

    def load(node: Any, stored: Any) -> Any:
        opened.append(stored.id)
        return real_load(node, stored)

    def compare(a: bytes, b: bytes) -> bool:
        compared[-1] += 1
        return real_compare(a, b)

    monkeypatch.setattr(detail, "load_record", load)
    monkeypatch.setattr(hmac, "compare_digest", compare)  # the module detail uses
    answers = []
    for ref in ("CN-1", "CN-404"):
        opened.clear()
        compared.append(0)
        answers.append(_ask(fed, ref, bytes(32), quota=2))
        assert len(opened) == 1  # the listing, or the stand-in for a missing ref
    assert answers == [Denial.NO_HIT, Denial.NO_HIT]
    # The same number of proofs tried (the stand-in is shaped like a typical
    # listing; one more comparison is the requester's check of the answer).
    assert compared[0] == compared[1] > 2


def test_a_replayed_detail_request_is_not_charged_again_and_releases_nothing_new(
    federation: FederationMaker, clock: FakeClock
) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2")])
    fed.sync_all()
    lookup = Lookup(ru)
    lookup.check(by_name("CN-1"))
    lookup.check(by_name("CN-2"))
    sent: list[Any] = []

    def keep(peer: Any, signed: Any) -> Any:
        sent.append(signed)
        return detail.answer(cn, signed, quota=2)

    def ask(ref: str) -> detail.DetailOutcome:
        return detail.request(
            ru,
            origin="CN",
            ref=ref,
            purpose="check",
            case_id="",
            officer="post-1",
            seal_key=lookup.hits.recall("", "CN", ref, ru.now()),
            send=keep,
        )

    assert ask("CN-1").granted
    first = sent[0]
    # Replayed within its window: the same grant, the quota not charged again.
    for _ in range(3):
        again = open_answer(ru, detail.answer(cn, first, quota=2))
        assert again.granted and json.loads(again.record) == json.loads(ask_record(cn, "CN-1"))
    with cn.store.read() as tx:
        assert tx.count_details("RU", Direction.IN, 0, sorted(PROVEN)) == 1
    assert ask("CN-2").granted  # the second of the quota of two is still there
    # The record changes: a replay of the old request releases nothing new.
    ownlist.import_records(cn, [record("CN-1", action="refer")])
    again = open_answer(ru, detail.answer(cn, first, quota=2))
    assert (again.granted, again.denial, again.record) == (False, Denial.NO_HIT, b"")
    # Every replay is in the log as one, with the first request's digest.
    entries = detail_entries(fed, "CN")
    assert [e.get("replay", False) for e in entries] == [False, True, True, True, False, True]
    assert len({e["request"] for e in entries if e["ref"] == "CN-1"}) == 1
    # An auditor compares the first answer with RU's log, not the replays.
    for node_id in ("CN", "RU"):
        checkpoint_round(fed[node_id].node)
    cn_log, ru_log = (
        verify_bundle(bundle_of(fed, n), keyring(fed, ("CN", "RU"))) for n in ("CN", "RU")
    )
    result = reconcile(cn_log, ru_log)
    assert result.discrepancies == [], result.lines()
    assert "detail requests: 2 by RU, 2 answered as RU logged" in "\n".join(result.summary)
    # Once the window closes, the copy is stale, as any old request.
    clock.advance(MAX_CLOCK_SKEW + 1)
    with pytest.raises(Rejection):
        detail.answer(cn, first, quota=2)


def open_answer(ru: Any, sealed: Any) -> DetailAnswer:
    return codec.decode_detail_answer(
        open_envelope(
            sealed,
            purpose=Purpose.DETAIL_ANSWER,
            me=ru.node_id,
            box_key=ru.box_key,
            expected_sender="CN",
            trusted=ru.trusted,
        )
    )


def ask_record(cn: Any, ref: str) -> bytes:
    with cn.store.read() as tx:
        stored = tx.get_record(ref)
    assert stored is not None
    return ownlist.load_record(cn, stored).to_json()


def detail_entries(fed: Federation, at: str) -> list[dict[str, Any]]:
    from wlx.node.audit import exchange_log

    with fed[at].node.store.read() as tx:
        rows = [json.loads(e) for _, e in tx.audit_entries(0, exchange_log.size(tx))]
    return [e for e in rows if e["kind"] == "detail.in"]
