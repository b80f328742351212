"""Fuzz every operation of the published OpenAPI schema (/api/schema/).

Schemathesis generates requests from the schema, valid ones and deliberately
invalid ones, and sends them in-process to the Django app inside the test's
database transaction. Each request goes out as a meaningful caller: mostly
the owner of the security world (money, a node, a rental, a checker, a
proposal) with a session, sometimes an anonymous visitor, and on the agent
endpoints the token of a real node or checker. To get past "not found" and
"field missing", a request often starts from a valid body with one or two
fields fuzzed, real ids replace generated ones, and checker reports are
signed with the checker's registered key.

After every request: no 5xx, a success status the schema documents, a body
that matches the documented schema, and after every accepted change the
ledger still verifies (chain intact, supply conserved, no negative bucket).
Each request is rolled back, so every one starts from the same world and a
failure replays exactly.

The run is deterministic (fixed seed) and kept to about a minute; deselect
with ``-m "not fuzz"``.
"""

import logging
import random
import sys
import zlib

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import got_request_exception
from django.db import transaction
from django.test import Client
from django.test.client import ClientHandler
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from apps.core.amounts import ath
from apps.core.verify import verify_ledger
from apps.monitoring import assignment, signing

from ..factories import NODE_SPEC, heartbeat_sample
from .conftest import online

pytestmark = pytest.mark.fuzz

# Per operation, in the generated (random) phase; the coverage phase adds
# its own boundary cases on top. About a minute in all on a small machine.
EXAMPLES_PER_OPERATION = 12
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"

# Inputs that have broken parsers before: look-alike digits, signs, huge
# numbers, bad dates, control and direction characters.
HOSTILE_TEXT = [
    "--5",
    "-0",
    "+5",
    " 7 ",
    "²",
    "٣",
    "１",
    "1e9",
    "1_000",
    "0x10",
    "NaN",
    "Infinity",
    "-1",
    "0",
    "9" * 19,
    "9" * 20,
    "9" * 400,
    "9" * 5_000,
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "0.0000001",
    "1.5",
    "",
    " ",
    "\x00",
    "\u202e",
    "null",
    "true",
    "[]",
    "{}",
    "2026-13-45T25:61:00Z",
    "2026-02-30T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00Z",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "ath1" + "0" * 40,
    "a" * 300,
]
EDGE_INTEGERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**20, 10**400]


class DjangoApp:
    """A WSGI app over Django's test handler: requests run on the test's own
    database connection and transaction (a plain WSGIHandler would close it
    at the end of each request). CSRF is not enforced, as with Django's test
    client: the hostile-input tests cover CSRF. An exception in a view is
    kept so the test shows its traceback, not just a 500."""

    def __init__(self):
        self.handler = ClientHandler(enforce_csrf_checks=False)
        self.exc_info = None

    def _store_exc_info(self, **kwargs):
        self.exc_info = sys.exc_info()

    def __call__(self, environ, start_response):
        got_request_exception.connect(self._store_exc_info, dispatch_uid="api-fuzz")
        try:
            response = self.handler(environ)
        finally:
            got_request_exception.disconnect(dispatch_uid="api-fuzz")
        headers = list(response.items())
        headers += [("Set-Cookie", morsel.OutputString()) for morsel in response.cookies.values()]
        start_response(f"{response.status_code} {response.reason_phrase}", headers)
        if response.streaming:
            return response.streaming_content
        return [response.content]


APP = DjangoApp()
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20260,
        "suppress-health-check": ["all"],
        "dictionaries": {"hostile-text": {"values": HOSTILE_TEXT}, "edge-integers": {"values": EDGE_INTEGERS}},
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            "deterministic": True,
            "database": "none",
            "dictionaries": {
                "string": {"dictionary": "hostile-text", "probability": 0.15},
                "integer": {"dictionary": "edge-integers", "probability": 0.15},
            },
        },
        # The coverage phase adds boundary and wrong-type cases per field; other
        # HTTP methods are left to the permissions tests.
        "phases": {"coverage": {"enabled": True, "unexpected-methods": []}, "stateful": {"enabled": False}},
    }
)
# Loaded the way a client loads it: from the app's own /api/schema/.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP, config=CONFIG)


# --- The world the requests act on ---------------------------------------------


@pytest.fixture
def fuzz_world(world):
    """The security world, with a checker key registered (so signed reports
    reach the consensus checks), another rentable node online and this
    epoch's assignments fixed."""
    w = world
    online(w.other_node)
    w.checker_key = signing.new_key()
    type(w.checker).objects.filter(pk=w.checker.pk).update(public_key=signing.public_hex(w.checker_key))
    w.checker.refresh_from_db()
    assignment.fix_round(0)
    return w


