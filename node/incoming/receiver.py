"""The recipient side of a node: applying what peers sent, or rejecting it.

Verify first (``wlx.node.protocol.inbound``, no storage touched), then
persist: the operations and the new cursor in one transaction (python-tuf's
verify-then-persist).  A rejected batch or snapshot changes nothing; the
rejection is logged to the store and the log, and raised to the caller with
its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.core import failpoints, metrics
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.core.node import Node
from wlx.node.protocol import codec, inbound
from wlx.node.protocol.envelopes import sign_message
from wlx.node.protocol.messages import Batch, Cursor, Receipt, Sealed
from wlx.node.store.base import InboundState, RejectionRow

log = logging.getLogger("wlx.receiver")


@dataclass(frozen=True)
class Applied:
    """What applying one batch did."""

    batch_first: int
    batch_last: int
    ops: int
    duplicate: bool


def cursor_of(state: InboundState | None) -> Cursor | None:
    """The cursor a stored state stands for; None before the first snapshot."""
    if state is None or state.epoch == 0:
        return None
    return Cursor(state.epoch, state.seq, state.digest)


def cursor(node: Node, origin: str) -> Cursor | None:
    """The node's position in ``origin``'s stream, or None before its first snapshot."""
    with node.store.read() as tx:
        return cursor_of(tx.get_inbound(origin))


def record_rejection(node: Node, origin: str, what: str, rejection: Rejection) -> None:
    """Log a rejection durably, in the log, and as the origin's last sync error."""
    now = node.now()
    metrics.REJECTIONS.labels(origin, rejection.reason.value).inc()
    log.warning(
        "rejected %s from %s: %s (%s)", what, origin, rejection.reason.value, rejection.detail
    )
    with node.store.write() as tx:
        tx.add_rejection(RejectionRow(now, origin, what, rejection.reason.value, rejection.detail))
        tx.set_sync_status(origin, at=now, error=str(rejection))
        exchange_log.append(
            tx,
            node=node.node_id,
            time=now,
            kind=Event.REJECTED,
            origin=origin,
            what=what,
            reason=rejection.reason.value,
            detail=rejection.detail,
        )


def _receipt(
    node: Node, origin: str, *, epoch: int, kind: str, first: int, last: int, digest: bytes
) -> bytes:
    """A signed receipt for what was just applied (docs/protocol.md §8.4)."""
    receipt = Receipt(origin, node.node_id, epoch, kind, first, last, digest, node.now())
    signed = sign_message(
        codec.encode_receipt(receipt),
        Purpose.RECEIPT,
        signer=node.node_id,
        key=node.signing_key,
        recipient=origin,
    )
    return codec.encode_signed(
        signed.payload, signed.signature, signed.signer, signed.recipient, signed.purpose
    ).SerializeToString()


def _batch_fields(origin: str, batch: Batch) -> dict[str, Field]:
    return {
        "origin": origin,
        "epoch": batch.epoch,
        "first_seq": batch.first_seq,
        "last_seq": batch.last_seq,
        "digest": batch.digest.hex(),
    }


def apply_batch(node: Node, origin: str, sealed: Sealed) -> Applied:
    """Verify one batch envelope from ``origin`` and apply it with its cursor.

    Raises:
        Rejection: any check failed; nothing was applied and the rejection
            was logged.
    """
    try:
        batch = inbound.open_batch(
            sealed, me=node.node_id, origin=origin, box_key=node.box_key, trusted=node.trusted
        )
        failpoints.hit("receiver.before_apply")
        with node.store.write() as tx:
            state = tx.get_inbound(origin, for_update=True)
            current = cursor_of(state)
            decision = inbound.decide_batch(
                batch,
                me=node.node_id,
                origin=origin,
                cursor=current,
                digest_at=lambda seq: tx.applied_digest(origin, batch.epoch, seq),
            )
            if isinstance(decision, inbound.Duplicate):
                exchange_log.record(
                    tx,
                    node,
                    kind=Event.BATCH_DUPLICATE,
                    **_batch_fields(origin, batch),
                )
                return Applied(batch.first_seq, batch.last_seq, 0, duplicate=True)
            assert state is not None  # decide_batch rejects a batch without a cursor
            metrics.BATCHES_APPLIED.labels(origin).inc()
            tx.apply_ops(origin, batch.ops)
            failpoints.hit("receiver.mid_apply")
            tx.add_applied(origin, batch.epoch, batch.last_seq, batch.digest)
            tx.queue_receipt(
                origin,
                _receipt(
                    node,
                    origin,
                    epoch=batch.epoch,
                    kind="batch",
                    first=batch.first_seq,
                    last=batch.last_seq,
                    digest=batch.digest,
                ),
            )
            tx.put_inbound(
                replace(
                    state,
                    seq=decision.cursor.seq,
                    digest=decision.cursor.digest,
                    synced_at=node.now(),
                    last_error="",
                    last_error_at=0,
                )
            )
            exchange_log.record(
                tx,
                node,
                kind=Event.BATCH_APPLIED,
                ops=len(batch.ops),
                **_batch_fields(origin, batch),
            )
    except Rejection as rejection:
        record_rejection(node, origin, "batch", rejection)
        raise
    log.info("applied batch %d-%d from %s", batch.first_seq, batch.last_seq, origin)
    return Applied(batch.first_seq, batch.last_seq, len(batch.ops), duplicate=False)


