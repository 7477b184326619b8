"""deploy/: the systemd unit is hardened and runs what exists; the container image copies
what the package needs and probes /healthz.  (Structural: no systemd or container
engine is assumed on a test machine; ``systemd-analyze verify`` runs where it exists.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"


def _unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "wlx.service").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_is_hardened() -> None:
    unit = _unit()
    for key, value in {
        "User": "wlx",
        "NoNewPrivileges": "true",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "KillSignal": "SIGTERM",
    }.items():
        assert unit.get(key) == [value], key
    assert unit["StateDirectory"] == ["wlx"]
    exec_start = unit["ExecStart"][0]
    assert " serve " in exec_start and "--log-format json" in exec_start


def test_the_container_image_builds_from_files_that_exist() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    assert "USER 10001" in text and "/healthz" in text and 'ENTRYPOINT ["wlx"' in text


def test_the_guide_names_real_commands_and_metrics() -> None:
    guide = (DEPLOY / "README.md").read_text()
    for metric in ("wlx_peer_staleness_seconds", "wlx_refusals_total", "wlx_detail_requests_total"):
        assert metric in guide
    assert "-servername cn.node.wlx" in guide


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = tmp_path / "wlx.service"
    unit.write_text(
        (DEPLOY / "wlx.service").read_text().replace("/opt/wlx/.venv/bin/wlx", "/bin/true")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert "wlx.service" not in result.stderr or result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_security_exposure_is_low(tmp_path: Path) -> None:
    import re

    unit = tmp_path / "wlx.service"
    unit.write_text((DEPLOY / "wlx.service").read_text())
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for wlx.service: ([0-9.]+)", result.stdout)
    if match is None:
        pytest.skip(f"systemd-analyze security --offline unsupported: {result.stderr[:200]}")
    assert float(match.group(1)) <= 2.0, result.stdout
