"""Several front-ends on one PostgreSQL store (docs/scaling.md, "Scale-out"),
in one process: each front-end here is its own ``open_node`` of the same
node directory, so its own connection pool, as a separate ``wlx serve`` has.

* rate limits are rows of the store: exact, whatever front-end a call lands on;
* the hits remembered for detail requests are in the store, encrypted at
  rest: a detail request is proven on another front-end than the lookup's;
* leadership is one session advisory lock: one holder, free when it goes.

The same with real processes (and a leader killed mid-sync) is in
``test_frontends_e2e.py``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from support.nodes import PG_DSN, FakeClock, StorageFactory

from wlx.node.core.errors import InternalError
from wlx.node.core.limits import Bucket, Limits, LimitSettings, Rate, RateLimited, StoreLimits, take
from wlx.node.core.node import Node
from wlx.node.daemon import SyncLoop
from wlx.node.directory import init_node, open_node
from wlx.node.incoming.hit_memory import StoredHitMemory
from wlx.node.incoming.lookup import HitMemory, Lookup
from wlx.node.rpc.server import limits_for

RATE = Rate(per_minute=60, burst=10, per_day=1_000)


# ------------------------------------------------------------------ the arithmetic


def test_take_refills_at_the_rate_up_to_the_burst() -> None:
    bucket = Bucket.full("officer", "post-1", RATE, now=1_000.0)
    bucket = take(bucket, RATE, 1_000.0, 10)
    assert bucket.tokens == 0
    with pytest.raises(RateLimited, match="per minute"):
        take(bucket, RATE, 1_000.5, 1)
    assert take(bucket, RATE, 1_001.0, 1).tokens == 0  # one a second came back
    assert take(bucket, RATE, 9_999.0, 0).tokens == RATE.burst


def test_a_clock_behind_the_stamp_makes_no_tokens() -> None:
    """Another front-end's clock a little ahead: the stamp stays the later one."""
    bucket = take(Bucket.full("officer", "post-1", RATE, now=1_000.0), RATE, 1_000.0, 10)
    behind = take(bucket, RATE, 990.0, 0)
    assert behind.tokens == 0 and behind.stamp == 1_000.0
    with pytest.raises(RateLimited):
        take(behind, RATE, 995.0, 1)


def test_the_daily_quota_counts_across_refills() -> None:
    rate = Rate(per_minute=6_000, burst=10, per_day=25)
    bucket = Bucket.full("officer", "post-1", rate, now=0.0)
    for minute in range(5):
        bucket = take(bucket, rate, minute * 60.0, 5)
    with pytest.raises(RateLimited, match="daily quota of 25"):
        take(bucket, rate, 400.0, 1)
    assert take(bucket, rate, 86_400.0, 10).day_used == 10  # a new day


def test_in_memory_limits_keep_their_behaviour() -> None:
    clock = FakeClock()
    limits = Limits(LimitSettings(officer=RATE), clock=clock)
    for _ in range(10):
        limits.charge("officer", "post-1", 1)
    with pytest.raises(RateLimited):
        limits.charge("officer", "post-1", 1)
    limits.charge("officer", "post-2", 1)  # another caller, another bucket


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture
def pg() -> Iterator[StorageFactory]:
    factory = StorageFactory("postgres")
    yield factory
    factory.cleanup()


@pytest.fixture
def frontends(tmp_path: Path, pg: StorageFactory) -> Iterator[list[Node]]:
    """Three front-ends of node RU (one directory, one schema)."""
    first = init_node(tmp_path / "RU", node_id="RU", listen="127.0.0.1:0", storage=pg.config("RU"))
    nodes = [first, open_node(tmp_path / "RU"), open_node(tmp_path / "RU")]
    yield nodes
    for node in nodes:
        node.close()


pytestmark_pg = pytest.mark.postgres


@pytestmark_pg
def test_a_postgres_store_is_shared_and_uses_shared_state(frontends: list[Node]) -> None:
    node = frontends[0]
    assert node.store.shared
    assert isinstance(limits_for(node), StoreLimits)
    assert isinstance(Lookup(node).hits, StoredHitMemory)


def test_a_sqlite_store_keeps_its_state_in_memory(tmp_path: Path) -> None:
    node = init_node(tmp_path / "CN", node_id="CN", listen="127.0.0.1:0")
    try:
        assert not node.store.shared
        assert isinstance(limits_for(node), Limits)
        assert isinstance(Lookup(node).hits, HitMemory)
    finally:
        node.close()


@pytestmark_pg
def test_rate_limits_are_exact_across_front_ends(frontends: list[Node]) -> None:
    """60 calls from many threads spread over three front-ends, a burst of
    17 and no refill to speak of: exactly 17 pass."""
    rate = Rate(per_minute=0.0001, burst=17, per_day=1_000)
    limits = [StoreLimits(n.store, LimitSettings(officer=rate)) for n in frontends]
    passed = []
    lock = threading.Lock()

    def call(i: int) -> None:
        try:
            limits[i % 3].charge("officer", "post-1", 1)
        except RateLimited:
            return
        with lock:
            passed.append(i)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(call, range(60)))
    assert len(passed) == 17
    with pytest.raises(RateLimited):
        limits[1].charge("officer", "post-1", 1)
    limits[2].charge("officer", "post-2", 1)  # another caller, its own bucket


