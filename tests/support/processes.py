"""Child processes for end-to-end tests: a free port, and ``wlx serve`` started
and waited for until it accepts connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

WLX = str(Path(sys.executable).with_name("wlx"))
"""The ``wlx`` console script of the virtual environment running the tests."""

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("WLX_DEBUG", "WLX_FAILPOINT")}
"""The environment without the variables that change a node's behaviour."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start_serve(
    directory: Path,
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    stderr: int = subprocess.DEVNULL,
    sync_interval: float = 3600,
    timeout: float = 20,
    args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``wlx serve DIR`` (and ``args``) as a child process, returned once it
    listens on ``port``.

    Raises:
        RuntimeError: the process exited, or did not listen within ``timeout``
            (then it is killed).
    """
    proc = subprocess.Popen(
        [WLX, "serve", str(directory), "--sync-interval", str(sync_interval), *args],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env=dict(env if env is not None else CLEAN_ENV),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"wlx serve exited: {err}".strip())
        if listening(port):
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    raise RuntimeError("wlx serve did not come up")
