"""Signed receipts: the proof that a peer applied what the origin sent (§8.4).

A recipient signs a receipt for every batch and snapshot it applies
(``receiver``); the origin verifies each against the batch it made, keeps
it as signed, moves the peer's acknowledged position forward and confirms
the removals it covers, so that the origin and its auditors can prove when
a removal reached each peer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from wlx.crypto.signing import Purpose
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.errors import Rejection, RejectReason, UserError
from wlx.node.core.node import Node
from wlx.node.outgoing import sent_snapshots
from wlx.node.outgoing.origin import check_parties
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import verify_signed
from wlx.node.protocol.messages import Receipt, ReceiptKind, SignedRequest
from wlx.node.protocol.receipt_rules import Sent, check_receipt
from wlx.node.store.base import ReceiptRow, Tx

log = logging.getLogger("wlx.receipts")


MAX_RECEIPTS_PER_CALL = 1_000


def _sent(tx: Tx, peer: str, receipt: Receipt) -> Sent | None:
    """What the origin sent to ``peer`` at the receipt's position, if it knows."""
    if receipt.kind == ReceiptKind.SNAPSHOT:
        digest = sent_snapshots.digest_at(tx, peer, receipt.epoch, receipt.last_seq)
        if digest is None:
            return None
        return Sent(ReceiptKind.SNAPSHOT, receipt.epoch, 0, receipt.last_seq, digest)
    rows = tx.outbox_after(peer, receipt.epoch, receipt.first_seq - 1, 1)
    if not rows or rows[0].first_seq != receipt.first_seq:
        return None
    return Sent(
        ReceiptKind.BATCH, receipt.epoch, rows[0].first_seq, rows[0].last_seq, rows[0].digest
    )


def acknowledge(node: Node, receipts: Sequence[SignedRequest]) -> int:
    """Record a peer's signed receipts for batches and snapshots it applied.

    Each receipt must be signed by a trusted peer, addressed to this node,
    and name a batch (or snapshot position) with the digest this node made;
    a receipt that fails is logged and skipped.  Verified receipts are kept
    as signed, move the peer's acknowledged position forward and confirm
    the removals it covers (docs/protocol.md §8.4).  Returns how many were
    recorded.

    Raises:
        UserError: more than 1,000 receipts in one call.
    """
    if len(receipts) > MAX_RECEIPTS_PER_CALL:
        raise UserError(f"at most {MAX_RECEIPTS_PER_CALL} receipts per call")
    recorded = 0
    now = node.now()
    for signed in receipts:
        try:
            card = verify_signed(
                signed, purpose=Purpose.RECEIPT, me=node.node_id, trusted=node.trusted
            )
            receipt = codec.decode_receipt(signed.payload)
            check_parties(receipt.recipient, receipt.origin, signed.signer, node.node_id)
            with node.store.write() as tx:
                state = tx.get_outbound(card.node_id, for_update=True)
                if state is None:
                    raise Rejection(RejectReason.UNKNOWN_SIGNER, "no stream for this peer")
                check_receipt(
                    receipt,
                    stream_epoch=state.epoch,
                    stream_head=state.last_seq,
                    sent=_sent(tx, card.node_id, receipt),
                )
                tx.add_receipt(
                    ReceiptRow(
                        peer=card.node_id,
                        epoch=receipt.epoch,
                        kind=receipt.kind,
                        first_seq=receipt.first_seq,
                        last_seq=receipt.last_seq,
                        digest=receipt.digest,
                        applied_at=receipt.applied_at,
                        received_at=now,
                        signed=codec.encode_signed(
                            signed.payload,
                            signed.signature,
                            signed.signer,
                            signed.recipient,
                            signed.purpose,
                        ).SerializeToString(),
                    )
                )
                if receipt.epoch == state.epoch and receipt.last_seq > state.acked_seq:
                    tx.put_outbound(
                        replace(state, acked_seq=receipt.last_seq, acked_at=receipt.applied_at)
                    )
                tx.confirm_removals(card.node_id, receipt.epoch, receipt.last_seq)
                exchange_log.record(
                    tx,
                    node,
                    now,
                    kind=Event.RECEIPT,
                    peer=card.node_id,
                    epoch=receipt.epoch,
                    of=receipt.kind,
                    first_seq=receipt.first_seq,
                    last_seq=receipt.last_seq,
                    digest=receipt.digest.hex(),
                    applied_at=receipt.applied_at,
                )
            recorded += 1
        except Rejection as rejection:
            log.warning("receipt from %s not recorded: %s", signed.signer, rejection)
    return recorded
