"""The ``wlx`` command line, driven as an operator or officer would.

"Every error you can cause is one line on stderr and a non-zero exit": each
failing command here must print exactly one line on stderr, starting with
``error:``, exit non-zero, print no traceback, and (where it would change
something) change nothing.

Commands run through ``wlx.node.cli.main`` in this process (with stdout,
stderr and the root logger as a fresh process has them), and, where marked
``real=True``, as real ``wlx`` processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from support.nodes import PG_DSN
from support.processes import free_port, start_serve

from wlx.crypto.card import parse_card
from wlx.node.cli.main import main

pytestmark = pytest.mark.slow

WLX = str(Path(sys.executable).with_name("wlx"))
ENV = {k: v for k, v in os.environ.items() if k not in ("WLX_DEBUG", "WLX_FAILPOINT")}
FINGERPRINT = re.compile(r"^[0-9a-f]{4}(:[0-9a-f]{4}){7}$")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def _in_process(args: list[str]) -> Run:
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers.clear()  # as in a new process: the CLI sets up its own logging
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    return Run(code, out.getvalue(), err.getvalue())


def wlx(*args: object, real: bool = False, timeout: float = 60) -> Run:
    if not real:
        run = _in_process([str(a) for a in args])
        assert "Traceback" not in run.out + run.err, run
        return run
    proc = subprocess.run(
        [WLX, *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in run.out + run.err, run
    return run


def ok(*args: object, real: bool = False) -> str:
    run = wlx(*args, real=real)
    assert run.code == 0, run
    return run.out


def fails(*args: object, match: str = "", code: int = 1, real: bool = False) -> str:
    """Run a command that must fail: one ``error:`` line on stderr, exit ``code``."""
    run = wlx(*args, real=real)
    lines = run.err.splitlines()
    assert run.code == code, run
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    assert re.search(match, lines[0], re.IGNORECASE), (match, lines[0])
    return lines[0]


def init(directory: Path, node_id: str, port: int | None = None) -> Path:
    ok("init", directory, "--node-id", node_id, "--listen", f"127.0.0.1:{port or free_port()}")
    return directory


def card_of(directory: Path) -> Path:
    path = directory.parent / f"{directory.name}.card.json"
    path.write_text(ok("identity", directory), encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def rec(record_id: str, **overrides: object) -> dict[str, object]:
    obj: dict[str, object] = {
        "id": record_id,
        "names": [f"Cli Person {record_id}"],
        "dob": "1980-05-17",
        "nationality": "CHN",
        "sex": "M",
        "documents": [
            {"type": "P", "country": "CHN", "number": f"E{abs(hash(record_id)) % 10**8:08d}"}
        ],
        "category": "wanted",
        "action": "arrest",
        "legal_basis": "test basis",
        "authority": "test authority",
        "expires": "2099-12-31",
    }
    obj.update(overrides)
    return obj


def count(directory: Path) -> int:
    return int(ok("records", "count", directory).strip())


@pytest.fixture(scope="module")
def blank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nodes made once with ``wlx init``: cn (CN), ru (RU), impostor (RU, other keys)."""
    root = tmp_path_factory.mktemp("blank")
    for name, node_id in (("cn", "CN"), ("ru", "RU"), ("impostor", "RU")):
        init(root / name, node_id)
    return root


@pytest.fixture
def nodes(blank: Path, tmp_path: Path) -> Path:
    """A fresh copy of the blank nodes, in this test's directory."""
    for name in ("cn", "ru", "impostor"):
        shutil.copytree(blank / name, tmp_path / name)
    return tmp_path


def nothing_created(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]  # no staging left


# ------------------------------------------------------------------ init


