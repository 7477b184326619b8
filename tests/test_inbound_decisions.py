"""Sans-I/O protocol decisions, on real signed and sealed payloads.

``inbound.decide_batch`` and ``inbound.receive_batch`` (every branch),
``inbound.SnapshotReceiver`` (every check of a part stream),
``outbound.decide_pull`` and ``outbound.build_batches``.  Keys come from a
seeded rng; payloads are made with the functions the nodes use.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest
from support.nodes import record

from wlx.crypto import signing, tls
from wlx.crypto.card import IdentityCard, make_card, parse_card
from wlx.crypto.digests import genesis_digest, payload_digest
from wlx.crypto.keys import BoxKey, Rng, SigningKey
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import codec, inbound, outbound
from wlx.node.protocol.envelopes import seal_presigned, seal_signed
from wlx.node.protocol.messages import (
    Batch,
    Cursor,
    Op,
    PullParams,
    ResyncRequired,
    Sealed,
    Upsert,
)

NOW = 1_800_000_000


def seeded(seed: int) -> Rng:
    return random.Random(seed).randbytes


@dataclass(frozen=True)
class Party:
    """A node's keys and verified card, without a node."""

    node_id: str
    signing_key: SigningKey
    box_key: BoxKey
    card: IdentityCard


def party(node_id: str, seed: int) -> Party:
    rng = seeded(seed)
    signing_key = SigningKey.generate(rng)
    box_key = BoxKey.generate(rng)
    cert = tls.node_certificate(
        tls.generate_key(rng), node_id, not_before=NOW - 300, not_after=NOW + 86_400, rng=rng
    )
    card = parse_card(
        make_card(signing_key, box_key.public(), node_id, "127.0.0.1:7000", NOW, cert)
    )
    return Party(node_id, signing_key, box_key, card)


CN = party("CN", 1)
RU = party("RU", 2)
AR = party("AR", 3)
MALLORY = party("CN", 4)  # claims to be CN, with its own key
TRUST: dict[str, IdentityCard] = {"CN": CN.card, "RU": RU.card, "AR": AR.card}
GENESIS = genesis_digest("CN", "RU", 1)
KEY = EpochKey(seeded(5)(32), "CN", "RU", 1)


def removes(*ids: str) -> list[Op]:
    return [outbound.remove_for(i, KEY) for i in ids]


def upserts(*ids: str, key: EpochKey = KEY) -> list[Upsert]:
    rng = seeded(6)
    return [outbound.upsert_for(record(i), 1, key, rng) for i in ids]


def build(
    ops: Sequence[Op],
    *,
    after_seq: int = 0,
    prev: bytes = GENESIS,
    epoch: int = 1,
    origin: str = "CN",
    recipient: str = "RU",
    key: SigningKey = CN.signing_key,
    max_ops: int = outbound.OPS_PER_BATCH,
) -> list[outbound.OutboxBatch]:
    return outbound.build_batches(
        ops,
        origin=origin,
        recipient=recipient,
        epoch=epoch,
        after_seq=after_seq,
        prev_digest=prev,
        created_at=NOW,
        key=key,
        max_ops=max_ops,
    )


def parsed(batch: outbound.OutboxBatch) -> Batch:
    return codec.decode_batch_payload(codec.decode_signed_bytes(batch.signed).payload)


def batch(ops: Sequence[Op], **kwargs: Any) -> Batch:
    (only,) = build(ops, **kwargs)
    return parsed(only)


# The honest stream CN -> RU, epoch 1: three batches of two operations.
B1, B2, B3 = (parsed(b) for b in build(removes("a", "b", "c", "d", "e", "f"), max_ops=2))
AT_0 = Cursor(1, 0, GENESIS)
AT_2 = Cursor(1, 2, B1.digest)
AT_4 = Cursor(1, 4, B2.digest)
APPLIED = {2: B1.digest, 4: B2.digest}


