from django import template
from django.utils.translation import gettext

from apps.core import parameters
from apps.core.amounts import localize_separators

from .. import markdown

register = template.Library()


@register.filter
def render_markdown(text):
    return markdown.render(text)


@register.filter
def ppm_pct(value):
    """Parts per million as a percentage, exactly ("334000" -> "33.4%")."""
    if value is None or value == "":
        return "—"
    return localize_separators(parameters.DEFINITIONS["quorum"].format(int(value)))


@register.filter
def param_format(value, key):
    return localize_separators(parameters.definition(key).format(int(value)))


@register.filter
def param_label(key):
    return gettext(parameters.definition(key).label)
