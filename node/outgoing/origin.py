"""The origin side of a node: its peers, and what it sends them.

* ``add_peer`` trusts a peer and opens its stream (epoch 1, fresh key);
  ``set_policy`` changes what the peer receives (§6.5).
* ``materialise`` turns new change-log entries into signed batches for one
  peer (docs/protocol.md §6.1); ``pull`` and ``snapshot`` serve a peer's
  signed requests (§8).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace

from wlx.crypto import atrest
from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.digests import genesis_digest, skip_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.signing import Purpose
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import failpoints, normalisation
from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import (
    AlreadyExists,
    NotFound,
    PermissionDenied,
    Rejection,
    RejectReason,
    UserError,
)
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.outgoing import sent_snapshots
from wlx.node.outgoing.evaluate import online_key, tier_key
from wlx.node.outgoing.ownlist import load_record, upsert_of
from wlx.node.protocol import codec, outbound
from wlx.node.protocol.acceptance_rules import Effect, PeerFilter, change_of
from wlx.node.protocol.card_rules import check_card, check_rotation
from wlx.node.protocol.envelopes import (
    seal_presigned,
    verify_request,
)
from wlx.node.protocol.messages import (
    ChangeOp,
    Op,
    PullParams,
    ResyncRequired,
    Sealed,
    SignedRequest,
    SnapshotParams,
    SnapshotResume,
    StreamHead,
    Upsert,
)
from wlx.node.protocol.outbound import RESTORE_PENDING_META
from wlx.node.protocol.pull_loop import MAX_BATCHES_PER_PULL, batch_limit
from wlx.node.store.base import (
    DECLARED,
    InboundState,
    OutboundState,
    OutboxRow,
    PeerRow,
    Tx,
)
from wlx.node.trust import lifecycle

log = logging.getLogger("wlx.origin")

MAX_CLOCK_SKEW = 300
"""Seconds a signed request's issue time may differ from the origin's clock."""
DEFAULT_MAX_BATCHES = MAX_BATCHES_PER_PULL
MATERIALISE_CHUNK = 5_000
MATERIALISE_PER_PULL = 10 * MATERIALISE_CHUNK
"""Changes one pull turns into batches at most: a pull's work follows what it
can send (50 batches), not how far behind the peer is."""


def add_peer(
    node: Node,
    card_bytes: bytes,
    address: str,
    expect_fingerprint: str | None = None,
    *,
    replace_key: bool = False,
) -> IdentityCard:
    """Trust the node of ``card_bytes``, reachable at ``address``.

    A new peer's stream starts at epoch 1 with a fresh random token key, in
    the normalisation agreed with its card (appendix B.2); it receives the
    current list by snapshot on its first pull.  Adding the same
    card again only updates the address; a card endorsed by the key already
    trusted (a key rotation) replaces it; re-adding a revoked peer trusts it
    again, in a new epoch.

    Raises:
        UserError: not a valid card, this node's own card, or a fingerprint
            that does not match.
        PermissionDenied: the card's TLS certificate names another node,
            lacks proof of possession, or is another peer's (card_rules).
        AlreadyExists: the node id is trusted already, with another key that
            did not endorse this card.
    """
    card = _offered_card(node, card_bytes, expect_fingerprint)
    with node.store.read() as tx:
        existing = tx.get_peer(card.node_id)
        check_card(
            card,
            me=node.node_id,
            my_tls_fingerprint=node.card.tls_fingerprint,
            my_speaks=node.card.speaks,
            held=lifecycle.trusted_fingerprints(node, tx),
        )
    if existing is not None and not existing.revoked_at:
        return _trust_again(
            node, card_bytes, card, parse_card(existing.card), address, replace_key=replace_key
        )
    _trust_new(node, card, address)
    log.info("trusted peer %s (%s) at %s", card.node_id, card.fingerprint(), address)
    return card


def _offered_card(node: Node, card_bytes: bytes, expect_fingerprint: str | None) -> IdentityCard:
    """The card an operator offers, parsed and checked against what they expect.

    Raises:
        UserError: not a valid card, this node's own card, or a fingerprint
            that does not match.
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
    return card


