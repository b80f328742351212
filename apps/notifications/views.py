"""Notification pages: the list under the bell, the settings (channels per
event, e-mail address, webhook endpoints) and each endpoint's delivery log."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from apps.core.errors import DomainError

from . import services, signing
from .forms import EmailForm, EndpointForm
from .models import Channel, Event, Notification


@login_required
def index(request):
    if request.method == "POST":
        services.mark_read(request.user)
        return redirect("notifications:index")
    items = list(Notification.objects.filter(user=request.user, in_app=True)[:100])
    return render(request, "notifications/index.html", {"items": items})


@login_required
def settings_page(request):
    endpoint_form, email_form, status = EndpointForm(), EmailForm(initial={"email": request.user.email}), 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "preferences":
            chosen = {tuple(v.split("|", 1)) for v in request.POST.getlist("pref") if "|" in v}
            services.set_preferences(
                request.user, {(e, c) for e, c in chosen if e in Event.values and c in Channel.values}
            )
            messages.success(request, _("Preferences saved."))
            return redirect("notifications:settings")
        if action == "email":
            email_form = EmailForm(request.POST)
            if email_form.is_valid():
                services.set_email(request.user, email_form.cleaned_data["email"])
                messages.success(request, _("E-mail address saved."))
                return redirect("notifications:settings")
            status = 400
        if action == "endpoint":
            endpoint_form = EndpointForm(request.POST)
            if endpoint_form.is_valid():
                try:
                    endpoint = services.add_endpoint(
                        request.user, endpoint_form.cleaned_data["url"], endpoint_form.cleaned_data["description"]
                    )
                except DomainError as exc:
                    endpoint_form.add_error("url", str(exc))
                else:
                    messages.success(request, _("Endpoint added. Its signing secret is on its page."))
                    return redirect("notifications:endpoint", pk=endpoint.pk)
            status = 400
        if action not in ("preferences", "email", "endpoint"):
            messages.error(request, _("Unknown action."))
            status = 400
    prefs = services.preferences(request.user)
    matrix = [(value, label, [(c, prefs[(value, c)]) for c in Channel.values]) for value, label in Event.choices]
    return render(
        request,
        "notifications/settings.html",
        {
            "matrix": matrix,
            "channels": Channel.choices,
            "endpoint_form": endpoint_form,
            "email_form": email_form,
            "endpoints": request.user.webhook_endpoints.all(),
        },
        status=status,
    )


@login_required
def endpoint(request, pk):
    try:
        ep = services.endpoint_of(request.user, pk)
    except DomainError as exc:
        return render(request, "404.html", {"exception": str(exc)}, status=404)
    deliveries = ep.deliveries.select_related("notification").prefetch_related("log")[:50]
    return render(
        request,
        "notifications/endpoint.html",
        {
            "endpoint": ep,
            "deliveries": deliveries,
            "signature_header": signing.SIGNATURE_HEADER,
            "timestamp_header": signing.TIMESTAMP_HEADER,
        },
    )


@login_required
@require_POST
def endpoint_enable(request, pk):
    try:
        services.enable_endpoint(request.user, pk)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Endpoint enabled again."))
    return redirect("notifications:settings")


@login_required
@require_POST
def endpoint_remove(request, pk):
    try:
        services.remove_endpoint(request.user, pk)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Endpoint removed."))
    return redirect("notifications:settings")
