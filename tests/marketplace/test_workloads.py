"""A rental's workload between the renter and the node's agent: what the
agent is told to run, what it may report back, who sees what (secrets
never), and the reports that end a rental on the renter's account."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import open_wallet
from apps.core.verify import verify_ledger
from apps.marketplace import rentals, workload_spec, workloads
from apps.marketplace.models import RentalMode, RentalStatus, WorkloadEvent, WorkloadState

from ..factories import make_checker, make_node
from .conftest import consensus, online

SECRET = "hf_s3cr3t-t0ken-value"
PER_EPOCH = 33_333  # 2 ATH per GPU-hour, 1 GPU, 60 s epochs


def agent(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Agent {token}")
    return client


@pytest.fixture
def rented(clock, renter):
    node, token = make_node(name="fra-h100", price_ath="2")
    online(node)
    spec = workload_spec.build(
        image="localhost/aethir-web:1",
        command="/bin/httpd -f -p 8080 -h '/www root'",
        env=[{"name": "MODE", "value": "demo"}, {"name": "HF_TOKEN", "value": SECRET, "secret": True}],
        ports="8080, 9090",
        template="web-demo",
    )
    rental = rentals.rent(renter, node.pk, mode=RentalMode.RESERVED, epochs_=30, workload=spec)
    return {"node": node, "token": token, "rental": rental}


def report(token, **lease):
    return agent(token).post("/api/agent/leases/status/", {"leases": [lease]}, format="json")


def test_the_nodes_agent_is_told_what_to_run_and_no_one_else(rented):
    r = agent(rented["token"]).get("/api/agent/leases/")
    assert r.status_code == 200
    (lease,) = r.json()["leases"]
    assert lease == {
        "lease": rented["rental"].pk,
        "image": "localhost/aethir-web:1",
        "command": ["/bin/httpd", "-f", "-p", "8080", "-h", "/www root"],
        "env": {"MODE": "demo", "HF_TOKEN": SECRET},  # the agent needs the secret to start it
        "ports": [8080, 9090],
        "gpu_count": 1,
        "cpus": 16,
        "memory_mb": 64 * 1024,
    }
    other_node, other_token = make_node()
    assert agent(other_token).get("/api/agent/leases/").json()["leases"] == []
    _, checker_token = make_checker()
    assert agent(checker_token).get("/api/agent/leases/").status_code == 403
    assert APIClient().get("/api/agent/leases/").status_code in (401, 403)


def test_a_running_workload_shows_its_endpoints_and_logs_to_the_renter_and_never_the_secret(rented, renter):
    r = report(
        rented["token"],
        lease=rented["rental"].pk,
        state="running",
        endpoints={"8080": "127.0.0.1:41234"},
        log_tail=f"listening on 8080\nmy token is {SECRET}\n",
    )
    assert r.status_code == 200 and r.json()["results"] == [
        {"lease": rented["rental"].pk, "status": 200, "detail": "running"}
    ]
    browser = Client()
    browser.force_login(renter)
    page = browser.get(rented["rental"].get_absolute_url()).content.decode()
    assert 'data-testid="workload-state">Running<' in page
    assert 'href="http://127.0.0.1:41234/"' in page
    assert "listening on 8080" in page
    assert "HF_TOKEN=" + workload_spec.SECRET_MASK in page and "MODE=demo" in page
    assert SECRET not in page
    api = APIClient()
    api.force_authenticate(renter)
    detail = api.get(f"/api/marketplace/rentals/{rented['rental'].pk}/")
    assert detail.status_code == 200 and detail.json()["workload"]["endpoints"] == {"8080": "127.0.0.1:41234"}
    assert SECRET not in detail.content.decode()
    states = list(WorkloadEvent.objects.filter(rental=rented["rental"]).values_list("state", flat=True))
    assert states == [WorkloadState.SCHEDULED, WorkloadState.RUNNING]


def test_another_renter_cannot_see_the_workload(rented, other_user):
    browser = Client()
    browser.force_login(other_user)
    assert browser.get(rented["rental"].get_absolute_url()).status_code == 404


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"state": "exploded"}, "state must be one of"),
        ({"state": "running", "endpoints": {"22": "127.0.0.1:2222"}}, "not a port this lease exposes"),
        ({"state": "running", "endpoints": {"8080": "a b"}}, "host:port expected"),
        ({"state": "exited", "exit_code": "zero"}, "exit_code is an integer"),
        ({"state": "running", "log_tail": ["not", "text"]}, "log_tail is text"),
    ],
)
def test_a_malformed_report_is_refused_and_changes_nothing(rented, bad, message):
    r = report(rented["token"], lease=rented["rental"].pk, **bad)
    (result,) = r.json()["results"]
    assert result["status"] == 400 and message in result["detail"]
    workload = rented["rental"].workload
    workload.refresh_from_db()
    assert workload.state == WorkloadState.SCHEDULED and workload.endpoints == {}
    assert rented["rental"].status == RentalStatus.ACTIVE


def test_a_node_cannot_report_on_another_nodes_lease(rented):
    _, other_token = make_node()
    (result,) = report(other_token, lease=rented["rental"].pk, state="exited", exit_code=0).json()["results"]
    assert result["status"] == 404
    rented["rental"].refresh_from_db()
    assert rented["rental"].status == RentalStatus.ACTIVE


def test_the_batch_itself_must_be_a_short_list(rented):
    client = agent(rented["token"])
    assert client.post("/api/agent/leases/status/", {"leases": []}, format="json").status_code == 400
    too_many = [{"lease": rented["rental"].pk, "state": "running"}] * 17
    assert client.post("/api/agent/leases/status/", {"leases": too_many}, format="json").status_code == 400


def test_the_log_tail_keeps_its_last_64_kib(rented):
    report(rented["token"], lease=rented["rental"].pk, state="running", log_tail="old\n" + "x" * 70_000 + "\nnewest")
    workload = rented["rental"].workload
    workload.refresh_from_db()
    assert len(workload.log_tail) == 64 * 1024 and workload.log_tail.endswith("\nnewest")


def test_a_container_that_exits_by_itself_ends_the_rental_with_the_unserved_time_refunded(rented, renter, clock):
    wallet = open_wallet(renter)
    before = wallet.available
    report(rented["token"], lease=rented["rental"].pk, state="running", endpoints={"8080": "127.0.0.1:41234"})
    clock.epoch = 14  # 10..14 served, 15..39 not
    report(rented["token"], lease=rented["rental"].pk, state="exited", exit_code=3)
    rental = rented["rental"]
    rental.refresh_from_db()
    wallet.refresh_from_db()
    assert rental.status == RentalStatus.ENDED and rental.end_epoch == 15
    assert "exited by itself with code 3" in rental.end_reason
    assert wallet.available == before + 25 * PER_EPOCH
    assert rentals.holder(rented["node"]) is None
    # No longer desired: the agent will not start it again.
    assert workloads.desired_leases(rented["node"]) == []
    assert verify_ledger().ok


def test_an_image_the_node_cannot_pull_ends_the_rental_without_a_credit(rented, renter, clock):
    report(rented["token"], lease=rented["rental"].pk, state="pulling")
    report(rented["token"], lease=rented["rental"].pk, state="failed", reason="image not found: localhost/aethir-web:1")
    rental = rented["rental"]
    rental.refresh_from_db()
    assert rental.status == RentalStatus.ENDED and "could not pull" in rental.end_reason
    assert rental.charges.filter(sla_credit__gt=0).count() == 0
    browser = Client()
    browser.force_login(renter)
    page = browser.get(rental.get_absolute_url()).content.decode()
    assert "not the provider&#x27;s fault" in page or "not the provider's fault" in page
    assert verify_ledger().ok


def test_an_ended_rental_is_no_longer_desired_and_its_removal_is_on_the_timeline(rented, renter):
    rentals.end_rental(renter, rented["rental"].pk)
    assert workloads.desired_leases(rented["node"]) == []
    (result,) = report(rented["token"], lease=rented["rental"].pk, state="removed").json()["results"]
    assert result["status"] == 200
    assert WorkloadEvent.objects.filter(rental=rented["rental"]).last().state == WorkloadState.REMOVED


def test_on_failover_the_replacement_node_runs_the_same_workload(rented, renter, clock):
    spare, spare_token = make_node(name="spare", price_ath="2")
    online(spare)
    consensus(rented["node"], 10, uptime=0, latency=None)
    rented["rental"].last_failure_epoch = 10
    rented["rental"].save(update_fields=["last_failure_epoch"])
    clock.epoch = 11
    new = rentals.replace(renter, rented["rental"].pk, spare.pk)
    (lease,) = agent(spare_token).get("/api/agent/leases/").json()["leases"]
    assert lease["lease"] == new.pk and lease["env"]["HF_TOKEN"] == SECRET and lease["ports"] == [8080, 9090]
    assert workloads.desired_leases(rented["node"]) == []
    browser = Client()
    browser.force_login(renter)
    page = browser.get(new.get_absolute_url()).content.decode()
    assert "Moved here from fra-h100" in page


def test_the_rent_form_takes_a_template_and_never_shows_a_secret_back(rented, renter):
    node, _ = make_node(name="second", price_ath="2")
    online(node)
    browser = Client()
    browser.force_login(renter)
    body = {"mode": "reserved", "hours": "1", "template": "web-demo", "secret_env": f"HF_TOKEN={SECRET}"}
    confirm = browser.post(f"/marketplace/nodes/{node.pk}/rent/", body)
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "localhost/aethir-web:1" in text and "HF_TOKEN=" + workload_spec.SECRET_MASK in text
    # A refused form comes back with every field but the secret one.
    refused = browser.post(
        f"/marketplace/nodes/{node.pk}/rent/", {**body, "ports": "http", "env": "LINE WITHOUT EQUALS"}
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "Ports are numbers" in page or "write NAME=value" in page
    assert SECRET not in page


def test_the_api_rents_with_a_template_and_masks_the_secret(clock, renter):
    node, token = make_node(name="api-node", price_ath="2")
    online(node)
    api = APIClient()
    api.force_authenticate(renter)
    r = api.post(
        "/api/marketplace/rentals/",
        {
            "node": node.pk,
            "mode": "reserved",
            "epochs": 5,
            "template": "web-demo",
            "env": [{"name": "HF_TOKEN", "value": SECRET, "secret": True}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    workload = r.json()["workload"]
    assert workload["ports"] == [8080] and workload["state"] == "scheduled"
    assert workload["env"] == [{"name": "HF_TOKEN", "value": workload_spec.SECRET_MASK, "secret": True}]
    assert SECRET not in r.content.decode()
    assert agent(token).get("/api/agent/leases/").json()["leases"][0]["env"] == {"HF_TOKEN": SECRET}
    refused = api.post(
        "/api/marketplace/rentals/",
        {"node": node.pk, "mode": "reserved", "epochs": 5, "image": "x", "ports": [0]},
        format="json",
    )
    assert refused.status_code == 400 and "Ports are numbers" in refused.content.decode()


def test_the_provider_sees_the_workloads_state_and_never_its_values(rented):
    report(rented["token"], lease=rented["rental"].pk, state="running", endpoints={"8080": "127.0.0.1:41234"})
    browser = Client()
    browser.force_login(rented["node"].provider)
    page = browser.get(f"/marketplace/provide/nodes/{rented['node'].pk}/").content.decode()
    assert 'data-testid="provider-workload-state">Running<' in page
    assert '<code>HF_TOKEN</code> <span class="muted">(secret)</span>' in page
    assert SECRET not in page and "demo" not in page.split("The renter's workload")[1].split("</section>")[0]
