"""Compute challenges (docs/challenges.md): a node proves the throughput of
the GPUs it declared by multiplying two matrices derived from a checker's
fresh seed, committing to the product, and opening a few rows.

Everything here is exact and reproducible bit for bit:

* ``seed`` = SHA-256("athr-challenge-seed-v1" || epoch || node || checker ||
  nonce), the three integers as unsigned 64-bit little-endian, the nonce 16
  random bytes chosen by the checker: a seed names its epoch, node and
  checker, so it cannot be precomputed or reused elsewhere.
* Row ``i`` of matrix ``M`` (``b"A"`` or ``b"B"``) is the first ``n / 2``
  bytes (rounded up) of SHAKE-128("athr-challenge-matrix-v1" || seed || M ||
  i as unsigned 32-bit little-endian); each byte gives two elements, low
  nibble first, each nibble minus 8: integers from -8 to 7 (an odd ``n``
  leaves the last byte's high nibble unused). Every product of two
  is at most 64 in size and a row of ``n`` of them sums to at most
  ``64 n`` < 2^24 for any n up to 262,144, so float32 arithmetic is exact
  in any order of summation.
* The product's row ``i`` is encoded as ``n`` signed 32-bit little-endian
  integers; its Merkle leaf is SHA-256(0x00 || those bytes), an inner node
  SHA-256(0x01 || left || right); leaves past ``n`` up to the next power of
  two are 32 zero bytes. A proof lists the siblings from the leaf up, so it
  has exactly ``depth(n)`` = ceil(log2 n) hashes.

numpy does the node's multiplication where no GPU is available; torch with
CUDA, when installed, does it on the GPU. Verifying k rows needs k rows of
A, all of B (``n^2`` generated values) and ``k n^2`` multiply-adds.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from threadpoolctl import ThreadpoolController

SEED_DOMAIN = b"athr-challenge-seed-v1"
MATRIX_DOMAIN = b"athr-challenge-matrix-v1"
LEAF, INNER = b"\x00", b"\x01"
EMPTY = bytes(32)
# The bounds of the matrix-size and rows-checked parameters (docs/rules.md §9).
MIN_N, MAX_N = 64, 16_384
MAX_ROWS = 64
MAX_REASON = 200
# Below this size a product runs on one BLAS thread: waking the others costs
# more than the work, and on a shared CPU a woken thread waits for its slice
# (a 128 x 128 product took 140 ms instead of 1 ms beside two busy processes).
ONE_THREAD_UP_TO = 512
_blas: ThreadpoolController | None = None


def _blas_threads(n: int):
    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    return _blas.limit(limits=1 if n <= ONE_THREAD_UP_TO else None, user_api="blas")


class ChallengeFailed(Exception):
    """A node's answer that fails the challenge; the message says why."""


def derive_seed(epoch: int, node: int, checker: int, nonce: bytes) -> bytes:
    if len(nonce) != 16:
        raise ValueError("the nonce is 16 bytes")
    parts = b"".join(v.to_bytes(8, "little") for v in (epoch, node, checker))
    return hashlib.sha256(SEED_DOMAIN + parts + nonce).digest()


def new_nonce() -> bytes:
    return secrets.token_bytes(16)


def check_size(n: int) -> None:
    if type(n) is not int or not MIN_N <= n <= MAX_N:
        raise ValueError(f"n must be an integer from {MIN_N} to {MAX_N}")


