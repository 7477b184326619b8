"""The recipient side of a node: applying what peers sent, or rejecting it.

Verify first (``wlx.node.protocol.inbound``, no storage touched), then
persist: the operations and the new cursor in one transaction (python-tuf's
verify-then-persist).  A rejected batch or snapshot changes nothing; the
rejection is logged to the store and the log, and raised to the caller with
its reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event, Field
from wlx.node.core import failpoints, metrics, normalisation
from wlx.node.core.errors import Rejected, Rejection, RejectReason, Unavailable, WlxError
from wlx.node.core.node import Node
from wlx.node.incoming import online
from wlx.node.protocol import codec, inbound
from wlx.node.protocol.envelopes import sign_message
from wlx.node.protocol.messages import (
    Batch,
    Cursor,
    Receipt,
    ReceiptKind,
    Sealed,
    SnapshotResume,
    Upsert,
)
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


def record_rejection(node: Node, origin: str, what: Rejected, rejection: Rejection) -> None:
    """Log a rejection durably, in the log, and as the origin's last sync error."""
    now = node.now()
    metrics.REJECTIONS.labels(origin, rejection.reason.value).inc()
    log.warning(
        "rejected %s from %s: %s (%s)", what, origin, rejection.reason.value, rejection.detail
    )
    with node.store.write() as tx:
        tx.add_rejection(RejectionRow(now, origin, what, rejection.reason.value, rejection.detail))
        tx.set_sync_status(origin, at=now, error=str(rejection))
        exchange_log.record(
            tx,
            node,
            now,
            kind=Event.REJECTED,
            origin=origin,
            what=what,
            reason=rejection.reason.value,
            detail=rejection.detail,
        )


