"""gRPC services of the exchange log: ``wlx.v1.Witness`` and ``wlx.v1.Auditor``.

Thin: each handler checks its bounds, calls one function, converts the
answer.  ``Witness`` is for trusted peers and ``Auditor`` is for auditors;
each is its own service, so an interceptor can admit callers by service
name (``/wlx.v1.Auditor/``).  The Auditor service only reads: every answer
comes from one consistent read transaction, and everything it returns can
be verified by the caller (signed checkpoints, RFC 9162 proofs).
"""

from __future__ import annotations

import grpc

from wlx.node.audit import exchange_log, witness
from wlx.node.audit.checkpoints import cosigned
from wlx.node.core.errors import NotFound, UserError
from wlx.node.core.node import Node
from wlx.node.rpc import status_codes
from wlx.node.rpc.auth import Role, current_caller
from wlx.v1 import audit_pb2, audit_pb2_grpc

WITNESS_SERVICE = "wlx.v1.Witness"
AUDITOR_SERVICE = "wlx.v1.Auditor"
MAX_ENTRIES_PER_CALL = 1000
MAX_ENTRY_BYTES_PER_CALL = 4 * 1024 * 1024
MAX_CHECKPOINTS_PER_CALL = 100


class WitnessServicer(audit_pb2_grpc.WitnessServicer):
    """Cosigns trusted peers' checkpoints (``wlx.node.audit.witness``)."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @status_codes.unary
    def AddCheckpoint(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.AddCheckpointRequest, context: grpc.ServicerContext
    ) -> audit_pb2.AddCheckpointResponse:
        caller = current_caller()
        restore = (
            witness.RestoreClaim(
                request.restore.entry,
                request.restore.index,
                list(request.restore.inclusion_proof),
            )
            if request.HasField("restore")
            else None
        )
        result = witness.add_checkpoint(
            self._node,
            request.checkpoint,
            request.old_size,
            list(request.consistency_proof),
            submitter=caller.name if caller is not None and caller.role is Role.PEER else None,
            restore=restore,
        )
        if isinstance(result, witness.Conflict):
            return audit_pb2.AddCheckpointResponse(conflict_size=result.size)
        return audit_pb2.AddCheckpointResponse(cosignature=result.line)


class AuditorServicer(audit_pb2_grpc.AuditorServicer):
    """Read-only access to the exchange log, its checkpoints and proofs."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @status_codes.unary
    def GetLogInfo(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetLogInfoRequest, context: grpc.ServicerContext
    ) -> audit_pb2.LogInfo:
        with self._node.store.read() as tx:
            size, _ = exchange_log.head(tx)
            witnessed = [row.note for row in tx.list_witnessed()]
        return audit_pb2.LogInfo(
            node_id=self._node.node_id,
            identity_card=self._node.card.raw,
            log_size=size,
            witnessed=witnessed,
        )

    @status_codes.unary
    def GetCheckpoint(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetCheckpointRequest, context: grpc.ServicerContext
    ) -> audit_pb2.SignedCheckpoint:
        with self._node.store.read() as tx:
            latest = tx.latest_checkpoint()
            if latest is None:
                raise NotFound("the node has made no checkpoint yet")
            return audit_pb2.SignedCheckpoint(size=latest.size, note=cosigned(tx, latest))

    @status_codes.unary
    def ListCheckpoints(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ListCheckpointsRequest, context: grpc.ServicerContext
    ) -> audit_pb2.ListCheckpointsResponse:
        limit = min(request.limit or MAX_CHECKPOINTS_PER_CALL, MAX_CHECKPOINTS_PER_CALL)
        with self._node.store.read() as tx:
            rows = tx.list_checkpoints(request.after_size, limit)
            return audit_pb2.ListCheckpointsResponse(
                checkpoints=[
                    audit_pb2.SignedCheckpoint(size=r.size, note=cosigned(tx, r)) for r in rows
                ]
            )

    @status_codes.unary
    def GetEntries(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetEntriesRequest, context: grpc.ServicerContext
    ) -> audit_pb2.GetEntriesResponse:
        start, end = request.start, request.end
        with self._node.store.read() as tx:
            size = exchange_log.size(tx)
            if not start < end <= size:
                raise UserError(f"entries [{start}, {end}) are not within the log of {size}")
            rows = tx.audit_entries(start, min(end, start + MAX_ENTRIES_PER_CALL))
        entries: list[bytes] = []
        total = 0
        for _, entry in rows:
            total += len(entry)
            if entries and total > MAX_ENTRY_BYTES_PER_CALL:
                break
            entries.append(entry)
        return audit_pb2.GetEntriesResponse(entries=entries)

    @status_codes.unary
    def GetInclusionProof(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetInclusionProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.Proof:
        with self._node.store.read() as tx:
            size = exchange_log.size(tx)
            if not request.index < request.tree_size <= size:
                raise UserError(
                    f"no entry {request.index} in a tree of {request.tree_size} "
                    f"(the log has {size})"
                )
            hashes = exchange_log.inclusion_proof(tx, request.index, request.tree_size)
        return audit_pb2.Proof(hashes=hashes)

    @status_codes.unary
    def GetConsistencyProof(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.GetConsistencyProofRequest, context: grpc.ServicerContext
    ) -> audit_pb2.Proof:
        with self._node.store.read() as tx:
            size = exchange_log.size(tx)
            if not request.old_size <= request.new_size <= size:
                raise UserError(
                    f"no consistency proof from {request.old_size} to {request.new_size} "
                    f"(the log has {size})"
                )
            hashes = exchange_log.consistency_proof(tx, request.old_size, request.new_size)
        return audit_pb2.Proof(hashes=hashes)


def add_audit_services(server: grpc.Server, node: Node) -> tuple[str, ...]:
    """Register the Witness and Auditor services; return their full names."""
    audit_pb2_grpc.add_WitnessServicer_to_server(WitnessServicer(node), server)
    audit_pb2_grpc.add_AuditorServicer_to_server(AuditorServicer(node), server)
    return WITNESS_SERVICE, AUDITOR_SERVICE
