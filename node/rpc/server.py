"""The node's gRPC server: thin servicers over the node's services.

Each handler converts the request at the boundary, calls one function, and
converts the answer back; errors become statuses in ``wlx.node.rpc.status_codes``.
Message sizes, concurrency and worker threads are bounded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from wlx.node import detail
from wlx.node.audit.journal import Journal
from wlx.node.core import metrics
from wlx.node.core.errors import NotFound, PermissionDenied, UserError
from wlx.node.core.limits import Limits
from wlx.node.core.node import Node
from wlx.node.incoming.lookup import Lookup
from wlx.node.outgoing import acceptance as acceptance_
from wlx.node.outgoing import evaluate as online_evaluate
from wlx.node.outgoing import origin
from wlx.node.outgoing import receipts as receipts_
from wlx.node.protocol import codec
from wlx.node.protocol.lookup_rules import LookupCall
from wlx.node.protocol.messages import ResyncRequired, Sealed, SignedRequest, StreamHead
from wlx.node.report import node_status
from wlx.node.rpc import status_codes
from wlx.node.rpc.acceptance_admin import acceptance_state, set_acceptance
from wlx.node.rpc.audit_service import add_audit_services
from wlx.node.rpc.auth import AuthInterceptor, RefusalLog, Role, current_caller
from wlx.node.rpc.evaluate_client import evaluate_sender
from wlx.node.rpc.netcheck import Endpoint
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.sync_client import describe, sync_all
from wlx.node.rpc.transport import (
    MAX_MESSAGE_BYTES,
    peer_channel,
    peer_endpoint,
    server_credentials,
)
from wlx.node.rpc.wire import (
    check_case,
    check_purpose,
    hit_to_pb,
    not_checked_to_pb,
    query_from_pb,
    results_to_pb,
    status_to_pb,
)
from wlx.node.store.base import PeerRow
from wlx.node.trust import lifecycle
from wlx.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    envelope_pb2,
    federation_pb2,
    federation_pb2_grpc,
    lookup_pb2,
    lookup_pb2_grpc,
)

log = logging.getLogger("wlx.server")

SERVICES = (
    "wlx.v1.Federation",
    "wlx.v1.Lookup",
    "wlx.v1.Admin",
    "wlx.v1.Witness",
    "wlx.v1.Auditor",
)
"""The services a node serves (each reported by the gRPC health service)."""
MAX_CONCURRENT_RPCS = 64
WORKERS = 16
DETAIL_TIMEOUT = 30.0


def _require_signer(signer: str) -> None:
    """The peer authenticated by TLS must be the one that signed the request."""
    caller = current_caller()
    if caller is not None and caller.role is Role.PEER and caller.name != signer:
        raise PermissionDenied(
            f"request signed by {signer} arrived over {caller.name}'s connection"
        )


def _caller_name() -> str:
    caller = current_caller()
    return caller.name if caller is not None else ""


class FederationServicer(federation_pb2_grpc.FederationServicer):
    """Serves peers: pulls, snapshots, receipts, detail requests, new cards."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @status_codes.stream
    def Pull(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.PullRequest, context: grpc.ServicerContext
    ) -> Iterator[federation_pb2.PullResponse]:
        signed = codec.decode_signed(request.request)
        _require_signer(signed.signer)
        for item in origin.pull(self._node, signed):
            if isinstance(item, StreamHead):
                yield federation_pb2.PullResponse(
                    head=federation_pb2.StreamHead(
                        epoch=item.epoch, last_seq=item.last_seq, as_of=item.as_of
                    )
                )
            elif isinstance(item, ResyncRequired):
                yield federation_pb2.PullResponse(
                    resync=federation_pb2.ResyncRequired(reason=item.reason, epoch=item.epoch)
                )
            else:
                metrics.BATCHES_SENT.inc()
                yield federation_pb2.PullResponse(batch=codec.encode_sealed(item))

    @status_codes.stream
    def Snapshot(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.SnapshotRequest, context: grpc.ServicerContext
    ) -> Iterator[envelope_pb2.SealedEnvelope]:
        signed = codec.decode_signed(request.request)
        _require_signer(signed.signer)
        for sealed in origin.snapshot(self._node, signed):
            yield codec.encode_sealed(sealed)

    @status_codes.unary
    def Acknowledge(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.AcknowledgeRequest, context: grpc.ServicerContext
    ) -> federation_pb2.AcknowledgeResponse:
        receipts = [codec.decode_signed(r) for r in request.receipts]
        for receipt in receipts:
            _require_signer(receipt.signer)
        return federation_pb2.AcknowledgeResponse(
            recorded=receipts_.acknowledge(self._node, receipts)
        )

    @status_codes.unary
    def RequestDetail(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.DetailRequest, context: grpc.ServicerContext
    ) -> envelope_pb2.SealedEnvelope:
        signed = codec.decode_signed(request.request)
        _require_signer(signed.signer)
        config = self._node.config
        return codec.encode_sealed(detail.answer(self._node, signed, quota=config.detail_quota))

    @status_codes.unary
    def Evaluate(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> envelope_pb2.SignedMessage:
        signed = codec.decode_signed(request.request)
        _require_signer(signed.signer)
        answer = online_evaluate.evaluate(
            self._node, signed, budget=self._node.config.oprf_daily_budget
        )
        return codec.encode_signed(
            answer.payload, answer.signature, answer.signer, answer.recipient, answer.purpose
        )

    @status_codes.unary
    def AnnounceCard(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.AnnounceRequest, context: grpc.ServicerContext
    ) -> federation_pb2.AnnounceResponse:
        caller = current_caller()
        from_peer = caller.name if caller is not None and caller.role is Role.PEER else None
        card = lifecycle.accept_card(self._node, request.card, from_peer=from_peer)
        return federation_pb2.AnnounceResponse(fingerprint=card.fingerprint())

    @status_codes.unary
    def DeclareAcceptance(  # noqa: N802 - gRPC method name
        self, request: federation_pb2.AcceptanceRequest, context: grpc.ServicerContext
    ) -> federation_pb2.AcceptanceResponse:
        signed = codec.decode_signed(request.request)
        _require_signer(signed.signer)
        applied = acceptance_.receive(self._node, signed)
        return federation_pb2.AcceptanceResponse(
            version=applied.version, removed=applied.removed, added=applied.added
        )


def detail_sender(node: Node) -> detail.Transport:
    """How ``node`` sends a signed detail request to a peer (over mutual TLS)."""

    def send(peer: PeerRow, signed: SignedRequest) -> Sealed:
        card = node.trusted(peer.node_id)
        if card is None:
            raise NotFound(f"{peer.node_id} is not a trusted peer")
        return send_detail_request(
            peer_channel(node, card, peer.address),
            f"origin {peer.node_id} at {peer.address}",
            signed,
            peer_endpoint(node, card, peer.address),
        )

    return send


def send_detail_request(
    channel: grpc.Channel, target: str, signed: SignedRequest, endpoint: Endpoint | None = None
) -> Sealed:
    """Send a signed detail request over ``channel`` to ``target`` (named in
    errors); the origin's sealed answer.

    Raises:
        Unavailable, PeerError, ...: as ``status_codes.from_rpc_error``.
        Rejection: the answer is malformed.
    """
    with channel:
        stub = federation_pb2_grpc.FederationStub(channel)
        request = federation_pb2.DetailRequest(
            request=codec.encode_signed(
                signed.payload, signed.signature, signed.signer, signed.recipient, signed.purpose
            )
        )
        try:
            response = stub.RequestDetail(request, timeout=DETAIL_TIMEOUT)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, target, endpoint) from None
    return codec.decode_sealed(response)


