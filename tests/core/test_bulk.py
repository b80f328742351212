"""Row writes by primary key (apps.core.bulk): what settlement uses for
thousands of rows at once."""

from apps.core import bulk
from apps.core.models import Account

from ..factories import WalletFactory


def test_update_fields_writes_each_rows_own_values_and_nothing_else(db):
    wallets = [WalletFactory() for _ in range(5)]
    untouched = WalletFactory()
    for i, w in enumerate(wallets):
        w.available, w.bonded, w.label = 10 + i, 100 * i, "not written"
    assert bulk.update_fields(wallets, ["available", "bonded"]) == 5
    rows = {a.pk: a for a in Account.objects.all()}
    assert [(rows[w.pk].available, rows[w.pk].bonded) for w in wallets] == [(10 + i, 100 * i) for i in range(5)]
    assert all(rows[w.pk].label != "not written" for w in wallets)
    assert (rows[untouched.pk].available, rows[untouched.pk].bonded) == (0, 0)
    assert bulk.update_fields([], ["available"]) == 0


def test_update_fields_writes_text_and_nulls_and_an_object_listed_twice_ends_with_its_last_values(db):
    first, second = WalletFactory(), WalletFactory()
    twice = Account.objects.get(pk=first.pk)
    first.label, first.owner, first.available = 'it\'s "quoted", {braced}', None, 7
    second.label, second.available = "", 8
    twice.label, twice.available = "written last", 9
    assert bulk.update_fields([first, second, twice], ["label", "owner", "available"]) == 3
    rows = {a.pk: a for a in Account.objects.filter(pk__in=[first.pk, second.pk])}
    assert (rows[first.pk].label, rows[first.pk].available) == ("written last", 9)
    assert rows[first.pk].owner_id == twice.owner_id
    assert (rows[second.pk].label, rows[second.pk].available, rows[second.pk].owner_id) == ("", 8, second.owner_id)
    first.owner = None
    bulk.update_fields([first, second], ["owner"])
    assert Account.objects.get(pk=first.pk).owner_id is None


def test_update_in_covers_more_ids_than_one_statement_takes(db, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 3)
    wallets = [WalletFactory() for _ in range(8)]
    assert bulk.update_in(Account, [w.pk for w in wallets[:7]], label="chunked") == 7
    assert Account.objects.filter(label="chunked").count() == 7
    assert Account.objects.get(pk=wallets[7].pk).label != "chunked"
