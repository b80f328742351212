"""A ledger posting made by another process (a management command, as the
scheduler or the simulators are) reaches open explorer pages within 2 s: on
the embedded defaults (SQLite, the in-memory channel layer: the web
server's relay reads the outbox the other process wrote), and on PostgreSQL
+ Redis with several web workers (one elected relay publishes for the pages
of every worker)."""

import os
import secrets
import subprocess
import sys
import time

import pytest
import redis
from playwright.sync_api import expect

from .conftest import ROOT, wait_until_live

pytestmark = pytest.mark.browser

VISIBLE_WITHIN_MS = 2_000  # the bound the live pages promise

POST = """
from django.contrib.auth.models import User
from apps.accounts import services
sender = User.objects.create_user("{name}-from")
receiver = User.objects.create_user("{name}-to")
services.claim_faucet(sender)
tx = services.send(sender, services.open_wallet(receiver).address, 1_000_000, memo="{memo}")
print(tx.height, flush=True)
"""


def post_from_another_process(server, name: str, memo: str) -> tuple[int, float]:
    """Run the posting in a process of its own; return its height and when
    (``time.monotonic()``) it had committed: the process prints the height
    then, before it exits."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--no-imports", "-c", POST.format(name=name, memo=memo)],
        env=server.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    committed = time.monotonic()
    if not line.strip().isdigit():
        process.wait(timeout=30)
        raise AssertionError(f"the posting failed: {line}{process.stderr.read()}")
    process.wait(timeout=30)
    return int(line), committed


def open_explorer(new_page, url: str):
    page = new_page()
    # Counts the times the live socket opens: a dropped socket reconnects
    # on its own, but whatever was published meanwhile never reaches it.
    page.add_init_script("window.wsOpens = 0; document.addEventListener('htmx:wsOpen', () => window.wsOpens++);")
    page.goto(url + "/explorer/")
    wait_until_live(page)
    return page


def expect_posting_on(pages, posting: tuple[int, float], memo: str) -> None:
    """Every page shows the posting within the bound, counted from its
    commit (Playwright polls each page until then), on the socket it opened
    first."""
    height, committed = posting
    deadline = committed + VISIBLE_WITHIN_MS / 1000

    def left() -> int:
        return max(1, int((deadline - time.monotonic()) * 1000))

    for page in pages:
        expect(page.locator("#tx-rows")).to_contain_text(memo, timeout=left())
        expect(page.locator("#chain-height")).to_have_text(f"#{height}", timeout=left())
    assert [p.evaluate("window.wsOpens") for p in pages] == [1] * len(pages), "a live socket dropped"


def test_a_posting_by_another_process_reaches_the_open_explorer(private_server, new_page, shot):
    server = private_server().start()
    page = open_explorer(new_page, server.url)
    memo = f"from another process {secrets.token_hex(3)}"

    posting = post_from_another_process(server, "outbox", memo)

    expect_posting_on([page], posting, memo)
    shot(page, "explorer-live-from-another-process")


def worker_prefixes(server, group: str) -> set[str]:
    """The channel-layer instances (one per worker process) with a page in
    ``group``: channels-redis names a consumer's channel
    ``specific.<instance>!<id>`` and keeps each group as a sorted set."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        members = client.zrange(f"{server.env['REDIS_PREFIX']}:group:{group}", 0, -1)
    finally:
        client.close()
    return {m.decode().split(".", 1)[1].split("!", 1)[0] for m in members}


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="several workers share live pages through Redis")
def test_with_several_workers_a_posting_reaches_pages_on_every_worker(private_server, new_page):
    server = private_server(workers=2).start()
    # Connections go to whichever worker accepts first: open pages until
    # both workers hold some.
    pages = [open_explorer(new_page, server.url) for _ in range(2)]
    while len(worker_prefixes(server, "ledger")) < 2 and len(pages) < 12:
        pages.append(open_explorer(new_page, server.url))
    assert len(worker_prefixes(server, "ledger")) == 2, "every page landed on the same worker"
    # Pages open a while, idle: past a consumer's 5 s blocking read on Redis.
    pages[-1].wait_for_timeout(6_000)
    memo = f"seen by every worker {secrets.token_hex(3)}"

    posting = post_from_another_process(server, "workers", memo)

    expect_posting_on(pages, posting, memo)
