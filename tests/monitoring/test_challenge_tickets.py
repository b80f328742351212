"""Only a node's assigned checkers can make it compute: a challenge carries
the dashboard's ticket for the assignment and the checker's signature, and
a node that knows the network's key refuses (403, with the reason, before
any work) everything else. Without this anyone could queue challenges
ahead of the real checkers' and get an honest node slashed for missing
their deadlines."""

import asyncio
import contextlib

import pytest
from aiohttp import web
from rest_framework.test import APIClient

from apps.core import checkpoints
from apps.monitoring import assignment, challenge_tickets, signing
from apps.monitoring.agents.addresses import AddressPolicy, parse_endpoint
from apps.monitoring.agents.checker import CheckerAgent
from apps.monitoring.agents.provider import ProviderAgent
from apps.monitoring.agents.telemetry import GpuFacts

from ..factories import make_checker, make_node
from .fake_dashboard import fake_dashboard
from .test_challenge_agents import T4, config

EPOCH, NODE, CHECKER = 12, 7, 3
NETWORK = signing.new_key()
CHECKER_KEY = signing.new_key()


def ticket(node=NODE, checker=CHECKER, epoch=EPOCH, key=CHECKER_KEY, network=NETWORK):
    return challenge_tickets.issue(network, epoch, node, checker, signing.public_hex(key))


# --- the rule ----------------------------------------------------------------------


def ask(**fields):
    return {"epoch": EPOCH, "node": NODE, "checker": CHECKER, "n": 128, "nonce": "ab" * 16, **fields}


def refusal(request, t, signature) -> str | None:
    try:
        challenge_tickets.check(signing.public_hex(NETWORK), request, t, signature)
    except challenge_tickets.NotAllowed as exc:
        return str(exc)
    return None


def test_a_ticketed_signed_challenge_is_allowed():
    request = ask()
    assert refusal(request, ticket(), challenge_tickets.sign_request(CHECKER_KEY, request)) is None


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda r: (None, challenge_tickets.sign_request(CHECKER_KEY, r)), "needs the ticket"),
        (lambda r: (ticket(node=NODE + 1), challenge_tickets.sign_request(CHECKER_KEY, r)), "another node"),
        (lambda r: (ticket(epoch=EPOCH - 1), challenge_tickets.sign_request(CHECKER_KEY, r)), "another epoch"),
        (lambda r: (ticket(checker=CHECKER + 1), challenge_tickets.sign_request(CHECKER_KEY, r)), "another checker"),
        # A ticket the network did not issue (someone's own "network" key).
        (
            lambda r: (ticket(network=signing.new_key()), challenge_tickets.sign_request(CHECKER_KEY, r)),
            "ticket's signature does not verify",
        ),
        # A real ticket seen on the wire, replayed by someone without the checker's key.
        (
            lambda r: (ticket(), challenge_tickets.sign_request(signing.new_key(), r)),
            "challenge's signature does not verify",
        ),
        (lambda r: (ticket(), "zz" * 64), "challenge's signature does not verify"),
        (lambda r: (ticket(), None), "128 hex"),
        (lambda r: ({**ticket(), "kind": "ledger"}, challenge_tickets.sign_request(CHECKER_KEY, r)), "not a challenge"),
        (lambda r: ({**ticket(), "node": str(NODE)}, challenge_tickets.sign_request(CHECKER_KEY, r)), "another node"),
        (lambda r: ({**ticket(), "checker_key": "ab"}, challenge_tickets.sign_request(CHECKER_KEY, r)), "64 hex"),
    ],
)
def test_anything_else_is_refused_with_its_reason(make, reason):
    request = ask()
    t, signature = make(request)
    assert reason in (refusal(request, t, signature) or "allowed")


def test_the_signature_covers_the_size_and_the_nonce():
    signed_for = ask()
    signature = challenge_tickets.sign_request(CHECKER_KEY, signed_for)
    assert "does not verify" in refusal(ask(n=4096), ticket(), signature)
    assert "does not verify" in refusal(ask(nonce="cd" * 16), ticket(), signature)


# --- the agents --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def guarded_node(api_url="http://127.0.0.1:9"):
    agent = ProviderAgent(api_url=api_url, token="agt_node")
    agent.node_id = NODE
    agent.facts = GpuFacts("NVIDIA T4 16GB", 1, 16)
    agent.network_key = signing.public_hex(NETWORK)
    await agent.serve()
    try:
        yield agent
    finally:
        await agent.close()


