"""Delivering a rotated or refreshed identity card to peers (§1.4, B.1).

A rotated card (``wlx keys rotate``) is endorsed by the old identity key;
each peer gets it over the old TLS identity, which it still pins until it
accepts the new card.  A refreshed card (the same keys, what the node
speaks changed: ``lifecycle.refresh_card``) goes over the current identity.
"""

from __future__ import annotations

import logging

import grpc

from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.errors import CryptoError
from wlx.node.core.config import read_private
from wlx.node.core.errors import NotFound
from wlx.node.core.node import Node
from wlx.node.directory import ROTATED_FILES
from wlx.node.rpc.transport import channel_options, pinned_channel
from wlx.v1 import federation_pb2, federation_pb2_grpc

log = logging.getLogger("wlx.lifecycle")

ANNOUNCE_TIMEOUT = 10.0


def announce(node: Node) -> list[str]:
    """Deliver the rotated or refreshed card to peers that do not have it
    yet; returns who got it.

    A rotated card goes over the previous TLS identity (which peers still pin
    until they accept the new card), a refreshed one over the current one.
    Peers that cannot be reached get it at a later attempt.
    """
    with node.store.read() as tx:
        pending = tx.list_announcements()
    if not pending:
        return []
    previous = node.paths.previous_keys
    if all(_is_refresh(node, card_bytes) for _, card_bytes in pending):
        old_key, old_cert = node.tls_key, node.tls_cert
    else:
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
        key, cert = (
            (node.tls_key, node.tls_cert) if _is_refresh(node, card_bytes) else (old_key, old_cert)
        )
        try:
            _send_card(node, card, row.address, key, cert, card_bytes)
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


def _is_refresh(node: Node, card_bytes: bytes) -> bool:
    """Whether an announced card is a refresh (B.1: not endorsed by an old
    key, and the node's current TLS certificate), which peers already pin."""
    try:
        card = parse_card(card_bytes)
    except CryptoError:
        return False
    return card.previous_key is None and card.tls_fingerprint == node.card.tls_fingerprint


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
