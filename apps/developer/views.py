"""The developer settings page: personal API tokens, and links to exports."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError

from . import exports, tokens
from .forms import TokenForm


@login_required
def developer(request):
    form, created = TokenForm(), None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            try:
                token, raw = tokens.issue(
                    request.user,
                    form.cleaned_data["name"],
                    form.cleaned_data["scopes"],
                    form.cleaned_data["expires_in_days"],
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                created = {"token": token, "raw": raw}
                form = TokenForm()
    return render(
        request,
        "developer/index.html",
        {
            "form": form,
            "created": created,
            "tokens": tokens.for_user(request.user),
            "exports": exports.KINDS,
        },
        status=400 if request.method == "POST" and form.errors else 200,
    )


@login_required
@require_POST
def revoke(request, pk):
    try:
        token = tokens.revoke(request.user, pk)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("developer:index")


@login_required
def export(request):
    """The page's export form: on to the API's streamed download."""
    kind = request.GET.get("kind", "")
    if kind not in dict(exports.KINDS):
        messages.error(request, _("Choose what to export."))
        return redirect("developer:index")
    query = request.GET.copy()
    query.pop("kind", None)
    return redirect(f"{reverse('api:developer-export', args=[kind])}?{query.urlencode()}")
