"""The origin side of acceptance: a peer declares which categories it holds.

docs/protocol.md §6.6.  A verified declaration is stored and logged
(``acceptance.received``) in the transaction that sends the peer removals of
what it no longer holds, and what it holds again (``origin.refilter``); from
then on the origin's stream to that peer leaves the declined categories out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wlx.crypto.signing import Purpose
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import Rejected, Rejection
from wlx.node.core.node import Node
from wlx.node.core.policy import SharingPolicy
from wlx.node.outgoing import origin
from wlx.node.protocol.acceptance_rules import (
    Outcome,
    PeerFilter,
    check_declaration,
    decode_declaration,
)
from wlx.node.protocol.envelopes import verify_request
from wlx.node.protocol.messages import SignedRequest
from wlx.node.store.base import DECLARED, AcceptanceRow, PeerRow, RejectionRow, Tx

log = logging.getLogger("wlx.acceptance")


@dataclass(frozen=True)
class Applied:
    """What the origin did with a declaration."""

    version: int
    removed: int = 0
    added: int = 0
    outcome: Outcome = Outcome.APPLY


def _held(tx: Tx, peer: str) -> tuple[int, AcceptancePolicy] | None:
    row = tx.get_acceptance(peer, DECLARED)
    return (row.version, AcceptancePolicy.from_json(row.policy)) if row is not None else None


def _record_rejection(node: Node, peer: str, rejection: Rejection) -> None:
    """Keep and log a rejected declaration (nothing else changes)."""
    log.warning("rejected acceptance declaration from %s: %s", peer, rejection)
    with node.store.write() as tx:
        now = node.now()
        tx.add_rejection(
            RejectionRow(now, peer, Rejected.ACCEPTANCE, rejection.reason.value, rejection.detail)
        )
        exchange_log.record(
            tx,
            node,
            kind=Event.REJECTED,
            origin=peer,
            what=Rejected.ACCEPTANCE,
            reason=rejection.reason.value,
            detail=rejection.detail,
        )


def receive(node: Node, request: SignedRequest) -> Applied:
    """Verify and apply a peer's signed acceptance declaration.

    Raises:
        Rejection: it does not verify (unknown signer, bad signature, wrong
            recipient, stale), is malformed, names other parties, or reuses
            an applied version for other categories; nothing changes and
            the rejection is logged.
        NotFound: the signer is trusted but has no stream (revoked).
    """
    try:
        card = verify_request(
            request,
            purpose=Purpose.ACCEPTANCE,
            me=node.node_id,
            trusted=node.trusted,
            now=node.now(),
            issued_at=lambda payload: decode_declaration(payload).issued_at,
            max_skew=origin.MAX_CLOCK_SKEW,
        )
        decl = decode_declaration(request.payload)
        with node.store.read() as tx:
            held = _held(tx, card.node_id)
        outcome = check_declaration(decl, signer=card.node_id, me=node.node_id, held=held)
    except Rejection as rejection:
        if node.trusted(request.signer) is not None:
            _record_rejection(node, request.signer, rejection)
        raise
    if outcome is not Outcome.APPLY:
        assert held is not None
        return Applied(held[0], outcome=outcome)
    declared = decl.policy()
    applied_version = decl.version

    def change(tx: Tx, row: PeerRow) -> tuple[PeerFilter, PeerFilter]:
        nonlocal applied_version
        now_held = _held(tx, card.node_id)
        if now_held is not None and now_held[0] >= decl.version:
            # A concurrent call applied this or a newer one: nothing changes.
            applied_version = now_held[0]
            same = PeerFilter(SharingPolicy.from_json(row.policy), now_held[1])
            return same, same
        sharing = SharingPolicy.from_json(row.policy)
        old = PeerFilter(sharing, now_held[1] if now_held else AcceptancePolicy())
        tx.put_acceptance(
            AcceptanceRow(
                card.node_id, DECLARED, decl.version, declared.to_json(), node.now(), decl.version
            )
        )
        return old, PeerFilter(sharing, declared)

    def logged(tx: Tx, removed: int, added: int) -> None:
        if applied_version != decl.version:
            return
        exchange_log.record(
            tx,
            node,
            kind=Event.ACCEPTANCE_RECEIVED,
            peer=card.node_id,
            version=decl.version,
            accept=sorted(declared.accept) if declared.accept is not None else ["*"],
            decline=sorted(declared.decline),
            removed=removed,
            added=added,
        )

    removed, added = origin.refilter(node, card.node_id, change, logged)
    log.info(
        "%s declared acceptance v%d (%s): %d removals, %d additions",
        card.node_id,
        decl.version,
        declared.describe(),
        removed,
        added,
    )
    return Applied(applied_version, removed, added)
