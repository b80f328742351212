"""A provider's side after onboarding: collateral top-up and withdrawal,
taking a node offline, and the numbers of the provider dashboard.

Withdrawal follows docs/rules.md §3: only once the node is offline and
the unbonding period has passed since it went offline, and only when no
rental on it still has epochs to settle (they may owe an SLA credit).
"""

from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from apps.accounts.services import lock_funds, open_wallet
from apps.core import epochs, ledger, parameters
from apps.core.amounts import format_uath
from apps.core.errors import DomainError, NotFound
from apps.core.models import Bucket, GpuNode, NodeStatus, TxKind
from apps.platform.charts import epoch_axis

# Marketplace reads settlement only through settlement.queries (which imports no marketplace module).
from apps.settlement import queries as settlement_queries

from . import pauses
from .models import CollateralSlash, Rental, RentalCharge, RentalStatus


class ProviderError(DomainError):
    """A provider action that was refused; the message says why."""


class NotYourNode(ProviderError, NotFound):
    """Another person's node is, to this person, no node at all."""


def _locked_node(user, node_id: int) -> GpuNode:
    try:
        node = GpuNode.objects.select_for_update().get(pk=node_id)
    except GpuNode.DoesNotExist:
        raise NotYourNode("No such node.") from None
    if node.provider_id != getattr(user, "pk", None):
        raise NotYourNode("No such node.")
    return node


@ledger.serialised
def top_up_collateral(user, node_id: int, amount: int) -> GpuNode:
    if not isinstance(amount, int) or amount <= 0:
        raise ProviderError(gettext("Top up by more than zero."))
    with transaction.atomic():
        node = _locked_node(user, node_id)
        if node.status == NodeStatus.OFFLINE:
            raise ProviderError(
                gettext("%(name)s is offline; its collateral can only be withdrawn.") % {"name": node.name}
            )
        lock_funds(
            user,
            Bucket.COLLATERAL,
            amount,
            ProviderError,
            kind=TxKind.COLLATERAL_LOCK,
            memo=f"Collateral top-up for node {node.name}",
            meta={"node": node.pk},
        )
        node.collateral += amount
        pauses.refresh([node], {node.pk: node.paused}, "collateral topped up")
        node.save(update_fields=["collateral", "paused"])
        return node


def unsettled_rentals(node: GpuNode):
    return Rental.objects.filter(node=node, settled_through__lt=F("end_epoch") - 1)


@ledger.serialised
def take_offline(user, node_id: int) -> GpuNode:
    with transaction.atomic():
        node = _locked_node(user, node_id)
        if node.status == NodeStatus.OFFLINE:
            raise ProviderError(gettext("%(name)s is already offline.") % {"name": node.name})
        now = epochs.current_number()
        busy = Rental.objects.filter(node=node, status=RentalStatus.ACTIVE, end_epoch__gt=now).first()
        if busy is not None:
            raise ProviderError(
                # end_epoch is exclusive: the rental's last epoch is the one before.
                gettext(
                    "%(name)s is rented through epoch %(last)s (the rental ends when epoch %(end_epoch)s begins); "
                    "it can go offline then."
                )
                % {"name": node.name, "last": busy.end_epoch - 1, "end_epoch": busy.end_epoch}
            )
        node.status = NodeStatus.OFFLINE
        node.status_changed_at = timezone.now()
        node.offline_since_epoch = now
        node.save(update_fields=["status", "status_changed_at", "offline_since_epoch"])
        return node


def withdraw_available_at(node: GpuNode) -> int | None:
    """The epoch from which the collateral can be withdrawn (None while online)."""
    if node.status != NodeStatus.OFFLINE or node.offline_since_epoch is None:
        return None
    return node.offline_since_epoch + parameters.get("unbonding_epochs")


