"""Crash safety with real processes killed by SIGKILL.

* "Crash-safe: a node killed at any moment restarts with its data and
  cursors consistent."
* "A node killed between receiving and applying a batch loses nothing."

The receiver runs as ``wlx sync DIR`` with ``WLX_FAILPOINT`` naming a point
where ``wlx.node.core.failpoints`` kills it; then ``wlx sync DIR`` runs again
without it.  Its state must then equal that of a copy of the same node that
synced without crashing (same identity, so the origin serves both the very
same batches): same listings and tokens, same cursor, same lookups.  The
origin is an in-process server here, or a ``wlx serve`` process that a
failpoint of its own kills while a peer pulls from it (no timing involved).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.nodes import record
from support.processes import free_port, start_serve

from wlx.node.audit import exchange_log
from wlx.node.core.node import Node
from wlx.node.core.records import Record
from wlx.node.directory import open_node
from wlx.node.incoming.lookup import Lookup, Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.server import build_server

pytestmark = pytest.mark.slow

WLX = str(Path(sys.executable).with_name("wlx"))
KILLED = -signal.SIGKILL


def wlx(
    *args: str, failpoint: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WLX_FAILPOINT"}
    if failpoint:
        env["WLX_FAILPOINT"] = failpoint
    proc = subprocess.run(
        [WLX, *args], capture_output=True, text=True, timeout=90, env=env, check=False
    )
    if check:
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc


def person(n: int, **overrides: object) -> Record:
    """Listing number ``n`` of CN, with a document number of its own."""
    fields: dict[str, object] = {
        "names": [f"Crash Person {n:06d}"],
        "documents": [{"type": "P", "country": "CHN", "number": f"D{n:08d}"}],
    }
    fields.update(overrides)
    return record(f"CN-{n:06d}", **fields)


def doc_query(n: int) -> Query:
    return Query(documents=(("P", "CHN", f"D{n:08d}"),))


# ------------------------------------------------------------------ node directories


def make_pair(root: Path) -> tuple[Path, Path]:
    """CN and RU created and introduced to each other with the CLI, as an operator does."""
    root.mkdir(parents=True, exist_ok=True)
    cn, ru = root / "CN", root / "RU"
    ports = {"CN": free_port(), "RU": free_port()}
    for node_dir, node_id in ((cn, "CN"), (ru, "RU")):
        wlx("init", str(node_dir), "--node-id", node_id, "--listen", f"127.0.0.1:{ports[node_id]}")
        card = root / f"{node_id}.card.json"
        card.write_text(wlx("identity", str(node_dir)).stdout, encoding="utf-8")
    wlx("peer", "add", str(cn), str(root / "RU.card.json"), "--address", f"127.0.0.1:{ports['RU']}")
    wlx("peer", "add", str(ru), str(root / "CN.card.json"), "--address", f"127.0.0.1:{ports['CN']}")
    return cn, ru


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    make_pair(root)
    return root


@pytest.fixture
def pair(template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of the CLI-made CN and RU directories."""
    root = tmp_path / "nodes"
    shutil.copytree(template, root)
    return root / "CN", root / "RU"


@dataclass
class InProcessOrigin:
    node: Node
    server: grpc.Server
    address: str

    def import_(self, records: Sequence[Record]) -> None:
        ownlist.import_records(self.node, records)

    def remove(self, numbers: Sequence[int]) -> None:
        for n in numbers:
            ownlist.remove_record(self.node, f"CN-{n:06d}")


