"""The online tier's vectors (docs/vectors/online.json, docs/protocol.md §15.3).

Checked three ways where the spec gives a formula: the vector, the formula
recomputed from primitives (hashlib, ChaCha20-Poly1305), and the
implementation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from wlx.crypto import online, oprf
from wlx.crypto.encoding import lp, u64
from wlx.crypto.errors import DecryptionError
from wlx.crypto.tokens import SEAL_AAD_PREFIX, EpochKey, pad

V: Any = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "vectors" / "online.json").read_text()
)
STREAM = lp(V["origin"]) + lp(V["recipient"]) + u64(V["epoch"])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_stream_key() -> None:
    info = b"wlx/v1 oprf-key\x00" + STREAM
    assert info.hex() == V["key_info"] == online.key_info("CN", "RU", 1).hex()
    pair = oprf.derive_key_pair(h(V["seed"]), info, oprf.Mode.VOPRF)
    assert (pair.secret.hex(), pair.public.hex()) == (V["secret_key"], V["public_key"])


def test_derivations_by_formula_and_implementation() -> None:
    key = online.OnlineKey.derive(h(V["seed"]), "CN", "RU", 1)
    for d in V["derivations"]:
        ik = h(d["identifier_key"])
        assert oprf.evaluate(key.pair.secret, ik, oprf.Mode.VOPRF).hex() == d["output"]
        y = h(d["output"])
        token = hashlib.blake2b(STREAM, digest_size=16, key=y, person=b"wlx1-otoken").digest()
        seal = hashlib.blake2b(STREAM, digest_size=32, key=y, person=b"wlx1-oseal").digest()
        assert (token.hex(), seal.hex()) == (d["token"], d["seal_key"])
        entry = key.entry_keys(ik)
        assert (entry.token.hex(), entry.seal_key.hex()) == (d["token"], d["seal_key"])


def _returning(value: bytes) -> Callable[[int], bytes]:
    """An ``Rng`` that returns ``value`` (the randomness the vectors fix)."""
    return lambda _n: value


def test_evaluation_verifies_and_unblinds_to_the_outputs() -> None:
    e = V["evaluation"]
    blinded = [
        oprf.Blinded(h(d["identifier_key"]), h(b), h(el))
        for d, b, el in zip(V["derivations"], e["blinds"], e["blinded"], strict=True)
    ]
    for b in blinded:  # the blinded element is blind * HashToGroup(input)
        again = oprf.blind(b.input, oprf.Mode.VOPRF, _returning(b.blind + bytes(32)))
        assert again.element == b.element
    evaluation = oprf.Evaluation(tuple(h(x) for x in e["evaluated"]), h(e["proof"]))
    outputs = oprf.finalize_verified(h(V["public_key"]), blinded, evaluation)
    assert [o.hex() for o in outputs] == [d["output"] for d in V["derivations"]]
    key = online.OnlineKey.derive(h(V["seed"]), "CN", "RU", 1)
    evaluated = key.evaluate(
        [b.element for b in blinded], lambda _n: h(e["proof_randomness"]) + bytes(32)
    )
    assert evaluated.proof.hex() == e["proof"]


def test_seal_by_formula() -> None:
    s = V["seal"]
    ik = h(s["identifier_key"])
    (d,) = [d for d in V["derivations"] if d["identifier_key"] == s["identifier_key"]]
    aad = SEAL_AAD_PREFIX + STREAM + lp(h(s["handle"])) + lp(h(s["token"]))
    nonce = h(s["nonce"])
    padded = pad(h(s["hit_data"]))  # §4.3: hit data padded before sealing
    sealed = nonce + ChaCha20Poly1305(h(d["seal_key"])).encrypt(nonce, padded, aad)
    assert sealed.hex() == s["sealed"]
    epoch_key = EpochKey(h(s["epoch_key"]), "CN", "RU", 1)
    opened = epoch_key.open_as(h(d["token"]), h(d["seal_key"]), h(s["handle"]), sealed)
    assert opened.hex() == s["hit_data"]
    with pytest.raises(DecryptionError):  # the offline keys of the identifier do not open it
        epoch_key.open(ik, h(s["handle"]), sealed)
