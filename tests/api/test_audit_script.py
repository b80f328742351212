"""scripts/audit.py, run as an outsider would run it: a separate process
that reads the public API of a live server over HTTP, on a network with
faults (a failed rental node, a lying checker, a redelegation, a
parameter change), and finds every amount exact; and finds it when an
amount is not."""

import subprocess
import sys
from pathlib import Path

import pytest

from apps.settlement.models import SettlementLine

from .public_network import FIRST, build

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit.py"


def run_audit(url, first, last):
    return subprocess.run(
        [sys.executable, str(SCRIPT), url, str(first), str(last)], capture_output=True, text=True, timeout=300
    )


@pytest.mark.django_db(transaction=True)
def test_the_audit_recomputes_every_posting_with_no_difference(live_server):
    net = build()
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 difference(s)" in done.stdout
    for what in (
        "report signature",
        "consensus validity",
        "provider rewards",
        "checker rewards",
        "F1 cumulative_ratio",
        "refund posting",
        "downtime slash posting",
        "ledger postings",
    ):
        assert f"  {what}\n" in done.stdout, (what, done.stdout)


@pytest.mark.django_db(transaction=True)
def test_the_audit_fails_on_an_amount_that_does_not_add_up(live_server):
    net = build()
    line = SettlementLine.objects.filter(kind="provider_reward", epoch=FIRST).first()
    SettlementLine.objects.filter(pk=line.pk).update(amount=line.amount + 1)
    done = run_audit(live_server.url, FIRST, net["last"])
    assert done.returncode == 1
    assert "provider rewards" in done.stdout


def test_a_bad_address_is_exit_2():
    done = run_audit("http://127.0.0.1:9", 0, 1)
    assert done.returncode == 2
