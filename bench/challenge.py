"""Compute challenges: what a node and a checker each spend, on this CPU.

For each n (256 .. 4,096 by default):

* **node**: derive A and B from the seed (SHAKE-128), multiply them in
  float32 (numpy), convert the product to int32 and build its Merkle tree:
  the work an honest node's host does, here with the product on the CPU;
  ``2 n^3`` operations for the product (a multiply-add is two), plus the
  ``2 n^2`` generated elements and ``n^2`` hashed ones;
* **checker**: derive k rows of A and all of B, compute the k rows of the
  product (``2 k n^2`` operations) and check each row against its Merkle
  proof: ``2 k n^2`` plus the ``(n + k) n`` generated elements;
* **bytes** of the two exchanges (request and answer, JSON as the agents send
  them: the rows as base64 of int32, the proofs as hex);
* the ratios of the checker's operations and seconds to the node's.

Then, from the node's measured rates (its product's seconds per n^3, its
host work's per n^2, medians over n >= 1,024), the smallest
n (a multiple of 256, up to the parameter's 16,384) at which a node computing
on this CPU misses the deadline of each catalogue GPU: its time above
``grace + n^2 / HOST_ELEMENTS_PER_S + slack x 2 n^3 / throughput`` (the round
trip is in both, and left out). And the demo's cost: CPU per challenge at its
n = 128 on each side, and for 1,000 nodes checked by 3 checkers each per
60-second epoch.

    .venv/bin/python bench/challenge.py [--sizes 256,512,...] [--rows 4] [--repeat 3]

Seconds are the median of ``--repeat`` runs (one run from 4,096 up).
"""

import argparse
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from apps.core.catalogue_data import FP32_TFLOPS, GPU_MODELS  # noqa: E402
from apps.monitoring import challenge  # noqa: E402

DEFAULTS = {"slack": 3, "grace_ms": 500}  # the parameters' defaults (docs/rules.md §9)


def timed(fn, repeat: int) -> tuple[float, object]:
    runs, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), out


def cpu_timed(fn, repeat: int) -> float:
    """CPU seconds (this process, every thread) per call."""
    started = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - started) / repeat


def node_work(seed: bytes, n: int) -> challenge.Commitment:
    return challenge.commit(seed, challenge.product(seed, n, device="cpu"))


def node_parts(seed: bytes, n: int) -> tuple[float, float]:
    """(host seconds: generating, converting, hashing; product seconds)."""
    started = time.perf_counter()
    a = challenge.matrix(seed, b"A", n, np.float32)
    b = challenge.matrix(seed, b"B", n, np.float32)
    generated = time.perf_counter()
    with challenge._blas_threads(n):
        c = a @ b
    multiplied = time.perf_counter()
    challenge.commit(seed, c.astype(np.int32))
    done = time.perf_counter()
    return (generated - started) + (done - multiplied), multiplied - generated


def checker_work(seed: bytes, n: int, root: bytes, openings) -> None:
    challenge.verify_openings(seed, n, root, openings)


def wire_bytes(seed: bytes, n: int, c: challenge.Commitment, rows: list[int]) -> int:
    ask = {"epoch": 123456, "node": 100_000, "checker": 10_000, "n": n, "nonce": "ab" * 16}
    commitment = {"seed": seed.hex(), "n": n, "root": c.root.hex()}
    opened = []
    for i in rows:
        row, proof = c.open(i)
        opened.append({"index": i, "values": challenge.b64(row), "proof": [h.hex() for h in proof]})
    asked = {"seed": seed.hex(), "rows": rows}
    return sum(len(json.dumps(x).encode()) for x in (ask, commitment, asked, {"seed": seed.hex(), "rows": opened}))


def smallest_n(fit: tuple[float, float], tflops: Decimal) -> int | None:
    a, h = fit
    for n in range(256, challenge.MAX_N + 1, 256):
        impostor = a * n**3 + h * n**2
        deadline = challenge.deadline_seconds(n, tflops, 1, DEFAULTS["slack"], 0.0, DEFAULTS["grace_ms"])
        if impostor > deadline:
            return n
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,512,1024,2048,4096")
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    o = parser.parse_args()
    k = o.rows
    print(f"CPU: {os.cpu_count()} cores, numpy {np.__version__}; k = {k} rows checked")
    print(
        f"{'n':>6} {'node ops':>10} {'node s':>8} {'checker ops':>12} {'checker s':>10} "
        f"{'ops %':>7} {'time %':>7} {'wire bytes':>11}"
    )
    points = []
    for n in (int(x) for x in o.sizes.split(",")):
        seed = challenge.derive_seed(1, 2, 3, os.urandom(16))
        repeat = 1 if n >= 4096 else o.repeat
        node_s, c = timed(lambda seed=seed, n=n: node_work(seed, n), repeat)
        rows = list(np.random.default_rng(n).choice(n, size=min(k, n), replace=False).tolist())
        openings = [(i, *c.open(i)) for i in rows]
        checker_s, _ = timed(lambda seed=seed, n=n, c=c, o_=openings: checker_work(seed, n, c.root, o_), o.repeat)
        node_ops = 2 * n**3 + 3 * n * n
        checker_ops = 2 * k * n * n + (n + k) * n
        host_s, mm_s = min((node_parts(seed, n) for _ in range(repeat)), key=sum)
        points.append((n, host_s, mm_s))
        print(
            f"{n:>6} {node_ops:>10.2e} {node_s:>8.3f} {checker_ops:>12.2e} {checker_s:>10.4f} "
            f"{100 * checker_ops / node_ops:>6.2f}% {100 * checker_s / node_s:>6.2f}% {wire_bytes(seed, n, c, rows):>11,}"
        )
    big = [p for p in points if p[0] >= 1024] or points
    h = statistics.median(p[1] / p[0] ** 2 for p in big)
    a = statistics.median(p[2] / p[0] ** 3 for p in big)
    print(
        f"\nthis CPU: product {2 / a / 1e9:.0f} GFLOPS; host work (generate, convert, hash) "
        f"{1 / h / 1e6:.0f} M elements/s (the deadline allows {challenge.HOST_ELEMENTS_PER_S / 1e6:.0f})"
    )
    print(
        f"smallest n at which a node computing on this CPU misses the deadline "
        f"(slack {DEFAULTS['slack']}x, grace {DEFAULTS['grace_ms']} ms, host n^2 work at "
        f"{challenge.HOST_ELEMENTS_PER_S / 1e6:.0f} M elements/s):"
    )
    for slug, name, *_ in GPU_MODELS:
        found = smallest_n((a, h), FP32_TFLOPS[slug])
        print(f"  {name:<32} {FP32_TFLOPS[slug]:>6} TFLOPS  n >= {found if found else 'none up to 16384'}")

    seed = challenge.derive_seed(1, 2, 3, os.urandom(16))
    c = node_work(seed, 128)
    openings = [(i, *c.open(i)) for i in range(k)]
    node_cpu = cpu_timed(lambda: node_work(seed, 128), 50)
    checker_cpu = cpu_timed(lambda: checker_work(seed, 128, c.root, openings), 50)
    per_s = 1000 * 3 / 60
    print(
        f"\ndemo (n = 128): node {node_cpu * 1000:.2f} ms CPU, checker {checker_cpu * 1000:.2f} ms CPU per "
        f"challenge; 1,000 nodes x 3 checkers per 60 s epoch = {per_s:.0f} challenges/s = "
        f"{per_s * (node_cpu + checker_cpu) * 100:.1f}% of one core (HTTP not included)"
    )


if __name__ == "__main__":
    main()
