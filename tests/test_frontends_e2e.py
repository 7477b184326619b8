"""Three ``wlx serve`` front-ends of one node on PostgreSQL, as real processes
(docs/scaling.md, "Scale-out"; docs/operations.md, "Several front-ends").

RU's store is a PostgreSQL schema; three ``wlx serve RU --listen ...``
processes serve it.  The first leads; it is killed (SIGKILL, by a failpoint)
in the middle of its first snapshot of CN.  Then:

* another front-end takes the leadership within seconds and finishes the
  snapshot from where the dead one stopped: RU holds CN's whole list;
* the exchange log is one sequence (each index once, the snapshot applied
  and each lookup logged once) and verifies offline (``wlx audit verify``);
* every front-end answers lookups, and a detail request on one front-end is
  proven by the hit of a lookup on another (the hit memory is in the store);
* N lookups spread over the three front-ends with a limit of L: exactly L pass.

And on SQLite, a second ``wlx serve`` of the same node refuses in one line.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psycopg
import pytest
from support.nodes import PG_DSN, StorageFactory, record
from support.processes import CLEAN_ENV, WLX, free_port, start_serve

from wlx.node.audit import exchange_log
from wlx.node.core.limits import LimitSettings, Rate
from wlx.node.core.node import Node
from wlx.node.directory import init_node, open_node
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.server import build_server
from wlx.node.rpc.transport import Credential, client_channel
from wlx.node.rpc.wire import query_to_pb
from wlx.node.trust import credentials
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LISTINGS = 2_500  # three snapshot parts of 1,000
LIMIT = 20
"""An officer's burst; the refill is negligible for the test's length."""


def doc(n: int) -> str:
    return f"S{n:08d}"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def leader_pid(schema: str) -> int | None:
    """The pid of the front-end holding RU's scheduler leadership, if any."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = ((hashtextextended(%(key)s, 0) >> 32) & 4294967295)::oid "
            "AND l.objid = (hashtextextended(%(key)s, 0) & 4294967295)::oid",
            {"key": f"wlx:{schema}:leader:scheduler"},
        ).fetchone()
    return int(row[0].rsplit(" ", 1)[1]) if row else None


def check(address: str, officer: Credential, n: int) -> lookup_pb2.CheckResponse:
    channel = client_channel(address, dataclasses.replace(officer, address=address))
    try:
        request = lookup_pb2.CheckRequest(
            person=query_to_pb(Query(documents=(("P", "CHN", doc(n)),))), purpose="e2e"
        )
        response: lookup_pb2.CheckResponse = lookup_pb2_grpc.LookupStub(channel).Check(
            request, timeout=30
        )
        return response
    finally:
        channel.close()


@pytest.fixture
def pg() -> Iterator[StorageFactory]:
    factory = StorageFactory("postgres")
    yield factory
    factory.cleanup()