@pytest.fixture
def cn_server(pair: tuple[Path, Path]) -> Iterator[InProcessOrigin]:
    """CN served in this process on a free port; RU's operator is given the new address."""
    cn_dir, ru_dir = pair
    node = open_node(cn_dir)
    server, port = build_server(node, "127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    ru = open_node(ru_dir)  # RU's operator updates CN's address (same card: address only)
    try:
        origin.add_peer(ru, (cn_dir.parent / "CN.card.json").read_bytes(), address)
    finally:
        ru.close()
    yield InProcessOrigin(node, server, address)
    server.stop(grace=None).wait()
    node.close()


# ------------------------------------------------------------------ receiver state


@dataclass(frozen=True)
class ReceiverState:
    epoch: int
    seq: int
    digest: bytes
    epoch_key: bytes
    entries: frozenset[tuple[bytes, str, bytes]]
    tokens: frozenset[tuple[bytes, bytes]]
    applied: frozenset[tuple[int, int, bytes]]
    hits: tuple[tuple[str, ...], ...]

    def summary(self) -> str:
        return f"epoch {self.epoch} at {self.seq}, {len(self.entries)} listings"


HELD = "(origin IN (SELECT slot FROM slots WHERE state = 'live') OR origin NOT IN (SELECT slot FROM slots))"
"""Rows of entries and tokens that are held: those of live slots (schema.py)."""
STAGED = "origin IN (SELECT slot FROM slots WHERE state = 'staged')"


def raw_counts(node_dir: Path) -> dict[str, int]:
    """Row counts read straight from the SQLite file (no node opened: nothing cleaned up)."""
    conn = sqlite3.connect(f"file:{node_dir / 'wlx.db'}?mode=ro", uri=True)
    try:
        counts = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {HELD}").fetchone()[0]
            for table in ("entries", "tokens")
        }
        counts["applied"] = conn.execute("SELECT COUNT(*) FROM applied").fetchone()[0]
        for table in ("entries", "tokens"):
            counts[f"staged_{table}"] = conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE {STAGED}"
            ).fetchone()[0]
        return counts
    finally:
        conn.close()


def receiver_state(node_dir: Path, numbers: Sequence[int]) -> ReceiverState:
    """RU's view of CN's list, and the answers to a document lookup of each of ``numbers``."""
    node = open_node(node_dir)
    try:
        with node.store.read() as tx:
            state = tx.get_inbound("CN")
            assert state is not None
            key = (
                node.epoch_key("CN", "RU", state.epoch, state.token_key).key if state.epoch else b""
            )
        results = Lookup(node).screen([doc_query(n) for n in numbers])
    finally:
        node.close()
    conn = sqlite3.connect(f"file:{node_dir / 'wlx.db'}?mode=ro", uri=True)
    try:
        entries = frozenset(
            (bytes(h), e, bytes(t))
            for h, e, t in conn.execute(f"SELECT handle, expires, tokens FROM entries WHERE {HELD}")
        )
        tokens = frozenset(
            (bytes(t), bytes(h))
            for t, h in conn.execute(f"SELECT token, handle FROM tokens WHERE {HELD}")
        )
        applied = frozenset(
            (ep, s, bytes(d))
            for ep, s, d in conn.execute("SELECT epoch, last_seq, digest FROM applied")
        )
        staged = conn.execute(f"SELECT COUNT(*) FROM entries WHERE {STAGED}").fetchone()[0]
    finally:
        conn.close()
    assert staged == 0
    assert all(not r.error for r in results)
    return ReceiverState(
        epoch=state.epoch,
        seq=state.seq,
        digest=state.digest,
        epoch_key=key,
        entries=entries,
        tokens=tokens,
        applied=applied,
        hits=tuple(tuple(h.ref for h in r.hits) for r in results),
    )


