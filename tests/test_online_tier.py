"""The online tier across real nodes (docs/protocol.md §15): an online listing
hits only through the origin's Evaluate, is reported "not checked" while the
origin is unreachable, is budgeted exactly, and leaves counts in both logs."""

from __future__ import annotations

import json
import logging

import pytest
from support.nodes import Federation, FederationMaker, StorageFactory, record
from test_rejections import query_rows

from wlx.crypto.normalize import record_keys
from wlx.node import detail
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.policy import SharingPolicy
from wlx.node.incoming import online
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import evaluate as origin_eval
from wlx.node.outgoing import origin, ownlist
from wlx.node.protocol.messages import SignedRequest, TokenEntry, Upsert
from wlx.node.rpc.evaluate_client import evaluate_sender
from wlx.node.rpc.server import detail_sender

QUERY = Query(names=("Test Person CN 1",), dob="1980-05-17")
QUERY_KEYS = len({k.value for k in QUERY.keys()})  # noqa: SIM118 - Query.keys, not a dict
"""Distinct identifier keys of QUERY: what one lookup asks an origin to evaluate."""


def lookup(fed: Federation, at: str) -> Lookup:
    finder = Lookup(fed[at].node)
    finder.evaluate_send = evaluate_sender(fed[at].node)
    return finder


def entries(fed: Federation, at: str, kind: Event) -> list[dict[str, object]]:
    with fed[at].node.store.read() as tx:
        raw = [e for _, e in tx.audit_entries(0, 1_000_000)]
    found = [json.loads(e) for e in raw]
    return [e for e in found if e["kind"] == kind.value]


def online_fed(federation: FederationMaker, storage: StorageFactory | None = None) -> Federation:
    fed = federation(["CN", "RU"], storage=storage)
    ownlist.import_records(fed["CN"].node, [record("CN-1", tier="online"), record("CN-2")])
    fed.sync_all()
    return fed


def test_an_online_listing_hits_through_the_origin_and_not_offline(
    federation: FederationMaker,
) -> None:
    fed = online_fed(federation)
    ru = fed["RU"].node
    (hit,) = lookup(fed, "RU").check(QUERY)
    assert (hit.origin, hit.ref, hit.matched_on) == ("CN", "CN-1", "name+dob")
    # The offline tier still works for the other listing.
    assert [
        h.ref for h in lookup(fed, "RU").check(Query(names=("Test Person CN 2",), dob="1980-05-17"))
    ] == ["CN-2"]
    # RU's epoch key computes no token of the online listing: no offline match.
    with ru.store.read() as tx:
        state = tx.get_inbound("CN")
        assert state is not None
        version = normalisation.of_epoch(tx, "CN", "RU", state.epoch)
        key = ru.epoch_key("CN", "RU", state.epoch, state.token_key)
        keys = [k.value for k in record_keys(["Test Person CN 1"], "1980-05-17", [], version)]
        assert keys and tx.find_tokens("CN", [key.token(k) for k in keys]) == []
        offline = [k.value for k in record_keys(["Test Person CN 2"], "1980-05-17", [], version)]
        assert tx.find_tokens("CN", [key.token(k) for k in offline])  # the check can see tokens
    # Both sides logged the evaluation as counts: every distinct key of the query, no more.
    other = Query(names=("Test Person CN 2",), dob="1980-05-17")
    asked = len({k.value for k in other.keys()})  # noqa: SIM118 - Query.keys, not a dict
    (out,) = entries(fed, "RU", Event.EVALUATE_OUT)[-1:]
    assert out["origin"] == "CN" and out["outcome"] == "evaluated" and out["elements"] == asked
    inn = entries(fed, "CN", Event.EVALUATE_IN)[-1]
    assert inn["peer"] == "RU" and inn["outcome"] == "evaluated" and inn["elements"] == asked
    assert out["request"] == inn["request"]
    assert "Test" not in json.dumps(entries(fed, "CN", Event.EVALUATE_IN))


