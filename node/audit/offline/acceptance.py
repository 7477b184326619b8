"""What an auditor reads of acceptance policies in a verified log (issue 16).

For an oversight body checking that the country's law was applied: per
origin, the latest acceptance policy the node set (what it declined, how it
mapped actions) and whether the origin confirmed it; per peer, what that
peer declared it holds of this node's list; and how many hits lookups
withheld.  Pure: entries in, lines out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from wlx.node.audit.offline.events import Event
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
        if kind == Event.ACCEPTANCE_CHANGE:
            local[peer] = entry
            changes += 1
        elif kind == Event.ACCEPTANCE_CONFIRMED:
            confirmed[peer] = entry
        elif kind == Event.ACCEPTANCE_RECEIVED:
            declared[peer] = entry
        elif kind == Event.LOOKUP and isinstance(entry.get("withheld"), list):
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


CLOCK_SKEW = 600


def reconcile_acceptance(
    o: str,
    o_entries: Sequence[Mapping[str, Any]],
    r: str,
    r_entries: Sequence[Mapping[str, Any]],
    flag: Callable[[str], None],
    wait: Callable[[str], None],
) -> str:
    """Match ``r``'s acceptance declarations to origin ``o`` across both logs.

    Every ``acceptance.confirmed`` of r (o applied version v, removing n) must
    be an ``acceptance.received`` of o for r with version v and the same
    counts; every ``acceptance.received`` of o must be a version r logged
    deciding (``acceptance.change``).  ``flag`` reports a contradiction,
    ``wait`` what the two exports cannot settle.  Returns the summary line.
    """
    received = {
        e.get("version"): e
        for e in o_entries
        if e.get("kind") == Event.ACCEPTANCE_RECEIVED and e.get("peer") == r
    }
    decided = {
        e.get("version")
        for e in r_entries
        if e.get("kind") == Event.ACCEPTANCE_CHANGE and e.get("peer") == o
    }
    confirmed = [
        e for e in r_entries if e.get("kind") == Event.ACCEPTANCE_CONFIRMED and e.get("peer") == o
    ]
    o_end = max((int(e.get("time", 0)) for e in o_entries), default=0)
    r_end = max((int(e.get("time", 0)) for e in r_entries), default=0)
    matched = 0
    for entry in confirmed:
        version = entry.get("version")
        got = received.get(version)
        text = f"{r}'s acceptance v{version} (its entry {entry.get('idx')})"
        if got is None:
            if o_end > int(entry.get("time", 0)) + CLOCK_SKEW:
                flag(f"{text} is confirmed by {r}, but {o}'s log never received it")
            else:
                wait(f"{text} was received after the end of {o}'s bundle")
        elif (got.get("removed"), got.get("added")) != (entry.get("removed"), entry.get("added")):
            flag(
                f"{text}: {o} logged {got.get('removed')} removals and {got.get('added')} "
                f"additions (entry {got.get('idx')}), {r} was told {entry.get('removed')} "
                f"and {entry.get('added')}"
            )
        else:
            matched += 1
    for version, got in received.items():
        if version in decided:
            continue
        text = f"{o} applied {r}'s acceptance v{version} (entry {got.get('idx')})"
        if r_end > int(got.get("time", 0)) + CLOCK_SKEW:
            flag(f"{text}, which {r}'s log never decided")
        else:
            wait(f"{text}, decided after the end of {r}'s bundle")
    return (
        f"acceptance: {len(decided)} policies decided by {r}, "
        f"{len(received)} applied by {o}, {matched} confirmations matched"
    )
