"""Steps 3 and 5: collateral slashing for false specs, and checker
penalties for misreports and missed assignments (PROTOCOL sections 4, 5)."""

from django.db.models import Sum

from apps.core import bulk, ledger
from apps.core.models import Account, Bucket, CheckerNode, CheckerStatus, GpuNode, ModuleAccount, TxKind
from apps.monitoring.models import CheckerEpoch, NodeEpoch

from .models import LineKind, SettlementLine

PPM = 1_000_000


def slash_false_specs(epoch: int, p: dict, lines: list) -> int:
    """A node whose checkers agree its GPUs are not what it declared loses
    ``false_spec_slash`` of its required collateral, to the community pool,
    and is paused until topped up. Returns the amount slashed."""
    rows = NodeEpoch.objects.filter(epoch=epoch, valid=True, spec_ok=False).values_list("node_id", flat=True)
    nodes = list(GpuNode.objects.select_for_update().select_related("gpu_model").filter(pk__in=list(rows), collateral__gt=0))
    if not nodes:
        return 0
    wallets = dict(Account.objects.filter(owner_id__in={n.provider_id for n in nodes}).values_list("owner_id", "pk"))
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    legs, total = [], 0
    for node in nodes:
        amount = min(node.collateral, node.required_collateral * p["false_spec_slash"] // PPM)
        if not amount:
            continue
        legs.append(ledger.Leg(wallets[node.provider_id], Bucket.COLLATERAL, -amount))
        node.collateral -= amount
        node.paused = node.collateral < node.required_collateral
        total += amount
        lines.append(SettlementLine(
            epoch=epoch, kind=LineKind.FALSE_SPEC_SLASH, account_id=wallets[node.provider_id], node=node, amount=-amount,
            reason=f"{node.name}: checkers found GPUs other than the declared {node.gpu_count}x {node.gpu_model.name}",
        ))
    if total:
        legs.append(ledger.Leg(pool, Bucket.AVAILABLE, total))
        ledger.post(TxKind.SLASH, legs, memo=f"Epoch {epoch}: false-spec collateral slashes", meta={"epoch": epoch})
        bulk.update_fields(nodes, ["collateral", "paused"])
    return total


def checker_penalties(epoch: int, p: dict, lines: list) -> tuple[int, int]:
    """Misreports: ``jail_incorrect_reports`` or more incorrect reports within
    ``jail_window_epochs`` slash ``misreport_slash`` of the stake behind the
    checker and jail it. Missed assignments in ``missed_jail_epochs``
    consecutive epochs jail it (no slash: it earned nothing already).
    Returns (stake slashed, checkers jailed)."""
    from apps.staking import services as staking

    window_start = epoch - p["jail_window_epochs"] + 1
    offenders = (
        CheckerEpoch.objects.filter(epoch__gte=window_start, epoch__lte=epoch, checker__status=CheckerStatus.ACTIVE)
        .values("checker_id")
        .annotate(incorrect=Sum("incorrect"))
        .filter(incorrect__gte=p["jail_incorrect_reports"])
    )
    # Only checkers that misreported in this very epoch: one penalty per offence.
    this_epoch = set(CheckerEpoch.objects.filter(epoch=epoch, incorrect__gt=0).values_list("checker_id", flat=True))
    slashed, jailed = 0, 0
    for row in offenders:
        if row["checker_id"] not in this_epoch:
            continue
        checker = CheckerNode.objects.get(pk=row["checker_id"])
        reason = f"{row['incorrect']} incorrect reports in epochs {window_start}..{epoch}"
        event = staking.slash_checker(checker, p["misreport_slash"], epoch, reason, epoch=epoch)
        amount = event.total_amount
        slashed += amount
        staking.jail(checker, reason, epoch=epoch)
        jailed += 1
        lines.append(SettlementLine(epoch=epoch, kind=LineKind.CHECKER_SLASH, checker=checker, amount=-amount,
                                    reason=reason, details={"incorrect_in_window": row["incorrect"]}))

    streak = p["missed_jail_epochs"]
    recent = CheckerEpoch.objects.filter(epoch__gt=epoch - streak, epoch__lte=epoch, checker__status=CheckerStatus.ACTIVE)
    missed_epochs: dict[int, int] = {}
    for checker_id, assigned, delivered in recent.values_list("checker_id", "assigned", "delivered"):
        if delivered < assigned:
            missed_epochs[checker_id] = missed_epochs.get(checker_id, 0) + 1
    for checker_id, count in missed_epochs.items():
        if count < streak:
            continue
        checker = CheckerNode.objects.get(pk=checker_id)
        if checker.status != CheckerStatus.ACTIVE:
            continue
        reason = f"missed assignments in {streak} consecutive epochs"
        staking.jail(checker, reason, epoch=epoch)
        jailed += 1
        lines.append(SettlementLine(epoch=epoch, kind=LineKind.CHECKER_JAIL, checker=checker, amount=0, reason=reason))
    return slashed, jailed
