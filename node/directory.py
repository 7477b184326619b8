"""A node directory: ``init_node`` creates one (all of it, or nothing),
``open_node`` loads one into a ``Node`` (``wlx.node.core.node``) with its store.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from wlx.crypto import atrest, tls
from wlx.crypto.card import check_node_id, make_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import MalformedError
from wlx.crypto.keys import BoxKey, Rng, SigningKey, system_rng
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import exchange_log
from wlx.node.audit.exchange_log import Event
from wlx.node.core import normalisation
from wlx.node.core.config import (
    BOX_KEY,
    IDENTITY_KEY,
    TLS_KEY,
    Backend,
    NodeConfig,
    NodePaths,
    StorageConfig,
    check_address,
    write_private,
    write_public,
)
from wlx.node.core.errors import AlreadyExists, UserError
from wlx.node.core.node import Clock, KeySet, Node, load_keys
from wlx.node.outgoing import bulk_import, ownlist
from wlx.node.protocol.versions import NODE_SPEAKS
from wlx.node.store.base import InboundState, Store
from wlx.node.store.postgres import open_postgres
from wlx.node.store.sqlite import open_sqlite

log = logging.getLogger("wlx.node")


def _open_store(paths: NodePaths, storage: StorageConfig) -> Store:
    if storage.backend == Backend.POSTGRESQL:
        return open_postgres(storage.dsn, storage.schema)
    return open_sqlite(paths.root / storage.path)


def _node(
    config: NodeConfig,
    paths: NodePaths,
    keys: KeySet,
    store: Store,
    clock: Clock,
    rng: Rng,
    insecure_dev: bool,
) -> Node:
    return Node(
        config,
        paths,
        keys.signing,
        keys.box,
        keys.storage,
        keys.card,
        store,
        tls_key=keys.tls_key,
        ca_key=keys.ca_key,
        ca_cert=keys.ca_cert,
        service_cert=keys.service_cert,
        clock=clock,
        rng=rng,
        insecure_dev=insecure_dev,
    )


def open_node(
    directory: Path,
    *,
    clock: Clock = time.time,
    rng: Rng = system_rng,
    insecure_dev: bool = False,
) -> Node:
    """Load the node in ``directory``.

    Raises:
        NotFound: not a node directory, or a key file is missing.
        UserError: bad configuration, or key files readable by others.
        InternalError: the store cannot be opened.
    """
    paths = NodePaths(directory)
    config = paths.load_config()
    store = _open_store(paths, config.storage)
    try:
        if (paths.keys / "next").exists():  # a key rotation was interrupted
            with store.read() as tx:
                committed = tx.get_meta(ROTATION_META)
            finish_rotation(paths, committed=committed)
        keys = load_keys(paths, config)
        node = _node(config, paths, keys, store, clock, rng, insecure_dev)
        ownlist.upgrade_record_contexts(node)  # a store made before records were bound
        bulk_import.resume(node)  # an import a crash left published, not yet applied
    except BaseException:
        store.close()
        raise
    return node


CERT_DAYS = 3650


def cert_validity(now: int, days: int) -> tuple[int, int]:
    """``(not_before, not_after)`` of a certificate made at ``now`` for ``days``.

    TLS checks validity against the wall clock, whatever clock the node is
    given, so the window covers both (and a day of skew).
    """
    wall = int(time.time())
    return min(now, wall) - 86_400, max(now, wall) + days * 86_400


ROTATION_META = "rotation_card"

ROTATED_FILES = (IDENTITY_KEY, BOX_KEY, TLS_KEY)


def finish_rotation(paths: NodePaths, *, committed: bytes | None) -> None:
    """Swap in a key set from ``keys/next`` if the store committed to it.

    ``committed`` is the rotated card the store recorded (None: unknown, in
    which case a leftover ``keys/next`` is discarded).  The old key set moves
    to ``keys/previous`` (kept to announce the new card to peers).
    """
    staging = paths.keys / "next"
    if not staging.exists():
        return
    if committed is None or (staging / "card.json").read_bytes() != committed:
        shutil.rmtree(staging)
        return
    previous = paths.previous_keys
    if previous.exists():
        shutil.rmtree(previous)
    previous.mkdir(mode=0o700)
    for name in ROTATED_FILES:
        (paths.keys / name).rename(previous / name)
    paths.card.rename(previous / "card.json")
    for name in ROTATED_FILES:
        (staging / name).rename(paths.keys / name)
    (staging / "card.json").rename(paths.card)
    staging.rmdir()


def write_node_keys(
    keys_dir: Path,
    card_path: Path,
    node_id: str,
    advertise: str,
    *,
    now: int,
    rng: Rng,
    previous: SigningKey | None = None,
) -> bytes:
    """Make and write a node's identity, box and TLS keys (in ``keys_dir``) and
    its card; returns the card.

    With ``previous``, the card is endorsed by that (old) identity key.
    """
    signing_key = SigningKey.generate(rng)
    box_key = BoxKey.generate(rng)
    tls_key = tls.generate_key(rng)
    not_before, not_after = cert_validity(now, CERT_DAYS)
    tls_cert = tls.node_certificate(
        tls_key, node_id, not_before=not_before, not_after=not_after, rng=rng
    )
    write_private(keys_dir / IDENTITY_KEY, signing_key.to_pem())
    write_private(keys_dir / BOX_KEY, box_key.to_pem())
    write_private(keys_dir / TLS_KEY, tls.key_to_pem(tls_key))
    card = make_card(
        signing_key,
        box_key.public(),
        node_id,
        advertise,
        now,
        tls_cert,
        previous=previous,
        tls_key=tls_key,
        speaks=NODE_SPEAKS,
    )
    write_public(card_path, card)
    return card


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "0:0:0:0:0:0:0:0", ""})  # noqa: S104 - detected, not bound


def host_of(address: str) -> str:
    """The host of ``HOST:PORT`` (IPv6 brackets removed)."""
    return address.rpartition(":")[0].strip("[]")


def init_node(
    directory: Path,
    *,
    node_id: str,
    listen: str,
    advertise: str | None = None,
    storage: StorageConfig | None = None,
    sync_interval: float | None = None,
    clock: Clock = time.time,
    rng: Rng = system_rng,
) -> Node:
    """Create a node directory: keys, configuration, card and an empty store.

    Built in a temporary sibling directory and renamed into place, so an
    error leaves nothing behind.

    Raises:
        AlreadyExists: ``directory`` exists and is not empty.
        UserError: invalid node id or address.
        InternalError: the store cannot be created.
    """
    advertise = _checked_addresses(node_id, listen, advertise)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise AlreadyExists(f"{directory} exists and is not empty")
    storage = storage or StorageConfig()
    config = NodeConfig(
        node_id=node_id,
        listen=listen,
        advertise=advertise,
        sync_interval=sync_interval or 30.0,
        storage=storage,
    )
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
    store: Store | None = None
    try:
        paths = NodePaths(staging)
        _write_secrets_and_config(paths, config, clock, rng)
        keys = load_keys(paths, config)
        store = _open_store(paths, storage)
        node = _node(config, paths, keys, store, clock, rng, insecure_dev=False)
        _seed_store(node, store)
        store.close()
        store = None
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        if store is not None:
            store.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("node %s created in %s", node_id, directory)
    return open_node(directory, clock=clock, rng=rng)


def _checked_addresses(node_id: str, listen: str, advertise: str | None) -> str:
    """Check a new node's id and addresses; returns the address to advertise.

    Raises:
        UserError: invalid node id or address, or no address peers can reach.
    """
    try:
        check_node_id(node_id)
    except MalformedError as exc:
        raise UserError(str(exc)) from None
    check_address(listen)
    port = listen.rpartition(":")[2]
    if advertise is None and host_of(listen) in WILDCARD_HOSTS:
        raise UserError(
            f"--listen {listen} binds every interface, but peers need an address to reach "
            f"this node: give --advertise HOST:{port} (the name or address peers connect to)"
        )
    advertise = check_address(advertise or listen)
    if host_of(advertise) in WILDCARD_HOSTS:
        raise UserError(f"--advertise {advertise} is not an address peers can connect to")
    return advertise


def _write_secrets_and_config(paths: NodePaths, config: NodeConfig, clock: Clock, rng: Rng) -> None:
    """Write a new node's keys, card, TLS CA, storage key and configuration."""
    paths.keys.mkdir(mode=0o700)
    now = int(clock())
    write_node_keys(paths.keys, paths.card, config.node_id, config.advertise, now=now, rng=rng)
    ca_key = tls.generate_key(rng)
    write_private(paths.ca_key, tls.key_to_pem(ca_key))
    write_public(
        paths.ca_cert,
        tls.ca_certificate(ca_key, config.node_id, *cert_validity(now, CERT_DAYS), rng=rng),
    )
    write_private(paths.storage_key, rng(atrest.STORAGE_KEY_LEN))
    write_public(paths.config, config.to_toml().encode("utf-8"))


