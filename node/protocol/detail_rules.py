"""The detail decision (§11.3): whether an origin releases one record.

Pure: the caller gathers the facts (inside the one write transaction that
also records the decision, so the quota is read and charged atomically) and
this decides.  The order is the guarantee:

1. **Proof first.**  A request without a valid hit proof, for whatever
   reason (no proof, a wrong one, a ref that does not exist), gets one
   uniform denial, ``Denial.NO_HIT``: it learns nothing of whether the ref exists,
   is shared with it, is suspended or has expired.
2. **Quota.**  Only requests with a valid proof count against the daily
   quota (``counts``), so a requester without hits cannot burn a country's
   quota; once it is used up, a proven request is denied ``quota``.
3. **Policy and life.**  Only then: not shared with this requester, expired,
   suspended, or granted.

A *replay* (the same signed request again, within its validity window) of
a request that was charged is decided by ``decide_replay``: never charged
again, and it releases nothing the first answer did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Denial(StrEnum):
    """Why an origin withholds a record: ``DetailAnswer.denial`` on the wire
    (§11.4) and the outcome stored and logged for a denied request."""

    NO_HIT = "no-hit"
    """The one answer to a request without a valid hit proof."""
    QUOTA = "quota"
    NOT_SHARED = "not-shared"
    EXPIRED = "expired"
    SUSPENDED = "suspended"


GRANTED = "granted"
"""The outcome stored and logged for a request that is not denied (on the
wire: ``granted`` true and no denial)."""

PROVEN = frozenset({GRANTED, Denial.NOT_SHARED, Denial.EXPIRED, Denial.SUSPENDED})
"""Outcomes of requests that carried a valid proof and were charged: what the
daily quota counts."""


class Direction(StrEnum):
    """Which way a detail request went, as the node stores it
    (``detail_requests.direction``)."""

    IN = "in"
    """A peer asked this node (this node is the origin)."""
    OUT = "out"
    """This node asked, for one of its officers (of a peer or of its own list)."""


@dataclass(frozen=True)
class DetailFacts:
    """What the origin knows when it decides one request."""

    proof_holds: bool
    """The hit proof verifies against the record (False if there is no record)."""
    shared: bool
    """The sharing policy gives the record to this requester."""
    expired: bool
    suspended: bool
    used_today: int
    """Proven requests from this requester in the last 24 hours."""
    quota: int


@dataclass(frozen=True)
class DetailDecision:
    """The denial (None: granted) and whether it counts in the quota."""

    denial: Denial | None
    counts: bool

    @property
    def granted(self) -> bool:
        return self.denial is None

    @property
    def outcome(self) -> str:
        """What is stored and logged: ``GRANTED`` or the denial."""
        return GRANTED if self.denial is None else self.denial.value


def decide_detail(facts: DetailFacts) -> DetailDecision:
    """Decide one detail request; see the module docstring for the order."""
    if not facts.proof_holds:
        return DetailDecision(Denial.NO_HIT, counts=False)
    if facts.used_today >= facts.quota:
        return DetailDecision(Denial.QUOTA, counts=False)
    if not facts.shared:
        return DetailDecision(Denial.NOT_SHARED, counts=True)
    if facts.expired:
        return DetailDecision(Denial.EXPIRED, counts=True)
    if facts.suspended:
        return DetailDecision(Denial.SUSPENDED, counts=True)
    return DetailDecision(None, counts=True)


@dataclass(frozen=True)
class Answered:
    """A charged request, remembered by its digest until its validity window
    closes (a later copy is refused as stale anyway)."""

    until: int
    outcome: str
    """``GRANTED`` or the denial's value, as stored and logged."""
    version: int
    """The version of the record released (0 if none was)."""


def decide_replay(first: Answered, version: int | None) -> DetailDecision:
    """Decide a replay of ``first``, the record now being at ``version`` (None:
    gone): the first outcome, not counted again; a grant again only while
    the record is still the version granted (the same bytes, nothing new),
    else the uniform denial."""
    if first.outcome == GRANTED:
        if version != first.version:
            return DetailDecision(Denial.NO_HIT, counts=False)
        return DetailDecision(None, counts=False)
    return DetailDecision(Denial(first.outcome), counts=False)
