"""Receipts must name what the origin sent (issue 8, item 3): a table of the
pure decision, and forged receipts against a real origin, which change nothing."""

from __future__ import annotations

import pytest
from support.nodes import FederationMaker, record
from test_rejections import dump

from wlx.crypto.digests import genesis_digest
from wlx.crypto.signing import Purpose
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.outgoing import origin, ownlist, receipts
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import sign_message
from wlx.node.protocol.messages import Receipt, ReceiptKind
from wlx.node.protocol.receipt_rules import Sent, check_receipt
from wlx.node.report import node_status

D1, D2 = b"\x01" * 32, b"\x02" * 32
BATCH = Sent(ReceiptKind.BATCH, 2, 4, 6, D1)
SNAP = Sent(ReceiptKind.SNAPSHOT, 2, 0, 3, D2)


def rc(kind: ReceiptKind, epoch: int, first: int, last: int, digest: bytes) -> Receipt:
    return Receipt("CN", "RU", epoch, kind, first, last, digest, 0)


ACCEPTED = [
    (rc(ReceiptKind.BATCH, 2, 4, 6, D1), BATCH),
    (rc(ReceiptKind.SNAPSHOT, 2, 0, 3, D2), SNAP),
    (
        rc(ReceiptKind.BATCH, 1, 1, 9, D1),
        Sent(ReceiptKind.BATCH, 1, 1, 9, D1),
    ),  # an earlier epoch, as sent
]
REFUSED = [
    (rc(ReceiptKind.SNAPSHOT, 3, 0, 0, D1), SNAP, "epoch 3"),  # a future epoch, whatever it claims
    (rc(ReceiptKind.BATCH, 3, 1, 1, D1), BATCH, "epoch 3"),
    (rc(ReceiptKind.BATCH, 2, 7, 9, D1), BATCH, "sent up to 8"),  # past the head
    (rc(ReceiptKind.BATCH, 2, 4, 6, D1), None, "does not hold"),
    (rc(ReceiptKind.BATCH, 2, 5, 6, D1), BATCH, "this node sent batch 4-6"),  # another range
    (
        rc(ReceiptKind.SNAPSHOT, 2, 0, 6, D1),
        BATCH,
        "this node sent batch",
    ),  # a batch is no snapshot
    (rc(ReceiptKind.BATCH, 2, 4, 6, D2), BATCH, "another digest"),
    (rc(ReceiptKind.SNAPSHOT, 2, 0, 3, D1), SNAP, "another digest"),
]


@pytest.mark.parametrize(("receipt", "sent"), ACCEPTED)
def test_a_receipt_for_what_was_sent_is_accepted(receipt: Receipt, sent: Sent) -> None:
    check_receipt(receipt, stream_epoch=2, stream_head=8, sent=sent)


@pytest.mark.parametrize(("receipt", "sent", "why"), REFUSED)
def test_a_receipt_for_anything_else_is_refused(
    receipt: Receipt, sent: Sent | None, why: str
) -> None:
    with pytest.raises(Rejection) as refused:
        check_receipt(receipt, stream_epoch=2, stream_head=8, sent=sent)
    assert refused.value.reason is RejectReason.UNKNOWN_BATCH and why in str(refused.value)


def test_forged_receipts_confirm_no_removal(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn, ru = fed["CN"].node, fed["RU"].node
    ownlist.import_records(cn, [record("CN-1"), record("CN-2")])
    fed.sync_all()
    ownlist.remove_record(cn, "CN-1")
    origin.materialise(cn, "RU")
    with cn.store.read() as tx:
        state = tx.get_outbound("RU")
    assert state is not None

    def signed(receipt: Receipt) -> object:
        return sign_message(
            codec.encode_receipt(receipt),
            Purpose.RECEIPT,
            signer="RU",
            key=ru.signing_key,
            recipient="CN",
        )

    future = state.epoch + 1
    forged = [
        # The public genesis digest of a future epoch: confirmed everything before.
        Receipt(
            "CN", "RU", future, ReceiptKind.SNAPSHOT, 0, 0, genesis_digest("CN", "RU", future), 0
        ),
        Receipt("CN", "RU", future, ReceiptKind.BATCH, 1, 1, b"\x00" * 32, 0),
        # A snapshot never served at the stream's head, with the head's digest.
        Receipt(
            "CN", "RU", state.epoch, ReceiptKind.SNAPSHOT, 0, state.last_seq, state.last_digest, 0
        ),
        # The head batch's digest under another range.
        Receipt(
            "CN", "RU", state.epoch, ReceiptKind.BATCH, 1, state.last_seq, state.last_digest, 0
        ),
    ]
    before = dump(cn)
    for receipt in forged:
        assert receipts.acknowledge(cn, [signed(receipt)]) == 0  # type: ignore[list-item]
    assert dump(cn) == before
    assert node_status(cn).peers[0].unconfirmed_removals == ("CN-1",)
    # The real receipt, sent by RU as it applies the batch, still confirms it.
    assert fed.sync("RU", "CN").ok
    assert node_status(cn).peers[0].unconfirmed_removals == ()


def test_a_receipt_for_a_snapshot_served_is_recorded(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    cn = fed["CN"].node
    ownlist.import_records(cn, [record("CN-1")])
    assert fed.sync("RU", "CN").ok
    with cn.store.read() as tx:
        state = tx.get_outbound("RU")
    assert state is not None and state.acked_seq == state.last_seq
    assert node_status(cn).peers[0].acked_at > 0
