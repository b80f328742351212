"""Numbers and JSON from the outside: one parser each, and whatever the text,
either a clean value or a refusal a person can read, never a 500.

The routes below answered 500 (or, for ``1e-999999999``, registered nodes at
price 0) before: exponents overflowed Decimal, "²" passed str.isdigit() but
not int(), 5,000 digits passed the length Python's int() allows, and JSON
nested 50,000 deep raised RecursionError."""

import json
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.core import jsonlimits
from apps.core.amounts import MAX_AMOUNT, AmountError, parse_ath, parse_uath
from apps.core.models import ChainHead, GpuModel, GpuNode, Region
from apps.core.numbers import NumberError, parse_int, parse_scaled
from apps.core.verify import verify_ledger

from ..factories import NODE_SPEC
from .conftest import agent

HOSTILE = [
    "1e999999999",
    "1e-999999999",
    "1E3",
    "1e+3",
    ".5e1",
    "²",
    "٣",
    "１",
    "1_000",
    "1__0",
    "NaN",
    "nan",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "sNaN",
    "+1",
    "-1",
    "--1",
    "+-1",
    " 1",
    "1 ",
    "1 000",
    "\t1\n",
    "\u00a01",
    "1\u2009000",
    "0x10",
    "0b1",
    "0o7",
    "1.2.3",
    "1,,000",
    "1,00",
    ",100",
    "100,",
    "1.",
    ".",
    "",
    " ",
    "ATH",
    "1 ATH",
    "1ath",
    "0.0000001",
    "0.000001",
    "1.0000000",
    "1.00000001",
    "9" * 19,
    "9" * 20,
    "9" * 5_000,
    "0" * 5_000 + "1",
    "1" + "0" * 4_400,
    "١٢٣",
    "𝟏",
    "⁵",
    "½",
    "1\x00",
    "1/2",
    "1e",
    "e1",
    "0e0",
    "00000",
    "-0",
    "+0",
    "0.0",
]

decimal_like = st.builds(
    lambda sign, whole, dot, frac, exp: f"{sign}{whole}{dot}{frac}{exp}",
    st.sampled_from(["", "-", "+", " ", "\u2212"]),
    st.text(alphabet="0123456789,_²٣１ ", max_size=30),
    st.sampled_from(["", ".", ",", ".."]),
    st.text(alphabet="0123456789_٣", max_size=12),
    st.sampled_from(["", "e3", "E-999999999", "e999999999", "%", " ATH", "ath"]),
)
hostile_text = st.one_of(st.sampled_from(HOSTILE), decimal_like, st.text(max_size=60))


def exact_uath(text: str) -> int | None:
    """What a plain decimal in ``text`` is worth in micro-ATH by Decimal
    arithmetic, for comparison (None if it is not plain ASCII decimal)."""
    raw = text.strip()
    if raw.upper().endswith("ATH"):
        raw = raw[:-3].strip()
    raw = raw.replace(",", "")
    if not raw or any(c not in "0123456789." for c in raw) or raw.count(".") > 1 or raw == ".":
        return None
    return int(Decimal(raw) * 1_000_000)


@settings(max_examples=400, deadline=None)
@given(hostile_text, st.booleans())
def test_parse_ath_gives_a_value_or_an_amount_error(text, allow_zero):
    try:
        value = parse_ath(text, allow_zero=allow_zero)
    except AmountError as exc:
        assert str(exc)
        return
    assert isinstance(value, int) and (0 if allow_zero else 1) <= value <= MAX_AMOUNT
    assert value == exact_uath(text)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_parse_uath_and_parse_int_give_a_value_or_a_value_error(text):
    for parse in (
        parse_uath,
        lambda t: parse_int(t),
        lambda t: parse_int(t, minimum=None),
        lambda t: parse_scaled(t, 4, allow_zero=True, suffixes=("%",)),
    ):
        try:
            value = parse(text)
        except ValueError as exc:  # AmountError and NumberError are ValueErrors
            assert isinstance(exc, (AmountError, NumberError)) and str(exc)
            continue
        assert isinstance(value, int) and abs(value) < 10**24  # 19 whole digits, 4 places at most


@pytest.mark.parametrize("text", HOSTILE)
def test_each_hostile_string_is_refused_or_exact(text):
    test_parse_ath_gives_a_value_or_an_amount_error.hypothesis.inner_test(text, False)
    test_parse_uath_and_parse_int_give_a_value_or_a_value_error.hypothesis.inner_test(text)


@pytest.mark.parametrize(
    "text",
    ["1e999999999", "1e-999999999", "1E3", "1_000", "²", "٣", "１", "NaN", "Infinity", "+1", "1.0000001", "9" * 5_000],
)
def test_the_reported_amounts_are_refused_with_a_message(text):
    with pytest.raises(AmountError) as info:
        parse_ath(text)
    assert str(info.value)
    assert not str(info.value).startswith("[<class")


