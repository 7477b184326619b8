"""Refusals in the exchange log: bounded, yet exact.  A pure state machine.

Every refused call (access denied, throttled, malformed or oversized) must be
in the exchange log, but a flood of refusals must not flood the log.  So the
first refusal of a kind (caller, method, reason) in a window is written at
once (``count`` 1); the ones that follow within the window are counted, and
one entry carrying their ``count`` (and the times of the first and last of
them) is written when the window closes.  At most two entries per kind and
window; no refusal is dropped.  ``RefusalAggregator`` decides what to write
and when; the caller writes it (``wlx.node.rpc.auth``).
"""

from __future__ import annotations

from dataclasses import dataclass

from wlx.node.audit.exchange_log import Event

WINDOW = 60.0
MAX_KINDS = 10_000


@dataclass(frozen=True)
class RefusalKind:
    """What is counted together."""

    event: Event
    """``Event.ACCESS_DENIED`` or ``Event.THROTTLED``."""
    method: str
    caller: str
    reason: str


@dataclass(frozen=True)
class Aggregate:
    """One entry to write: ``count`` refusals of ``kind`` between ``first`` and ``last``."""

    kind: RefusalKind
    count: int
    first: int
    last: int


@dataclass
class _Window:
    opened: float
    pending: int = 0
    first: int = 0
    last: int = 0


class RefusalAggregator:
    """Decides which refusal entries to write, and when (not thread-safe: lock it)."""

    def __init__(self, window: float = WINDOW, max_kinds: int = MAX_KINDS) -> None:
        self._window = window
        self._max = max_kinds
        self._open: dict[RefusalKind, _Window] = {}
        self._earliest = float("inf")

    def refuse(self, kind: RefusalKind, now: float, time: int) -> list[Aggregate]:
        """Count one refusal at monotonic ``now`` (Unix ``time``); returns what
        to write now (this refusal if it opens a window, and closed windows)."""
        out = self.due(now)
        window = self._open.get(kind)
        if window is None:
            if len(self._open) >= self._max:
                out += self.drain()  # bounded memory, still exact
            self._open[kind] = _Window(opened=now)
            self._earliest = min(self._earliest, now)
            out.append(Aggregate(kind, 1, time, time))
            return out
        if not window.pending:
            window.first = time
        window.pending += 1
        window.last = time
        return out

    def due(self, now: float) -> list[Aggregate]:
        """Entries of the windows that closed by ``now`` (each forgotten after)."""
        if now - self._earliest < self._window:
            return []
        out = []
        for kind, window in list(self._open.items()):
            if now - window.opened >= self._window:
                del self._open[kind]
                if window.pending:
                    out.append(Aggregate(kind, window.pending, window.first, window.last))
        self._earliest = min((w.opened for w in self._open.values()), default=float("inf"))
        return out

    def drain(self) -> list[Aggregate]:
        """Every pending count, now (at shutdown, or when too many kinds are open)."""
        out = [
            Aggregate(kind, w.pending, w.first, w.last)
            for kind, w in self._open.items()
            if w.pending
        ]
        self._open.clear()
        self._earliest = float("inf")
        return out
