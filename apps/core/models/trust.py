"""What lets outsiders trust the ledger and clients retry safely.

``SignedCheckpoint`` is the dashboard's signed statement of the chain's
height and head hash after a settled epoch. Anyone who keeps a copy can later
prove that history up to that height was rewritten (``verify_ledger
--against``). It is not the per-account ``Checkpoint`` of balances.

``IdempotencyKey`` remembers the first answer to a mutating request that
carried a client-chosen key, so a retried request returns that answer instead
of moving money twice.
"""

from django.db import models


class SignedCheckpoint(models.Model):
    epoch = models.BigIntegerField(unique=True)
    height = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    # The hash of transaction #1 names the chain, so a checkpoint of one
    # network can never vouch for another's history.
    genesis_hash = models.CharField(max_length=64)
    supply = models.BigIntegerField()
    signed_at = models.DateTimeField()
    public_key = models.CharField(max_length=64, help_text="Ed25519 public key, hex")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature of the canonical statement, hex")

    class Meta:
        ordering = ["-epoch"]

    def __str__(self):
        return f"checkpoint of epoch {self.epoch} at #{self.height}"


class IdempotencyKey(models.Model):
    # Who sent it: keys are per principal, so one client cannot replay
    # another's answers by guessing their keys.
    principal = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(max_length=200, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["principal", "key"], name="one_answer_per_key")]

    def __str__(self):
        return f"{self.principal} {self.key}"
