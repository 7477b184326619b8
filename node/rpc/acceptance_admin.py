"""The Admin service's acceptance calls: an operator reads or replaces this
node's acceptance policy for an origin remotely (as ``wlx peer accept``)."""

from __future__ import annotations

from wlx.node.core.acceptance import AcceptancePolicy, compose
from wlx.node.core.errors import NotFound
from wlx.node.core.node import Node
from wlx.node.incoming import acceptance
from wlx.node.store.base import LOCAL
from wlx.v1 import admin_pb2


def acceptance_state(node: Node, peer: str) -> admin_pb2.AcceptanceState:
    """The policy for ``peer`` as the Admin service answers it.

    Raises:
        NotFound: ``peer`` is not a trusted peer.
    """
    with node.store.read() as tx:
        row = tx.get_peer(peer)
        if row is None or row.revoked_at:
            raise NotFound(f"{peer} is not a trusted peer")
        held = tx.get_acceptance(peer, LOCAL)
    policy = AcceptancePolicy.from_json(held.policy) if held else AcceptancePolicy()
    return admin_pb2.AcceptanceState(
        peer=peer,
        version=held.version if held else 0,
        policy=policy.to_json(),
        description=policy.describe(),
        applied_by_origin=held.delivered if held else 0,
    )


def set_acceptance(
    node: Node, request: admin_pb2.SetAcceptanceRequest
) -> admin_pb2.AcceptanceState:
    """Replace the policy for ``request.peer``; returns the new state.

    Raises:
        UserError: an unknown preset or an invalid term (nothing changes).
        NotFound: not a trusted peer.
    """
    policy = compose(
        preset_name=request.preset or None,
        accept=list(request.accept) if request.accept_listed else None,
        decline=list(request.decline),
        actions=dict(request.actions),
    )
    how = f"preset {request.preset}, over the Admin service" if request.preset else "Admin service"
    acceptance.set_policy(node, request.peer, policy, how=how)
    return acceptance_state(node, request.peer)
