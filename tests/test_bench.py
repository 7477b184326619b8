"""``scripts/bench --quick`` runs end to end (at a tiny size: the figures are
not checked here; speed is measured only by the bench itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_reports_wlx_beside_its_references(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
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
    assert json.loads((tmp_path / "results-sqlite.json").read_text()) == results
