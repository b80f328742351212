"""Step 4: the epoch's emission (docs/rules.md §7).

Providers share their part by capacity weight x GPUs x consensus uptime;
checkers share theirs by correct reports delivered, in every round they were
part of, even if a settlement jailed them since. Shares round down; the
remainder goes to the dust account, so the reserve pays exactly what it
says. All amounts are integer micro-ATH.
"""

from django.db.models import F

from apps.core import ledger
from apps.core.models import Account, Bucket, CheckerNode, ModuleAccount, NodeStatus, TxKind
from apps.monitoring.models import CheckerEpoch, NodeEpoch
from apps.staking import services as staking

from .models import LineKind, SettlementLine

PPM = 1_000_000


def percent(ppm: int) -> str:
    return f"{ppm // 10_000}.{ppm % 10_000 // 100:02d}%"


def split(total: int, weights: dict) -> tuple[dict, int]:
    """``total`` shared pro rata to integer ``weights``, rounded down; returns
    (amounts, remainder)."""
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return {}, total
    amounts = {k: total * w // weight_sum for k, w in weights.items() if w > 0}
    return amounts, total - sum(amounts.values())


def emission_budget(p: dict) -> dict:
    reserve = ledger.module_account(ModuleAccount.EMISSION_RESERVE)
    emission = min(p["emission_per_epoch"], reserve.available)
    provider = emission * p["emission_provider_share"] // PPM
    checker = emission * p["emission_checker_share"] // PPM
    return {
        "reserve": reserve,
        "emission": emission,
        "provider": provider,
        "checker": checker,
        "community": emission - provider - checker,
    }


def pay_providers(epoch: int, pool: int, reserve: Account, lines: list) -> tuple[int, int, int]:
    """Returns (paid, dust, nodes_paid)."""
    # A node suspended (or taken offline) before this epoch's consensus was
    # still in the round fixed before that settlement, but earns nothing
    # for any epoch after it (docs/rules.md §3).
    rows = list(
        NodeEpoch.objects.filter(epoch=epoch, valid=True, uptime_ppm__gt=0, node__paused=False)
        .exclude(spec_ok=False)
        .exclude(status_before__in=[NodeStatus.SUSPENDED, NodeStatus.OFFLINE])
        .annotate(weight=F("node__gpu_model__capacity_weight") * F("node__gpu_count"))
        .values("node_id", "node__provider_id", "node__gpu_count", "weight", "uptime_ppm", "node__name")
    )
    weights = {r["node_id"]: r["weight"] * r["uptime_ppm"] for r in rows}
    amounts, dust = split(pool, weights)
    if not amounts:
        return 0, 0, 0
    wallets = dict(
        Account.objects.filter(owner_id__in={r["node__provider_id"] for r in rows}).values_list("owner_id", "pk")
    )
    per_wallet: dict[int, int] = {}
    total_weight = sum(weights.values())
    for r in rows:
        amount = amounts.get(r["node_id"], 0)
        if not amount:
            continue
        wallet = wallets[r["node__provider_id"]]
        per_wallet[wallet] = per_wallet.get(wallet, 0) + amount
        lines.append(
            SettlementLine(
                epoch=epoch,
                kind=LineKind.PROVIDER_REWARD,
                account_id=wallet,
                node_id=r["node_id"],
                amount=amount,
                reason=f"{r['node__name']}: weight {r['weight']} x uptime {percent(r['uptime_ppm'])}",
                details={
                    "capacity_weight_x_gpus": r["weight"],
                    "uptime_ppm": r["uptime_ppm"],
                    "share_ppm": weights[r["node_id"]] * PPM // total_weight,
                },
            )
        )
    legs = [ledger.Leg(reserve, Bucket.AVAILABLE, -(pool))]
    legs += [ledger.Leg(w, Bucket.AVAILABLE, a) for w, a in sorted(per_wallet.items())]
    if dust:
        legs.append(ledger.Leg(ledger.module_account(ModuleAccount.DUST), Bucket.AVAILABLE, dust))
    ledger.post(
        TxKind.EMISSION,
        legs,
        memo=f"Epoch {epoch}: provider capacity rewards",
        meta={"epoch": epoch, "part": "providers"},
    )
    return pool - dust, dust, len(amounts)


def pay_checkers(epoch: int, pool: int, reserve: Account, lines: list) -> tuple[int, int, int]:
    """Returns (paid, dust, checkers_paid); each checker's reward goes
    through staking's lazy distribution (commission, then the index), all
    checkers in one posting. The rounding remainder goes to the dust
    account. A checker jailed since its round was fixed is still paid for
    the correct reports it delivered in it."""
    rows = list(
        CheckerEpoch.objects.filter(epoch=epoch, correct__gt=0).values("checker_id", "correct", "delivered", "assigned")
    )
    amounts, remainder = split(pool, {r["checker_id"]: r["correct"] for r in rows})
    if not amounts:
        return 0, 0, 0
    checkers = CheckerNode.objects.in_bulk(list(amounts))
    operator_wallets = dict(
        Account.objects.filter(owner_id__in={c.operator_id for c in checkers.values()}).values_list("owner_id", "pk")
    )
    by_id = {r["checker_id"]: r for r in rows}
    # One posting for every checker (commission to operators, the rest to the
    # rewards pool for the stake bonded when the round was fixed).
    periods, _refused = staking.distribute_many(
        {c: a for c, a in amounts.items() if a}, epoch, reserve, memo=f"Epoch {epoch}: checker rewards"
    )
    paid = sum(p.reward for p in periods.values())
    n_paid = len(periods)
    for checker_id in sorted(periods):
        checker, r, amount = checkers[checker_id], by_id[checker_id], periods[checker_id].reward
        lines.append(
            SettlementLine(
                epoch=epoch,
                kind=LineKind.CHECKER_REWARD,
                account_id=operator_wallets.get(checker.operator_id),
                checker_id=checker_id,
                amount=amount,
                reason=f"{checker.name}: {r['correct']} correct reports of {r['assigned']} assigned",
                details={"correct": r["correct"], "delivered": r["delivered"], "assigned": r["assigned"]},
            )
        )
    if paid and remainder:
        ledger.transfer(
            reserve,
            ledger.module_account(ModuleAccount.DUST),
            remainder,
            kind=TxKind.EMISSION,
            memo=f"Epoch {epoch}: rounding remainder of checker rewards",
            meta={"epoch": epoch, "part": "dust"},
        )
    return paid, remainder if paid else 0, n_paid


def pay_community(epoch: int, amount: int, reserve: Account, lines: list) -> int:
    if amount <= 0:
        return 0
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    ledger.transfer(
        reserve,
        pool,
        amount,
        kind=TxKind.EMISSION,
        memo=f"Epoch {epoch}: community share",
        meta={"epoch": epoch, "part": "community"},
    )
    lines.append(
        SettlementLine(
            epoch=epoch,
            kind=LineKind.COMMUNITY,
            account=pool,
            amount=amount,
            reason="Community pool share of the emission",
        )
    )
    return amount
