"""The command-line client against a running test server, with nothing but
a personal API token: find a GPU, rent it, watch its log as the node's
agent reports it, end the rental, and read the bill and the wallet."""

import io
import json
import threading
import time
import urllib.request

import pytest
from aethir_cli.cli import main
from django.utils import timezone

from apps.core import ledger, parameters
from apps.core.models import GpuNode, NodeStatus
from apps.developer import tokens
from apps.marketplace.workload_templates import TEMPLATES

from ..factories import UserFactory, fund, make_node


def run(*argv) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def agent_reports(url: str, agent_token: str, rental: int, log: str) -> None:
    body = json.dumps({"leases": [{"lease": rental, "state": "running", "log_tail": log}]}).encode()
    request = urllib.request.Request(
        url + "/api/agent/leases/status/",
        data=body,
        method="POST",
        headers={"Authorization": f"Agent {agent_token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).read()


@pytest.mark.django_db(transaction=True)
def test_rent_watch_and_end_from_the_command_line(live_server, monkeypatch, tmp_path):
    parameters.ensure_defaults()
    ledger.genesis()
    renter = UserFactory()
    fund(renter.wallet, 10_000_000_000)
    node, agent_token = make_node(name="cli-h100")
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)  # verified by the checkers
    _, raw = tokens.issue(renter, "cli", ["read", "rent"])
    monkeypatch.setenv("AETHIR_CONFIG", str(tmp_path / "config.json"))
    monkeypatch.delenv("AETHIR_TOKEN", raising=False)

    code, out = run("--url", live_server.url, "login", "--token", raw)
    assert code == 0 and renter.wallet.address in out
    assert (tmp_path / "config.json").stat().st_mode & 0o077 == 0  # the token is private

    code, out = run("--json", "gpus", "search", "--gpu", node.gpu_model.slug)
    assert code == 0
    assert node.pk in [n["id"] for n in json.loads(out)]
    code, out = run("gpus", "search", "--gpu", node.gpu_model.slug)
    assert "cli-h100" in out and "Price/GPU-h" in out
    code, out = run("--json", "match", "--gpu", node.gpu_model.slug)
    assert code == 0 and [c["node"]["id"] for c in json.loads(out)["candidates"]] == [node.pk]
    code, out = run("match", "--gpu", node.gpu_model.slug)
    assert code == 0 and "cli-h100" in out and "Score ppm" in out
    code, out = run("wallet")
    assert code == 0 and renter.wallet.address in out and "10000 ATH" in out

    code, out = run(
        "--json", "rent", str(node.pk), "--mode", "on_demand", "--template", TEMPLATES[0].slug, "--escrow", "50"
    )
    assert code == 0, out
    rental = json.loads(out)["id"]
    code, out = run("rentals")
    assert code == 0 and "cli-h100" in out and "active" in out

    # Follow the log while the node's agent reports it.
    follow_out = io.StringIO()
    follower = threading.Thread(
        target=main, args=(["logs", str(rental), "--follow", "--interval", "0.2"],), kwargs={"out": follow_out}
    )
    follower.start()
    agent_reports(live_server.url, agent_token, rental, "booting\n")
    time.sleep(0.6)
    agent_reports(live_server.url, agent_token, rental, "booting\nlistening on :8080\n")
    for _ in range(50):
        if "listening" in follow_out.getvalue():
            break
        time.sleep(0.1)

    code, out = run("end", str(rental))
    assert code == 0 and "ended" in out
    follower.join(timeout=10)
    assert not follower.is_alive()
    assert follow_out.getvalue() == "booting\nlistening on :8080\n"

    code, out = run("--json", "rentals")
    assert json.loads(out)[0]["status"] == "ended"

    # The wallet statement: funding, the escrow and its refund, as CSV.
    today = timezone.now().date().isoformat()
    code, out = run("export", "wallet", "--from", today, "--to", today)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "height,time,kind,bucket,amount_uath,memo,tx_hash" and len(lines) >= 4
    code, out = run(
        "export", "wallet", "--from", today, "--to", today, "--format", "json", "--output", str(tmp_path / "w.json")
    )
    assert code == 0 and json.loads((tmp_path / "w.json").read_text())[0]["amount_uath"] == 10_000_000_000


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_a_message_and_exit_status_one(live_server, monkeypatch, tmp_path, capsys):
    parameters.ensure_defaults()
    ledger.genesis()
    renter = UserFactory()
    node, _ = make_node()
    GpuNode.objects.filter(pk=node.pk).update(status=NodeStatus.ONLINE)
    _, raw = tokens.issue(renter, "read only", ["read"])
    monkeypatch.setenv("AETHIR_TOKEN", raw)
    monkeypatch.setenv("AETHIR_URL", live_server.url)
    code, _ = run("rent", str(node.pk), "--template", TEMPLATES[0].slug, "--escrow", "5")
    assert code == 1
    assert "'rent' scope" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_stake_claim_and_vote_from_the_command_line(live_server, monkeypatch, capsys):
    from apps.core.amounts import ath
    from apps.governance import services as governance
    from apps.staking import services as staking

    from ..factories import rounds_fixed

    parameters.ensure_defaults()
    ledger.genesis()
    rounds_fixed()
    holder, operator = UserFactory(), UserFactory()
    fund(holder.wallet, ath(20_000))
    fund(operator.wallet, ath(30_000))
    checker = staking.activate_checker(operator, "Alpha", ath(10_000), commission_rate=50_000, epoch=0)
    proposal = governance.create_proposal(
        operator, kind="text", deposit=ath(10_000), title="Signal", description="Yes."
    )
    _, raw = tokens.issue(holder, "staker", ["stake", "vote"])
    monkeypatch.setenv("AETHIR_TOKEN", raw)
    monkeypatch.setenv("AETHIR_URL", live_server.url)

    code, out = run("--json", "stake", "delegate", str(checker.pk), "250")
    assert code == 0, out
    assert [(p["checker_id"], p["amount"]) for p in json.loads(out)] == [(checker.pk, str(ath(250)))]
    code, out = run("--json", "stake", "undelegate", str(checker.pk), "50")
    assert code == 0 and json.loads(out)["amount"] == str(ath(50))
    capsys.readouterr()
    code, out = run("stake", "claim", str(checker.pk))
    assert code == 1 and "no rewards to claim" in capsys.readouterr().err  # nothing distributed yet
    code, out = run("vote", str(proposal.pk), "yes")
    assert code == 0 and f"Voted yes on proposal {proposal.pk}" in out
    assert proposal.votes.get().voter == holder.wallet
    # Its scopes stop there: no renting, no reading.
    assert run("rentals")[0] == 1
