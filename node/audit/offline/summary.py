"""What oversight bodies want to see in a set of verified bundles, counted.

Pure: ``Verified`` bundles (``verify.verify_bundle``) in, an ``AuditSummary``
out, for ``wlx audit report`` (``html_report.py``).  Everything is counted from the
signed exchange log, which holds no personal identifier (docs/audit.md
§1.3): lookups by credential and purpose, listings by reference.

* lookups and hits per day (UTC) and per credential (``node:credential``);
* detail requests per peer and outcome, as the requesting node logged them
  (``detail.out``) and as the origin did (``detail.in``);
* time for a removal to be confirmed per peer: from the origin's
  ``record.remove`` to the peer's first signed receipt (``receipt``) of a
  batch or snapshot the origin made for that peer at or after the removal;
  a removal without such a receipt in the bundle is counted as unconfirmed;
* rejections (``rejected``, by origin and reason) and refused calls
  (``access.denied``, ``throttled``);
* witnesses' coverage: of each node's checkpoints, how many each witness
  cosigned, and the cosigners of the latest;
* acceptance policies: per origin, what each node declined and how it
  mapped actions, whether the origin applied it; per peer, what it declared.
"""

from __future__ import annotations

import datetime
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wlx.node.audit.offline.acceptance import acceptance_lines
from wlx.node.audit.offline.events import Event
from wlx.node.audit.offline.verify import Verified
from wlx.node.protocol.detail_rules import Direction


@dataclass(frozen=True)
class Confirmation:
    """Removal confirmation times of one origin's removals at one peer."""

    origin: str
    peer: str
    seconds: tuple[int, ...]
    unconfirmed: int

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def worst(self) -> int | None:
        return max(self.seconds) if self.seconds else None


@dataclass(frozen=True)
class Coverage:
    """How one node's checkpoints were witnessed."""

    node: str
    checkpoints: int
    by_witness: dict[str, int]
    latest_size: int
    latest_cosigners: tuple[str, ...]
    uncosigned: int


@dataclass
class AuditSummary:
    """Counts over every bundle given."""

    nodes: list[str] = field(default_factory=list)
    entries: dict[str, int] = field(default_factory=dict)
    first: int = 0
    last: int = 0
    lookups_per_day: Counter[str] = field(default_factory=Counter)
    """People checked per UTC day."""
    hits_per_day: Counter[str] = field(default_factory=Counter)
    lookups_per_credential: Counter[str] = field(default_factory=Counter)
    hits_per_credential: Counter[str] = field(default_factory=Counter)
    unchecked: int = 0
    details: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """(node, direction "out"/"in", peer, outcome) -> requests."""
    confirmations: list[Confirmation] = field(default_factory=list)
    rejections: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(node, origin, reason) -> rejections logged by node."""
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(node, kind "access.denied"/"throttled") -> refused calls."""
    coverage: list[Coverage] = field(default_factory=list)
    acceptance: list[tuple[str, str]] = field(default_factory=list)
    """(node, line): acceptance policies per origin and per peer, and the hits
    withheld under them (``acceptance.acceptance_lines``)."""


def _day(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).date().isoformat()


def _int(entry: dict[str, Any], key: str) -> int:
    value = entry.get(key, 0)
    return value if isinstance(value, int) else 0


def _confirmations(node: str, entries: Sequence[dict[str, Any]]) -> list[Confirmation]:
    removals = [e["time"] for e in entries if e["kind"] == Event.RECORD_REMOVE]
    made: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    receipts: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for e in entries:
        if e["kind"] == Event.BATCH_SENT:
            made[e["peer"]].append((e["time"], _int(e, "epoch"), _int(e, "last_seq")))
        elif e["kind"] == Event.SNAPSHOT_SENT:
            made[e["peer"]].append((e["time"], _int(e, "epoch"), _int(e, "at_seq")))
        elif e["kind"] == Event.RECEIPT:
            receipts[e["peer"]].append((e["time"], _int(e, "epoch"), _int(e, "last_seq")))
    out = []
    for peer in sorted(made):
        seconds: list[int] = []
        unconfirmed = 0
        for removed_at in removals:
            after = [m for m in made[peer] if m[0] >= removed_at]
            if not after:
                unconfirmed += 1
                continue
            _, epoch, seq = after[0]
            confirmed = [
                t for t, e, s in receipts[peer] if t >= removed_at and (e, s) >= (epoch, seq)
            ]
            if confirmed:
                seconds.append(min(confirmed) - removed_at)
            else:
                unconfirmed += 1
        if removals:
            out.append(Confirmation(node, peer, tuple(seconds), unconfirmed))
    return out


def summarise(bundles: Sequence[Verified]) -> AuditSummary:
    """Count what the verified ``bundles`` hold."""
    summary = AuditSummary()
    times: list[int] = []
    for verified in bundles:
        node = verified.node
        summary.nodes.append(node)
        summary.entries[node] = len(verified.entries)
        for e in verified.entries:
            kind, time = e["kind"], _int(e, "time")
            times.append(time)
            if kind == Event.LOOKUP:
                people = _int(e, "people")
                hits = len(e.get("hits", []))
                credential = f"{node}:{e.get('credential', '')}"
                summary.lookups_per_day[_day(time)] += people
                summary.hits_per_day[_day(time)] += hits
                summary.lookups_per_credential[credential] += people
                summary.hits_per_credential[credential] += hits
                summary.unchecked += _int(e, "unchecked")
            elif kind == Event.DETAIL_OUT:
                summary.details[(node, Direction.OUT, str(e["origin"]), str(e["outcome"]))] += 1
            elif kind == Event.DETAIL_IN:
                summary.details[(node, Direction.IN, str(e["peer"]), str(e["outcome"]))] += 1
            elif kind == Event.REJECTED:
                summary.rejections[(node, str(e["origin"]), str(e["reason"]))] += 1
            elif kind in (Event.ACCESS_DENIED, Event.THROTTLED):
                summary.refusals[(node, kind)] += 1
        summary.confirmations += _confirmations(node, verified.entries)
        summary.acceptance += [(node, line.strip()) for line in acceptance_lines(verified.entries)]
        by_witness: Counter[str] = Counter()
        for checked in verified.checkpoints:
            by_witness.update(checked.cosigners)
        latest = verified.checkpoints[-1] if verified.checkpoints else None
        summary.coverage.append(
            Coverage(
                node=node,
                checkpoints=len(verified.checkpoints),
                by_witness=dict(sorted(by_witness.items())),
                latest_size=latest.checkpoint.size if latest else 0,
                latest_cosigners=tuple(sorted(latest.cosigners)) if latest else (),
                uncosigned=sum(1 for c in verified.checkpoints if not c.cosigners),
            )
        )
    if times:
        summary.first, summary.last = min(times), max(times)
    return summary
