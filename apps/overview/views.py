from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from .queries import glance

AREAS = [
    (_("Marketplace"), "marketplace:index", _("Browse and rent verified GPUs, or let the scheduler match one.")),
    (_("Staking"), "staking:index", _("Delegate ATH to a checker by its record; claim rewards.")),
    (_("Governance"), "governance:index", _("Proposals, votes and the protocol's parameters.")),
    (_("Monitoring"), "monitoring:index", _("Live GPU and checker metrics from the agents.")),
    (_("Settlement"), "settlement:index", _("What every epoch paid, to whom, and why.")),
    (_("Explorer"), "explorer:index", _("Every ATH movement on a hash-chained public ledger.")),
]


def home(request):
    return render(request, "overview/home.html", {"g": glance(), "areas": AREAS})
