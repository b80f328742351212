"""Reads shared by the proposal page and its live socket."""

import json

from django.core.paginator import Paginator

from apps.core import parameters as params
from apps.core.amounts import localize_separators

from . import services
from .models import Choice, Vote

VOTERS_PER_PAGE = 25


def voters_page(proposal, number):
    votes = Vote.objects.filter(proposal=proposal).select_related("voter", "voter__owner").order_by("-power", "id")
    return Paginator(votes, VOTERS_PER_PAGE).get_page(number)


def tally_context(proposal, voters_page_number=1) -> dict:
    """What the live parts of a proposal page need (also pushed over WebSocket)."""
    result = services.tally(proposal)

    def fmt(ppm):  # exact ppm -> "33.4%" ("33,4%" in Indonesian)
        return localize_separators(params.DEFINITIONS["quorum"].format(ppm))

    chart = {
        "text": {
            "turnout": fmt(result.turnout_ppm),
            "quorum": fmt(result.quorum),
            "veto_share": fmt(result.veto_ppm),
            "veto": fmt(result.veto),
            "yes_share": fmt(result.yes_ppm),
            "threshold": fmt(result.threshold),
        },
        "turnout": result.turnout_ppm,
        "quorum": result.quorum,
        "veto_share": result.veto_ppm,
        "veto": result.veto,
        "yes_share": result.yes_ppm,
        "threshold": result.threshold,
        "quorum_reached": result.quorum_reached,
        "vetoed": result.vetoed,
        "threshold_reached": result.threshold_reached,
    }
    return {
        "proposal": proposal,
        "tally": result,
        # For the chart script; a data attribute, so no inline script is needed.
        "chart_json": json.dumps(chart),
        "voters": voters_page(proposal, voters_page_number),
        "choices": Choice,
    }
