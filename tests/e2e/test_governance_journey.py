"""A holder makes a proposal, votes on it and sees the tally change; a second
browser watching the proposal sees it change without reloading."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import no_csp_errors, sign_up, wait_until_live

pytestmark = pytest.mark.browser


def test_a_holder_votes_and_a_second_browser_sees_the_tally_change(private_server, new_page, shot):
    # A server of its own: the shared one's journeys expect a ledger with
    # nothing but genesis and the faucet payments they make themselves.
    live_server_url = private_server().start().url
    page = new_page()
    sign_up(page, live_server_url, "vera", faucet_claims=2)
    page.goto(live_server_url + "/accounts/wallet/")
    address = page.get_by_test_id("wallet-address").inner_text()

    page.get_by_role("link", name="Governance", exact=True).click()
    page.get_by_test_id("new-proposal").click()
    page.get_by_test_id("kind-text").click()
    page.get_by_label("Title").fill("Open a GPU region in Nairobi")
    page.get_by_label("Description").fill(
        "## Why\n\nLatency for East Africa is **too high**.\n\n- more providers\n- cheaper rentals\n\n"
        "<script>document.title = 'pwned'</script>"
    )
    shot(page, "governance-create")
    page.get_by_test_id("submit-proposal").click()

    expect(page).to_have_url(re.compile(r"/governance/\d+/$"))
    expect(page.get_by_test_id("status")).to_have_text("Voting")
    expect(page.get_by_test_id("description")).to_contain_text("<script>document.title = 'pwned'</script>")
    expect(page.get_by_test_id("my-power")).to_have_text("10,000 ATH")  # 20,000 less the locked deposit
    expect(page.get_by_test_id("tally-yes")).to_have_text("0 ATH")
    expect(page.get_by_test_id("timeline")).to_contain_text("Voting opened")
    proposal_url = page.url

    # A second browser, not logged in, watches the proposal.
    watcher = new_page()
    watcher.goto(proposal_url)
    expect(watcher.get_by_test_id("tally-yes")).to_have_text("0 ATH")
    expect(watcher.locator("#tally-chart .main-svg").first).to_be_attached()  # Plotly drew the chart
    wait_until_live(watcher)

    page.get_by_test_id("vote-yes").click()
    expect(page.get_by_test_id("tally-yes")).to_have_text("10,000 ATH")
    expect(page.get_by_test_id("my-vote")).to_contain_text("Yes")
    expect(page.get_by_test_id("turnout")).to_have_text("100%")
    expect(watcher.get_by_test_id("tally-yes")).to_have_text("10,000 ATH", timeout=10_000)
    expect(watcher.get_by_test_id("voter-count")).to_have_text("1 voter")
    # Public pages name a voter by address, never by login name.
    voter = watcher.locator("[data-testid=voter-row]")
    expect(voter.locator(f"a[href='/explorer/account/{address}/']")).to_be_visible()
    expect(voter).not_to_contain_text("vera")
    shot(page, "governance-voted")
    shot(watcher, "governance-watcher-live")

    # Changing the vote moves the same power; it still counts once.
    page.get_by_test_id("vote-no").click()
    expect(page.get_by_test_id("tally-no")).to_have_text("10,000 ATH")
    expect(page.get_by_test_id("tally-yes")).to_have_text("0 ATH")
    expect(watcher.get_by_test_id("tally-no")).to_have_text("10,000 ATH", timeout=10_000)
    expect(watcher.get_by_test_id("tally-yes")).to_have_text("0 ATH")
    expect(watcher.get_by_test_id("tally-cast")).to_have_text("10,000 ATH")
    expect(watcher.get_by_test_id("projected")).to_have_text("Rejected")
    shot(watcher, "governance-watcher-changed")
    assert watcher.url == proposal_url  # no reload, no navigation

    page.goto(live_server_url + "/governance/?status=voting")
    expect(page.locator("[data-testid=proposal-row]")).to_contain_text("Open a GPU region in Nairobi")
    shot(page, "governance-list")
    page.goto(live_server_url + "/governance/new/parameters/")
    expect(page.locator('tr[data-param="protocol_fee"]')).to_contain_text("0% … 50%")
    shot(page, "governance-parameters-form")

    assert page.title() != "pwned" and watcher.title() != "pwned"
    no_csp_errors(page, watcher)
    assert not watcher.console_errors, watcher.console_errors
