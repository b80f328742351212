"""A small network with a few settled epochs and faults, built through the
real services, whose checker reports are really signed: what the public
API and the audit script are tested on.

Epochs 6..(5 + n): three nodes, three checkers with Ed25519 keys, a
delegator who delegates and then redelegates, a rental on a node that
fails (refund, SLA credit, downtime slash, pause), a checker that lies
about a node (incorrect reports), a parameter change half-way, and a
checker whose agent changes its signing key."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.services import open_wallet
from apps.core import ledger, parameters
from apps.core.amounts import ath
from apps.core.models import ChainHead
from apps.marketplace import rentals
from apps.marketplace.models import RentalMode
from apps.monitoring import assignment, consensus, signing
from apps.monitoring.models import Assignment, CheckerReport, record_key
from apps.settlement import services as settlement
from apps.staking import services as staking

from ..factories import UserFactory, fund, make_node

FIRST = 6


def set_epoch(n: int) -> None:
    """Move the clock's origin so that epoch ``n`` has just begun."""
    length = parameters.get("epoch_seconds")
    ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now() - timedelta(seconds=length * n + 1))


def _truth(epoch: int, node_name: str) -> int:
    """What a node really did: B fails from the second epoch on."""
    if node_name == "B" and epoch >= FIRST + 1:
        return 400_000
    return 1_000_000


def _report(epoch, node, checker, key, *, liar: bool, contradict: bool = False):
    up = _truth(epoch, node.name)
    if liar and node.name == "A" and epoch >= FIRST + 1:
        up = 300_000  # far from the others' consensus: incorrect
    body = {
        "epoch": epoch,
        "node": node.pk,
        "probes": 10,
        # More requests answered than connections made: false on its face.
        "uptime_ppm": up - 100_000 if contradict else up,
        "task_ppm": up,
        "latency_ms": 30 + checker.pk % 3,
        "spec_ok": True,
        "gpu_name_seen": node.gpu_model.name,
        "gpu_count_seen": node.gpu_count,
        "workload_ppm": None,
        # Measured from the second epoch on: earlier reports sign no figure.
        "download_mbps": 900 + 10 * (checker.pk % 3) if epoch > FIRST else None,
    }
    fields = {k: v for k, v in body.items() if k not in ("epoch", "node")}
    return CheckerReport(
        epoch=epoch,
        node=node,
        checker=checker,
        payload_hash=signing.payload_hash(body),
        signature=signing.sign(key, body),
        **fields,
    )