_LOOKUP_METHODS = {"check": "/wlx.v1.Lookup/Check", "screen": "/wlx.v1.Lookup/Screen"}


class LookupServicer(lookup_pb2_grpc.LookupServicer):
    """Answers border-staff lookups from the local store, and detail requests."""

    def __init__(
        self,
        node: Node,
        journal: Journal,
        send: detail.Transport | None = None,
        charge: Callable[[str, int], None] | None = None,
    ) -> None:
        """``charge(method, tokens)`` charges the caller a lookup's identifier
        keys (``AuthInterceptor.charge_caller``); None: lookups are not charged."""
        self._node = node
        self._lookup = Lookup(node, journal)
        self._lookup.evaluate_send = evaluate_sender(node)
        if charge is not None:
            self._lookup.charge = lambda call, cost: charge(_LOOKUP_METHODS[call], cost)
        self._send = send or detail_sender(node)

    @status_codes.unary
    def Check(  # noqa: N802 - gRPC method name
        self, request: lookup_pb2.CheckRequest, context: grpc.ServicerContext
    ) -> lookup_pb2.CheckResponse:
        purpose = check_purpose(request.purpose)
        with metrics.LOOKUP_SECONDS.labels(LookupCall.CHECK).time():
            result = self._lookup.check_result(
                query_from_pb(request.person), caller=_caller_name(), purpose=purpose
            )
        metrics.LOOKUPS.labels(LookupCall.CHECK).inc()
        metrics.HITS.inc(len(result.hits))
        return lookup_pb2.CheckResponse(
            hits=[hit_to_pb(h) for h in result.hits],
            not_checked=not_checked_to_pb(result.not_checked),
        )

    @status_codes.unary
    def Screen(  # noqa: N802 - gRPC method name
        self, request: lookup_pb2.ScreenRequest, context: grpc.ServicerContext
    ) -> lookup_pb2.ScreenResponse:
        purpose = check_purpose(request.purpose)
        with metrics.LOOKUP_SECONDS.labels(LookupCall.SCREEN).time():
            results = self._lookup.screen(
                [query_from_pb(e.person) for e in request.entries],
                caller=_caller_name(),
                purpose=purpose,
            )
        metrics.LOOKUPS.labels(LookupCall.SCREEN).inc(len(results))
        metrics.HITS.inc(sum(len(r.hits) for r in results))
        return results_to_pb([e.id for e in request.entries], results)

    @status_codes.unary
    def Detail(  # noqa: N802 - gRPC method name
        self, request: lookup_pb2.DetailQuery, context: grpc.ServicerContext
    ) -> lookup_pb2.DetailResult:
        purpose = check_purpose(request.purpose)
        case_id = check_case(request.case_id)
        if not request.ref:
            raise UserError("a detail request names the hit's ref")
        origin_id = request.origin or self._origin_of(request.ref)
        seal_key = self._lookup.hits.recall(
            _caller_name(), origin_id, request.ref, self._node.now()
        )
        if origin_id == self._node.node_id:
            outcome = detail.own_record(
                self._node,
                request.ref,
                officer=_caller_name(),
                purpose=purpose,
                case_id=case_id,
                seal_key=seal_key,
                quota=self._node.config.detail_quota,
            )
        else:
            outcome = detail.request(
                self._node,
                origin=origin_id,
                ref=request.ref,
                purpose=purpose,
                case_id=case_id,
                officer=_caller_name(),
                seal_key=seal_key,
                send=self._send,
            )
        return lookup_pb2.DetailResult(
            granted=outcome.granted, denial=outcome.denial, record_json=outcome.record_json
        )

    def _origin_of(self, ref: str) -> str:
        origins = self._lookup.hits.origins(_caller_name(), ref, self._node.now())
        if len(origins) != 1:
            raise UserError(
                f"no recent hit with ref {ref!r}; name its origin"
                if not origins
                else f"hits with ref {ref!r} from {', '.join(origins)}; name the origin"
            )
        return origins[0]


