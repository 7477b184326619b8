"""Unambiguous byte encodings used as hash and signature inputs.

docs/protocol.md §3 ("Encodings").  Every variable-length field that goes
into a hash or a signature is length-prefixed, so that no two different
tuples of fields encode to the same bytes.
"""

from __future__ import annotations

import struct

from wlx.crypto.errors import MalformedError

MAX_FIELD = 0xFFFF


def lp(field: bytes | str) -> bytes:
    """Return ``field`` prefixed by its length as a big-endian uint16.

    Strings are encoded as UTF-8 first.

    Raises:
        MalformedError: the field is longer than 65,535 bytes.
    """
    data = field.encode("utf-8") if isinstance(field, str) else field
    if len(data) > MAX_FIELD:
        raise MalformedError("field longer than 65535 bytes")
    return struct.pack(">H", len(data)) + data


def u64(value: int) -> bytes:
    """Return ``value`` as a big-endian unsigned 64-bit integer.

    Raises:
        MalformedError: the value is negative or does not fit in 64 bits.
    """
    if not 0 <= value < 1 << 64:
        raise MalformedError("integer out of uint64 range")
    return struct.pack(">Q", value)