def build(n_epochs: int = 4, *, contradicting_checker: int | None = None, payouts: bool = False) -> dict:
    """``contradicting_checker``: the index of a checker one of whose
    reports in the last epoch contradicts itself, so that settlement jails
    and slashes it (its stake: its operator's and the redelegated part).
    ``payouts``: three more delegators whose rewards are paid out: one
    claims (from every checker, then from one), one auto-compounds, one
    shrinks, tops up and then closes its positions (undelegating one,
    redelegating the other away)."""
    parameters.ensure_defaults()
    ledger.genesis()
    parameters.apply({"emission_per_epoch": ath(1_000)}, effective_epoch=0, source="test")
    set_epoch(FIRST - 1)
    provider = UserFactory(username="login-provider", email="provider@example.org")
    nodes = [
        make_node(provider, gpu="h100-80gb", count=1, name="A")[0],
        make_node(provider, gpu="a100-80gb", count=2, name="B")[0],
        make_node(provider, gpu="rtx-4090", count=4, name="C")[0],
    ]
    checkers, keys = [], {}
    for i in range(3):
        operator = UserFactory(username=f"login-operator{i}", email=f"operator{i}@example.org")
        fund(operator.wallet, ath(10_000))
        c = staking.activate_checker(operator, f"checker-{i}", ath(10_000), commission_rate=50_000)
        key = signing.new_key()
        c.public_key = signing.public_hex(key)
        c.save(update_fields=["public_key"])
        record_key(c)
        checkers.append(c)
        keys[c.pk] = key
    liar = checkers[2]
    delegator = UserFactory(username="login-delegator", email="delegator@example.org")
    fund(open_wallet(delegator), ath(5_000))
    renter = UserFactory(username="login-renter", email="renter@example.org")
    fund(open_wallet(renter), ath(1_000))
    holders = {}
    if payouts:
        for name in ("claimer", "compounder", "closer"):
            holders[name] = UserFactory(username=f"login-{name}", email=f"{name}@example.org")
            fund(open_wallet(holders[name]), ath(5_000))
    by_id = {n.pk: n for n in nodes}
    for e in range(FIRST, FIRST + n_epochs):
        set_epoch(e)
        if payouts:
            _move_payout_stake(e, checkers, holders)
        if e == FIRST:
            staking.delegate(delegator, checkers[0], ath(2_000), epoch=e)
        if e == FIRST + 1:
            staking.redelegate(delegator, checkers[0], checkers[1], ath(1_000), epoch=e)
            rentals.rent(renter, nodes[1].pk, mode=RentalMode.RESERVED, epochs_=3, image="ollama/ollama:latest")
            # On demand on a healthy node: two epochs served, then what is
            # left of the escrow (7 uATH) goes back to the renter.
            nodes[0].refresh_from_db()
            per_epoch = rentals.quote(renter, nodes[0], mode=RentalMode.ON_DEMAND, escrow=10**9).price_per_epoch
            rentals.rent(
                renter, nodes[0].pk, mode=RentalMode.ON_DEMAND, escrow=2 * per_epoch + 7, image="ollama/ollama:latest"
            )
            staking.set_commission(checkers[1].operator, checkers[1], 60_000, epoch=e)
        if e == FIRST + 2:
            # A new agent for checker 0 brings a new key: older reports still verify.
            key = signing.new_key()
            checkers[0].public_key = signing.public_hex(key)
            checkers[0].save(update_fields=["public_key"])
            record_key(checkers[0])
            keys[checkers[0].pk] = key
            parameters.apply({"emission_per_epoch": ath(1_200)}, effective_epoch=e + 1, source="test change")
        assignment.fix_round(e)
        contradicting = None
        if contradicting_checker is not None and e == FIRST + n_epochs - 1:
            contradicting = checkers[contradicting_checker].pk
        rows, contradicted = [], False
        for a in Assignment.objects.filter(epoch=e).select_related("checker"):
            contradict = a.checker_id == contradicting and not contradicted
            contradicted = contradicted or contradict
            rows.append(
                _report(
                    e,
                    by_id[a.node_id],
                    a.checker,
                    keys[a.checker_id],
                    liar=a.checker_id == liar.pk,
                    contradict=contradict,
                )
            )
        CheckerReport.objects.bulk_create(rows)
        set_epoch(e + 1)
        consensus.finalize(e)
        settlement.settle(e)
    return {"nodes": nodes, "checkers": checkers, "delegator": delegator, "renter": renter, "last": e, **holders}


def _move_payout_stake(e: int, checkers: list, holders: dict) -> None:
    """The ``payouts`` delegators' moves in epoch ``e`` (odd amounts, so
    that every payout leaves a fraction behind)."""
    claimer, compounder, closer = holders["claimer"], holders["compounder"], holders["closer"]
    if e == FIRST:
        staking.delegate(claimer, checkers[0], 700_123_457, epoch=e)
        staking.delegate(claimer, checkers[1], 333_333_333, epoch=e)
        staking.delegate(compounder, checkers[1], ath(1_000), epoch=e)
        staking.set_auto_compound(compounder, checkers[1], True)
        staking.delegate(closer, checkers[0], 500_000_001, epoch=e)
        staking.delegate(closer, checkers[1], ath(300), epoch=e)
    if e == FIRST + 2:
        staking.claim_rewards(claimer, epoch=e)
        staking.undelegate(closer, checkers[0], 200_000_000, epoch=e)
        staking.delegate(closer, checkers[0], 50_000_007, epoch=e)
    if e == FIRST + 3:
        staking.claim_rewards(claimer, checkers[0], epoch=e)
        staking.undelegate(closer, checkers[0], 350_000_008, epoch=e)
        staking.redelegate(closer, checkers[1], checkers[2], ath(300), epoch=e)