def decide(
    b: Batch,
    cursor: Cursor | None,
    applied: dict[int, bytes] | None = None,
    *,
    me: str = "RU",
    origin: str = "CN",
) -> inbound.Decision:
    known = applied or {}
    return inbound.decide_batch(b, me=me, origin=origin, cursor=cursor, digest_at=known.get)


def rejected(reason: RejectReason, call: Callable[[], object]) -> Rejection:
    with pytest.raises(Rejection) as caught:
        call()
    assert caught.value.reason is reason, caught.value
    assert str(caught.value).startswith(f"{reason.value}: ")
    return caught.value


# ------------------------------------------------------------- decide_batch


def test_the_honest_stream_is_applied_batch_after_batch() -> None:
    assert (B1.first_seq, B1.last_seq, B2.first_seq, B3.last_seq) == (1, 2, 3, 6)
    cursor = AT_0
    for b in (B1, B2, B3):
        decision = decide(b, cursor)
        assert decision == inbound.Apply(b, Cursor(1, b.last_seq, b.digest))
        assert isinstance(decision, inbound.Apply)
        cursor = decision.cursor
    assert cursor == Cursor(1, 6, B3.digest)


def test_a_batch_applied_before_is_a_duplicate() -> None:
    assert decide(B1, AT_4, APPLIED) == inbound.Duplicate(B1)
    assert decide(B2, AT_4, APPLIED) == inbound.Duplicate(B2)


def test_wrong_sender() -> None:
    rejected(RejectReason.WRONG_SENDER, lambda: decide(B1, AT_0, origin="AR"))
    from_ar = batch(removes("a"), origin="AR", prev=genesis_digest("AR", "RU", 1))
    rejected(RejectReason.WRONG_SENDER, lambda: decide(from_ar, AT_0))


def test_wrong_recipient() -> None:
    rejected(RejectReason.WRONG_RECIPIENT, lambda: decide(B1, AT_0, me="AR"))
    for_ar = batch(removes("a"), recipient="AR", prev=genesis_digest("CN", "AR", 1))
    rejected(RejectReason.WRONG_RECIPIENT, lambda: decide(for_ar, AT_0))


def test_no_cursor_yet_means_a_snapshot_is_needed_first() -> None:
    error = rejected(RejectReason.UNEXPECTED_EPOCH, lambda: decide(B1, None))
    assert "no snapshot" in error.detail


def test_stale_epoch() -> None:
    in_epoch_2 = Cursor(2, 0, genesis_digest("CN", "RU", 2))
    rejected(RejectReason.STALE_EPOCH, lambda: decide(B1, in_epoch_2))
    rejected(RejectReason.STALE_EPOCH, lambda: decide(B3, Cursor(2, 9, B3.digest)))


def test_newer_epoch_before_its_snapshot() -> None:
    epoch_2 = batch(removes("a"), epoch=2, prev=genesis_digest("CN", "RU", 2))
    error = rejected(RejectReason.UNEXPECTED_EPOCH, lambda: decide(epoch_2, AT_0))
    assert "before its snapshot" in error.detail


def test_rollback_behind_the_cursor_to_an_unknown_digest() -> None:
    # After a snapshot at 4, only the snapshot's position is known.
    rejected(RejectReason.ROLLBACK, lambda: decide(B1, AT_4, {4: B2.digest}))
    rejected(RejectReason.ROLLBACK, lambda: decide(B1, AT_4))


def test_fork_same_sequence_different_digest() -> None:
    other_b1 = batch(removes("x", "y"))
    assert (other_b1.first_seq, other_b1.last_seq) == (1, 2) and other_b1.digest != B1.digest
    error = rejected(RejectReason.FORK, lambda: decide(other_b1, AT_4, APPLIED))
    assert "differs" in error.detail


