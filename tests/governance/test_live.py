"""Live tallies: a committed vote reaches an open proposal page over its
WebSocket as htmx out-of-band swaps; bursts are coalesced."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from aethir_web.asgi import application
from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.parameters import ensure_defaults
from apps.governance import consumers, services

from ..factories import UserFactory, fund

ORIGIN = [(b"origin", b"http://localhost")]


@pytest.fixture(scope="module", autouse=True)
def _restore_seeded_rows(django_db_setup, django_db_blocker):
    # These tests commit for real (the consumer reads from another thread), so
    # each is followed by a flush that also empties the GPU catalogue a data
    # migration seeded; later transactional tests rely on it, so put it back
    # once this module is done (after the last flush).
    yield
    from apps.core import catalogue_data
    from apps.core.models import GpuModel, Region

    with django_db_blocker.unblock():
        catalogue_data.load(GpuModel, Region)


def setup_proposal(voters: int):
    ensure_defaults()
    ledger.genesis()
    proposer = UserFactory()
    fund(open_wallet(proposer), ath(20_000))
    people = []
    for i in range(voters):
        person = UserFactory()
        fund(open_wallet(person), ath(100 + i))
        people.append(person)
    proposal = services.create_proposal(
        proposer, kind="text", title="Live", description="Watch it.", deposit=ath(10_000)
    )
    return proposal, people


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_vote_is_pushed_to_the_open_proposal_page():
    proposal, [alice] = await database_sync_to_async(setup_proposal)(1)
    ws = WebsocketCommunicator(application, f"/ws/governance/{proposal.pk}/", headers=ORIGIN)
    connected, _ = await ws.connect()
    assert connected
    await database_sync_to_async(services.cast_vote)(alice, proposal.pk, "yes")
    html = await ws.receive_from(timeout=10)  # a bound for a busy machine, not a speed claim
    assert 'id="tally"' in html and 'hx-swap-oob="true"' in html
    assert 'data-testid="tally-yes">100 ATH' in html and 'id="voters"' in html
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_burst_of_votes_is_coalesced(monkeypatch):
    monkeypatch.setattr(consumers, "MIN_INTERVAL", 0.5)
    proposal, people = await database_sync_to_async(setup_proposal)(12)
    ws = WebsocketCommunicator(application, f"/ws/governance/{proposal.pk}/", headers=ORIGIN)
    await ws.connect()

    def burst():
        for person in people:
            services.cast_vote(person, proposal.pk, "no")

    await database_sync_to_async(burst)()
    frames = []
    while not await ws.receive_nothing(timeout=1.5):
        frames.append(await ws.receive_from())
    assert 1 <= len(frames) <= 3, f"{len(frames)} frames for 12 votes"
    total = sum(ath(100 + i) for i in range(12))
    assert f'data-testid="tally-no">{total // 1_000_000:,} ATH' in frames[-1]  # the last frame is up to date
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_unknown_proposal_is_refused():
    ws = WebsocketCommunicator(application, "/ws/governance/4040/", headers=ORIGIN)
    connected, _ = await ws.connect()
    assert not connected
