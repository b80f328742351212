"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the
endpoint's secret. The receiver recomputes it and refuses a timestamp more
than a few minutes old, so a captured delivery cannot be replayed later."""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Aethir-Signature"
TIMESTAMP_HEADER = "X-Aethir-Timestamp"
EVENT_HEADER = "X-Aethir-Event"
DELIVERY_HEADER = "X-Aethir-Delivery"
TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float) -> bool:
    """What a receiver does (the README shows it standalone)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
