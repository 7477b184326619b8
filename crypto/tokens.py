"""Pairwise keyed tokens, seal keys, handles and sealed hit data.

Two seal formats (docs/protocol.md §4.3): protocol 1 seals a listing's hit
data once per identifier key (``seal_listing``, ``open``); protocol 2 seals it
once per listing under a random listing key, and each identifier key's entry
carries a 17-byte *wrap* of that key's secret, and of the kind of the
identifier key, under the identifier's seal key (``seal_listing_v2``,
``open_listing``).

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
from wlx.crypto.normalize import NORMALISATION, VERSIONS, KeyKind

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
LISTING_SECRET_LEN = 16
WRAP_LEN = LISTING_SECRET_LEN + 1
"""A protocol-2 wrap: the masked listing secret, then the masked kind code."""
PERSON_LISTING = b"wlx2-listing"
PERSON_WRAP = b"wlx2-wrap"
PERSON_KIND = b"wlx2-kind"
SEAL2_AAD_PREFIX = b"wlx/v2 seal\x00"
PAD2_BLOCK = 256
"""Protocol 2 pads a listing's hit data to a multiple of this many bytes: the
hit data of every valid listing fits one bucket (``MAX_LISTING_HIT_DATA``),
so a sealed listing's length says nothing of its category, action or
suspension."""
MAX_LISTING_HIT_DATA = 255
"""The longest protocol-2 hit data of a valid listing: ``HitData`` with a
32-character origin, a 64-character ref, category and action (node ids and
the record limits of ``node/core/records.py``), a 10-character expiry, the
largest version (10-byte varint) and ``matched_on`` empty; padded (one
``0x80`` at least) it is one ``PAD2_BLOCK``."""
MIN_SEALED2 = NONCE_LEN + PAD2_BLOCK + TAG_LEN
"""The shortest protocol-2 sealed listing: one padding bucket."""
_TOKEN_LP = TOKEN_LEN.to_bytes(2, "big")
"""``lp``'s length prefix of a token (a token is always ``TOKEN_LEN`` bytes)."""


def pad(data: bytes) -> bytes:
    """``data || 0x80 || 0x00 ...`` up to the next multiple of ``PAD_BLOCK``
    (ISO/IEC 7816-4 padding; always at least one byte).

    Raises:
        MalformedError: ``data`` is longer than ``MAX_HIT_DATA``.
    """
    return _pad(data, PAD_BLOCK)


