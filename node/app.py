"""A node: its configuration, keys, store, clock and randomness, together.

``Node`` is what every service of the node is given.  ``init_node`` creates a
node directory (all of it, or nothing); ``open_node`` loads one.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wlx.crypto import atrest, tls
from wlx.crypto.card import IdentityCard, check_node_id, make_card, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError, MalformedError
from wlx.crypto.keys import BoxKey, Rng, SigningKey, system_rng
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import log as audit
from wlx.node.audit.log import Event
from wlx.node.config import (
    BOX_KEY,
    IDENTITY_KEY,
    TLS_KEY,
    NodeConfig,
    NodePaths,
    StorageConfig,
    check_address,
    read_private,
    write_private,
    write_public,
)
from wlx.node.errors import AlreadyExists, InternalError, UserError
from wlx.node.store.base import InboundState, PeerRow, Store
from wlx.node.store.postgres import open_postgres
from wlx.node.store.sqlite import open_sqlite

log = logging.getLogger("wlx.node")

Clock = Callable[[], float]


@dataclass
class Node:
    """An open node.  Thread-safe: the store hands each thread its connection."""

    config: NodeConfig
    paths: NodePaths
    signing_key: SigningKey = field(repr=False)
    box_key: BoxKey = field(repr=False)
    storage_key: bytes = field(repr=False)
    card: IdentityCard
    store: Store
    tls_key: bytes = field(repr=False, default=b"")
    """PEM of the node's P-256 TLS key (its certificate is in the card)."""
    ca_key: bytes = field(repr=False, default=b"")
    """PEM of the node's credential CA key."""
    ca_cert: bytes = b""
    """PEM of the node's credential CA certificate."""
    service_cert: bytes = b""
    """PEM of the certificate the credential CA issued for the current TLS key;
    presented to officers', auditors' and operators' tools, whose credentials
    pin the CA (so they survive a key rotation)."""
    clock: Clock = time.time
    rng: Rng = system_rng
    insecure_dev: bool = False
    """Plaintext gRPC, no client authentication: development only."""
    _cards: dict[bytes, IdentityCard] = field(default_factory=dict, repr=False)
    _card_stamp: tuple[int, int, int] | None = field(default=None, repr=False)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tls_cert(self) -> bytes:
        """PEM of the node's TLS certificate (pinned by peers via the card)."""
        return self.card.tls_cert

    def reload_keys(self) -> bool:
        """Re-read keys and card after a rotation by another process.

        Cheap when nothing changed (one ``stat`` of the card file), so it is
        called for every new connection.  Returns True if the card changed.

        Raises:
            UserError: as ``open_node``.
        """
        with self._reload_lock:
            try:
                stamp = self.paths.card.stat()
            except FileNotFoundError:
                return False  # mid-rotation: the new card is about to be in place
            seen = (stamp.st_mtime_ns, stamp.st_size, stamp.st_ino)
            if seen == self._card_stamp:
                return False
            self._card_stamp = seen
            return self._swap_keys(_load_keys(self.paths, self.config))

    def _swap_keys(self, keys: _Keys) -> bool:
        if keys.card.raw == self.card.raw:
            return False
        self.signing_key, self.box_key, self.card = keys.signing, keys.box, keys.card
        self.tls_key, self.ca_key, self.ca_cert = keys.tls_key, keys.ca_key, keys.ca_cert
        self.service_cert = keys.service_cert
        log.info("identity keys reloaded: %s", self.card.fingerprint())
        return True

    @property
    def node_id(self) -> str:
        return self.config.node_id

    def now(self) -> int:
        """Unix time in whole seconds, from the node's clock."""
        return int(self.clock())

    def today(self) -> str:
        """Today's date (UTC) as YYYY-MM-DD, from the node's clock."""
        return datetime.datetime.fromtimestamp(self.now(), datetime.UTC).date().isoformat()

    def trusted(self, node_id: str) -> IdentityCard | None:
        """The trusted card of ``node_id``, or None (read from the store each time,
        so peers added or revoked by another process take effect at once)."""
        with self.store.read() as tx:
            peer = tx.get_peer(node_id)
        if peer is None or peer.revoked_at:
            return None
        return self.card_of(peer)

    def card_of(self, peer: PeerRow) -> IdentityCard:
        """The parsed card of a stored peer (parsed once, then cached)."""
        card = self._cards.get(peer.card)
        if card is None:
            card = parse_card(peer.card)
            self._cards[peer.card] = card
        return card

    def seal_at_rest(self, value: bytes, context: str) -> bytes:
        """Encrypt a value for storage under the node's storage key."""
        return atrest.encrypt(self.storage_key, value, context, self.rng)

    def open_at_rest(self, blob: bytes, context: str) -> bytes:
        """Decrypt a stored value.

        Raises:
            InternalError: it does not open (wrong storage key, or tampering).
        """
        try:
            return atrest.decrypt(self.storage_key, blob, context)
        except CryptoError:
            raise InternalError(
                f"a stored value ({context.split(':', maxsplit=1)[0]}) does not open with this "
                "node's storage key"
            ) from None

    def epoch_key(self, origin: str, recipient: str, epoch: int, wrapped: bytes) -> EpochKey:
        """Unwrap a stored epoch token key."""
        raw = self.open_at_rest(wrapped, f"epoch-key:{origin}:{recipient}:{epoch}")
        return EpochKey(raw, origin, recipient, epoch)

    def wrap_epoch_key(self, key: EpochKey) -> bytes:
        """Wrap an epoch token key for storage."""
        return self.seal_at_rest(key.key, f"epoch-key:{key.origin}:{key.recipient}:{key.epoch}")

    def own_epoch_key(self) -> EpochKey:
        """The key of the node's index of its own list.

        Raises:
            InternalError: the store lacks it (not made by ``wlx init``).
        """
        with self.store.read() as tx:
            state = tx.get_inbound(self.node_id)
        if state is None:
            raise InternalError("the store has no index key for the node's own list")
        return self.epoch_key(self.node_id, self.node_id, state.epoch, state.token_key)

    def close(self) -> None:
        self.store.close()


