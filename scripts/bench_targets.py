"""Issue 13's targets, judged against one bench run's results.

``judged`` adds ``results["targets"]``: one entry per target whose figure
the run measured, with the figure, the limit, met or missed, and
``factor`` (figure over limit: ≥ 1 meets an "at least" target, ≤ 1 an "at
most" one).  ``print_summary`` prints them one per line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Getter = Callable[[dict[str, Any]], float | None]


def _key(*path: str) -> Getter:
    def get(results: dict[str, Any]) -> float | None:
        value: Any = results
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return float(value) if isinstance(value, int | float) else None

    return get


def _ratio(name: str) -> Getter:
    return _key("ratios", name, "ratio")


def _largest(field: str) -> Getter:
    def get(results: dict[str, Any]) -> float | None:
        scale = results.get("scales") or {}
        if not scale.get("sizes"):
            return None
        return _key(str(scale["sizes"][-1]), field)(scale["per_size"])

    return get


def _million_s(results: dict[str, Any]) -> float | None:
    """Snapshot seconds at the largest size, if it is at least a million."""
    scale = results.get("scales") or {}
    if not scale.get("sizes") or scale["sizes"][-1] < 1_000_000:
        return None
    return _largest("snapshot_sync_s")(results)


def _serve_rss_growth(results: dict[str, Any]) -> float | None:
    scale = results.get("scales") or {}
    values = [
        scale.get(f"{name}_large_over_small")
        for name in ("receiver_serve_rss_mib", "cn_serve_rss_mib")
    ]
    present = [v for v in values if v is not None]
    return max(present) if present else None


# (what, figure, at least (True) or at most (False), limit)
TARGETS: list[tuple[str, Getter, bool, float]] = [
    ("import (library) >= 25,000 listings/s", _key("import_records_per_s"), True, 25_000),
    (
        "import (wlx records import) >= 25,000 listings/s",
        _key("import_file_listings_per_s"),
        True,
        25_000,
    ),
    ("snapshot sync >= 25,000 listings/s", _key("snapshot_listings_per_s"), True, 25_000),
    (
        "snapshot sync at the largest size >= 25,000 listings/s",
        _largest("snapshot_listings_per_s"),
        True,
        25_000,
    ),
    ("a million listings synced in under 60 s", _million_s, False, 60),
    (
        "1,000 changes in < 2% of the snapshot's time",
        _key("delta_over_snapshot"),
        False,
        0.02,
    ),
    (
        "1,000 changes at the largest size in < 2% of its snapshot's time",
        _largest("delta_over_snapshot"),
        False,
        0.02,
    ),
    (
        "concurrent lookups >= 0.6 of the echo reference",
        _ratio("lookup_concurrent_per_s/ref_echo_concurrent_per_s"),
        True,
        0.6,
    ),
    (
        "lookup p50 <= 1.5x the echo reference's",
        _ratio("lookup_p50_ms/ref_echo_p50_ms"),
        False,
        1.5,
    ),
    ("lookup p99 < 3 ms", _key("lookup_p99_ms"), False, 3.0),
    (
        "peers' lists: concurrent lookups >= 0.6 of echo",
        _ratio("peer_lists.lookup_concurrent_per_s/ref_echo_concurrent_per_s"),
        True,
        0.6,
    ),
    (
        "peers' lists: lookup p50 <= 1.5x echo's",
        _ratio("peer_lists.lookup_p50_ms/ref_echo_p50_ms"),
        False,
        1.5,
    ),
    ("peers' lists: lookup p99 < 3 ms", _key("peer_lists", "lookup_p99_ms"), False, 3.0),
    ("manifests >= 100,000 identities/s", _key("screen_identities_per_s"), True, 100_000),
    (
        "<= 250 bytes on disk per listing at a receiver",
        _key("receiver_bytes_per_listing"),
        False,
        250,
    ),
    (
        "<= 250 bytes per listing at the largest size",
        _largest("receiver_bytes_per_listing"),
        False,
        250,
    ),
    (
        "lookup p50 at the largest size <= 1.3x the smallest's",
        _key("scales", "lookup_p50_ms_large_over_small"),
        False,
        1.3,
    ),
    (
        "serve memory flat as the list grows (largest/smallest <= 1.25)",
        _serve_rss_growth,
        False,
        1.25,
    ),
    ("freshness < 5 s", _key("freshness_s"), False, 5.0),
]


def judged(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with ``targets`` added (only those the run measured)."""
    out = []
    for what, get, at_least, limit in TARGETS:
        value = get(results)
        if value is None:
            continue
        # A negative figure is one the run could not take (freshness: no hit in time).
        met = value >= 0 and (value >= limit if at_least else value <= limit)
        out.append(
            {
                "target": what,
                "value": value,
                "limit": limit,
                "met": met,
                "at_least": at_least,
                "factor": round(value / limit, 3),
            }
        )
    results["targets"] = out
    return results


def describe(entry: dict[str, Any]) -> str:
    """``met``/``missed`` and by how much, in one phrase."""
    factor = entry["factor"]
    at_least = entry["at_least"]
    if entry["value"] < 0:
        return "missed (not measured in time)"
    if entry["met"]:
        return f"met ({factor:g}x the limit)"
    if at_least:
        return f"missed: {factor:g}x the limit ({1 / factor:.1f}x short)" if factor else "missed"
    return f"missed by {factor:g}x"


def print_summary(results: dict[str, Any]) -> None:
    """Each target of issue 13 with met/missed and by how much."""
    targets = results.get("targets", [])
    if not targets:
        return
    width = max(len(t["target"]) for t in targets)
    print("\ntargets (issue 13):")
    for t in targets:
        print(f"  {t['target']:<{width}}  {t['value']:<10g}  {describe(t)}")
