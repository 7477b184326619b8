"""wlx's cryptographic core: pure functions of bytes, with time and randomness
passed in; every algorithm has test vectors with recorded sources.

Identity and transport
    ``keys`` (Ed25519 identity, X25519 box keys), ``card`` (signed identity
    cards), ``tls`` (P-256 certificates and credentials for mutual TLS),
    ``signing`` (signatures binding purpose, signer and recipient),
    ``envelope`` (HPKE to one recipient), ``digests``, ``encoding``.
Identifiers and tokens
    ``normalize`` (``wlx-norm-1`` and ``wlx-norm-2`` identifier keys), with
    ``names``, ``romanize`` and ``norm2`` for ``wlx-norm-2``; ``tokens``
    (pairwise epoch keys, tokens, sealed hit data, hit proofs); ``oprf``
    (RFC 9497 VOPRF over ``ristretto``) and ``online`` (online-tier tokens).
Storage
    ``atrest`` (a node's secrets and own records at rest).
Audit
    ``merkle`` (RFC 9162), ``note`` (C2SP signed notes), ``checkpoint``
    (C2SP checkpoints and cosignatures).
Errors
    ``errors``: every error this package raises.
"""

__all__ = [
    "atrest",
    "card",
    "checkpoint",
    "digests",
    "encoding",
    "envelope",
    "errors",
    "keys",
    "merkle",
    "names",
    "norm2",
    "normalize",
    "note",
    "online",
    "oprf",
    "ristretto",
    "romanize",
    "signing",
    "tls",
    "tokens",
]