def test_fork_overlapping_the_applied_stream() -> None:
    straddling = batch(removes("b", "c"), after_seq=1, prev=GENESIS)  # 2-3, cursor at 2
    assert (straddling.first_seq, straddling.last_seq) == (2, 3)
    error = rejected(RejectReason.FORK, lambda: decide(straddling, AT_2, APPLIED))
    assert "overlaps" in error.detail
    from_start = batch(removes("a", "b", "c"))  # 1-3
    rejected(RejectReason.FORK, lambda: decide(from_start, AT_2, APPLIED))


def test_fork_prev_digest_does_not_chain_to_the_cursor() -> None:
    wrong_prev = batch(removes("c", "d"), after_seq=2, prev=bytes(32))
    error = rejected(RejectReason.FORK, lambda: decide(wrong_prev, AT_2, APPLIED))
    assert "does not chain" in error.detail
    # The honest B2 does not chain to a cursor that stands on another branch.
    rejected(RejectReason.FORK, lambda: decide(B2, Cursor(1, 2, bytes(32))))


def test_gap() -> None:
    error = rejected(RejectReason.GAP, lambda: decide(B3, AT_2, APPLIED))
    assert "starts at 5" in error.detail
    rejected(RejectReason.GAP, lambda: decide(B2, AT_0))


# ------------------------------------------------------------- receive_batch


def sealed_b1(**overrides: Any) -> Sealed:
    """The honest batch 1-2, sealed to RU, with any envelope field overridden."""
    (b1,) = build(removes("a", "b"))
    return replace(seal_presigned(b1.signed, Purpose.BATCH, sender="CN", to=RU.card), **overrides)


def flip(data: bytes, at: int = -1) -> bytes:
    mutable = bytearray(data)
    mutable[at] ^= 0x01
    return bytes(mutable)


def receive(sealed: Sealed, trusted: dict[str, IdentityCard] = TRUST) -> inbound.Decision:
    return inbound.receive_batch(
        sealed,
        me="RU",
        origin="CN",
        box_key=RU.box_key,
        trusted=trusted.get,
        cursor=AT_0,
        digest_at=lambda _: None,
    )


def test_receive_batch_opens_verifies_and_decides() -> None:
    decision = receive(sealed_b1())
    assert isinstance(decision, inbound.Apply) and decision.batch == B1


def _presigned(signed: bytes, to: IdentityCard = RU.card, sender: str = "CN") -> Sealed:
    return seal_presigned(signed, Purpose.BATCH, sender=sender, to=to)


ENVELOPE_CASES: list[tuple[str, Callable[[], Sealed], RejectReason]] = [
    ("purpose", lambda: sealed_b1(purpose=Purpose.SNAPSHOT_PART), RejectReason.MALFORMED),
    ("addressed-to-AR", lambda: sealed_b1(recipient="AR"), RejectReason.WRONG_RECIPIENT),
    ("from-AR", lambda: sealed_b1(sender="AR"), RejectReason.WRONG_SENDER),
    (
        "flipped",
        lambda: sealed_b1(ciphertext=flip(sealed_b1().ciphertext)),
        RejectReason.UNDECRYPTABLE,
    ),
    ("truncated", lambda: sealed_b1(ciphertext=b"\x00" * 40), RejectReason.UNDECRYPTABLE),
    (
        "sealed-for-AR",
        lambda: sealed_b1(ciphertext=_presigned(build(removes("a"))[0].signed, AR.card).ciphertext),
        RejectReason.UNDECRYPTABLE,
    ),
    (
        "forged-signature",
        lambda: _presigned(build(removes("a"), key=MALLORY.signing_key)[0].signed),
        RejectReason.BAD_SIGNATURE,
    ),
    (
        "signed-by-AR",
        lambda: _presigned(build(removes("a"), origin="AR")[0].signed),
        RejectReason.WRONG_SENDER,
    ),
    (
        "signed-for-AR",
        lambda: _presigned(build(removes("a"), recipient="AR")[0].signed),
        RejectReason.WRONG_RECIPIENT,
    ),
    (
        "snapshot-signature",
        lambda: seal_signed(
            codec.decode_signed_bytes(build(removes("a"))[0].signed).payload,
            Purpose.SNAPSHOT_PART,
            signer="CN",
            key=CN.signing_key,
            to=RU.card,
        ),
        RejectReason.MALFORMED,
    ),
    ("not-a-signed-message", lambda: _presigned(b"\xff\xff garbage"), RejectReason.MALFORMED),
    (
        "not-a-batch-payload",
        lambda: seal_signed(
            b"\xff\xff garbage", Purpose.BATCH, signer="CN", key=CN.signing_key, to=RU.card
        ),
        RejectReason.MALFORMED,
    ),
]


