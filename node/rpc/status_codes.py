"""The one place where node errors become gRPC status codes (and back).

Servers wrap every handler with ``unary`` or ``stream``; clients turn a
failed call into a node error with ``from_rpc_error``.  Unexpected
exceptions become INTERNAL with a generic message (the details go to the
log, not to the caller).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc

from wlx.node.core.errors import (
    AlreadyExists,
    Exhausted,
    InternalError,
    NotFound,
    PeerError,
    PermissionDenied,
    Rejection,
    RejectReason,
    Remote,
    RemoteNotFound,
    RemotePermissionDenied,
    RemoteRefusal,
    RemoteUnauthenticated,
    Unauthenticated,
    Unavailable,
    UserError,
    WlxError,
)
from wlx.node.rpc.netcheck import Endpoint, why_unreachable

log = logging.getLogger("wlx.rpc")

ANSWERED = ("wlx-answered", "1")
"""Trailing metadata on every status a wlx handler sets: the node was reached
and the details are its own words (UNAVAILABLE then means a node *it* calls
is down, not the one called)."""

_REQUEST_REJECTIONS = {
    RejectReason.UNKNOWN_SIGNER: grpc.StatusCode.UNAUTHENTICATED,
    RejectReason.BAD_SIGNATURE: grpc.StatusCode.UNAUTHENTICATED,
    RejectReason.STALE_REQUEST: grpc.StatusCode.UNAUTHENTICATED,
    RejectReason.WRONG_SENDER: grpc.StatusCode.PERMISSION_DENIED,
    RejectReason.WRONG_RECIPIENT: grpc.StatusCode.PERMISSION_DENIED,
}


def code_for(error: WlxError) -> grpc.StatusCode:
    """The gRPC status code of a node error.

    A ``Remote`` error (another node's answer to a call of ours) is
    FAILED_PRECONDITION whatever that node said: our caller is not at fault.
    """
    if isinstance(error, Remote):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(error, Rejection):
        return _REQUEST_REJECTIONS.get(error.reason, grpc.StatusCode.INVALID_ARGUMENT)
    for kind, code in (
        (NotFound, grpc.StatusCode.NOT_FOUND),
        (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
        (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
        (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
        (UserError, grpc.StatusCode.INVALID_ARGUMENT),
        (Unavailable, grpc.StatusCode.UNAVAILABLE),
        (Exhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
        (PeerError, grpc.StatusCode.FAILED_PRECONDITION),
    ):
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _abort(context: grpc.ServicerContext, exc: BaseException, method: str) -> NoReturn:
    context.set_trailing_metadata((ANSWERED,))
    if isinstance(exc, WlxError) and not isinstance(exc, InternalError):
        code = code_for(exc)
        log.info("%s: %s (%s)", method, code.name, exc)
        context.abort(code, str(exc))
    log.exception("%s failed", method)
    context.abort(grpc.StatusCode.INTERNAL, "internal error; see the node's log")


H = TypeVar("H", bound=Callable[..., Any])


def unary(handler: H) -> H:
    """Wrap a unary handler ``(self, request, context)``: errors become statuses."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return handler(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, logged, never leaked
            _abort(context, exc, handler.__name__)

    return wrapper  # type: ignore[return-value]


def stream(handler: H) -> H:
    """Wrap a server-streaming handler: errors while streaming become statuses."""

    @functools.wraps(handler)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from handler(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped, logged, never leaked
            _abort(context, exc, handler.__name__)

    return wrapper  # type: ignore[return-value]


def _answered(error: grpc.RpcError) -> bool:
    metadata: Any = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    return any(tuple(item) == ANSWERED for item in metadata or ())


def from_rpc_error(error: grpc.RpcError, target: str, endpoint: Endpoint | None = None) -> WlxError:
    """A node error for a failed call to ``target``, saying whose fault it is.

    What ``target`` answered is a ``Remote`` error (``RemoteRefusal``,
    ``RemoteNotFound``, ``RemoteUnauthenticated``, ``RemotePermissionDenied``)
    or a ``PeerError``, never one of our own verdicts; a call that failed
    for want of an answer (unreachable, timed out, over its limits) is
    ``Unavailable``.

    A call that never reached a node is diagnosed (``netcheck``) when the
    ``endpoint`` is given: nothing listening, timed out, not trusted, or our
    certificate refused.  A node that answered UNAVAILABLE speaks for itself
    (a peer *it* needed is down).
    """
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        if _answered(error):
            return Unavailable(f"{target} answered: {details}")
        if endpoint is not None:
            return Unavailable(f"{target}: {why_unreachable(endpoint)}")
        return Unavailable(
            f"{target} is unreachable, or refused our TLS certificate (is this node trusted "
            "there, with its current card?)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable(f"{target} did not answer in time (timed out)")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return RemoteRefusal(f"{target} refused the request: {details}")
    if code == grpc.StatusCode.NOT_FOUND:
        return RemoteNotFound(f"{target}: {details}")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return RemoteUnauthenticated(f"{target} did not accept our credentials: {details}")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return RemotePermissionDenied(f"{target} refused: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Unavailable(f"{target} is over its limits: {details}")
    return PeerError(f"{target} failed: {code.name} {details}")
