"""The public API (/api/v1/public/): what an outside auditor reads to
recompute every amount; full history, keyset pages, validated filters,
a fixed number of queries per page."""

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from apps.core.amounts import ath
from apps.monitoring.models import CheckerReport
from apps.settlement.models import SettlementLine

from ..factories import fund
from .public_network import FIRST, build

BASE = "/api/v1/public/"
LISTS = [
    "parameters/changes/",
    "gpu-models/",
    "regions/",
    "nodes/",
    "checkers/",
    "checker-keys/",
    "assignment-rounds/",
    "assignments/",
    "reports/",
    "consensus/",
    "consensus/epochs/",
    "checker-epochs/",
    "settlements/",
    "settlement-lines/",
    "incidents/",
    "commission-changes/",
    "jail-events/",
    "node-pauses/",
    "reward-periods/",
    "redelegations/",
    "slashes/",
    "transactions/",
    "rental-charges/",
    "rentals/",
    "proposals/",
    "votes/",
]


@pytest.fixture
def network(db):
    return build()


def walk(client, path, **params):
    """Every row of a list, page by page, following next_cursor."""
    rows, params = [], {"page_size": 3, **params}
    while True:
        r = client.get(BASE + path, params)
        assert r.status_code == 200, r.content
        body = r.json()
        rows += body["results"]
        if not body["next_cursor"]:
            return rows
        params["cursor"] = body["next_cursor"]


@pytest.mark.parametrize("path", LISTS)
def test_every_list_answers_anonymously_in_a_fixed_number_of_queries(
    client, network, path, django_assert_max_num_queries
):
    with django_assert_max_num_queries(3):
        r = client.get(BASE + path, {"page_size": 500})
    assert r.status_code == 200, r.content
    assert set(r.json()) == {"results", "next_cursor", "next"}


def test_pages_cover_every_row_once(client, network):
    rows = walk(client, "reports/")
    assert len(rows) == CheckerReport.objects.count() > 3
    assert len({r["id"] for r in rows}) == len(rows)
    lines = walk(client, "settlement-lines/", epoch_from=FIRST, epoch_to=FIRST + 1)
    assert len(lines) == SettlementLine.objects.filter(epoch__in=[FIRST, FIRST + 1]).count()


def test_every_report_is_published_as_signed_and_verifies(client, network):
    rows = walk(client, "reports/")
    marks = {r["correct"] for r in rows}
    assert marks == {True, False}  # the lying checker's reports are marked incorrect
    for r in rows:
        payload = r["payload"].encode()
        assert hashlib.sha256(payload).hexdigest() == r["payload_hash"]
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(r["public_key"])).verify(
            bytes.fromhex(r["signature"]), payload
        )


def test_measured_speeds_are_published_signed_with_their_consensus_and_on_the_node(client, network):
    reports = walk(client, "reports/")
    measured = [r for r in reports if r["download_mbps"] is not None]
    assert measured and len(measured) < len(reports)  # the first epoch's reports carry none
    for r in reports:
        # Signed when present: a report without a figure keeps the bytes it always had.
        assert ('"download_mbps":' in r["payload"]) == (r["download_mbps"] is not None)
    epochs = walk(client, "consensus/")
    assert {e["download_mbps"] for e in epochs if e["epoch"] > FIRST and e["valid"]} <= {900, 910}
    assert any(e["download_mbps"] is not None for e in epochs)
    nodes = walk(client, "nodes/")
    assert any(n["measured_mbps"] in (900, 910) and n["measured_mbps_epoch"] > FIRST for n in nodes)


