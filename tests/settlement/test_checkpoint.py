"""Each settled epoch publishes a signed checkpoint of the chain, in the
same transaction (see tests/test_checkpoints.py for what it proves)."""

import pytest

from apps.core import checkpoints
from apps.core.models import ChainHead, SignedCheckpoint
from apps.settlement.services import AlreadySettled, settle


def test_settling_an_epoch_publishes_its_checkpoint(small_network_settled, client):
    epoch, report = small_network_settled
    cp = SignedCheckpoint.objects.get(epoch=epoch)
    assert cp.height == report.ledger_height == ChainHead.objects.get(pk=1).height
    body = client.get("/api/ledger/checkpoints/").json()
    assert body["results"][0] == checkpoints.as_published(cp)
    assert client.get("/api/ledger/checkpoints/latest/").json()["signature"] == cp.signature
    page = client.get("/explorer/checkpoints/").content.decode()
    assert cp.public_key in page and f"#{cp.height}" in page


@pytest.fixture
def small_network_settled(small_network):
    return 6, settle(6)


def test_a_second_settler_signs_nothing_more(small_network_settled):
    with pytest.raises(AlreadySettled):
        settle(6)
    assert SignedCheckpoint.objects.filter(epoch=6).count() == 1