class Callers:
    """The headers and cookies of each kind of caller."""

    def __init__(self, w):
        c = Client()
        c.force_login(w.owner)
        session = c.cookies[django_settings.SESSION_COOKIE_NAME].value
        self.owner = {"cookies": {django_settings.SESSION_COOKIE_NAME: session}}
        self.anonymous = {}
        self.node_agent = {"headers": {"Authorization": f"Agent {w.node_token}"}}
        self.checker_agent = {"headers": {"Authorization": f"Agent {w.checker_token}"}}

    def pick(self, path, rnd):
        """Mostly the caller the endpoint is for; sometimes the wrong one."""
        if path.startswith("/api/agent/"):
            right, wrong = self.checker_agent, self.node_agent
            if path.endswith("/heartbeats/") or (path.endswith("/me/") and rnd.random() < 0.5):
                right, wrong = wrong, right
            return rnd.choices([right, wrong, self.anonymous], weights=[6, 2, 2])[0]
        return rnd.choices([self.owner, self.anonymous], weights=[8, 2])[0]


def report_for(w, node):
    return {
        "epoch": 0,
        "node": node.pk,
        "probes": 12,
        "uptime_ppm": 990_000,
        "task_ppm": 1_000_000,
        "latency_ms": 20,
        "spec_ok": True,
        "gpu_name_seen": node.gpu_model.name,
        "gpu_count_seen": node.gpu_count,
    }


def valid_bodies(w):
    """A body each mutating operation accepts from the owner (or its agent)."""
    one = str(ath(1))
    sample = heartbeat_sample()
    return {
        "/api/wallet/send/": {"to_address": w.provider2.wallet.address, "amount": one, "memo": "thanks"},
        "/api/staking/delegate/": {"checker": w.checker.pk, "amount": one},
        "/api/staking/undelegate/": {"checker": w.checker.pk, "amount": one},
        "/api/staking/redelegate/": {"src": w.checker.pk, "dst": w.other_checker.pk, "amount": one},
        "/api/staking/claim/": {"checker": w.checker.pk},
        "/api/staking/checkers/": {
            "name": "Beta",
            "self_stake": str(ath(10_000)),
            "commission_rate_ppm": 50_000,
            "commission_max_rate_ppm": 200_000,
        },
        "/api/staking/checkers/{id}/commission/": {"rate_ppm": 55_000},
        "/api/governance/proposals/": {
            "kind": "parameters",
            "title": "Raise the protocol fee",
            "description": "Fund the pool.",
            "deposit": str(ath(10_000)),
            "changes": {"protocol_fee": "250000"},
            "recipient": w.provider2.wallet.address,
            "amount": one,
        },
        "/api/governance/proposals/{id}/vote/": {"choice": "yes"},
        "/api/marketplace/match/": {
            "gpu_model": "h100-80gb",
            "gpu_count": 1,
            "region": "eu-west",
            "max_price_per_gpu_hour": str(ath(5)),
            "max_latency_ms": 200,
            "limit": 5,
        },
        "/api/marketplace/rentals/": {
            "node": w.other_node.pk,
            "mode": "reserved",
            "image": IMAGE,
            "epochs": 5,
            "escrow": str(ath(100)),
            "region": "eu-west",
        },
        "/api/marketplace/rentals/{id}/top-up/": {"amount": one},
        "/api/marketplace/rentals/{id}/replace/": {"node": w.other_node.pk},
        "/api/marketplace/provider/nodes/": {
            **NODE_SPEC,
            "name": "fuzz-node",
            "gpu_model": "h100-80gb",
            "region": "eu-west",
            "price_per_gpu_hour": str(ath(2)),
        },
        "/api/marketplace/provider/nodes/{id}/collateral/": {"amount": one},
        "/api/agent/heartbeats/": {"samples": [sample, {**sample, "at": timezone.now().isoformat()}]},
        "/api/agent/key/": {"public_key": signing.public_hex(w.checker_key)},
        "/api/agent/reports/": report_for(w, w.node),
        "/api/agent/reports/batch/": {"reports": [report_for(w, w.node), report_for(w, w.rented_node)]},
    }


def path_values(w, path):
    """Real values for a path's parameters."""
    if path.startswith("/api/marketplace/rentals/"):
        return {"id": [w.rental.pk]}
    if path.startswith("/api/marketplace/provider/nodes/"):
        return {"id": [w.node.pk, w.rented_node.pk]}
    if path.startswith("/api/marketplace/nodes/") or path.startswith("/api/monitoring/nodes/"):
        return {"id": [w.node.pk, w.rented_node.pk, w.other_node.pk]}
    if "/checkers/" in path:
        return {"id": [w.checker.pk, w.other_checker.pk]}
    if "/proposals/" in path:
        return {"id": [w.proposal.pk]}
    if path.startswith("/api/accounts/"):
        return {"address": [w.wallet.address, w.provider2.wallet.address]}
    return {"height": [1, 2], "epoch": [0]}


