"""The ledger.

    ``Account`` holds one row per wallet or module account with a column per
    bucket; ``LedgerTransaction`` is one hash-chained, double-entry movement;
    ``Entry`` is one signed leg of it; ``Checkpoint`` records every bucket of
    an account after each transaction that touched it, so any holder's balance
    at any past ledger height is one indexed lookup (governance snapshots).
    ``ChainHead`` is the single row every posting locks: it hands out heights
    and the previous hash, which serialises the chain.

Balances only ever change through :func:`apps.core.ledger.post`.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


class Bucket(models.TextChoices):
    AVAILABLE = "available", _("Available")
    ESCROWED = "escrowed", _("Escrowed")
    COLLATERAL = "collateral", _("Collateral")
    BONDED = "bonded", _("Bonded")
    UNBONDING = "unbonding", _("Unbonding")


BUCKETS = tuple(Bucket.values)
# What counts as owned for voting power (docs/rules.md §8).
VOTING_BUCKETS = (Bucket.AVAILABLE, Bucket.BONDED, Bucket.UNBONDING)


class AccountKind(models.TextChoices):
    USER = "user", _("Wallet")
    MODULE = "module", _("Module account")


class ModuleAccount(models.TextChoices):
    """Accounts owned by the protocol itself, created at genesis."""

    EMISSION_RESERVE = "emission_reserve", _("Emission reserve")
    COMMUNITY_POOL = "community_pool", _("Community pool")
    BURN = "burn", _("Burn")
    FAUCET = "faucet", _("Faucet")
    DUST = "dust", _("Rounding remainder (dust)")
    REWARDS_POOL = "rewards_pool", _("Staking rewards (unclaimed)")
    GOV_DEPOSITS = "gov_deposits", _("Proposal deposits")


def new_address() -> str:
    return "ath1" + secrets.token_hex(19)


class AccountQuerySet(models.QuerySet):
    def modules(self):
        return self.filter(kind=AccountKind.MODULE)

    def module(self, name: str) -> "Account":
        return self.get(kind=AccountKind.MODULE, module=name)


class Account(models.Model):
    address = models.CharField(max_length=64, unique=True, default=new_address)
    kind = models.CharField(max_length=16, choices=AccountKind.choices, default=AccountKind.USER)
    module = models.CharField(max_length=32, choices=ModuleAccount.choices, blank=True, default="")
    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="wallet"
    )
    label = models.CharField(max_length=100, blank=True, default="")
    # The name its owner chose to show on public pages (apps.accounts.public_name);
    # without one, public pages show the address, never the login name.
    public_name = models.CharField(max_length=32, null=True, blank=True, default=None)
    available = models.BigIntegerField(default=0)
    escrowed = models.BigIntegerField(default=0)
    collateral = models.BigIntegerField(default=0)
    bonded = models.BigIntegerField(default=0)
    unbonding = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AccountQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            *[
                models.CheckConstraint(condition=Q(**{f"{b}__gte": 0}), name=f"account_{b}_not_negative")
                for b in BUCKETS
            ],
            models.UniqueConstraint(fields=["module"], condition=Q(kind="module"), name="one_account_per_module"),
            models.UniqueConstraint(Lower("public_name"), name="public_name_unique_ignoring_case"),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.kind == AccountKind.MODULE:
            return ModuleAccount(self.module).label
        if self.label:
            return self.label
        # Public pages name people only as they chose to be named.
        if self.public_name:
            return self.public_name
        return self.short_address

    @property
    def short_address(self) -> str:
        return f"{self.address[:10]}…{self.address[-4:]}"

    @property
    def total(self) -> int:
        return sum(getattr(self, b) for b in BUCKETS)

    @property
    def voting_power(self) -> int:
        return sum(getattr(self, b) for b in VOTING_BUCKETS)

    def balances(self) -> dict[str, int]:
        return {b: getattr(self, b) for b in BUCKETS}


class TxKind(models.TextChoices):
    GENESIS = "genesis", _("Genesis")
    TRANSFER = "transfer", _("Transfer")
    FAUCET = "faucet", _("Faucet")
    # Kinds the feature apps post; declared here so the explorer can name them.
    COLLATERAL_LOCK = "collateral_lock", _("Collateral locked")
    COLLATERAL_RELEASE = "collateral_release", _("Collateral released")
    RENTAL_ESCROW = "rental_escrow", _("Rental escrow")
    RENTAL_SETTLE = "rental_settle", _("Rental settled")
    RENTAL_REFUND = "rental_refund", _("Rental refund")
    SLASH = "slash", _("Slash")
    DELEGATE = "delegate", _("Delegation")
    UNDELEGATE = "undelegate", _("Undelegation")
    REDELEGATE = "redelegate", _("Redelegation")
    UNBOND_MATURE = "unbond_mature", _("Unbonding matured")
    REWARD = "reward", _("Reward")
    EMISSION = "emission", _("Emission")
    DEPOSIT = "deposit", _("Proposal deposit")
    DEPOSIT_REFUND = "deposit_refund", _("Deposit refund")
    BURN = "burn", _("Burn")
    POOL_SPEND = "pool_spend", _("Community-pool spend")
    DUST_SWEEP = "dust_sweep", _("Rounding remainder to dust")


class ChainHead(models.Model):
    """The one row that every posting locks: the tip of the hash chain and
    the fixed supply minted at genesis."""

    height = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    supply = models.BigIntegerField(default=0)
    # Epoch 0 starts here (see ``apps.core.epochs``).
    genesis_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="single_chain_head")]


class LedgerTransaction(models.Model):
    height = models.BigIntegerField(unique=True)
    kind = models.CharField(max_length=32, choices=TxKind.choices)
    memo = models.CharField(max_length=200, blank=True, default="")
    meta = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-height"]
        indexes = [models.Index(fields=["kind", "-height"])]

    def __str__(self):
        return f"#{self.height} {self.get_kind_display()}"


class Entry(models.Model):
    """One signed leg of a transaction: ``amount`` added to ``bucket`` of
    ``account`` (negative for a debit). The legs of a transaction sum to zero
    (genesis alone sums to the supply)."""

    tx = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="entries")
    seq = models.PositiveSmallIntegerField()
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    bucket = models.CharField(max_length=16, choices=Bucket.choices)
    amount = models.BigIntegerField()

    class Meta:
        ordering = ["tx_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["tx", "seq"], name="entry_seq_unique"),
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "tx"])]


class Checkpoint(models.Model):
    """Every bucket of ``account`` right after the transaction at ``height``."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="checkpoints")
    height = models.BigIntegerField()
    available = models.BigIntegerField()
    escrowed = models.BigIntegerField()
    collateral = models.BigIntegerField()
    bonded = models.BigIntegerField()
    unbonding = models.BigIntegerField()

    class Meta:
        ordering = ["account_id", "height"]
        constraints = [
            models.UniqueConstraint(fields=["account", "height"], name="checkpoint_unique"),
        ]
        indexes = [models.Index(fields=["height"])]

    @property
    def voting_power(self) -> int:
        return sum(getattr(self, b) for b in VOTING_BUCKETS)
