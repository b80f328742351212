"""Checker consensus per node and epoch (docs/rules.md §5), the health
score, and the node status transitions it drives (section 3).

``finalize(epoch)`` runs once per epoch (a unique row marks it done), in one
database transaction, with a fixed number of set-based queries however many
nodes there are; settlement calls it as its first step.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from statistics import median_low

from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, F, Max, OuterRef, Q, Subquery
from django.utils import timezone

from apps.core import bulk, epochs, parameters
from apps.core.models import CHECKED_STATUSES, GpuNode, NodeStatus

from . import challenge_reports, live
from .models import Assignment, CheckerEpoch, CheckerReport, EpochConsensus, Heartbeat, NodeEpoch

PPM = 1_000_000
# Relative latency tolerance is meaningless for a few milliseconds: 2 ms vs
# 4 ms is "100% off" but only scheduling noise. Differences up to this many
# ms always count as agreeing. On a busy network the epoch's own noise is
# larger: see ``latency_noise_ms``.
LATENCY_NOISE_MS = 20
# The share of nodes whose checkers' latencies agree within the epoch's
# noise (see ``latency_noise_ms``).
LATENCY_NOISE_QUANTILE = (9, 10)
# Health score weights (ppm of the score); they sum to 100%.
HEALTH_WEIGHTS = {"uptime": 500_000, "task": 200_000, "latency": 150_000, "spec": 150_000}


@dataclass(frozen=True)
class Verdict:
    reports: int
    valid: bool
    uptime_ppm: int | None = None
    task_ppm: int | None = None
    latency_ms: int | None = None
    spec_ok: bool | None = None
    # Of a rented node: the share of probes that found its workload running
    # and answering (None: no workload checked by a quorum of reports).
    workload_ppm: int | None = None
    # The majority of the compute challenges' outcomes (a tie fails), if at
    # least a quorum of reports ran one.
    challenge_ok: bool | None = None
    # The median of the reports' measured download speeds (Mbps), if at
    # least a quorum of reports measured one. Never judged (see is_correct).
    download_mbps: int | None = None

    @property
    def spec_verified(self) -> bool | None:
        """The node's spec: its GPU facts, unless the challenges failed."""
        return False if self.challenge_ok is False else self.spec_ok


def consensus(reports: list[dict], quorum: int) -> Verdict:
    """Median of the reports' values; valid only with at least ``quorum``.

    ``median_low`` keeps the result one of the reported integers (no
    averaging, no floats). Latency is the median of the reports that saw
    any answer; spec is the majority of the reports that saw the GPU facts
    (a tie is not verified); each is ``None`` unless at least a quorum of
    reports got an answer. The workload's share is the median of the
    reports that checked a workload (a rented node), if at least a quorum
    did; likewise the download speed, of the reports that measured one."""
    if len(reports) < quorum or not reports:
        return Verdict(reports=len(reports), valid=False)
    latencies = [r["latency_ms"] for r in reports if r["latency_ms"] is not None]
    spec_known = [r["spec_ok"] for r in reports if r["spec_ok"] is not None]
    spec_votes = sum(1 for ok in spec_known if ok)
    # .get: reports from before the field existed do not carry it.
    workloads = [r.get("workload_ppm") for r in reports if r.get("workload_ppm") is not None]
    challenges = [r["challenge_passed"] for r in reports if r.get("challenge_passed") is not None]
    speeds = [r.get("download_mbps") for r in reports if r.get("download_mbps") is not None]
    return Verdict(
        reports=len(reports),
        valid=True,
        uptime_ppm=median_low(r["uptime_ppm"] for r in reports),
        task_ppm=median_low(r["task_ppm"] for r in reports),
        # A value only a minority of the reports saw (one checker claiming an
        # answer from a node the others found down) is not the consensus.
        latency_ms=median_low(latencies) if len(latencies) >= quorum else None,
        spec_ok=(spec_votes * 2 > len(spec_known)) if len(spec_known) >= quorum else None,
        workload_ppm=median_low(workloads) if len(workloads) >= quorum else None,
        challenge_ok=(sum(challenges) * 2 > len(challenges)) if len(challenges) >= quorum else None,
        download_mbps=median_low(speeds) if len(speeds) >= quorum else None,
    )


