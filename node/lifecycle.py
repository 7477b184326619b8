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

import grpc

from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError
from wlx.crypto.tokens import EpochKey
from wlx.node.app import ROTATED_FILES, ROTATION_META, Node, finish_rotation, write_node_keys
from wlx.node.audit import log as audit
from wlx.node.audit.log import Event
from wlx.node.config import read_private
from wlx.node.errors import NotFound, PermissionDenied, UserError
from wlx.node.peers import channel_options
from wlx.node.store.base import OutboundState, Tx
from wlx.node.transport import pinned_channel
from wlx.v1 import federation_pb2, federation_pb2_grpc

log = logging.getLogger("wlx.lifecycle")

ANNOUNCE_TIMEOUT = 10.0


def restart_stream(
    node: Node, tx: Tx, state: OutboundState, *, epoch: int | None = None
) -> OutboundState:
    """Start a new epoch of ``state``'s stream (fresh token key, empty outbox):
    ``epoch``, or the next one."""
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
    tx.delete_outbox(state.peer, epoch=epoch, keep_seq=-1, before_time=node.now() + 1)
    tx.confirm_removals(state.peer, epoch, 0)
    audit.record(tx, node, kind=Event.EPOCH_NEW, peer=state.peer, epoch=epoch)
    return fresh


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
            fresh = restart_stream(node, tx, state)
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
        audit.record(
            tx,
            node,
            kind=Event.PEER_REVOKE,
            peer=peer,
            fingerprint=parse_card(row.card).fingerprint(),
            purged=listings,
        )
    log.warning("revoked peer %s; purged %d of its listings", peer, listings)
    return listings


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
        if current.sign_key.same_as(card.sign_key):
            return current  # already have it
        if card.previous_key is None or not card.previous_key.same_as(current.sign_key):
            raise PermissionDenied(
                f"the new card of {card.node_id} is not endorsed by the key trusted for it"
            )
        tx.put_peer(replace(row, card=card.raw))
        audit.record(
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
            restart_stream(node, tx, state)
            tx.put_announcement(state.peer, card_bytes, node.now())
        tx.set_meta(ROTATION_META, card_bytes)
        audit.record(
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


def announce(node: Node) -> list[str]:
    """Deliver the rotated card to peers that do not have it yet; returns who got it.

    Uses the previous TLS identity (which peers still pin until they accept
    the new card).  Peers that cannot be reached get it at a later attempt.
    """
    with node.store.read() as tx:
        pending = tx.list_announcements()
    if not pending:
        return []
    previous = node.paths.previous_keys
    try:
        old_key = read_private(previous / "tls.pem")
        old_cert = parse_card((previous / "card.json").read_bytes()).tls_cert
    except (FileNotFoundError, NotFound, CryptoError):
        log.error("keys/previous is missing: give peers the new card out of band")
        return []
    delivered = []
    for peer, card_bytes in pending:
        card = node.trusted(peer)
        with node.store.read() as tx:
            row = tx.get_peer(peer)
        if card is None or row is None:
            with node.store.write() as tx:
                tx.delete_announcement(peer)
            continue
        try:
            _send_card(node, card, row.address, old_key, old_cert, card_bytes)
        except grpc.RpcError as exc:
            log.warning("could not announce the new card to %s: %s", peer, exc.code().name)
            continue
        with node.store.write() as tx:
            tx.delete_announcement(peer)
        delivered.append(peer)
    with node.store.read() as tx:
        if not tx.list_announcements():
            for name in ROTATED_FILES:  # no longer needed: every peer has the new card
                (previous / name).unlink(missing_ok=True)
    return delivered


def _send_card(
    node: Node, card: IdentityCard, address: str, key: bytes, cert: bytes, card_bytes: bytes
) -> None:
    channel = (
        grpc.insecure_channel(address, options=channel_options())
        if node.insecure_dev
        else pinned_channel(
            address, node_id=card.node_id, pinned_cert=card.tls_cert, key=key, cert=cert
        )
    )
    with channel:
        federation_pb2_grpc.FederationStub(channel).AnnounceCard(
            federation_pb2.AnnounceRequest(card=card_bytes), timeout=ANNOUNCE_TIMEOUT
        )
