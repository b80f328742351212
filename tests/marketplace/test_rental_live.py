"""The rental page's live feed (``/ws/rentals/<id>/``): a report that lands
between the page's render and its socket joining (an agent starts a lease
within a second of the rental) still reaches the page, sent once on
connect; later reports are pushed as they come; only the renter listens."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from aethir_web.asgi import application
from apps.core import ledger, parameters
from apps.core.models import GpuNode, NodeStatus
from apps.marketplace import rentals, workload_spec, workloads
from apps.marketplace.models import RentalMode

from ..factories import UserFactory, fund, make_node

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(scope="module", autouse=True)
def _restore_seeded_rows(django_db_setup, django_db_blocker):
    # These tests commit for real (the consumer reads from another thread); the
    # flush after each empties the GPU catalogue a data migration seeded.
    yield
    from apps.core import catalogue_data
    from apps.core.models import GpuModel, Region

    with django_db_blocker.unblock():
        catalogue_data.load(GpuModel, Region)


def rented():
    parameters.ensure_defaults()
    ledger.genesis()
    node, _ = make_node()
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    renter = UserFactory()
    fund(renter.wallet, 1_000_000_000)
    spec = workload_spec.build(image="localhost/aethir-web:1", ports="8080")
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=10, workload=spec)
    return node, renter, rental


def socket_of(user, rental) -> WebsocketCommunicator:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(application, f"/ws/rentals/{rental.pk}/", headers=[ORIGIN, (b"cookie", cookie)])


def report(node, rental, state, **fields):
    workloads.record_status(node, {"lease": rental.pk, "state": state, **fields})


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_report_before_the_socket_joined_reaches_the_page_and_later_ones_follow():
    node, renter, rental = await database_sync_to_async(rented)()
    # The page was rendered ("Scheduled"); the agent reports before the socket joins.
    await database_sync_to_async(report)(node, rental, "running", endpoints={"8080": "127.0.0.1:40123"})
    ws = await database_sync_to_async(socket_of)(renter, rental)
    connected, _ = await ws.connect()
    assert connected
    html = await ws.receive_from(timeout=5)
    assert 'id="workload"' in html and 'hx-swap-oob="true"' in html
    assert 'data-testid="workload-state">Running' in html and "127.0.0.1:40123" in html
    await database_sync_to_async(report)(node, rental, "running", log_tail="hello from the workload\n")
    assert "hello from the workload" in await ws.receive_from(timeout=5)
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_another_person_cannot_listen_to_a_rental():
    _, _, rental = await database_sync_to_async(rented)()
    stranger = await database_sync_to_async(UserFactory)()
    ws = await database_sync_to_async(socket_of)(stranger, rental)
    connected, _ = await ws.connect()
    assert not connected


def moved():
    old_node, renter, old = rented()
    new_node, _ = make_node()
    GpuNode.objects.filter(pk=new_node.pk).update(status=NodeStatus.ONLINE)
    GpuNode.objects.filter(pk=old_node.pk).update(status=NodeStatus.OFFLINE)  # as consensus would
    new = rentals.replace(renter, old.pk, new_node.pk)
    return old_node, renter, old, new


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_old_nodes_report_reaches_the_page_of_the_rental_it_moved_to():
    old_node, renter, old, new = await database_sync_to_async(moved)()
    ws = await database_sync_to_async(socket_of)(renter, new)
    assert (await ws.connect())[0]
    assert "Moved here from" in await ws.receive_from(timeout=5)
    # The old node comes back and removes the container it no longer runs.
    await database_sync_to_async(report)(old_node, old, "removed")
    html = await ws.receive_from(timeout=5)
    assert f"Removed</span> on {old_node.name}" in html
    await ws.disconnect()
