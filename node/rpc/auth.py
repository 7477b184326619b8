"""Who is calling, and may they: roles enforced on every RPC.

The TLS handshake already proved the caller holds a certificate chaining to
one of the node's trust anchors.  Here the certificate is mapped to a
caller: a trusted peer (its certificate is the one pinned in its identity
card) or a credential this node issued (its serial is in the credential
table, not revoked, not expired), and the RPC is allowed only for the roles
in ``METHOD_ROLES``.  Anything else is refused, logged, and written to the
exchange log; an unknown method is refused too (fail closed).

Roles: *peer* (federation and witnessing), *officer* (lookups and detail
requests), *auditor* (the exchange log), *operator* (node status and
administration).  Rate limits (``wlx.node.core.limits``) are applied here too.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError

from wlx.crypto import tls
from wlx.crypto.errors import CryptoError
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.audit.refusals import Aggregate, RefusalAggregator, RefusalKind
from wlx.node.core import metrics
from wlx.node.core.errors import PermissionDenied, Unauthenticated, UserError, WlxError
from wlx.node.core.limits import Limits, RateLimited
from wlx.node.core.node import Node
from wlx.node.core.roles import ISSUABLE_ROLES as ISSUABLE_ROLES  # noqa: PLC0414 - re-exported
from wlx.node.core.roles import Role as Role  # noqa: PLC0414 - re-exported
from wlx.node.protocol.lookup_rules import lookup_cost
from wlx.node.rpc.status_codes import code_for
from wlx.v1 import lookup_pb2

log = logging.getLogger("wlx.auth")


_ANY = frozenset(Role)
METHOD_ROLES: dict[str, frozenset[Role]] = {
    "/wlx.v1.Federation/Pull": frozenset({Role.PEER}),
    "/wlx.v1.Federation/Snapshot": frozenset({Role.PEER}),
    "/wlx.v1.Federation/Acknowledge": frozenset({Role.PEER}),
    "/wlx.v1.Federation/RequestDetail": frozenset({Role.PEER}),
    "/wlx.v1.Federation/AnnounceCard": frozenset({Role.PEER}),
    "/wlx.v1.Federation/DeclareAcceptance": frozenset({Role.PEER}),
    "/wlx.v1.Federation/Evaluate": frozenset({Role.PEER}),
    "/wlx.v1.Witness/AddCheckpoint": frozenset({Role.PEER}),
    "/wlx.v1.Lookup/Check": frozenset({Role.OFFICER}),
    "/wlx.v1.Lookup/Screen": frozenset({Role.OFFICER}),
    "/wlx.v1.Lookup/Detail": frozenset({Role.OFFICER}),
    "/wlx.v1.Admin/Status": frozenset({Role.OPERATOR}),
    "/wlx.v1.Admin/SyncNow": frozenset({Role.OPERATOR}),
    "/wlx.v1.Admin/GetAcceptance": frozenset({Role.OPERATOR}),
    "/wlx.v1.Admin/SetAcceptance": frozenset({Role.OPERATOR}),
    "/grpc.health.v1.Health/Check": _ANY,
    "/grpc.health.v1.Health/Watch": _ANY,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": frozenset({Role.OPERATOR}),
}
SERVICE_ROLES: dict[str, frozenset[Role]] = {
    "/wlx.v1.Auditor/": frozenset({Role.AUDITOR}),
}


def roles_for(method: str) -> frozenset[Role]:
    """Roles allowed to call ``method`` (empty: nobody)."""
    if method in METHOD_ROLES:
        return METHOD_ROLES[method]
    for prefix, roles in SERVICE_ROLES.items():
        if method.startswith(prefix):
            return roles
    return frozenset()


@dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    role: Role
    name: str
    """The peer's node id, or the credential's name."""
    serial: str = ""
    """The credential's serial (empty for a peer)."""


REQUIRED_TLS_VERSION = b"TLSv1.3"
"""What ``ssl_tls_version`` in gRPC's auth context must say."""

_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("wlx_caller", default=None)
INSECURE_CALLER = Caller(Role.OPERATOR, "insecure-dev")


def current_caller() -> Caller | None:
    """The caller of the RPC being handled in this thread (None outside one)."""
    return _CALLER.get()


@functools.lru_cache(maxsize=4096)
def _certificate(pem: bytes, ca_cert: bytes) -> tuple[str, str | None]:
    """``(fingerprint, serial if issued by ca_cert else None)`` of a client
    certificate; cached, since the same callers call again and again.

    Raises:
        CryptoError: unreadable certificate.
    """
    fingerprint = tls.fingerprint(pem)
    try:
        return fingerprint, tls.check_issued_by(pem, ca_cert)
    except CryptoError:
        return fingerprint, None


