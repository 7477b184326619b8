"""C2SP tlog checkpoints and Ed25519 witness cosignatures.

* https://c2sp.org/tlog-checkpoint -- the note text of a log's tree head.
* https://c2sp.org/tlog-cosignature -- timestamped Ed25519 cosignatures
  (signed-note type 0x04) over that text.

Time is an argument: nothing here reads a clock.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.note import (
    SIG_TYPE_COSIGNATURE_V1,
    b64decode_strict,
    check_key_name,
    format_verifier_key,
    key_id,
    parse_signature_line,
    parse_verifier_key,
    signature_line,
)

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")  # at most 20 digits: 2**64 - 1 has 20
MAX_TREE_SIZE = 2**64 - 1
#: tlog-cosignature "Format": the timestamp MUST NOT exceed 2^63 - 1.
MAX_TIMESTAMP = 2**63 - 1


def _check_line(line: str, what: str) -> None:
    # tlog-checkpoint "Note text": lines are non-empty; signed-note forbids
    # control characters, so no line can hold a newline either.
    if not line or any(c < " " for c in line):
        raise MalformedError(f"checkpoint: {what} is empty or has a control character")


@dataclass(frozen=True)
class Checkpoint:
    """A log tree head as the text of a checkpoint note (tlog-checkpoint "Note text").

    Construction validates every field and raises :class:`MalformedError`.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedError("checkpoint: tree size out of range")
        if len(self.root_hash) != 32:
            raise MalformedError("checkpoint: root hash is not 32 bytes")
        for ext in self.extensions:
            _check_line(ext, "extension line")

    def to_text(self) -> str:
        """Return origin, size, base64 root hash, extensions: each line ending in newline."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Strictly parse checkpoint note text; inverse of :meth:`to_text`.

        Raises :class:`MalformedError` unless the text is at least three
        non-empty newline-terminated lines: an origin, a decimal size with no
        leading zeros, a canonical base64 32-byte root hash, then optional
        non-empty extension lines.
        """
        if not text.endswith("\n"):
            raise MalformedError("checkpoint: text does not end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedError("checkpoint: fewer than three lines")
        origin, size, root_b64, *extensions = lines
        if not _SIZE.fullmatch(size):
            raise MalformedError("checkpoint: tree size is not a canonical decimal")
        return cls(
            origin, int(size), b64decode_strict(root_b64, "checkpoint root hash"), tuple(extensions)
        )


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """Return ``cosignature/v1\\ntime <timestamp>\\n`` || checkpoint text.

    This is the "Ed25519 signed message" of C2SP tlog-cosignature.
    """
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("timestamp out of range")
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def _raw_public(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class CosignatureSigner:
    """A :class:`~wlx.crypto.note.NoteSigner` making type 0x04 cosignatures at a fixed time."""

    name: str
    private_key: Ed25519PrivateKey
    timestamp: int

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise ValueError("timestamp out of range")

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x04 || public key)[:4] (tlog-cosignature "Format")."""
        return key_id(self.name, SIG_TYPE_COSIGNATURE_V1, _raw_public(self.private_key))

    def sign(self, text: bytes) -> bytes:
        """Return the ``timestamped_signature``: big-endian u64 timestamp || Ed25519 signature.

        Raises :class:`MalformedError` if ``text`` is not a checkpoint.
        """
        try:
            body = text.decode()
        except UnicodeDecodeError:
            raise MalformedError("checkpoint: not valid UTF-8") from None
        Checkpoint.parse(body)
        signature = self.private_key.sign(cosignature_message(body, self.timestamp))
        return self.timestamp.to_bytes(8, "big") + signature

    def verifier(self) -> CosignatureVerifier:
        """The matching verifier."""
        return CosignatureVerifier(self.name, _raw_public(self.private_key))


@dataclass(frozen=True)
class CosignatureVerifier:
    """A :class:`~wlx.crypto.note.NoteVerifier` for type 0x04 Ed25519 cosignatures."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.public_key) != 32:
            raise MalformedError("Ed25519 public key is not 32 bytes")

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x04 || public key)[:4] (tlog-cosignature "Format")."""
        return key_id(self.name, SIG_TYPE_COSIGNATURE_V1, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> int:
        """Verify a ``timestamped_signature`` over checkpoint ``text``; return its timestamp.

        Raises :class:`MalformedError` if ``text`` is not a checkpoint, and
        :class:`VerificationError` for a wrong length, a timestamp above
        2^63 - 1 or an invalid signature.
        """
        if len(signature) != 8 + 64:
            raise VerificationError(f"cosignature by {self.name}: wrong length")
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            raise VerificationError(f"cosignature by {self.name}: timestamp out of range")
        try:
            body = text.decode()
        except UnicodeDecodeError:
            raise MalformedError("checkpoint: not valid UTF-8") from None
        Checkpoint.parse(body)
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(
                signature[8:], cosignature_message(body, timestamp)
            )
        except (InvalidSignature, ValueError):
            raise VerificationError(f"cosignature by {self.name}: invalid") from None
        return timestamp

    def to_verifier_key(self) -> str:
        """Format as ``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        return format_verifier_key(self.name, SIG_TYPE_COSIGNATURE_V1, self.public_key)


def cosignature_verifier(vkey: str) -> CosignatureVerifier:
    """Parse a type 0x04 verifier key string; raises :class:`MalformedError`."""
    name, sig_type, public_key = parse_verifier_key(vkey)
    if sig_type != SIG_TYPE_COSIGNATURE_V1:
        raise MalformedError("verifier key: not a cosignature (0x04) key")
    return CosignatureVerifier(name, public_key)


def cosign(
    checkpoint_text: str, witness_name: str, witness_private_key: Ed25519PrivateKey, timestamp: int
) -> str:
    """Return the witness's cosignature line ``— <name> base64(key ID || u64 time || sig)\\n``.

    Raises :class:`MalformedError` if ``checkpoint_text`` is not a
    checkpoint or the name is invalid, ``ValueError`` for a timestamp
    outside 0..2^63-1.
    """
    signer = CosignatureSigner(witness_name, witness_private_key, timestamp)
    return signature_line(signer.name, signer.key_id, signer.sign(checkpoint_text.encode()))


def verify_cosignature(checkpoint_text: str, line: str, verifier: CosignatureVerifier) -> int:
    """Verify one cosignature line (with or without its newline); return its timestamp.

    Raises :class:`MalformedError` for a malformed line or checkpoint and
    :class:`VerificationError` if the line is not by ``verifier``'s key or
    does not verify.
    """
    name, raw = parse_signature_line(line.removesuffix("\n"))
    if name != verifier.name or raw[:4] != verifier.key_id:
        raise VerificationError("cosignature: line is not from this witness key")
    return verifier.verify(checkpoint_text.encode(), raw[4:])
