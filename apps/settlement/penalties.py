"""Steps 3 and 5: collateral slashing for false specs, and checker
penalties for misreports and missed assignments (docs/rules.md §4, §5).

Checker penalties are decided in two parts. ``assess`` reads the epoch's
consensus and says who the rules would jail (misreports by rate: over the
share, the minimum count, and twice what the other checkers' error rates
in the same epochs give) and whether the epoch is a
network incident (more than ``incident_share`` of the round's checkers
would be jailed, or of its nodes went without consensus): a fault that
hits that many at once is the network's (a busy host, a partition), not
the checkers'. ``checker_penalties`` then acts on it: in an incident only
reports that contradict themselves are punished; otherwise misreports by
rate and missed-assignment streaks too. Incident epochs count towards no
later window or streak either.
"""

from dataclasses import dataclass, field
from fractions import Fraction

from django.db.models import Sum

from apps.core import bulk, ledger, parameters
from apps.core.models import Account, Bucket, CheckerNode, CheckerStatus, GpuNode, ModuleAccount, TxKind
from apps.marketplace import pauses
from apps.monitoring import consensus
from apps.monitoring.models import AssignmentRound, CheckerEpoch, NodeEpoch
from apps.staking import services as staking

from .models import LineKind, NetworkIncident, SettlementLine

PPM = 1_000_000


