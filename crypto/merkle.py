"""RFC 9162 (RFC 6962) Merkle tree over SHA-256: hashes, proofs, compact range.

Pure functions over 32-byte hashes.  Proof *generation* reads leaf hashes
through a :data:`LeafSource` (a sequence, or a callable ``i -> leaf hash`` so
a storage layer need not load the log) and can be handed stored interior
hashes through an :data:`InteriorSource` to skip recomputing them.  Proof
*verification* never trusts its inputs: every failure raises
:class:`VerificationError` (or :class:`MalformedError` for a hash of the
wrong length).

Cost of proof generation: without an interior source each proof hashes every
leaf outside the proven path once, i.e. O(n) SHA-256 calls (under a second
for 10**6 leaves); with a source that knows every perfect subtree a proof
needs O(log^2 n) look-ups.  Memory stays O(log n) plus a bounded chunk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from wlx.crypto.errors import MalformedError, VerificationError

HASH_SIZE = 32

#: MTH({}) = SHA-256() -- RFC 9162 §2.1.1.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: Leaf hashes by index: a sequence, or a callable (e.g. a database read).
LeafSource = Sequence[bytes] | Callable[[int], bytes]

#: Stored hash of the perfect subtree ``(level, index)`` covering leaves
#: ``[index << level, (index + 1) << level)``, or ``None`` if not stored.
InteriorSource = Callable[[int, int], bytes | None]

# Perfect subtrees at or below this level are hashed level by level from a
# list of their leaves (fast in CPython); above it they are split in two.
_CHUNK_LEVEL = 12


def leaf_hash(entry: bytes) -> bytes:
    """Return MTH({d}) = SHA-256(0x00 || entry) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``), RFC 9162 §2.1.1."""
    return 1 << ((n - 1).bit_length() - 1)


class _Tree:
    """Subtree hashing over a leaf source, consulting stored interior hashes."""

    def __init__(self, leaves: LeafSource, interior: InteriorSource | None) -> None:
        if isinstance(leaves, Sequence):
            self._get: Callable[[int], bytes] = lambda i: leaves[i]
        else:
            self._get = leaves
        self._interior = interior

    def leaf(self, i: int) -> bytes:
        h = self._get(i)
        if len(h) != HASH_SIZE:
            raise ValueError("leaf hash is not 32 bytes")
        return h

    def perfect(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of 2**level leaves starting at index << level."""
        if self._interior is not None and level > 0:
            stored = self._interior(level, index)
            if stored is not None:
                if len(stored) != HASH_SIZE:
                    raise ValueError("interior hash is not 32 bytes")
                return stored
        if level > _CHUNK_LEVEL:
            return node_hash(
                self.perfect(level - 1, 2 * index), self.perfect(level - 1, 2 * index + 1)
            )
        start = index << level
        row = [self.leaf(i) for i in range(start, start + (1 << level))]
        while len(row) > 1:
            row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range produced by the RFC 9162 §2.1.1 recursion.

        Such ranges decompose into perfect subtrees aligned to their size.
        """
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        blocks: list[bytes] = []
        while n > 0:
            k = n if n & (n - 1) == 0 else _split(n)
            level = k.bit_length() - 1
            blocks.append(self.perfect(level, start >> level))
            start, n = start + k, n - k
        result = blocks.pop()
        while blocks:
            result = node_hash(blocks.pop(), result)
        return result


def _size(leaves: LeafSource, tree_size: int | None) -> int:
    if tree_size is None:
        if not isinstance(leaves, Sequence):
            raise ValueError("tree_size is required when leaves is a callable")
        return len(leaves)
    if tree_size < 0 or (isinstance(leaves, Sequence) and tree_size > len(leaves)):
        raise ValueError("tree_size out of range")
    return tree_size


def root(
    leaf_hashes: LeafSource, tree_size: int | None = None, *, interior: InteriorSource | None = None
) -> bytes:
    """Return MTH(D[0:tree_size]) (RFC 9162 §2.1.1); the empty tree is SHA-256("").

    ``tree_size`` defaults to ``len(leaf_hashes)`` and is required for a
    callable source; ``interior`` optionally supplies stored subtree hashes.
    Raises ``ValueError`` if a size is out of range or a hash is not 32 bytes.
    """
    n = _size(leaf_hashes, tree_size)
    return _Tree(leaf_hashes, interior).mth(0, n)


def inclusion_proof(
    leaf_hashes: LeafSource,
    index: int,
    tree_size: int | None = None,
    *,
    interior: InteriorSource | None = None,
) -> list[bytes]:
    """Return PATH(index, D[0:tree_size]), ordered leaf to root (RFC 9162 §2.1.3.1).

    Sources and cost as for :func:`root` (see the module docstring).
    Raises ``ValueError`` unless ``0 <= index < tree_size``.
    """
    n = _size(leaf_hashes, tree_size)
    if not 0 <= index < n:
        raise ValueError("leaf index out of range")
    tree = _Tree(leaf_hashes, interior)
    path: list[bytes] = []
    start, end = 0, n
    # Walk from the root down to the leaf, then reverse into leaf-to-root order.
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            path.append(tree.mth(start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            path.append(tree.mth(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(
    leaf_hashes: LeafSource,
    old_size: int,
    new_size: int | None = None,
    *,
    interior: InteriorSource | None = None,
) -> list[bytes]:
    """Return PROOF(old_size, D[0:new_size]) = SUBPROOF(m, D[n], true) (RFC 9162 §2.1.4.1).

    Empty when ``old_size`` is 0 or equals ``new_size``.  Sources and cost as
    for :func:`root`.  Raises ``ValueError`` unless ``0 <= old_size <= new_size``.
    """
    n = _size(leaf_hashes, new_size)
    m = old_size
    if not 0 <= m <= n:
        raise ValueError("old_size out of range")
    if m in (0, n):
        return []
    tree = _Tree(leaf_hashes, interior)
    path: list[bytes] = []
    start, end, b = 0, n, True
    while True:
        if end - start == m:
            # SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            if not b:
                path.append(tree.mth(start, end))
            break
        k = _split(end - start)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            path.append(tree.mth(start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            path.append(tree.mth(start, start + k))
            start, m, b = start + k, m - k, False
    path.reverse()
    return path


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise MalformedError(f"{what} is not {HASH_SIZE} bytes")


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``root`` of ``tree_size``.

    Implements RFC 9162 §2.1.3.2.  Returns only if the proof verifies;
    raises :class:`VerificationError` naming the failed check, or
    :class:`MalformedError` if a hash is not 32 bytes.
    """
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root hash")
    for p in proof:
        _check_hash(p, "inclusion proof element")
    # Step 1: leaf_index < tree_size.
    if not 0 <= index < tree_size:
        raise VerificationError("inclusion: leaf index not below tree size")
    # Steps 2-3.
    fn, sn, r = index, tree_size - 1, leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion: proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    if sn != 0:
        raise VerificationError("inclusion: proof too short")
    if r != root:
        raise VerificationError("inclusion: computed root does not match")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``new_root`` of ``new_size`` extends ``old_root`` of ``old_size``.

    Implements RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``.  Edge
    cases, failing closed: ``old_size == new_size`` needs an empty proof and
    equal roots; ``old_size == 0`` needs an empty proof and ``old_root`` equal
    to the empty-tree hash.  Raises :class:`VerificationError` naming the
    failed check, or :class:`MalformedError` if a hash is not 32 bytes.
    """
    _check_hash(old_root, "old root hash")
    _check_hash(new_root, "new root hash")
    for c in proof:
        _check_hash(c, "consistency proof element")
    if not 0 <= old_size <= new_size:
        raise VerificationError("consistency: old size exceeds new size")
    if old_size in (new_size, 0):
        if proof:
            raise VerificationError("consistency: proof must be empty")
        expected = new_root if old_size == new_size else EMPTY_ROOT
        if old_root != expected:
            raise VerificationError("consistency: old root does not match")
        return
    # Step 1.
    if not proof:
        raise VerificationError("consistency: proof is empty")
    # Step 2: if first is an exact power of 2, prepend first_hash.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency: proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # Step 7.
    if sn != 0:
        raise VerificationError("consistency: proof too short")
    if fr != old_root:
        raise VerificationError("consistency: old root does not match")
    if sr != new_root:
        raise VerificationError("consistency: new root does not match")


class CompactRange:
    """The right frontier of a growing tree: one hash per set bit of ``size``.

    Lets a log append leaves and compute its root in O(log n) memory.  The
    hashes are the perfect subtrees of the binary decomposition of ``size``,
    largest (leftmost) first, as in RFC 9162 §2.1.1's left-heavy split.
    """

    def __init__(self) -> None:
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append a leaf hash; return the interior nodes it completed.

        Each item is ``(level, index, hash)`` for a perfect subtree of
        ``2**level`` leaves starting at ``index << level`` -- what a storage
        layer can keep to serve an :data:`InteriorSource`.  Raises
        ``ValueError`` if ``leaf_hash`` is not 32 bytes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("leaf hash is not 32 bytes")
        completed: list[tuple[int, int, bytes]] = []
        h, level, index = leaf_hash, 0, self._size
        while index & 1:  # each trailing 1 bit of the old size closes a subtree
            h = node_hash(self._hashes.pop(), h)
            level, index = level + 1, index >> 1
            completed.append((level, index, h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Return MTH of the leaves appended so far (RFC 9162 §2.1.1)."""
        if not self._hashes:
            return EMPTY_ROOT
        result = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            result = node_hash(h, result)
        return result

    def to_bytes(self) -> bytes:
        """Serialise as big-endian uint64 size || frontier hashes (largest first)."""
        return self._size.to_bytes(8, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Inverse of :meth:`to_bytes`; raises :class:`MalformedError` on a bad length."""
        if len(data) < 8:
            raise MalformedError("compact range: truncated size")
        size = int.from_bytes(data[:8], "big")
        count = size.bit_count()
        if len(data) != 8 + HASH_SIZE * count:
            raise MalformedError("compact range: length does not match size")
        cr = cls()
        cr._size = size
        cr._hashes = [data[8 + HASH_SIZE * i : 8 + HASH_SIZE * (i + 1)] for i in range(count)]
        return cr
