"""Rate limits and quotas per caller: token buckets, in memory.

Each (role, caller) has a bucket refilled at a steady rate up to a burst
size, and a daily cap.  A lookup costs one token per identifier key it
tests (``wlx.node.protocol.lookup_rules``): one per document, and the 20 to
46 keys wlx-norm-2 derives from a name and date of birth (variants,
transliterations, weak keys alike).  Any other call costs one.  Limits are
per process; they bound enumeration by one credential, and the exchange log
records every throttling.

The officer defaults (docs/operations.md, "Rate limits") are sized in keys
so that a border post's ordinary work passes: a passport scan every few
seconds (one document and one or two names: about 25 to 95 keys, well
under 2,000 a minute), and a 2,000-person manifest in one call (one name
and a document each: about 45,000 to 95,000 keys, within the burst).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from wlx.node.core.errors import Exhausted

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


class _Bucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self.tokens = rate.burst
        self.stamp = now
        self.day_start = now
        self.day_used = 0.0


class Limits:
    """Token buckets per (role, caller); thread-safe."""

    def __init__(
        self, settings: LimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def charge(self, role: str, name: str, cost: int) -> None:
        """Take ``cost`` tokens from the caller's bucket.

        Raises:
            RateLimited: not enough tokens (nothing is taken), more than the
                burst (never possible), or the daily quota would be exceeded.
        """
        self._take(role, name, cost, take=True)

    def afford(self, role: str, name: str, cost: int) -> None:
        """Check that ``cost`` tokens could be taken now, taking none: a
        lookup is refused on arrival when it cannot pay even one token per
        identifier it presents, and charged once its keys are derived.

        Raises:
            RateLimited: as ``charge``.
        """
        self._take(role, name, cost, take=False)

    def _take(self, role: str, name: str, cost: int, *, take: bool) -> None:
        rate = self._settings.for_role(role)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((role, name))
            if bucket is None:
                bucket = self._buckets[(role, name)] = _Bucket(rate, now)
            bucket.tokens = min(
                rate.burst, bucket.tokens + (now - bucket.stamp) * rate.per_minute / 60
            )
            bucket.stamp = now
            if now - bucket.day_start >= DAY:
                bucket.day_start, bucket.day_used = now, 0.0
            if cost > rate.burst:
                raise RateLimited(
                    f"this call costs {cost} (one per identifier key tested), more than the "
                    f"burst of {rate.burst:.0f} of {name}: send fewer people per call"
                )
            if bucket.day_used + cost > rate.per_day:
                raise RateLimited(f"daily quota of {rate.per_day:.0f} reached for {name}")
            if cost > bucket.tokens:
                raise RateLimited(
                    f"rate limit: {name} may make {rate.per_minute:.0f} per minute "
                    f"(bursts of {rate.burst:.0f})"
                )
            if take:
                bucket.tokens -= cost
                bucket.day_used += cost
