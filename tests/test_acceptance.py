"""Acceptance policies with real served nodes (issue 16): RU declines a
category of CN's list, CN stops sending it and removes what RU held, both
logs show it; RU maps CN's actions to its own at lookup time; policy changes
while lists change and sync."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from support.nodes import FederationMaker, StorageFactory, record

from wlx.crypto.signing import Purpose
from wlx.node.audit import exchange_log
from wlx.node.audit.offline.acceptance import acceptance_lines, reconcile_acceptance
from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import NotFound, Rejection, RejectReason
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.core.records import Record
from wlx.node.incoming import acceptance
from wlx.node.incoming.lookup import Hit, Lookup, Query
from wlx.node.outgoing import acceptance as origin_acceptance
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.acceptance_rules import Declaration, encode_declaration
from wlx.node.protocol.envelopes import sign_message
from wlx.node.rpc.wire import hit_from_pb
from wlx.node.store.base import AcceptanceSide
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

WANTED = record("CN-1")
POLITICAL = record("CN-2", category="political", action="arrest")
STOLEN = record("CN-3", category="stolen-document", action="seize-document")
DECLINE = AcceptancePolicy.make(decline=["political"], actions={"arrest": "refer-to-supervisor"})


def query(rec: Record) -> Query:
    doc = rec.documents[0]
    return Query(documents=((doc.type, doc.country, doc.number),))


def hits(node: Node, rec: Record) -> tuple[Hit, ...]:
    return Lookup(node).check(query(rec))


def all_of(node: Node) -> list[dict[str, Any]]:
    with node.store.read() as tx:
        rows = tx.audit_entries(0, exchange_log.size(tx))
    return [json.loads(entry) for _, entry in rows]


def log_of(node: Node, kind: str) -> list[dict[str, Any]]:
    return [e for e in all_of(node) if e["kind"] == kind]


def entries(node: Node, origin_id: str) -> int:
    with node.store.read() as tx:
        return tx.count_entries(origin_id)


@pytest.mark.parametrize(
    "storage", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_declined_category_is_removed_and_no_longer_sent(
    federation: FederationMaker, storage: str
) -> None:
    factory = StorageFactory(storage)
    try:
        fed = federation(["CN", "RU"], storage=factory)
        cn, ru = fed["CN"].node, fed["RU"].node
        ownlist.import_records(cn, [WANTED, POLITICAL, STOLEN])
        assert fed.sync("RU", "CN").ok
        assert [h.category for h in hits(ru, POLITICAL)] == ["political"]
        assert entries(ru, "CN") == 3

        acceptance.set_policy(ru, "CN", DECLINE)
        # At once, before any sync: the declined listing is withheld, the
        # mapping applies (no resync).
        assert hits(ru, POLITICAL) == ()
        (hit,) = hits(ru, WANTED)
        assert (hit.requested_action, hit.local_action) == ("arrest", "refer-to-supervisor")
        assert "acceptance policy for CN maps arrest" in hit.rule
        assert hit.action == "arrest"  # the origin's field is unchanged
        (stolen,) = hits(ru, STOLEN)
        assert stolen.local_action == "seize-document" and "no local mapping" in stolen.rule

        assert fed.sync("RU", "CN").ok
        assert entries(ru, "CN") == 2  # the removal came with the same sync
        (received,) = log_of(cn, "acceptance.received")
        assert received["peer"] == "RU" and received["decline"] == ["political"]
        assert received["removed"] == 1 and received["version"] == ru.now()
        (change,) = log_of(ru, "acceptance.change")
        assert change["peer"] == "CN" and json.loads(change["policy"])["decline"] == ["political"]
        (confirmed,) = log_of(ru, "acceptance.confirmed")
        assert confirmed["removed"] == 1 and confirmed["version"] == received["version"]
        withheld = log_of(ru, "lookup")
        assert any(e.get("withheld") == ["CN:CN-2"] for e in withheld)
        # what an auditor reads of both logs
        (_, ours) = acceptance_lines(all_of(ru))
        assert ours.startswith("    of CN's list this node holds: declines: political; maps")
        assert "CN applied it, removed 1" in ours
        (_, theirs) = acceptance_lines(all_of(cn))
        assert "RU declared it holds of this node's list: declines: political" in theirs
        flags: list[str] = []
        line = reconcile_acceptance("CN", all_of(cn), "RU", all_of(ru), flags.append, flags.append)
        assert not flags and "1 confirmations matched" in line

        # CN lists another political case: RU never receives it, even when
        # CN widens its own sharing policy.
        ownlist.import_records(cn, [record("CN-4", category="political")])
        origin.set_policy(cn, "RU", SharingPolicy.make(categories=["wanted", "political"]))
        origin.set_policy(cn, "RU", SharingPolicy())
        assert fed.sync("RU", "CN").ok
        assert entries(ru, "CN") == 2
        assert hits(ru, record("CN-4", category="political")) == ()
        assert fed.sync("RU", "CN").ok  # nothing pending: no declaration sent again
        assert len(log_of(cn, "acceptance.received")) == 1

        # Accepting again: CN sends what RU now holds.
        acceptance.set_policy(ru, "CN", AcceptancePolicy())
        assert fed.sync("RU", "CN").ok
        assert entries(ru, "CN") == 4
        assert [h.local_action for h in hits(ru, POLITICAL)] == ["arrest"]
        assert log_of(cn, "acceptance.received")[-1]["added"] == 2
    finally:
        factory.cleanup()


def test_a_snapshot_leaves_declined_categories_out(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [WANTED, POLITICAL])
    acceptance.set_policy(ru, "CN", DECLINE)  # before RU ever pulled: first sync is a snapshot
    report = fed.sync("RU", "CN")
    assert report.ok and report.snapshot_entries == 1
    assert hits(ru, POLITICAL) == () and entries(ru, "CN") == 1


def test_the_officer_sees_both_actions_over_grpc(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [WANTED])
    ownlist.import_records(ru, [record("RU-1")])
    acceptance.set_policy(ru, "CN", AcceptancePolicy.make(actions={"*": "inform-only"}))
    assert fed.sync("RU", "CN").ok
    stub = lookup_pb2_grpc.LookupStub(fed.channel("RU"))
    doc = WANTED.documents[0]
    person = lookup_pb2.Person(
        documents=[lookup_pb2.Document(type=doc.type, country=doc.country, number=doc.number)]
    )
    response = stub.Check(lookup_pb2.CheckRequest(person=person, purpose="border-check"))
    (hit,) = [hit_from_pb(h) for h in response.hits]
    assert (hit.origin, hit.requested_action, hit.local_action) == ("CN", "arrest", "inform-only")
    assert "every action (arrest)" in hit.rule
    (own,) = hits(ru, record("RU-1"))
    assert (own.local_action, own.rule) == ("arrest", "own list")


def test_policy_changes_while_the_origin_lists_and_the_peer_syncs(
    federation: FederationMaker,
) -> None:
    """CN keeps listing political and wanted cases while RU declines political
    and syncs: in the end RU holds every wanted listing and no political one."""
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [WANTED, POLITICAL])
    assert fed.sync("RU", "CN").ok
    stop = threading.Event()
    made: list[Record] = []
    errors: list[BaseException] = []

    def lister() -> None:
        try:
            for i in range(30):
                if stop.is_set():
                    return
                batch = [
                    record(f"CN-P{i}", category="political"),
                    record(f"CN-W{i}", category="wanted"),
                ]
                ownlist.import_records(cn, batch)
                made.extend(batch)
        except BaseException as exc:
            errors.append(exc)

    def syncer() -> None:
        try:
            while not stop.is_set():
                fed.sync("RU", "CN")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lister), threading.Thread(target=syncer)]
    for thread in threads:
        thread.start()
    acceptance.set_policy(ru, "CN", DECLINE)
    threads[0].join(timeout=60)
    stop.set()
    threads[1].join(timeout=60)
    assert not errors, errors
    assert fed.sync("RU", "CN").ok
    assert fed.sync("RU", "CN").ok
    political = [r for r in made if r.category == "political"] + [POLITICAL]
    wanted = [r for r in made if r.category == "wanted"] + [WANTED]
    assert entries(ru, "CN") == len(wanted)
    assert all(hits(ru, r) == () for r in political[:5])
    assert all(len(hits(ru, r)) == 1 for r in wanted[:5])
    with ru.store.read() as tx:
        row = tx.get_acceptance("CN", AcceptanceSide.LOCAL)
        assert row is not None and row.delivered == row.version


def _declaration(node: Node, to: str, version: int, decline: frozenset[str], **kw: Any) -> Any:
    fields: dict[str, Any] = {
        "requester": node.node_id,
        "origin": to,
        "version": version,
        "accept": None,
        "decline": decline,
        "issued_at": node.now(),
        "nonce": node.rng(16),
    }
    fields.update(kw)
    payload = encode_declaration(Declaration(**fields))
    return sign_message(
        payload, Purpose.ACCEPTANCE, signer=node.node_id, key=node.signing_key, recipient=to
    )


def test_declarations_that_do_not_apply_change_nothing(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU", "AR"])
    cn, ru, ar = fed["CN"].node, fed["RU"].node, fed["AR"].node
    ownlist.import_records(cn, [WANTED, POLITICAL])
    assert fed.sync("RU", "CN").ok
    political = frozenset({"political"})
    applied = origin_acceptance.receive(cn, _declaration(ru, "CN", 2, political))
    assert (applied.version, applied.removed) == (2, 1)
    # a retry of the same version, and a delayed older one: answered, nothing changes
    assert origin_acceptance.receive(cn, _declaration(ru, "CN", 2, political)).removed == 0
    assert origin_acceptance.receive(cn, _declaration(ru, "CN", 1, frozenset())).version == 2
    assert len(log_of(cn, "acceptance.received")) == 1
    refused = [
        (_declaration(ru, "CN", 2, frozenset()), RejectReason.ROLLBACK),
        (_declaration(ru, "AR", 3, frozenset()), RejectReason.WRONG_RECIPIENT),
        (_declaration(ru, "CN", 3, frozenset(), requester="AR"), RejectReason.WRONG_SENDER),
        (
            _declaration(ru, "CN", 3, frozenset(), issued_at=ru.now() - 3600),
            RejectReason.STALE_REQUEST,
        ),
        (
            sign_message(b"x", Purpose.PULL, signer="RU", key=ru.signing_key, recipient="CN"),
            RejectReason.MALFORMED,
        ),
    ]
    for request, reason in refused:
        with pytest.raises(Rejection) as rejection:
            origin_acceptance.receive(cn, request)
        assert rejection.value.reason is reason
    assert len(log_of(cn, "acceptance.received")) == 1
    assert [e["reason"] for e in log_of(cn, "rejected")] == [r.value for _, r in refused]
    with cn.store.read() as tx:
        row = tx.get_acceptance("RU", AcceptanceSide.DECLARED)
        assert row is not None and row.version == 2
    # AR signs for RU's stream: its declaration only ever speaks for AR
    assert origin_acceptance.receive(cn, _declaration(ar, "CN", 1, political)).version == 1
    with cn.store.read() as tx:
        assert tx.get_acceptance("RU", AcceptanceSide.DECLARED) == row


def test_a_policy_for_an_unknown_peer_is_refused(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    with pytest.raises(NotFound, match="peer add"):
        acceptance.set_policy(fed["RU"].node, "XX", DECLINE)


def test_a_withheld_hit_proves_nothing_for_a_detail_request(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [POLITICAL])
    assert fed.sync("RU", "CN").ok
    acceptance.set_policy(ru, "CN", DECLINE)
    lookup = Lookup(ru)
    assert lookup.check(query(POLITICAL), caller="officer-1") == ()
    assert lookup.hits.recall("officer-1", "CN", "CN-2", ru.now()) is None
    assert lookup.hits.origins("officer-1", "CN-2", ru.now()) == []


def test_an_origin_without_declarations_still_serves_the_pull(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older origin answers UNIMPLEMENTED: the pull goes on, the policy
    stays pending, and lookups still withhold the declined category."""
    from wlx.node.rpc.server import FederationServicer
    from wlx.v1 import federation_pb2_grpc

    monkeypatch.setattr(
        FederationServicer,
        "DeclareAcceptance",
        federation_pb2_grpc.FederationServicer.DeclareAcceptance,
    )
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [WANTED, POLITICAL])
    acceptance.set_policy(ru, "CN", DECLINE)
    assert fed.sync("RU", "CN").ok
    assert entries(ru, "CN") == 2  # CN sent it, not knowing
    assert hits(ru, POLITICAL) == ()
    with ru.store.read() as tx:
        row = tx.get_acceptance("CN", AcceptanceSide.LOCAL)
        assert row is not None and row.delivered == 0