@pytest.mark.parametrize(
    ("make", "reason"), [c[1:] for c in ENVELOPE_CASES], ids=[c[0] for c in ENVELOPE_CASES]
)
def test_receive_batch_rejects_a_bad_envelope(
    make: Callable[[], Sealed], reason: RejectReason
) -> None:
    rejected(reason, lambda: receive(make()))


def test_receive_batch_rejects_an_untrusted_sender() -> None:
    rejected(RejectReason.UNKNOWN_SIGNER, lambda: receive(sealed_b1(), trusted={"AR": AR.card}))
    # A card under the trusted name but another key does not help either.
    rejected(RejectReason.BAD_SIGNATURE, lambda: receive(sealed_b1(), trusted={"CN": MALLORY.card}))


# ------------------------------------------------------------- snapshots

SID = bytes(range(16))
CHAIN_4 = B2.digest


def snapshot(
    entries: int,
    *,
    part_size: int = 2,
    at_seq: int = 4,
    chain: bytes = CHAIN_4,
    epoch: int = 1,
    snapshot_id: bytes = SID,
) -> list[Sealed]:
    key = EpochKey(seeded(10 + epoch)(32), "CN", "RU", epoch)
    return list(
        outbound.snapshot_parts(
            upserts(*(f"CN-{i}" for i in range(entries)), key=key),
            origin="CN",
            to=RU.card,
            key=CN.signing_key,
            epoch_key=key,
            at_seq=at_seq,
            chain_digest=chain,
            snapshot_id=snapshot_id,
            created_at=NOW,
            part_size=part_size,
        )
    )


def crafted_part(
    index: int,
    *,
    prev: bytes = b"",
    token_key: bytes | None = KEY.key,
    entries: Sequence[Upsert] = (),
    final: bool = False,
    total: int = 0,
    origin: str = "CN",
    recipient: str = "RU",
) -> tuple[Sealed, bytes]:
    """A part signed by CN with any field chosen; returns it and its payload digest."""
    payload = codec.encode_snapshot_part(
        origin=origin,
        recipient=recipient,
        epoch=1,
        snapshot_id=SID,
        index=index,
        at_seq=4,
        chain_digest=CHAIN_4,
        prev_part_digest=prev,
        token_key=token_key,
        entries=entries,
        final=final,
        total_entries=total,
        created_at=NOW,
    )
    sealed = seal_signed(
        payload, Purpose.SNAPSHOT_PART, signer="CN", key=CN.signing_key, to=RU.card
    )
    return sealed, payload_digest(payload)


def snapshot_receiver(cursor: Cursor | None = None) -> inbound.SnapshotReceiver:
    return inbound.SnapshotReceiver(
        me="RU", origin="CN", box_key=RU.box_key, trusted=TRUST.get, cursor=cursor
    )


def receive_all(parts: Sequence[Sealed], cursor: Cursor | None = None) -> inbound.SnapshotResult:
    receiver = snapshot_receiver(cursor)
    for part in parts:
        assert not receiver.done
        receiver.receive(part)
    assert receiver.done
    return receiver.result()


