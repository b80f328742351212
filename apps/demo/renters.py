"""Simulated renters, so the marketplace in the demo is busy like a real
one: renters ask the scheduler for a match, take its first choice, and end
some rentals early; the rest run out. Settlement bills them each epoch, so
providers earn rental fees and the charts move.

Renters act through the scheduler and rental services, exactly as the
marketplace pages do, with the same escrow and the same refusals. They
leave the demo's nodes on this machine (``local_nodes``) to people: those
run the image for real, and these renters' images need a registry.
"""

import random

from django.contrib.auth import get_user_model

from apps.core.models import GpuModel, GpuNode, NodeStatus, Region
from apps.marketplace import matching, rentals, workload_spec
from apps.marketplace.models import Rental, RentalMode, RentalStatus
from apps.marketplace.workload_templates import TEMPLATES

from . import local_nodes

User = get_user_model()

PREFIX = "renter-"
# About this share of the online nodes is rented at any time.
TARGET_SHARE_PCT = 10
IMAGES = [
    "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
    "vllm/vllm-openai:latest",
    "ollama/ollama:latest",
    "nvcr.io/nvidia/tritonserver:24.08-py3",
    "huggingface/text-generation-inference:2.2",
    "comfyanonymous/comfyui:latest",
]
PREFERENCES = [matching.Preference.BALANCED, matching.Preference.CHEAPEST, matching.Preference.EXPERIENCE]


class Renters:
    def __init__(self, rng: random.Random | None = None):
        self.rng = rng or random.Random()

    def people(self) -> list:
        return list(User.objects.filter(username__startswith=PREFIX).order_by("id"))

    def active(self):
        return Rental.objects.filter(status=RentalStatus.ACTIVE, renter__username__startswith=PREFIX)

    def target(self) -> int:
        return GpuNode.objects.filter(status=NodeStatus.ONLINE).count() * TARGET_SHARE_PCT // 100

    def rent_one(self) -> Rental | None:
        """One renter states requirements, takes the scheduler's first match."""
        people = self.people()
        if not people:
            return None
        renter = self.rng.choice(people)
        models = list(GpuModel.objects.all())
        req = matching.Requirements(
            gpu_model=self.rng.choice(models) if self.rng.random() < 0.6 else None,
            min_vram_gb=self.rng.choice([None, 24, 40, 80]),
            gpu_count=self.rng.choice([1, 1, 1, 2, 4]),
            region=self.rng.choice(list(Region.objects.all())),
            duration_hours=1,
            preference=self.rng.choice(PREFERENCES),
            renter=renter,
        )
        kept_free = local_nodes.ids()
        found = [c for c in matching.match(req, limit=1 + len(kept_free))["candidates"] if c.node.pk not in kept_free]
        if not found:
            return None
        node = found[0].node
        per_epoch = rentals.price_per_epoch(node.price_per_gpu_hour, node.gpu_count, rentals.epoch_seconds())
        # Half launch a template (with its ports, which checkers then probe), half a bare image.
        templates = [t.slug for t in TEMPLATES if not t.offline]
        if self.rng.random() < 0.5:
            workload = workload_spec.from_request(template=self.rng.choice(templates))
        else:
            workload = workload_spec.build(image=self.rng.choice(IMAGES))
        try:
            if self.rng.random() < 0.5:
                return rentals.rent(
                    renter,
                    node.pk,
                    mode=RentalMode.RESERVED,
                    workload=workload,
                    epochs_=self.rng.randint(5, 60),
                    renter_region=req.region,
                    auto_replace=self.rng.random() < 0.7,
                )
            return rentals.rent(
                renter,
                node.pk,
                mode=RentalMode.ON_DEMAND,
                workload=workload,
                escrow=per_epoch * self.rng.randint(5, 40),
                renter_region=req.region,
                auto_replace=self.rng.random() < 0.7,
            )
        except rentals.RentalError:
            return None  # taken a moment ago, or the wallet ran low: next time

    def end_one(self) -> int | None:
        """A renter whose job finished early ends the rental (refund of the
        unserved time)."""
        rental = self.active().order_by("?").select_related("renter").first()
        if rental is None:
            return None
        try:
            return rentals.end_rental(rental.renter, rental.pk, reason="Job finished early")
        except rentals.RentalError:
            return None

    def step(self) -> dict:
        """Rent towards the target share; now and then end one early."""
        active = self.active().count()
        rented = ended = 0
        if active < self.target() and self.rent_one():
            rented = 1
        if active and self.rng.random() < 0.15 and self.end_one() is not None:
            ended = 1
        return {"rented": rented, "ended": ended}
