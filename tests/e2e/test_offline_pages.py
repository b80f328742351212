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


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory):
    """A small seeded network (nodes online in several regions)."""
    from .conftest import Server

    server = Server(tmp_path_factory.mktemp("seeded"))
    server.manage("migrate", "--noinput", "-v0")
    server.manage("seed_demo", "--nodes", "40", "--checkers", "6", "--delegators", "10", "--history", "3")
    yield server.start()
    server.stop()


@pytest.mark.parametrize("width", [1440, 390])
def test_the_region_map_draws_the_world_from_this_server(seeded_server, browser, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors, hosts = [], set()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc) if r.url.startswith("http") else None)
    page.goto(seeded_server.url + "/monitoring/")
    # Countries and land drawn from the shipped geometry, the regions' labels on it.
    expect(
        page.locator("[data-testid=region-map] .geo .countries path, [data-testid=region-map] .geo path.js-path").first
    ).to_be_attached(timeout=20_000)
    expect(page.locator("[data-testid=region-map] .scattergeo text").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=f"test-artifacts/monitoring-region-map-{width}.png", full_page=True)
    assert hosts == {urlsplit(seeded_server.url).netloc}, hosts
    assert not errors, errors
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    context.close()
