"""Recompute the ledger from scratch and check every invariant.

Used by ``manage.py verify_ledger``, the explorer's "verify the chain" page
and the API. Streams the chain in batches so memory stays flat in the number
of transactions (it grows only with the number of accounts).
"""

from collections import defaultdict
from dataclasses import dataclass, field

from .hashing import GENESIS_PREV_HASH, tx_hash
from .models import BUCKETS, Account, ChainHead, Checkpoint, Entry, LedgerTransaction, TxKind

BATCH = 2000


@dataclass
class Problem:
    message: str
    height: int | None = None

    def __str__(self):
        return f"transaction #{self.height}: {self.message}" if self.height else self.message


@dataclass
class VerifyReport:
    transactions: int = 0
    entries: int = 0
    accounts: int = 0
    supply: int = 0
    height: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_height(self) -> int | None:
        heights = [p.height for p in self.problems if p.height]
        return min(heights) if heights else None


def verify_ledger(max_problems: int = 50) -> VerifyReport:
    report = VerifyReport()
    head = ChainHead.objects.filter(pk=1).first()
    if head is None:
        report.problems.append(Problem("No genesis: the ledger is empty."))
        return report
    report.supply = head.supply
    report.height = head.height
    addresses = dict(Account.objects.values_list("pk", "address"))
    report.accounts = len(addresses)

    running: dict[tuple[int, str], int] = defaultdict(int)
    prev_hash = GENESIS_PREV_HASH
    expected_height = 1

    def problem(message, height=None):
        if len(report.problems) < max_problems:
            report.problems.append(Problem(message, height))

    start = 0
    while True:
        txs = list(LedgerTransaction.objects.filter(height__gt=start).order_by("height")[:BATCH])
        if not txs:
            break
        lo, hi = txs[0].height, txs[-1].height
        legs = defaultdict(list)
        for e in (
            Entry.objects.filter(tx__height__gte=lo, tx__height__lte=hi)
            .order_by("tx_id", "seq")
            .values("tx_id", "account_id", "bucket", "amount")
        ):
            legs[e["tx_id"]].append(e)
        checkpoints = defaultdict(list)
        for cp in Checkpoint.objects.filter(height__gte=lo, height__lte=hi).values("height", "account_id", *BUCKETS):
            checkpoints[cp["height"]].append(cp)

        for tx in txs:
            h = tx.height
            if h != expected_height:
                problem(f"height gap: expected #{expected_height}", h)
            expected_height = h + 1
            tx_legs = legs.get(tx.pk, [])
            if tx.prev_hash != prev_hash:
                problem("its previous-hash link does not match the transaction before it", h)
            digest = tx_hash(
                height=h,
                prev_hash=tx.prev_hash,
                kind=tx.kind,
                memo=tx.memo,
                meta=tx.meta,
                created_at=tx.created_at,
                legs=[(addresses.get(e["account_id"], "?"), e["bucket"], e["amount"]) for e in tx_legs],
            )
            if digest != tx.hash:
                problem("its stored hash does not match its content (tampered)", h)
            prev_hash = tx.hash
            total = sum(e["amount"] for e in tx_legs)
            if tx.kind == TxKind.GENESIS:
                if h != 1:
                    problem("a second genesis", h)
                if total != head.supply:
                    problem(f"genesis mints {total} uATH but the supply is {head.supply}", h)
            elif total != 0:
                problem(f"legs sum to {total} uATH, not zero", h)
            if not tx_legs:
                problem("has no legs", h)
            for e in tx_legs:
                key = (e["account_id"], e["bucket"])
                running[key] += e["amount"]
                if running[key] < 0:
                    problem(f"account {addresses.get(e['account_id'])} {e['bucket']} goes negative", h)
            touched = {e["account_id"] for e in tx_legs}
            seen = set()
            for cp in checkpoints.get(h, []):
                seen.add(cp["account_id"])
                for b in BUCKETS:
                    if cp[b] != running[(cp["account_id"], b)]:
                        problem(
                            f"checkpoint of {addresses.get(cp['account_id'])} says {b}={cp[b]}, "
                            f"entries say {running[(cp['account_id'], b)]}",
                            h,
                        )
            if touched - seen:
                problem("a touched account has no checkpoint", h)
            report.transactions += 1
            report.entries += len(tx_legs)
        start = hi

    if report.transactions and prev_hash != head.hash:
        problem("the chain head hash does not match the last transaction")
    if expected_height - 1 != head.height:
        problem(f"the chain head says height {head.height}, the chain ends at {expected_height - 1}")

    grand_total = 0
    for row in Account.objects.values("pk", "address", *BUCKETS).iterator(chunk_size=5000):
        for b in BUCKETS:
            value = row[b]
            grand_total += value
            if value < 0:
                problem(f"account {row['address']} has a negative {b} balance")
            if value != running.get((row["pk"], b), 0):
                problem(
                    f"account {row['address']} {b} is {value} but its entries add up to "
                    f"{running.get((row['pk'], b), 0)}"
                )
    if grand_total != head.supply:
        problem(f"all balances add up to {grand_total} uATH, not the supply {head.supply}")
    return report
