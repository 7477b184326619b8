"""The node's gRPC server: thin servicers over the origin and lookup services.

Each handler converts the request at the boundary, calls one function, and
converts the answer back; errors become statuses in ``wlx.node.status``.
Message sizes, concurrency and worker threads are bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wlx.node import metrics, origin, status
from wlx.node.app import Node
from wlx.node.lookup import Lookup
from wlx.node.protocol import codec
from wlx.node.protocol.messages import ResyncRequired
from wlx.node.wire import check_purpose, hit_to_pb, query_from_pb, results_to_pb
from wlx.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc, lookup_pb2, lookup_pb2_grpc

log = logging.getLogger("wlx.server")

MAX_MESSAGE_BYTES = codec.MAX_ENVELOPE_BYTES + 1024 * 1024
MAX_CONCURRENT_RPCS = 64
WORKERS = 16


class FederationServicer(federation_pb2_grpc.FederationServicer):
    """Serves peers' signed pulls and snapshot requests."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @status.stream
    def Pull(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.PullRequest, context: grpc.ServicerContext
    ) -> Iterator[federation_pb2.PullResponse]:
        signed = codec.decode_signed(request.request)
        for item in origin.pull(self._node, signed):
            if isinstance(item, ResyncRequired):
                yield federation_pb2.PullResponse(
                    resync=federation_pb2.ResyncRequired(reason=item.reason, epoch=item.epoch)
                )
            else:
                metrics.BATCHES_SENT.inc()
                yield federation_pb2.PullResponse(batch=codec.encode_sealed(item))

    @status.stream
    def Snapshot(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.SnapshotRequest, context: grpc.ServicerContext
    ) -> Iterator[envelope_pb2.SealedEnvelope]:
        signed = codec.decode_signed(request.request)
        for sealed in origin.snapshot(self._node, signed):
            yield codec.encode_sealed(sealed)


class LookupServicer(lookup_pb2_grpc.LookupServicer):
    """Answers border-staff lookups from the local store."""

    def __init__(self, node: Node) -> None:
        self._lookup = Lookup(node)

    @status.unary
    def Check(  # noqa: N802 - gRPC method name
        self, request: lookup_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> lookup_pb2.CheckResponse:
        check_purpose(request.purpose)
        with metrics.LOOKUP_SECONDS.labels("check").time():
            hits = self._lookup.check(query_from_pb(request.person))
        metrics.LOOKUPS.labels("check").inc()
        metrics.HITS.inc(len(hits))
        return lookup_pb2.CheckResponse(hits=[hit_to_pb(h) for h in hits])

    @status.unary
    def Screen(  # noqa: N802 - gRPC method name
        self, request: lookup_pb2.ScreenRequest, context: grpc.ServicerContext
    ) -> lookup_pb2.ScreenResponse:
        check_purpose(request.purpose)
        with metrics.LOOKUP_SECONDS.labels("screen").time():
            results = self._lookup.screen([query_from_pb(e.person) for e in request.entries])
        metrics.LOOKUPS.labels("screen").inc(len(results))
        metrics.HITS.inc(sum(len(r.hits) for r in results))
        return results_to_pb([e.id for e in request.entries], results)


def build_server(node: Node, listen: str) -> tuple[grpc.Server, int]:
    """A started-ready (not yet started) server bound to ``listen``; returns it and its port.

    Port 0 binds a free port (tests).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wlx-rpc"),
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    federation_pb2_grpc.add_FederationServicer_to_server(FederationServicer(node), server)
    lookup_pb2_grpc.add_LookupServicer_to_server(LookupServicer(node), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", "wlx.v1.Federation", "wlx.v1.Lookup"):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            federation_pb2.DESCRIPTOR.services_by_name["Federation"].full_name,
            lookup_pb2.DESCRIPTOR.services_by_name["Lookup"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        from wlx.node.errors import UserError

        raise UserError(f"cannot listen on {listen} (address in use or not local)")
    return server, port
