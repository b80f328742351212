"""Retake the README's screenshots (docs/screenshots/) on a small seeded demo
network: the marketplace, a running rental, a checker's status page and a
proposal. Needs the dev requirements and Chromium (as the browser tests).

    .venv/bin/python scripts/readme_screenshots.py
"""

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, Server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
FACTS = """
import json
from apps.core.models import CheckerNode
from apps.governance.models import Proposal
from apps.marketplace.models import Rental, RentalStatus
print(json.dumps({
    "rental": Rental.objects.filter(renter__username="renter", status=RentalStatus.ACTIVE).first().pk,
    "checker": CheckerNode.objects.order_by("-total_stake").first().pk,
    "proposal": Proposal.objects.filter(status="voting").order_by("-pk").first().pk,
}))
"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    from apps.demo.seed import DEMO_PASSWORD

    OUT.mkdir(parents=True, exist_ok=True)
    server = Server(Path(tempfile.mkdtemp()))
    server.manage("migrate", "--noinput", "-v0")
    server.manage("seed_demo", "--nodes", "60", "--checkers", "8", "--delegators", "20", "--history", "6")
    facts = json.loads(server.manage("shell", "-c", FACTS).stdout.strip().splitlines()[-1])
    server.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
            page.goto(server.url + "/accounts/login/")
            page.get_by_label("Username").fill("renter")
            page.get_by_label("Password").fill(DEMO_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/accounts/wallet/**")
            shots = {
                "marketplace": "/marketplace/",
                "rental": f"/marketplace/rentals/{facts['rental']}/",
                "checker-status": f"/monitoring/checkers/{facts['checker']}/status/?unit=hour",
                "proposal": f"/governance/{facts['proposal']}/",
            }
            for name, path in shots.items():
                page.goto(server.url + path)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(800)
                page.screenshot(path=str(OUT / f"{name}.png"))
                print(OUT / f"{name}.png")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aethir_web.settings")
    import django

    django.setup()
    main()
