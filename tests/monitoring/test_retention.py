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
                at=now - timedelta(minutes=epoch, seconds=5 * i),
                epoch=epoch,
                gpu_util=50,
                mem_used_mb=1,
                mem_total_mb=2,
                temperature_c=60,
                power_w=300,
            )
            for i in range(3)
        )
    from apps.monitoring.models import Assignment

    from ..factories import make_checker

    checker, _ = make_checker()
    Assignment.objects.create(epoch=5, node=node, checker=checker)
    consensus.finalize(1)
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
        consensus.finalize(epoch)
    removed = retention.prune(current_epoch=10)
    assert (removed["assignments"], removed["assignment_rounds"]) == (1, 1)
    assert list(AssignmentRound.objects.values_list("epoch", flat=True)) == [9]
    assert list(Assignment.objects.values_list("epoch", flat=True)) == [9]
    assert assignment.verify(9)["ok"]


def test_pruning_keeps_what_settlement_still_needs(genesis, settings):
    """An epoch past every retention window whose consensus is not computed
    yet (the scheduler was down) keeps its heartbeats, reports' assignments
    and round: settling it later rolls up and judges exactly what arrived;
    once computed, the next prune removes them."""
    from apps.monitoring import assignment
    from apps.monitoring.models import Assignment, AssignmentRound

    from ..factories import make_checker

    settings.TELEMETRY_RETENTION_EPOCHS = 3
    settings.REPORT_RETENTION_EPOCHS = 3
    node, _ = make_node()
    make_checker()
    now = timezone.now()
    for epoch in (2, 4):
        assignment.fix_round(epoch)
        Heartbeat.objects.bulk_create(
            Heartbeat(
                node=node,
                at=now - timedelta(minutes=epoch, seconds=i),
                epoch=epoch,
                gpu_util=40 + 2 * i,
                mem_used_mb=1,
                mem_total_mb=2,
                temperature_c=60,
                power_w=300,
            )
            for i in range(4)
        )
    consensus.finalize(4)
    removed = retention.prune(current_epoch=20)
    assert removed == {
        "heartbeats": 4,
        "heartbeat_partitions": 0,  # none made (on PostgreSQL the DEFAULT partition holds the samples)
        "reports": 0,
        "assignments": 1,
        "assignment_rounds": 1,
    }
    assert set(Heartbeat.objects.values_list("epoch", flat=True)) == {2}
    assert list(AssignmentRound.objects.values_list("epoch", flat=True)) == [2]
    assert assignment.verify(2)["ok"]

    consensus.finalize(2)  # settled late: rolls up all four samples
    rollup = NodeEpoch.objects.get(epoch=2, node=node)
    assert (rollup.samples, rollup.gpu_util_avg) == (4, 43)
    assert retention.prune(current_epoch=20)["heartbeats"] == 4
    assert not Heartbeat.objects.exists() and not Assignment.objects.exists()
