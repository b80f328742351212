"""What the agent endpoints accept, for the OpenAPI schema. The agent views
parse their bodies in ``ingest`` (so the simulator, the agents and the API
share one set of rules); these serializers only describe those bodies, with
the bounds taken from the same place."""

from rest_framework import serializers

from . import ingest


def _sample_fields():
    fields = {name: serializers.IntegerField(min_value=lo, max_value=hi) for name, lo, hi in ingest.SAMPLE_FIELDS}
    fields["at"] = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When it was measured (ISO 8601 with a zone); default now"
    )
    return fields


HeartbeatSample = type("HeartbeatSample", (serializers.Serializer,), _sample_fields())


class NodeFacts(serializers.Serializer):
    """Optional; a value the dashboard refuses leaves the facts unchanged (the
    samples are stored) and the answer's ``facts_ignored`` says why."""

    cuda_version = serializers.RegexField(
        ingest.CUDA_VERSION.pattern, allow_null=True, required=False, help_text='CUDA driver version, e.g. "12.4"'
    )
    disk_free_gb = serializers.IntegerField(min_value=0, max_value=ingest.MAX_DISK_GB, allow_null=True, required=False)
    disk_total_gb = serializers.IntegerField(min_value=0, max_value=ingest.MAX_DISK_GB, allow_null=True, required=False)


class HeartbeatBatch(serializers.Serializer):
    samples = HeartbeatSample(many=True, min_length=1, max_length=ingest.MAX_BATCH)
    facts = NodeFacts(required=False, help_text="the node's CUDA driver version and disk space (GB)")


class AgentKeyRequest(serializers.Serializer):
    public_key = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text="Ed25519 public key, 64 hex characters")


class ChallengeResult(serializers.Serializer):
    """The compute challenge a checker ran (docs/challenges.md); every field required."""

    n = serializers.IntegerField(min_value=64, max_value=16_384)
    nonce = serializers.RegexField(r"^[0-9a-f]{32}$")
    seed = serializers.RegexField(
        r"^[0-9a-f]{64}$", help_text="SHA-256 of the report's epoch, node, checker and the nonce"
    )
    root = serializers.RegexField(r"^([0-9a-f]{64})?$", help_text="the node's Merkle root; empty if it sent none")
    passed = serializers.BooleanField()
    elapsed_ms = serializers.IntegerField(min_value=0, max_value=3_600_000, allow_null=True)
    deadline_ms = serializers.IntegerField(min_value=0, max_value=3_600_000)
    rows = serializers.ListField(child=serializers.IntegerField(min_value=0), max_length=64)
    proofs = serializers.ListField(
        child=serializers.ListField(child=serializers.RegexField(r"^[0-9a-f]{64}$")),
        max_length=64,
        help_text="per opened row, its Merkle proof: ceil(log2 n) hashes from the leaf up",
    )
    reason = serializers.CharField(max_length=200, allow_blank=True)


class SignedReport(serializers.Serializer):
    epoch = serializers.IntegerField(min_value=0, max_value=10**12)
    node = serializers.IntegerField(min_value=1, max_value=2**62)
    probes = serializers.IntegerField(min_value=1, max_value=100_000)
    uptime_ppm = serializers.IntegerField(min_value=0, max_value=1_000_000)
    task_ppm = serializers.IntegerField(min_value=0, max_value=1_000_000)
    latency_ms = serializers.IntegerField(min_value=0, max_value=600_000, allow_null=True)
    spec_ok = serializers.BooleanField(allow_null=True, help_text="null when no probe answered")
    gpu_name_seen = serializers.CharField(max_length=80, allow_blank=True, required=False)
    gpu_count_seen = serializers.IntegerField(min_value=0, max_value=1024, required=False)
    workload_ppm = serializers.IntegerField(
        min_value=0,
        max_value=1_000_000,
        allow_null=True,
        required=False,
        help_text="share of probes that found a rented node's workload running and its endpoints open; "
        "null or absent when there was none to check (signed only when present)",
    )
    challenge = ChallengeResult(
        required=False, allow_null=True, help_text="the compute challenge run, if any (signed only when present)"
    )
    reason = serializers.CharField(
        max_length=200,
        allow_blank=True,
        required=False,
        help_text="why probes failed, in words; not signed, not judged, only logged",
    )
    signature = serializers.RegexField(
        r"^[0-9a-fA-F]{128}$", help_text="Ed25519 signature (hex) of the canonical JSON of the other fields"
    )


class ReportBatch(serializers.Serializer):
    reports = SignedReport(many=True, min_length=1, help_text="At most 1,000 per batch")


MAX_LEASES_PER_REPORT = 16


class LeaseStatus(serializers.Serializer):
    lease = serializers.IntegerField(help_text="the rental's id")
    state = serializers.ChoiceField(choices=["pulling", "starting", "running", "exited", "failed", "removed"])
    exit_code = serializers.IntegerField(allow_null=True, required=False)
    reason = serializers.CharField(allow_blank=True, required=False, help_text="at most 500 characters are kept")
    endpoints = serializers.DictField(
        child=serializers.CharField(), required=False, help_text='{"container port": "host:port"}'
    )
    log_tail = serializers.CharField(
        allow_blank=True, required=False, help_text="the container's latest output; the last 64 KiB are kept"
    )


class LeaseStatusBatch(serializers.Serializer):
    leases = LeaseStatus(many=True, min_length=1, max_length=MAX_LEASES_PER_REPORT)
