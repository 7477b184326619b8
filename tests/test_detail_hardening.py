"""Detail requests under attack (issue 8, items 1 and 5): an officer reading the
node's own list without a hit, fishing at a peer by ref, and burning a
country's quota with refused requests."""

from __future__ import annotations

import json
import threading

from support.nodes import FakeClock, Federation, FederationMaker, StorageFactory, record

from wlx.node import detail
from wlx.node.core.policy import SharingPolicy
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.outgoing.previous_epochs import PROOF_GRACE
from wlx.node.protocol.detail_rules import PROVEN, Denial
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
        assert tx.count_details("CN", "out", 0) == 6
        assert tx.count_details("CN", "out", 0, sorted(PROVEN)) == 2


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
        assert tx.count_details("RU", "in", 0) == 11


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
