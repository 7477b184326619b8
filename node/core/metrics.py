"""Prometheus metrics of a node (served by ``wlx serve --metrics-port``).

Counters and histograms, and whether this process leads the node's
front-ends; no label ever carries a query, an identifier or a record
reference.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LOOKUPS = Counter("wlx_lookups_total", "People checked", ["call"])
HITS = Counter("wlx_hits_total", "Hits returned")
LOOKUP_SECONDS = Histogram(
    "wlx_lookup_seconds",
    "Time to answer a lookup call",
    ["call"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
BATCHES_SENT = Counter("wlx_batches_sent_total", "Delta batches sent to peers")
BATCHES_APPLIED = Counter("wlx_batches_applied_total", "Delta batches applied", ["origin"])
SNAPSHOTS_APPLIED = Counter("wlx_snapshots_applied_total", "Snapshots applied", ["origin"])
REJECTIONS = Counter("wlx_rejections_total", "Inputs from peers rejected", ["origin", "reason"])
SYNC_FAILURES = Counter("wlx_sync_failures_total", "Sync attempts that failed", ["origin"])
DETAILS = Counter(
    "wlx_detail_requests_total",
    "Detail requests, by direction (in: from a peer, out: to an origin, own) and outcome",
    ["direction", "peer", "outcome"],
)
REFUSALS = Counter(
    "wlx_refusals_total",
    "Calls refused before their handler, by reason (authentication, permission, rate-limit)",
    ["reason"],
)
LEADER = Gauge(
    "wlx_leader",
    "1 while this process leads the node's front-ends (runs sync, witnessing, housekeeping)",
)
