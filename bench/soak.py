"""Soak drill: the README's demo network, left running for a while, then a
look at every epoch it settled.

Runs ``manage.py run_demo`` (by default 1,000 nodes, 60 checkers, one-minute
epochs: what ``make run`` starts) in a fresh database of its own (SQLite in a
temporary folder, or a PostgreSQL database named by ``--database-url``, which
is dropped and created), on a free port, for ``--minutes``. The clock starts
when the demo is live (seeded, agents running); with ``--cpu-hog`` one
CPU-burning process per core runs beside it from then on, at normal
priority, so the network works on a busy machine. Every minute it prints the
current epoch, the checkers still active and the latest settlement.

At the end it stops the demo (SIGTERM to its process group, as a service
manager does), reads the database and prints one line per epoch settled
during the drill (the seed's settled history is left out):

* active checkers (the epoch's published assignment round) and the share of
  assignments they delivered;
* incorrect reports, checkers jailed in that epoch (jail and slash lines);
* nodes with a consensus verdict out of the nodes assigned, providers and
  checkers paid;
* whether a network incident was recorded for the epoch;
* the latency checkers measured (p10/p50/p90 of their reports) and, per node,
  how far its checkers disagree: the median of (max - min) / median over the
  node's reports, and the p50/p90 of max - min in ms.

Then a summary: epochs run, checkers active at the end, jail reasons, and
``manage.py verify_ledger``. Exits 1 if a drill epoch paid no provider or no
checker, was a network incident, or had checkers deliver under 90% of their
assignments or under 90% of its assigned nodes reach a consensus; if fewer
than 90% of checkers are active at the end, no epoch settled, the demo died,
or the ledger does not verify.

    python bench/soak.py [--minutes 30] [--cpu-hog] [--nodes 1000 --checkers 60 --epoch-seconds 60]
    python bench/soak.py --minutes 60 --database-url postgres://postgres@127.0.0.1:5432/aethir_soak \\
                         --redis-url redis://127.0.0.1:6379/9
"""

import argparse
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import free_port, fresh_postgres  # noqa: E402  (bench/load.py)

LIVE = "The demo network is live"
SEEDED = "Demo network ready"
MIN_ACTIVE = 0.90
# A judged epoch where checkers delivered fewer of their assignments, or
# fewer assigned nodes got a verdict, than this is a network in trouble,
# even when nobody was jailed for it.
MIN_DELIVERED = 0.90
MIN_CONSENSUS = 0.90


def _interrupt(signum, frame):
    raise KeyboardInterrupt


# --- the processes ------------------------------------------------------------------


