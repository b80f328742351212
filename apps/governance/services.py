"""Governance rules (docs/rules.md §8). Views, the API, the management
command and the scheduler all call these; none of them move ATH or change a
proposal's status any other way.

Voting power is what a holder owned (available + bonded + unbonding) right
after the ledger transaction at the proposal's snapshot height, read from the
balance checkpoints. Checkpoints at or below a height never change once that
height exists, so the snapshot can be read without holding any lock, and
tokens moved or received after it count for nothing.
"""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext

from apps.accounts.services import open_wallet
from apps.core import epochs, ledger, parameters
from apps.core.amounts import display_uath, format_uath
from apps.core.errors import DomainError
from apps.core.models import Account, AccountKind, Checkpoint, ModuleAccount, TxKind

from . import live
from .models import (
    Choice,
    ParameterValue,
    Proposal,
    ProposalEvent,
    ProposalKind,
    ProposalStatus,
    Vote,
)

log = logging.getLogger(__name__)

PPM = parameters.PPM
TITLE_MAX = 140
DESCRIPTION_MAX = 20_000


class GovernanceError(DomainError):
    """A governance action that was refused; the message is for the person.
    Nothing was written."""


# --- Voting power -------------------------------------------------------------


def voting_power(account: Account | int, height: int) -> int:
    """``account``'s voting power right after ``height``: one indexed lookup
    of its latest checkpoint at or below the height (0 if it had none)."""
    account_id = account if isinstance(account, int) else account.pk
    row = (
        Checkpoint.objects.filter(account_id=account_id, height__lte=height)
        .order_by("-height")
        .values_list("available", "bonded", "unbonding")
        .first()
    )
    return sum(row) if row else 0


def _module_account_ids() -> list[int]:
    return list(Account.objects.filter(kind=AccountKind.MODULE).values_list("pk", flat=True))


def total_power_at(height: int) -> int:
    """Every holder's voting power at ``height``, summed in one aggregate over
    the latest checkpoint per account at or below it.

    Module accounts (emission reserve, community pool, deposits, ...) are the
    protocol's, not a holder's, so they neither vote nor count toward quorum.
    The correlated lookup is a seek on the (account, height) unique index.
    """
    latest = (
        Checkpoint.objects.filter(account_id=OuterRef("account_id"), height__lte=height)
        .order_by("-height")
        .values("height")[:1]
    )
    total = (
        Checkpoint.objects.exclude(account_id__in=_module_account_ids())
        .filter(height=Subquery(latest))
        .aggregate(total=Sum(F("available") + F("bonded") + F("unbonding")))["total"]
    )
    return int(total or 0)


