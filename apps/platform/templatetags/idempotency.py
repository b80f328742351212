"""``{% idempotency_field %}``: a fresh key in each rendered form, so a double
submit or a resent POST runs once (``apps.core.idempotency``)."""

import uuid

from django import template
from django.utils.html import format_html

from apps.core.idempotency import FORM_FIELD

register = template.Library()


@register.simple_tag
def idempotency_field():
    return format_html('<input type="hidden" name="{}" value="{}">', FORM_FIELD, uuid.uuid4().hex)
