"""The origin side of a node: its own list, its peers, and what it sends them.

* ``import_records`` / ``remove_record`` change the own list, append to the
  change log and update the own index, in one transaction.
* ``add_peer`` trusts a peer and opens its stream (epoch 1, fresh key).
* ``materialise`` turns new change-log entries into signed batches for one
  peer (docs/protocol.md §6.1); ``pull`` and ``snapshot`` serve a peer's
  signed requests (§8).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.digests import genesis_digest, skip_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node import lifecycle
from wlx.node.app import Node
from wlx.node.audit import log as audit
from wlx.node.audit.log import Event
from wlx.node.errors import AlreadyExists, NotFound, Rejection, RejectReason, Unavailable, UserError
from wlx.node.model import Record
from wlx.node.policy import SharingPolicy
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.envelopes import (
    same_digest,
    seal_presigned,
    verify_request,
    verify_signed,
)
from wlx.node.protocol.messages import (
    Op,
    PullParams,
    Receipt,
    ResyncRequired,
    Sealed,
    SignedRequest,
    SnapshotParams,
    StreamHead,
    Upsert,
)
from wlx.node.store.base import (
    InboundState,
    OutboundState,
    OutboxRow,
    PeerRow,
    ReceiptRow,
    StoredRecord,
    Tx,
)

log = logging.getLogger("wlx.origin")

MAX_CLOCK_SKEW = 300
"""Seconds a signed request's issue time may differ from the origin's clock."""
DEFAULT_MAX_BATCHES = 50
MATERIALISE_CHUNK = 5_000
SNAPSHOT_ATTEMPTS = 5


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    added: int
    updated: int
    unchanged: int


def _record_context(record_id: str) -> str:
    return f"record:{record_id}"


def _upsert(
    node: Node, stored: StoredRecord, key: EpochKey, record: Record | None = None
) -> Upsert:
    return outbound.upsert_for(
        record or load_record(node, stored),
        stored.version,
        key,
        node.rng,
        suspended=stored.suspended,
    )


def load_record(node: Node, stored: StoredRecord) -> Record:
    """Decrypt and parse one of the node's own stored records."""
    return Record.from_json(node.open_at_rest(stored.body, _record_context(stored.id)))


def import_records(node: Node, records: Sequence[Record]) -> ImportResult:
    """Add or replace records of the own list: all of them, or none.

    A record identical to the stored one is left alone (no new version, no
    delta).  Each change is logged and indexed in the same transaction.
    """
    own_key = node.own_epoch_key()
    now = node.now()
    added = updated = unchanged = 0
    with node.store.write() as tx:
        tx.lock_changes()
        for record in records:
            body = record.to_json()
            existing = tx.get_record(record.id)
            if existing is not None:
                if node.open_at_rest(existing.body, _record_context(record.id)) == body:
                    unchanged += 1
                    continue
                updated += 1
            else:
                added += 1
            version = existing.version + 1 if existing else 1
            suspended = existing.suspended if existing else False
            sealed_body = node.seal_at_rest(body, _record_context(record.id))
            stored = StoredRecord(record.id, version, sealed_body, record.expires, now, suspended)
            tx.put_record(stored)
            tx.append_change(record.id, "upsert", version, now)
            tx.apply_ops(
                node.node_id,
                [outbound.upsert_for(record, version, own_key, node.rng, suspended=suspended)],
            )
            audit.append(
                tx,
                node=node.node_id,
                time=now,
                kind=Event.RECORD_UPSERT,
                record=record.id,
                version=version,
            )
    log.info("imported records: %d added, %d updated, %d unchanged", added, updated, unchanged)
    return ImportResult(added, updated, unchanged)


def remove_record(node: Node, record_id: str) -> None:
    """Remove a record from the own list; peers receive the removal.

    Raises:
        NotFound: no such record.
    """
    own_key = node.own_epoch_key()
    with node.store.write() as tx:
        tx.lock_changes()
        existing = tx.get_record(record_id)
        if existing is None:
            raise NotFound(f"no record with id {record_id!r}")
        tx.delete_record(record_id)
        tx.append_change(record_id, "remove", existing.version + 1, node.now())
        tx.apply_ops(node.node_id, [outbound.remove_for(record_id, own_key)])
        audit.append(
            tx,
            node=node.node_id,
            time=node.now(),
            kind=Event.RECORD_REMOVE,
            record=record_id,
            version=existing.version + 1,
        )
    log.info("removed record %s", record_id)


