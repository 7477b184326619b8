"""The requester's loop with one origin (docs/protocol.md §8.3), sans I/O.

``PullLoop`` says what to do next (``Pull``, ``FetchSnapshot``, ``Finish``,
``GiveUp``) and is told what each step gave; ``wlx.node.rpc.sync_client`` performs the
steps (gRPC, storage).  Rules:

1. Start with a pull.
2. A pull answered with ``ResyncRequired``: fetch (or continue) a snapshot,
   then pull again; more resyncs in a row than ``max_resyncs``: give up
   (the origin keeps refusing the cursor its own snapshot gave).
3. A pull that carried as many batches as the origin sends at most,
   ``batch_limit(max_batches)`` = ``min(max_batches or 50, 50)`` (§8.1,
   MUST-8.3-1): pull again (the stream may hold more); fewer: up to date,
   finish (then deliver receipts).  So ``max_batches`` 0 (the origin's
   default) or above the cap never makes the loop stop early or spin.
4. After ``max_pulls`` pulls, finish: the next round continues.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pull:
    """Call ``Pull`` with the current cursor."""


@dataclass(frozen=True)
class FetchSnapshot:
    """Fetch a snapshot (continuing a staged one if possible) and apply it."""

    reason: str


@dataclass(frozen=True)
class Finish:
    """Up to date (or enough for this round): deliver receipts and stop."""


@dataclass(frozen=True)
class GiveUp:
    """Stop this round with an error that is the origin's fault."""

    error: str


Step = Pull | FetchSnapshot | Finish | GiveUp


MAX_BATCHES_PER_PULL = 50
"""The most batches an origin sends for one pull (§8.1), whatever is asked."""


def batch_limit(max_batches: int) -> int:
    """How many batches an origin sends at most for a pull asking ``max_batches``
    (0: the default): ``min(max_batches or 50, 50)``."""
    return min(max_batches or MAX_BATCHES_PER_PULL, MAX_BATCHES_PER_PULL)


class PullLoop:
    """One sync round with one origin, as a state machine."""

    def __init__(self, *, max_batches: int, max_resyncs: int = 2, max_pulls: int = 10_000) -> None:
        self._max_batches = batch_limit(max_batches)
        self._max_resyncs = max_resyncs
        self._max_pulls = max_pulls
        self._pulls = 0
        self._resyncs_in_a_row = 0
        self._next: Step = Pull()

    @property
    def next(self) -> Step:
        """What to do now."""
        return self._next

    def pulled(self, *, batches: int, resync: str | None) -> Step:
        """A pull ended: it carried ``batches`` batches, or asked for a resync."""
        if not isinstance(self._next, Pull):
            raise RuntimeError(f"pulled() while the next step is {self._next}")
        self._pulls += 1
        if resync is not None:
            self._resyncs_in_a_row += 1
            if self._resyncs_in_a_row > self._max_resyncs:
                self._next = GiveUp(f"keeps asking for a resync ({resync})")
            else:
                self._next = FetchSnapshot(resync)
            return self._next
        self._resyncs_in_a_row = 0
        if batches < self._max_batches or self._pulls >= self._max_pulls:
            self._next = Finish()
        else:
            self._next = Pull()
        return self._next

    def snapshot_applied(self) -> Step:
        """The snapshot asked for was applied: pull from its position."""
        if not isinstance(self._next, FetchSnapshot):
            raise RuntimeError(f"snapshot_applied() while the next step is {self._next}")
        if self._pulls >= self._max_pulls:
            self._next = Finish()
        else:
            self._next = Pull()
        return self._next
