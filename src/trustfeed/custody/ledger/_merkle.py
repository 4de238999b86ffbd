"""RFC 6962 / RFC 9162 Merkle tree hashing, proof shapes and proof verification.

Hand-written on purpose: no maintained Python library implements the RFC 9162
proof algorithms over SQL-stored subtree hashes (pymerkle, compared in
``benchmarks/bench_ledger.py``, keeps its own storage and proof encoding). The
verification functions follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, so
an independent RFC 6962 verifier (e.g. transparency-dev/merkle) accepts our
proofs and we accept theirs; the tests pin the transparency-dev vectors.

Sizes and indices are plain ints; hashes are 32-byte ``bytes``. A *range*
``(a, b)`` is the RFC subtree over leaves ``a..b-1`` (MTH(D[a:b])); a *node*
``(level, index)`` is the complete subtree over leaves
``index * 2**level .. (index + 1) * 2**level - 1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from trustfeed.custody._errors import VerificationError

HASH_SIZE = 32
#: MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

Range = tuple[int, int]
Node = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry): the prefix keeps a leaf from passing for a node.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right), an interior node of the tree."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2): where RFC 9162 splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of the given leaves in one pass with O(log n) memory.

    >>> root_from_leaf_hashes([]) == EMPTY_ROOT
    True
    """
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


class Frontier:
    """The right edge of a growing tree: one complete subtree hash per set bit of ``size``.

    Appending reports every complete subtree it closes, which is what the store
    writes so that proofs later need only lookups, never rehashing.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != size.bit_count():
            raise ValueError("a frontier needs one hash per set bit of its size")
        self.size = size
        self._hashes = list(hashes)  # highest level first

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the (level, index, hash) of each subtree it completes."""
        index, level, h = self.size, 0, leaf
        closed = [(0, index, h)]
        while (index >> level) & 1:
            h = node_hash(self._hashes.pop(), h)
            level += 1
            closed.append((level, index >> level, h))
        self._hashes.append(h)
        self.size += 1
        return closed

    def root(self) -> bytes:
        """MTH(D[0:size]): the frontier folded right to left."""
        return fold_right(self._hashes) if self._hashes else EMPTY_ROOT

    def copy(self) -> Frontier:
        return Frontier(self.size, self._hashes)


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Hash the decomposition of an RFC subtree (largest first) into its MTH."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def range_nodes(start: int, stop: int) -> list[Node]:
    """The complete subtrees (largest first) whose fold is MTH(D[start:stop]).

    Valid for any RFC subtree range, i.e. one that appears in a proof or a prefix.

    >>> range_nodes(0, 7)
    [(2, 0), (1, 2), (0, 6)]
    """
    nodes: list[Node] = []
    while start < stop:
        level = (stop - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf to root."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is outside a tree of size {size}")
    path: list[Range] = []
    a, b = 0, size
    while b - a > 1:
        k = split_point(b - a)
        if index < a + k:
            path.append((a + k, b))
            b = a + k
        else:
            path.append((a, a + k))
            a += k
    path.reverse()
    return path


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees of PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[Range] = []
    a, b, m, whole = 0, new_size, old_size, True
    while m != b - a:
        k = split_point(b - a)
        if m <= k:
            proof.append((a + k, b))
            b = a + k
        else:
            proof.append((a, a + k))
            a, m, whole = a + k, m - k, False
    if not whole:
        proof.append((a, b))
    proof.reverse()
    return proof


def hashes_for_ranges(
    ranges: Sequence[Range], lookup: Callable[[list[Node]], dict[Node, bytes]]
) -> list[bytes]:
    """Resolve proof ranges to hashes with one ``lookup`` of all the complete nodes needed."""
    per_range = [range_nodes(a, b) for a, b in ranges]
    found = lookup(sorted({n for nodes in per_range for n in nodes}))
    try:
        return [fold_right([found[n] for n in nodes]) for nodes in per_range]
    except KeyError as exc:
        raise VerificationError(f"subtree {exc.args[0]} is missing from the store") from exc


