"""Identity cards: a node's public keys and address, self-signed.

docs/protocol.md §1.2.  A card is a small JSON document exchanged out of
band.  It carries its payload as a JSON *string*, and the signature covers
the UTF-8 bytes of exactly that string, so a verifier never re-serialises
anything.  The self-signature proves possession of the identity key and binds
the box key and address to it; whether to trust the identity key is the
operator's decision (compare fingerprints out of band).
"""

from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from wlx.crypto import tls
from wlx.crypto.errors import MalformedError
from wlx.crypto.keys import BoxPublicKey, SigningKey, VerifyKey
from wlx.crypto.note import b64decode_strict
from wlx.crypto.signing import ANYONE, Purpose, sign, verify

CARD_FORMAT = 1
MAX_CARD_BYTES = 16 * 1024
NODE_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,31}$")


_VERSION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_ADVERTISED = 16


@dataclass(frozen=True)
class Speaks:
    """A node's advertised versions (docs/protocol.md §B.1): protocol
    versions (integers >= 1), normalisation versions (``wlx-norm-N``) and
    optional features (names such as ``oprf-online``), each in the node's
    order of preference (most preferred first), without repeats."""

    protocol: tuple[int, ...] = (1,)
    normalisation: tuple[str, ...] = ("wlx-norm-1",)
    features: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "protocol": list(self.protocol),
            "normalisation": list(self.normalisation),
            "features": list(self.features),
        }


DEFAULT_SPEAKS = Speaks()
"""What a card without ``speaks`` advertises (every card made before §B)."""


