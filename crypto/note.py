"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A note is a UTF-8 text ending in a newline, a blank line, then one or more
signature lines ``— <key name> <base64(4-byte key ID || signature)>``.
Signature types beyond Ed25519 (type 0x01) plug in through the
:class:`NoteSigner` / :class:`NoteVerifier` protocols; the timestamped
cosignature (type 0x04) in :mod:`wlx.crypto.checkpoint` is one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wlx.crypto.errors import MalformedError, VerificationError

#: Signature type identifier bytes (signed-note "Signature types").
SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04

#: Defaults for :func:`open_note`.  The spec requires accepting at least 16
#: signatures; golang.org/x/mod/sumdb/note rejects more than 100.
MAX_SIGNATURES = 100
MAX_NOTE_SIZE = 1 << 20

_SIG_PREFIX = "\u2014 "  # em dash, space
_HEX_ID = re.compile(r"[0-9a-f]{8}")


def check_key_name(name: str) -> None:
    """Raise :class:`MalformedError` unless ``name`` is a valid key name.

    Key names are non-empty and contain no Unicode spaces, no '+' and (as
    part of a note) no control characters (signed-note "Format").
    """
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise MalformedError("invalid key name")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """Return SHA-256(name || 0x0A || sig_type || public_key)[:4] (signed-note "Signatures")."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode canonical standard base64 (RFC 4648 §4), else raise :class:`MalformedError`.

    Non-alphabet characters, bad padding and non-zero pad bits are all
    rejected, so each byte string has exactly one accepted encoding.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError(f"{what}: bad base64") from None
    if base64.b64encode(raw).decode() != text:
        raise MalformedError(f"{what}: non-canonical base64")
    return raw


class NoteSigner(Protocol):
    """Something that signs note text: a key name, its 4-byte key ID, and sign()."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes:
        """Return the signature bytes (without the key ID) over the note text."""
        ...


class NoteVerifier(Protocol):
    """Something that verifies one key's signatures on note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> int | None:
        """Raise :class:`VerificationError` unless ``signature`` signs ``text``.

        Returns the timestamp the signature attests, or ``None`` if its type
        carries none.
        """
        ...


@dataclass(frozen=True)
class VerifiedSignature:
    """One signature line that :func:`open_note` verified."""

    name: str
    key_id: bytes
    signature: bytes  #: the bytes after the key ID
    timestamp: int | None  #: attested time (cosignatures), else None


@dataclass(frozen=True)
class Ed25519Verifier:
    """Verifier for type 0x01 Ed25519 note signatures (signed-note "Ed25519 signatures")."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedError("Ed25519 public key is not 32 bytes")

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        return key_id(self.name, SIG_TYPE_ED25519, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> None:
        """Raise :class:`VerificationError` unless ``signature`` is a valid
        RFC 8032 signature of ``text``."""
        if len(signature) != 64:
            raise VerificationError(f"signature by {self.name}: wrong length")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            raise VerificationError(f"signature by {self.name}: invalid") from None

    def to_verifier_key(self) -> str:
        """Format as ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return format_verifier_key(self.name, SIG_TYPE_ED25519, self.public_key)


@dataclass(frozen=True)
class Ed25519Signer:
    """Signer producing type 0x01 Ed25519 note signatures."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        return key_id(self.name, SIG_TYPE_ED25519, self.public_key)

    def sign(self, text: bytes) -> bytes:
        """Return the Ed25519 signature of ``text``."""
        return self.private_key.sign(text)

    def verifier(self) -> Ed25519Verifier:
        """The matching verifier."""
        return Ed25519Verifier(self.name, self.public_key)


def format_verifier_key(name: str, sig_type: int, public_key: bytes) -> str:
    """Return the verifier key string ``<name>+<hex key ID>+<base64(type || key)>``."""
    check_key_name(name)
    kid = key_id(name, sig_type, public_key)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([sig_type]) + public_key).decode()}"