def test_three_front_ends_survive_the_leader_killed_mid_sync(
    tmp_path: Path, pg: StorageFactory
) -> None:
    cn_port = free_port()
    ports = [free_port() for _ in range(3)]
    cn = init_node(tmp_path / "CN", node_id="CN", listen=f"127.0.0.1:{cn_port}")
    storage = pg.config("RU")
    ru = init_node(tmp_path / "RU", node_id="RU", listen=f"127.0.0.1:{ports[0]}", storage=storage)
    slow = Rate(per_minute=0.001, burst=LIMIT, per_day=1_000_000)
    ru.config = dataclasses.replace(ru.config, limits=LimitSettings(officer=slow))
    ru.paths.config.write_text(ru.config.to_toml(), encoding="utf-8")
    origin.add_peer(cn, ru.card.raw, f"127.0.0.1:{ports[0]}")
    origin.add_peer(ru, cn.card.raw, f"127.0.0.1:{cn_port}")
    ownlist.import_records(
        cn,
        [
            record(f"CN-{n}", documents=[{"type": "P", "country": "CHN", "number": doc(n)}])
            for n in range(LISTINGS)
        ],
    )
    checker = credentials.issue(ru, name="post-check", role="officer")
    counted = credentials.issue(ru, name="post-counted", role="officer")
    ru.close()

    procs: list[subprocess.Popen[bytes]] = []
    server: grpc.Server | None = None
    try:
        # The first front-end leads; CN is not up yet, so its pulls fail
        # until the others are serving too.  Then it dies in the middle of
        # CN's snapshot, after the second part was staged.
        dying = {**CLEAN_ENV, "WLX_FAILPOINT": "receiver.after_stage@2"}
        procs.append(
            start_serve(
                tmp_path / "RU",
                ports[0],
                env=dying,
                sync_interval=0.5,
                args=("--listen", f"127.0.0.1:{ports[0]}"),
            )
        )
        wait_until(lambda: leader_pid(storage.schema) == procs[0].pid, "the first to lead")
        for port in ports[1:]:
            procs.append(
                start_serve(
                    tmp_path / "RU",
                    port,
                    sync_interval=0.5,
                    args=("--listen", f"127.0.0.1:{port}"),
                )
            )
        assert leader_pid(storage.schema) == procs[0].pid  # the others follow
        server, _ = build_server(cn, f"127.0.0.1:{cn_port}")
        server.start()

        assert procs[0].wait(timeout=120) == -signal.SIGKILL  # killed mid-snapshot
        wait_until(
            lambda: leader_pid(storage.schema) in (procs[1].pid, procs[2].pid),
            "another front-end to lead",
            timeout=15,
        )
        ru = open_node(tmp_path / "RU")
        try:

            def converged() -> bool:
                with ru.store.read() as tx:
                    state = tx.get_inbound("CN")
                    return tx.count_entries("CN") == LISTINGS and bool(state and state.epoch)

            wait_until(converged, "RU to hold CN's whole list")
            live = [f"127.0.0.1:{p}" for p in ports[1:]]

            # Every front-end answers; a detail request is proven on another one.
            for address in live:
                assert [h.ref for h in check(address, checker, 7).hits] == ["CN-7"]
            detail = _detail(live[1], checker, "CN-7")
            assert detail.granted, detail.denial

            # Rate limits: 3 * LIMIT calls over both front-ends, exactly LIMIT pass.
            def call(i: int) -> bool:
                try:
                    check(live[i % 2], counted, i)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    return False
                return True

            with ThreadPoolExecutor(max_workers=6) as pool:
                passed = sum(pool.map(call, range(3 * LIMIT)))
            assert passed == LIMIT

            entries = _log(ru)
        finally:
            ru.close()
        assert [e["idx"] for e in entries] == list(range(len(entries)))
        applied = [e for e in entries if e["kind"] == "snapshot.applied"]
        assert len(applied) == 1 and applied[0]["entries"] == LISTINGS
        # The handover is ours: it accuses CN of nothing.
        assert [e for e in entries if e["kind"] == "rejected"] == []
        lookups = [e for e in entries if e["kind"] == "lookup"]
        assert sum(1 for e in lookups if e["credential"] == "post-counted") == LIMIT
        assert sum(1 for e in lookups if e["credential"] == "post-check") == 2
        _verify_offline(tmp_path, cn)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if server is not None:
            server.stop(grace=None).wait()
        cn.close()


def _detail(address: str, officer: Credential, ref: str) -> lookup_pb2.DetailResult:
    channel = client_channel(address, dataclasses.replace(officer, address=address))
    try:
        result: lookup_pb2.DetailResult = lookup_pb2_grpc.LookupStub(channel).Detail(
            lookup_pb2.DetailQuery(
                ref=ref, origin="CN", purpose="secondary inspection", case_id="C-1"
            ),
            timeout=30,
        )
        return result
    finally:
        channel.close()


def _log(node: Node) -> list[dict[str, object]]:
    with node.store.read() as tx:
        size = exchange_log.size(tx)
        return [json.loads(entry) for _, entry in tx.audit_entries(0, size)]


def _verify_offline(tmp_path: Path, cn: Node) -> None:
    """A checkpoint CN cosigns, the bundle exported, and ``wlx audit verify``."""
    cards = tmp_path / "cards"
    cards.mkdir()
    ru = tmp_path / "RU"
    identity = subprocess.run(
        [WLX, "identity", str(ru)], capture_output=True, check=True, env=CLEAN_ENV
    )
    (cards / "RU.card.json").write_bytes(identity.stdout)
    (cards / "CN.card.json").write_bytes(cn.card.raw)
    bundle = tmp_path / "RU.bundle.jsonl"
    for args in (
        ("audit", "checkpoint", str(ru)),
        ("audit", "export", str(ru), str(bundle)),
        ("audit", "verify", str(bundle), "--cards", str(cards)),
    ):
        done = subprocess.run(
            [WLX, *args], capture_output=True, text=True, check=False, env=CLEAN_ENV
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert done.stdout.splitlines()[0] == "bundle of RU: verified"


def test_a_second_front_end_on_sqlite_refuses_in_one_line(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    node = init_node(tmp_path / "CN", node_id="CN", listen=f"127.0.0.1:{ports[0]}")
    node.close()
    first = start_serve(tmp_path / "CN", ports[0])
    try:
        second = subprocess.run(
            [WLX, "serve", str(tmp_path / "CN"), "--listen", f"127.0.0.1:{ports[1]}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=CLEAN_ENV,
        )
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another wlx serve already runs on" in lines[0], lines
        assert "PostgreSQL" in lines[0]
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
