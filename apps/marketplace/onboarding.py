"""Provider onboarding (docs/rules.md §3): the hardware floor, the
collateral lock, and the agent token a new node starts with."""

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext

from apps.accounts.services import open_wallet
from apps.core import ledger, parameters
from apps.core.amounts import display_uath
from apps.core.errors import DomainError
from apps.core.models import AgentToken, Bucket, GpuModel, GpuNode, Region, SlaTier, TxKind

# Bounds that keep the scheduler's integer score arithmetic (price x GPUs x
# 1,000,000) inside a signed 64-bit column.
MAX_GPUS = 64
MAX_PRICE_PER_GPU_HOUR = 100_000 * 1_000_000


class OnboardingError(DomainError):
    """A registration that was refused; the message says why."""


@dataclass(frozen=True)
class NodeSpec:
    name: str
    gpu_model: GpuModel
    gpu_count: int
    vcpu: int
    ram_gb: int
    region: Region
    bandwidth_mbps: int
    price_per_gpu_hour: int
    endpoint: str
    sla_tier: str = SlaTier.STANDARD

    @classmethod
    def from_input(cls, data: dict, price: str = "price_per_gpu_hour") -> "NodeSpec":
        """From the provider form's or the API's validated input; ``price``
        names the field holding the price per GPU-hour (the form calls it ``price``)."""
        return cls(
            name=data["name"],
            gpu_model=data["gpu_model"],
            gpu_count=data["gpu_count"],
            vcpu=data["vcpu"],
            ram_gb=data["ram_gb"],
            region=data["region"],
            bandwidth_mbps=data["bandwidth_mbps"],
            price_per_gpu_hour=data[price],
            endpoint=data["endpoint"],
            sla_tier=data["sla_tier"],
        )


def required_collateral(gpu_model: GpuModel, gpu_count: int, epoch: int | None = None) -> int:
    """Stake weight (the model's K-value) x GPU count x the collateral coefficient."""
    return gpu_model.stake_weight * gpu_count * parameters.get("collateral_coefficient", epoch)


def check_floor(spec: NodeSpec) -> None:
    p = parameters.current()
    if spec.gpu_model.vram_gb < p["min_vram_gb"]:
        raise OnboardingError(
            gettext("%(name)s has %(vram_gb)s GB of VRAM; the network's floor is %(min_vram_gb)s GB.")
            % {"name": spec.gpu_model.name, "vram_gb": spec.gpu_model.vram_gb, "min_vram_gb": p["min_vram_gb"]}
        )
    if spec.bandwidth_mbps < p["min_bandwidth_mbps"]:
        raise OnboardingError(
            gettext("%(bandwidth_mbps)s Mbps is below the network's bandwidth floor of %(min_bandwidth_mbps)s Mbps.")
            % {"bandwidth_mbps": spec.bandwidth_mbps, "min_bandwidth_mbps": p["min_bandwidth_mbps"]}
        )
    if spec.gpu_count < 1:
        raise OnboardingError(gettext("A node needs at least one GPU."))
    if spec.gpu_count > MAX_GPUS:
        raise OnboardingError(
            gettext("A node has at most %(max_gpus)s GPUs; register larger machines as several nodes.")
            % {"max_gpus": MAX_GPUS}
        )
    # A node at price 0 would rent for nothing and score as the cheapest.
    if spec.price_per_gpu_hour <= 0:
        raise OnboardingError(gettext("The price must be more than zero."))
    if spec.price_per_gpu_hour > MAX_PRICE_PER_GPU_HOUR:
        raise OnboardingError(
            gettext("The price is capped at %(max_price_per_gpu_hour)s per GPU-hour.")
            % {"max_price_per_gpu_hour": display_uath(MAX_PRICE_PER_GPU_HOUR)}
        )


@ledger.serialised
def register_node(provider, spec: NodeSpec) -> tuple[GpuNode, str]:
    """Register a node as ``pending`` and lock its collateral; returns the
    node and its agent token (shown once)."""
    check_floor(spec)
    collateral = required_collateral(spec.gpu_model, spec.gpu_count)
    wallet = open_wallet(provider)
    with transaction.atomic():
        node = GpuNode.objects.create(
            provider=provider,
            name=spec.name,
            gpu_model=spec.gpu_model,
            gpu_count=spec.gpu_count,
            vcpu=spec.vcpu,
            ram_gb=spec.ram_gb,
            region=spec.region,
            bandwidth_mbps=spec.bandwidth_mbps,
            price_per_gpu_hour=spec.price_per_gpu_hour,
            endpoint=spec.endpoint,
            sla_tier=spec.sla_tier,
            required_collateral=collateral,
            collateral=collateral,
        )
        if collateral:
            try:
                ledger.move(
                    wallet,
                    Bucket.AVAILABLE,
                    Bucket.COLLATERAL,
                    collateral,
                    kind=TxKind.COLLATERAL_LOCK,
                    memo=f"Collateral for node {spec.name}",
                    meta={"node": node.pk},
                    actor=provider,
                )
            except ledger.InsufficientFunds:
                raise OnboardingError(
                    gettext(
                        "This node needs %(collateral)s of collateral (%(stake_weight)s x %(gpu_count)s GPUs x "
                        "%(get)s); your available balance is %(available)s."
                    )
                    % {
                        "collateral": display_uath(collateral),
                        "stake_weight": spec.gpu_model.stake_weight,
                        "gpu_count": spec.gpu_count,
                        "get": display_uath(parameters.get("collateral_coefficient")),
                        "available": display_uath(wallet.available),
                    }
                ) from None
        _, raw = AgentToken.issue(node=node)
    return node, raw