def test_exponents_and_underscores_get_their_own_message():
    with pytest.raises(AmountError, match="no exponent"):
        parse_ath("1e3")
    with pytest.raises(AmountError, match="not underscores"):
        parse_ath("1_000")
    assert parse_ath("1,000") == 1_000 * 10**6  # commas between thousands are fine for people


def test_zero_only_where_the_caller_allows_it():
    with pytest.raises(AmountError, match="more than zero"):
        parse_ath("0")
    with pytest.raises(AmountError, match="more than zero"):
        parse_uath("0")
    assert parse_ath("0", allow_zero=True) == 0
    assert parse_uath("0", allow_zero=True) == 0


@pytest.mark.parametrize("text", ["²", "٣", "１", "1_0", "9" * 19, "9" * 5_000, "-1", "", "1.0", "1e3"])
def test_parse_int_refuses_anything_but_short_ascii_digits(text):
    with pytest.raises(NumberError):
        parse_int(text)
    assert parse_int("9" * 18) == 10**18 - 1


# Any text but a NUL, which no field takes (see the NUL test below).
TEXT = st.characters(exclude_characters="\x00")


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=5),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(TEXT, max_size=3), kids, max_size=3),
        max_leaves=20,
    )
)
def test_json_loader_parses_what_json_does_within_the_limits(value):
    assert jsonlimits.loads(json.dumps(value)) == value


@pytest.mark.parametrize(
    "body",
    [
        "[" * 50_000 + "]" * 50_000,
        "[" * 65 + "]" * 65,
        '{"a":' * 65 + "1" + "}" * 65,
        "[" * 50_000,
        '{"a": NaN}',
        '{"a": Infinity}',
        "x" * 100,
        b"\xff\xfe",
    ],
)
def test_json_loader_refuses_deep_broken_or_non_json_bodies(body):
    with pytest.raises(jsonlimits.JSONLimitError):
        jsonlimits.loads(body)


def test_json_loader_allows_exactly_the_depth_limit_and_refuses_big_bodies():
    assert jsonlimits.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(jsonlimits.JSONLimitError, match="larger than"):
        jsonlimits.loads('"' + "a" * 100 + '"', limit_bytes=50)


# --- The reported routes -------------------------------------------------------

HUGE = "1e999999999"


def height():
    return ChainHead.objects.get().height


@pytest.mark.parametrize("value", [HUGE, "1e-999999999", "²", "9" * 5_000])
def test_catalogue_with_a_hostile_max_price_ignores_the_filter(world, value):
    r = Client().get("/marketplace/", {"max_price": value})
    assert r.status_code == 200


@pytest.mark.parametrize("value", [HUGE, "1e-999999999", "²", "9" * 5_000, "1_0"])
def test_node_list_api_answers_400_for_a_hostile_max_price(world, value):
    r = APIClient().get("/api/marketplace/nodes/", {"max_price": value})
    assert r.status_code == 400, r.content[:300]
    assert "max_price" in r.json()


@pytest.mark.parametrize("value", [HUGE, "1e-999999999", "²"])
def test_match_page_shows_a_form_error_for_a_hostile_max_price(world, value):
    r = Client().get("/marketplace/match/", {"max_price": value, "count": "1", "hours": "1", "preference": "balanced"})
    assert r.status_code == 200
    assert r.context["form"].errors.get("max_price")


@pytest.mark.parametrize("value", [HUGE, "1e3", "²", "9" * 5_000])
def test_match_api_answers_400_for_a_hostile_max_price(world, value):
    r = APIClient().post("/api/marketplace/match/", {"max_price_per_gpu_hour": value}, format="json")
    assert r.status_code == 400


def test_explorer_search_with_odd_digits_is_not_an_error(world):
    c = Client()
    r = c.get("/explorer/", {"q": "²"})
    assert r.status_code == 302
    assert c.get(r["Location"]).status_code == 200
    assert c.get("/explorer/", {"q": "9" * 5_000}).status_code == 404
    assert c.get("/explorer/", {"q": "٣"}).status_code == 302
    r = c.get("/explorer/", {"q": "#1"})
    assert r.status_code == 302 and r["Location"].endswith("/explorer/tx/1/")


@pytest.mark.parametrize("value", ["²", "٣", "9" * 5_000, "9" * 20, "-1", "1e3"])
def test_undelegate_and_redelegate_with_an_odd_checker_id_are_404(world, owner_client, value):
    h = height()
    assert owner_client.post("/staking/undelegate/", {"checker": value, "amount": "1"}).status_code == 404
    assert (
        owner_client.post(
            "/staking/redelegate/", {"src": value, "dst": world.other_checker.pk, "amount": "1"}
        ).status_code
        == 404
    )
    assert owner_client.post("/staking/delegate/", {"checker": value, "amount": "1"}).status_code == 404
    assert height() == h


