"""The network at a glance: one number per area, each from the same query
its own page uses."""

from django.db.models import Sum

from apps.core.models import Account, CheckerNode, ModuleAccount
from apps.explorer import queries as explorer
from apps.governance.models import Proposal, ProposalStatus
from apps.marketplace.models import Rental, RentalStatus
from apps.monitoring import queries as monitoring
from apps.settlement.models import EpochSettlement


def glance() -> dict:
    network = monitoring.overview()
    ledger = explorer.summary()
    last = EpochSettlement.objects.order_by("-epoch").first()
    return {
        "network": network,
        "ledger": ledger,
        "rentals_active": Rental.objects.filter(status=RentalStatus.ACTIVE).count(),
        "total_staked": CheckerNode.objects.aggregate(s=Sum("total_stake"))["s"] or 0,
        "last_settlement": last,
        "open_proposals": list(Proposal.objects.filter(status=ProposalStatus.VOTING).order_by("-id")[:3]),
        "open_proposal_count": Proposal.objects.filter(status=ProposalStatus.VOTING).count(),
        "community_pool": Account.objects.module(ModuleAccount.COMMUNITY_POOL).available
        if Account.objects.filter(module=ModuleAccount.COMMUNITY_POOL).exists()
        else 0,
    }