def parse_verifier_key(vkey: str) -> tuple[str, int, bytes]:
    """Parse ``<name>+<hex key ID>+<base64(type || key)>`` into (name, type, public key).

    Accepts only types 0x01 (Ed25519) and 0x04 (Ed25519 cosignature) with a
    32-byte key, and only if the key ID equals the one derived from the
    name and key.  Raises :class:`MalformedError` otherwise.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise MalformedError("verifier key: expected name+id+key")
    name, hex_id, b64 = parts
    check_key_name(name)
    if not _HEX_ID.fullmatch(hex_id):
        raise MalformedError("verifier key: key ID is not 8 lowercase hex digits")
    raw = b64decode_strict(b64, "verifier key")
    if len(raw) != 33 or raw[0] not in (SIG_TYPE_ED25519, SIG_TYPE_COSIGNATURE_V1):
        raise MalformedError("verifier key: unsupported type or key length")
    if key_id(name, raw[0], raw[1:]).hex() != hex_id:
        raise MalformedError("verifier key: key ID does not match key")
    return name, raw[0], raw[1:]


def ed25519_verifier(vkey: str) -> Ed25519Verifier:
    """Parse a type 0x01 verifier key string; raises :class:`MalformedError`."""
    name, sig_type, public_key = parse_verifier_key(vkey)
    if sig_type != SIG_TYPE_ED25519:
        raise MalformedError("verifier key: not an Ed25519 (0x01) key")
    return Ed25519Verifier(name, public_key)


def parse_signer_key(skey: str) -> Ed25519Signer:
    """Parse golang.org/x/mod/sumdb/note's ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``.

    Meant for test vectors.  Raises :class:`MalformedError` if the format,
    type or length is wrong or the key ID does not match the derived key.
    """
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedError("signer key: expected PRIVATE+KEY+name+id+key")
    _, _, name, hex_id, b64 = parts
    check_key_name(name)
    if not _HEX_ID.fullmatch(hex_id):
        raise MalformedError("signer key: key ID is not 8 lowercase hex digits")
    raw = b64decode_strict(b64, "signer key")
    if len(raw) != 33 or raw[0] != SIG_TYPE_ED25519:
        raise MalformedError("signer key: unsupported type or key length")
    signer = Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.key_id.hex() != hex_id:
        raise MalformedError("signer key: key ID does not match key")
    return signer


def _check_note_chars(text: str) -> None:
    # signed-note "Format": no ASCII control characters other than newline.
    if any(c < " " and c != "\n" for c in text):
        raise MalformedError("note contains a control character")


def signature_line(name: str, kid: bytes, signature: bytes) -> str:
    """Return ``— <name> <base64(key ID || signature)>\\n`` (signed-note "Signatures")."""
    check_key_name(name)
    if len(kid) != 4:
        raise ValueError("key ID is not 4 bytes")
    return f"{_SIG_PREFIX}{name} {base64.b64encode(kid + signature).decode()}\n"


def parse_signature_line(line: str) -> tuple[str, bytes]:
    """Parse ``— <name> <base64>`` (no newline) into (name, key ID || signature).

    Raises :class:`MalformedError` on a missing em dash, an invalid name,
    bad base64, or fewer than 5 decoded bytes.
    """
    if not line.startswith(_SIG_PREFIX):
        raise MalformedError("signature line does not start with an em dash")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise MalformedError("signature line has no signature")
    check_key_name(name)
    raw = b64decode_strict(b64, "signature line")
    if len(raw) < 5:
        raise MalformedError("signature line too short")
    return name, raw


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Return the signed note: ``text``, a blank line, one signature line per signer.

    Raises :class:`MalformedError` if ``text`` is not newline-terminated
    UTF-8 free of control characters, or a signer's name is invalid, and
    ``ValueError`` if there are no signers.
    """
    if not signers:
        raise ValueError("a note needs at least one signature")
    if not text.endswith("\n"):
        raise MalformedError("note text does not end in a newline")
    _check_note_chars(text)
    try:
        body = text.encode()
    except UnicodeEncodeError:
        raise MalformedError("note text is not valid UTF-8") from None
    lines = [signature_line(s.name, s.key_id, s.sign(body)) for s in signers]
    return body + b"\n" + "".join(lines).encode()


def open_note(
    note: bytes,
    verifiers: Sequence[NoteVerifier],
    *,
    max_size: int = MAX_NOTE_SIZE,
    max_signatures: int = MAX_SIGNATURES,
) -> tuple[str, list[VerifiedSignature]]:
    """Parse ``note`` and verify its signatures against ``verifiers``.

    Follows signed-note "Signatures": lines whose (name, key ID) match no
    verifier are ignored; a line matching a verifier must verify, else the
    whole note is rejected; at least one must verify.  Returns the note text
    and the verified signatures (one per key, in note order).

    Raises :class:`MalformedError` for a note over ``max_size`` bytes or
    ``max_signatures`` lines, invalid UTF-8, control characters, no blank
    line before the signatures, or a bad signature line;
    :class:`VerificationError` if a known key's signature fails or none
    verifies; ``ValueError`` if two verifiers share a name and key ID.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if (v.name, v.key_id) in known:
            raise ValueError("two verifiers share a name and key ID")
        known[(v.name, v.key_id)] = v

    if len(note) > max_size:
        raise MalformedError("note too large")
    try:
        decoded = note.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedError("note is not valid UTF-8") from None
    _check_note_chars(decoded)
    # The text is separated from the signatures by the last empty line.
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedError("note does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise MalformedError("note has too many signatures")

    parsed = [parse_signature_line(line) for line in lines]

    text_bytes = text.encode()
    verified: list[VerifiedSignature] = []
    seen: set[tuple[str, bytes]] = set()
    for name, raw in parsed:
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue  # unknown key: ignored
        timestamp = verifier.verify(text_bytes, raw[4:])
        if (name, raw[:4]) not in seen:
            seen.add((name, raw[:4]))
            verified.append(VerifiedSignature(name, raw[:4], raw[4:], timestamp))
    if not verified:
        raise VerificationError("note has no signature from a known key")
    return text, verified
