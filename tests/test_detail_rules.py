"""The detail decision (§11.3) as a table: proof first, one uniform denial,
only proven requests count, then quota, policy, life."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol.detail_rules import (
    DENIED,
    EXPIRED,
    GRANTED,
    NOT_SHARED,
    QUOTA,
    SUSPENDED,
    DetailFacts,
    check_answer,
    check_request_parties,
    decide_detail,
)
from wlx.node.protocol.messages import DetailAnswer, DetailParams


def facts(**overrides: object) -> DetailFacts:
    base: dict[str, object] = {
        "proof_holds": True,
        "shared": True,
        "expired": False,
        "suspended": False,
        "used_today": 0,
        "quota": 3,
    }
    base.update(overrides)
    return DetailFacts(**base)  # type: ignore[arg-type]


CASES = [
    # (facts, outcome, counts in the quota)
    (facts(), GRANTED, True),
    # Without a valid proof: the same answer whatever else is true, and free.
    (facts(proof_holds=False), DENIED, False),
    (facts(proof_holds=False, shared=False), DENIED, False),
    (facts(proof_holds=False, suspended=True), DENIED, False),
    (facts(proof_holds=False, expired=True), DENIED, False),
    (facts(proof_holds=False, used_today=99), DENIED, False),
    # With a proof: quota before anything about the record.
    (facts(used_today=3), QUOTA, False),
    (facts(used_today=3, shared=False, suspended=True), QUOTA, False),
    (facts(used_today=2), GRANTED, True),
    (facts(shared=False), NOT_SHARED, True),
    (facts(shared=False, suspended=True), NOT_SHARED, True),
    (facts(expired=True, suspended=True), EXPIRED, True),
    (facts(suspended=True), SUSPENDED, True),
    (facts(quota=0), QUOTA, False),
]


@pytest.mark.parametrize(("given", "outcome", "counts"), CASES)
def test_the_detail_decision(given: DetailFacts, outcome: str, counts: bool) -> None:
    decision = decide_detail(given)
    assert (decision.outcome, decision.counts) == (outcome, counts)
    assert decision.granted == (outcome == GRANTED)
    assert decision.denial == ("" if outcome == GRANTED else outcome)


REQUEST = DetailParams("RU", "CN", "R-1", "RU", "o-1", "screening", "c-1", 0, b"n" * 16)

PARTY_CASES = [
    # (requester named, origin named, signer, me, reason or None if the parties are right)
    ("RU", "CN", "RU", "CN", None),
    ("RU", "CN", "BY", "CN", RejectReason.WRONG_SENDER),
    ("RU", "KP", "RU", "CN", RejectReason.WRONG_RECIPIENT),
    # Both wrong: the sender is named.
    ("RU", "KP", "BY", "CN", RejectReason.WRONG_SENDER),
]


@pytest.mark.parametrize(("requester", "origin", "signer", "me", "reason"), PARTY_CASES)
def test_a_detail_request_names_its_signer_and_this_node(
    requester: str, origin: str, signer: str, me: str, reason: RejectReason | None
) -> None:
    params = replace(REQUEST, requester=requester, origin=origin)
    if reason is None:
        check_request_parties(params, signer=signer, me=me)
        return
    with pytest.raises(Rejection) as caught:
        check_request_parties(params, signer=signer, me=me)
    assert caught.value.reason == reason


DIGEST = b"d" * 32
ANSWER = DetailAnswer("CN", "RU", DIGEST, True, "", b"{}", 0)

ANSWER_CASES = [
    # (origin named, recipient named, request digest, reason or None if it is this answer)
    ("CN", "RU", DIGEST, None),
    ("KP", "RU", DIGEST, RejectReason.WRONG_RECIPIENT),
    ("CN", "BY", DIGEST, RejectReason.WRONG_RECIPIENT),
    ("CN", "RU", b"e" * 32, RejectReason.MALFORMED),
    # Other parties first, whatever it answers.
    ("KP", "RU", b"e" * 32, RejectReason.WRONG_RECIPIENT),
]


@pytest.mark.parametrize(("origin", "recipient", "digest", "reason"), ANSWER_CASES)
def test_a_detail_answer_is_from_the_origin_for_us_and_this_request(
    origin: str, recipient: str, digest: bytes, reason: RejectReason | None
) -> None:
    reply = replace(ANSWER, origin=origin, recipient=recipient, request_digest=digest)
    if reason is None:
        check_answer(reply, origin="CN", me="RU", request_digest=DIGEST)
        return
    with pytest.raises(Rejection) as caught:
        check_answer(reply, origin="CN", me="RU", request_digest=DIGEST)
    assert caught.value.reason == reason
