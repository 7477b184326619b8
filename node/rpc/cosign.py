"""Getting the node's checkpoints cosigned by its peers (the log's side of §4).

``checkpoint_round`` makes a checkpoint when the log grew and sends the
latest one to every trusted peer that has not cosigned it, with a
consistency proof from the last checkpoint that peer cosigned.  Each
cosignature is verified with the peer's card before it is kept.  It runs
after each sync round (``wlx.node.daemon.SyncLoop``) and on demand
(``wlx audit checkpoint``); it never raises for a peer's fault.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from wlx.crypto.card import IdentityCard
from wlx.crypto.checkpoint import verify_cosignature
from wlx.crypto.errors import CryptoError
from wlx.node.audit import exchange_log
from wlx.node.audit.checkpoints import make_checkpoint
from wlx.node.audit.exchange_log import RESTORED_ENTRY_META
from wlx.node.audit.offline.names import checkpoint_text, witness_verifier
from wlx.node.core.errors import PeerError, WlxError
from wlx.node.core.node import Node
from wlx.node.rpc.status_codes import from_rpc_error
from wlx.node.rpc.transport import peer_channel
from wlx.node.store.base import CheckpointRow, CosignatureRow, PeerRow, Tx
from wlx.v1 import audit_pb2, audit_pb2_grpc

log = logging.getLogger("wlx.audit")

CALL_TIMEOUT = 10.0
MAX_ATTEMPTS = 3

Send = Callable[
    [Node, IdentityCard, str, audit_pb2.AddCheckpointRequest], audit_pb2.AddCheckpointResponse
]
"""Sends an add-checkpoint request to the peer of a card at an address;
raises ``grpc.RpcError``."""


def send_add_checkpoint(
    node: Node, card: IdentityCard, address: str, request: audit_pb2.AddCheckpointRequest
) -> audit_pb2.AddCheckpointResponse:
    """Call the peer's ``Witness.AddCheckpoint`` over the node's peer transport."""
    with peer_channel(node, card, address) as channel:
        return audit_pb2_grpc.WitnessStub(channel).AddCheckpoint(request, timeout=CALL_TIMEOUT)


@dataclass(frozen=True)
class WitnessReport:
    """What one peer did with the node's latest checkpoint."""

    witness: str
    size: int
    """Size of the checkpoint sent."""
    error: str = ""
    already: bool = False
    """The peer had cosigned it before; nothing was sent."""

    @property
    def ok(self) -> bool:
        return not self.error


def describe(report: WitnessReport) -> str:
    """One line: "RU: cosigned size 42" or "RU: failed: ..."."""
    if report.error:
        return f"{report.witness}: failed: {report.error}"
    done = "had cosigned" if report.already else "cosigned"
    return f"{report.witness}: {done} size {report.size}"


def request_cosignature(
    node: Node, peer: PeerRow, checkpoint: CheckpointRow, send: Send = send_add_checkpoint
) -> WitnessReport:
    """Have ``peer`` cosign ``checkpoint`` (or a later one, if it knows a larger
    size); keep the verified cosignature.  Never raises for the peer's fault."""
    card = node.trusted(peer.node_id)
    if card is None:
        return WitnessReport(peer.node_id, checkpoint.size, "not a trusted peer")
    with node.store.read() as tx:
        old_size = tx.last_cosigned_size(peer.node_id)
    if old_size == checkpoint.size:
        return WitnessReport(peer.node_id, checkpoint.size, already=True)
    try:
        for _ in range(MAX_ATTEMPTS):
            with node.store.read() as tx:
                proof = (
                    exchange_log.consistency_proof(tx, old_size, checkpoint.size)
                    if old_size <= checkpoint.size
                    else []  # the witness will refuse: our log is below what it cosigned
                )
                restore = _restore_declaration(tx, old_size, checkpoint.size)
            response = send(
                node,
                card,
                peer.address,
                audit_pb2.AddCheckpointRequest(
                    checkpoint=checkpoint.note,
                    old_size=old_size,
                    consistency_proof=proof,
                    restore=restore,
                ),
            )
            if response.WhichOneof("result") == "cosignature":
                line = response.cosignature
                timestamp = verify_cosignature(
                    checkpoint_text(node.node_id, checkpoint.size, checkpoint.root),
                    line,
                    witness_verifier(peer.node_id, card.sign_key),
                )
                with node.store.write() as tx:
                    tx.add_cosignature(
                        CosignatureRow(checkpoint.size, peer.node_id, line, timestamp)
                    )
                return WitnessReport(peer.node_id, checkpoint.size)
            if response.WhichOneof("result") != "conflict_size":
                raise PeerError("empty answer")
            old_size = response.conflict_size
            if old_size > checkpoint.size:
                # The witness cosigned a larger checkpoint than this one: a newer
                # checkpoint of ours (made concurrently), or our log was rolled back.
                with node.store.read() as tx:
                    latest = tx.latest_checkpoint()
                if latest is not None and latest.size >= old_size:
                    checkpoint = latest
        raise PeerError(f"no agreement on the last cosigned size after {MAX_ATTEMPTS} attempts")
    except grpc.RpcError as exc:
        error: WlxError = from_rpc_error(exc, f"witness {peer.node_id} at {peer.address}")
    except CryptoError as exc:
        error = PeerError(f"bad cosignature ({exc})")
    except WlxError as exc:
        error = exc
    log.warning("witness %s did not cosign size %d: %s", peer.node_id, checkpoint.size, error)
    return WitnessReport(peer.node_id, checkpoint.size, str(error))


def _restore_declaration(tx: Tx, old_size: int, size: int) -> audit_pb2.RestoreDeclaration | None:
    """The node's last restore declaration, for a witness that has not yet
    cosigned a checkpoint including it (its last cosigned size is below it)."""
    raw = tx.get_meta(RESTORED_ENTRY_META)
    if raw is None:
        return None
    index = int(raw)
    if not old_size <= index < size:
        return None
    [(_, entry)] = tx.audit_entries(index, index + 1)
    return audit_pb2.RestoreDeclaration(
        entry=entry, index=index, inclusion_proof=exchange_log.inclusion_proof(tx, index, size)
    )


def checkpoint_round(
    node: Node, only: str | None = None, send: Send = send_add_checkpoint
) -> tuple[CheckpointRow, list[WitnessReport]]:
    """Checkpoint the log if it grew, and have every trusted peer (or just
    ``only``) cosign the latest checkpoint.  Returns it and one report per peer.

    Raises:
        InternalError: the log is smaller than its latest checkpoint.
    """
    checkpoint = make_checkpoint(node)
    with node.store.read() as tx:
        peers = [p for p in tx.list_peers() if only is None or p.node_id == only]
    reports = [
        request_cosignature(node, peer, checkpoint, send)
        for peer in peers
        if node.trusted(peer.node_id) is not None
    ]
    return checkpoint, reports
