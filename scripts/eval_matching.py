"""Evaluate name matching over the labelled pairs of tests/data/matching-pairs.tsv.

For each pair, the listed name is keyed as a record and the queried name as
a query (wlx-norm-2, docs/protocol.md §2.8); the pair *hits* when they share
an identifier key, and the hit is labelled as a lookup would label it.
Prints, per category, the pairs, the recall on same-person pairs, the false
hits on different-person pairs, and how the hits matched.  Exit status 1 if
recall is below --min-recall or any different-person pair hits.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wlx.crypto.errors import InvalidIdentifier
from wlx.crypto.normalize import KeyKind, query_keys, record_keys

PAIRS = Path(__file__).resolve().parent.parent / "tests" / "data" / "matching-pairs.tsv"
DEFAULT_DOB = "1980-05-07"


@dataclass(frozen=True)
class Pair:
    category: str
    same: bool
    listed: str
    queried: str
    listed_dob: str
    queried_dob: str


def load(path: Path = PAIRS) -> list[Pair]:
    """The labelled pairs (comment lines start with #)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = [*line.split("\t"), "", ""]
        category, label, listed, queried = cols[:4]
        if label not in ("same", "different"):
            raise ValueError(f"bad label in line: {line!r}")
        pairs.append(
            Pair(
                category,
                label == "same",
                listed,
                queried,
                cols[4] or DEFAULT_DOB,
                cols[5] or DEFAULT_DOB,
            )
        )
    return pairs


def match(pair: Pair) -> KeyKind | None:
    """How the queried name finds the listing, or None."""
    try:
        listed = {k.value: k.kind for k in record_keys([pair.listed], pair.listed_dob, [])}
        queried = query_keys([pair.queried], pair.queried_dob, [])
    except InvalidIdentifier:
        return None
    kinds = [k.kind.combine(listed[k.value]) for k in queried if k.value in listed]
    return min(kinds, key=lambda k: (k.strength, k)) if kinds else None


@dataclass
class Row:
    """The figures of one category of pairs."""

    same: int = 0
    found: int = 0
    different: int = 0
    false_hits: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)


def evaluate(pairs: list[Pair]) -> dict[str, Row]:
    """Per category: same, found, different, false_hits, levels, misses, false."""
    out: dict[str, Row] = {}
    for pair in pairs:
        row = out.setdefault(pair.category, Row())
        kind = match(pair)
        if pair.same:
            row.same += 1
            if kind is None:
                row.missed.append(f"{pair.listed} / {pair.queried}")
            else:
                row.found += 1
                row.levels[kind.level] = row.levels.get(kind.level, 0) + 1
        else:
            row.different += 1
            if kind is not None:
                row.false_hits += 1
                row.missed.append(f"FALSE HIT {pair.listed} / {pair.queried}: {kind.value}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true", help="list missed pairs and false hits")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--min-recall", type=float, default=0.0, help="fail below this recall")
    args = parser.parse_args(argv)
    results = evaluate(load())
    totals = collections.Counter[str]()
    for row in results.values():
        totals.update(
            same=row.same, found=row.found, different=row.different, false_hits=row.false_hits
        )
    recall = totals["found"] / totals["same"] if totals["same"] else 1.0
    if args.json:
        categories = {name: dataclasses.asdict(row) for name, row in results.items()}
        print(json.dumps({"categories": categories, "totals": dict(totals), "recall": recall}))
    else:
        print(
            f"{'category':<18} {'same':>5} {'found':>6} {'recall':>7} {'diff':>5} {'false':>6}  how"
        )
        for name, row in results.items():
            same, found = row.same, row.found
            rec = f"{100 * found / same:6.1f}%" if same else "      -"
            how = ", ".join(f"{k} {v}" for k, v in sorted(row.levels.items()))
            print(
                f"{name:<18} {same:>5} {found:>6} {rec:>7} {row.different:>5} "
                f"{row.false_hits:>6}  {how}"
            )
        print(
            f"{'total':<18} {totals['same']:>5} {totals['found']:>6} {100 * recall:6.1f}% "
            f"{totals['different']:>5} {totals['false_hits']:>6}"
        )
        if args.misses:
            for name, row in results.items():
                for line in row.missed:
                    print(f"  {name}: {line}")
    return 1 if totals["false_hits"] or recall < args.min_recall else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
