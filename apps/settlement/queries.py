"""Read side of settlement, shared by pages and API."""

from django.db.models import Q, Sum

from apps.core.models import CheckerNode, GpuNode
from apps.platform.charts import epoch_axis

from .models import EpochSettlement, LineKind, NetworkIncident, SettlementLine


def chart_data(limit: int = 60) -> dict:
    rows = list(EpochSettlement.objects.order_by("-epoch")[:limit])[::-1]
    top = (
        SettlementLine.objects.filter(kind__in=[LineKind.PROVIDER_REWARD, LineKind.CHECKER_REWARD])
        .values("account__address", "account__public_name")
        .annotate(total=Sum("amount"))
        .order_by("-total")[:10]
    )
    return {
        "epochs": [r.epoch for r in rows],
        "epoch_axis": epoch_axis([r.epoch for r in rows]),
        # ATH with six decimals as strings: charts only, never arithmetic.
        "providers": [r.provider_emission // 1_000_000 for r in rows],
        "checkers": [r.checker_emission // 1_000_000 for r in rows],
        "community": [r.community_emission // 1_000_000 for r in rows],
        "breaches": [r.breaches for r in rows],
        # Public: a chosen name or the address, never a login name.
        "top_names": [t["account__public_name"] or _short(t["account__address"]) for t in top],
        "top_totals": [t["total"] // 1_000_000 for t in top],
    }


def _short(address: str | None) -> str:
    return f"{address[:10]}…{address[-4:]}" if address else "—"


def lines_for_user(user):
    """Lines about this person's own wallet, nodes and checkers. A checker
    they only delegate to is left out: its line is the checker's whole reward
    or slash, not theirs (their own share is in ``statement.statement``)."""
    wallet_id = getattr(getattr(user, "wallet", None), "pk", None)
    node_ids = GpuNode.objects.filter(provider=user).values("pk")
    checker_ids = CheckerNode.objects.filter(operator=user).values("pk")
    return (
        SettlementLine.objects.filter(Q(account_id=wallet_id) | Q(node_id__in=node_ids) | Q(checker_id__in=checker_ids))
        .select_related("node", "checker", "account")
        .order_by("-epoch", "kind", "id")
        .distinct()
    )


def recent_incidents(epochs_back: int = 30, limit: int = 3) -> list:
    """Network incidents among the last ``epochs_back`` settled epochs, newest
    first: what the status pages show (docs/rules.md §5)."""
    latest = EpochSettlement.objects.order_by("-epoch").values_list("epoch", flat=True).first()
    if latest is None:
        return []
    return list(NetworkIncident.objects.filter(epoch__gt=latest - epochs_back).order_by("-epoch")[:limit])


def capacity_rewards(user, node: GpuNode | None = None):
    """The settlement lines that paid this provider's nodes their share of
    each epoch's emission (docs/rules.md §7, step 4)."""
    lines = SettlementLine.objects.filter(kind=LineKind.PROVIDER_REWARD, node__provider=user)
    return lines.filter(node=node) if node is not None else lines


def node_rewards(user, node: GpuNode, limit: int = 30) -> dict:
    lines = capacity_rewards(user, node)
    return {
        "rewards": list(lines.order_by("-epoch", "-id")[:limit]),
        "rewards_total": lines.aggregate(s=Sum("amount"))["s"] or 0,
    }
