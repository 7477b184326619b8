"""Protocol 2: a listing sealed once, a wrap per identifier key (docs/protocol.md §4.3)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import DecryptionError, MalformedError
from wlx.crypto.normalize import IdentifierKey, KeyKind, record_keys
from wlx.crypto.tokens import (
    KIND_DATES,
    KIND_QUALIFIERS,
    MAX_HIT_DATA,
    MIN_SEALED2,
    NONCE_LEN,
    PAD2_BLOCK,
    TAG_LEN,
    WRAP_LEN,
    EpochKey,
    kind_code,
    kind_of_code,
    listing_key,
    pad2,
    unpad2,
)

LISTED: list[IdentifierKey] = record_keys(
    ["Wang Wei", "王伟"], "1980-05-17", [("CHN", "E12345678")]
)
IKEYS = [k.value for k in LISTED]
OTHER = record_keys(["Ivan Petrov"], "1975-11-02", [])[0].value
HIT = b"\x0a\x02CN\x12\x07CN-0001\x1a\x06wanted"
HANDLE = bytes(range(16))
KEY = EpochKey(bytes(range(32)), "CN", "RU", 1, protocol=2)


def seal(key: EpochKey = KEY, hit: bytes = HIT) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    return key.seal_listing_v2(HANDLE, hit, [(k.value, k.kind) for k in LISTED])


def test_sizes_and_one_seal_per_listing() -> None:
    sealed, wraps = seal()
    assert len(sealed) == MIN_SEALED2 == NONCE_LEN + PAD2_BLOCK + TAG_LEN
    assert [t for t, _ in wraps] == [KEY.token(k) for k in IKEYS]
    assert all(len(w) == WRAP_LEN for _, w in wraps)
    assert len({w for _, w in wraps}) == len(wraps)  # one pad per seal key


def test_every_listed_identifier_opens_the_listing() -> None:
    sealed, wraps = seal()
    kinds = set()
    for ikey, (_, wrap) in zip(LISTED, wraps, strict=True):
        assert KEY.open_listing(ikey.value, HANDLE, wrap, sealed) == (HIT, ikey.kind)
        kinds.add(ikey.kind)
    assert len(kinds) > 2  # each entry names its own key's kind


def test_the_construction_as_specified() -> None:
    """From the spec alone: secret, then nonce; lkey; AAD; the XOR wrap."""
    secret, nonce = bytes(range(16)), bytes(range(40, 52))
    draws = iter([secret, nonce])
    sealed, wraps = KEY.seal_listing_v2(
        HANDLE, HIT, [(k.value, k.kind) for k in LISTED], lambda _n: next(draws)
    )
    aad = b"wlx/v2 seal\x00" + lp("CN") + lp("RU") + u64(1) + lp(HANDLE)
    lkey = listing_key(secret, HANDLE)
    assert sealed[:NONCE_LEN] == nonce
    opened = ChaCha20Poly1305(lkey).decrypt(nonce, sealed[NONCE_LEN:], aad)
    assert opened == HIT + b"\x80" + bytes(PAD2_BLOCK - len(HIT) - 1)
    for ikey, (token, wrap) in zip(LISTED, wraps, strict=True):
        pad = hashlib.blake2b(
            lp(HANDLE) + nonce + token,
            digest_size=17,
            key=KEY.seal_key(ikey.value),
            person=b"wlx2-wrap",
        ).digest()
        plain = bytes(a ^ b for a, b in zip(wrap, pad, strict=True))
        assert plain[16] == kind_code(ikey.kind)
        kind_mask = hashlib.blake2b(
            lp(HANDLE) + nonce + token + plain[16:],
            digest_size=16,
            key=KEY.seal_key(ikey.value),
            person=b"wlx2-kind",
        ).digest()
        assert bytes(a ^ b for a, b in zip(plain[:16], kind_mask, strict=True)) == secret


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


CASES: dict[str, Callable[[bytes, bytes], tuple[bytes, bytes, bytes, bytes, EpochKey]]] = {
    # (identifier key, handle, wrap, sealed, key) changed one at a time
    "wrap byte 0": lambda w, s: (IKEYS[0], HANDLE, flip(w, 0), s, KEY),
    "wrap byte 15": lambda w, s: (IKEYS[0], HANDLE, flip(w, 15), s, KEY),
    "wrap kind code": lambda w, s: (IKEYS[0], HANDLE, flip(w, 16), s, KEY),
    "wrap kind code, another valid kind": lambda w, s: (
        IKEYS[0],
        HANDLE,
        w[:16] + bytes([w[16] ^ kind_code(KeyKind.DOCUMENT) ^ kind_code(KeyKind.NAME_DOB)]),
        s,
        KEY,
    ),
    "long wrap": lambda w, s: (IKEYS[0], HANDLE, w + b"\x00", s, KEY),
    "wrap of another entry": lambda w, s: (IKEYS[0], HANDLE, seal()[1][1][1], s, KEY),
    "short wrap": lambda w, s: (IKEYS[0], HANDLE, w[:15], s, KEY),
    "nonce": lambda w, s: (IKEYS[0], HANDLE, w, flip(s, 0), KEY),
    "ciphertext": lambda w, s: (IKEYS[0], HANDLE, w, flip(s, NONCE_LEN + 3), KEY),
    "tag": lambda w, s: (IKEYS[0], HANDLE, w, flip(s, len(s) - 1), KEY),
    "truncated": lambda w, s: (IKEYS[0], HANDLE, w, s[: NONCE_LEN + TAG_LEN - 1], KEY),
    "another identifier": lambda w, s: (OTHER, HANDLE, w, s, KEY),
    "another listed identifier": lambda w, s: (IKEYS[1], HANDLE, w, s, KEY),
    "another handle": lambda w, s: (IKEYS[0], flip(HANDLE, 0), w, s, KEY),
    "another recipient": lambda w, s: (
        IKEYS[0],
        HANDLE,
        w,
        s,
        EpochKey(KEY.key, "CN", "AR", 1, protocol=2),
    ),
    "another origin": lambda w, s: (
        IKEYS[0],
        HANDLE,
        w,
        s,
        EpochKey(KEY.key, "AR", "RU", 1, protocol=2),
    ),
    "another epoch": lambda w, s: (IKEYS[0], HANDLE, w, s, EpochKey(KEY.key, "CN", "RU", 2)),
    "another token key": lambda w, s: (IKEYS[0], HANDLE, w, s, EpochKey(bytes(32), "CN", "RU", 1)),
}


def unkeyed_kind_mask(code: int) -> bytes:
    """The kind mask as protocol 2 first specified it: public, per code."""
    return hashlib.blake2b(bytes([code]), digest_size=16, person=b"wlx2-kind").digest()


LISTED_KINDS = sorted({k.kind for k in LISTED}, key=lambda k: k.value)


@pytest.mark.parametrize("kind", LISTED_KINDS, ids=lambda k: k.value)
def test_a_kind_code_cannot_be_changed_without_the_seal_key(kind: KeyKind) -> None:
    """A holder of the rows (no key) XORs two codes' mask difference and
    code difference into a wrap: it must not open as another kind."""
    sealed, wraps = seal()
    i = next(i for i, k in enumerate(LISTED) if k.kind == kind)
    for new in LISTED_KINDS:
        if new == kind:
            continue
        old_code, new_code = kind_code(kind), kind_code(new)
        delta = bytes(
            a ^ b
            for a, b in zip(unkeyed_kind_mask(old_code), unkeyed_kind_mask(new_code), strict=True)
        ) + bytes([old_code ^ new_code])
        forged = bytes(a ^ b for a, b in zip(wraps[i][1], delta, strict=True))
        with pytest.raises(DecryptionError, match=r"^sealed hit data does not open$"):
            KEY.open_listing(IKEYS[i], HANDLE, forged, sealed)


@pytest.mark.parametrize("case", sorted(CASES))
def test_anything_changed_fails_as_one_opaque_error(case: str) -> None:
    sealed, wraps = seal()
    ikey, handle, wrap, sealed2, key = CASES[case](wraps[0][1], sealed)
    with pytest.raises(DecryptionError, match=r"^sealed hit data does not open$"):
        key.open_listing(ikey, handle, wrap, sealed2)


def test_a_wrap_opens_only_with_its_own_token() -> None:
    """The token enters the wrap's pad: a token row moved onto another
    listing's token (same seal key) does not open."""
    sealed, wraps = seal()
    seal_key = KEY.seal_key(IKEYS[0])
    assert KEY.open_listing_as(wraps[0][0], seal_key, HANDLE, wraps[0][1], sealed)[0] == HIT
    with pytest.raises(DecryptionError):
        KEY.open_listing_as(wraps[1][0], seal_key, HANDLE, wraps[0][1], sealed)