def suspend_record(node: Node, record_id: str, *, suspended: bool) -> bool:
    """Suspend a listing (or lift the suspension); peers receive the change.

    A suspended listing still hits at every peer, marked suspended and with
    no requested action, until lifted or removed.  Returns False when the
    listing was already in that state (nothing changed).

    Raises:
        NotFound: no such record.
    """
    own_key = node.own_epoch_key()
    now = node.now()
    with node.store.write() as tx:
        tx.lock_changes()
        existing = tx.get_record(record_id)
        if existing is None:
            raise NotFound(f"no record with id {record_id!r}")
        if existing.suspended == suspended:
            return False
        stored = StoredRecord(
            existing.id, existing.version + 1, existing.body, existing.expires, now, suspended
        )
        tx.put_record(stored)
        tx.append_change(record_id, "upsert", stored.version, now)
        tx.apply_ops(node.node_id, [_upsert(node, stored, own_key)])
        audit.append(
            tx,
            node=node.node_id,
            time=now,
            kind=Event.RECORD_SUSPEND,
            record=record_id,
            version=stored.version,
            suspended=suspended,
        )
    log.info("%s record %s", "suspended" if suspended else "reinstated", record_id)
    return True


def enforce_retention(node: Node, grace_days: int) -> list[str]:
    """Remove own records that expired more than ``grace_days`` ago.

    Each removal is a normal one: logged, and sent to every peer.  Returns
    the removed ids.
    """
    cutoff = datetime.date.fromisoformat(node.today()) - datetime.timedelta(days=grace_days)
    with node.store.read() as tx:
        expired = tx.expired_records(cutoff.isoformat())
    removed = []
    for record_id in expired:
        try:
            remove_record(node, record_id)
        except NotFound:
            continue  # removed by someone else meanwhile
        removed.append(record_id)
    if removed:
        log.info("retention: removed %d expired records", len(removed))
    return removed


def add_peer(
    node: Node, card_bytes: bytes, address: str, expect_fingerprint: str | None = None
) -> IdentityCard:
    """Trust the node of ``card_bytes``, reachable at ``address``.

    A new peer's stream starts at epoch 1 with a fresh random token key; it
    receives the current list by snapshot on its first pull.  Adding the same
    card again only updates the address; a card endorsed by the key already
    trusted (a key rotation) replaces it; re-adding a revoked peer trusts it
    again, in a new epoch.

    Raises:
        UserError: not a valid card, this node's own card, or a fingerprint
            that does not match.
        AlreadyExists: the node id is trusted already, with another key that
            did not endorse this card.
    """
    try:
        card = parse_card(card_bytes)
    except CryptoError as exc:
        raise UserError(f"not a valid identity card ({exc})") from None
    if card.node_id == node.node_id:
        raise UserError("that is this node's own identity card")
    if expect_fingerprint is not None and expect_fingerprint.lower() != card.fingerprint():
        raise UserError(
            f"fingerprint mismatch: the card's is {card.fingerprint()}; do not trust it"
        )
    with node.store.read() as tx:
        existing = tx.get_peer(card.node_id)
    if existing is not None and not existing.revoked_at:
        current = parse_card(existing.card)
        if not current.sign_key.same_as(card.sign_key):
            if card.previous_key is None or not card.previous_key.same_as(current.sign_key):
                raise AlreadyExists(
                    f"peer {card.node_id} is already trusted with another identity key"
                )
            lifecycle.accept_card(node, card_bytes)
        with node.store.write() as tx:
            row = tx.get_peer(card.node_id)
            if row is not None:
                tx.put_peer(replace(row, address=address))
        return card
    now = node.now()
    with node.store.write() as tx:
        tx.lock_changes()
        tx.put_peer(PeerRow(card.node_id, card.raw, address, now))
        if tx.get_inbound(card.node_id) is None:
            # Its list arrives with its first snapshot; until then, epoch 0.
            tx.put_inbound(InboundState(card.node_id, 0, b"", 0, b"", 0))
        state = tx.get_outbound(card.node_id, for_update=True)
        if state is None:
            key = EpochKey.generate(node.node_id, card.node_id, 1, node.rng)
            tx.put_outbound(
                OutboundState(
                    peer=card.node_id,
                    epoch=1,
                    token_key=node.wrap_epoch_key(key),
                    change_pos=tx.change_head(),
                    last_seq=0,
                    last_digest=genesis_digest(node.node_id, card.node_id, 1),
                    epoch_started_at=now,
                )
            )
        else:  # trusted again after a revocation: a new epoch, never a reused one
            lifecycle.restart_stream(node, tx, state)
        audit.append(
            tx,
            node=node.node_id,
            time=now,
            kind=Event.PEER_TRUST,
            peer=card.node_id,
            fingerprint=card.fingerprint(),
            address=address,
        )
    log.info("trusted peer %s (%s) at %s", card.node_id, card.fingerprint(), address)
    return card


