from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.core.models import Entry
from apps.core.ratelimit import client_ip, hit

from . import services
from .forms import SendForm, SignUpForm


def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:wallet")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome! Your wallet is ready.")
        return redirect("accounts:wallet")
    return render(request, "registration/signup.html", {"form": form})


def _wallet_context(request, send_form=None):
    wallet = services.open_wallet(request.user)
    entries = Entry.objects.filter(account=wallet).select_related("tx").order_by("-tx__height", "-seq")
    page = Paginator(entries, 20).get_page(request.GET.get("page"))
    return {
        "wallet": wallet,
        "faucet": services.faucet_status(wallet),
        "page": page,
        "send_form": send_form or SendForm(),
    }


@login_required
def wallet(request):
    template = "accounts/wallet.html#wallet-panel" if request.htmx else "accounts/wallet.html"
    return render(request, template, _wallet_context(request))


@login_required
@require_POST
def faucet(request):
    allowed, retry = hit("faucet", str(request.user.pk), *FAUCET_CLICKS)
    if not allowed:
        messages.error(request, f"Too many faucet requests. Try again in {retry // 60 + 1} minutes.")
        if request.htmx:
            return render(request, "accounts/wallet.html#wallet-panel", _wallet_context(request), status=429)
        return redirect("accounts:wallet")
    try:
        services.claim_faucet(request.user)
        messages.success(request, "Faucet funds received.")
    except services.WalletError as exc:
        messages.error(request, str(exc))
    if request.htmx:
        return render(request, "accounts/wallet.html#wallet-panel", _wallet_context(request))
    return redirect("accounts:wallet")


@login_required
@require_POST
def send(request):
    form = SendForm(request.POST)
    if form.is_valid():
        try:
            tx = services.send(
                request.user, form.cleaned_data["to_address"], form.cleaned_data["amount"], form.cleaned_data["memo"]
            )
            messages.success(request, f"Sent. Transaction #{tx.height}.")
            form = None
        except services.WalletError as exc:
            form.add_error(None, str(exc))
    status = 200 if form is None else 400
    template = "accounts/wallet.html#wallet-panel" if request.htmx else "accounts/wallet.html"
    return render(request, template, _wallet_context(request, form), status=status)


LOGIN_ATTEMPTS = (10, 15 * 60)  # per address and username, per 15 minutes
FAUCET_CLICKS = (10, 60 * 60)  # per user per hour (the daily claim limit is separate)


class LoginView(auth_views.LoginView):
    """Django's log-in, with attempts limited per client address and username."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = (request.POST.get("username") or "")[:150].lower()
        allowed, retry = hit("login", f"{client_ip(request)}:{username}", *LOGIN_ATTEMPTS)
        if not allowed:
            form = self.get_form()
            form.errors.clear()
            form.add_error(None, f"Too many log-in attempts. Try again in {retry // 60 + 1} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)
