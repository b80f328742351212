"""Setting up simulated agents: which nodes and checkers the simulator
drives, their (fresh) tokens and their endpoints on this machine, and the
leases its nodes are asked to run. The demo's nodes on this machine
(``local_nodes``) have real agents of their own: the simulator never takes
them over."""

from django.db import transaction

from apps.core import bulk
from apps.core.models import CHECKED_STATUSES, AgentToken, CheckerNode, CheckerStatus, GpuNode
from apps.marketplace import rentals
from apps.marketplace.models import Rental, RentalStatus, WorkloadState

from . import local_nodes
from .simulator import SimChecker, SimNode


def adopt_nodes(limit: int | None = None, statuses=CHECKED_STATUSES, ids=None):
    """Take over the agents of existing nodes: issue each a fresh token (the
    simulator is their provider's agent now)."""
    nodes = GpuNode.objects.filter(status__in=statuses).exclude(pk__in=local_nodes.ids()).order_by("id")
    if ids is not None:
        nodes = nodes.filter(pk__in=ids)
    if limit:
        nodes = nodes[:limit]
    out = []
    with transaction.atomic():
        for node in nodes:
            _, raw = AgentToken.issue(node=node)
            out.append(SimNode(node_id=node.pk, token=raw))
    return out


def adopt_new_nodes(known: set[int]) -> list[SimNode]:
    """Nodes registered without an agent endpoint (which the demo's onboarding
    form allows: "let the simulator run it") that the simulator does not run
    yet. Each gets a fresh token: the simulator is their agent from now on."""
    ids = list(
        GpuNode.objects.filter(status__in=CHECKED_STATUSES, endpoint="")
        .exclude(pk__in=known)
        .exclude(pk__in=local_nodes.ids())
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    return adopt_nodes(ids=ids)


def adopt_checkers(limit: int | None = None):
    checkers = CheckerNode.objects.exclude(status=CheckerStatus.INACTIVE).order_by("id")
    if limit:
        checkers = checkers[:limit]
    out = []
    with transaction.atomic():
        for checker in checkers:
            _, raw = AgentToken.issue(checker=checker)
            # A new agent brings a new signing key.
            CheckerNode.objects.filter(pk=checker.pk).update(public_key="")
            out.append(SimChecker(checker_id=checker.pk, token=raw))
    return out


def set_endpoints(endpoints: dict[int, str]) -> None:
    nodes = list(GpuNode.objects.filter(pk__in=endpoints))
    for node in nodes:
        node.endpoint = endpoints[node.pk]
    bulk.update_fields(nodes, ["endpoint"])


def active_leases() -> dict[int, frozenset[int]]:
    """The leases each node's agent is asked to run now, by node id: the same
    rentals ``apps.marketplace.workloads.desired_leases`` lists, in one query
    for the whole network."""
    now = rentals.current_epoch()
    rows = (
        Rental.objects.filter(
            status=RentalStatus.ACTIVE, start_epoch__lte=now + 1, end_epoch__gt=now, workload__isnull=False
        )
        .exclude(workload__state__in=[WorkloadState.EXITED, WorkloadState.FAILED])
        .values_list("node_id", "pk")
    )
    out: dict[int, set[int]] = {}
    for node_id, lease in rows:
        out.setdefault(node_id, set()).add(lease)
    return {node_id: frozenset(leases) for node_id, leases in out.items()}
