"""Acceptance decisions (issue 16): tables of the pure functions of
``protocol/acceptance_rules`` and of the policy type of ``core/acceptance``."""

from __future__ import annotations

import pytest
from support.nodes import record

from wlx.node.audit.offline.acceptance import reconcile_acceptance
from wlx.node.core.acceptance import AcceptancePolicy, parse_mapping, preset
from wlx.node.core.errors import Rejection, RejectReason, UserError
from wlx.node.core.policy import SharingPolicy
from wlx.node.protocol.acceptance_rules import (
    Declaration,
    Effect,
    LocalDecision,
    Outcome,
    PeerFilter,
    change_of,
    check_declaration,
    decode_declaration,
    encode_declaration,
    local_decision,
)
from wlx.v1 import federation_pb2

ALL = AcceptancePolicy()
NO_POLITICAL = AcceptancePolicy.make(decline=["political"])
ONLY_WANTED = AcceptancePolicy.make(accept=["wanted", "missing"])
MAPPED = AcceptancePolicy.make(actions={"arrest": "refer-to-supervisor", "*": "inform-only"})
ARREST_ONLY = AcceptancePolicy.make(actions={"arrest": "refer-to-supervisor"})
ANY_ONLY = AcceptancePolicy.make(actions={"*": "inform-only"})
DECLINE_AND_MAP = AcceptancePolicy.make(
    decline=["exit-ban"], actions={"arrest": "refer-to-supervisor"}
)


# ---------------------------------------------------------------- local action

LOCAL = [
    # (policy, category, action, suspended, local action, words of the rule)
    (None, "wanted", "arrest", False, "arrest", "own list"),
    (ALL, "wanted", "arrest", False, "arrest", "no local mapping"),
    (ARREST_ONLY, "wanted", "arrest", False, "refer-to-supervisor", "maps arrest to"),
    (ARREST_ONLY, "missing", "locate", False, "locate", "no local mapping"),
    (ANY_ONLY, "wanted", "arrest", False, "inform-only", "every action (arrest)"),
    (MAPPED, "wanted", "arrest", False, "refer-to-supervisor", "maps arrest"),  # name beats *
    (MAPPED, "stolen-document", "seize-document", False, "inform-only", "every action"),
    (MAPPED, "wanted", "", True, "", "suspended by CN"),
    (ALL, "wanted", "", True, "", "no action requested"),
    (NO_POLITICAL, "wanted", "arrest", False, "arrest", "no local mapping"),
    (ONLY_WANTED, "missing", "locate", False, "locate", "no local mapping"),
    (DECLINE_AND_MAP, "wanted", "arrest", False, "refer-to-supervisor", "policy for CN"),
]
WITHHELD = [
    (NO_POLITICAL, "political", "arrest", False),
    (NO_POLITICAL, "political", "", True),  # suspended or not: never shown
    (ONLY_WANTED, "stolen-document", "seize-document", False),
    (DECLINE_AND_MAP, "exit-ban", "refuse-exit", False),
    (AcceptancePolicy.make(accept=[]), "wanted", "arrest", False),  # accepts nothing
]


@pytest.mark.parametrize(("policy", "category", "action", "suspended", "local", "why"), LOCAL)
def test_the_local_action_and_its_reason(
    policy: AcceptancePolicy | None,
    category: str,
    action: str,
    suspended: bool,
    local: str,
    why: str,
) -> None:
    decision = local_decision(
        policy, origin="CN", category=category, action=action, suspended=suspended
    )
    assert isinstance(decision, LocalDecision)
    assert decision.local_action == local
    assert why in decision.rule


@pytest.mark.parametrize(("policy", "category", "action", "suspended"), WITHHELD)
def test_a_declined_category_is_withheld(
    policy: AcceptancePolicy, category: str, action: str, suspended: bool
) -> None:
    assert (
        local_decision(policy, origin="CN", category=category, action=action, suspended=suspended)
        is None
    )


# ---------------------------------------------------------------- origin filter

WANTED = record("R-1")
POLITICAL = record("R-2", category="political", action="arrest")
STOLEN = record("R-3", category="stolen-document", action="seize-document")
EVERYTHING = PeerFilter(SharingPolicy(), ALL)
DECLINES_POLITICAL = PeerFilter(SharingPolicy(), NO_POLITICAL)
SHARES_WANTED = PeerFilter(SharingPolicy.make(categories=["wanted"]), ALL)
SHARES_WANTED_POLITICAL = PeerFilter(SharingPolicy.make(categories=["wanted", "political"]), ALL)

