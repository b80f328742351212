"""Property-based: random sequences of valid and invalid postings.

A plain dict model says what every balance should be. After each step:
the database agrees with the model, the supply is conserved, no bucket is
negative, verify_ledger passes, and a refused posting wrote nothing.
"""

from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apps.core import ledger
from apps.core.amounts import MAX_AMOUNT, ath
from apps.core.models import BUCKETS, Account, ChainHead, Entry, LedgerTransaction, ModuleAccount, TxKind
from apps.core.verify import verify_ledger

N_WALLETS = 4
amounts = st.one_of(
    st.integers(min_value=1, max_value=ath(50)),  # mostly plausible
    st.sampled_from([0, -1, -ath(1), MAX_AMOUNT, MAX_AMOUNT + 1, 2**64, 1]),  # edges and invalid
)
buckets = st.sampled_from(BUCKETS)


class LedgerMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        # Each example starts from an empty ledger and is rolled back after.
        self.savepoint = transaction.savepoint_create()
        ledger.genesis()
        self.wallets = [Account.objects.create(label=f"prop {i}") for i in range(N_WALLETS)]
        faucet = ledger.module_account(ModuleAccount.FAUCET)
        for w in self.wallets:
            ledger.transfer(faucet, w, ath(100), kind=TxKind.FAUCET)
        self.model = {w.pk: {b: 0 for b in BUCKETS} for w in self.wallets}
        for w in self.wallets:
            self.model[w.pk]["available"] = ath(100)
        self.height = ChainHead.objects.get(pk=1).height

    def _snapshot(self):
        return (
            ChainHead.objects.get(pk=1).height,
            LedgerTransaction.objects.count(),
            Entry.objects.count(),
            sorted(Account.objects.values_list("pk", *BUCKETS)),
        )

    def _attempt(self, legs, expect_ok, call=None):
        """Post ``legs`` (through ``call`` if given) and check the outcome
        against ``expect_ok``; a refusal must leave everything untouched."""
        before = self._snapshot()
        try:
            (call or (lambda: ledger.post(TxKind.TRANSFER, legs)))()
        except ledger.LedgerError:
            assert not expect_ok, f"refused a valid posting {legs}"
            assert self._snapshot() == before, "a refused posting wrote something"
            return
        assert expect_ok, f"accepted an invalid posting {legs}"
        for leg in legs:
            self.model[leg.account_id][leg.bucket] += leg.amount
        self.height += 1

    @rule(
        src=st.integers(0, N_WALLETS - 1),
        dst=st.integers(0, N_WALLETS - 1),
        amount=amounts,
        src_bucket=buckets,
        dst_bucket=buckets,
    )
    def transfer(self, src, dst, amount, src_bucket, dst_bucket):
        """The public transfer wrapper: positive amounts only, never to the same bucket."""
        a, b = self.wallets[src], self.wallets[dst]
        valid = (
            0 < amount <= MAX_AMOUNT
            and not (src == dst and src_bucket == dst_bucket)
            and self.model[a.pk][src_bucket] >= amount
        )
        legs = [ledger.Leg(a.pk, src_bucket, -amount), ledger.Leg(b.pk, dst_bucket, amount)]
        self._attempt(legs, valid, lambda: ledger.transfer(a, b, amount, src_bucket=src_bucket, dst_bucket=dst_bucket))

    @rule(payer=st.integers(0, N_WALLETS - 1), split=st.lists(st.integers(1, ath(10)), min_size=2, max_size=4))
    def multi_leg(self, payer, split):
        """One payer, several payees, in one transaction."""
        a = self.wallets[payer]
        total = sum(split)
        legs = [ledger.Leg(a.pk, "available", -total)]
        legs += [ledger.Leg(self.wallets[(payer + i + 1) % N_WALLETS].pk, "available", x) for i, x in enumerate(split)]
        self._attempt(legs, self.model[a.pk]["available"] >= total)

    @rule(src=st.integers(0, N_WALLETS - 1), amount=st.integers(1, ath(10)))
    def unknown_account(self, src, amount):
        legs = [ledger.Leg(self.wallets[src].pk, "available", -amount), ledger.Leg(10**12, "available", amount)]
        self._attempt(legs, False)

    @rule(src=st.integers(0, N_WALLETS - 1), amount=st.integers(1, ath(10)), skew=st.integers(1, 1000))
    def unbalanced(self, src, amount, skew):
        a = self.wallets[src]
        legs = [ledger.Leg(a.pk, "available", -amount), ledger.Leg(a.pk, "bonded", amount + skew)]
        self._attempt(legs, False)

    def teardown(self):
        if hasattr(self, "savepoint"):
            transaction.savepoint_rollback(self.savepoint)

    @invariant()
    @precondition(lambda self: hasattr(self, "model"))
    def database_matches_model(self):
        for w in Account.objects.filter(pk__in=self.model):
            assert w.balances() == self.model[w.pk]
        assert ChainHead.objects.get(pk=1).height == self.height

    @invariant()
    @precondition(lambda self: hasattr(self, "model"))
    def supply_conserved_and_chain_valid(self):
        total = sum(sum(row) for row in Account.objects.values_list(*BUCKETS))
        assert total == ledger.supply()
        assert not Account.objects.filter(**{f"{BUCKETS[0]}__lt": 0}).exists()
        report = verify_ledger()
        assert report.ok, [str(p) for p in report.problems]


class TestLedgerProperties(TestCase):
    def test_random_sequences_keep_every_invariant(self):
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
