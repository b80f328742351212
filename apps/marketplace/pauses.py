"""Recording a node's pause and resume (``GpuNode.paused``), wherever its
collateral changes: the flag alone says only what is true now."""

from apps.core import epochs
from apps.core.models import GpuNode

from .models import NodePause


def refresh(nodes: list[GpuNode], was_paused: dict[int, bool], reason: str, *, epoch: int | None = None) -> None:
    """Set each node's ``paused`` from its collateral (in memory: the caller
    saves the node) and record every change against ``was_paused``."""
    e = epochs.current_number() if epoch is None else epoch
    rows = []
    for node in nodes:
        node.paused = node.collateral < node.required_collateral
        if node.paused != was_paused.get(node.pk, node.paused):
            rows.append(
                NodePause(
                    node=node,
                    epoch=e,
                    paused=node.paused,
                    reason=reason[:200],
                    collateral=node.collateral,
                    required_collateral=node.required_collateral,
                )
            )
    NodePause.objects.bulk_create(rows)