def expected_hits(live: set[int], numbers: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    return tuple((f"CN-{n:06d}",) if n in live else () for n in numbers)


def assert_consistent_with_origin(cn: Node, state: ReceiverState, live: set[int]) -> None:
    """The receiver is exactly where CN's stream for it ends, holding CN's live list."""
    with cn.store.read() as tx:
        out = tx.get_outbound("RU")
        assert out is not None
        assert tx.count_records() == len(live)
    assert (state.epoch, state.seq, state.digest) == (out.epoch, out.last_seq, out.last_digest)
    assert len(state.entries) == len(live)
    token_count = sum(len(t) for _, _, t in state.entries) // 16
    assert len(state.tokens) == token_count


def log_entries(node: Node, kind: str) -> list[dict[str, Any]]:
    """The node's exchange-log entries of one kind, oldest first (as JSON decodes them)."""
    with node.store.read() as tx:
        entries = [json.loads(e) for _, e in tx.audit_entries(0, exchange_log.size(tx))]
    return [e for e in entries if e["kind"] == kind]


def snapshot_copy(ru: Path) -> Path:
    """A copy of RU taken while no process has it open: the receiver that never crashes."""
    ref = ru.with_name("RU-ref")
    if ref.exists():
        shutil.rmtree(ref)
    shutil.copytree(ru, ref)
    return ref


def sync_ok(node_dir: Path) -> str:
    return wlx("sync", str(node_dir)).stdout


def crash_sync(node_dir: Path, failpoint: str) -> None:
    proc = wlx("sync", str(node_dir), failpoint=failpoint, check=False)
    assert proc.returncode == KILLED, (failpoint, proc.returncode, proc.stdout, proc.stderr)


# ------------------------------------------------------------------ the receiver killed


def test_first_snapshot_interrupted_before_it_is_applied(
    pair: tuple[Path, Path], cn_server: InProcessOrigin
) -> None:
    _, ru = pair
    live = set(range(2_300))  # three snapshot parts
    cn_server.import_([person(n) for n in sorted(live)])
    ref = snapshot_copy(ru)

    crash_sync(ru, "receiver.before_snapshot_apply")
    counts = raw_counts(ru)
    assert counts["staged_entries"] == len(live)  # every part was staged and committed...
    assert counts["entries"] == counts["applied"] == 0  # ...and none of it applied

    assert "snapshot of 2300 listings" in sync_ok(ru)
    assert "snapshot of 2300 listings" in sync_ok(ref)
    numbers = [*range(0, 2_300, 37), 5_000]
    state = receiver_state(ru, numbers)
    assert state == receiver_state(ref, numbers)
    assert state.hits == expected_hits(live, numbers)
    assert_consistent_with_origin(cn_server.node, state, live)


@pytest.mark.parametrize("failpoint", ["receiver.before_apply", "receiver.mid_apply"])
def test_a_batch_interrupted_loses_nothing(
    pair: tuple[Path, Path], cn_server: InProcessOrigin, failpoint: str
) -> None:
    _, ru = pair
    cn_server.import_([person(n) for n in range(400)])
    sync_ok(ru)
    before = raw_counts(ru)
    before_state = receiver_state(ru, [])

    # A delta of upserts, updates and removals: three batches of up to 1,000 operations.
    cn_server.import_([person(n) for n in range(400, 2_400)])
    cn_server.import_([person(n, action="refuse-entry") for n in range(0, 400, 4)])
    cn_server.remove(range(1, 400, 4))
    live = set(range(2_400)) - set(range(1, 400, 4))
    ref = snapshot_copy(ru)

    crash_sync(ru, failpoint)
    assert raw_counts(ru) == before  # the batch's operations were rolled back
    assert receiver_state(ru, []) == before_state  # and the cursor did not move

    assert "3 batches, 2200 changes" in sync_ok(ru)
    assert "3 batches, 2200 changes" in sync_ok(ref)
    numbers = list(range(0, 2_400, 7))
    state = receiver_state(ru, numbers)
    assert state == receiver_state(ref, numbers)
    assert state.hits == expected_hits(live, numbers)
    assert_consistent_with_origin(cn_server.node, state, live)
    node = open_node(ru)
    try:
        hits = Lookup(node).check(doc_query(8))
    finally:
        node.close()
    assert [h.action for h in hits] == ["refuse-entry"]  # the update, not the old listing


def test_several_rounds_of_changes_crashes_and_resyncs(
    pair: tuple[Path, Path], cn_server: InProcessOrigin
) -> None:
    _, ru = pair
    live: set[int] = set(range(300))
    cn_server.import_([person(n) for n in sorted(live)])
    ref = snapshot_copy(ru)  # synced alongside RU every round, never crashing
    crash_sync(ru, "receiver.before_snapshot_apply")
    sync_ok(ru)
    sync_ok(ref)
    rounds: list[tuple[range, range, str]] = [
        (range(300, 800), range(0, 300, 3), "receiver.before_apply"),
        (range(800, 1_900), range(301, 800, 5), "receiver.mid_apply"),
        (range(1_900, 2_000), range(800, 1_900, 2), "receiver.before_apply"),
    ]
    for added, removed, failpoint in rounds:
        cn_server.import_([person(n) for n in added])
        cn_server.import_([person(n, category="updated") for n in sorted(live)[::50]])
        cn_server.remove([n for n in removed if n in live])
        live = (live | set(added)) - set(removed)

        crash_sync(ru, failpoint)
        sync_ok(ru)
        sync_ok(ref)
        numbers = list(range(0, 2_000, 9))
        state = receiver_state(ru, numbers)
        assert state == receiver_state(ref, numbers), failpoint
        assert state.hits == expected_hits(live, numbers)
        assert_consistent_with_origin(cn_server.node, state, live)
    # Crashing when there is nothing to apply changes nothing either.
    proc = wlx("sync", str(ru), failpoint="receiver.before_apply")
    assert "0 batches" in proc.stdout
    assert receiver_state(ru, numbers) == state


# ------------------------------------------------------------------ the origin killed


class ServeProcess:
    """``wlx serve DIR`` as a child process."""

    def __init__(self, node_dir: Path, port: int) -> None:
        self.node_dir = node_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, failpoint: str | None = None) -> None:
        """Start serving; ``failpoint`` (``wlx.node.core.failpoints``) kills it there."""
        env = {k: v for k, v in os.environ.items() if k != "WLX_FAILPOINT"}
        if failpoint:
            env["WLX_FAILPOINT"] = failpoint
        self.proc = start_serve(self.node_dir, self.port, env=env, stderr=subprocess.PIPE)

    def wait_killed(self) -> None:
        """Wait for the failpoint it was started with to kill it."""
        assert self.proc is not None
        assert self.proc.wait(timeout=60) == KILLED
        if self.proc.stderr:
            assert b"Traceback" not in self.proc.stderr.read()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def _port_of(node_dir: Path) -> int:
    for line in (node_dir / "node.toml").read_text().splitlines():
        if line.startswith("listen"):
            return int(json.loads(line.split("=", 1)[1].strip()).rsplit(":", 1)[1])
    raise AssertionError("no listen address")


