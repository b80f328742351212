from django import template

from apps.core import parameters
from apps.core.amounts import localize_separators

register = template.Library()


@register.filter
def ppm(value):
    """Parts per million as a percentage, exactly: 123457 -> "12.3457%"."""
    if value is None or value == "":
        return "—"
    return localize_separators(parameters.definition("commission_max_change").format(int(value)))


@register.filter
def ppm_short(value):
    """Percent with at most one decimal, rounded down, for dense tables."""
    if value is None or value == "":
        return "—"
    tenths = int(value) // 1_000
    whole, frac = divmod(tenths, 10)
    return localize_separators(f"{whole:,}.{frac}%" if frac else f"{whole:,}%")


@register.simple_tag(takes_context=True)
def sort_url(context, key):
    request = context["request"]
    params = request.GET.copy()
    params["sort"] = key
    return f"?{params.urlencode()}"
