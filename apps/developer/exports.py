"""Exports a person may download about themselves, as rows: one generator
per kind, bounded by a date range, read from the database in chunks so a
year of entries never sits in memory at once (the API streams them)."""

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core import epochs
from apps.core.errors import Refused
from apps.core.models import Entry
from apps.marketplace.models import RentalCharge
from apps.monitoring.models import CheckerReport
from apps.staking.models import RewardClaim, SlashImpact

MAX_DAYS = 366
CHUNK = 2000

KINDS = [
    ("wallet", gettext_lazy("Wallet statement")),
    ("rentals", gettext_lazy("Rental bills")),
    ("earnings", gettext_lazy("Provider earnings per node and epoch")),
    ("delegations", gettext_lazy("Delegator rewards and slashes")),
    ("checker", gettext_lazy("Checker reports and marks")),
]
FORMATS = ("csv", "json")


@dataclass(frozen=True)
class Range:
    start: datetime  # inclusive
    end: datetime  # exclusive

    def epochs(self) -> tuple[int, int]:
        """The epochs that started inside the range (inclusive bounds)."""
        first = epochs.number_at(self.start)
        if epochs.epoch(first).start < self.start:
            first += 1
        return first, epochs.number_at(self.end - timedelta(microseconds=1))


def parse_range(start: str | None, end: str | None) -> Range:
    """Whole UTC days ``start``..``end`` (ISO dates, both included)."""
    try:
        first, last = date.fromisoformat(start or ""), date.fromisoformat(end or "")
    except ValueError:
        raise Refused(_("Give 'from' and 'to' as dates, YYYY-MM-DD."), field="from") from None
    if last < first:
        raise Refused(_("'to' is before 'from'."), field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise Refused(_("An export covers at most %(days)d days.") % {"days": MAX_DAYS}, field="to")
    return Range(datetime.combine(first, time.min, UTC), datetime.combine(last + timedelta(days=1), time.min, UTC))


def _wallet(user, r: Range) -> Iterator[dict]:
    entries = (
        Entry.objects.filter(account__owner=user, tx__created_at__gte=r.start, tx__created_at__lt=r.end)
        .order_by("tx__height", "seq")
        .values_list("tx__height", "tx__created_at", "tx__kind", "tx__memo", "bucket", "amount", "tx__hash")
    )
    for height, at, kind, memo, bucket, amount, tx_hash in entries.iterator(chunk_size=CHUNK):
        yield {
            "height": height,
            "time": at.isoformat(),
            "kind": kind,
            "bucket": bucket,
            "amount_uath": amount,
            "memo": memo,
            "tx_hash": tx_hash,
        }


def _rentals(user, r: Range) -> Iterator[dict]:
    first, last = r.epochs()
    charges = (
        RentalCharge.objects.filter(rental__renter=user, epoch__gte=first, epoch__lte=last)
        .order_by("epoch", "rental_id")
        .values_list(
            "rental_id", "epoch", "node_id", "outcome", "charge", "fee", "refunded", "sla_credit", "tx_height", "reason"
        )
    )
    for rental, epoch, node, outcome, charge, fee, refunded, credit, height, reason in charges.iterator(
        chunk_size=CHUNK
    ):
        yield {
            "rental": rental,
            "epoch": epoch,
            "node": node,
            "outcome": outcome,
            "charge_uath": charge,
            "protocol_fee_uath": fee,
            "refunded_uath": refunded,
            "sla_credit_uath": credit,
            "tx_height": height,
            "reason": reason,
        }


def _earnings(user, r: Range) -> Iterator[dict]:
    first, last = r.epochs()
    rows = (
        RentalCharge.objects.filter(provider=user, epoch__gte=first, epoch__lte=last)
        .values("node_id", "node__name", "epoch")
        .annotate(earned=Sum("provider_amount"), credits=Sum("sla_credit"), charged=Sum("charge"))
        .order_by("epoch", "node_id")
    )
    for row in rows.iterator(chunk_size=CHUNK):
        yield {
            "epoch": row["epoch"],
            "node": row["node_id"],
            "node_name": row["node__name"],
            "charged_uath": row["charged"],
            "earned_uath": row["earned"],
            "sla_credits_paid_uath": row["credits"],
        }


def _delegations(user, r: Range) -> Iterator[dict]:
    claims = (
        RewardClaim.objects.filter(delegator__owner=user, created_at__gte=r.start, created_at__lt=r.end)
        .order_by("created_at", "id")
        .values_list("created_at", "epoch", "checker_id", "checker__name", "amount", "tx__height")
    )
    for at, epoch, checker, name, amount, height in claims.iterator(chunk_size=CHUNK):
        yield {
            "time": at.isoformat(),
            "epoch": epoch,
            "type": "reward",
            "checker": checker,
            "checker_name": name,
            "amount_uath": amount,
            "tx_height": height,
            "reason": "",
        }
    slashes = (
        SlashImpact.objects.filter(delegator__owner=user, slash__created_at__gte=r.start, slash__created_at__lt=r.end)
        .order_by("slash__created_at", "id")
        .values_list(
            "slash__created_at",
            "slash__epoch",
            "checker_id",
            "checker__name",
            "amount",
            "slash__tx__height",
            "slash__reason",
        )
    )
    for at, epoch, checker, name, amount, height, reason in slashes.iterator(chunk_size=CHUNK):
        yield {
            "time": at.isoformat(),
            "epoch": epoch,
            "type": "slash",
            "checker": checker,
            "checker_name": name,
            "amount_uath": -amount,
            "tx_height": height,
            "reason": reason,
        }


def _checker(user, r: Range) -> Iterator[dict]:
    first, last = r.epochs()
    reports = (
        CheckerReport.objects.filter(checker__operator=user, epoch__gte=first, epoch__lte=last)
        .order_by("epoch", "checker_id", "node_id")
        .values_list(
            "epoch",
            "checker_id",
            "node_id",
            "probes",
            "uptime_ppm",
            "task_ppm",
            "latency_ms",
            "spec_ok",
            "correct",
            "submitted_at",
        )
    )
    for epoch, checker, node, probes, uptime, task, latency, spec, correct, at in reports.iterator(chunk_size=CHUNK):
        yield {
            "epoch": epoch,
            "checker": checker,
            "node": node,
            "probes": probes,
            "uptime_ppm": uptime,
            "task_ppm": task,
            "latency_ms": latency,
            "spec_ok": spec,
            "mark": {True: "correct", False: "incorrect", None: "unjudged"}[correct],
            "submitted_at": at.isoformat(),
        }


_ROWS = {
    "wallet": _wallet,
    "rentals": _rentals,
    "earnings": _earnings,
    "delegations": _delegations,
    "checker": _checker,
}
COLUMNS = {
    "wallet": ["height", "time", "kind", "bucket", "amount_uath", "memo", "tx_hash"],
    "rentals": [
        "rental",
        "epoch",
        "node",
        "outcome",
        "charge_uath",
        "protocol_fee_uath",
        "refunded_uath",
        "sla_credit_uath",
        "tx_height",
        "reason",
    ],
    "earnings": ["epoch", "node", "node_name", "charged_uath", "earned_uath", "sla_credits_paid_uath"],
    "delegations": ["time", "epoch", "type", "checker", "checker_name", "amount_uath", "tx_height", "reason"],
    "checker": [
        "epoch",
        "checker",
        "node",
        "probes",
        "uptime_ppm",
        "task_ppm",
        "latency_ms",
        "spec_ok",
        "mark",
        "submitted_at",
    ],
}


def rows(kind: str, user, r: Range) -> Iterator[dict]:
    if kind not in _ROWS:
        raise Refused(_("Unknown export: %(kind)s.") % {"kind": kind})
    return _ROWS[kind](user, r)


# A text cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    """``value`` as a CSV cell a spreadsheet shows as text: memos and names
    are written by other people (anyone can send you 1 uATH with a memo), so a
    text starting like a formula gets a leading apostrophe. Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def as_csv(kind: str, items: Iterator[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS[kind], lineterminator="\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: _cell(v) for k, v in item.items()})
        if buffer.tell() > 16_384:
            yield buffer.getvalue()
            buffer.seek(0), buffer.truncate()
    yield buffer.getvalue()


def as_json(items: Iterator[dict]) -> Iterator[str]:
    yield "["
    first = True
    for item in items:
        yield ("" if first else ",") + "\n" + json.dumps(item)
        first = False
    yield "\n]\n"