def test_snapshot_parts_in_order_give_the_result() -> None:
    parts = snapshot(5)
    assert len(parts) == 3
    receiver = snapshot_receiver()
    received = [receiver.receive(p) for p in parts]
    assert [p.index for p in received] == [0, 1, 2]
    assert [len(p.entries) for p in received] == [2, 2, 1]
    assert [p.final for p in received] == [False, False, True]
    assert receiver.done
    assert receiver.result() == inbound.SnapshotResult(
        snapshot_id=SID,
        epoch=1,
        token_key=EpochKey(seeded(11)(32), "CN", "RU", 1).key,
        cursor=Cursor(1, 4, CHAIN_4),
        total_entries=5,
    )


def test_an_empty_snapshot_is_one_final_part() -> None:
    result = receive_all(snapshot(0))
    assert result.total_entries == 0 and result.cursor == Cursor(1, 4, CHAIN_4)


def test_snapshot_parts_out_of_order() -> None:
    p0, p1, p2 = snapshot(5)
    error = rejected(RejectReason.MALFORMED, lambda: snapshot_receiver().receive(p1))
    assert "part 0" in error.detail
    receiver = snapshot_receiver()
    receiver.receive(p0)
    error = rejected(RejectReason.MALFORMED, lambda: receiver.receive(p2))
    assert "out of order" in error.detail
    again = snapshot_receiver()
    again.receive(p0)
    rejected(RejectReason.MALFORMED, lambda: again.receive(p0))


def test_snapshot_parts_from_different_snapshots() -> None:
    a = snapshot(5)
    b = snapshot(5, snapshot_id=bytes(16))
    receiver = snapshot_receiver()
    receiver.receive(a[0])
    error = rejected(RejectReason.MALFORMED, lambda: receiver.receive(b[1]))
    assert "different snapshots" in error.detail
    # Same id, another position in the stream.
    c = snapshot(5, at_seq=2, chain=B1.digest)
    receiver = snapshot_receiver()
    receiver.receive(a[0])
    rejected(RejectReason.MALFORMED, lambda: receiver.receive(c[1]))


def test_snapshot_part_chain_broken() -> None:
    p0, d0 = crafted_part(0, entries=upserts("CN-1"))
    bad, _ = crafted_part(
        1, prev=flip(d0), token_key=None, entries=upserts("CN-2"), final=True, total=2
    )
    receiver = snapshot_receiver()
    receiver.receive(p0)
    error = rejected(RejectReason.FORK, lambda: receiver.receive(bad))
    assert "does not chain" in error.detail
    good, _ = crafted_part(1, prev=d0, token_key=None, entries=upserts("CN-2"), final=True, total=2)
    assert receive_all([p0, good]).total_entries == 2


def test_snapshot_without_its_epoch_key() -> None:
    p0, _ = crafted_part(0, token_key=None, final=True)
    error = rejected(RejectReason.MALFORMED, lambda: snapshot_receiver().receive(p0))
    assert "epoch key" in error.detail
    # Only part 0 may carry it.
    first, digest = crafted_part(0)
    second, _ = crafted_part(1, prev=digest, final=True)
    receiver = snapshot_receiver()
    receiver.receive(first)
    rejected(RejectReason.MALFORMED, lambda: receiver.receive(second))


def test_snapshot_final_count_mismatch() -> None:
    p0, digest = crafted_part(0, entries=upserts("CN-1", "CN-2"))
    last, _ = crafted_part(
        1, prev=digest, token_key=None, entries=upserts("CN-3"), final=True, total=4
    )
    receiver = snapshot_receiver()
    receiver.receive(p0)
    error = rejected(RejectReason.MALFORMED, lambda: receiver.receive(last))
    assert "count" in error.detail
    alone, _ = crafted_part(0, entries=upserts("CN-1"), final=True, total=0)
    rejected(RejectReason.MALFORMED, lambda: snapshot_receiver().receive(alone))


