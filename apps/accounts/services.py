"""Wallet services: what a person can do with their own ATH.

Views, the API and the demo seeding all call these; none of them touch
balances directly.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from apps.core import ledger
from apps.core.amounts import ath, format_uath
from apps.core.errors import DomainError
from apps.core.models import Account, AccountKind, Bucket, Entry, ModuleAccount, TxKind


class WalletError(DomainError):
    """A wallet action that was refused; the message is for the person."""


def open_wallet(user) -> Account:
    """The user's wallet, created on first use (idempotent)."""
    account, _ = Account.objects.get_or_create(owner=user, defaults={"kind": AccountKind.USER})
    return account


def lock_funds(user, bucket: str, amount: int, refusal: type[DomainError], *, kind: str, memo: str, meta: dict):
    """Move ``amount`` from ``user``'s available balance into ``bucket`` of the
    same wallet (escrow, collateral), posted as ``kind`` with ``user`` as the
    actor. A shortfall is refused as ``refusal``, with the ledger's message."""
    try:
        return ledger.move(
            open_wallet(user), Bucket.AVAILABLE, bucket, amount, kind=kind, memo=memo, meta=meta, actor=user
        )
    except ledger.InsufficientFunds as exc:
        raise refusal(str(exc)) from None


def faucet_claims_today(account: Account) -> int:
    since = timezone.now() - timedelta(days=1)
    # A claim is a faucet posting the owner asked for; seeded demo funds come
    # from the faucet too, but nobody claimed them.
    return Entry.objects.filter(
        account=account,
        tx__kind=TxKind.FAUCET,
        tx__actor_id=account.owner_id,
        amount__gt=0,
        tx__created_at__gte=since,
    ).count()


def faucet_status(account: Account) -> dict:
    used = faucet_claims_today(account)
    return {
        "enabled": settings.DEMO_MODE,
        "amount": ath(settings.FAUCET_AMOUNT_ATH),
        "limit": settings.FAUCET_CLAIMS_PER_DAY,
        "used": used,
        "left": max(0, settings.FAUCET_CLAIMS_PER_DAY - used),
    }


def claim_faucet(user):
    """Send the demo faucet amount to ``user``'s wallet, at most
    ``FAUCET_CLAIMS_PER_DAY`` times in any 24 hours."""
    if not settings.DEMO_MODE:
        raise WalletError(gettext("The faucet only runs in demo mode."))
    return _claim_faucet(user)


@ledger.serialised
def _claim_faucet(user):
    amount = ath(settings.FAUCET_AMOUNT_ATH)
    wallet = open_wallet(user)
    # Lock the wallet so two simultaneous claims cannot both pass the limit;
    # in the ledger's order (chain head, then accounts), or a transfer to
    # this wallet holding the head deadlocks with us.
    wallet = ledger.lock_accounts([wallet.pk])[wallet.pk]
    if faucet_claims_today(wallet) >= settings.FAUCET_CLAIMS_PER_DAY:
        raise WalletError(
            gettext("You have used the faucet %(faucet_claims_per_day)s times in the last 24 hours; try again later.")
            % {"faucet_claims_per_day": settings.FAUCET_CLAIMS_PER_DAY}
        )
    faucet = ledger.module_account(ModuleAccount.FAUCET)
    if faucet.available < amount:
        raise WalletError(gettext("The faucet is empty."))
    return ledger.transfer(
        faucet, wallet, amount, kind=TxKind.FAUCET, memo=f"Faucet: {format_uath(amount)}", actor=user
    )


def _recipient(wallet: Account, to_address: str) -> Account:
    to_address = (to_address or "").strip()
    try:
        recipient = Account.objects.get(address=to_address, kind=AccountKind.USER)
    except Account.DoesNotExist:
        raise WalletError(gettext("No wallet has that address.")) from None
    if recipient.pk == wallet.pk:
        raise WalletError(gettext("You cannot send to your own wallet."))
    return recipient


# A transfer between wallets carries no network fee; the review says so in numbers.
SEND_FEE = 0


def preview_send(user, to_address: str, amount: int) -> dict:
    """What ``send`` would do, refused for the same reasons, moving nothing:
    the review step shows it before the person confirms."""
    wallet = open_wallet(user)
    recipient = _recipient(wallet, to_address)
    if amount + SEND_FEE > wallet.available:
        raise WalletError(
            gettext("You have %(available)s available; sending %(amount)s needs more.")
            % {"available": format_uath(wallet.available), "amount": format_uath(amount + SEND_FEE)},
            field="amount",
        )
    return {
        "to_address": recipient.address,
        "amount": amount,
        "fee": SEND_FEE,
        "total": amount + SEND_FEE,
        "available": wallet.available,
        "available_after": wallet.available - amount - SEND_FEE,
    }


def send(user, to_address: str, amount: int, memo: str = ""):
    """Send ``amount`` micro-ATH from ``user``'s available balance."""
    wallet = open_wallet(user)
    recipient = _recipient(wallet, to_address)
    try:
        return ledger.transfer(wallet, recipient, amount, memo=memo, actor=user)
    except ledger.LedgerError as exc:
        raise WalletError(str(exc)) from None
