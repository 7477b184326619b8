"""The names and keys of exchange-log checkpoints and their cosignatures.

docs/audit.md §3-§4: the log's origin line ``wlx.exchange/<NODE_ID>`` (its
note key name), the witness key name ``wlx.witness/<NODE_ID>``, and the
signers and verifiers made from identity keys.  Pure: used by the node that
signs and by the offline verifier alike.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wlx.crypto.card import check_node_id
from wlx.crypto.checkpoint import Checkpoint, CosignatureVerifier
from wlx.crypto.errors import MalformedError
from wlx.crypto.keys import SigningKey, VerifyKey
from wlx.crypto.note import Ed25519Signer, Ed25519Verifier

ORIGIN_PREFIX = "wlx.exchange/"
WITNESS_PREFIX = "wlx.witness/"


def log_origin(node_id: str) -> str:
    """The checkpoint origin line (and log key name) of ``node_id``'s log."""
    return ORIGIN_PREFIX + node_id


def witness_name(node_id: str) -> str:
    """The key name under which ``node_id`` cosigns as a witness."""
    return WITNESS_PREFIX + node_id


def node_of_origin(origin: str) -> str:
    """The node id in an origin line ``wlx.exchange/<NODE_ID>``.

    Raises:
        MalformedError: not the origin line of a wlx exchange log.
    """
    if not origin.startswith(ORIGIN_PREFIX):
        raise MalformedError("not the origin of a wlx exchange log")
    return check_node_id(origin[len(ORIGIN_PREFIX) :])


def node_of_witness(name: str) -> str:
    """The node id in a witness key name ``wlx.witness/<NODE_ID>``.

    Raises:
        MalformedError: not a wlx witness key name.
    """
    if not name.startswith(WITNESS_PREFIX):
        raise MalformedError("not a wlx witness key name")
    return check_node_id(name[len(WITNESS_PREFIX) :])


def private_key(key: SigningKey) -> Ed25519PrivateKey:
    """The identity key as a ``cryptography`` key, for the note signers."""
    return Ed25519PrivateKey.from_private_bytes(key.seed())


def log_signer(node_id: str, key: SigningKey) -> Ed25519Signer:
    """Signs ``node_id``'s checkpoints (type 0x01, key name = origin line)."""
    return Ed25519Signer(log_origin(node_id), private_key(key))


def log_verifier(node_id: str, key: VerifyKey) -> Ed25519Verifier:
    """Verifies ``node_id``'s checkpoint signatures made with identity key ``key``."""
    return Ed25519Verifier(log_origin(node_id), key.raw)


def witness_verifier(node_id: str, key: VerifyKey) -> CosignatureVerifier:
    """Verifies cosignatures by witness ``node_id`` made with identity key ``key``."""
    return CosignatureVerifier(witness_name(node_id), key.raw)


def checkpoint_text(node_id: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint note text of ``node_id``'s log at ``size`` with ``root``."""
    return Checkpoint(log_origin(node_id), size, root).to_text()
