"""A node's telemetry facts for the pages that show a node."""

from django import template

from .. import queries

register = template.Library()


@register.simple_tag
def last_heartbeat(node):
    """``{% last_heartbeat node as seen %}``: when its newest kept sample was taken."""
    return queries.last_heartbeat(node.pk)