def latency_noise_ms(latencies_by_node: list[list[int]]) -> int:
    """The latency noise of an epoch: how far apart the checkers that timed
    the same node were (max - min) for nine nodes in ten (the lower 90th
    percentile over nodes that at least two checkers timed), and never
    less than ``LATENCY_NOISE_MS``.

    Stalls on a busy host add hundreds of milliseconds to some readings and
    not to others; when that happens all over the network, it is the
    network's noise, not a checker misreporting (docs/rules.md §5:
    correlated faults). The median spread was the bar before, but stalls
    come in bursts: in a busy epoch a third of the nodes had one stalled
    reading while the median node had none, and every honest checker was
    "incorrect" for its share of the stalls (the soak drill jailed eight of
    them in six epochs). A lying checker touches only its own nodes, a few
    in a hundred, so it does not set the bar for the others; and only the
    judging uses it, never a node's verdict."""
    spreads = sorted(max(v) - min(v) for v in latencies_by_node if len(v) >= 2)
    if not spreads:
        return LATENCY_NOISE_MS
    num, den = LATENCY_NOISE_QUANTILE
    return max(LATENCY_NOISE_MS, spreads[(len(spreads) - 1) * num // den])


def is_correct(
    report: dict, verdict: Verdict, uptime_tol: int, latency_tol: int, noise_ms: int = LATENCY_NOISE_MS
) -> bool:
    """A report far from the consensus (beyond a tolerance) is incorrect.

    The workload's share is judged with the uptime tolerance when both the
    report and the consensus have one. A report without one is not judged
    on it: whether a checker saw the node's lease at a probe instant depends
    on when it last asked for its assignments (a lease that began or ended
    between two checkers' requests), so honest checkers can differ on
    having checked it at all, and reports from agents that predate the
    check carry none.

    The measured download speed is never judged: throughput between a
    checker and a node depends on the path between them and on what else
    both are doing, so honest checkers differ by far more than any
    tolerance, and a checker must not be slashed for where it sits on the
    network. Only its median is kept, as the node's measured speed."""
    if abs(report["uptime_ppm"] - verdict.uptime_ppm) > uptime_tol:
        return False
    mine = report.get("workload_ppm")
    if mine is not None and verdict.workload_ppm is not None and abs(mine - verdict.workload_ppm) > uptime_tol:
        return False
    if report["spec_ok"] is not None and verdict.spec_ok is not None and report["spec_ok"] != verdict.spec_ok:
        return False
    # A challenge outcome is judged like the spec: against the majority, when both exist.
    mine = report.get("challenge_passed")
    if mine is not None and verdict.challenge_ok is not None and mine != verdict.challenge_ok:
        return False
    if (report["spec_ok"] is None) != (verdict.spec_ok is None):
        return False
    if verdict.latency_ms is not None and report["latency_ms"] is not None:
        # |mine - consensus| <= max(tol * consensus, noise), in integers.
        diff = abs(report["latency_ms"] - verdict.latency_ms)
        if diff > noise_ms and diff * PPM > latency_tol * verdict.latency_ms:
            return False
    elif (verdict.latency_ms is None) != (report["latency_ms"] is None):
        return False
    return True


def contradiction(report: dict) -> str | None:
    """Why ``report`` contradicts itself, or ``None``.

    What a checker measures follows from its own counts: a request can only
    be answered over a connection that opened; a round trip, a GPU verdict
    and GPU facts exist only when a request was answered. A signed report
    that breaks one of these is false on its face: anyone can see it from
    the report alone, no tolerance or consensus needed, and no node can
    make an honest checker send one (unlike a spec or uptime disagreement,
    which a hostile node can stage by answering checkers differently).
    Such a report is incorrect whatever the tolerance (docs/rules.md §5)."""
    answered = report["task_ppm"] > 0
    if report["task_ppm"] > report["uptime_ppm"]:
        return "more requests answered than connections opened"
    if (report["latency_ms"] is not None) != answered:
        return "a round trip without an answer" if not answered else "answers without a round trip"
    if (report["spec_ok"] is not None) != answered:
        return "a GPU verdict without an answer" if not answered else "answers without a GPU verdict"
    if not answered and (report.get("gpu_name_seen") or report.get("gpu_count_seen")):
        return "GPU facts seen without an answer"
    # A pass the published rows and proofs do not support (docs/challenges.md).
    return challenge_reports.contradiction(
        report.get("challenge_passed"),
        report.get("challenge_verified"),
        report.get("challenge_elapsed_ms"),
        report.get("challenge_deadline_ms"),
    )


def judge(
    reports: list[dict], quorum: int, uptime_tol: int, latency_tol: int, noise_ms: int = LATENCY_NOISE_MS
) -> tuple[Verdict, list[bool | None]]:
    """The consensus of ``reports`` and, for each report, whether it is
    correct (``None``: not judged).

    A consensus stands only if at least ``quorum`` reports agree with it
    (within the tolerances). Two reports that disagree have a "median" that
    is just one of them: the lower uptime, or a spec tie read as a mismatch.
    With a false checker and one honest checker (the third silent), the
    false one would decide the node's uptime and spec, suspend it and slash
    its collateral, and make the honest checker the incorrect one. Without
    agreement there is no valid consensus: no reward and no penalty for the
    node, and no report judged either way."""
    verdict = consensus(reports, quorum)
    if not verdict.valid:
        return verdict, [None] * len(reports)
    marks = [is_correct(r, verdict, uptime_tol, latency_tol, noise_ms) for r in reports]
    if sum(marks) < quorum:
        return Verdict(reports=len(reports), valid=False), [None] * len(reports)
    return verdict, marks


def health_score(verdict: Verdict, max_latency_ms: int) -> int:
    """The node's health (ppm). Task completion is the share of probes the
    node's agent answered; on a rented node whose workload the checkers
    checked, it is the lower of that and the workload's share: the task
    that matters then is the renter's, and a node that answers its health
    probe while the renter's container is down is not completing it."""
    if not verdict.valid:
        return 0
    if verdict.latency_ms is None:
        latency = 0
    elif verdict.latency_ms <= max_latency_ms:
        latency = PPM
    else:
        latency = max_latency_ms * PPM // verdict.latency_ms
    parts = {
        "uptime": verdict.uptime_ppm,
        "task": verdict.task_ppm if verdict.workload_ppm is None else min(verdict.task_ppm, verdict.workload_ppm),
        "latency": latency,
        "spec": PPM if verdict.spec_verified else 0,  # unverified earns nothing
    }
    return sum(parts[k] * w for k, w in HEALTH_WEIGHTS.items()) // PPM


def next_status(node_status: str, below: int, verdict: Verdict, p: dict) -> tuple[str, int]:
    """The node's status and consecutive epochs below the cut-off after an
    epoch with ``verdict``."""
    if not verdict.valid:
        return node_status, below  # no valid consensus: no reward, no penalty
    if verdict.spec_verified is False:
        return NodeStatus.SUSPENDED, below
    latency_ok = verdict.latency_ms is not None and verdict.latency_ms <= p["sla_max_latency_ms"]
    if verdict.uptime_ppm >= p["sla_uptime_target"] and latency_ok:
        return NodeStatus.ONLINE, 0
    below = below + 1 if verdict.uptime_ppm < p["sla_uptime_cutoff"] else 0
    if below >= p["suspend_after_epochs"]:
        return NodeStatus.SUSPENDED, below
    return NodeStatus.DEGRADED, below


REPORT_FIELDS = (
    "id",
    "node_id",
    "checker_id",
    "uptime_ppm",
    "task_ppm",
    "latency_ms",
    "spec_ok",
    "gpu_name_seen",
    "gpu_count_seen",
    "workload_ppm",
    "download_mbps",
)
# Each report's compute challenge, if it ran one (None otherwise).
CHALLENGE_FIELDS = {
    "challenge_passed": F("challenge__passed"),
    "challenge_verified": F("challenge__verified"),
    "challenge_elapsed_ms": F("challenge__elapsed_ms"),
    "challenge_deadline_ms": F("challenge__deadline_ms"),
}


def finalize(epoch: int) -> EpochConsensus | None:
    """Compute ``epoch``'s consensus and apply it; ``None`` if already done."""
    p = parameters.current(epoch)
    try:
        with transaction.atomic():
            marker = EpochConsensus.objects.create(epoch=epoch)
            _apply(epoch, p, marker)
            live.consensus_recorded(epoch)  # sent only if this commits
            return marker
    except IntegrityError:
        return None


def _apply(epoch: int, p: dict, marker: EpochConsensus) -> None:
    assigned: dict[int, set[int]] = defaultdict(set)
    checker_assigned: dict[int, int] = defaultdict(int)
    for node_id, checker_id in Assignment.objects.filter(epoch=epoch).values_list("node_id", "checker_id"):
        assigned[node_id].add(checker_id)
        checker_assigned[checker_id] += 1

    by_node: dict[int, list[dict]] = defaultdict(list)
    for r in CheckerReport.objects.filter(epoch=epoch).values(*REPORT_FIELDS, **CHALLENGE_FIELDS):
        if r["checker_id"] in assigned.get(r["node_id"], ()):
            by_node[r["node_id"]].append(r)

    telemetry = {
        row["node_id"]: row
        for row in Heartbeat.objects.filter(epoch=epoch)
        .values("node_id")
        .annotate(samples=Count("id"), util=Avg("gpu_util"), temp=Max("temperature_c"), power=Avg("power_w"))
    }

    # The nodes assigned or heard from this epoch, by subquery: a list of
    # 100,000 ids would be that many bound variables. One subquery of the
    # union, not two ORed: PostgreSQL cannot join on an OR, and once the
    # epoch's assignments outgrow work_mem it rescans them for every node
    # (with 100,000 nodes and 300,000 assignments the settlement took 457 s, not 32).
    nodes = GpuNode.objects.select_for_update().filter(
        pk__in=Assignment.objects.filter(epoch=epoch)
        .values("node_id")
        .union(Heartbeat.objects.filter(epoch=epoch).values("node_id"))
    )
    correct_ids, incorrect_ids = [], []
    delivered: dict[int, int] = defaultdict(int)
    correct_count: dict[int, int] = defaultdict(int)
    incorrect_count: dict[int, int] = defaultdict(int)
    node_epochs, changed = [], []
    contradicting: dict[int, int] = defaultdict(int)
    sound: dict[int, list[dict]] = {}
    for node_id, reports in by_node.items():
        sound[node_id] = []
        for r in reports:
            delivered[r["checker_id"]] += 1
            if contradiction(r):
                # False on its face: incorrect, and no input to the consensus.
                incorrect_ids.append(r["id"])
                incorrect_count[r["checker_id"]] += 1
                contradicting[r["checker_id"]] += 1
            else:
                sound[node_id].append(r)
    noise_ms = latency_noise_ms([[r["latency_ms"] for r in rs if r["latency_ms"] is not None] for rs in sound.values()])
    for node in nodes:
        reports = sound.get(node.pk, [])
        verdict, marks = judge(reports, p["report_quorum"], p["uptime_tolerance"], p["latency_tolerance"], noise_ms)
        for r, ok in zip(reports, marks, strict=True):
            if ok is not None:
                (correct_ids if ok else incorrect_ids).append(r["id"])
                (correct_count if ok else incorrect_count)[r["checker_id"]] += 1
        before = node.status
        score = health_score(verdict, p["sla_max_latency_ms"]) if verdict.valid else None
        if node.status in CHECKED_STATUSES and node.pk in assigned:
            was = (node.status, node.epochs_below_cutoff, node.health_score)
            node.status, node.epochs_below_cutoff = next_status(node.status, node.epochs_below_cutoff, verdict, p)
            if score is not None:
                node.health_score = score
            if (node.status, node.epochs_below_cutoff, node.health_score) != was:
                changed.append(node)  # most nodes keep all three from one epoch to the next
        t = telemetry.get(node.pk, {})
        node_epochs.append(
            NodeEpoch(
                epoch=epoch,
                node=node,
                assigned=len(assigned.get(node.pk, ())),
                reports=verdict.reports,
                valid=verdict.valid,
                uptime_ppm=verdict.uptime_ppm,
                task_ppm=verdict.task_ppm,
                latency_ms=verdict.latency_ms,
                # False when the challenges failed: the false-spec slash reads it.
                spec_ok=verdict.spec_verified,
                challenge_ok=verdict.challenge_ok,
                workload_ppm=verdict.workload_ppm,
                download_mbps=verdict.download_mbps,
                health_score=score,
                status_before=before,
                status_after=node.status,
                samples=t.get("samples", 0),
                gpu_util_avg=int(t["util"]) if t.get("util") is not None else None,
                temperature_max=t.get("temp"),
                power_avg=int(t["power"]) if t.get("power") is not None else None,
            )
        )
    bulk.update_fields(changed, ["status", "epochs_below_cutoff", "health_score"])
    NodeEpoch.objects.bulk_create(node_epochs, batch_size=1000)
    _keep_measured_speeds(epoch)
    bulk.update_in(CheckerReport, correct_ids, correct=True)
    bulk.update_in(CheckerReport, incorrect_ids, correct=False)
    CheckerEpoch.objects.bulk_create(
        [
            CheckerEpoch(
                epoch=epoch,
                checker_id=c,
                assigned=n,
                delivered=delivered[c],
                correct=correct_count[c],
                incorrect=incorrect_count[c],
                contradicting=contradicting[c],
            )
            for c, n in checker_assigned.items()
        ],
        batch_size=1000,
    )
    marker.nodes = len(node_epochs)
    marker.valid_nodes = sum(1 for ne in node_epochs if ne.valid)
    marker.latency_noise_ms = noise_ms
    marker.save(update_fields=["nodes", "valid_nodes", "latency_noise_ms"])


def _keep_measured_speeds(epoch: int) -> None:
    """Copy the epoch's measured speeds onto their nodes (``measured_mbps``,
    for the marketplace's pages) in one set-based statement: unlike a
    status, a measured speed comes with most nodes' consensus every epoch,
    and a row-by-row update would cost one statement per node. A node
    measured in a later epoch already keeps that figure."""
    measured = NodeEpoch.objects.filter(epoch=epoch, download_mbps__isnull=False)
    GpuNode.objects.filter(pk__in=measured.values("node_id")).filter(
        Q(measured_mbps_epoch__isnull=True) | Q(measured_mbps_epoch__lt=epoch)
    ).update(
        measured_mbps=Subquery(measured.filter(node_id=OuterRef("pk")).values("download_mbps")[:1]),
        measured_mbps_epoch=epoch,
    )


def close_finished(grace_seconds: float = 5.0, limit: int = 100) -> list[int]:
    """Finalize every finished epoch (past its grace period) that has
    assignments and no consensus yet, oldest first."""
    done_before = set(EpochConsensus.objects.values_list("epoch", flat=True))
    cutoff = epochs.number_at(timezone.now() - timedelta(seconds=grace_seconds))
    todo = sorted(
        set(Assignment.objects.filter(epoch__lt=cutoff).values_list("epoch", flat=True).distinct()) - done_before
    )[:limit]
    return [e for e in todo if finalize(e) is not None]


def disagreements(epoch: int) -> dict:
    """What the epoch's incorrect reports disagreed on and by how much: the
    evidence a network incident records (docs/rules.md §5). For each
    measure, how many reports were out of tolerance on it, and the median
    and largest distance from the consensus (uptime and a rented node's
    workload in ppm points, latency in ms and in ppm of the consensus)."""
    p = parameters.current(epoch)
    noise_ms = (
        EpochConsensus.objects.filter(epoch=epoch).values_list("latency_noise_ms", flat=True).first()
        or LATENCY_NOISE_MS
    )
    verdicts = {
        ne["node_id"]: ne
        for ne in NodeEpoch.objects.filter(epoch=epoch, valid=True).values(
            "node_id", "uptime_ppm", "latency_ms", "spec_ok", "workload_ppm", "challenge_ok"
        )
    }
    uptime, latency, latency_rel, workload, spec, presence, contradicting = [], [], [], [], 0, 0, 0
    challenge = 0
    for r in (
        CheckerReport.objects.filter(epoch=epoch, correct=False).values(*REPORT_FIELDS, **CHALLENGE_FIELDS).iterator()
    ):
        if contradiction(r):
            contradicting += 1
            continue
        v = verdicts.get(r["node_id"])
        if v is None:
            continue
        if abs(r["uptime_ppm"] - v["uptime_ppm"]) > p["uptime_tolerance"]:
            uptime.append(abs(r["uptime_ppm"] - v["uptime_ppm"]))
        if r["workload_ppm"] is not None and v["workload_ppm"] is not None:
            if abs(r["workload_ppm"] - v["workload_ppm"]) > p["uptime_tolerance"]:
                workload.append(abs(r["workload_ppm"] - v["workload_ppm"]))
        if (r["spec_ok"] is None) != (v["spec_ok"] is None) or (r["latency_ms"] is None) != (v["latency_ms"] is None):
            presence += 1
        elif r["spec_ok"] is not None and v["challenge_ok"] is not False and r["spec_ok"] != v["spec_ok"]:
            # (A node's failed challenges make its spec false: its facts' verdict is not stored.)
            spec += 1
        if r["challenge_passed"] is not None and v["challenge_ok"] is not None:
            challenge += r["challenge_passed"] != v["challenge_ok"]
        if r["latency_ms"] is not None and v["latency_ms"]:
            diff = abs(r["latency_ms"] - v["latency_ms"])
            if diff > noise_ms and diff * PPM > p["latency_tolerance"] * v["latency_ms"]:
                latency.append(diff)
                latency_rel.append(diff * PPM // v["latency_ms"])

    def spread(values: list[int]) -> dict:
        return {
            "reports": len(values),
            "median": median_low(values) if values else None,
            "max": max(values) if values else None,
        }

    return {
        "uptime_ppm": spread(uptime),
        "latency_ms": spread(latency),
        "latency_ppm_of_consensus": spread(latency_rel),
        "workload_ppm": spread(workload),
        "spec": {"reports": spec},
        "challenge": {"reports": challenge},
        "answered_vs_not": {"reports": presence},
        "self_contradicting": {"reports": contradicting},
    }
