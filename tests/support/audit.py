"""Helpers of the exchange-log tests: a federation that did things, bundles, forgeries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from support.nodes import Federation, FederationMaker, StorageFactory, record
from wlx.crypto.checkpoint import cosign
from wlx.crypto.keys import SigningKey
from wlx.crypto.merkle import leaf_hash, root
from wlx.crypto.note import sign_note
from wlx.node.audit import export
from wlx.node.audit.offline.bundle import Bundle, canonical_json, decode, encode
from wlx.node.audit.offline.names import checkpoint_text, log_signer, private_key, witness_name
from wlx.node.audit.offline.verify import Keyring
from wlx.node.outgoing import ownlist
from wlx.node.rpc.cosign import checkpoint_round
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

NODES = ["CN", "RU", "AR"]
WANTED = "CN-1"
WANTED_NAME = "Test Person CN 1"


def exchange(fed: Federation) -> None:
    """Records, sync, a lookup with a hit, a detail request, a removal, resync:
    every kind of exchange event, in every node's log."""
    ownlist.import_records(fed["CN"].node, [record(WANTED), record("CN-2"), record("CN-3")])
    ownlist.import_records(fed["AR"].node, [record("AR-1")])
    fed.sync_all()
    stub = lookup_pb2_grpc.LookupStub(fed.channel("RU", name="post-ru-1"))
    person = lookup_pb2.Person(names=[WANTED_NAME], dob="1980-05-17")
    hit = stub.Check(lookup_pb2.CheckRequest(person=person, purpose="border-check")).hits[0]
    stub.Detail(lookup_pb2.DetailQuery(ref=hit.ref, purpose="confirm identity", case_id="K-1"))
    ownlist.remove_record(fed["CN"].node, "CN-2")
    fed.sync_all()


def witnessed_federation(
    federation: FederationMaker, storage: StorageFactory | None = None
) -> Federation:
    """Three nodes after ``exchange``, each log checkpointed and cosigned by both peers."""
    fed = federation(NODES, storage=storage)
    exchange(fed)
    for node_id in NODES:
        _, reports = checkpoint_round(fed[node_id].node)
        assert all(r.ok for r in reports), reports
    return fed


def keyring(fed: Federation, nodes: Iterable[str] = NODES) -> Keyring:
    return Keyring.from_cards((n, fed[n].node.card.raw) for n in nodes)


def bundle_of(fed: Federation, node_id: str) -> bytes:
    return encode(export.from_store(fed[node_id].node))


def entries_of(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(e) for e in decode(data).entries]


def forge(
    data: bytes,
    keys: dict[str, SigningKey],
    entries: list[dict[str, Any]],
    *,
    cosigners: Iterable[str] = (),
    sizes: Iterable[int] | None = None,
) -> bytes:
    """Rebuild a bundle around other ``entries`` (renumbered), with checkpoints
    of the same sizes (capped, plus the last) signed again by the node's key and
    cosigned by ``cosigners`` -- what a node holding its key (and colluding
    witnesses) could make."""
    bundle = decode(data)
    node = bundle.node
    lines = [canonical_json({**e, "idx": i}) for i, e in enumerate(entries)]
    leaves = [leaf_hash(line) for line in lines]
    old_sizes = sizes or [int(n.split(b"\n")[1]) for n in bundle.checkpoints]
    new_sizes = sorted({min(s, len(lines)) for s in old_sizes} | {len(lines)})
    notes = []
    for size in new_sizes:
        text = checkpoint_text(node, size, root(leaves, size))
        note = sign_note(text, [log_signer(node, keys[node])])
        for w in sorted(cosigners):
            note += cosign(text, witness_name(w), private_key(keys[w]), 1_800_000_000).encode()
        notes.append(note)
    return encode(Bundle(node, bundle.card, tuple(lines), tuple(notes), bundle.witnessed))


def signing_keys(fed: Federation) -> dict[str, SigningKey]:
    return {n: fed[n].node.signing_key for n in fed.nodes}
