"""The templates a renter can launch without knowing an image by heart: a
few common workloads with their image, command and ports. A template only
fills in the form; the renter can still change every field.

``offline`` marks the one template whose image the project builds on the
host itself (``scripts/container-engine``): every other image comes from a
public registry, which a node without a route to it cannot pull.
"""

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    slug: str
    name: str
    image: str
    command: tuple[str, ...] | None
    ports: tuple[int, ...]
    description: str
    offline: bool = False

    @property
    def command_text(self) -> str:
        return shlex.join(self.command) if self.command else ""

    @property
    def ports_text(self) -> str:
        return ", ".join(str(p) for p in self.ports)


TEMPLATES = (
    Template(
        "web-demo",
        "Web page (busybox httpd)",
        "localhost/aethir-web:1",
        None,
        (8080,),
        "A tiny web server that shows the page it was built with: the quickest way to see a workload run and answer. "
        "Its image is built on the node itself, so it needs no registry.",
        offline=True,
    ),
    Template(
        "pytorch-shell",
        "PyTorch shell",
        "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
        ("sleep", "infinity"),
        (),
        "PyTorch with CUDA, kept running for you to exec into. Needs a route to Docker Hub.",
    ),
    Template(
        "jupyterlab",
        "JupyterLab",
        "quay.io/jupyter/pytorch-notebook:cuda12-latest",
        None,
        (8888,),
        "JupyterLab with PyTorch on port 8888 (the token is in the log tail). Needs a route to quay.io.",
    ),
    Template(
        "inference",
        "Inference server (vLLM)",
        "vllm/vllm-openai:latest",
        ("--model", "Qwen/Qwen2.5-0.5B-Instruct"),
        (8000,),
        "An OpenAI-compatible API on port 8000. Needs Docker Hub and Hugging Face.",
    ),
    Template(
        "ubuntu-ssh",
        "Ubuntu with SSH",
        "lscr.io/linuxserver/openssh-server:latest",
        None,
        (2222,),
        "An SSH server on port 2222; set PUBLIC_KEY (your public key) in the environment. Needs a route to lscr.io.",
    ),
)

BY_SLUG = {t.slug: t for t in TEMPLATES}
