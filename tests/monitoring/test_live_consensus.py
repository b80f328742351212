"""When an epoch's consensus is recorded, open node pages get the new
consensus row and the node's status without a reload, pushed over the
WebSocket: the hint goes through the outbox, so it reaches them whichever
process records the epoch (the scheduler usually runs in its own)."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from aethir_web.asgi import application
from apps.core import ledger
from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerReport

from ..factories import make_checker, make_node

ORIGIN = [(b"origin", b"http://localhost")]


def _network_with_reports(epoch: int = 0):
    """A node whose assigned checkers all reported it healthy in ``epoch``."""
    node, _ = make_node()
    checkers = {c.pk: c for c in (make_checker()[0] for _ in range(3))}
    assignment.fix_round(epoch)
    for checker_id in node.assignments.filter(epoch=epoch).values_list("checker_id", flat=True):
        CheckerReport.objects.create(
            epoch=epoch,
            node=node,
            checker=checkers[checker_id],
            payload_hash="x",
            signature="y",
            probes=10,
            uptime_ppm=1_000_000,
            task_ppm=1_000_000,
            latency_ms=30,
            spec_ok=True,
            gpu_name_seen=node.gpu_model.name,
            gpu_count_seen=node.gpu_count,
        )
    return node, list(checkers.values())


async def _open_page_on_network(page: str):
    """Genesis, a node with its reports, and an open WebSocket for the
    ``page`` ("node" or "checker") of that node or its first checker."""
    await database_sync_to_async(ledger.genesis)()
    node, checkers = await database_sync_to_async(_network_with_reports)()
    pk = node.pk if page == "node" else checkers[0].pk
    ws = WebsocketCommunicator(application, f"/ws/monitoring/{page}s/{pk}/", headers=ORIGIN)
    connected, _ = await ws.connect()
    assert connected
    return ws


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_recorded_consensus_is_pushed_to_the_open_node_page():
    ws = await _open_page_on_network("node")

    await database_sync_to_async(consensus.finalize)(0)

    html = await ws.receive_from(timeout=5)
    assert 'id="node-epochs" hx-swap-oob="true"' in html
    assert "No epoch has been settled" not in html
    assert "<td>0</td>" in html and "3/3" in html and "pending → <strong>online</strong>" in html
    # The status card comes in the same push.
    assert 'id="node-facts" hx-swap-oob="true"' in html and "Online" in html
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_recorded_consensus_reaches_checker_pages_too():
    ws = await _open_page_on_network("checker")
    await database_sync_to_async(consensus.finalize)(0)
    assert 'hx-swap-oob="true"' in await ws.receive_from(timeout=5)
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_nothing_is_pushed_when_the_consensus_rolls_back():
    ws = await _open_page_on_network("node")

    def finalize_then_fail():
        from django.db import transaction

        with pytest.raises(RuntimeError), transaction.atomic():
            consensus.finalize(0)
            raise RuntimeError("settlement failed later")

    await database_sync_to_async(finalize_then_fail)()
    assert await ws.receive_nothing(timeout=1.5)
    await ws.disconnect()
