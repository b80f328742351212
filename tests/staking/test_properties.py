"""Property-based: random sequences of delegate, undelegate, redelegate,
distribute, slash, claim, jail/unjail and epoch steps (with maturing
unbonding) against a small reference model that loops over delegators with
exact fractions.

After every step the database agrees with the model: every bucket of every
wallet, every checker's stake and status, and each position's rewards (paid
plus pending) are the exact entitlement rounded down, or at most one
micro-ATH less (the index rounds down by < 10**-10 uATH per distribution, so
an entitlement that is a whole number can land one below). Nothing is
created or lost: the rewards pool holds exactly what is owed plus the
tracked remainder, the dust account holds the swept remainder, and
verify_ledger passes at the end of each example.
"""

from collections import defaultdict
from fractions import Fraction

from django.contrib.auth import get_user_model
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

from apps.accounts.services import open_wallet
from apps.core import ledger
from apps.core.amounts import ath
from apps.core.models import Account, CheckerNode, CheckerStatus, ModuleAccount, TxKind
from apps.core.verify import verify_ledger
from apps.staking import queries, services
from apps.staking.models import RewardClaim, StakingState

from ..factories import rounds_fixed

PPM = 1_000_000
MIN_STAKE = ath(10_000)
MIN_DELEGATION = ath(1)
UNBONDING = 7
FUNDS = ath(40_000)
COMMISSIONS = [50_000, 123_457]  # an odd rate, so commission rounds

N = 4
people = st.integers(0, N - 1)  # 0 and 1 operate checkers 0 and 1
checkers = st.integers(0, 1)
stake_amounts = st.one_of(
    st.integers(MIN_DELEGATION, ath(3_000)),
    st.integers(1, MIN_DELEGATION),  # mostly below the minimum
    st.sampled_from([ath(100), ath(333) + 1, ath(2_000) + 7]),
)
reward_amounts = st.one_of(st.integers(1, 1_000), st.integers(1, ath(5_000)), st.sampled_from([ath(1), 10**6 + 1]))


class StakingMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self):
        self.savepoint = transaction.savepoint_create()
        ledger.genesis()
        rounds_fixed()  # by the scheduler at each epoch's start: stake bonded in e is dated e
        User = get_user_model()
        n = User.objects.count()
        self.users = [User.objects.create(username=f"prop{n + i}", password="!") for i in range(N)]
        self.wallets = [open_wallet(u) for u in self.users]
        self.ids = [w.pk for w in self.wallets]
        faucet = ledger.module_account(ModuleAccount.FAUCET)
        self.reserve = ledger.module_account(ModuleAccount.EMISSION_RESERVE)
        for w in self.wallets:
            ledger.transfer(faucet, w, FUNDS, kind=TxKind.FAUCET)
        self.epoch = 0
        self.checkers = []
        for i in range(2):
            c = services.activate_checker(
                self.users[i],
                f"prop checker {i}",
                MIN_STAKE + ath(5_000 + i),
                epoch=0,
                commission_rate=COMMISSIONS[i],
                commission_max_rate=PPM // 2,
            )
            self.checkers.append(c)
        # The reference model.
        self.available = {i: FUNDS for i in range(N)}
        self.bonded = {i: 0 for i in range(N)}
        self.unbonding = {i: 0 for i in range(N)}
        self.lots = defaultdict(lambda: defaultdict(int))  # (person, checker) -> bond epoch -> uATH
        for i in range(2):
            self.available[i] -= MIN_STAKE + ath(5_000 + i)
            self.bonded[i] += MIN_STAKE + ath(5_000 + i)
            self.lots[(i, i)][0] += MIN_STAKE + ath(5_000 + i)
        self.earned = defaultdict(Fraction)  # exact entitlement of the open position
        self.received = defaultdict(int)  # paid to the open position
        self.entries = []  # [person, checker, amount, created, maturity, matured]
        self.reds = []  # [person, src, dst, amount, created, maturity]
        self.jailed_until = {0: None, 1: None}
        self.last_distributed = {0: None, 1: None}
        self.shares_distributed = 0
        for p in (2, 3):
            for c in range(2):
                services.delegate(self.users[p], self.checkers[c], ath(1_000 * (p + c)) + p, epoch=0)
                self.available[p] -= ath(1_000 * (p + c)) + p
                self.bonded[p] += ath(1_000 * (p + c)) + p
                self.lots[(p, c)][0] += ath(1_000 * (p + c)) + p
        self.epoch = 1
        self.claim_watermark = RewardClaim.objects.order_by("-id").values_list("id", flat=True).first() or 0

    # --- the model's rules, written the obvious way ---

    def held(self, p, c):
        return sum(self.lots[(p, c)].values())

    def self_stake(self, c):
        return self.held(c, c)

    def active(self, c):
        return self.jailed_until[c] is None and self.self_stake(c) >= MIN_STAKE

    def take(self, p, c, amount):
        """Newest bonding epoch first."""
        lots = self.lots[(p, c)]
        for e in sorted(lots, reverse=True):
            cut = min(lots[e], amount)
            lots[e] -= cut
            amount -= cut
            if not lots[e]:
                del lots[e]
        assert amount == 0

    def refresh(self):
        for c in range(2):
            self.checkers[c].refresh_from_db()

    def expect(self, ok, call):
        """Run ``call``; it must succeed iff ``ok``; a refusal writes nothing."""
        before = self.db_state()
        try:
            result = call()
        except services.StakingError as exc:
            assert not ok, f"refused a valid action: {exc}"
            assert self.db_state() == before, "a refused action wrote something"
            return None
        assert ok, "accepted an invalid action"
        return result

    def db_state(self):
        return (
            sorted(Account.objects.values_list("pk", "available", "bonded", "unbonding")),
            sorted(CheckerNode.objects.values_list("pk", "total_stake", "self_stake", "status")),
        )

    def collect_payouts(self):
        for claim in RewardClaim.objects.filter(id__gt=self.claim_watermark).order_by("id"):
            p = self.ids.index(claim.delegator_id)
            c = [ch.pk for ch in self.checkers].index(claim.checker_id)
            self.received[(p, c)] += claim.amount
            self.available[p] += claim.amount
            self.claim_watermark = claim.id
        for key in list(self.earned):
            if not self.held(*key):
                self.check_position(*key)
                self.earned.pop(key, None)
                self.received.pop(key, None)

    def check_position(self, p, c, pending=None):
        if pending is None:
            pending = queries.pending_rewards(self.wallets[p], self.checkers[c])
        owed = int(self.earned[(p, c)])  # floor: entitlements are non-negative
        got = self.received[(p, c)] + pending
        assert 0 <= owed - got <= 1, f"person {p} at checker {c}: owed {self.earned[(p, c)]}, has {got}"

    # --- rules ---

    @rule(p=people, c=checkers, amount=stake_amounts)
    def delegate(self, p, c, amount):
        target_ok = self.jailed_until[c] is None and (self.active(c) or p == c)
        ok = amount >= MIN_DELEGATION and target_ok and self.available[p] >= amount
        if self.expect(ok, lambda: services.delegate(self.users[p], self.checkers[c], amount, epoch=self.epoch)):
            self.available[p] -= amount
            self.bonded[p] += amount
            self.lots[(p, c)][self.epoch] += amount

    @rule(p=people, c=checkers, part=st.integers(1, 4))
    def undelegate(self, p, c, part):
        amount = max(1, self.held(p, c) * part // 4) if self.held(p, c) else ath(1)
        ok = self.held(p, c) >= amount
        if self.expect(ok, lambda: services.undelegate(self.users[p], self.checkers[c], amount, epoch=self.epoch)):
            self.take(p, c, amount)
            self.bonded[p] -= amount
            self.unbonding[p] += amount
            self.entries.append([p, c, amount, self.epoch, self.epoch + UNBONDING, False])
        self.collect_payouts()

    @rule(p=people, c=checkers, amount=stake_amounts, part=st.integers(1, 4))
    def change_of_mind(self, p, c, amount, part):
        """Top up, then take part back in the same epoch (newest stake goes first)."""
        self.delegate(p, c, amount)
        self.undelegate(p, c, part)

    @rule(p=people, c=checkers, part=st.integers(1, 4), fraction=st.sampled_from([10_000, 100_000]))
    def run_from_a_slash(self, p, c, part, fraction):
        """Undelegating does not escape a slash for this epoch's infraction."""
        self.undelegate(p, c, part)
        self.slash(c, fraction, 0)

    @rule(p=people, src=checkers, part=st.integers(1, 4))
    def redelegate(self, p, src, part):
        dst = 1 - src
        held = self.held(p, src)
        amount = max(1, held * part // 4) if held else ath(1)
        arriving = any(r[0] == p and r[2] == src and r[5] > self.epoch for r in self.reds)
        target_ok = self.jailed_until[dst] is None and (self.active(dst) or p == dst)
        ok = target_ok and 0 < amount <= held and (amount == held or amount >= MIN_DELEGATION) and not arriving

        def call():
            return services.redelegate(self.users[p], self.checkers[src], self.checkers[dst], amount, epoch=self.epoch)

        if self.expect(ok, call):
            self.take(p, src, amount)
            self.lots[(p, dst)][self.epoch] += amount
            self.reds.append([p, src, dst, amount, self.epoch, self.epoch + UNBONDING])
        self.collect_payouts()

    @rule(c=checkers, amount=reward_amounts, lag=st.integers(0, 1), replay=st.booleans())
    def distribute(self, c, amount, lag, replay):
        e = self.epoch - lag
        last = self.last_distributed[c]
        if not replay and last is not None and e <= last < self.epoch:
            e = last + 1  # the next unpaid epoch, as settlement would
        if e < 0:
            return
        self.pay(c, amount, e)

    @rule(amounts=st.tuples(reward_amounts, reward_amounts))
    def settle(self, amounts):
        """What settlement does: the epoch ends, both checkers are paid for
        it, unbonding matures."""
        self.next_epoch(1)
        for c in range(2):
            self.pay(c, amounts[c], self.epoch - 1)

    def pay(self, c, amount, e):
        eligible = {p: sum(a for b, a in self.lots[(p, c)].items() if b < e) for p in range(N)}
        total = sum(eligible.values())
        last = self.last_distributed[c]
        ok = last is None or e > last
        call = lambda: services.distribute(self.checkers[c], amount, e, self.reserve)  # noqa: E731
        if self.expect(ok, call):
            # With no stake left that backed the epoch, all of it is the operator's.
            commission = amount * COMMISSIONS[c] // PPM if total else amount
            share = amount - commission
            self.available[c] += commission
            for p, stake in eligible.items():
                if stake:
                    self.earned[(p, c)] += Fraction(share * stake, total)
            self.last_distributed[c] = e
            self.shares_distributed += share

    @rule(c=checkers, fraction=st.sampled_from([1, 10_000, 10_000, 100_000, 333_333, PPM]), back=st.integers(0, 3))
    def slash(self, c, fraction, back):
        infraction = max(0, self.epoch - back)
        services.slash_checker(self.checkers[c], fraction, infraction, "property test", epoch=self.epoch)
        for p in range(N):
            cut = self.held(p, c) * fraction // PPM
            if cut:
                self.take(p, c, cut)
                self.bonded[p] -= cut
        for p, src, dst, amount, created, maturity in self.reds:
            if src == c and created >= infraction and maturity > self.epoch:
                cut = min(amount * fraction // PPM, self.held(p, dst))
                if cut:
                    self.take(p, dst, cut)
                    self.bonded[p] -= cut
        for entry in self.entries:
            p, ec, amount, created, _, matured = entry
            if ec == c and created >= infraction and not matured:
                cut = amount * fraction // PPM
                entry[2] -= cut
                self.unbonding[p] -= cut
        self.collect_payouts()

    @rule(p=people, c=st.one_of(st.none(), checkers))
    def claim(self, p, c):
        checker = None if c is None else self.checkers[c]
        keys = [(p, c)] if c is not None else [(p, x) for x in range(2)]
        # Whether anything is claimable is the implementation's pending (checked against the model below).
        ok = any(queries.pending_rewards(self.wallets[p], self.checkers[k[1]]) > 0 for k in keys)
        self.expect(ok, lambda: services.claim_rewards(self.users[p], checker, epoch=self.epoch))
        self.collect_payouts()

    @rule(c=checkers)
    def jail(self, c):
        services.jail(self.checkers[c], "property test", epoch=self.epoch, duration=2)
        until = self.epoch + 2
        self.jailed_until[c] = max(until, self.jailed_until[c] or until)

    @rule(c=checkers, by_operator=st.booleans())
    def unjail(self, c, by_operator):
        user = self.users[c] if by_operator else self.users[N - 1]
        ok = by_operator and self.jailed_until[c] is not None and self.epoch >= self.jailed_until[c]
        if self.expect(ok, lambda: services.unjail(user, self.checkers[c], epoch=self.epoch)):
            self.jailed_until[c] = None

    @rule(steps=st.integers(1, 4))
    def next_epoch(self, steps):
        self.epoch += steps
        services.mature_unbonding(self.epoch)
        for entry in self.entries:
            p, _, amount, _, maturity, matured = entry
            if not matured and maturity <= self.epoch:
                entry[5] = True
                self.unbonding[p] -= amount
                self.available[p] += amount

    # --- checks ---

    @invariant()
    @precondition(lambda self: hasattr(self, "entries"))
    def database_matches_model(self):
        balances = {
            pk: rest
            for pk, *rest in Account.objects.filter(pk__in=self.ids).values_list(
                "pk", "available", "bonded", "unbonding"
            )
        }
        for p in range(N):
            assert balances[self.ids[p]] == [self.available[p], self.bonded[p], self.unbonding[p]], p
        self.refresh()
        owed = {}
        for c, checker in enumerate(self.checkers):
            total = sum(self.held(p, c) for p in range(N))
            status = (
                CheckerStatus.JAILED
                if self.jailed_until[c] is not None
                else CheckerStatus.ACTIVE
                if self.active(c)
                else CheckerStatus.INACTIVE
            )
            assert (checker.total_stake, checker.self_stake, checker.status) == (total, self.self_stake(c), status)
            owed[c] = queries.owed_scaled(checker)
        for p, c in list(self.earned):
            self.check_position(p, c, owed[c].get(self.ids[p], 0) // services.SCALE)

        # Nothing created or lost: every micro-ATH given to delegators is
        # paid, owed in the pool, or in dust; the pool's surplus over what is
        # owed is exactly the tracked remainder.
        pool = ledger.module_account(ModuleAccount.REWARDS_POOL).available
        dust = ledger.module_account(ModuleAccount.DUST).available
        states = {s.checker_id: s for s in StakingState.objects.filter(checker__in=self.checkers)}
        assert pool == sum(s.rewards_outstanding for s in states.values())
        paid = sum(RewardClaim.objects.filter(checker__in=self.checkers).values_list("amount", flat=True))
        assert self.shares_distributed == paid + pool + dust - self.genesis_dust
        for c, checker in enumerate(self.checkers):
            state = states[checker.pk]
            assert 0 <= state.remainder_scaled < services.SCALE
            assert state.rewards_outstanding * services.SCALE - sum(owed[c].values()) == state.remainder_scaled

    @property
    def genesis_dust(self):
        if not hasattr(self, "_genesis_dust"):
            self._genesis_dust = ledger.module_account(ModuleAccount.DUST).available - sum(
                StakingState.objects.filter(checker__in=self.checkers).values_list("dust_total", flat=True)
            )
        return self._genesis_dust

    def teardown(self):
        if hasattr(self, "savepoint"):
            try:
                report = verify_ledger()
                assert report.ok, [str(p) for p in report.problems]
            finally:
                transaction.savepoint_rollback(self.savepoint)


class TestStakingAgainstReferenceModel(TestCase):
    def test_random_sequences_agree_with_the_reference_model(self):
        run_state_machine_as_test(
            StakingMachine,
            settings=settings(
                max_examples=16,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
