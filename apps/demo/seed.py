"""A realistic demo network, built through the same services users and
agents use (onboarding with collateral, checker activation, delegation,
proposals), so everything it creates obeys the rules.

Idempotent: each step checks what exists and only adds what is missing.
History: the network is seeded in epoch 0, then the clock's origin moves
back ``history`` epochs and those epochs get synthetic checker reports and
are settled for real, so charts and rewards have data on first load.
"""

import random
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts.services import open_wallet
from apps.core import catalogue_data, epochs, ledger, parameters
from apps.core.amounts import ath
from apps.core.models import Account, Bucket, ChainHead, CheckerNode, GpuModel, GpuNode, ModuleAccount, Region, TxKind
from apps.governance import services as governance
from apps.governance.models import Proposal
from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral
from apps.monitoring import assignment, signing
from apps.monitoring.models import CheckerReport, record_key
from apps.settlement import services as settlement
from apps.settlement.models import EpochSettlement
from apps.staking import services as staking
from apps.staking.models import Delegation

from . import local_nodes
from .holders import PROPOSALS, choose, propose
from .renters import PREFIX, Renters

User = get_user_model()

DEMO_PASSWORD = "demo-network-2026"
DEMO_ACCOUNTS = {
    "renter": "Rents GPUs in the marketplace",
    "provider": "Runs GPU nodes",
    "operator": "Operates a checker",
    "delegator": "Delegates ATH to checkers",
    "voter": "Votes on proposals",
}
# slug: (share of nodes, typical price per GPU-hour in milli-ATH)
MODEL_MIX = {
    "h100-80gb": (24, 2_500),
    "h200": (6, 3_200),
    "a100-80gb": (20, 1_400),
    "l40s": (14, 900),
    "rtx-4090": (20, 450),
    "a6000": (6, 600),
    "rtx-3090": (7, 300),
    "t4": (3, 150),
}
REGION_WEIGHT = {
    "us-east": 14,
    "us-west": 10,
    "us-central": 7,
    "ca-central": 4,
    "sa-east": 4,
    "eu-west": 9,
    "eu-central": 11,
    "eu-north": 5,
    "me-central": 3,
    "ap-south": 5,
    "ap-southeast": 9,
    "ap-east": 6,
    "ap-northeast": 8,
    "ap-oceania": 5,
}
GPU_COUNTS = [1] * 4 + [2] * 3 + [4] * 2 + [8] * 3
# Stakes on the scale of the emission: the checkers' share of a year's
# emission over about a billion ATH staked reads as a recent APR near 100%,
# as on a young network, not millions of percent.
CHECKER_SELF_STAKES_ATH = [5_000_000, 8_000_000, 12_000_000, 20_000_000, 30_000_000]
DELEGATOR_FUNDS_ATH = [25_000, 100_000, 500_000, 2_500_000]
# Most of the faucet may go to the seeded stakes; the rest stays for sign-ups.
SEED_SHARE_OF_FAUCET = 2  # at most 1/2 of what the faucet holds per step


def _users(prefix: str, n: int) -> list:
    existing = {u.username: u for u in User.objects.filter(username__startswith=prefix)}
    missing = [f"{prefix}{i:04d}" for i in range(n) if f"{prefix}{i:04d}" not in existing]
    if missing:
        created = User.objects.bulk_create(User(username=name, password="!") for name in missing)  # no login
        Account.objects.bulk_create(Account(owner=u) for u in created)
        existing.update({u.username: u for u in User.objects.filter(username__in=missing)})
    return [existing[f"{prefix}{i:04d}"] for i in range(n)]


def _fund(amounts: dict[int, int], memo: str) -> None:
    """One faucet posting for many wallets (account id -> uATH)."""
    amounts = {k: v for k, v in amounts.items() if v > 0}
    if not amounts:
        return
    faucet = ledger.module_account(ModuleAccount.FAUCET)
    legs = [ledger.Leg(faucet, Bucket.AVAILABLE, -sum(amounts.values()))]
    legs += [ledger.Leg(k, Bucket.AVAILABLE, v) for k, v in sorted(amounts.items())]
    ledger.post(TxKind.FAUCET, legs, memo=memo)


