"""RFC 6962 / RFC 9162 Merkle tree: known vectors, corrupted proofs, properties.

The vectors are the Certificate Transparency ones, as kept in
transparency-dev/merkle ``proof/verify_test.go``: agreeing with them means an
independent RFC 6962 verifier accepts our proofs and we accept theirs.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustfeed.custody import VerificationError
from trustfeed.custody.ledger import (
    EMPTY_ROOT,
    MemoryTree,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_leaf_hash,
)
from trustfeed.custody.ledger._merkle import Frontier, consistency_ranges, range_nodes

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
H = bytes.fromhex
# (1-based leaf, tree size, proof), exactly as in verify_test.go.
INCLUSION = [
    (1, 1, []),
    (
        1,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]
SOME_HASH = H("abacaba000000000000000000000000000000000000000000060061e00123456")

TREE = MemoryTree(leaf_hash(x) for x in LEAVES)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_rfc6962_vectors(size: int) -> None:
    assert root_from_leaf_hashes(leaf_hash(x) for x in LEAVES[:size]) == ROOTS[size - 1]
    assert TREE.root(size) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_vectors_are_generated_and_verified(
    leaf: int, size: int, proof: list[bytes]
) -> None:
    assert TREE.inclusion_proof(leaf - 1, size) == proof
    verify_inclusion(LEAVES[leaf - 1], leaf - 1, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors_are_generated_and_verified(
    old: int, new: int, proof: list[bytes]
) -> None:
    assert TREE.consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def _corrupt_inclusion(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The probes of verify_test.go ``corruptInclusionProof``, plus index ≥ size."""
    yield "index - 1", index - 1, size, leaf, proof, root
    yield "index + 1", index + 1, size, leaf, proof, root
    yield "index ^ 2", index ^ 2, size, leaf, proof, root
    yield "size * 2", index, size * 2, leaf, proof, root
    yield "size / 2", index, size // 2, leaf, proof, root
    yield "index = size", size, size, leaf, proof, root
    yield "wrong leaf", index, size, leaf_hash(b"WrongLeaf"), proof, root
    yield "empty root", index, size, leaf, proof, EMPTY_ROOT
    yield "random root", index, size, leaf, proof, SOME_HASH
    yield "trailing garbage", index, size, leaf, [*proof, b""], root
    yield "trailing root", index, size, leaf, [*proof, root], root
    yield "preceding garbage", index, size, leaf, [b"", *proof], root
    yield "preceding root", index, size, leaf, [root, *proof], root
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        yield f"flipped bit in proof[{i}]", index, size, leaf, flipped, root
    if proof:
        yield "truncated", index, size, leaf, proof[:-1], root
    if len(proof) > 1:
        yield "inserted", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION[1:])
def test_corrupted_inclusion_proofs_are_rejected(leaf: int, size: int, proof: list[bytes]) -> None:
    good_leaf = leaf_hash(LEAVES[leaf - 1])
    for desc, index, sz, lh, pr, root in _corrupt_inclusion(
        leaf - 1, size, proof, ROOTS[size - 1], good_leaf
    ):
        with pytest.raises(VerificationError):
            verify_inclusion_leaf_hash(lh, index, sz, pr, root)
            pytest.fail(f"accepted a corrupted proof: {desc}")


def test_single_entry_tree_and_bad_hash_sizes() -> None:
    h = leaf_hash(b"data")
    verify_inclusion(b"data", 0, 1, [], h)
    for leaf, root in [(h, b""), (b"", h), (b"", b"")]:
        with pytest.raises(VerificationError):
            verify_inclusion_leaf_hash(leaf, 0, 1, [], root)
    for index, size in [(0, 0), (1, 0), (2, 1), (1, 1)]:
        with pytest.raises(VerificationError):
            verify_inclusion_leaf_hash(SOME_HASH, index, size, [], EMPTY_ROOT)


