"""The detail decision (§11.3) as a table: proof first, one uniform denial,
only proven requests count, then quota, policy, life."""

from __future__ import annotations

import pytest

from wlx.node.protocol.detail_rules import (
    GRANTED,
    Answered,
    Denial,
    DetailFacts,
    decide_detail,
    decide_replay,
)

DENIED, QUOTA, NOT_SHARED = Denial.NO_HIT, Denial.QUOTA, Denial.NOT_SHARED
EXPIRED, SUSPENDED = Denial.EXPIRED, Denial.SUSPENDED


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
    assert decision.denial == (None if outcome == GRANTED else outcome)


REPLAYS = [
    # The first outcome again, never counted; a grant only for the same version.
    (Answered(until=10, outcome=GRANTED, version=3), 3, GRANTED),
    (Answered(until=10, outcome=GRANTED, version=3), 4, DENIED),
    (Answered(until=10, outcome=GRANTED, version=3), None, DENIED),
    (Answered(until=10, outcome=NOT_SHARED, version=0), 3, NOT_SHARED),
    (Answered(until=10, outcome=SUSPENDED, version=0), None, SUSPENDED),
    (Answered(until=10, outcome=EXPIRED, version=0), 7, EXPIRED),
]


@pytest.mark.parametrize(("first", "version", "outcome"), REPLAYS)
def test_a_replay_repeats_the_first_answer_uncharged(
    first: Answered, version: int | None, outcome: str
) -> None:
    decision = decide_replay(first, version)
    assert (decision.outcome, decision.counts) == (outcome, False)
