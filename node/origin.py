"""The origin side of a node: its own list, its peers, and what it sends them.

* ``import_records`` / ``remove_record`` change the own list, append to the
  change log and update the own index, in one transaction.
* ``add_peer`` trusts a peer and opens its stream (epoch 1, fresh key).
* ``materialise`` turns new change-log entries into signed batches for one
  peer (docs/protocol.md §6.1); ``pull`` and ``snapshot`` serve a peer's
  signed requests (§8).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.app import Node
from wlx.node.errors import AlreadyExists, NotFound, Rejection, RejectReason, Unavailable, UserError
from wlx.node.model import Record
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.envelopes import seal_presigned, verify_request
from wlx.node.protocol.messages import (
    Op,
    PullParams,
    ResyncRequired,
    Sealed,
    SignedRequest,
    SnapshotParams,
    Upsert,
)
from wlx.node.store.base import InboundState, OutboundState, OutboxRow, PeerRow, StoredRecord, Tx

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
            sealed_body = node.seal_at_rest(body, _record_context(record.id))
            tx.put_record(StoredRecord(record.id, version, sealed_body, record.expires, now))
            tx.append_change(record.id, "upsert", version, now)
            tx.apply_ops(node.node_id, [outbound.upsert_for(record, version, own_key, node.rng)])
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
    log.info("removed record %s", record_id)


def add_peer(
    node: Node, card_bytes: bytes, address: str, expect_fingerprint: str | None = None
) -> IdentityCard:
    """Trust the node of ``card_bytes``, reachable at ``address``.

    Adding the same card again only updates the address.  A new peer's
    stream starts at epoch 1 with a fresh random token key; it receives the
    current list by snapshot on its first pull.

    Raises:
        UserError: not a valid card, this node's own card, or a fingerprint
            that does not match.
        AlreadyExists: the node id is trusted already, with another key.
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
    now = node.now()
    with node.store.write() as tx:
        existing = tx.get_peer(card.node_id)
        if existing is not None:
            if not parse_card(existing.card).sign_key.same_as(card.sign_key):
                raise AlreadyExists(
                    f"peer {card.node_id} is already trusted with another identity key"
                )
            tx.put_peer(PeerRow(card.node_id, card.raw, address, existing.added_at))
            return card
        tx.put_peer(PeerRow(card.node_id, card.raw, address, now))
        if tx.get_inbound(card.node_id) is None:
            # Its list arrives with its first snapshot; until then, epoch 0.
            tx.put_inbound(InboundState(card.node_id, 0, b"", 0, b"", 0))
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
    log.info("trusted peer %s (%s) at %s", card.node_id, card.fingerprint(), address)
    return card


def _ops_for(node: Node, tx: Tx, key: EpochKey, changes_pos: int) -> tuple[list[Op], int]:
    changes = tx.changes_after(changes_pos, MATERIALISE_CHUNK)
    ops: list[Op] = []
    for change in changes:
        if change.op == "remove":
            ops.append(outbound.remove_for(change.record_id, key))
            continue
        stored = tx.get_record(change.record_id)
        if stored is None or stored.version != change.version:
            continue  # superseded: a later change in the log carries the record
        ops.append(outbound.upsert_for(load_record(node, stored), stored.version, key, node.rng))
    return ops, changes[-1].seq if changes else changes_pos


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
            ops, change_pos = _ops_for(node, tx, key, state.change_pos)
            now = node.now()
            batches = outbound.build_batches(
                ops,
                origin=node.node_id,
                recipient=peer,
                epoch=state.epoch,
                after_seq=state.last_seq,
                prev_digest=state.last_digest,
                created_at=now,
                key=node.signing_key,
            )
            for batch in batches:
                tx.add_outbox(peer, state.epoch, _row(batch), now)
            last = batches[-1] if batches else None
            tx.put_outbound(
                OutboundState(
                    peer=peer,
                    epoch=state.epoch,
                    token_key=state.token_key,
                    change_pos=change_pos,
                    last_seq=last.last_seq if last else state.last_seq,
                    last_digest=last.digest if last else state.last_digest,
                    epoch_started_at=state.epoch_started_at,
                )
            )
        if batches:
            log.debug("peer %s: %d new batches up to %d", peer, len(batches), batches[-1].last_seq)


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


PullItem = ResyncRequired | Sealed


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
            oldest_seq=tx.outbox_oldest(card.node_id, state.epoch) or state.last_seq + 1,
            digest_at=lambda seq: tx.outbox_digest_at(card.node_id, state.epoch, seq),
        )
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


def _live_entries(node: Node, tx: Tx, key: EpochKey) -> Iterator[Upsert]:
    today = node.today()
    for stored in tx.iter_records():
        if stored.expires < today:
            continue
        yield outbound.upsert_for(load_record(node, stored), stored.version, key, node.rng)


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
        materialise(node, card.node_id)
        with node.store.read() as tx:
            state = tx.get_outbound(card.node_id)
            if state is None:
                raise NotFound(f"no stream for peer {card.node_id}")
            if state.change_pos < tx.change_head():
                continue  # a change committed in between; catch up again
            key = node.epoch_key(node.node_id, card.node_id, state.epoch, state.token_key)
            log.info("snapshot for %s at %d (epoch %d)", card.node_id, state.last_seq, state.epoch)
            yield from outbound.snapshot_parts(
                _live_entries(node, tx, key),
                origin=node.node_id,
                to=card,
                key=node.signing_key,
                epoch_key=key,
                at_seq=state.last_seq,
                chain_digest=state.last_digest,
                snapshot_id=node.rng(codec.NONCE_BYTES),
                created_at=node.now(),
            )
            return
    raise Unavailable("the list is changing too fast to snapshot; retry")
