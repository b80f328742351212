"""Slashing (docs/rules.md §5): settlement calls :func:`slash_checker` when
a checker misbehaved. Everything that backed the checker at the infraction
loses the same fraction, rounded down per holding, and all of it is burnt
in one posting.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from apps.core import bulk, ledger
from apps.core.models import Account, Bucket, CheckerNode, ModuleAccount, TxKind

from ..models import Redelegation, SlashEvent, SlashImpact, UnbondingEntry
from ._common import PPM, _epoch, _lock_checkers, _lock_state, _operator_account_id, _refresh_status, _save_states, pct
from .errors import StakingError
from .rewards import _load_pairs, _Pair, _pay_rewards, _sweep_dust, _write


@dataclass
class _Cuts:
    """What one slash takes, gathered before anything is written: the legs
    (by account and bucket), the stake each checker loses (by checker and
    account), the rewards paid to positions the slash closes, the unbonding
    entries shortened and one :class:`SlashImpact` per holding cut."""

    fraction_ppm: int
    cache: dict = field(default_factory=dict)
    # account -> bucket -> uATH
    losses: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    # checker -> account -> uATH
    stake_delta: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    payouts: list = field(default_factory=list)
    entries: list[UnbondingEntry] = field(default_factory=list)
    impacts: list[SlashImpact] = field(default_factory=list)

    def cut(
        self, source: str, delegator_id: int, base: int, holding: _Pair | UnbondingEntry, checker: CheckerNode, **link
    ) -> None:
        """Take ``base x fraction`` (rounded down) from ``holding``: a
        delegator's lots on ``checker`` (bonded there, or redelegated there
        since the infraction) or an unbonding entry. A position is cut by at
        most what it still holds: redelegated stake may since have left."""
        if isinstance(holding, _Pair):
            amount = min(base * self.fraction_ppm // PPM, holding.total)
            if not amount:
                return
            holding.settle(self.cache)
            paid = holding.take(amount)
            self.payouts.append((delegator_id, checker, paid, holding.paid_inputs))
            self.losses[delegator_id][Bucket.BONDED] += amount
            self.stake_delta[checker.pk][delegator_id] -= amount
        else:
            amount = base * self.fraction_ppm // PPM
            if not amount:
                return
            holding.amount -= amount
            self.entries.append(holding)
            self.losses[delegator_id][Bucket.UNBONDING] += amount
        self.impacts.append(
            SlashImpact(delegator_id=delegator_id, source=source, amount=amount, checker=checker, **link)
        )


def slash_checker(
    checker: CheckerNode, fraction_ppm: int, infraction_epoch: int, reason: str, *, epoch: int | None = None, actor=None
) -> SlashEvent:
    """Slash ``fraction_ppm`` of everything that backed ``checker`` at
    ``infraction_epoch``: its bonded stake (each delegator, the operator
    included, loses ``stake x fraction`` rounded down), its unbonding entries
    that began at or after the infraction, and stake redelegated away from it
    since then (taken at the destination). All of it goes to the burn account
    in one posting; the event records who lost what."""
    e = _epoch(epoch)
    if isinstance(fraction_ppm, bool) or not isinstance(fraction_ppm, int) or not 0 < fraction_ppm <= PPM:
        raise StakingError("The slash fraction is between 1 ppm and 100%.")
    infraction_epoch = int(infraction_epoch)
    if infraction_epoch > e:
        raise StakingError("The infraction cannot be in the future.")
    with transaction.atomic():
        ledger.lock_head()
        reds = list(
            Redelegation.objects.select_for_update()
            .filter(src=checker, creation_epoch__gte=infraction_epoch, maturity_epoch__gt=e)
            .order_by("id")
        )
        checkers = _lock_checkers([checker.pk] + [r.dst_id for r in reds])
        checker = checkers[checker.pk]
        states = {cid: _lock_state(c) for cid, c in sorted(checkers.items())}
        cuts = _Cuts(fraction_ppm)
        Source = SlashImpact.Source

        pairs = _load_pairs(checker, states[checker.pk])
        for delegator_id, pair in sorted(pairs.items()):
            cuts.cut(Source.BONDED, delegator_id, pair.total, pair, checker)

        # Redelegated stake is taken where it went; several redelegations of
        # one delegator to one checker share that position.
        dst_pairs: dict[tuple[int, int], _Pair] = {}
        for red in reds:
            key = (red.delegator_id, red.dst_id)
            if key not in dst_pairs:
                dst = checkers[red.dst_id]
                dst_pairs[key] = _load_pairs(dst, states[dst.pk], [red.delegator_id])[red.delegator_id]
                dst_pairs[key].settle(cuts.cache)
            pair = dst_pairs[key]
            cuts.cut(Source.REDELEGATED, red.delegator_id, red.amount, pair, pair.checker, redelegation=red)

        entries = (
            UnbondingEntry.objects.select_for_update()
            .filter(checker=checker, creation_epoch__gte=infraction_epoch, matured_epoch__isnull=True)
            .order_by("id")
        )
        for entry in entries:
            cuts.cut(Source.UNBONDING, entry.delegator_id, entry.amount, entry, checker, unbonding_entry=entry)

        by_source = defaultdict(int)
        for impact in cuts.impacts:
            by_source[impact.source] += impact.amount
        total = sum(by_source.values())
        tx = None
        if total:
            legs = [
                ledger.Leg(account_id, bucket, -amount)
                for account_id, buckets in sorted(cuts.losses.items())
                for bucket, amount in sorted(buckets.items())
            ]
            legs.append(ledger.Leg(ledger.module_account(ModuleAccount.BURN), Bucket.AVAILABLE, total))
            # Which checker's stake each bonded loss came from (a delegator's
            # redelegated stake is cut where it went): the legs alone sum
            # them per account, and the ledger must say where stake was.
            ids = {a for deltas in cuts.stake_delta.values() for a in deltas}
            addresses = dict(Account.objects.filter(pk__in=ids).values_list("pk", "address"))
            stake_cuts = {
                str(c): {addresses[a]: str(-d) for a, d in sorted(deltas.items()) if d}
                for c, deltas in sorted(cuts.stake_delta.items())
            }
            tx = ledger.post(
                TxKind.SLASH,
                legs,
                memo=f"Slash of {checker.name}: {pct(fraction_ppm)}, {reason}"[:200],
                meta={
                    "checker": checker.pk,
                    "fraction_ppm": fraction_ppm,
                    "infraction_epoch": infraction_epoch,
                    "epoch": e,
                    "stake_cuts": stake_cuts,
                },
                actor=actor,
            )
        # A position the slash did not cut has nothing to write.
        _write([pairs[d] for d in sorted(pairs)] + list(dst_pairs.values()))
        bulk.update_fields(cuts.entries, ["amount"])
        event = SlashEvent.objects.create(
            checker=checker,
            fraction_ppm=fraction_ppm,
            infraction_epoch=infraction_epoch,
            epoch=e,
            reason=(reason or "")[:200],
            bonded_amount=by_source[Source.BONDED],
            unbonding_amount=by_source[Source.UNBONDING],
            redelegated_amount=by_source[Source.REDELEGATED],
            total_amount=total,
            tx=tx,
        )
        for impact in cuts.impacts:
            impact.slash = event
        SlashImpact.objects.bulk_create(cuts.impacts)
        _pay_rewards(cuts.payouts, e, automatic=True, actor=actor)
        states[checker.pk].slashed_total += total
        _sweep_dust(list(states.values()), actor=actor)
        _save_states(states.values())
        for checker_id, deltas in cuts.stake_delta.items():
            c = checkers[checker_id]
            operator_id = _operator_account_id(c)
            c.total_stake += sum(deltas.values())
            c.self_stake += deltas.get(operator_id, 0)
            _refresh_status(c, e)
            c.save(update_fields=["total_stake", "self_stake", "status"])
    return event
