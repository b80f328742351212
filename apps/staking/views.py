"""Staking pages. Thin: forms parse, services decide, queries read."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.accounts.services import open_wallet
from apps.core import epochs, parameters
from apps.core.amounts import ath, display_uath, localize_separators, parse_ath
from apps.core.models import CheckerNode, CheckerStatus
from apps.core.numbers import NumberError, parse_int
from apps.core.refusals import flash, refuse
from apps.monitoring.models import CheckerEpoch

from . import queries, services
from .forms import ActivateForm, ClaimForm, CommissionForm, DelegateForm, RedelegateForm, UndelegateForm
from .models import CommissionChange, JailRecord, RewardPeriod, SlashEvent, SlashImpact, StakingState, UnbondingEntry
from .services import compounding


def _epoch_context():
    now = epochs.current_number()
    return {"epoch": now, "epoch_seconds": parameters.get("epoch_seconds")}


def index(request):
    sort = request.GET.get("sort") or "stake"
    if sort not in queries.SORTS:
        sort = "stake"
    status = request.GET.get("status") or ""
    if status not in queries.STATUSES:
        status = ""
    q = (request.GET.get("q") or "").strip()[:80]
    try:
        amount = parse_ath(request.GET.get("amount") or "1000")
    except ValueError:
        amount = ath(1_000)
    amount = min(amount, ath(1_000_000_000))
    rows = queries.checker_rows(sort=sort, status=status, q=q)
    queries.expected_per_day(rows, amount)
    context = {
        # Checkers taking no delegations (jailed, inactive) are listed apart and never ranked among the rest.
        "rows": [r for r in rows if r.takes_delegations],
        "others": [r for r in rows if not r.takes_delegations],
        "amount": amount,
        "apr_window": queries.apr_window_epochs(),
        "apr_window_hours": queries.apr_window_epochs() * parameters.get("epoch_seconds") // 3600,
        "sort": sort,
        "status": status,
        "q": q,
        "sorts": [(k, v[0]) for k, v in queries.SORTS.items()],
        "statuses": list(queries.STATUSES.items()),
        "window": queries.WINDOW,
        "min_delegation": parameters.get("min_delegation"),
        **_epoch_context(),
    }
    if request.user.is_authenticated:
        wallet = open_wallet(request.user)
        context["wallet"] = wallet
        context["pending_total"] = queries.pending_rewards(wallet)
    if request.htmx and request.htmx.target == "checker-table":
        return render(request, "staking/index.html#checker-table", context)
    return render(request, "staking/index.html", context)


def _checker_context(request, checker, **forms):
    ctx = {
        "checker": checker,
        "row": queries.checker_row(checker),
        "state": StakingState.objects.filter(checker=checker).first(),
        "periods": RewardPeriod.objects.filter(checker=checker).order_by("-period")[:15],
        "slashes": SlashEvent.objects.filter(checker=checker)[:20],
        "jails": JailRecord.objects.filter(checker=checker)[:20],
        "commission_changes": CommissionChange.objects.filter(checker=checker)[:10],
        "min_delegation": parameters.get("min_delegation"),
        "unbonding_epochs": parameters.get("unbonding_epochs"),
        **_epoch_context(),
    }
    ctx["report_epochs"] = CheckerEpoch.objects.filter(checker=checker).order_by("-epoch")[:10]
    if request.user.is_authenticated:
        wallet = open_wallet(request.user)
        held = queries.delegated_to(wallet, checker)
        ctx.update(
            wallet=wallet,
            held=held,
            pending=queries.pending_rewards(wallet, checker),
            delegate_form=forms.get("delegate_form") or DelegateForm(initial={"checker": checker.pk}),
            undelegate_form=forms.get("undelegate_form") or UndelegateForm(initial={"checker": checker.pk}),
            redelegate_form=forms.get("redelegate_form")
            or RedelegateForm(initial={"src": checker.pk}, exclude=checker),
            is_operator=checker.operator_id == request.user.pk,
            auto_compound=compounding.is_on(request.user, checker),
        )
    return ctx


def checker_detail(request, pk: int):
    checker = get_object_or_404(CheckerNode.objects.select_related("operator", "region"), pk=pk)
    return render(request, "staking/checker.html", _checker_context(request, checker))


def _refuse(request, checker, status=400, **forms):
    return render(request, "staking/checker.html", _checker_context(request, checker, **forms), status=status)


def _stake_action(request, checker, form, form_name: str, act, preview=None):
    """Run ``act(cleaned_data)`` (the service call; it returns the success
    message) when ``form`` is valid, then go to the staking page. A refusal
    shows the checker page again with the form, the reason on its amount.
    The page's forms ask for a review first (``review``): ``preview`` states
    in numbers what the action would do, and the review's button posts the
    same fields without it."""
    if form.is_valid() and preview is not None and request.POST.get("review"):
        try:
            review = preview(form.cleaned_data)
        except services.StakingError as exc:
            refuse(form, exc, "amount")
        else:
            return render(
                request,
                "staking/review.html",
                {"checker": checker, "review": review, "form": form, "action": form_name.removesuffix("_form")},
            )
    if form.is_valid():
        try:
            messages.success(request, act(form.cleaned_data))
            return redirect("staking:me")
        except services.StakingError as exc:
            refuse(form, exc, "amount")
    return _refuse(request, checker, **{form_name: form})


@login_required
@require_POST
def delegate(request):
    checker = _posted_checker(request, "checker")

    def act(data):
        services.delegate(request.user, data["checker"], data["amount"])
        return _("Delegated %(amount)s to %(checker)s.") % {
            "amount": display_uath(data["amount"]),
            "checker": checker.name,
        }

    def preview(data):
        return services.preview_delegate(request.user, data["checker"], data["amount"])

    return _stake_action(request, checker, DelegateForm(request.POST), "delegate_form", act, preview)


@login_required
@require_POST
def undelegate(request):
    checker = _posted_checker(request, "checker")

    def act(data):
        entry = services.undelegate(request.user, checker, data["amount"])
        return _("Undelegating %(amount)s from %(checker)s: available again from epoch %(epoch)s.") % {
            "amount": display_uath(entry.amount),
            "checker": checker.name,
            "epoch": entry.maturity_epoch,
        }

    def preview(data):
        return services.preview_undelegate(request.user, checker, data["amount"])

    return _stake_action(request, checker, UndelegateForm(request.POST), "undelegate_form", act, preview)


@login_required
@require_POST
def redelegate(request):
    checker = _posted_checker(request, "src")

    def act(data):
        services.redelegate(request.user, checker, data["dst"], data["amount"])
        return _("Moved %(amount)s from %(src)s to %(dst)s.") % {
            "amount": display_uath(data["amount"]),
            "src": checker.name,
            "dst": data["dst"].name,
        }

    def preview(data):
        return services.preview_redelegate(request.user, checker, data["dst"], data["amount"])

    return _stake_action(
        request, checker, RedelegateForm(request.POST, exclude=checker), "redelegate_form", act, preview
    )


@login_required
@require_POST
def claim(request):
    form = ClaimForm(request.POST)
    checker = form.cleaned_data["checker"] if form.is_valid() else None
    try:
        paid = services.claim_rewards(request.user, checker)
        messages.success(request, _("Claimed %(amount)s of rewards.") % {"amount": display_uath(paid)})
    except services.StakingError as exc:
        flash(request, exc)
    return redirect(request.POST.get("next") if _safe_next(request) else reverse("staking:me"))


@login_required
@require_POST
def auto_compound(request):
    checker = _posted_checker(request, "checker")
    on = request.POST.get("on") == "1"
    try:
        services.set_auto_compound(request.user, checker, on)
    except services.StakingError as exc:
        flash(request, exc)
    else:
        if on:
            messages.success(
                request,
                _("Auto-compound is on: each settled epoch, your rewards from %(name)s are delegated back to it.")
                % {"name": checker.name},
            )
        else:
            messages.success(request, _("Auto-compound is off for %(name)s.") % {"name": checker.name})
    return redirect("staking:checker", pk=checker.pk)


def _safe_next(request) -> bool:
    nxt = request.POST.get("next") or ""
    return nxt.startswith("/staking/") and "//" not in nxt


def _posted_checker(request, field) -> CheckerNode:
    try:
        pk = parse_int(request.POST.get(field) or "", minimum=1, what="checker id")
    except NumberError:
        raise Http404("No such checker.") from None
    return get_object_or_404(CheckerNode, pk=pk)


@login_required
def me(request):
    wallet = open_wallet(request.user)
    now = epochs.current_number()
    seconds = parameters.get("epoch_seconds")
    entries = list(
        UnbondingEntry.objects.filter(delegator=wallet, matured_epoch__isnull=True)
        .select_related("checker")
        .order_by("maturity_epoch", "id")
    )
    for entry in entries:
        entry.epochs_left = max(0, entry.maturity_epoch - now)
        try:
            entry.matures_at = epochs.epoch(entry.maturity_epoch).start
        except LookupError:
            entry.matures_at = None
    matured = UnbondingEntry.objects.filter(delegator=wallet, matured_epoch__isnull=False).select_related("checker")[
        :10
    ]
    positions = queries.positions(wallet, epoch=now)
    context = {
        "wallet": wallet,
        "positions": positions,
        "pending_total": sum(p.pending_reward for p in positions),
        "bonded_total": sum(p.amount for p in positions),
        "entries": entries,
        "matured": matured,
        "impacts": SlashImpact.objects.filter(delegator=wallet).select_related("slash", "slash__checker", "checker")[
            :30
        ],
        "redelegations": wallet.redelegations.select_related("src", "dst").order_by("-id")[:20],
        "claims": Paginator(wallet.reward_claims.select_related("checker", "tx").order_by("-id"), 10).get_page(1),
        "chart": {
            "stake": queries.stake_history(wallet),
            "rewards": queries.reward_history(wallet),
            "pending": str(sum(p.pending_reward for p in positions)),
        },
        "epoch": now,
        "epoch_seconds": seconds,
    }
    if request.htmx and request.htmx.target == "positions":
        return render(request, "staking/me.html#positions", context)
    return render(request, "staking/me.html", context)


def _operator_context(request, **forms):
    checkers = list(CheckerNode.objects.filter(operator=request.user).order_by("id"))
    for c in checkers:
        c.form = forms.get(f"commission_{c.pk}") or CommissionForm(initial={"rate": f"{c.commission_rate / 10_000:g}"})
        c.state = StakingState.objects.filter(checker=c).first()
        c.periods = RewardPeriod.objects.filter(checker=c).order_by("-period")[:5]
        c.can_unjail = c.status == CheckerStatus.JAILED and (c.jailed_until_epoch or 0) <= epochs.current_number()
    return {
        "checkers": checkers,
        "activate_form": forms.get("activate_form") or ActivateForm(),
        "min_stake": parameters.get("min_checker_stake"),
        "max_change": parameters.get("commission_max_change"),
        "wallet": open_wallet(request.user),
        **_epoch_context(),
    }


@login_required
def operator(request):
    return render(request, "staking/operator.html", _operator_context(request))


@login_required
@require_POST
def activate(request):
    form = ActivateForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        try:
            checker = services.activate_checker(
                request.user,
                d["name"],
                d["self_stake"],
                commission_rate=d["commission_rate"],
                commission_max_rate=d["commission_max_rate"],
            )
            messages.success(
                request,
                _("%(checker)s is %(status)s.")
                % {"checker": checker.name, "status": str(checker.get_status_display()).lower()},
            )
            return redirect("staking:operator")
        except services.StakingError as exc:
            refuse(form, exc)
    return render(request, "staking/operator.html", _operator_context(request, activate_form=form), status=400)


@login_required
@require_POST
def commission(request, pk: int):
    checker = get_object_or_404(CheckerNode, pk=pk)
    form = CommissionForm(request.POST)
    status = 400
    if form.is_valid():
        try:
            services.set_commission(request.user, checker, form.cleaned_data["rate"])
            messages.success(
                request,
                _("%(checker)s's commission is now %(rate)s.")
                % {"checker": checker.name, "rate": localize_separators(services.pct(form.cleaned_data["rate"]))},
            )
            return redirect("staking:operator")
        except services.StakingError as exc:
            status = refuse(form, exc, "rate")
            if status == 403:
                return render(request, "staking/forbidden.html", {"message": str(exc)}, status=status)
    return render(
        request, "staking/operator.html", _operator_context(request, **{f"commission_{pk}": form}), status=status
    )


@login_required
@require_POST
def unjail(request, pk: int):
    checker = get_object_or_404(CheckerNode, pk=pk)
    try:
        checker = services.unjail(request.user, checker)
        messages.success(
            request,
            _("%(checker)s is out of jail: %(status)s.")
            % {"checker": checker.name, "status": str(checker.get_status_display()).lower()},
        )
    except services.StakingError as exc:
        if exc.status == 403:
            return render(request, "staking/forbidden.html", {"message": str(exc)}, status=exc.status)
        flash(request, exc)
    return redirect("staking:operator")