def test_origin_unreachable_is_reported_not_a_silent_miss(federation: FederationMaker) -> None:
    fed = online_fed(federation)
    fed["CN"].server.stop(grace=None)
    result = lookup(fed, "RU").screen([QUERY, Query(names=("Test Person CN 2",), dob="1980-05-17")])
    assert result[0].hits == () and result[0].not_checked == (("CN", "origin unreachable"),)
    # Offline listings are still matched locally.
    assert [h.ref for h in result[1].hits] == ["CN-2"]
    (out,) = entries(fed, "RU", Event.EVALUATE_OUT)[-1:]
    assert out["outcome"] == "unreachable"
    looked = entries(fed, "RU", Event.LOOKUP)[-1]
    assert looked["online_not_checked"] == ["CN"]


def test_an_origin_without_online_listings_is_never_asked(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    fed["CN"].server.stop(grace=None)
    result = lookup(fed, "RU").screen([QUERY])
    assert [h.ref for h in result[0].hits] == ["CN-1"] and result[0].not_checked == ()
    assert entries(fed, "RU", Event.EVALUATE_OUT) == []


def test_the_budget_is_exact_and_refusal_is_reported(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = online_fed(federation, backend)
    cn = fed["CN"].node
    send = evaluate_sender(fed["RU"].node)

    per_query = QUERY_KEYS
    budget = per_query * 2 - 1

    def budget_of_five(origin_id: str, signed: SignedRequest) -> SignedRequest:
        return (
            origin_eval.evaluate(cn, signed, budget=budget)
            if origin_id == "CN"
            else send(origin_id, signed)
        )

    finder = lookup(fed, "RU")
    finder.evaluate_send = budget_of_five
    assert [h.ref for h in finder.check(QUERY)] == ["CN-1"]  # per_query evaluations
    result = finder.screen([QUERY])  # as many again would be over the budget: refused whole
    assert result[0].hits == () and result[0].not_checked == (
        ("CN", "evaluation budget exhausted"),
    )
    with cn.store.read() as tx:
        assert origin_eval.charged_today(tx, "RU", cn.now()) == per_query
    outcomes = [e["outcome"] for e in entries(fed, "CN", Event.EVALUATE_IN)]
    assert outcomes == ["evaluated", "quota"]


def test_an_origin_evaluating_under_another_key_is_caught(federation: FederationMaker) -> None:
    fed = online_fed(federation)
    cn = fed["CN"].node
    from wlx.crypto.signing import Purpose
    from wlx.node.protocol import online as proto
    from wlx.node.protocol.envelopes import sign_message

    def lying_origin(origin_id: str, signed: SignedRequest) -> SignedRequest:
        params = proto.decode_evaluate_params(signed.payload)
        wrong = origin_eval.online_key(cn, "RU", params.epoch + 1)
        answer = proto.answer_evaluate(
            params, signed.payload, origin_eval.online_key(cn, "RU", params.epoch), now=cn.now()
        )
        evaluation = wrong.evaluate(params.blinded)
        forged = proto.EvaluateAnswer(
            answer.origin,
            answer.recipient,
            answer.epoch,
            answer.request_digest,
            evaluation.elements,
            evaluation.proof,
            answer.answered_at,
        )
        return sign_message(
            proto.encode_evaluate_answer(forged),
            Purpose.EVALUATE_ANSWER,
            signer="CN",
            key=cn.signing_key,
            recipient="RU",
        )

    finder = lookup(fed, "RU")
    finder.evaluate_send = lying_origin
    result = finder.screen([QUERY])
    assert result[0].hits == () and result[0].not_checked == (("CN", "invalid answer"),)
    rejected = entries(fed, "RU", Event.REJECTED)[-1]
    assert rejected["origin"] == "CN" and rejected["reason"] == "bad-proof"


def test_policy_default_and_tier_change_travel_as_changes(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1")])
    fed.sync_all()
    origin.set_policy(cn, "RU", SharingPolicy.make(online_categories=["wanted"]))
    fed.sync("RU", "CN")
    with fed["RU"].node.store.read() as tx:
        state = tx.get_inbound("CN")
        assert state is not None and online.holds_online(tx, "CN", state.epoch)
    finder = lookup(fed, "RU")
    assert [h.ref for h in finder.check(QUERY)] == ["CN-1"]
    assert len(entries(fed, "CN", Event.EVALUATE_IN)) == 1
    # A record's own tier wins over the category default.
    ownlist.import_records(cn, [record("CN-1", tier="offline")])
    fed.sync("RU", "CN")
    fed["CN"].server.stop(grace=None)
    result = finder.screen([QUERY])
    assert [h.ref for h in result[0].hits] == ["CN-1"]  # matched offline
    # (the origin is still asked this epoch: it once carried an online listing)
    assert result[0].not_checked == (("CN", "origin unreachable"),)


def test_an_online_hit_can_be_proved_in_a_detail_request(federation: FederationMaker) -> None:
    fed = online_fed(federation)
    finder = lookup(fed, "RU")
    (hit,) = finder.check(QUERY, caller="officer-1")
    seal_key = finder.hits.recall("officer-1", "CN", hit.ref, fed["RU"].node.now())
    assert seal_key is not None
    outcome = detail.request(
        fed["RU"].node,
        origin="CN",
        ref="CN-1",
        purpose="border check",
        case_id="",
        officer="officer-1",
        seal_key=seal_key,
        send=detail_sender(fed["RU"].node),
    )
    assert outcome.granted


@pytest.mark.parametrize("tier", ["sometimes", "ONLINE "])
def test_record_tier_values(tier: str) -> None:
    if tier.strip().lower() == "online":
        assert record("X-1", tier=tier).tier == "online"
    else:
        with pytest.raises(Exception, match="tier"):
            record("X-1", tier=tier)


def test_not_checked_reaches_the_officer_over_grpc(federation: FederationMaker) -> None:
    from wlx.node.rpc.wire import query_to_pb
    from wlx.v1 import lookup_pb2, lookup_pb2_grpc

    fed = online_fed(federation)
    stub = lookup_pb2_grpc.LookupStub(fed.channel("RU"))
    request = lookup_pb2.CheckRequest(person=query_to_pb(QUERY), purpose="border-check")
    response = stub.Check(request, timeout=30)
    assert [h.ref for h in response.hits] == ["CN-1"] and not response.not_checked
    fed["CN"].server.stop(grace=None)
    response = stub.Check(request, timeout=30)
    assert not response.hits
    assert [(n.origin, n.reason) for n in response.not_checked] == [("CN", "origin unreachable")]
    screened = stub.Screen(
        lookup_pb2.ScreenRequest(
            entries=[lookup_pb2.ScreenEntry(id="seat-1", person=query_to_pb(QUERY))],
            purpose="manifest",
        ),
        timeout=30,
    )
    (result,) = screened.results
    assert [(n.origin, n.reason) for n in result.not_checked] == [("CN", "origin unreachable")]


def test_auditors_see_each_peers_evaluation_volume(federation: FederationMaker) -> None:
    from wlx.node.audit.offline.verify import evaluation_volume

    fed = online_fed(federation)
    lookup(fed, "RU").check(QUERY)
    lookup(fed, "RU").check(QUERY)
    day = "2027-01-15"  # the FakeClock's day
    assert evaluation_volume(entries(fed, "CN", Event.EVALUATE_IN)) == [
        f"  online tier: {day} evaluated for RU: {2 * QUERY_KEYS} (0 not evaluated)"
    ]
    assert evaluation_volume(entries(fed, "RU", Event.EVALUATE_OUT)) == [
        f"  online tier: {day} evaluations by CN: {2 * QUERY_KEYS} (0 not evaluated)"
    ]


def test_cli_sets_online_categories(federation: FederationMaker) -> None:
    from test_cli import ok

    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    out = ok("peer", "policy", cn.paths.root, "RU", "--online-categories", "Wanted")
    assert "online tier: wanted" in out
    assert "everything; online tier: wanted" in ok("peer", "policy", cn.paths.root, "RU")
    with cn.store.read() as tx:
        row = tx.get_peer("RU")
    assert row is not None
    assert SharingPolicy.from_json(row.policy).tier(record("CN-1")) == "online"
    assert SharingPolicy.from_json(row.policy).tier(record("CN-1", tier="offline")) == "offline"


def test_a_new_epoch_at_the_origin_is_reported_until_the_peer_resyncs(
    federation: FederationMaker,
) -> None:
    from wlx.node.trust import lifecycle

    fed = online_fed(federation)
    lifecycle.new_epoch(fed["CN"].node, "RU")
    finder = lookup(fed, "RU")
    result = finder.screen([QUERY])
    assert result[0].hits == () and result[0].not_checked == (("CN", "list out of date"),)
    assert entries(fed, "CN", Event.EVALUATE_IN)[-1]["outcome"] == "stale-epoch"
    fed.sync("RU", "CN")  # the new epoch's snapshot brings the new key
    assert [h.ref for h in finder.check(QUERY)] == ["CN-1"]


def test_a_revoked_peer_gets_no_evaluation(federation: FederationMaker) -> None:
    from wlx.node.trust import lifecycle

    fed = online_fed(federation)
    lifecycle.revoke_peer(fed["CN"].node, "RU")
    result = lookup(fed, "RU").screen([QUERY])
    assert result[0].hits == ()
    assert result[0].not_checked and result[0].not_checked[0][0] == "CN"
    assert all(e["outcome"] != "evaluated" for e in entries(fed, "CN", Event.EVALUATE_IN)[1:])


def test_auditors_reconcile_evaluations_between_the_two_logs(
    federation: FederationMaker,
) -> None:
    from support.audit import bundle_of, keyring

    from wlx.node.audit.offline.reconcile import reconcile
    from wlx.node.audit.offline.verify import verify_bundle
    from wlx.node.rpc.cosign import checkpoint_round

    fed = online_fed(federation)
    finder = lookup(fed, "RU")
    finder.check(QUERY)
    finder.check(QUERY)
    for n in ("CN", "RU"):
        checkpoint_round(fed[n].node)
    ring = keyring(fed, ["CN", "RU"])
    cn = verify_bundle(bundle_of(fed, "CN"), ring)
    ru = verify_bundle(bundle_of(fed, "RU"), ring)
    result = reconcile(cn, ru)
    assert result.agree, result.discrepancies
    summary = "\n".join(result.summary)
    assert (
        f"evaluations: 2 requests by RU, 2 as CN logged; CN evaluated {2 * QUERY_KEYS} keys for RU"
        in summary
    )


def test_a_resumed_snapshot_keeps_the_committed_key_and_online_listings(
    federation: FederationMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part 0 (the key) and the online listing arrive before the connection
    drops; the rest after: the swapped-in stream still checks online listings."""
    from typing import Any

    from wlx.node.core.errors import Unavailable
    from wlx.node.protocol import outbound
    from wlx.node.rpc import sync_client as sync

    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(
        cn, [record("CN-1", tier="online")] + [record(f"CN-{n:02d}") for n in range(10, 40)]
    )
    monkeypatch.setattr(outbound, "ENTRIES_PER_PART", 10)
    fetch = sync._snapshot_parts

    def dropped(*args: Any, **kwargs: Any) -> Any:
        for n, part in enumerate(fetch(*args, **kwargs)):
            if n == 2:
                raise Unavailable("the connection dropped")
            yield part

    monkeypatch.setattr(sync, "_snapshot_parts", dropped)
    assert not fed.sync("RU", "CN").ok
    monkeypatch.setattr(sync, "_snapshot_parts", fetch)
    assert fed.sync("RU", "CN").ok
    assert [h.ref for h in lookup(fed, "RU").check(QUERY)] == ["CN-1"]


def test_a_protocol_2_row_under_an_online_token_is_skipped_not_store_damage(
    federation: FederationMaker, caplog: pytest.LogCaptureFixture
) -> None:
    """The online path opens online (protocol-1) entries only: an offline
    protocol-2 row it finds under one of its tokens (the origin's doing,
    never a damaged store) is skipped, not logged as the store's damage."""
    fed = online_fed(federation)
    ru = fed["RU"].node
    with ru.store.read() as tx:
        state = tx.get_inbound("CN")
        assert state is not None
        handle = ru.epoch_key("CN", "RU", state.epoch, state.token_key).handle("CN-1")
    (token, *_) = [
        bytes(t)
        for t, h in query_rows(ru, "SELECT token, handle FROM tokens")
        if bytes(h) == handle
    ]
    other = bytes(16)
    with ru.store.write() as tx:
        tx.apply_ops(
            "CN",
            [Upsert(other, "2099-12-31", (TokenEntry(token, b"", bytes(17)),), sealed=bytes(284))],
        )
    with caplog.at_level(logging.INFO):
        hits = lookup(fed, "RU").check(QUERY)
    assert [(h.ref, h.matched_on) for h in hits] == [("CN-1", "name+dob")]
    assert not [r for r in caplog.records if "does not open" in r.getMessage()]