def _seed_store(node: Node, store: Store) -> None:
    """Give a new node's empty store its own list's first epoch and the
    ``node.created`` entry.

    Raises:
        AlreadyExists: the store already holds data (of any node).
    """
    node_id = node.node_id
    own_key = EpochKey.generate(node_id, node_id, 1, node.rng)
    with store.write() as tx:
        # Any node's data, not only this node id's: two nodes in one schema
        # would share (and break) each other's tables.
        if tx.list_inbound() or tx.count_records():
            raise AlreadyExists(
                f"the store of node {node_id} already holds data; use a new database schema"
            )
        tx.put_inbound(
            InboundState(
                origin=node_id,
                epoch=1,
                token_key=node.wrap_epoch_key(own_key),
                seq=0,
                digest=genesis_digest(node_id, node_id, 1),
                synced_at=0,
            )
        )
        normalisation.record(tx, node_id, node_id, 1)
        normalisation.record_protocol(tx, node_id, node_id, 1, ownlist.OWN_PROTOCOL)
        tx.set_meta(ownlist.RECORD_CONTEXT_META, ownlist.RECORD_CONTEXT_VERSION)
        exchange_log.record(
            tx,
            node,
            kind=Event.NODE_CREATED,
            fingerprint=node.card.fingerprint(),
        )
