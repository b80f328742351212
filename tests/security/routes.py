"""Walk the URL resolver and find every route that changes state, then fill
its URL with the owner's objects and give it a plausible body."""

import inspect
import re

from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.amounts import ath

from ..factories import NODE_SPEC, heartbeat_sample

MUTATING_METHODS = ("post", "put", "patch", "delete")
CONVERTER = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")


class Route:
    def __init__(self, route, name, callback, methods):
        self.route, self.name, self.callback, self.methods = route, name, callback, methods

    @property
    def is_api(self):
        return self.route.startswith("api/")

    @property
    def is_agent(self):
        return self.route.startswith("api/agent/")

    def __repr__(self):
        return f"{self.name or '?'} /{self.route}"


def _walk(resolver, prefix="", ns=None):
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver):
            inner = f"{ns}:{p.namespace}" if ns and p.namespace else (p.namespace or ns)
            yield from _walk(p, prefix + str(p.pattern), inner)
        elif isinstance(p, URLPattern):
            name = f"{ns}:{p.name}" if ns and p.name else p.name
            yield prefix + str(p.pattern), name, p.callback


def _function_view_methods(callback):
    """For a function view: the methods a require_http_methods decorator
    allows, or, if undecorated, POST when its source reads the request body
    or method (the discovery test then checks a POST is not a 405)."""
    fn = callback
    while fn is not None:
        for cell_name, cell in zip(getattr(fn.__code__, "co_freevars", ()), fn.__closure__ or (), strict=False):
            if cell_name == "request_method_list":
                return {m.lower() for m in cell.cell_contents} & set(MUTATING_METHODS)
        fn = getattr(fn, "__wrapped__", None)
    try:
        source = inspect.getsource(inspect.unwrap(callback))
    except (OSError, TypeError):
        return {"post"}  # unknown: treat as mutating rather than skip it
    if "request.POST" in source or "request.method" in source or "request.data" in source:
        return {"post"}
    return set()


def mutating_methods(callback):
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        allowed = {m.lower() for m in getattr(cls, "http_method_names", MUTATING_METHODS)}
        return {m for m in MUTATING_METHODS if m in allowed and hasattr(cls, m)}
    return _function_view_methods(callback)


def all_routes():
    return [Route(r, n, cb, mutating_methods(cb)) for r, n, cb in _walk(get_resolver())]


def mutating_routes():
    """Every state-changing route outside Django's admin (the admin is
    staff-only and covered by its own test)."""
    return [r for r in all_routes() if r.methods and not r.route.startswith("admin/")]


# --- Filling URLs and bodies --------------------------------------------------


def url_for(route: Route, w) -> str:
    def value(m):
        name = m.group("name")
        r = route.route
        if name == "kind":
            return "text"
        if name == "address":
            return w.wallet.address
        if name == "height":
            return "1"
        if name == "epoch":
            return "0"
        if name == "pk":
            if r.startswith("developer/tokens/"):
                return str(w.api_token.pk)
            if r.startswith("notifications/endpoints/"):
                return str(w.endpoint.pk)
            if "rental" in r:
                return str(w.rental.pk)
            if "checker" in r or "operator/" in r:
                return str(w.checker.pk)
            if "node" in r:
                return str(w.node.pk)
            if r.startswith("governance/") or "proposals/" in r:
                return str(w.proposal.pk)
        raise AssertionError(f"No owner object for <{name}> in /{r}: teach tests/security/routes.py about it")

    return "/" + CONVERTER.sub(value, route.route)


IMAGE = "nvcr.io/nvidia/pytorch:24.08-py3"


def body_for(route: Route, w) -> dict:
    """A body the owner could send (web forms in ATH, the API in uATH strings)."""
    r = route.route
    api = route.is_api
    one = str(ath(1)) if api else "1"
    if r.endswith("wallet/send/"):
        return {"to_address": w.provider2.wallet.address, "amount": one, "memo": "hi"}
    if r.endswith("delegate/") or r.endswith("undelegate/"):
        return {"checker": w.checker.pk, "amount": one}
    if r.endswith("redelegate/"):
        return {"src": w.checker.pk, "dst": w.other_checker.pk, "amount": one}
    if r.endswith("claim/"):
        return {"checker": w.checker.pk}
    if r == "api/staking/checkers/":
        return {
            "name": "Beta",
            "self_stake": str(ath(10_000)),
            "commission_rate_ppm": 50_000,
            "commission_max_rate_ppm": 200_000,
        }
    if r.endswith("operator/activate/"):
        return {"name": "Beta", "self_stake": "10000", "commission_rate": "5", "commission_max_rate": "20"}
    if r.endswith("commission/") and "checker" in r or r.startswith("staking/operator/") and r.endswith("commission/"):
        return {"rate_ppm": 55_000} if api else {"rate": "5.5"}
    if r.endswith("vote/"):
        return {"choice": "yes"}
    if r.startswith("governance/new/") or r == "api/governance/proposals/":
        return {
            "kind": "text",
            "title": "Signal",
            "description": "Yes.",
            "deposit": str(ath(10_000)) if api else "10000",
        }
    if r.endswith("/rent/"):
        return {"mode": "reserved", "hours": "1", "image": IMAGE, "confirm": "1", "quoted_price_per_epoch": "0"}
    if r == "api/marketplace/rentals/":
        return {"node": w.node.pk, "mode": "reserved", "image": IMAGE, "epochs": 5}
    if r.endswith("top-up/") or (r.endswith("collateral/") and "new" not in r):
        return {"amount": one}
    if r.endswith("replace/"):
        return {"node": w.other_node.pk}
    if r.endswith("provide/new/") or r == "api/marketplace/provider/nodes/":
        return {
            **NODE_SPEC,
            "name": "x-node",
            "gpu_model": "h100-80gb",
            "region": "eu-west",
            "price": "2",
            "price_per_gpu_hour": str(ath(2)),
        }
    if r.endswith("password/"):
        return {"old_password": "not-it", "new_password1": "Zebra-staple-42!", "new_password2": "Zebra-staple-42!"}
    if r.endswith("signup/"):
        return {}
    if r.endswith("login/"):
        return {"username": "owner", "password": "wrong"}
    if r == "api/marketplace/match/":
        return {"gpu_model": "h100-80gb"}
    if r.endswith("agent/heartbeats/"):
        return {"samples": [heartbeat_sample()], "node": w.node.pk}
    if r.endswith("agent/key/"):
        return {"public_key": "ab" * 32}
    if r.endswith("agent/reports/"):
        return {
            "epoch": 0,
            "node": w.node.pk,
            "probes": 12,
            "uptime_ppm": 0,
            "task_ppm": 0,
            "latency_ms": 20,
            "spec_ok": False,
            "gpu_name_seen": "x",
            "gpu_count_seen": 1,
            "signature": "00" * 64,
        }
    return {}
