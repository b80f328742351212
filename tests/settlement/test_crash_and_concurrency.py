"""Exactly once under failure: a settler killed half-way by a signal leaves
nothing behind and a rerun gives the same ledger as an uninterrupted run;
two settlers at once pay once."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.core.verify import verify_ledger
from apps.settlement import services
from apps.settlement.models import EpochSettlement

from ..factories import race
from .conftest import report, set_epoch

ROOT = Path(__file__).resolve().parents[2]

BUILD = """
from tests.settlement.conftest import report, set_epoch, small_network
network = small_network.__wrapped__(None)
a, b, c = network["nodes"]
for checker in network["checkers"]:
    report(6, a, checker)
    report(6, b, checker, uptime_ppm=995_000)
    report(6, c, checker, uptime_ppm=0, task_ppm=0, latency_ms=None, spec_ok=None)
set_epoch(7)
"""

STATE = """
import json
from apps.core.models import Account, LedgerTransaction
from apps.settlement.models import EpochSettlement
print(json.dumps({
    "balances": sorted(Account.objects.values_list("address", "available", "bonded", "collateral")),
    "kinds": list(LedgerTransaction.objects.order_by("height").values_list("kind", flat=True)),
    "settled": list(EpochSettlement.objects.values_list("epoch", "emission", "provider_emission", "checker_emission")),
}))
"""


def manage(var: Path, *args, extra_env=None, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(AETHIR_VAR_DIR=str(var), **(extra_env or {}))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def run(var, *args, **kw):
    proc = manage(var, *args, **kw)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def state(var):
    import json

    return json.loads(run(var, "shell", "-c", STATE).strip().splitlines()[-1])


def test_a_settler_killed_mid_epoch_leaves_nothing_and_the_rerun_matches(tmp_path):
    crashed, clean = tmp_path / "crashed", tmp_path / "clean"
    crashed.mkdir(), clean.mkdir()
    run(crashed, "migrate", "-v0")
    run(crashed, "shell", "-c", BUILD)
    with sqlite3.connect(crashed / "aethir.sqlite3") as src, sqlite3.connect(clean / "aethir.sqlite3") as dst:
        src.backup(dst)
    before = state(crashed)

    # Kill a real settler after it has posted the epoch's rentals and emission.
    settler = manage(
        crashed, "settle_epoch_with_pause", "--epoch", "6", "--pause-after", "emission", "--pause-seconds", "60"
    )
    deadline = time.monotonic() + 60
    seen = ""
    while "pausing after step emission" not in seen:
        line = settler.stdout.readline()
        assert line or settler.poll() is None, seen
        seen += line
        assert time.monotonic() < deadline, seen
    settler.send_signal(signal.SIGKILL)
    settler.wait(timeout=10)

    assert state(crashed) == before  # nothing partial survived
    run(crashed, "settle_epoch", "--epoch", "6")
    run(clean, "settle_epoch", "--epoch", "6")
    recovered, uninterrupted = state(crashed), state(clean)
    assert recovered == uninterrupted
    assert recovered["settled"] and recovered["settled"][0][0] == 6
    assert "Ledger OK" in run(crashed, "verify_ledger")


@pytest.mark.django_db(transaction=True)
def test_two_settlers_at_once_pay_once(small_network):
    a, b, _ = small_network["nodes"]
    for checker in small_network["checkers"]:
        report(6, a, checker)
        report(6, b, checker)
    set_epoch(7)
    from apps.core import ledger
    from apps.core.amounts import ath
    from apps.core.models import ModuleAccount

    reserve_before = ledger.module_account(ModuleAccount.EMISSION_RESERVE).available

    def settle(_):
        try:
            services.settle(6)
            return "settled"
        except services.AlreadySettled:
            return "already"

    outcomes = race(settle, range(2))
    assert sorted(outcomes) == ["already", "settled"]
    assert EpochSettlement.objects.filter(epoch=6).count() == 1
    assert ledger.module_account(ModuleAccount.EMISSION_RESERVE).available == reserve_before - ath(1_000)  # one epoch
    assert verify_ledger().ok
