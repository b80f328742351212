"""A checker slash recomputed holder by holder from the public ledger alone,
including what backed the checker at the infraction but has since left
it: stake redelegated away (cut where it went) and unbonding entries, each
``amount x fraction`` rounded down; a forged cut is found."""

import pytest

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.models import ModuleAccount
from apps.staking import services as staking

from .public_network import FIRST, build
from .test_audit_script import forge, run_audit


def slash_since_first_redelegation() -> tuple[dict, object]:
    """Checker 0 slashed 10% for an infraction in the epoch the delegator
    redelegated from it to checker 1; the closer's undelegations from it
    came later and are still unbonding."""
    net = build(payouts=True)
    slash = staking.slash_checker(net["checkers"][0], 100_000, FIRST + 1, "test", epoch=net["last"] + 1)
    return net, slash


@pytest.mark.django_db(transaction=True)
def test_redelegated_stake_and_unbonding_entries_are_cut_and_recomputed(live_server):
    net, slash = slash_since_first_redelegation()
    assert slash.redelegated_amount > 0 and slash.unbonding_amount > 0
    delegator = open_wallet(net["delegator"]).address
    # 10% of the 1,000 ATH redelegated, taken at checker 1.
    assert slash.tx.meta["stake_cuts"][str(net["checkers"][1].pk)] == {delegator: str(100 * 10**6)}
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked        1  checker slash unbonding cuts\n" in done.stdout, done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_forged_unbonding_cut_is_found(live_server):
    net, slash = slash_since_first_redelegation()
    closer = open_wallet(net["closer"]).address
    burn = ledger.module_account(ModuleAccount.BURN).address
    # One uATH less taken from the closer's unbonding entries, one less burnt.
    forge(slash.tx.height, {(closer, "unbonding"): 1, (burn, "available"): -1})
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"slash #{slash.tx.height} of checker {net['checkers'][0].pk}: checker slash unbonding cuts is" in (
        done.stdout
    ), done.stdout


@pytest.mark.django_db(transaction=True)
def test_a_forged_cut_of_redelegated_stake_is_found(live_server):
    net, slash = slash_since_first_redelegation()
    delegator = open_wallet(net["delegator"]).address
    burn = ledger.module_account(ModuleAccount.BURN).address
    dst = str(net["checkers"][1].pk)
    # One uATH more cut where the stake went, in the meta and the legs alike.
    cuts = {**slash.tx.meta["stake_cuts"]}
    cuts[dst] = {**cuts[dst], delegator: str(int(cuts[dst][delegator]) + 1)}
    forge(
        slash.tx.height, {(delegator, "bonded"): -1, (burn, "available"): 1}, meta={**slash.tx.meta, "stake_cuts": cuts}
    )
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1, done.stdout
    assert "ledger #" not in done.stdout, done.stdout
    assert f"slash #{slash.tx.height} of checker {net['checkers'][0].pk}: checker slash stake cuts is" in (
        done.stdout
    ), done.stdout
