"""Keyed tokens, seal keys, handles and sealed hit data (docs/protocol.md §4)."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import DecryptionError, MalformedError
from wlx.crypto.normalize import query_keys, record_keys
from wlx.crypto.tokens import (
    HANDLE_LEN,
    MAX_HIT_DATA,
    NONCE_LEN,
    PAD_BLOCK,
    SEAL_AAD_PREFIX,
    TAG_LEN,
    TOKEN_LEN,
    EpochKey,
    pad,
    unpad,
)

IKEYS = [
    k.value
    for k in record_keys(["Wang Wei", "王伟"], "1980-05-17", [("CHN", "E12345678")])
    + record_keys(["Ivan Petrov"], "1975-11", [("RUS", "751234567")])
    + query_keys(["Anna Maria"], "1990-01-02", [])
]
HIT = b"\x0a\x02CN\x12\x07CN-0001\x1a\x06wanted"
HANDLE = bytes(range(16))


def key(origin: str = "CN", recipient: str = "RU", epoch: int = 1) -> EpochKey:
    return EpochKey.generate(origin, recipient, epoch)


def test_sizes() -> None:
    k = key()
    assert len(k.token(IKEYS[0])) == TOKEN_LEN == 16
    assert len(k.seal_key(IKEYS[0])) == 32
    assert len(k.handle("CN-0001")) == HANDLE_LEN == 16
    token, sealed = k.seal(IKEYS[0], HANDLE, HIT)
    assert token == k.token(IKEYS[0])
    assert len(sealed) == NONCE_LEN + PAD_BLOCK + TAG_LEN


def test_a_token_set_made_for_one_peer_matches_nothing_in_anothers() -> None:
    streams = [key("CN", "RU", 1), key("CN", "RU", 2), key("CN", "AR", 1), key("RU", "CN", 1)]
    sets = [{k.token(i) for i in IKEYS} for k in streams]
    for index, tokens in enumerate(sets):
        assert len(tokens) == len(IKEYS)
        for other in sets[index + 1 :]:
            assert not tokens & other
    handles = [k.handle("CN-0001") for k in streams]
    assert len(set(handles)) == len(handles)


def test_tokens_are_deterministic_per_key_and_distinct_per_identifier() -> None:
    raw = os.urandom(32)
    a, b = EpochKey(raw, "CN", "RU", 1), EpochKey(raw, "CN", "RU", 1)
    assert [a.token(i) for i in IKEYS] == [b.token(i) for i in IKEYS]
    assert len({a.token(i) for i in IKEYS}) == len(IKEYS)


def test_token_seal_key_and_handle_are_separate_domains() -> None:
    k = key()
    data = "CN-0001"
    token, handle, seal_key = k.token(data.encode()), k.handle(data), k.seal_key(data.encode())
    assert token != handle
    assert token not in (seal_key[:16], seal_key[16:])
    assert handle not in (seal_key[:16], seal_key[16:])


def test_seal_opens_with_the_same_identifier_key_and_handle() -> None:
    k = key()
    for ikey in IKEYS:
        _, sealed = k.seal(ikey, HANDLE, HIT)
        assert k.open(ikey, HANDLE, sealed) == HIT


def counter(start: int = 1) -> Callable[[int], bytes]:
    state = [start]

    def rng(n: int) -> bytes:
        state[0] += 1
        return state[0].to_bytes(n, "big")

    return rng


def test_seal_listing_is_seal_of_each_entry_in_turn() -> None:
    """The per-listing fast path makes exactly the bytes of ``seal``, one rng
    call per entry in order (vectors and origins depend on it)."""
    k = key()
    hits = [HIT, HIT + b"\x01", HIT]  # equal hit data is padded once, and still sealed apart
    entries = [(ikey, hits[i % 3]) for i, ikey in enumerate(IKEYS)]
    one, each = counter(), counter()
    assert k.seal_listing(HANDLE, entries, one) == [
        k.seal(ikey, HANDLE, hit, each) for ikey, hit in entries
    ]
    for (ikey, hit), (_, sealed) in zip(entries, k.seal_listing(HANDLE, entries), strict=True):
        assert k.open(ikey, HANDLE, sealed) == hit
    with pytest.raises(MalformedError):
        k.seal_listing(HANDLE, [(IKEYS[0], bytes(MAX_HIT_DATA + 1))])


def test_seal_does_not_open_with_another_identifier_key() -> None:
    k = key()
    _, sealed = k.seal(IKEYS[0], HANDLE, HIT)
    for other in IKEYS[1:]:
        with pytest.raises(DecryptionError):
            k.open(other, HANDLE, sealed)


def test_seal_does_not_open_under_another_handle() -> None:
    k = key()
    _, sealed = k.seal(IKEYS[0], HANDLE, HIT)
    with pytest.raises(DecryptionError):
        k.open(IKEYS[0], k.handle("CN-0002"), sealed)


def test_seal_is_bound_to_its_token() -> None:
    # The AAD holds the token: with the right seal key, the sealed data opens
    # under the AAD naming its token, and under no other.
    k = key()
    token, sealed = k.seal(IKEYS[0], HANDLE, HIT)
    aead = ChaCha20Poly1305(k.seal_key(IKEYS[0]))

    def aad(tok: bytes) -> bytes:
        return SEAL_AAD_PREFIX + lp("CN") + lp("RU") + u64(1) + lp(HANDLE) + lp(tok)

    assert aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], aad(token)) == pad(HIT)
    with pytest.raises(InvalidTag):
        aead.decrypt(sealed[:NONCE_LEN], sealed[NONCE_LEN:], aad(k.token(IKEYS[1])))


@pytest.mark.parametrize(
    ("origin", "recipient", "epoch"), [("AR", "RU", 1), ("CN", "AR", 1), ("CN", "RU", 2)]
)
def test_seal_is_bound_to_origin_recipient_and_epoch(
    origin: str, recipient: str, epoch: int
) -> None:
    # Even under the same key bytes, the AAD names the stream.
    raw = os.urandom(32)
    _, sealed = EpochKey(raw, "CN", "RU", 1).seal(IKEYS[0], HANDLE, HIT)
    with pytest.raises(DecryptionError):
        EpochKey(raw, origin, recipient, epoch).open(IKEYS[0], HANDLE, sealed)


def test_seal_does_not_open_under_another_epoch_key() -> None:
    _, sealed = key().seal(IKEYS[0], HANDLE, HIT)
    with pytest.raises(DecryptionError):
        key().open(IKEYS[0], HANDLE, sealed)


SEALED_KEY = EpochKey(bytes(range(32)), "CN", "RU", 1)
_, SEALED = SEALED_KEY.seal(IKEYS[0], HANDLE, HIT)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(SEALED) - 1), st.integers(1, 255))
def test_tampering_any_byte_raises(position: int, xor: int) -> None:
    tampered = bytearray(SEALED)
    tampered[position] ^= xor
    with pytest.raises(DecryptionError):
        SEALED_KEY.open(IKEYS[0], HANDLE, bytes(tampered))


def test_truncated_or_extended_sealed_data_raises() -> None:
    for length in range(len(SEALED)):
        with pytest.raises(DecryptionError):
            SEALED_KEY.open(IKEYS[0], HANDLE, SEALED[:length])
    with pytest.raises(DecryptionError):
        SEALED_KEY.open(IKEYS[0], HANDLE, SEALED + b"\x00")


def test_fresh_nonces_make_different_ciphertexts() -> None:
    k = key()
    assert k.seal(IKEYS[0], HANDLE, HIT)[1] != k.seal(IKEYS[0], HANDLE, HIT)[1]


def test_epoch_key_validation() -> None:
    with pytest.raises(MalformedError):
        EpochKey(bytes(31), "CN", "RU", 1)
    with pytest.raises(MalformedError):
        EpochKey(bytes(33), "CN", "RU", 1)
    with pytest.raises(MalformedError):
        EpochKey(bytes(32), "CN", "RU", 0)
    assert "key=" not in repr(EpochKey(bytes(32), "CN", "RU", 1))


@pytest.mark.parametrize("size", [0, 1, PAD_BLOCK - 1, PAD_BLOCK, 1000, MAX_HIT_DATA])
def test_padding_round_trips(size: int) -> None:
    data = bytes(range(256)) * 8
    padded = pad(data[:size])
    assert len(padded) % PAD_BLOCK == 0 and len(padded) > size
    assert unpad(padded) == data[:size]


@pytest.mark.parametrize(
    "padded",
    [b"", b"\x00" * PAD_BLOCK, b"x" * PAD_BLOCK, b"\x80" + bytes(2 * PAD_BLOCK - 1)],
)
def test_bad_padding_is_an_opaque_failure(padded: bytes) -> None:
    with pytest.raises(DecryptionError, match="does not open"):
        unpad(padded)


def test_hit_data_too_long_to_pad_is_refused() -> None:
    with pytest.raises(MalformedError):
        pad(bytes(MAX_HIT_DATA + 1))


def test_hit_data_sealed_before_padding_still_opens() -> None:
    """A store written before padding existed keeps working (docs §4.3)."""
    k = EpochKey(bytes(range(32)), "CN", "RU", 1)
    token = k.token(IKEYS[0])
    nonce = bytes(12)
    aad = SEAL_AAD_PREFIX + lp("CN") + lp("RU") + u64(1) + lp(HANDLE) + lp(token)
    legacy = nonce + ChaCha20Poly1305(k.seal_key(IKEYS[0])).encrypt(nonce, HIT, aad)
    assert len(HIT) % PAD_BLOCK and k.open(IKEYS[0], HANDLE, legacy) == HIT
