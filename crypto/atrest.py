"""Encryption of a node's secrets and own records at rest.

docs/protocol.md §10.  A node keeps a 32-byte *storage key* in a file of
mode 0600 beside (not inside) its database, and encrypts with it what its
database would otherwise hold in the clear: peers' epoch token keys and its
own raw records.  Someone who obtains the database alone (a backup, a
PostgreSQL server) learns neither.  ChaCha20-Poly1305, random 96-bit nonce,
the associated data binding each value to where it is stored.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wlx.crypto.encoding import lp
from wlx.crypto.errors import DecryptionError, MalformedError
from wlx.crypto.keys import Rng, system_rng

STORAGE_KEY_LEN = 32
NONCE_LEN = 12
AAD_PREFIX = b"wlx/v1 at-rest\x00"


def _aead(key: bytes) -> ChaCha20Poly1305:
    if len(key) != STORAGE_KEY_LEN:
        raise MalformedError("a storage key is 32 bytes")
    return ChaCha20Poly1305(key)


def encrypt(key: bytes, plaintext: bytes, context: str, rng: Rng = system_rng) -> bytes:
    """``nonce || ciphertext`` of ``plaintext``, bound to ``context`` (e.g. "record:ID")."""
    nonce = rng(NONCE_LEN)
    return nonce + _aead(key).encrypt(nonce, plaintext, AAD_PREFIX + lp(context))


def decrypt(key: bytes, blob: bytes, context: str) -> bytes:
    """Open a value made by ``encrypt`` with the same key and context.

    Raises:
        DecryptionError: wrong key, wrong context or tampered bytes.
    """
    try:
        return _aead(key).decrypt(blob[:NONCE_LEN], blob[NONCE_LEN:], AAD_PREFIX + lp(context))
    except (InvalidTag, ValueError):
        raise DecryptionError("stored value does not open") from None