def body_values(w):
    """Real values for body fields that name something or carry an amount."""
    nodes = [w.node.pk, w.rented_node.pk, w.other_node.pk]
    checkers = [w.checker.pk, w.other_checker.pk]
    amounts = ["1", str(ath(1)), str(ath(100)), str(ath(10_000))]
    return {
        "node": nodes,
        "checker": checkers,
        "src": checkers,
        "dst": checkers,
        "to_address": [w.provider2.wallet.address, w.wallet.address],
        "recipient": [w.provider2.wallet.address],
        "gpu_model": ["h100-80gb", "rtx-4090"],
        "region": ["eu-west", "us-east"],
        "amount": amounts,
        "escrow": amounts,
        "deposit": amounts,
        "self_stake": amounts,
        "epoch": [0],
        "mode": ["on_demand", "reserved"],
        "kind": ["text", "spend", "parameters"],
    }


def chooser(case):
    """A random source seeded from the request itself: the same case always
    gets the same caller and the same swaps, so a failure replays and shrinks.
    (Drawing from Hypothesis here would switch off the coverage phase.)"""
    seed = zlib.crc32(repr((case.method, case.path, case.path_parameters, case.query, case.body)).encode())
    return random.Random(seed)


def make_meaningful(case, w, rnd):
    """Start from a valid body with some fields fuzzed, and swap generated
    ids and amounts for real ones."""
    template = valid_bodies(w).get(case.path)
    if case.operation.method.upper() != case.method.upper():
        return
    if template is not None and isinstance(case.body, dict) and rnd.random() < 0.6:
        fuzzed = rnd.sample(sorted(case.body), k=min(len(case.body), rnd.randint(0, 2)))
        case.body = {**template, **{k: case.body[k] for k in fuzzed}}
    for name, values in path_values(w, case.path).items():
        if case.path_parameters and name in case.path_parameters and rnd.random() < 0.6:
            case.path_parameters[name] = rnd.choice(values)
    if isinstance(case.body, dict):
        for name, values in body_values(w).items():
            if name in case.body and rnd.random() < 0.3:
                case.body[name] = rnd.choice(values)
        if rnd.random() < 0.3:
            plant_hostile_value(case.body, rnd)
    sign_reports(case, w)


def plant_hostile_value(body, rnd):
    """Replace one leaf anywhere in the body (nested too) with a known-tricky
    value: the schema's own generators rarely produce them."""
    leaves = []

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, (dict, list)):
                walk(value)
            else:
                leaves.append((node, key))

    walk(body)
    if leaves:
        node, key = rnd.choice(leaves)
        node[key] = rnd.choice(HOSTILE_TEXT + EDGE_INTEGERS)


def sign_reports(case, w):
    """The checker agent signs what it sends, hostile or not."""

    def sign(report):
        if isinstance(report, dict):
            try:
                report["signature"] = signing.sign(w.checker_key, report)
            except (TypeError, ValueError):  # not JSON-serialisable: leave it unsigned
                pass

    if case.path == "/api/agent/reports/":
        sign(case.body)
    elif case.path == "/api/agent/reports/batch/" and isinstance(case.body, dict):
        reports = case.body.get("reports")
        for report in reports if isinstance(reports, list) else []:
            sign(report)


# --- The test ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet_refusals():
    # Thousands of 4xx are the point here; a 5xx is still logged (ERROR).
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.fixture
def callers(fuzz_world):
    return Callers(fuzz_world)


def assert_documented_success(response, case):
    # Only for the operation's own method: the coverage phase also tries
    # others (OPTIONS answers 200 everywhere). Refusals (4xx) are not all
    # documented: drf-spectacular lists only the success answers.
    if case.method.upper() == case.operation.method.upper() and 200 <= response.status_code < 300:
        documented = {str(code) for code in case.operation.definition.raw.get("responses", {})}
        assert str(response.status_code) in documented, (
            f"{case.method} {case.formatted_path} answered {response.status_code}; "
            f"the schema documents {sorted(documented)}"
        )


@settings(deadline=None, suppress_health_check=list(HealthCheck))
@schema.parametrize()
def test_api_fuzz(case, fuzz_world, callers):
    rnd = chooser(case)
    make_meaningful(case, fuzz_world, rnd)
    caller = callers.pick(case.path, rnd)
    with transaction.atomic():
        APP.exc_info = None
        response = case.call(**caller)
        if APP.exc_info is not None:
            raise APP.exc_info[1]
        case.validate_response(
            response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
        )
        assert_documented_success(response, case)
        if case.method.upper() in MUTATING and response.status_code < 300:
            report = verify_ledger()
            assert report.ok, [str(p) for p in report.problems]
        transaction.set_rollback(True)
