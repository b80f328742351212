"""Status pages in the style of an uptime monitor, one per node and per
checker: 90 bars (a day each by default, or an hour each), the incidents of
that span with their evidence and duration, and the network incidents of the
pipeline (``settlement.NetworkIncident``) in the same span.

A bar covers a fixed run of epochs ending with the current one, so each bar
is a whole day (or hour) of epochs whatever the epoch length; a bar without
any consensus recorded reads "no data", never 0%.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Avg, Count, F, Q, Sum
from django.utils.translation import gettext as _

from apps.core import epochs, parameters
from apps.core.models import CheckerNode, GpuNode

from .models import CheckerEpoch, NodeEpoch

BARS = 90
UNITS = {"day": 24 * 3600, "hour": 3600}
PPM = 1_000_000
MAX_INCIDENTS = 30


@dataclass
class Bar:
    first_epoch: int
    last_epoch: int
    start: datetime | None
    epochs: int = 0  # epochs with a record in this bar
    primary_ppm: int | None = None  # uptime (node) or delivery (checker)
    secondary_ppm: int | None = None  # consensus reached (node) or accuracy (checker)
    challenges_passed: int = 0
    challenges_failed: int = 0
    level: str = "none"  # none, ok, warn, bad


@dataclass
class Incident:
    kind: str
    first_epoch: int
    last_epoch: int
    seconds: int
    summary: str
    evidence: list[str] = field(default_factory=list)
    link_epoch: int | None = None

    @property
    def epochs(self) -> int:
        return self.last_epoch - self.first_epoch + 1

    @property
    def duration_text(self) -> str:
        d, rest = divmod(self.seconds, 86_400)
        h, rest = divmod(rest, 3_600)
        m, s = divmod(rest, 60)
        if d:
            return _("%(d)s d %(h)s h") % {"d": d, "h": h}
        if h:
            return _("%(h)s h %(m)s min") % {"h": h, "m": m}
        if m:
            return _("%(m)s min") % {"m": m}
        return _("%(s)s s") % {"s": s}


def _span(unit: str) -> tuple[int, int, int]:
    """(epochs per bar, first epoch of the oldest bar, current epoch)."""
    per = max(1, UNITS[unit] // parameters.get("epoch_seconds"))
    now = epochs.current_number()
    return per, now + 1 - BARS * per, now


def _start(number: int):
    if number < 0:
        return None  # before genesis
    try:
        return epochs.epoch(number).start
    except LookupError:
        return None


def _bars(per: int, first: int) -> list[Bar]:
    return [Bar(first + k * per, first + (k + 1) * per - 1, _start(first + k * per)) for k in range(BARS)]


def _level(ppm: int | None, good: int, fair: int) -> str:
    if ppm is None:
        return "none"
    return "ok" if ppm >= good else "warn" if ppm >= fair else "bad"


def node_status(node: GpuNode, unit: str = "day") -> dict:
    per, first, now = _span(unit)
    bars = _bars(per, first)
    target = parameters.get("sla_uptime_target")
    cutoff = parameters.get("sla_uptime_cutoff")
    rows = (
        NodeEpoch.objects.filter(node=node, epoch__gte=max(0, first), epoch__lte=now)
        .order_by()
        .values(bar=(F("epoch") - first) / per)
        .annotate(
            n=Count("id"),
            n_valid=Count("id", filter=Q(valid=True)),
            up=Avg("uptime_ppm", filter=Q(valid=True)),
            ch_ok=Count("id", filter=Q(challenge_ok=True)),
            ch_bad=Count("id", filter=Q(challenge_ok=False)),
        )
    )
    for r in rows:
        bar = bars[int(r["bar"])]
        bar.epochs = r["n"]
        bar.primary_ppm = int(r["up"]) if r["up"] is not None else None
        bar.secondary_ppm = r["n_valid"] * PPM // r["n"]
        bar.challenges_passed, bar.challenges_failed = r["ch_ok"], r["ch_bad"]
        bar.level = _level(bar.primary_ppm, target, cutoff)
        if bar.challenges_failed:
            bar.level = "bad"
    measured = [b for b in bars if b.primary_ppm is not None]
    return {
        "subject": node,
        "kind": "node",
        "unit": unit,
        "bars": bars,
        "per": per,
        "overall_ppm": (
            sum(b.primary_ppm * b.epochs for b in measured) // sum(b.epochs for b in measured) if measured else None
        ),
        "incidents": node_incidents(node, max(0, first), now, target),
        "network_incidents": _network_incidents(max(0, first)),
        "target": target,
        "has_challenges": any(b.challenges_passed or b.challenges_failed for b in bars),
    }


def node_incidents(node: GpuNode, first: int, now: int, target: int) -> list[Incident]:
    """Runs of consecutive epochs in which the node was down by consensus
    (uptime below the SLA target), had no consensus, failed its spec or
    compute challenge; each with its evidence."""
    length = parameters.get("epoch_seconds")
    bad = (
        NodeEpoch.objects.filter(node=node, epoch__gte=first, epoch__lte=now)
        .filter(
            Q(valid=False, assigned__gt=0)
            | Q(valid=True, uptime_ppm__lt=target)
            | Q(spec_ok=False)
            | Q(challenge_ok=False)
        )
        .order_by("epoch")
        .values("epoch", "valid", "uptime_ppm", "reports", "assigned", "spec_ok", "challenge_ok", "status_after")
    )
    out: list[Incident] = []
    for row in bad.iterator():
        kind = _node_kind(row, target)
        last = out[-1] if out else None
        if last and last.kind == kind and row["epoch"] == last.last_epoch + 1:
            last.last_epoch = row["epoch"]
            last.seconds += length
            _node_evidence(last, row)
            continue
        incident = Incident(kind, row["epoch"], row["epoch"], length, _node_summary(kind), link_epoch=row["epoch"])
        _node_evidence(incident, row)
        out.append(incident)
    return list(reversed(out))[:MAX_INCIDENTS]


def _node_kind(row, target) -> str:
    if row["challenge_ok"] is False:
        return "challenge"
    if row["spec_ok"] is False:
        return "spec"
    if not row["valid"]:
        return "no-consensus"
    return "down"


def _node_summary(kind: str) -> str:
    return {
        "challenge": _("Failed its compute challenge"),
        "spec": _("Hardware did not match its listing"),
        "no-consensus": _("Too few checker reports for a consensus"),
        "down": _("Below the SLA uptime target by consensus"),
    }[kind]


def _node_evidence(incident: Incident, row) -> None:
    if len(incident.evidence) >= 6:
        return
    if row["valid"]:
        line = _("epoch %(e)s: uptime %(u)s by consensus of %(r)s of %(a)s reports") % {
            "e": row["epoch"],
            "u": _pct(row["uptime_ppm"]),
            "r": row["reports"],
            "a": row["assigned"],
        }
    else:
        line = _("epoch %(e)s: %(r)s of %(a)s assigned reports arrived") % {
            "e": row["epoch"],
            "r": row["reports"],
            "a": row["assigned"],
        }
    if row["status_after"]:
        line += " · " + _("status after: %(s)s") % {"s": row["status_after"]}
    incident.evidence.append(line)


def _pct(ppm) -> str:
    return "—" if ppm is None else f"{ppm / 10_000:.2f}%"


def _network_incidents(first: int) -> list:
    from apps.settlement.models import NetworkIncident

    return list(NetworkIncident.objects.filter(epoch__gte=first).order_by("-epoch")[:MAX_INCIDENTS])


def checker_status(checker: CheckerNode, unit: str = "day") -> dict:
    from apps.staking.models import JailRecord, SlashEvent

    per, first, now = _span(unit)
    bars = _bars(per, first)
    rows = (
        CheckerEpoch.objects.filter(checker=checker, epoch__gte=max(0, first), epoch__lte=now)
        .order_by()
        .values(bar=(F("epoch") - first) / per)
        .annotate(n=Count("id"), a=Sum("assigned"), d=Sum("delivered"), c=Sum("correct"), i=Sum("incorrect"))
    )
    for r in rows:
        bar = bars[int(r["bar"])]
        bar.epochs = r["n"]
        bar.primary_ppm = r["d"] * PPM // r["a"] if r["a"] else None
        judged = (r["c"] or 0) + (r["i"] or 0)
        bar.secondary_ppm = r["c"] * PPM // judged if judged else None
        bar.level = _level(bar.primary_ppm, 990_000, 900_000)
        if bar.secondary_ppm is not None and bar.secondary_ppm < 950_000:
            bar.level = (
                "bad"
                if bar.secondary_ppm < 900_000
                else max(bar.level, "warn", key=["none", "ok", "warn", "bad"].index)
            )
    length = parameters.get("epoch_seconds")
    incidents: list[Incident] = []
    for j in JailRecord.objects.filter(checker=checker, until_epoch__gte=max(0, first)).order_by("-epoch")[
        :MAX_INCIDENTS
    ]:
        end = j.released_epoch if j.released_epoch is not None else max(j.until_epoch, now)
        incidents.append(
            Incident(
                "jail",
                j.epoch,
                end,
                (end - j.epoch + 1) * length,
                _("Jailed: no assignments, no new delegations"),
                [j.reason, _("term until epoch %(e)s") % {"e": j.until_epoch}],
                link_epoch=j.epoch,
            )
        )
    for s in SlashEvent.objects.filter(checker=checker, epoch__gte=max(0, first)).order_by("-epoch")[:MAX_INCIDENTS]:
        incidents.append(
            Incident(
                "slash",
                s.infraction_epoch,
                s.epoch,
                (s.epoch - s.infraction_epoch + 1) * length,
                _("Slashed %(p)s of the stake behind it") % {"p": _pct(s.fraction_ppm)},
                [s.reason, _("fault in epoch %(f)s, applied in %(a)s") % {"f": s.infraction_epoch, "a": s.epoch}],
                link_epoch=s.epoch,
            )
        )
    incidents.sort(key=lambda i: -i.last_epoch)
    measured = [b for b in bars if b.primary_ppm is not None]
    return {
        "subject": checker,
        "kind": "checker",
        "unit": unit,
        "bars": bars,
        "per": per,
        "overall_ppm": (
            sum(b.primary_ppm * b.epochs for b in measured) // sum(b.epochs for b in measured) if measured else None
        ),
        "incidents": incidents[:MAX_INCIDENTS],
        "network_incidents": _network_incidents(max(0, first)),
        "has_challenges": False,
    }