def _trust_again(
    node: Node,
    card_bytes: bytes,
    card: IdentityCard,
    current: IdentityCard,
    address: str,
    *,
    replace_key: bool,
) -> IdentityCard:
    """Add a peer trusted already (with card ``current``) again: the same key
    or one it endorsed is accepted as is, another key only with
    ``replace_key`` (the old key's peer is revoked and the new one added).

    Raises:
        AlreadyExists: another key that ``current`` did not endorse, and no
            ``replace_key``.
    """
    if not current.sign_key.same_as(card.sign_key):
        try:
            check_rotation(card, current)
        except PermissionDenied:
            if not replace_key:
                raise AlreadyExists(
                    f"peer {card.node_id} is already trusted with another identity key "
                    f"(trusted: {current.fingerprint()}, this card: {card.fingerprint()}); "
                    "check both with the peer's operator, then add it with --replace"
                ) from None
            lifecycle.revoke_peer(node, card.node_id)
            log.warning(
                "peer %s: identity key replaced by the operator (%s -> %s)",
                card.node_id,
                current.fingerprint(),
                card.fingerprint(),
            )
            return add_peer(node, card_bytes, address)
    lifecycle.accept_card(node, card_bytes)  # a rotation, a refresh (appendix B.1) or as is
    with node.store.write() as tx:
        row = tx.get_peer(card.node_id)
        if row is not None:
            tx.put_peer(replace(row, address=address))
    return card


def _trust_new(node: Node, card: IdentityCard, address: str) -> None:
    """Store a new (or revoked) peer and start its stream: epoch 1 with a
    fresh token key, or a new epoch of a stream it had before."""
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
            # The version agreed with the card (appendix B.2-2): wlx-norm-1
            # for a peer that speaks no later one.
            plan = lifecycle.stream_plan(node, tx, card.node_id, None)
            normalisation.record(tx, node.node_id, card.node_id, 1, plan.normalisation)
            normalisation.record_protocol(tx, node.node_id, card.node_id, 1, plan.protocol)
        else:  # trusted again after a revocation: a new epoch, never a reused one
            lifecycle.restart_stream(node, tx, state)
        exchange_log.record(
            tx,
            node,
            now,
            kind=Event.PEER_TRUST,
            peer=card.node_id,
            fingerprint=card.fingerprint(),
            address=address,
        )


def _key(node: Node, tx: Tx, state: OutboundState) -> EpochKey:
    """The epoch key of a peer's stream, with its epoch's normalisation and
    protocol versions."""
    return node.originated_key(tx, state.peer, state.epoch, state.token_key)


def _ops_for(
    node: Node, tx: Tx, key: EpochKey, changes_pos: int, policy: PeerFilter
) -> tuple[list[Op], dict[int, str], int]:
    """Operations for the changes after ``changes_pos``; also which of them
    (by index) remove which record, and the change-log position reached.

    A change to a listing the peer's policy does not share becomes a removal
    (a no-op for a peer that never had it)."""
    changes = tx.changes_after(changes_pos, MATERIALISE_CHUNK)
    current = tx.get_records([c.record_id for c in changes if c.op == ChangeOp.UPSERT])
    ops: list[Op] = []
    removals: dict[int, str] = {}
    for change in changes:
        if change.op == ChangeOp.REMOVE:
            removals[len(ops)] = change.record_id
            ops.append(outbound.remove_for(change.record_id, key))
            continue
        stored = current.get(change.record_id)
        if stored is None or stored.version != change.version:
            continue  # superseded: a later change in the log carries the record
        record = load_record(node, stored)
        if not policy.allows(record):
            ops.append(outbound.remove_for(change.record_id, key))
            continue
        ops.append(
            upsert_of(node, stored, key, record, online=tier_key(node, policy.sharing, record, key))
        )
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
    exchange_log.record_many(
        tx,
        node,
        at=now,
        events=[
            (
                Event.BATCH_SENT,
                {
                    "peer": state.peer,
                    "epoch": state.epoch,
                    "first_seq": batch.first_seq,
                    "last_seq": batch.last_seq,
                    "digest": batch.digest.hex(),
                },
            )
            for batch in batches
        ],
    )
    if not batches:
        return state
    return replace(state, last_seq=batches[-1].last_seq, last_digest=batches[-1].digest)


