import re

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from apps.core.models import Account, LedgerTransaction, TxKind
from apps.core.numbers import NumberError, parse_int
from apps.core.verify import verify_ledger

from . import queries

PAGE_SIZE = 25


def index(request):
    query = (request.GET.get("q") or "").strip()
    if query:
        # A height, an address, or a transaction hash.
        digits = query.removeprefix("#")
        try:
            return redirect("explorer:transaction", height=parse_int(digits, what="height"))
        except NumberError:
            if re.fullmatch(r"[0-9]+", digits):  # plain digits, only too many of them
                raise Http404("No transaction at that height.") from None
        if Account.objects.filter(address=query).exists():
            return redirect("explorer:account", address=query)
        tx = LedgerTransaction.objects.filter(hash=query.lower()).only("height").first()
        if tx:
            return redirect("explorer:transaction", height=tx.height)
        return redirect(f"{request.path}?accounts={query}")
    kind = request.GET.get("kind") or None
    if kind and kind not in TxKind.values:
        kind = None
    page = Paginator(queries.transactions(kind), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "kind": kind,
        "kinds": TxKind.choices,
        "summary": queries.summary(),
        "live": page.number == 1,
    }
    if request.htmx:
        return render(request, "explorer/index.html#tx-table", context)
    return render(request, "explorer/index.html", context)


def transaction(request, height: int):
    try:
        tx = queries.transaction_detail(height)
    except LedgerTransaction.DoesNotExist:
        raise Http404("No transaction at that height.") from None
    return render(request, "explorer/transaction.html", {"tx": tx})


def account(request, address: str):
    acct = get_object_or_404(Account.objects.select_related("owner"), address=address)
    page = Paginator(queries.account_history(acct), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "explorer/account.html", {"account": acct, "page": page})


def account_list(request):
    query = (request.GET.get("q") or "").strip()[:64]
    page = Paginator(queries.accounts(query), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "explorer/accounts.html", {"page": page, "q": query})


def verify(request):
    report = verify_ledger() if request.method == "POST" or request.GET.get("run") else None
    return render(request, "explorer/verify.html", {"report": report, "summary": queries.summary()})


def checkpoints(request):
    page = Paginator(queries.signed_checkpoints(), PAGE_SIZE).get_page(request.GET.get("page"))
    latest = page.object_list[0] if page.number == 1 and page.object_list else None
    return render(request, "explorer/checkpoints.html", {"page": page, "latest": latest})
