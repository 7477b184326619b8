"""SQLite connector: the embedded default store (nothing to set up).

WAL journal, ``synchronous=FULL`` (a committed transaction survives power
loss), one connection per thread, and ``BEGIN IMMEDIATE`` for writers so
that two writers never deadlock on a lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wlx.node.core.errors import InternalError
from wlx.node.store import schema
from wlx.node.store.base import Leadership
from wlx.node.store.locks import FileLeadership, file_lock
from wlx.node.store.sql import Connector, Cursor, SqlStore

BUSY_TIMEOUT_MS = 30_000
WAL_LIMIT_BYTES = 64 * 1024 * 1024
"""The write-ahead log is checkpointed when it reaches this size, and
truncated to it after a checkpoint."""


class _SqliteCursor(Cursor):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteConnector(Connector):
    """Connections to one SQLite database file."""

    dialect = schema.SQLITE
    shared = False  # one `wlx serve` per SQLite store (cli: serve)
    for_update = ""  # BEGIN IMMEDIATE already serialises writers

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self._path, isolation_level=None, check_same_thread=False, timeout=30
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # Effective only in a new database (before its first table):
                # space freed by a snapshot's staging can then go back.  Set
                # only there: setting it takes the write lock, so every new
                # thread's connection would wait for a running write.
                if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
                    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
                # Checkpoint when the log reaches that size, not at 1,000
                # pages: a page written by many transactions in between (a
                # chunked import's index) is copied to the database once.
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_LIMIT_BYTES // page}")
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                raise InternalError(f"cannot open the store ({exc})") from None
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self, write: bool, durable: bool = True) -> Iterator[Cursor]:
        conn = self._connection()
        if not durable:
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: consistent, not durable
        try:
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise InternalError(f"store unavailable ({exc})") from None
            try:
                yield _SqliteCursor(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise InternalError(f"store commit failed ({exc})") from None
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous = FULL")

    def lock_table(self, cur: Cursor, table: str) -> None:
        """Nothing to do: SQLite has one writer at a time."""

    @contextmanager
    def exclusive(self, name: str, timeout: float) -> Iterator[None]:
        with file_lock(self._path.with_name(f"{self._path.name}.{name}.lock"), name, timeout):
            yield

    def leadership(self, name: str) -> Leadership:
        return FileLeadership(self._path.with_name(f"{self._path.name}.{name}.leader"))

    def reclaim(self) -> None:
        """Give the free pages back to the file system (a new database only,
        see ``auto_vacuum``), and truncate the write-ahead log."""
        conn = self._connection()
        try:
            # Each step frees one page; executescript steps to the end.
            conn.executescript("PRAGMA incremental_vacuum;")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            raise InternalError(f"store unavailable ({exc})") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


DB_MODE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Create ``path`` (and tighten it and its WAL side files) to mode 0600.

    SQLite creates the ``-wal`` and ``-shm`` files with the mode of the
    database file, so creating that file 0600 first keeps all three private
    whatever the umask.

    Raises:
        InternalError: the file cannot be created or its mode changed.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, DB_MODE))
        for candidate in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
            if candidate.exists() and candidate.stat().st_mode & 0o077:
                candidate.chmod(DB_MODE)
    except OSError as exc:
        raise InternalError(f"cannot create the store at {path} ({exc.strerror})") from None


def open_sqlite(path: Path) -> SqlStore:
    """Open (creating if needed, mode 0600) the SQLite store at ``path``.

    Raises:
        InternalError: the file cannot be opened or has another schema.
    """
    if str(path) != ":memory:":
        private_file(path)
    try:
        return SqlStore(SqliteConnector(path))
    except sqlite3.Error as exc:
        raise InternalError(f"cannot open the store ({exc})") from None
