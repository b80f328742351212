"""The explorer's live feed: a committed transaction reaches an open
WebSocket as an htmx out-of-band swap, and bursts are coalesced."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from aethir_web.asgi import application
from apps.core import ledger
from apps.core.amounts import ath
from apps.explorer import consumers

from .factories import WalletFactory, fund


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_new_transaction_is_pushed_to_the_open_feed():
    await database_sync_to_async(ledger.genesis)()
    alice, bob = await database_sync_to_async(lambda: (WalletFactory(), WalletFactory()))()
    await database_sync_to_async(fund)(alice, ath(5))

    ws = WebsocketCommunicator(application, "/ws/ledger/", headers=[(b"origin", b"http://localhost")])
    connected, _ = await ws.connect()
    assert connected
    tx = await database_sync_to_async(ledger.transfer)(alice, bob, 1, memo="pushed live")
    html = await ws.receive_from(timeout=5)
    assert 'id="tx-rows"' in html and 'hx-swap-oob="true"' in html
    assert "pushed live" in html and f"#{tx.height}" in html
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_burst_of_transactions_is_coalesced(monkeypatch):
    monkeypatch.setattr(consumers, "MIN_INTERVAL", 0.5)
    await database_sync_to_async(ledger.genesis)()
    alice, bob = await database_sync_to_async(lambda: (WalletFactory(), WalletFactory()))()
    await database_sync_to_async(fund)(alice, ath(5))
    ws = WebsocketCommunicator(application, "/ws/ledger/", headers=[(b"origin", b"http://localhost")])
    await ws.connect()

    def burst():
        for i in range(20):
            ledger.transfer(alice, bob, 1, memo=f"burst {i}")

    await database_sync_to_async(burst)()
    frames = []
    while not await ws.receive_nothing(timeout=1.5):
        frames.append(await ws.receive_from())
    assert 1 <= len(frames) <= 3, f"{len(frames)} frames for 20 transactions"
    assert "burst 19" in frames[-1]  # the last frame is up to date
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_foreign_origins_are_refused():
    ws = WebsocketCommunicator(application, "/ws/ledger/", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await ws.connect()
    assert not connected
