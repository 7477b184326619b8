"""Where a node stands with each peer, both ways (docs/protocol.md §12).

For each peer: how current its list is here (epoch, position, how far
behind the peer's own head, when last synced, the last error or
rejection), and how far the peer has confirmed this node's list (last
sequence number made for it, last one it acknowledged with a signed
receipt, and the removals it has not yet confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass

from wlx.node.core.node import Node
from wlx.node.protocol.messages import ChangeOp

MAX_LISTED = 10_000


@dataclass(frozen=True)
class PeerStatus:
    """One peer, seen from this node."""

    peer: str
    address: str
    epoch: int
    seq: int
    origin_head: int
    listings: int
    last_sync: int
    last_error: str
    last_error_at: int
    sent_epoch: int
    sent_seq: int
    acked_seq: int
    acked_at: int
    unconfirmed_removals: tuple[str, ...]

    @property
    def behind(self) -> int:
        """Operations of the peer's list not yet applied here (as last reported)."""
        return max(0, self.origin_head - self.seq)


@dataclass(frozen=True)
class NodeStatus:
    """The node and every peer."""

    node_id: str
    own_records: int
    peers: tuple[PeerStatus, ...]
    as_of: int


def node_status(node: Node) -> NodeStatus:
    """Read the node's status in one consistent read transaction."""
    with node.store.read() as tx:
        inbound = {s.origin: s for s in tx.list_inbound()}
        outbound = {s.peer: s for s in tx.list_outbound()}
        peers = []
        for row in tx.list_peers():
            inb = inbound.get(row.node_id)
            out = outbound.get(row.node_id)
            removals = tuple(r for _, _, r in tx.unconfirmed_removals(row.node_id))
            if out is not None:  # removals not even pulled yet are unconfirmed too
                pending = tx.changes_after(out.change_pos, MAX_LISTED)
                removals += tuple(c.record_id for c in pending if c.op == ChangeOp.REMOVE)
            peers.append(
                PeerStatus(
                    peer=row.node_id,
                    address=row.address,
                    epoch=inb.epoch if inb else 0,
                    seq=inb.seq if inb else 0,
                    origin_head=inb.origin_head if inb else 0,
                    listings=tx.count_entries(row.node_id),
                    last_sync=inb.synced_at if inb else 0,
                    last_error=inb.last_error if inb else "",
                    last_error_at=inb.last_error_at if inb else 0,
                    sent_epoch=out.epoch if out else 0,
                    sent_seq=out.last_seq if out else 0,
                    acked_seq=out.acked_seq if out else 0,
                    acked_at=out.acked_at if out else 0,
                    unconfirmed_removals=removals,
                )
            )
        own = tx.count_records()
    return NodeStatus(node.node_id, own, tuple(peers), node.now())
