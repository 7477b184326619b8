"""Sign-then-encrypt envelopes and signed requests (docs/protocol.md §5).

``seal_signed`` signs a payload for (purpose, signer, recipient) and
encrypts the signed message to the recipient's box key.  ``open_envelope``
reverses it and checks, in this order, each binding a receiver relies on;
the first that fails raises ``Rejection`` with its reason.  Payload bytes
come out exactly as they were signed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from wlx.crypto import envelope as hpke_envelope
from wlx.crypto import signing
from wlx.crypto.card import IdentityCard
from wlx.crypto.errors import DecryptionError, VerificationError
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.crypto.signing import Purpose
from wlx.node.core.errors import Rejection, RejectReason
from wlx.node.protocol import codec
from wlx.node.protocol.messages import Sealed, SignedRequest

TrustLookup = Callable[[str], IdentityCard | None]
"""Returns the trusted card of a node id, or None for an untrusted id."""


def seal_signed(
    payload: bytes, purpose: Purpose, *, signer: str, key: SigningKey, to: IdentityCard
) -> Sealed:
    """Sign ``payload`` and encrypt the signed message to ``to``."""
    signature = signing.sign(key, purpose, signer, to.node_id, payload)
    inner = codec.encode_signed(payload, signature, signer, to.node_id, purpose)
    ciphertext = hpke_envelope.seal(
        inner.SerializeToString(),
        to.box_key,
        purpose=purpose.value,
        sender=signer,
        recipient=to.node_id,
    )
    return Sealed(signer, to.node_id, purpose, ciphertext)


def seal_presigned(signed: bytes, purpose: Purpose, *, sender: str, to: IdentityCard) -> Sealed:
    """Encrypt an already signed message (a stored batch) to ``to``."""
    ciphertext = hpke_envelope.seal(
        signed, to.box_key, purpose=purpose.value, sender=sender, recipient=to.node_id
    )
    return Sealed(sender, to.node_id, purpose, ciphertext)


def sign_message(
    payload: bytes, purpose: Purpose, *, signer: str, key: SigningKey, recipient: str
) -> SignedRequest:
    """Sign ``payload`` for ``purpose`` from ``signer`` to ``recipient``."""
    signature = signing.sign(key, purpose, signer, recipient, payload)
    return SignedRequest(payload, signature, signer, recipient, purpose)


def _check_signed(
    msg: SignedRequest, *, purpose: Purpose, me: str, signer: str, card: IdentityCard
) -> bytes:
    if msg.purpose is not purpose:
        raise Rejection(RejectReason.MALFORMED, f"expected a {purpose.value} message")
    if msg.signer != signer:
        raise Rejection(RejectReason.WRONG_SENDER, "signed by another node than the sender")
    if msg.recipient != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "addressed to another node")
    try:
        signing.verify(card.sign_key, msg.signature, purpose, signer, me, msg.payload)
    except VerificationError:
        raise Rejection(RejectReason.BAD_SIGNATURE, "signature does not verify") from None
    return msg.payload


def open_envelope(
    sealed: Sealed,
    *,
    purpose: Purpose,
    me: str,
    box_key: BoxKey,
    expected_sender: str,
    trusted: TrustLookup,
) -> bytes:
    """Open and verify an envelope; returns the payload bytes as signed.

    Checks: the purpose; the recipient is ``me``; the sender is the node we
    asked; the sender is trusted; the ciphertext opens; the signed message
    names the same signer, recipient and purpose; the signature verifies
    under the trusted key.

    Raises:
        Rejection: the first check that fails, with its reason.
    """
    if sealed.purpose is not purpose:
        raise Rejection(RejectReason.MALFORMED, f"expected a {purpose.value} envelope")
    if sealed.recipient != me:
        raise Rejection(RejectReason.WRONG_RECIPIENT, "envelope addressed to another node")
    if sealed.sender != expected_sender:
        raise Rejection(RejectReason.WRONG_SENDER, "envelope from another node than asked")
    card = trusted(sealed.sender)
    if card is None:
        raise Rejection(RejectReason.UNKNOWN_SIGNER, "sender is not a trusted peer")
    try:
        inner = hpke_envelope.open_sealed(
            sealed.ciphertext, box_key, purpose=purpose.value, sender=sealed.sender, recipient=me
        )
    except DecryptionError:
        raise Rejection(RejectReason.UNDECRYPTABLE, "envelope does not open") from None
    msg = codec.decode_signed_bytes(inner)
    return _check_signed(msg, purpose=purpose, me=me, signer=sealed.sender, card=card)


def verify_signed(
    msg: SignedRequest, *, purpose: Purpose, me: str, trusted: TrustLookup
) -> IdentityCard:
    """Check a signed message from a peer to ``me``; returns the signer's card.

    Raises:
        Rejection: unknown signer, wrong purpose, wrong recipient, bad
            signature.
    """
    card = trusted(msg.signer)
    if card is None:
        raise Rejection(RejectReason.UNKNOWN_SIGNER, "signer is not a trusted peer")
    _check_signed(msg, purpose=purpose, me=me, signer=msg.signer, card=card)
    return card


def verify_request(
    msg: SignedRequest,
    *,
    purpose: Purpose,
    me: str,
    trusted: TrustLookup,
    now: int,
    issued_at: Callable[[bytes], int],
    max_skew: int,
) -> IdentityCard:
    """Check a signed, timed request from a peer; returns the requester's card.

    ``issued_at`` extracts the signed issue time from the payload (which is
    only parsed after the signature verified).

    Raises:
        Rejection: as ``verify_signed``, or ``stale-request`` when issued
            more than ``max_skew`` seconds away from ``now``.
    """
    card = verify_signed(msg, purpose=purpose, me=me, trusted=trusted)
    if abs(issued_at(msg.payload) - now) > max_skew:
        raise Rejection(RejectReason.STALE_REQUEST, "request issued outside the clock window")
    return card


def same_digest(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a, b)
