"""Delivering a rotated identity card to peers (``wlx keys rotate``, §1.4).

The new card is endorsed by the old identity key; each peer gets it over the
old TLS identity, which it still pins until it accepts the new card.
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
