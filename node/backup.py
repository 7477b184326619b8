"""``wlx backup`` and ``wlx restore``: a consistent copy of a node, and a way back.

A backup is a directory (mode 0700) holding the node's configuration, card,
every key file (mode 0600), ``backup.json`` and, for SQLite, the store copied
with SQLite's online backup API (consistent while the node serves; mode
0600).  A PostgreSQL store is dumped by the operator (docs/operations.md
§9); the backup then holds the keys and configuration.

Restoring puts the node back as it was at the backup, and then *declares*
it: a ``node.restored`` entry in the exchange log (signed with every later
checkpoint, cosigned by witnesses, seen by auditors), and every peer's
stream restarts at an epoch number above any the peer has seen (on its next
pull), so peers drop listings the node no longer has and resync, instead of
taking the older state for a rollback or a fork.  Witnesses accept the log
restarting from the declaration (``wlx.node.audit.witness``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from wlx.node.audit import exchange_log as audit
from wlx.node.audit.exchange_log import RESTORED_ENTRY_META, Event
from wlx.node.core.config import CARD_FILE, CONFIG_FILE, KEY_DIR, Backend, NodePaths
from wlx.node.core.errors import AlreadyExists, NotFound, UserError
from wlx.node.core.node import Clock, Node
from wlx.node.directory import open_node
from wlx.node.protocol.outbound import RESTORE_PENDING_META

log = logging.getLogger("wlx.backup")

MANIFEST = "backup.json"
BACKUP_FORMAT = 1
__all__ = ["RESTORED_ENTRY_META", "RESTORE_PENDING_META", "backup", "restore"]


@dataclass(frozen=True)
class BackupInfo:
    """What ``backup.json`` says."""

    node_id: str
    made_at: int
    backend: Backend


def _copy_private(source: Path, target: Path) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(source.read_bytes())
        handle.flush()
        os.fsync(handle.fileno())


def _copy_tree(source: Path, target: Path) -> None:
    target.mkdir(mode=0o700)
    for item in sorted(source.iterdir()):
        if item.is_dir():
            _copy_tree(item, target / item.name)
        elif item.is_file():
            _copy_private(item, target / item.name)


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


def backup(node: Node, out: Path) -> BackupInfo:
    """Write a backup of ``node`` to the new directory ``out``; all or nothing.

    Raises:
        AlreadyExists: ``out`` exists.
        UserError: ``out`` cannot be written.
    """
    if out.exists():
        raise AlreadyExists(f"{out} exists already; give a new directory")
    paths = node.paths
    info = BackupInfo(node.node_id, node.now(), node.config.storage.backend)
    parent = out.resolve().parent
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    except OSError as exc:
        raise UserError(f"cannot write in {parent}: {exc.strerror}") from None
    try:
        for _ in range(3):  # keys, then store; again if a rotation ran in between
            card = paths.card.read_bytes()
            for name in (CONFIG_FILE, CARD_FILE):
                _copy_private(paths.root / name, staging / name)
            _copy_tree(paths.keys, staging / KEY_DIR)
            if info.backend == Backend.SQLITE:
                _sqlite_copy(paths.root / node.config.storage.path, staging / "store.db")
            if paths.card.read_bytes() == card:
                break
            for item in staging.iterdir():
                shutil.rmtree(item) if item.is_dir() else item.unlink()
        manifest = {
            "wlx_backup": BACKUP_FORMAT,
            "node_id": info.node_id,
            "made_at": info.made_at,
            "backend": info.backend,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        os.chmod(staging / MANIFEST, 0o600)
        staging.rename(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot write the backup: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("backed up node %s to %s", info.node_id, out)
    return info


def read_info(source: Path) -> BackupInfo:
    """Read a backup's ``backup.json``.

    Raises:
        NotFound: not a wlx backup directory.
    """
    try:
        obj = json.loads((source / MANIFEST).read_text("utf-8"))
        if obj.get("wlx_backup") != BACKUP_FORMAT:
            raise ValueError
        return BackupInfo(str(obj["node_id"]), int(obj["made_at"]), Backend(obj["backend"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise NotFound(f"{source} is not a wlx backup (wlx backup DIR OUT makes one)") from None


def restore(source: Path, directory: Path, *, clock: Clock = time.time) -> Node:
    """Make ``directory`` the node of the backup ``source`` and declare the restore.

    ``directory`` must not exist or be empty (move the damaged node aside
    first).  For PostgreSQL, restore the schema dump before (docs).

    Raises:
        NotFound: ``source`` is not a backup.
        AlreadyExists: ``directory`` is not empty.
    """
    info = read_info(source)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlreadyExists(f"{directory} exists and is not empty; move it aside first")
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
    try:
        os.chmod(staging, 0o700)
        for name in (CONFIG_FILE, CARD_FILE):
            _copy_private(source / name, staging / name)
            os.chmod(staging / name, 0o644)
        _copy_tree(source / KEY_DIR, staging / KEY_DIR)
        (staging / KEY_DIR / "ca.crt").chmod(0o644)
        config = NodePaths(staging).load_config()
        if info.backend == Backend.SQLITE:
            _copy_private(source / "store.db", staging / config.storage.path)
        staged = open_node(staging, clock=clock)
        try:
            declare_restore(staged, info)
        finally:
            staged.close()
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return open_node(directory, clock=clock)


def declare_restore(node: Node, info: BackupInfo) -> int:
    """Log the restore and have every peer's stream restart; returns the entry's index."""
    with node.store.write() as tx:
        tx.lock_changes()
        peers = sorted(s.peer for s in tx.list_outbound())
        index = audit.record(
            tx,
            node,
            kind=Event.NODE_RESTORED,
            backup_made_at=info.made_at,
            peers=peers,
        )
        tx.set_meta(RESTORED_ENTRY_META, str(index).encode())
        tx.set_meta(RESTORE_PENDING_META, json.dumps(peers).encode())
    log.warning(
        "node %s restored from a backup of %d; its log declares it at entry %d, and "
        "peers %s resync in new epochs",
        node.node_id,
        info.made_at,
        index,
        ", ".join(peers) or "(none)",
    )
    return index
