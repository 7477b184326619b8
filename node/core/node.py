"""A node: its configuration, keys, store, clock and randomness, together.

``Node`` is what every service of the node is given; ``wlx.node.directory``
creates and opens one.  The store is used through its interface only.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wlx.crypto import atrest, tls
from wlx.crypto.card import IdentityCard, parse_card
from wlx.crypto.errors import CryptoError, MalformedError
from wlx.crypto.keys import BoxKey, Rng, SigningKey, system_rng
from wlx.crypto.normalize import NORMALISATION
from wlx.crypto.tokens import EpochKey
from wlx.node.core import normalisation
from wlx.node.core.config import NodeConfig, NodePaths, read_private
from wlx.node.core.errors import InternalError, UserError

if TYPE_CHECKING:
    from wlx.node.store.base import PeerRow, Store, Tx

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
            return self._swap_keys(load_keys(self.paths, self.config))

    def _swap_keys(self, keys: KeySet) -> bool:
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

    def epoch_key(
        self,
        origin: str,
        recipient: str,
        epoch: int,
        wrapped: bytes,
        *,
        normalisation: str = NORMALISATION,
        protocol: int = 1,
    ) -> EpochKey:
        """Unwrap a stored epoch token key; ``normalisation`` is its epoch's
        version (``wlx.node.core.normalisation.of_epoch``), ``protocol`` its
        seal format (``normalisation.protocol_of_epoch``; origin side)."""
        raw = self.open_at_rest(wrapped, f"epoch-key:{origin}:{recipient}:{epoch}")
        return EpochKey(raw, origin, recipient, epoch, normalisation, protocol)

    def originated_key(self, tx: Tx, recipient: str, epoch: int, wrapped: bytes) -> EpochKey:
        """The key of a stream this node originates (to ``recipient``, or
        to itself for its own index), with the normalisation and protocol
        its epoch was started under, read in ``tx``."""
        return self.epoch_key(
            self.node_id,
            recipient,
            epoch,
            wrapped,
            normalisation=normalisation.of_epoch(tx, self.node_id, recipient, epoch),
            protocol=normalisation.protocol_of_epoch(tx, self.node_id, recipient, epoch),
        )

    def wrap_epoch_key(self, key: EpochKey) -> bytes:
        """Wrap an epoch token key for storage."""
        return self.seal_at_rest(key.key, f"epoch-key:{key.origin}:{key.recipient}:{key.epoch}")

    def own_epoch_key(self) -> EpochKey:
        """The key of the node's index of its own list, with its epoch's
        normalisation and protocol (2 since the index was last built by this
        version; 1 for an index built before, until its next rebuild).

        Raises:
            InternalError: the store lacks it (not made by ``wlx init``).
        """
        with self.store.read() as tx:
            state = tx.get_inbound(self.node_id)
            if state is None:
                raise InternalError("the store has no index key for the node's own list")
            return self.originated_key(tx, self.node_id, state.epoch, state.token_key)

    def close(self) -> None:
        self.store.close()


@dataclass(frozen=True)
class KeySet:
    signing: SigningKey
    box: BoxKey
    storage: bytes
    card: IdentityCard
    tls_key: bytes
    ca_key: bytes
    ca_cert: bytes
    service_cert: bytes


SERVICE_CERT_DAYS = 3650
"""Validity of the service certificate, made anew each time the keys load."""


def load_keys(paths: NodePaths, config: NodeConfig) -> KeySet:
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
        ca_private = tls.key_from_pem(ca_key)
        ca_cert = paths.ca_cert.read_bytes()
        tls.load_cert(ca_cert)
        card = parse_card(paths.card.read_bytes())
        wall = int(time.time())  # TLS checks validity against the wall clock
        service_cert = tls.service_certificate(
            ca_private,
            ca_cert,
            server_key.public_key(),
            config.node_id,
            not_before=wall - 86_400,
            not_after=wall + SERVICE_CERT_DAYS * 86_400,
        )
    except CryptoError as exc:
        raise UserError(f"{directory}: damaged key or card file ({exc})") from None
    except FileNotFoundError as exc:
        raise UserError(f"{directory}: {Path(exc.filename).name} is missing") from None
    if not card.sign_key.same_as(signing_key.public()) or card.node_id != config.node_id:
        raise UserError(f"{directory}: {paths.card.name} does not match the node's keys")
    return KeySet(signing_key, box_key, storage_key, card, tls_key, ca_key, ca_cert, service_cert)
