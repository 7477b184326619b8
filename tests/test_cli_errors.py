"""Operational errors are one line that says what is wrong (issue 9, item 8):
PostgreSQL unreachable or missing, a metrics port in use, a file that is not
a credential, the origin of a detail request down, and why a connection
failed (nothing listening, not trusted, our certificate refused, stalled).
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.nodes import PG_DSN, Federation, FederationMaker, record
from support.processes import free_port
from test_cli import fails, init, ok, rec, write_jsonl

from wlx.node.core.config import write_private
from wlx.node.outgoing import ownlist
from wlx.node.rpc.netcheck import Endpoint, why_unreachable
from wlx.node.rpc.transport import Credential, client_endpoint
from wlx.node.trust import credentials

pytestmark = pytest.mark.slow


def _dsn_with(database: str, port: int = 5432) -> str:
    base = PG_DSN.rsplit("/", 1)[0]
    return f"{base.rsplit(':', 1)[0]}:{port}/{database}"


@pytest.mark.postgres
def test_a_missing_postgres_database_is_named(tmp_path: Path) -> None:
    missing = f"nodb_{uuid.uuid4().hex[:8]}"
    line = fails(
        "init",
        tmp_path / "cn",
        "--node-id",
        "CN",
        "--listen",
        "127.0.0.1:7001",
        "--postgres",
        _dsn_with(missing),
        match=f"database '{missing}' does not exist",
    )
    assert "PostgreSQL at 127.0.0.1:5432" in line


def test_postgres_with_nothing_listening_says_so(tmp_path: Path) -> None:
    port = free_port()
    fails(
        "init",
        tmp_path / "cn",
        "--node-id",
        "CN",
        "--listen",
        "127.0.0.1:7001",
        "--postgres",
        _dsn_with("test", port),
        match=f"PostgreSQL at 127.0.0.1:{port}: nothing is listening there",
    )


def test_a_metrics_port_in_use_stops_serve_before_grpc_starts(tmp_path: Path) -> None:
    grpc_port = free_port()
    node = init(tmp_path / "cn", "CN", grpc_port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics_port = taken.getsockname()[1]
        fails(
            "serve",
            node,
            "--metrics-port",
            metrics_port,
            match=f"cannot serve metrics on 127.0.0.1:{metrics_port} .*choose another",
        )
    with socket.socket() as probe:  # gRPC never bound its port
        probe.bind(("127.0.0.1", grpc_port))


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1"])
def test_a_listen_address_that_is_not_host_port_is_refused_before_serving(
    tmp_path: Path, listen: str
) -> None:
    """``--listen`` is checked like node.toml's: a port out of range is not
    quietly replaced by a free one."""
    node = init(tmp_path / "cn", "CN", free_port())
    fails("serve", node, "--listen", listen, match=r"is not HOST:PORT")


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_a_records_file_given_as_a_credential_is_named_as_such(tmp_path: Path, mode: int) -> None:
    listing = write_jsonl(tmp_path / "list.jsonl", [rec("CN-1")])
    listing.chmod(mode)
    fails(
        "lookup",
        "--credential",
        listing,
        "--doc",
        "P:CHN:E1",
        match=r"list\.jsonl is not a wlx credential file",
    )


def test_a_missing_credential_file_is_named(tmp_path: Path) -> None:
    fails("lookup", "--credential", tmp_path / "nope.json", "--doc", "P:CHN:E1", match="nope.json")


# ------------------------------------------------------------ served nodes


@pytest.fixture
def fed(federation: FederationMaker) -> Federation:
    fed = federation(["CN", "RU"])
    ownlist.import_records(fed["CN"].node, [record("CN-1")])
    fed.sync_all()
    return fed


def _credential_file(path: Path, credential: Credential) -> Path:
    write_private(path, credential.to_bytes())
    return path


def test_detail_with_the_origin_down_blames_the_origin(fed: Federation, tmp_path: Path) -> None:
    officer = _credential_file(
        tmp_path / "o.json", credentials.issue(fed["RU"].node, name="post-1", role="officer")
    )
    out = ok(
        "lookup",
        "--credential",
        officer,
        "--node",
        fed["RU"].address,
        "--name",
        "Test Person CN 1",
        "--dob",
        "1980-05-17",
    )
    assert "HIT CN CN-1" in out
    fed["CN"].server.stop(grace=None).wait()
    line = fails(
        "detail",
        "--credential",
        officer,
        "--node",
        fed["RU"].address,
        "CN-1",
        "--purpose",
        "check",
        match="origin CN",
    )
    assert f"your node at {fed['RU'].address} answered" in line
    assert "nothing is listening there" in line


def test_nothing_listening_is_named(fed: Federation, tmp_path: Path) -> None:
    officer = _credential_file(
        tmp_path / "o.json", credentials.issue(fed["RU"].node, name="post-1", role="officer")
    )
    port = free_port()
    fails(
        "lookup",
        "--credential",
        officer,
        "--node",
        f"127.0.0.1:{port}",
        "--doc",
        "P:CHN:E1",
        match=f"your node at 127.0.0.1:{port}: nothing is listening there",
    )


def test_a_node_that_is_not_the_pinned_one_is_not_trusted(fed: Federation, tmp_path: Path) -> None:
    # A credential of CN pointed at RU: RU's certificate is not CN's.
    officer = _credential_file(
        tmp_path / "o.json", credentials.issue(fed["CN"].node, name="post-cn", role="officer")
    )
    fails(
        "lookup",
        "--credential",
        officer,
        "--node",
        fed["RU"].address,
        "--doc",
        "P:CHN:E1",
        match="its TLS certificate is not the one trusted for it: not trusted",
    )


def test_a_refused_credential_is_named(fed: Federation, tmp_path: Path) -> None:
    # A credential CN issued, presented to RU as if RU had issued it.
    issued = credentials.issue(fed["CN"].node, name="post-cn", role="officer")
    ru = fed["RU"].node
    forged = Credential(
        "RU", fed["RU"].address, "x", "officer", issued.cert, issued.key, ca_cert=ru.ca_cert
    )
    officer = _credential_file(tmp_path / "o.json", forged)
    fails(
        "lookup",
        "--credential",
        officer,
        "--node",
        fed["RU"].address,
        "--doc",
        "P:CHN:E1",
        match="it refused our TLS certificate \\(is your credential one that node RU issued",
    )


def test_a_peer_that_does_not_trust_us_is_named_in_sync(fed: Federation) -> None:
    from wlx.node.trust import lifecycle

    lifecycle.revoke_peer(fed["CN"].node, "RU")
    report = fed.sync("RU", "CN")
    assert not report.ok
    assert "it refused our TLS certificate (is RU trusted by CN" in (report.error or "")


@pytest.fixture
def stalling_listener() -> Iterator[int]:
    """Accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_stalling_server_is_named(fed: Federation, stalling_listener: int) -> None:
    issued = credentials.issue(fed["RU"].node, name="post-1", role="officer")
    endpoint = client_endpoint(f"127.0.0.1:{stalling_listener}", issued)
    assert "stalled in the TLS handshake" in why_unreachable(endpoint, timeout=0.5)


def test_an_unknown_host_is_named() -> None:
    assert why_unreachable(Endpoint("no-such-host.invalid:1", "x")) == "unknown host"
