"""Mutual TLS for every gRPC connection a node makes or accepts.

* The server presents the node's TLS certificate (the one its identity card
  names) and requires a client certificate chaining to one of its trust
  anchors: each trusted peer's pinned certificate, and the node's own
  credential CA (for officers, auditors and operators).  The anchors are
  re-read from the trust store for every new connection, so a peer added,
  rotated or revoked takes effect without a restart; any other certificate is
  refused during the handshake.
* A node connecting to a peer pins that peer's certificate from its card
  and presents its own.
* Officers' tools connect with a credential file (``wlx credential issue``),
  which pins the node's credential CA and holds the client key.  They ask
  (by SNI) for ``tls.service_dns_name``, and the node presents the service
  certificate its CA issued for its current TLS key: a key rotation leaves
  every credential working.  (Credential files of format 1 pinned the node's
  own certificate instead; they still work until the next rotation.)

``--insecure-dev`` replaces all of this with plaintext, for development
only, and the node says so loudly.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc

from wlx.crypto import tls
from wlx.crypto.card import IdentityCard
from wlx.crypto.errors import MalformedError
from wlx.node.core.config import read_private
from wlx.node.core.errors import NotFound, UserError
from wlx.node.core.node import Node
from wlx.node.protocol.codec import MAX_ENVELOPE_BYTES
from wlx.node.rpc.netcheck import Endpoint

log = logging.getLogger("wlx.transport")

CREDENTIAL_FORMAT = 2
LEGACY_CREDENTIAL_FORMAT = 1
"""Format 1 pinned the node's TLS certificate, which a rotation replaces."""

MAX_MESSAGE_BYTES = MAX_ENVELOPE_BYTES + 1024 * 1024
"""Largest gRPC message either side sends or accepts."""


def channel_options() -> list[tuple[str, int]]:
    """Channel options shared by the server and its clients: bounded messages."""
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


def trust_anchors(node: Node) -> bytes:
    """PEM bundle of every certificate a client may present: trusted peers'
    pinned certificates and the node's credential CA."""
    with node.store.read() as tx:
        peers = [p for p in tx.list_peers() if not p.revoked_at]
    certs = [node.ca_cert]
    for row in peers:
        card = node.trusted(row.node_id)
        if card is not None:
            certs.append(card.tls_cert)
    return b"".join(c if c.endswith(b"\n") else c + b"\n" for c in certs)


class _Fetcher:
    """Gives gRPC the current key, certificate and anchors, per connection."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._current: tuple[bytes, bytes, bytes, bytes] | None = None
        self._lock = threading.Lock()

    def config(self) -> grpc.ServerCertificateConfiguration:
        return _configuration(self._read())

    def _read(self) -> tuple[bytes, bytes, bytes, bytes]:
        node = self._node
        node.reload_keys()  # a `wlx keys rotate` by another process shows here at once
        return node.tls_key, node.tls_cert, node.service_cert, trust_anchors(node)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        try:
            current = self._read()
        except Exception:
            log.exception("could not read the trust store; keeping the last TLS configuration")
            return None
        with self._lock:
            if current == self._current:
                return None
            self._current = current
        log.info("TLS configuration loaded (%d trust anchors)", current[3].count(b"BEGIN"))
        return _configuration(current)


def _configuration(
    current: tuple[bytes, bytes, bytes, bytes],
) -> grpc.ServerCertificateConfiguration:
    """The node certificate first (peers, and any client without SNI get it),
    then the service certificate, chosen by clients asking for its name."""
    key, cert, service_cert, anchors = current
    return grpc.ssl_server_certificate_configuration(
        [(key, cert), (key, service_cert)], root_certificates=anchors
    )


def server_credentials(node: Node) -> grpc.ServerCredentials:
    """Server credentials requiring client certificates, reloaded per connection."""
    fetcher = _Fetcher(node)
    initial = fetcher.config()
    # The fetcher returns None for "unchanged", as gRPC's C core allows.
    fetch = cast(Callable[[], grpc.ServerCertificateConfiguration], fetcher)
    return grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=True)


def pinned_channel(
    address: str,
    *,
    node_id: str,
    pinned_cert: bytes,
    key: bytes,
    cert: bytes,
    server_name: str | None = None,
) -> grpc.Channel:
    """A mutual-TLS channel to node ``node_id`` at ``address``: only a server
    certificate chaining to ``pinned_cert`` and naming ``server_name``
    (default: the node's DNS name) is accepted; ``key``/``cert`` are presented."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pinned_cert, private_key=key, certificate_chain=cert
    )
    options = [
        *channel_options(),
        ("grpc.ssl_target_name_override", server_name or tls.node_dns_name(node_id)),
    ]
    return grpc.secure_channel(address, credentials, options=options)


