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


class Bucket(models.TextChoices):
    AVAILABLE = "available", "Available"
    ESCROWED = "escrowed", "Escrowed"
    COLLATERAL = "collateral", "Collateral"
    BONDED = "bonded", "Bonded"
    UNBONDING = "unbonding", "Unbonding"


BUCKETS = tuple(Bucket.values)
# What counts as owned for voting power (docs/rules.md §8).
VOTING_BUCKETS = (Bucket.AVAILABLE, Bucket.BONDED, Bucket.UNBONDING)


class AccountKind(models.TextChoices):
    USER = "user", "Wallet"
    MODULE = "module", "Module account"


class ModuleAccount(models.TextChoices):
    """Accounts owned by the protocol itself, created at genesis."""

    EMISSION_RESERVE = "emission_reserve", "Emission reserve"
    COMMUNITY_POOL = "community_pool", "Community pool"
    BURN = "burn", "Burn"
    FAUCET = "faucet", "Faucet"
    DUST = "dust", "Rounding remainder (dust)"
    REWARDS_POOL = "rewards_pool", "Staking rewards (unclaimed)"
    GOV_DEPOSITS = "gov_deposits", "Proposal deposits"


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
    GENESIS = "genesis", "Genesis"
    TRANSFER = "transfer", "Transfer"
    FAUCET = "faucet", "Faucet"
    # Kinds the feature apps post; declared here so the explorer can name them.
    COLLATERAL_LOCK = "collateral_lock", "Collateral locked"
    COLLATERAL_RELEASE = "collateral_release", "Collateral released"
    RENTAL_ESCROW = "rental_escrow", "Rental escrow"
    RENTAL_SETTLE = "rental_settle", "Rental settled"
    RENTAL_REFUND = "rental_refund", "Rental refund"
    SLASH = "slash", "Slash"
    DELEGATE = "delegate", "Delegation"
    UNDELEGATE = "undelegate", "Undelegation"
    REDELEGATE = "redelegate", "Redelegation"
    UNBOND_MATURE = "unbond_mature", "Unbonding matured"
    REWARD = "reward", "Reward"
    EMISSION = "emission", "Emission"
    DEPOSIT = "deposit", "Proposal deposit"
    DEPOSIT_REFUND = "deposit_refund", "Deposit refund"
    BURN = "burn", "Burn"
    POOL_SPEND = "pool_spend", "Community-pool spend"
    DUST_SWEEP = "dust_sweep", "Rounding remainder to dust"


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
