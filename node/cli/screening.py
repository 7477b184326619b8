"""The report of a screened manifest: every hit, everyone not fully checked and why, counts.

Pure: a parsed ``Manifest`` and the node's results in, a ``Report`` and its
text lines or JSON out.  An entry is *not checked* when the node could use
nothing of it, and *partly checked* when some of its fields could not be
read (``Entry.unusable``) but the rest was checked; both count as *not
fully checked*, which the first line of the report always states.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from wlx.client.types import Hit, ScreenResult, query_of
from wlx.node.core.entries import Entry
from wlx.node.core.errors import UserError
from wlx.node.core.manifest import Manifest, ManifestFormat


class Checked(StrEnum):
    """How much of one person a screening checked (``checked`` in the JSON report)."""

    FULL = "full"
    PARTIAL = "partial"
    """Some fields could not be read; the rest was checked."""
    NONE = "none"
    """Nothing could be used: not checked at all."""


@dataclass(frozen=True)
class Row:
    """One person of the manifest, with the node's answer."""

    entry: Entry
    result: ScreenResult

    @property
    def unusable(self) -> tuple[str, ...]:
        """Fields not read from the source, then fields the node left out
        because they are invalid (a two-letter country): the same rules as
        the node's, applied to the same entry."""
        if self.result.error:
            return self.entry.unusable
        try:
            left_out = query_of(self.entry).checked().unusable
        except UserError:
            left_out = ()
        return (*self.entry.unusable, *left_out)

    @property
    def problems(self) -> tuple[str, ...]:
        """Why this person was not fully checked (empty: fully checked)."""
        return (*self.unusable, *((self.result.error,) if self.result.error else ()))

    @property
    def checked(self) -> Checked:
        """How much of this person was checked."""
        if self.result.error:
            return Checked.NONE
        return Checked.PARTIAL if self.unusable else Checked.FULL


@dataclass(frozen=True)
class Report:
    """A screened manifest."""

    format: ManifestFormat
    rows: tuple[Row, ...]
    batches: int

    @classmethod
    def of(cls, manifest: Manifest, results: list[ScreenResult], batch_size: int) -> Report:
        """Pair entries with results (in order)."""
        rows = tuple(Row(e, r) for e, r in zip(manifest.entries, results, strict=True))
        return cls(manifest.format, rows, max(1, math.ceil(len(rows) / batch_size)))

    @property
    def hits(self) -> int:
        return sum(len(r.result.hits) for r in self.rows)

    @property
    def people_hit(self) -> int:
        return sum(1 for r in self.rows if r.result.hits)

    @property
    def not_checked(self) -> int:
        return sum(1 for r in self.rows if r.checked == Checked.NONE)

    @property
    def partly_checked(self) -> int:
        return sum(1 for r in self.rows if r.checked == Checked.PARTIAL)

    @property
    def not_fully_checked(self) -> int:
        return self.not_checked + self.partly_checked

    def counts(self) -> dict[str, int]:
        return {
            "people": len(self.rows),
            "hits": self.hits,
            "people_hit": self.people_hit,
            "not_checked": self.not_checked,
            "partly_checked": self.partly_checked,
            "not_fully_checked": self.not_fully_checked,
            "batches": self.batches,
        }


def action_text(hit: Hit) -> str:
    """What the officer is to do, and whose rule says so (the origin's
    requested action, or the local one the acceptance policy maps it to)."""
    if hit.suspended:
        return "SUSPENDED, no action"
    if hit.local_action and hit.local_action != hit.action:
        return f"action here {hit.local_action} ({hit.rule})"
    return f"action {hit.action}"


def _hit_line(entry_id: str, hit: Hit) -> str:
    action = action_text(hit)
    return (
        f"HIT {entry_id}: {hit.origin} {hit.ref} {hit.category}, {action}, "
        f"matched on {hit.matched_on}"
    )


def report_lines(report: Report) -> list[str]:
    """The report as text: a summary line, then hits, then who was not fully checked."""
    batches = f"{report.batches} batch" + ("es" if report.batches != 1 else "")
    lines = [
        f"screened {len(report.rows)} people ({report.format}, {batches}): "
        f"{report.hits} hits on {report.people_hit} people, "
        f"{report.not_fully_checked} not fully checked "
        f"({report.not_checked} not checked, {report.partly_checked} partly)"
    ]
    online = sorted({pair for row in report.rows for pair in row.result.not_checked})
    lines.extend(
        f"NOT CHECKED: online listings of {origin} ({reason}); no hit from them is not a miss"
        for origin, reason in online
    )
    for row in report.rows:
        lines.extend(_hit_line(row.entry.id, hit) for hit in row.result.hits)
    for row in report.rows:
        if row.checked == Checked.NONE:
            lines.append(f"NOT CHECKED {row.entry.id}: {'; '.join(row.problems)}")
        elif row.checked == Checked.PARTIAL:
            lines.append(f"PARTLY CHECKED {row.entry.id}: {'; '.join(row.problems)}")
    return lines


def report_json(report: Report, hit_json: Callable[[Hit], dict[str, Any]]) -> dict[str, Any]:
    """The report as one JSON object: format, counts, and one result per person."""
    return {
        "format": report.format,
        "counts": report.counts(),
        "results": [
            {
                "id": row.entry.id,
                "checked": row.checked,
                "hits": [hit_json(h) for h in row.result.hits],
                "error": row.result.error,
                "unusable": list(row.unusable),
                "not_checked": [{"origin": o, "reason": r} for o, r in row.result.not_checked],
            }
            for row in report.rows
        ],
    }
