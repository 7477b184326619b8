"""Known answers for independent auditors' verifiers: docs/audit-vectors.json.

The file holds a small exchange log made with fixed keys: its entries, leaf
hashes, roots, checkpoint texts, signed notes, cosignatures, an inclusion
and a consistency proof, and a whole bundle with its identity cards, plus
tampered bundles with the failure each must produce (docs/audit.md §9).
Everything signed with Ed25519 is deterministic and recomputed here; the
cards (whose TLS certificates carry randomised ECDSA signatures) and so the
bundles were made once.  Regenerate the file with

    .venv/bin/python tests/test_audit_vectors.py > docs/audit-vectors.json
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from wlx.crypto import merkle, tls
from wlx.crypto.card import make_card
from wlx.crypto.checkpoint import cosign
from wlx.crypto.keys import BoxKey, SigningKey
from wlx.crypto.note import sign_note
from wlx.node.audit.exchange_log import Event, encode_entry
from wlx.node.audit.offline.bundle import Bundle, decode, encode
from wlx.node.audit.offline.errors import AuditFailure
from wlx.node.audit.offline.names import (
    checkpoint_text,
    log_signer,
    log_verifier,
    private_key,
    witness_name,
    witness_verifier,
)
from wlx.node.audit.offline.verify import Keyring, verify_bundle

VECTORS = Path(__file__).parent.parent / "docs" / "audit-vectors.json"
LOG, WITNESS = "CN", "RU"
SEEDS = {LOG: bytes([1]) * 32, WITNESS: bytes([2]) * 32}
T0 = 1_800_000_000
SIZES = (2, 5)


def _entries() -> list[bytes]:
    events: list[tuple[Event, dict[str, Any]]] = [
        (Event.NODE_CREATED, {"fingerprint": "0123:4567:89ab:cdef:0123:4567:89ab:cdef"}),
        (
            Event.PEER_TRUST,
            {
                "peer": WITNESS,
                "fingerprint": "fedc:ba98:7654:3210:fedc:ba98:7654:3210",
                "address": "127.0.0.1:7002",
            },
        ),
        (
            Event.BATCH_SENT,
            {"peer": WITNESS, "epoch": 1, "first_seq": 1, "last_seq": 3, "digest": "ab" * 32},
        ),
        (
            Event.LOOKUP,
            {
                "call": "check",
                "credential": "post-cn-1",
                "purpose": "border-check",
                "people": 1,
                "unchecked": 0,
                "hits": ["RU:RU-000001"],
            },
        ),
        (Event.RECORD_SUSPEND, {"record": "CN-000001", "version": 1, "suspended": True}),
    ]
    return [
        encode_entry(idx=i, time=T0 + 10 * i, node=LOG, kind=kind, fields=fields)
        for i, (kind, fields) in enumerate(events)
    ]


def deterministic() -> dict[str, Any]:
    """Every vector that Ed25519's determinism makes reproducible."""
    keys = {n: SigningKey.from_seed(s) for n, s in SEEDS.items()}
    entries = _entries()
    leaves = [merkle.leaf_hash(e) for e in entries]
    checkpoints = []
    for k, size in enumerate(SIZES):
        root = merkle.root(leaves, size)
        text = checkpoint_text(LOG, size, root)
        note = sign_note(text, [log_signer(LOG, keys[LOG])])
        timestamp = T0 + 100 + k
        line = cosign(text, witness_name(WITNESS), private_key(keys[WITNESS]), timestamp)
        checkpoints.append(
            {
                "size": size,
                "root": root.hex(),
                "text": text,
                "note": note.decode(),
                "cosignature_timestamp": timestamp,
                "cosignature": line,
                "cosigned_note": note.decode() + line,
            }
        )
    return {
        "log": {
            "node": LOG,
            "ed25519_seed": SEEDS[LOG].hex(),
            "public_key": base64.b64encode(keys[LOG].public().raw).decode(),
            "verifier_key": log_verifier(LOG, keys[LOG].public()).to_verifier_key(),
        },
        "witness": {
            "node": WITNESS,
            "ed25519_seed": SEEDS[WITNESS].hex(),
            "public_key": base64.b64encode(keys[WITNESS].public().raw).decode(),
            "verifier_key": witness_verifier(WITNESS, keys[WITNESS].public()).to_verifier_key(),
        },
        "entries": [e.decode() for e in entries],
        "leaf_hashes": [h.hex() for h in leaves],
        "checkpoints": checkpoints,
        "inclusion": {
            "index": 3,
            "tree_size": SIZES[-1],
            "proof": [h.hex() for h in merkle.inclusion_proof(leaves, 3, SIZES[-1])],
        },
        "consistency": {
            "old_size": SIZES[0],
            "new_size": SIZES[-1],
            "proof": [h.hex() for h in merkle.consistency_proof(leaves, *SIZES)],
        },
    }


