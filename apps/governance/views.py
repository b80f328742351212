"""Governance pages. Thin: the rules live in ``services``."""

import re
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.services import open_wallet
from apps.core import epochs, ledger
from apps.core import parameters as params
from apps.core.models import ModuleAccount, ParameterChange
from apps.core.parameter_labels import shown
from apps.core.refusals import flash, refuse

from . import power_help, queries, services
from .forms import ParameterValuesForm, ProposalForm, SpendProposalForm
from .models import Proposal, ProposalKind, ProposalStatus

SOURCE_PROPOSAL = re.compile(r"^Proposal #(\d+)$")


def index(request):
    """Proposals, newest first, filtered by status."""
    status = request.GET.get("status") or ""
    proposals = Proposal.objects.select_related("proposer", "proposer__owner")
    if status in ProposalStatus.values:
        proposals = proposals.filter(status=status)
    else:
        status = ""
    counts = dict(Proposal.objects.values_list("status").annotate(n=Count("pk")).order_by())
    filters = [(s.value, s.label, counts.get(s.value, 0)) for s in ProposalStatus]
    page = Paginator(proposals, 20).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "filters": filters,
        "total": sum(counts.values()),
        "param_count": len(params.DEFINITIONS),
    }
    template = "governance/index.html#proposal-list" if request.htmx else "governance/index.html"
    return render(request, template, context)


@login_required
def new(request):
    return render(request, "governance/new.html", {"kinds": ProposalKind.choices})


@login_required
def create(request, kind):
    if kind not in ProposalKind.values:
        raise Http404
    wallet = open_wallet(request.user)
    values = params.current(epochs.current_number())
    form_class = SpendProposalForm if kind == ProposalKind.SPEND else ProposalForm
    data = request.POST if request.method == "POST" else None
    form = form_class(data, min_deposit=values["min_deposit"], available=wallet.available)
    param_form = ParameterValuesForm(data, current=values, prefix="p") if kind == ProposalKind.PARAMETERS else None
    status = 200
    if request.method == "POST":
        valid = form.is_valid() & (param_form is None or param_form.is_valid())
        if valid:
            data = form.cleaned_data
            try:
                proposal = services.create_proposal(
                    request.user,
                    kind=kind,
                    title=data["title"],
                    description=data["description"],
                    deposit=data["deposit"],
                    changes=param_form.cleaned_data["changes"] if param_form else None,
                    recipient_address=data.get("recipient"),
                    amount=data.get("amount"),
                )
            except services.GovernanceError as exc:
                refuse(form, exc)
            else:
                messages.success(request, _("Proposal #%(number)s is open for voting.") % {"number": proposal.pk})
                return redirect(proposal)
        status = 400
    context = {
        "kind": kind,
        "kind_label": ProposalKind(kind).label,
        "form": form,
        "param_form": param_form,
        "wallet": wallet,
        "pool": ledger.module_account(ModuleAccount.COMMUNITY_POOL) if kind == ProposalKind.SPEND else None,
    }
    return render(request, "governance/create.html", context, status=status)


def _proposal_context(request, proposal, vote_error=None):
    context = queries.tally_context(proposal, request.GET.get("voters") or 1)
    changes = []
    if proposal.kind == ProposalKind.PARAMETERS:
        now = params.current(epochs.current_number())
        for change in proposal.changes.all():
            p = params.definition(change.key)
            changes.append(
                {
                    "param": p,
                    "now": shown(p, now[change.key]),
                    "proposed": shown(p, change.value),
                    "bounds": f"{shown(p, p.minimum)} … {shown(p, p.maximum)}",
                }
            )
    context.update(
        {
            "changes": changes,
            "events": proposal.events.all(),
            "ends_at": services.voting_ends_at(proposal),
            "my_vote": services.vote_of(request.user, proposal),
            "my_power": services.power_of(request.user, proposal),
            "power_help": power_help.explain(request.user, proposal),
            "voting_open": proposal.is_open and epochs.current_number() < (proposal.voting_end_epoch or 0),
            "vote_error": vote_error,
            "pool": ledger.module_account(ModuleAccount.COMMUNITY_POOL)
            if proposal.kind == ProposalKind.SPEND
            else None,
            "live": proposal.is_open,
        }
    )
    return context


def proposal(request, pk):
    proposal = get_object_or_404(Proposal.objects.select_related("proposer", "recipient"), pk=pk)
    return render(request, "governance/proposal.html", _proposal_context(request, proposal))


@login_required
@require_POST
def vote(request, pk):
    proposal = get_object_or_404(Proposal, pk=pk)
    error = None
    try:
        services.cast_vote(
            request.user, proposal.pk, request.POST.get("choice", ""), request.POST.get("reason", "")[:1000]
        )
    except services.GovernanceError as exc:
        error = exc
    proposal.refresh_from_db()
    if not request.htmx:
        if error:
            flash(request, error)
        else:
            messages.success(request, _("Your vote is recorded."))
        return redirect(proposal)
    context = _proposal_context(request, proposal, vote_error=error)
    context["oob"] = True
    return render(request, "governance/_vote_response.html", context, status=error.status if error else 200)


def parameters(request):
    """Every protocol parameter: value in force, hard bounds, who may change
    it, and its history (with the proposal that made each change)."""
    now = epochs.current_number() if epochs.genesis_time() else 0
    values = params.current(now)
    history = ParameterChange.objects.order_by("key", "-effective_epoch", "-id")
    by_key = {key: list(rows) for key, rows in groupby(history, key=lambda r: r.key)}
    rows = [
        {
            "param": p,
            "value": shown(p, values[p.key]),
            "minimum": shown(p, p.minimum),
            "maximum": shown(p, p.maximum),
            "history": [
                {
                    "change": r,
                    "shown": shown(p, r.value),
                    "proposal": int(m.group(1)) if (m := SOURCE_PROPOSAL.match(r.source)) else None,
                    "pending": r.effective_epoch > now,
                }
                for r in by_key.get(p.key, [])
            ],
        }
        for p in params.DEFINITIONS.values()
    ]
    return render(request, "governance/parameters.html", {"rows": rows, "epoch": now})