class AdminServicer(admin_pb2_grpc.AdminServicer):
    """Node status and on-demand sync."""

    def __init__(self, node: Node, sync_now: Callable[[], list[str]]) -> None:
        self._node = node
        self._sync_now = sync_now

    @status_codes.unary
    def Status(  # noqa: N802 - gRPC method name
        self, request: admin_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> admin_pb2.StatusResponse:
        return status_to_pb(node_status(self._node))

    @status_codes.unary
    def SyncNow(  # noqa: N802 - gRPC method name
        self, request: admin_pb2.SyncNowRequest, context: grpc.ServicerContext
    ) -> admin_pb2.SyncNowResponse:
        return admin_pb2.SyncNowResponse(reports=self._sync_now())

    @status_codes.unary
    def GetAcceptance(  # noqa: N802 - gRPC method name
        self, request: admin_pb2.GetAcceptanceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.AcceptanceState:
        return acceptance_state(self._node, request.peer)

    @status_codes.unary
    def SetAcceptance(  # noqa: N802 - gRPC method name
        self, request: admin_pb2.SetAcceptanceRequest, context: grpc.ServicerContext
    ) -> admin_pb2.AcceptanceState:
        return set_acceptance(self._node, request)


def _sync_lines(node: Node) -> list[str]:
    return [describe(r) for r in sync_all(node)]


def build_server(
    node: Node,
    listen: str,
    *,
    sync_now: Callable[[], list[str]] | None = None,
    refusals: RefusalLog | None = None,
    health_servicer: health.HealthServicer | None = None,
) -> tuple[grpc.Server, int]:
    """A server for ``node`` bound to ``listen`` (not yet started), and its port.

    ``health_servicer``: the gRPC health service to serve (``wlx serve``
    passes its own, which ``rpc.ops.Operations`` keeps current); its
    services are reported SERVING until told otherwise.

    Mutual TLS, with every call authenticated and authorised
    (``wlx.node.rpc.auth``), unless the node runs with ``insecure_dev``.  Port 0
    binds a free port (tests).  ``refusals`` aggregates refused calls for the
    exchange log; the caller drains it when the server stops.

    Raises:
        UserError: the address cannot be bound.
    """
    auth = AuthInterceptor(node, Limits(node.config.limits), refusals)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="wlx-rpc"),
        interceptors=[auth],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    federation_pb2_grpc.add_FederationServicer_to_server(FederationServicer(node), server)
    journal = Journal(node)
    lookup_pb2_grpc.add_LookupServicer_to_server(
        LookupServicer(node, journal, charge=auth.charge_caller), server
    )
    admin_pb2_grpc.add_AdminServicer_to_server(
        AdminServicer(node, sync_now or (lambda: _sync_lines(node))), server
    )
    health_servicer = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    audit_services = add_audit_services(server, node)  # wlx.v1.Witness, wlx.v1.Auditor
    services = ("wlx.v1.Federation", "wlx.v1.Lookup", "wlx.v1.Admin", *audit_services)
    assert set(services) == set(SERVICES), "SERVICES lists every service"
    for name in ("", *services):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            *services,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if node.insecure_dev:
        log.warning(
            "INSECURE-DEV: serving PLAINTEXT gRPC on %s with NO authentication; "
            "never use this outside development",
            listen,
        )
        add_port = functools.partial(server.add_insecure_port, listen)
    else:
        add_port = functools.partial(server.add_secure_port, listen, server_credentials(node))
    try:
        port = add_port()
    except RuntimeError:  # grpcio raises where older versions returned 0
        port = 0
    if port == 0:
        raise UserError(f"cannot listen on {listen} (address in use or not local)")
    return server, port