async def run_challenge(provider, key=CHECKER_KEY, t="default") -> dict:
    agent = CheckerAgent(api_url="http://127.0.0.1:9", token="agt_checker", policy=AddressPolicy.loopback_only())
    agent.checker_id, agent.key = CHECKER, key
    agent.challenge_config = config(128)
    try:
        target = parse_endpoint(provider.endpoint)
        answer = await agent._timed_get(target, await agent.policy.resolve(target.host, target.port, 1))
        a = {"node": NODE, "endpoint": provider.endpoint, "gpu_tflops": T4, "gpu_count": 1}
        if t:
            a["ticket"] = ticket() if t == "default" else t
        return await agent.challenge(EPOCH, a, answer[0])
    finally:
        await agent.close()


@pytest.mark.asyncio
async def test_the_assigned_checker_passes_and_a_stranger_gets_no_work_done():
    async with guarded_node() as provider:
        stranger = await run_challenge(provider, key=signing.new_key())  # holds a copied ticket, not the key
        no_ticket = await run_challenge(provider, t=None)
        other_node = await run_challenge(provider, t=ticket(node=NODE + 1))
        assert provider.commitments == {}, "nothing was computed for them"
        honest = await run_challenge(provider)
    assert not stranger["passed"] and "HTTP 403: the challenge's signature does not verify" in stranger["reason"]
    assert not no_ticket["passed"] and "HTTP 403: a challenge needs the ticket" in no_ticket["reason"]
    assert not other_node["passed"]
    assert honest["passed"], honest["reason"]


@pytest.mark.asyncio
async def test_a_flood_of_unticketed_challenges_does_not_delay_the_real_one():
    async with guarded_node() as provider:
        agent = CheckerAgent(api_url="http://127.0.0.1:9", token="agt_x", policy=AddressPolicy.loopback_only())
        session = await agent._nodes_session()
        url = provider.endpoint.replace("/health", "/challenge")

        async def attack(i):
            async with session.post(url, json=ask(n=4096, nonce=f"{i:032x}")) as r:
                return r.status, (await r.json())["detail"]

        answers = await asyncio.gather(*(attack(i) for i in range(50)))
        await agent.close()
        assert {status for status, _ in answers} == {403}
        assert all("needs the ticket" in detail for _, detail in answers)
        assert provider.challenges_waiting == 0
        honest = await run_challenge(provider)
    assert honest["passed"], honest["reason"]


@pytest.mark.asyncio
async def test_a_node_picks_up_a_replaced_network_key_and_forgeries_cost_one_question_a_minute():
    replaced = signing.new_key()
    asked = []

    async def me(request):
        asked.append(1)
        return web.json_response({"node": {"id": NODE}, "network_key": signing.public_hex(replaced)})

    async with fake_dashboard({("GET", "/api/agent/me/"): me}) as url, guarded_node(url) as provider:
        # The node still holds the old key; the checkers' tickets carry the new one.
        honest = await run_challenge(provider, t=ticket(network=replaced))
        assert honest["passed"], honest["reason"]
        assert provider.network_key == signing.public_hex(replaced) and len(asked) == 1
        for _ in range(5):
            forged = await run_challenge(provider, t=ticket(network=signing.new_key()))
            assert "HTTP 403" in forged["reason"]
    assert len(asked) == 1  # within the minute, forged tickets ask nothing more


# --- the dashboard -----------------------------------------------------------------


def client(token):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return c


def test_the_dashboard_tickets_each_assignment_for_the_checkers_current_key(genesis):
    node, node_token = make_node()
    checker, checker_token = make_checker()
    key = signing.new_key()
    registered = client(checker_token).post("/api/agent/key/", {"public_key": signing.public_hex(key)}, format="json")
    assert registered.status_code == 200
    assignment.fix_round(0)

    network_key = client(node_token).get("/api/agent/me/").json()["network_key"]
    assert network_key == checkpoints.public_key_hex()
    [a] = [
        a for a in client(checker_token).get("/api/agent/assignments/").json()["assignments"] if a["node"] == node.pk
    ]
    request = {"epoch": 0, "node": node.pk, "checker": checker.pk, "n": 256, "nonce": "01" * 16}
    challenge_tickets.check(network_key, request, a["ticket"], challenge_tickets.sign_request(key, request))
    assert a["ticket"]["checker_key"] == signing.public_hex(key)
    # A checker agent's /me carries no network key to mislead anyone with; a node's does.
    assert "network_key" not in client(checker_token).get("/api/agent/me/").json()
