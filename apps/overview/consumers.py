from django.template.loader import render_to_string

from apps.core.events import LEDGER_GROUP
from apps.monitoring.live import OVERVIEW_GROUP
from apps.platform.consumers import CoalescedFragmentConsumer

from .queries import glance


class HomeConsumer(CoalescedFragmentConsumer):
    shared = True  # a public page: the same fragment for everyone
    min_interval = 2.0  # the landing page is the most visited: redraw at most every 2 s

    def groups_for(self):
        return [OVERVIEW_GROUP, LEDGER_GROUP]

    def render(self):
        return render_to_string("overview/_glance.html", {"g": glance()})
