"""Why a holder's voting power on a proposal is what it is: power is the ATH
the wallet owned right after the proposal's snapshot height (docs/rules.md
§8), so a new sign-up has none on proposals submitted before their first
ATH arrived. The proposal page says so with the heights and what to do."""

from apps.accounts.services import open_wallet
from apps.core.models import Checkpoint

from .models import Proposal, ProposalStatus


def explain(user, proposal: Proposal) -> dict | None:
    if proposal.snapshot_height is None or not getattr(user, "is_authenticated", False):
        return None
    wallet = open_wallet(user)
    first = Checkpoint.objects.filter(account=wallet).order_by("height").values_list("height", flat=True).first()
    waiting = (
        Proposal.objects.filter(status=ProposalStatus.DEPOSIT)
        .exclude(pk=proposal.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    return {
        "snapshot": proposal.snapshot_height,
        "first_height": first,
        "after_snapshot": first is not None and first > proposal.snapshot_height,
        "power_now": wallet.available + wallet.bonded + wallet.unbonding,  # what a snapshot would count now
        "next_proposal": waiting,
    }
