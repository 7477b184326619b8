"""Housekeeping a serving node does on its own, on time, peers up or not.

* expired listings held for peers are purged (§9.3);
* the node's own records are removed once past expiry and the retention
  grace period (the removals go to every peer);
* the outbox and change log are compacted (§7.3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wlx.node import origin, receiver
from wlx.node.app import Node

log = logging.getLogger("wlx.maintenance")

DAY = 86_400


@dataclass(frozen=True)
class MaintenanceReport:
    """What one round of housekeeping did."""

    purged: int
    retired: int
    compacted_batches: int
    compacted_changes: int


def maintain(node: Node, *, compact: bool = True) -> MaintenanceReport:
    """Purge expired listings, enforce retention, and (optionally) compact."""
    purged = receiver.purge_expired(node).total
    retired = len(origin.enforce_retention(node, node.config.retention_grace_days))
    batches = changes = 0
    if compact:
        batches, changes = origin.compact(node, keep_seconds=node.config.outbox_keep_days * DAY)
    return MaintenanceReport(purged, retired, batches, changes)
