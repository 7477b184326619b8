"""Per-peer sharing policy: which of its listings the origin sends each peer.

Like the distribution levels of threat-sharing platforms, decided by the
origin per peer: by category, by requested action, and by an explicit allow
list (or deny list) of record ids.  An empty policy shares everything.
Narrowing a policy sends the peer removals of what it no longer may hold;
widening it sends what it now may (``origin.set_policy``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from wlx.node.core.errors import UserError
from wlx.node.core.records import Record, Tier

MAX_ITEMS = 10_000


def _items(values: Iterable[str] | None, what: str) -> frozenset[str] | None:
    if values is None:
        return None
    items = frozenset(v.strip() for v in values if v.strip())
    if len(items) > MAX_ITEMS:
        raise UserError(f"a policy lists at most {MAX_ITEMS} {what}")
    return items


@dataclass(frozen=True)
class SharingPolicy:
    """What one peer receives.  ``None`` means "no restriction" for that facet."""

    categories: frozenset[str] | None = None
    actions: frozenset[str] | None = None
    records: frozenset[str] | None = None
    """Explicit allow list of record ids (None: any record the other facets allow)."""
    exclude: frozenset[str] = frozenset()
    """Record ids never shared with this peer."""
    online_categories: frozenset[str] = frozenset()
    """Categories whose records default to the online tier for this peer (§15.1)."""

    @classmethod
    def make(
        cls,
        *,
        categories: Iterable[str] | None = None,
        actions: Iterable[str] | None = None,
        records: Iterable[str] | None = None,
        exclude: Iterable[str] = (),
        online_categories: Iterable[str] = (),
    ) -> SharingPolicy:
        """A policy from lists (terms are normalised as record fields are).

        Raises:
            UserError: a list is too long.
        """
        return cls(
            categories=_items(
                (c.lower().replace(" ", "-") for c in categories)
                if categories is not None
                else None,
                "categories",
            ),
            actions=_items(
                (a.lower().replace(" ", "-") for a in actions) if actions is not None else None,
                "actions",
            ),
            records=_items(records, "records"),
            exclude=_items(exclude, "records") or frozenset(),
            online_categories=_items(
                (c.lower().replace(" ", "-") for c in online_categories), "categories"
            )
            or frozenset(),
        )

    def tier(self, record: Record) -> Tier:
        """The record's tier for this peer: its own, else the category default (§15.1)."""
        if record.tier is not None:
            return record.tier
        return Tier.ONLINE if record.category in self.online_categories else Tier.OFFLINE

    def allows(self, record: Record) -> bool:
        """Whether ``record`` is shared with the peer."""
        if record.id in self.exclude:
            return False
        if self.records is not None and record.id not in self.records:
            return False
        if self.categories is not None and record.category not in self.categories:
            return False
        return self.actions is None or record.action in self.actions

    def to_json(self) -> str:
        """The stored form (sorted lists; absent facets omitted)."""
        obj: dict[str, list[str]] = {}
        for name in ("categories", "actions", "records"):
            value = getattr(self, name)
            if value is not None:
                obj[name] = sorted(value)
        if self.exclude:
            obj["exclude"] = sorted(self.exclude)
        if self.online_categories:
            obj["online_categories"] = sorted(self.online_categories)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SharingPolicy:
        """Parse the stored form.

        Raises:
            UserError: not a policy.
        """
        try:
            obj = json.loads(text or "{}")
        except json.JSONDecodeError:
            raise UserError("a sharing policy is not valid JSON") from None
        if not isinstance(obj, dict) or set(obj) - {
            "categories",
            "actions",
            "records",
            "exclude",
            "online_categories",
        }:
            raise UserError(
                "a sharing policy has categories, actions, records, exclude and online_categories"
            )
        for value in obj.values():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UserError("sharing policy facets are lists of strings")
        return cls(
            categories=_items(obj.get("categories"), "categories"),
            actions=_items(obj.get("actions"), "actions"),
            records=_items(obj.get("records"), "records"),
            exclude=_items(obj.get("exclude", []), "records") or frozenset(),
            online_categories=_items(obj.get("online_categories", []), "categories") or frozenset(),
        )

    def describe(self) -> str:
        """One line for people."""
        if replace(self, online_categories=frozenset()) == SharingPolicy():
            parts = ["everything"]
        else:
            parts = []
            for name in ("categories", "actions", "records"):
                value = getattr(self, name)
                if value is not None:
                    parts.append(f"{name}: {', '.join(sorted(value)) or '(none)'}")
        if self.exclude:
            parts.append(f"except: {', '.join(sorted(self.exclude))}")
        if self.online_categories:
            parts.append(f"online tier: {', '.join(sorted(self.online_categories))}")
        return "; ".join(parts)