@pytestmark_pg
def test_a_hit_remembered_on_one_front_end_is_recalled_on_another(
    frontends: list[Node],
) -> None:
    a, b = (StoredHitMemory(n) for n in frontends[:2])
    now = frontends[0].now()
    key = bytes(range(32))
    a.remember_all("officer-1", [("CN", "CN-1", key), ("AR", "CN-1", key[::-1])], now)
    assert b.recall("officer-1", "CN", "CN-1", now) == key
    assert b.origins("officer-1", "CN-1", now) == ["AR", "CN"]
    assert b.recall("officer-2", "CN", "CN-1", now) is None  # bound to its caller
    assert b.recall("officer-1", "CN", "CN-1", now + 2 * 86_400) is None  # expired
    with frontends[2].store.read() as tx:
        row = tx.get_hit(a.handle("officer-1", "CN-1"), "CN")
    assert row is not None and key not in row.seal_key  # encrypted at rest
    assert a.handle("officer-1", "CN-1") == b.handle("officer-1", "CN-1")  # one key per node
    assert a.handle("officer-2", "CN-1") != row.handle
    with frontends[2].store.write() as tx:
        assert tx.purge_hits(now + 2 * 86_400) == 2
    assert b.origins("officer-1", "CN-1", now) == []


@pytestmark_pg
def test_a_stored_hit_moved_to_another_caller_does_not_open(frontends: list[Node]) -> None:
    memory = StoredHitMemory(frontends[0])
    now = frontends[0].now()
    memory.remember("officer-1", "CN", "CN-1", b"k" * 32, now)
    with frontends[0].store.write() as tx:
        row = tx.get_hit(memory.handle("officer-1", "CN-1"), "CN")
        assert row is not None
        moved = dataclasses.replace(row, handle=memory.handle("officer-2", "CN-1"))
        tx.put_hits([moved])
    with pytest.raises(InternalError, match="hit"):
        memory.recall("officer-2", "CN", "CN-1", now)


@pytestmark_pg
def test_one_front_end_leads_and_another_takes_over_when_it_goes(
    frontends: list[Node],
) -> None:
    lead = [n.store.leadership("scheduler") for n in frontends]
    assert lead[0].hold()
    assert not lead[1].hold() and not lead[2].hold()
    assert lead[0].hold()  # still held
    lead[0].release()
    assert lead[2].hold() and not lead[1].hold()
    # The holder's session ends (as when its process is killed): free at once.
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks "
            "WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND classid = ((hashtextextended(%(key)s, 0) >> 32) & 4294967295)::oid "
            "AND objid = (hashtextextended(%(key)s, 0) & 4294967295)::oid",
            {"key": f"wlx:{frontends[2].config.storage.schema}:leader:scheduler"},
        )
    assert not lead[2].hold()  # it notices it lost the session
    deadline = time.monotonic() + 5  # the terminated backend exits, its lock with it
    while not lead[1].hold():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lead[1].release()
    lead[2].release()


def test_on_sqlite_leadership_is_a_file_lock(tmp_path: Path) -> None:
    node = init_node(tmp_path / "CN", node_id="CN", listen="127.0.0.1:0")
    try:
        one, two = node.store.leadership("scheduler"), node.store.leadership("scheduler")
        assert one.hold() and one.hold() and not two.hold()
        one.release()
        assert two.hold() and not one.hold()
        two.release()
    finally:
        node.close()


@pytestmark_pg
def test_only_the_leader_s_scheduler_runs_and_another_takes_over(
    frontends: list[Node],
) -> None:
    """Two front-ends' schedulers: one leads (its rounds run), the other
    follows; stopping the leader hands over within about a second."""
    rounds: dict[int, int] = {0: 0, 1: 0}
    loops = [SyncLoop(frontends[i], interval=0.2) for i in (0, 1)]

    def counting(i: int) -> Callable[[], None]:
        def count() -> None:
            rounds[i] += 1

        return count

    for i, loop in enumerate(loops):
        loop._round = counting(i)  # type: ignore[method-assign]
    loops[0].start()
    deadline = time.monotonic() + 10
    while not rounds[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    loops[1].start()
    time.sleep(1.5)
    assert [loop.leading for loop in loops] == [True, False] and rounds[1] == 0
    loops[0].stop()
    deadline = time.monotonic() + 5
    while not rounds[1]:
        assert time.monotonic() < deadline, "the follower did not take over"
        time.sleep(0.05)
    assert [loop.leading for loop in loops] == [False, True]
    loops[1].stop()