def _fit_to_faucet(amounts: dict[int, int]) -> dict[int, int]:
    """Scale ``amounts`` down pro rata (whole ATH) when they would take more
    than the faucet can spare, so a bigger ``--checkers`` still seeds."""
    budget = ledger.module_account(ModuleAccount.FAUCET).available // SEED_SHARE_OF_FAUCET
    total = sum(amounts.values())
    if total <= budget:
        return amounts
    return {k: max(ath(1), v * budget // total // ath(1) * ath(1)) for k, v in amounts.items()}


def demo_emission() -> None:
    """The emission of docs/rules.md §9 (500,000 ATH) is per one-hour epoch. A demo with
    shorter epochs keeps the hourly rate, so rewards and APRs read as they
    would on the real network. Only on a network with no settled epoch and
    no emission change yet (governance may have changed it since)."""
    seconds = parameters.get("epoch_seconds")
    per_hour = parameters.definition("emission_per_epoch").default
    if seconds >= 3600 or EpochSettlement.objects.exists() or parameters.get("emission_per_epoch") != per_hour:
        return
    parameters.apply(
        {"emission_per_epoch": per_hour * seconds // 3600},
        effective_epoch=0,
        source=f"Demo: the protocol's hourly emission in {seconds} s epochs",
        by_governance=False,
    )


def demo_accounts() -> dict:
    out = {}
    for name in DEMO_ACCOUNTS:
        user, created = User.objects.get_or_create(username=name)
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        wallet = open_wallet(user)
        if wallet.total == 0:
            _fund({wallet.pk: ath(250_000)}, f"Demo funds for {name}")
        out[name] = user
    return out


def providers_and_nodes(n_nodes: int, rng: random.Random, progress) -> None:
    have = GpuNode.objects.count()
    if have >= n_nodes:
        progress(n_nodes)
        return
    models = {m.slug: m for m in GpuModel.objects.all()}
    regions = {r.code: r for r in Region.objects.all()}
    providers = _users("provider-", max(1, n_nodes // 12))
    specs = []
    for i in range(have, n_nodes):
        slug = rng.choices(list(MODEL_MIX), weights=[w for w, _ in MODEL_MIX.values()])[0]
        count = rng.choice(GPU_COUNTS)
        price = MODEL_MIX[slug][1] * rng.randint(80, 125) // 100 * 1_000  # milli-ATH -> uATH
        region = rng.choices(list(REGION_WEIGHT), weights=list(REGION_WEIGHT.values()))[0]
        owner = providers[i % len(providers)] if i else User.objects.get(username="provider")
        specs.append(
            (
                owner,
                NodeSpec(
                    name=f"{region}-{slug}-{i:04d}",
                    gpu_model=models[slug],
                    gpu_count=count,
                    vcpu=min(16 * count, 128),
                    ram_gb=64 * count,
                    region=regions[region],
                    bandwidth_mbps=rng.choice([1_000, 2_500, 10_000, 25_000]),
                    price_per_gpu_hour=price,
                    endpoint="http://127.0.0.1:1/health",
                ),
            )
        )
    need: dict[int, int] = {}
    for owner, spec in specs:
        wallet_id = open_wallet(owner).pk
        need[wallet_id] = need.get(wallet_id, 0) + required_collateral(spec.gpu_model, spec.gpu_count)
    _fund({k: v + ath(5_000) for k, v in need.items()}, "Demo funds for providers' collateral")
    progress(have)
    for owner, spec in specs:
        register_node(owner, spec)
        progress(1)


def nodes_on_this_machine(n: int) -> list[GpuNode]:
    """The demo provider's nodes whose agents run on this machine
    (``local_nodes``): the first ``n`` are registered if missing, through
    the same onboarding, collateral and all."""
    provider = User.objects.filter(username=local_nodes.OWNER).first()
    if provider is None:
        return []
    have = set(local_nodes.nodes().values_list("name", flat=True))
    missing = [f"{local_nodes.PREFIX}{i}" for i in range(1, n + 1) if f"{local_nodes.PREFIX}{i}" not in have]
    if missing:
        spec = dict(local_nodes.SPEC)
        model = GpuModel.objects.get(slug=spec.pop("gpu_model"))
        region = Region.objects.get(code=spec.pop("region"))
        wallet = open_wallet(provider)
        _fund(
            {wallet.pk: required_collateral(model, spec["gpu_count"]) * len(missing)},
            "Demo funds for nodes on this machine",
        )
        for name in missing:
            register_node(
                provider,
                NodeSpec(name=name, gpu_model=model, region=region, endpoint="http://127.0.0.1:1/health", **spec),
            )
    return list(local_nodes.nodes())


def checkers(n: int, rng: random.Random, progress) -> list:
    existing = list(CheckerNode.objects.order_by("id"))
    if len(existing) >= n:
        progress(n)
        return existing
    operators = [User.objects.get(username="operator")] + _users("operator-", n - 1)
    have = set(CheckerNode.objects.values_list("operator_id", flat=True))
    todo = [op for op in operators if op.pk not in have]
    stakes = _fit_to_faucet({op.pk: ath(rng.choice(CHECKER_SELF_STAKES_ATH)) for op in todo})
    _fund({open_wallet(op).pk: stakes[op.pk] + ath(2_000) for op in todo}, "Demo funds for checker operators")
    regions = list(Region.objects.all())
    progress(n - len(todo))
    for op in todo:
        staking.activate_checker(
            op,
            f"checker-{op.username.split('-')[-1]}" if op.username != "operator" else "operator-checker",
            stakes[op.pk],
            commission_rate=rng.choice([20_000, 50_000, 50_000, 80_000, 100_000]),
            region=rng.choice(regions),
            epoch=0,
        )
        progress(1)
    return list(CheckerNode.objects.order_by("id"))


def delegators(n: int, checker_rows: list, rng: random.Random, progress) -> None:
    people = [User.objects.get(username="delegator")] + _users("delegator-", n - 1)
    done = set(Delegation.objects.values_list("delegator__owner_id", flat=True))
    todo = [p for p in people if p.pk not in done]
    _fund(
        _fit_to_faucet({open_wallet(p).pk: ath(rng.choice(DELEGATOR_FUNDS_ATH)) for p in todo}),
        "Demo funds for delegators",
    )
    progress(n - len(todo))
    for person in todo:
        wallet = open_wallet(person)
        wallet.refresh_from_db()
        for checker in rng.sample(checker_rows, k=min(len(checker_rows), rng.choice([1, 1, 2, 3]))):
            amount = wallet.available * rng.randint(15, 40) // 100 // 1_000_000 * 1_000_000
            if amount >= ath(1):
                staking.delegate(person, checker, amount, epoch=0)
                wallet.refresh_from_db()
        progress(1)


def proposals(rng: random.Random) -> None:
    """The first three demo proposals, opened by the ``voter`` account, with
    a first wave of votes from delegators; the simulated holders
    (``simulate_holders``) keep voting and bring new ones as these close."""
    if Proposal.objects.exists():
        return
    voter = User.objects.get(username="voter")
    created = [(propose(p, voter), p.lean) for p in PROPOSALS[:3]]
    people = list(User.objects.filter(username__startswith="delegator-")[:120])
    for p, lean in created:
        for person in rng.sample(people, k=min(len(people), rng.randint(40, 110))):
            try:
                governance.cast_vote(person, p.pk, choose(rng, lean))
            except governance.GovernanceError:
                pass  # no power at the snapshot


def renters(n: int) -> None:
    """Accounts for the simulated renters (no login), funded for rentals."""
    people = _users(PREFIX, n)
    todo = [p for p in people if open_wallet(p).total == 0]
    if todo:
        _fund({open_wallet(p).pk: ath(100_000) for p in todo}, "Demo funds for renters")


def history(n_epochs: int, rng: random.Random, progress) -> None:
    """Give the network ``n_epochs`` epochs of past: the clock's origin moves
    back so that each of those epochs is finished in turn, gets checker
    reports (most nodes healthy, a few flaky) and is settled for real.
    Simulated renters rent through the scheduler once nodes are online, so
    the past has rentals, fees and refunds too."""
    if EpochSettlement.objects.exists() or n_epochs <= 0:
        progress(n_epochs)
        return
    length = epochs.length()
    flaky = set(rng.sample(list(GpuNode.objects.values_list("pk", flat=True)), k=max(1, GpuNode.objects.count() // 25)))
    nodes = {n.pk: n for n in GpuNode.objects.select_related("gpu_model")}
    latency = {pk: rng.randint(18, 80) for pk in nodes}
    market = Renters(rng)
    keys = _history_keys(rng)
    # What each node's link delivers (80 to 98% of what it declares, as the
    # simulated nodes pace their downloads), from a generator of its own so
    # that the rest of the seed draws what it always drew.
    link = random.Random("download-speeds")
    speed = {pk: max(1, n.bandwidth_mbps * link.randint(80, 98) // 100) for pk, n in nodes.items()}
    for e in range(n_epochs):
        # "Now" is the start of epoch e + 1: epoch e is over and can settle.
        ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now() - length * (e + 1) - timedelta(seconds=1))
        assignment.fix_round(e)
        # What each node really did this epoch; honest checkers see it within a little noise.
        truth = {pk: rng.randint(700_000, 985_000) if pk in flaky else 1_000_000 for pk in nodes}
        rows = []
        for a in assignment.Assignment.objects.filter(epoch=e).values("node_id", "checker_id"):
            node = nodes[a["node_id"]]
            up = max(0, min(1_000_000, truth[a["node_id"]] - rng.randint(0, 8_000)))
            body = {
                "epoch": e,
                "node": a["node_id"],
                "probes": 12,
                "uptime_ppm": up,
                "task_ppm": up,
                "latency_ms": latency[a["node_id"]] + rng.randint(0, 6),
                "spec_ok": True,
                "gpu_name_seen": node.gpu_model.name,
                "gpu_count_seen": node.gpu_count,
                # Each checker's download of the node, a little apart.
                "download_mbps": max(1, speed[a["node_id"]] * link.randint(97, 103) // 100),
            }
            # Signed like an agent's, so the public history verifies (docs/auditing.md).
            rows.append(
                CheckerReport(
                    node_id=a["node_id"],
                    checker_id=a["checker_id"],
                    payload_hash=signing.payload_hash(body),
                    signature=signing.sign(keys[a["checker_id"]], body),
                    **{k: v for k, v in body.items() if k != "node"},
                )
            )
        CheckerReport.objects.bulk_create(rows, batch_size=2000)
        settlement.settle(e)
        # Rentals start in epoch e + 1 on the nodes consensus just put online.
        for _ in range(market.target() if e == 0 else 3):
            market.step()
        if e == 0:
            demo_renter_rentals()
        progress(1)


# The demo "renter" logs in to a rental that keeps running and one that has
# run its course, so its pages show a renter's view from the first visit.
DEMO_RENTALS = (("ollama/ollama:latest", 24 * 60), ("pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime", 3))


def demo_renter_rentals() -> None:
    from apps.marketplace import matching, rentals
    from apps.marketplace.models import Rental, RentalMode

    user = User.objects.filter(username="renter").first()
    if user is None or Rental.objects.filter(renter=user).exists():
        return
    kept_free = local_nodes.ids()
    for image, n_epochs in DEMO_RENTALS:
        req = matching.Requirements(duration_hours=1, preference=matching.Preference.CHEAPEST, renter=user)
        found = [c for c in matching.match(req, limit=1 + len(kept_free))["candidates"] if c.node.pk not in kept_free]
        if not found:
            return
        try:
            rentals.rent(user, found[0].node.pk, mode=RentalMode.RESERVED, image=image, epochs_=n_epochs)
        except rentals.RentalError:
            return


def _history_keys(rng: random.Random) -> dict:
    """A signing key per checker for the seeded past; the simulator's agents
    register keys of their own later (the history keeps both)."""
    keys = {}
    for checker in CheckerNode.objects.order_by("id"):
        key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        keys[checker.pk] = key
        checker.public_key = signing.public_hex(key)
        checker.save(update_fields=["public_key"])
        record_key(checker)
    return keys


class SeedError(ValueError):
    pass


def set_epoch_length(seconds: int) -> None:
    """Choose the demo's epoch length before it is seeded. Epoch numbers are
    counted from genesis in epochs of this length, so it cannot change once
    the network has nodes or settled epochs."""
    if parameters.get("epoch_seconds") == seconds:
        return
    if GpuNode.objects.exists() or EpochSettlement.objects.exists():
        raise SeedError(
            f"This network already runs with {parameters.get('epoch_seconds')} s epochs, and the epoch length "
            "cannot change once it has history; start from an empty database (make clean) to pick another."
        )
    try:
        parameters.apply({"epoch_seconds": seconds}, effective_epoch=0, source="Demo epoch length", by_governance=False)
    except parameters.ParameterError as exc:
        raise SeedError(str(exc)) from None


def seed(*, nodes=1000, n_checkers=60, n_delegators=300, history_epochs=8, seed=7, progress=None, on_this_machine=0):
    """The demo network (see the module). ``on_this_machine``: that many nodes
    whose agents run on this machine (``nodes_on_this_machine``), registered
    before the history so that they are online from the start."""
    progress = progress or (lambda step, n: None)
    rng = random.Random(seed)
    parameters.ensure_defaults()
    ledger.genesis()
    catalogue_data.load(GpuModel, Region)
    demo_emission()
    with transaction.atomic():
        demo_accounts()
    fresh = not GpuNode.objects.exists()
    if fresh:
        # Seed "in epoch 0": history() moves the clock's origin back afterwards.
        ChainHead.objects.filter(pk=1).update(genesis_at=timezone.now())
    providers_and_nodes(nodes, rng, lambda k: progress("GPU nodes", k))
    if on_this_machine:
        nodes_on_this_machine(on_this_machine)
    rows = checkers(n_checkers, rng, lambda k: progress("checkers", k))
    delegators(n_delegators, rows, rng, lambda k: progress("delegators", k))
    proposals(rng)
    renters(max(10, nodes // 25))
    if fresh:
        history(history_epochs, rng, lambda k: progress("history epochs", k))
