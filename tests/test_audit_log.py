"""What the exchange log records after real exchanges, and that it holds no
personal identifier (docs/audit.md §1)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from support.audit import NODES, WANTED, WANTED_NAME, exchange
from support.nodes import FederationMaker, StorageFactory, record

from wlx.crypto import merkle
from wlx.node.audit import exchange_log
from wlx.node.audit.checkpoints import make_checkpoint
from wlx.node.outgoing import ownlist


def entries(fed: Any, node_id: str) -> list[dict[str, Any]]:
    with fed[node_id].node.store.read() as tx:
        rows = tx.audit_entries(0, exchange_log.size(tx))
    assert [i for i, _ in rows] == list(range(len(rows)))
    return [json.loads(e) for _, e in rows]


def of(rows: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == kind]


def test_the_log_records_every_exchange_and_no_identifier(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = federation(NODES, storage=backend)
    exchange(fed)
    cn, ru = entries(fed, "CN"), entries(fed, "RU")
    assert all(e["node"] == "CN" and e["v"] == 1 for e in cn)

    # Own records: by reference and version only.
    assert [(e["record"], e["version"]) for e in of(cn, "record.upsert")] == [
        ("CN-1", 1),
        ("CN-2", 1),
        ("CN-3", 1),
    ]
    assert [e["record"] for e in of(cn, "record.remove")] == ["CN-2"]

    # Every batch CN made for RU, RU applied with the same digest (or took
    # the state in a snapshot at or after it).
    made = {
        (e["epoch"], e["first_seq"], e["last_seq"], e["digest"])
        for e in cn
        if e["kind"] == "batch.sent" and e["peer"] == "RU"
    }
    applied = {
        (e["epoch"], e["first_seq"], e["last_seq"], e["digest"])
        for e in of(ru, "batch.applied")
        if e["origin"] == "CN"
    }
    snapshot = [e for e in of(ru, "snapshot.applied") if e["origin"] == "CN"]
    assert made and applied <= made
    assert all(m in applied or m[2] <= snapshot[0]["at_seq"] for m in made)
    assert [e["snapshot"] for e in snapshot] == [
        e["snapshot"] for e in of(cn, "snapshot.sent") if e["peer"] == "RU"
    ]
    receipts = [e for e in of(cn, "receipt") if e["peer"] == "RU"]
    assert {r["of"] for r in receipts} == {"batch", "snapshot"}

    # The lookup: who, why, how many, which listing hit; the detail request
    # on both sides, under one request digest.
    (lookup,) = of(ru, "lookup")
    assert lookup["credential"] == "post-ru-1" and lookup["purpose"] == "border-check"
    assert lookup["people"] == 1 and lookup["hits"] == [f"CN:{WANTED}"]
    (asked,) = of(ru, "detail.out")
    (answered,) = of(cn, "detail.in")
    assert asked["request"] == answered["request"] and len(asked["request"]) == 64
    assert asked["outcome"] == answered["outcome"] == "granted"
    assert answered["peer"] == "RU" and answered["ref"] == WANTED

    # No personal identifier anywhere, nor its plain SHA-256.
    rec = record(WANTED)
    number = rec.documents[0].number
    needles = [WANTED_NAME, "Person", number, rec.dob, "CHN"]
    needles += [hashlib.sha256(n.encode()).hexdigest() for n in (WANTED_NAME, number)]
    for node_id in NODES:
        with fed[node_id].node.store.read() as tx:
            blob = b"".join(e for _, e in tx.audit_entries(0, exchange_log.size(tx)))
        for needle in needles:
            assert needle.encode() not in blob, (node_id, needle)


def test_a_checkpoint_commits_to_every_entry(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    exchange_lite(fed)
    node = fed["CN"].node
    checkpoint = make_checkpoint(node)
    with node.store.read() as tx:
        size = exchange_log.size(tx)
        rows = tx.audit_entries(0, size)
        assert checkpoint.size == size
        for idx in (0, size // 2, size - 1):
            proof = exchange_log.inclusion_proof(tx, idx, size)
            merkle.verify_inclusion(
                merkle.leaf_hash(rows[idx][1]), idx, size, proof, checkpoint.root
            )
    assert merkle.root([merkle.leaf_hash(e) for _, e in rows]) == checkpoint.root
    # Nothing new in the log: no new checkpoint.
    assert make_checkpoint(node) == checkpoint


def exchange_lite(fed: Any) -> None:
    ownlist.import_records(fed["CN"].node, [record("CN-1"), record("CN-2")])
    fed.sync_all()
