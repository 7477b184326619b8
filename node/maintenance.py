"""Housekeeping a serving node does on its own, on time, peers up or not.

* expired listings held for peers are purged (§9.3), and listings a
  snapshot replaced are deleted (if a sync left any);
* the node's own records are removed once past expiry and the retention
  grace period (the removals go to every peer);
* the outbox and change log are compacted (§7.3);
* hits remembered in a shared store for detail requests are forgotten once
  expired (``incoming.hit_memory``).

Where several front-ends serve one store, only the leader runs this
(``daemon.SyncLoop``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from wlx.crypto.digests import skip_digest
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.node import Node
from wlx.node.incoming import receiver
from wlx.node.outgoing import bulk_import, ownlist

log = logging.getLogger("wlx.maintenance")

DAY = 86_400
COMPACT_CHUNK = 20_000
"""Change-log entries deleted per write transaction (each chunk logged)."""


@dataclass(frozen=True)
class MaintenanceReport:
    """What one round of housekeeping did."""

    purged: int
    retired: int
    compacted_batches: int
    compacted_changes: int


def maintain(node: Node, *, compaction: bool = True) -> MaintenanceReport:
    """Purge expired listings, enforce retention, and (optionally) compact."""
    bulk_import.resume(node)  # an import its process left published, not yet applied
    purged = receiver.purge_expired(node).total
    receiver.drain_replaced(node)
    retired = len(ownlist.enforce_retention(node, node.config.retention_grace_days))
    if node.store.shared:
        with node.store.write() as tx:
            tx.purge_hits(node.now())
    batches = changes = 0
    if compaction:
        batches, changes = compact(node, keep_seconds=node.config.outbox_keep_days * DAY)
    return MaintenanceReport(purged, retired, batches, changes)


def compact(node: Node, *, keep_seconds: int) -> tuple[int, int]:
    """Compact the outbox and the change log; returns (batches, changes) deleted.

    For each peer (docs/protocol.md §7.3):

    * batches it acknowledged are deleted, but the last one, so that its
      cursor can still be checked;
    * batches older than ``keep_seconds`` are deleted whatever their state;
    * if it has not pulled the changes of the last ``keep_seconds`` at all,
      its stream skips them: the origin stops keeping them for it and moves
      the stream's anchor (``skip_digest``), so that it resumes from a
      snapshot.

    Change-log entries every stream has consumed are then deleted, at most
    ``COMPACT_CHUNK`` per write transaction, each chunk with its own
    exchange-log entry: a list of millions never holds the store's write lock
    for minutes (a lookup's log entry, a batch or a restarted node's
    readiness check would wait behind it).  Nothing any peer needs to catch
    up is lost: whatever was deleted, the snapshot it will be offered
    replaces.
    """
    cutoff = node.now() - keep_seconds
    batches = 0
    with node.store.write() as tx:
        tx.lock_changes()
        head = tx.change_head()
        states = []
        skipped: list[str] = []
        for current in tx.list_outbound():
            state = current
            pending = tx.changes_after(state.change_pos, 1)
            if pending and pending[0].at < cutoff:
                log.info("peer %s stayed away too long; it will resync from a snapshot", state.peer)
                state = replace(
                    current,
                    change_pos=head,
                    last_seq=current.last_seq + 1,
                    last_digest=skip_digest(current.last_digest),
                )
                tx.put_outbound(state)
                tx.add_anchor(state.peer, state.epoch, state.last_seq, state.last_digest)
                skipped.append(state.peer)
                keep_seq: int | None = None  # delete every batch of this epoch
            else:
                keep_seq = state.acked_seq
            batches += tx.delete_outbox(
                state.peer, epoch=state.epoch, keep_seq=keep_seq, before_time=cutoff
            )
            states.append(state)
        consumed = min((s.change_pos for s in states), default=head)
        changes = tx.delete_changes_upto(consumed, COMPACT_CHUNK)
        if batches or changes or skipped:
            exchange_log.record(
                tx,
                node,
                kind=Event.COMPACTION,
                batches=batches,
                changes=changes,
                resync=skipped,
            )
    more = changes == COMPACT_CHUNK
    while more:
        with node.store.write() as tx:
            tx.lock_changes()
            # Streams only move forward, but one added since is counted too.
            consumed = min((s.change_pos for s in tx.list_outbound()), default=tx.change_head())
            deleted = tx.delete_changes_upto(consumed, COMPACT_CHUNK)
            if deleted:
                exchange_log.record(
                    tx, node, kind=Event.COMPACTION, batches=0, changes=deleted, resync=[]
                )
        changes += deleted
        more = deleted == COMPACT_CHUNK
    if batches or changes:
        log.info("compacted %d batches and %d change-log entries", batches, changes)
    return batches, changes
