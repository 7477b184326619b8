"""Receipt acceptance (§8.4): whether a peer's receipt names what was sent.  Pure.

A receipt confirms removals, so one that names something the origin never
sent would let a peer clear removals it never received.  A receipt is
accepted only if the origin finds, at the receipt's position, something it
actually sent to this peer: a batch with exactly the receipt's range and
digest (from its outbox), or a snapshot it served at exactly ``last_seq`` of
that epoch with that chain digest.  A receipt for an epoch after the
stream's, or a position past its head, is refused outright, whatever its
digest (the genesis digest is public).
"""

from __future__ import annotations

from dataclasses import dataclass

from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol.envelopes import same_digest
from wlx.node.protocol.messages import Receipt, ReceiptKind


@dataclass(frozen=True)
class Sent:
    """Something the origin sent to the peer, as its store records it."""

    kind: ReceiptKind
    epoch: int
    first_seq: int
    last_seq: int
    digest: bytes


def check_receipt(
    receipt: Receipt, *, stream_epoch: int, stream_head: int, sent: Sent | None
) -> None:
    """Accept ``receipt`` for a stream at ``stream_epoch``/``stream_head``, where
    ``sent`` is what the origin sent at the receipt's position (None: nothing).

    Raises:
        Rejection: UNKNOWN_BATCH, naming what does not match.
    """
    if receipt.epoch > stream_epoch:
        raise Rejection(
            RejectReason.UNKNOWN_BATCH,
            f"receipt for epoch {receipt.epoch}; this node's stream is at epoch {stream_epoch}",
        )
    if receipt.epoch == stream_epoch and receipt.last_seq > stream_head:
        raise Rejection(
            RejectReason.UNKNOWN_BATCH,
            f"receipt up to {receipt.last_seq}; this node sent up to {stream_head}",
        )
    if sent is None:
        raise Rejection(
            RejectReason.UNKNOWN_BATCH, f"receipt for a {receipt.kind} this node does not hold"
        )
    if (sent.kind, sent.epoch, sent.first_seq, sent.last_seq) != (
        receipt.kind,
        receipt.epoch,
        receipt.first_seq,
        receipt.last_seq,
    ):
        raise Rejection(
            RejectReason.UNKNOWN_BATCH,
            f"receipt for {receipt.kind} {receipt.first_seq}-{receipt.last_seq}; this node sent "
            f"{sent.kind} {sent.first_seq}-{sent.last_seq}",
        )
    if not same_digest(sent.digest, receipt.digest):
        raise Rejection(RejectReason.UNKNOWN_BATCH, "receipt with another digest than was sent")