def test_fresh_secrets_and_nonces_per_upsert() -> None:
    (s1, w1), (s2, w2) = seal(), seal()
    assert s1[:NONCE_LEN] != s2[:NONCE_LEN] and s1 != s2
    assert {w for _, w in w1}.isdisjoint(w for _, w in w2)


@pytest.mark.parametrize("size", [0, 1, 55, 127, 128, 254, 255, 256, 300, MAX_HIT_DATA])
def test_lengths_leak_only_the_bucket(size: int) -> None:
    sealed, wraps = seal(hit=bytes(size))
    assert (len(sealed) - NONCE_LEN - TAG_LEN) == (size // PAD2_BLOCK + 1) * PAD2_BLOCK
    assert KEY.open_listing(IKEYS[0], HANDLE, wraps[0][1], sealed)[0] == bytes(size)
    assert unpad2(pad2(bytes(size))) == bytes(size)


def test_hit_data_too_long_is_refused() -> None:
    with pytest.raises(MalformedError):
        seal(hit=bytes(MAX_HIT_DATA + 1))


@pytest.mark.parametrize(
    "padded",
    [b"", bytes(PAD2_BLOCK), b"\x80" + bytes(PAD2_BLOCK), b"x" * PAD2_BLOCK, b"\x80" + bytes(10)],
)
def test_bad_padding_is_an_opaque_failure(padded: bytes) -> None:
    with pytest.raises(DecryptionError, match=r"^sealed hit data does not open$"):
        unpad2(padded)


def test_protocol_is_validated_and_enters_no_derivation() -> None:
    with pytest.raises(MalformedError):
        EpochKey(bytes(32), "CN", "RU", 1, protocol=3)
    v1 = EpochKey(KEY.key, "CN", "RU", 1)
    assert (v1.token(IKEYS[0]), v1.seal_key(IKEYS[0]), v1.handle("x")) == (
        KEY.token(IKEYS[0]),
        KEY.seal_key(IKEYS[0]),
        KEY.handle("x"),
    )


ALL_KINDS = [KeyKind.DOCUMENT] + [
    KeyKind.name(date, *(q for i, q in enumerate(KIND_QUALIFIERS) if bits >> i & 1))
    for date in KIND_DATES
    for bits in range(16)
]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.value)
def test_every_kind_has_a_code_that_round_trips(kind: KeyKind) -> None:
    assert kind_of_code(kind_code(kind)) == kind
    assert KeyKind.parse(kind.value) == kind


def test_kind_codes_are_distinct_and_no_other_code_opens() -> None:
    codes = {kind_code(k) for k in ALL_KINDS}
    assert len(codes) == len(ALL_KINDS)
    for code in set(range(256)) - codes:
        with pytest.raises(DecryptionError):
            kind_of_code(code)


def test_every_kind_a_record_or_query_makes_has_a_code() -> None:
    from wlx.crypto.normalize import NORMALISATION_1, NORMALISATION_2, query_keys

    for version in (NORMALISATION_1, NORMALISATION_2):
        for keys in (
            record_keys(["Wang Wei", "王伟", "Иван Петров"], "1980-05-17", [], version),
            query_keys(["Petrov Ivan", "Wang Wei"], "1980-05-17", [], version),
            query_keys(["Wang Wei"], "1980-11-05", [], version),
        ):
            for k in keys:
                assert kind_of_code(kind_code(k.kind)) == k.kind