@dataclass(frozen=True)
class SnapshotApplied:
    """What applying a snapshot did."""

    epoch: int
    at_seq: int
    entries: int


def apply_snapshot(node: Node, origin: str, parts: Iterable[Sealed]) -> SnapshotApplied:
    """Verify a snapshot part by part, staging entries, then swap it in atomically.

    Memory stays bounded by one part: entries go to the store's staging
    area as they arrive, and only a complete, verified snapshot replaces
    ``origin``'s listings, key and cursor (in one transaction).

    Raises:
        Rejection: any part failed a check, the stream ended early, or the
            staged entries do not add up; nothing was applied and the
            rejection was logged.
    """
    receiver = inbound.SnapshotReceiver(
        me=node.node_id,
        origin=origin,
        box_key=node.box_key,
        trusted=node.trusted,
        cursor=cursor(node, origin),
    )
    snapshot_id: bytes | None = None
    try:
        for sealed in parts:
            part = receiver.receive(sealed)
            snapshot_id = part.snapshot_id
            # Staging need not survive a crash (it is discarded at restart),
            # so its commits do not wait for the disk; applying it does.
            with node.store.write(durable=False) as tx:
                tx.stage_entries(part.snapshot_id, origin, part.entries)
        result = receiver.result()
        failpoints.hit("receiver.before_snapshot_apply")
        key = EpochKey(result.token_key, origin, node.node_id, result.epoch)
        with node.store.write() as tx:
            state = tx.get_inbound(origin, for_update=True)
            if cursor_of(state) != receiver.start_cursor:
                raise Rejection(
                    RejectReason.ROLLBACK, "the cursor moved while the snapshot arrived"
                )
            entries, tokens = tx.staged_counts(result.snapshot_id)
            if entries != result.total_entries or tokens < 0:
                raise Rejection(RejectReason.MALFORMED, "snapshot repeats a handle or a token")
            tx.apply_staged(result.snapshot_id, origin)
            tx.clear_applied(origin)
            tx.add_applied(origin, result.epoch, result.cursor.seq, result.cursor.digest)
            tx.queue_receipt(
                origin,
                _receipt(
                    node,
                    origin,
                    epoch=result.epoch,
                    kind="snapshot",
                    first=0,
                    last=result.cursor.seq,
                    digest=result.cursor.digest,
                ),
            )
            tx.put_inbound(
                InboundState(
                    origin=origin,
                    epoch=result.epoch,
                    token_key=node.wrap_epoch_key(key),
                    seq=result.cursor.seq,
                    digest=result.cursor.digest,
                    synced_at=node.now(),
                    origin_head=state.origin_head if state else 0,
                )
            )
            exchange_log.record(
                tx,
                node,
                kind=Event.SNAPSHOT_APPLIED,
                origin=origin,
                epoch=result.epoch,
                at_seq=result.cursor.seq,
                chain_digest=result.cursor.digest.hex(),
                entries=result.total_entries,
                snapshot=result.snapshot_id.hex(),
            )
    except Rejection as rejection:
        _drop(node, snapshot_id)
        record_rejection(node, origin, "snapshot", rejection)
        raise
    except BaseException:
        _drop(node, snapshot_id)
        raise
    metrics.SNAPSHOTS_APPLIED.labels(origin).inc()
    log.info(
        "applied snapshot of %s: epoch %d at %d, %d listings",
        origin,
        result.epoch,
        result.cursor.seq,
        result.total_entries,
    )
    return SnapshotApplied(result.epoch, result.cursor.seq, result.total_entries)


def _drop(node: Node, snapshot_id: bytes | None) -> None:
    if snapshot_id is None:
        return
    try:
        with node.store.write() as tx:
            tx.drop_staging(snapshot_id)
    except Exception:
        log.exception("could not drop a staged snapshot")


@dataclass(frozen=True)
class Purged:
    """What a purge of expired listings removed, per origin."""

    by_origin: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_origin.values())


def purge_expired(node: Node) -> Purged:
    """Delete every held listing whose expiry date has passed.

    Runs without the origin: expiry dates are held in the clear for exactly
    this (docs/protocol.md §9.3).  For the node's own list this drops only
    the index entries; removing the records themselves is retention's job
    (``ownlist.enforce_retention``).
    """
    today = node.today()
    counts: dict[str, int] = {}
    while True:
        with node.store.write() as tx:
            expired = [(o, h) for o, h in tx.expired_entries(today, 1_000) if o != node.node_id]
            by_origin: dict[str, list[bytes]] = {}
            for origin, handle in expired:
                by_origin.setdefault(origin, []).append(handle)
            for origin, handles in by_origin.items():
                tx.remove_entries(origin, handles)
                counts[origin] = counts.get(origin, 0) + len(handles)
                exchange_log.record(
                    tx,
                    node,
                    kind=Event.PURGE,
                    origin=origin,
                    listings=len(handles),
                    before=today,
                )
        if len(expired) < 1_000:
            break
    for origin, count in counts.items():
        log.info("purged %d expired listings of %s", count, origin)
    return Purged(counts)
