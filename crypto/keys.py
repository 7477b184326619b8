"""Node key pairs: an Ed25519 identity (signing) key and an X25519 box key.

Pure: keys come from bytes that the caller supplies (``rng``), and serialise
to bytes; writing them to disk with the right mode is the node's job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from wlx.crypto.errors import MalformedError, VerificationError

Rng = Callable[[int], bytes]
"""A source of random bytes: ``rng(n)`` returns ``n`` bytes."""

KEY_LEN = 32


def _to_pem(key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _from_pem(pem: bytes) -> object:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise MalformedError("not a PEM private key") from exc


def system_rng(n: int) -> bytes:
    """The operating system's CSPRNG; the default ``Rng`` everywhere."""
    return os.urandom(n)


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key."""

    _key: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> SigningKey:
        """Make a key from 32 bytes of ``rng``."""
        return cls.from_seed(rng(KEY_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Load a key from its 32-byte RFC 8032 seed.

        Raises:
            MalformedError: the seed is not 32 bytes.
        """
        if len(seed) != KEY_LEN:
            raise MalformedError("an Ed25519 seed is 32 bytes")
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    def seed(self) -> bytes:
        """The 32-byte seed (secret)."""
        return self._key.private_bytes_raw()

    def public(self) -> VerifyKey:
        """The matching public key."""
        return VerifyKey(self._key.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        """Ed25519-sign ``message``; returns the 64-byte signature."""
        return self._key.sign(message)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the file holding it must be mode 0600)."""
        return _to_pem(self._key)

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load a key written by ``to_pem``.

        Raises:
            MalformedError: not a PEM Ed25519 private key.
        """
        key = _from_pem(pem)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise MalformedError("not an Ed25519 private key")
        return cls(key)


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key (32 raw bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_LEN:
            raise MalformedError("an Ed25519 public key is 32 bytes")

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an Ed25519 signature.

        Raises:
            VerificationError: the signature does not verify.
        """
        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError) as exc:
            raise VerificationError("bad signature") from exc

    def fingerprint(self) -> str:
        """A short, human-comparable fingerprint for out-of-band checks.

        ``SHA-256("wlx/v1 fingerprint" || 0x00 || raw)``, first 16 bytes, in
        hex groups of four.
        """
        digest = hashlib.sha256(b"wlx/v1 fingerprint\x00" + self.raw).hexdigest()[:32]
        return ":".join(digest[i : i + 4] for i in range(0, 32, 4))

    def b64(self) -> str:
        """Standard base64 of the raw key."""
        return base64.b64encode(self.raw).decode("ascii")

    def same_as(self, other: VerifyKey) -> bool:
        """Constant-time equality."""
        return hmac.compare_digest(self.raw, other.raw)


@dataclass(frozen=True)
class BoxKey:
    """An X25519 private key, used as the HPKE recipient key."""

    _key: x25519.X25519PrivateKey

    @classmethod
    def generate(cls, rng: Rng = system_rng) -> BoxKey:
        """Make a key from 32 bytes of ``rng``."""
        return cls.from_raw(rng(KEY_LEN))

    @classmethod
    def from_raw(cls, raw: bytes) -> BoxKey:
        """Load a key from its 32 raw bytes.

        Raises:
            MalformedError: not 32 bytes.
        """
        if len(raw) != KEY_LEN:
            raise MalformedError("an X25519 private key is 32 bytes")
        return cls(x25519.X25519PrivateKey.from_private_bytes(raw))

    def public(self) -> BoxPublicKey:
        """The matching public key."""
        return BoxPublicKey(self._key.public_key().public_bytes_raw())

    def private_key(self) -> x25519.X25519PrivateKey:
        """The ``cryptography`` key object, for HPKE."""
        return self._key

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (the file holding it must be mode 0600)."""
        return _to_pem(self._key)

    @classmethod
    def from_pem(cls, pem: bytes) -> BoxKey:
        """Load a key written by ``to_pem``.

        Raises:
            MalformedError: not a PEM X25519 private key.
        """
        key = _from_pem(pem)
        if not isinstance(key, x25519.X25519PrivateKey):
            raise MalformedError("not an X25519 private key")
        return cls(key)


@dataclass(frozen=True)
class BoxPublicKey:
    """An X25519 public key (32 raw bytes)."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_LEN:
            raise MalformedError("an X25519 public key is 32 bytes")

    def public_key(self) -> x25519.X25519PublicKey:
        """The ``cryptography`` key object, for HPKE."""
        return x25519.X25519PublicKey.from_public_bytes(self.raw)

    def b64(self) -> str:
        """Standard base64 of the raw key."""
        return base64.b64encode(self.raw).decode("ascii")
