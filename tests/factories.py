import threading

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connections

from apps.core import ledger
from apps.core.models import Account, AccountKind, ModuleAccount, TxKind

PASSWORD = "correct-horse-battery-staple"
# The machine the security tests register (the fields the web form and the
# API share; each adds a name, the GPU model, the region and the price).
NODE_SPEC = {
    "gpu_count": 1,
    "vcpu": 16,
    "ram_gb": 64,
    "bandwidth_mbps": 1000,
    "endpoint": "http://127.0.0.1:1/health",
    "sla_tier": "standard",
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    password = factory.LazyFunction(lambda: make_password(PASSWORD))


class WalletFactory(factory.django.DjangoModelFactory):
    """A wallet with no owner (an agent or a test counterparty)."""

    class Meta:
        model = Account

    kind = AccountKind.USER
    label = factory.Sequence(lambda n: f"wallet {n}")


def fund(account: Account, amount: int) -> None:
    """Give ``account`` ``amount`` uATH from the faucet module account."""
    ledger.transfer(ledger.module_account(ModuleAccount.FAUCET), account, amount, kind=TxKind.FAUCET, memo="test funds")
    account.refresh_from_db()


# --- The network ------------------------------------------------------------------


def make_node(
    provider=None,
    *,
    gpu="h100-80gb",
    count=1,
    region="eu-west",
    price_ath="2",
    endpoint="http://127.0.0.1:1/health",
    bandwidth=1000,
    name=None,
):
    """Register a GPU node the way a provider does (floor + collateral),
    funding the provider first. Returns (node, agent_token)."""
    from apps.core import catalogue_data
    from apps.core.amounts import parse_ath
    from apps.core.models import GpuModel, Region
    from apps.marketplace.onboarding import NodeSpec, register_node, required_collateral

    if not GpuModel.objects.exists():  # a transactional test's flush removed the seeded catalogue
        catalogue_data.load(GpuModel, Region)
    provider = provider or UserFactory()
    model = GpuModel.objects.get(slug=gpu)
    fund(provider.wallet, required_collateral(model, count))
    spec = NodeSpec(
        name=name or f"{provider.username}-{gpu}-{GpuNodeCounter.next()}",
        gpu_model=model,
        gpu_count=count,
        vcpu=16 * count,
        ram_gb=64 * count,
        region=Region.objects.get(code=region),
        bandwidth_mbps=bandwidth,
        price_per_gpu_hour=parse_ath(price_ath),
        endpoint=endpoint,
    )
    return register_node(provider, spec)


class GpuNodeCounter:
    n = 0

    @classmethod
    def next(cls):
        cls.n += 1
        return cls.n


def make_checker(operator=None, *, name=None, status="active"):
    """A checker node with its agent token. Staking services own activation;
    tests that are about monitoring only need an active row."""
    from apps.core.models import AgentToken, CheckerNode

    operator = operator or UserFactory()
    checker = CheckerNode.objects.create(operator=operator, name=name or f"checker-{operator.username}", status=status)
    _, raw = AgentToken.issue(checker=checker)
    return checker, raw


def rounds_fixed(last: int = 1_000, first: int = 0) -> None:
    """Mark epochs ``first..last`` as having had their assignment round
    fixed when they started (as the scheduler does), with nobody in them:
    for tests of staking arithmetic that is dated by rounds."""
    from apps.monitoring.models import AssignmentRound

    have = set(AssignmentRound.objects.filter(epoch__gte=first, epoch__lte=last).values_list("epoch", flat=True))
    AssignmentRound.objects.bulk_create(
        AssignmentRound(epoch=e, replication=3, checker_ids=[], node_ids=[])
        for e in range(first, last + 1)
        if e not in have
    )


def heartbeat_sample() -> dict:
    """One telemetry sample as a provider agent posts it (a busy H100), new
    each call: a fuzzer may change it in place."""
    return {
        "gpu_util": 55,
        "mem_used_mb": 1000,
        "mem_total_mb": 81920,
        "temperature_c": 61,
        "power_w": 350,
        "workloads": 1,
    }


def race(attempt, items) -> list:
    """Call ``attempt(item)`` for every item at the same moment, one thread
    each (a barrier lets them go together), each thread on database
    connections of its own, closed when it is done. Returns what the calls
    returned, in the order they finished; ``attempt`` turns the refusals it
    expects into outcomes, anything else fails the thread."""
    start = threading.Barrier(len(items))
    results, lock = [], threading.Lock()

    def run(item):
        try:
            start.wait()
            outcome = attempt(item)
        finally:
            connections.close_all()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
