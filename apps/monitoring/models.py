"""What the agents send and what checker consensus concludes.

``Heartbeat``      one GPU telemetry sample from a provider agent (raw,
                   pruned after the retention window);
``AssignmentRound`` per epoch: the checkers and nodes that took part when
                   the epoch's assignments were fixed (what anyone needs to
                   recompute them, published so a forged row cannot hide);
``Assignment``     which checkers must check which node in an epoch, fixed
                   when the epoch's assignments are first asked for;
``CheckerReport``  one signed report per assignment;
``ChallengeResult`` the compute challenge a report carries (seed, root,
                   rows opened and their proofs);
``NodeEpoch``      per node and epoch: the consensus, the health score and
                   the telemetry rolled up from heartbeats (kept);
``CheckerEpoch``   per checker and epoch: assignments, reports delivered,
                   correct and incorrect (what rewards and penalties use).
"""

from django.db import models

from apps.core.models import CheckerNode, GpuNode


class Heartbeat(models.Model):
    """On PostgreSQL the table is partitioned by ranges of ``epoch``
    (apps.monitoring.partitions, migration 0014): its primary key there is
    (id, epoch), ids still drawn from one sequence, unique on their own."""

    # Indexed by the (node, at, epoch) constraint below, whose prefix it is.
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="heartbeats", db_index=False)
    at = models.DateTimeField()
    epoch = models.BigIntegerField()
    gpu_util = models.PositiveSmallIntegerField(help_text="percent, mean over the node's GPUs")
    mem_used_mb = models.PositiveIntegerField()
    mem_total_mb = models.PositiveIntegerField()
    temperature_c = models.SmallIntegerField()
    power_w = models.PositiveIntegerField()
    workloads = models.PositiveSmallIntegerField(default=0)

    class Meta:
        # One sample per node and instant: a resent batch adds nothing (the
        # ingest's insert skips what this already holds). An instant always
        # falls in the same epoch, so with ``epoch`` (which a unique index
        # of a table partitioned by epoch must include) it still means one
        # per instant. It also serves a node's recent samples; ``at`` alone
        # serves the overview's live window, ``epoch`` the roll-up and
        # retention.
        constraints = [models.UniqueConstraint(fields=["node", "at", "epoch"], name="heartbeat_once_per_instant")]
        indexes = [models.Index(fields=["epoch"]), models.Index(fields=["at"], name="heartbeat_at")]


class AssignmentRound(models.Model):
    """The inputs of an epoch's assignment, written in the same transaction
    as its rows. Verification recomputes from these lists, never from the
    rows themselves: a list derived from the rows would change with them."""

    epoch = models.BigIntegerField(unique=True)
    replication = models.PositiveSmallIntegerField()
    checker_ids = models.JSONField(help_text="active checkers, ascending")
    node_ids = models.JSONField(help_text="checked nodes, ascending")
    # Which rule drew the rows (apps.monitoring.assignment.RULES): rounds
    # fixed before the ranked ring keep verifying under rendezvous.
    rule = models.CharField(max_length=16, default="ranked-ring")
    created_at = models.DateTimeField(auto_now_add=True)


class Assignment(models.Model):
    epoch = models.BigIntegerField()
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="assignments")
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="assignments")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["epoch", "node", "checker"], name="assignment_unique")]
        indexes = [models.Index(fields=["epoch", "checker"])]


class CheckerReport(models.Model):
    epoch = models.BigIntegerField()
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="reports")
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="reports")
    probes = models.PositiveIntegerField()
    # Share of probes whose TCP connect succeeded / whose health request
    # answered correctly, in ppm.
    uptime_ppm = models.PositiveIntegerField()
    task_ppm = models.PositiveIntegerField()
    latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="the fastest round trip of the epoch's answered probes, in ms"
    )
    # None when no probe was answered: a node that is down is not lying.
    spec_ok = models.BooleanField(null=True, blank=True)
    gpu_name_seen = models.CharField(max_length=80, blank=True, default="")
    gpu_count_seen = models.PositiveSmallIntegerField(default=0)
    # Share of the probes of a rented node whose workload check passed (the
    # lease running and each of its endpoints accepting a connection), in
    # ppm; None when there was no workload to check (and in reports from
    # before the field existed).
    workload_ppm = models.PositiveIntegerField(null=True, blank=True)
    # The checker's timed download from the node's agent, in whole Mbps;
    # None when it measured none (the test off, or the download failed).
    download_mbps = models.PositiveIntegerField(null=True, blank=True)
    payload_hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)
    submitted_at = models.DateTimeField(auto_now_add=True)
    # Set when the epoch's consensus is computed.
    correct = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["epoch", "node", "checker"], name="one_report_per_assignment")]
        indexes = [models.Index(fields=["checker", "epoch"])]


