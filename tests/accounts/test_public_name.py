"""Public pages name accounts by address, or by the public name their owner
chose (docs/rules.md §7b): never by login name or e-mail."""

import pytest
from django.urls import reverse

from apps.accounts.public_name import NameRefused, set_public_name
from apps.core.models import LedgerTransaction
from apps.governance.models import Proposal
from apps.monitoring.models import CheckerReport

from ..api.public_network import FIRST, build
from ..factories import PASSWORD, UserFactory


@pytest.mark.django_db
def test_a_public_name_is_validated_unique_and_clearable(genesis):
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    assert set_public_name(ann, "  Blue   Whale ").public_name == "Blue Whale"
    with pytest.raises(NameRefused, match="already shows"):
        set_public_name(bob, "blue whale")
    for bad in ("x", "<script>", "ath1deadbeef", "Community pool", "a" * 33, "-dash"):
        with pytest.raises(NameRefused):
            set_public_name(bob, bad)
    assert set_public_name(ann, "").public_name is None
    assert ann.wallet.display_name == ann.wallet.short_address
    assert set_public_name(bob, "Blue Whale").display_name == "Blue Whale"  # free again


@pytest.mark.django_db
def test_the_profile_page_sets_and_clears_it_with_form_errors(client, genesis):
    user = UserFactory(username="carol")
    other = UserFactory(username="dave")
    set_public_name(other, "Taken")
    client.login(username="carol", password=PASSWORD)
    url = reverse("accounts:public_profile")
    assert client.get(url).status_code == 200
    r = client.post(url, {"public_name": "taken"})
    assert r.status_code == 200 and "Someone else already shows that name." in r.content.decode()
    assert client.post(url, {"public_name": "Carol Nodes"}).status_code == 302
    user.wallet.refresh_from_db()
    assert user.wallet.public_name == "Carol Nodes"
    page = client.get(reverse("explorer:account", args=[user.wallet.address])).content.decode()
    assert "Carol Nodes" in page
    client.post(url, {"public_name": ""})
    user.wallet.refresh_from_db()
    assert user.wallet.public_name is None


def public_pages(net) -> list[str]:
    node, checker = net["nodes"][1], net["checkers"][0]
    heights = LedgerTransaction.objects.order_by("height").values_list("height", flat=True)
    urls = [
        "/",
        reverse("explorer:index"),
        reverse("explorer:accounts"),
        reverse("explorer:accounts") + "?q=login-operator",
        reverse("monitoring:index"),
        reverse("monitoring:nodes"),
        reverse("monitoring:node", args=[node.pk]),
        reverse("monitoring:checkers"),
        reverse("monitoring:checker", args=[checker.pk]),
        reverse("marketplace:index"),
        reverse("marketplace:node", args=[node.pk]),
        reverse("staking:index"),
        reverse("staking:checker", args=[checker.pk]),
        reverse("settlement:index"),
        reverse("settlement:epoch", args=[FIRST + 1]),
        reverse("governance:index"),
    ]
    urls += [reverse("explorer:transaction", args=[h]) for h in heights]
    for user in (net["delegator"], net["renter"], node.provider, checker.operator):
        urls.append(reverse("explorer:account", args=[user.wallet.address]))
    urls += [p.get_absolute_url() for p in Proposal.objects.all()]
    return urls


@pytest.mark.django_db
def test_no_public_page_shows_a_login_name_or_an_e_mail(client):
    net = build()
    people = [net["delegator"], net["renter"], net["nodes"][1].provider, *(c.operator for c in net["checkers"])]
    assert CheckerReport.objects.exists()
    for url in public_pages(net):
        r = client.get(url)
        assert r.status_code == 200, url
        page = r.content.decode()
        for person in people:
            assert person.username not in page, (url, person.username)
            if person.email:
                assert person.email not in page, (url, person.email)
    # An owner who chose a name is shown by it.
    set_public_name(net["checkers"][0].operator, "Night Watch")
    assert "Night Watch" in client.get(reverse("monitoring:checker", args=[net["checkers"][0].pk])).content.decode()
