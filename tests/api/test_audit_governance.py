"""Proposal deposits and community-pool spends, recomputed from the public
API alone: each deposit from its proposal (at least the minimum in force
when it was made), the tally from the votes (each vote's power from the
ledger at the snapshot), the deposit's refund or burn from the tally, each
spend from the passed proposal's amount and recipient; a forged amount is
found."""

import pytest

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import LedgerTransaction, TxKind
from apps.governance import services as governance
from apps.governance.models import Proposal, ProposalStatus

from ..factories import UserFactory, fund
from ..governance.conftest import end_voting
from .public_network import FIRST, build
from .test_audit_script import forge, run_audit


def govern() -> dict:
    """After the network's epochs: a spend that passes (its deposit refunded,
    the pool paying its recipient) and a text proposal nobody votes on (its
    deposit burned)."""
    net = build()
    voter = UserFactory(username="login-voter", email="voter@example.org")
    fund(open_wallet(voter), ath(1_000_000))
    recipient = UserFactory(username="login-grantee", email="grantee@example.org")
    spend = governance.create_proposal(
        voter,
        kind="spend",
        title="Grant: a client library",
        description="Pay for it.",
        deposit=ath(10_000) + 3,
        recipient_address=open_wallet(recipient).address,
        amount=ath(50) + 11,
    )
    text = governance.create_proposal(
        voter, kind="text", title="Signal: more GPUs", description="Please.", deposit=ath(12_000)
    )
    governance.cast_vote(voter, spend.pk, "yes")
    for p in (spend, text):
        end_voting(p)
        governance.finalise(p.pk)
    spend.refresh_from_db()
    text.refresh_from_db()
    assert spend.status == ProposalStatus.EXECUTED and text.status == ProposalStatus.REJECTED
    return {**net, "spend": spend, "text": text, "recipient": recipient}


def posting(kind: str, proposal: Proposal) -> LedgerTransaction:
    return LedgerTransaction.objects.get(kind=kind, meta__proposal=proposal.pk)


@pytest.mark.django_db(transaction=True)
def test_the_audit_recomputes_every_deposit_its_fate_and_every_spend(live_server):
    net = govern()
    assert posting(TxKind.BURN, net["text"]) and posting(TxKind.DEPOSIT_REFUND, net["spend"])
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    for what, n in (
        ("proposal deposit posting", 2),
        ("proposal deposit fate posting", 2),
        ("community-pool spend posting", 1),
        ("proposal snapshot power", 2),
        ("vote power", 1),
        ("proposal tally", 2),
        ("proposal postings", 2),
    ):
        assert f"checked {n:>8}  {what}\n" in done.stdout, (what, done.stdout)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "which", "delta", "found"),
    [
        (TxKind.POOL_SPEND, "spend", 1, "community-pool spend posting"),
        (TxKind.DEPOSIT, "text", 1, "proposal deposit posting"),
        # One less refunded: the deposits account is left 1 uATH, not drained below zero.
        (TxKind.DEPOSIT_REFUND, "spend", -1, "proposal deposit fate posting"),
    ],
)
def test_a_forged_governance_amount_is_found(live_server, kind, which, delta, found):
    net = govern()
    tx = posting(kind, net[which])
    legs = list(tx.entries.select_related("account"))
    src = next(e for e in legs if e.amount < 0)
    dst = next(e for e in legs if e.amount > 0)
    # One uATH more (or less) moved, on both sides: the chain still verifies.
    forge(tx.height, {(src.account.address, src.bucket): -delta, (dst.account.address, dst.bucket): delta})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"posting #{tx.height}: {found} is" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_tally_that_is_not_the_sum_of_the_votes_is_found(live_server):
    net = govern()
    Proposal.objects.filter(pk=net["spend"].pk).update(no=1)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert f"proposal #{net['spend'].pk}: proposal tally is" in done.stdout, done.stdout


@pytest.mark.django_db
def test_proposals_and_votes_are_public_in_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    net = govern()
    with django_assert_max_num_queries(3):
        proposals = client.get("/api/v1/public/proposals/", {"page_size": 500}).json()["results"]
    with django_assert_max_num_queries(3):
        votes = client.get("/api/v1/public/votes/", {"page_size": 500}).json()["results"]
    by_id = {p["id"]: p for p in proposals}
    spend, text = by_id[net["spend"].pk], by_id[net["text"].pk]
    assert (spend["deposit_fate"], text["deposit_fate"]) == ("refunded", "burned")
    assert spend["spend_height"] == posting(TxKind.POOL_SPEND, net["spend"]).height and text["spend_height"] is None
    assert spend["recipient"] == open_wallet(net["recipient"]).address and spend["amount"] == ath(50) + 11
    assert [(v["proposal"], v["choice"]) for v in votes] == [(net["spend"].pk, "yes")]