def _declared(tx: Tx, peer: str) -> AcceptancePolicy:
    row = tx.get_acceptance(peer, DECLARED)
    return AcceptancePolicy.from_json(row.policy) if row is not None else AcceptancePolicy()


def _policy(tx: Tx, peer: str) -> PeerFilter:
    """What ``peer`` receives: the sharing policy and the peer's declared acceptance."""
    row = tx.get_peer(peer)
    sharing = SharingPolicy.from_json(row.policy) if row is not None else SharingPolicy()
    return PeerFilter(sharing, _declared(tx, peer))


def materialise(node: Node, peer: str, *, max_changes: int | None = None) -> OutboundState:
    """Turn every change not yet sent to ``peer`` into signed, stored batches
    (or the first ``max_changes`` or so of them).

    Works in chunks, one transaction each, so a large import does not hold
    the store's write lock for long.  Returns the peer's stream state.

    Raises:
        NotFound: ``peer`` has no stream (not a trusted peer).
    """
    budget = max_changes
    state: OutboundState | None = None
    while budget is None or budget > 0:
        if budget is not None:
            budget -= MATERIALISE_CHUNK
        with node.store.write() as tx:
            state = tx.get_outbound(peer, for_update=True)
            if state is None:
                raise NotFound(f"no stream for peer {peer}")
            if state.change_pos >= tx.change_head():
                return state
            key = _key(node, tx, state)
            ops, removals, change_pos = _ops_for(node, tx, key, state.change_pos, _policy(tx, peer))
            state = replace(_emit(node, tx, state, ops, removals), change_pos=change_pos)
            tx.put_outbound(state)
            failpoints.hit("origin.mid_materialise")  # the chunk's batches not yet committed
    assert state is not None  # the loop ran at least once (max_changes > 0)
    return state


def set_policy(node: Node, peer: str, policy: SharingPolicy) -> tuple[int, int]:
    """Change what ``peer`` receives; returns (removals, additions) sent.

    The peer's stream is first brought up to date under the old policy;
    then, in the same transaction, every listing the new policy no longer
    shares is removed from the peer and every listing it newly shares is
    sent (docs/protocol.md §6.5).  The peer's declared acceptance (§6.6)
    still applies: a wider policy never sends a category the peer declined.

    Raises:
        NotFound: ``peer`` is not a trusted peer.
    """

    def change(tx: Tx, row: PeerRow) -> tuple[PeerFilter, PeerFilter]:
        declared = _declared(tx, peer)
        tx.put_peer(replace(row, policy=policy.to_json()))
        return PeerFilter(SharingPolicy.from_json(row.policy), declared), PeerFilter(
            policy, declared
        )

    def logged(tx: Tx, removed: int, added: int) -> None:
        exchange_log.record(
            tx,
            node,
            kind=Event.POLICY_CHANGE,
            peer=peer,
            policy=policy.to_json(),
            removed=removed,
            added=added,
        )

    removed, added = refilter(node, peer, change, logged)
    log.info(
        "sharing policy for %s: %s (%d removals, %d additions)",
        peer,
        policy.describe(),
        removed,
        added,
    )
    return removed, added


PolicyChange = Callable[[Tx, PeerRow], tuple[PeerFilter, PeerFilter]]
"""Stores a new policy within the transaction; returns the old and new filters."""


