"""An operator activates a checker through the operator page; a delegator
delegates 100 ATH to it, sees the position and the wallet change, is refused
a delegation beyond their balance, undelegates and sees the unbonding entry
with its maturity. A position with one point of history charts the hour
around it rather than a millisecond time axis."""

import re

import pytest
from playwright.sync_api import expect

from .conftest import no_csp_errors, sign_up

pytestmark = pytest.mark.browser


def test_delegate_see_position_undelegate_see_unbonding(private_server, new_page, shot):
    # A server of its own: other journeys expect the shared one's ledger to start at genesis.
    url = private_server().start().url
    operator = new_page()
    sign_up(operator, url, "stake-operator")
    operator.goto(url + "/staking/operator/")
    form = operator.get_by_test_id("activate-form")
    form.get_by_label("Checker name").fill("Lighthouse")
    form.get_by_label("Self-stake (ATH)").fill("10000")
    form.get_by_label("Commission (%)", exact=True).fill("5")
    form.get_by_label("Maximum commission (%)").fill("20")
    form.get_by_role("button", name="Activate").click()
    expect(operator.locator("#messages")).to_contain_text("Lighthouse is active")
    expect(operator.get_by_test_id("operated-checker")).to_contain_text("10,000 ATH")
    shot(operator, "staking-operator")

    page = new_page()
    sign_up(page, url, "stake-delegator")
    page.goto(url + "/staking/")
    row = page.get_by_test_id("checker-row").filter(has_text="Lighthouse")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("10,000 ATH")
    shot(page, "staking-list")
    row.get_by_role("link", name="Lighthouse").click()
    expect(page.get_by_test_id("checker-name")).to_contain_text("Lighthouse")

    # More than the wallet holds: refused with the reason, nothing bonded.
    page.get_by_label("Amount to delegate (ATH)").fill("20000")
    page.get_by_test_id("delegate-button").click()
    expect(page.get_by_role("alert")).to_contain_text("You have 10,000 ATH available; you cannot delegate 20,000 ATH.")
    shot(page, "staking-refused")

    page.get_by_label("Amount to delegate (ATH)").fill("100")
    page.get_by_test_id("delegate-button").click()
    expect(page.get_by_test_id("slash-warning")).to_be_visible()
    page.get_by_test_id("confirm-stake").click()
    expect(page).to_have_url(re.compile(r"/staking/me/$"))
    expect(page.locator("#messages")).to_contain_text("Delegated 100 ATH to Lighthouse")
    position = page.get_by_test_id("position-row").filter(has_text="Lighthouse")
    expect(position).to_contain_text("100 ATH")
    expect(page.get_by_test_id("me-available")).to_have_text("9,900 ATH")
    expect(page.get_by_test_id("me-bonded")).to_have_text("100 ATH")
    expect(page.locator("#stake-chart .main-svg").first).to_be_visible()
    # One point of history: the time axis shows the hour around it, not milliseconds.
    span_ms = page.evaluate(
        "() => { const a = document.getElementById('stake-chart')._fullLayout.xaxis;"
        " return a.r2l(a.range[1]) - a.r2l(a.range[0]); }"
    )
    assert span_ms >= 30 * 60 * 1000, span_ms
    shot(page, "staking-position")

    page.goto(url + "/accounts/wallet/")
    expect(page.get_by_test_id("balance-available")).to_have_text("9,900 ATH")
    expect(page.get_by_test_id("balance-total")).to_have_text("10,000 ATH")

    page.goto(url + "/staking/me/")
    page.get_by_role("link", name="manage").click()
    expect(page.get_by_test_id("held")).to_have_text("100 ATH")
    page.get_by_label("Amount to undelegate (ATH)").fill("100")
    page.get_by_test_id("undelegate-button").click()
    expect(page.get_by_test_id("slash-warning")).to_be_visible()
    page.get_by_test_id("confirm-stake").click()
    expect(page).to_have_url(re.compile(r"/staking/me/$"))
    message = page.locator("#messages").inner_text()
    maturity = int(re.search(r"available again from epoch (\d+)", message).group(1))
    entry = page.get_by_test_id("unbonding-row").filter(has_text="Lighthouse")
    expect(entry).to_contain_text("100 ATH")
    expect(entry).to_contain_text(f"epoch {maturity}")
    expect(entry).to_contain_text("7 epochs")
    expect(page.get_by_test_id("me-unbonding")).to_have_text("100 ATH")
    expect(page.get_by_test_id("me-bonded")).to_have_text("0 ATH")
    expect(page.get_by_test_id("me-available")).to_have_text("9,900 ATH")
    shot(page, "staking-unbonding")

    no_csp_errors(operator, page)
