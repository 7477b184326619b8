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
from enum import StrEnum
from typing import Any, NoReturn

import grpc

from wlx.crypto import tls
from wlx.crypto.errors import CryptoError
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.limits import Limits, RateLimited
from wlx.node.core.node import Node

log = logging.getLogger("wlx.auth")


class Role(StrEnum):
    """What a caller may do."""

    PEER = "peer"
    OFFICER = "officer"
    AUDITOR = "auditor"
    OPERATOR = "operator"


ISSUABLE_ROLES = (Role.OFFICER, Role.AUDITOR, Role.OPERATOR)

_ANY = frozenset(Role)
METHOD_ROLES: dict[str, frozenset[Role]] = {
    "/wlx.v1.Federation/Pull": frozenset({Role.PEER}),
    "/wlx.v1.Federation/Snapshot": frozenset({Role.PEER}),
    "/wlx.v1.Federation/Acknowledge": frozenset({Role.PEER}),
    "/wlx.v1.Federation/RequestDetail": frozenset({Role.PEER}),
    "/wlx.v1.Federation/AnnounceCard": frozenset({Role.PEER}),
    "/wlx.v1.Witness/AddCheckpoint": frozenset({Role.PEER}),
    "/wlx.v1.Lookup/Check": frozenset({Role.OFFICER}),
    "/wlx.v1.Lookup/Screen": frozenset({Role.OFFICER}),
    "/wlx.v1.Lookup/Detail": frozenset({Role.OFFICER}),
    "/wlx.v1.Admin/Status": frozenset({Role.OPERATOR}),
    "/wlx.v1.Admin/SyncNow": frozenset({Role.OPERATOR}),
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


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("wlx_caller", default=None)
INSECURE_CALLER = Caller(Role.OPERATOR, "insecure-dev")


def current_caller() -> Caller | None:
    """The caller of the RPC being handled in this thread (None outside one)."""
    return _CALLER.get()


class Denied(Exception):
    """The caller may not do this; ``code`` is the gRPC status to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


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
        Denied: UNAUTHENTICATED when there is no certificate, or it is
            neither a trusted peer's nor a valid credential of this node;
            PERMISSION_DENIED for a revoked credential.
    """
    certs = auth_context.get("x509_pem_cert") or []
    if not certs:
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, "no client certificate")
    try:
        fingerprint, serial = _certificate(bytes(certs[0]), node.ca_cert)
    except CryptoError:
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, "unreadable client certificate") from None
    with node.store.read() as tx:
        if serial is None:
            for row in tx.list_peers():
                if row.revoked_at:
                    continue
                card = node.card_of(row)
                if card.tls_fingerprint == fingerprint:
                    return Caller(Role.PEER, card.node_id)
            raise Denied(
                grpc.StatusCode.UNAUTHENTICATED, "certificate of no trusted peer or credential"
            )
        credential = tx.get_credential(serial)
    if credential is None:
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, "unknown credential")
    if credential.revoked_at:
        raise Denied(grpc.StatusCode.PERMISSION_DENIED, f"credential {credential.name} is revoked")
    if credential.expires_at < node.now():
        raise Denied(grpc.StatusCode.UNAUTHENTICATED, f"credential {credential.name} has expired")
    return Caller(Role(credential.role), credential.name, serial)


class _DenialLog:
    """Logs refusals to the exchange log, at most once a minute per caller and reason."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def should_log(self, who: str, why: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get((who, why), -1e9) < 60:
                return False
            self._last[(who, why)] = now
            if len(self._last) > 10_000:
                self._last.clear()
        return True


class AuthInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates, authorises and rate-limits every call before its handler."""

    def __init__(self, node: Node, limits: Limits) -> None:
        self._node = node
        self._limits = limits
        self._denials = _DenialLog()

    def _admit(self, method: str, context: grpc.ServicerContext, cost: Callable[[], int]) -> Caller:
        if self._node.insecure_dev:
            return INSECURE_CALLER
        try:
            caller = identify(self._node, context.auth_context())
        except Denied as exc:
            self._refuse(
                context,
                method,
                context.peer() or "unknown",
                Event.ACCESS_DENIED,
                exc.code,
                str(exc),
            )
        who = f"{caller.role.value}:{caller.name}"
        if caller.role not in roles_for(method):
            self._refuse(
                context,
                method,
                who,
                Event.ACCESS_DENIED,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{caller.role.value} {caller.name} may not call {method}",
            )
        try:
            self._limits.charge(caller.role, caller.name, cost())
        except RateLimited as exc:
            self._refuse(
                context, method, who, Event.THROTTLED, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
            )
        return caller

    def _refuse(
        self,
        context: grpc.ServicerContext,
        method: str,
        who: str,
        kind: Event,
        code: grpc.StatusCode,
        why: str,
    ) -> NoReturn:
        log.warning("refused %s from %s: %s", method, who, why)
        if self._denials.should_log(who, why):
            try:
                with self._node.store.write() as tx:
                    exchange_log.append(
                        tx,
                        node=self._node.node_id,
                        time=self._node.now(),
                        kind=kind,
                        method=method,
                        caller=who,
                        reason=why,
                    )
            except Exception:
                log.exception("could not log a refusal")
        context.abort(code, why)
        raise AssertionError("context.abort returned")  # pragma: no cover

    def _streaming(
        self, method: str, inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        """Wrap a server-streaming handler: admit the caller, then stream."""

        def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            caller = self._admit(method, context, lambda: 1)
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

            def unary_unary(request: Any, context: grpc.ServicerContext) -> Any:
                caller = self._admit(method, context, lambda: _cost(request))
                token = _CALLER.set(caller)
                try:
                    return inner_uu(request, context)
                finally:
                    _CALLER.reset(token)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream),
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
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} is not served",
            )

        return grpc.stream_unary_rpc_method_handler(refuse)


def _cost(request: Any) -> int:
    """What a call costs in the rate limit: one per person looked up."""
    entries = getattr(request, "entries", None)
    if entries is not None and not isinstance(entries, (str, bytes)):
        return max(1, len(entries))
    return 1
