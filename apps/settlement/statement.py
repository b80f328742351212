"""A person's own rewards and penalties: what reached or left their wallet,
not the totals of the checkers they delegate to. A delegator's slash is
their own share of it (``SlashImpact``), their rewards are what was paid to
them or is waiting to be claimed, and a renter's rental charges and refunds
sit beside them (docs/rules.md §4, §6, §7)."""

from django.db.models import Sum

from apps.accounts.services import open_wallet
from apps.core.models import Bucket, Entry, TxKind
from apps.marketplace.models import RentalCharge
from apps.staking import queries as staking_queries
from apps.staking.models import SlashImpact

# Ledger postings on a wallet that are a reward, a refund or a penalty (not a
# move between the person's own buckets, a transfer or a faucet claim).
OWN_KINDS = (TxKind.REWARD, TxKind.RENTAL_SETTLE, TxKind.RENTAL_REFUND, TxKind.SLASH)


def statement(user) -> dict:
    wallet = open_wallet(user)
    slashes = list(
        SlashImpact.objects.filter(delegator=wallet)
        .select_related("slash", "slash__checker", "checker")
        .order_by("-slash__epoch", "-id")[:50]
    )
    entries = (
        Entry.objects.filter(account=wallet, tx__kind__in=OWN_KINDS)
        .exclude(bucket=Bucket.ESCROWED)  # escrow to charge is in the rental lines below
        .select_related("tx")
        .order_by("-tx__height", "-seq")
    )
    charges = list(
        RentalCharge.objects.filter(rental__renter=user).select_related("rental", "node").order_by("-epoch", "-id")[:50]
    )
    rewards_paid = (
        Entry.objects.filter(account=wallet, tx__kind=TxKind.REWARD, amount__gt=0).aggregate(s=Sum("amount"))["s"] or 0
    )
    slashed = SlashImpact.objects.filter(delegator=wallet).aggregate(s=Sum("amount"))["s"] or 0
    rental_totals = RentalCharge.objects.filter(rental__renter=user).aggregate(
        charged=Sum("charge"), refunded=Sum("refunded"), credits=Sum("sla_credit")
    )
    return {
        "wallet": wallet,
        "slashes": slashes,
        "entries": entries,
        "charges": charges,
        "totals": {
            "rewards_paid": rewards_paid,
            "rewards_pending": staking_queries.pending_rewards(wallet),
            "slashed": slashed,
            "rental_charged": rental_totals["charged"] or 0,
            "rental_refunded": rental_totals["refunded"] or 0,
            "sla_credits": rental_totals["credits"] or 0,
        },
    }
