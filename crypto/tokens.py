"""Pairwise keyed tokens, seal keys, handles and sealed hit data.

docs/protocol.md §4.  Everything here derives from one 32-byte *epoch token
key* that only the origin and one recipient hold, for one epoch.  Every
derivation is keyed BLAKE2b (RFC 7693) with its own personalisation string,
so that the token of an identifier key (what the recipient stores and looks
up) does not reveal the seal key of the same identifier (what opens its hit
data): only someone presenting the identifier itself can open it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import DecryptionError, MalformedError
from wlx.crypto.keys import Rng, system_rng
from wlx.crypto.normalize import NORMALISATION, VERSIONS

TOKEN_KEY_LEN = 32
TOKEN_LEN = 16
HANDLE_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
PERSON_TOKEN = b"wlx1-token"
PERSON_SEAL = b"wlx1-seal"
PERSON_HANDLE = b"wlx1-handle"
PERSON_HIT_PROOF = b"wlx1-hit-proof"
HIT_PROOF_LEN = 32
SEAL_AAD_PREFIX = b"wlx/v1 seal\x00"
PAD_BLOCK = 256
"""Hit data is padded to a multiple of this many bytes before sealing, so the
length of sealed hit data says nothing of category, action or suspension."""
MAX_HIT_DATA = 1_791
"""Largest hit data that can be sealed: padded, it fits 2,048 sealed bytes."""
_TOKEN_LP = TOKEN_LEN.to_bytes(2, "big")
"""``lp``'s length prefix of a token (a token is always ``TOKEN_LEN`` bytes)."""


