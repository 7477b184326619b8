"""The detail decision (§11.3): whether an origin releases one record.

Pure: the caller gathers the facts (inside the one write transaction that
also records the decision, so the quota is read and charged atomically) and
this decides.  The order is the guarantee:

1. **Proof first.**  A request without a valid hit proof, for whatever
   reason (no proof, a wrong one, a ref that does not exist), gets one
   uniform denial, ``DENIED``: it learns nothing of whether the ref exists,
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

DENIED = "no-hit"
"""The one answer to a request without a valid hit proof."""
QUOTA = "quota"
NOT_SHARED = "not-shared"
EXPIRED = "expired"
SUSPENDED = "suspended"
GRANTED = "granted"

PROVEN = frozenset({GRANTED, NOT_SHARED, EXPIRED, SUSPENDED})
"""Outcomes of requests that carried a valid proof and were charged: what the
daily quota counts."""


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
    """The outcome (``GRANTED`` or a denial) and whether it counts in the quota."""

    outcome: str
    counts: bool

    @property
    def granted(self) -> bool:
        return self.outcome == GRANTED

    @property
    def denial(self) -> str:
        """The denial, or "" when granted."""
        return "" if self.granted else self.outcome


def decide_detail(facts: DetailFacts) -> DetailDecision:
    """Decide one detail request; see the module docstring for the order."""
    if not facts.proof_holds:
        return DetailDecision(DENIED, counts=False)
    if facts.used_today >= facts.quota:
        return DetailDecision(QUOTA, counts=False)
    if not facts.shared:
        return DetailDecision(NOT_SHARED, counts=True)
    if facts.expired:
        return DetailDecision(EXPIRED, counts=True)
    if facts.suspended:
        return DetailDecision(SUSPENDED, counts=True)
    return DetailDecision(GRANTED, counts=True)


@dataclass(frozen=True)
class Answered:
    """A charged request, remembered by its digest until its validity window
    closes (a later copy is refused as stale anyway)."""

    until: int
    outcome: str
    version: int
    """The version of the record released (0 if none was)."""


def decide_replay(first: Answered, version: int | None) -> DetailDecision:
    """Decide a replay of ``first``, the record now being at ``version`` (None:
    gone): the first outcome, not counted again; a grant again only while
    the record is still the version granted (the same bytes, nothing new),
    else the uniform denial."""
    if first.outcome == GRANTED and version != first.version:
        return DetailDecision(DENIED, counts=False)
    return DetailDecision(first.outcome, counts=False)
