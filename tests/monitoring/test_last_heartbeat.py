"""A node's last heartbeat is read from its samples: an agent's post writes
the samples and nothing of the node row (the marketplace's hottest), and the
pages and the API still show when the newest sample was taken."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.models import GpuNode

from ..factories import make_node
from .test_heartbeat_ingest import agent, sample

pytestmark = pytest.mark.django_db


def test_a_heartbeat_post_does_not_write_the_node_row(genesis):
    node, token = make_node()
    agent(token).post("/api/agent/heartbeats/", {"samples": [sample(timezone.now())]}, format="json")  # token known
    node_table = GpuNode._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        r = agent(token).post(
            "/api/agent/heartbeats/", {"samples": [sample(timezone.now() + timedelta(seconds=5))]}, format="json"
        )
    assert r.status_code == 201
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes and not [sql for sql in writes if f'"{node_table}"' in sql.split(" WHERE ")[0]]


def test_the_node_page_and_the_api_show_the_newest_sample_time(client, genesis):
    node, token = make_node()
    page = client.get(f"/monitoring/nodes/{node.pk}/").content.decode()
    assert 'data-testid="last-heartbeat">none recorded<' in page
    assert APIClient().get(f"/api/monitoring/nodes/{node.pk}/").json()["last_heartbeat_at"] is None

    newest = timezone.now().replace(microsecond=0) - timedelta(seconds=3)
    samples = [sample(newest - timedelta(seconds=10)), sample(newest), sample(newest - timedelta(seconds=5))]
    assert agent(token).post("/api/agent/heartbeats/", {"samples": samples}, format="json").status_code == 201

    page = client.get(f"/monitoring/nodes/{node.pk}/").content.decode()
    assert f'data-testid="last-heartbeat">{newest:%H:%M:%S} UTC<' in page
    detail = APIClient().get(f"/api/monitoring/nodes/{node.pk}/").json()
    listed = {n["id"]: n for n in APIClient().get("/api/monitoring/nodes/").json()["results"]}
    assert detail["last_heartbeat_at"] == listed[node.pk]["last_heartbeat_at"]
    assert detail["last_heartbeat_at"].startswith(newest.strftime("%Y-%m-%dT%H:%M:%S"))
