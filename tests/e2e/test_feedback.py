"""Wallet actions answer with a message and no console error, even on a page
that had no message when it loaded; Send goes through a review that states
the amount, the fee and the balance afterwards."""

import pytest
from playwright.sync_api import expect

from .conftest import PASSWORD, htmx_ready, log_in, sign_up

pytestmark = pytest.mark.browser


def test_faucet_and_send_say_what_happened(live_server_url, new_page, shot):
    other = new_page()
    sign_up(other, live_server_url, "feedback-recipient", faucet_claims=0)
    address = other.get_by_test_id("wallet-address").inner_text()

    page = new_page()
    sign_up(page, live_server_url, "feedback-sender", faucet_claims=0)
    # A fresh log-in: the wallet page loads with no message of its own. The
    # page leaves the site first: its notification socket, reconnecting
    # without the cleared session, would be refused (403) in the console.
    page.goto("about:blank")
    page.context.clear_cookies()
    log_in(page, live_server_url, "feedback-sender", PASSWORD)
    page.goto(live_server_url + "/accounts/wallet/")
    htmx_ready(page, "[data-testid=faucet-button]")
    page.get_by_test_id("faucet-button").click()
    expect(page.locator("#messages")).to_contain_text("Faucet funds received")
    expect(page.get_by_test_id("balance-available")).to_have_text("10,000 ATH")

    page.get_by_label("Recipient address").fill(address)
    page.get_by_label("Amount (ATH)").fill("1234.5")
    page.get_by_test_id("send-button").click()
    review = page.get_by_test_id("send-review")
    expect(review).to_contain_text(address)
    expect(page.get_by_test_id("review-amount")).to_have_text("1,234.5 ATH")
    expect(page.get_by_test_id("review-fee")).to_have_text("0 ATH")
    expect(page.get_by_test_id("review-after")).to_contain_text("8,765.5 ATH")
    expect(page.get_by_test_id("balance-available")).to_have_text("10,000 ATH")  # nothing moved yet
    shot(page, "wallet-send-review")
    page.get_by_test_id("confirm-send").click()
    expect(page.locator("#messages")).to_contain_text("Sent. Transaction #")
    expect(page.get_by_test_id("balance-available")).to_have_text("8,765.5 ATH")
    assert not page.console_errors, page.console_errors
