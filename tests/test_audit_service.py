"""The Auditor gRPC service: checkpoints, entries and proofs that verify
(docs/audit.md §5), over mutual TLS with an auditor credential."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from support.audit import bundle_of, keyring, witnessed_federation
from support.nodes import FederationMaker, StorageFactory

from wlx.crypto import merkle
from wlx.crypto.checkpoint import Checkpoint
from wlx.crypto.note import NoteVerifier, open_note
from wlx.node.audit.offline.bundle import encode
from wlx.node.audit.offline.names import log_verifier, witness_verifier
from wlx.node.audit.offline.verify import verify_bundle
from wlx.node.rpc import audit_service
from wlx.node.rpc.audit_client import from_auditor
from wlx.node.rpc.cosign import checkpoint_round
from wlx.v1 import audit_pb2, audit_pb2_grpc


def test_auditor_rpcs_return_what_verifies(
    federation: FederationMaker, backend: StorageFactory
) -> None:
    fed = witnessed_federation(federation, backend)
    cn = fed["CN"].node
    with cn.store.read() as tx:
        first = tx.latest_checkpoint()
    assert first is not None
    first_size = first.size
    fed.channel("CN", role="officer", name="post-cn-9")  # logs credential.issued: the log grows
    checkpoint_round(cn)
    stub = audit_pb2_grpc.AuditorStub(fed.channel("CN", role="auditor", name="auditor-1"))

    info = stub.GetLogInfo(audit_pb2.GetLogInfoRequest())
    assert info.node_id == "CN" and info.identity_card == cn.card.raw
    assert sorted(n.split(b"\n")[0] for n in info.witnessed) == [
        b"wlx.exchange/AR",
        b"wlx.exchange/RU",
    ]

    # The latest checkpoint, signed by CN and cosigned by both peers.
    latest = stub.GetCheckpoint(audit_pb2.GetCheckpointRequest())
    verifiers: list[NoteVerifier] = [
        log_verifier("CN", cn.card.sign_key),
        witness_verifier("RU", fed["RU"].node.card.sign_key),
        witness_verifier("AR", fed["AR"].node.card.sign_key),
    ]
    text, sigs = open_note(latest.note, verifiers)
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.size == latest.size > first_size
    assert sorted(s.name for s in sigs) == ["wlx.exchange/CN", "wlx.witness/AR", "wlx.witness/RU"]

    # Every checkpoint, and the entries, whose root is the signed one.
    listed = stub.ListCheckpoints(audit_pb2.ListCheckpointsRequest()).checkpoints
    assert [c.size for c in listed] == [first_size, latest.size]
    page = stub.ListCheckpoints(audit_pb2.ListCheckpointsRequest(after_size=first_size, limit=1))
    assert [c.size for c in page.checkpoints] == [latest.size]
    entries = stub.GetEntries(audit_pb2.GetEntriesRequest(start=0, end=latest.size)).entries
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root(leaves) == checkpoint.root_hash

    # Inclusion proofs against the signed root; consistency between the two checkpoints.
    for index in (0, first_size - 1, latest.size - 1):
        proof = stub.GetInclusionProof(
            audit_pb2.GetInclusionProofRequest(index=index, tree_size=latest.size)
        ).hashes
        merkle.verify_inclusion(
            leaves[index], index, latest.size, list(proof), checkpoint.root_hash
        )
    old = Checkpoint.parse(open_note(listed[0].note, verifiers[:1])[0])
    proof = stub.GetConsistencyProof(
        audit_pb2.GetConsistencyProofRequest(old_size=first_size, new_size=latest.size)
    ).hashes
    merkle.verify_consistency(
        first_size, latest.size, old.root_hash, checkpoint.root_hash, list(proof)
    )

    # Bounds: nothing beyond the log.
    bad_calls: list[Callable[[], object]] = [
        lambda: stub.GetEntries(audit_pb2.GetEntriesRequest(start=0, end=latest.size + 99)),
        lambda: stub.GetEntries(audit_pb2.GetEntriesRequest(start=5, end=5)),
        lambda: stub.GetInclusionProof(audit_pb2.GetInclusionProofRequest(index=9, tree_size=9)),
        lambda: stub.GetConsistencyProof(
            audit_pb2.GetConsistencyProofRequest(old_size=2, new_size=10**6)
        ),
    ]
    for call in bad_calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # The export through the service is the export from the store, and verifies.
    channel = fed.channel("CN", role="auditor", name="auditor-2")
    over_rpc = encode(from_auditor(channel, fed["CN"].address))
    assert over_rpc == bundle_of(fed, "CN")
    assert verify_bundle(over_rpc, keyring(fed)).latest.checkpoint.size == latest.size


def test_entries_come_in_bounded_pages(federation: FederationMaker) -> None:
    fed = witnessed_federation(federation)
    stub = audit_pb2_grpc.AuditorStub(fed.channel("RU", role="auditor"))
    size = stub.GetCheckpoint(audit_pb2.GetCheckpointRequest()).size
    old = audit_service.MAX_ENTRIES_PER_CALL
    audit_service.MAX_ENTRIES_PER_CALL = 3
    try:
        got = stub.GetEntries(audit_pb2.GetEntriesRequest(start=1, end=size)).entries
    finally:
        audit_service.MAX_ENTRIES_PER_CALL = old
    assert len(got) == 3 and b'"idx":1,' in got[0]
    # And export pages through them.
    channel = fed.channel("RU", role="auditor", name="auditor-x")
    assert encode(from_auditor(channel, fed["RU"].address)) == bundle_of(fed, "RU")


def test_only_auditors_reach_the_auditor_service(federation: FederationMaker) -> None:
    fed = federation(["CN", "RU"])
    checkpoint_round(fed["CN"].node)
    stub = audit_pb2_grpc.AuditorStub(fed.channel("CN", role="officer"))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetCheckpoint(audit_pb2.GetCheckpointRequest())
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