def test_failed_rental_epochs_have_lines_with_their_inputs(client, network):
    lines = walk(client, "settlement-lines/")
    kinds = {line["kind"] for line in lines}
    assert {"rental_refund", "sla_credit", "downtime_slash", "provider_reward", "checker_reward"} <= kinds
    refund = next(line for line in lines if line["kind"] == "rental_refund")
    assert refund["account"].startswith("ath1") and int(refund["amount"]) == refund["details"]["charge"]
    credit = next(line for line in lines if line["kind"] == "sla_credit")
    assert int(credit["amount"]) == -(credit["details"]["charge"] * credit["details"]["sla_credit_ppm"] // 1_000_000)
    slash = next(line for line in lines if line["kind"] == "downtime_slash")
    d = slash["details"]
    assert int(slash["amount"]) == -(d["required_collateral"] * d["downtime_slash_ppm"] // 1_000_000)
    (returned,) = [line for line in lines if line["kind"] == "escrow_return"]
    assert int(returned["amount"]) == 7 and returned["account"] == refund["account"]
    served = walk(client, "rental-charges/", node=network["nodes"][0].pk)
    assert len(served) == 2 and all(c["fee"] == c["charge"] * 200_000 // 1_000_000 for c in served)
    pauses = walk(client, "node-pauses/")
    assert [(p["node"], p["paused"]) for p in pauses] == [(network["nodes"][1].pk, True)]


def test_parameters_in_force_at_any_epoch_and_their_history(client, network):
    before = client.get(BASE + "parameters/", {"epoch": FIRST + 2}).json()
    after = client.get(BASE + "parameters/", {"epoch": FIRST + 3}).json()
    value = {p["key"]: p for p in before}["emission_per_epoch"]
    assert value["value"] == ath(1_000) and {p["key"]: p for p in after}["emission_per_epoch"]["value"] == ath(1_200)
    assert [h["effective_epoch"] for h in value["history"]][-1] == FIRST + 3


@pytest.mark.parametrize("params", [{}, {"epoch": FIRST + 2}])
def test_parameters_answer_in_a_fixed_number_of_queries(client, network, params, django_assert_max_num_queries):
    # Every parameter with its whole history: one query for the history, one
    # for the values in force (and the clock's two when no epoch is given).
    with django_assert_max_num_queries(4):
        r = client.get(BASE + "parameters/", params)
    assert r.status_code == 200 and len(r.json()) > 20


def test_staking_history_is_public(client, network):
    assert [c["new_rate"] for c in walk(client, "commission-changes/")] == [60_000]
    moves = walk(client, "redelegations/")
    assert len(moves) == 1 and moves[0]["delegator"].startswith("ath1")
    periods = walk(client, "reward-periods/", checker=network["checkers"][0].pk)
    assert [p["epoch"] for p in periods] == list(range(FIRST, network["last"] + 1))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "azE6LTE"}, "cursor"),  # "k1:-1"
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "\u0661\u0660"}, "page_size"),  # Arabic-Indic digits: plain digits only
        ({"page_size": "1e2"}, "page_size"),
        ({"epoch_from": "9", "epoch_to": "8"}, "epoch_to"),
        ({"epoch_from": "0", "epoch_to": "100000"}, "epoch_to"),
        ({"epoch": "-1"}, "epoch"),
        ({"epoch": "7", "epoch_from": "1"}, "epoch"),
        ({"kind": "gift"}, "kind"),
        ({"node": "x"}, "node"),
        # str.isdigit() is true of these, and int() refuses or misreads them.
        ({"epoch": "\u00b2"}, "epoch"),  # superscript two: int() raised, a 500
        ({"epoch_from": "\u0661"}, "epoch_from"),  # Arabic-Indic one
        ({"node": "\uff11"}, "node"),  # fullwidth one
    ],
)
def test_bad_filters_are_a_400_that_says_why(client, network, params, field):
    r = client.get(BASE + "settlement-lines/", params)
    assert r.status_code == 400
    assert field in r.json() and r.json()[field][0]


@pytest.mark.parametrize("epoch", ["\u00b2", "\u0661", "x", "-1"])
def test_parameters_at_a_bad_epoch_are_a_400(client, network, epoch):
    r = client.get(BASE + "parameters/", {"epoch": epoch})
    assert r.status_code == 400 and r.json()["epoch"][0]


def test_existing_routes_still_answer(client, network):
    for path in ("/api/settlement/epochs/", "/api/transactions/", "/api/ledger/", "/api/schema/"):
        assert client.get(path).status_code == 200, path


def test_resume_and_unjail_are_published_too(client, network):
    from apps.marketplace import providers
    from apps.staking import services as staking

    node = network["nodes"][1]
    node.refresh_from_db()
    fund(node.provider.wallet, node.required_collateral)
    providers.top_up_collateral(node.provider, node.pk, node.required_collateral - node.collateral)
    pauses = walk(client, "node-pauses/", node=node.pk)
    assert [p["paused"] for p in pauses] == [True, False] and pauses[1]["collateral"] == str(node.required_collateral)

    checker, last = network["checkers"][2], network["last"]
    staking.jail(checker, "test: missed assignments", epoch=last, duration=1)
    staking.unjail(checker.operator, checker, epoch=last + 1)
    (event,) = walk(client, "jail-events/", checker=checker.pk)
    assert (event["epoch"], event["until_epoch"], event["released_epoch"]) == (last, last + 1, last + 1)