def identify(node: Node, auth_context: Mapping[str, Any]) -> Caller:
    """Map the TLS client certificate of a call to a caller.

    Revocation and expiry are read from the store on every call, so they
    take effect at the caller's next call.

    Raises:
        Unauthenticated: the connection is not TLS 1.3, there is no
            certificate, or it is neither a trusted peer's nor a valid
            credential of this node.
        PermissionDenied: a revoked credential.
    """
    versions = auth_context.get("ssl_tls_version") or []
    if [bytes(v) for v in versions] != [REQUIRED_TLS_VERSION]:
        # gRPC's TLS cannot be told to refuse 1.2 at the handshake; a call over
        # anything but TLS 1.3 is refused here, before anything is read.
        raise Unauthenticated("TLS 1.3 is required")
    certs = auth_context.get("x509_pem_cert") or []
    if not certs:
        raise Unauthenticated("no client certificate")
    try:
        fingerprint, serial = _certificate(bytes(certs[0]), node.ca_cert)
    except CryptoError:
        raise Unauthenticated("unreadable client certificate") from None
    with node.store.read() as tx:
        if serial is None:
            holders = [
                row.node_id
                for row in tx.list_peers()
                if not row.revoked_at and node.card_of(row).tls_fingerprint == fingerprint
            ]
            if len(holders) == 1:
                return Caller(Role.PEER, holders[0])
            if holders:  # never accepted since card_rules; fail closed on an old store
                raise Unauthenticated(f"certificate held by several peers ({', '.join(holders)})")
            raise Unauthenticated("certificate of no trusted peer or credential")
        credential = tx.get_credential(serial)
    if credential is None:
        raise Unauthenticated("unknown credential")
    if credential.revoked_at:
        raise PermissionDenied(f"credential {credential.name} is revoked")
    if credential.expires_at < node.now():
        raise Unauthenticated(f"credential {credential.name} has expired")
    return Caller(credential.role, credential.name, serial)


class RefusalLog:
    """Writes refusals to the exchange log, aggregated (``wlx.node.audit.refusals``):
    the first of a kind at once, the rest of its minute as one entry with their
    count.  Thread-safe."""

    def __init__(self, node: Node, clock: Callable[[], float] = time.monotonic) -> None:
        self._node = node
        self._clock = clock
        self._aggregator = RefusalAggregator()
        self._lock = threading.Lock()

    def refuse(self, kind: RefusalKind) -> None:
        """Count one refusal; write what is due."""
        with self._lock:
            due = self._aggregator.refuse(kind, self._clock(), self._node.now())
        self._write(due)

    def flush_due(self) -> None:
        """Write the counts of windows that have closed."""
        with self._lock:
            due = self._aggregator.due(self._clock())
        self._write(due)

    def drain(self) -> None:
        """Write every pending count (at shutdown)."""
        with self._lock:
            due = self._aggregator.drain()
        self._write(due)

    def _write(self, entries: list[Aggregate]) -> None:
        if not entries:
            return
        try:
            with self._node.store.write() as tx:
                for e in entries:
                    exchange_log.record(
                        tx,
                        self._node,
                        kind=e.kind.event,
                        method=e.kind.method,
                        caller=e.kind.caller,
                        reason=e.kind.reason,
                        count=e.count,
                        first=e.first,
                        last=e.last,
                    )
        except Exception:
            log.exception("could not log %d refusal entries", len(entries))


