"""Reads shared by the marketplace pages and its API (the catalogue's own
list lives in ``catalogue``)."""

import shlex

from django.utils.translation import gettext

from apps.core.errors import NotFound
from apps.core.models import GpuNode

from .models import Rental, Workload, WorkloadEvent, WorkloadState
from .workload_spec import public_env
from .workloads import IMAGE_NOT_FOUND

# How a simulated node's agent (the demo's) starts the reason it reports:
# nothing runs there, and the rental page says so.
SIMULATED = "simulated"


def my_rental(user, pk) -> Rental:
    """``user``'s rental ``pk``: another person's rental does not exist, as far
    as they can tell."""
    rental = (
        Rental.objects.filter(pk=pk, renter_id=user.pk)
        .select_related("node", "node__gpu_model", "node__region", "node__provider", "replaces")
        .first()
    )
    if rental is None:
        raise NotFound("No such rental.")
    return rental


def my_node(user, pk) -> GpuNode:
    """``user``'s node ``pk``, as a provider sees it; anyone else's answers as missing."""
    node = GpuNode.objects.filter(pk=pk, provider_id=user.pk).select_related("gpu_model", "region", "provider").first()
    if node is None:
        raise NotFound("No such node.")
    return node


def workload_context(rental: Rental) -> dict:
    """What the rental page and its live feed show about the workload: its
    state and timeline, the endpoints to open, the log tail, and the
    environment with secret values masked."""
    workload = Workload.objects.filter(rental=rental).first()
    if workload is None:
        return {"rental": rental, "workload": None}
    events = list(
        WorkloadEvent.objects.filter(rental__in=_rental_chain(rental)).select_related("node").order_by("at", "id")
    )
    return {
        "rental": rental,
        "workload": workload,
        "events": events[-50:],
        "endpoints": [
            {"port": port, "address": where, "url": f"http://{where}/"}
            for port, where in sorted(workload.endpoints.items(), key=lambda item: int(item[0]))
        ],
        "env": public_env(workload.env),
        "command_text": shlex.join(workload.command) if workload.command else "",
        "verdict": _verdict(workload),
        "simulated": workload.reason.startswith(SIMULATED),
    }


def _rental_chain(rental: Rental) -> list[int]:
    """This rental and the ones it replaced: a failover's timeline reads as one story."""
    ids, current = [rental.pk], rental
    while current.replaces_id and len(ids) < 20:
        ids.append(current.replaces_id)
        current = Rental.objects.only("pk", "replaces_id").get(pk=current.replaces_id)
    return ids


def _verdict(workload: Workload) -> str:
    """One sentence on how the workload stands, and whose doing it is."""
    state = workload.state
    if state == WorkloadState.SCHEDULED:
        return gettext("Waiting for the node's agent to pick it up.")
    if state == WorkloadState.EXITED:
        return gettext(
            "Your container exited by itself with code %(code)s. That is your program's doing, "
            "not the node's: billing stopped and the unserved time was refunded."
        ) % {"code": workload.exit_code}
    if state == WorkloadState.FAILED and workload.reason.startswith(IMAGE_NOT_FOUND):
        return gettext(
            "The node could not pull the image (%(reason)s). Check the image name: this is not the "
            "provider's fault, so no SLA credit applies; the unserved time was refunded."
        ) % {"reason": workload.reason}
    if state == WorkloadState.FAILED:
        why = workload.reason or gettext("no reason given")
        return gettext("The node could not run your container: %(why)s. That counts against the node.") % {"why": why}
    if state == WorkloadState.REMOVED:
        return gettext("Stopped and removed from the node.")
    return f"{workload.get_state_display()}."


def wallet_rental_parts(user, entries) -> None:
    """Give each rental settlement entry of ``user``'s wallet among
    ``entries`` a ``parts`` list: one line per rental with its own memo. One
    settlement posting pays every rental of the epoch, so the entry alone
    merges rentals under a network-wide memo."""
    from django.utils.translation import gettext

    from apps.core.models import Bucket, TxKind

    from .models import RentalCharge

    settle = [e for e in entries if e.tx.kind == TxKind.RENTAL_SETTLE]
    if not settle:
        return
    heights = {e.tx.height for e in settle}
    charges = RentalCharge.objects.filter(tx_height__in=heights).select_related("node").order_by("rental_id")
    as_renter = charges.filter(rental__renter=user)
    as_provider = charges.filter(provider=user)
    by_height: dict[tuple[int, bool], list] = {}
    for c in as_renter:
        memo = gettext("Rental #%(rental)s on %(node)s, epoch %(epoch)s: charged") % {
            "rental": c.rental_id,
            "node": c.node.name,
            "epoch": c.epoch,
        }
        by_height.setdefault((c.tx_height, True), []).append({"amount": -c.charge, "memo": memo})
    for c in as_provider:
        memo = gettext("Rental #%(rental)s on %(node)s, epoch %(epoch)s: your share after the protocol fee") % {
            "rental": c.rental_id,
            "node": c.node.name,
            "epoch": c.epoch,
        }
        by_height.setdefault((c.tx_height, False), []).append({"amount": c.provider_amount, "memo": memo})
    for e in settle:
        e.parts = by_height.get((e.tx.height, e.bucket == Bucket.ESCROWED), [])
