"""Chaos run: crashes, partitions and slow peers must lose nothing and raise
no false alarm.

Two nodes, CN (origin) and RU (receiver), run as real ``wlx`` processes on
loopback; RU reaches CN through a small TCP proxy that can pass, cut, stall
or trickle the connection.  Phases:

1. **receiver killed**: ``wlx sync RU`` is SIGKILLed at random moments during
   a large snapshot and during later deltas, then completes;
2. **origin killed**: CN's ``wlx serve`` is SIGKILLed mid-stream (a new epoch
   forces a full snapshot), restarted, and RU completes;
3. **partition**: the proxy cuts RU off while CN makes many changes; RU's
   syncs fail; the proxy heals; RU catches up;
4. **stall and trickle**: the proxy accepts and never answers, then trickles
   bytes, while RU serves lookups; RU must not hang its lookups or accuse CN;
5. **lookups under load**: RU (``wlx serve``) pulls a large snapshot while
   officers look up without pause;
6. **concurrent commands**: ``wlx records count``, ``wlx status`` and
   ``wlx sync`` run beside RU's ``wlx serve`` while it pulls a snapshot.

After each phase RU's listings of CN are compared, handle by handle, with
what CN shares with RU: ``lost`` (CN has it, RU does not) and ``extra`` must
be 0, and no rejection may be logged (CN is honest, so any is false).
Figures are printed at the end (``--json`` for machine use); the exit status
is 1 if anything was lost or falsely rejected.

    scripts/chaos                 short mode (CI): 3,000 listings, 5 kills
    scripts/chaos --long          100,000 listings, 20 kills, 10,000 changes
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

from demo_data import person

from wlx.node.core.node import Node
from wlx.node.core.records import Record, parse_record
from wlx.node.directory import init_node
from wlx.node.incoming.lookup import Query
from wlx.node.outgoing import origin, ownlist
from wlx.node.rpc.transport import client_channel
from wlx.node.rpc.wire import query_to_pb
from wlx.node.trust import credentials, lifecycle
from wlx.v1 import lookup_pb2, lookup_pb2_grpc

WLX = str(Path(sys.executable).with_name("wlx"))


# ------------------------------------------------------------------ the proxy


class Proxy:
    """A TCP proxy to ``upstream`` whose behaviour can be switched at run time.

    Modes: ``pass`` (forward), ``down`` (accept and close at once: a
    partition), ``stall`` (accept, never forward a byte), ``trickle``
    (forward, but the upstream's bytes at ``trickle_rate`` bytes/s).
    Switching mode closes every open connection.
    """

    def __init__(self, upstream: tuple[str, int], trickle_rate: int = 4096) -> None:
        self.upstream = upstream
        self.trickle_rate = trickle_rate
        self.mode = "pass"
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            conns, self._conns = self._conns, []
        for conn in conns:
            _close(conn)

    def close(self) -> None:
        self._stop.set()
        self.set_mode("down")
        _close(self._server)

    def _accept(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            mode = self.mode
            if mode == "down":
                _close(client)
                continue
            with self._lock:
                self._conns.append(client)
            if mode == "stall":
                continue  # held open, never read, never answered
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns.append(upstream)
            rate = self.trickle_rate if mode == "trickle" else 0
            threading.Thread(target=_pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, rate), daemon=True).start()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _pump(source: socket.socket, target: socket.socket, rate: int) -> None:
    chunk = 64 if rate else 65536
    try:
        source.settimeout(None)
        while True:
            data = source.recv(chunk)
            if not data:
                break
            target.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    _close(source)
    _close(target)


# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{what} did not come up")


def serve(directory: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [WLX, "serve", str(directory), "--sync-interval", "100000"],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    wait_port(port, proc, f"wlx serve {directory.name}")
    return proc


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------ the run


@dataclass
class Figures:
    listings_compared: int = 0
    lost: int = 0
    extra: int = 0
    false_rejections: int = 0
    receiver_kills: int = 0
    origin_kills: int = 0
    failed_syncs_while_cut: int = 0
    stalled_sync_survived: bool = False
    concurrent_commands: int = 0
    lookups: int = 0
    lookup_errors: int = 0
    lookup_ms_p50: float = 0.0
    lookup_ms_p99: float = 0.0
    lookup_ms_max: float = 0.0
    receiver_rss_kib_before: int = 0
    receiver_rss_kib_after: int = 0
    phases: list[dict[str, Any]] = field(default_factory=list)


class Chaos:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.rng = random.Random(args.seed)
        self.figures = Figures()
        self.log = root / "nodes.log"
        self.cn_port, self.ru_port = free_port(), free_port()
        self.cn_dir, self.ru_dir = root / "cn", root / "ru"
        self.cn = init_node(self.cn_dir, node_id="CN", listen=f"127.0.0.1:{self.cn_port}")
        ru = init_node(self.ru_dir, node_id="RU", listen=f"127.0.0.1:{self.ru_port}")
        self.proxy = Proxy(("127.0.0.1", self.cn_port), trickle_rate=args.trickle_rate)
        origin.add_peer(ru, self.cn.card.raw, f"127.0.0.1:{self.proxy.port}")
        origin.add_peer(self.cn, ru.card.raw, f"127.0.0.1:{self.ru_port}")
        self.officer = credentials.issue(ru, name="chaos-post", role="officer")
        ru.close()
        _raise_officer_limits(self.ru_dir / "node.toml")
        self.cn_proc: subprocess.Popen[bytes] | None = None
        self.ru_proc: subprocess.Popen[bytes] | None = None
        self.next_id = 0

    # -------------------------------------------------------------- helpers

    def records(self, count: int) -> list[Record]:
        made = []
        for _ in range(count):
            made.append(parse_record(person("CN", self.rng, self.next_id + 1), line=0))
            self.next_id += 1
        return made

    def start_cn(self) -> None:
        self.cn_proc = serve(self.cn_dir, self.cn_port, self.log)

    def sync_ru(self, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [WLX, "sync", str(self.ru_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def converge(self, phase: str) -> None:
        """Sync RU to completion, then compare its listings of CN with CN's."""
        for _ in range(5):
            if self.sync_ru().returncode == 0:
                break
        self.compare(phase)

    def compare(self, phase: str) -> None:
        expected = expected_handles(self.cn, "RU")
        held = ru_handles(self.ru_dir)
        lost, extra = len(expected - held), len(held - expected)
        rejections = count_rejections(self.ru_dir) + count_rejections(self.cn_dir)
        fig = self.figures
        fig.listings_compared += len(expected)
        fig.lost += lost
        fig.extra += extra
        fig.false_rejections = rejections
        fig.phases.append(
            {
                "phase": phase,
                "listings": len(expected),
                "lost": lost,
                "extra": extra,
                "rejections_so_far": rejections,
            }
        )
        print(
            f"  {phase}: {len(expected)} listings compared, {lost} lost, {extra} extra, "
            f"{rejections} rejections logged so far",
            flush=True,
        )

    def kill_ru_sync_at_random(self, kills: int, window: float) -> int:
        """Start ``wlx sync RU`` and SIGKILL it at a random moment, ``kills`` times."""
        done = 0
        for _ in range(kills * 3):
            if done >= kills:
                break
            proc = subprocess.Popen(
                [WLX, "sync", str(self.ru_dir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(self.rng.uniform(0.05, window))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                done += 1
            proc.wait()
        return done

    def change(self, count: int) -> None:
        """``count`` changes at CN: updates, removals and additions."""
        with self.cn.store.read() as tx:
            ids = [r.id for r in tx.iter_records()]
        self.rng.shuffle(ids)
        removals = ids[: count // 4]
        updates = ids[count // 4 : count // 2]
        for record_id in removals:
            ownlist.remove_record(self.cn, record_id)
        fresh = self.records(count - len(removals) - len(updates))
        changed = []
        for record_id in updates:
            obj = person("CN", self.rng, self.next_id + 1)
            self.next_id += 1
            obj["id"] = record_id
            changed.append(parse_record(obj, line=0))
        ownlist.import_records(self.cn, changed + fresh)

    # -------------------------------------------------------------- phases

    def phase_receiver_killed(self) -> None:
        args = self.args
        print(f"phase 1: {args.records} listings; receiver SIGKILLed during sync", flush=True)
        start = time.monotonic()
        first = self.kill_ru_sync_at_random(args.kills, args.kill_window)
        self.figures.receiver_kills += first
        self.converge("after the snapshot")
        print(f"  ({first} kills during the snapshot, {time.monotonic() - start:.1f} s)")
        for round_ in range(3):
            self.change(args.changes // 3)
            self.figures.receiver_kills += self.kill_ru_sync_at_random(
                max(1, args.kills // 3), args.kill_window / 3
            )
            self.converge(f"after deltas {round_ + 1}")

    def phase_origin_killed(self) -> None:
        print("phase 2: origin SIGKILLed mid-stream", flush=True)
        for _ in range(self.args.origin_kills):
            lifecycle.new_epoch(self.cn, "RU")  # RU must pull a whole snapshot
            proc = subprocess.Popen(
                [WLX, "sync", str(self.ru_dir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(self.rng.uniform(0.1, self.args.kill_window))
            stop(self.cn_proc, signal.SIGKILL)
            self.figures.origin_kills += 1
            proc.wait(timeout=300)
            self.start_cn()
            self.converge("after the origin restarted")

    def phase_partition(self) -> None:
        print(f"phase 3: partition while CN makes {self.args.changes} changes", flush=True)
        self.proxy.set_mode("down")
        self.change(self.args.changes)
        for _ in range(2):
            if self.sync_ru(timeout=300).returncode != 0:
                self.figures.failed_syncs_while_cut += 1
        self.proxy.set_mode("pass")
        self.converge("after the partition healed")

    def phase_stall_and_lookups(self) -> None:
        print("phase 4/5: stalling and trickling peer; lookups under a large sync", flush=True)
        self.ru_proc = serve(self.ru_dir, self.ru_port, self.log)
        time.sleep(0.5)
        self.figures.receiver_rss_kib_before = rss_kib(self.ru_proc.pid)
        latencies: list[float] = []
        stop_lookups = threading.Event()
        looker = threading.Thread(target=self._lookups, args=(latencies, stop_lookups), daemon=True)
        looker.start()
        # A peer that accepts and never answers: RU's sync waits, lookups go on.
        self.proxy.set_mode("stall")
        self.change(20)
        self.ru_proc.send_signal(signal.SIGHUP)
        time.sleep(self.args.stall_seconds)
        self.figures.stalled_sync_survived = self.ru_proc.poll() is None
        # A peer that trickles: unstall (closes the stalled call), trickle a delta.
        self.proxy.set_mode("trickle")
        self.ru_proc.send_signal(signal.SIGHUP)
        time.sleep(self.args.stall_seconds)
        self.proxy.set_mode("pass")
        # Lookups while RU pulls a whole snapshot (a new epoch).
        lifecycle.new_epoch(self.cn, "RU")
        self.ru_proc.send_signal(signal.SIGHUP)
        self._wait_for_epoch(timeout=600)
        stop_lookups.set()
        looker.join()
        self.figures.receiver_rss_kib_after = rss_kib(self.ru_proc.pid)
        stop(self.ru_proc)
        self.ru_proc = None
        if latencies:
            ordered = sorted(latencies)
            fig = self.figures
            fig.lookups = len(ordered)
            fig.lookup_ms_p50 = round(statistics.median(ordered) * 1000, 2)
            fig.lookup_ms_p99 = round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2)
            fig.lookup_ms_max = round(ordered[-1] * 1000, 2)
        self.converge("after lookups under load")

    def _wait_for_epoch(self, timeout: float) -> None:
        with self.cn.store.read() as tx:
            state = tx.get_outbound("RU")
        assert state is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inbound = ru_inbound(self.ru_dir)
            if inbound is not None and inbound[0] == state.epoch:
                return
            time.sleep(0.2)

    def _lookups(self, latencies: list[float], done: threading.Event) -> None:
        channel = client_channel(f"127.0.0.1:{self.ru_port}", self.officer)
        stub = lookup_pb2_grpc.LookupStub(channel)
        rng = random.Random(7)
        while not done.is_set():
            query = Query(names=(f"Chaos Person {rng.randrange(10**6)}",), dob="1980")
            started = time.perf_counter()
            try:
                stub.Check(
                    lookup_pb2.CheckRequest(person=query_to_pb(query), purpose="chaos"),
                    timeout=10,
                )
                latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - counted, the run goes on
                self.figures.lookup_errors += 1
                time.sleep(0.05)
        channel.close()

    def phase_concurrent_commands(self) -> None:
        print("phase 6: CLI commands beside a serving receiver during a large sync", flush=True)
        self.ru_proc = serve(self.ru_dir, self.ru_port, self.log)
        self._wait_for_epoch(timeout=600)  # its first round, at start
        lifecycle.new_epoch(self.cn, "RU")
        done = threading.Event()
        commands = [
            [WLX, "records", "count", str(self.ru_dir)],
            [WLX, "status", str(self.ru_dir), "--json"],
            [WLX, "sync", str(self.ru_dir)],
        ]

        def run_commands(offset: int) -> None:
            turn = offset
            while not done.is_set():
                subprocess.run(commands[turn % 3], capture_output=True, timeout=600, check=False)
                self.figures.concurrent_commands += 1
                turn += 1

        runners = [threading.Thread(target=run_commands, args=(i,)) for i in range(2)]
        for runner in runners:
            runner.start()
        time.sleep(0.5)
        self.ru_proc.send_signal(signal.SIGHUP)
        self._wait_for_epoch(timeout=600)
        done.set()
        for runner in runners:
            runner.join()
        stop(self.ru_proc)
        self.ru_proc = None
        self.converge("after concurrent commands")

    def run(self) -> Figures:
        self.start_cn()
        try:
            ownlist.import_records(self.cn, self.records(self.args.records))
            for name in self.args.phases:
                PHASES[name](self)
        finally:
            stop(self.ru_proc)
            stop(self.cn_proc)
            self.proxy.close()
            self.cn.close()
        return self.figures


PHASES: dict[str, Callable[[Chaos], None]] = {
    "receiver": Chaos.phase_receiver_killed,
    "origin": Chaos.phase_origin_killed,
    "partition": Chaos.phase_partition,
    "stall": Chaos.phase_stall_and_lookups,
    "commands": Chaos.phase_concurrent_commands,
}


def _raise_officer_limits(config: Path) -> None:
    """Officers of RU may look up without throttling (the run measures latency)."""
    text = config.read_text(encoding="utf-8")
    # Lookups cost one token per identifier key tested (20-46 per name).
    for facet, value in (("per_minute", "1e9"), ("burst", "1e7"), ("per_day", "1e12")):
        prefix = f"officer_{facet} ="
        lines = [f"{prefix} {value}" if ln.startswith(prefix) else ln for ln in text.splitlines()]
        text = "\n".join(lines) + "\n"
    config.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------ comparing


def expected_handles(cn: Node, peer: str) -> set[bytes]:
    """The handles of every listing CN shares with ``peer`` in its current epoch."""
    with cn.store.read() as tx:
        state = tx.get_outbound(peer)
    assert state is not None
    key = cn.epoch_key(cn.node_id, peer, state.epoch, state.token_key)
    return {u.handle for u in origin._LiveEntries(cn, peer, key, "")}


def _ro(directory: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{directory / 'wlx.db'}?mode=ro", uri=True, timeout=30)


def ru_handles(directory: Path) -> set[bytes]:
    with _ro(directory) as conn:
        return {
            bytes(r[0])
            for r in conn.execute(
                "SELECT handle FROM entries WHERE origin IN "
                "(SELECT slot FROM slots WHERE origin = 'CN' AND state = 'live')"
            )
        }


def ru_inbound(directory: Path) -> tuple[int, int] | None:
    with _ro(directory) as conn:
        row = conn.execute("SELECT epoch, seq FROM inbound WHERE origin='CN'").fetchone()
    return (int(row[0]), int(row[1])) if row else None


def count_rejections(directory: Path) -> int:
    with _ro(directory) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM rejections").fetchone()[0])


# ------------------------------------------------------------------ main


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--long", action="store_true", help="the long run (issue 9 figures)")
    parser.add_argument("--records", type=int, help="listings (short 3,000; long 100,000)")
    parser.add_argument("--kills", type=int, help="receiver kills (short 5; long 20)")
    parser.add_argument("--changes", type=int, help="changes while partitioned (short 600)")
    parser.add_argument("--origin-kills", type=int, help="origin kills (short 1; long 5)")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, in order (default: all of {', '.join(PHASES)})",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the node directories")
    args = parser.parse_args(argv)
    long_ = args.long
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    args.records = args.records or (100_000 if long_ else 3_000)
    args.kills = args.kills or (20 if long_ else 5)
    args.changes = args.changes or (10_000 if long_ else 600)
    args.origin_kills = args.origin_kills or (5 if long_ else 1)
    args.kill_window = 20.0 if long_ else 2.0
    args.stall_seconds = 10.0 if long_ else 3.0
    args.trickle_rate = 4096
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    root = Path(tempfile.mkdtemp(prefix="wlx-chaos-"))
    started = time.monotonic()
    figures = Chaos(args, root).run()
    out: dict[str, Any] = {k: v for k, v in vars(figures).items()}
    out["seconds"] = round(time.monotonic() - started, 1)
    out["mode"] = "long" if args.long else "short"
    out["records"] = args.records
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("\nchaos figures")
        for key, value in out.items():
            if key != "phases":
                print(f"  {key:<26} {value}")
    if args.keep:
        print(f"node directories kept in {root}", file=sys.stderr)
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    ok = figures.lost == 0 and figures.extra == 0 and figures.false_rejections == 0
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("WLX_CHAOS", "1")
    sys.exit(main())