def node_form(price):
    return {
        **NODE_SPEC,
        "name": "zero-price",
        "gpu_model": GpuModel.objects.get(slug="h100-80gb").pk,
        "region": Region.objects.get(code="eu-west").pk,
        "price": price,
    }


@pytest.mark.parametrize("price", ["1e-999999999", "0", "1e999999999", "0.0000000", "²"])
def test_node_registration_refuses_a_hostile_or_zero_price_and_creates_nothing(world, owner_client, price):
    nodes, h = GpuNode.objects.count(), height()
    r = owner_client.post("/marketplace/provide/new/", node_form(price))
    assert r.status_code in (200, 400)
    assert r.context["form"].errors.get("price")
    api = APIClient()
    api.force_authenticate(world.owner)
    body = {**node_form(price), "gpu_model": "h100-80gb", "region": "eu-west", "price_per_gpu_hour": price}
    assert api.post("/api/marketplace/provider/nodes/", body, format="json").status_code == 400
    assert GpuNode.objects.count() == nodes and height() == h


def test_register_node_service_refuses_price_zero(world):
    from apps.marketplace.onboarding import NodeSpec, OnboardingError, register_node

    spec = NodeSpec(
        name="free",
        gpu_model=GpuModel.objects.get(slug="h100-80gb"),
        gpu_count=1,
        vcpu=16,
        ram_gb=64,
        region=Region.objects.get(code="eu-west"),
        bandwidth_mbps=1000,
        price_per_gpu_hour=0,
        endpoint="http://127.0.0.1:1/health",
    )
    with pytest.raises(OnboardingError, match="more than zero"):
        register_node(world.owner, spec)


DEEP = "[" * 50_000 + "]" * 50_000


def test_deep_json_is_400_on_public_private_and_agent_routes(world):
    h = height()
    anon = APIClient()
    r = anon.post("/api/marketplace/match/", DEEP, content_type="application/json")
    assert r.status_code == 400 and "deep" in r.json()["detail"]
    owner = APIClient()
    owner.force_authenticate(world.owner)
    for url in ("/api/wallet/send/", "/api/staking/delegate/", "/api/governance/proposals/"):
        r = owner.post(url, DEEP, content_type="application/json")
        assert r.status_code == 400, (url, r.status_code)
        assert "deep" in r.json()["detail"]
    r = agent(world.node_token).post("/api/agent/heartbeats/", DEEP, content_type="application/json")
    assert r.status_code == 400 and "deep" in r.json()["detail"]
    assert height() == h and verify_ledger().ok


@pytest.mark.parametrize("body", ['{"name": "a\\u0000b"}', '{"a\\u0000": 1}', '[["x", {"y": "\\u0000"}]]', '"\\u0000"'])
def test_json_loader_refuses_text_with_a_nul(body):
    with pytest.raises(jsonlimits.JSONLimitError, match="NUL"):
        jsonlimits.loads(body)
    # The escape written out as text (a backslash, then "u0000") is fine.
    assert jsonlimits.loads('{"a": "\\\\u0000"}') == {"a": "\\u0000"}


def test_a_nul_in_a_lookup_is_a_400_not_a_database_error(world):
    # PostgreSQL cannot even compare text with a NUL: the slug lookup behind a
    # node's GPU model raised a DataError (a 500) before this was refused.
    owner = APIClient()
    owner.force_authenticate(world.owner)
    nodes = GpuNode.objects.count()
    r = owner.post(
        "/api/marketplace/provider/nodes/",
        json.dumps({**NODE_SPEC, "name": "nul", "gpu_model": "\x00", "region": "eu-west", "price": "2"}),
        content_type="application/json",
    )
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert GpuNode.objects.count() == nodes


@pytest.mark.parametrize("encode", ["form", "multipart", "query"])
def test_a_nul_in_a_form_body_or_a_query_is_a_400_too(world, encode):
    owner = APIClient()
    owner.force_authenticate(world.owner)
    body = {**NODE_SPEC, "name": "nul", "gpu_model": "\x00", "region": "eu-west", "price": "2"}
    if encode == "form":
        r = owner.post(
            "/api/marketplace/provider/nodes/", urlencode(body), content_type="application/x-www-form-urlencoded"
        )
    elif encode == "multipart":
        r = owner.post("/api/marketplace/provider/nodes/", body, format="multipart")
    else:
        r = owner.get("/api/marketplace/nodes/", {"gpu_model": "\x00"})
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    # A page too, not only the API.
    page = Client().get("/marketplace/", {"gpu": "\x00"})
    assert page.status_code == 400 and b"NUL" in page.content
