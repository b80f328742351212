"""Browser journeys: a real server process and Debian's Chromium driven by
Playwright. Screenshots go to test-artifacts/.

Each server gets a database of its own: a SQLite file on the embedded
defaults, or, when the suite runs with ``DATABASE_URL`` and ``REDIS_URL``, a
fresh PostgreSQL database on that server and a Redis key prefix of its own,
so the journeys exercise the production engines too (live pushes between
processes go through Redis there)."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backing:
    """The database and channel layer of one server process (see above)."""

    def __init__(self):
        self.url = os.environ.get("DATABASE_URL", "")
        self.postgres = self.url.startswith(("postgres://", "postgresql://"))
        self.name = f"e2e_{secrets.token_hex(5)}"

    def env(self, base: dict) -> dict:
        env = {k: v for k, v in base.items() if k not in {"DATABASE_URL", "REDIS_URL", "REDIS_PREFIX"}}
        if self.postgres:
            from urllib.parse import urlsplit, urlunsplit

            self._admin("CREATE DATABASE {}")
            env["DATABASE_URL"] = urlunsplit(urlsplit(self.url)._replace(path="/" + self.name))
            if os.environ.get("REDIS_URL"):
                env.update(REDIS_URL=os.environ["REDIS_URL"], REDIS_PREFIX=self.name)
        return env

    def drop(self):
        if self.postgres:
            self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)")

    def _admin(self, statement: str):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(statement.format(self.name))


class Server:
    """A real Daphne process on a database of its own, migrated, with genesis;
    with ``workers``, ``manage.py serve`` and that many Daphne workers."""

    def __init__(self, var: Path, workers: int | None = None):
        self.var = var
        self.workers = workers
        self.backing = Backing()
        self.env = self.backing.env(os.environ)
        self.env.update(AETHIR_VAR_DIR=str(var), DEBUG="1", DEMO_MODE="1", PYTHONUNBUFFERED="1")
        # Every journey of a session signs up and claims from 127.0.0.1 on one server.
        self.env.update(SIGNUPS_PER_ADDRESS_PER_HOUR="1000", FAUCET_CLAIMS_PER_ADDRESS_PER_DAY="1000")
        self.process = None
        self.url = ""

    def manage(self, *args, check=True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            check=check,
            capture_output=True,
            text=True,
        )

    def start(self) -> "Server":
        self.manage("migrate", "--noinput", "-v0")
        self.manage("genesis")
        port = free_port()
        self.log = open(self.var / "server.log", "w")
        if self.workers:
            command = [
                sys.executable,
                str(ROOT / "manage.py"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.workers),
            ]
        else:
            command = [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "aethir_web.asgi:application",
            ]
        self.process = subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2)
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("server did not start:\n" + (self.var / "server.log").read_text())
                time.sleep(0.3)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)  # serve waits up to 10 s for its workers
        if getattr(self, "log", None):
            self.log.close()
        self.backing.drop()


@pytest.fixture(scope="session")
def live_server_url(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("e2e-server")).start()
    yield server.url
    server.stop()


@pytest.fixture
def private_server(tmp_path):
    """A server of the test's own, for tests that change network parameters
    or need one started differently (``workers``: behind ``manage.py serve``)."""
    servers = []

    def start(workers: int | None = None, **env):
        server = Server(tmp_path / f"server{len(servers)}", workers=workers)
        server.var.mkdir()
        server.env.update(env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


def wait_until_live(page):
    """Wait until the page's live feed (htmx ws extension) has connected, so
    whatever happens next can only reach the page over the WebSocket."""
    page.locator("html[data-live=connected]").wait_for(state="attached")


@pytest.fixture
def new_page(browser):
    contexts = []

    def make():
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.console_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot():
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return take


# --- Steps every journey takes ---------------------------------------------------

PASSWORD = "living-network-2026"


def sign_up(page, url: str, username: str, *, faucet_claims: int = 1, password: str = PASSWORD):
    """Sign up as a newcomer does, then take the faucet's 10,000 ATH
    ``faucet_claims`` times, checking the wallet after each claim."""
    from playwright.sync_api import expect

    page.goto(url + "/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Password confirmation").fill(password)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/accounts/wallet/$"))
    for n in range(1, faucet_claims + 1):
        page.get_by_test_id("faucet-button").click()
        expect(page.get_by_test_id("balance-available")).to_have_text(f"{n * 10:,},000 ATH")


def log_in(page, url: str, username: str, password: str):
    from playwright.sync_api import expect

    page.goto(url + "/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("wallet-link")).to_be_visible()


def uath(text: str) -> int:
    """The first amount in ``text`` ('9,998.0001 ATH') in micro-ATH, exactly."""
    number = re.search(r"-?[\d,]+(?:\.\d+)?", text).group(0).replace(",", "")
    return int(Decimal(number) * 1_000_000)


def no_csp_errors(*pages):
    for p in pages:
        assert not [e for e in p.console_errors if "Content Security Policy" in e or "Refused" in e], p.console_errors


def htmx_ready(page, selector: str):
    """Wait until htmx has processed ``selector`` (on a busy machine the
    deferred script can run after the test starts typing)."""
    page.wait_for_load_state("load")
    page.wait_for_function(f"() => window.htmx && document.querySelector({selector!r})['htmx-internal-data']")


def start_provider_agent(server, token: str, port: int, log, extra: tuple = ()) -> subprocess.Popen:
    """A real provider agent for ``server``'s node: health on ``port``,
    telemetry sampled every second and posted every two, no NVML; ``extra``:
    more options (a container engine, say)."""
    command = ["run_provider_agent", "--api-url", server.url, "--token", token, "--port", str(port)]
    command += ["--sample-every", "1", "--post-every", "2", "--no-nvml", *extra]
    return _manage_process(server, command, log)


def start_checker(server, token: str, key_path, log, *, probe_every: int) -> subprocess.Popen:
    """A real checker agent; the test's nodes listen on loopback, so probes may reach it."""
    command = ["run_checker", "--api-url", server.url, "--token", token, "--key", str(key_path)]
    command += ["--probe-every", str(probe_every), "--allow-net", "127.0.0.0/8"]
    return _manage_process(server, command, log)


def stop_agents(agents: list[subprocess.Popen], logs) -> None:
    """Stop the agent processes as Ctrl-C does (each gets 10 s before it is
    killed), then close their log files."""
    for agent in agents:
        agent.send_signal(signal.SIGINT)
    for agent in agents:
        try:
            agent.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.kill()
    for log in logs:
        log.close()


def _manage_process(server, command: list[str], log) -> subprocess.Popen:
    manage = [sys.executable, str(ROOT / "manage.py")]
    return subprocess.Popen([*manage, *command], env=server.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