def test_init_creates_keys_config_card_and_store(tmp_path: Path) -> None:
    port = free_port()
    out = ok("init", tmp_path / "cn", "--node-id", "CN", "--listen", f"127.0.0.1:{port}", real=True)
    node = tmp_path / "cn"
    for name in ("node.toml", "card.json", "wlx.db", "keys/identity.pem", "keys/box.pem"):
        assert (node / name).is_file(), name
    private = sorted(p.name for p in (node / "keys").iterdir() if not p.name.endswith(".crt"))
    assert {"identity.pem", "box.pem", "storage.key"} <= set(private)
    for key in private:
        assert stat.S_IMODE((node / "keys" / key).stat().st_mode) == 0o600, key
    assert stat.S_IMODE((node / "keys").stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(node.stat().st_mode) & 0o077 == 0  # the store is inside it
    card = parse_card((node / "card.json").read_bytes())
    assert (card.node_id, card.address) == ("CN", f"127.0.0.1:{port}")
    fingerprint = ok("identity", node, "--fingerprint", real=True).strip()
    assert FINGERPRINT.match(fingerprint) and fingerprint == card.fingerprint()
    assert fingerprint in out and "created node CN" in out
    assert count(node) == 0


def test_init_into_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "cn").mkdir()
    init(tmp_path / "cn", "CN")
    assert (tmp_path / "cn" / "card.json").is_file()


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    node = init(tmp_path / "cn", "CN")
    before = {p: p.read_bytes() for p in node.rglob("*") if p.is_file()}
    fails("init", node, "--node-id", "RU", "--listen", "127.0.0.1:7000", match="empty", real=True)
    assert {p: p.read_bytes() for p in node.rglob("*") if p.is_file()} == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    fails("init", other, "--node-id", "RU", "--listen", "127.0.0.1:7000", match="not empty")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "options",
    [
        ["--node-id", "cn", "--listen", "127.0.0.1:7001"],
        ["--node-id", "C", "--listen", "127.0.0.1:7001"],
        ["--node-id", "CN_1", "--listen", "127.0.0.1:7001"],
        ["--node-id", "CN\n", "--listen", "127.0.0.1:7001"],
        ["--node-id", "-CN", "--listen", "127.0.0.1:7001"],
        ["--node-id", "X" * 33, "--listen", "127.0.0.1:7001"],
        ["--node-id", "CN", "--listen", "localhost"],
        ["--node-id", "CN", "--listen", "127.0.0.1:99999"],
        ["--node-id", "CN", "--listen", "127.0.0.1:port"],
        ["--node-id", "CN", "--listen", "127.0.0.1:7001", "--advertise", "http://x:1/"],
        [
            "--node-id",
            "CN",
            "--listen",
            "127.0.0.1:7001",
            "--postgres",
            "postgresql://127.0.0.1:5432/test",
            "--pg-schema",
            "Bad-Schema",
        ],
    ],
)
def test_init_with_invalid_settings_is_one_line_and_creates_nothing(
    tmp_path: Path, options: list[str]
) -> None:
    fails("init", tmp_path / "node", *options)
    nothing_created(tmp_path, "node")


