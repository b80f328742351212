"""The real container engine the workload tests run on (no fake engine
anywhere): ``CONTAINER_ENGINE_URL`` (``scripts/test`` exports it), or the one
``scripts/container-engine`` starts when it is unset. The offline image
``localhost/aethir-web:1`` (busybox httpd serving /www on 8080) is built
by that script."""

import functools
import os
import random
import subprocess
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException, NotFound

ROOT = Path(__file__).resolve().parents[2]
WEB_IMAGE = "localhost/aethir-web:1"


@functools.cache
def engine_url() -> str:
    url = os.environ.get("CONTAINER_ENGINE_URL")
    if not url:
        done = subprocess.run([str(ROOT / "scripts" / "container-engine")], capture_output=True, text=True, timeout=900)
        if done.returncode:
            pytest.fail(f"scripts/container-engine could not start a container engine:\n{done.stderr[-3000:]}")
        url = done.stdout.strip().splitlines()[-1]
    try:
        client = docker.DockerClient(base_url=url, timeout=10)
    except DockerException as exc:
        pytest.fail(
            f"the container engine at {url} (CONTAINER_ENGINE_URL) does not answer: {exc}. "
            "scripts/container-engine starts one and prints its URL."
        )
    try:
        client.images.get(WEB_IMAGE)
    except NotFound:
        pytest.fail(f"the engine at {url} has no {WEB_IMAGE}: scripts/container-engine builds it")
    finally:
        client.close()
    return url


def client() -> docker.DockerClient:
    return docker.DockerClient(base_url=engine_url(), timeout=30)


def new_node_id() -> int:
    """A node id no other test (nor a test run alongside) labels containers with."""
    return random.randint(10**8, 2 * 10**9)


def node_containers(node_id: int, c: docker.DockerClient | None = None) -> list:
    c = c or client()
    return c.containers.list(all=True, filters={"label": f"aethir.node={node_id}"})


def remove_node_containers(node_id: int) -> None:
    c = client()
    try:
        # Sparse: no inspect of each one, which races a removal under way.
        for container in c.containers.list(all=True, sparse=True, filters={"label": f"aethir.node={node_id}"}):
            try:
                container.remove(force=True)
            except NotFound:
                pass
    finally:
        c.close()
