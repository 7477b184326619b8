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

Each is one CLI command, logged in the exchange log.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace

from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.normalize import NORMALISATION
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.errors import NotFound, PermissionDenied, UserError
from wlx.node.core.node import Node
from wlx.node.directory import ROTATION_META, finish_rotation, write_node_keys
from wlx.node.outgoing import ownlist, previous_epochs
from wlx.node.protocol.card_rules import check_card, check_rotation, held_fingerprints, is_refresh
from wlx.node.store.base import OutboundState, Tx

log = logging.getLogger("wlx.lifecycle")


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
    normalisation.record(tx, node.node_id, state.peer, epoch)
    tx.delete_outbox(state.peer, epoch=epoch, keep_seq=None)
    tx.confirm_removals(state.peer, epoch, 0)
    exchange_log.record(tx, node, kind=Event.EPOCH_NEW, peer=state.peer, epoch=epoch)
    return fresh


def migrate_normalisation(node: Node) -> list[tuple[str, int]]:
    """Move every stream and the own list to the current normalisation (§2.9).

    A peer whose epoch uses an older version gets a new epoch (returned as
    ``(peer, epoch)``): it keeps answering from the old epoch's tokens with
    old-version query keys until the new epoch's snapshot replaces them, so no
    listing is ever missing.  The own list's index is rebuilt in the same
    transaction.  Does nothing when everything is current.
    """
    started = []
    with node.store.write() as tx:
        tx.lock_changes()
        for state in tx.list_outbound():
            row = tx.get_peer(state.peer)
            if row is None or row.revoked_at:
                continue
            version = normalisation.of_epoch(tx, node.node_id, state.peer, state.epoch)
            if version != NORMALISATION:
                fresh = restart_stream(node, tx, state)
                started.append((fresh.peer, fresh.epoch))
        own = tx.get_inbound(node.node_id)
        if own is not None:
            version = normalisation.of_epoch(tx, node.node_id, node.node_id, own.epoch)
            if version != NORMALISATION:
                ownlist.rebuild_index(node, tx, own)
    for name, epoch in started:
        log.info("peer %s: new token epoch %d for normalisation %s", name, epoch, NORMALISATION)
    return started


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
    RPC; it must be the card's node.

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
