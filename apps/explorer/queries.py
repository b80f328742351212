"""Read-side queries shared by the explorer pages and the REST API, so both
always show the same numbers."""

from django.db.models import Count, Prefetch, Q

from apps.core.models import Account, ChainHead, Entry, LedgerTransaction, SignedCheckpoint


def transactions(kind: str | None = None):
    qs = LedgerTransaction.objects.annotate(leg_count=Count("entries")).order_by("-height")
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def transaction_detail(height: int) -> LedgerTransaction:
    entries = Entry.objects.select_related("account", "account__owner").order_by("seq")
    return LedgerTransaction.objects.prefetch_related(Prefetch("entries", queryset=entries)).get(height=height)


def account_history(account: Account):
    return Entry.objects.filter(account=account).select_related("tx").order_by("-tx__height", "-seq")


def accounts(query: str = ""):
    qs = Account.objects.select_related("owner").order_by("id")
    if query:
        # Never by login name: searching one would tie it to its address.
        qs = qs.filter(Q(address__icontains=query) | Q(public_name__icontains=query) | Q(label__icontains=query))
    return qs


def chain_head() -> ChainHead | None:
    return ChainHead.objects.filter(pk=1).first()


def summary() -> dict:
    head = chain_head()
    modules = list(Account.objects.modules().order_by("id"))
    return {
        "height": head.height if head else 0,
        "head_hash": head.hash if head else "",
        "supply": head.supply if head else 0,
        "modules": modules,
        "wallets": Account.objects.filter(kind="user").count(),
    }


def signed_checkpoints():
    """Signed checkpoints, newest first (see ``apps.core.checkpoints``)."""
    return SignedCheckpoint.objects.order_by("-epoch")
