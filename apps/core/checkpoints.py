"""Signed checkpoints: history that cannot be rewritten unnoticed.

The hash chain lets anyone check that the ledger is consistent with itself,
but whoever runs the database could rewrite an old transaction and re-hash
everything after it: the chain would verify again. So after each settled
epoch the dashboard signs a short statement (Ed25519) of the chain's height
and head hash, and publishes it (API and explorer). Anyone who saves one can
later run ``manage.py verify_ledger --against FILE_OR_URL``: a history
rewritten since the saved height no longer has that hash at that height,
and the signature proves the dashboard itself published the old one.

The signed statement is the canonical JSON of :func:`statement`; the key is
``LEDGER_SIGNING_KEY`` (64 hex digits, the Ed25519 seed), generated once under
the var directory in demo mode.
"""

import json
import os
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .hashing import canonical_time
from .models import ChainHead, LedgerTransaction, SignedCheckpoint

FORMAT = "aethir-ledger-checkpoint/1"
KEY_FILE = "ledger-signing.key"
# A saved file or a published list is small; anything bigger is not ours.
MAX_SOURCE_BYTES = 32 * 1024 * 1024
MAX_PAGES = 10_000


# --- The key -------------------------------------------------------------------


def key_from_hex(text: str) -> Ed25519PrivateKey:
    try:
        seed = bytes.fromhex(text.strip())
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise ImproperlyConfigured("LEDGER_SIGNING_KEY must be 64 hex digits (an Ed25519 seed).")
    return Ed25519PrivateKey.from_private_bytes(seed)


def _demo_key_file() -> Path:
    path = Path(settings.VAR_DIR) / KEY_FILE
    if not path.exists():
        seed = os.urandom(32).hex()
        try:
            # O_EXCL: when two processes start at once, one key wins and
            # both use it.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(fd, "w") as f:
            f.write(seed + "\n")
    return path


@lru_cache(maxsize=1)
def signing_key() -> Ed25519PrivateKey:
    configured = getattr(settings, "LEDGER_SIGNING_KEY", "")
    if configured:
        return key_from_hex(configured)
    if not settings.DEMO_MODE:
        raise ImproperlyConfigured(
            "Set LEDGER_SIGNING_KEY (64 hex digits) to sign ledger checkpoints; "
            'generate one with: python -c "import os; print(os.urandom(32).hex())"'
        )
    return key_from_hex(_demo_key_file().read_text())


def public_key_hex() -> str:
    return signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


# --- The statement ---------------------------------------------------------------


def statement(*, epoch: int, height: int, head_hash: str, genesis_hash: str, supply: int, signed_at: str) -> bytes:
    """The exact bytes that are signed. Numbers that can exceed 2**53 are
    strings, so a JavaScript client reads them exactly."""
    body = {
        "format": FORMAT,
        "epoch": int(epoch),
        "height": int(height),
        "head_hash": head_hash,
        "genesis_hash": genesis_hash,
        "supply": str(int(supply)),
        "signed_at": signed_at,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def as_published(cp: SignedCheckpoint) -> dict:
    """A checkpoint as the API publishes it and as a verifier saves it."""
    return {
        "format": FORMAT,
        "epoch": cp.epoch,
        "height": cp.height,
        "head_hash": cp.head_hash,
        "genesis_hash": cp.genesis_hash,
        "supply": str(cp.supply),
        "signed_at": canonical_time(cp.signed_at),
        "public_key": cp.public_key,
        "signature": cp.signature,
    }


def signature_valid(published: dict) -> bool:
    try:
        message = statement(
            epoch=published["epoch"],
            height=published["height"],
            head_hash=str(published["head_hash"]),
            genesis_hash=str(published["genesis_hash"]),
            supply=int(published["supply"]),
            signed_at=str(published["signed_at"]),
        )
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(published["public_key"])))
        key.verify(bytes.fromhex(str(published["signature"])), message)
        return True
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False


# --- Signing -----------------------------------------------------------------------


def sign_epoch(epoch: int) -> SignedCheckpoint:
    """Sign the chain as it stands now, for ``epoch``; once per epoch.

    Called inside the epoch's settlement transaction, so an epoch is settled
    and checkpointed together or not at all.
    """
    with transaction.atomic():
        existing = SignedCheckpoint.objects.filter(epoch=epoch).first()
        if existing:
            return existing
        # The head row is locked by every posting: height and hash are read
        # as one consistent pair, and nothing is appended while we sign.
        head = ChainHead.objects.select_for_update().get(pk=1)
        genesis_hash = LedgerTransaction.objects.filter(height=1).values_list("hash", flat=True).first() or ""
        signed_at = timezone.now()
        message = statement(
            epoch=epoch,
            height=head.height,
            head_hash=head.hash,
            genesis_hash=genesis_hash,
            supply=head.supply,
            signed_at=canonical_time(signed_at),
        )
        key = signing_key()
        return SignedCheckpoint.objects.create(
            epoch=epoch,
            height=head.height,
            head_hash=head.hash,
            genesis_hash=genesis_hash,
            supply=head.supply,
            signed_at=signed_at,
            public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
            signature=key.sign(message).hex(),
        )