# --- Tally --------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """Sums of snapshot power by choice, judged with exact integer arithmetic.

    * quorum: votes cast >= ``quorum`` of the snapshot's total power
      (exactly at the bar passes; nothing cast never reaches it);
    * veto: no-with-veto < ``veto`` of votes cast (exactly at the bar vetoes);
    * threshold: yes > ``threshold`` of non-abstain votes (exactly at the bar
      fails).
    """

    yes: int
    no: int
    abstain: int
    no_with_veto: int
    voters: int
    total_power: int
    quorum: int
    threshold: int
    veto: int

    @property
    def cast(self) -> int:
        return self.yes + self.no + self.abstain + self.no_with_veto

    @property
    def non_abstain(self) -> int:
        return self.yes + self.no + self.no_with_veto

    @property
    def quorum_reached(self) -> bool:
        return self.cast > 0 and self.cast * PPM >= self.quorum * self.total_power

    @property
    def vetoed(self) -> bool:
        return self.cast > 0 and self.no_with_veto * PPM >= self.veto * self.cast

    @property
    def threshold_reached(self) -> bool:
        return self.yes * PPM > self.threshold * self.non_abstain

    @property
    def outcome(self) -> str:
        if not self.quorum_reached:
            return ProposalStatus.REJECTED
        if self.vetoed:
            return ProposalStatus.VETOED
        return ProposalStatus.PASSED if self.threshold_reached else ProposalStatus.REJECTED

    @property
    def refunds_deposit(self) -> bool:
        return self.quorum_reached and not self.vetoed

    # Shares in ppm, rounded down, for display and charts only; the decisions
    # above never round.
    @staticmethod
    def _ppm(part: int, whole: int) -> int:
        return part * PPM // whole if whole else 0

    @property
    def turnout_ppm(self) -> int:
        return self._ppm(self.cast, self.total_power)

    @property
    def veto_ppm(self) -> int:
        return self._ppm(self.no_with_veto, self.cast)

    @property
    def yes_ppm(self) -> int:
        return self._ppm(self.yes, self.non_abstain)

    def by_choice(self) -> list[tuple[str, str, int]]:
        return [(c.value, c.label, getattr(self, c.value)) for c in Choice]


def tally(proposal: Proposal) -> Tally:
    """The tally of ``proposal``'s votes now: one aggregate over its votes
    (the final figures once it has been tallied)."""
    if proposal.tallied_at:
        sums = {c: getattr(proposal, c) for c in Choice.values}
        voters = proposal.voters
    else:
        rows = (
            Vote.objects.filter(proposal_id=proposal.pk)
            .values("choice")
            .annotate(power=Sum("power"), n=Count("*"))
            .order_by()
        )
        sums = {c: 0 for c in Choice.values}
        voters = 0
        for row in rows:
            sums[row["choice"]] = int(row["power"])
            voters += row["n"]
    return Tally(
        **sums,
        voters=voters,
        total_power=proposal.snapshot_power or 0,
        quorum=proposal.quorum,
        threshold=proposal.threshold,
        veto=proposal.veto,
    )


# --- Creating a proposal ------------------------------------------------------


def _clean_text(title: str, description: str) -> tuple[str, str]:
    title = (title or "").strip()
    description = (description or "").strip()
    if not title:
        raise GovernanceError(gettext("Give the proposal a title."))
    if len(title) > TITLE_MAX:
        raise GovernanceError(gettext("The title is at most %(title_max)s characters.") % {"title_max": TITLE_MAX})
    if not description:
        raise GovernanceError(gettext("Describe the proposal: what it does and why."))
    if len(description) > DESCRIPTION_MAX:
        raise GovernanceError(
            gettext("The description is at most %(description_max)s characters.")
            % {"description_max": f"{DESCRIPTION_MAX:,}"}
        )
    return title, description


def _check_amount(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GovernanceError(gettext("The %(what)s must be a whole number of micro-ATH.") % {"what": what})
    if value <= 0:
        raise GovernanceError(gettext("The %(what)s must be more than zero.") % {"what": what})
    return value


def _clean_changes(changes) -> dict[str, int]:
    if not isinstance(changes, dict) or not changes:
        raise GovernanceError(gettext("Name at least one parameter to change."))
    try:
        parameters.validate(dict(changes))
    except parameters.ParameterError as exc:
        raise GovernanceError(str(exc)) from None
    current = parameters.current(epochs.current_number())
    same = [parameters.definition(k).label for k, v in changes.items() if current[k] == v]
    if same:
        raise GovernanceError(gettext("%(join)s already has that value.") % {"join": ", ".join(same)})
    return dict(changes)


def _clean_spend(recipient_address, amount) -> tuple[Account, int]:
    amount = _check_amount(amount, "amount to spend")
    address = (recipient_address or "").strip()
    recipient = Account.objects.filter(address=address).first()
    if recipient is None:
        raise GovernanceError(gettext("No wallet has that recipient address."))
    if recipient.kind != AccountKind.USER:
        raise GovernanceError(gettext("The community pool pays wallets, not module accounts."))
    pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
    if amount > pool.available:
        raise GovernanceError(
            gettext("The community pool holds %(available)s; a spend cannot ask for more.")
            % {"available": display_uath(pool.available)}
        )
    return recipient, amount


@ledger.serialised
def create_proposal(
    user,
    *,
    kind: str,
    title: str,
    description: str,
    deposit: int,
    changes: dict[str, int] | None = None,
    recipient_address: str | None = None,
    amount: int | None = None,
) -> Proposal:
    """Create a proposal by ``user`` and lock ``deposit`` from their available
    balance into the deposits module account; voting opens at once with the
    snapshot right after the deposit (so the deposit itself does not vote).

    Parameter values are checked against their hard bounds now, not at the end.
    """
    if kind not in ProposalKind.values:
        raise GovernanceError(gettext("Choose a kind of proposal: text, parameter change or community-pool spend."))
    title, description = _clean_text(title, description)
    deposit = _check_amount(deposit, "deposit")
    now = epochs.current_number()
    values = parameters.current(now)
    if deposit < values["min_deposit"]:
        raise GovernanceError(
            gettext("The minimum deposit is %(min_deposit)s.") % {"min_deposit": display_uath(values["min_deposit"])}
        )
    clean_changes, recipient = {}, None
    if kind == ProposalKind.PARAMETERS:
        clean_changes = _clean_changes(changes)
    elif kind == ProposalKind.SPEND:
        recipient, amount = _clean_spend(recipient_address, amount)
    else:
        amount = None

    wallet = open_wallet(user)
    try:
        with transaction.atomic():
            proposal = Proposal.objects.create(
                kind=kind,
                title=title,
                description=description,
                proposer=wallet,
                created_by=user,
                deposit=deposit,
                recipient=recipient,
                amount=amount,
                quorum=values["quorum"],
                threshold=values["threshold"],
                veto=values["veto"],
            )
            ParameterValue.objects.bulk_create(
                ParameterValue(proposal=proposal, key=k, value=v) for k, v in sorted(clean_changes.items())
            )
            tx = ledger.transfer(
                wallet,
                ledger.module_account(ModuleAccount.GOV_DEPOSITS),
                deposit,
                kind=TxKind.DEPOSIT,
                memo=f"Deposit for proposal #{proposal.pk}",
                meta={"proposal": proposal.pk},
                actor=user,
            )
            proposal.deposit_height = tx.height
            proposal.snapshot_height = tx.height
            proposal.save(update_fields=["deposit_height", "snapshot_height"])
            ProposalEvent.objects.create(
                proposal=proposal,
                kind=ProposalEvent.Kind.CREATED,
                note=f"{format_uath(deposit)} locked by {wallet.display_name}",
                height=tx.height,
                epoch=now,
            )
    except ledger.InsufficientFunds:
        raise GovernanceError(
            gettext("The deposit needs %(deposit)s of available ATH; you have %(available)s.")
            % {"deposit": display_uath(deposit), "available": display_uath(wallet.available)}
        ) from None
    except ledger.LedgerError as exc:
        raise GovernanceError(str(exc)) from None
    return open_voting(proposal.pk)


def open_voting(proposal_id: int) -> Proposal:
    """Total the snapshot's voting power and open the vote (idempotent).

    Runs after the deposit has committed: the history at the snapshot height
    is immutable, so the aggregate holds no lock while it reads. If this never
    runs (the process died), ``tally_due`` finishes it.
    """
    proposal = Proposal.objects.get(pk=proposal_id)
    if proposal.status != ProposalStatus.DEPOSIT or proposal.snapshot_height is None:
        return proposal
    total = total_power_at(proposal.snapshot_height)
    with transaction.atomic():
        proposal = Proposal.objects.select_for_update().get(pk=proposal_id)
        if proposal.status != ProposalStatus.DEPOSIT:
            return proposal
        start = epochs.current_number()
        proposal.snapshot_power = total
        proposal.voting_start_epoch = start
        proposal.voting_end_epoch = start + parameters.get("voting_epochs", start)
        proposal.status = ProposalStatus.VOTING
        proposal.save(update_fields=["snapshot_power", "voting_start_epoch", "voting_end_epoch", "status"])
        ProposalEvent.objects.create(
            proposal=proposal,
            kind=ProposalEvent.Kind.VOTING,
            note=(
                f"Snapshot at ledger height #{proposal.snapshot_height}: {format_uath(total)} of voting power; "
                f"open through epoch {proposal.voting_end_epoch - 1}"
            ),
            height=proposal.snapshot_height,
            epoch=start,
        )
        live.proposal_changed(proposal.pk)
    return proposal


# --- Voting -------------------------------------------------------------------


def voting_ends_at(proposal: Proposal):
    if proposal.voting_end_epoch is None:
        return None
    try:
        return epochs.epoch(proposal.voting_end_epoch).start
    except LookupError:
        return None


def _check_open(proposal: Proposal) -> None:
    if proposal.status != ProposalStatus.VOTING:
        raise GovernanceError(
            gettext("Voting on proposal #%(pk)s is not open (it is %(lower)s).")
            % {"pk": proposal.pk, "lower": proposal.get_status_display().lower()}
        )
    if epochs.current_number() >= proposal.voting_end_epoch:
        raise GovernanceError(gettext("Voting on proposal #%(pk)s has ended; the tally is due.") % {"pk": proposal.pk})


REASON_MAX = 280


def cast_vote(user, proposal_id: int, choice: str, reason: str = "") -> Vote:
    """Record ``user``'s vote, or change it; a holder has one vote per
    proposal, weighted by their power at the snapshot. ``reason``: why, in
    their words, shown with the vote (kept when a later change gives none)."""
    from django.utils.translation import gettext as translated

    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise GovernanceError(translated("Keep the reason to %(n)s characters.") % {"n": REASON_MAX})
    if choice not in Choice.values:
        raise GovernanceError(gettext("Vote yes, no, abstain or no with veto."))
    wallet = open_wallet(user)
    try:
        with transaction.atomic():
            # Serialises votes with the tally, so no vote lands after it.
            proposal = Proposal.objects.select_for_update().filter(pk=proposal_id).first()
            if proposal is None:
                raise GovernanceError(gettext("There is no such proposal."))
            _check_open(proposal)
            vote = Vote.objects.filter(proposal=proposal, voter=wallet).first()
            if vote is None:
                power = voting_power(wallet, proposal.snapshot_height)
                if power <= 0:
                    raise GovernanceError(
                        gettext(
                            "You held no ATH at this proposal's snapshot (ledger height #%(snapshot_height)s), so "
                            "you have no vote on it; tokens received later do not count."
                        )
                        % {"snapshot_height": proposal.snapshot_height}
                    )
                vote = Vote.objects.create(proposal=proposal, voter=wallet, choice=choice, power=power, reason=reason)
            elif vote.choice != choice or (reason and vote.reason != reason):
                if vote.choice != choice:
                    vote.choice = choice
                    vote.changes += 1
                vote.reason = reason or vote.reason
                vote.save(update_fields=["choice", "changes", "reason", "updated_at"])
            else:
                return vote
            live.proposal_changed(proposal.pk)
    except IntegrityError:
        raise GovernanceError(gettext("Your vote could not be recorded; please try again.")) from None
    return vote


def vote_of(user, proposal: Proposal) -> Vote | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Vote.objects.filter(proposal=proposal, voter__owner=user).first()


def power_of(user, proposal: Proposal) -> int | None:
    """``user``'s voting power on ``proposal`` (None when it has no snapshot yet)."""
    if proposal.snapshot_height is None or not getattr(user, "is_authenticated", False):
        return None
    wallet = Account.objects.filter(owner=user).values_list("pk", flat=True).first()
    return voting_power(wallet, proposal.snapshot_height) if wallet else 0