def pad(data: bytes) -> bytes:
    """``data || 0x80 || 0x00 ...`` up to the next multiple of ``PAD_BLOCK``
    (ISO/IEC 7816-4 padding; always at least one byte).

    Raises:
        MalformedError: ``data`` is longer than ``MAX_HIT_DATA``.
    """
    if len(data) > MAX_HIT_DATA:
        raise MalformedError(f"hit data longer than {MAX_HIT_DATA} bytes")
    size = (len(data) // PAD_BLOCK + 1) * PAD_BLOCK
    return data + b"\x80" + bytes(size - len(data) - 1)


def unpad(padded: bytes) -> bytes:
    """Undo ``pad``.

    Hit data sealed before padding existed (docs/protocol.md §4.3) is never a
    multiple of ``PAD_BLOCK`` long in practice, and is returned as it is, so
    that stores written before keep opening until the origin's next epoch
    re-seals everything padded.  (The AEAD has authenticated it either way.)

    Raises:
        DecryptionError: a multiple of ``PAD_BLOCK`` not padded as ``pad``
            does (opaque, like a failed open).
    """
    if padded and len(padded) % PAD_BLOCK:
        return padded  # unpadded, as sealed before padding
    body = padded.rstrip(b"\x00")
    if not padded or not body.endswith(b"\x80"):
        raise DecryptionError("sealed hit data does not open")
    if len(padded) - len(body) >= PAD_BLOCK:
        raise DecryptionError("sealed hit data does not open")
    return body[:-1]


@dataclass(frozen=True)
class EpochKey:
    """The token key of one (origin, recipient, epoch) and what derives from it.

    ``origin == recipient`` for a node's index of its own list.
    ``normalisation`` is the version of the identifier keys this epoch's
    tokens are computed over (docs/protocol.md §2.9); it does not enter any
    derivation.
    """

    key: bytes = field(repr=False)
    origin: str
    recipient: str
    epoch: int
    normalisation: str = NORMALISATION

    def __post_init__(self) -> None:
        if len(self.key) != TOKEN_KEY_LEN:
            raise MalformedError("an epoch token key is 32 bytes")
        if self.epoch < 1:
            raise MalformedError("epochs start at 1")
        if self.normalisation not in VERSIONS:
            raise MalformedError("unsupported normalisation version")

    @classmethod
    def generate(cls, origin: str, recipient: str, epoch: int, rng: Rng = system_rng) -> EpochKey:
        """A fresh random key for a new epoch."""
        return cls(rng(TOKEN_KEY_LEN), origin, recipient, epoch)

    def _blake(self, person: bytes, data: bytes, size: int) -> bytes:
        return hashlib.blake2b(data, digest_size=size, key=self.key, person=person).digest()

    def token(self, identifier_key: bytes) -> bytes:
        """``BLAKE2b-128(key, person="wlx1-token", identifier_key)``."""
        return self._blake(PERSON_TOKEN, identifier_key, TOKEN_LEN)

    def seal_key(self, identifier_key: bytes) -> bytes:
        """``BLAKE2b-256(key, person="wlx1-seal", identifier_key)``."""
        return self._blake(PERSON_SEAL, identifier_key, 32)

    def handle(self, ref: str) -> bytes:
        """``BLAKE2b-128(key, person="wlx1-handle", UTF-8 ref)``: the listing's opaque handle."""
        return self._blake(PERSON_HANDLE, ref.encode("utf-8"), HANDLE_LEN)

    def hit_proof(self, identifier_key: bytes, message: bytes) -> bytes:
        """Proof of knowing ``identifier_key``, bound to ``message`` (§11.2).

        ``BLAKE2b-256(key=seal_key(identifier_key), person="wlx1-hit-proof",
        message)``: only someone who presented the identifier (a lookup that
        hit) or holds the origin's records can make it.
        """
        return hit_proof(self.seal_key(identifier_key), message)

    @functools.cached_property
    def _aad_prefix(self) -> bytes:
        return SEAL_AAD_PREFIX + lp(self.origin) + lp(self.recipient) + u64(self.epoch)

    def _aad(self, handle: bytes, token: bytes) -> bytes:
        return self._aad_prefix + lp(handle) + lp(token)

    def seal(
        self, identifier_key: bytes, handle: bytes, hit_data: bytes, rng: Rng = system_rng
    ) -> tuple[bytes, bytes]:
        """Token and sealed hit data for one identifier key of one listing.

        Returns ``(token, nonce || ChaCha20-Poly1305 ciphertext)`` of the
        padded hit data (``pad``: a multiple of 256 bytes); the ciphertext is
        bound to origin, recipient, epoch, handle and token.

        Raises:
            MalformedError: hit data longer than ``MAX_HIT_DATA``.
        """
        token = self.token(identifier_key)
        return token, self.seal_as(token, self.seal_key(identifier_key), handle, hit_data, rng)

    def seal_listing(
        self, handle: bytes, entries: Iterable[tuple[bytes, bytes]], rng: Rng = system_rng
    ) -> list[tuple[bytes, bytes]]:
        """``seal`` of each ``(identifier key, hit data)`` of one listing, in order.

        The same bytes as calling ``seal`` for each in turn (one ``rng`` call
        per entry, in order), with what the entries share done once: the
        associated data up to the token, and the padding of equal hit data.

        Raises:
            MalformedError: hit data longer than ``MAX_HIT_DATA``.
        """
        aad_to_token = self._aad(handle, b"")[:-2] + _TOKEN_LP
        padded_of: dict[bytes, bytes] = {}
        key, blake2b = self.key, hashlib.blake2b
        sealed = []
        for identifier_key, hit_data in entries:
            padded = padded_of.get(hit_data)
            if padded is None:
                padded = padded_of[hit_data] = pad(hit_data)
            token = blake2b(identifier_key, digest_size=TOKEN_LEN, key=key, person=PERSON_TOKEN)
            seal_key = blake2b(identifier_key, digest_size=32, key=key, person=PERSON_SEAL)
            tok = token.digest()
            nonce = rng(NONCE_LEN)
            aead = ChaCha20Poly1305(seal_key.digest())
            sealed.append((tok, nonce + aead.encrypt(nonce, padded, aad_to_token + tok)))
        return sealed

    def seal_as(
        self, token: bytes, seal_key: bytes, handle: bytes, hit_data: bytes, rng: Rng = system_rng
    ) -> bytes:
        """``seal`` with a token and seal key derived elsewhere (online tier, §15)."""
        nonce = rng(NONCE_LEN)
        aead = ChaCha20Poly1305(seal_key)
        return nonce + aead.encrypt(nonce, pad(hit_data), self._aad(handle, token))

    def open(self, identifier_key: bytes, handle: bytes, sealed: bytes) -> bytes:
        """Open hit data sealed by ``seal`` for the same identifier key.

        Raises:
            DecryptionError: a different identifier, key, handle or token, or
                tampered bytes (one opaque error).
        """
        return self.open_as(
            self.token(identifier_key), self.seal_key(identifier_key), handle, sealed
        )

    def open_as(self, token: bytes, seal_key: bytes, handle: bytes, sealed: bytes) -> bytes:
        """Open hit data sealed by ``seal_as`` with the same token and seal key.

        Raises:
            DecryptionError: as ``open``.
        """
        if len(sealed) < NONCE_LEN + TAG_LEN:
            raise DecryptionError("sealed hit data does not open")
        aead = ChaCha20Poly1305(seal_key)
        try:
            padded = aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], self._aad(handle, token))
        except InvalidTag:
            raise DecryptionError("sealed hit data does not open") from None
        return unpad(padded)


def hit_proof(seal_key: bytes, message: bytes) -> bytes:
    """``BLAKE2b-256(key=seal_key, person="wlx1-hit-proof", message)`` (§11.2)."""
    return hashlib.blake2b(
        message, digest_size=HIT_PROOF_LEN, key=seal_key, person=PERSON_HIT_PROOF
    ).digest()
