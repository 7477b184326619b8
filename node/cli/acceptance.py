"""``wlx peer accept``: this node's acceptance policy for an origin (issue 16).

The policy lives in the node's store (the one source of truth: every change
is an exchange-log entry in the same transaction); node.toml does not hold
it.  ``describe_local`` and ``describe_declared`` are the lines
``wlx status`` and ``wlx peer list`` show.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from wlx.node.cli.common import node_at, node_dir
from wlx.node.core.acceptance import AcceptancePolicy, compose, parse_mapping, preset
from wlx.node.core.errors import UserError
from wlx.node.core.node import Node
from wlx.node.incoming import acceptance
from wlx.node.store.base import DECLARED, LOCAL, Tx


@click.command("accept")
@node_dir
@click.argument("peer_id", metavar="PEER")
@click.option(
    "--accept",
    "accept",
    multiple=True,
    metavar="CATEGORY",
    help="Hold only these categories of PEER's listings (repeatable).",
)
@click.option(
    "--decline",
    multiple=True,
    metavar="CATEGORY",
    help="Never hold this category of PEER's listings (repeatable).",
)
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="ACTION=LOCAL",
    help="Act on PEER's ACTION as LOCAL here; *=LOCAL for every other action (repeatable).",
)
@click.option("--preset", "preset_name", help="Start from a preset (accept-all, inform-only, ...).")
@click.option("--all", "accept_all", is_flag=True, help="Accept everything, map nothing.")
def peer_accept(
    directory: Path,
    peer_id: str,
    accept: tuple[str, ...],
    decline: tuple[str, ...],
    mapping: tuple[str, ...],
    preset_name: str | None,
    accept_all: bool,
) -> None:
    """Show or set what this node holds of PEER's list and how it acts on it.

    Declined categories are not held: PEER is told (signed, logged on both
    sides) at the next sync, stops sending them and removes what it sent.
    Mapped actions apply to lookups at once.  The options replace the whole
    policy (with --preset, they add to the preset).
    """
    changing = accept or decline or mapping or preset_name or accept_all
    with node_at(directory) as node:
        if not changing:
            with node.store.read() as tx:
                if tx.get_peer(peer_id) is None:
                    raise UserError(f"{peer_id} is not a trusted peer")
                click.echo(f"{peer_id}: {describe_local(tx, peer_id)}")
            return
        if accept_all and (accept or decline or mapping or preset_name):
            raise UserError("--all replaces the policy; give it alone")
        policy = compose(
            preset_name=preset_name,
            accept=accept or None,
            decline=decline,
            actions=parse_mapping(mapping),
        )
        how = f"preset {preset_name}" if preset_name else ""
        version = acceptance.set_policy(node, peer_id, policy, how=how)
    click.echo(f"{peer_id} v{version}: {policy.describe()}")
    if policy.restricts:
        click.echo(f"  {peer_id} is told at the next sync, and removes what this node declines")


def write_default(node: Node, peer_id: str, preset_name: str | None) -> str | None:
    """The explicit policy ``peer add`` writes: ``preset_name``, or accept-all
    for a peer without a policy; returns its description (None: kept).

    Raises:
        UserError: no such preset.
    """
    policy = preset(preset_name or "accept-all")
    with node.store.read() as tx:
        existing = tx.get_acceptance(peer_id, LOCAL)
    if existing is not None and preset_name is None:
        return None
    acceptance.set_policy(node, peer_id, policy, how=f"preset {preset_name or 'accept-all'}")
    return policy.describe()


def describe_local(tx: Tx, peer_id: str) -> str:
    """What this node holds of ``peer_id`` and whether the origin applies it."""
    row = tx.get_acceptance(peer_id, LOCAL)
    if row is None:
        return "accepts everything, origin's actions (no policy written)"
    text = f"{AcceptancePolicy.from_json(row.policy).describe()} (v{row.version}"
    if row.delivered >= row.version:
        return text + ", applied by the origin)"
    if row.delivered:
        return text + f", origin applies v{row.delivered} until the next sync)"
    return text + ", origin not told yet)"


def describe_declared(tx: Tx, peer_id: str) -> str | None:
    """What ``peer_id`` declared it holds of this node's list, if anything."""
    row = tx.get_acceptance(peer_id, DECLARED)
    if row is None:
        return None
    return f"{AcceptancePolicy.from_json(row.policy).describe()} (v{row.version})"


@dataclass(frozen=True)
class PeerAcceptance:
    """What ``wlx status`` shows of acceptance for one peer."""

    we_hold: str
    it_holds: str | None
    as_json: dict[str, object]


def of_peers(node: Node, peers: Sequence[str]) -> dict[str, PeerAcceptance]:
    """The acceptance lines and JSON of ``wlx status``, per peer."""
    with node.store.read() as tx:
        return {
            p: PeerAcceptance(describe_local(tx, p), describe_declared(tx, p), status_json(tx, p))
            for p in peers
        }


def status_json(tx: Tx, peer_id: str) -> dict[str, object]:
    """The acceptance part of ``wlx status --json`` for one peer."""
    local, declared = tx.get_acceptance(peer_id, LOCAL), tx.get_acceptance(peer_id, DECLARED)
    return {
        "we_accept": None
        if local is None
        else {
            "policy": json.loads(AcceptancePolicy.from_json(local.policy).to_json()),
            "version": local.version,
            "applied_by_origin": local.delivered,
        },
        "it_accepts": None
        if declared is None
        else {
            "policy": json.loads(AcceptancePolicy.from_json(declared.policy).to_json()),
            "version": declared.version,
        },
    }
