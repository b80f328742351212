"""Pages that must work with no internet: the API reference (Redoc) asks
nothing of any other host, and the site's own CSP lets it run."""

import re
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


def test_a_pending_nodes_charts_explain_themselves_instead_of_empty_axes(seeded_server, browser):
    created = seeded_server.manage(
        "shell", "-c", "from tests.factories import make_node; print(make_node(name='fresh-pending')[0].pk)"
    )
    pk = int(created.stdout.strip().splitlines()[-1])
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{seeded_server.url}/monitoring/nodes/{pk}/")
    charts = page.locator("[data-chart]")
    expect(charts.first).to_have_class(re.compile("chart-empty"))
    for i in range(charts.count()):
        expect(charts.nth(i)).to_contain_text("Nothing to draw yet")
        assert not charts.nth(i).locator(".main-svg").count()  # no bare axes
    expect(page.get_by_test_id("node-health")).to_contain_text("pending")
    page.screenshot(path="test-artifacts/monitoring-pending-node.png", full_page=True)
    assert not errors, errors
    context.close()
