"""The demo's nodes on this machine: a few nodes of the ``provider`` demo
account whose agents are the real provider agent (``run_local_nodes``),
running renters' containers on this machine's container engine. A renter
in the demo launches a template on one (the "web-demo" one needs no
registry: ``scripts/container-engine`` builds its image on this machine)
and opens its endpoint in the browser. Every other node of the demo is
simulated and says so on its rentals' pages.

The engine is the one ``CONTAINER_ENGINE_URL`` or ``DOCKER_HOST`` names, or
the socket ``scripts/container-engine`` starts (under ``var/container-engine``),
whichever answers first. The demo never installs one.
"""

import os
from pathlib import Path

import docker
import requests
from django.conf import settings
from django.db import transaction
from docker.errors import DockerException, NotFound

from apps.core.models import AgentToken, GpuNode
from apps.marketplace.workload_templates import BY_SLUG

# Node names: this-machine-1, this-machine-2, ...
PREFIX = "this-machine-"
OWNER = "provider"
COUNT = 3
SPEC = {
    "gpu_model": "rtx-4090",
    "gpu_count": 1,
    "vcpu": 4,
    "ram_gb": 16,
    "region": "eu-west",
    "bandwidth_mbps": 1_000,
    # 0.3 ATH: below every simulated RTX 4090's price, so they list first.
    "price_per_gpu_hour": 300_000,
}
IMAGE = BY_SLUG["web-demo"].image


def socket_url() -> str:
    """The socket ``scripts/container-engine`` serves the engine on."""
    folder = Path(os.environ.get("CONTAINER_ENGINE_DIR") or settings.BASE_DIR / "var" / "container-engine")
    return f"unix://{folder.resolve() / 'engine.sock'}"


def candidates() -> list[str]:
    urls = [os.environ.get("CONTAINER_ENGINE_URL"), os.environ.get("DOCKER_HOST"), socket_url()]
    return list(dict.fromkeys(u for u in urls if u))


def answers(url: str, timeout: float = 10.0) -> bool:
    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return False
    try:
        client = docker.DockerClient(base_url=url, timeout=timeout)
    except (DockerException, requests.exceptions.RequestException):
        return False
    try:
        return bool(client.ping())
    except (DockerException, requests.exceptions.RequestException):
        return False
    finally:
        client.close()


def find_engine(url: str | None = None) -> str | None:
    """``url`` if it answers, else the first of ``candidates()`` that does; None if none does."""
    for candidate in [url] if url else candidates():
        if answers(candidate):
            return candidate
    return None


def has_image(url: str, image: str = IMAGE) -> bool:
    try:
        client = docker.DockerClient(base_url=url, timeout=5)
    except (DockerException, requests.exceptions.RequestException):
        return False
    try:
        client.images.get(image)
        return True
    except NotFound:
        return False
    except (DockerException, requests.exceptions.RequestException):
        return False
    finally:
        client.close()


def nodes():
    return GpuNode.objects.filter(provider__username=OWNER, name__startswith=PREFIX).order_by("pk")


def ids() -> set[int]:
    return set(nodes().values_list("pk", flat=True))


def adopt() -> list[tuple[int, str]]:
    """A fresh agent token for each of these nodes (their agents start now):
    ``[(node id, token)]``."""
    out = []
    with transaction.atomic():
        for node in nodes():
            _, raw = AgentToken.issue(node=node)
            out.append((node.pk, raw))
    return out
