"""Whether to accept a peer's identity card (§1.2, §1.4).  Pure.

A card binds a node id to an identity key, a box key and the TLS
certificate its peers pin, and a node maps every TLS connection to a peer by
that certificate.  So a card is accepted only if:

* its certificate names exactly the card's node (the one DNS name
  ``<id>.node.wlx``), so a node cannot present another's certificate;
* it proves possession of the certificate's key for this identity
  (``tls_pop``), so a node cannot copy another's public key either;
* no other trusted peer, and not this node, holds the same certificate;
* the two nodes speak a protocol and a normalisation version in common
  (``wlx.node.protocol.versions``, appendix B);
* for a node already trusted with another identity key: the new card is
  endorsed by that key (a rotation).
"""

from __future__ import annotations

from collections.abc import Mapping

from wlx.crypto import tls
from wlx.crypto.card import DEFAULT_SPEAKS, IdentityCard, Speaks
from wlx.crypto.errors import CryptoError
from wlx.node.core.errors import PermissionDenied, UserError
from wlx.node.protocol.versions import negotiate


def check_card(
    card: IdentityCard,
    *,
    me: str,
    my_tls_fingerprint: str,
    held: Mapping[str, str],
    my_speaks: Speaks = DEFAULT_SPEAKS,
) -> None:
    """Accept ``card`` as a peer's, given the TLS fingerprints ``held`` by the
    other trusted peers (fingerprint -> node id).

    Raises:
        PermissionDenied: this node's own id or certificate, a certificate
            that names another node or holds no proof of possession, or one
            another peer holds.
        UserError: the two nodes speak no protocol or no normalisation
            version in common (appendix B).
    """
    if card.node_id == me:
        raise PermissionDenied("that is this node's own identity card")
    try:
        names = tls.dns_names(card.tls_cert)
    except CryptoError:
        names = []
    if names != [tls.node_dns_name(card.node_id)]:
        raise PermissionDenied(
            f"the card's TLS certificate does not name {card.node_id} "
            f"(expected exactly {tls.node_dns_name(card.node_id)})"
        )
    if not card.tls_bound:
        raise PermissionDenied(
            f"the card of {card.node_id} does not prove possession of its TLS key"
        )
    fingerprint = card.tls_fingerprint
    if fingerprint == my_tls_fingerprint:
        raise PermissionDenied("the card carries this node's own TLS certificate")
    holder = held.get(fingerprint)
    if holder is not None and holder != card.node_id:
        raise PermissionDenied(f"the card's TLS certificate is already {holder}'s")
    agreement = negotiate(my_speaks, card.speaks)
    if not agreement.ok:
        raise UserError(
            f"{card.node_id} and this node cannot federate ({agreement.refused}): it speaks "
            f"protocol {_list(card.speaks.protocol)} and {_list(card.speaks.normalisation)}, "
            f"this node protocol {_list(my_speaks.protocol)} and "
            f"{_list(my_speaks.normalisation)}; upgrade one of them"
        )


def _list(values: tuple[object, ...]) -> str:
    return ", ".join(str(v) for v in values)


def check_rotation(card: IdentityCard, current: IdentityCard) -> None:
    """Accept ``card`` in place of ``current`` (same node): the same identity
    key, or a new one endorsed by the current key.

    Raises:
        PermissionDenied: another identity key, not endorsed by the current one.
    """
    if current.sign_key.same_as(card.sign_key):
        return
    if card.previous_key is None or not card.previous_key.same_as(current.sign_key):
        raise PermissionDenied(
            f"the new card of {card.node_id} is not endorsed by the key trusted for it"
        )


def held_fingerprints(cards: Mapping[str, IdentityCard]) -> dict[str, str]:
    """TLS fingerprint -> node id of trusted peers' cards (node id -> card)."""
    return {card.tls_fingerprint: node_id for node_id, card in cards.items()}


def is_refresh(card: IdentityCard, current: IdentityCard) -> bool:
    """Whether ``card`` refreshes ``current`` (appendix B.1): the same identity
    key, box key and TLS certificate, issued later.  Only the address and the
    advertised versions (``speaks``) may change this way; a new key or
    certificate is a rotation (§1.4)."""
    return (
        current.sign_key.same_as(card.sign_key)
        and current.box_key == card.box_key
        and current.tls_fingerprint == card.tls_fingerprint
        and card.issued_at > current.issued_at
        and card.raw != current.raw
    )
