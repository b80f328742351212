from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import ledger, parameters
from apps.core.amounts import ath
from apps.core.models import ChainHead
from apps.monitoring import assignment
from apps.monitoring.models import CheckerReport

from ..factories import UserFactory, fund, make_node


def set_epoch(n: int) -> None:
    """Move the clock's origin so that epoch ``n`` has just begun."""
    length = parameters.get("epoch_seconds")
    ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now() - timedelta(seconds=length * n + 1))


def report(epoch, node, checker, **values):
    # An honest agent's requests are answered over connections it opened:
    # by default every connection answered.
    values.setdefault("task_ppm", values.get("uptime_ppm", 1_000_000))
    answered = values["task_ppm"] > 0
    fields = {
        "probes": 10,
        "uptime_ppm": 1_000_000,
        "latency_ms": 30,
        "spec_ok": True,
        # An honest agent sees GPU facts only in an answer.
        "gpu_name_seen": node.gpu_model.name if answered else "",
        "gpu_count_seen": node.gpu_count if answered else 0,
        **values,
    }
    return CheckerReport.objects.create(
        epoch=epoch, node=node, checker=checker, payload_hash="h", signature="s", **fields
    )


@pytest.fixture
def small_network(db):
    """Three nodes and three checkers (10,000 ATH self-stake each, 5% commission),
    activated in epoch 5; epoch 6 is the one the tests settle."""
    from apps.staking import services as staking

    parameters.ensure_defaults()
    ledger.genesis()
    parameters.apply({"emission_per_epoch": ath(1_000)}, effective_epoch=0, source="test")
    set_epoch(5)
    a, _ = make_node(gpu="h100-80gb", count=1, name="A")
    b, _ = make_node(gpu="a100-80gb", count=2, name="B")
    c, _ = make_node(gpu="rtx-4090", count=4, name="C")
    checkers = []
    for i in range(3):
        operator = UserFactory(username=f"op{i}")
        fund(operator.wallet, ath(10_000))
        checkers.append(staking.activate_checker(operator, f"checker-{i}", ath(10_000), commission_rate=50_000))
    set_epoch(6)
    assignment.fix_round(6)
    return {"nodes": (a, b, c), "checkers": checkers}
