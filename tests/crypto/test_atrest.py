"""Encryption of a node's secrets and own records at rest (docs/protocol.md §10)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto import atrest
from wlx.crypto.errors import DecryptionError, MalformedError

KEY = bytes(range(32))
VALUE = b'{"id":"CN-0001","names":["Wang Wei"]}'
BLOB = atrest.encrypt(KEY, VALUE, "record:CN-0001")


def test_round_trip_and_size() -> None:
    assert atrest.decrypt(KEY, BLOB, "record:CN-0001") == VALUE
    assert len(BLOB) == atrest.NONCE_LEN + len(VALUE) + 16
    assert VALUE not in BLOB and b"Wang" not in BLOB


def test_fresh_nonce_each_time() -> None:
    again = atrest.encrypt(KEY, VALUE, "record:CN-0001")
    assert again[: atrest.NONCE_LEN] != BLOB[: atrest.NONCE_LEN] and again != BLOB


def test_wrong_key() -> None:
    with pytest.raises(DecryptionError):
        atrest.decrypt(os.urandom(32), BLOB, "record:CN-0001")


@pytest.mark.parametrize(
    "context", ["record:CN-0002", "record:", "", "epoch-key:CN:RU:1", "record:CN-0001 "]
)
def test_a_value_does_not_open_in_another_place(context: str) -> None:
    with pytest.raises(DecryptionError):
        atrest.decrypt(KEY, BLOB, context)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(BLOB) - 1), st.integers(1, 255))
def test_any_flipped_byte(position: int, xor: int) -> None:
    tampered = bytearray(BLOB)
    tampered[position] ^= xor
    with pytest.raises(DecryptionError):
        atrest.decrypt(KEY, bytes(tampered), "record:CN-0001")


def test_truncated_or_extended() -> None:
    for length in range(len(BLOB)):
        with pytest.raises(DecryptionError):
            atrest.decrypt(KEY, BLOB[:length], "record:CN-0001")
    with pytest.raises(DecryptionError):
        atrest.decrypt(KEY, BLOB + b"\x00", "record:CN-0001")


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_a_storage_key_is_32_bytes(size: int) -> None:
    with pytest.raises(MalformedError):
        atrest.encrypt(bytes(size), VALUE, "record:CN-0001")
    with pytest.raises(MalformedError):
        atrest.decrypt(bytes(size), BLOB, "record:CN-0001")


def test_injected_nonce_is_used() -> None:
    nonce = bytes(range(12))
    blob = atrest.encrypt(KEY, VALUE, "c", lambda n: nonce[:n])
    assert blob[:12] == nonce
    assert atrest.decrypt(KEY, blob, "c") == VALUE
