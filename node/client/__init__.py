"""``wlx.client``: embed wlx lookups in a border system (docs/client.md).

::

    from wlx.client import Client

    with Client.from_credential("post-17.credential.json") as node:
        for hit in node.lookup(names=["Anna Maria Eriksson"], dob="1974-08-12"):
            print(hit.origin, hit.ref, hit.action, hit.matched_on)

A ``Client`` holds one mutual-TLS channel, is safe to share between threads,
and puts a deadline on every call.  Errors: ``ClientError`` and its
subclasses (``InvalidRequest``, ``CredentialError``, ``AccessDenied``,
``NotFound``, ``NodeUnavailable``, ``NodeError``).
"""

from __future__ import annotations

from wlx.client.client import DEFAULT_TIMEOUT, Client
from wlx.client.errors import (
    AccessDenied,
    ClientError,
    CredentialError,
    InvalidRequest,
    NodeError,
    NodeUnavailable,
    NotFound,
)
from wlx.client.types import (
    DetailResult,
    Document,
    Entry,
    Hit,
    NodeStatus,
    PeerStatus,
    ScreenResult,
    read_mrz,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "AccessDenied",
    "Client",
    "ClientError",
    "CredentialError",
    "DetailResult",
    "Document",
    "Entry",
    "Hit",
    "InvalidRequest",
    "NodeError",
    "NodeStatus",
    "NodeUnavailable",
    "NotFound",
    "PeerStatus",
    "ScreenResult",
    "read_mrz",
]
