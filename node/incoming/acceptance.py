"""The receiving side of acceptance: this node's policy for each origin.

docs/protocol.md §6.6, docs/operations.md "Acceptance policies".  The store
is the one source of truth: ``set_policy`` stores a new version and logs it
(``acceptance.change``) in one transaction; the lookup applies it at once
(action mapping, declined categories withheld); the sync client delivers it
to the origin before its next pull (``declaration``) and records the
origin's confirmation (``confirmed``, ``acceptance.confirmed``).
"""

from __future__ import annotations

import logging

from wlx.crypto.signing import Purpose
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import NotFound
from wlx.node.core.node import Node
from wlx.node.protocol.acceptance_rules import (
    NONCE_BYTES,
    Declaration,
    encode_declaration,
    next_version,
)
from wlx.node.protocol.envelopes import sign_message
from wlx.node.protocol.messages import SignedRequest
from wlx.node.store.base import LOCAL, AcceptanceRow, Tx

log = logging.getLogger("wlx.acceptance")


def set_policy(node: Node, origin: str, policy: AcceptancePolicy, *, how: str = "") -> int:
    """Make ``policy`` this node's acceptance policy for ``origin``; returns its version.

    Takes effect for lookups at once; the origin learns the categories part
    at the next sync.  ``how`` (e.g. "preset accept-all") is logged.

    Raises:
        NotFound: ``origin`` is not a trusted peer.
    """
    with node.store.write() as tx:
        peer = tx.get_peer(origin)
        if peer is None or peer.revoked_at:
            raise NotFound(f"{origin} is not a trusted peer; add it with `wlx peer add` first")
        current = tx.get_acceptance(origin, LOCAL)
        version = next_version(current.version if current else None, node.now())
        tx.put_acceptance(
            AcceptanceRow(
                origin,
                LOCAL,
                version,
                policy.to_json(),
                node.now(),
                current.delivered if current else 0,
            )
        )
        fields: dict[str, exchange_log.Field] = {
            "peer": origin,
            "version": version,
            "policy": policy.to_json(),
        }
        if how:
            fields["how"] = how
        exchange_log.record(tx, node, kind=Event.ACCEPTANCE_CHANGE, **fields)
    log.info("acceptance policy for %s v%d: %s", origin, version, policy.describe())
    return version


def policy_of(tx: Tx, origin: str) -> AcceptancePolicy | None:
    """This node's policy for ``origin``, or None if it never set one."""
    row = tx.get_acceptance(origin, LOCAL)
    return AcceptancePolicy.from_json(row.policy) if row is not None else None


def policies(tx: Tx) -> dict[str, AcceptancePolicy]:
    """Every origin's policy, by origin."""
    return {r.peer: AcceptancePolicy.from_json(r.policy) for r in tx.list_acceptance(LOCAL)}


def declaration(node: Node, origin: str) -> tuple[int, SignedRequest] | None:
    """The signed declaration ``origin`` has not confirmed yet, with its
    version; None when it is up to date."""
    with node.store.read() as tx:
        row = tx.get_acceptance(origin, LOCAL)
    if row is None or row.delivered >= row.version:
        return None
    policy = AcceptancePolicy.from_json(row.policy)
    decl = Declaration(
        requester=node.node_id,
        origin=origin,
        version=row.version,
        accept=policy.accept,
        decline=policy.decline,
        issued_at=node.now(),
        nonce=node.rng(NONCE_BYTES),
    )
    signed = sign_message(
        encode_declaration(decl),
        Purpose.ACCEPTANCE,
        signer=node.node_id,
        key=node.signing_key,
        recipient=origin,
    )
    return row.version, signed


def confirmed(node: Node, origin: str, version: int, *, removed: int, added: int) -> None:
    """Record that ``origin`` applies ``version`` of this node's declaration."""
    with node.store.write() as tx:
        row = tx.get_acceptance(origin, LOCAL)
        if row is None or version <= row.delivered or version > row.version:
            return
        tx.put_acceptance(
            AcceptanceRow(origin, LOCAL, row.version, row.policy, row.changed_at, version)
        )
        exchange_log.record(
            tx,
            node,
            kind=Event.ACCEPTANCE_CONFIRMED,
            peer=origin,
            version=version,
            removed=removed,
            added=added,
        )
    log.info(
        "%s applies acceptance v%d: %d removals, %d additions", origin, version, removed, added
    )
