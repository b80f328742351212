from datetime import timedelta

from django.utils import timezone

from apps.monitoring import consensus, retention
from apps.monitoring.models import Heartbeat, NodeEpoch

from ..factories import make_node


def test_old_raw_telemetry_is_pruned_and_rollups_kept(genesis, settings):
    settings.TELEMETRY_RETENTION_EPOCHS = 10
    node, _ = make_node()
    now = timezone.now()
    for epoch in (1, 5, 12, 20):
        Heartbeat.objects.bulk_create(
            Heartbeat(
                node=node,
                at=now - timedelta(minutes=1),
                epoch=epoch,
                gpu_util=50,
                mem_used_mb=1,
                mem_total_mb=2,
                temperature_c=60,
                power_w=300,
            )
            for _ in range(3)
        )
    from apps.monitoring.models import Assignment

    from ..factories import make_checker

    checker, _ = make_checker()
    Assignment.objects.create(epoch=5, node=node, checker=checker)
    consensus.finalize(5)  # rolls epoch 5 up
    removed = retention.prune(current_epoch=21)
    assert removed["heartbeats"] == 6  # epochs 1 and 5 are older than 21 - 10
    assert sorted(set(Heartbeat.objects.values_list("epoch", flat=True))) == [12, 20]
    rollup = NodeEpoch.objects.get(epoch=5, node=node)
    assert (rollup.samples, rollup.gpu_util_avg, rollup.temperature_max) == (3, 50, 60)


def test_old_assignments_and_their_rounds_are_pruned_together(genesis, settings):
    from apps.monitoring import assignment
    from apps.monitoring.models import Assignment, AssignmentRound

    from ..factories import make_checker

    settings.REPORT_RETENTION_EPOCHS = 5
    make_node()
    make_checker()
    for epoch in (2, 9):
        assignment.fix_round(epoch)
    removed = retention.prune(current_epoch=10)
    assert (removed["assignments"], removed["assignment_rounds"]) == (1, 1)
    assert list(AssignmentRound.objects.values_list("epoch", flat=True)) == [9]
    assert list(Assignment.objects.values_list("epoch", flat=True)) == [9]
    assert assignment.verify(9)["ok"]
