"""Key lifecycle: new token epochs, key rotation, and revoking a peer.

* ``new_epoch``: a fresh token key for one peer (or all); the peer resyncs
  from a snapshot under the new key and drops every old token.
* ``rotate_keys``: new identity, box and TLS keys.  The new identity card is
  endorsed by the old identity key, so peers that trust the old key accept
  it without another out-of-band exchange (``accept_card``).  It is
  delivered to each peer over the old TLS identity (``announce``), retried
  until every peer has it.  Every peer's stream starts a new epoch, since
  batches signed with the old key would no longer verify.
* ``revoke_peer``: the peer's connections are refused, everything it sent is
  purged, and nothing more is made for it.
* ``refresh_card`` and ``migrate_normalisation``: what the node advertises
  (``speaks``, docs/protocol.md appendix B) and, per peer, the normalisation
  of its stream.  Every epoch a stream starts uses the version
  ``versions.plan_stream`` agrees with the peer's card, so a peer still on
  ``wlx-norm-1`` keeps ``wlx-norm-1`` and an upgraded one moves to
  ``wlx-norm-2`` (§2.9, B.2): no flag day.

Each is one CLI command, logged in the exchange log.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace

from wlx.crypto import tls
from wlx.crypto.card import DEFAULT_SPEAKS, IdentityCard, Speaks, make_card, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.config import write_public
from wlx.node.core.errors import NotFound, PermissionDenied, UserError
from wlx.node.core.node import Node
from wlx.node.directory import ROTATION_META, finish_rotation, write_node_keys
from wlx.node.outgoing import ownlist, previous_epochs
from wlx.node.protocol.card_rules import check_card, check_rotation, held_fingerprints, is_refresh
from wlx.node.protocol.versions import EpochAction, StreamPlan, own_normalisation, plan_stream
from wlx.node.store.base import OutboundState, Tx

log = logging.getLogger("wlx.lifecycle")


def stream_plan(
    node: Node, tx: Tx, peer: str, current: str | None, epoch: int | None = None
) -> StreamPlan:
    """``versions.plan_stream`` for ``peer``'s stream, with the stored card
    of the peer and this node's own card (B.2); ``epoch``, the stream's
    current epoch, gives the protocol it was started under."""
    row = tx.get_peer(peer)
    theirs = node.card_of(row).speaks if row is not None else DEFAULT_SPEAKS
    protocol = None
    if epoch is not None:
        protocol = normalisation.protocol_of_epoch(tx, node.node_id, peer, epoch)
    return plan_stream(node.card.speaks, theirs, current, protocol)


def restart_stream(
    node: Node,
    tx: Tx,
    state: OutboundState,
    *,
    keep_previous: bool = False,
    epoch: int | None = None,
) -> OutboundState:
    """Start a new epoch of ``state``'s stream (fresh token key, empty outbox):
    ``epoch``, or the next one.

    With ``keep_previous`` (a new epoch or a key rotation, not a revocation),
    hit proofs under the old key stay valid for ``previous_epochs.PROOF_GRACE``.
    The new epoch uses the normalisation agreed with the peer's card (B.2-2).
    """
    if keep_previous:
        previous_epochs.keep(
            tx,
            state.peer,
            state.epoch,
            state.token_key,
            until=node.now() + previous_epochs.PROOF_GRACE,
        )
    else:
        previous_epochs.drop(tx, state.peer)
    epoch = max(epoch or 0, state.epoch + 1)
    key = EpochKey.generate(node.node_id, state.peer, epoch, node.rng)
    fresh = OutboundState(
        peer=state.peer,
        epoch=epoch,
        token_key=node.wrap_epoch_key(key),
        change_pos=tx.change_head(),
        last_seq=0,
        last_digest=genesis_digest(node.node_id, state.peer, epoch),
        epoch_started_at=node.now(),
    )
    tx.put_outbound(fresh)
    plan = stream_plan(node, tx, state.peer, None)
    if plan.action is EpochAction.STOP:
        log.warning(
            "peer %s: no normalisation in common; it will refuse epoch %d", state.peer, epoch
        )
    normalisation.record(tx, node.node_id, state.peer, epoch, plan.normalisation)
    normalisation.record_protocol(tx, node.node_id, state.peer, epoch, plan.protocol)
    tx.delete_outbox(state.peer, epoch=epoch, keep_seq=None)
    tx.confirm_removals(state.peer, epoch, 0)
    exchange_log.record(tx, node, kind=Event.EPOCH_NEW, peer=state.peer, epoch=epoch)
    return fresh


def migrate_normalisation(node: Node) -> list[tuple[str, int]]:
    """Give each stream the normalisation agreed with its peer (§2.9, B.2).

    A peer whose epoch uses another version than ``versions.plan_stream``
    agrees with its card gets a new epoch (returned as ``(peer, epoch)``):
    it keeps answering from the old epoch's tokens with old-version query
    keys until the new epoch's snapshot replaces them, so no listing is ever
    missing.  A peer whose card speaks only an older version keeps it.  The
    own list's index is rebuilt in the most recent version this node speaks,
    and in ``ownlist.OWN_PROTOCOL`` (an index a store from before built in
    protocol 1), in the same transaction.  Does nothing when everything is
    as agreed.
    """
    started = []
    with node.store.write() as tx:
        tx.lock_changes()
        for state in tx.list_outbound():
            row = tx.get_peer(state.peer)
            if row is None or row.revoked_at:
                continue
            version = normalisation.of_epoch(tx, node.node_id, state.peer, state.epoch)
            plan = stream_plan(node, tx, state.peer, version, state.epoch)
            if plan.action is EpochAction.STOP:
                log.error("peer %s: no normalisation in common with its card", state.peer)
            elif plan.action is EpochAction.NEW_EPOCH:
                fresh = restart_stream(node, tx, state, keep_previous=True)
                started.append((fresh.peer, fresh.epoch, plan.normalisation))
        own = tx.get_inbound(node.node_id)
        target = own_normalisation(node.card.speaks)
        if own is not None:
            version = normalisation.of_epoch(tx, node.node_id, node.node_id, own.epoch)
            protocol = normalisation.protocol_of_epoch(tx, node.node_id, node.node_id, own.epoch)
            if version != target or protocol != ownlist.OWN_PROTOCOL:
                ownlist.rebuild_index(node, tx, own, target)
    for name, epoch, version in started:
        log.info("peer %s: new token epoch %d for normalisation %s", name, epoch, version)
    return [(name, epoch) for name, epoch, _ in started]


def refresh_card(node: Node, speaks: Speaks) -> IdentityCard | None:
    """Re-issue this node's card with the same keys, advertising ``speaks``
    (appendix B.1: a later ``issued_at``), and announce it to every peer;
    returns the new card, or None when the card already says so.

    Each peer that accepts it renegotiates the stream it originates to this
    node (``accept_card``); this node's own streams follow with
    ``migrate_normalisation``.  Waits (returns None, logged) while a key
    rotation is still being announced: its card goes first.
    """
    if node.card.speaks == speaks:
        return None
    with node.store.read() as tx:
        if tx.list_announcements():
            log.warning("a rotated card is still being announced; the card is refreshed later")
            return None
    card_bytes = make_card(
        node.signing_key,
        node.box_key.public(),
        node.node_id,
        node.card.address,
        max(node.now(), node.card.issued_at + 1),
        node.tls_cert,
        tls_key=tls.key_from_pem(node.tls_key),
        speaks=speaks,
    )
    # Announcements first: a crash before the card file is written leaves
    # peers with a valid card, and the next start issues a later one.
    with node.store.write() as tx:
        for row in tx.list_peers():
            if not row.revoked_at:
                tx.put_announcement(row.node_id, card_bytes, node.now())
    write_public(node.paths.card, card_bytes)
    node.reload_keys()
    log.info("card re-issued: this node speaks %s", ", ".join(speaks.normalisation))
    return node.card


def speak(node: Node, speaks: Speaks) -> list[tuple[str, int]]:
    """What ``wlx serve`` does at start: advertise ``speaks`` (what this
    software speaks) and give each stream its agreed normalisation; returns
    the new epochs started."""
    refresh_card(node, speaks)
    return migrate_normalisation(node)


def new_epoch(node: Node, peer: str | None = None) -> list[tuple[str, int]]:
    """Start a new token epoch for ``peer`` (or every peer); returns (peer, epoch).

    Raises:
        NotFound: ``peer`` is not a trusted peer.
    """
    started = []
    with node.store.write() as tx:
        tx.lock_changes()
        states = [s for s in tx.list_outbound() if peer is None or s.peer == peer]
        if peer is not None and not states:
            raise NotFound(f"{peer} is not a trusted peer")
        for state in states:
            fresh = restart_stream(node, tx, state, keep_previous=True)
            started.append((fresh.peer, fresh.epoch))
    for name, epoch in started:
        log.info("peer %s: new token epoch %d; it will resync from a snapshot", name, epoch)
    return started


def revoke_peer(node: Node, peer: str) -> int:
    """Stop trusting ``peer``: refuse it, purge what it sent, send it nothing.

    Returns how many of its listings were purged.

    Raises:
        NotFound: no such (unrevoked) peer.
    """
    with node.store.write() as tx:
        row = tx.get_peer(peer)
        if row is None or row.revoked_at:
            raise NotFound(f"{peer} is not a trusted peer")
        listings = tx.count_entries(peer)
        tx.purge_peer_data(peer)
        state = tx.get_outbound(peer, for_update=True)
        if state is not None:
            restart_stream(node, tx, state)  # the revoked key never sees another batch
        tx.put_peer(replace(row, revoked_at=node.now()))
        exchange_log.record(
            tx,
            node,
            kind=Event.PEER_REVOKE,
            peer=peer,
            fingerprint=parse_card(row.card).fingerprint(),
            purged=listings,
        )
    log.warning("revoked peer %s; purged %d of its listings", peer, listings)
    return listings


def trusted_fingerprints(node: Node, tx: Tx) -> dict[str, str]:
    """TLS fingerprint -> node id of every trusted (not revoked) peer."""
    return held_fingerprints(
        {row.node_id: node.card_of(row) for row in tx.list_peers() if not row.revoked_at}
    )


def accept_card(node: Node, card_bytes: bytes, *, from_peer: str | None = None) -> IdentityCard:
    """Accept a peer's rotated identity card, endorsed by the key we trust.

    ``from_peer`` is the TLS-authenticated caller when the card arrives by
    RPC; it must be the card's node.  A card that changes the normalisation
    agreed with the peer (appendix B.2) starts a new epoch of the stream to
    it, in the same transaction.

    Raises:
        UserError: not a valid card.
        NotFound: the card's node is not a trusted peer.
        PermissionDenied: sent by another node, or not endorsed by the
            identity key this node trusts for it.
    """
    try:
        card = parse_card(card_bytes)
    except CryptoError as exc:
        raise UserError(f"not a valid identity card ({exc})") from None
    if from_peer is not None and from_peer != card.node_id:
        raise PermissionDenied(f"{from_peer} may not announce a card for {card.node_id}")
    with node.store.write() as tx:
        tx.lock_changes()  # a new epoch may start (B.2-2)
        row = tx.get_peer(card.node_id)
        if row is None or row.revoked_at:
            raise NotFound(f"{card.node_id} is not a trusted peer")
        current = parse_card(row.card)
        same_key = current.sign_key.same_as(card.sign_key)
        if same_key and not is_refresh(card, current):
            return current  # already have it (or an older card)
        check_rotation(card, current)
        check_card(
            card,
            me=node.node_id,
            my_tls_fingerprint=node.card.tls_fingerprint,
            my_speaks=node.card.speaks,
            held=trusted_fingerprints(node, tx),
        )
        tx.put_peer(replace(row, card=card.raw))
        started = _renegotiate(node, tx, card.node_id)
        if started is not None:
            log.info("peer %s: new token epoch %d for normalisation %s", *started)
        if same_key:
            log.info("peer %s refreshed its card (issued at %d)", card.node_id, card.issued_at)
            return card
        exchange_log.record(
            tx,
            node,
            kind=Event.PEER_ROTATED,
            peer=card.node_id,
            old_fingerprint=current.fingerprint(),
            new_fingerprint=card.fingerprint(),
        )
    log.info("peer %s rotated its keys: %s", card.node_id, card.fingerprint())
    return card


def _renegotiate(node: Node, tx: Tx, peer: str) -> tuple[str, int, str] | None:
    """Start a new epoch of ``peer``'s stream if its (new) card changes the
    agreed normalisation (B.2-2) or no longer speaks the epoch's protocol;
    returns (peer, epoch, version) if so."""
    state = tx.get_outbound(peer, for_update=True)
    if state is None:
        return None
    version = normalisation.of_epoch(tx, node.node_id, peer, state.epoch)
    plan = stream_plan(node, tx, peer, version, state.epoch)
    if plan.action is not EpochAction.NEW_EPOCH:
        return None
    fresh = restart_stream(node, tx, state, keep_previous=True)
    return peer, fresh.epoch, plan.normalisation


def rotate_keys(node: Node) -> IdentityCard:
    """Replace the node's identity, box and TLS keys; returns the new card.

    The new keys are made beside the old ones, the store commits to the
    rotation (new epochs, announcements, the exchange log), and only then do
    the key files swap; an interrupted rotation is completed, or undone, by
    ``finish_rotation`` when the node next opens.
    """
    paths = node.paths
    staging = paths.keys / "next"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(mode=0o700)
    card_bytes = write_node_keys(
        staging,
        staging / "card.json",
        node.node_id,
        node.card.address,
        now=node.now(),
        rng=node.rng,
        previous=node.signing_key,
    )
    card = parse_card(card_bytes)
    old = node.card
    with node.store.write() as tx:
        tx.lock_changes()
        for state in tx.list_outbound():
            restart_stream(node, tx, state, keep_previous=True)
            tx.put_announcement(state.peer, card_bytes, node.now())
        tx.set_meta(ROTATION_META, card_bytes)
        exchange_log.record(
            tx,
            node,
            kind=Event.KEYS_ROTATED,
            old_fingerprint=old.fingerprint(),
            new_fingerprint=card.fingerprint(),
            old_sign_key=old.sign_key.b64(),
            new_sign_key=card.sign_key.b64(),
        )
    finish_rotation(paths, committed=card_bytes)
    node.reload_keys()
    log.warning("rotated identity keys: %s -> %s", old.fingerprint(), card.fingerprint())
    return card
