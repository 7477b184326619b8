"""Tests of wlx.crypto.note (C2SP signed-note).

Known answers in vectors/note.json, each block naming its source:
golang/mod sumdb/note/note_test.go (keys, the signed note, and the bad
inputs of TestNewVerifier / TestOpen) and the c2sp.org/signed-note example
as quoted in florolf/tlog-scales tests/test_signing.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from wlx.crypto.errors import CryptoError, MalformedError, VerificationError
from wlx.crypto.note import (
    Ed25519Signer,
    Ed25519Verifier,
    check_key_name,
    ed25519_verifier,
    format_verifier_key,
    open_note,
    parse_signer_key,
    sign_note,
)

VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors" / "note.json").read_text())
GO = VECTORS["golang"]
TEXT: str = GO["text"]
PETER_SIG: str = GO["peter_sig"]
ENOCH_SIG: str = GO["enoch_sig"]
PETER = ed25519_verifier(GO["peter_vkey"])
ENOCH = ed25519_verifier(GO["enoch_vkey"])


def signer(name: str, seed: int) -> Ed25519Signer:
    return Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


# --- golang.org/x/mod/sumdb/note vectors --------------------------------------


def test_go_keys() -> None:
    # note_test.go TestNewVerifier / TestNewSigner / TestSign
    peter = parse_signer_key(GO["peter_skey"])
    assert peter.key_id.hex() == "c74f20a3"
    assert peter.verifier().to_verifier_key() == GO["peter_vkey"]
    assert PETER.key_id.hex() == "c74f20a3" and PETER.name == "PeterNeumann"
    assert ENOCH.key_id.hex() == "af0cfe78"
    assert format_verifier_key(PETER.name, 0x01, PETER.public_key) == GO["peter_vkey"]


def test_go_sign_is_byte_identical() -> None:
    # note_test.go TestSign `want`
    peter = parse_signer_key(GO["peter_skey"])
    assert sign_note(TEXT, [peter]) == (TEXT + "\n" + PETER_SIG).encode()


def test_go_open() -> None:
    # note_test.go TestOpen
    note = (TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode()
    text, sigs = open_note(note, [PETER])  # Enoch's signature is from an unknown key: ignored
    assert text == TEXT
    assert [(s.name, s.key_id.hex(), s.timestamp) for s in sigs] == [
        ("PeterNeumann", "c74f20a3", None)
    ]
    _, sigs = open_note(note, [PETER, ENOCH])
    assert [s.name for s in sigs] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(note, [])
    with pytest.raises(ValueError):
        open_note((TEXT + "\n" + ENOCH_SIG).encode(), [ENOCH, PETER, ENOCH])
    # Duplicated signatures by one key are reported once.
    _, sigs = open_note((TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG).encode(), [PETER])
    assert len(sigs) == 1


def test_go_too_many_signatures() -> None:
    for known in ([PETER], []):
        with pytest.raises(MalformedError, match="too many"):
            open_note((TEXT + "\n" + PETER_SIG * 101).encode(), known)
    open_note((TEXT + "\n" + PETER_SIG * 16).encode(), [PETER])  # the spec's minimum must pass


def test_go_invalid_signature_from_known_key_rejects_note() -> None:
    bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(VerificationError):
        open_note((TEXT + "\n" + bad).encode(), [PETER])
    # ... even when another known key's signature is good.
    with pytest.raises(VerificationError):
        open_note((TEXT + "\n" + ENOCH_SIG + bad).encode(), [PETER, ENOCH])


@pytest.mark.parametrize(
    "msg",
    [
        TEXT.encode(),
        (TEXT + "\n").encode(),
        (TEXT + "\n" + PETER_SIG[:-1]).encode(),
        ("\x01" + TEXT + "\n" + PETER_SIG).encode(),
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        (
            TEXT
            + "\n"
            + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ).encode(),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n").encode(),
    ],
)
def test_go_malformed_notes(msg: bytes) -> None:
    # note_test.go TestOpen `badMsgs`
    with pytest.raises(MalformedError):
        open_note(msg, [PETER])


def test_go_verifier_key_manglings_rejected() -> None:
    # note_test.go TestNewVerifier: every proper substring and every +1 byte.
    vkey = GO["peter_vkey"]
    for i in range(len(vkey) + 1):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(MalformedError):
                    ed25519_verifier(vkey[i:j])
    for i in range(len(vkey)):
        with pytest.raises(MalformedError):
            ed25519_verifier(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])
    for bad in GO["bad_vkeys"]:
        with pytest.raises(MalformedError):
            ed25519_verifier(bad)


def test_go_signer_key_manglings_rejected() -> None:
    # note_test.go TestNewSigner
    skey = GO["peter_skey"]
    for i in range(len(skey) + 1):
        for j in range(i + 1, len(skey) + 1):
            if (i, j) != (0, len(skey)):
                with pytest.raises(MalformedError):
                    parse_signer_key(skey[i:j])
    for i in range(len(skey)):
        with pytest.raises(MalformedError):
            parse_signer_key(skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :])


# --- c2sp.org/signed-note example ---------------------------------------------


def test_c2sp_example() -> None:
    v = VECTORS["c2sp_example"]
    verifier = ed25519_verifier(v["vkey"])
    assert verifier.name == v["name"]
    assert verifier.public_key.hex() == v["public_key"]
    assert verifier.key_id.hex() == v["key_id"]
    assert verifier.to_verifier_key() == v["vkey"]
    text, sigs = open_note(v["note"].encode(), [verifier])
    assert text == "This is an example message.\n"
    assert [s.name for s in sigs] == [v["name"]]


# --- Behaviour ------------------------------------------------------------------


def test_key_names() -> None:
    for good in ("a", "example.com/log42", "transparency.dev/DEV:witness-little-garden"):
        check_key_name(good)
    for bad in ("", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\x01b", "a\nb"):
        with pytest.raises(MalformedError):
            check_key_name(bad)
        with pytest.raises(MalformedError):
            signer(bad, 1)


def test_sign_note_rejects_bad_text() -> None:
    s = signer("example.com/k", 1)
    for bad in ("no newline", "", "tab\there\n", "lone \ud800 surrogate\n"):
        with pytest.raises(MalformedError):
            sign_note(bad, [s])
    with pytest.raises(ValueError):
        sign_note("text\n", [])


def test_text_may_contain_blank_lines() -> None:
    s = signer("example.com/k", 1)
    for text in ("a\n\nb\n", "\n", "a\n\n", "a\n\n\n"):
        assert open_note(sign_note(text, [s]), [s.verifier()])[0] == text


def test_same_name_other_key_is_ignored_not_rejected() -> None:
    # Signatures matching a known key's name but not its ID are unknown keys.
    mine, other = signer("example.com/k", 1), signer("example.com/k", 2)
    note = sign_note("hello\n", [other, mine])
    _, sigs = open_note(note, [mine.verifier()])
    assert [s.key_id for s in sigs] == [mine.key_id]
    with pytest.raises(VerificationError):
        open_note(sign_note("hello\n", [other]), [mine.verifier()])


def test_size_limit() -> None:
    s = signer("example.com/k", 1)
    note = sign_note("x" * 1000 + "\n", [s])
    open_note(note, [s.verifier()], max_size=len(note))
    with pytest.raises(MalformedError, match="too large"):
        open_note(note, [s.verifier()], max_size=len(note) - 1)


def test_non_canonical_base64_rejected() -> None:
    s = signer("example.com/k", 1)
    note = sign_note("hello\n", [s]).decode()
    # 68 bytes encode to 91 characters and '=': the last character carries 2 pad bits.
    last = note[-3]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sibling = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(MalformedError, match="non-canonical"):
        open_note((note[:-3] + sibling + note[-2:]).encode(), [s.verifier()])


def test_wrong_public_key_length() -> None:
    with pytest.raises(MalformedError):
        Ed25519Verifier("example.com/k", b"\x00" * 31)


# --- Properties -------------------------------------------------------------------

note_text = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"], exclude_characters=[chr(i) for i in range(32)]
    ),
    max_size=200,
).map(lambda t: t + "\n")
key_names = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "S"]).filter(
        lambda c: c != "+" and not c.isspace()
    ),
    min_size=1,
    max_size=30,
)


@given(note_text, key_names, st.binary(min_size=32, max_size=32))
def test_round_trip(text: str, name: str, seed: bytes) -> None:
    s = Ed25519Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
    opened, sigs = open_note(sign_note(text, [s]), [s.verifier()])
    assert opened == text
    assert [(x.name, x.key_id) for x in sigs] == [(name, s.key_id)]


SIGNER = signer("example.com/a", 7)


@given(note_text, st.data())
def test_flipping_any_byte_is_rejected(text: str, data: st.DataObject) -> None:
    # One signer: with several, tampering one line's name or key ID turns it
    # into an unknown key, which the spec says to ignore.
    note = sign_note(text, [SIGNER])
    i = data.draw(st.integers(0, len(note) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = bytearray(note)
    tampered[i] ^= mask
    with pytest.raises(CryptoError):
        open_note(bytes(tampered), [SIGNER.verifier()])
