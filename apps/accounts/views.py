from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.models import Entry
from apps.core.refusals import flash, refuse
from apps.platform.ratelimit import hit

from . import public_name, services, throttle
from .forms import LoginForm, PublicNameForm, SendForm, SignUpForm


def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:wallet")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            throttle.check_signup(request)
        except throttle.Refused as exc:
            form.add_error(None, str(exc))
            return render(request, "registration/signup.html", {"form": form}, status=429)
        user = form.save()
        login(request, user, backend="apps.accounts.backends.ThrottledModelBackend")
        messages.success(request, _("Welcome! Your wallet is ready."))
        return redirect("accounts:wallet")
    return render(request, "registration/signup.html", {"form": form})


def _wallet_context(request, send_form=None):
    wallet = services.open_wallet(request.user)
    entries = Entry.objects.filter(account=wallet).select_related("tx").order_by("-tx__height", "-seq")
    page = Paginator(entries, 20).get_page(request.GET.get("page"))
    from apps.marketplace.queries import wallet_rental_parts  # marketplace builds on accounts

    wallet_rental_parts(request.user, page.object_list)
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
        messages.error(
            request, _("Too many faucet requests. Try again in %(minutes)s minutes.") % {"minutes": retry // 60 + 1}
        )
        if request.htmx:
            return render(request, "accounts/wallet.html#wallet-panel", _wallet_context(request), status=429)
        return redirect("accounts:wallet")
    status = 200
    try:
        throttle.claim_faucet(request)
        messages.success(request, _("Faucet funds received."))
    except services.WalletError as exc:
        flash(request, exc)  # the panel itself answers normally, with the message in it
    except throttle.Refused as exc:
        messages.error(request, str(exc))
        status = 429
    if request.htmx:
        return render(request, "accounts/wallet.html#wallet-panel", _wallet_context(request), status=status)
    return redirect("accounts:wallet")


@login_required
@require_POST
def send(request):
    form = SendForm(request.POST)
    review = None
    if form.is_valid() and request.POST.get("review"):
        # The page's form asks for the review step; its confirm button posts without it.
        try:
            review = services.preview_send(request.user, form.cleaned_data["to_address"], form.cleaned_data["amount"])
            review["memo"] = form.cleaned_data["memo"]
        except services.WalletError as exc:
            refuse(form, exc)
        template = "accounts/wallet.html#wallet-panel" if request.htmx else "accounts/wallet.html"
        context = _wallet_context(request, form)
        context["send_review"] = review
        return render(request, template, context, status=200 if review else 400)
    if form.is_valid():
        try:
            tx = services.send(
                request.user, form.cleaned_data["to_address"], form.cleaned_data["amount"], form.cleaned_data["memo"]
            )
            messages.success(request, _("Sent. Transaction #%(height)s.") % {"height": tx.height})
            form = None
        except services.WalletError as exc:
            refuse(form, exc)
    status = 200 if form is None else 400
    template = "accounts/wallet.html#wallet-panel" if request.htmx else "accounts/wallet.html"
    return render(request, template, _wallet_context(request, form), status=status)


FAUCET_CLICKS = (10, 60 * 60)  # per user per hour (the daily claim limit is separate)


class LoginView(auth_views.LoginView):
    """Django's log-in; the limits on attempts are in the authentication
    backend (``apps.accounts.throttle``), shared with the admin's log-in."""

    redirect_authenticated_user = True
    authentication_form = LoginForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if getattr(self.request, "login_refused", None) is not None:
            response.status_code = 429
        return response


def admin_login(request, extra_context=None):
    """The admin site's log-in, with the same limits and a 429 when refused."""
    from django.contrib import admin

    response = admin.site.login(request, extra_context)
    if getattr(request, "login_refused", None) is not None:
        response.status_code = 429
    return response


@login_required
def public_profile(request):
    """Choose, change or clear the name public pages show for your wallet."""
    wallet = services.open_wallet(request.user)
    form = PublicNameForm(request.POST or None, initial={"public_name": wallet.public_name or ""})
    if request.method == "POST" and form.is_valid():
        try:
            wallet = public_name.set_public_name(request.user, form.cleaned_data["public_name"])
        except public_name.NameRefused as exc:
            form.add_error("public_name", str(exc))
        else:
            if wallet.public_name:
                messages.success(request, _("Public pages now show your wallet as %s.") % wallet.public_name)
            else:
                messages.success(request, _("Public pages now show your wallet by its address only."))
            return redirect("accounts:public_profile")
    return render(request, "accounts/public_profile.html", {"form": form, "wallet": wallet})
