"""Tests of wlx.crypto.merkle against RFC 6962 vectors and by property.

Known-answer vectors live in vectors/merkle.json; each block there records
the repository, path and commit it was copied from (transparency-dev/merkle
rfc6962/rfc6962_test.go, proof/verify_test.go and
testdata/consistency/1/happy-path.json).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wlx.crypto.errors import CryptoError, MalformedError, VerificationError
from wlx.crypto.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "merkle.json").read_text()
)
TREE = VECTORS["tree"]
LEAVES = [leaf_hash(bytes.fromhex(d)) for d in TREE["leaves"]]
ROOTS = [bytes.fromhex(r) for r in TREE["roots_by_size"]]

# A fixed 300-leaf log for the property tests.
MAX = 300
BIG = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX)]
BIG_ROOTS = [root(BIG, n) for n in range(MAX + 1)]


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- Known answers (transparency-dev/merkle) ---------------------------------


def test_hasher_vectors() -> None:
    # transparency-dev/merkle rfc6962/rfc6962_test.go TestRFC6962Hasher
    v = VECTORS["hasher"]
    assert h(v["empty_root"]) == EMPTY_ROOT
    assert root([]) == h(v["empty_root"])
    assert leaf_hash(b"") == h(v["empty_leaf_hash"])
    assert leaf_hash(v["leaf"]["data_ascii"].encode()) == h(v["leaf"]["hash"])
    assert node_hash(v["node"]["left_ascii"].encode(), v["node"]["right_ascii"].encode()) == h(
        v["node"]["hash"]
    )


def test_roots_of_reference_tree() -> None:
    # transparency-dev/merkle proof/verify_test.go `roots`
    for size in range(1, 9):
        assert root(LEAVES, size) == ROOTS[size - 1]
        assert root(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize("case", TREE["inclusion"], ids=lambda c: f"{c['index']}-of-{c['size']}")
def test_inclusion_vectors(case: dict[str, Any]) -> None:
    # transparency-dev/merkle proof/verify_test.go `inclusionProofs`
    index, size = case["index"], case["size"]
    want = [h(p) for p in case["proof"]]
    assert inclusion_proof(LEAVES, index, size) == want
    verify_inclusion(LEAVES[index], index, size, want, ROOTS[size - 1])


@pytest.mark.parametrize("case", TREE["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_vectors(case: dict[str, Any]) -> None:
    # transparency-dev/merkle proof/verify_test.go `consistencyProofs`
    m, n = case["size1"], case["size2"]
    want = [h(p) for p in case["proof"]]
    assert consistency_proof(LEAVES, m, n) == want
    verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], want)


def test_consistency_json_vector() -> None:
    # transparency-dev/merkle testdata/consistency/1/happy-path.json
    v = VECTORS["consistency_json"]
    proof = [base64.b64decode(p) for p in v["proof"]]
    old, new = base64.b64decode(v["root1"]), base64.b64decode(v["root2"])
    assert old == ROOTS[0] and new == ROOTS[7]
    verify_consistency(v["size1"], v["size2"], old, new, proof)


# The corruptions below mirror corruptInclusionProof / corruptConsistencyProof
# in transparency-dev/merkle proof/verify_test.go.


@pytest.mark.parametrize("case", [c for c in TREE["inclusion"] if c["proof"]])
def test_inclusion_corruptions_rejected(case: dict[str, Any]) -> None:
    index, size = case["index"], case["size"]
    proof = [h(p) for p in case["proof"]]
    r, leaf = ROOTS[size - 1], LEAVES[index]
    some = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (leaf, index - 1, size, proof, r),
        (leaf, index + 1, size, proof, r),
        (leaf, index ^ 2, size, proof, r),
        (leaf, index, size * 2, proof, r),
        (leaf, index, size // 2, proof, r),
        (LEAVES[(index + 1) % 8], index, size, proof, r),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, some),
        (leaf, index, size, [*proof, r], r),
        (leaf, index, size, [r, *proof], r),
        (leaf, index, size, proof[:-1], r),
        (leaf, index, size, [proof[0], some, *proof[1:]], r),
    ]
    for probe in probes:
        with pytest.raises(VerificationError):
            verify_inclusion(*probe)
    with pytest.raises(MalformedError):
        verify_inclusion(b"WrongLeaf", index, size, proof, r)
    with pytest.raises(MalformedError):
        verify_inclusion(leaf, index, size, [*proof, b""], r)


@pytest.mark.parametrize("case", [c for c in TREE["consistency"] if c["proof"]])
def test_consistency_corruptions_rejected(case: dict[str, Any]) -> None:
    m, n = case["size1"], case["size2"]
    proof = [h(p) for p in case["proof"]]
    r1, r2 = ROOTS[m - 1], ROOTS[n - 1]
    probes = [
        (m - 1, n, r1, r2, proof),
        (m + 1, n, r1, r2, proof),
        (m ^ 2, n, r1, r2, proof),
        (m, n * 2, r1, r2, proof),
        (m, n // 2, r1, r2, proof),
        (m, n, r2, r1, proof),
        (m, n, r1, r2, []),
        (m, n, r1, r2, [*proof, r1]),
        (m, n, r1, r2, [*proof, r2]),
        (m, n, r1, r2, [r1, *proof]),
        (m, n, r1, r2, [r2, *proof]),
        (m, n, r1, r2, [proof[0], *proof]),
        (m, n, r1, r2, proof[:-1]),
    ]
    for probe in probes:
        with pytest.raises(VerificationError):
            verify_consistency(*probe)
    with pytest.raises(MalformedError):
        verify_consistency(m, n, b"WrongRoot", r2, proof)


def test_consistency_edge_cases() -> None:
    # Sizes that are always consistent, with the empty proof.
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[7], [])
    verify_consistency(8, 8, ROOTS[7], ROOTS[7], [])
    assert consistency_proof(LEAVES, 0) == [] and consistency_proof(LEAVES, 8) == []
    with pytest.raises(VerificationError, match="old root"):
        verify_consistency(0, 8, ROOTS[0], ROOTS[7], [])  # size 0 has exactly one root
    with pytest.raises(VerificationError, match="old root"):
        verify_consistency(8, 8, ROOTS[6], ROOTS[7], [])
    with pytest.raises(VerificationError, match="empty"):
        verify_consistency(8, 8, ROOTS[7], ROOTS[7], [EMPTY_ROOT])
    with pytest.raises(VerificationError, match="old size"):
        verify_consistency(2, 1, ROOTS[1], ROOTS[0], [LEAVES[1]])


def test_inclusion_edge_cases() -> None:
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])  # a 1-leaf tree's root is its leaf
    for index, size in [(0, 0), (1, 1), (1, 0), (2, 1), (-1, 8)]:
        with pytest.raises(VerificationError, match="leaf index"):
            verify_inclusion(LEAVES[0], index, size, [], LEAVES[0])
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES, 0, 9)
    with pytest.raises(ValueError):
        consistency_proof(LEAVES, 5, 4)
    with pytest.raises(ValueError):
        inclusion_proof(lambda i: LEAVES[i], 0)  # a callable needs tree_size
    with pytest.raises(ValueError):
        root([b"short"])


# --- Storage-backed generation ------------------------------------------------


def test_callable_source_and_interior_hashes_agree() -> None:
    fetched: list[int] = []

    def get(i: int) -> bytes:
        fetched.append(i)
        return BIG[i]

    stored: dict[tuple[int, int], bytes] = {}
    cr = CompactRange()
    for lh in BIG:
        for level, index, value in cr.append(lh):
            stored[(level, index)] = value
    for size in (1, 7, 64, 255, 300):
        assert root(get, size) == BIG_ROOTS[size]
        assert root(get, size, interior=lambda lv, ix: stored.get((lv, ix))) == BIG_ROOTS[size]
        for index in (0, size // 2, size - 1):
            want = inclusion_proof(BIG, index, size)
            assert inclusion_proof(get, index, size) == want
            fetched.clear()
            assert (
                inclusion_proof(get, index, size, interior=lambda lv, ix: stored.get((lv, ix)))
                == want
            )
            assert len(fetched) <= 2  # everything else came from stored interior nodes
        for old in (1, size // 3, size - 1):
            want = consistency_proof(BIG, old, size)
            assert consistency_proof(get, old, size) == want
            assert (
                consistency_proof(get, old, size, interior=lambda lv, ix: stored.get((lv, ix)))
                == want
            )


def test_completed_nodes_are_perfect_subtree_roots() -> None:
    cr = CompactRange()
    for lh in BIG[:130]:
        for level, index, value in cr.append(lh):
            start = index << level
            assert value == root(BIG[start : start + (1 << level)])


# --- Compact range ------------------------------------------------------------


def test_compact_range_matches_full_root_for_every_size() -> None:
    cr = CompactRange()
    assert cr.root() == EMPTY_ROOT and cr.size == 0
    for n in range(1, MAX + 1):
        cr.append(BIG[n - 1])
        assert cr.size == n
        assert cr.root() == BIG_ROOTS[n]
        restored = CompactRange.from_bytes(cr.to_bytes())
        assert restored.size == n and restored.root() == BIG_ROOTS[n]
        assert len(cr.to_bytes()) == 8 + 32 * n.bit_count()


def test_compact_range_resumes_after_restore() -> None:
    cr = CompactRange()
    for lh in BIG[:77]:
        cr.append(lh)
    resumed = CompactRange.from_bytes(cr.to_bytes())
    for lh in BIG[77:]:
        resumed.append(lh)
    assert resumed.root() == BIG_ROOTS[MAX]


def test_compact_range_rejects_bad_bytes() -> None:
    cr = CompactRange()
    for lh in BIG[:5]:
        cr.append(lh)
    data = cr.to_bytes()
    for bad in (b"", data[:7], data[:-1], data + b"\x00", (7).to_bytes(8, "big") + data[8:]):
        with pytest.raises(MalformedError):
            CompactRange.from_bytes(bad)
    with pytest.raises(ValueError):
        cr.append(b"\x00" * 31)


# --- Properties ---------------------------------------------------------------


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def size_pair(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX))
    return draw(st.integers(1, new)), new


@given(leaf_in_tree(), st.data())
def test_every_inclusion_proof_verifies_and_any_bit_flip_fails(
    ix: tuple[int, int], data: st.DataObject
) -> None:
    index, size = ix
    proof = inclusion_proof(BIG, index, size)
    verify_inclusion(BIG[index], index, size, proof, BIG_ROOTS[size])

    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.sampled_from(["leaf", "root", *(["proof"] if proof else [])]))
    leaf, r, p = BIG[index], BIG_ROOTS[size], list(proof)
    if target == "leaf":
        leaf = flip(leaf, bit)
    elif target == "root":
        r = flip(r, bit)
    else:
        k = data.draw(st.integers(0, len(p) - 1))
        p[k] = flip(p[k], bit)
    with pytest.raises(VerificationError):
        verify_inclusion(leaf, index, size, p, r)


@given(size_pair(), st.data())
def test_every_consistency_proof_verifies_and_any_bit_flip_fails(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    old, new = sizes
    proof = consistency_proof(BIG, old, new)
    verify_consistency(old, new, BIG_ROOTS[old], BIG_ROOTS[new], proof)

    bit = data.draw(st.integers(0, 255))
    target = data.draw(st.sampled_from(["old", "new", *(["proof"] if proof else [])]))
    r1, r2, p = BIG_ROOTS[old], BIG_ROOTS[new], list(proof)
    if target == "old":
        r1 = flip(r1, bit)
    elif target == "new":
        r2 = flip(r2, bit)
    else:
        k = data.draw(st.integers(0, len(p) - 1))
        p[k] = flip(p[k], bit)
    with pytest.raises(VerificationError):
        verify_consistency(old, new, r1, r2, p)


@given(leaf_in_tree(), st.integers(1, MAX))
def test_inclusion_proof_does_not_verify_for_another_size(ix: tuple[int, int], other: int) -> None:
    index, size = ix
    proof = inclusion_proof(BIG, index, size)
    if other != size:
        with pytest.raises(CryptoError):
            verify_inclusion(BIG[index], index, other, proof, BIG_ROOTS[other])