def _ops_for(
    node: Node, tx: Tx, key: EpochKey, changes_pos: int, policy: SharingPolicy
) -> tuple[list[Op], dict[int, str], int]:
    """Operations for the changes after ``changes_pos``; also which of them
    (by index) remove which record, and the change-log position reached.

    A change to a listing the peer's policy does not share becomes a removal
    (a no-op for a peer that never had it)."""
    changes = tx.changes_after(changes_pos, MATERIALISE_CHUNK)
    ops: list[Op] = []
    removals: dict[int, str] = {}
    for change in changes:
        if change.op == "remove":
            removals[len(ops)] = change.record_id
            ops.append(outbound.remove_for(change.record_id, key))
            continue
        stored = tx.get_record(change.record_id)
        if stored is None or stored.version != change.version:
            continue  # superseded: a later change in the log carries the record
        record = load_record(node, stored)
        if not policy.allows(record):
            ops.append(outbound.remove_for(change.record_id, key))
            continue
        ops.append(_upsert(node, stored, key, record))
    return ops, removals, changes[-1].seq if changes else changes_pos


def _emit(
    node: Node, tx: Tx, state: OutboundState, ops: list[Op], removals: dict[int, str]
) -> OutboundState:
    """Cut ``ops`` into signed batches continuing ``state``'s stream, keep and
    log them; returns the advanced state (not yet stored)."""
    now = node.now()
    batches = outbound.build_batches(
        ops,
        origin=node.node_id,
        recipient=state.peer,
        epoch=state.epoch,
        after_seq=state.last_seq,
        prev_digest=state.last_digest,
        created_at=now,
        key=node.signing_key,
    )
    for batch in batches:
        tx.add_outbox(state.peer, state.epoch, _row(batch), now)
    for index, record_id in removals.items():
        tx.add_sent_removal(state.peer, state.epoch, state.last_seq + 1 + index, record_id)
    for batch in batches:
        audit.append(
            tx,
            node=node.node_id,
            time=now,
            kind=Event.BATCH_SENT,
            peer=state.peer,
            epoch=state.epoch,
            first_seq=batch.first_seq,
            last_seq=batch.last_seq,
            digest=batch.digest.hex(),
        )
    if not batches:
        return state
    return replace(state, last_seq=batches[-1].last_seq, last_digest=batches[-1].digest)


def _policy(tx: Tx, peer: str) -> SharingPolicy:
    row = tx.get_peer(peer)
    return SharingPolicy.from_json(row.policy) if row is not None else SharingPolicy()


