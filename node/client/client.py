"""``Client``: a border system's connection to its wlx node.

One gRPC channel (mutual TLS, the node's certificate pinned by the
credential) is opened once and reused by every call; gRPC channels and
stubs are thread-safe, so one ``Client`` may be shared by many threads.
Every call has a deadline (``timeout`` seconds, per call or the client's
default).  Failures raise the errors of ``wlx.client.errors``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from wlx.client.errors import ClientError, CredentialError, InvalidRequest, translate
from wlx.client.types import DetailResult, Entry, Hit, ScreenResult, query_of
from wlx.node.core import entries as core_entries
from wlx.node.core.config import check_address
from wlx.node.core.errors import UserError, WlxError
from wlx.node.protocol.lookup_rules import MAX_SCREEN_ENTRIES
from wlx.node.report import NodeStatus
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.transport import Credential, client_channel, client_endpoint
from wlx.node.rpc.wire import hit_from_pb, query_to_pb, status_from_pb
from wlx.v1 import admin_pb2, admin_pb2_grpc, lookup_pb2, lookup_pb2_grpc

DEFAULT_TIMEOUT = 10.0
"""Seconds for a lookup; a screening batch gets 6 times, a detail request 4 times."""
T = TypeVar("T")


class Client:
    """A connection to one node, for officers' (lookup, screen, detail) and
    operators' (status, sync) calls."""

    def __init__(
        self,
        address: str,
        credential: Credential | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        batch_size: int = MAX_SCREEN_ENTRIES,
    ) -> None:
        """Connect (lazily) to ``address`` with ``credential``.

        ``credential=None`` is plaintext without authentication, for a node
        run with ``--insecure-dev`` only.

        Raises:
            InvalidRequest: ``address`` is not HOST:PORT, or a bad batch size.
        """
        try:
            self.address = check_address(address)
        except UserError as exc:
            raise InvalidRequest(str(exc)) from None
        if not 1 <= batch_size <= MAX_SCREEN_ENTRIES:
            raise InvalidRequest(f"a screening batch holds 1 to {MAX_SCREEN_ENTRIES} entries")
        self.credential = credential
        self.timeout = timeout
        self.batch_size = batch_size
        self.last_not_checked: tuple[tuple[str, str], ...] = ()
        """After ``lookup``: ``(origin, reason)`` of origins whose online-tier
        listings could not be checked (docs/protocol.md §15.6)."""
        self._channel = client_channel(self.address, credential)
        self._endpoint = client_endpoint(self.address, credential)
        self._lookup = lookup_pb2_grpc.LookupStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)
        self._closed = False
        self._lock = threading.Lock()

    @classmethod
    def from_credential(
        cls, path: str | Path, address: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Client:
        """A client for the node named in the credential file at ``path``
        (``wlx credential issue``); ``address`` overrides the one it names.

        Raises:
            CredentialError: no such file, readable by others, or not a credential.
            InvalidRequest: a bad address.
        """
        try:
            credential = Credential.load(Path(path))
        except UserError as exc:
            raise CredentialError(str(exc)) from None
        return cls(address or credential.address, credential, timeout=timeout)

    # ------------------------------------------------------------ officer calls

    def lookup(
        self,
        *,
        names: Iterable[str] = (),
        dob: str = "",
        documents: Iterable[core_entries.Document | str | Sequence[str]] = (),
        mrz: str | None = None,
        purpose: str = "border-check",
        timeout: float | None = None,
    ) -> list[Hit]:
        """Every hit for one person, strongest match first (empty: no hit).

        ``documents`` are ``"TYPE:COUNTRY:NUMBER"`` strings, triples or
        ``Document``; ``mrz`` is the 2 or 3 lines of a machine-readable zone,
        whose name, date of birth and document are added to the query.

        Raises:
            InvalidRequest: no usable identifier, a malformed document or MRZ
                (naming the field), or no purpose.
            AccessDenied, NodeUnavailable, NodeError: see ``wlx.client``.
        """
        query = query_of(Entry.build("", names=names, dob=dob, documents=documents, mrz=mrz))
        self._check(query.keys)  # the node's own message, without a round trip
        request = lookup_pb2.CheckRequest(person=query_to_pb(query), purpose=purpose)
        response = self._call(self._lookup.Check, request, timeout)
        self.last_not_checked = tuple((n.origin, n.reason) for n in response.not_checked)
        return [hit_from_pb(h) for h in response.hits]

    def screen(
        self,
        entries: Iterable[core_entries.Entry],
        *,
        purpose: str = "manifest-screening",
        timeout: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[ScreenResult]:
        """Screen many people (a manifest): one result per entry, in order.

        Entries are sent in batches of at most ``batch_size`` (the node's cap
        is 2,000 per call), each call with its own deadline; ``progress`` is
        called with the number of entries done after each batch.  An entry
        the node cannot check gets a result with ``error`` set.

        Raises:
            InvalidRequest: no purpose; AccessDenied, NodeUnavailable, NodeError.
        """
        items = list(entries)
        results: list[ScreenResult] = []
        for start in range(0, len(items), self.batch_size):
            batch = items[start : start + self.batch_size]
            request = lookup_pb2.ScreenRequest(
                entries=[
                    lookup_pb2.ScreenEntry(id=e.id, person=query_to_pb(query_of(e))) for e in batch
                ],
                purpose=purpose,
            )
            response = self._call(self._lookup.Screen, request, timeout or self.timeout * 6)
            if len(response.results) != len(batch):
                raise translate(WlxError("the node answered a different number of entries"))
            results.extend(
                ScreenResult(
                    id=r.id,
                    hits=tuple(hit_from_pb(h) for h in r.hits),
                    error=r.error,
                    not_checked=tuple((n.origin, n.reason) for n in r.not_checked),
                )
                for r in response.results
            )
            if progress is not None:
                progress(len(results))
        return results

    def detail(
        self,
        ref: str,
        *,
        purpose: str,
        case: str = "",
        origin: str | None = None,
        timeout: float | None = None,
    ) -> DetailResult:
        """Ask the origin of a recent hit for the full record ``ref``.

        ``origin`` defaults to the origin of this credential's recent hit with
        that ref.  A denial is a result (``granted=False`` and the origin's
        reason), not an exception.

        Raises:
            InvalidRequest: no purpose or ref; NotFound; AccessDenied;
                NodeUnavailable (the node or the origin); NodeError.
        """
        request = lookup_pb2.DetailQuery(
            origin=origin or "", ref=ref, purpose=purpose, case_id=case
        )
        result = self._call(self._lookup.Detail, request, timeout or self.timeout * 4)
        if not result.granted:
            return DetailResult(granted=False, denial=result.denial)
        try:
            record: dict[str, Any] = json.loads(result.record_json)
        except ValueError:
            raise translate(WlxError("the node sent a record that is not JSON")) from None
        return DetailResult(granted=True, record=record)

    # ------------------------------------------------------------ operator calls

    def status(self, *, timeout: float | None = None) -> NodeStatus:
        """Where the node stands with each peer (operator credential).

        Raises:
            AccessDenied: not an operator credential; NodeUnavailable; NodeError.
        """
        response = self._call(self._admin.Status, admin_pb2.StatusRequest(), timeout)
        return status_from_pb(response)

    def sync(self, *, timeout: float | None = None) -> list[str]:
        """Make the node pull from every peer now; one report line per peer
        (operator credential).  Waits for the round (default deadline: 30 x timeout).

        Raises:
            AccessDenied, NodeUnavailable, NodeError.
        """
        response = self._call(
            self._admin.SyncNow, admin_pb2.SyncNowRequest(), timeout or self.timeout * 30
        )
        return list(response.reports)

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        """Close the channel; later calls raise ``ClientError``."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _check(validate: Callable[[], object]) -> None:
        try:
            validate()
        except UserError as exc:
            raise InvalidRequest(str(exc)) from None

    def _call(self, method: Callable[..., T], request: object, timeout: float | None) -> T:
        if self._closed:
            raise ClientError("this client is closed")
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            error = from_rpc_error(exc, f"your node at {self.address}", self._endpoint)
            raise translate(error) from None
        except ValueError as exc:  # grpc raises this on a channel closed meanwhile
            raise ClientError(f"this client is closed ({exc})") from None