def _open_store(paths: NodePaths, storage: StorageConfig) -> Store:
    if storage.backend == "postgresql":
        return open_postgres(storage.dsn, storage.schema)
    return open_sqlite(paths.root / storage.path)


@dataclass(frozen=True)
class _Keys:
    signing: SigningKey
    box: BoxKey
    storage: bytes
    card: IdentityCard
    tls_key: bytes
    ca_key: bytes
    ca_cert: bytes
    service_cert: bytes


def _load_keys(paths: NodePaths, config: NodeConfig) -> _Keys:
    directory = paths.root
    try:
        signing_key = SigningKey.from_pem(read_private(paths.identity_key))
        box_key = BoxKey.from_pem(read_private(paths.box_key))
        storage_key = read_private(paths.storage_key)
        if len(storage_key) != atrest.STORAGE_KEY_LEN:
            raise MalformedError("the storage key is not 32 bytes")
        tls_key = read_private(paths.tls_key)
        ca_key = read_private(paths.ca_key)
        server_key = tls.key_from_pem(tls_key)
        ca_key_obj = tls.key_from_pem(ca_key)
        ca_cert = paths.ca_cert.read_bytes()
        tls.load_cert(ca_cert)
        card = parse_card(paths.card.read_bytes())
        not_before, not_after = cert_validity(int(time.time()), CERT_DAYS)
        service_cert = tls.service_certificate(
            ca_key_obj,
            ca_cert,
            server_key.public_key(),
            config.node_id,
            not_before=not_before,
            not_after=not_after,
        )
    except CryptoError as exc:
        raise UserError(f"{directory}: damaged key or card file ({exc})") from None
    except FileNotFoundError as exc:
        raise UserError(f"{directory}: {Path(exc.filename).name} is missing") from None
    if not card.sign_key.same_as(signing_key.public()) or card.node_id != config.node_id:
        raise UserError(f"{directory}: {paths.card.name} does not match the node's keys")
    return _Keys(signing_key, box_key, storage_key, card, tls_key, ca_key, ca_cert, service_cert)


def _node(
    config: NodeConfig,
    paths: NodePaths,
    keys: _Keys,
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
        keys = _load_keys(paths, config)
    except BaseException:
        store.close()
        raise
    return _node(config, paths, keys, store, clock, rng, insecure_dev)


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
        signing_key, box_key.public(), node_id, advertise, now, tls_cert, previous=previous
    )
    write_public(card_path, card)
    return card


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
    try:
        check_node_id(node_id)
    except MalformedError as exc:
        raise UserError(str(exc)) from None
    check_address(listen)
    advertise = check_address(advertise or listen)
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
        paths.keys.mkdir(mode=0o700)
        now = int(clock())
        write_node_keys(paths.keys, paths.card, node_id, advertise, now=now, rng=rng)
        ca_key = tls.generate_key(rng)
        write_private(paths.ca_key, tls.key_to_pem(ca_key))
        write_public(
            paths.ca_cert,
            tls.ca_certificate(ca_key, node_id, *cert_validity(now, CERT_DAYS), rng=rng),
        )
        write_private(paths.storage_key, rng(atrest.STORAGE_KEY_LEN))
        write_public(paths.config, config.to_toml().encode("utf-8"))
        keys = _load_keys(paths, config)
        store = _open_store(paths, storage)
        node = _node(config, paths, keys, store, clock, rng, insecure_dev=False)
        own_key = EpochKey.generate(node_id, node_id, 1, rng)
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
            audit.append(
                tx,
                node=node_id,
                time=int(clock()),
                kind=Event.NODE_CREATED,
                fingerprint=node.card.fingerprint(),
            )
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
