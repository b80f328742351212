"""The compute challenge a signed report carries: its strict shape, the
dashboard's own check of the rows it opened, and where it is kept.

A report's ``challenge`` is signed with the report (``signing``: only when
present, so reports without one keep their bytes). Every field is required,
each with its type and range; its seed must derive from the report's epoch,
node and checker and the challenge's nonce, so a checker cannot pass off
one challenge as another's or run one it chose in advance."""

from . import challenge
from .models import ChallengeResult

KEYS = ("n", "nonce", "seed", "root", "passed", "elapsed_ms", "deadline_ms", "rows", "proofs", "reason")
MAX_MS = 3_600_000


class Malformed(ValueError):
    """A challenge that cannot be stored; the message says what is wrong."""


def _int(value, name: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise Malformed(f"challenge.{name} must be an integer from {lo} to {hi}.")
    return value


def _hex(value, name: str, chars: int, empty: bool = False) -> str:
    if empty and value == "":
        return value
    if not isinstance(value, str) or len(value) != chars or value.strip("0123456789abcdef"):
        raise Malformed(f"challenge.{name} must be {chars} lowercase hex characters.")
    return value


def parse(value, epoch: int, node: int, checker: int) -> dict:
    """The challenge as signed, checked field by field, or Malformed."""
    if not isinstance(value, dict) or set(value) != set(KEYS):
        raise Malformed(f"challenge must be an object with exactly the fields {', '.join(KEYS)}.")
    n = _int(value["n"], "n", challenge.MIN_N, challenge.MAX_N)
    nonce = _hex(value["nonce"], "nonce", 32)
    seed = _hex(value["seed"], "seed", 64)
    if challenge.derive_seed(epoch, node, checker, bytes.fromhex(nonce)).hex() != seed:
        raise Malformed("challenge.seed is not derived from the report's epoch, node, checker and the nonce.")
    root = _hex(value["root"], "root", 64, empty=True)
    if not isinstance(value["passed"], bool):
        raise Malformed("challenge.passed must be true or false.")
    elapsed = value["elapsed_ms"]
    if elapsed is not None:
        _int(elapsed, "elapsed_ms", 0, MAX_MS)
    _int(value["deadline_ms"], "deadline_ms", 0, MAX_MS)
    rows, proofs = value["rows"], value["proofs"]
    if not isinstance(rows, list) or len(rows) > challenge.MAX_ROWS:
        raise Malformed(f"challenge.rows must be a list of at most {challenge.MAX_ROWS} row indices.")
    for i in rows:
        _int(i, "rows[]", 0, n - 1)
    if len(set(rows)) != len(rows):
        raise Malformed("challenge.rows must not repeat a row.")
    if not isinstance(proofs, list) or len(proofs) != len(rows):
        raise Malformed("challenge.proofs must hold one proof per row.")
    for proof in proofs:
        if not isinstance(proof, list) or len(proof) != challenge.depth(n):
            raise Malformed(f"each proof must list {challenge.depth(n)} hashes for n = {n}.")
        for h in proof:
            _hex(h, "proofs[][]", 64)
    if not isinstance(value["reason"], str) or len(value["reason"]) > challenge.MAX_REASON:
        raise Malformed(f"challenge.reason must be a string of at most {challenge.MAX_REASON} characters.")
    if value["passed"] and (not root or not rows or elapsed is None):
        raise Malformed("a passed challenge names its root, the rows it opened and the time it took.")
    # That the seed was never reported before is the caller's to check
    # (ingest), with every report of a batch in one query.
    return {k: value[k] for k in KEYS}


def verified(c: dict) -> bool | None:
    """Whether the rows and proofs published with ``c`` verify against its
    root (each row recomputed from the seed); None when it opened none."""
    if not c["root"] or not c["rows"]:
        return None
    return challenge.verify_published(
        bytes.fromhex(c["seed"]),
        c["n"],
        bytes.fromhex(c["root"]),
        c["rows"],
        [[bytes.fromhex(h) for h in proof] for proof in c["proofs"]],
    )


def build(c: dict) -> ChallengeResult:
    """The row to keep for a parsed challenge, its published rows checked
    (outside any transaction: it is the costly part); the caller sets its
    report (``attach``) and saves it."""
    return ChallengeResult(verified=verified(c), **c)


def attach(result: ChallengeResult, report) -> ChallengeResult:
    result.report = report
    result.epoch, result.node_id, result.checker_id = report.epoch, report.node_id, report.checker_id
    return result


def contradiction(passed: bool | None, verified_: bool | None, elapsed_ms: int | None, deadline_ms: int | None):
    """Why a report's challenge contradicts a verifiable fact, or None: a
    pass claimed for rows that do not verify, or for an answer later than
    the deadline the checker itself signed."""
    if not passed:
        return None
    if verified_ is not True:
        return "a challenge claimed passed whose rows do not verify"
    if elapsed_ms is not None and deadline_ms is not None and elapsed_ms > deadline_ms:
        return "a challenge claimed passed after its own deadline"
    return None


def public(c: ChallengeResult) -> dict:
    """What anyone needs to re-verify a challenge (scripts/verify_challenge.py)."""
    return {
        "epoch": c.epoch,
        "node": c.node_id,
        "checker": c.checker_id,
        "n": c.n,
        "nonce": c.nonce,
        "seed": c.seed,
        "root": c.root,
        "passed": c.passed,
        "elapsed_ms": c.elapsed_ms,
        "deadline_ms": c.deadline_ms,
        "rows": c.rows,
        "proofs": c.proofs,
        "reason": c.reason,
        "verified": c.verified,
        "report_correct": c.report.correct if hasattr(c, "report") else None,
    }
