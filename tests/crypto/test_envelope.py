"""HPKE envelopes to one recipient node (docs/protocol.md §5.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto import envelope
from wlx.crypto.errors import DecryptionError
from wlx.crypto.keys import BoxKey

RU = BoxKey.from_raw(bytes(range(32)))
HEADER = {"purpose": "batch", "sender": "CN", "recipient": "RU"}
PLAINTEXT = b"a signed message"
SEALED = envelope.seal(PLAINTEXT, RU.public(), **HEADER)


def open_(ciphertext: bytes, key: BoxKey = RU, **header: str) -> bytes:
    return envelope.open_sealed(ciphertext, key, **{**HEADER, **header})


def test_round_trip_and_size() -> None:
    assert open_(SEALED) == PLAINTEXT
    assert len(SEALED) == envelope.ENC_LEN + len(PLAINTEXT) + envelope.TAG_LEN
    assert open_(envelope.seal(b"", RU.public(), **HEADER)) == b""


def test_every_envelope_has_a_fresh_ephemeral_key() -> None:
    again = envelope.seal(PLAINTEXT, RU.public(), **HEADER)
    assert again[: envelope.ENC_LEN] != SEALED[: envelope.ENC_LEN]
    assert open_(again) == PLAINTEXT


def test_wrong_key() -> None:
    with pytest.raises(DecryptionError):
        open_(SEALED, BoxKey.generate())


@pytest.mark.parametrize(
    "header",
    [
        {"purpose": "snapshot-part"},
        {"purpose": "pull"},
        {"sender": "AR"},
        {"sender": "CN "},
        {"recipient": "AR"},
        {"recipient": "ru"},
        # lp() keeps the fields apart: moving a character across them changes the info
        {"sender": "CNR", "recipient": "U"},
        {"purpose": "batchC", "sender": "N"},
    ],
)
def test_wrong_purpose_sender_or_recipient(header: dict[str, str]) -> None:
    with pytest.raises(DecryptionError):
        open_(SEALED, RU, **header)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(SEALED) - 1), st.integers(1, 255))
def test_any_flipped_byte(position: int, xor: int) -> None:
    tampered = bytearray(SEALED)
    tampered[position] ^= xor
    with pytest.raises(DecryptionError):
        open_(bytes(tampered))


def test_truncated_or_extended() -> None:
    for length in range(len(SEALED)):
        with pytest.raises(DecryptionError):
            open_(SEALED[:length])
    with pytest.raises(DecryptionError):
        open_(SEALED + b"\x00")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_open(data: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_(data)


def test_info_layout() -> None:
    assert envelope.hpke_info("batch", "CN", "RU") == (
        b"wlx/v1 envelope\x00\x00\x05batch\x00\x02CN\x00\x02RU"
    )
