"""Is the node alive, is it ready, and the gauges operators alert on.

``readiness`` is a pure decision over a status report: the node is ready
when its store answered, it is not draining, and every trusted peer's list
was synced within the bound (a peer never synced counts from the moment the
node started serving).  ``StatusCollector`` turns the same report into
Prometheus gauges at scrape time.  Peer ids are the only labels: no query,
identifier or record reference ever becomes a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wlx.node.report import NodeStatus


@dataclass(frozen=True)
class Readiness:
    """Whether to send traffic here, and why not."""

    ready: bool
    reasons: tuple[str, ...] = ()


def readiness(
    status: NodeStatus | None,
    *,
    now: float,
    started_at: float,
    bound: float,
    draining: bool = False,
    store_error: str = "",
) -> Readiness:
    """Decide readiness (pure).

    ``status`` is None when the store could not be read (``store_error`` says why).
    """
    reasons: list[str] = []
    if draining:
        reasons.append("draining: the node is shutting down")
    if status is None:
        reasons.append(f"store unreachable: {store_error or 'no answer'}")
    else:
        for peer in status.peers:
            since = peer.last_sync or started_at
            age = now - since
            if age > bound:
                what = "never synced" if not peer.last_sync else f"last synced {int(age)} s ago"
                reasons.append(f"peer {peer.peer} is stale: {what} (bound {int(bound)} s)")
    return Readiness(not reasons, tuple(reasons))


class StatusCollector(Collector):
    """Gauges computed from the node's status report at each scrape."""

    def __init__(
        self, status: Callable[[], NodeStatus], now: Callable[[], float], started_at: float
    ) -> None:
        self._status = status
        self._now = now
        self._started_at = started_at

    def collect(self) -> Iterator[Metric]:
        state = self._status()
        now = self._now()
        last = GaugeMetricFamily(
            "wlx_peer_last_sync_timestamp_seconds",
            "Unix time of the last successful sync with the peer (0: never)",
            labels=["peer"],
        )
        stale = GaugeMetricFamily(
            "wlx_peer_staleness_seconds",
            "Seconds since the peer's list was last synced (since start if never)",
            labels=["peer"],
        )
        behind = GaugeMetricFamily(
            "wlx_peer_behind_operations",
            "Operations of the peer's list not yet applied here",
            labels=["peer"],
        )
        unconfirmed = GaugeMetricFamily(
            "wlx_unconfirmed_removals",
            "Removals sent to the peer that it has not confirmed with a receipt",
            labels=["peer"],
        )
        listings = GaugeMetricFamily(
            "wlx_listings",
            "Listings held, per origin (this node: its own records)",
            labels=["origin"],
        )
        listings.add_metric([state.node_id], state.own_records)
        for peer in state.peers:
            last.add_metric([peer.peer], peer.last_sync)
            stale.add_metric([peer.peer], now - (peer.last_sync or self._started_at))
            behind.add_metric([peer.peer], peer.behind)
            unconfirmed.add_metric([peer.peer], len(peer.unconfirmed_removals))
            listings.add_metric([peer.peer], peer.listings)
        yield from (last, stale, behind, unconfirmed, listings)
