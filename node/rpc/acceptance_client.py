"""Delivering this node's acceptance declaration to an origin (docs/protocol.md §6.6).

Called by the sync client before each pull, so that the pull already
carries the removals the declaration causes.  A declaration the origin has
confirmed is not sent again; one it did not answer is sent at the next sync.
"""

from __future__ import annotations

import logging

import grpc

from wlx.node.core.node import Node
from wlx.node.incoming import acceptance
from wlx.node.protocol import codec
from wlx.v1 import federation_pb2, federation_pb2_grpc

log = logging.getLogger("wlx.sync")

CALL_TIMEOUT = 60.0


def deliver_acceptance(node: Node, stub: federation_pb2_grpc.FederationStub, origin: str) -> bool:
    """Send ``origin`` this node's unconfirmed declaration; True if one was sent.

    Raises:
        grpc.RpcError: the origin refused it or could not be reached (the
            sync client reports it; the declaration stays pending).
    """
    pending = acceptance.declaration(node, origin)
    if pending is None:
        return False
    version, signed = pending
    try:
        answer = stub.DeclareAcceptance(
            federation_pb2.AcceptanceRequest(
                request=codec.encode_signed(
                    signed.payload,
                    signed.signature,
                    signed.signer,
                    signed.recipient,
                    signed.purpose,
                )
            ),
            timeout=CALL_TIMEOUT,
        )
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        # An origin too old to take declarations: the pull goes on, lookups
        # still withhold what this node declines; sent again at every sync.
        log.warning("%s does not take acceptance declarations yet", origin)
        return False
    acceptance.confirmed(
        node, origin, min(answer.version, version), removed=answer.removed, added=answer.added
    )
    return True