def test_snapshot_part_after_the_final_one() -> None:
    (only,) = snapshot(1)
    receiver = snapshot_receiver()
    receiver.receive(only)
    error = rejected(RejectReason.MALFORMED, lambda: receiver.receive(only))
    assert "after the final" in error.detail
    assert receiver.result().total_entries == 1  # the verified snapshot stands


def test_snapshot_of_an_older_epoch() -> None:
    in_epoch_2 = Cursor(2, 0, genesis_digest("CN", "RU", 2))
    rejected(RejectReason.STALE_EPOCH, lambda: receive_all(snapshot(1), in_epoch_2))


def test_snapshot_behind_the_cursor() -> None:
    error = rejected(
        RejectReason.ROLLBACK, lambda: receive_all(snapshot(1), Cursor(1, 6, B3.digest))
    )
    assert "behind the cursor" in error.detail


def test_snapshot_at_the_cursor_with_another_digest() -> None:
    error = rejected(RejectReason.FORK, lambda: receive_all(snapshot(1), Cursor(1, 4, B1.digest)))
    assert "disagrees" in error.detail


def test_snapshot_at_ahead_of_or_after_the_cursor_is_accepted() -> None:
    assert receive_all(snapshot(1), AT_4).cursor == AT_4
    assert receive_all(snapshot(1), AT_2).cursor == AT_4
    newer = snapshot(1, epoch=2, at_seq=0, chain=genesis_digest("CN", "RU", 2))
    assert receive_all(newer, Cursor(1, 6, B3.digest)).epoch == 2


def test_snapshot_at_zero_carries_the_genesis_digest() -> None:
    result = receive_all(snapshot(2, at_seq=0, chain=GENESIS))
    assert result.cursor == Cursor(1, 0, GENESIS)
    for chain in (bytes(32), genesis_digest("CN", "AR", 1), genesis_digest("CN", "RU", 2)):
        error = rejected(
            RejectReason.MALFORMED, partial(receive_all, snapshot(2, at_seq=0, chain=chain))
        )
        assert "genesis" in error.detail


@pytest.mark.parametrize(
    ("speaks", "accepted"),
    [
        (("wlx-norm-1", "wlx-norm-2"), True),
        (("wlx-norm-2",), True),
        (("wlx-norm-1",), False),  # a node that does not advertise wlx-norm-2
    ],
)
def test_snapshot_of_a_normalisation_the_node_does_not_speak(
    speaks: tuple[str, ...], accepted: bool
) -> None:
    """MUST-B.2-3: part 0's epoch key names wlx-norm-2 (the default)."""
    p0 = snapshot(1)[0]
    receiver = inbound.SnapshotReceiver(
        me="RU", origin="CN", box_key=RU.box_key, trusted=TRUST.get, cursor=None, speaks=speaks
    )
    if accepted:
        assert receiver.receive(p0).index == 0
    else:
        error = rejected(RejectReason.MALFORMED, lambda: receiver.receive(p0))
        assert "does not speak" in error.detail


def test_snapshot_result_before_the_final_part() -> None:
    rejected(RejectReason.MALFORMED, snapshot_receiver().result)
    receiver = snapshot_receiver()
    receiver.receive(snapshot(5)[0])
    assert not receiver.done
    error = rejected(RejectReason.MALFORMED, receiver.result)
    assert "before its final part" in error.detail


def test_snapshot_naming_another_origin_or_recipient() -> None:
    from_ar, _ = crafted_part(0, origin="AR", final=True)
    rejected(RejectReason.WRONG_SENDER, lambda: snapshot_receiver().receive(from_ar))
    for_ar, _ = crafted_part(0, recipient="AR", final=True)
    rejected(RejectReason.WRONG_RECIPIENT, lambda: snapshot_receiver().receive(for_ar))


