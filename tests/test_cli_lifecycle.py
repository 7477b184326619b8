"""Security administration through the CLI, across two running ``wlx serve``
processes: sharing policy, new epoch, key rotation (picked up by the running
server at once), credential revocation, peer revocation."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.processes import free_port
from test_cli import _serve, card_of, init, ok, rec, wlx, write_jsonl

pytestmark = pytest.mark.slow


@dataclass
class Pair:
    cn: Path
    ru: Path
    officer: Path


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    procs: list[subprocess.Popen[bytes]] = []
    for attempt in range(5):
        root = tmp_path / f"try{attempt}"
        ports = {"CN": free_port(), "RU": free_port()}
        cn, ru = init(root / "cn", "CN", ports["CN"]), init(root / "ru", "RU", ports["RU"])
        ok("peer", "add", cn, card_of(ru), "--address", f"127.0.0.1:{ports['RU']}")
        ok("peer", "add", ru, card_of(cn), "--address", f"127.0.0.1:{ports['CN']}")
        listed = [
            rec("CN-1", category="wanted"),
            rec("CN-2", category="missing", action="locate"),
        ]
        ok("records", "import", cn, write_jsonl(root / "list.jsonl", listed))
        officer = root / "officer.json"
        ok("credential", "issue", ru, "--role", "officer", "--name", "post-1", "--out", officer)
        try:
            procs.append(_serve(cn, ports["CN"]))
            procs.append(_serve(ru, ports["RU"]))
        except RuntimeError:
            for proc in procs:
                proc.kill()
            procs.clear()
            continue
        try:
            yield Pair(cn, ru, officer)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=10)
        return
    pytest.fail("could not start the nodes")


def peer_state(directory: Path, peer: str = "CN") -> dict[str, int]:
    status = json.loads(ok("status", directory, "--json"))
    (row,) = [p for p in status["peers"] if p["peer"] == peer]
    return {"listings": int(row["listings"]), "epoch": int(row["epoch"])}


def hits(officer: Path, record_id: str) -> str:
    return ok(
        "lookup",
        "--credential",
        officer,
        "--name",
        f"Cli Person {record_id}",
        "--dob",
        "1980-05-17",
        real=True,
    )


def test_policy_epoch_rotation_and_revocation_through_the_cli(pair: Pair) -> None:
    # (RU's server may sync on its own too; the state is what counts.)
    ok("sync", pair.ru, real=True)
    assert peer_state(pair.ru) == {"listings": 2, "epoch": 1}

    out = ok("peer", "policy", pair.cn, "RU", "--categories", "missing")
    assert "1 removals" in out
    assert "categories: missing" in ok("peer", "policy", pair.cn, "RU")
    ok("sync", pair.ru, real=True)
    assert peer_state(pair.ru)["listings"] == 1
    assert "no hit" in hits(pair.officer, "CN-1")
    ok("peer", "policy", pair.cn, "RU", "--all")
    ok("sync", pair.ru, real=True)
    assert peer_state(pair.ru)["listings"] == 2

    assert "RU: epoch 2" in ok("epoch", "new", pair.cn, "--peer", "RU")
    ok("sync", pair.ru, real=True)
    assert peer_state(pair.ru) == {"listings": 2, "epoch": 2}

    # Rotation while CN's server runs: the card reaches RU at once, and CN's
    # server presents its new certificate to the next connection.
    out = ok("keys", "rotate", pair.cn)
    assert "delivered to: RU" in out
    assert ok("identity", pair.cn, "--fingerprint").strip() in out
    ok("sync", pair.ru, real=True)
    assert peer_state(pair.ru) == {"listings": 2, "epoch": 3}
    assert "HIT CN CN-1" in hits(pair.officer, "CN-1")

    # The officer's own node rotates: the credential pins RU's credential CA,
    # which a rotation keeps, so it still opens RU's running server.
    ok("keys", "rotate", pair.ru)
    assert "HIT CN CN-1" in hits(pair.officer, "CN-1")
    renewed = pair.officer.with_name("renewed.json")
    out = ok("credential", "renew", pair.ru, "post-1", "--out", renewed)
    assert "renewed officer credential post-1" in out
    assert "HIT CN CN-1" in hits(pair.officer, "CN-1")  # the old one keeps working
    assert "HIT CN CN-1" in hits(renewed, "CN-1")

    ok("credential", "revoke", pair.ru, "post-1")
    run = wlx("lookup", "--credential", pair.officer, "--doc", "P:CHN:X1", real=True)
    assert run.code == 1 and run.err.startswith("error: ") and "revoked" in run.err

    assert "revoked RU; purged 0" in ok("peer", "revoke", pair.cn, "RU")
    run = wlx("sync", pair.ru, real=True)
    assert run.code == 1 and "TLS" in run.err
