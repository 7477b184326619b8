"""Pulling from peers: the client side of the federation protocol (§8).

``sync_peer`` pulls one origin until the node is up to date with it,
following ``wlx.node.protocol.pull_loop.PullLoop``: a snapshot (continuing
a staged one) whenever the origin says the cursor cannot continue.  Each
batch is applied (or rejected) on its own; a rejection stops this round for
that origin, so nothing after a bad batch is applied, and every rejection is
recorded.  ``sync_all`` does every peer, holding the node's sync lock: one
sync at a time across all of the node's processes.  ``wlx.node.daemon``
runs it on an interval.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, cast

import grpc

from wlx.crypto.signing import Purpose
from wlx.node.core import metrics
from wlx.node.core.errors import (
    PeerError,
    Rejected,
    Rejection,
    RejectReason,
    Unavailable,
    WlxError,
)
from wlx.node.core.node import Node
from wlx.node.incoming import receiver
from wlx.node.protocol import codec
from wlx.node.protocol.envelopes import sign_message
from wlx.node.protocol.messages import PullParams, Sealed, SnapshotParams, SnapshotResume
from wlx.node.protocol.pull_loop import FetchSnapshot, Finish, GiveUp, PullLoop
from wlx.node.rpc.acceptance_client import deliver_acceptance
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.transport import peer_channel, peer_endpoint
from wlx.node.store.base import PeerRow
from wlx.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc

log = logging.getLogger("wlx.sync")

BATCHES_PER_PULL = 50
MAX_PULLS_PER_SYNC = 10_000
CALL_TIMEOUT = 120.0
SNAPSHOT_TIMEOUT = 3_600.0
"""A snapshot streams for as long as the list takes (each part is verified
and staged as it arrives; an interrupted one resumes)."""
SYNC_LOCK_WAIT = 3_600.0


@dataclass(frozen=True)
class SyncReport:
    """What one sync with one peer did."""

    peer: str
    batches: int = 0
    ops: int = 0
    duplicates: int = 0
    snapshot_entries: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _signed(node: Node, payload: bytes, purpose: Purpose, peer: str) -> envelope_pb2.SignedMessage:
    msg = sign_message(payload, purpose, signer=node.node_id, key=node.signing_key, recipient=peer)
    return codec.encode_signed(msg.payload, msg.signature, msg.signer, msg.recipient, msg.purpose)


def _pull_request(node: Node, peer: str) -> federation_pb2.PullRequest:
    cursor = receiver.cursor(node, peer)
    params = PullParams(
        requester=node.node_id,
        origin=peer,
        epoch=cursor.epoch if cursor else 0,
        after_seq=cursor.seq if cursor else 0,
        after_digest=cursor.digest if cursor else b"",
        issued_at=node.now(),
        nonce=node.rng(codec.NONCE_BYTES),
        max_batches=BATCHES_PER_PULL,
    )
    return federation_pb2.PullRequest(
        request=_signed(node, codec.encode_pull_params(params), Purpose.PULL, peer)
    )


def _snapshot_parts(
    node: Node,
    stub: federation_pb2_grpc.FederationStub,
    peer: str,
    resume: SnapshotResume | None = None,
) -> Generator[Sealed]:
    params = SnapshotParams(
        node.node_id, peer, node.now(), node.rng(codec.NONCE_BYTES), resume=resume
    )
    request = federation_pb2.SnapshotRequest(
        request=_signed(node, codec.encode_snapshot_params(params), Purpose.SNAPSHOT, peer)
    )
    stream: Any = stub.Snapshot(request, timeout=SNAPSHOT_TIMEOUT)
    messages: Iterator[envelope_pb2.SealedEnvelope] = iter(stream)
    try:
        for msg in prefetch(messages, PREFETCH_PARTS):
            yield codec.decode_sealed(msg)
    finally:
        stream.cancel()  # stop the origin if we stop early (a rejected part)


PREFETCH_PARTS = 4
T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int) -> Generator[T]:
    """Iterate ``items`` in a helper thread, up to ``depth`` ahead of the consumer.

    While the consumer applies one snapshot part, the next ones are already
    being made and sent, instead of waiting for the consumer's read; memory
    stays bounded by ``depth`` parts.  An exception of ``items`` is re-raised
    at the point the consumer reaches it.
    """
    buffer: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[str, object]) -> bool:
        """Put ``entry`` unless the consumer has gone; False if it has."""
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fill() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            offer(("error", exc))

    thread = threading.Thread(target=fill, name="wlx-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield cast(T, value)
    finally:
        stop.set()


def sync_peer(node: Node, peer: PeerRow) -> SyncReport:
    """Pull from one peer until up to date; never raises for the peer's faults.

    The caller holds the node's sync lock (``sync_all`` takes it).  Follows
    ``PullLoop`` (docs/protocol.md §8.3).  Returns a report; ``error`` says
    why the sync stopped early (peer unreachable, a rejected batch, a
    protocol violation).  Every rejection is recorded where it is decided.
    """
    progress = _Progress()
    try:
        card = node.trusted(peer.node_id)
        if card is None:
            raise PeerError(f"{peer.node_id} is not a trusted peer")
        with peer_channel(node, card, peer.address) as channel:
            stub = federation_pb2_grpc.FederationStub(channel)
            deliver_acceptance(node, stub, peer.node_id)  # its removals come with this pull
            _follow_pull_loop(node, stub, peer.node_id, progress)
            deliver_receipts(node, stub, peer.node_id)
    except grpc.RpcError as exc:
        return _failed(node, peer, _rpc_failure(node, peer, exc), progress)
    except WlxError as exc:  # a Rejection was recorded where it was decided
        return _failed(node, peer, str(exc), progress)
    with node.store.write() as tx:
        tx.set_sync_status(peer.node_id, at=node.now(), error=None)
    return progress.report(peer.node_id)


@dataclass
class _Progress:
    """What a sync with one peer has done so far (reported even if it fails)."""

    batches: int = 0
    ops: int = 0
    duplicates: int = 0
    snapshot_entries: int | None = None

    def report(self, peer: str, error: str = "") -> SyncReport:
        return SyncReport(
            peer, self.batches, self.ops, self.duplicates, self.snapshot_entries, error
        )


def _follow_pull_loop(
    node: Node, stub: federation_pb2_grpc.FederationStub, peer: str, progress: _Progress
) -> None:
    """Pull (and fetch snapshots) as ``PullLoop`` says until it finishes.

    Raises:
        PeerError: the loop gave up on the peer.
        Rejection: a batch, snapshot part or response was refused (recorded).
    """
    loop = PullLoop(max_batches=BATCHES_PER_PULL, max_pulls=MAX_PULLS_PER_SYNC)
    while True:
        step = loop.next
        if isinstance(step, GiveUp):
            raise PeerError(f"{peer} {step.error}")
        if isinstance(step, Finish):
            return
        if isinstance(step, FetchSnapshot):
            log.info("%s asks for a resync (%s); fetching a snapshot", peer, step.reason)
            result = receiver.apply_snapshot(
                node,
                peer,
                lambda resume: _snapshot_parts(node, stub, peer, resume),
            )
            progress.snapshot_entries = result.entries
            loop.snapshot_applied()
            continue
        pulled = _pull_once(node, stub, peer)
        progress.batches += pulled.applied
        progress.duplicates += pulled.duplicates
        progress.ops += pulled.ops
        loop.pulled(batches=pulled.applied + pulled.duplicates, resync=pulled.resync)


def _rpc_failure(node: Node, peer: PeerRow, exc: grpc.RpcError) -> str:
    """What a failed call to ``peer`` means, naming the endpoint it was made to."""
    card = node.trusted(peer.node_id)
    endpoint = peer_endpoint(node, card, peer.address) if card is not None else None
    return str(from_rpc_error(exc, f"peer {peer.node_id} at {peer.address}", endpoint))


@dataclass(frozen=True)
class _Pulled:
    applied: int = 0
    duplicates: int = 0
    ops: int = 0
    resync: str | None = None


def _pull_once(node: Node, stub: federation_pb2_grpc.FederationStub, peer: str) -> _Pulled:
    """One ``Pull`` call: record the head, apply each batch, or note a resync.

    Raises:
        Rejection: a response item or batch was refused (recorded).
    """
    applied = duplicates = ops = 0
    for response in stub.Pull(_pull_request(node, peer), timeout=CALL_TIMEOUT):
        kind = response.WhichOneof("item")
        if kind == "head":
            _record_head(node, peer, response.head.epoch, response.head.last_seq)
            continue
        if kind == "resync":
            return _Pulled(applied, duplicates, ops, response.resync.reason)
        if kind != "batch":
            empty = Rejection(RejectReason.MALFORMED, "empty pull response")
            _reject(node, peer, Rejected.RESPONSE, empty)
        try:
            sealed = codec.decode_sealed(response.batch)
        except Rejection as rejection:
            _reject(node, peer, Rejected.BATCH, rejection)
        result = receiver.apply_batch(node, peer, sealed)  # records its own rejections
        duplicates += 1 if result.duplicate else 0
        applied += 0 if result.duplicate else 1
        ops += result.ops
    return _Pulled(applied, duplicates, ops)


def _reject(node: Node, peer: str, what: Rejected, rejection: Rejection) -> NoReturn:
    receiver.record_rejection(node, peer, what, rejection)
    raise rejection


def _record_head(node: Node, peer: str, epoch: int, last_seq: int) -> None:
    with node.store.write() as tx:
        state = tx.get_inbound(peer)
        if state is not None and state.epoch in (0, epoch):
            tx.set_origin_head(peer, last_seq)


RECEIPTS_PER_CALL = 500


def deliver_receipts(node: Node, stub: federation_pb2_grpc.FederationStub, peer: str) -> int:
    """Send the peer the receipts made for what was applied of its list.

    Receipts are made (and kept) in the transaction that applied the batch;
    they are forgotten once the origin has taken them.  An origin that does
    not answer gets them at the next sync.  Returns how many were delivered.
    """
    delivered = 0
    while True:
        with node.store.read() as tx:
            pending = tx.pending_receipts(peer, RECEIPTS_PER_CALL)
        if not pending:
            return delivered
        request = federation_pb2.AcknowledgeRequest(
            receipts=[envelope_pb2.SignedMessage.FromString(signed) for _, signed in pending]
        )
        stub.Acknowledge(request, timeout=CALL_TIMEOUT)
        with node.store.write() as tx:
            tx.delete_pending_receipts([i for i, _ in pending])
        delivered += len(pending)
        if len(pending) < RECEIPTS_PER_CALL:
            return delivered


def _failed(node: Node, peer: PeerRow, error: str, progress: _Progress) -> SyncReport:
    """Count, log and store the failure of a sync; the report of what it did."""
    metrics.SYNC_FAILURES.labels(peer.node_id).inc()
    log.warning("sync with %s stopped: %s", peer.node_id, error)
    try:
        with node.store.write() as tx:
            tx.set_sync_status(peer.node_id, at=node.now(), error=error)
    except Unavailable:
        pass  # the node is shutting down: the status is not worth waiting for
    return progress.report(peer.node_id, error)


def describe(report: SyncReport) -> str:
    """One line for a report: "RU: ok, 2 batches, 5 changes" or "RU: failed: ..."."""
    if not report.ok:
        return f"{report.peer}: failed: {report.error}"
    snapshot = (
        f", snapshot of {report.snapshot_entries} listings"
        if report.snapshot_entries is not None
        else ""
    )
    batches = f"{report.batches} batch{'es' if report.batches != 1 else ''}"
    changes = f"{report.ops} change{'s' if report.ops != 1 else ''}"
    return f"{report.peer}: ok, {batches}, {changes}{snapshot}"


SYNC_LOCK = "sync"


def sync_all(
    node: Node,
    only: str | None = None,
    *,
    wait: float = SYNC_LOCK_WAIT,
    on_wait: Callable[[], None] | None = None,
) -> list[SyncReport]:
    """Sync with every trusted peer (or just ``only``), one after another.

    Holds the node's sync lock meanwhile, across processes: a ``wlx sync``
    beside a serving node waits for the server's round instead of racing its
    cursor and staged snapshot (``on_wait`` is called once if it must wait).

    Raises:
        Unavailable: another process kept the lock for ``wait`` seconds.
    """
    with node.store.read() as tx:
        peers = [
            p for p in tx.list_peers() if not p.revoked_at and (only is None or p.node_id == only)
        ]
    if not peers:
        return []
    with _sync_lock(node, wait, on_wait):
        return [sync_peer(node, peer) for peer in peers]


def _sync_lock(node: Node, wait: float, on_wait: Callable[[], None] | None) -> ExitStack:
    stack = ExitStack()
    try:
        stack.enter_context(node.store.exclusive(SYNC_LOCK, timeout=0))
    except Unavailable:
        if on_wait is not None:
            on_wait()
        stack.enter_context(node.store.exclusive(SYNC_LOCK, timeout=wait))
    return stack