def _rng(label: str) -> Any:
    counter = [0]

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            counter[0] += 1
            out += hashlib.sha256(f"{label}/{counter[0]}".encode()).digest()
        return out[:n]

    return rng


def _card(node: str) -> bytes:
    rng = _rng(node)
    cert = tls.node_certificate(
        tls.generate_key(rng), node, not_before=T0, not_after=T0 + 10**8, rng=rng
    )
    key = SigningKey.from_seed(SEEDS[node])
    return make_card(
        key, BoxKey.from_raw(rng(32)).public(), node, f"{node.lower()}.example:7000", T0, cert
    )


def _tampered(good: bytes) -> list[dict[str, str]]:
    b = decode(good)
    entries = list(b.entries)
    flipped = entries[3].replace(b'"people":1', b'"people":2')
    cases = [
        (
            "an entry changed",
            encode(
                Bundle(
                    b.node,
                    b.card,
                    (*entries[:3], flipped, *entries[4:]),
                    b.checkpoints,
                    b.witnessed,
                )
            ),
        ),
        (
            "an entry dropped",
            encode(
                Bundle(b.node, b.card, (*entries[:2], *entries[3:]), b.checkpoints, b.witnessed)
            ),
        ),
        (
            "the last entry cut off",
            encode(Bundle(b.node, b.card, tuple(entries[:-1]), b.checkpoints, b.witnessed)),
        ),
        (
            "the cosignature removed",
            encode(
                Bundle(
                    b.node,
                    b.card,
                    b.entries,
                    (b.checkpoints[0], b.checkpoints[1].split("—".encode() + b" wlx.witness")[0]),
                    b.witnessed,
                )
            ),
        ),
        ("one byte of the header flipped", good.replace(b'"entries":5', b'"entries":4', 1)),
    ]
    return [{"description": d, "bundle": data.decode()} for d, data in cases]


def generate() -> dict[str, Any]:
    vectors = deterministic()
    cards = {n: _card(n) for n in (LOG, WITNESS)}
    notes = tuple(c["cosigned_note"].encode() for c in vectors["checkpoints"])
    good = encode(Bundle(LOG, cards[LOG], tuple(e.encode() for e in vectors["entries"]), notes, ()))
    ring = Keyring.from_cards(cards.items())
    tampered = []
    for case in _tampered(good):
        try:
            verify_bundle(case["bundle"].encode(), ring)
        except AuditFailure as exc:
            tampered.append({**case, "where": exc.where, "check": exc.check})
    vectors["bundle"] = {
        "cards": {n: c.decode() for n, c in cards.items()},
        "bundle": good.decode(),
        "tampered": tampered,
    }
    return {
        "comment": "wlx exchange-log vectors (docs/audit.md §9), made by tests/test_audit_vectors.py",
        **vectors,
    }


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def test_the_deterministic_vectors_are_reproduced(vectors: dict[str, Any]) -> None:
    for key, value in deterministic().items():
        assert vectors[key] == value, key


def test_the_vector_bundle_verifies_and_its_tampered_copies_fail(vectors: dict[str, Any]) -> None:
    bundle = vectors["bundle"]
    ring = Keyring.from_cards((n, c.encode()) for n, c in bundle["cards"].items())
    verified = verify_bundle(bundle["bundle"].encode(), ring)
    assert verified.latest.checkpoint.size == 5 and verified.latest.cosigners == (WITNESS,)
    assert len(bundle["tampered"]) == 5
    for case in bundle["tampered"]:
        with pytest.raises(AuditFailure) as err:
            verify_bundle(case["bundle"].encode(), ring)
        assert (err.value.where, err.value.check) == (case["where"], case["check"]), case[
            "description"
        ]


def test_the_proofs_verify(vectors: dict[str, Any]) -> None:
    leaves = [bytes.fromhex(h) for h in vectors["leaf_hashes"]]
    assert leaves == [merkle.leaf_hash(e.encode()) for e in vectors["entries"]]
    old, new = (bytes.fromhex(c["root"]) for c in vectors["checkpoints"])
    inc = vectors["inclusion"]
    merkle.verify_inclusion(
        leaves[inc["index"]],
        inc["index"],
        inc["tree_size"],
        [bytes.fromhex(h) for h in inc["proof"]],
        new,
    )
    con = vectors["consistency"]
    merkle.verify_consistency(
        con["old_size"], con["new_size"], old, new, [bytes.fromhex(h) for h in con["proof"]]
    )


if __name__ == "__main__":
    json.dump(generate(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