_REFUSAL_REASONS = {
    grpc.StatusCode.UNAUTHENTICATED: "authentication",
    grpc.StatusCode.PERMISSION_DENIED: "permission",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "rate-limit",
}


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates, authorises and rate-limits every call before its handler."""

    def __init__(self, node: Node, limits: Limits, refusals: RefusalLog | None = None) -> None:
        self._node = node
        self._limits = limits
        self.refusals = refusals or RefusalLog(node)

    def _admit(
        self,
        method: str,
        context: grpc.ServicerContext,
        raw: Any,
        decode: Callable[[Any], Any] | None,
    ) -> tuple[Caller, Any]:
        """Authenticate and authorise the caller, *then* decode its request
        (``raw``, with ``decode``; None: already decoded), then charge it.

        Aborts the call: UNAUTHENTICATED / PERMISSION_DENIED before anything
        is decoded; INVALID_ARGUMENT for a request that does not decode or is
        oversized (nothing charged); RESOURCE_EXHAUSTED when over the limits.
        """
        self.refusals.flush_due()
        if self._node.insecure_dev:
            return INSECURE_CALLER, self._decode(method, "insecure-dev", context, raw, decode)
        try:
            caller = identify(self._node, context.auth_context())
        except (Unauthenticated, PermissionDenied) as exc:
            self._refuse(context, method, context.peer() or "unknown", Event.ACCESS_DENIED, exc)
        who = f"{caller.role.value}:{caller.name}"
        if caller.role not in roles_for(method):
            self._refuse(
                context,
                method,
                who,
                Event.ACCESS_DENIED,
                PermissionDenied(f"{caller.role.value} {caller.name} may not call {method}"),
            )
        request = self._decode(method, who, context, raw, decode)
        try:
            price = _cost(request)
        except UserError as exc:  # oversized: refused before any work or charge
            self._refuse(context, method, who, Event.ACCESS_DENIED, exc)
        # A lookup is charged by the lookup service once its keys are derived
        # (``charge_caller``); here it must afford one token per identifier.
        take = self._limits.afford if _is_lookup(request) else self._limits.charge
        try:
            take(caller.role, caller.name, price)
        except RateLimited as exc:
            self._refuse(context, method, who, Event.THROTTLED, exc)
        return caller, request

    def charge_caller(self, method: str, cost: int) -> None:
        """Charge the caller of the call being handled ``cost`` tokens: a
        lookup's identifier keys, known once they are derived
        (``wlx.node.protocol.lookup_rules``).  A refusal is logged like the
        interceptor's own (metrics, exchange log, aggregated per minute).

        Raises:
            RateLimited: over the caller's limits (nothing is taken).
        """
        caller = current_caller()
        if caller is None or self._node.insecure_dev:
            return
        try:
            self._limits.charge(caller.role, caller.name, cost)
        except RateLimited as exc:
            who = f"{caller.role.value}:{caller.name}"
            log.warning("refused %s from %s: %s", method, who, exc)
            metrics.REFUSALS.labels(_REFUSAL_REASONS[code_for(exc)]).inc()
            self.refusals.refuse(RefusalKind(Event.THROTTLED, method, who, str(exc)))
            raise

    def _decode(
        self,
        method: str,
        who: str,
        context: grpc.ServicerContext,
        raw: Any,
        decode: Callable[[Any], Any] | None,
    ) -> Any:
        """The request message; an undecodable one is refused with one log line."""
        if decode is None:
            return raw
        try:
            return decode(raw)
        except DecodeError:
            pass
        self._refuse(
            context,
            method,
            who,
            Event.ACCESS_DENIED,
            UserError(f"the request is not a valid {method} message (it does not decode)"),
        )

    def _refuse(
        self,
        context: grpc.ServicerContext,
        method: str,
        who: str,
        kind: Event,
        error: WlxError,
    ) -> NoReturn:
        """Refuse the call: log it, count it, write it to the exchange log and
        abort with ``error``'s status (``status_codes.code_for``)."""
        code, why = code_for(error), str(error)
        log.warning("refused %s from %s: %s", method, who, why)
        metrics.REFUSALS.labels(_REFUSAL_REASONS.get(code, "other")).inc()
        self.refusals.refuse(RefusalKind(kind, method, who, why))
        context.abort(code, why)
        raise AssertionError("context.abort returned")  # pragma: no cover

    def _streaming(
        self,
        method: str,
        inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        decode: Callable[[Any], Any] | None,
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        """Wrap a server-streaming handler: admit the caller, then stream."""

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            caller, request = self._admit(method, context, request, decode)
            token = _CALLER.set(caller)
            try:
                yield from inner(request, context)
            finally:
                _CALLER.reset(token)

        return streaming

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            decode = handler.request_deserializer

            def unary_unary(raw: Any, context: grpc.ServicerContext) -> Any:
                caller, request = self._admit(method, context, raw, decode)
                token = _CALLER.set(caller)
                try:
                    return inner_uu(request, context)
                finally:
                    _CALLER.reset(token)

            # The request arrives as bytes: decoded only once the caller is admitted.
            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=None,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream, handler.request_deserializer),
                request_deserializer=None,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream, None),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        # wlx.v1 has no client-streaming method: refuse rather than pass through.
        def refuse(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            self._refuse(
                context,
                method,
                context.peer() or "unknown",
                Event.ACCESS_DENIED,
                PermissionDenied(f"{method} is not served"),
            )

        return grpc.stream_unary_rpc_method_handler(refuse)


def _is_lookup(request: Any) -> bool:
    return isinstance(request, lookup_pb2.CheckRequest | lookup_pb2.ScreenRequest)


def _cost(request: Any) -> int:
    """What a call costs in the rate limit: for a lookup, one per identifier
    presented, what it must afford before its keys are derived
    (``wlx.node.protocol.lookup_rules``); one for any other call.

    Raises:
        UserError: an oversized lookup (refused before anything is charged).
    """
    if isinstance(request, lookup_pb2.CheckRequest):
        return lookup_cost([_identifiers(request.person)])
    if isinstance(request, lookup_pb2.ScreenRequest):
        return lookup_cost([_identifiers(e.person) for e in request.entries])
    return 1


def _identifiers(person: lookup_pb2.Person) -> tuple[int, int]:
    return len(person.names), len(person.documents)
