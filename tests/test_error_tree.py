"""The error tree (issue 12, item 2): one tree, whose fault, and the one
mapping to gRPC codes (``wlx.node.rpc.status_codes``), as tables."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import pytest

from wlx.node.audit.offline.errors import AuditFailure
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
from wlx.node.core.limits import RateLimited
from wlx.node.rpc.status_codes import ANSWERED, code_for, from_rpc_error

S = grpc.StatusCode

CODES: list[tuple[WlxError, grpc.StatusCode]] = [
    (UserError("x"), S.INVALID_ARGUMENT),
    (NotFound("x"), S.NOT_FOUND),
    (AlreadyExists("x"), S.ALREADY_EXISTS),
    (PermissionDenied("x"), S.PERMISSION_DENIED),
    (Unauthenticated("x"), S.UNAUTHENTICATED),
    (Unavailable("x"), S.UNAVAILABLE),
    (Exhausted("x"), S.RESOURCE_EXHAUSTED),
    (RateLimited("x"), S.RESOURCE_EXHAUSTED),
    (InternalError("x"), S.INTERNAL),
    (WlxError("x"), S.INTERNAL),
    (PeerError("x"), S.FAILED_PRECONDITION),
    (AuditFailure("entry 1", "root", "x"), S.FAILED_PRECONDITION),
    (Rejection(RejectReason.MALFORMED, "x"), S.INVALID_ARGUMENT),
    (Rejection(RejectReason.BAD_SIGNATURE, "x"), S.UNAUTHENTICATED),
    (Rejection(RejectReason.WRONG_SENDER, "x"), S.PERMISSION_DENIED),
    # Another node's answer is never our verdict on our caller's input.
    (RemoteRefusal("x"), S.FAILED_PRECONDITION),
    (RemoteNotFound("x"), S.FAILED_PRECONDITION),
    (RemoteUnauthenticated("x"), S.FAILED_PRECONDITION),
    (RemotePermissionDenied("x"), S.FAILED_PRECONDITION),
]


@pytest.mark.parametrize(("error", "code"), CODES, ids=lambda v: type(v).__name__)
def test_code_for(error: WlxError, code: grpc.StatusCode) -> None:
    assert code_for(error) == code


@dataclass
class FakeRpcError(grpc.RpcError):
    status: grpc.StatusCode
    answered: bool = True

    def code(self) -> grpc.StatusCode:
        return self.status

    def details(self) -> str:
        return "why"

    # grpc-stubs types metadata as _Metadatum objects; grpc gives (key, value) tuples.
    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:  # type: ignore[override]
        return (ANSWERED,) if self.answered else ()


# (code the other node answered, class we raise, whether it is its answer)
FROM_RPC: list[tuple[grpc.StatusCode, type[WlxError], bool]] = [
    (S.INVALID_ARGUMENT, RemoteRefusal, True),
    (S.NOT_FOUND, RemoteNotFound, True),
    (S.UNAUTHENTICATED, RemoteUnauthenticated, True),
    (S.PERMISSION_DENIED, RemotePermissionDenied, True),
    (S.UNAVAILABLE, Unavailable, False),
    (S.DEADLINE_EXCEEDED, Unavailable, False),
    (S.RESOURCE_EXHAUSTED, Unavailable, False),
    (S.FAILED_PRECONDITION, PeerError, False),
    (S.INTERNAL, PeerError, False),
]


@pytest.mark.parametrize(("status", "kind", "remote"), FROM_RPC, ids=str)
def test_from_rpc_error(status: grpc.StatusCode, kind: type[WlxError], remote: bool) -> None:
    error = from_rpc_error(FakeRpcError(status), "peer XX")
    assert type(error) is kind
    assert isinstance(error, Remote) is remote
    assert "peer XX" in str(error)


def test_remote_errors_keep_what_the_other_node_said() -> None:
    """A client can still tell "not found" from "refused" (``wlx.client.errors``)."""
    assert isinstance(RemoteNotFound("x"), NotFound)
    assert isinstance(RemoteRefusal("x"), UserError)
    assert isinstance(RemoteUnauthenticated("x"), Unauthenticated)
    assert isinstance(RemotePermissionDenied("x"), PermissionDenied)


def test_every_error_of_the_node_is_in_the_tree() -> None:
    assert issubclass(RateLimited, Exhausted)
    assert issubclass(AuditFailure, PeerError)
    assert issubclass(Rejection, PeerError)
