"""Encryption of a signed message to one recipient node.

docs/protocol.md §5.3.  RFC 9180 HPKE, base mode, single shot, with the
suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305.  The
HPKE ``info`` binds purpose, sender and recipient, so an envelope whose
clear-text header was changed does not open.

The ephemeral HPKE key comes from the operating system's CSPRNG:
``cryptography``'s single-shot API takes no randomness source.  Tests of
this module therefore check decryption vectors and properties, not fixed
ciphertexts.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke

from wlx.crypto.encoding import lp
from wlx.crypto.errors import DecryptionError
from wlx.crypto.keys import BoxKey, BoxPublicKey

INFO_PREFIX = b"wlx/v1 envelope\x00"
ENC_LEN = 32
TAG_LEN = 16
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def hpke_info(purpose: str, sender: str, recipient: str) -> bytes:
    """The HPKE ``info`` of an envelope: prefix, purpose, sender, recipient."""
    return INFO_PREFIX + lp(purpose) + lp(sender) + lp(recipient)


def seal(plaintext: bytes, to: BoxPublicKey, *, purpose: str, sender: str, recipient: str) -> bytes:
    """Encrypt ``plaintext`` to the holder of ``to``'s private key.

    Returns ``enc || ciphertext`` (32 + len(plaintext) + 16 bytes).
    """
    return SUITE.encrypt(plaintext, to.public_key(), info=hpke_info(purpose, sender, recipient))


def open_sealed(
    ciphertext: bytes, key: BoxKey, *, purpose: str, sender: str, recipient: str
) -> bytes:
    """Decrypt an envelope made by ``seal`` for this purpose, sender and recipient.

    Raises:
        DecryptionError: wrong key, wrong header, or tampered ciphertext (one
            opaque error for all three).
    """
    if len(ciphertext) < ENC_LEN + TAG_LEN:
        raise DecryptionError("envelope does not open")
    try:
        return SUITE.decrypt(
            ciphertext, key.private_key(), info=hpke_info(purpose, sender, recipient)
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("envelope does not open") from exc