# --- Tally and execution ------------------------------------------------------


def _transfer(proposal: Proposal, src, dst, amount: int, kind: str, memo: str):
    """Post a transfer that ``proposal`` makes: ``memo`` and the posting's
    meta name the proposal."""
    return ledger.transfer(
        src, dst, amount, kind=kind, memo=f"{memo}, proposal #{proposal.pk}", meta={"proposal": proposal.pk}
    )


def _move_deposit(proposal: Proposal, refund: bool) -> None:
    deposits = ledger.module_account(ModuleAccount.GOV_DEPOSITS)
    if refund:
        tx = _transfer(proposal, deposits, proposal.proposer, proposal.deposit, TxKind.DEPOSIT_REFUND, "Deposit refund")
        kind, note = ProposalEvent.Kind.DEPOSIT_REFUNDED, f"{format_uath(proposal.deposit)} back to the proposer"
    else:
        burn = ledger.module_account(ModuleAccount.BURN)
        tx = _transfer(proposal, deposits, burn, proposal.deposit, TxKind.BURN, "Deposit burned")
        kind, note = ProposalEvent.Kind.DEPOSIT_BURNED, f"{format_uath(proposal.deposit)} burned"
    ProposalEvent.objects.create(
        proposal=proposal, kind=kind, note=note, height=tx.height, epoch=epochs.current_number()
    )


