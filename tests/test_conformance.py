"""The conformance kit (scripts/conformance, docs/protocol.md appendix C) run
against a real ``wlx serve`` process: every MUST it checks passes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import CLEAN_ENV, free_port, start_serve
from test_cli import ok

KIT = Path(__file__).resolve().parents[1] / "scripts" / "conformance.py"
RESULT = re.compile(r"^(MUST-[0-9A-Z.]+-[0-9]+)\s+(PASS|FAIL)\s+\S")


def wlx(*args: object) -> str:
    """A ``wlx`` command, run in this process (as ``tests/test_cli.py`` does)."""
    return ok(*args)


def card(directory: Path) -> Path:
    path = directory.parent / f"{directory.name}.card.json"
    path.write_text(wlx("identity", directory), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[Path]]]:
    """A served node TG with 1,001 listings (imported after it trusted the
    kit's peer, so the kit's stream is past genesis), a peer directory it
    trusts, and an officer and an auditor credential it issued."""
    root = tmp_path_factory.mktemp("conformance")
    port = free_port()
    tg, peer = root / "tg", root / "peer"
    wlx("init", tg, "--node-id", "TG", "--listen", f"127.0.0.1:{port}")
    peer_port = free_port()
    wlx("init", peer, "--node-id", "CONFORMANCE", "--listen", f"127.0.0.1:{peer_port}")
    wlx("peer", "add", tg, card(peer), "--address", f"127.0.0.1:{peer_port}")
    wlx("peer", "add", peer, card(tg), "--address", f"127.0.0.1:{port}")
    listed = {
        "id": "TG-1",
        "names": ["Conformance Person"],
        "dob": "1980-05-17",
        "documents": [{"type": "P", "country": "XXA", "number": "CONFORMANCE1"}],
        "category": "wanted",
        "action": "arrest",
        "legal_basis": "test basis",
        "authority": "test authority",
        "expires": "2099-12-31",
    }
    # Over 1,000 listings: the snapshot has two parts, so the kit can
    # interrupt it after part 0 and resume it (§7.4, MUST-7.4-1, -2).
    others = [
        {**listed, "id": f"TG-{n}", "names": [f"Conformance Person {n}"], "documents": []}
        for n in range(2, 1_002)
    ]
    lines = [json.dumps(r) for r in [listed, *others]]
    (root / "list.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    wlx("records", "import", tg, root / "list.jsonl")
    credentials = []
    for role in ("officer", "auditor"):
        path = root / f"{role}.json"
        wlx("credential", "issue", tg, "--role", role, "--name", f"kit-{role}", "--out", path)
        credentials.append(path)
    proc = start_serve(tg, port, env=CLEAN_ENV)
    try:
        yield f"127.0.0.1:{port}", peer, credentials
    finally:
        proc.kill()
        proc.wait(timeout=10)


def run_kit(address: str, peer: Path, credentials: list[Path]) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(KIT), address, "--peer-dir", str(peer)]
    args += ["--listed-document", "P:xxa:conformance-1"]
    for path in credentials:
        args += ["--credential", str(path)]
    return subprocess.run(
        args, check=False, capture_output=True, text=True, env=CLEAN_ENV, timeout=120
    )


def test_the_kit_passes_against_a_wlx_node(target: tuple[str, Path, list[Path]]) -> None:
    address, peer, credentials = target
    run = run_kit(address, peer, credentials)
    print(run.stdout)  # shown with -s, or when the test fails
    results = [m.groups() for m in map(RESULT.match, run.stdout.splitlines()) if m]
    failed = [line for line in run.stdout.splitlines() if " FAIL " in line]
    assert not failed, run.stdout + run.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    musts = {must for must, _ in results}
    assert len(musts) >= 30, sorted(musts)
    for needed in (
        "MUST-5.5-8",
        "MUST-8.2-1",
        "MUST-8.4-1",
        "MUST-1.3-1",
        "MUST-A.5-1",
        "MUST-4.3-1",
        "MUST-R-3",
        "MUST-7.4-1",
        "MUST-7.4-2",
        "MUST-8.2-4",
        "MUST-A.3-4",
    ):
        assert needed in musts
    assert re.search(r"^\d+ of \d+ checks passed \(\d+ MUSTs\); 0 failed$", run.stdout, re.M)


def test_the_kit_fails_against_a_node_that_does_not_trust_its_peer(
    target: tuple[str, Path, list[Path]], tmp_path: Path
) -> None:
    address, peer, credentials = target
    stranger = tmp_path / "stranger"
    wlx("init", stranger, "--node-id", "STRANGER", "--listen", f"127.0.0.1:{free_port()}")
    run = run_kit(address, stranger, credentials)
    assert run.returncode == 2 and run.stderr.strip().endswith(
        f"does not trust TG; run `wlx peer add {stranger} TARGET-CARD.json --address HOST:PORT`"
    )
    wlx("peer", "add", stranger, peer.parent / "tg.card.json", "--address", address)
    run = run_kit(address, stranger, credentials)  # TG does not trust STRANGER
    assert run.returncode == 1
    assert "MUST-8.2-1   FAIL" in run.stdout and "0 failed" not in run.stdout
