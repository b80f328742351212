import pytest

from apps.accounts.services import open_wallet
from apps.core import epochs
from apps.core.amounts import ath
from apps.governance import services
from apps.governance.models import Proposal

from ..factories import UserFactory, fund


@pytest.fixture
def holder(genesis):
    """A user whose wallet holds ``amount`` uATH (default 20,000 ATH)."""

    def make(amount=ath(20_000), **kwargs):
        user = UserFactory(**kwargs)
        if amount:
            fund(open_wallet(user), amount)
        return user

    return make


@pytest.fixture
def proposer(holder):
    return holder()


@pytest.fixture
def propose(proposer):
    """Create a proposal (text unless told), by ``proposer`` with the minimum deposit."""

    def make(user=None, kind="text", deposit=ath(10_000), **kwargs):
        kwargs.setdefault("title", "Signal: more GPUs in Lagos")
        kwargs.setdefault("description", "We should *encourage* providers there.")
        return services.create_proposal(user or proposer, kind=kind, deposit=deposit, **kwargs)

    return make


def end_voting(proposal: Proposal) -> None:
    """Voting ends at the start of ``voting_end_epoch``: move it to now
    rather than wait 24 epochs."""
    Proposal.objects.filter(pk=proposal.pk).update(voting_end_epoch=epochs.current_number())


def wallet(user):
    w = open_wallet(user)
    w.refresh_from_db()
    return w