def _names(value: Any, what: str, *, empty: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or (not value and not empty) or len(value) > MAX_ADVERTISED:
        raise MalformedError(f"speaks.{what} is not a list of 1 to {MAX_ADVERTISED} names")
    if not all(isinstance(v, str) and _VERSION_NAME.fullmatch(v) for v in value):
        raise MalformedError(f"speaks.{what} holds a name that is not [a-z][a-z0-9-]{{0,31}}")
    if len(set(value)) != len(value):
        raise MalformedError(f"speaks.{what} repeats a name")
    return tuple(value)


def parse_speaks(value: Any) -> Speaks:
    """The ``speaks`` member of a card payload (MUST-B.1-1).

    Raises:
        MalformedError: not an object of exactly the three lists, each well formed.
    """
    if not isinstance(value, dict) or set(value) != {"protocol", "normalisation", "features"}:
        raise MalformedError("speaks is not an object of protocol, normalisation and features")
    protocol = value["protocol"]
    if (
        not isinstance(protocol, list)
        or not 1 <= len(protocol) <= MAX_ADVERTISED
        or not all(type(v) is int and 1 <= v < 2**31 for v in protocol)
        or len(set(protocol)) != len(protocol)
    ):
        raise MalformedError("speaks.protocol is not a list of distinct integers >= 1")
    return Speaks(
        tuple(protocol),
        _names(value["normalisation"], "normalisation", empty=False),
        _names(value["features"], "features", empty=True),
    )


def check_node_id(node_id: str) -> str:
    """Return ``node_id`` if it is a valid node id (2-32 of A-Z, 0-9, '-').

    Raises:
        MalformedError: it is not.
    """
    if not NODE_ID.fullmatch(node_id):
        raise MalformedError("a node id is 2 to 32 characters of A-Z, 0-9 and '-'")
    return node_id


@dataclass(frozen=True)
class IdentityCard:
    """A verified identity card."""

    node_id: str
    address: str
    sign_key: VerifyKey
    box_key: BoxPublicKey
    issued_at: int
    raw: bytes
    """The card file's bytes, as verified (store and forward these)."""
    tls_cert: bytes = b""
    """PEM of the node's self-signed TLS certificate, which peers pin."""
    previous_key: VerifyKey | None = None
    """For a card made by key rotation: the identity key it replaces, which
    endorsed it."""
    speaks: Speaks = DEFAULT_SPEAKS
    """What the node advertises it speaks (§B.1); the default when absent."""
    tls_bound: bool = False
    """The card carries a valid ``tls_pop``: the TLS certificate's key signed
    the node id and identity key (proof of possession, §1.2)."""

    def fingerprint(self) -> str:
        """Fingerprint of the identity key, for comparison out of band."""
        return self.sign_key.fingerprint()

    @functools.cached_property
    def tls_fingerprint(self) -> str:
        """SHA-256 (hex) of the TLS certificate's DER encoding."""
        return tls.fingerprint(self.tls_cert)


def make_card(
    key: SigningKey,
    box_key: BoxPublicKey,
    node_id: str,
    address: str,
    issued_at: int,
    tls_cert: bytes,
    previous: SigningKey | None = None,
    tls_key: ec.EllipticCurvePrivateKey | None = None,
    speaks: Speaks = DEFAULT_SPEAKS,
) -> bytes:
    """Build and sign a card; returns the card file's bytes (UTF-8 JSON).

    With ``previous`` (key rotation), the card also names the identity key it
    replaces and carries that key's endorsement of the new card, so peers
    that trust the old key can accept the new one without another
    out-of-band exchange.  With ``tls_key`` (the key of ``tls_cert``), the
    card carries ``tls_pop``, that key's signature binding it to the node id
    and identity key; nodes refuse a peer's card without it.

    Raises:
        MalformedError: the node id or the certificate is invalid.
    """
    check_node_id(node_id)
    tls.load_cert(tls_cert)
    fields: dict[str, Any] = {
        "format": CARD_FORMAT,
        "node_id": node_id,
        "address": address,
        "sign_key": key.public().b64(),
        "box_key": box_key.b64(),
        "tls_cert": tls_cert.decode("ascii"),
        "issued_at": issued_at,
    }
    if speaks != DEFAULT_SPEAKS:  # cards of a node speaking only the defaults stay as they were
        fields["speaks"] = speaks.to_json()
    if previous is not None:
        fields["previous_sign_key"] = previous.public().b64()
    if tls_key is not None:
        pop = tls.sign_possession(tls_key, node_id, key.public().raw)
        fields["tls_pop"] = base64.b64encode(pop).decode("ascii")
    payload = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
    card = {
        "wlx_identity_card": payload.decode("utf-8"),
        "signature": base64.b64encode(
            sign(key, Purpose.IDENTITY_CARD, node_id, ANYONE, payload)
        ).decode(),
    }
    if previous is not None:
        card["endorsement"] = base64.b64encode(
            sign(previous, Purpose.CARD_ROTATION, node_id, ANYONE, payload)
        ).decode()
    return (json.dumps(card, indent=2) + "\n").encode("utf-8")


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise MalformedError(f"identity card field {name!r} is missing or not a {kind.__name__}")
    return value


def _b64(text: str, what: str) -> bytes:
    """Canonical standard base64 only (MUST-1.2-2): one encoding per byte string."""
    try:
        return b64decode_strict(text, f"identity card field {what!r}")
    except MalformedError:
        raise MalformedError(f"identity card field {what!r} is not canonical base64") from None


def _no_constant(name: str) -> Any:
    # RFC 8259 has no NaN or Infinity; Python's json would accept them (MUST-1.2-3).
    raise ValueError(f"{name} is not JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON parsers differ on repeated names (first or last wins): refuse them, so
    # that every implementation reads the same fields from the same signed text.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedError("identity card repeats a field name")
    return obj


def parse_card(data: bytes) -> IdentityCard:
    """Parse a card file and check its self-signature.

    Raises:
        MalformedError: not a card (too large, not JSON, fields missing or of
            the wrong type, keys of the wrong length, invalid node id).
        VerificationError: the self-signature does not verify.
    """
    if len(data) > MAX_CARD_BYTES:
        raise MalformedError("identity card larger than 16 KiB")
    try:
        outer = json.loads(
            data.decode("utf-8"), object_pairs_hook=_object, parse_constant=_no_constant
        )
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, too deep, too long a number
        raise MalformedError("identity card is not UTF-8 JSON") from None
    if not isinstance(outer, dict):
        raise MalformedError("identity card is not a JSON object")
    payload_text = _field(outer, "wlx_identity_card", str)
    signature = _b64(_field(outer, "signature", str), "signature")
    try:
        signed = payload_text.encode("utf-8")  # fails for a lone surrogate (a JSON escape)
        payload = json.loads(payload_text, object_pairs_hook=_object, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise MalformedError("identity card payload is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedError("identity card payload is not a JSON object")
    if _field(payload, "format", int) != CARD_FORMAT:
        raise MalformedError("identity card format is not 1")
    node_id = check_node_id(_field(payload, "node_id", str))
    sign_key = VerifyKey(_b64(_field(payload, "sign_key", str), "sign_key"))
    box_key = BoxPublicKey(_b64(_field(payload, "box_key", str), "box_key"))
    tls_cert = _field(payload, "tls_cert", str).encode("utf-8")
    tls.load_node_cert(tls_cert)
    verify(sign_key, signature, Purpose.IDENTITY_CARD, node_id, ANYONE, signed)
    previous: VerifyKey | None = None
    if "previous_sign_key" in payload:
        previous = VerifyKey(_b64(_field(payload, "previous_sign_key", str), "previous_sign_key"))
        endorsement = _b64(_field(outer, "endorsement", str), "endorsement")
        verify(previous, endorsement, Purpose.CARD_ROTATION, node_id, ANYONE, signed)
    elif "endorsement" in outer:
        raise MalformedError("identity card has an endorsement but no previous key")
    speaks = parse_speaks(payload["speaks"]) if "speaks" in payload else DEFAULT_SPEAKS
    tls_bound = "tls_pop" in payload
    if tls_bound:
        pop = _b64(_field(payload, "tls_pop", str), "tls_pop")
        tls.verify_possession(tls_cert, node_id, sign_key.raw, pop)
    return IdentityCard(
        node_id=node_id,
        address=_field(payload, "address", str),
        sign_key=sign_key,
        box_key=box_key,
        issued_at=_field(payload, "issued_at", int),
        tls_cert=tls_cert,
        raw=data,
        previous_key=previous,
        speaks=speaks,
        tls_bound=tls_bound,
    )
