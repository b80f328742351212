import pytest

from apps.core.amounts import ath
from apps.core.models import GpuNode, NodeStatus
from apps.monitoring.models import NodeEpoch

from ..factories import UserFactory, fund, make_node


class Clock:
    """The current epoch, set by the test (real epochs are 60 s of wall time)."""

    def __init__(self):
        self.epoch = 10

    def __call__(self):
        return self.epoch


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("apps.core.epochs.current_number", c)
    return c


def online(node, health=1_000_000):
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE, health_score=health)
    node.refresh_from_db()
    return node


@pytest.fixture
def node(genesis):
    """One online 1x H100 at 2 ATH per GPU-hour in eu-west."""
    n, _ = make_node(name="fra-h100", price_ath="2")
    return online(n)


@pytest.fixture
def renter(genesis):
    u = UserFactory()
    from apps.accounts.services import open_wallet

    fund(open_wallet(u), ath(1_000))
    return u


def consensus(node, epoch, *, uptime=1_000_000, latency=20, valid=True, spec_ok=True):
    return NodeEpoch.objects.create(
        node=node,
        epoch=epoch,
        assigned=3,
        reports=3 if valid else 1,
        valid=valid,
        uptime_ppm=uptime if valid else None,
        latency_ms=latency if valid else None,
        spec_ok=spec_ok if valid else None,
        health_score=uptime if valid else None,
    )
