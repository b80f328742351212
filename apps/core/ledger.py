"""The one way money moves.

Every feature (faucet, rentals, collateral, staking, rewards, governance)
calls :func:`post` or one of its thin wrappers. A posting is:

* double-entry: its legs sum to zero (genesis alone mints the supply);
* atomic: one database transaction writes the transaction row, its entries,
  the new bucket balances and a checkpoint per touched account, or nothing;
* serialised: it locks the chain head row (``SELECT ... FOR UPDATE`` on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), then the touched accounts in id
  order, so concurrent spends cannot overdraw and heights have no gaps. That
  is the one lock order: a service that locks rows before posting (a wallet
  to check a limit, a node to rent it) takes the chain head first, through
  :func:`serialised` or :func:`lock_accounts`, never an account before it;
* retried: a posting that opens its own transaction, and every function
  wrapped in :func:`serialised`, is rerun from the start when the database
  aborts it for a deadlock or serialization failure (:mod:`.retry`);
* checked before anything is written: a refused posting raises a
  :class:`LedgerError` with a message a person can read, and changes nothing.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import bulk, events, retry
from .amounts import MAX_AMOUNT, ath, format_uath
from .errors import DomainError
from .hashing import tx_hash
from .models import (
    BUCKETS,
    Account,
    AccountKind,
    Bucket,
    ChainHead,
    Checkpoint,
    Entry,
    LedgerTransaction,
    ModuleAccount,
    TxKind,
)


class LedgerError(DomainError):
    """A posting that was refused. Nothing was written."""


class InvalidAmount(LedgerError):
    pass


class InsufficientFunds(LedgerError):
    pass


class UnknownAccount(LedgerError):
    pass


class Unbalanced(LedgerError):
    pass


class GenesisError(LedgerError):
    pass


@dataclass(frozen=True)
class Leg:
    """``amount`` micro-ATH added to (negative: taken from) a bucket."""

    account: Account | int
    bucket: str
    amount: int

    @property
    def account_id(self) -> int:
        return self.account if isinstance(self.account, int) else self.account.pk


def _check_amount(amount) -> None:
    # bool is an int in Python; a True amount is a bug, not one uATH.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount("Amounts are whole micro-ATH (integers).")
    if amount == 0:
        raise InvalidAmount("The amount must not be zero.")
    if abs(amount) > MAX_AMOUNT:
        raise InvalidAmount("The amount is larger than any balance can hold.")


def _validate_legs(legs: list[Leg], *, minting: bool) -> None:
    if not legs:
        raise Unbalanced("A transaction needs at least one leg.")
    for leg in legs:
        _check_amount(leg.amount)
        if leg.bucket not in BUCKETS:
            raise LedgerError(f"Unknown balance bucket {leg.bucket!r}.")
        if not isinstance(leg.account_id, int) or leg.account_id is None:
            raise UnknownAccount("Unknown account.")
    if not minting and sum(leg.amount for leg in legs) != 0:
        raise Unbalanced("The legs of a transaction must sum to zero.")


def lock_head() -> ChainHead:
    """Lock the chain head row: the first lock of every transaction that
    posts, so all of them queue in one place and none waits in a cycle."""
    try:
        return ChainHead.objects.select_for_update().get(pk=1)
    except ChainHead.DoesNotExist:
        raise GenesisError("The ledger has no genesis yet: run `manage.py genesis`.") from None


def lock_accounts(ids) -> dict[int, Account]:
    """Lock accounts before a posting, in the ledger's order: the chain head
    first, then the accounts by id. Call inside a transaction."""
    lock_head()
    ids = sorted(set(ids))
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def serialised(fn):
    """Run ``fn`` as one transaction that takes the chain head lock first and
    is rerun on a deadlock or serialization failure. For services that lock
    rows of their own (wallets, nodes, rentals) before they post."""
    return retry.retry_atomic(fn, first=lock_head)


def post(
    kind: str,
    legs: list[Leg],
    *,
    memo: str = "",
    meta: dict | None = None,
    actor=None,
    _minting: bool = False,
) -> LedgerTransaction:
    """Apply ``legs`` as one hash-chained transaction; see the module doc.
    Outside any transaction it is its own, rerun on a conflict; inside one,
    the owner of that transaction decides (see :mod:`.retry`)."""
    if transaction.get_connection().in_atomic_block:
        return _post(kind, legs, memo=memo, meta=meta, actor=actor, _minting=_minting)  # its own savepoint
    return retry.run_atomic(_post, kind, legs, memo=memo, meta=meta, actor=actor, _minting=_minting)


def _post(kind, legs, *, memo, meta, actor, _minting) -> LedgerTransaction:
    legs = list(legs)
    meta = dict(meta or {})
    _validate_legs(legs, minting=_minting)
    memo = (memo or "")[:200]

    with transaction.atomic():
        head = lock_head()
        if _minting and head.height != 0:
            raise GenesisError("Genesis already happened; the supply is fixed.")
        if not _minting and head.height == 0:
            raise GenesisError("The ledger has no genesis yet: run `manage.py genesis`.")

        ids = sorted({leg.account_id for leg in legs})
        accounts = {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        if len(accounts) != len(ids):
            raise UnknownAccount("Unknown account.")

        # Apply in memory first; refuse before writing anything.
        deltas: dict[tuple[int, str], int] = defaultdict(int)
        for leg in legs:
            deltas[(leg.account_id, leg.bucket)] += leg.amount
        for (account_id, bucket), delta in deltas.items():
            account = accounts[account_id]
            new_value = getattr(account, bucket) + delta
            if new_value < 0:
                have = getattr(account, bucket)
                raise InsufficientFunds(
                    f"Insufficient {Bucket(bucket).label.lower()} balance in {account.display_name}: "
                    f"has {format_uath(have)}, needs {format_uath(-delta)}."
                )
            if new_value > MAX_AMOUNT:
                raise InvalidAmount("That would overflow the balance.")
            setattr(account, bucket, new_value)

        height = head.height + 1
        created_at = timezone.now()
        digest = tx_hash(
            height=height,
            prev_hash=head.hash,
            kind=kind,
            memo=memo,
            meta=meta,
            created_at=created_at,
            legs=[(accounts[leg.account_id].address, leg.bucket, leg.amount) for leg in legs],
        )
        tx = LedgerTransaction.objects.create(
            height=height,
            kind=kind,
            memo=memo,
            meta=meta,
            actor=actor if actor is not None and getattr(actor, "pk", None) else None,
            created_at=created_at,
            prev_hash=head.hash,
            hash=digest,
        )
        Entry.objects.bulk_create(
            Entry(tx=tx, seq=i, account_id=leg.account_id, bucket=leg.bucket, amount=leg.amount)
            for i, leg in enumerate(legs)
        )
        touched = [accounts[i] for i in ids]
        bulk.update_fields(touched, list(BUCKETS))
        Checkpoint.objects.bulk_create(
            Checkpoint(account=a, height=height, **{b: getattr(a, b) for b in BUCKETS}) for a in touched
        )
        head.height = height
        head.hash = digest
        if _minting:
            head.supply = sum(leg.amount for leg in legs)
            head.genesis_at = created_at
        head.save(update_fields=["height", "hash", "supply", "genesis_at"])

        events.ledger_changed(height=height, kind=kind, account_ids=ids)
    return tx


def transfer(
    src: Account,
    dst: Account,
    amount: int,
    *,
    kind: str = TxKind.TRANSFER,
    memo: str = "",
    src_bucket: str = Bucket.AVAILABLE,
    dst_bucket: str = Bucket.AVAILABLE,
    meta: dict | None = None,
    actor=None,
) -> LedgerTransaction:
    """Move ``amount`` from one account's bucket to another's."""
    _check_amount(amount)
    if amount < 0:
        raise InvalidAmount("The amount must be more than zero.")
    if src.pk == dst.pk and src_bucket == dst_bucket:
        raise LedgerError("Source and destination are the same.")
    return post(
        kind,
        [Leg(src, src_bucket, -amount), Leg(dst, dst_bucket, amount)],
        memo=memo,
        meta=meta,
        actor=actor,
    )


def move(account: Account, from_bucket: str, to_bucket: str, amount: int, *, kind: str, **kwargs):
    """Move ``amount`` between two buckets of one account (bond, escrow, ...)."""
    return transfer(account, account, amount, kind=kind, src_bucket=from_bucket, dst_bucket=to_bucket, **kwargs)


# --- Genesis ------------------------------------------------------------------

# Share of the supply (parts per million) each module account starts with.
GENESIS_SHARES_PPM = {
    ModuleAccount.EMISSION_RESERVE: 700_000,
    ModuleAccount.COMMUNITY_POOL: 250_000,
    ModuleAccount.FAUCET: 50_000,
}


def ensure_module_accounts() -> dict[str, Account]:
    accounts = {}
    for module in ModuleAccount:
        accounts[module.value], _ = Account.objects.get_or_create(
            kind=AccountKind.MODULE,
            module=module.value,
            defaults={"address": f"ath1module{module.value.replace('_', '')}"[:64]},
        )
    return accounts


def is_genesis_done() -> bool:
    return ChainHead.objects.filter(pk=1, height__gt=0).exists()


def genesis(supply_ath: int | None = None) -> LedgerTransaction | None:
    """Mint the whole supply once across the module accounts.

    Idempotent: returns ``None`` when genesis already happened. Outside demo
    mode the faucet's share goes to the community pool instead.
    """
    supply = ath(supply_ath if supply_ath is not None else settings.GENESIS_SUPPLY_ATH)
    if supply <= 0 or supply > MAX_AMOUNT:
        raise GenesisError("The genesis supply must be positive and fit in 64 bits.")
    with transaction.atomic():
        ChainHead.objects.get_or_create(pk=1)
        head = ChainHead.objects.select_for_update().get(pk=1)
        # Module accounts added in later releases appear on existing ledgers too.
        modules = ensure_module_accounts()
        if head.height:
            return None
        shares = dict(GENESIS_SHARES_PPM)
        if not settings.DEMO_MODE:
            shares[ModuleAccount.COMMUNITY_POOL] += shares.pop(ModuleAccount.FAUCET)
        legs = []
        allotted = 0
        for module, ppm in shares.items():
            amount = supply * ppm // 1_000_000
            allotted += amount
            legs.append(Leg(modules[module], Bucket.AVAILABLE, amount))
        if supply - allotted:
            legs.append(Leg(modules[ModuleAccount.DUST], Bucket.AVAILABLE, supply - allotted))
        return post(TxKind.GENESIS, legs, memo="Genesis: the whole supply, minted once", _minting=True)


def supply() -> int:
    head = ChainHead.objects.filter(pk=1).first()
    return head.supply if head else 0


def module_account(name: str) -> Account:
    return Account.objects.module(name)


def balance_at(account: Account | int, height: int) -> dict[str, int]:
    """Every bucket of ``account`` right after the transaction at ``height``
    (zeros before its first transaction)."""
    account_id = account if isinstance(account, int) else account.pk
    cp = Checkpoint.objects.filter(account_id=account_id, height__lte=height).order_by("-height").first()
    return {b: (getattr(cp, b) if cp else 0) for b in BUCKETS}