def _records_file(path: Path, numbers: Sequence[int]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in numbers:
            out.write(
                json.dumps(
                    {
                        "id": f"CN-{n:06d}",
                        "names": [f"Crash Person {n:06d}"],
                        "dob": "1980-05-17",
                        "documents": [{"type": "P", "country": "CHN", "number": f"D{n:08d}"}],
                        "category": "wanted",
                        "action": "arrest",
                        "legal_basis": "test basis",
                        "authority": "test authority",
                        "expires": "2099-12-31",
                    }
                )
                + "\n"
            )
    return path


def _applied_count(ru: Path) -> int:
    try:
        return raw_counts(ru)["applied"]
    except sqlite3.Error:
        return -1


@pytest.fixture
def served_pair(tmp_path: Path) -> Iterator[tuple[Path, Path, ServeProcess]]:
    """CN and RU made with the CLI, CN running as ``wlx serve`` on a port chosen free."""
    for attempt in range(5):
        cn, ru = make_pair(tmp_path / f"attempt{attempt}")
        serve = ServeProcess(cn, _port_of(cn))
        try:
            serve.start()
        except RuntimeError:  # the port was taken in between: pick others
            continue
        try:
            yield cn, ru, serve
        finally:
            serve.stop()
        return
    pytest.fail("no free port for wlx serve")


def _many_small_batches(cn: Path, numbers: Sequence[int], per_batch: int) -> None:
    """Changes for RU in many small batches: CN makes RU's batches from the changes
    it has when it is asked, so ask after every few changes (as frequent pulls do)."""
    node = open_node(cn)
    try:
        for start in range(0, len(numbers), per_batch):
            ownlist.import_records(node, [person(n) for n in numbers[start : start + per_batch]])
            origin.materialise(node, "RU")
    finally:
        node.close()


def _pull_until_killed(ru: Path, serve: ServeProcess, failpoint: str) -> tuple[int, int]:
    """Restart CN's ``wlx serve`` with ``failpoint`` and run ``wlx sync RU`` until
    that point kills CN.  Returns the exit status of the sync and how many batches
    RU applied before it ended."""
    applied_before = _applied_count(ru)
    serve.stop()
    serve.start(failpoint)
    proc = wlx("sync", str(ru), check=False)
    serve.wait_killed()
    if proc.returncode != 0:
        assert "CN" in proc.stderr.strip().splitlines()[-1], proc.stderr  # test_cli's format
    return proc.returncode, _applied_count(ru) - applied_before


def test_an_origin_killed_while_a_peer_pulls_loses_and_duplicates_nothing(
    served_pair: tuple[Path, Path, ServeProcess], tmp_path: Path
) -> None:
    cn, ru, serve = served_pair
    wlx("records", "import", str(cn), str(_records_file(tmp_path / "r0.jsonl", range(200))))
    sync_ok(ru)
    live = set(range(200))

    # 1. Killed while it turns 5,000 new changes into RU's batches (before they are
    # committed), then while it streams them.
    wlx("records", "import", str(cn), str(_records_file(tmp_path / "r1.jsonl", range(200, 5_200))))
    live |= set(range(200, 5_200))
    for failpoint in ("origin.mid_materialise", "origin.batch_served@2"):
        _pull_until_killed(ru, serve, failpoint)
    serve.start()
    sync_ok(ru)

    # 2. Killed in the middle of a pull of 80 batches (more than one Pull call's 50),
    # once it has served 20: the pull is cut off half-way, after RU applied some.
    _many_small_batches(cn, range(5_200, 6_000), per_batch=10)
    live |= set(range(5_200, 6_000))
    base = _applied_count(ru)
    status, applied = _pull_until_killed(ru, serve, "origin.batch_served@20")
    assert status != 0 and 1 <= applied <= 20, (status, applied)
    serve.start()
    assert f"CN: ok, {80 - applied} batches" in sync_ok(ru)
    assert _applied_count(ru) == base + 80  # each batch applied once, none missing

    # 3. Killed right after the records changed again (removals, updates), twice:
    # while it makes their batch, and once it served it.
    for step, failpoint in ((20, "origin.mid_materialise"), (22, "origin.batch_served")):
        node = open_node(cn)
        try:
            gone = sorted(live)[::step]
            for n in gone:
                ownlist.remove_record(node, f"CN-{n:06d}")
            ownlist.import_records(
                node, [person(n, action="refuse-entry") for n in sorted(live)[5::40]]
            )
        finally:
            node.close()
        live -= set(gone)
        _pull_until_killed(ru, serve, failpoint)
        serve.start()
        sync_ok(ru)

    numbers = list(range(0, 6_100, 23))
    state = receiver_state(ru, numbers)
    assert state.hits == expected_hits(live, numbers)
    node = open_node(cn)
    try:
        assert_consistent_with_origin(node, state, live)
        sent = {
            (e["first_seq"], e["last_seq"], e["digest"]) for e in log_entries(node, "batch.sent")
        }
    finally:
        node.close()
    # RU's exchange log: every batch it applied after its snapshot, once, in one unbroken
    # chain up to its cursor, each one a batch CN made for it.
    node = open_node(ru)
    try:
        [snap] = log_entries(node, "snapshot.applied")
        chain = [
            (e["first_seq"], e["last_seq"], e["digest"]) for e in log_entries(node, "batch.applied")
        ]
    finally:
        node.close()
    assert chain and chain == sorted(chain)
    position = snap["at_seq"]
    for first, last, _ in chain:
        assert first == position + 1, (first, position)
        position = last
    assert position == state.seq
    assert set(chain) <= sent


# ------------------------------------------------------------------ resumable snapshots


def _rejections(node_dir: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(f"file:{node_dir / 'wlx.db'}?mode=ro", uri=True)
    try:
        return [(r[0], r[1]) for r in conn.execute("SELECT what, reason FROM rejections")]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("failpoint", "staged"),
    [
        ("receiver.after_stage@1", 1_000),
        ("receiver.after_stage@3", 3_000),
        ("receiver.before_snapshot_apply", 3_500),
    ],
)
def test_a_snapshot_interrupted_anywhere_resumes_and_converges(
    pair: tuple[Path, Path],
    cn_server: InProcessOrigin,
    caplog: pytest.LogCaptureFixture,
    failpoint: str,
    staged: int,
) -> None:
    """Issue 9.2 / 13.2: a receiver killed during a snapshot keeps what it staged,
    continues after it (even though the origin's list changed meanwhile), ends
    at exactly the origin's list, and accuses nobody."""
    _, ru = pair
    live = set(range(3_500))  # four parts
    cn_server.import_([person(n) for n in sorted(live)])
    crash_sync(ru, failpoint)
    counts = raw_counts(ru)
    assert counts["staged_entries"] == staged and counts["entries"] == 0

    # A busy origin: its list changes before the receiver comes back.
    cn_server.import_([person(n) for n in range(3_500, 3_600)])
    cn_server.import_([person(n, action="refuse-entry") for n in range(1, 3_500, 97)])
    cn_server.remove(range(0, 3_500, 50))
    live = (live | set(range(3_500, 3_600))) - set(range(0, 3_500, 50))

    with caplog.at_level(logging.INFO, logger="wlx.origin"):
        out = sync_ok(ru)
    assert "snapshot of" in out
    if staged < 3_500:
        assert f"resumed at part {staged // 1_000}" in caplog.text
    else:
        assert "snapshot for RU" not in caplog.text  # complete: applied as staged
    numbers = [*range(0, 3_600, 13), 7_000]
    state = receiver_state(ru, numbers)
    assert state.hits == expected_hits(live, numbers)
    assert_consistent_with_origin(cn_server.node, state, live)
    assert _rejections(ru) == []
    node = open_node(ru)
    try:
        hits = Lookup(node).check(doc_query(98))
    finally:
        node.close()
    assert [h.action for h in hits] == ["refuse-entry"]
