"""Rentals' workloads as the node's agent sees them (docs/rules.md §4): the
leases a node should be running now, and the states it reports back.

The agent reconciles: it asks for its node's desired leases, starts what is
missing, removes what is no longer there, and reports each lease's state,
endpoints and log tail (``apps/monitoring/agents/workloads.py``). What it
reports is the node's word, checked for shape and ownership here: a node can
only speak about its own rentals, and only in the states below.

Two reports end the rental on the renter's account, with the unserved time
refunded and nothing taken from the provider: an image the node cannot
pull (the renter's error), and a container that exited by itself (the
renter's program finished or crashed; billing stops with that reason).

Checkers probe what the node reports (``workload_targets``): a lease that
is running, and each endpoint it lists; settlement fails a rental's epoch
whose workload the checkers found down (``apps/marketplace/billing.py``).
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.core import ledger, outbox
from apps.core.errors import DomainError, NotFound
from apps.core.models import GpuNode

from . import rentals
from .live import rental_group
from .models import Rental, RentalStatus, Workload, WorkloadEvent, WorkloadState
from .workload_spec import redact

MAX_LOG_TAIL = 64 * 1024
MAX_REASON = 500
MAX_ENDPOINT = 100
# States an agent may report (SCHEDULED is the dashboard's own).
REPORTABLE = {s.value for s in WorkloadState} - {WorkloadState.SCHEDULED}
# A reason the agent gives for an image it could not pull starts with this.
IMAGE_NOT_FOUND = "image not found"
# States of a lease the node's agent has not started yet.
NOT_STARTED = (WorkloadState.SCHEDULED, WorkloadState.PULLING, WorkloadState.STARTING)
# How long after a rental is made its lease may still be pulling or
# starting without the checkers' probes counting against the node: the
# agent needs a moment to see the lease, pull the image and start it
# (seconds for an image the host has, minutes for a large pull). After
# that, a lease that is not running fails the probes.
START_GRACE = timedelta(minutes=5)


class LeaseError(DomainError):
    pass


class UnknownLease(LeaseError, NotFound):
    pass


def desired_leases(node: GpuNode) -> list[dict]:
    """Every lease ``node`` should be running now, with what its agent needs
    to start it (secret values included: this goes to the node's agent only)."""
    now = rentals.current_epoch()
    active = (
        Rental.objects.filter(node=node, status=RentalStatus.ACTIVE, start_epoch__lte=now + 1, end_epoch__gt=now)
        .select_related("workload")
        .order_by("pk")
    )
    leases = []
    for rental in active:
        workload = getattr(rental, "workload", None)
        if workload is None or workload.state in (WorkloadState.EXITED, WorkloadState.FAILED):
            continue
        leases.append(
            {
                "lease": rental.pk,
                "image": rental.image,
                "command": workload.command,
                "env": {e["name"]: e["value"] for e in workload.env},
                "ports": workload.ports,
                "gpu_count": rental.gpu_count,
                "cpus": node.vcpu,
                "memory_mb": node.ram_gb * 1024,
            }
        )
    return leases


def workload_targets(node_ids, epoch: int) -> dict[int, dict]:
    """What the checkers of ``node_ids`` (ids, or a queryset of them) probe
    on each rented one in ``epoch``, by node id: the lease of the node's
    active rental billed in that epoch, as its agent last reported it. One
    query for all the nodes; a node without such a rental has no entry.

    ``{"lease": rental id, "running": bool, "starting": bool,
    "ports": [container ports declared], "endpoints": ["host:port", ...]}``:
    ``endpoints`` are the node's word, in the order of the ports they
    publish, and empty unless the lease is running; ``starting`` is true
    while the lease is not started yet and the rental is younger than
    ``START_GRACE`` (probes then do not count the workload either way)."""
    now = timezone.now()
    rows = Workload.objects.filter(
        rental__node_id__in=node_ids,
        rental__status=RentalStatus.ACTIVE,
        rental__start_epoch__lte=epoch,
        rental__end_epoch__gt=epoch,
    ).values_list("rental_id", "rental__node_id", "rental__created_at", "state", "ports", "endpoints")
    targets = {}
    for lease, node_id, created_at, state, ports, endpoints in rows:
        running = state == WorkloadState.RUNNING
        ports = sorted(p for p in ports if type(p) is int)
        published = [endpoints[str(p)] for p in ports if str(p) in endpoints] if running else []
        targets[node_id] = {
            "lease": lease,
            "running": running,
            "starting": state in NOT_STARTED and now < created_at + START_GRACE,
            "ports": ports,
            "endpoints": published,
        }
    return targets


def renters_own_end(workload: Workload) -> bool:
    """Whether the workload's state ended its rental on the renter's account
    (its container exited by itself, or its image could not be pulled):
    then a workload that did not answer is not the node's failure."""
    return _renters_end(workload) is not None


def _clean(report: dict, ports: list[int]) -> dict:
    """The report's fields, checked; LeaseError says what is wrong."""
    state = report.get("state")
    if state not in REPORTABLE:
        raise LeaseError(f"state must be one of {', '.join(sorted(REPORTABLE))}.")
    exit_code = report.get("exit_code")
    if exit_code is not None and (type(exit_code) is not int or not -(2**31) <= exit_code < 2**31):
        raise LeaseError("exit_code is an integer or null.")
    reason = report.get("reason") or ""
    if not isinstance(reason, str):
        raise LeaseError("reason is text.")
    endpoints = report.get("endpoints") or {}
    if not isinstance(endpoints, dict) or len(endpoints) > len(ports):
        raise LeaseError("endpoints map each exposed port to host:port.")
    clean_endpoints = {}
    for port, where in endpoints.items():
        if not (isinstance(port, str) and port.isascii() and port.isdigit() and int(port) in ports):
            raise LeaseError(f"endpoint for port {str(port)[:10]!r}: not a port this lease exposes.")
        if not isinstance(where, str) or not 3 <= len(where) <= MAX_ENDPOINT or any(c.isspace() for c in where):
            raise LeaseError(f"endpoint for port {port}: host:port expected.")
        clean_endpoints[port] = where
    log_tail = report.get("log_tail")
    if log_tail is not None and not isinstance(log_tail, str):
        raise LeaseError("log_tail is text.")
    return {
        "state": state,
        "exit_code": exit_code,
        "reason": reason[:MAX_REASON],
        "endpoints": clean_endpoints,
        # The tail's end is what matters: cut from the front.
        "log_tail": None if log_tail is None else log_tail[-MAX_LOG_TAIL:],
    }


def _sentence(state: str, exit_code: int | None, reason: str) -> str:
    if state == WorkloadState.EXITED:
        return f"Exited with code {exit_code}." + (f" {reason}" if reason else "")
    if state == WorkloadState.FAILED:
        return f"Failed: {reason}" if reason else "Failed."
    return reason


def record_status(node: GpuNode, report: dict) -> Workload:
    """Store one lease report of ``node``'s agent; returns the workload.
    Raises UnknownLease for a lease that is not this node's, LeaseError for
    a malformed report. A report that ends the rental (see the module) does
    so in the same transaction, so no crash can leave a finished container
    still billed."""
    lease = report.get("lease") if isinstance(report, dict) else None
    if type(lease) is not int:
        raise LeaseError("lease is the rental's id.")
    if report.get("state") in (WorkloadState.EXITED, WorkloadState.FAILED):
        return _record_and_end(node, lease, report)  # may move money: the ledger's lock order
    with transaction.atomic():
        return _record(node, lease, report)


@ledger.serialised
def _record_and_end(node: GpuNode, lease: int, report: dict) -> Workload:
    return _record(node, lease, report)


def _record(node: GpuNode, lease: int, report: dict) -> Workload:
    workload = (
        Workload.objects.select_for_update()
        .select_related("rental", "rental__renter")
        .filter(rental_id=lease, rental__node_id=node.pk)
        .first()
    )
    if workload is None:
        raise UnknownLease(f"Lease {lease} is not one of this node's.")
    fields = _clean(report, workload.ports)
    if workload.state == WorkloadState.REMOVED:
        return workload  # the story of this lease on this node is over
    now = timezone.now()
    changed = fields["state"] != workload.state or fields["exit_code"] != workload.exit_code
    workload.state, workload.exit_code = fields["state"], fields["exit_code"]
    workload.reason = redact(fields["reason"], workload.env)
    workload.endpoints = fields["endpoints"]
    if fields["log_tail"] is not None:
        workload.log_tail = redact(fields["log_tail"], workload.env)
    workload.reported_at = now
    if changed:
        workload.state_changed_at = now
        WorkloadEvent.objects.create(
            rental_id=lease,
            node_id=node.pk,
            state=workload.state,
            detail=_sentence(workload.state, workload.exit_code, workload.reason)[:MAX_REASON],
        )
    workload.save()
    rental = workload.rental
    ending = _renters_end(workload)
    if ending and rental.status == RentalStatus.ACTIVE:
        rental = Rental.objects.select_for_update().get(pk=rental.pk)
        if rental.status == RentalStatus.ACTIVE:
            rentals.end_locked(rental, reason=ending, actor=rental.renter)
    outbox.write([(group, {"type": "monitoring.changed"}) for group in _groups_showing(rental)])
    return workload


def _groups_showing(rental: Rental) -> list[str]:
    """The live groups of the pages that show this rental's workload: its own
    and, once it moved (failover), those of the rentals that replaced it,
    whose timelines tell the whole story (the old node's agent reporting the
    container it removed, say)."""
    groups, current = [rental_group(rental.pk)], rental
    while current.status == RentalStatus.REPLACED and len(groups) < 20:
        current = Rental.objects.only("pk", "status").filter(replaces_id=current.pk).first()
        if current is None:
            break
        groups.append(rental_group(current.pk))
    return groups


def _renters_end(workload: Workload) -> str | None:
    """Why this workload's state ends its rental on the renter's account, or None."""
    if workload.state == WorkloadState.EXITED:
        return f"Your container exited by itself with code {workload.exit_code}"
    if workload.state == WorkloadState.FAILED and workload.reason.startswith(IMAGE_NOT_FOUND):
        return f"The node could not pull {workload.rental.image} ({workload.reason})"
    return None