FILTER = [
    (EVERYTHING, WANTED, True),
    (EVERYTHING, POLITICAL, True),
    (DECLINES_POLITICAL, WANTED, True),
    (DECLINES_POLITICAL, POLITICAL, False),
    (PeerFilter(SharingPolicy(), ONLY_WANTED), STOLEN, False),
    (PeerFilter(SharingPolicy(), ONLY_WANTED), WANTED, True),
    (SHARES_WANTED, POLITICAL, False),  # the origin's own policy still applies
    (PeerFilter(SharingPolicy.make(categories=["political"]), NO_POLITICAL), POLITICAL, False),
    (PeerFilter(SharingPolicy.make(exclude=["R-1"]), ALL), WANTED, False),
]


@pytest.mark.parametrize(("peer_filter", "rec", "sent"), FILTER)
def test_the_origin_sends_what_it_shares_and_the_peer_holds(
    peer_filter: PeerFilter, rec: object, sent: bool
) -> None:
    assert peer_filter.allows(rec) is sent  # type: ignore[arg-type]


CHANGES = [
    # (old, new, record, expired, effect)
    (EVERYTHING, DECLINES_POLITICAL, POLITICAL, False, Effect.REMOVE),
    (EVERYTHING, DECLINES_POLITICAL, POLITICAL, True, Effect.REMOVE),  # held until purged
    (EVERYTHING, DECLINES_POLITICAL, WANTED, False, Effect.KEEP),
    (DECLINES_POLITICAL, EVERYTHING, POLITICAL, False, Effect.ADD),  # accepted again
    (DECLINES_POLITICAL, EVERYTHING, POLITICAL, True, Effect.KEEP),  # expired: not sent
    (SHARES_WANTED, DECLINES_POLITICAL, POLITICAL, False, Effect.KEEP),  # never sent
    (SHARES_WANTED_POLITICAL, SHARES_WANTED, POLITICAL, False, Effect.REMOVE),
    (
        PeerFilter(SharingPolicy.make(categories=["wanted"]), NO_POLITICAL),
        PeerFilter(SharingPolicy(), NO_POLITICAL),
        POLITICAL,
        False,
        Effect.KEEP,  # widening the sharing policy never sends a declined category
    ),
    (EVERYTHING, EVERYTHING, WANTED, False, Effect.KEEP),
    (  # its tier changes (online, §15.1): sent again
        EVERYTHING,
        PeerFilter(SharingPolicy.make(online_categories=["wanted"]), ALL),
        WANTED,
        False,
        Effect.ADD,
    ),
    (  # ... unless the peer declines the category
        DECLINES_POLITICAL,
        PeerFilter(SharingPolicy.make(online_categories=["political"]), NO_POLITICAL),
        POLITICAL,
        False,
        Effect.KEEP,
    ),
]


@pytest.mark.parametrize(("old", "new", "rec", "expired", "effect"), CHANGES)
def test_what_a_change_sends(
    old: PeerFilter, new: PeerFilter, rec: object, expired: bool, effect: Effect
) -> None:
    assert change_of(rec, expired=expired, old=old, new=new) is effect  # type: ignore[arg-type]


# ---------------------------------------------------------------- declarations


def decl(version: int = 2, **kw: object) -> Declaration:
    fields: dict[str, object] = {
        "requester": "RU",
        "origin": "CN",
        "version": version,
        "accept": None,
        "decline": frozenset({"political"}),
        "issued_at": 1_800_000_000,
        "nonce": b"\x07" * 16,
    }
    fields.update(kw)
    return Declaration(**fields)  # type: ignore[arg-type]


HELD = (2, NO_POLITICAL)
OUTCOMES = [
    (decl(1), None, Outcome.APPLY),
    (decl(3, decline=frozenset()), HELD, Outcome.APPLY),
    (decl(2), HELD, Outcome.REPEAT),  # a retry after a lost answer
    (decl(1, decline=frozenset()), HELD, Outcome.SUPERSEDED),  # delayed or replayed
]
REFUSALS = [
    (decl(requester="AR"), None, RejectReason.WRONG_SENDER),
    (decl(origin="AR"), None, RejectReason.WRONG_RECIPIENT),
    (decl(2, decline=frozenset()), HELD, RejectReason.ROLLBACK),
]


@pytest.mark.parametrize(("declaration", "held", "outcome"), OUTCOMES)
def test_what_the_origin_does_with_a_declaration(
    declaration: Declaration, held: tuple[int, AcceptancePolicy] | None, outcome: Outcome
) -> None:
    assert check_declaration(declaration, signer="RU", me="CN", held=held) is outcome


@pytest.mark.parametrize(("declaration", "held", "reason"), REFUSALS)
def test_a_declaration_for_other_parties_or_a_reused_version_is_refused(
    declaration: Declaration, held: tuple[int, AcceptancePolicy] | None, reason: RejectReason
) -> None:
    with pytest.raises(Rejection) as refused:
        check_declaration(declaration, signer="RU", me="CN", held=held)
    assert refused.value.reason is reason


@pytest.mark.parametrize(
    "declaration",
    [decl(), decl(accept=frozenset({"wanted"}), decline=frozenset()), decl(accept=frozenset())],
)
def test_a_declaration_round_trips(declaration: Declaration) -> None:
    assert decode_declaration(encode_declaration(declaration)) == declaration


