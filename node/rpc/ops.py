"""What load balancers, orchestrators and Prometheus ask a serving node.

* ``GET /healthz``: 200 while the process serves (liveness);
* ``GET /readyz``: 200 when ready, else 503 with one reason per line: the
  store did not answer, the node is draining, or a peer's list is staler
  than the bound (``[metrics] stale_after``);
* ``GET /metrics``: Prometheus text format, the process's counters and
  histograms plus the gauges of ``wlx.node.health.StatusCollector``.

Served over plain HTTP, without client certificates, on ``[metrics]
address``/``port`` (127.0.0.1 by default): nothing there names a person.
The gRPC health service (``grpc.health.v1``) follows the same readiness:
NOT_SERVING while draining or stale, re-checked every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from grpc_health.v1 import health, health_pb2
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wlx.node.core.errors import UserError
from wlx.node.core.node import Node
from wlx.node.health import Readiness, StatusCollector, readiness
from wlx.node.report import NodeStatus, node_status

log = logging.getLogger("wlx.ops")

CHECK_EVERY = 5.0
CACHE_SECONDS = 1.0
"""Readiness and status are computed at most once a second, however often probed."""
REQUEST_TIMEOUT = 5.0


class Operations:
    """The health of one serving node, shared by the HTTP endpoint and gRPC health."""

    def __init__(
        self,
        node: Node,
        *,
        bound: float,
        health_servicer: health.HealthServicer | None = None,
        services: Sequence[str] = (),
    ) -> None:
        self._node = node
        self._bound = bound
        self._health = health_servicer
        self._services = ("", *services)
        self.started_at = node.now()
        self._draining = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(self.status, node.now, self.started_at))
        self._cache_lock = threading.Lock()
        self._cached: tuple[float, NodeStatus] | None = None

    def status(self) -> NodeStatus:
        """The node's status, trusted (not revoked) peers only; at most a second old.

        Raises:
            whatever the store raises when it cannot be read.
        """
        with self._cache_lock:  # one store read at a time, however many probes
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            state = node_status(self._node)
            with self._node.store.read() as tx:
                active = {p.node_id for p in tx.list_peers() if not p.revoked_at}
            state = replace(state, peers=tuple(p for p in state.peers if p.peer in active))
            self._cached = (now, state)
            return state

    def forget(self) -> None:
        """Drop the cached status (the next check reads the store)."""
        with self._cache_lock:
            self._cached = None

    def check(self) -> Readiness:
        """Readiness now (never raises: a failing store is a reason)."""
        state: NodeStatus | None = None
        error = ""
        try:
            state = self.status()
        except Exception as exc:  # noqa: BLE001 - any store failure means not ready
            error = type(exc).__name__
            log.warning("readiness: the store did not answer (%s)", error)
        return readiness(
            state,
            now=self._node.now(),
            started_at=self.started_at,
            bound=self._bound,
            draining=self._draining.is_set(),
            store_error=error,
        )

    def update_grpc_health(self) -> Readiness:
        """Set the gRPC health service from readiness; returns it."""
        state = self.check()
        if self._health is not None:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if state.ready
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in self._services:
                self._health.set(name, status)
        return state

    def drain(self) -> None:
        """Stop taking traffic: not ready from now on."""
        self._draining.set()
        self.update_grpc_health()

    def start(self, every: float = CHECK_EVERY) -> None:
        """Re-check readiness for gRPC health every ``every`` seconds."""

        def run() -> None:
            while not self._stop.wait(every):
                self.update_grpc_health()

        self.update_grpc_health()
        self._thread = threading.Thread(target=run, name="wlx-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CHECK_EVERY)


def _handler(ops: Operations) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT  # a client that sends nothing does not hold a thread

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n")
            elif path == "/readyz":
                state = ops.check()
                body = "ready\n" if state.ready else "".join(f"{r}\n" for r in state.reasons)
                self._send(200 if state.ready else 503, body.encode("utf-8"))
            elif path == "/metrics":
                metrics = generate_latest(REGISTRY) + generate_latest(ops.registry)
                self._send(200, metrics, CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: /healthz, /readyz, /metrics\n")

        def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("ops http: " + format, *args)

    return Handler


def serve_http(ops: Operations, address: str, port: int) -> tuple[ThreadingHTTPServer, int]:
    """Serve /healthz, /readyz and /metrics on ``address:port`` in a thread.

    Raises:
        UserError: the port cannot be bound (one line, before anything else starts).
    """
    host = address.strip("[]")
    try:
        server = ThreadingHTTPServer((host, port), _handler(ops))
    except OSError as exc:
        raise UserError(
            f"cannot serve metrics on {address}:{port} ({exc.strerror or exc}); "
            "choose another [metrics] port or --metrics-port"
        ) from None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wlx-ops-http", daemon=True)
    thread.start()
    return server, int(server.server_address[1])