def materialise(node: Node, peer: str) -> OutboundState:
    """Turn every change not yet sent to ``peer`` into signed, stored batches.

    Works in chunks, one transaction each, so a large import does not hold
    the store's write lock for long.  Returns the peer's stream state.

    Raises:
        NotFound: ``peer`` has no stream (not a trusted peer).
    """
    while True:
        with node.store.write() as tx:
            state = tx.get_outbound(peer, for_update=True)
            if state is None:
                raise NotFound(f"no stream for peer {peer}")
            if state.change_pos >= tx.change_head():
                return state
            key = node.epoch_key(node.node_id, peer, state.epoch, state.token_key)
            ops, removals, change_pos = _ops_for(node, tx, key, state.change_pos, _policy(tx, peer))
            state = replace(_emit(node, tx, state, ops, removals), change_pos=change_pos)
            tx.put_outbound(state)


def set_policy(node: Node, peer: str, policy: SharingPolicy) -> tuple[int, int]:
    """Change what ``peer`` receives; returns (removals, additions) sent.

    The peer's stream is first brought up to date under the old policy;
    then, in the same transaction, every listing the new policy no longer
    shares is removed from the peer and every listing it newly shares is
    sent (docs/protocol.md §6.5).

    Raises:
        NotFound: ``peer`` is not a trusted peer.
    """
    materialise(node, peer)
    with node.store.write() as tx:
        tx.lock_changes()  # the list cannot change under us
        row = tx.get_peer(peer)
        state = tx.get_outbound(peer, for_update=True)
        if row is None or row.revoked_at or state is None:
            raise NotFound(f"{peer} is not a trusted peer")
        key = node.epoch_key(node.node_id, peer, state.epoch, state.token_key)
        old = SharingPolicy.from_json(row.policy)
        while state.change_pos < tx.change_head():  # changes that came in between
            pending, pending_removals, pos = _ops_for(node, tx, key, state.change_pos, old)
            state = replace(_emit(node, tx, state, pending, pending_removals), change_pos=pos)
        ops: list[Op] = []
        removals: dict[int, str] = {}
        added = 0
        today = node.today()
        for stored in tx.iter_records():
            record = load_record(node, stored)
            was, now = old.allows(record), policy.allows(record)
            if was and not now:
                removals[len(ops)] = record.id
                ops.append(outbound.remove_for(record.id, key))
            elif now and not was and stored.expires >= today:
                ops.append(_upsert(node, stored, key, record))
                added += 1
        state = _emit(node, tx, state, ops, removals)
        tx.put_outbound(state)
        tx.put_peer(replace(row, policy=policy.to_json()))
        audit.append(
            tx,
            node=node.node_id,
            time=node.now(),
            kind=Event.POLICY_CHANGE,
            peer=peer,
            policy=policy.to_json(),
            removed=len(removals),
            added=added,
        )
    log.info(
        "sharing policy for %s: %s (%d removals, %d additions)",
        peer,
        policy.describe(),
        len(removals),
        added,
    )
    return len(removals), added


def _row(batch: outbound.OutboxBatch) -> OutboxRow:
    return OutboxRow(batch.first_seq, batch.last_seq, batch.digest, batch.signed)


def _verify(node: Node, request: SignedRequest, purpose: Purpose) -> tuple[IdentityCard, bytes]:
    def issued_at(payload: bytes) -> int:
        if purpose is Purpose.PULL:
            return codec.decode_pull_params(payload).issued_at
        return codec.decode_snapshot_params(payload).issued_at

    card = verify_request(
        request,
        purpose=purpose,
        me=node.node_id,
        trusted=node.trusted,
        now=node.now(),
        issued_at=issued_at,
        max_skew=MAX_CLOCK_SKEW,
    )
    return card, request.payload


def _check_parties(requester: str, origin: str, signer: str, me: str) -> None:
    if requester != signer:
        raise Rejection(
            RejectReason.WRONG_SENDER, "request names another requester than its signer"
        )
    if origin != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "request addressed to another origin")


PullItem = StreamHead | ResyncRequired | Sealed