def _fail(proposal: Proposal, reason: str) -> None:
    proposal.status = ProposalStatus.FAILED
    proposal.status_reason = reason[:300]
    ProposalEvent.objects.create(
        proposal=proposal, kind=ProposalEvent.Kind.FAILED, note=reason[:300], epoch=epochs.current_number()
    )


def _execute(proposal: Proposal) -> None:
    now = epochs.current_number()
    if proposal.kind == ProposalKind.PARAMETERS:
        changes = {c.key: c.value for c in proposal.changes.all()}
        effective = now + 1
        try:
            with transaction.atomic():
                parameters.apply(changes, effective_epoch=effective, source=proposal.source_label)
        except parameters.ParameterError as exc:
            _fail(proposal, f"The parameters could not be applied: {exc}")
            return
        proposal.status = ProposalStatus.EXECUTED
        proposal.effective_epoch = effective
        ProposalEvent.objects.create(
            proposal=proposal,
            kind=ProposalEvent.Kind.EXECUTED,
            note=f"{len(changes)} parameter{'s' if len(changes) != 1 else ''} in force from epoch {effective}",
            epoch=now,
        )
    elif proposal.kind == ProposalKind.SPEND:
        pool = ledger.module_account(ModuleAccount.COMMUNITY_POOL)
        if pool.available < proposal.amount:
            _fail(
                proposal,
                f"The community pool holds {format_uath(pool.available)}, "
                f"less than the {format_uath(proposal.amount)} this proposal spends.",
            )
            return
        try:
            with transaction.atomic():
                tx = _transfer(
                    proposal, pool, proposal.recipient, proposal.amount, TxKind.POOL_SPEND, "Community-pool spend"
                )
        except ledger.LedgerError as exc:
            _fail(proposal, f"The spend could not be paid: {exc}")
            return
        proposal.status = ProposalStatus.EXECUTED
        ProposalEvent.objects.create(
            proposal=proposal,
            kind=ProposalEvent.Kind.EXECUTED,
            note=f"{format_uath(proposal.amount)} paid to {proposal.recipient.display_name}",
            height=tx.height,
            epoch=now,
        )
    # A text proposal has nothing to execute: "passed" is its final status.