def _corrupt_consistency(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]):
    """The probes of verify_test.go ``corruptConsistencyProof``."""
    yield "old - 1", old - 1, new, r1, r2, proof
    yield "old + 1", old + 1, new, r1, r2, proof
    yield "old ^ 2", old ^ 2, new, r1, r2, proof
    yield "new * 2", old, new * 2, r1, r2, proof
    yield "new / 2", old, new // 2, r1, r2, proof
    yield "wrong root1", old, new, SOME_HASH, r2, proof
    yield "wrong root2", old, new, r1, SOME_HASH, proof
    yield "swapped roots", old, new, r2, r1, proof
    yield "empty proof", old, new, r1, r2, []
    yield "trailing garbage", old, new, r1, r2, [*proof, b""]
    yield "trailing root1", old, new, r1, r2, [*proof, r1]
    yield "trailing root2", old, new, r1, r2, [*proof, r2]
    yield "preceding garbage", old, new, r1, r2, [b"", *proof]
    yield "preceding root1", old, new, r1, r2, [r1, *proof]
    yield "preceding root2", old, new, r1, r2, [r2, *proof]
    yield "preceding proof[0]", old, new, r1, r2, [proof[0], *proof]
    yield "truncated", old, new, r1, r2, proof[:-1]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        yield f"flipped bit in proof[{i}]", old, new, r1, r2, flipped


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
def test_corrupted_consistency_proofs_are_rejected(old: int, new: int, proof: list[bytes]) -> None:
    probes = _corrupt_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    for desc, o, n, r1, r2, pr in probes:
        with pytest.raises(VerificationError):
            verify_consistency(o, n, r1, r2, pr)
            pytest.fail(f"accepted a corrupted proof: {desc}")


@pytest.mark.parametrize(
    ("old", "new", "root1", "root2", "proof", "ok"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOTS[0], [], True),
        (1, 1, ROOTS[0], ROOTS[0], [], True),
        (1, 1, ROOTS[0], ROOTS[1], [], False),  # same size, two roots: a fork
        (1, 0, ROOTS[0], EMPTY_ROOT, [], False),  # time travel: a rollback
        (2, 1, ROOTS[1], ROOTS[0], [], False),
        (1, 2, ROOTS[0], ROOTS[1], [], False),  # empty proof
        (0, 1, SOME_HASH, ROOTS[0], [], False),  # stricter than Go: size 0 has one root
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, ROOTS[0], ROOTS[0], [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(old, new, root1, root2, proof)
    else:
        with pytest.raises(VerificationError):
            verify_consistency(old, new, root1, root2, proof)


def test_range_decomposition_and_frontier_agree() -> None:
    assert range_nodes(0, 0) == []
    assert range_nodes(4, 7) == [(1, 2), (0, 6)]
    frontier = Frontier()
    closed = [frontier.append(leaf_hash(x)) for x in LEAVES]
    assert closed[7][-1] == (3, 0, ROOTS[7])
    assert consistency_ranges(3, 3) == []


histories = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(entries=histories, data=st.data())
def test_every_proof_verifies_and_every_mutation_fails(entries: list[bytes], data) -> None:
    tree = MemoryTree(leaf_hash(e) for e in entries)
    size = data.draw(st.integers(1, len(entries)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = tree.root(size)
    proof = tree.inclusion_proof(index, size)
    verify_inclusion(entries[index], index, size, proof, root)
    old = data.draw(st.integers(1, size), label="old")
    cproof = tree.consistency_proof(old, size)
    verify_consistency(old, size, tree.root(old), root, cproof)
    bit = data.draw(st.integers(0, 7), label="bit")
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1), label="mutated hash")
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ (1 << bit)]) + bad[i][1:]
        with pytest.raises(VerificationError):
            verify_inclusion(entries[index], index, size, bad, root)
    if cproof:
        i = data.draw(st.integers(0, len(cproof) - 1), label="mutated consistency hash")
        bad = list(cproof)
        bad[i] = bytes([bad[i][0] ^ (1 << bit)]) + bad[i][1:]
        with pytest.raises(VerificationError):
            verify_consistency(old, size, tree.root(old), root, bad)
        with pytest.raises(VerificationError):
            verify_consistency(old, size, tree.root(old), root, cproof[:-1])