def pull(node: Node, request: SignedRequest) -> Iterator[PullItem]:
    """Serve a peer's signed pull: its batches after its cursor, or a resync.

    Raises:
        Rejection: the request does not verify (unknown signer, bad
            signature, wrong recipient, stale).
    """
    card, payload = _verify(node, request, Purpose.PULL)
    params: PullParams = codec.decode_pull_params(payload)
    _check_parties(params.requester, params.origin, request.signer, node.node_id)
    state = materialise(node, card.node_id)
    limit = min(params.max_batches or DEFAULT_MAX_BATCHES, DEFAULT_MAX_BATCHES)
    with node.store.read() as tx:
        decision = outbound.decide_pull(
            params,
            epoch=state.epoch,
            last_seq=state.last_seq,
            last_digest=state.last_digest,
            oldest_seq=tx.outbox_oldest(card.node_id, state.epoch) or state.last_seq + 1,
            digest_at=lambda seq: tx.outbox_digest_at(card.node_id, state.epoch, seq),
            starts_at=lambda seq: tx.outbox_starts_at(card.node_id, state.epoch, seq),
        )
    yield StreamHead(state.epoch, state.last_seq, node.now())
    if isinstance(decision, ResyncRequired):
        log.info("peer %s must resync (%s)", card.node_id, decision.reason)
        yield decision
        return
    after, sent = decision, 0
    while sent < limit:
        with node.store.read() as tx:
            rows = tx.outbox_after(card.node_id, state.epoch, after, min(10, limit - sent))
        if not rows:
            return
        for row in rows:
            yield seal_presigned(row.signed, Purpose.BATCH, sender=node.node_id, to=card)
        sent += len(rows)
        after = rows[-1].last_seq


class _Counted:
    """An iterator of snapshot entries that counts what it yields."""

    def __init__(self, entries: Iterator[Upsert]) -> None:
        self._entries = entries
        self.count = 0

    def __iter__(self) -> Iterator[Upsert]:
        for entry in self._entries:
            self.count += 1
            yield entry


def _live_entries(node: Node, tx: Tx, key: EpochKey, policy: SharingPolicy) -> Iterator[Upsert]:
    today = node.today()
    for stored in tx.iter_records():
        if stored.expires < today:
            continue
        record = load_record(node, stored)
        if policy.allows(record):
            yield _upsert(node, stored, key, record)


def _fast_forward(node: Node, peer: str) -> None:
    """Move a stream past its pending changes without making batches of them.

    A peer asking for a snapshot replaces its state with the snapshot, so
    batches of the changes not yet made for it would never be read: the
    stream skips them instead (``skip_digest``, docs/protocol.md §7.3), and
    the snapshot, taken at the new position, contains their effect.
    """
    with node.store.write() as tx:
        state = tx.get_outbound(peer, for_update=True)
        if state is None:
            raise NotFound(f"no stream for peer {peer}")
        head = tx.change_head()
        if state.change_pos < head:
            tx.put_outbound(
                replace(
                    state,
                    change_pos=head,
                    last_seq=state.last_seq + 1,
                    last_digest=skip_digest(state.last_digest),
                )
            )


def snapshot(node: Node, request: SignedRequest) -> Iterator[Sealed]:
    """Serve a peer's signed snapshot request: its full current state, in parts.

    The snapshot is read in one consistent read transaction in which the
    peer's stream has caught up with the change log, so it is exactly the
    state after the stream's last batch.

    Raises:
        Rejection: the request does not verify.
        Unavailable: the list kept changing; the peer should retry.
    """
    card, payload = _verify(node, request, Purpose.SNAPSHOT)
    params: SnapshotParams = codec.decode_snapshot_params(payload)
    _check_parties(params.requester, params.origin, request.signer, node.node_id)
    for _ in range(SNAPSHOT_ATTEMPTS):
        _fast_forward(node, card.node_id)
        with node.store.read() as tx:
            state = tx.get_outbound(card.node_id)
            if state is None:
                raise NotFound(f"no stream for peer {card.node_id}")
            if state.change_pos < tx.change_head():
                continue  # a change committed in between; catch up again
            key = node.epoch_key(node.node_id, card.node_id, state.epoch, state.token_key)
            log.info("snapshot for %s at %d (epoch %d)", card.node_id, state.last_seq, state.epoch)
            entries = _Counted(_live_entries(node, tx, key, _policy(tx, card.node_id)))
            snapshot_id = node.rng(codec.NONCE_BYTES)
            yield from outbound.snapshot_parts(
                entries,
                origin=node.node_id,
                to=card,
                key=node.signing_key,
                epoch_key=key,
                at_seq=state.last_seq,
                chain_digest=state.last_digest,
                snapshot_id=snapshot_id,
                created_at=node.now(),
            )
        with node.store.write() as tx:
            audit.append(
                tx,
                node=node.node_id,
                time=node.now(),
                kind=Event.SNAPSHOT_SENT,
                peer=card.node_id,
                epoch=state.epoch,
                at_seq=state.last_seq,
                chain_digest=state.last_digest.hex(),
                entries=entries.count,
                snapshot=snapshot_id.hex(),
            )
        return
    raise Unavailable("the list is changing too fast to snapshot; retry")


