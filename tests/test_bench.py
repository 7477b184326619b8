"""``scripts/bench --quick`` runs end to end (at a tiny size: the figures are
not checked here; speed is measured only by the bench itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# One tiny run of every section (about 40 s on an idle 2-core machine; a
# shared, loaded one takes several times that).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]


def _bench(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), *options],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """One tiny ``--quick`` run, shared by the tests of its sections."""
    out = tmp_path_factory.mktemp("bench")
    proc = _bench(
        "--quick",
        "--records",
        "300",
        "--changes",
        "40",
        "--lookups",
        "60",
        "--clients",
        "2",
        "--import-records",
        "200",
        "--scales",
        "150,300",
        "--interrupt-snapshot",
        "--peer-lists",
        "2",
        "--peer-list-size",
        "40",
        "--json",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), out


def test_bench_quick_reports_wlx_beside_its_references(quick: tuple[dict[str, Any], Path]) -> None:
    results, out = quick
    for key in (
        "ref_keyed_hash_per_s",
        "ref_seal_per_s",
        "ref_sqlite_inserts_per_s",
        "ref_echo_concurrent_per_s",
        "import_records_per_s",
        "snapshot_listings_per_s",
        "delta_over_snapshot",
        "lookup_concurrent_per_s",
        "screen_identities_per_s",
        "receiver_bytes_per_listing",
        "freshness_s",
        "ru_serve_rss_mib",
        "import_file_listings_per_s",
        "import_file_peak_rss_mib",
    ):
        assert results[key] > 0, key
    assert "lookup_concurrent_per_s/ref_echo_concurrent_per_s" in results["ratios"]
    assert json.loads((out / "results-sqlite.json").read_text()) == results
    assert sorted(out.iterdir()) == [out / "results-sqlite.json"]  # no partial file left


def test_bench_reports_each_list_size(quick: tuple[dict[str, Any], Path]) -> None:
    results, _ = quick
    scales = results["scales"]
    assert scales["sizes"] == [150, 300]
    for size in ("150", "300"):
        figures = scales["per_size"][size]
        for key in ("import_records_per_s", "snapshot_listings_per_s", "lookup_p50_ms"):
            assert figures[key] > 0, (size, key)
        assert figures["delta_changes"] == 40 and figures["delta_sync_s"] > 0
        for key in ("delta_over_snapshot", "receiver_bytes_per_listing"):
            assert figures[key] > 0, (size, key)
        for process in ("receiver_serve_rss_mib", "cn_serve_rss_mib"):
            assert figures[process]["rss_mib"] > 0
        assert figures["bench_process_rss_mib"] > 0
    assert scales["lookup_p50_ms_large_over_small"] > 0
    stopped = scales["per_size"]["300"]["interrupt"]  # the origin stopped (SIGTERM) and restarted
    assert stopped["origin_exit_status"] == 0 and not stopped["origin_log_traceback"]
    assert stopped["second_sync_ok"] and stopped["rejections_recorded"] == 0
    assert "scales.lookup_p50_ms@300/@150" in results["ratios"]


def test_bench_reports_lookups_on_a_node_holding_peers_lists(
    quick: tuple[dict[str, Any], Path],
) -> None:
    results, _ = quick
    held = results["peer_lists"]
    assert held["peer_lists"] == 2 and held["listings_held"] == 80
    assert held["lookup_concurrent_per_s"] > 0 and held["ref_echo_concurrent_per_s"] > 0
    assert "peer_lists.lookup_concurrent_per_s/ref_echo_concurrent_per_s" in results["ratios"]


def test_bench_judges_each_target(quick: tuple[dict[str, Any], Path]) -> None:
    results, _ = quick
    judged = {t["target"]: t for t in results["targets"]}
    growth = judged["lookup p50 at the largest size <= 1.3x the smallest's"]
    assert growth["met"] == (growth["value"] <= 1.3)
    snapshot = judged["snapshot sync >= 25,000 listings/s"]
    assert snapshot["met"] == (snapshot["value"] >= 25_000)
    assert snapshot["value"] == results["snapshot_listings_per_s"]


def test_bench_refuses_a_large_size_without_the_flag_or_the_disk() -> None:
    proc = _bench("--scales", "1000,2000000")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "bench: 2,000,000 listings needs --large (hours of run, tens of GB of disk)"
    ]
    proc = _bench("--scales", "1000,1000000000000", "--large")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("bench: refusing to start 1,000,000,000,000 listings: they need about")


@pytest.mark.postgres
def test_bench_frontends_reports_lookups_per_second_for_each_count(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--backend",
            "postgres",
            "--frontends",
            "2",
            "--records",
            "200",
            "--lookups",
            "40",
            "--clients",
            "2",
            "--json",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    assert results["lookups_per_s_1_frontends"] > 0
    assert results["lookups_per_s_2_frontends"] > 0
    assert results["speedup_2_over_1"] > 0
