"""The hash chain: one place that says what a transaction's hash covers.

Anyone can recompute it from the public API: SHA-256 over the canonical JSON
of the height, the previous hash, kind, memo, meta, timestamp and the legs
(address, bucket, amount) in order.
"""

import hashlib
import json
from datetime import UTC, datetime

GENESIS_PREV_HASH = "0" * 64


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tx_hash(
    *,
    height: int,
    prev_hash: str,
    kind: str,
    memo: str,
    meta: dict,
    created_at: datetime,
    legs: list[tuple[str, str, int]],
) -> str:
    body = {
        "height": height,
        "prev": prev_hash,
        "kind": kind,
        "memo": memo,
        "meta": meta,
        "time": canonical_time(created_at),
        "legs": [[address, bucket, int(amount)] for address, bucket, amount in legs],
    }
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()