MAX_RECEIPTS_PER_CALL = 1_000


def _receipt_digest(tx: Tx, node: Node, state: OutboundState, receipt: Receipt) -> bytes | None:
    """The digest the origin made for what ``receipt`` acknowledges, if kept."""
    if receipt.last_seq == 0:
        return genesis_digest(node.node_id, state.peer, receipt.epoch)
    if receipt.epoch == state.epoch and receipt.last_seq == state.last_seq:
        return state.last_digest
    return tx.outbox_digest_at(state.peer, receipt.epoch, receipt.last_seq)


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
            _check_parties(receipt.recipient, receipt.origin, signed.signer, node.node_id)
            with node.store.write() as tx:
                state = tx.get_outbound(card.node_id, for_update=True)
                if state is None:
                    raise Rejection(RejectReason.UNKNOWN_SIGNER, "no stream for this peer")
                expected = _receipt_digest(tx, node, state, receipt)
                if expected is None or not same_digest(expected, receipt.digest):
                    raise Rejection(
                        RejectReason.UNKNOWN_BATCH, "receipt for a batch this node does not hold"
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
                audit.append(
                    tx,
                    node=node.node_id,
                    time=now,
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


def compact(node: Node, *, keep_seconds: int) -> tuple[int, int]:
    """Compact the outbox and the change log; returns (batches, changes) deleted.

    For each peer (docs/protocol.md §7.3):

    * batches it acknowledged are deleted, but the last one, so that its
      cursor can still be checked;
    * batches older than ``keep_seconds`` are deleted whatever their state;
    * if it has not pulled the changes of the last ``keep_seconds`` at all,
      its stream skips them: the origin stops keeping them for it and moves
      the stream's anchor (``skip_digest``), so that it resumes from a
      snapshot.

    Change-log entries every stream has consumed are then deleted.  Nothing
    any peer needs to catch up is lost: whatever was deleted, the snapshot it
    will be offered replaces.
    """
    cutoff = node.now() - keep_seconds
    batches = 0
    with node.store.write() as tx:
        tx.lock_changes()
        head = tx.change_head()
        states = []
        skipped: list[str] = []
        for current in tx.list_outbound():
            state = current
            pending = tx.changes_after(state.change_pos, 1)
            if pending and pending[0].at < cutoff:
                log.info("peer %s stayed away too long; it will resync from a snapshot", state.peer)
                state = replace(
                    current,
                    change_pos=head,
                    last_seq=current.last_seq + 1,
                    last_digest=skip_digest(current.last_digest),
                )
                tx.put_outbound(state)
                skipped.append(state.peer)
                keep_seq, before = -1, node.now() + 1  # delete every batch of this epoch
            else:
                keep_seq, before = state.acked_seq, cutoff
            batches += tx.delete_outbox(
                state.peer, epoch=state.epoch, keep_seq=keep_seq, before_time=before
            )
            states.append(state)
        consumed = min((s.change_pos for s in states), default=head)
        changes = tx.delete_changes_upto(consumed)
        if batches or changes or skipped:
            audit.append(
                tx,
                node=node.node_id,
                time=node.now(),
                kind=Event.COMPACTION,
                batches=batches,
                changes=changes,
                resync=skipped,
            )
    if batches or changes:
        log.info("compacted %d batches and %d change-log entries", batches, changes)
    return batches, changes
