"""One small world for the security tests: an owner with money, a GPU node
they provide, a rental they hold on someone else's node, a checker they
operate with a delegation, and a proposal they made; a stranger with an
empty wallet; and agents of other nodes and checkers."""

import pytest
from django.apps import apps as django_apps
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import open_wallet
from apps.core.amounts import ath
from apps.core.models import Account, AgentToken, ChainHead, GpuNode, NodeStatus
from apps.developer import tokens
from apps.governance import services as governance
from apps.marketplace import rentals
from apps.notifications.models import WebhookEndpoint
from apps.staking import services as staking

from ..factories import UserFactory, fund, make_checker, make_node

IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"


def online(node):
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE, health_score=1_000_000)
    node.refresh_from_db()
    return node


class World:
    pass


@pytest.fixture
def world(genesis):
    w = World()
    w.owner = UserFactory(username="owner")
    w.wallet = open_wallet(w.owner)
    fund(w.wallet, ath(60_000))
    # The owner provides a node...
    w.node, w.node_token = make_node(provider=w.owner, name="owner-node")
    online(w.node)
    # ...and rents another provider's node.
    w.provider2 = UserFactory(username="provider2")
    w.rented_node, w.rented_node_token = make_node(provider=w.provider2, name="rented-node")
    online(w.rented_node)
    w.rental = rentals.rent(w.owner, w.rented_node.pk, mode="on_demand", image=IMAGE, escrow=ath(100))
    # A checker the owner operates, with the owner's own delegation to it.
    w.checker = staking.activate_checker(w.owner, "Alpha", ath(10_000), commission_rate=50_000, epoch=0)
    _, w.checker_token = AgentToken.issue(checker=w.checker)
    staking.delegate(w.owner, w.checker, ath(100))
    # A proposal the owner made.
    w.proposal = governance.create_proposal(
        w.owner, kind="text", deposit=ath(10_000), title="Signal: more GPUs", description="Say yes."
    )
    # The owner's API token and webhook endpoint (made directly: no DNS in tests).
    w.api_token, _ = tokens.issue(w.owner, "owner script", ["read"])
    w.endpoint = WebhookEndpoint.objects.create(user=w.owner, url="https://hooks.example.org/aethir", secret="s" * 64)
    # Someone else: logged in, but owns nothing and holds nothing.
    w.stranger = UserFactory(username="stranger")
    open_wallet(w.stranger)
    # Other agents.
    w.other_node, w.other_node_token = make_node(name="other-node")
    w.other_checker, w.other_checker_token = make_checker(name="other-checker")
    w.wallet.refresh_from_db()
    return w


def project_models():
    return [m for m in django_apps.get_models() if m.__module__.startswith("apps.")]


def snapshot():
    """Everything a wrong caller must not move: the chain head, the row count
    of every project model, and every account's buckets."""
    head = ChainHead.objects.values_list("height", "hash", "supply").first()
    counts = {m._meta.label: m.objects.count() for m in project_models()}
    balances = {
        a["address"]: a
        for a in Account.objects.values("address", "available", "escrowed", "collateral", "bonded", "unbonding")
    }
    return {"head": head, "counts": counts, "balances": balances}


def owned_rows(w):
    """Every field of the owner's objects, to catch an update in place."""
    from apps.core.models import CheckerNode
    from apps.governance.models import Proposal
    from apps.marketplace.models import Rental

    return {
        "node": list(GpuNode.objects.filter(pk=w.node.pk).values()),
        "rental": list(Rental.objects.filter(pk=w.rental.pk).values()),
        "checker": list(CheckerNode.objects.filter(pk=w.checker.pk).values()),
        "proposal": list(Proposal.objects.filter(pk=w.proposal.pk).values()),
        "api_token": list(type(w.api_token).objects.filter(pk=w.api_token.pk).values()),
        "endpoint": list(type(w.endpoint).objects.filter(pk=w.endpoint.pk).values()),
        "owner": list(type(w.owner).objects.filter(pk=w.owner.pk).values("password", "username", "is_active")),
    }


def agent(token):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return c


@pytest.fixture
def anon():
    return Client()


@pytest.fixture
def stranger_client(world):
    c = Client()
    c.force_login(world.stranger)
    return c


@pytest.fixture
def owner_client(world):
    c = Client()
    c.force_login(world.owner)
    return c
