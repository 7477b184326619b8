"""The node's scheduler: what a serving node does on its own, on an interval.

Every ``interval`` seconds (with 10% jitter), until stopped: reload keys
rotated by another process, announce a rotated card, pull from every peer,
housekeeping (purge, retention; compaction hourly), and a checkpoint of the
exchange log for the peers to cosign.  Each step's failure is logged and the
next step still runs.

Several ``wlx serve`` processes (front-ends) may serve one PostgreSQL store
(docs/scaling.md); all of them answer calls, but only the *leader* runs
these rounds.  Leadership is the store's (``Store.leadership``: a session
advisory lock on PostgreSQL): every follower tries to take it every
``ELECTION_POLL`` seconds, so when the leader dies another front-end leads
within a few seconds, and resumes where it stopped (a pull in progress
resumes from the store's cursor and staged snapshot).  Nothing depends on
there being one leader for correctness: a pull still holds the store's sync
lock, and the exchange log its table lock.
"""

from __future__ import annotations

import logging
import random
import threading

from wlx.node.core import metrics
from wlx.node.core.errors import Unavailable
from wlx.node.core.node import Node
from wlx.node.maintenance import maintain
from wlx.node.rpc.announce import announce
from wlx.node.rpc.cosign import checkpoint_round
from wlx.node.rpc.sync_client import CALL_TIMEOUT, SyncReport, describe, sync_all

log = logging.getLogger("wlx.sync")

COMPACT_EVERY = 3_600.0
ELECTION_POLL = 1.0
"""Seconds between a follower's attempts to become the leader."""
LEADERSHIP = "scheduler"


class SyncLoop:
    """Every ``interval`` seconds (with 10% jitter), until stopped: sync with
    every peer, then housekeeping (purge, retention; compaction hourly);
    while this process leads the store's front-ends (see the module)."""

    def __init__(self, node: Node, interval: float) -> None:
        self._node = node
        self._interval = interval
        self._leadership = node.store.leadership(LEADERSHIP)
        self.leading = False
        """Whether this process ran the last round as the leader."""
        self._last_compaction = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wlx-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def trigger(self) -> None:
        """Sync now instead of waiting for the interval."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the step in progress, and hand leadership over."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=CALL_TIMEOUT)
        self._leadership.release()
        if self.leading:
            self.leading = False
            metrics.LEADER.set(0)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._lead():
                self._round()
                delay = self._interval * random.uniform(0.9, 1.1)  # noqa: S311 - jitter only
            else:
                self._follow()
                delay = min(self._interval, ELECTION_POLL)
            self._wake.wait(delay)
            self._wake.clear()
        self._leadership.release()

    def _lead(self) -> bool:
        """Take or keep the leadership; logs each change."""
        leading = self._leadership.hold()
        if leading != self.leading:
            if leading:
                log.info("this front-end leads: it runs sync, witnessing and maintenance")
            else:
                log.warning("this front-end no longer leads; another one runs the rounds")
            self.leading = leading
            metrics.LEADER.set(int(leading))
        return leading

    def _follow(self) -> None:
        """A follower's round: only the keys (rotated by another process)."""
        try:
            self._node.reload_keys()
        except Exception:
            log.exception("key reload failed")

    def _round(self) -> None:
        """One round: keys, announcements, sync, housekeeping, checkpoint.  Never raises:
        each step's failure is logged and the next step still runs."""
        node = self._node
        steps = (
            ("key reload", node.reload_keys),  # after `wlx keys rotate` by another process
            ("card announcements", lambda: announce(node)),
            ("sync", self._sync),
            ("housekeeping", self._housekeeping),
            ("checkpoint", lambda: checkpoint_round(node)),  # if the log grew; peers cosign
        )
        for name, step in steps:
            if self._stop.is_set():
                return
            try:
                step()
            except Unavailable as exc:  # the store is closing, or a peer is away
                if self._stop.is_set():
                    return
                log.warning("%s: %s", name, exc)
            except Exception:
                log.exception("%s failed", name)

    def _sync(self) -> None:
        """Pull from every peer, unless another process of this node is
        pulling now (``wlx sync``): then this round skips it."""
        try:
            reports = sync_all(self._node, wait=0)
        except Unavailable:
            log.info("another process of this node is syncing; this round skips the sync")
            return
        _log_reports(reports)

    def _housekeeping(self) -> None:
        compact = self._node.clock() - self._last_compaction >= COMPACT_EVERY
        maintain(self._node, compaction=compact)
        if compact:
            self._last_compaction = self._node.clock()


def _log_reports(reports: list[SyncReport]) -> None:
    for report in reports:
        if report.ok and (report.batches or report.snapshot_entries is not None):
            log.info("synced %s", describe(report))
