"""The ledger service: exact, double-entry, refusals write nothing."""

import pytest

from apps.core import ledger
from apps.core.amounts import MAX_AMOUNT, ath
from apps.core.hashing import GENESIS_PREV_HASH
from apps.core.models import (
    BUCKETS,
    Account,
    Bucket,
    ChainHead,
    Checkpoint,
    Entry,
    LedgerTransaction,
    ModuleAccount,
    TxKind,
)
from apps.core.verify import verify_ledger

from ..factories import WalletFactory, fund

SUPPLY = ath(42_000_000_000)


def state():
    """Everything a refused posting must leave untouched."""
    return (
        ChainHead.objects.get(pk=1).height,
        LedgerTransaction.objects.count(),
        Entry.objects.count(),
        Checkpoint.objects.count(),
        sorted(Account.objects.values_list("pk", *BUCKETS)),
    )


def total_balances():
    return sum(a.total for a in Account.objects.all())


def test_genesis_mints_the_supply_once_across_module_accounts(genesis):
    assert genesis.height == 1 and genesis.prev_hash == GENESIS_PREV_HASH
    assert ledger.supply() == SUPPLY == total_balances()
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    assert pool.available == SUPPLY * 25 // 100
    assert ledger.genesis() is None  # idempotent
    with pytest.raises(ledger.GenesisError):
        ledger.post(TxKind.GENESIS, [ledger.Leg(pool, Bucket.AVAILABLE, 1)], _minting=True)
    assert ledger.supply() == SUPPLY == total_balances()


def test_posting_before_genesis_is_refused(db):
    a, b = WalletFactory(), WalletFactory()
    with pytest.raises(ledger.GenesisError, match="no genesis"):
        ledger.transfer(a, b, 1)


def test_transfer_moves_exact_micro_ath_and_links_the_chain(genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(10))
    tx = ledger.transfer(alice, bob, 3_333_333, memo="lunch")
    alice.refresh_from_db(), bob.refresh_from_db()
    assert alice.available == ath(10) - 3_333_333
    assert bob.available == 3_333_333
    assert [(e.account_id, e.bucket, e.amount) for e in tx.entries.all()] == [
        (alice.pk, "available", -3_333_333),
        (bob.pk, "available", 3_333_333),
    ]
    previous = LedgerTransaction.objects.get(height=tx.height - 1)
    assert tx.prev_hash == previous.hash
    assert ChainHead.objects.get().hash == tx.hash
    assert total_balances() == SUPPLY
    assert verify_ledger().ok


def test_move_between_buckets_of_one_account(genesis):
    alice = WalletFactory()
    fund(alice, ath(100))
    ledger.move(alice, Bucket.AVAILABLE, Bucket.BONDED, ath(40), kind=TxKind.DELEGATE)
    alice.refresh_from_db()
    assert (alice.available, alice.bonded, alice.total) == (ath(60), ath(40), ath(100))
    assert alice.voting_power == ath(100)


@pytest.mark.parametrize(
    "amount, error",
    [
        (0, ledger.InvalidAmount),
        (-5, ledger.InvalidAmount),
        (True, ledger.InvalidAmount),
        (1.5, ledger.InvalidAmount),
        ("100", ledger.InvalidAmount),
        (MAX_AMOUNT + 1, ledger.InvalidAmount),
        (2**64, ledger.InvalidAmount),
        (ath(11), ledger.InsufficientFunds),
    ],
)
def test_refused_transfers_write_nothing(genesis, amount, error):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(10))
    before = state()
    with pytest.raises(error):
        ledger.transfer(alice, bob, amount)
    assert state() == before


def test_overdraw_message_says_what_is_missing(genesis):
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(1))
    with pytest.raises(ledger.InsufficientFunds, match=r"has 1 ATH, needs 2 ATH"):
        ledger.transfer(alice, bob, ath(2))


def test_unknown_account_and_unbalanced_legs_are_refused(genesis):
    alice = WalletFactory()
    fund(alice, ath(10))
    before = state()
    with pytest.raises(ledger.UnknownAccount):
        ledger.post(TxKind.TRANSFER, [ledger.Leg(alice, "available", -1), ledger.Leg(999_999, "available", 1)])
    with pytest.raises(ledger.Unbalanced):
        ledger.post(TxKind.TRANSFER, [ledger.Leg(alice, "available", -2), ledger.Leg(alice, "bonded", 1)])
    with pytest.raises(ledger.LedgerError, match="bucket"):
        ledger.post(TxKind.TRANSFER, [ledger.Leg(alice, "pocket", -1), ledger.Leg(alice, "bonded", 1)])
    with pytest.raises(ledger.Unbalanced):
        ledger.post(TxKind.TRANSFER, [])
    assert state() == before


def test_an_overflowing_credit_is_refused(genesis):
    # Supply is far below 2**63, so only a forged leg set could overflow; it must still be refused.
    alice, bob = WalletFactory(), WalletFactory()
    fund(alice, ath(1))
    before = state()
    with pytest.raises(ledger.InvalidAmount):
        ledger.post(
            TxKind.TRANSFER,
            [ledger.Leg(alice, "available", -MAX_AMOUNT - 1), ledger.Leg(bob, "available", MAX_AMOUNT + 1)],
        )
    assert state() == before


def test_checkpoints_give_balances_at_past_heights(genesis):
    alice, bob = WalletFactory(), WalletFactory()
    t1 = ledger.transfer(ledger.module_account("faucet"), alice, ath(50), kind=TxKind.FAUCET)
    t2 = ledger.move(alice, Bucket.AVAILABLE, Bucket.BONDED, ath(20), kind=TxKind.DELEGATE)
    t3 = ledger.transfer(alice, bob, ath(30))
    assert ledger.balance_at(alice, t1.height - 1)["available"] == 0
    assert ledger.balance_at(alice, t1.height) == {**dict.fromkeys(BUCKETS, 0), "available": ath(50)}
    assert ledger.balance_at(alice, t2.height)["bonded"] == ath(20)
    assert ledger.balance_at(alice, t3.height + 100) == {**dict.fromkeys(BUCKETS, 0), "bonded": ath(20)}
    assert ledger.balance_at(bob, t2.height)["available"] == 0
    assert ledger.balance_at(bob, t3.height)["available"] == ath(30)