def _params(**kw: object) -> bytes:
    fields: dict[str, object] = {
        "requester": "RU",
        "origin": "CN",
        "version": 1,
        "issued_at": 1,
        "nonce": b"\x01" * 16,
    }
    fields.update(kw)
    return federation_pb2.AcceptanceParams(**fields).SerializeToString()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xff", RejectReason.MALFORMED),
        (_params(nonce=b"short"), RejectReason.MALFORMED),
        (_params(version=0), RejectReason.MALFORMED),
        (_params(decline=["Not A Term"]), RejectReason.MALFORMED),
        (_params(accept=["wanted"]), RejectReason.MALFORMED),  # without accept_listed
        (_params(decline=[f"c{i}" for i in range(1001)]), RejectReason.TOO_LARGE),
    ],
)
def test_a_malformed_declaration_is_refused(payload: bytes, reason: RejectReason) -> None:
    with pytest.raises(Rejection) as refused:
        decode_declaration(payload)
    assert refused.value.reason is reason


# ---------------------------------------------------------------- the policy type


def test_a_policy_round_trips_and_normalises_terms() -> None:
    policy = AcceptancePolicy.make(
        accept=["Wanted", "missing person"],
        decline=["political"],
        actions={"Arrest": "Refer To Supervisor", "*": "inform-only"},
    )
    assert policy.accept == frozenset({"wanted", "missing-person"})
    assert policy.actions == {"*": "inform-only", "arrest": "refer-to-supervisor"}
    assert AcceptancePolicy.from_json(policy.to_json()) == policy
    assert AcceptancePolicy.from_json("{}") == ALL
    assert ALL.describe() == "accepts everything, origin's actions"
    assert "declines: political" in policy.describe()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: AcceptancePolicy.make(accept=["wanted"], decline=["wanted"]), "both"),
        (lambda: AcceptancePolicy.make(decline=["no/slash"]), "short term"),
        (lambda: AcceptancePolicy.make(actions={"arrest": ""}), "short term"),
        (lambda: AcceptancePolicy.from_json("[1]"), "accept, decline and actions"),
        (lambda: AcceptancePolicy.from_json("{"), "not valid JSON"),
        (lambda: AcceptancePolicy.from_json('{"decline": "x"}'), "list of categories"),
        (lambda: parse_mapping(["arrest"]), "ACTION=LOCAL"),
        (lambda: parse_mapping(["arrest=a", "arrest=b"]), "mapped twice"),
        (lambda: preset("nope"), "choose one of"),
    ],
)
def test_a_bad_policy_is_a_user_error_saying_what_to_do(make: object, words: str) -> None:
    with pytest.raises(UserError, match=words):
        make()  # type: ignore[operator]


def test_presets_are_explicit_policies() -> None:
    assert preset("accept-all") == ALL
    assert preset("inform-only").actions == {"*": "inform-only"}
    assert not preset("no-exit-or-political").holds("political")


# ---------------------------------------------------------------- reconciling logs


def _e(kind: str, time: int, **fields: object) -> dict[str, object]:
    return {"kind": kind, "time": time, "idx": 0, **fields}


CHANGE = _e("acceptance.change", 100, peer="CN", version=100)
CONFIRMED = _e("acceptance.confirmed", 110, peer="CN", version=100, removed=1, added=0)
RECEIVED = _e("acceptance.received", 105, peer="RU", version=100, removed=1, added=0)
LATER_O = _e("lookup", 5_000)
LATER_R = _e("lookup", 5_000)

RECONCILE = [
    # (origin's entries, receiver's entries, discrepancies, pending)
    ([RECEIVED], [CHANGE, CONFIRMED], 0, 0),
    ([], [CHANGE], 0, 0),  # not yet delivered: nothing to match
    ([LATER_O], [CHANGE, CONFIRMED], 1, 0),  # confirmed, but CN never received it
    ([], [CHANGE, CONFIRMED], 0, 1),  # CN's bundle is older
    ([{**RECEIVED, "removed": 0}], [CHANGE, CONFIRMED], 1, 0),  # counts differ
    ([RECEIVED], [LATER_R], 1, 0),  # CN applied a version RU never decided
    ([RECEIVED], [], 0, 1),  # RU's bundle is older
]


@pytest.mark.parametrize(("o", "r", "flagged", "waiting"), RECONCILE)
def test_reconciling_acceptance_across_two_logs(
    o: list[dict[str, object]], r: list[dict[str, object]], flagged: int, waiting: int
) -> None:
    flags: list[str] = []
    waits: list[str] = []
    line = reconcile_acceptance("CN", o, "RU", r, flags.append, waits.append)
    assert (len(flags), len(waits)) == (flagged, waiting), (flags, waits)
    assert line.startswith("acceptance: ")