def test_snapshot_part_with_a_bad_envelope() -> None:
    (only,) = snapshot(1)
    flipped = Sealed(only.sender, only.recipient, only.purpose, flip(only.ciphertext))
    rejected(RejectReason.UNDECRYPTABLE, lambda: snapshot_receiver().receive(flipped))
    as_batch = Sealed(only.sender, only.recipient, Purpose.BATCH, only.ciphertext)
    rejected(RejectReason.MALFORMED, lambda: snapshot_receiver().receive(as_batch))
    forged_payload = codec.encode_snapshot_part(
        origin="CN",
        recipient="RU",
        epoch=1,
        snapshot_id=SID,
        index=0,
        at_seq=4,
        chain_digest=CHAIN_4,
        prev_part_digest=b"",
        token_key=KEY.key,
        entries=(),
        final=True,
        total_entries=0,
        created_at=NOW,
    )
    forged = seal_signed(
        forged_payload, Purpose.SNAPSHOT_PART, signer="CN", key=MALLORY.signing_key, to=RU.card
    )
    rejected(RejectReason.BAD_SIGNATURE, lambda: snapshot_receiver().receive(forged))


# ------------------------------------------------------------- decide_pull

OUTBOX = {2: B1.digest, 4: B2.digest, 6: B3.digest}
STARTS = {1, 3, 5}


def pull(epoch: int, after_seq: int, after_digest: bytes) -> PullParams:
    return PullParams("RU", "CN", epoch, after_seq, after_digest, NOW, bytes(16), 50)


def decide_pull(
    params: PullParams,
    *,
    epoch: int = 1,
    last_seq: int = 6,
    oldest_seq: int = 1,
    skipped: frozenset[int] = frozenset(),
) -> ResyncRequired | int:
    return outbound.decide_pull(
        params,
        epoch=epoch,
        last_seq=last_seq,
        last_digest=OUTBOX.get(last_seq, GENESIS),
        oldest_seq=oldest_seq,
        digest_at=lambda seq: OUTBOX.get(seq) if seq >= oldest_seq else None,
        starts_at=lambda seq: seq in STARTS and seq >= oldest_seq and seq not in skipped,
    )


def test_pull_without_a_cursor_needs_a_snapshot() -> None:
    assert decide_pull(pull(0, 0, b"")) == ResyncRequired("no-cursor", 1)


def test_pull_in_another_epoch_needs_a_snapshot() -> None:
    assert decide_pull(pull(1, 4, B2.digest), epoch=2) == ResyncRequired("new-epoch", 2)
    assert decide_pull(pull(3, 4, B2.digest), epoch=2) == ResyncRequired("new-epoch", 2)


def test_pull_ahead_of_the_origin() -> None:
    assert decide_pull(pull(1, 7, B3.digest)) == ResyncRequired("unknown-position", 1)


def test_pull_from_a_compacted_position() -> None:
    assert decide_pull(pull(1, 2, B1.digest), oldest_seq=5) == ResyncRequired("compacted", 1)
    # A position inside a batch is no batch boundary: unknown.
    assert decide_pull(pull(1, 3, B1.digest)) == ResyncRequired("unknown-position", 1)


def test_pull_from_genesis_when_the_first_batches_were_compacted() -> None:
    # Serving "after 0" would hand the recipient a gap it can never get past.
    assert decide_pull(pull(1, 0, GENESIS), oldest_seq=3) == ResyncRequired("compacted", 1)
    assert decide_pull(pull(1, 0, GENESIS), last_seq=6, oldest_seq=7) == ResyncRequired(
        "compacted", 1
    )


def test_pull_up_to_date_after_compaction() -> None:
    # Everything was compacted, the recipient has it all: nothing to send, no resync.
    assert decide_pull(pull(1, 6, B3.digest), oldest_seq=7) == 6
    assert decide_pull(pull(1, 6, B2.digest), oldest_seq=7) == ResyncRequired("fork", 1)


