"""Marketplace pages. Thin: rules live in ``rentals``, ``billing``,
``matching``, ``providers`` and ``onboarding``."""

import shlex

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.services import open_wallet
from apps.core import epochs, parameters
from apps.core.amounts import AmountError, display_uath, format_uath, parse_uath
from apps.core.errors import NotFound
from apps.core.models import GpuModel, GpuNode, Region
from apps.core.numbers import parse_int
from apps.core.refusals import flash, refuse
from apps.monitoring import queries as monitoring
from apps.settlement import queries as settlement_queries

from . import catalogue, matching, providers, queries, rentals, workload_spec
from .billing import replacement_requirements, settled_summary
from .forms import AmountForm, CatalogueForm, MatchForm, NodeForm, RentForm
from .models import Rental, RentalCharge, RentalMode, RentalStatus, Workload
from .onboarding import NodeSpec, OnboardingError, register_node, required_collateral
from .workload_templates import BY_SLUG, TEMPLATES

TOKEN_SESSION_KEY = "marketplace_new_token"


def _epoch_seconds():
    return parameters.get("epoch_seconds")


# --- Renting ----------------------------------------------------------------


def index(request):
    form = CatalogueForm(request.GET or None)
    filters = form.values() if request.GET else {}
    page, rows, near = catalogue.page(filters, request.GET.get("page"), request.GET.get("cursor"))
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "near": near,
        "filters": filters,
        "sort": filters.get("sort") or "price",
    }
    template = (
        "marketplace/index.html#results" if request.htmx and not request.htmx.boosted else "marketplace/index.html"
    )
    return render(request, template, context)


def _rent_form_initial(request, node):
    initial = {}
    for key in ("hours", "region", "mode", "image", "template"):
        if request.GET.get(key):
            initial[key] = request.GET[key]
    if "hours" not in initial:
        initial["hours"] = 1
    initial.setdefault(
        "escrow",
        format_uath(
            rentals.price_per_epoch(node.price_per_gpu_hour, node.gpu_count, _epoch_seconds()) * 60, unit=False
        ).replace(",", ""),
    )
    return initial


def _node_context(request, node, form=None) -> dict:
    """The node page: the one a visitor opens and the one a refused rent answers with."""
    holder = rentals.holder(node)
    form = form if form is not None else RentForm(initial=_rent_form_initial(request, node))
    return {
        "node": node,
        "series": monitoring.node_series(node, epochs_back=48),
        "form": form,
        "workload_fields": [form[name] for name in RentForm.WORKLOAD_FIELDS],
        "holder": holder,
        "mine": holder is not None and holder.renter_id == request.user.pk,
        "per_epoch": rentals.price_per_epoch(node.price_per_gpu_hour, node.gpu_count, _epoch_seconds()),
        "epoch_seconds": _epoch_seconds(),
        "hourly": node.price_per_gpu_hour * node.gpu_count,
        "own": node.provider_id == request.user.pk,
        "templates": TEMPLATES,
    }


def node_detail(request, pk):
    node = get_object_or_404(GpuNode.objects.select_related("gpu_model", "region", "provider__wallet"), pk=pk)
    return render(request, "marketplace/node.html", _node_context(request, node))


def _quoted_price(request) -> int:
    """The price per epoch the confirm page showed; -1 (never the price) if it is unreadable."""
    try:
        return parse_uath(request.POST.get("quoted_price_per_epoch", ""), allow_zero=True)
    except AmountError:
        return -1