@pytest.mark.postgres
def test_init_on_postgres_one_node_per_schema(tmp_path: Path) -> None:
    schemas = [f"t_cli_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    pg = ["--postgres", PG_DSN]
    try:
        cn = tmp_path / "cn"
        ok(
            "init",
            cn,
            "--node-id",
            "CN",
            "--listen",
            "127.0.0.1:7001",
            *pg,
            "--pg-schema",
            schemas[0],
        )
        for node_id in ("RU", "CN"):  # another node, or the same one again, in that schema
            fails(
                "init",
                tmp_path / "other",
                "--node-id",
                node_id,
                "--listen",
                "127.0.0.1:7002",
                *pg,
                "--pg-schema",
                schemas[0],
                match="already holds data",
            )
            nothing_created(tmp_path, "other")
        ru = tmp_path / "ru"
        ok(
            "init",
            ru,
            "--node-id",
            "RU",
            "--listen",
            "127.0.0.1:7002",
            *pg,
            "--pg-schema",
            schemas[1],
        )
        ok("records", "import", cn, write_jsonl(tmp_path / "l.jsonl", [rec("CN-1")]))
        assert (count(cn), count(ru)) == (1, 0)
        assert ok("status", ru).splitlines()[0] == "node RU: 0 own records"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_init_with_a_bad_option_value_is_a_one_line_usage_error(tmp_path: Path) -> None:
    line = fails(
        "init",
        tmp_path / "n",
        "--node-id",
        "CN",
        "--listen",
        "127.0.0.1:1",
        "--sync-interval",
        "0",
        code=2,
    )
    assert "sync-interval" in line
    fails("init", tmp_path / "n", "--node-id", "CN", code=2, match="listen")
    fails("no-such-command", code=2, match="no-such-command", real=True)
    nothing_created(tmp_path, "n")


# ------------------------------------------------------------------ identity and peers


def test_identity_prints_a_card_that_peer_add_accepts(nodes: Path) -> None:
    cn, ru = nodes / "cn", nodes / "ru"
    card = card_of(ru)
    assert parse_card(card.read_bytes()).node_id == "RU"
    fingerprint = ok("identity", ru, "--fingerprint").strip()
    out = ok(
        "peer", "add", cn, card, "--address", "127.0.0.1:7002", "--expect-fingerprint", fingerprint
    )
    assert "trusted peer RU" in out and fingerprint in out
    assert ok("peer", "list", cn).split() == ["RU", "127.0.0.1:7002", fingerprint]


def test_identity_of_a_directory_that_is_not_a_node(tmp_path: Path) -> None:
    fails("identity", tmp_path, match="not a wlx node directory")
    fails("identity", tmp_path / "missing", match="not a wlx node directory")
    fails("records", "count", tmp_path, match="not a wlx node directory")


def test_peer_add_refusals_change_nothing(nodes: Path) -> None:
    tmp_path = nodes
    cn, ru = nodes / "cn", nodes / "ru"
    ru_card, cn_card = card_of(ru), card_of(cn)
    fails("peer", "add", cn, tmp_path / "missing.json", "--address", "127.0.0.1:1", match="read")
    (tmp_path / "junk.json").write_text('{"hello": "world"}')
    fails("peer", "add", cn, tmp_path / "junk.json", "--address", "127.0.0.1:1", match="card")
    (tmp_path / "binary.json").write_bytes(os.urandom(300))
    fails("peer", "add", cn, tmp_path / "binary.json", "--address", "127.0.0.1:1", match="card")
    fails("peer", "add", cn, tmp_path, "--address", "127.0.0.1:1", code=2)  # a directory
    tampered = json.loads(ru_card.read_text())
    tampered["wlx_identity_card"] = tampered["wlx_identity_card"].replace('"RU"', '"XX"')
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    fails("peer", "add", cn, tmp_path / "tampered.json", "--address", "127.0.0.1:1", match="card")
    fails("peer", "add", cn, cn_card, "--address", "127.0.0.1:1", match="own")
    fails("peer", "add", cn, ru_card, "--address", "nowhere", match="HOST:PORT")
    fails(
        "peer",
        "add",
        cn,
        ru_card,
        "--address",
        "127.0.0.1:1",
        "--expect-fingerprint",
        "0000:0000:0000:0000:0000:0000:0000:0000",
        match="fingerprint mismatch",
    )
    assert ok("peer", "list", cn) == ""


def test_peer_add_again_updates_the_address_and_a_new_key_is_refused(nodes: Path) -> None:
    cn, ru = nodes / "cn", nodes / "ru"
    ru_card = card_of(ru)
    ok("peer", "add", cn, ru_card, "--address", "127.0.0.1:7002")
    ok("peer", "add", cn, ru_card, "--address", "10.0.0.2:7002")
    listed = ok("peer", "list", cn).splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[:2] == ["RU", "10.0.0.2:7002"]

    impostor = nodes / "impostor"  # same node id, another identity key
    line = fails("peer", "add", cn, card_of(impostor), "--address", "127.0.0.1:6666")
    assert "RU" in line and "another identity key" in line
    assert ok("peer", "list", cn).splitlines() == listed


# ------------------------------------------------------------------ records


def test_records_import_jsonl_and_csv(nodes: Path) -> None:
    tmp_path = nodes
    cn = nodes / "cn"
    jsonl = write_jsonl(tmp_path / "list.jsonl", [rec("CN-1"), rec("CN-2", dob="1970")])
    assert "2 added, 0 updated, 0 unchanged" in ok("records", "import", cn, jsonl)
    csv = tmp_path / "list.csv"
    csv.write_text(
        "id,names,dob,nationality,sex,documents,category,action,legal_basis,authority,expires\n"
        "CN-3,Li Lei|李雷,1990-01-02,CHN,M,P:CHN:G1234567|ID:CHN:X99,wanted,arrest,"
        "basis,authority,2099-01-01\n"
        'CN-4,"Zhang, San",,CHN,,P:CHN:G7654321,fraud,inform,"basis, with comma",auth,2098-01-01\n',
        encoding="utf-8",
    )
    assert "2 added" in ok("records", "import", cn, csv)
    assert count(cn) == 4
    assert "0 added, 0 updated, 2 unchanged" in ok("records", "import", cn, csv)
    write_jsonl(jsonl, [rec("CN-1", action="refuse-entry")])
    assert "0 added, 1 updated, 0 unchanged" in ok("records", "import", cn, jsonl)
    bom = tmp_path / "bom.csv"  # as spreadsheets save it
    bom.write_bytes(
        b"\xef\xbb\xbf" + csv.read_bytes().replace(b"CN-3", b"CN-5").replace(b"CN-4", b"CN-6")
    )
    assert "2 added" in ok("records", "import", cn, bom)
    assert "1 added" in ok(
        "records", "import", cn, write_jsonl(tmp_path / "x.txt", [rec("CN-7")]), "--format", "jsonl"
    )
    assert count(cn) == 7


def _line(n: int) -> str:
    return rf"\bline {n}\b"


BAD_LINES: list[tuple[dict[str, object], str]] = [
    ({"id": "CN-2", "dob": "1980-02-30"}, "date of birth"),
    ({"id": "CN-2", "dob": "17.05.1980"}, "date of birth"),
    ({"id": "CN-2", "expires": "2099-13-01"}, "expires"),
    ({"id": "CN-2", "expires": "31.12.2099"}, "expires"),
    ({"id": "CN-2", "nationality": "China"}, "country"),
    ({"id": "CN-2", "documents": [{"type": "P", "country": "XX", "number": "E1"}]}, "country"),
    (
        {"id": "CN-2", "documents": [{"type": "P", "country": "CHN", "number": "É1"}]},
        "document",
    ),
    (
        {"id": "CN-2", "documents": [{"type": "P", "country": "CHN", "number": "--"}]},
        "document",
    ),
    ({"id": "CN-2", "documents": [{"type": "P", "country": "CHN"}]}, "number"),
    ({"id": "CN-2", "documents": ["P:CHN:E1"]}, "documents"),
    ({"id": "CN-2", "tattoo": "left arm"}, "unknown field 'tattoo'"),
    ({"id": "CN-2"}, "CN-2.*line 1"),
    ({"id": "CN 2"}, "id"),
    ({"id": "CN-2", "category": ""}, "category"),
    ({"id": "CN-2", "names": "Not A List"}, "names"),
    ({"id": "CN-2", "dob": "", "documents": []}, "needs a document"),
    ({"id": "CN-2", "sex": "Q"}, "sex"),
]


def test_records_import_a_bad_line_imports_nothing(nodes: Path) -> None:
    cn = nodes / "cn"
    ok("records", "import", cn, write_jsonl(nodes / "first.jsonl", [rec("CN-1")]))
    for bad, match in BAD_LINES:
        records = [rec("CN-2"), rec("CN-3"), rec(str(bad["id"]), **bad), rec("CN-4")]
        line = fails("records", "import", cn, write_jsonl(nodes / "l.jsonl", records), match=match)
        assert re.search(_line(3), line) and "nothing was imported" in line, line
    assert count(cn) == 1


def test_records_import_file_level_errors(nodes: Path) -> None:
    tmp_path = nodes
    cn = nodes / "cn"
    good = json.dumps(rec("CN-1"))
    cases: list[tuple[str, bytes, str]] = [
        ("broken.jsonl", f"{good}\n{{not json\n".encode(), r"line 2.*JSON"),
        ("array.jsonl", f"{good}\n[1, 2]\n".encode(), r"line 2.*object"),
        ("empty.jsonl", b"\n\n", "no records"),
        ("latin1.jsonl", good.replace("Cli", "Clï").encode("latin-1"), "UTF-8"),
        ("bad.csv", b"id,names,colour\nCN-1,A B,red\n", "header column 3"),
        ("short.csv", b"id,names,dob\nCN-1,A B,1980,extra\n", r"line 2"),
        (
            "nodocs.csv",
            b"id,names,dob,documents\nCN-1,A B,1980,P-CHN-E1\n",
            r"line 2.*TYPE:COUNTRY",
        ),
    ]
    for name, data, match in cases:
        (tmp_path / name).write_bytes(data)
        fails("records", "import", cn, tmp_path / name, match=match)
    fails("records", "import", cn, tmp_path / "missing.jsonl", match="cannot read")
    fails("records", "import", cn, tmp_path, code=2, match="directory")
    assert count(cn) == 0


def test_records_remove(nodes: Path) -> None:
    cn = nodes / "cn"
    ok("records", "import", cn, write_jsonl(nodes / "l.jsonl", [rec("CN-1"), rec("CN-2")]))
    assert "removed CN-1" in ok("records", "remove", cn, "CN-1")
    assert count(cn) == 1
    fails("records", "remove", cn, "CN-1", match="CN-1")
    fails("records", "remove", cn, "NOPE", match="no record")
    assert count(cn) == 1


@pytest.mark.parametrize("key", ["identity.pem", "box.pem", "storage.key", "tls.pem", "ca.pem"])
def test_a_key_file_readable_by_others_is_refused(nodes: Path, key: str) -> None:
    cn = nodes / "cn"
    path = cn / "keys" / key
    path.chmod(0o644)
    line = fails("records", "count", cn, match="accessible to others", real=key == "box.pem")
    assert str(path) in line and "0644" in line and "chmod 600" in line
    path.chmod(0o600)
    assert count(cn) == 0


def test_a_missing_key_file_is_one_line(nodes: Path) -> None:
    cn = nodes / "cn"
    (cn / "keys" / "box.pem").unlink()
    fails("status", cn, match="box.pem")


# ------------------------------------------------------------------ sync and status


def test_status_text_and_json(nodes: Path) -> None:
    cn, ru = nodes / "cn", nodes / "ru"
    ok("peer", "add", cn, card_of(ru), "--address", "127.0.0.1:7002")
    ok("records", "import", cn, write_jsonl(nodes / "l.jsonl", [rec("CN-1"), rec("CN-2")]))
    text = ok("status", cn)
    assert text.splitlines()[0] == "node CN: 2 own records"
    assert "peer RU at 127.0.0.1:7002" in text and "none yet" in text
    data = json.loads(ok("status", cn, "--json"))
    assert data["node_id"] == "CN" and data["own_records"] == 2
    [peer] = data["peers"]
    assert peer["peer"] == "RU" and peer["address"] == "127.0.0.1:7002"
    assert (peer["epoch"], peer["seq"], peer["listings"], peer["last_sync"]) == (0, 0, 0, 0)
    assert peer["last_error"] == "" and peer["behind"] == 0


def test_sync_with_an_unreachable_peer_is_one_line_and_shows_in_status(nodes: Path) -> None:
    cn, ru = nodes / "cn", nodes / "ru"
    ok("peer", "add", ru, card_of(cn), "--address", f"127.0.0.1:{free_port()}")
    line = fails("sync", ru, match="CN", real=True)
    assert "nothing is listening there" in line
    fails("sync", ru, "--peer", "XX", match="no trusted peer XX")
    data = json.loads(ok("status", ru, "--json"))
    assert "nothing is listening there" in data["peers"][0]["last_error"]
    assert "last error" in ok("status", ru)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_on_a_port_in_use_is_a_user_error(nodes: Path, busy_port: int) -> None:
    node = init(nodes / "busy", "BUSY", busy_port)
    run = wlx("serve", node, real=True, timeout=30)
    assert run.code == 1, run
    assert run.err.splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{busy_port}")
    assert "internal error" not in run.err


def test_serve_on_a_port_in_use_is_one_line(nodes: Path, busy_port: int) -> None:
    node = init(nodes / "busy", "BUSY", busy_port)
    fails("serve", node, match="cannot listen", real=True)


# ------------------------------------------------------------------ lookups against a running node


@dataclass
class Served:
    ru_address: str
    cn_address: str
    credential: Path
    """An officer credential of RU (it names RU's address)."""

    @property
    def officer(self) -> tuple[str, str]:
        return ("--credential", str(self.credential))


def _serve(directory: Path, port: int) -> subprocess.Popen[bytes]:
    return start_serve(directory, port, env=ENV)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """CN and RU as ``wlx serve`` processes; RU has synced CN's list."""
    procs: list[subprocess.Popen[bytes]] = []
    listed = [
        rec(
            "CN-0001",
            names=["Wang Wei", "王伟"],
            documents=[{"type": "P", "country": "CHN", "number": "E12345678"}],
        ),
        rec("CN-0002", names=["Li Na"], dob="1975", documents=[]),
    ]
    try:
        for attempt in range(5):
            root = tmp_path_factory.mktemp(f"served{attempt}")
            ports = {"CN": free_port(), "RU": free_port()}
            cn, ru = init(root / "cn", "CN", ports["CN"]), init(root / "ru", "RU", ports["RU"])
            ok("peer", "add", cn, card_of(ru), "--address", f"127.0.0.1:{ports['RU']}")
            ok("peer", "add", ru, card_of(cn), "--address", f"127.0.0.1:{ports['CN']}")
            ok("records", "import", cn, write_jsonl(root / "l.jsonl", listed))
            credential = root / "post-ru-1.json"
            out = ok(
                "credential",
                "issue",
                ru,
                "--role",
                "officer",
                "--name",
                "post-ru-1",
                "--out",
                credential,
            )
            assert "officer" in out and stat.S_IMODE(credential.stat().st_mode) == 0o600
            try:
                procs.append(_serve(cn, ports["CN"]))
                assert "snapshot of 2 listings" in ok("sync", ru, real=True)
                procs.append(_serve(ru, ports["RU"]))
            except RuntimeError:  # a port was taken in between: start over with others
                for proc in procs:
                    proc.kill()
                procs.clear()
                continue
            yield Served(f"127.0.0.1:{ports['RU']}", f"127.0.0.1:{ports['CN']}", credential)
            return
        pytest.fail("could not start the nodes")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


HIT_KEYS = {"origin", "ref", "category", "action", "matched_on", "expires"}


def test_lookup_hit_miss_and_json(served: Served) -> None:
    assert "HIT CN CN-0001: wanted, action arrest, matched on document" in ok(
        "lookup", *served.officer, "--doc", "P:CHN:E12345678", real=True
    )
    assert ok("lookup", *served.officer, "--doc", "P:CHN:X99999999").strip() == "no hit"
    data = json.loads(
        ok("lookup", *served.officer, "--name", "WEI wang", "--dob", "1980-05-17", "--json")
    )
    assert set(data) == {"hits", "not_checked", "fully_checked", "unusable"}
    assert len(data["hits"]) == 1 and data["not_checked"] == []
    assert data["fully_checked"] is True and data["unusable"] == []
    hit = data["hits"][0]
    assert set(hit) >= HIT_KEYS
    assert {k: hit[k] for k in HIT_KEYS} == {
        "origin": "CN",
        "ref": "CN-0001",
        "category": "wanted",
        "action": "arrest",
        "matched_on": "name+dob (reordered)",  # listed as "Wang Wei": order is kept
        "expires": "2099-12-31",
    }
    assert hit["strength"] == "medium"
    both = json.loads(
        ok(
            "lookup",
            *served.officer,
            "--name",
            "王伟",
            "--dob",
            "1980-05-17",
            "--doc",
            "P:CHN:E1234-5678",
            "--json",
        )
    )
    assert [(h["ref"], h["matched_on"], h["also_matched"]) for h in both["hits"]] == [
        ("CN-0001", "document", ["name+dob", "name+dob (transliterated)", "name+dob (phonetic)"])
    ]
    by_year = json.loads(
        ok("lookup", *served.officer, "--name", "na li", "--dob", "1975-03-04", "--json")
    )
    assert [(h["ref"], h["strength"]) for h in by_year["hits"]] == [("CN-0002", "weak")]
    assert by_year["hits"][0]["matched_on"].startswith("name+dob-year")
    assert json.loads(ok("lookup", *served.officer, "--doc", "P:RUS:1", "--json")) == {
        "hits": [],
        "not_checked": [],
        "fully_checked": True,
        "unusable": [],
    }


def test_one_unusable_field_does_not_hide_a_hit(served: Served) -> None:
    """Issue 9 item 6: a two-letter country no longer makes the person unchecked."""
    args = ("lookup", *served.officer, "--doc", "P:CN:E12345678", "--name", "王伟")
    out = ok(*args, "--dob", "1980-05-17")
    assert "HIT CN CN-0001" in out and "matched on name+dob" in out
    assert "NOT USED document 1: a country must be an ICAO three-letter code" in out
    assert "NOT FULLY CHECKED" in out
    data = json.loads(ok(*args, "--dob", "1980-05-17", "--json"))
    assert data["fully_checked"] is False and len(data["unusable"]) == 1
    assert [h["ref"] for h in data["hits"]] == ["CN-0001"]
    strict = wlx(*args, "--dob", "1980-05-17", "--strict")
    assert strict.code == 4 and "HIT CN CN-0001" in strict.out


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ([], "document, or a name"),
        (["--name", "Wang Wei"], "date of birth"),
        (["--dob", "1980-05-17"], "name"),
        (["--name", "Wang Wei", "--dob", "1980-02-30"], "date of birth"),
        (["--doc", "E12345678"], "TYPE:COUNTRY:NUMBER"),
        (["--doc", "P:CHN"], "TYPE:COUNTRY:NUMBER"),
        (["--doc", "P::E1"], "TYPE:COUNTRY:NUMBER"),
        (["--doc", "P:CHN:E1:X"], "TYPE:COUNTRY:NUMBER"),
        (["--doc", "P:ZZZZ:E1"], "country"),
        (["--doc", "P:CHN:É1"], "document number"),
    ],
)
def test_lookup_input_errors(served: Served, args: list[str], match: str) -> None:
    fails("lookup", *served.officer, *args, match=match)