def row_bytes(seed: bytes, matrix: bytes, i: int, n: int) -> bytes:
    """The generator's bytes for row ``i`` of ``matrix`` (two elements each)."""
    return hashlib.shake_128(MATRIX_DOMAIN + seed + matrix + i.to_bytes(4, "little")).digest((n + 1) // 2)


def _unpack(raw: bytes, rows: int, n: int, dtype) -> np.ndarray:
    packed = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty(packed.size * 2, dtype=dtype)
    out[0::2] = packed & 15
    out[1::2] = packed >> 4
    out -= 8
    return out.reshape(rows, -1)[:, :n]


def matrix_rows(seed: bytes, matrix: bytes, rows, n: int, dtype=np.int8) -> np.ndarray:
    """Rows ``rows`` of ``matrix`` (len(rows) x n), int8 unless ``dtype`` says."""
    rows = list(rows)
    return _unpack(b"".join(row_bytes(seed, matrix, i, n) for i in rows), len(rows), n, dtype)


def matrix(seed: bytes, which: bytes, n: int, dtype=np.int8) -> np.ndarray:
    return matrix_rows(seed, which, range(n), n, dtype)


def product(seed: bytes, n: int, device: str = "auto") -> np.ndarray:
    """A x B as int32 (n x n), computed in float32: on a CUDA GPU through
    torch when it is installed and ``device`` allows, else with numpy."""
    check_size(n)
    a = matrix(seed, b"A", n, np.float32)
    b = matrix(seed, b"B", n, np.float32)
    if device in ("auto", "cuda"):
        torch = _torch_cuda()
        if torch is not None:
            c = (torch.from_numpy(a).cuda() @ torch.from_numpy(b).cuda()).cpu().numpy()
            return c.astype(np.int32)
        if device == "cuda":
            raise RuntimeError("torch with CUDA is not available")
    with _blas_threads(n):
        return (a @ b).astype(np.int32)


def _torch_cuda():
    try:
        import torch  # noqa: PLC0415 - optional: only nodes with GPUs install it
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def depth(n: int) -> int:
    return max(0, (n - 1).bit_length())


def leaf(row: bytes) -> bytes:
    return hashlib.sha256(LEAF + row).digest()


def encode_row(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<i4").tobytes()


@dataclass
class Commitment:
    """A node's product with its Merkle tree, kept to open rows on request."""

    seed: bytes
    n: int
    rows: np.ndarray  # int32, n x n
    levels: list[list[bytes]]  # leaves first, the root's level last

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def open(self, i: int) -> tuple[bytes, list[bytes]]:
        """Row ``i``'s bytes and its Merkle proof."""
        proof, index = [], i
        for level in self.levels[:-1]:
            proof.append(level[index ^ 1])
            index //= 2
        return encode_row(self.rows[i]), proof


def commit(seed: bytes, rows: np.ndarray) -> Commitment:
    n = rows.shape[0]
    width = 1 << depth(n)
    level = [leaf(encode_row(r)) for r in rows] + [EMPTY] * (width - n)
    levels = [level]
    while len(level) > 1:
        level = [hashlib.sha256(INNER + level[j] + level[j + 1]).digest() for j in range(0, len(level), 2)]
        levels.append(level)
    return Commitment(seed=seed, n=n, rows=rows, levels=levels)


def root_from_proof(i: int, row: bytes, proof: list[bytes]) -> bytes:
    h = leaf(row)
    for sibling in proof:
        h = hashlib.sha256(INNER + (sibling + h if i & 1 else h + sibling)).digest()
        i //= 2
    return h


def expected_rows(seed: bytes, n: int, rows: list[int]) -> np.ndarray:
    """Rows ``rows`` of A x B, from k rows of A and all of B (what a checker
    and an auditor compute: about k n^2 multiply-adds)."""
    a = matrix_rows(seed, b"A", rows, n, np.float32)
    b = matrix(seed, b"B", n, np.float32)
    # A few rows times B is bound by memory, not arithmetic: one thread
    # (a second one only contends for it, three times slower on a busy host).
    with _blas_threads(0):
        return (a @ b).astype(np.int32)


def verify_openings(seed: bytes, n: int, root: bytes, openings: list[tuple[int, bytes, list[bytes]]]) -> None:
    """Check each (row index, row bytes, proof) against ``root`` and against
    the rows recomputed from the seed; raise ChallengeFailed with the first
    fault found."""
    indices = [i for i, _, _ in openings]
    expected = expected_rows(seed, n, indices)
    for (i, row, proof), want in zip(openings, expected, strict=True):
        if len(row) != 4 * n:
            raise ChallengeFailed(f"row {i} has {len(row)} bytes, not {4 * n}")
        if len(proof) != depth(n):
            raise ChallengeFailed(f"row {i}'s proof has {len(proof)} hashes, not {depth(n)}")
        got = np.frombuffer(row, dtype="<i4")
        wrong = np.flatnonzero(got != want)
        if wrong.size:
            j = int(wrong[0])
            raise ChallengeFailed(
                f"row {i}, column {j}: {int(got[j])} where the product has {int(want[j])}"
                + (f" ({wrong.size} wrong elements)" if wrong.size > 1 else "")
            )
        if root_from_proof(i, row, proof) != root:
            raise ChallengeFailed(f"row {i}'s Merkle proof does not lead to the committed root")


def verify_published(seed: bytes, n: int, root: bytes, rows: list[int], proofs: list[list[bytes]]) -> bool:
    """Whether published rows and proofs verify: each row is recomputed from
    the seed, and its proof must lead to the root (what anyone can redo)."""
    expected = expected_rows(seed, n, rows)
    return all(
        len(proof) == depth(n) and root_from_proof(i, encode_row(want), proof) == root
        for i, want, proof in zip(rows, expected, proofs, strict=True)
    )


# The node's host work that grows with n^2 (generating both matrices,
# converting the product, hashing its rows) is allowed this rate: about half
# of what one core of a two-core cloud VM manages (docs/challenges.md).
HOST_ELEMENTS_PER_S = 25_000_000


def deadline_seconds(n: int, tflops: Decimal, gpu_count: int, slack: int, rtt_s: float, grace_ms: int) -> float:
    """The round trip, a grace (the answer's scheduling on a busy host), the
    host's n^2 work at HOST_ELEMENTS_PER_S, and ``slack`` times the time
    2 n^3 operations take at the declared GPUs' catalogue throughput."""
    throughput = float(tflops) * 1e12 * max(gpu_count, 1)
    compute = slack * 2 * n**3 / throughput if throughput > 0 else float("inf")
    return rtt_s + grace_ms / 1000 + n * n / HOST_ELEMENTS_PER_S + compute


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, limit: int) -> bytes:
    if not isinstance(text, str) or len(text) > limit * 4 // 3 + 4:
        raise ChallengeFailed("a row is not base64 of the expected size")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise ChallengeFailed("a row is not valid base64") from None


def hex32(value, what: str) -> bytes:
    """32 bytes from 64 lowercase hex characters, or ChallengeFailed."""
    if not isinstance(value, str) or len(value) != 64:
        raise ChallengeFailed(f"{what} is not 64 hex characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise ChallengeFailed(f"{what} is not hex") from None
