"""A walk of every page as each kind of user (anonymous, renter, provider,
checker operator, delegator, voter) at 1440 px and 390 px, on a small seeded
network: no console error, no sideways scroll, no chart drawn empty without
an explanation. Screenshots go to test-artifacts/walk/."""

import json

import pytest

from .conftest import ARTIFACTS, Server

pytestmark = pytest.mark.browser

WIDTHS = (1440, 390)
PUBLIC = [
    "/",
    "/marketplace/",
    "/marketplace/match/",
    "/marketplace/nodes/{node}/",
    "/staking/",
    "/staking/checker/{checker}/",
    "/governance/",
    "/governance/{proposal}/",
    "/governance/parameters/",
    "/monitoring/",
    "/monitoring/nodes/",
    "/monitoring/nodes/{node}/",
    "/monitoring/nodes/{node}/status/",
    "/monitoring/checkers/",
    "/monitoring/checkers/{checker}/",
    "/monitoring/checkers/{checker}/status/",
    "/monitoring/assignments/",
    "/settlement/",
    "/settlement/epoch/{epoch}/",
    "/explorer/",
    "/explorer/tx/{height}/",
    "/explorer/accounts/",
    "/explorer/verify/",
    "/explorer/checkpoints/",
    "/explorer/account/{address}/",
    "/accounts/signup/",
    "/accounts/login/",
]
SIGNED_IN = [
    "/accounts/wallet/",
    "/accounts/profile/",
    "/accounts/password/",
    "/settlement/mine/",
    "/staking/me/",
    "/marketplace/rentals/",
    "/developer/",
    "/notifications/",
    "/notifications/settings/",
]
# Public pages that show a signed-in person something of their own (their
# balance, position, vote or a form): every signed-in user walks them too.
PERSONAL_PUBLIC = [
    "/",
    "/marketplace/",
    "/marketplace/nodes/{node}/",
    "/staking/",
    "/staking/checker/{checker}/",
    "/governance/",
    "/governance/{proposal}/",
]
SIGNED_IN += PERSONAL_PUBLIC
# The other public pages differ between signed-in people only in the header,
# so one of them (the delegator) walks them all for the signed-in layout.
OTHER_PUBLIC = [
    p for p in PUBLIC if p not in PERSONAL_PUBLIC and not p.startswith(("/accounts/signup", "/accounts/login"))
]
USERS = {
    "anonymous": PUBLIC,
    "renter": SIGNED_IN + ["/marketplace/rentals/{rental}/"],
    "provider": SIGNED_IN
    + ["/marketplace/provide/", "/marketplace/provide/new/", "/marketplace/provide/nodes/{own_node}/"],
    "operator": SIGNED_IN + ["/staking/operator/", "/monitoring/checkers/{own_checker}/status/"],
    "delegator": SIGNED_IN + OTHER_PUBLIC,
    "voter": SIGNED_IN
    + ["/governance/new/"]
    + [f"/governance/new/{kind}/" for kind in ("text", "parameters", "spend")],
}
FACTS = """
import json
from django.contrib.auth import get_user_model
from apps.core.models import CheckerNode, GpuNode, LedgerTransaction, NodeStatus
from apps.governance.models import Proposal
from apps.marketplace.models import Rental
from apps.settlement.models import EpochSettlement
User = get_user_model()
print(json.dumps({
    "node": GpuNode.objects.filter(status=NodeStatus.ONLINE).order_by("pk").first().pk,
    "checker": CheckerNode.objects.order_by("-total_stake").first().pk,
    "proposal": Proposal.objects.filter(status="voting").order_by("-pk").first().pk,
    "epoch": EpochSettlement.objects.order_by("-epoch").first().epoch,
    "height": LedgerTransaction.objects.order_by("-height").first().height,
    "address": User.objects.get(username="renter").wallet.address,
    "rental": Rental.objects.filter(renter__username="renter").order_by("pk").first().pk,
    "own_node": GpuNode.objects.filter(provider__username="provider").first().pk,
    "own_checker": CheckerNode.objects.get(operator__username="operator").pk,
}))
"""

CHECKS = """() => {
  const charts = [...document.querySelectorAll('[data-chart]')];
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    bareCharts: charts.filter(c => !c.querySelector('.main-svg') && !c.classList.contains('chart-empty')
                                   && !c.textContent.trim()).map(c => c.dataset.chart || c.id),
    cutTables: [...document.querySelectorAll('.table-wrap')].filter(w => w.scrollWidth > w.clientWidth + 1)
                 .map(w => (w.querySelector('table') || w).dataset.testid || w.className),
    wide: [...document.querySelectorAll('body *')].filter(e => {
      const r = e.getBoundingClientRect();
      return r.right > window.innerWidth + 1 && getComputedStyle(e).position !== 'fixed' && !e.closest('.table-wrap');
    }).slice(0, 5).map(e => e.tagName + '.' + e.className),
  };
}"""


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("walk"))
    server.manage("migrate", "--noinput", "-v0")
    server.manage("seed_demo", "--nodes", "40", "--checkers", "6", "--delegators", "12", "--history", "4")
    facts = json.loads(server.manage("shell", "-c", FACTS).stdout.strip().splitlines()[-1])
    server.start()
    yield server, facts
    server.stop()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("who", list(USERS))
def test_every_page_as_each_user(network, browser, who, width):
    from apps.demo.seed import DEMO_PASSWORD

    server, facts = network
    (ARTIFACTS / "walk").mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    if who != "anonymous":
        page.goto(server.url + "/accounts/login/")
        page.get_by_label("Username").fill(who)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/accounts/wallet/**")
    problems = []
    for path in USERS[who]:
        url = path.format(**facts)
        response = page.goto(server.url + url)
        assert response.status == 200, (url, response.status)
        page.wait_for_load_state("load")
        page.wait_for_timeout(400)  # deferred scripts draw their charts
        found = page.evaluate(CHECKS)
        if found["overflow"] > 0:
            problems.append(f"{url}: scrolls sideways by {found['overflow']} px ({found['wide']})")
        if width >= 1440 and found["cutTables"]:
            problems.append(f"{url}: tables cut at {width} px {found['cutTables']}")
        if found["bareCharts"]:
            problems.append(f"{url}: empty charts without an explanation {found['bareCharts']}")
        name = url.strip("/").replace("/", "_") or "home"
        page.screenshot(path=str(ARTIFACTS / "walk" / f"{who}-{width}-{name}.png"), full_page=True)
    context.close()
    assert not errors, errors
    assert not problems, problems


# Every seeded holder has voted already, so the other process changes one
# vote's choice: the tally moves power from one choice to another.
VOTE = """
from apps.governance import services
from apps.governance.models import Vote
vote = Vote.objects.filter(proposal_id={pk}).select_related("voter__owner").order_by("pk").first()
choice = "no" if vote.choice != "no" else "yes"
services.cast_vote(vote.voter.owner, {pk}, choice, "changed from another process")
print(choice)
"""


def test_a_vote_cast_by_another_process_appears_live(network, browser):
    from playwright.sync_api import expect

    from .conftest import wait_until_live

    server, facts = network
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/governance/{facts['proposal']}/")
    wait_until_live(page)
    before = {c: page.get_by_test_id(f"tally-{c}").inner_text() for c in ("yes", "no")}
    choice = server.manage("shell", "-v", "0", "-c", VOTE.format(pk=facts["proposal"])).stdout.split()[-1]
    expect(page.get_by_test_id(f"tally-{choice}")).not_to_have_text(before[choice], timeout=15_000)
    context.close()
