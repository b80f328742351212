"""Nothing private in public answers (docs/rules.md §7b): the OpenAPI schema
of every public endpoint names no private field, and no anonymous answer
of the API carries a login name, an e-mail, a secret or a rental's
environment values, on a network whose people have all of them."""

import re

import pytest
from django.urls import get_resolver

from apps.core.amounts import ath
from apps.core.models import LedgerTransaction
from apps.governance import services as governance
from apps.marketplace import rentals, workload_spec
from apps.marketplace.models import Rental, RentalMode

from ..factories import fund
from ..security.routes import CONVERTER, _walk
from .public_network import FIRST, build

PUBLIC = "/api/v1/public/"
# Field names that are private whatever they hold.
PRIVATE_NAME = re.compile(r"e-?mail|username|user_name|password|secret|token|key_hash|first_name|last_name|^env$|env_")
ENV_SECRET, ENV_PLAIN = "s3cr3t-env-value-91", "plain-env-value-77"


@pytest.fixture
def schema(client):
    return client.get("/api/schema/", {"format": "json"}).json()


def resolve(schema, node, seen=()):
    """Every property name reachable from ``node`` in the schema."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return set()
            return resolve(schema, schema["components"]["schemas"][name], (*seen, name))
        names = set(node.get("properties", {}))
        for value in node.values():
            names |= resolve(schema, value, seen)
        return names
    if isinstance(node, list):
        return set().union(*(resolve(schema, v, seen) for v in node)) if node else set()
    return set()


def public_gets(schema) -> list[str]:
    return [p for p, ops in schema["paths"].items() if p.startswith(PUBLIC) and "get" in ops]


def test_the_schema_of_every_public_endpoint_names_no_private_field(db, schema):
    paths = public_gets(schema)
    assert len(paths) >= 20
    for path in paths:
        op = schema["paths"][path]["get"]
        assert set(op) >= {"responses"} and "200" in op["responses"], path
        names = resolve(schema, op["responses"]["200"])
        assert names, path
        private = {n for n in names if PRIVATE_NAME.search(n.lower())}
        assert not private, (path, private)
        # Read-only: nothing but GET.
        assert set(schema["paths"][path]) <= {"get", "parameters"}, path


def keys_and_strings(value, keys, strings):
    if isinstance(value, dict):
        for k, v in value.items():
            keys.add(k)
            keys_and_strings(v, keys, strings)
    elif isinstance(value, list):
        for v in value:
            keys_and_strings(v, keys, strings)
    elif isinstance(value, str):
        strings.append(value)


@pytest.mark.django_db
def test_no_anonymous_api_answer_carries_personal_data(client, schema):
    net = build()
    spec = workload_spec.build(
        image="ollama/ollama:latest",
        env=[
            {"name": "API_KEY", "value": ENV_SECRET, "secret": True},
            {"name": "MODE", "value": ENV_PLAIN, "secret": False},
        ],
    )
    rentals.rent(net["renter"], net["nodes"][0].pk, mode=RentalMode.RESERVED, epochs_=2, workload=spec)
    people = [net["delegator"], net["renter"], net["nodes"][0].provider, *(c.operator for c in net["checkers"])]
    needles = [p.username for p in people] + [p.email for p in people] + [ENV_SECRET, ENV_PLAIN]
    # Every GET of the whole API without a path parameter that answers an
    # anonymous client, the public prefix first (those must all answer).
    paths = [p for p, ops in schema["paths"].items() if "get" in ops and "{" not in p]
    answered = 0
    for path in sorted(paths, key=lambda p: not p.startswith(PUBLIC)):
        r = client.get(path, {"page_size": 500} if path.startswith(PUBLIC) else {})
        if path.startswith(PUBLIC):
            assert r.status_code == 200, path
        if r.status_code != 200 or "json" not in r.get("Content-Type", ""):
            continue
        answered += 1
        keys, strings = set(), []
        keys_and_strings(r.json(), keys, strings)
        private = {k for k in keys if PRIVATE_NAME.search(k.lower())}
        assert not private, (path, private)
        for text in strings:
            for needle in needles:
                assert needle not in text, (path, needle, text[:200])
    assert answered >= len(public_gets(schema))


def _filled(route: str, objects: dict) -> str:
    """``route`` with each path parameter set to an object of the network."""

    def value(m):
        name = m.group("name")
        if name == "pk":
            for part, pk in objects["pk"]:
                if part in route:
                    return str(pk)
        elif name in objects:
            return str(objects[name])
        raise AssertionError(f"No object for <{name}> in /{route}: add one to this test")

    return "/" + CONVERTER.sub(value, route)


@pytest.mark.django_db
def test_no_anonymous_answer_of_any_route_names_a_person(client):
    """Every GET route outside the admin, path parameters filled, pages and
    API alike: what answers an anonymous client names nobody by login name
    or e-mail (a proposal with a vote and a reason included)."""
    net = build()
    operator = net["checkers"][0].operator
    fund(operator.wallet, ath(20_000))
    proposal = governance.create_proposal(
        operator,
        kind="spend",
        title="Pay the renter",
        description="For testing.",
        deposit=ath(10_000),
        recipient_address=net["renter"].wallet.address,
        amount=ath(1),
    )
    governance.open_voting(proposal.pk)
    governance.cast_vote(net["delegator"], proposal.pk, "yes", "Good for the network.")
    rental = Rental.objects.filter(renter=net["renter"]).first()
    node, checker = net["nodes"][1], net["checkers"][0]
    objects = {
        # Most specific first: "checker" before "node" would misfill checker-nodes.
        "pk": [
            ("rental", rental.pk),
            ("checker", checker.pk),
            ("operator/", checker.pk),
            ("node", node.pk),
            ("tokens/", 1),
            ("endpoints/", 1),
            ("challenges/", 1),
            ("governance/", proposal.pk),
        ],
        "height": LedgerTransaction.objects.latest("height").height,
        "epoch": FIRST + 1,
        "address": net["delegator"].wallet.address,
        "kind": "text",
    }
    people = [net["delegator"], net["renter"], node.provider, *(c.operator for c in net["checkers"])]
    needles = [p.username for p in people] + [p.email for p in people]
    answered = 0
    for route, _name, _callback in _walk(get_resolver()):
        if route.startswith("admin/"):
            continue
        url = _filled(route, objects)
        r = client.get(url)
        if r.status_code != 200 or getattr(r, "streaming", False):
            continue
        answered += 1
        text = r.content.decode(errors="replace")
        for needle in needles:
            assert needle not in text, (url, needle)
    assert answered >= 80


def _conforms(schema, value, node, where, problems, seen=()):
    """Where ``value`` has a null (or a key) the schema ``node`` does not
    allow: what a client generated from the schema would trip over."""
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            _conforms(schema, value, schema["components"]["schemas"][name], where, problems, (*seen, name))
        return
    for key in ("allOf", "oneOf", "anyOf"):
        for option in node.get(key, []):
            _conforms(schema, value, option, where, problems, seen)
    if value is None:
        if "type" in node and not node.get("nullable"):
            problems.append(f"{where} is null, its schema says {node['type']}")
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in node.get("properties", {}):
                _conforms(schema, v, node["properties"][k], f"{where}.{k}", problems, seen)
    elif isinstance(value, list) and "items" in node:
        for i, v in enumerate(value[:50]):
            _conforms(schema, v, node["items"], f"{where}[{i}]", problems, seen)


@pytest.mark.django_db
def test_every_null_a_public_answer_holds_is_nullable_in_its_schema(client, schema):
    """A text proposal has no recipient, a rental charge of a failed epoch no
    provider: each such null must be declared, or clients generated from the
    schema (and the API fuzzer) reject the answer."""
    net = build()
    operator = net["checkers"][0].operator
    fund(operator.wallet, ath(20_000))
    governance.create_proposal(
        operator, kind="text", title="A text proposal", description="No spend.", deposit=ath(10_000)
    )
    nulls = 0
    problems: list[str] = []
    for path in public_gets(schema):
        if "{" in path:
            continue
        r = client.get(path, {"page_size": 500})
        assert r.status_code == 200, path
        nulls += r.content.count(b":null")
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        _conforms(schema, r.json(), body, path, problems)
    assert nulls, "the network has no null to check"
    assert not problems, problems
