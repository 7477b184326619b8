"""Acceptance policy: what a receiving node holds and acts on, per origin.

The mirror of the origin's sharing policy (``core/policy.py``), decided by
the *receiving* country under its own law (docs/operations.md, "Acceptance
policies"):

* ``accept``: the only categories it holds of the origin (None: any);
* ``decline``: categories it never holds (subtracted from ``accept``);
* ``actions``: how the origin's requested action becomes a local one
  (``arrest`` -> ``refer-to-supervisor``; ``*`` maps every action not
  mapped by name).

Categories are sealed in the hit data, so the receiver cannot filter what
it stores: it declares ``accept``/``decline`` to the origin, which stops
sending them (docs/protocol.md §6.6).  The action mapping stays local and is
applied at lookup time.  The stored policy is the one source of truth.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wlx.node.core.errors import UserError
from wlx.node.core.records import TERM

MAX_TERMS = 1_000
ANY_ACTION = "*"


def term(value: str, what: str) -> str:
    """A category or action as record fields hold it (docs/records.md).

    Raises:
        UserError: empty, too long, or not letters, digits and dashes.
    """
    norm = value.strip().lower().replace(" ", "-")
    if not TERM.match(norm):
        raise UserError(f"{what} {value[:80]!r} must be a short term of a-z, 0-9, '-' and '_'")
    return norm


def _terms(values: Iterable[str], what: str) -> frozenset[str]:
    items = frozenset(term(v, what) for v in values)
    if len(items) > MAX_TERMS:
        raise UserError(f"an acceptance policy lists at most {MAX_TERMS} {what}s")
    return items


@dataclass(frozen=True)
class AcceptancePolicy:
    """What this node holds of one origin and how it acts on its hits."""

    accept: frozenset[str] | None = None
    decline: frozenset[str] = frozenset()
    actions: Mapping[str, str] = field(default_factory=dict)
    """Origin's action (or ``*``) -> local action."""

    @classmethod
    def make(
        cls,
        *,
        accept: Iterable[str] | None = None,
        decline: Iterable[str] = (),
        actions: Mapping[str, str] | None = None,
    ) -> AcceptancePolicy:
        """A policy from lists; terms are normalised.

        Raises:
            UserError: a term is not a category or action, a list is too long,
                or a category is both accepted and declined.
        """
        accepted = _terms(accept, "category") if accept is not None else None
        declined = _terms(decline, "category")
        if accepted is not None and accepted & declined:
            both = ", ".join(sorted(accepted & declined))
            raise UserError(f"category {both} is both accepted and declined; choose one")
        mapping: dict[str, str] = {}
        for origin_action, local in (actions or {}).items():
            key = (
                ANY_ACTION if origin_action.strip() == ANY_ACTION else term(origin_action, "action")
            )
            mapping[key] = term(local, "local action")
        if len(mapping) > MAX_TERMS:
            raise UserError(f"an acceptance policy maps at most {MAX_TERMS} actions")
        return cls(accept=accepted, decline=declined, actions=dict(sorted(mapping.items())))

    def holds(self, category: str) -> bool:
        """Whether listings of ``category`` are held (and acted on) here."""
        if category in self.decline:
            return False
        return self.accept is None or category in self.accept

    @property
    def restricts(self) -> bool:
        """Whether the origin must hold anything back (an accept list or a decline)."""
        return self.accept is not None or bool(self.decline)

    def to_json(self) -> str:
        """The stored (and logged) form: canonical JSON, sorted."""
        obj: dict[str, object] = {"decline": sorted(self.decline), "actions": dict(self.actions)}
        if self.accept is not None:
            obj["accept"] = sorted(self.accept)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AcceptancePolicy:
        """Parse the stored form.

        Raises:
            UserError: not an acceptance policy.
        """
        try:
            obj = json.loads(text or "{}")
        except json.JSONDecodeError:
            raise UserError("an acceptance policy is not valid JSON") from None
        if not isinstance(obj, dict) or set(obj) - {"accept", "decline", "actions"}:
            raise UserError("an acceptance policy has accept, decline and actions")
        accept, decline, actions = obj.get("accept"), obj.get("decline", []), obj.get("actions", {})
        if accept is not None and not _strings(accept):
            raise UserError("accept is a list of categories")
        if not _strings(decline):
            raise UserError("decline is a list of categories")
        if not isinstance(actions, dict) or not _strings(list(actions.values())):
            raise UserError("actions maps an action to a local action")
        return cls.make(accept=accept, decline=decline, actions=actions)

    def describe(self) -> str:
        """One line for people."""
        parts = []
        if self.accept is not None:
            parts.append(f"accepts only: {', '.join(sorted(self.accept)) or '(none)'}")
        if self.decline:
            parts.append(f"declines: {', '.join(sorted(self.decline))}")
        if self.actions:
            parts.append("maps: " + ", ".join(f"{k}->{v}" for k, v in sorted(self.actions.items())))
        return "; ".join(parts) if parts else "accepts everything, origin's actions"


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


PRESETS: dict[str, AcceptancePolicy] = {
    "accept-all": AcceptancePolicy(),
    "inform-only": AcceptancePolicy.make(actions={ANY_ACTION: "inform-only"}),
    "no-exit-or-political": AcceptancePolicy.make(
        decline=("exit-ban", "political"),
        actions={"arrest": "refer-to-supervisor"},
    ),
}
"""Starting points ``peer add --acceptance`` offers (docs/operations.md)."""


def preset(name: str) -> AcceptancePolicy:
    """A named preset.

    Raises:
        UserError: no such preset.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(
            f"no acceptance preset {name!r}; choose one of {', '.join(sorted(PRESETS))}"
        ) from None


def compose(
    *,
    preset_name: str | None = None,
    accept: Iterable[str] | None = None,
    decline: Iterable[str] = (),
    actions: Mapping[str, str] | None = None,
) -> AcceptancePolicy:
    """A policy from a preset (optional) and additions to it.

    ``accept`` None keeps the preset's accept list (or none); a list adds to
    it and makes the policy hold only the listed categories.

    Raises:
        UserError: no such preset, or an invalid term (``make``).
    """
    base = preset(preset_name) if preset_name else AcceptancePolicy()
    accepted = None
    if base.accept is not None or accept is not None:
        accepted = [*(base.accept or ()), *(accept or ())]
    return AcceptancePolicy.make(
        accept=accepted,
        decline=[*base.decline, *decline],
        actions={**base.actions, **(actions or {})},
    )


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``ACTION=LOCAL`` items (``*=LOCAL`` for any action) as a mapping.

    Raises:
        UserError: an item without ``=``, or an action mapped twice.
    """
    mapping: dict[str, str] = {}
    for item in items:
        origin_action, sep, local = item.partition("=")
        if not sep or not origin_action.strip() or not local.strip():
            raise UserError(f"--map takes ACTION=LOCAL (or *=LOCAL), not {item[:80]!r}")
        key = origin_action.strip()
        if key in mapping:
            raise UserError(f"action {key!r} is mapped twice")
        mapping[key] = local.strip()
    return mapping
