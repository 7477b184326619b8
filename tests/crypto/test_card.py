"""Identity cards: self-signed node keys and address (docs/protocol.md §1.2)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from wlx.crypto import tls
from wlx.crypto.card import MAX_CARD_BYTES, check_node_id, make_card, parse_card
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.crypto.signing import ANYONE, Purpose, sign

KEY = SigningKey.from_seed(bytes(range(32)))
BOX = BoxKey.from_raw(bytes(range(32, 64)))
CERT = tls.node_certificate(tls.generate_key(), "CN", not_before=0, not_after=2**32)
CARD = make_card(KEY, BOX.public(), "CN", "cn.example:7001", 1_800_000_000, CERT)
PAYLOAD: dict[str, Any] = json.loads(json.loads(CARD)["wlx_identity_card"])


def signed_card(payload: dict[str, Any] | str, key: SigningKey = KEY, node_id: str = "CN") -> bytes:
    """A card whose signature is valid for ``payload``, whatever it holds."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    signature = sign(key, Purpose.IDENTITY_CARD, node_id, ANYONE, text.encode())
    return json.dumps(
        {"wlx_identity_card": text, "signature": base64.b64encode(signature).decode()}
    ).encode()


def test_round_trip() -> None:
    card = parse_card(CARD)
    assert (card.node_id, card.address, card.issued_at) == ("CN", "cn.example:7001", 1_800_000_000)
    assert card.sign_key == KEY.public() and card.box_key == BOX.public()
    assert card.raw == CARD
    assert card.fingerprint() == KEY.public().fingerprint()
    assert {
        "format": 1,
        "node_id": "CN",
        "address": "cn.example:7001",
        "sign_key": KEY.public().b64(),
        "box_key": BOX.public().b64(),
        "tls_cert": CERT.decode(),
        "issued_at": 1_800_000_000,
    } == PAYLOAD
    assert card.tls_cert == CERT and card.previous_key is None


def test_a_card_signed_for_its_exact_payload_text_parses() -> None:
    # The signature covers the payload string as it is, whatever its spacing.
    assert parse_card(signed_card(json.dumps(PAYLOAD, indent=4))).node_id == "CN"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("address", "evil.example:7001"),
        ("box_key", BoxKey.generate().public().b64()),
        ("issued_at", 1_800_000_001),
        ("node_id", "RU"),
    ],
)
def test_a_changed_field_breaks_the_signature(field: str, value: Any) -> None:
    outer = json.loads(CARD)
    outer["wlx_identity_card"] = json.dumps({**PAYLOAD, field: value})
    with pytest.raises(VerificationError):
        parse_card(json.dumps(outer).encode())


def test_another_key_cannot_sign_for_the_card_key() -> None:
    with pytest.raises(VerificationError):
        parse_card(signed_card(PAYLOAD, key=SigningKey.generate()))


def test_a_signature_for_another_node_id_does_not_verify() -> None:
    with pytest.raises(VerificationError):
        parse_card(signed_card(PAYLOAD, node_id="RU"))


def test_a_swapped_sign_key_does_not_verify() -> None:
    other = SigningKey.generate()
    with pytest.raises(VerificationError):
        parse_card(signed_card({**PAYLOAD, "sign_key": other.public().b64()}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "1"),
        ("format", True),
        ("format", 1.0),
        ("format", 2),
        ("node_id", 7),
        ("node_id", "cn"),
        ("node_id", "C"),
        ("node_id", "CN\n"),
        ("node_id", "-CN"),
        ("node_id", "X" * 33),
        ("address", 7001),
        ("address", None),
        ("sign_key", 1),
        ("sign_key", "not base64!"),
        ("sign_key", base64.b64encode(bytes(31)).decode()),
        ("box_key", False),
        ("box_key", base64.b64encode(bytes(33)).decode()),
        ("issued_at", "1800000000"),
        ("issued_at", 1.8e9),
        ("issued_at", True),
        ("issued_at", None),
        ("tls_cert", 1),
        ("tls_cert", "not a certificate"),
        ("tls_cert", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        ("previous_sign_key", 1),
        ("previous_sign_key", base64.b64encode(bytes(31)).decode()),
    ],
)
def test_wrong_field_types_and_values_are_malformed(field: str, value: Any) -> None:
    with pytest.raises(MalformedError):
        parse_card(signed_card({**PAYLOAD, field: value}))


