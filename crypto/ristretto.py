"""The ristretto255 prime-order group (RFC 9496), as libsodium implements it.

A thin, typed layer over libsodium's ``crypto_core_ristretto255_*`` and
``crypto_scalarmult_ristretto255*`` functions, reached through ``pysodium``
(PyNaCl does not expose them).  No arithmetic is done here: every group and
scalar operation is libsodium's.  What this module adds is the discipline
RFC 9497 §2.1 asks of a prime-order group:

* elements are 32-byte canonical encodings; ``element`` rejects
  non-canonical encodings *and* the identity;
* scalars are 32-byte little-endian integers below the group order ``L``;
  ``scalar`` rejects anything else;
* a failure inside libsodium (an identity result, a zero inverse) is a
  ``MalformedError``, never a silent wrong value.

Raises:
    MalformedError: from every function, for malformed input or a result
        that would be the identity element.
"""

from __future__ import annotations

import hmac

import pysodium  # type: ignore[import-untyped]

from wlx.crypto.errors import MalformedError

ELEMENT_LEN = 32
SCALAR_LEN = 32
HASH_LEN = 64
IDENTITY = bytes(ELEMENT_LEN)
L = 2**252 + 27742317777372353535851937790883648493
"""The order of the ristretto255 group (RFC 9496 §4)."""


def element(data: bytes) -> bytes:
    """``data`` if it is the canonical encoding of a non-identity element.

    RFC 9497 §2.1 ``DeserializeElement`` with the identity check of §3.3.

    Raises:
        MalformedError: wrong length, not a canonical encoding, or identity.
    """
    if len(data) != ELEMENT_LEN or hmac.compare_digest(data, IDENTITY):
        raise MalformedError("not a ristretto255 element")
    if not pysodium.crypto_core_ristretto255_is_valid_point(data):
        raise MalformedError("not a ristretto255 element")
    return bytes(data)


def scalar(data: bytes) -> bytes:
    """``data`` if it is a canonical scalar (32 bytes, little-endian, below L).

    Raises:
        MalformedError: wrong length or not reduced modulo L.
    """
    if len(data) != SCALAR_LEN or int.from_bytes(data, "little") >= L:
        raise MalformedError("not a ristretto255 scalar")
    return bytes(data)


def is_zero(s: bytes) -> bool:
    """Whether the scalar ``s`` is zero (constant time in its bytes)."""
    return hmac.compare_digest(s, bytes(SCALAR_LEN))


def reduce(wide: bytes) -> bytes:
    """A 64-byte little-endian integer reduced modulo L."""
    if len(wide) != HASH_LEN:
        raise MalformedError("a wide scalar is 64 bytes")
    return bytes(pysodium.crypto_core_ristretto255_scalar_reduce(wide))


def from_hash(uniform: bytes) -> bytes:
    """The element of 64 uniform bytes (RFC 9496 §4.3.4, one-way map)."""
    if len(uniform) != HASH_LEN:
        raise MalformedError("hash-to-group input is 64 bytes")
    return _call(pysodium.crypto_core_ristretto255_from_hash, uniform)


def mul(s: bytes, p: bytes) -> bytes:
    """``s * p``.  Raises MalformedError if the result is the identity."""
    return _call(pysodium.crypto_scalarmult_ristretto255, s, p)


def mul_base(s: bytes) -> bytes:
    """``s * G``.  Raises MalformedError if ``s`` is zero."""
    return _call(pysodium.crypto_scalarmult_ristretto255_base, s)


def add(p: bytes, q: bytes) -> bytes:
    """``p + q`` (either may be the identity)."""
    return _call(pysodium.crypto_core_ristretto255_add, p, q)


def scalar_add(a: bytes, b: bytes) -> bytes:
    """``a + b mod L``."""
    return _call(pysodium.crypto_core_ristretto255_scalar_add, a, b)


def scalar_sub(a: bytes, b: bytes) -> bytes:
    """``a - b mod L``."""
    return _call(pysodium.crypto_core_ristretto255_scalar_sub, a, b)


def scalar_mul(a: bytes, b: bytes) -> bytes:
    """``a * b mod L``."""
    return _call(pysodium.crypto_core_ristretto255_scalar_mul, a, b)


def scalar_invert(a: bytes) -> bytes:
    """``1 / a mod L``.  Raises MalformedError for zero."""
    if is_zero(a):
        raise MalformedError("zero has no inverse")
    return _call(pysodium.crypto_core_ristretto255_scalar_invert, a)


def _call(func: object, *args: bytes) -> bytes:
    try:
        result = func(*args)  # type: ignore[operator]
    except ValueError:
        raise MalformedError("ristretto255 operation failed") from None
    if not isinstance(result, bytes):
        raise MalformedError("ristretto255 operation failed")
    return result