class MemoryTree:
    """A tree over leaf hashes held in memory, for auditors and tests.

    Leaf hashes live in one ``bytearray`` (32 bytes each) so a ten-million-entry
    audit fits in a few hundred MB.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._leaves = bytearray()
        for h in leaf_hashes:
            self.append(h)

    def append(self, leaf: bytes) -> None:
        self._leaves += leaf

    @property
    def size(self) -> int:
        return len(self._leaves) // HASH_SIZE

    def leaf(self, index: int) -> bytes:
        return bytes(self._leaves[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def range_hash(self, start: int, stop: int) -> bytes:
        """MTH(D[start:stop]), recomputed from the leaves (O(stop - start))."""
        if stop - start == 1:
            return self.leaf(start)
        if start == stop:
            return EMPTY_ROOT
        frontier = Frontier()
        for i in range(start, stop):
            frontier.append(self.leaf(i))
        return frontier.root()

    def root(self, size: int | None = None) -> bytes:
        return self.range_hash(0, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        return [self.range_hash(a, b) for a, b in inclusion_ranges(index, size)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        return [self.range_hash(a, b) for a, b in consistency_ranges(old_size, new_size)]


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, not a {HASH_SIZE}-byte SHA-256")


def verify_inclusion(
    entry: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that ``entry`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Raises :class:`VerificationError` on any failure, so a caller cannot forget
    to look at a boolean; returns True otherwise (``assert verify_…`` reads
    naturally). Use :func:`verify_inclusion_leaf_hash` when only the leaf hash
    is at hand.
    """
    return verify_inclusion_leaf_hash(leaf_hash(entry), index, size, proof, root)


def verify_inclusion_leaf_hash(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, step by step, for a leaf hash ``leaf``."""
    _check_hash(leaf, "leaf hash")
    _check_hash(root, "root hash")
    r = root_from_inclusion_proof(leaf, index, size, proof)
    if r != root:
        raise VerificationError(
            f"inclusion proof for entry {index} in a tree of size {size} does not match the root",
            index=index,
        )
    return True


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2 steps 1-5 minus the compare)."""
    # 1. The index must lie inside the tree.
    if not 0 <= index < size:
        raise VerificationError(f"index {index} is not below tree size {size}", index=index)
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = the leaf hash.
    fn, sn, r = index, size - 1, leaf
    # 4. Fold in each proof hash.
    for p in proof:
        _check_hash(p, "proof hash")
        # 4a. A proof longer than the path fails.
        if sn == 0:
            raise VerificationError("inclusion proof is too long", index=index)
        # 4b. Left or right sibling, skipping levels where the right edge has no sibling.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        # 4c.
        fn, sn = fn >> 1, sn >> 1
    # 5. A proof shorter than the path fails (sn must have reached 0).
    if sn != 0:
        raise VerificationError("inclusion proof is too short", index=index)
    return r


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Check that the tree (new_size, new_root) extends the tree (old_size, old_root).

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. The edge cases follow
    transparency-dev/merkle, except that we are stricter at ``old_size == 0``:
    the old root must then be the empty-tree hash (an empty tree has no other).
    Raises :class:`VerificationError`; returns True on success.
    """
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    if not 0 <= old_size <= new_size:
        raise VerificationError(f"size went backwards: {old_size} → {new_size} (a rollback)")
    if old_size == 0 or old_size == new_size:
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return True
    fr, sr, sn = _consistency_fold(old_size, new_size, old_root, proof)
    # 7. Both roots must come out, and the proof must have reached the top.
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if fr != old_root:
        raise VerificationError(f"consistency proof does not match the root at size {old_size}")
    if sr != new_root:
        raise VerificationError(f"consistency proof does not match the root at size {new_size}")
    return True


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise VerificationError(f"expected an empty consistency proof from size {old_size}")
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise VerificationError("a tree of size 0 has the empty-tree root")
    if old_size == new_size and old_root != new_root:
        raise VerificationError(f"two different roots for size {old_size} (a fork)")


def _consistency_fold(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes, int]:
    """RFC 9162 §2.1.4.2 steps 1-6; the caller does step 7."""
    # 1. An empty proof cannot prove a proper extension.
    if not proof:
        raise VerificationError("empty consistency proof")
    for p in proof:
        _check_hash(p, "proof hash")
    path = list(proof)
    # 2. When old_size is a power of two, the old root is the first node of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = old_size - 1, new_size - 1
    # 4. Skip the levels where the old tree's last node is a right child.
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5. fr = sr = the first value.
    fr = sr = path[0]
    # 6. Fold in each later value.
    for c in path[1:]:
        # 6a. A proof longer than the path fails.
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        # 6b. A left sibling of both paths, or a right sibling of the new path only.
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        # 6c.
        fn, sn = fn >> 1, sn >> 1
    return fr, sr, sn
