"""The landing page: the network at a glance, and its live feed."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from aethir_web.asgi import application
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import NodeStatus

from ..factories import WalletFactory, fund, make_node


def test_landing_page_shows_each_area(client, genesis):
    node, _ = make_node(count=4)
    node.status = NodeStatus.ONLINE
    node.save()
    body = client.get("/").content.decode()
    assert 'data-testid="glance-gpus">4<' in body
    assert "supply 42,000,000,000 ATH, fixed" in body
    for url in ["/marketplace/", "/staking/", "/governance/", "/monitoring/", "/settlement/", "/explorer/"]:
        assert f'href="{url}"' in body


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_landing_page_updates_live():
    await database_sync_to_async(ledger.genesis)()
    ws = WebsocketCommunicator(application, "/ws/home/", headers=[(b"origin", b"http://localhost")])
    assert (await ws.connect())[0]
    alice, bob = await database_sync_to_async(lambda: (WalletFactory(), WalletFactory()))()
    await database_sync_to_async(fund)(alice, ath(1))
    html = await ws.receive_from(timeout=5)
    assert 'id="glance"' in html and "Ledger height" in html
    await ws.disconnect()
