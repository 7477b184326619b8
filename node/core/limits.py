"""Rate limits and quotas per caller: token buckets, in memory.

Each (role, caller) has a bucket refilled at a steady rate up to a burst
size, and a daily cap.  A lookup costs one token per person checked, so a
manifest costs its length.  Limits are per process; they bound enumeration
by one credential, and the exchange log records every throttling.
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

    officer: Rate = Rate(per_minute=1_200, burst=2_500, per_day=100_000)
    peer: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)
    auditor: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)
    operator: Rate = Rate(per_minute=600, burst=200, per_day=1_000_000)

    def for_role(self, role: str) -> Rate:
        rate: Rate = getattr(self, role)
        return rate


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
            RateLimited: not enough tokens (nothing is taken), or the daily
                quota would be exceeded.
        """
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
            if bucket.day_used + cost > rate.per_day:
                raise RateLimited(f"daily quota of {rate.per_day:.0f} reached for {name}")
            if cost > bucket.tokens:
                raise RateLimited(
                    f"rate limit: {name} may make {rate.per_minute:.0f} per minute "
                    f"(bursts of {rate.burst:.0f})"
                )
            bucket.tokens -= cost
            bucket.day_used += cost