class ChallengeResult(models.Model):
    """The compute challenge a checker ran on a node, as its signed report
    carries it (docs/challenges.md): enough for anyone to redo the check.

    ``verified`` is the dashboard's own check of the published rows and
    proofs against the root (None: the checker opened no rows, e.g. the
    node never committed); a report claiming a pass they do not support
    contradicts a verifiable fact."""

    report = models.OneToOneField(CheckerReport, on_delete=models.CASCADE, related_name="challenge")
    epoch = models.BigIntegerField()
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="challenges", db_index=False)
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="challenges", db_index=False)
    n = models.PositiveIntegerField()
    nonce = models.CharField(max_length=32)
    # Unique: a seed is fresh per challenge, and one answered is never counted twice.
    seed = models.CharField(max_length=64, unique=True)
    root = models.CharField(max_length=64, blank=True, default="")
    passed = models.BooleanField()
    elapsed_ms = models.PositiveIntegerField(null=True, blank=True)
    deadline_ms = models.PositiveIntegerField()
    rows = models.JSONField(default=list, help_text="the row indices opened, in the order asked")
    proofs = models.JSONField(default=list, help_text="per row, its Merkle proof (hex), leaf level first")
    reason = models.CharField(max_length=200, blank=True, default="")
    verified = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-epoch", "-id"]
        indexes = [
            models.Index(fields=["node", "-epoch"], name="challenge_node_history"),
            models.Index(fields=["checker", "-epoch"], name="challenge_checker_history"),
        ]


class NodeEpoch(models.Model):
    epoch = models.BigIntegerField()
    # Indexed with the epoch below (node_epoch_history).
    node = models.ForeignKey(GpuNode, on_delete=models.CASCADE, related_name="epochs", db_index=False)
    assigned = models.PositiveSmallIntegerField(default=0)
    reports = models.PositiveSmallIntegerField(default=0)
    valid = models.BooleanField(default=False, help_text="at least a quorum of reports")
    uptime_ppm = models.PositiveIntegerField(null=True, blank=True)
    task_ppm = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    spec_ok = models.BooleanField(null=True, blank=True)
    # The consensus of the reports that checked the node's rented workload
    # (None: no workload checked by a quorum).
    workload_ppm = models.PositiveIntegerField(null=True, blank=True)
    # The majority of the compute challenges' outcomes (None: fewer than a
    # quorum of reports ran one). A failed majority makes ``spec_ok`` false.
    challenge_ok = models.BooleanField(null=True, blank=True)
    # The median of the reports' measured download speeds, in Mbps (None:
    # fewer than a quorum of reports measured one). Not judged: see consensus.
    download_mbps = models.PositiveIntegerField(null=True, blank=True)
    health_score = models.PositiveIntegerField(null=True, blank=True)
    status_before = models.CharField(max_length=16, blank=True, default="")
    status_after = models.CharField(max_length=16, blank=True, default="")
    # Telemetry rolled up from heartbeats.
    samples = models.PositiveIntegerField(default=0)
    gpu_util_avg = models.PositiveSmallIntegerField(null=True, blank=True)
    temperature_max = models.SmallIntegerField(null=True, blank=True)
    power_avg = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-epoch", "node_id"]
        constraints = [models.UniqueConstraint(fields=["epoch", "node"], name="node_epoch_unique")]
        # A node's recent epochs (catalogue sparklines, node charts) read a
        # few index entries however long the node's history grows.
        indexes = [models.Index(fields=["node", "-epoch"], name="node_epoch_history")]


class CheckerEpoch(models.Model):
    epoch = models.BigIntegerField()
    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="epochs")
    assigned = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    incorrect = models.PositiveIntegerField(default=0)
    # Of the incorrect: reports that contradict themselves (see
    # consensus.contradiction), which jail at once, even in an incident.
    contradicting = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-epoch", "checker_id"]
        constraints = [models.UniqueConstraint(fields=["epoch", "checker"], name="checker_epoch_unique")]

    @property
    def missed(self) -> int:
        return self.assigned - self.delivered

    @property
    def judged(self) -> int:
        return self.correct + self.incorrect


class EpochConsensus(models.Model):
    """Marks an epoch's consensus as computed (once; see consensus.finalize)."""

    epoch = models.BigIntegerField(unique=True)
    computed_at = models.DateTimeField(auto_now_add=True)
    nodes = models.PositiveIntegerField(default=0)
    valid_nodes = models.PositiveIntegerField(default=0)
    latency_noise_ms = models.PositiveIntegerField(
        default=20, help_text="the epoch's latency noise floor used in judging (consensus.latency_noise_ms)"
    )


class CheckerKey(models.Model):
    """Every key a checker signed with, from when: a new agent brings a new
    key, and the reports signed with the old one must still verify
    (docs/rules.md §7b). A report is checked against the key registered
    last before it was submitted."""

    checker = models.ForeignKey(CheckerNode, on_delete=models.CASCADE, related_name="keys")
    public_key = models.CharField(max_length=64)
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["checker", "registered_at"])]


def record_key(checker: CheckerNode) -> None:
    """Note ``checker``'s current key in its history."""
    if checker.public_key:
        CheckerKey.objects.create(checker=checker, public_key=checker.public_key)
