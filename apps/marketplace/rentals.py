"""Renting a node (docs/rules.md §4): quote, rent, top up, end early,
move to a replacement.

Billing rules, written down once:

* A rental takes the whole node (v1). Its price is locked at the start:
  ``price_per_epoch = price_per_gpu_hour x GPUs x epoch_seconds // 3600``
  (rounded down, in the renter's favour; never below 1 uATH).
* Billed epochs are ``[start_epoch, end_epoch)``. A rental starts in the
  current epoch and pays for it whole, like hourly cloud billing; a
  replacement starts at the next epoch boundary, so the rest of the epoch
  in which a node failed costs nothing.
* Reserved: ``epochs x price_per_epoch`` goes to escrow at the start.
  On-demand: the renter escrows any amount; the rental runs while the
  escrow covers whole epochs: ``end_epoch = settled_through + 1 +
  escrow_left // price_per_epoch``, and each top-up extends it.
* Ending early keeps in escrow exactly the epochs already served but not
  yet settled (the current one included) and refunds the rest at once.
* Escrow is the renter's own ``escrowed`` bucket; settlement releases it.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from apps.accounts.services import lock_funds, open_wallet
from apps.core import epochs, ledger, parameters
from apps.core.amounts import display_uath
from apps.core.models import Bucket, GpuNode, NodeStatus, Region, TxKind
from apps.core.parameters import PPM

from . import workload_spec
from .errors import NotYours, RentalError
from .models import Rental, RentalMode, RentalStatus
from .workload_spec import WorkloadSpec

SECONDS_PER_HOUR = 3600
MAX_RENTAL_HOURS = 24 * 90


def current_epoch() -> int:
    return epochs.current_number()


def epoch_seconds() -> int:
    return parameters.get("epoch_seconds")


def price_per_epoch(price_per_gpu_hour: int, gpu_count: int, seconds: int) -> int:
    return price_per_gpu_hour * gpu_count * seconds // SECONDS_PER_HOUR


def hours_to_epochs(hours: int, seconds: int | None = None) -> int:
    seconds = seconds or epoch_seconds()
    return -(-hours * SECONDS_PER_HOUR // seconds)  # ceiling: the renter gets at least the hours asked


@dataclass(frozen=True)
class Quote:
    node: GpuNode
    mode: str
    epoch_seconds: int
    price_per_epoch: int
    epochs: int
    escrow: int
    start_epoch: int
    end_epoch: int
    available: int

    @property
    def hourly(self) -> int:
        return self.node.price_per_gpu_hour * self.node.gpu_count

    @property
    def affordable(self) -> bool:
        return self.available >= self.escrow

    @property
    def hours(self) -> str:
        seconds = self.epochs * self.epoch_seconds
        h, rem = divmod(seconds, SECONDS_PER_HOUR)
        return f"{h} h" if not rem else f"{h} h {rem // 60} min"


def quote(renter, node: GpuNode, *, mode: str, epochs_: int | None = None, escrow: int | None = None) -> Quote:
    """What renting ``node`` would cost now; raises RentalError if it cannot be rented."""
    seconds = epoch_seconds()
    per_epoch = price_per_epoch(node.price_per_gpu_hour, node.gpu_count, seconds)
    _check_rentable(renter, node, per_epoch)
    start = current_epoch()
    if mode == RentalMode.RESERVED:
        if not epochs_ or epochs_ < 1:
            raise RentalError(gettext("A reserved rental needs a duration of at least one epoch."))
        if epochs_ * seconds > MAX_RENTAL_HOURS * SECONDS_PER_HOUR:
            raise RentalError(
                gettext("Reserve at most %(max_rental_hours)s hours at once; extend later with a new rental.")
                % {"max_rental_hours": MAX_RENTAL_HOURS}
            )
        amount = epochs_ * per_epoch
        n = epochs_
    elif mode == RentalMode.ON_DEMAND:
        if not escrow or escrow < per_epoch:
            raise RentalError(
                gettext("An on-demand rental needs escrow for at least one epoch: %(per_epoch)s.")
                % {"per_epoch": display_uath(per_epoch)}
            )
        amount = escrow
        n = escrow // per_epoch
    else:
        raise RentalError(gettext("Choose reserved or on-demand."))
    wallet = open_wallet(renter)
    return Quote(
        node=node,
        mode=mode,
        epoch_seconds=seconds,
        price_per_epoch=per_epoch,
        epochs=n,
        escrow=amount,
        start_epoch=start,
        end_epoch=start + n,
        available=wallet.available,
    )


def _check_rentable(renter, node: GpuNode, per_epoch: int) -> None:
    if node.provider_id == getattr(renter, "pk", None):
        raise RentalError(gettext("This is your own node: you cannot rent it."))
    if node.status != NodeStatus.ONLINE:
        raise RentalError(
            gettext("%(name)s is %(lower)s; only online nodes can be rented.")
            % {"name": node.name, "lower": node.get_status_display().lower()}
        )
    if node.paused:
        raise RentalError(
            gettext("%(name)s is paused until its provider tops up its collateral.") % {"name": node.name}
        )
    if per_epoch <= 0:
        raise RentalError(
            gettext("%(name)s's price rounds to nothing per epoch; it cannot be billed.") % {"name": node.name}
        )


def _expire(node_id: int, now_epoch: int) -> None:
    """Active rentals whose paid time is over no longer hold the node; their
    last epochs are still settled (and any remainder refunded) by settlement."""
    Rental.objects.filter(node_id=node_id, status=RentalStatus.ACTIVE, end_epoch__lte=now_epoch).update(
        status=RentalStatus.ENDED, end_reason="Paid time is over", ended_at=timezone.now()
    )


def holder(node: GpuNode, now_epoch: int | None = None) -> Rental | None:
    now_epoch = current_epoch() if now_epoch is None else now_epoch
    return Rental.objects.filter(node=node, status=RentalStatus.ACTIVE, end_epoch__gt=now_epoch).first()


@ledger.serialised
def rent(
    renter,
    node_id: int,
    *,
    mode: str,
    image: str = "",
    workload: WorkloadSpec | None = None,
    epochs_: int | None = None,
    escrow: int | None = None,
    auto_replace: bool = False,
    renter_region: Region | None = None,
    expected_price_per_epoch: int | None = None,
) -> Rental:
    """Take node ``node_id`` for ``renter`` and escrow the cost. The node row
    is locked, so of two renters racing for it exactly one wins; the partial
    unique index on active rentals backs that up in the database.

    ``workload`` is what the node runs (``workload_spec.build``); a bare
    ``image`` runs that image with its own command and no ports."""
    workload = workload or workload_spec.build(image=image)
    wallet = open_wallet(renter)
    try:
        with transaction.atomic():
            try:
                node = GpuNode.objects.select_for_update().get(pk=node_id)
            except GpuNode.DoesNotExist:
                raise RentalError(gettext("No such node.")) from None
            q = quote(renter, node, mode=mode, epochs_=epochs_, escrow=escrow)
            if expected_price_per_epoch is not None and expected_price_per_epoch != q.price_per_epoch:
                raise RentalError(
                    gettext(
                        "%(name)s's price changed to %(price_per_epoch)s per epoch since your quote; check the new "
                        "cost and confirm again."
                    )
                    % {"name": node.name, "price_per_epoch": display_uath(q.price_per_epoch)}
                )
            _expire(node.pk, q.start_epoch)
            if Rental.objects.filter(node=node, status=RentalStatus.ACTIVE).exists():
                raise RentalError(
                    gettext(
                        "%(name)s was just rented by someone else. Pick another node or let the scheduler match one."
                    )
                    % {"name": node.name}
                )
            rental = Rental.objects.create(
                renter=renter,
                node=node,
                gpu_count=node.gpu_count,
                mode=mode,
                image=workload.image,
                renter_region=renter_region,
                auto_replace=bool(auto_replace),
                start_epoch=q.start_epoch,
                end_epoch=q.end_epoch,
                settled_through=q.start_epoch - 1,
                price_per_gpu_hour=node.price_per_gpu_hour,
                epoch_seconds=q.epoch_seconds,
                price_per_epoch=q.price_per_epoch,
                escrow_total=q.escrow,
            )
            try:
                ledger.move(
                    wallet,
                    Bucket.AVAILABLE,
                    Bucket.ESCROWED,
                    q.escrow,
                    kind=TxKind.RENTAL_ESCROW,
                    memo=f"Escrow for rental #{rental.pk} of {node.name}",
                    meta={"rental": rental.pk, "node": node.pk, "epochs": q.epochs},
                    actor=renter,
                )
            except ledger.InsufficientFunds:
                wallet.refresh_from_db()
                raise RentalError(
                    gettext("This rental needs %(escrow)s in escrow; your available balance is %(available)s.")
                    % {"escrow": display_uath(q.escrow), "available": display_uath(wallet.available)}
                ) from None
            workload_spec.save_for(rental, workload)
            return rental
    except IntegrityError:
        raise RentalError(gettext("That node was just rented by someone else. Pick another node.")) from None


def _locked_rental(user, rental_id: int) -> Rental:
    try:
        rental = Rental.objects.select_for_update().select_related("node").get(pk=rental_id)
    except Rental.DoesNotExist:
        raise NotYours("No such rental.") from None
    if rental.renter_id != getattr(user, "pk", None):
        raise NotYours("No such rental.")
    return rental


def unserved_refund(rental: Rental, now_epoch: int) -> tuple[int, int]:
    """(new end epoch, refund) if the rental ended now: epochs up to and
    including the current one stay in escrow for settlement."""
    end_at = max(min(now_epoch + 1, rental.end_epoch), rental.settled_through + 1)
    keep = (end_at - (rental.settled_through + 1)) * rental.price_per_epoch
    return end_at, rental.escrow_left - keep


def preview_end(user, rental_id: int) -> dict:
    """What ending the rental now would do, in numbers, moving nothing: the
    review the renter confirms before :func:`end_rental`."""
    try:
        rental = Rental.objects.select_related("node__gpu_model").get(pk=rental_id, renter_id=getattr(user, "pk", None))
    except Rental.DoesNotExist:
        raise NotYours("No such rental.") from None
    if rental.status != RentalStatus.ACTIVE:
        raise RentalError(gettext("This rental has already ended."))
    now_epoch = current_epoch()
    end_at, refund = unserved_refund(rental, now_epoch)
    kept = rental.escrow_left - refund
    fee = kept * parameters.get("protocol_fee") // PPM
    return {
        "rental": rental,
        "epoch": now_epoch,
        "end_at": end_at,
        "refund": max(refund, 0),
        "kept": kept,
        "kept_epochs": kept // rental.price_per_epoch if rental.price_per_epoch else 0,
        "kept_to_provider": kept - fee,
        "kept_fee": fee,
    }


@ledger.serialised
def end_rental(user, rental_id: int, *, reason: str = "Ended early by the renter") -> int:
    """End an active rental now; returns the refund (micro-ATH)."""
    with transaction.atomic():
        rental = _locked_rental(user, rental_id)
        if rental.status != RentalStatus.ACTIVE:
            raise RentalError(gettext("This rental has already ended."))
        return end_locked(rental, reason=reason, actor=user)


def end_locked(rental: Rental, *, reason: str, actor) -> int:
    """End ``rental`` (locked, active) now: unserved time back to the renter
    at once; returns the refund (micro-ATH)."""
    now_epoch = current_epoch()
    end_at, refund = unserved_refund(rental, now_epoch)
    if refund > 0:
        ledger.move(
            open_wallet(rental.renter),
            Bucket.ESCROWED,
            Bucket.AVAILABLE,
            refund,
            kind=TxKind.RENTAL_REFUND,
            memo=f"Refund of unserved time, rental #{rental.pk}",
            meta={"rental": rental.pk, "epochs_unserved": max(0, rental.end_epoch - end_at)},
            actor=actor,
        )
        rental.refunded += refund
    rental.end_epoch = end_at
    rental.status = RentalStatus.ENDED
    rental.end_reason = f"{reason} in epoch {now_epoch}"
    rental.ended_at = timezone.now()
    rental.save(update_fields=["end_epoch", "status", "end_reason", "ended_at", "refunded"])
    return max(refund, 0)


@ledger.serialised
def top_up(user, rental_id: int, amount: int) -> Rental:
    """Add escrow to an on-demand rental; it runs for as many more whole epochs."""
    if not isinstance(amount, int) or amount <= 0:
        raise RentalError(gettext("Top up by more than zero."))
    with transaction.atomic():
        rental = _locked_rental(user, rental_id)
        if rental.mode != RentalMode.ON_DEMAND:
            raise RentalError(
                gettext("Only on-demand rentals are topped up; a reserved rental is prepaid for its time.")
            )
        now_epoch = current_epoch()
        if rental.status != RentalStatus.ACTIVE or rental.end_epoch <= now_epoch:
            raise RentalError(gettext("This rental has ended; start a new one."))
        lock_funds(
            user,
            Bucket.ESCROWED,
            amount,
            RentalError,
            kind=TxKind.RENTAL_ESCROW,
            memo=f"Top-up of rental #{rental.pk}",
            meta={"rental": rental.pk},
        )
        rental.escrow_total += amount
        rental.end_epoch = rental.settled_through + 1 + rental.escrow_left // rental.price_per_epoch
        rental.save(update_fields=["escrow_total", "end_epoch"])
        return rental


def can_move(rental: Rental) -> bool:
    """A renter may move to a replacement once the node has failed them."""
    return rental.is_active and (rental.last_failure_epoch is not None or rental.node.status != NodeStatus.ONLINE)


def move_to(
    rental: Rental, new_node_id: int, *, old_end: int, start: int, reason: str, actor=None, may_charge: bool = False
) -> Rental:
    """Move ``rental`` (locked, active) to another node from ``start``.

    The old rental keeps in escrow the epochs before ``old_end`` not yet
    settled; the rest of its escrow carries over. A reserved rental keeps
    its end epoch (the surplus, if the new node is cheaper, is refunded;
    if it is dearer, ``may_charge`` lets the renter pay the difference); an
    on-demand rental carries everything and runs as long as it covers."""
    node = GpuNode.objects.select_for_update().get(pk=new_node_id)
    seconds = epoch_seconds()
    per_epoch = price_per_epoch(node.price_per_gpu_hour, node.gpu_count, seconds)
    _check_rentable(rental.renter, node, per_epoch)
    if node.pk == rental.node_id:
        raise RentalError(gettext("That is the node you already have."))
    _expire(node.pk, start)
    if Rental.objects.filter(node=node, status=RentalStatus.ACTIVE).exists():
        raise RentalError(gettext("%(name)s was just rented by someone else.") % {"name": node.name})
    old_end = max(old_end, rental.settled_through + 1)
    keep = (old_end - (rental.settled_through + 1)) * rental.price_per_epoch
    carry = rental.escrow_left - keep
    wallet = open_wallet(rental.renter)
    extra = refund = 0
    if rental.mode == RentalMode.RESERVED:
        remaining = rental.end_epoch - start
        if remaining < 1:
            raise RentalError(gettext("Less than one epoch of this rental is left; nothing to move."))
        need = remaining * per_epoch
        end = rental.end_epoch
        if need > carry and not may_charge:
            raise RentalError(gettext("%(name)s costs more than the escrow left covers.") % {"name": node.name})
        carried = min(carry, need)
        extra = need - carried
        refund = carry - carried
        new_escrow = need
    else:
        if carry < per_epoch:
            raise RentalError(
                gettext("The escrow left does not cover one epoch on %(name)s; top up first.") % {"name": node.name}
            )
        carried = new_escrow = carry
        end = start + carry // per_epoch
    rental.status = RentalStatus.REPLACED
    rental.end_epoch = old_end
    rental.end_reason = reason
    rental.ended_at = timezone.now()
    rental.carried_out = carried
    rental.refunded += refund
    rental.save(update_fields=["status", "end_epoch", "end_reason", "ended_at", "carried_out", "refunded"])
    new = Rental.objects.create(
        renter=rental.renter,
        node=node,
        gpu_count=node.gpu_count,
        mode=rental.mode,
        image=rental.image,
        renter_region=rental.renter_region,
        auto_replace=rental.auto_replace,
        start_epoch=start,
        end_epoch=end,
        settled_through=start - 1,
        price_per_gpu_hour=node.price_per_gpu_hour,
        epoch_seconds=seconds,
        price_per_epoch=per_epoch,
        escrow_total=new_escrow,
        replaces=rental,
    )
    # The replacement node's agent starts the same workload; the timeline
    # shows the move.
    old_workload = getattr(rental, "workload", None)
    spec = workload_spec.spec_of(old_workload) if old_workload else workload_spec.build(image=rental.image)
    workload_spec.save_for(new, spec, detail=f"Moved here from {rental.node.name}: {reason}")
    if refund:
        ledger.move(
            wallet,
            Bucket.ESCROWED,
            Bucket.AVAILABLE,
            refund,
            kind=TxKind.RENTAL_REFUND,
            memo=f"Rental #{rental.pk} moved to a cheaper node: surplus refunded",
            meta={"rental": rental.pk, "replacement": new.pk},
            actor=actor,
        )
    if extra:
        try:
            ledger.move(
                wallet,
                Bucket.AVAILABLE,
                Bucket.ESCROWED,
                extra,
                kind=TxKind.RENTAL_ESCROW,
                memo=f"Rental #{new.pk}: price difference of the replacement node",
                meta={"rental": new.pk, "replaces": rental.pk},
                actor=actor,
            )
        except ledger.InsufficientFunds:
            raise RentalError(
                gettext(
                    "%(name)s costs %(extra)s more for the time left than your escrow holds; your available "
                    "balance is %(available)s."
                )
                % {"name": node.name, "extra": display_uath(extra), "available": display_uath(wallet.available)}
            ) from None
    return new


@ledger.serialised
def replace(user, rental_id: int, node_id: int) -> Rental:
    """The renter accepts an offered replacement for a failed node."""
    with transaction.atomic():
        rental = _locked_rental(user, rental_id)
        if not can_move(rental):
            raise RentalError(gettext("Your node is healthy; a replacement is offered only after it fails."))
        now_epoch = current_epoch()
        return move_to(
            rental,
            node_id,
            old_end=now_epoch + 1,
            start=now_epoch + 1,
            reason=f"Moved by the renter to a replacement in epoch {now_epoch}",
            actor=user,
            may_charge=True,
        )