def finalise(proposal_id: int) -> Proposal:
    """Tally a proposal whose voting has ended, refund or burn its deposit and
    execute it if it passed. Idempotent: anything else is returned unchanged."""
    with transaction.atomic():
        proposal = Proposal.objects.select_for_update().get(pk=proposal_id)
        now = epochs.current_number()
        if proposal.status != ProposalStatus.VOTING or now < proposal.voting_end_epoch:
            return proposal
        result = tally(proposal)
        proposal.yes, proposal.no = result.yes, result.no
        proposal.abstain, proposal.no_with_veto = result.abstain, result.no_with_veto
        proposal.voters = result.voters
        proposal.tallied_at = timezone.now()
        proposal.status = result.outcome
        reason = _outcome_reason(result)
        proposal.status_reason = reason
        ProposalEvent.objects.create(proposal=proposal, kind=ProposalEvent.Kind.TALLIED, note=reason, epoch=now)
        _move_deposit(proposal, refund=result.refunds_deposit)
        if proposal.status == ProposalStatus.PASSED:
            _execute(proposal)
        proposal.save()
        live.proposal_changed(proposal.pk)
    return proposal


def _outcome_reason(t: Tally) -> str:
    def pct(ppm):
        return parameters.DEFINITIONS["quorum"].format(ppm)

    if not t.quorum_reached:
        return f"Rejected: turnout {pct(t.turnout_ppm)} is below the {pct(t.quorum)} quorum."
    if t.vetoed:
        return f"Vetoed: no-with-veto is {pct(t.veto_ppm)} of votes cast, at or above the {pct(t.veto)} bar."
    if t.threshold_reached:
        return f"Passed: yes is {pct(t.yes_ppm)} of non-abstain votes, above the {pct(t.threshold)} threshold."
    return f"Rejected: yes is {pct(t.yes_ppm)} of non-abstain votes, not above the {pct(t.threshold)} threshold."


def tally_due() -> list[Proposal]:
    """Finalise every proposal whose voting has ended (the scheduler calls
    this each epoch; ``manage.py tally_proposals`` runs it by hand). One
    proposal's failure is logged and does not hold up the others."""
    for pk in Proposal.objects.filter(status=ProposalStatus.DEPOSIT, snapshot_height__isnull=False).values_list(
        "pk", flat=True
    ):
        open_voting(pk)
    due = Proposal.objects.filter(status=ProposalStatus.VOTING, voting_end_epoch__lte=epochs.current_number()).order_by(
        "pk"
    )
    done = []
    for pk in due.values_list("pk", flat=True):
        try:
            done.append(finalise(pk))
        except Exception:
            log.exception("tallying proposal #%s failed; it stays open and is retried next time", pk)
    return done