@pytest.mark.parametrize("field", sorted(PAYLOAD))
def test_a_missing_field_is_malformed(field: str) -> None:
    payload = {k: v for k, v in PAYLOAD.items() if k != field}
    with pytest.raises(MalformedError):
        parse_card(signed_card(payload))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"null",
        b"[]",
        b'"card"',
        b"{}",
        b'{"wlx_identity_card": 1, "signature": ""}',
        b'{"wlx_identity_card": "{}", "signature": 1}',
        b'{"wlx_identity_card": "{}", "signature": "%%%"}',
        b'{"wlx_identity_card": "[1]", "signature": ""}',
        b'{"wlx_identity_card": "{", "signature": ""}',
        b"[" * 5000,
        b'{"a": ' + b"1" * 5000 + b"}",
        json.dumps({"wlx_identity_card": "[" * 5000, "signature": ""}).encode(),
        json.dumps(
            {"wlx_identity_card": '{"format": ' + "9" * 5000 + "}", "signature": ""}
        ).encode(),
    ],
)
def test_not_a_card_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_card(data)


def test_a_card_over_16_kib_is_rejected_before_parsing() -> None:
    def card_of_size(size: int) -> bytes:
        card = signed_card({**PAYLOAD, "address": "a"})
        padded = signed_card({**PAYLOAD, "address": "a" * (size - len(card) + 1)})
        assert len(padded) == size
        return padded

    assert parse_card(card_of_size(MAX_CARD_BYTES)).node_id == "CN"
    with pytest.raises(MalformedError):
        parse_card(card_of_size(MAX_CARD_BYTES + 1))


@pytest.mark.parametrize("node_id", ["CN", "RU-2", "0X", "A" * 32])
def test_valid_node_ids(node_id: str) -> None:
    assert check_node_id(node_id) == node_id


@pytest.mark.parametrize("node_id", ["", "C", "cn", "C N", "CN\n", "-CN", "A" * 33, "ÇN"])
def test_invalid_node_ids(node_id: str) -> None:
    with pytest.raises(MalformedError):
        check_node_id(node_id)
    with pytest.raises(MalformedError):
        make_card(KEY, BOX.public(), node_id, "x:1", 0, CERT)


def test_a_repeated_field_name_is_malformed() -> None:
    # Signed as it stands, but JSON parsers disagree on which "address" counts.
    text = json.dumps(PAYLOAD)[:-1] + ', "address": "evil.example:7001"}'
    with pytest.raises(MalformedError):
        parse_card(signed_card(text))
    outer = CARD.decode().replace('"signature"', '"signature": "", "signature"', 1)
    with pytest.raises(MalformedError):
        parse_card(outer.encode())


def test_a_lone_surrogate_in_the_payload_is_malformed() -> None:
    # The card file escapes it as \\ud800; the payload string then holds a
    # character that has no UTF-8 form, so there are no bytes to verify.
    text = json.dumps(PAYLOAD)[:-1] + ', "x": "\ud800"}'
    outer = json.dumps(
        {"wlx_identity_card": text, "signature": base64.b64encode(bytes(64)).decode()}
    )
    assert "\\ud800" in outer
    with pytest.raises(MalformedError):
        parse_card(outer.encode())