@login_required
@require_POST
def rent(request, pk):
    """Two steps on one URL: the form posts here and gets the confirm page
    with the exact cost; the confirm page posts back with ``confirm`` and the
    quoted price, and only then is anything escrowed."""
    node = get_object_or_404(GpuNode.objects.select_related("gpu_model", "region"), pk=pk)
    form = RentForm(request.POST)
    if not form.is_valid():
        return render(request, "marketplace/node.html", _node_context(request, node, form), status=400)
    data = form.cleaned_data
    n_epochs = rentals.hours_to_epochs(data["hours"], _epoch_seconds()) if data["mode"] == RentalMode.RESERVED else None
    region = Region.objects.filter(code=data.get("region")).first() if data.get("region") else None
    try:
        q = rentals.quote(request.user, node, mode=data["mode"], epochs_=n_epochs, escrow=data.get("escrow"))
        rental = None
        if request.POST.get("confirm") == "1":
            rental = rentals.rent(
                request.user,
                node.pk,
                mode=data["mode"],
                workload=form.workload,
                epochs_=n_epochs,
                escrow=data.get("escrow"),
                auto_replace=data["auto_replace"],
                renter_region=region,
                expected_price_per_epoch=_quoted_price(request),
            )
    except rentals.RentalError as exc:
        status = refuse(form, exc)
        return render(request, "marketplace/node.html", _node_context(request, node, form), status=status)
    if rental is None:
        return render(
            request,
            "marketplace/confirm.html",
            {
                "node": node,
                "q": q,
                "form": form,
                "data": data,
                "region": region,
                "workload": form.workload,
                "template": BY_SLUG.get(form.workload.template),
                "command_text": shlex.join(form.workload.command or []),
                "env": workload_spec.public_env(form.workload.env),
            },
        )
    messages.success(
        request,
        _("You have %(node)s. %(escrow)s is in escrow for it.")
        % {"node": node.name, "escrow": display_uath(rental.escrow_total)},
    )
    return redirect(rental)


def match(request):
    form = MatchForm(request.GET or None)
    result = None
    if request.GET and form.is_valid():
        d = form.cleaned_data
        req = matching.Requirements(
            gpu_model=GpuModel.objects.filter(slug=d.get("gpu")).first() if d.get("gpu") else None,
            min_vram_gb=d.get("min_vram"),
            gpu_count=d["count"],
            region=Region.objects.filter(code=d.get("region")).first() if d.get("region") else None,
            max_price_per_gpu_hour=d.get("max_price"),
            max_latency_ms=d.get("max_latency"),
            duration_hours=d["hours"],
            preference=d["preference"],
            renter=request.user if request.user.is_authenticated else None,
        )
        result = matching.match(req, limit=5)
        seconds = _epoch_seconds()
        n = rentals.hours_to_epochs(d["hours"], seconds)
        for c in result["candidates"]:
            c.total_cost = rentals.price_per_epoch(c.node.price_per_gpu_hour, c.node.gpu_count, seconds) * n
            c.rent_query = f"hours={d['hours']}&region={d.get('region') or ''}"
    template = "marketplace/match.html#match-results" if request.htmx else "marketplace/match.html"
    return render(request, template, {"form": form, "result": result})


@login_required
def my_rentals(request):
    qs = Rental.objects.filter(renter=request.user).select_related("node", "node__gpu_model", "node__region")
    page = Paginator(qs, 20).get_page(request.GET.get("page"))
    return render(request, "marketplace/rentals.html", {"page": page, "now": epochs.current_number()})


def _my_rental(request, pk) -> Rental:
    try:
        return queries.my_rental(request.user, pk)
    except NotFound:
        raise Http404 from None