def refilter(
    node: Node, peer: str, change: PolicyChange, logged: Callable[[Tx, int, int], None]
) -> tuple[int, int]:
    """Apply a change of what ``peer`` receives; returns (removals, additions).

    The peer's stream is brought up to date under the old filter; then, in
    one transaction with the change, every listing the new filter no longer
    allows is removed from the peer and every one it newly allows is sent
    (``acceptance_rules.change_of``); ``logged`` appends the exchange-log
    entry last in the same transaction.

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
        key = _key(node, tx, state)
        old, new = change(tx, row)
        while state.change_pos < tx.change_head():  # changes that came in between
            pending, pending_removals, pos = _ops_for(node, tx, key, state.change_pos, old)
            state = replace(_emit(node, tx, state, pending, pending_removals), change_pos=pos)
        ops: list[Op] = []
        removals: dict[int, str] = {}
        added = 0
        today = node.today()
        for stored in tx.iter_records():
            record = load_record(node, stored)
            what = change_of(record, expired=stored.expires < today, old=old, new=new)
            if what is Effect.REMOVE:
                removals[len(ops)] = record.id
                ops.append(outbound.remove_for(record.id, key))
            elif what is Effect.ADD:  # newly allowed, or its tier changed (§15.1)
                online = tier_key(node, new.sharing, record, key)
                ops.append(upsert_of(node, stored, key, record, online=online))
                added += 1
        state = _emit(node, tx, state, ops, removals)
        tx.put_outbound(state)
        logged(tx, len(removals), added)
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


def check_parties(requester: str, origin: str, signer: str, me: str) -> None:
    """A signed request names its signer as requester and this node as origin."""
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
    check_parties(params.requester, params.origin, request.signer, node.node_id)
    _restart_after_restore(node, card.node_id, params.epoch)
    with node.store.read() as tx:
        current = tx.get_outbound(card.node_id)
    if current is None:
        raise NotFound(f"no stream for peer {card.node_id}")
    resync = outbound.needs_snapshot(params, current.epoch)
    if resync is not None:
        # No cursor, or another epoch: a snapshot is the answer, and the
        # pending changes need not be made into batches first (a snapshot
        # fast-forwards past them).
        yield StreamHead(current.epoch, current.last_seq, node.now())
        log.info("peer %s must resync (%s)", card.node_id, resync.reason)
        yield resync
        return
    state = materialise(node, card.node_id, max_changes=MATERIALISE_PER_PULL)
    limit = batch_limit(params.max_batches)
    with node.store.read() as tx:
        decision = outbound.decide_pull(
            params,
            epoch=state.epoch,
            last_seq=state.last_seq,
            last_digest=state.last_digest,
            oldest_seq=tx.outbox_oldest(card.node_id, state.epoch) or state.last_seq + 1,
            digest_at=lambda seq: tx.stream_digest_at(card.node_id, state.epoch, seq),
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
            failpoints.hit("origin.batch_served")  # gRPC took the batch, asks for the next
        sent += len(rows)
        after = rows[-1].last_seq


def _restart_after_restore(node: Node, peer: str, requested: int) -> None:
    """Start the peer's stream in a new epoch if the node was restored since
    its last pull, or the peer holds an epoch of ours above the current one."""

    def decide(tx: Tx, lock: bool) -> tuple[OutboundState | None, list[str], int | None]:
        pending = json.loads(tx.get_meta(RESTORE_PENDING_META) or b"[]")
        state = tx.get_outbound(peer, for_update=lock)
        if state is None:
            return None, pending, None
        return (
            state,
            pending,
            outbound.epoch_to_start(requested, state.epoch, restored=peer in pending),
        )

    with node.store.read() as tx:
        if decide(tx, False)[2] is None:
            return
    with node.store.write() as tx:
        tx.lock_changes()
        state, pending, epoch = decide(tx, True)
        if state is None or epoch is None:
            return
        lifecycle.restart_stream(node, tx, state, epoch=epoch)
        if peer in pending:
            pending.remove(peer)
            tx.set_meta(RESTORE_PENDING_META, json.dumps(pending).encode())
    log.warning(
        "peer %s: stream restarts in epoch %d (it holds a state this node no longer has: "
        "restored from a backup)",
        peer,
        epoch,
    )


SNAPSHOT_PAGE = 500
"""Own records read per read transaction while making a snapshot."""


class _LiveEntries:
    """The upserts of a snapshot: every live record the peer's policy allows,
    by record id after ``after_id``, read in short read transactions (no
    transaction spans the whole list).  ``last_id`` is the id of the last
    entry yielded, ``count`` how many were yielded."""

    def __init__(self, node: Node, peer: str, key: EpochKey, after_id: str) -> None:
        self._node = node
        self._peer = peer
        self._key = key
        self.last_id = after_id
        self.count = 0

    def __iter__(self) -> Iterator[Upsert]:
        node, after, today = self._node, self.last_id, self._node.today()
        while True:
            with node.store.read() as tx:
                page = tx.records_page(after, SNAPSHOT_PAGE)
                policy = _policy(tx, self._peer)
            for stored in page:
                after = stored.id
                if stored.expires < today:
                    continue
                record = load_record(node, stored)
                if policy.allows(record):
                    online = tier_key(node, policy.sharing, record, self._key)
                    entry = upsert_of(node, stored, self._key, record, online=online)
                    self.last_id = stored.id
                    self.count += 1
                    yield entry
            if len(page) < SNAPSHOT_PAGE:
                return


def _fast_forward(node: Node, peer: str) -> OutboundState:
    """Move a stream past its pending changes without making batches of them.

    A peer asking for a snapshot replaces its state with the snapshot, so
    batches of the changes not yet made for it would never be read: the
    stream skips them instead (``skip_digest``, docs/protocol.md §7.3), and
    the snapshot, taken at the new position, contains their effect.  The
    position is kept as an anchor, so that the peer continues from it.
    Returns the stream's state at that position.
    """
    with node.store.write() as tx:
        tx.lock_changes()
        state = tx.get_outbound(peer, for_update=True)
        if state is None:
            raise NotFound(f"no stream for peer {peer}")
        head = tx.change_head()
        if state.change_pos < head:
            state = replace(
                state,
                change_pos=head,
                last_seq=state.last_seq + 1,
                last_digest=skip_digest(state.last_digest),
            )
            tx.put_outbound(state)
            # A peer the snapshot puts at this position pulls from it next.
            tx.add_anchor(state.peer, state.epoch, state.last_seq, state.last_digest)
        return state


@dataclass(frozen=True)
class _Position:
    """Where a snapshot stands in the peer's stream, and where it starts."""

    epoch: int
    at_seq: int
    chain_digest: bytes
    token_key: bytes
    snapshot_id: bytes
    after_id: str
    start: outbound.PartsStart


