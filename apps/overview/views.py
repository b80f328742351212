from django.shortcuts import render

from .queries import glance

AREAS = [
    ("Marketplace", "marketplace:index", "Browse and rent verified GPUs, or let the scheduler match one."),
    ("Staking", "staking:index", "Delegate ATH to a checker by its record; claim rewards."),
    ("Governance", "governance:index", "Proposals, votes and the protocol's parameters."),
    ("Monitoring", "monitoring:index", "Live GPU and checker metrics from the agents."),
    ("Settlement", "settlement:index", "What every epoch paid, to whom, and why."),
    ("Explorer", "explorer:index", "Every ATH movement on a hash-chained public ledger."),
]


def home(request):
    return render(request, "overview/home.html", {"g": glance(), "areas": AREAS})
