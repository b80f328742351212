"""Who may challenge a node: only a checker assigned to it, proven twice.

A compute challenge makes a node multiply two n x n matrices on its GPUs,
one at a time, within a deadline (docs/challenges.md). If anyone could ask,
anyone could keep a node's GPUs busy with challenges of their own, so that
the real checkers' challenges queue behind them, miss their deadlines and
the node is slashed for a false spec it does not have.

So a challenge carries two signatures:

* a **ticket**, issued by the dashboard with each assignment and signed
  with the network's key (the key that signs ledger checkpoints): "checker
  C, whose key is K, is assigned node N in epoch E";
* the checker's own signature, with K, over the challenge it sends (epoch,
  node, checker, n and the fresh nonce), so a ticket seen on the wire is
  worth nothing to anyone else.

The node learns the network's key from the dashboard when its agent starts
(``/api/agent/me/``) and from then on refuses, with a 403 and the reason,
any challenge whose ticket or signature does not check out, before any
work. Both checks are a few hundred microseconds of Ed25519.

Plain functions over dicts and hex: the agents (which import no Django)
verify, the dashboard signs.
"""

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

KIND = "aethir-challenge-ticket/1"
TICKET_FIELDS = ("kind", "epoch", "node", "checker", "checker_key")
REQUEST_FIELDS = ("epoch", "node", "checker", "n", "nonce")


class NotAllowed(Exception):
    """Why a challenge is refused before any work (a 403's message)."""


class UnknownIssuer(NotAllowed):
    """The ticket is not signed by the network key the node knows: forged,
    or the network's key was replaced since the node last asked."""


def _canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def ticket_body(epoch: int, node: int, checker: int, checker_key: str) -> dict:
    return {"kind": KIND, "epoch": epoch, "node": node, "checker": checker, "checker_key": checker_key}


def issue(network_key: Ed25519PrivateKey, epoch: int, node: int, checker: int, checker_key: str) -> dict:
    """The dashboard's ticket for one assignment: the body and its signature."""
    body = ticket_body(epoch, node, checker, checker_key)
    return {**body, "signature": network_key.sign(_canonical(body)).hex()}


def sign_request(checker_key: Ed25519PrivateKey, ask: dict) -> str:
    """The checker's signature over the challenge it sends."""
    return checker_key.sign(_canonical({k: ask[k] for k in REQUEST_FIELDS})).hex()


def _verify(public_hex: str, signature_hex, message: bytes, what: str, error=NotAllowed) -> None:
    if not isinstance(signature_hex, str) or len(signature_hex) != 128:
        raise NotAllowed(f"{what} must be 128 hex characters")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, TypeError, InvalidSignature):
        raise error(f"{what} does not verify") from None


def check(network_key_hex: str, ask: dict, ticket, signature) -> None:
    """Raise :class:`NotAllowed` unless ``ticket`` is the network's, for
    exactly the epoch, node and checker of ``ask`` (already parsed: ints
    and the nonce's hex), and ``signature`` is the ticket's checker's over
    ``ask``."""
    if not isinstance(ticket, dict):
        raise NotAllowed("a challenge needs the ticket its checker got with the assignment")
    body = {k: ticket.get(k) for k in TICKET_FIELDS}
    if body["kind"] != KIND:
        raise NotAllowed("the ticket is not a challenge ticket")
    for field in ("epoch", "node", "checker"):
        if type(body[field]) is not int or body[field] != ask[field]:
            raise NotAllowed(f"the ticket is for another {field}")
    checker_key = body["checker_key"]
    if not isinstance(checker_key, str) or len(checker_key) != 64:
        raise NotAllowed("the ticket's checker key must be 64 hex characters")
    _verify(network_key_hex, ticket.get("signature"), _canonical(body), "the ticket's signature", UnknownIssuer)
    _verify(checker_key, signature, _canonical({k: ask[k] for k in REQUEST_FIELDS}), "the challenge's signature")