def _token_context(node: Node, peer: str) -> str:
    return f"snapshot-resume:{node.node_id}:{peer}"


def _resume_token(node: Node, peer: str, position: _Position, entries: _LiveEntries) -> bytes:
    """Sealed under this node's storage key: opaque to the peer, and only this
    node can make one it accepts back."""
    body = json.dumps(
        {
            "id": position.snapshot_id.hex(),
            "epoch": position.epoch,
            "at": position.at_seq,
            "after": entries.last_id,
            "entries": position.start.entries_before + entries.count,
        },
        separators=(",", ":"),
    ).encode()
    return node.seal_at_rest(body, _token_context(node, peer))


def _resumed(node: Node, peer: str, resume: SnapshotResume) -> _Position | None:
    """Where to continue the snapshot ``resume`` names, or None when it cannot
    be continued (unknown token, another epoch, or a stream that no longer
    continues from the snapshot's position): the peer then gets a new one."""
    try:
        body = json.loads(
            atrest.decrypt(node.storage_key, resume.token, _token_context(node, peer))
        )
        snapshot_id = bytes.fromhex(body["id"])
        epoch, at_seq, after_id, count = body["epoch"], body["at"], body["after"], body["entries"]
    except (CryptoError, ValueError, KeyError, TypeError):
        return None
    if snapshot_id != resume.snapshot_id or count != resume.entries:
        return None
    with node.store.read() as tx:
        state = tx.get_outbound(peer)
        if state is None or state.epoch != epoch:
            return None
        if at_seq == 0:
            chain: bytes | None = genesis_digest(node.node_id, peer, epoch)
        elif at_seq == state.last_seq:
            chain = state.last_digest
        else:
            chain = tx.stream_digest_at(peer, epoch, at_seq)
        if chain is None:
            return None
        continues = outbound.decide_pull(
            PullParams(peer, node.node_id, epoch, at_seq, chain, 0, b"", 0),
            epoch=state.epoch,
            last_seq=state.last_seq,
            last_digest=state.last_digest,
            oldest_seq=tx.outbox_oldest(peer, epoch) or state.last_seq + 1,
            digest_at=lambda seq: tx.stream_digest_at(peer, epoch, seq),
            starts_at=lambda seq: tx.outbox_starts_at(peer, epoch, seq),
        )
    if not isinstance(continues, int):
        return None
    return _Position(
        epoch,
        at_seq,
        chain,
        state.token_key,
        snapshot_id,
        after_id,
        outbound.PartsStart(resume.next_index, resume.prev_part_digest, count),
    )


