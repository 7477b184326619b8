"""SQLite store: a thread's first transaction does not wait for another
connection's write (issue 13: a 1,000,000-listing origin, restarted while its
housekeeping wrote for minutes, failed its readiness probe with "database is
locked": each new thread's connection set ``auto_vacuum``, which takes the
write lock)."""

from __future__ import annotations

import sqlite3 as stdlib_sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from wlx.node.store import sqlite
from wlx.node.store.sqlite import open_sqlite


def test_a_new_threads_read_does_not_wait_for_a_running_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 300)
    store = open_sqlite(tmp_path / "wlx.db")
    writing, finish = threading.Event(), threading.Event()

    def write() -> None:
        with store.write() as tx:
            tx.set_meta("bench", b"a long write")
            writing.set()
            finish.wait(10)

    read: list[object] = []

    def first_read_of_a_new_thread() -> None:
        try:
            with store.read() as tx:
                read.append(tx.get_meta("schema_version"))
        except Exception as exc:
            read.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert writing.wait(10)
        reader = threading.Thread(target=first_read_of_a_new_thread)
        reader.start()
        reader.join(10)
    finally:
        finish.set()
        writer.join()
        store.close()
    assert len(read) == 1 and isinstance(read[0], bytes), read


def test_a_new_store_still_gives_freed_pages_back(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "wlx.db")
    store.close()
    with closing(stdlib_sqlite3.connect(tmp_path / "wlx.db")) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # incremental