def _rental_context(request, rental):
    now = epochs.current_number()
    seconds = rental.epoch_seconds
    _, refund_now = rentals.unserved_refund(rental, now) if rental.is_active else (None, 0)
    ctx = {
        "rental": rental,
        "node": rental.node,
        "now": now,
        "summary": settled_summary(rental),
        "charges": rental.charges.order_by("-epoch")[:30],
        "refund_now": refund_now,
        "epochs_left": max(0, rental.end_epoch - now) if rental.is_active else 0,
        "time_left_min": max(0, rental.end_epoch - now) * seconds // 60 if rental.is_active else 0,
        "progress": min(100, max(0, (now - rental.start_epoch) * 100 // max(1, rental.epochs_total))),
        "wallet": open_wallet(request.user),
        "topup_form": AmountForm(),
        "can_move": rentals.can_move(rental),
        "replaced_by": getattr(rental, "replaced_by", None) if rental.status == RentalStatus.REPLACED else None,
    }
    if ctx["can_move"]:
        req = replacement_requirements(rental, rental.node)
        req.max_cost_per_hour = None  # offered, not imposed: the renter may pay a difference
        ctx["offers"] = matching.match(req, limit=3)["candidates"]
    return ctx


@login_required
def rental_detail(request, pk):
    rental = _my_rental(request, pk)
    ctx = _rental_context(request, rental)
    ctx["series"] = monitoring.node_series(rental.node)
    ctx["reports"] = monitoring.recent_reports(node=rental.node, limit=8)
    ctx["epochs"] = monitoring.node_epochs(rental.node)
    ctx.update(queries.workload_context(rental))
    return render(request, "marketplace/rental.html", ctx)


@login_required
def rental_escrow(request, pk):
    rental = _my_rental(request, pk)
    return render(request, "marketplace/rental.html#escrow", _rental_context(request, rental))


def _run_action(request, action, obj, refusal) -> None:
    """``action(obj)``, a service call that returns what to tell the person;
    a ``refusal`` it raises is flashed instead."""
    try:
        text = action(obj)
    except refusal as exc:
        flash(request, exc)
    else:
        messages.success(request, text)


def _rental_action(request, pk, action):
    """``action(rental)`` (see :func:`_run_action`), then back to the rental's page."""
    rental = _my_rental(request, pk)
    _run_action(request, action, rental, rentals.RentalError)
    return redirect(rental)


@login_required
@require_POST
def rental_end(request, pk):
    if request.POST.get("review"):
        # The page's button asks for the review; its confirm button posts without it.
        rental = _my_rental(request, pk)
        try:
            review = rentals.preview_end(request.user, rental.pk)
        except rentals.RentalError as exc:
            flash(request, exc)
            return redirect(rental)
        return render(request, "marketplace/end_review.html", {"review": review, "rental": rental})

    def act(rental):
        refund = rentals.end_rental(request.user, rental.pk)
        return _("Rental ended. %(refund)s of unserved time is back in your wallet.") % {"refund": display_uath(refund)}

    return _rental_action(request, pk, act)


@login_required
@require_POST
def rental_top_up(request, pk):
    form = AmountForm(request.POST)

    def act(rental):
        if not form.is_valid():
            raise rentals.RentalError("; ".join(form.errors["amount"]))
        rental = rentals.top_up(request.user, rental.pk, form.cleaned_data["amount"])
        return _("Topped up: the rental now runs through epoch %(epoch)s.") % {"epoch": rental.end_epoch - 1}

    return _rental_action(request, pk, act)


@login_required
@require_POST
def rental_replace(request, pk):
    rental = _my_rental(request, pk)
    try:
        node_id = parse_int(request.POST.get("node", ""), minimum=1, what="node")
    except ValueError:
        messages.error(request, _("Pick a replacement node."))
        return redirect(rental)
    try:
        new = rentals.replace(request.user, rental.pk, node_id)
    except rentals.RentalError as exc:
        flash(request, exc)
        return redirect(rental)
    messages.success(
        request, _("Moved to %(node)s from epoch %(epoch)s.") % {"node": new.node.name, "epoch": new.start_epoch}
    )
    return redirect(new)


# --- Providers --------------------------------------------------------------


@login_required
def provider_dashboard(request):
    ctx = providers.dashboard(request.user)
    ctx["now"] = epochs.current_number()
    ctx["collateral_form"] = AmountForm()
    ctx["floor"] = parameters.current()  # the empty state states the hardware floor
    return render(request, "marketplace/provider.html", ctx)


@login_required
def provider_new(request):
    wallet = open_wallet(request.user)
    form = NodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                node, token = register_node(request.user, NodeSpec.from_input(form.cleaned_data, price="price"))
            except OnboardingError as exc:
                refuse(form, exc)
            else:
                # Shown once on the next page, then forgotten: only its hash is stored.
                request.session[TOKEN_SESSION_KEY] = {"node": node.pk, "token": token}
                return redirect("marketplace:provider-token", pk=node.pk)
        status = 400
    ctx = {"form": form, "wallet": wallet, "floor": parameters.current(), "preview": _collateral_preview(form, wallet)}
    return render(request, "marketplace/provider_new.html", ctx, status=status)


def _collateral_preview(form, wallet):
    data = form.data if form.is_bound else {}
    try:
        model = GpuModel.objects.get(pk=data.get("gpu_model")) if data.get("gpu_model") else GpuModel.objects.first()
        count = max(1, min(64, parse_int(data.get("gpu_count") or "1", what="GPU count")))
    except (GpuModel.DoesNotExist, ValueError):
        return None
    if model is None:
        return None
    need = required_collateral(model, count)
    return {
        "model": model,
        "count": count,
        "need": need,
        "available": wallet.available,
        "enough": wallet.available >= need,
        "coefficient": parameters.get("collateral_coefficient"),
    }


@login_required
def provider_collateral_preview(request):
    form = NodeForm(request.GET)
    return render(
        request,
        "marketplace/provider_new.html#preview",
        {"preview": _collateral_preview(form, open_wallet(request.user)), "floor": parameters.current()},
    )


@login_required
def provider_token(request, pk):
    node = get_object_or_404(GpuNode, pk=pk, provider=request.user)
    stash = request.session.pop(TOKEN_SESSION_KEY, None)
    token = stash["token"] if stash and stash.get("node") == node.pk else None
    api_url = request.build_absolute_uri("/").rstrip("/")
    return render(request, "marketplace/provider_token.html", {"node": node, "token": token, "api_url": api_url})


def _my_node(request, pk) -> GpuNode:
    try:
        return queries.my_node(request.user, pk)
    except NotFound:
        raise Http404 from None


@login_required
def provider_node(request, pk):
    node = _my_node(request, pk)
    charges = RentalCharge.objects.filter(node=node).select_related("rental").order_by("-epoch", "-id")[:30]
    holder = rentals.holder(node)
    workload = Workload.objects.filter(rental=holder).first() if holder else None
    return render(
        request,
        "marketplace/provider_node.html",
        {
            "node": node,
            "charges": charges,
            "holder": holder,
            "holder_workload": workload,
            # Names only: the renter's values are theirs (and secrets are never shown).
            "holder_env": [{"name": e["name"], "secret": e["secret"]} for e in workload.env] if workload else [],
            "now": epochs.current_number(),
            "withdraw_at": providers.withdraw_available_at(node),
            "collateral_form": AmountForm(),
            "slashes": node.collateral_slashes.order_by("-epoch", "-id")[:20],
            **settlement_queries.node_rewards(request.user, node),
        },
    )


def _provider_action(request, pk, action):
    """``action(node)`` (see :func:`_run_action`), then back to ``next`` or the node's page."""
    node = _my_node(request, pk)
    _run_action(request, action, node, providers.ProviderError)
    nxt = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        nxt = reverse("marketplace:provider-node", args=[node.pk])  # never redirect off-site
    return redirect(nxt)


@login_required
@require_POST
def provider_top_up(request, pk):
    form = AmountForm(request.POST)

    def act(node):
        if not form.is_valid():
            raise providers.ProviderError("; ".join(form.errors["amount"]))
        node = providers.top_up_collateral(request.user, node.pk, form.cleaned_data["amount"])
        if not node.paused:
            return _("Collateral of %(node)s is now %(amount)s and it is no longer paused.") % {
                "node": node.name,
                "amount": display_uath(node.collateral),
            }
        return _("Collateral of %(node)s is now %(amount)s; it stays paused below %(required)s.") % {
            "node": node.name,
            "amount": display_uath(node.collateral),
            "required": display_uath(node.required_collateral),
        }

    return _provider_action(request, pk, act)


@login_required
@require_POST
def provider_withdraw(request, pk):
    def act(node):
        amount = providers.withdraw_collateral(request.user, node.pk)
        return _("%(amount)s of collateral is back in your available balance.") % {"amount": display_uath(amount)}

    return _provider_action(request, pk, act)


@login_required
@require_POST
def provider_offline(request, pk):
    def act(node):
        node = providers.take_offline(request.user, node.pk)
        return (
            f"{node.name} is offline. Its collateral can be withdrawn from epoch "
            f"{providers.withdraw_available_at(node)}."
        )

    return _provider_action(request, pk, act)
