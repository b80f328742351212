#!/usr/bin/env python3
"""Re-verify a published compute challenge with nothing but Python's
standard library (docs/challenges.md).

    python3 scripts/verify_challenge.py challenge.json
    curl -s https://DASHBOARD/api/monitoring/challenges/ID/ | python3 scripts/verify_challenge.py -

The JSON is one challenge as the monitoring API publishes it: epoch, node,
checker, n, nonce, seed, root, rows, proofs, passed. The script checks that
the seed derives from (epoch, node, checker, nonce), recomputes each opened
row of A x B from the seed, and checks its Merkle proof against the root.
It prints what it found and exits 0 when the published verdict "passed"
agrees with what the rows show (a failed challenge may also have failed on
time, which only its checker saw), 1 when it does not, 2 on bad input.
"""

import hashlib
import json
import sys

SEED_DOMAIN = b"athr-challenge-seed-v1"
MATRIX_DOMAIN = b"athr-challenge-matrix-v1"


def derive_seed(epoch: int, node: int, checker: int, nonce: bytes) -> bytes:
    parts = b"".join(v.to_bytes(8, "little") for v in (epoch, node, checker))
    return hashlib.sha256(SEED_DOMAIN + parts + nonce).digest()


def matrix_row(seed: bytes, which: bytes, i: int, n: int) -> list[int]:
    """Row i of A or B: SHAKE-128 bytes, two elements each (low nibble first), minus 8."""
    raw = hashlib.shake_128(MATRIX_DOMAIN + seed + which + i.to_bytes(4, "little")).digest((n + 1) // 2)
    out = []
    for byte in raw:
        out += [(byte & 15) - 8, (byte >> 4) - 8]
    return out[:n]


def product_rows(seed: bytes, n: int, rows: list[int]) -> list[list[int]]:
    """The rows of A x B: k rows of A, all of B, k n^2 multiply-adds."""
    b = [matrix_row(seed, b"B", j, n) for j in range(n)]
    result = []
    for i in rows:
        a = matrix_row(seed, b"A", i, n)
        acc = [0] * n
        for aj, bj in zip(a, b, strict=True):
            if aj:
                acc = [x + aj * y for x, y in zip(acc, bj, strict=True)]
        result.append(acc)
    return result


def leaf(values: list[int]) -> bytes:
    row = b"".join(v.to_bytes(4, "little", signed=True) for v in values)
    return hashlib.sha256(b"\x00" + row).digest()


def root_from_proof(i: int, values: list[int], proof: list[bytes]) -> bytes:
    h = leaf(values)
    for sibling in proof:
        h = hashlib.sha256(b"\x01" + (sibling + h if i & 1 else h + sibling)).digest()
        i //= 2
    return h


def verify(c: dict) -> tuple[bool, list[str]]:
    """(whether the opened rows verify, what was checked)."""
    notes = []
    n = c["n"]
    seed = bytes.fromhex(c["seed"])
    if derive_seed(c["epoch"], c["node"], c["checker"], bytes.fromhex(c["nonce"])) != seed:
        return False, ["the seed does not derive from its epoch, node, checker and nonce"]
    notes.append(f"seed derives from epoch {c['epoch']}, node {c['node']}, checker {c['checker']}")
    if not c.get("root") or not c.get("rows"):
        return False, [*notes, "no rows were opened (the node never committed, or no row was asked)"]
    root = bytes.fromhex(c["root"])
    depth = max(0, (n - 1).bit_length())
    if len(c["proofs"]) != len(c["rows"]):
        return False, [*notes, "not one proof per opened row"]
    ok = True
    for i, values, proof in zip(c["rows"], product_rows(seed, n, c["rows"]), c["proofs"], strict=True):
        hashes = [bytes.fromhex(h) for h in proof]
        good = len(hashes) == depth and root_from_proof(i, values, hashes) == root
        notes.append(f"row {i}: {'verifies' if good else 'does NOT verify'} against the root")
        ok &= good
    return ok, notes


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        text = sys.stdin.read() if argv[1] == "-" else open(argv[1], encoding="utf-8").read()
        c = json.loads(text)
        ok, notes = verify(c)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot read the challenge: {exc}", file=sys.stderr)
        return 2
    for line in notes:
        print(line)
    claimed = bool(c.get("passed"))
    print(f"rows verify: {ok}; published verdict: {'passed' if claimed else 'failed'}")
    if claimed and not ok:
        print("the checker claimed a pass that the rows do not support")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
