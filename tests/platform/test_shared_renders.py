"""Public live pages share their renders within a process: many browsers on
the same page cost one render per change, and a render that started before a
change was hinted is never served as if it showed it."""

import asyncio
import threading
import time

import pytest

from apps.explorer.consumers import LedgerFeedConsumer
from apps.marketplace.consumers import RentalConsumer
from apps.monitoring.consumers import CheckerConsumer, NodeConsumer, OverviewConsumer
from apps.notifications.consumers import BellConsumer
from apps.platform import consumers


class Counter:
    def __init__(self):
        self.calls = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self):
        with self.lock:
            self.calls += 1
            n = self.calls
        self.release.wait(5)
        return f"render {n}"


@pytest.mark.asyncio
async def test_waiters_hinted_before_a_render_started_share_it(monkeypatch):
    monkeypatch.setattr(consumers, "_renders", {})
    render = Counter()
    hinted = time.monotonic()
    first = asyncio.ensure_future(consumers.shared_render(("page",), hinted, render))
    await asyncio.sleep(0.05)
    others = [asyncio.ensure_future(consumers.shared_render(("page",), hinted, render)) for _ in range(50)]
    await asyncio.sleep(0.05)
    render.release.set()
    assert {await f for f in [first, *others]} == {"render 1"}
    assert render.calls == 1

    # A change hinted after that render started needs a render of its own.
    later = time.monotonic()
    assert await consumers.shared_render(("page",), later, render) == "render 2"
    # Another page never shares.
    assert await consumers.shared_render(("other",), hinted, render) == "render 3"


def test_only_public_pages_share():
    assert all(c.shared for c in (OverviewConsumer, NodeConsumer, CheckerConsumer, LedgerFeedConsumer))
    assert not any(c.shared for c in (BellConsumer, RentalConsumer))
