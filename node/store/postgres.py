"""PostgreSQL connector, for operators who outgrow one machine.

A connection pool (psycopg 3); each node keeps its tables in its own schema
(``search_path``), so several nodes can share one database.  Readers run at
REPEATABLE READ (one consistent snapshot, as SQLite's WAL readers see);
writers at READ COMMITTED, locking the rows they decide on with
``FOR UPDATE`` and the change log with a table lock.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from wlx.node.core.errors import InternalError, Unavailable, UserError
from wlx.node.store import schema
from wlx.node.store.base import Leadership
from wlx.node.store.locks import wait_for
from wlx.node.store.sql import Connector, Cursor, SqlStore

log = logging.getLogger("wlx.store")

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
PROBE_TIMEOUT = 5.0
LEADER_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "connect_timeout": 5,
}
"""The leader's session notices a dead network within about 11 s (libpq
TCP keepalives); a dead process closes its socket, which ends the session
(and frees the lock) at once."""


def probe(dsn: str, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect once, and say in one line why it failed: the DSN is invalid,
    nothing listens at its address, the connection timed out, the database
    does not exist, or the server refused the login.  Never shows a password.

    Raises:
        UserError: invalid DSN, unknown host, no such database, login refused.
        Unavailable: nothing listening, or timed out.
    """
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        raise UserError("storage.dsn is not a PostgreSQL connection string") from None
    host = str(info.get("host") or "")
    raw_port = str(info.get("port") or "5432")
    port = int(raw_port) if raw_port.isdigit() else 5432
    where = f"PostgreSQL at {host or 'the local socket'}" + (f":{port}" if host else "")
    database = str(info.get("dbname") or info.get("user") or "")
    if host and not host.startswith("/") and "," not in host:
        _probe_tcp(host, port, where, timeout)
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout))).close()
        return
    except psycopg.Error:
        pass
    # The address answers but the connection failed: is it the database?
    try:
        with psycopg.connect(dsn, dbname="postgres", connect_timeout=max(1, int(timeout))) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if exists.fetchone() is None:
                raise UserError(
                    f"{where}: database {database!r} does not exist (create it, or fix storage.dsn)"
                )
    except psycopg.Error:
        pass
    user = str(info.get("user") or "the default user")
    raise UserError(
        f"{where} refused the connection to database {database!r} as {user} "
        "(check the user, password and pg_hba.conf)"
    )


def _probe_tcp(host: str, port: int, where: str, timeout: float) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except socket.gaierror:
        raise UserError(f"{where}: unknown host {host!r} (check storage.dsn)") from None
    except ConnectionRefusedError:
        raise Unavailable(f"{where}: nothing is listening there (is PostgreSQL running?)") from None
    except TimeoutError:
        raise Unavailable(f"{where}: timed out after {timeout:.0f} s connecting") from None
    except OSError as exc:
        raise Unavailable(
            f"{where}: cannot connect ({exc.strerror or type(exc).__name__})"
        ) from None


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _PgCursor(Cursor):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(_pg(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self._conn.cursor() as cur:
                cur.executemany(_pg(sql), rows)


class AdvisoryLeadership(Leadership):
    """Leadership as a session advisory lock (``pg_try_advisory_lock``) held
    on a connection of its own, outside the pool, for as long as it leads.

    The lock lives as long as the session: when the holder's process dies,
    PostgreSQL ends the session and another process's next ``hold`` takes
    it.  Every ``hold`` of the holder checks its session with one round
    trip, so a holder cut off from the database stops leading.
    """

    def __init__(self, dsn: str, key: str) -> None:
        self._dsn = dsn
        self._key = key
        self._conn: psycopg.Connection[Any] | None = None
        self._held = False
        self._lock = threading.Lock()  # the scheduler's thread, and its stop()

    def hold(self) -> bool:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self._dsn,
                        autocommit=True,
                        application_name=f"wlx front-end {os.getpid()}",  # who leads: pg_locks
                        **LEADER_KEEPALIVE,
                    )
                    self._held = False
                if self._held:
                    self._conn.execute("SELECT 1")  # the session, hence the lock, is alive
                    return True
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._key,)
                ).fetchone()
                self._held = bool(row and row[0])
            except psycopg.Error as exc:
                log.warning("leadership: no database session (%s)", type(exc).__name__)
                self._drop()
            return self._held

    def release(self) -> None:
        with self._lock:
            if self._conn is not None and self._held:
                with suppress(psycopg.Error):  # else ending the session frees it
                    self._conn.execute(
                        "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self._key,)
                    )
            self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            with suppress(psycopg.Error):
                conn.close()


class PostgresConnector(Connector):
    """A pool of connections to one PostgreSQL schema."""

    dialect = schema.POSTGRES
    shared = True  # any number of `wlx serve` front-ends (docs/scaling.md)
    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, schema_name: str) -> None:
        if not SCHEMA_NAME.match(schema_name):
            raise UserError("a PostgreSQL schema name is lower-case a-z, 0-9 and '_'")
        probe(dsn)  # one clear line instead of the pool's retries and warnings
        self._dsn = dsn
        self._schema = schema_name
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=16,
            kwargs={"autocommit": True},
            configure=self._configure,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise InternalError(f"cannot connect to PostgreSQL ({type(exc).__name__})") from None

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        conn.execute(f'SET search_path TO "{self._schema}"')

    @contextmanager
    def transaction(self, write: bool, durable: bool = True) -> Iterator[Cursor]:
        try:
            with self._pool.connection(timeout=30) as conn:
                conn.execute(
                    "BEGIN ISOLATION LEVEL READ COMMITTED"
                    if write
                    else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                )
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                try:
                    yield _PgCursor(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise InternalError(f"PostgreSQL error ({type(exc).__name__})") from None
        except PoolTimeout:
            raise InternalError("no PostgreSQL connection available") from None

    def lock_table(self, cur: Cursor, table: str) -> None:
        if table not in ("changes", "audit_entries", "witnessed"):
            raise InternalError(f"no lock for table {table}")
        cur.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")

    @contextmanager
    def exclusive(self, name: str, timeout: float) -> Iterator[None]:
        """A session advisory lock keyed by this schema and ``name``, held on
        a connection of its own for the block."""
        key = f"wlx:{self._schema}:{name}"
        try:
            with self._pool.connection(timeout=30) as conn:

                def try_once() -> bool:
                    row = conn.execute(
                        "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)
                    ).fetchone()
                    return bool(row and row[0])

                wait_for(try_once, name, timeout)
                try:
                    yield
                finally:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        except psycopg.Error as exc:
            raise InternalError(f"PostgreSQL error ({type(exc).__name__})") from None
        except PoolTimeout:
            raise InternalError("no PostgreSQL connection available") from None

    def leadership(self, name: str) -> Leadership:
        return AdvisoryLeadership(self._dsn, f"wlx:{self._schema}:leader:{name}")

    def reclaim(self) -> None:
        """Nothing to do: autovacuum returns dead rows' space for reuse."""

    def close(self) -> None:
        self._pool.close()


def open_postgres(dsn: str, schema_name: str) -> SqlStore:
    """Open (creating if needed) the store in ``schema_name`` of ``dsn``.

    Raises:
        Unavailable: PostgreSQL unreachable (nothing listening, timed out).
        UserError: invalid schema name or DSN, no such database, login refused.
        InternalError: the schema has another version.
    """
    connector = PostgresConnector(dsn, schema_name)
    try:
        return SqlStore(connector)
    except BaseException:
        connector.close()
        raise