def peer_channel(node: Node, card: IdentityCard, address: str) -> grpc.Channel:
    """A channel to the peer of ``card``: its certificate pinned, ours presented."""
    if node.insecure_dev:
        return grpc.insecure_channel(address, options=channel_options())
    return pinned_channel(
        address,
        node_id=card.node_id,
        pinned_cert=card.tls_cert,
        key=node.tls_key,
        cert=node.tls_cert,
    )


@dataclass(frozen=True)
class Credential:
    """A client credential file, as issued by a node."""

    node_id: str
    address: str
    name: str
    role: str
    cert: bytes
    key: bytes
    node_cert: bytes = b""
    """The node's TLS certificate, pinned by format-1 files (empty in format 2)."""
    ca_cert: bytes = b""
    """The node's credential CA certificate, pinned by format-2 files."""

    def to_bytes(self) -> bytes:
        obj = {
            "wlx_credential": CREDENTIAL_FORMAT if self.ca_cert else LEGACY_CREDENTIAL_FORMAT,
            "node_id": self.node_id,
            "address": self.address,
            "name": self.name,
            "role": self.role,
            "cert": self.cert.decode("ascii"),
            "key": self.key.decode("ascii"),
        }
        if self.ca_cert:
            obj["ca_cert"] = self.ca_cert.decode("ascii")
        else:
            obj["node_cert"] = self.node_cert.decode("ascii")
        return (json.dumps(obj, indent=2) + "\n").encode("utf-8")

    @classmethod
    def load(cls, path: Path) -> Credential:
        """Read a credential file (refusing one that others may read).

        Raises:
            NotFound: no such file.
            UserError: readable by others, or not a credential file.
        """
        not_credential = UserError(
            f"{path} is not a wlx credential file (wlx credential issue writes one)"
        )
        try:
            with path.open("rb") as handle:
                head = handle.read(4096)
        except FileNotFoundError:
            raise NotFound(f"credential file {path} does not exist") from None
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        if b'"wlx_credential"' not in head:
            raise not_credential  # said before the mode, which another kind of file need not have
        data = read_private(path)
        try:
            obj = json.loads(data)
            version = obj.get("wlx_credential")
            if version not in (CREDENTIAL_FORMAT, LEGACY_CREDENTIAL_FORMAT):
                raise ValueError
            pinned = "ca_cert" if version == CREDENTIAL_FORMAT else "node_cert"
            credential = cls(
                node_id=str(obj["node_id"]),
                address=str(obj["address"]),
                name=str(obj["name"]),
                role=str(obj["role"]),
                cert=str(obj["cert"]).encode("ascii"),
                key=str(obj["key"]).encode("ascii"),
                **{pinned: str(obj[pinned]).encode("ascii")},
            )
            tls.load_cert(credential.cert)
            tls.load_cert(credential.ca_cert or credential.node_cert)
            tls.key_from_pem(credential.key)
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError, MalformedError):
            raise not_credential from None
        return credential


def client_channel(address: str, credential: Credential | None) -> grpc.Channel:
    """A channel from an officer's, auditor's or operator's tool to a node.

    Without a credential the channel is plaintext (a node started with
    ``--insecure-dev``).
    """
    if credential is None:
        return grpc.insecure_channel(address, options=channel_options())
    if credential.ca_cert:
        return pinned_channel(
            address,
            node_id=credential.node_id,
            pinned_cert=credential.ca_cert,
            key=credential.key,
            cert=credential.cert,
            server_name=tls.service_dns_name(credential.node_id),
        )
    return pinned_channel(  # format 1: the node's certificate itself
        address,
        node_id=credential.node_id,
        pinned_cert=credential.node_cert,
        key=credential.key,
        cert=credential.cert,
    )


def client_endpoint(address: str, credential: Credential | None) -> Endpoint:
    """What ``client_channel`` connects to, for diagnosing a failed call."""
    if credential is None:
        return Endpoint(address, "")
    name, pinned = (
        (tls.service_dns_name(credential.node_id), credential.ca_cert)
        if credential.ca_cert
        else (tls.node_dns_name(credential.node_id), credential.node_cert)
    )
    return Endpoint(
        address,
        name,
        pinned,
        credential.key,
        credential.cert,
        refused_hint=f"is your credential one that node {credential.node_id} issued, unrevoked?",
    )


def peer_endpoint(node: Node, card: IdentityCard, address: str) -> Endpoint:
    """What ``peer_channel`` connects to, for diagnosing a failed call."""
    if node.insecure_dev:
        return Endpoint(address, "")
    return Endpoint(
        address,
        tls.node_dns_name(card.node_id),
        card.tls_cert,
        node.tls_key,
        node.tls_cert,
        refused_hint=f"is {node.node_id} trusted by {card.node_id}, with its current card?",
    )
