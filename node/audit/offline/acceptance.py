"""What an auditor reads of acceptance policies in a verified log (issue 16).

For an oversight body checking that the country's law was applied: per
origin, the latest acceptance policy the node set (what it declined, how it
mapped actions) and whether the origin confirmed it; per peer, what that
peer declared it holds of this node's list; and how many hits lookups
withheld.  Pure: entries in, lines out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from wlx.node.core.acceptance import AcceptancePolicy
from wlx.node.core.errors import UserError


def _describe(text: object) -> str:
    try:
        return AcceptancePolicy.from_json(str(text)).describe()
    except UserError:
        return f"(unreadable policy {str(text)[:80]!r})"


def acceptance_lines(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Report lines; empty when the log has no acceptance entry."""
    local: dict[str, Mapping[str, Any]] = {}
    confirmed: dict[str, Mapping[str, Any]] = {}
    declared: dict[str, Mapping[str, Any]] = {}
    withheld = 0
    changes = 0
    for entry in entries:
        kind, peer = entry.get("kind"), str(entry.get("peer", ""))
        if kind == "acceptance.change":
            local[peer] = entry
            changes += 1
        elif kind == "acceptance.confirmed":
            confirmed[peer] = entry
        elif kind == "acceptance.received":
            declared[peer] = entry
        elif kind == "lookup" and isinstance(entry.get("withheld"), list):
            withheld += len(entry["withheld"])
    if not (local or declared or withheld):
        return []
    lines = [f"  acceptance: {changes} policy changes; {withheld} hits withheld at lookups"]
    for peer, entry in sorted(local.items()):
        done = confirmed.get(peer)
        state = (
            f"{peer} applied it, removed {done.get('removed', 0)}"
            if done is not None and done.get("version") == entry.get("version")
            else f"not yet confirmed by {peer}"
        )
        lines.append(
            f"    of {peer}'s list this node holds: {_describe(entry.get('policy'))} "
            f"(v{entry.get('version')}, {state})"
        )
    for peer, entry in sorted(declared.items()):
        policy = json.dumps({"decline": entry.get("decline", [])}, sort_keys=True)
        accept = entry.get("accept")
        if isinstance(accept, list) and accept != ["*"]:
            policy = json.dumps({"accept": accept, "decline": entry.get("decline", [])})
        lines.append(
            f"    {peer} declared it holds of this node's list: {_describe(policy)} "
            f"(v{entry.get('version')}, {entry.get('removed', 0)} removals sent)"
        )
    return lines
