"""The operator's view: init and peer-add refusals, commands with an operator credential,
JSON logs, and ``wlx serve`` with /healthz, /readyz, /metrics and a clean drain."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from support.processes import free_port, start_serve
from test_cli import (
    ENV,
    WLX,
    Served,
    blank,
    card_of,
    fails,
    init,
    nodes,
    ok,
    served,
    wlx,
)

__all__ = ["blank", "nodes", "served"]  # fixtures shared with test_cli
FINGERPRINT = r"[0-9a-f]{4}(:[0-9a-f]{4}){7}"


def test_init_on_every_interface_needs_an_address_for_peers(tmp_path: Path) -> None:
    line = fails("init", tmp_path / "a", "--node-id", "CN", "--listen", "0.0.0.0:7001")
    assert "give --advertise HOST:7001" in line
    fails("init", tmp_path / "b", "--node-id", "CN", "--listen", "[::]:7001", match="--advertise")
    fails(
        "init",
        tmp_path / "c",
        "--node-id",
        "CN",
        "--listen",
        "127.0.0.1:1",
        "--advertise",
        "0.0.0.0:1",
        match="not an address peers can connect to",
    )
    assert not any(tmp_path.iterdir())
    ok(
        "init",
        tmp_path / "d",
        "--node-id",
        "CN",
        "--listen",
        "0.0.0.0:7001",
        "--advertise",
        "cn.example.org:7001",
    )
    card = json.loads(ok("identity", tmp_path / "d"))
    assert "cn.example.org:7001" in json.dumps(card) and "0.0.0.0" not in json.dumps(card)


def test_peer_add_of_another_key_needs_replace_and_shows_both(nodes: Path) -> None:
    cn, ru, impostor = nodes / "cn", nodes / "ru", nodes / "impostor"
    ok("peer", "add", cn, card_of(ru), "--address", "127.0.0.1:7002")
    line = fails(
        "peer",
        "add",
        cn,
        card_of(impostor),
        "--address",
        "127.0.0.1:7002",
        code=1,
        match="already trusted with another identity key",
    )
    old, new = (
        ok("identity", ru, "--fingerprint").strip(),
        ok("identity", impostor, "--fingerprint").strip(),
    )
    assert f"trusted: {old}" in line and f"this card: {new}" in line and "--replace" in line
    out = ok("peer", "add", cn, card_of(impostor), "--address", "127.0.0.1:7003", "--replace")
    assert f"fingerprint: {new}" in out
    listing = ok("peer", "list", cn)
    assert re.search(rf"^RU\t127.0.0.1:7003\t{new}$", listing, re.M), listing


def test_status_and_sync_with_an_operator_credential(served: Served) -> None:
    ru = served.credential.parent / "ru"
    operator = served.credential.parent / "ops-ru.json"
    if not operator.exists():
        ok("credential", "issue", ru, "--role", "operator", "--name", "ops-ru", "--out", operator)
    out = ok("status", "--credential", operator, "--node", served.ru_address)
    assert out.startswith("node RU: 0 own records") and "peer CN at" in out
    data = json.loads(ok("status", "--credential", operator, "--node", served.ru_address, "--json"))
    assert data["node_id"] == "RU" and data["peers"][0]["listings"] == 2
    assert ok("sync", "--credential", operator, "--node", served.ru_address).startswith("CN: ok")
    fails("status", *served.officer, match="refused")  # an officer is not an operator
    fails("status", match="give the node's DIR, or --credential")
    fails("status", ru, "--credential", operator, match="not both")


def test_json_logs(nodes: Path) -> None:
    cn = nodes / "cn"
    ok("peer", "add", cn, card_of(nodes / "ru"), "--address", f"127.0.0.1:{free_port()}")
    run = wlx("--log-format", "json", "-v", "sync", cn, real=True)
    assert run.code == 1
    logs = [json.loads(line) for line in run.err.splitlines() if line.startswith("{")]
    assert logs, run.err
    for entry in logs:
        assert set(entry) >= {"time", "level", "logger", "message"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])


def _http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def test_serve_with_metrics_from_node_toml_and_a_clean_drain(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    node = init(tmp_path / "cn", "CN", port)
    config = node / "node.toml"
    text = config.read_text()
    text = re.sub(r"\[metrics\][^\[]*", "", text)
    config.write_text(text + f'\n[metrics]\naddress = "127.0.0.1"\nport = {metrics_port}\n')
    proc = start_serve(node, port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _http(metrics_port, "/healthz") == (200, "ok\n")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert _http(metrics_port, "/readyz") == (200, "ready\n")
        assert 'wlx_listings{origin="CN"} 0.0' in _http(metrics_port, "/metrics")[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_metrics_port_in_use_is_one_line_before_serving(tmp_path: Path) -> None:
    import socket

    port = free_port()
    node = init(tmp_path / "cn", "CN", port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        proc = subprocess.run(
            [WLX, "serve", str(node), "--metrics-port", str(taken)],
            capture_output=True,
            text=True,
            timeout=30,
            env=ENV,
            check=False,
        )
    assert proc.returncode == 1, proc
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: cannot serve metrics on 127.0.0.1:{taken}")
    ), proc.stderr
