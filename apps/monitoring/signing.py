"""Checker reports are signed with the checker agent's Ed25519 key.

The signed bytes are the canonical JSON of the report's fields, so the
server, the agent and any auditor compute the same message.

Fields added to reports later (``OPTIONAL_SIGNED_FIELDS``) are part of the
message only when the report carries a value for them: a report without
one (every report stored before the field existed, and one from an agent
that had nothing to measure) has exactly the bytes it always had, so its
signature and its stored payload hash still hold, while a report that
carries one cannot lose it or have it changed without breaking its
signature. Absent and null mean the same thing: nothing measured."""

import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNED_FIELDS = (
    "epoch",
    "node",
    "probes",
    "uptime_ppm",
    "task_ppm",
    "latency_ms",
    "spec_ok",
    "gpu_name_seen",
    "gpu_count_seen",
)
# Signed when present (not null): see the module's docstring.
OPTIONAL_SIGNED_FIELDS = ("workload_ppm", "challenge", "download_mbps")


def message(report: dict) -> bytes:
    body = {k: report.get(k) for k in SIGNED_FIELDS}
    body.update({k: report[k] for k in OPTIONAL_SIGNED_FIELDS if report.get(k) is not None})
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def payload_hash(report: dict) -> str:
    return hashlib.sha256(message(report)).hexdigest()


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def sign(key: Ed25519PrivateKey, report: dict) -> str:
    return key.sign(message(report)).hex()


def verify(public_key_hex: str, report: dict, signature_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature_hex), message(report))
        return True
    except (ValueError, InvalidSignature):
        return False