def test_a_rotated_card_needs_the_endorsement_of_the_previous_key() -> None:
    new_key = SigningKey.generate()
    rotated = make_card(new_key, BOX.public(), "CN", "cn.example:7001", 2, CERT, previous=KEY)
    card = parse_card(rotated)
    assert card.sign_key == new_key.public() and card.previous_key == KEY.public()
    outer = json.loads(rotated)
    # endorsed by another key than the one it names as previous
    other = sign(
        SigningKey.generate(),
        Purpose.CARD_ROTATION,
        "CN",
        ANYONE,
        outer["wlx_identity_card"].encode(),
    )
    with pytest.raises(VerificationError):
        parse_card(json.dumps({**outer, "endorsement": base64.b64encode(other).decode()}).encode())
    # an identity-card signature of the previous key is not an endorsement
    wrong_purpose = sign(
        KEY, Purpose.IDENTITY_CARD, "CN", ANYONE, outer["wlx_identity_card"].encode()
    )
    with pytest.raises(VerificationError):
        parse_card(
            json.dumps({**outer, "endorsement": base64.b64encode(wrong_purpose).decode()}).encode()
        )
    without = {k: v for k, v in outer.items() if k != "endorsement"}
    with pytest.raises(MalformedError):
        parse_card(json.dumps(without).encode())
    with pytest.raises(MalformedError):
        parse_card(json.dumps({**json.loads(CARD), "endorsement": outer["endorsement"]}).encode())


# ---------------------------------------------------------------- strict parsing (issue 14)


def _non_canonical(b64: str) -> str:
    """The same bytes in base64 with a non-zero pad bit (a second encoding)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stripped = b64.rstrip("=")
    last = alphabet.index(stripped[-1])
    return stripped[:-1] + alphabet[last | 1] + b64[len(stripped) :]


def test_non_canonical_base64_is_malformed() -> None:
    """MUST-1.2-2: a key in a second base64 spelling is refused, not decoded."""
    sign_key = PAYLOAD["sign_key"]
    other = _non_canonical(sign_key)
    assert other != sign_key and base64.b64decode(other) == base64.b64decode(sign_key)
    with pytest.raises(MalformedError, match="canonical base64"):
        parse_card(signed_card({**PAYLOAD, "sign_key": other}))
    outer = json.loads(CARD)
    outer["signature"] = _non_canonical(outer["signature"])
    with pytest.raises(MalformedError, match="canonical base64"):
        parse_card(json.dumps(outer).encode())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_outside_rfc_8259_are_malformed(constant: str) -> None:
    """MUST-1.2-3: NaN and Infinity are not JSON, in the payload or around it."""
    text = json.dumps(PAYLOAD)[:-1] + f',"extra":{constant}}}'
    with pytest.raises(MalformedError):
        parse_card(signed_card(text))
    outer = CARD.decode().rstrip()[:-1] + f',"extra":{constant}}}'
    with pytest.raises(MalformedError):
        parse_card(outer.encode())


def _p384_cert() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cn.node.wlx")])
    import datetime

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2100, 1, 1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize(
    "tls_cert",
    [
        CERT.decode() + CERT.decode(),  # a chain of two
        CERT.decode() + "trailing text\n",
        "leading text\n" + CERT.decode(),
        CERT.decode().rstrip("\n"),  # not the exact PEM form
        CERT.decode().replace("\n", "\r\n"),
        _p384_cert().decode(),  # another curve
    ],
)
def test_tls_cert_is_exactly_one_p256_pem_certificate(tls_cert: str) -> None:
    """MUST-1.2-4."""
    with pytest.raises(MalformedError):
        parse_card(signed_card({**PAYLOAD, "tls_cert": tls_cert}))


def test_a_certificate_whose_key_is_no_curve_point_is_malformed() -> None:
    """Found by tests/test_codec_fuzz.py: an invalid point raised ValueError."""
    import textwrap

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = x509.load_pem_x509_certificate(CERT)
    point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    der = cert.public_bytes(Encoding.DER)
    bad_point = point[:-1] + bytes([point[-1] ^ 1])  # almost surely off the curve
    bad = der.replace(point, bad_point)
    assert bad != der
    body = "\n".join(textwrap.wrap(base64.b64encode(bad).decode(), 64))
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    with pytest.raises(MalformedError):
        tls.load_node_cert(pem.encode())
    with pytest.raises(MalformedError):
        parse_card(signed_card({**PAYLOAD, "tls_cert": pem}))
