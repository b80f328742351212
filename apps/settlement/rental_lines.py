"""Settlement lines for what a failed rental epoch moved: the renter's
refund, the SLA credit and the downtime slash taken from the provider's
collateral (docs/rules.md §7, step 2 and 3).

Billing posts these amounts and keeps one charge row per rental epoch and
one slash row per collateral taking; this turns them into lines, with the
inputs an auditor needs to recompute each amount (the locked price, the
parameter in force, the consensus the verdict rests on, the posting's
height), so a refund's reason is not left in a ledger memo alone."""

from apps.core.models import Account, Bucket, LedgerTransaction, TxKind
from apps.marketplace.models import ChargeOutcome, CollateralSlash, RentalCharge, SlashKind

from .models import LineKind, SettlementLine


def rental_lines(epoch: int, p: dict, since_height: int = 0) -> list[SettlementLine]:
    charges = list(
        RentalCharge.objects.filter(epoch=epoch, outcome=ChargeOutcome.FAILED)
        .select_related("rental", "node")
        .order_by("id")
    )
    slashes = list(CollateralSlash.objects.filter(epoch=epoch).select_related("node", "rental").order_by("id"))
    people = {c.rental.renter_id for c in charges} | {s.provider_id for s in slashes}
    wallets = dict(Account.objects.filter(owner_id__in=people).values_list("owner_id", "pk"))
    lines = []
    for c in charges:
        lines.append(
            SettlementLine(
                epoch=epoch,
                kind=LineKind.RENTAL_REFUND,
                account_id=wallets.get(c.rental.renter_id),
                node=c.node,
                amount=c.refunded,
                reason=f"Rental #{c.rental_id} on {c.node.name}: {c.reason}"[:300],
                details={
                    "rental": c.rental_id,
                    "charge": c.charge,
                    "refunded": c.refunded,
                    "sla_credit": c.sla_credit,
                    "uptime_ppm": c.uptime_ppm,
                    "latency_ms": c.latency_ms,
                    "workload_ppm": c.workload_ppm,
                    "sla_credit_ppm": p["sla_credit"],
                    "tx_height": c.tx_height,
                },
            )
        )
    for s in slashes:
        kind = LineKind.SLA_CREDIT if s.kind == SlashKind.SLA_CREDIT else LineKind.DOWNTIME_SLASH
        details = {"rental": s.rental_id, "tx_height": s.tx_height, "amount": s.amount}
        if kind == LineKind.SLA_CREDIT:
            details["sla_credit_ppm"] = p["sla_credit"]
            details["charge"] = s.rental.price_per_epoch if s.rental else None
        else:
            details["downtime_slash_ppm"] = p["downtime_slash"]
            details["required_collateral"] = s.node.required_collateral
        lines.append(
            SettlementLine(
                epoch=epoch,
                kind=kind,
                account_id=wallets.get(s.provider_id),
                node=s.node,
                amount=-s.amount,
                reason=s.reason[:300],
                details=details,
            )
        )
    # A rental's last epoch returns what is left of its escrow: posted by
    # billing in this settlement (after ``since_height``), with no node.
    returns = (
        LedgerTransaction.objects.filter(height__gt=since_height, kind=TxKind.RENTAL_REFUND, meta__epoch=epoch)
        .exclude(meta__has_key="node")
        .prefetch_related("entries")
        .order_by("height")
    )
    for tx in returns:
        leg = next(e for e in tx.entries.all() if e.bucket == Bucket.AVAILABLE)
        lines.append(
            SettlementLine(
                epoch=epoch,
                kind=LineKind.ESCROW_RETURN,
                account_id=leg.account_id,
                amount=leg.amount,
                reason=tx.memo[:300],
                details={"rental": tx.meta.get("rental"), "tx_height": tx.height},
            )
        )
    return lines
