"""Rate limits and quotas per caller: token buckets.

Each (role, caller) has a bucket refilled at a steady rate up to a burst
size, and a daily cap.  A lookup costs one token per identifier key it
tests (``wlx.node.protocol.lookup_rules``): one per document, and the 20 to
46 keys wlx-norm-2 derives from a name and date of birth (variants,
transliterations, weak keys alike).  Any other call costs one.  Limits
bound enumeration by one credential, and the exchange log records every
throttling.

The officer defaults (docs/operations.md, "Rate limits") are sized in keys
so that a border post's ordinary work passes: a passport scan every few
seconds (one document and one or two names: about 25 to 95 keys, well
under 2,000 a minute), and a 2,000-person manifest in one call (one name
and a document each: about 45,000 to 95,000 keys, within the burst).

``Limits`` keeps the buckets in memory (a node with one serving process: a
SQLite store); ``StoreLimits`` keeps them as rows of the store, each charge
one transaction that locks the caller's row, so that the limits are shared
and exact across every front-end of a PostgreSQL store (docs/scaling.md).
Both take tokens with ``take``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from wlx.node.core.errors import Exhausted

if TYPE_CHECKING:
    from wlx.node.store.base import Store

DAY = 86_400.0


class RateLimited(Exhausted):
    """The caller is over its rate or its daily quota (gRPC RESOURCE_EXHAUSTED)."""


@dataclass(frozen=True)
class Rate:
    """A token bucket's settings."""

    per_minute: float
    burst: float
    per_day: float


@dataclass(frozen=True)
class LimitSettings:
    """Rates per role (node.toml ``[limits]``)."""

    officer: Rate = Rate(per_minute=10_000, burst=100_000, per_day=1_000_000)
    """In identifier keys tested (see the module docstring)."""
    peer: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)
    auditor: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)
    operator: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)

    def for_role(self, role: str) -> Rate:
        rate: Rate = getattr(self, role)
        return rate


PER_PERSON_OFFICER = Rate(per_minute=1_200, burst=2_500, per_day=100_000)
"""The officer defaults when a lookup cost one token per name or document
presented, as ``wlx init`` wrote them into node.toml: read as the current
defaults (``LimitSettings.officer``), since counted in keys they would
refuse a 500-person manifest outright."""


@dataclass(frozen=True)
class Bucket:
    """One caller's bucket: tokens left at ``stamp``, and the day's use."""

    role: str
    name: str
    tokens: float
    stamp: float
    day_start: float
    day_used: float = 0.0

    @classmethod
    def full(cls, role: str, name: str, rate: Rate, now: float) -> Bucket:
        """A new caller's bucket: full, its day starting now."""
        return cls(role, name, rate.burst, now, now)


def take(bucket: Bucket, rate: Rate, now: float, cost: float) -> Bucket:
    """The bucket after refilling it up to ``now`` and taking ``cost`` tokens.

    A clock behind ``bucket.stamp`` (another front-end's, a little ahead)
    refills nothing and keeps the later stamp: skew never makes tokens.

    Raises:
        RateLimited: not enough tokens, more than the burst (never possible),
            or the daily quota would be exceeded (the caller keeps the old
            bucket: nothing is taken).
    """
    elapsed = max(0.0, now - bucket.stamp)
    tokens = min(rate.burst, bucket.tokens + elapsed * rate.per_minute / 60)
    day_start, day_used = bucket.day_start, bucket.day_used
    if now - day_start >= DAY:
        day_start, day_used = now, 0.0
    if cost > rate.burst:
        raise RateLimited(
            f"this call costs {cost:.0f} (one per identifier key tested), more than the "
            f"burst of {rate.burst:.0f} of {bucket.name}: send fewer people per call"
        )
    if day_used + cost > rate.per_day:
        raise RateLimited(f"daily quota of {rate.per_day:.0f} reached for {bucket.name}")
    if cost > tokens:
        raise RateLimited(
            f"rate limit: {bucket.name} may make {rate.per_minute:.0f} per minute "
            f"(bursts of {rate.burst:.0f})"
        )
    return replace(
        bucket,
        tokens=tokens - cost,
        stamp=max(now, bucket.stamp),
        day_start=day_start,
        day_used=day_used + cost,
    )


class Charger(Protocol):
    """What the server's interceptor charges calls to."""

    def charge(self, role: str, name: str, cost: int) -> None:
        """Take ``cost`` tokens from the caller's bucket.

        Raises:
            RateLimited: over the rate or the daily quota (nothing is taken).
        """

    def afford(self, role: str, name: str, cost: int) -> None:
        """Check that ``cost`` tokens could be taken now, taking none.

        Raises:
            RateLimited: as ``charge``.
        """


class Limits:
    """Token buckets per (role, caller), in this process's memory; thread-safe."""

    def __init__(
        self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._lock = threading.Lock()

    def charge(self, role: str, name: str, cost: int) -> None:
        """Take ``cost`` tokens from the caller's bucket.

        Raises:
            RateLimited: not enough tokens (nothing is taken), or the daily
                quota would be exceeded.
        """
        self._take(role, name, cost, keep=True)

    def afford(self, role: str, name: str, cost: int) -> None:
        """Check that ``cost`` tokens could be taken now, taking none: a
        lookup is refused on arrival when it cannot pay even one token per
        identifier it presents, and charged once its keys are derived.

        Raises:
            RateLimited: as ``charge``.
        """
        self._take(role, name, cost, keep=False)

    def _take(self, role: str, name: str, cost: int, *, keep: bool) -> None:
        rate = self._settings.for_role(role)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((role, name)) or Bucket.full(role, name, rate, now)
            after = take(bucket, rate, now, cost)
            self._buckets[(role, name)] = after if keep else bucket


class StoreLimits:
    """Token buckets per (role, caller) as rows of ``store``: one write
    transaction per charge, which locks the caller's row, so every process
    serving the store draws from the same bucket (exact, whatever the number
    of front-ends).  ``clock`` is wall time, shared by the front-ends (NTP);
    see ``take`` for skew."""

    def __init__(
        self, store: Store, settings: LimitSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    def charge(self, role: str, name: str, cost: int) -> None:
        """Take ``cost`` tokens from the caller's bucket in the store.

        Raises:
            RateLimited: not enough tokens (nothing is taken), or the daily
                quota would be exceeded.
            Unavailable, InternalError: the store did not answer.
        """
        self._take(role, name, cost, keep=True)

    def afford(self, role: str, name: str, cost: int) -> None:
        """As ``Limits.afford``, in the store.

        Raises:
            RateLimited: as ``charge``.
            Unavailable, InternalError: the store did not answer.
        """
        self._take(role, name, cost, keep=False)

    def _take(self, role: str, name: str, cost: int, *, keep: bool) -> None:
        rate = self._settings.for_role(role)
        # Not durable: a bucket is worth less than the commit's wait for the
        # disk; after a crash of the database a caller may get a few tokens back.
        now = self._clock()
        with self._store.write(durable=False) as tx:
            bucket = tx.lock_bucket(Bucket.full(str(role), name, rate, now))
            after = take(bucket, rate, now, cost)
            if keep:
                tx.put_bucket(after)