@ledger.serialised
def withdraw_collateral(user, node_id: int) -> int:
    with transaction.atomic():
        node = _locked_node(user, node_id)
        if node.status != NodeStatus.OFFLINE:
            raise ProviderError(
                gettext("Take %(name)s offline first; collateral is released after the unbonding period.")
                % {"name": node.name}
            )
        ready = withdraw_available_at(node)
        now = epochs.current_number()
        if now < ready:
            raise ProviderError(
                ngettext(
                    "%(name)s's collateral unbonds until epoch %(ready)s (now %(now)s); %(left)s epoch to go.",
                    "%(name)s's collateral unbonds until epoch %(ready)s (now %(now)s); %(left)s epochs to go.",
                    ready - now,
                )
                % {
                    "name": node.name,
                    "ready": ready,
                    "now": now,
                    "left": ready - now,
                }
            )
        if unsettled_rentals(node).exists():
            raise ProviderError(
                gettext("A rental on %(name)s still has epochs to settle; try after the next settlement.")
                % {"name": node.name}
            )
        amount = node.collateral
        if amount <= 0:
            raise ProviderError(gettext("%(name)s has no collateral left to withdraw.") % {"name": node.name})
        ledger.move(
            open_wallet(user),
            Bucket.COLLATERAL,
            Bucket.AVAILABLE,
            amount,
            kind=TxKind.COLLATERAL_RELEASE,
            memo=f"Collateral released for node {node.name}",
            meta={"node": node.pk},
            actor=user,
        )
        node.collateral = 0
        node.save(update_fields=["collateral"])
        return amount


def dashboard(user) -> dict:
    nodes = list(
        GpuNode.objects.filter(provider=user)
        .select_related("gpu_model", "region")
        .annotate(
            served=Count("rentals", distinct=True),
            renting=Count("rentals", filter=Q(rentals__status=RentalStatus.ACTIVE), distinct=True),
        )
        .order_by("id")
    )
    earned = dict(RentalCharge.objects.filter(provider=user).values_list("node_id").annotate(s=Sum("provider_amount")))
    rewards = settlement_queries.capacity_rewards(user)
    rewarded = dict(rewards.values_list("node_id").annotate(s=Sum("amount")))
    for node in nodes:
        node.earned = earned.get(node.pk, 0) or 0
        node.rewarded = rewarded.get(node.pk, 0) or 0
        node.withdraw_at = withdraw_available_at(node)
    # Rental earnings and capacity rewards, per epoch, the last 60 epochs
    # with either.
    by_epoch: dict[int, dict] = {}
    for r in (
        RentalCharge.objects.filter(provider=user)
        .values("epoch")
        .annotate(earned=Sum("provider_amount"), credits=Sum("sla_credit"))
        .order_by("-epoch")[:60]
    ):
        by_epoch[r["epoch"]] = {"earned": r["earned"] or 0, "credits": r["credits"] or 0, "rewards": 0}
    for epoch, amount in rewards.values_list("epoch").annotate(s=Sum("amount")).order_by("-epoch")[:60]:
        by_epoch.setdefault(epoch, {"earned": 0, "credits": 0, "rewards": 0})["rewards"] = amount or 0
    per_epoch = [{"epoch": e, **by_epoch[e]} for e in sorted(by_epoch)[-60:]]
    slashes = CollateralSlash.objects.filter(provider=user).select_related("node").order_by("-epoch", "-id")[:50]
    totals = RentalCharge.objects.filter(provider=user).aggregate(
        earned=Sum("provider_amount"), fees=Sum("fee"), credits=Sum("sla_credit")
    )
    wallet = open_wallet(user)
    return {
        "nodes": nodes,
        "wallet": wallet,
        "earnings_uath": [(r["epoch"], r["earned"], r["credits"], r["rewards"]) for r in per_epoch],
        "earnings": {
            "epochs": [r["epoch"] for r in per_epoch],
            "epoch_axis": epoch_axis([r["epoch"] for r in per_epoch]),
            # ATH as decimal strings for the chart: exact, and Plotly parses them.
            "earned": [format_uath(r["earned"], unit=False).replace(",", "") for r in per_epoch],
            "rewards": [format_uath(r["rewards"], unit=False).replace(",", "") for r in per_epoch],
            "credits": [format_uath(r["credits"], unit=False).replace(",", "") for r in per_epoch],
        },
        "slashes": slashes,
        "slashed_total": CollateralSlash.objects.filter(provider=user).aggregate(s=Sum("amount"))["s"] or 0,
        "totals": {**{k: v or 0 for k, v in totals.items()}, "rewards": rewards.aggregate(s=Sum("amount"))["s"] or 0},
        "collateral_total": sum(n.collateral for n in nodes),
        "required_total": sum(n.required_collateral for n in nodes if n.status != NodeStatus.OFFLINE),
        "rentals_served": sum(n.served for n in nodes),
    }
