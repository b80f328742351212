"""The live ledger feed: the latest-transactions table, pushed on every
ledger change (coalesced; see ``apps.platform.consumers``)."""

from django.template.loader import render_to_string

from apps.core.events import LEDGER_GROUP
from apps.platform.consumers import CoalescedFragmentConsumer

from . import queries

MIN_INTERVAL = 1.0
LIVE_ROWS = 25


def render_feed() -> str:
    context = {
        "page": {"object_list": list(queries.transactions()[:LIVE_ROWS])},
        "summary": queries.summary(),
    }
    return render_to_string("explorer/_feed.html", context)


class LedgerFeedConsumer(CoalescedFragmentConsumer):
    shared = True  # a public page: the same fragment for everyone

    @property
    def min_interval(self):
        return MIN_INTERVAL  # read at call time so tests can shorten it

    def groups_for(self):
        return [LEDGER_GROUP]

    def render(self):
        return render_feed()
