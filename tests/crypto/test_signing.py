"""Signatures bound to purpose, signer, recipient and payload (docs/protocol.md §5.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto.digests import payload_digest
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.keys import SigningKey, VerifyKey
from wlx.crypto.signing import ANYONE, SIGNATURE_PREFIX, Purpose, sign, signing_input, verify

KEY = SigningKey.from_seed(bytes(range(32)))
PUBLIC = KEY.public()
PAYLOAD = b"\x08\x01\x12\x02CN"
SIGNATURE = sign(KEY, Purpose.BATCH, "CN", "RU", PAYLOAD)


def test_verifies_for_exactly_what_was_signed() -> None:
    verify(PUBLIC, SIGNATURE, Purpose.BATCH, "CN", "RU", PAYLOAD)
    assert len(SIGNATURE) == 64
    assert sign(KEY, Purpose.BATCH, "CN", "RU", PAYLOAD) == SIGNATURE  # Ed25519 is deterministic


@pytest.mark.parametrize("purpose", [p for p in Purpose if p is not Purpose.BATCH])
def test_not_for_another_purpose(purpose: Purpose) -> None:
    with pytest.raises(VerificationError):
        verify(PUBLIC, SIGNATURE, purpose, "CN", "RU", PAYLOAD)


@pytest.mark.parametrize(
    ("signer", "recipient"),
    [("AR", "RU"), ("CN", "AR"), ("RU", "CN"), ("CN", ANYONE), ("CNR", "U"), ("C", "NRU")],
)
def test_not_for_another_signer_or_recipient(signer: str, recipient: str) -> None:
    with pytest.raises(VerificationError):
        verify(PUBLIC, SIGNATURE, Purpose.BATCH, signer, recipient, PAYLOAD)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64).filter(lambda b: b != PAYLOAD))
def test_not_for_another_payload(payload: bytes) -> None:
    with pytest.raises(VerificationError):
        verify(PUBLIC, SIGNATURE, Purpose.BATCH, "CN", "RU", payload)


def test_not_under_another_key() -> None:
    with pytest.raises(VerificationError):
        verify(SigningKey.generate().public(), SIGNATURE, Purpose.BATCH, "CN", "RU", PAYLOAD)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 63), st.integers(1, 255))
def test_a_flipped_signature_byte(position: int, xor: int) -> None:
    bad = bytearray(SIGNATURE)
    bad[position] ^= xor
    with pytest.raises(VerificationError):
        verify(PUBLIC, bytes(bad), Purpose.BATCH, "CN", "RU", PAYLOAD)


@pytest.mark.parametrize("signature", [b"", SIGNATURE[:63], SIGNATURE + b"\x00", bytes(64)])
def test_a_signature_of_the_wrong_shape(signature: bytes) -> None:
    with pytest.raises(VerificationError):
        verify(PUBLIC, signature, Purpose.BATCH, "CN", "RU", PAYLOAD)


def test_signing_input_layout() -> None:
    assert signing_input(Purpose.PULL, "RU", "CN", b"") == (
        SIGNATURE_PREFIX + b"\x00\x04pull\x00\x02RU\x00\x02CN" + payload_digest(b"")
    )
    assert SIGNATURE_PREFIX == b"wlx/v1 signature\x00"


def test_keys_round_trip_and_reject_bad_sizes() -> None:
    assert SigningKey.from_seed(KEY.seed()).public() == PUBLIC
    assert SigningKey.from_pem(KEY.to_pem()).seed() == KEY.seed()
    with pytest.raises(MalformedError):
        SigningKey.from_seed(bytes(31))
    with pytest.raises(MalformedError):
        VerifyKey(bytes(33))
    with pytest.raises(MalformedError):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    fingerprint = PUBLIC.fingerprint()
    assert len(fingerprint) == 39 and fingerprint.count(":") == 7
    assert fingerprint != SigningKey.generate().public().fingerprint()
