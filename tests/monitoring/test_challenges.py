"""The compute challenge's arithmetic: the generator reproduces its fixed
vectors bit for bit (numpy, the standard-library script, torch where it is
installed), products are exact in float32, and Merkle proofs bind each row
to its index and its root."""

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.monitoring import challenge

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_challenge.py"
spec = importlib.util.spec_from_file_location("verify_challenge", SCRIPT)
verify_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(verify_script)

# Fixed vectors (docs/challenges.md): any implementation must reproduce these.
NONCE = bytes(range(16))
SEED = "8ec59140fb0105239cd4c4e4533fb4968ae4f8ef44113fbfad36671b921e06a6"  # epoch 7, node 3, checker 2
A_ROW0_FIRST8 = [-8, 4, -8, 6, -4, -2, 1, 7]
B64_SHA256 = "e0dd981511fdd1e8ddaa2ddb7e7a8ff588a719cf0332457735ad7c1b09c92cd7"  # SHA-256 of B (n=64) as int8
ROOT65 = "9ffec75a141e0a65c18b5e19a984080d1389dd226e093b13e6a60d000a7a6d28"  # Merkle root of A x B, n=65


def test_the_seed_and_matrices_reproduce_the_fixed_vectors():
    seed = challenge.derive_seed(7, 3, 2, NONCE)
    assert seed.hex() == SEED
    assert challenge.matrix(seed, b"A", 65)[0, :8].tolist() == A_ROW0_FIRST8
    assert hashlib.sha256(challenge.matrix(seed, b"B", 64).tobytes()).hexdigest() == B64_SHA256
    assert challenge.commit(seed, challenge.product(seed, 65, device="cpu")).root.hex() == ROOT65


def test_the_standard_library_script_reproduces_the_same_vectors():
    seed = verify_script.derive_seed(7, 3, 2, NONCE)
    assert seed.hex() == SEED
    assert verify_script.matrix_row(seed, b"A", 0, 65)[:8] == A_ROW0_FIRST8
    b = np.array([verify_script.matrix_row(seed, b"B", j, 64) for j in range(64)], dtype=np.int8)
    assert hashlib.sha256(b.tobytes()).hexdigest() == B64_SHA256


def test_torch_reproduces_the_product_where_it_is_installed():
    torch = pytest.importorskip("torch")
    seed = bytes.fromhex(SEED)
    a = torch.from_numpy(challenge.matrix(seed, b"A", 65).astype(np.float32))
    b = torch.from_numpy(challenge.matrix(seed, b"B", 65).astype(np.float32))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        product = (a.to(device) @ b.to(device)).cpu().numpy().astype(np.int32)
        assert challenge.commit(seed, product).root.hex() == ROOT65


@settings(max_examples=25, deadline=None)
@given(n=st.integers(challenge.MIN_N, 300), seed=st.binary(min_size=32, max_size=32))
def test_float32_products_are_exact_and_match_integer_arithmetic(n, seed):
    a = challenge.matrix(seed, b"A", n).astype(np.int64)
    b = challenge.matrix(seed, b"B", n).astype(np.int64)
    assert a.min() >= -8 and a.max() <= 7
    assert np.array_equal(challenge.product(seed, n, device="cpu"), a @ b)
    # The bound that makes float32 exact for every size the parameter allows.
    assert 64 * challenge.MAX_N < 2**24


@settings(max_examples=10, deadline=None)
@given(n=st.integers(challenge.MIN_N, 200), data=st.data())
def test_rows_recomputed_by_the_checker_and_by_the_script_match_the_node(n, data):
    seed = data.draw(st.binary(min_size=32, max_size=32))
    rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4, unique=True))
    full = challenge.product(seed, n, device="cpu")
    assert np.array_equal(challenge.expected_rows(seed, n, rows), full[rows])
    assert verify_script.product_rows(seed, n, rows) == full[rows].tolist()


def test_a_proof_binds_its_row_to_its_index_and_root():
    seed = bytes.fromhex(SEED)
    n = 100  # not a power of two: padded leaves
    c = challenge.commit(seed, challenge.product(seed, n, device="cpu"))
    for i in (0, 1, 63, 99):
        row, proof = c.open(i)
        assert len(proof) == challenge.depth(n) == 7
        assert challenge.root_from_proof(i, row, proof) == c.root
        assert challenge.root_from_proof(i ^ 1, row, proof) != c.root
    row, proof = c.open(5)
    changed = bytearray(row)
    changed[0] ^= 1
    assert challenge.root_from_proof(5, bytes(changed), proof) != c.root
    with pytest.raises(challenge.ChallengeFailed, match="proof has 6 hashes, not 7"):
        challenge.verify_openings(seed, n, c.root, [(5, row, proof[:-1])])


def test_the_deadline_follows_the_declared_throughput():
    # 2 n^3 = 2.1e9 operations at 67 TFLOPS is 32 us, x3 slack; plus a 20 ms
    # round trip, a 25 ms grace and the host's n^2 work (42 ms at 25 M elements/s).
    deadline = challenge.deadline_seconds(1024, 67, 1, 3, 0.020, 25)
    assert deadline == pytest.approx(0.045 + 1024**2 / 25e6 + 3 * 2 * 1024**3 / 67e12)
    # Twice the GPUs, half the compute time.
    fixed = 8192**2 / challenge.HOST_ELEMENTS_PER_S
    one = challenge.deadline_seconds(8192, 8.1, 1, 3, 0, 0) - fixed
    assert challenge.deadline_seconds(8192, 8.1, 2, 3, 0, 0) - fixed == pytest.approx(one / 2)


def test_the_script_reverifies_a_published_challenge_from_json(tmp_path):
    seed = challenge.derive_seed(7, 3, 2, NONCE)
    n, rows = 64, [3, 40]
    c = challenge.commit(seed, challenge.product(seed, n, device="cpu"))
    published = {
        "epoch": 7,
        "node": 3,
        "checker": 2,
        "n": n,
        "nonce": NONCE.hex(),
        "seed": seed.hex(),
        "root": c.root.hex(),
        "rows": rows,
        "proofs": [[h.hex() for h in c.open(i)[1]] for i in rows],
        "passed": True,
    }
    path = tmp_path / "challenge.json"
    path.write_text(json.dumps(published))
    ok = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "row 40: verifies" in ok.stdout
    # A checker that claimed a pass for another product's root.
    path.write_text(json.dumps({**published, "root": challenge.EMPTY.hex()}))
    lied = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True)
    assert lied.returncode == 1 and "do not support" in lied.stdout
    # A seed that is not bound to the challenge's epoch, node and checker.
    path.write_text(json.dumps({**published, "node": 4}))
    unbound = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True)
    assert unbound.returncode == 1 and "does not derive" in unbound.stdout