# --- Checking saved checkpoints against the chain --------------------------------------


class SourceError(ValueError):
    """A file or URL that does not hold checkpoints we can read."""


def _read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        request = urllib.request.Request(source, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the operator's own choice)
            data = response.read(MAX_SOURCE_BYTES + 1)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_SOURCE_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"Cannot read {source}: {exc.strerror or exc}.") from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(f"{source} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB.")
    return data


def load(source: str) -> tuple[list[dict], dict[int, str]]:
    """Read saved checkpoints from a file or URL.

    Accepts one checkpoint, a list of them, an API page (``results`` and
    ``next``, whose further pages are followed), or ``{"checkpoints": [...],
    "transactions": [...]}``. Transactions saved from the transactions API
    (``height`` and ``hash``) are used to name the exact first height that
    differs; without them, the first saved checkpoint that differs is named.
    """
    checkpoints: list[dict] = []
    hashes: dict[int, str] = {}
    pages = 0
    while source:
        pages += 1
        if pages > MAX_PAGES:
            raise SourceError("Too many pages.")
        try:
            document = json.loads(_read(source))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise SourceError(f"{source} is not JSON.") from None
        following = None
        if isinstance(document, dict) and "results" in document:
            items = document["results"]
            nxt = document.get("next")
            following = nxt if isinstance(nxt, str) and source.startswith(("http://", "https://")) else None
        elif isinstance(document, dict) and ("checkpoints" in document or "transactions" in document):
            items = list(document.get("checkpoints") or [])
            for tx in document.get("transactions") or []:
                if isinstance(tx, dict) and isinstance(tx.get("height"), int) and isinstance(tx.get("hash"), str):
                    hashes[tx["height"]] = tx["hash"]
        elif isinstance(document, dict):
            items = [document]
        elif isinstance(document, list):
            items = document
        else:
            raise SourceError(f"{source} holds no checkpoints.")
        if not isinstance(items, list):
            raise SourceError(f"{source} holds no checkpoints.")
        checkpoints.extend(i for i in items if isinstance(i, dict) and "signature" in i)
        source = following
    if not checkpoints:
        raise SourceError("No signed checkpoints found.")
    return checkpoints, hashes


@dataclass
class Comparison:
    checked: int = 0
    last_matching_height: int | None = None
    first_bad_height: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def compare(
    checkpoints: list[dict], hashes: dict[int, str] | None = None, *, public_key: str | None = None
) -> Comparison:
    """Check saved checkpoints (and any saved transaction hashes) against the
    chain as it stands now."""
    result = Comparison()
    genesis_hash = LedgerTransaction.objects.filter(height=1).values_list("hash", flat=True).first()
    known: dict[int, tuple[str, str]] = {}  # height -> (hash, where it comes from)
    for cp in checkpoints:
        label = f"the checkpoint of epoch {cp.get('epoch')}"
        if not signature_valid(cp):
            result.problems.append(f"{label} has no valid signature (not published by this dashboard as saved)")
            continue
        if public_key and cp["public_key"] != public_key.lower():
            result.problems.append(f"{label} is signed by {cp['public_key']}, not the expected key")
            continue
        if cp["genesis_hash"] != genesis_hash:
            result.problems.append(f"{label} belongs to another chain (its genesis hash differs)")
            continue
        result.checked += 1
        known[int(cp["height"])] = (str(cp["head_hash"]), label)
    for height, digest in (hashes or {}).items():
        known.setdefault(height, (digest, "the saved transaction list"))
    if not known:
        return result

    current = dict(LedgerTransaction.objects.filter(height__in=list(known)).values_list("height", "hash"))
    for height in sorted(known):
        saved, where = known[height]
        now = current.get(height)
        if now == saved:
            result.last_matching_height = height
            continue
        result.first_bad_height = height
        if now is None:
            detail = f"transaction #{height} no longer exists, but {where} says it had hash {saved}"
        else:
            detail = f"transaction #{height} now has hash {now}, but {where} says {saved}"
        since = (
            f"; it still matched at #{result.last_matching_height}, so history was rewritten "
            f"between #{result.last_matching_height + 1} and #{height}"
            if result.last_matching_height is not None and result.last_matching_height + 1 < height
            else ""
        )
        result.problems.append(f"history differs from what was saved: {detail}{since}")
        break
    return result