class Drill:
    """run_demo in a process group of its own, and the CPU hogs, each in its
    own group: whatever happens, ``stop`` leaves nothing running."""

    def __init__(self, env: dict, var: Path, args):
        self.env, self.var, self.args = env, var, args
        self.port = args.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var / "demo.log"
        self.demo = None
        self.hogs = []

    def start_demo(self) -> None:
        cmd = [
            sys.executable,
            str(ROOT / "manage.py"),
            "run_demo",
            "--port",
            str(self.port),
            "--nodes",
            str(self.args.nodes),
            "--checkers",
            str(self.args.checkers),
        ]
        if self.args.epoch_seconds:
            cmd += ["--epoch-seconds", str(self.args.epoch_seconds)]
        self.demo = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=ROOT,
            stdout=open(self.log_path, "a"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def last_line(self, prefix: str) -> str:
        for line in reversed(self.log().splitlines()):
            if line.startswith(prefix):
                return line.strip()
        return ""

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/healthz", timeout=5)
            return True
        except OSError:
            return False

    def wait_live(self, timeout: float, on_seeded) -> None:
        """Until run_demo says the network is live and the site answers."""
        deadline = time.monotonic() + timeout
        said, seeded = set(), False
        while time.monotonic() < deadline:
            if self.demo.poll() is not None:
                raise RuntimeError(f"run_demo exited with {self.demo.returncode} while starting")
            text = self.log()
            for line in text.splitlines():
                if (line.startswith("seeding ") or line.startswith("Serving ")) and line not in said:
                    said.add(line)
                    print(f"  {line.strip()}", flush=True)
            if not seeded and SEEDED in text:
                seeded = True
                on_seeded()
            if LIVE in text and self.answers():
                return
            time.sleep(1)
        raise RuntimeError(f"the demo was not live after {timeout:.0f}s")

    def start_hogs(self) -> int:
        n = os.cpu_count() or 1
        for _ in range(n):
            self.hogs.append(
                subprocess.Popen(
                    [sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL, start_new_session=True
                )
            )
        return n

    @staticmethod
    def _killpg(process, sig) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_hogs(self) -> None:
        for hog in self.hogs:
            self._killpg(hog, signal.SIGKILL)
        for hog in self.hogs:
            hog.wait()
        self.hogs = []

    def stop_demo(self, grace: float = 45) -> int | None:
        """SIGTERM to run_demo's group (it and its children stop cleanly on
        it), then SIGKILL whatever is left of the group."""
        if self.demo is None:
            return None
        if self.demo.poll() is None:
            self._killpg(self.demo, signal.SIGTERM)
            try:
                self.demo.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                print(f"  run_demo still running {grace:.0f}s after SIGTERM: killing its process group", flush=True)
        # Children of run_demo that outlive it (or it, after the grace) go now.
        self._killpg(self.demo, signal.SIGKILL)
        self.demo.wait()
        return self.demo.returncode

    def stop(self) -> None:
        self.stop_hogs()
        self.stop_demo()


# --- reading the database --------------------------------------------------------------


def pct(values: list, p: float):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def incident_lookup():
    """``apps.settlement.models.NetworkIncident`` (epoch field) if it exists
    and its table answers; otherwise every epoch reads as no incident."""
    from django.apps import apps
    from django.core.exceptions import FieldError
    from django.db import DatabaseError

    try:
        model = apps.get_model("settlement", "NetworkIncident")
        epochs = set(model.objects.values_list("epoch", flat=True))
    except (LookupError, FieldError, DatabaseError):  # being built elsewhere: absent (or not migrated) means no
        return lambda epoch: False
    return lambda epoch: epoch in epochs


def history_epochs() -> set[int]:
    """Epochs the seed settled (synthetic reports), not the running network."""
    from apps.monitoring.models import CheckerReport

    return set(CheckerReport.objects.filter(payload_hash="seeded-history").values_list("epoch", flat=True).distinct())


def param(name: str, epoch: int, default: int) -> int:
    from apps.core import parameters

    try:
        return int(parameters.get(name, epoch))
    except Exception:  # noqa: BLE001 - rules being changed elsewhere: fall back to the default of docs/rules.md §9
        return default


def cause(report: tuple, verdict: tuple, uptime_tol: int) -> str:
    """What an incorrect report disagrees on with its node's consensus."""
    up, lat, spec = report
    c_up, c_lat, c_spec = verdict
    if c_up is None:
        return "no verdict"
    if abs(up - c_up) > uptime_tol:
        return "uptime"
    if lat is not None and c_lat is not None and lat != c_lat:
        return "latency"
    if (lat is None) != (c_lat is None):
        return "latency"
    if spec != c_spec:
        return "spec"
    return "other"


def epoch_rows(after_epoch: int, live_at: datetime | None) -> list[dict]:
    from django.db.models import Sum

    from apps.core import epochs
    from apps.monitoring.models import AssignmentRound, CheckerEpoch, CheckerReport, NodeEpoch
    from apps.settlement.models import EpochSettlement, LineKind, SettlementLine

    seeded = history_epochs()
    incident = incident_lookup()
    rows = []
    for s in EpochSettlement.objects.filter(epoch__gt=after_epoch).order_by("epoch"):
        e = s.epoch
        if e in seeded:
            continue
        rnd = AssignmentRound.objects.filter(epoch=e).first()
        ce = CheckerEpoch.objects.filter(epoch=e)
        active = len(rnd.checker_ids) if rnd else ce.count()
        work = ce.aggregate(assigned=Sum("assigned"), delivered=Sum("delivered"))
        jail_lines = list(
            SettlementLine.objects.filter(epoch=e, kind__in=[LineKind.CHECKER_JAIL, LineKind.CHECKER_SLASH])
            .order_by("checker_id")
            .values_list("checker_id", "kind", "reason")
        )
        jailed = {c for c, _, _ in jail_lines}
        slashed = {c for c, kind, _ in jail_lines if kind == LineKind.CHECKER_SLASH}
        reasons = Counter(
            "slashed and jailed" if kind == LineKind.CHECKER_SLASH else "jailed without a slash"
            for _, kind, _ in jail_lines
        )
        assigned_nodes = len(rnd.node_ids) if rnd else NodeEpoch.objects.filter(epoch=e, assigned__gt=0).count()
        valid_nodes = NodeEpoch.objects.filter(epoch=e, valid=True).count()
        reports = CheckerReport.objects.filter(epoch=e)
        total_reports = reports.count()
        bad_reports = reports.filter(correct=False).count()
        probes = list(reports.values_list("probes", flat=True))
        verdicts = {
            n: (u, lat, spec)
            for n, u, lat, spec in NodeEpoch.objects.filter(epoch=e).values_list(
                "node_id", "uptime_ppm", "latency_ms", "spec_ok"
            )
        }
        uptime_tol = param("uptime_tolerance", e, 50_000)
        # Probes per report, per node: an uptime disagreement that rests on
        # fewer probes than the node's other reports is a checker that
        # missed some of the node's common instants (a late round).
        node_probes = defaultdict(list)
        for node_id, n in reports.values_list("node_id", "probes"):
            node_probes[node_id].append(n)
        causes = defaultdict(Counter)  # checker -> cause -> n
        uptime_short = Counter()  # checker -> uptime disagreements on fewer probes than another report of the node
        for checker_id, node_id, up, lat, spec, n in reports.filter(correct=False).values_list(
            "checker_id", "node_id", "uptime_ppm", "latency_ms", "spec_ok", "probes"
        ):
            why = cause((up, lat, spec), verdicts.get(node_id, (None, None, None)), uptime_tol)
            causes[checker_id][why] += 1
            if why == "uptime" and n < max(node_probes[node_id]):
                uptime_short[checker_id] += 1
        per_node = defaultdict(list)
        for node_id, ms in reports.filter(latency_ms__isnull=False).values_list("node_id", "latency_ms"):
            per_node[node_id].append(ms)
        latencies = [ms for values in per_node.values() for ms in values]
        rel, absolute = [], []
        for values in per_node.values():
            if len(values) >= 2:
                spread = max(values) - min(values)
                absolute.append(spread)
                rel.append(spread / max(1, statistics.median(values)))
        start = epochs.epoch(e).start
        rows.append(
            {
                "epoch": e,
                "active": active,
                "assigned": work["assigned"] or 0,
                "delivered": work["delivered"] or 0,
                "reports": total_reports,
                "bad": bad_reports,
                "jailed": len(jailed),
                "slashed": len(slashed),
                "reasons": reasons,
                "jailed_ids": jailed,
                "jail_lines": jail_lines,
                "causes": causes,
                "uptime_short": uptime_short,
                "one_probe": sum(1 for n in probes if n <= 1),
                "probes": (min(probes) if probes else None, pct(probes, 50)),
                "valid": s.nodes_valid,
                "valid_ne": valid_nodes,
                "nodes": assigned_nodes,
                "providers_paid": s.nodes_paid,
                "checkers_paid": s.checkers_paid,
                "incident": incident(e),
                "lat": (pct(latencies, 10), pct(latencies, 50), pct(latencies, 90)),
                "spread_rel": statistics.median(rel) if rel else None,
                "spread_abs": (pct(absolute, 50), pct(absolute, 90)),
                "partial": live_at is not None and start < live_at,
            }
        )
    return rows


def false_checker() -> int | None:
    """The checker ``simulate_network`` makes report falsely (``--liar-checkers
    1``, its default, with more than 3 checkers): the first one it adopts."""
    from apps.core.models import CheckerNode

    ids = list(CheckerNode.objects.exclude(status="inactive").order_by("id").values_list("id", flat=True))
    return ids[0] if len(ids) > 3 else None


def settled_up_to() -> int:
    from apps.settlement.models import EpochSettlement

    return max(EpochSettlement.objects.values_list("epoch", flat=True), default=-1)


def checker_counts() -> Counter:
    from apps.core.models import CheckerNode

    return Counter(CheckerNode.objects.values_list("status", flat=True))


def last_settled() -> str:
    from apps.settlement.models import EpochSettlement

    s = EpochSettlement.objects.order_by("-epoch").first()
    if s is None:
        return "no epoch settled yet"
    return (
        f"last settled epoch {s.epoch}: {s.nodes_valid} nodes with consensus, {s.nodes_paid} providers and "
        f"{s.checkers_paid} checkers paid, {s.jailed} jailed, {s.breaches} breaches"
    )


def close_db() -> None:
    # A reader that keeps a connection open keeps a snapshot (SQLite) or a
    # session (PostgreSQL) the network does not need.
    from django.db import connections

    connections.close_all()


# --- printing --------------------------------------------------------------------------


def fmt_ms(v) -> str:
    return "-" if v is None else f"{v}"


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'epoch':>6} {'active':>6} {'deliv':>6} {'probes':>6} {'bad rep':>9} {'jailed':>9} {'consensus':>11} "
        f"{'prov paid':>9} {'chk paid':>8} {'incid':>5}  {'latency p10/p50/p90':>19}  {'spread':>6} {'(ms p50/p90)':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        deliv = f"{100 * r['delivered'] / r['assigned']:.0f}%" if r["assigned"] else "-"
        jailed = f"{r['jailed']}" + (f" ({r['slashed']}s)" if r["slashed"] else "")
        consensus = f"{r['valid']}/{r['nodes']}"
        lat = "/".join(fmt_ms(v) for v in r["lat"])
        spread = "-" if r["spread_rel"] is None else f"{100 * r['spread_rel']:.0f}%"
        spread_abs = "/".join(fmt_ms(v) for v in r["spread_abs"])
        mark = "*" if r["partial"] else " "
        probes = "/".join(fmt_ms(v) for v in r["probes"])
        print(
            f"{r['epoch']:>5}{mark} {r['active']:>6} {deliv:>6} {probes:>6} {r['bad']:>4}/{r['reports']:<4} {jailed:>9} "
            f"{consensus:>11} {r['providers_paid']:>9} {r['checkers_paid']:>8} {'yes' if r['incident'] else 'no':>5}  "
            f"{lat:>19}  {spread:>6} {spread_abs:>12}"
        )
    print(
        "deliv: assignments delivered; probes: per report, min/p50; bad rep: reports judged incorrect / reports; jailed: checkers jailed in the "
        "epoch (Ns: of them slashed for misreports); consensus: nodes with a verdict / nodes assigned; latency and "
        "spread in ms; spread: median over nodes of (max - min) / median of the node's reports (median floored at "
        "1 ms), then the p50/p90 of max - min"
    )
    if any(r["partial"] for r in rows):
        print("* began before the agents ran (an agent that joins mid-epoch sits that epoch out): shown, not judged")
    if any(r["valid"] != r["valid_ne"] for r in rows):
        odd = [f"{r['epoch']}: {r['valid']} vs {r['valid_ne']}" for r in rows if r["valid"] != r["valid_ne"]]
        print("note: settlement's nodes_valid differs from the NodeEpoch rows marked valid in " + ", ".join(odd))


def verify(env: dict) -> tuple[bool, str]:
    run = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_ledger"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = (run.stdout + run.stderr).strip()
    return run.returncode == 0, out


# --- the drill -------------------------------------------------------------------------


def environment(args, var: Path) -> dict:
    """What `make run` uses (DEBUG, demo mode), on this drill's own database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "AETHIR_VAR_DIR"}}
    env.update(
        AETHIR_VAR_DIR=str(var),
        DEMO_MODE="1",
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="aethir_web.settings",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
    )
    if args.database_url:
        env["DATABASE_URL"] = fresh_postgres(args.database_url)
    else:
        env["DATABASE_URL"] = f"sqlite:///{var / 'soak.sqlite3'}"
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
        env["REDIS_PREFIX"] = f"aethir-soak-{os.getpid()}-{secrets.token_hex(4)}"
    return env


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30, help="how long the live network runs (default 30)")
    p.add_argument("--cpu-hog", action="store_true", help="one CPU-burning process per core beside the demo")
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--checkers", type=int, default=60)
    p.add_argument("--epoch-seconds", type=int, default=None, help="epoch length (default: the demo's one minute)")
    p.add_argument("--port", type=int, default=0, help="web server port (default: a free one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (database and logs)")
    p.add_argument("--database-url", default="", help="a PostgreSQL URL; the named database is dropped and created")
    p.add_argument("--redis-url", default="", help="a Redis URL for the channel layer and cache")
    p.add_argument("--startup-timeout", type=float, default=900, help="seconds allowed for migrate + seed + agents")
    return p


def main() -> int:
    args = parser().parse_args()
    var = Path(tempfile.mkdtemp(prefix="aethir-soak-"))
    env = environment(args, var)
    os.environ.update(env)
    # Ctrl-C and SIGTERM both stop the drill and still report (also when
    # started from a shell that ignores SIGINT in background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    import django

    django.setup()
    from apps.core import epochs

    drill = Drill(env, var, args)
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"Soak drill: run_demo with {args.nodes:,} nodes and {args.checkers} checkers on {where}, {drill.url}, "
        f"{args.minutes:g} min{', CPU hogs on every core' if args.cpu_hog else ''}; logs in {drill.log_path.name} "
        f"of the drill's temporary folder",
        flush=True,
    )
    interrupted, demo_died, started = False, None, None
    state = {"history_until": -1, "liar": None}
    live_at = None

    def on_seeded():
        from apps.settlement.models import EpochSettlement

        state["history_until"] = max(EpochSettlement.objects.values_list("epoch", flat=True), default=-1)
        close_db()

    t_start = time.monotonic()
    try:
        drill.start_demo()
        drill.wait_live(args.startup_timeout, on_seeded)
        live_at = datetime.now(UTC)
        length = int(epochs.length().total_seconds())
        state["liar"] = false_checker()
        close_db()
        print(
            f"Live after {time.monotonic() - t_start:.0f}s ({length} s epochs; seeded history up to epoch "
            f"{state['history_until']})",
            flush=True,
        )
        if args.cpu_hog:
            print(f"Started {drill.start_hogs()} CPU hog(s)", flush=True)
        started = time.monotonic()
        end = started + args.minutes * 60
        next_progress = started + 60
        while time.monotonic() < end:
            if drill.demo.poll() is not None:
                demo_died = drill.demo.returncode
                print(f"run_demo exited with {demo_died} during the drill; see demo.log", flush=True)
                break
            if time.monotonic() >= next_progress:
                next_progress += 60
                counts = checker_counts()
                line = last_settled()
                close_db()
                elapsed = time.monotonic() - started
                print(
                    f"[{int(elapsed // 60):3d}m] epoch {epochs.current_number()}: checkers active "
                    f"{counts.get('active', 0)}/{sum(counts.values())}, jailed {counts.get('jailed', 0)}; {line}",
                    flush=True,
                )
                sched = drill.last_line("settled epoch")
                if sched:
                    print(f"       scheduler: {sched}", flush=True)
            time.sleep(1)
        if demo_died is None:
            # Epochs that ended before the end of the drill get their settlement
            # (a grace of a sixth of an epoch for late reports, then the work).
            due = epochs.current_number() - 1
            print(f"Waiting for the settlement of epoch {due} (finished during the drill)", flush=True)
            deadline = time.monotonic() + length / 6 + 90
            while time.monotonic() < deadline and drill.demo.poll() is None and settled_up_to() < due:
                time.sleep(1)
            close_db()
    except KeyboardInterrupt:
        interrupted = True
        print("\nInterrupted: stopping the demo and reporting what was gathered", flush=True)
    except RuntimeError as exc:
        demo_died = demo_died if demo_died is not None else -1
        print(f"The drill could not run: {exc}. Last lines of demo.log:", flush=True)
        print("\n".join("  " + line for line in drill.log().splitlines()[-20:]), flush=True)
    finally:
        # Nothing may outlive the drill, whatever happened above.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        drill.stop_hogs()
        code = drill.stop_demo()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        ran = (time.monotonic() - started) / 60 if started else 0
        print(f"Demo stopped (run_demo exit status {code}) after {ran:.1f} min of live network", flush=True)

    status = 0
    problems = []
    try:
        rows = epoch_rows(state["history_until"], live_at)
        counts = checker_counts()
        close_db()
        print()
        print_table(rows)
        total = sum(counts.values())
        active = counts.get("active", 0)
        reasons = sum((r["reasons"] for r in rows), Counter())
        print()
        print(f"epochs run (settled during the drill): {len(rows)}")
        if rows:
            liar = state["liar"]
            print(
                f"checkers jailed during the drill: {sum(r['jailed'] for r in rows)} "
                f"({', '.join(f'{n} {k}' for k, n in reasons.items()) or 'none'})"
            )
            lines = [(r["epoch"], c, reason) for r in rows for c, _, reason in r["jail_lines"]]
            for e, c, reason in lines[:12]:
                print(f"  epoch {e}: #{c}: {reason}")
            if len(lines) > 12:
                print(f"  ... and {len(lines) - 12} more")
            honest_jailed = [(r["epoch"], c) for r in rows for c in sorted(r["jailed_ids"]) if c != liar]
            liar_jailed = [r["epoch"] for r in rows if liar in r["jailed_ids"]]
            if liar is not None:
                print(
                    f"  the simulator's false checker (#{liar}): "
                    + (f"jailed in epoch {liar_jailed[0]}" if liar_jailed else "not jailed")
                )
            print(
                f"  honest checkers jailed: {len(honest_jailed)}"
                + (" (" + ", ".join(f"#{c} in epoch {e}" for e, c in honest_jailed) + ")" if honest_jailed else "")
            )
            causes, liar_bad, at_risk = Counter(), 0, set()
            for r in rows:
                for checker_id, by_cause in r["causes"].items():
                    if checker_id == liar:
                        liar_bad += sum(by_cause.values())
                    else:
                        causes += by_cause
                        at_risk.add(checker_id)
            print(
                f"reports judged incorrect: {sum(r['bad'] for r in rows):,} of {sum(r['reports'] for r in rows):,}; "
                f"the false checker's {liar_bad:,}, honest checkers' {sum(causes.values()):,}"
                + (" (disagreeing on " + ", ".join(f"{k} {n}" for k, n in causes.most_common()) + ")" if causes else "")
            )
            print(f"  honest checkers with at least one incorrect report: {len(at_risk)}")
            short = sum(n for r in rows for c, n in r["uptime_short"].items() if c != liar)
            print(
                f"  of their uptime disagreements, {short:,} rest on fewer probes than another "
                f"report of the node (a checker that missed some of the node's probe instants); reports on one probe: "
                f"{sum(r['one_probe'] for r in rows):,} of {sum(r['reports'] for r in rows):,}"
            )
        share = active / total if total else 0
        print(
            f"checkers active at the end: {active}/{total} ({100 * share:.0f}%); "
            + ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if k != "active")
        )
        ok, out = verify(env)
        print(f"total supply conserved (verify_ledger): {'yes' if ok else 'NO'}")
        print("  " + out.replace("\n", "\n  "))
        if not [r for r in rows if not r["partial"]]:
            problems.append("no epoch that began with the agents running was settled during the drill")
        for r in rows:
            if r["partial"]:
                continue
            if not r["providers_paid"]:
                problems.append(f"epoch {r['epoch']} paid no providers")
            if not r["checkers_paid"]:
                problems.append(f"epoch {r['epoch']} paid no checkers")
            if r["assigned"] and r["delivered"] < MIN_DELIVERED * r["assigned"]:
                problems.append(
                    f"epoch {r['epoch']}: checkers delivered {100 * r['delivered'] / r['assigned']:.0f}% of their "
                    f"assignments (< {100 * MIN_DELIVERED:.0f}%)"
                )
            if r["nodes"] and r["valid"] < MIN_CONSENSUS * r["nodes"]:
                problems.append(
                    f"epoch {r['epoch']}: {r['valid']} of {r['nodes']} assigned nodes got a consensus "
                    f"(< {100 * MIN_CONSENSUS:.0f}%)"
                )
            if r["incident"]:
                problems.append(f"epoch {r['epoch']} was a network incident")
        if share < MIN_ACTIVE:
            problems.append(f"only {100 * share:.0f}% of checkers active at the end (< {100 * MIN_ACTIVE:.0f}%)")
        if not ok:
            problems.append("verify_ledger failed")
        if demo_died is not None:
            problems.append("the demo did not run to the end")
    except Exception as exc:  # noqa: BLE001 - a report that breaks is a failed drill, said so
        problems.append(f"could not read the results: {exc!r}")
    finally:
        if args.keep:
            print(f"kept: {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)
    if problems:
        status = 1
        print("FAILED:\n" + "\n".join("  - " + p for p in problems))
    else:
        print("PASSED")
    if interrupted:
        print("(interrupted before the end of the drill)")
        return 130 if not status else status
    return status


if __name__ == "__main__":
    sys.exit(main())