def test_lookup_with_an_empty_purpose_is_refused_by_the_node(served: Served) -> None:
    fails(
        "lookup",
        *served.officer,
        "--doc",
        "P:CHN:E1",
        "--purpose",
        " ",
        match="purpose",
    )


def test_lookup_at_an_unreachable_or_invalid_node(served: Served, tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    doc = ("--doc", "P:CHN:E1")
    fails(
        "lookup", *served.officer, "--node", nowhere, *doc, match="nothing is listening", real=True
    )
    fails("lookup", *served.officer, "--node", "not-an-address", *doc, match="HOST:PORT")
    fails("lookup", "--node", served.ru_address, *doc, match="--credential")
    # RU's officer credential at CN: CN is not the node it pins, nor does CN know it.
    run = wlx("lookup", *served.officer, "--node", served.cn_address, *doc, real=True)
    assert run.code == 1 and run.err.splitlines()[-1].startswith("error: "), run
    fails("lookup", "--credential", tmp_path / "missing.json", *doc, match="missing.json")
    (tmp_path / "junk.json").write_text("{}")
    (tmp_path / "junk.json").chmod(0o600)
    fails("lookup", "--credential", tmp_path / "junk.json", *doc, match="credential")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "1", "names": ["A B"], "dob": "1980"}\n')
    fails("screen", *served.officer, "--node", nowhere, manifest, match="nothing is listening")


