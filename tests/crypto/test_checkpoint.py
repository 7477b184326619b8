"""Tests of wlx.crypto.checkpoint (C2SP tlog-checkpoint, tlog-cosignature).

Known answers in vectors/checkpoint.json, each block naming its source: the
examples of C2SP/C2SP tlog-checkpoint.md and tlog-cosignature.md, the
timestamp vector of transparency-dev/formats note/note_cosigv1_test.go, and
a real cosigned checkpoint of the arche2025h1 staging CT log quoted in
florolf/tlog-scales tests/test_signing.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from wlx.crypto.checkpoint import (
    Checkpoint,
    CosignatureSigner,
    cosign,
    cosignature_message,
    cosignature_verifier,
    verify_cosignature,
)
from wlx.crypto.errors import MalformedError, VerificationError
from wlx.crypto.merkle import EMPTY_ROOT
from wlx.crypto.note import (
    Ed25519Signer,
    ed25519_verifier,
    open_note,
    parse_signature_line,
    sign_note,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "checkpoint.json").read_text()
)
EXAMPLE = VECTORS["c2sp_checkpoint_example"]
REAL = VECTORS["real_cosigned_checkpoint"]

LOG_KEY = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
BODY = Checkpoint("example.com/log", 5, b"\xab" * 32).to_text()


# --- Checkpoint text ------------------------------------------------------------


def test_c2sp_example_parses_and_round_trips() -> None:
    # C2SP/C2SP tlog-checkpoint.md example
    cp = Checkpoint.parse(EXAMPLE["text"])
    assert cp.origin == EXAMPLE["origin"] and cp.size == EXAMPLE["size"]
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.to_text() == EXAMPLE["text"]


def test_extensions_round_trip() -> None:
    cp = Checkpoint("o", 0, EMPTY_ROOT, ("ext one", "ext 2"))
    assert cp.to_text().endswith("\next one\next 2\n")
    assert Checkpoint.parse(cp.to_text()) == cp


ROOT_B64 = base64.b64encode(b"\x00" * 32).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT_B64}",  # no final newline
        "o\n1\n",  # fewer than three lines
        f"\n1\n{ROOT_B64}\n",  # empty origin
        f"o\n01\n{ROOT_B64}\n",  # leading zero
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n1 \n{ROOT_B64}\n",
        f"o\n\u0661\n{ROOT_B64}\n",  # Arabic-Indic digit one
        f"o\n{2**64}\n{ROOT_B64}\n",  # beyond uint64
        f"o\n1\n{base64.b64encode(b'x' * 31).decode()}\n",  # short hash
        f"o\n1\n{base64.b64encode(b'x' * 33).decode()}\n",  # long hash
        f"o\n1\n{ROOT_B64[:-2]}\n",  # unpadded
        f"o\n1\n{ROOT_B64[:-2]}B=\n",  # non-zero pad bits
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
        f"o\n1\n{ROOT_B64}\nx\n\n",
        f"o\x01\n1\n{ROOT_B64}\n",  # control character
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(MalformedError):
        Checkpoint.parse(text)


def test_constructor_validates() -> None:
    for bad in [
        ("", 1, EMPTY_ROOT),
        ("o\n", 1, EMPTY_ROOT),
        ("o", -1, EMPTY_ROOT),
        ("o", 1, b"\x00" * 31),
    ]:
        with pytest.raises(MalformedError):
            Checkpoint(*bad)
    with pytest.raises(MalformedError):
        Checkpoint("o", 1, EMPTY_ROOT, ("",))


@given(
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=32), min_size=1, max_size=40
    ),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=32), min_size=1),
        max_size=3,
    ),
)
def test_checkpoint_round_trip(origin: str, size: int, root_hash: bytes, ext: list[str]) -> None:
    cp = Checkpoint(origin, size, root_hash, tuple(ext))
    assert Checkpoint.parse(cp.to_text()) == cp


# --- Cosignature vectors ------------------------------------------------------


def test_c2sp_cosignature_message() -> None:
    # C2SP/C2SP tlog-cosignature.md "Ed25519 signed message" example
    v = VECTORS["c2sp_cosignature_example"]
    assert cosignature_message(EXAMPLE["text"], v["timestamp"]) == v["signed_message"].encode()


@pytest.mark.parametrize("key", ["c2sp_cosignature_example", "transparency_dev_timestamp"])
def test_published_cosignature_layout_matches_ours(key: str) -> None:
    # key ID (4) || big-endian u64 timestamp || Ed25519 signature (64): the
    # published lines carry the published timestamps at bytes 4..12, and
    # ours lays out the same way.
    v = VECTORS[key]
    raw = (
        parse_signature_line(v["cosignature_line"])[1]
        if "cosignature_line" in v
        else base64.b64decode(v["signature_base64"])
    )
    assert len(raw) == 4 + 8 + 64
    assert int.from_bytes(raw[4:12], "big") == v["timestamp"]
    ours = parse_signature_line(
        cosign(BODY, "w.example/w", WITNESS_KEY, v["timestamp"]).rstrip("\n")
    )[1]
    assert len(ours) == 76 and int.from_bytes(ours[4:12], "big") == v["timestamp"]


def test_real_cosigned_checkpoint() -> None:
    # florolf/tlog-scales tests/test_signing.py TestCheckpointVerification:
    # a log signature (type 0x01), an RFC 6962 STH signature (type 0x05,
    # unknown here, ignored) and witness cosignatures (type 0x04).
    log = ed25519_verifier(REAL["log_vkey"])
    witness = cosignature_verifier(REAL["witness_vkey"])
    assert witness.key_id.hex() == "da77ade7" and witness.to_verifier_key() == REAL["witness_vkey"]
    text, sigs = open_note(REAL["note"].encode(), [log, witness])
    assert Checkpoint.parse(text).size == REAL["size"]
    # 1779573024 = bytes 4..12 of the remora.n621.de line.
    assert [(s.name, s.timestamp) for s in sigs] == [(log.name, None), (witness.name, 1779573024)]
    assert verify_cosignature(text, REAL["witness_line"], witness) == 1779573024

    clobbered = REAL["note"].replace(str(REAL["size"]), "42", 1).encode()
    for v in (log, witness):
        with pytest.raises(VerificationError):
            open_note(clobbered, [v])


def test_cosignature_key_is_not_an_ed25519_note_key() -> None:
    with pytest.raises(MalformedError):
        ed25519_verifier(REAL["witness_vkey"])
    with pytest.raises(MalformedError):
        cosignature_verifier(REAL["log_vkey"])


# --- Cosigning ----------------------------------------------------------------------


def test_cosign_and_verify() -> None:
    line = cosign(BODY, "witness.example/w1", WITNESS_KEY, 1_700_000_000)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    verifier = CosignatureSigner("witness.example/w1", WITNESS_KEY, 0).verifier()
    assert verify_cosignature(BODY, line, verifier) == 1_700_000_000

    other = CosignatureSigner(
        "witness.example/w1", Ed25519PrivateKey.from_private_bytes(b"\x03" * 32), 0
    ).verifier()
    with pytest.raises(VerificationError, match="not from this witness"):
        verify_cosignature(BODY, line, other)
    moved = Checkpoint("example.com/log", 6, b"\xab" * 32).to_text()
    with pytest.raises(VerificationError):
        verify_cosignature(moved, line, verifier)


def test_cosigned_note_with_log_signature() -> None:
    log = Ed25519Signer("example.com/log", LOG_KEY)
    witness = CosignatureSigner("witness.example/w1", WITNESS_KEY, 1234)
    note = sign_note(BODY, [log, witness])
    text, sigs = open_note(note, [log.verifier(), witness.verifier()])
    assert text == BODY
    assert [(s.name, s.timestamp) for s in sigs] == [
        ("example.com/log", None),
        ("witness.example/w1", 1234),
    ]
    # Domain separation: same name and key under type 0x01 has another key ID,
    # so an Ed25519 verifier does not recognise the cosignature line.
    same_key_plain = Ed25519Signer("witness.example/w1", WITNESS_KEY)
    assert same_key_plain.key_id != witness.key_id
    with pytest.raises(VerificationError, match="no signature from a known key"):
        open_note(sign_note(BODY, [witness]), [same_key_plain.verifier()])


def test_cosignature_rejections() -> None:
    witness = CosignatureSigner("witness.example/w1", WITNESS_KEY, 1234)
    v = witness.verifier()
    good = witness.sign(BODY.encode())
    assert v.verify(BODY.encode(), good) == 1234
    # The timestamp is signed: changing it breaks the signature.
    with pytest.raises(VerificationError):
        v.verify(BODY.encode(), (1235).to_bytes(8, "big") + good[8:])
    with pytest.raises(VerificationError, match="timestamp"):
        v.verify(BODY.encode(), (2**63).to_bytes(8, "big") + good[8:])
    with pytest.raises(VerificationError, match="length"):
        v.verify(BODY.encode(), good[:-1])
    with pytest.raises(MalformedError):
        v.verify(b"not a checkpoint\n", good)
    with pytest.raises(MalformedError):
        cosign("not a checkpoint\n", "w", WITNESS_KEY, 1)
    for ts in (-1, 2**63):
        with pytest.raises(ValueError):
            cosign(BODY, "w", WITNESS_KEY, ts)
    with pytest.raises(MalformedError):
        cosign(BODY, "bad name", WITNESS_KEY, 1)
