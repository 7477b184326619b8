"""A node: its configuration, keys, store, clock and randomness, together.

``Node`` is what every service of the node is given.  ``init_node`` creates a
node directory (all of it, or nothing); ``open_node`` loads one.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wlx.crypto import atrest
from wlx.crypto.card import IdentityCard, make_card, parse_card
from wlx.crypto.digests import genesis_digest
from wlx.crypto.errors import CryptoError, MalformedError
from wlx.crypto.keys import BoxKey, Rng, SigningKey, system_rng
from wlx.crypto.tokens import EpochKey
from wlx.node.audit import log as audit
from wlx.node.audit.log import Event
from wlx.node.config import (
    NodeConfig,
    NodePaths,
    StorageConfig,
    check_address,
    read_private,
    write_private,
    write_public,
)
from wlx.node.errors import AlreadyExists, InternalError, UserError
from wlx.node.store.base import InboundState, Store
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
    clock: Clock = time.time
    rng: Rng = system_rng
    _cards: dict[bytes, IdentityCard] = field(default_factory=dict, repr=False)

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
        so peers added by another process take effect at once)."""
        with self.store.read() as tx:
            peer = tx.get_peer(node_id)
        if peer is None:
            return None
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


def open_node(directory: Path, *, clock: Clock = time.time, rng: Rng = system_rng) -> Node:
    """Load the node in ``directory``.

    Raises:
        NotFound: not a node directory, or a key file is missing.
        UserError: bad configuration, or key files readable by others.
        InternalError: the store cannot be opened.
    """
    paths = NodePaths(directory)
    config = paths.load_config()
    try:
        signing_key = SigningKey.from_pem(read_private(paths.identity_key))
        box_key = BoxKey.from_pem(read_private(paths.box_key))
        storage_key = read_private(paths.storage_key)
        if len(storage_key) != atrest.STORAGE_KEY_LEN:
            raise MalformedError("the storage key is not 32 bytes")
        card = parse_card(paths.card.read_bytes())
    except CryptoError as exc:
        raise UserError(f"{directory}: damaged key or card file ({exc})") from None
    except FileNotFoundError:
        raise UserError(f"{directory}: {paths.card.name} is missing") from None
    if not card.sign_key.same_as(signing_key.public()) or card.node_id != config.node_id:
        raise UserError(f"{directory}: {paths.card.name} does not match the node's keys")
    store = _open_store(paths, config.storage)
    return Node(config, paths, signing_key, box_key, storage_key, card, store, clock, rng)


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
        from wlx.crypto.card import check_node_id

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
        signing_key = SigningKey.generate(rng)
        box_key = BoxKey.generate(rng)
        storage_key = rng(atrest.STORAGE_KEY_LEN)
        write_private(paths.identity_key, signing_key.to_pem())
        write_private(paths.box_key, box_key.to_pem())
        write_private(paths.storage_key, storage_key)
        card_bytes = make_card(signing_key, box_key.public(), node_id, advertise, int(clock()))
        write_public(paths.card, card_bytes)
        write_public(paths.config, config.to_toml().encode("utf-8"))
        store = _open_store(paths, storage)
        node = Node(
            config,
            paths,
            signing_key,
            box_key,
            storage_key,
            parse_card(card_bytes),
            store,
            clock,
            rng,
        )
        own_key = EpochKey.generate(node_id, node_id, 1, rng)
        with store.write() as tx:
            if tx.get_inbound(node_id) is not None or tx.count_records():
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
