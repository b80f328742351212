"""Epochs: fixed windows of ``epoch_seconds`` counted from genesis.

Epoch 0 starts at genesis. The length is a non-governable parameter (one
hour; one minute in demo mode), so an epoch's number never depends on later
parameter changes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from . import parameters
from .models import ChainHead


@dataclass(frozen=True)
class Epoch:
    number: int
    start: datetime
    end: datetime

    @property
    def finished(self) -> bool:
        return timezone.now() >= self.end


def genesis_time() -> datetime | None:
    return ChainHead.objects.filter(pk=1).values_list("genesis_at", flat=True).first()


def length() -> timedelta:
    return timedelta(seconds=parameters.get("epoch_seconds"))


def epoch(number: int) -> Epoch:
    start0 = genesis_time()
    if start0 is None:
        raise LookupError("No genesis yet.")
    size = length()
    start = start0 + size * number
    return Epoch(number, start, start + size)


def number_at(moment: datetime) -> int:
    start0 = genesis_time()
    if start0 is None or moment < start0:
        return 0
    return int((moment - start0) // length())


def current() -> Epoch:
    return epoch(number_at(timezone.now()))


def current_number() -> int:
    return number_at(timezone.now())