def test_an_operator_sets_the_policy_over_the_admin_service(federation: FederationMaker) -> None:
    import grpc

    from wlx.v1 import admin_pb2, admin_pb2_grpc

    fed = federation(["CN", "RU"])
    ru = fed["RU"].node
    admin = admin_pb2_grpc.AdminStub(fed.channel("RU", role="operator"))
    state = admin.GetAcceptance(admin_pb2.GetAcceptanceRequest(peer="CN"))
    assert (state.version, state.description) == (0, "accepts everything, origin's actions")
    state = admin.SetAcceptance(
        admin_pb2.SetAcceptanceRequest(
            peer="CN", preset="inform-only", decline=["political"], actions={"locate": "notify"}
        )
    )
    assert state.version == ru.now() and state.applied_by_origin == 0
    assert json.loads(state.policy) == {
        "actions": {"*": "inform-only", "locate": "notify"},
        "decline": ["political"],
    }
    assert (
        log_of(ru, "acceptance.change")[-1]["how"] == "preset inform-only, over the Admin service"
    )
    for request, code in [
        (admin_pb2.SetAcceptanceRequest(peer="XX"), grpc.StatusCode.NOT_FOUND),
        (admin_pb2.SetAcceptanceRequest(peer="CN", preset="x"), grpc.StatusCode.INVALID_ARGUMENT),
        (
            admin_pb2.SetAcceptanceRequest(peer="CN", decline=["Not/A/Term"]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            admin.SetAcceptance(request)
        assert refused.value.code() is code
    assert admin.GetAcceptance(admin_pb2.GetAcceptanceRequest(peer="CN")).version == state.version
    officer = admin_pb2_grpc.AdminStub(fed.channel("RU", role="officer"))
    with pytest.raises(grpc.RpcError) as denied:
        officer.SetAcceptance(admin_pb2.SetAcceptanceRequest(peer="CN"))
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_the_audit_report_shows_acceptance_per_origin_and_peer(
    federation: FederationMaker,
) -> None:
    from support.audit import bundle_of, keyring

    from wlx.node.audit.offline.html_report import render
    from wlx.node.audit.offline.summary import summarise
    from wlx.node.audit.offline.verify import verify_bundle
    from wlx.node.rpc.cosign import checkpoint_round

    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [WANTED, POLITICAL])
    assert fed.sync("RU", "CN").ok
    acceptance.set_policy(ru, "CN", DECLINE)
    assert fed.sync("RU", "CN").ok
    for node in (cn, ru):
        checkpoint_round(node)
    ring = keyring(fed, ["CN", "RU"])
    verified = [verify_bundle(bundle_of(fed, n), ring, min_cosigners=0) for n in ("CN", "RU")]
    summary = summarise(verified)
    rows = [line for node, line in summary.acceptance if node == "RU"]
    assert any("of CN's list this node holds: declines: political" in r for r in rows)
    assert any("CN applied it, removed 1" in r for r in rows)
    assert any("RU declared it holds" in line for node, line in summary.acceptance if node == "CN")
    page = render(summary, generated=1_800_000_000, sources=["a", "b"])
    assert 'id="acceptance"' in page and "declines: political" in page
