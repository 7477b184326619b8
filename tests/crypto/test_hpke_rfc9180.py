"""The HPKE suite wlx uses, against the official RFC 9180 test vector.

docs/protocol.md §5.3 seals envelopes with HPKE base mode, suite
DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305, through
``cryptography``'s single-shot API.  That API draws its own ephemeral key
and uses empty associated data, so the RFC's ciphertexts (made with
"Count-N" associated data) cannot be reproduced through it directly.  What
can be checked, and is here: from the RFC's ``enc``, ``skRm`` and ``info``,
the suite derives exactly the RFC's key and base nonce (a message sealed
under them with empty associated data opens), the RFC's own ciphertexts open
under that key and nonce, and the key pair is the RFC's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wlx.crypto.envelope import SUITE

VECTOR = json.loads((Path(__file__).parent / "vectors" / "hpke_rfc9180.json").read_text())


def h(name: str) -> bytes:
    return bytes.fromhex(VECTOR[name])


def test_the_vector_is_the_suite_wlx_uses() -> None:
    assert (VECTOR["mode"], VECTOR["kem_id"], VECTOR["kdf_id"], VECTOR["aead_id"]) == (0, 32, 1, 3)
    assert "A.2.1" in VECTOR["source"]


def test_the_recipient_key_pair_is_the_rfcs() -> None:
    public = X25519PrivateKey.from_private_bytes(h("skRm")).public_key()
    assert public.public_bytes(Encoding.Raw, PublicFormat.Raw) == h("pkRm")


@pytest.mark.parametrize(
    "encryption", VECTOR["encryptions"], ids=lambda e: str(e["sequence_number"])
)
def test_the_rfc_ciphertexts_open_under_the_rfc_key_and_nonce(
    encryption: dict[str, object],
) -> None:
    aead = ChaCha20Poly1305(h("key"))
    nonce = bytes.fromhex(str(encryption["nonce"]))
    assert aead.decrypt(
        nonce, bytes.fromhex(str(encryption["ct"])), bytes.fromhex(str(encryption["aad"]))
    ) == bytes.fromhex(str(encryption["pt"]))


def _sealed_like_the_rfc(plaintext: bytes) -> bytes:
    """enc || ChaCha20Poly1305(key, base_nonce, plaintext, aad=""): what the
    single-shot API makes when its ephemeral key is the RFC's skEm."""
    return h("enc") + ChaCha20Poly1305(h("key")).encrypt(h("base_nonce"), plaintext, b"")


def test_the_suite_derives_the_rfc_key_schedule() -> None:
    plaintext = bytes.fromhex(VECTOR["encryptions"][0]["pt"])
    recipient = X25519PrivateKey.from_private_bytes(h("skRm"))
    assert SUITE.decrypt(_sealed_like_the_rfc(plaintext), recipient, info=h("info")) == plaintext


@pytest.mark.parametrize("change", ["info", "enc", "recipient"])
def test_any_other_context_does_not_open(change: str) -> None:
    plaintext = b"wlx"
    sealed = _sealed_like_the_rfc(plaintext)
    recipient = X25519PrivateKey.from_private_bytes(h("skRm"))
    info = h("info")
    if change == "info":
        info += b"!"
    elif change == "enc":
        sealed = bytes([sealed[0] ^ 1]) + sealed[1:]
    else:
        recipient = X25519PrivateKey.from_private_bytes(bytes(31) + b"\x01")
    with pytest.raises(InvalidTag):
        SUITE.decrypt(sealed, recipient, info=info)
