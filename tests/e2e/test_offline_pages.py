"""Pages that must work with no internet: the API reference (Redoc) asks
nothing of any other host, and the site's own CSP lets it run."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_redoc_loads_everything_from_this_server(live_server_url, new_page, shot):
    page = new_page()
    hosts = set()
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(live_server_url + "/api/redoc/")
    expect(page.get_by_role("heading", name="Aethir network dashboard API").first).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    shot(page, "api-redoc")
    assert hosts == {urlsplit(live_server_url).netloc}, hosts
    assert not page.console_errors, page.console_errors


def test_swagger_ui_loads_everything_from_this_server(live_server_url, new_page):
    page = new_page()
    hosts = set()
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(live_server_url + "/api/docs/")
    expect(page.locator(".swagger-ui .title").first).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert hosts == {urlsplit(live_server_url).netloc}, hosts
    assert not page.console_errors, page.console_errors