def test_pull_from_a_forked_position() -> None:
    assert decide_pull(pull(1, 4, B1.digest)) == ResyncRequired("fork", 1)
    assert decide_pull(pull(1, 0, bytes(32))) == ResyncRequired("fork", 1)


def test_pull_continues_a_good_cursor() -> None:
    assert decide_pull(pull(1, 0, GENESIS)) == 0
    assert decide_pull(pull(1, 0, GENESIS), last_seq=0, oldest_seq=1) == 0
    assert decide_pull(pull(1, 2, B1.digest)) == 2
    assert decide_pull(pull(1, 4, B2.digest), oldest_seq=3) == 4
    assert decide_pull(pull(1, 6, B3.digest)) == 6


# ------------------------------------------------------------- build_batches


def test_build_batches_chains_and_splits_at_max_ops() -> None:
    ops: list[Op] = [*upserts("CN-1", "CN-2", "CN-3"), *removes("d", "e", "f", "g")]
    prev = bytes(range(32))
    built = build(ops, after_seq=10, prev=prev, max_ops=3)
    assert [(b.first_seq, b.last_seq) for b in built] == [(11, 13), (14, 16), (17, 17)]
    batches = [parsed(b) for b in built]
    assert [b.prev_digest for b in batches] == [prev, built[0].digest, built[1].digest]
    assert [b.digest for b in batches] == [b.digest for b in built]
    assert [op for b in batches for op in b.ops] == ops
    for out, b in zip(built, batches, strict=True):
        signed = codec.decode_signed_bytes(out.signed)
        assert (signed.signer, signed.recipient, signed.purpose) == ("CN", "RU", Purpose.BATCH)
        assert payload_digest(signed.payload) == out.digest
        signing.verify(
            CN.card.sign_key, signed.signature, Purpose.BATCH, "CN", "RU", signed.payload
        )
        assert (b.origin, b.recipient, b.epoch, b.created_at) == ("CN", "RU", 1, NOW)
        assert (b.first_seq, b.last_seq) == (out.first_seq, out.last_seq)
    # The receiver accepts them in order, each continuing the cursor.
    cursor = Cursor(1, 10, prev)
    for b in batches:
        decision = decide(b, cursor)
        assert isinstance(decision, inbound.Apply)
        cursor = decision.cursor
    assert cursor == Cursor(1, 17, built[-1].digest)


def test_build_batches_edge_sizes() -> None:
    assert build([]) == []
    (one,) = build(removes("a", "b", "c"), max_ops=3)
    assert (one.first_seq, one.last_seq) == (1, 3)
    singles = build(removes("a", "b", "c"), max_ops=1)
    assert [(b.first_seq, b.last_seq) for b in singles] == [(1, 1), (2, 2), (3, 3)]
    assert parsed(singles[0]).prev_digest == GENESIS


def test_pull_across_a_skipped_position_needs_a_snapshot() -> None:
    # The batch after a valid cursor is gone (a snapshot request fast-forwarded
    # the stream past it, or a compaction dropped it): the cursor cannot go on.
    assert decide_pull(pull(1, 2, OUTBOX[2]), skipped=frozenset({3})) == ResyncRequired(
        "compacted", 1
    )
    assert decide_pull(pull(1, 2, OUTBOX[2])) == 2


def test_the_receiver_runs_the_tested_batch_check(
    federation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``receiver.apply_batch`` runs ``open_batch`` and ``decide_batch``, the two
    halves of ``receive_batch`` tested above, and no check of its own (issue 8)."""
    from wlx.node.outgoing import ownlist

    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    calls: list[str] = []

    def noting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return real(*args, **kwargs)

        return call

    for name in ("open_batch", "decide_batch"):
        monkeypatch.setattr(inbound, name, noting(name, getattr(inbound, name)))
    ownlist.import_records(fed["CN"].node, [record("CN-2")])
    assert fed.sync("RU", "CN").ok
    assert calls and calls[0] == "open_batch" and "decide_batch" in calls
