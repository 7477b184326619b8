"""Reading a node's exchange log through its Auditor service (``wlx audit export --node``).

Nothing is verified here: ``wlx.node.audit.offline.verify`` does that, offline.
"""

from __future__ import annotations

import grpc

from wlx.node.audit.export import CALL_TIMEOUT, signature_lines, size_of
from wlx.node.audit.offline.bundle import Bundle
from wlx.node.core.errors import NotFound, PeerError
from wlx.node.rpc.netcheck import Endpoint
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.v1 import audit_pb2, audit_pb2_grpc


def from_auditor(channel: grpc.Channel, target: str, endpoint: Endpoint | None = None) -> Bundle:
    """The bundle of the node behind ``channel``, read through its Auditor service.

    Raises:
        Unavailable, PermissionDenied, ...: as ``status.from_rpc_error``.
        NotFound: the node has made no checkpoint yet.
        PeerError: the node's answers do not fit together.
    """
    stub = audit_pb2_grpc.AuditorStub(channel)
    try:
        info = stub.GetLogInfo(audit_pb2.GetLogInfoRequest(), timeout=CALL_TIMEOUT)
        checkpoints: list[audit_pb2.SignedCheckpoint] = []
        while True:
            after = checkpoints[-1].size if checkpoints else 0
            page = stub.ListCheckpoints(
                audit_pb2.ListCheckpointsRequest(after_size=after), timeout=CALL_TIMEOUT
            ).checkpoints
            if not page:
                break
            checkpoints.extend(page)
        if not checkpoints:
            raise NotFound(f"node {info.node_id} has made no checkpoint yet")
        cosigned_sizes = [c.size for c in checkpoints if signature_lines(c.note) > 1]
        size = cosigned_sizes[-1] if cosigned_sizes else checkpoints[-1].size
        entries: list[bytes] = []
        while len(entries) < size:
            got = stub.GetEntries(
                audit_pb2.GetEntriesRequest(start=len(entries), end=size), timeout=CALL_TIMEOUT
            ).entries
            if not got:
                raise PeerError(f"the node sent no entry from {len(entries)}")
            entries.extend(got)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, f"node at {target}", endpoint) from None
    notes = tuple(c.note for c in checkpoints if c.size <= size)
    if any(size_of(n) != c.size for n, c in zip(notes, checkpoints, strict=False)):
        raise PeerError("the node's checkpoint sizes do not match their notes")
    return Bundle(info.node_id, info.identity_card, tuple(entries), notes, tuple(info.witnessed))