def test_a_refused_tls_handshake_is_one_line(served: Served) -> None:
    fails(
        "lookup",
        *served.officer,
        "--node",
        served.cn_address,
        "--doc",
        "P:CHN:E1",
        match="not the one trusted for it",
        real=True,
    )


def test_screen_a_manifest_with_an_uncheckable_entry(served: Served, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.jsonl"
    rows = [
        {"id": "12A", "names": ["Ivan Petrov"], "dob": "1975-11-02", "documents": []},
        {"id": "12B", "names": ["Jane Doe"]},  # no date of birth: cannot be checked
        {
            "id": "14C",
            "names": ["Wang Wei"],
            "dob": "1980-05-17",
            "documents": [{"type": "P", "country": "CHN", "number": "E12345678"}],
        },
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    out = ok("screen", *served.officer, manifest, real=True)
    assert out.splitlines()[0] == (
        "screened 3 people (jsonl, 1 batch): 1 hits on 1 people, "
        "1 not fully checked (1 not checked, 0 partly)"
    )
    assert "HIT 14C: CN CN-0001 wanted, action arrest" in out
    assert re.search(r"NOT CHECKED 12B: .*date of birth", out)
    assert "12A" not in out
    data = json.loads(ok("screen", *served.officer, manifest, "--json"))
    results = {r["id"]: r for r in data["results"]}
    assert set(results) == {"12A", "12B", "14C"}
    assert results["12A"]["hits"] == [] and results["12A"]["error"] == ""
    assert results["12B"]["hits"] == [] and "date of birth" in results["12B"]["error"]
    assert [h["ref"] for h in results["14C"]["hits"]] == ["CN-0001"]


def test_screen_checks_a_person_whose_document_is_unusable(served: Served, tmp_path: Path) -> None:
    """Issue 9 item 6: a two-letter country no longer hides an arrest listing."""
    manifest = tmp_path / "manifest.jsonl"
    row = {
        "id": "7F",
        "names": ["王伟"],
        "dob": "1980-05-17",
        "documents": [{"type": "P", "country": "CN", "number": "E12345678"}],
    }
    manifest.write_text(json.dumps(row) + "\n")
    out = ok("screen", *served.officer, manifest)
    assert "1 not fully checked (0 not checked, 1 partly)" in out.splitlines()[0]
    assert "HIT 7F: CN CN-0001 wanted, action arrest" in out
    assert "PARTLY CHECKED 7F: document 1: a country must be" in out
    data = json.loads(ok("screen", *served.officer, manifest, "--json"))
    (result,) = data["results"]
    assert result["checked"] == "partial" and len(result["unusable"]) == 1
    assert [h["ref"] for h in result["hits"]] == ["CN-0001"]
    strict = wlx("screen", *served.officer, manifest, "--strict")
    assert strict.code != 0 and "HIT 7F" in strict.out


def test_screen_file_errors(served: Served, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "names": ["A B"], "dob": "1980"}\n{"documents": [{"type": "P"}]}\n')
    # One person's unreadable field does not stop the others: reported, named, and --strict fails.
    out = ok("screen", *served.officer, bad)
    assert "NOT CHECKED 2: document 1 is not TYPE:COUNTRY:NUMBER" in out
    assert wlx("screen", *served.officer, bad, "--strict").code == 1
    bad.write_text('{"id": "1", "names": ["A B"], "dob": "1980"}\n{"names": "x"\n')
    fails("screen", *served.officer, bad, match=r"line 2")
    bad.write_text("[1]\n")
    fails("screen", *served.officer, bad, match=r"line 1")
    fails("screen", *served.officer, tmp_path / "missing.jsonl", match="cannot read")