def _pad(data: bytes, block: int) -> bytes:
    if len(data) > MAX_HIT_DATA:
        raise MalformedError(f"hit data longer than {MAX_HIT_DATA} bytes")
    size = (len(data) // block + 1) * block
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


def pad2(data: bytes) -> bytes:
    """``pad`` to a multiple of ``PAD2_BLOCK`` (protocol 2).

    Raises:
        MalformedError: ``data`` is longer than ``MAX_HIT_DATA``.
    """
    return _pad(data, PAD2_BLOCK)


def unpad2(padded: bytes) -> bytes:
    """Undo ``pad2`` (strict: protocol 2 was padded from the start).

    Raises:
        DecryptionError: not padded as ``pad2`` does (opaque).
    """
    body = padded.rstrip(b"\x00")
    if not padded or len(padded) % PAD2_BLOCK or not body.endswith(b"\x80"):
        raise DecryptionError("sealed hit data does not open")
    if len(padded) - len(body) >= PAD2_BLOCK:
        raise DecryptionError("sealed hit data does not open")
    return body[:-1]


KIND_DATES = ("dob", "dob-month", "dob-year")
"""Bits 4-6 of a name kind's code (§4.3): the index of its date precision."""
KIND_QUALIFIERS = ("transliterated", "reordered", "swapped day/month", "phonetic")
"""Bits 0-3 of a name kind's code (§4.3)."""


def kind_code(kind: KeyKind) -> int:
    """The one-byte code of an identifier-key kind in a protocol-2 wrap:
    ``0`` for ``document``; for a name, ``0x80 | date << 4 | qualifiers``
    with ``date`` the index of ``dob``, ``dob-month``, ``dob-year`` and
    ``qualifiers`` the bits of ``KIND_QUALIFIERS``.

    Raises:
        MalformedError: a kind with no code.
    """
    if kind.base == "document":
        return 0
    if kind.base != "name" or kind.date not in KIND_DATES:
        raise MalformedError("an identifier kind without a code")
    bits = 0
    for qualifier in kind.qualifiers:
        if qualifier not in KIND_QUALIFIERS:
            raise MalformedError("an identifier kind without a code")
        bits |= 1 << KIND_QUALIFIERS.index(qualifier)
    return 0x80 | KIND_DATES.index(kind.date) << 4 | bits


def kind_of_code(code: int) -> KeyKind:
    """The kind ``kind_code`` gives ``code``.

    Raises:
        DecryptionError: no kind has that code (opaque: the wrap did not open).
    """
    if code == 0:
        return KeyKind.DOCUMENT
    date, bits = code >> 4 & 0x07, code & 0x0F
    if not code & 0x80 or date >= len(KIND_DATES):
        raise DecryptionError("sealed hit data does not open")
    qualifiers = [q for i, q in enumerate(KIND_QUALIFIERS) if bits >> i & 1]
    return KeyKind.name(KIND_DATES[date], *qualifiers)


def _kind_mask(seal_key: bytes, handle_lp: bytes, nonce: bytes, token: bytes, code: int) -> int:
    """``BLAKE2b-128(key=seal_key, person="wlx2-kind", lp(handle) || nonce ||
    token || u8(code))`` as an integer: folded into the masked secret, so that
    a changed kind code unwraps an unpredictable secret (keyed and bound to
    the wrap, so no one without the seal key can compute the difference of
    two codes' masks)."""
    digest = hashlib.blake2b(
        handle_lp + nonce + token + bytes([code]),
        digest_size=LISTING_SECRET_LEN,
        key=seal_key,
        person=PERSON_KIND,
    ).digest()
    return int.from_bytes(digest, "big")


def _wrap_pad(seal_key: bytes, handle_lp: bytes, nonce: bytes, token: bytes) -> int:
    """``BLAKE2b-136(key=seal_key, person="wlx2-wrap", lp(handle) || nonce ||
    token)`` as an integer (to XOR with the secret and the kind code)."""
    digest = hashlib.blake2b(
        handle_lp + nonce + token, digest_size=WRAP_LEN, key=seal_key, person=PERSON_WRAP
    ).digest()
    return int.from_bytes(digest, "big")


def listing_key(secret: bytes, handle: bytes) -> bytes:
    """``BLAKE2b-256(key=secret, person="wlx2-listing", handle)``: the key a
    protocol-2 listing is sealed under."""
    return hashlib.blake2b(handle, digest_size=32, key=secret, person=PERSON_LISTING).digest()


@dataclass(frozen=True)
class EpochKey:
    """The token key of one (origin, recipient, epoch) and what derives from it.

    ``origin == recipient`` for a node's index of its own list.
    ``normalisation`` is the version of the identifier keys this epoch's
    tokens are computed over (docs/protocol.md §2.9); it does not enter any
    derivation.  ``protocol`` is the protocol version the stream's epoch was
    started under (appendix B): 2 seals each listing once (§4.3); it does
    not enter any derivation either.
    """

    key: bytes = field(repr=False)
    origin: str
    recipient: str
    epoch: int
    normalisation: str = NORMALISATION
    protocol: int = 1

    def __post_init__(self) -> None:
        if len(self.key) != TOKEN_KEY_LEN:
            raise MalformedError("an epoch token key is 32 bytes")
        if self.protocol not in (1, 2):
            raise MalformedError("unsupported protocol version")
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

    # ------------------------------------------------------------ protocol 2

    @functools.cached_property
    def _aad2_prefix(self) -> bytes:
        return SEAL2_AAD_PREFIX + lp(self.origin) + lp(self.recipient) + u64(self.epoch)

    def aad2(self, handle: bytes) -> bytes:
        """``"wlx/v2 seal" || 0x00 || lp(origin) || lp(recipient) || u64(epoch)
        || lp(handle)``: what a protocol-2 sealed listing is bound to."""
        return self._aad2_prefix + lp(handle)

    def seal_listing_v2(
        self,
        handle: bytes,
        hit_data: bytes,
        identifier_keys: Iterable[tuple[bytes, KeyKind]],
        rng: Rng = system_rng,
    ) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """Seal one listing's hit data once, and wrap its key for each
        ``(identifier key, kind)``.

        ``secret = rng(16)``, then ``nonce = rng(12)``;
        ``lkey = listing_key(secret, handle)``; returns ``(nonce ||
        ChaCha20-Poly1305(lkey, nonce, pad2(hit_data), aad2(handle)), [(token,
        wrap), ...])`` with, per identifier key in order, ``pad =
        BLAKE2b-136(key=seal_key, person="wlx2-wrap", lp(handle) || nonce ||
        token)``, ``kmask = BLAKE2b-128(key=seal_key, person="wlx2-kind",
        lp(handle) || nonce || token || u8(code))`` and ``wrap = (secret XOR
        pad[:16] XOR kmask) || (code XOR pad[16])``, ``code`` the
        ``kind_code`` of the key's kind.  Only the seal key opens a wrap, so
        the hit data opens only for a query presenting a listed identifier,
        and shows the kind of the listing's key that matched.

        Raises:
            MalformedError: hit data longer than ``MAX_HIT_DATA``, or a kind
                without a code.
        """
        padded = pad2(hit_data)
        secret = rng(LISTING_SECRET_LEN)
        nonce = rng(NONCE_LEN)
        aead = ChaCha20Poly1305(listing_key(secret, handle))
        sealed = nonce + aead.encrypt(nonce, padded, self.aad2(handle))
        handle_lp = lp(handle)
        key, blake2b = self.key, hashlib.blake2b
        share = int.from_bytes(secret, "big") << 8
        wraps = []
        for identifier_key, kind in identifier_keys:
            code = kind_code(kind)
            token = blake2b(identifier_key, digest_size=TOKEN_LEN, key=key, person=PERSON_TOKEN)
            seal_key = blake2b(identifier_key, digest_size=32, key=key, person=PERSON_SEAL)
            tok, skey = token.digest(), seal_key.digest()
            plain = share ^ _kind_mask(skey, handle_lp, nonce, tok, code) << 8 | code
            pad_ = _wrap_pad(skey, handle_lp, nonce, tok)
            wraps.append((tok, (plain ^ pad_).to_bytes(WRAP_LEN, "big")))
        return sealed, wraps

    def open_listing(
        self, identifier_key: bytes, handle: bytes, wrap: bytes, sealed: bytes
    ) -> tuple[bytes, KeyKind]:
        """Open a listing sealed by ``seal_listing_v2`` with the wrap of the
        entry of ``identifier_key``: its hit data, and the kind of the
        listing's identifier key that entry was made for.

        Raises:
            DecryptionError: a different identifier, key, handle, token or
                wrap, or tampered bytes (one opaque error).
        """
        return self.open_listing_as(
            self.token(identifier_key), self.seal_key(identifier_key), handle, wrap, sealed
        )

    def open_listing_as(
        self, token: bytes, seal_key: bytes, handle: bytes, wrap: bytes, sealed: bytes
    ) -> tuple[bytes, KeyKind]:
        """``open_listing`` with a token and seal key derived elsewhere.

        Raises:
            DecryptionError: as ``open_listing``.
        """
        if len(wrap) != WRAP_LEN or len(sealed) < NONCE_LEN + TAG_LEN:
            raise DecryptionError("sealed hit data does not open")
        nonce, handle_lp = sealed[:NONCE_LEN], lp(handle)
        plain = int.from_bytes(wrap, "big") ^ _wrap_pad(seal_key, handle_lp, nonce, token)
        code = plain & 0xFF
        kind = kind_of_code(code)
        mask = _kind_mask(seal_key, handle_lp, nonce, token, code)
        secret = ((plain >> 8) ^ mask).to_bytes(LISTING_SECRET_LEN, "big")
        aead = ChaCha20Poly1305(listing_key(secret, handle))
        try:
            padded = aead.decrypt(nonce, sealed[NONCE_LEN:], self.aad2(handle))
        except InvalidTag:
            raise DecryptionError("sealed hit data does not open") from None
        return unpad2(padded), kind


def hit_proof(seal_key: bytes, message: bytes) -> bytes:
    """``BLAKE2b-256(key=seal_key, person="wlx1-hit-proof", message)`` (§11.2)."""
    return hashlib.blake2b(
        message, digest_size=HIT_PROOF_LEN, key=seal_key, person=PERSON_HIT_PROOF
    ).digest()
