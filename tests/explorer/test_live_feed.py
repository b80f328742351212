"""The explorer's live feed: a committed transaction reaches an open
WebSocket as an htmx out-of-band swap (through the outbox and this
process's relay), and bursts are coalesced."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction

from aethir_web.asgi import application
from apps.core import events, ledger
from apps.core.amounts import ath
from apps.core.models import OutboxEvent
from apps.explorer import consumers

from ..factories import WalletFactory, fund


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


def test_postings_in_a_batch_record_one_hint_per_account(db):
    """Settlement posts thousands of transactions in one database
    transaction: the outbox gets one hint per account, with the final
    height, written in that transaction (so only if it commits)."""
    ledger.genesis()
    alice, bob, carol = WalletFactory(), WalletFactory(), WalletFactory()
    fund(alice, ath(5))
    before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with transaction.atomic(), events.batched():
        ledger.transfer(alice, bob, 1)
        ledger.transfer(alice, carol, 1)
        last = ledger.transfer(bob, carol, 1)
    rows = list(OutboxEvent.objects.filter(id__gt=before).order_by("id"))
    groups = [r.group for r in rows]
    assert groups == [events.LEDGER_GROUP] + [
        events.account_group(pk) for pk in sorted(a.pk for a in (alice, bob, carol))
    ]
    assert {r.message["height"] for r in rows} == {last.height}

    before = rows[-1].id
    with pytest.raises(RuntimeError):
        with transaction.atomic(), events.batched():
            ledger.transfer(alice, bob, 1)
            raise RuntimeError("settlement failed half-way")
    assert not OutboxEvent.objects.filter(id__gt=before).exists()  # nothing committed, nothing announced
