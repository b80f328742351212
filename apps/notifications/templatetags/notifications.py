from django import template

from apps.notifications import services

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return {"show": False}
    return {"show": True, "unread": services.unread_count(user), "csp_nonce": context.get("csp_nonce", "")}