def _receipt(
    node: Node,
    origin: str,
    *,
    epoch: int,
    kind: ReceiptKind,
    first: int,
    last: int,
    digest: bytes,
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
            if any(isinstance(op, Upsert) and op.online for op in batch.ops):
                online.mark_online(tx, origin, batch.epoch)
            failpoints.hit("receiver.mid_apply")
            tx.add_applied(origin, batch.epoch, batch.last_seq, batch.digest)
            tx.queue_receipt(
                origin,
                _receipt(
                    node,
                    origin,
                    epoch=batch.epoch,
                    kind=ReceiptKind.BATCH,
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
        record_rejection(node, origin, Rejected.BATCH, rejection)
        raise
    log.info("applied batch %d-%d from %s", batch.first_seq, batch.last_seq, origin)
    return Applied(batch.first_seq, batch.last_seq, len(batch.ops), duplicate=False)


@dataclass(frozen=True)
class SnapshotApplied:
    """What applying a snapshot did."""

    epoch: int
    at_seq: int
    entries: int


FetchParts = Callable[[SnapshotResume | None], Iterable[Sealed]]
"""Opens the origin's snapshot stream: a new snapshot (None), or the
continuation of the staged parts."""


def _progress_blob(
    node: Node,
    origin: str,
    progress: inbound.SnapshotProgress,
    extra: Mapping[str, object] | None = None,
) -> bytes:
    key = EpochKey(progress.token_key, origin, node.node_id, progress.epoch)
    return json.dumps(
        {
            **(extra or {}),
            "epoch": progress.epoch,
            "at_seq": progress.at_seq,
            "chain_digest": progress.chain_digest.hex(),
            "token_key": node.wrap_epoch_key(key).hex(),
            "next_index": progress.next_index,
            "last_digest": progress.last_digest.hex(),
            "entries": progress.entries,
            "resume_token": progress.resume_token.hex(),
            "final": progress.final,
            "normalisation": progress.normalisation,
        },
        separators=(",", ":"),
    ).encode()


def _staged_fields(node: Node, origin: str) -> dict[str, object]:
    """The staging's progress blob as it is (for the online tier's fields)."""
    with node.store.read() as tx:
        staged = tx.staged_snapshot(origin)
    return dict(json.loads(staged[1])) if staged else {}


def staged_progress(node: Node, origin: str) -> inbound.SnapshotProgress | None:
    """How far the snapshot of ``origin`` being staged got, if one is."""
    with node.store.read() as tx:
        staged = tx.staged_snapshot(origin)
    if staged is None:
        return None
    snapshot_id, blob = staged
    body = json.loads(blob)
    key = node.epoch_key(origin, node.node_id, body["epoch"], bytes.fromhex(body["token_key"]))
    return inbound.SnapshotProgress(
        snapshot_id=snapshot_id,
        epoch=body["epoch"],
        at_seq=body["at_seq"],
        chain_digest=bytes.fromhex(body["chain_digest"]),
        token_key=key.key,
        next_index=body["next_index"],
        last_digest=bytes.fromhex(body["last_digest"]),
        entries=body["entries"],
        resume_token=bytes.fromhex(body["resume_token"]),
        final=body["final"],
        # Staged before versions were recorded: only wlx-norm-1 was accepted then.
        normalisation=body.get("normalisation", normalisation.LEGACY),
    )


def _resume_point(
    node: Node, origin: str, start: Cursor | None
) -> tuple[inbound.SnapshotProgress | None, SnapshotResume | None]:
    """The staged parts to continue, if any still fit ``start``; the rest of
    what is staged for ``origin`` is discarded."""
    progress = staged_progress(node, origin)
    if progress is None:
        return None, None
    if (progress.final or progress.resume_token) and inbound.resumable(progress, start):
        resume = SnapshotResume(
            progress.snapshot_id,
            progress.next_index,
            progress.last_digest,
            progress.resume_token,
            progress.entries,
        )
        log.info("resuming the snapshot of %s after %d staged listings", origin, progress.entries)
        return progress, resume
    with node.store.write() as tx:
        tx.drop_staged_snapshot(origin)
    return None, None


def apply_snapshot(
    node: Node, origin: str, parts: Iterable[Sealed] | FetchParts
) -> SnapshotApplied:
    """Verify a snapshot part by part, staging entries, then swap it in atomically.

    Memory stays bounded by one part: entries go to the store's staging
    area as they arrive, each part committed with how far the snapshot got,
    and only a complete, verified snapshot replaces ``origin``'s listings,
    key and cursor (in one transaction).  Given ``parts`` as a function,
    parts staged earlier (before a crash or a dropped connection) are
    continued rather than fetched again (docs/protocol.md §7.4).  The caller
    holds the node's sync lock: nothing else moves the cursor meanwhile.

    Raises:
        Rejection: any part failed a check, the stream ended early, or the
            staged entries do not add up; what was staged is discarded and
            the rejection was logged.
        Unavailable: the cursor moved meanwhile (another sync of this node);
            nothing was applied, nothing was logged against the peer.
        Other errors (the connection dropped): the staged parts are kept.
    """
    start = cursor(node, origin)
    if callable(parts):
        progress, resume = _resume_point(node, origin, start)
        if progress is not None and progress.final:
            # Complete and verified before an interruption: apply it.
            return _apply_staged(node, origin, start, progress.result())
        stream = parts(resume)
    else:
        with node.store.write() as tx:
            tx.drop_staged_snapshot(origin)
        progress, stream = None, parts
    receiver = inbound.SnapshotReceiver(
        me=node.node_id,
        origin=origin,
        box_key=node.box_key,
        trusted=node.trusted,
        cursor=start,
        resume=progress,
        speaks=node.card.speaks.normalisation,  # what this node advertises (B.2-3)
    )
    online_fields = _staged_fields(node, origin) if progress is not None else {}
    try:
        for sealed in stream:
            online_fields = _stage_part(node, origin, receiver, sealed, online_fields)
            failpoints.hit("receiver.after_stage")
        result = receiver.result()
    except Rejection as rejection:
        _drop(node, origin)
        record_rejection(node, origin, Rejected.SNAPSHOT, rejection)
        raise
    return _apply_staged(node, origin, start, result)


def _stage_part(
    node: Node,
    origin: str,
    receiver: inbound.SnapshotReceiver,
    sealed: Sealed,
    online_fields: dict[str, object],
) -> dict[str, object]:
    """Verify the next part of a snapshot and stage its entries with how far
    the snapshot got; returns the online tier's fields updated by the part.

    Raises:
        Rejection: the part failed a check (nothing of it was staged).
    """
    part = receiver.receive(sealed)
    staged = receiver.progress
    assert staged is not None  # set by every part received
    # Staging survives a crash of the process (WAL), not always a
    # power loss; its progress is committed with it, so a resumed
    # snapshot continues exactly after what is staged.
    with node.store.write(durable=False) as tx:
        if part.index == 0:
            tx.drop_staged_snapshot(origin)  # a new snapshot replaces any staged
        tx.stage_entries(part.snapshot_id, origin, part.entries)
        online_fields = online.staged_fields(part, online_fields)
        tx.put_staged_snapshot(
            origin, part.snapshot_id, _progress_blob(node, origin, staged, online_fields)
        )
    return online_fields


def _apply_staged(
    node: Node, origin: str, start: Cursor | None, result: inbound.SnapshotResult
) -> SnapshotApplied:
    """Swap a complete, staged snapshot in (see ``apply_snapshot``)."""
    try:
        failpoints.hit("receiver.before_snapshot_apply")
        _swap_in(node, origin, start, result)
    except Rejection as rejection:
        _drop(node, origin)
        record_rejection(node, origin, Rejected.SNAPSHOT, rejection)
        raise
    except _CursorMoved:
        _drop(node, origin)
        raise Unavailable(
            f"the cursor for {origin} moved while its snapshot arrived (another sync of "
            "this node); sync again"
        ) from None
    drain_replaced(node)
    metrics.SNAPSHOTS_APPLIED.labels(origin).inc()
    log.info(
        "applied snapshot of %s: epoch %d at %d, %d listings",
        origin,
        result.epoch,
        result.cursor.seq,
        result.total_entries,
    )
    return SnapshotApplied(result.epoch, result.cursor.seq, result.total_entries)


class _CursorMoved(Exception):
    """Our own cursor changed under a snapshot: not the origin's doing."""


def _swap_in(node: Node, origin: str, start: Cursor | None, result: inbound.SnapshotResult) -> None:
    key = EpochKey(result.token_key, origin, node.node_id, result.epoch, result.normalisation)
    with node.store.write() as tx:
        state = tx.get_inbound(origin, for_update=True)
        if cursor_of(state) != start:
            raise _CursorMoved
        entries, tokens = tx.staged_counts(result.snapshot_id, origin)
        if entries != result.total_entries or tokens is None:
            raise Rejection(RejectReason.MALFORMED, "snapshot repeats a handle or a token")
        staged = tx.staged_snapshot(origin)
        tx.apply_staged(result.snapshot_id, origin)
        online.apply_staged(tx, origin, result.epoch, json.loads(staged[1]) if staged else {})
        tx.drop_staged_snapshot(origin)
        tx.clear_applied(origin)
        tx.add_applied(origin, result.epoch, result.cursor.seq, result.cursor.digest)
        tx.queue_receipt(
            origin,
            _receipt(
                node,
                origin,
                epoch=result.epoch,
                kind=ReceiptKind.SNAPSHOT,
                first=0,
                last=result.cursor.seq,
                digest=result.cursor.digest,
            ),
        )
        normalisation.record(tx, origin, node.node_id, result.epoch, result.normalisation)
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


def _drop(node: Node, origin: str) -> None:
    try:
        with node.store.write() as tx:
            tx.drop_staged_snapshot(origin)
    except Exception:
        log.exception("could not drop a staged snapshot")
        return
    drain_replaced(node)


DRAIN_CHUNK = 20_000
"""Rows of replaced listings deleted per write transaction."""


def drain_replaced(node: Node) -> None:
    """Delete the listings a snapshot replaced (and dropped stagings), a
    chunk per transaction, then give their space back.

    A swap only moves a pointer (``Tx.apply_staged``); the rows it retired
    go here, in short transactions that never hold up a lookup or a batch
    for long.  Whatever a failure leaves is deleted the next time (after a
    snapshot, or by housekeeping).
    """
    try:
        while True:
            with node.store.write(durable=False) as tx:
                if not tx.drain_old_slots(DRAIN_CHUNK):
                    break
        node.store.reclaim()
    except WlxError as exc:
        log.warning("could not delete replaced listings yet: %s", exc)


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
