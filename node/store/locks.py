"""Cross-process named locks for the store connectors.

A node's store is shared by every process that opens it (``wlx serve`` and
any number of CLI commands); some work must run in one of them at a time
(pulling from peers: two pulls of one origin would race each other's
cursor and staged snapshot).  ``file_lock`` serves SQLite (an advisory
``flock`` beside the database file, released by the kernel when its holder
dies); PostgreSQL uses session advisory locks (``postgres``).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from wlx.node.core.errors import Unavailable
from wlx.node.store.base import Leadership

POLL_SECONDS = 0.05


def wait_for(try_once: Callable[[], bool], name: str, timeout: float) -> None:
    """Call ``try_once`` until it returns True, for up to ``timeout`` seconds.

    Raises:
        Unavailable: still not acquired after ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while not try_once():
        if time.monotonic() >= deadline:
            raise Unavailable(
                f"another process of this node holds the {name} lock; try again when it is done"
            )
        time.sleep(POLL_SECONDS)


@contextmanager
def file_lock(path: Path, name: str, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    Raises:
        Unavailable: another holder kept it past ``timeout``.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:

        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        wait_for(try_once, name, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class FileLeadership(Leadership):
    """Leadership as an exclusive ``flock`` on ``path``, kept while held."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def hold(self) -> bool:
        with self._lock:
            if self._fd is not None:
                return True
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # closing the file drops its flock
                self._fd = None
