"""A newcomer signs up, takes faucet funds, and sees them in the wallet and
the explorer; a second browser on the explorer sees the transaction arrive live."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import wait_until_live

pytestmark = pytest.mark.browser


def test_sign_up_faucet_wallet_and_explorer(live_server_url, new_page, shot):
    page = new_page()
    page.goto(live_server_url + "/")
    expect(page.get_by_text("supply 42,000,000,000 ATH, fixed")).to_be_visible()
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password", exact=True).fill("analytical-engine-1843")
    page.get_by_label("Password confirmation").fill("analytical-engine-1843")
    page.get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(re.compile(r"/accounts/wallet/$"))
    expect(page.get_by_test_id("balance-available")).to_have_text("0 ATH")
    address = page.get_by_test_id("wallet-address").inner_text()
    shot(page, "wallet-new")

    # A second browser watches the explorer while the faucet pays out.
    watcher = new_page()
    watcher.goto(live_server_url + "/explorer/")
    expect(watcher.locator("#tx-rows tr").first).to_be_visible()
    wait_until_live(watcher)

    page.get_by_test_id("faucet-button").click()
    expect(page.get_by_test_id("balance-available")).to_have_text("10,000 ATH")
    expect(page.get_by_test_id("balance-total")).to_have_text("10,000 ATH")
    expect(page.locator("#messages")).to_contain_text("Faucet funds received")
    shot(page, "wallet-after-faucet")

    expect(watcher.locator("#tx-rows tr").first).to_contain_text("Faucet: 10,000 ATH", timeout=10_000)
    shot(watcher, "explorer-live")

    page.get_by_role("link", name="Explorer", exact=True).click()
    row = page.locator("#tx-rows tr").filter(has_text="Faucet: 10,000 ATH").first
    row.get_by_test_id("tx-link").click()
    expect(page.get_by_test_id("tx-memo")).to_have_text("Faucet: 10,000 ATH")
    expect(page.locator("table")).to_contain_text("+10,000 ATH")
    # The explorer names the account by its address, never its login name.
    expect(page.locator(f"table a[href='/explorer/account/{address}/']").first).to_be_visible()
    expect(page.locator("table")).not_to_contain_text(re.compile(r"\bada\b"))
    shot(page, "explorer-transaction")

    page.goto(f"{live_server_url}/explorer/account/{address}/")
    expect(page.get_by_test_id("account-available")).to_have_text("10,000 ATH")

    page.goto(live_server_url + "/explorer/verify/")
    page.get_by_test_id("verify-button").click()
    expect(page.get_by_test_id("verify-result")).to_contain_text("The ledger is intact")
    shot(page, "explorer-verify")
    assert not [e for e in page.console_errors if "Content Security Policy" in e], page.console_errors
    assert not watcher.console_errors, watcher.console_errors