def slash_false_specs(epoch: int, p: dict, lines: list) -> int:
    """A node whose checkers agree its GPUs are not what it declared loses
    ``false_spec_slash`` of its required collateral, to the community pool,
    and is paused until topped up. Returns the amount slashed."""
    rows = NodeEpoch.objects.filter(epoch=epoch, valid=True, spec_ok=False).values_list("node_id", flat=True)
    nodes = list(
        GpuNode.objects.select_for_update().select_related("gpu_model").filter(pk__in=list(rows), collateral__gt=0)
    )
    if not nodes:
        return 0
    wallets = dict(Account.objects.filter(owner_id__in={n.provider_id for n in nodes}).values_list("owner_id", "pk"))
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    legs, total, mine = [], 0, []
    for node in nodes:
        amount = min(node.collateral, node.required_collateral * p["false_spec_slash"] // PPM)
        if not amount:
            continue
        # The line's inputs: what an auditor recomputes it from.
        details = {
            "required_collateral": node.required_collateral,
            "false_spec_slash_ppm": p["false_spec_slash"],
            "collateral_before": node.collateral,
        }
        legs.append(ledger.Leg(wallets[node.provider_id], Bucket.COLLATERAL, -amount))
        was_paused = node.paused
        node.collateral -= amount
        pauses.refresh([node], {node.pk: was_paused}, f"false-spec slash in epoch {epoch}", epoch=epoch)
        total += amount
        mine.append(
            SettlementLine(
                epoch=epoch,
                kind=LineKind.FALSE_SPEC_SLASH,
                account_id=wallets[node.provider_id],
                node=node,
                amount=-amount,
                reason=f"{node.name}: checkers found GPUs other than the declared "
                f"{node.gpu_count}x {node.gpu_model.name}",
                details=details,
            )
        )
    if total:
        legs.append(ledger.Leg(pool, Bucket.AVAILABLE, total))
        tx = ledger.post(
            TxKind.SLASH, legs, memo=f"Epoch {epoch}: false-spec collateral slashes", meta={"epoch": epoch}
        )
        for line in mine:
            line.details["tx_height"] = tx.height
        lines.extend(mine)
        bulk.update_fields(nodes, ["collateral", "paused"])
    return total


@dataclass
class Misreport:
    checker_id: int
    incorrect: int
    judged: int
    window_start: int
    # What the other checkers' honest error rates in the same epochs would
    # give for this checker's judged reports (see ``expected_incorrect``),
    # and those rates: {epoch: (incorrect, judged)} of the others.
    expected: Fraction = Fraction(0)
    network: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class Assessment:
    """Who the rules would jail for ``epoch``, and whether it is an incident."""

    epoch: int
    checkers_active: int = 0
    nodes_in_round: int = 0
    nodes_without_consensus: int = 0
    # checker id -> its self-contradicting reports this epoch (jailed always)
    contradicting: dict[int, int] = field(default_factory=dict)
    misreports: list[Misreport] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    incident: bool = False
    evidence: dict = field(default_factory=dict)

    @property
    def would_jail(self) -> set[int]:
        return set(self.contradicting) | {m.checker_id for m in self.misreports} | set(self.missed)


# A checker is only a misreporter if it is wrong well beyond the network's
# own error rate: this many times what the other checkers' rates in the same
# epochs would give for its reports. On a quiet network that is far below the
# 5% share and changes nothing; when load makes everyone noisier (the
# network's fault, docs/rules.md §5), the bar rises with it, while a
# checker that lies stays far above it.
NETWORK_RATE_MULTIPLE = 2


def expected_incorrect(mine: dict[int, int], network: dict[int, tuple[int, int]]) -> Fraction:
    """How many of a checker's judged reports (``mine``: epoch -> judged)
    the other checkers' honest error rates would make incorrect
    (``network``: epoch -> (incorrect, judged) of the others), exactly.

    Epoch by epoch, not pooled over the window: a latency spike on a loaded
    host makes one epoch's reports noisy for everyone, and a checker that
    filed many of its reports in that epoch is expected to have more wrong.
    Pooled, the quiet epochs diluted the spike's rate and such a checker
    looked three times worse than the others when it was no worse."""
    total = Fraction(0)
    for epoch, judged in mine.items():
        net_incorrect, net_judged = network.get(epoch, (0, 0))
        if net_judged:
            total += Fraction(judged * net_incorrect, net_judged)
    return total


def _tenths(value: Fraction) -> str:
    """``value`` to one decimal, rounded half up, for a reason line."""
    tenths = int(value * 10 + Fraction(1, 2))
    return f"{tenths // 10}.{tenths % 10}"


def rate_exceeded(incorrect: int, judged: int, p: dict, expected: Fraction = Fraction(0)) -> bool:
    """Whether ``incorrect`` of ``judged`` reports reach the minimum count,
    exceed the share, and reach ``NETWORK_RATE_MULTIPLE`` x ``expected``
    (what the network's rates give, see ``expected_incorrect``); exact
    comparisons, no rounding."""
    return (
        incorrect >= p["misreport_jail_min"]
        and incorrect * PPM > p["misreport_jail_share"] * judged
        and incorrect >= NETWORK_RATE_MULTIPLE * expected
    )


def misreports_by_rate(epoch: int, p: dict, exclude_epochs: set[int]) -> list[Misreport]:
    """Active checkers whose incorrect reports in the window exceed
    ``misreport_jail_share`` of their judged reports, number at least
    ``misreport_jail_min`` (docs/rules.md §5) and twice what the other
    checkers' rates in the same epochs give, and who misreported in
    ``epoch`` itself (one penalty per offence)."""
    window_start = epoch - p["jail_window_epochs"] + 1
    window = CheckerEpoch.objects.filter(epoch__gte=window_start, epoch__lte=epoch).exclude(
        epoch__in=sorted(exclude_epochs)
    )
    sums = {"incorrect": Sum("incorrect"), "correct": Sum("correct"), "contradicting": Sum("contradicting")}
    this_epoch = set(CheckerEpoch.objects.filter(epoch=epoch, incorrect__gt=0).values_list("checker_id", flat=True))
    # Over the share and the minimum first: a few rows, out of one per checker.
    suspects = []
    for row in (
        window.filter(checker__status=CheckerStatus.ACTIVE)
        .values("checker_id")
        .annotate(**sums)
        .filter(incorrect__gte=p["misreport_jail_min"])
        .order_by("checker_id")
    ):
        judged = row["incorrect"] + row["correct"]
        if row["checker_id"] in this_epoch and rate_exceeded(row["incorrect"], judged, p):
            suspects.append((row, judged))
    if not suspects:
        return []
    # Each epoch's honest error rate (self-contradicting reports are lies,
    # not noise), and each suspect's own reports by epoch: a checker does
    # not raise its own bar.
    totals = {
        e: (inc - contra, inc + cor)
        for e, inc, cor, contra in window.values("epoch")
        .annotate(**sums)
        .values_list("epoch", "incorrect", "correct", "contradicting")
    }
    own: dict[int, dict[int, tuple[int, int]]] = {}
    for checker_id, e, inc, cor, contra in window.filter(
        checker_id__in=[r["checker_id"] for r, _ in suspects]
    ).values_list("checker_id", "epoch", "incorrect", "correct", "contradicting"):
        own.setdefault(checker_id, {})[e] = (inc - contra, inc + cor)
    found = []
    for row, judged in suspects:
        mine = own.get(row["checker_id"], {})
        network = {
            e: (net_inc - mine.get(e, (0, 0))[0], net_judged - mine.get(e, (0, 0))[1])
            for e, (net_inc, net_judged) in sorted(totals.items())
        }
        expected = expected_incorrect({e: j for e, (_, j) in mine.items()}, network)
        if rate_exceeded(row["incorrect"], judged, p, expected):
            found.append(Misreport(row["checker_id"], row["incorrect"], judged, window_start, expected, network))
    return found


def missed_streaks(epoch: int, p: dict, exclude_epochs: set[int]) -> list[int]:
    """Active checkers that missed assignments in each of the last
    ``missed_jail_epochs`` epochs that were not incidents, ``epoch`` included."""
    streak, window, e = p["missed_jail_epochs"], [], epoch
    while len(window) < streak and e >= 0 and e > epoch - 10 * streak:
        if e not in exclude_epochs:
            window.append(e)
        e -= 1
    if len(window) < streak:
        return []
    missed: dict[int, int] = {}
    rows = CheckerEpoch.objects.filter(epoch__in=window, checker__status=CheckerStatus.ACTIVE)
    for checker_id, assigned, delivered in rows.values_list("checker_id", "assigned", "delivered"):
        if delivered < assigned:
            missed[checker_id] = missed.get(checker_id, 0) + 1
    return sorted(c for c, n in missed.items() if n == streak)


def assess(epoch: int, p: dict) -> Assessment:
    """Read ``epoch``'s consensus and decide what the checker rules would do."""
    a = Assessment(epoch=epoch)
    published = AssignmentRound.objects.filter(epoch=epoch).values_list("checker_ids", "node_ids").first()
    if published is not None:
        a.checkers_active, a.nodes_in_round = len(published[0]), len(published[1])
    a.nodes_without_consensus = NodeEpoch.objects.filter(epoch=epoch, assigned__gt=0, valid=False).count()
    a.contradicting = dict(
        CheckerEpoch.objects.filter(epoch=epoch, contradicting__gt=0).values_list("checker_id", "contradicting")
    )
    horizon = epoch - 10 * max(p["jail_window_epochs"], p["missed_jail_epochs"])
    before = set(NetworkIncident.objects.filter(epoch__lt=epoch, epoch__gte=horizon).values_list("epoch", flat=True))
    a.misreports = [m for m in misreports_by_rate(epoch, p, before) if m.checker_id not in a.contradicting]
    a.missed = [c for c in missed_streaks(epoch, p, before) if c not in a.contradicting]
    share = p["incident_share"]
    jailed_share = len(a.would_jail) * PPM > share * a.checkers_active if a.checkers_active else False
    unjudged_share = a.nodes_without_consensus * PPM > share * a.nodes_in_round if a.nodes_in_round else False
    a.incident = jailed_share or unjudged_share
    if a.incident:
        a.evidence = {
            "checkers_active": a.checkers_active,
            "checkers_would_be_jailed": len(a.would_jail),
            "for_misreports": len(a.misreports),
            "for_missed_assignments": len(a.missed),
            "self_contradicting": len(a.contradicting),
            "nodes_in_round": a.nodes_in_round,
            "nodes_without_consensus": a.nodes_without_consensus,
            "threshold_ppm": share,
            "trigger": [t for t, hit in (("checkers", jailed_share), ("consensus", unjudged_share)) if hit],
            "disagreements": consensus.disagreements(epoch),
        }
    return a


def record_incident(a: Assessment, lines: list) -> NetworkIncident | None:
    if not a.incident:
        return None
    ev = a.evidence
    parts = []
    if "checkers" in ev["trigger"]:
        parts.append(f"{ev['checkers_would_be_jailed']} of {ev['checkers_active']} checkers would have been jailed")
    if "consensus" in ev["trigger"]:
        parts.append(f"{ev['nodes_without_consensus']} of {ev['nodes_in_round']} nodes had no valid consensus")
    summary = "Network incident: " + " and ".join(parts) + "; no checker slashed or jailed for noise this epoch"
    incident = NetworkIncident.objects.create(
        epoch=a.epoch,
        checkers_active=a.checkers_active,
        checkers_would_be_jailed=len(a.would_jail),
        nodes_in_round=a.nodes_in_round,
        nodes_without_consensus=a.nodes_without_consensus,
        summary=summary[:300],
        evidence=ev,
    )
    lines.append(
        SettlementLine(epoch=a.epoch, kind=LineKind.NETWORK_INCIDENT, amount=0, reason=summary[:300], details=ev)
    )
    return incident


def checker_penalties(epoch: int, p: dict, lines: list, a: Assessment) -> tuple[int, int]:
    """Slash ``misreport_slash`` of the stake behind each misreporting
    checker and jail it; jail (no slash: it earned nothing already) each
    checker on a missed-assignment streak. In an incident, only
    self-contradicting reports are punished. Returns (stake slashed,
    checkers jailed)."""
    slashed, jailed = 0, 0

    def punish(checker_id: int, reason: str, details: dict, slash: bool) -> None:
        nonlocal slashed, jailed
        checker = CheckerNode.objects.get(pk=checker_id)
        if checker.status != CheckerStatus.ACTIVE:
            return
        amount = 0
        if slash:
            amount = staking.slash_checker(checker, p["misreport_slash"], epoch, reason, epoch=epoch).total_amount
            slashed += amount
        staking.jail(checker, reason, epoch=epoch)
        jailed += 1
        kind = LineKind.CHECKER_SLASH if slash else LineKind.CHECKER_JAIL
        lines.append(
            SettlementLine(
                epoch=epoch, kind=kind, checker=checker, amount=-amount, reason=reason[:300], details=details
            )
        )

    for checker_id, count in sorted(a.contradicting.items()):
        punish(
            checker_id,
            f"{count} self-contradicting report{'s' if count != 1 else ''} in epoch {epoch}",
            {"contradicting": count},
            slash=True,
        )
    if a.incident:
        return slashed, jailed
    for m in a.misreports:
        reason = (
            f"{m.incorrect} incorrect of {m.judged} judged reports in epochs {m.window_start}..{epoch} "
            f"(over {parameters.definition('misreport_jail_share').format(p['misreport_jail_share'])}, "
            f"at least {p['misreport_jail_min']}, and at least {NETWORK_RATE_MULTIPLE}x the "
            f"{_tenths(m.expected)} expected at the other checkers' rates in the same epochs)"
        )
        punish(
            m.checker_id,
            reason,
            {
                "incorrect_in_window": m.incorrect,
                "judged_in_window": m.judged,
                # Exact, so anyone can recompute the bar: the others'
                # (incorrect, judged) by epoch, and what they give.
                "network_by_epoch": {str(e): list(v) for e, v in m.network.items()},
                "expected_incorrect": f"{m.expected.numerator}/{m.expected.denominator}",
            },
            slash=True,
        )
    for checker_id in a.missed:
        punish(checker_id, f"missed assignments in {p['missed_jail_epochs']} consecutive epochs", {}, slash=False)
    return slashed, jailed