def snapshot(node: Node, request: SignedRequest) -> Generator[Sealed]:
    """Serve a peer's signed snapshot request: its full current state, in parts.

    The stream is first fast-forwarded to the end of the change log
    (position ``at_seq``); the records are then read in short transactions,
    so that later parts may already show changes made after ``at_seq``.
    Those changes are in the stream's batches after ``at_seq``, which the
    peer applies next; each operation replaces a listing whole, so the peer
    ends exactly at the origin's state (docs/protocol.md §7.1).  A request
    that names staged parts continues after them when the stream still
    continues from the snapshot's position (§7.4), else gets a new snapshot.

    Raises:
        Rejection: the request does not verify.
        NotFound: the requester has no stream.
    """
    card, payload = _verify(node, request, Purpose.SNAPSHOT)
    params: SnapshotParams = codec.decode_snapshot_params(payload)
    check_parties(params.requester, params.origin, request.signer, node.node_id)
    peer = card.node_id
    position = _resumed(node, peer, params.resume) if params.resume is not None else None
    if position is None:
        state = _fast_forward(node, peer)
        position = _Position(
            state.epoch,
            state.last_seq,
            state.last_digest,
            state.token_key,
            node.rng(codec.NONCE_BYTES),
            "",
            outbound.PartsStart(),
        )
    with node.store.read() as tx:
        key = node.originated_key(tx, peer, position.epoch, position.token_key)
    entries = _LiveEntries(node, peer, key, position.after_id)
    log.info(
        "snapshot for %s at %d (epoch %d)%s",
        peer,
        position.at_seq,
        position.epoch,
        f", resumed at part {position.start.index}" if position.start.index else "",
    )
    yield from outbound.snapshot_parts(
        entries,
        origin=node.node_id,
        to=card,
        key=node.signing_key,
        epoch_key=key,
        at_seq=position.at_seq,
        chain_digest=position.chain_digest,
        snapshot_id=position.snapshot_id,
        created_at=node.now(),
        resume_token=lambda: _resume_token(node, peer, position, entries),
        start=position.start,
        on_final=lambda total: _sent(node, peer, position, total),
        oprf_public_key=online_key(node, peer, position.epoch).public,
    )


def _sent(node: Node, peer: str, position: _Position, total: int) -> None:
    """Log the snapshot as sent (and keep it for receipts), before its final
    part leaves: the peer may apply it even if the stream breaks after."""
    with node.store.write() as tx:
        sent_snapshots.note(tx, peer, position.epoch, position.at_seq, position.chain_digest)
        exchange_log.record(
            tx,
            node,
            kind=Event.SNAPSHOT_SENT,
            peer=peer,
            epoch=position.epoch,
            at_seq=position.at_seq,
            chain_digest=position.chain_digest.hex(),
            entries=total,
            snapshot=position.snapshot_id.hex(),
        )
