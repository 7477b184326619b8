"""Signatures that bind purpose, signer and recipient to exact payload bytes.

docs/protocol.md §5.2.  The signed bytes are

    "wlx/v1 signature" || 0x00 || lp(purpose) || lp(signer) || lp(recipient)
        || payload_digest(payload)

so a signature made for one purpose, one sender or one recipient never
verifies for another, and the payload is signed exactly as it travels (a
verifier never re-serialises it).
"""

from __future__ import annotations

from enum import StrEnum

from wlx.crypto.digests import payload_digest
from wlx.crypto.encoding import lp
from wlx.crypto.keys import SigningKey, VerifyKey

SIGNATURE_PREFIX = b"wlx/v1 signature\x00"
ANYONE = ""
"""Recipient of a signature meant for every reader (an identity card)."""


class Purpose(StrEnum):
    """Every purpose a node signs for.  Each is its own signature domain."""

    BATCH = "batch"
    SNAPSHOT_PART = "snapshot-part"
    PULL = "pull"
    SNAPSHOT = "snapshot"
    IDENTITY_CARD = "identity-card"
    CARD_ROTATION = "card-rotation"
    RECEIPT = "receipt"
    DETAIL_REQUEST = "detail-request"
    DETAIL_ANSWER = "detail-answer"
    EVALUATE_REQUEST = "evaluate-request"
    EVALUATE_ANSWER = "evaluate-answer"


def signing_input(purpose: Purpose, signer: str, recipient: str, payload: bytes) -> bytes:
    """The exact bytes that are Ed25519-signed for ``payload``."""
    return (
        SIGNATURE_PREFIX + lp(purpose.value) + lp(signer) + lp(recipient) + payload_digest(payload)
    )


def sign(key: SigningKey, purpose: Purpose, signer: str, recipient: str, payload: bytes) -> bytes:
    """Sign ``payload`` for ``purpose`` from ``signer`` to ``recipient``."""
    return key.sign(signing_input(purpose, signer, recipient, payload))


def verify(
    key: VerifyKey,
    signature: bytes,
    purpose: Purpose,
    signer: str,
    recipient: str,
    payload: bytes,
) -> None:
    """Check a signature made by ``sign``.

    Raises:
        VerificationError: the signature does not verify for exactly this
            key, purpose, signer, recipient and payload.
    """
    key.verify(signature, signing_input(purpose, signer, recipient, payload))
