"""A node's or a checker's recent compute challenges, for their pages."""

from django import template

from ..models import ChallengeResult

register = template.Library()


@register.inclusion_tag("monitoring/_challenges.html")
def challenge_history(node=None, checker=None, limit: int = 10):
    rows = ChallengeResult.objects.select_related("report", "node", "checker").order_by("-id")
    if node is not None:
        rows = rows.filter(node=node)
    if checker is not None:
        rows = rows.filter(checker=checker)
    return {"challenges": list(rows[:limit]), "show": "checker" if node is not None else "node"}
