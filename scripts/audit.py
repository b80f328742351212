#!/usr/bin/env python3
"""Recompute every amount of a range of settled epochs from the public API
alone, with nothing but Python's standard library (docs/auditing.md).

    python3 scripts/audit.py https://DASHBOARD 120 130

It reads /api/v1/public/ over HTTP (no login, no database, nothing from the
project's code) and checks:

* the ledger: every hash, every previous-hash link, double entry, no
  balance below zero, the supply constant;
* every checker report of the range: its payload hash and its Ed25519
  signature under the checker's published key, and that it was assigned;
* every consensus: medians, validity, the correct/incorrect marks and each
  checker's counts, from the reports and the parameters in force;
* the emission split, each provider's capacity reward and each checker's
  reward, and that the postings paid exactly those;
* each checker's reward index (F1): the stake that shared each epoch's
  reward, rebuilt from delegate, undelegate, redelegate and slash
  postings, the commission and the index after each distribution;
* every reward paid to a delegator (a claim, or the payout when a
  position closes), position by position, from that replay and the index;
* each rental's escrow: funding, top-ups, hand-overs to a replacement,
  early-end refunds and the remainder its last epoch returns;
* every rental epoch billed (fee split, refund, SLA credit), downtime and
  false-spec slashes, checker slashes (each holding cut, redelegated
  stake and unbonding entries included), and the postings behind them;
* unbonding that matured;
* every proposal deposit, the tally from the votes, the deposit's refund
  or burn from it, and every community-pool spend;
* that every posting each settlement made was recomputed (one left over
  is a difference).

It prints what it checked and every difference, and exits 0 when there is
none, 1 when there is any, 2 when it cannot read the API.
"""

import bisect
import hashlib
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from statistics import median_low

PPM = 1_000_000
SCALE = 10**27
LATENCY_NOISE_MS = 20
SETTLEMENT_KINDS = {"emission", "reward", "slash", "rental_refund", "rental_settle", "unbond_mature"}


# --- HTTP -------------------------------------------------------------------------


class Api:
    def __init__(self, base: str):
        self.base = base.rstrip("/") + "/api/v1/public/"

    def get(self, path: str, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.load(r)

    def all(self, path: str, **params) -> list:
        rows, params = [], {"page_size": 500, **params}
        while True:
            page = self.get(path, **params)
            rows += page["results"]
            if not page["next_cursor"]:
                return rows
            params["cursor"] = page["next_cursor"]


# --- Ed25519 (RFC 8032, verification only) ------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_I = pow(2, (_P - 1) // 4, _P)


def _recover_x(y: int, sign: int):
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _I % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, p):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = _add(q, p)
        p = _add(p, p)
        s >>= 1
    return q


def _point(b: bytes):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    x = _recover_x(y & ((1 << 255) - 1), y >> 255)
    if x is None:
        return None
    y &= (1 << 255) - 1
    return (x, y, 1, x * y % _P)


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _point(public), _point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % _L
    left, right = _mul(s, _G), _add(r, _mul(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % _P == 0 and (left[1] * right[2] - right[1] * left[2]) % _P == 0


# --- The ledger ---------------------------------------------------------------------


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def canonical_time(text: str) -> str:
    return when(text).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tx_hash(tx: dict) -> str:
    body = {
        "height": tx["height"],
        "prev": tx["prev_hash"],
        "kind": tx["kind"],
        "memo": tx["memo"],
        "meta": tx["meta"],
        "time": canonical_time(tx["created_at"]),
        "legs": [[e["address"], e["bucket"], int(e["amount"])] for e in tx["entries"]],
    }
    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class Ledger:
    """Replays the chain: balances per address and bucket after each height."""

    def __init__(self, txs: list, report):
        self.txs = {t["height"]: t for t in txs}
        self.balances: dict[tuple[str, str], int] = defaultdict(int)
        # (address, bucket) -> [(height, balance after it)], for balances in the past
        self.history: dict[tuple[str, str], list] = defaultdict(list)
        supply, prev = None, "0" * 64
        for i, tx in enumerate(txs, start=1):
            h = tx["height"]
            if h != i:
                report.diff(f"ledger: height {h} where {i} was expected")
            if tx["prev_hash"] != prev:
                report.diff(f"ledger #{h}: previous-hash link broken")
            if tx_hash(tx) != tx["hash"]:
                report.diff(f"ledger #{h}: hash does not match its content")
            prev = tx["hash"]
            total = sum(int(e["amount"]) for e in tx["entries"])
            if tx["kind"] == "genesis":
                supply = total
            elif total:
                report.diff(f"ledger #{h}: legs sum to {total}, not zero")
            for e in tx["entries"]:
                key = (e["address"], e["bucket"])
                self.balances[key] += int(e["amount"])
                self.history[key].append((h, self.balances[key]))
                if self.balances[key] < 0:
                    report.diff(f"ledger #{h}: {e['address']} {e['bucket']} below zero")
            report.checked("ledger postings")
        if supply is not None and sum(self.balances.values()) != supply:
            report.diff(f"ledger: balances sum to {sum(self.balances.values())}, supply is {supply}")

    def balance_before(self, height: int, address: str, bucket: str) -> int:
        rows = self.history[(address, bucket)]
        i = bisect.bisect_left(rows, (height, -1))
        return rows[i - 1][1] if i else 0


def legs(tx: dict) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = defaultdict(int)
    for e in tx["entries"]:
        out[(e["address"], e["bucket"])] += int(e["amount"])
    return {k: v for k, v in out.items() if v}


# --- Stake and the reward index (F1), from the ledger alone --------------------------


class Positions:
    """Each holder's lots on each checker, replayed as the dashboard keeps
    them (F1, docs/auditing.md): a lot is ``[stake, start epoch, reward so
    far x SCALE]``; it shares the distributions for epochs after its start.
    ``settle`` folds the lots that already earn into one based at the latest
    distribution, which changes no reward: rewards add up over the index's
    growth."""

    def __init__(self):
        self.lots: dict[tuple[str, int], list] = defaultdict(list)
        self.ratio: dict[int, int] = defaultdict(int)
        self.last: dict[int, int] = {}  # checker -> epoch of its latest distribution
        self.history: dict[int, list] = defaultdict(list)  # checker -> [(epoch, cumulative ratio)]

    def ratio_at(self, checker: int, epoch: int) -> int:
        rows = self.history[checker]
        i = bisect.bisect_right(rows, (epoch, float("inf")))
        return rows[i - 1][1] if i else 0

    def earning(self, checker: int, start: int) -> bool:
        return checker in self.last and start <= self.last[checker]

    def settle(self, key: tuple[str, int]) -> list:
        c, lots = key[1], self.lots[key]
        earning = [lot for lot in lots if self.earning(c, lot[1])]
        rest = sorted((lot for lot in lots if not self.earning(c, lot[1])), key=lambda lot: lot[1])
        if earning:
            reward = sum(x[2] + x[0] * (self.ratio[c] - self.ratio_at(c, x[1])) for x in earning)
            rest.insert(0, [sum(x[0] for x in earning), self.last[c], reward])
        self.lots[key] = rest
        return rest

    def earning_stake(self, key: tuple[str, int]) -> int:
        lots = self.lots[key]
        return lots[0][0] if lots and self.earning(key[1], lots[0][1]) else 0

    def add(self, key: tuple[str, int], amount: int, start: int) -> None:
        lots = self.settle(key)
        if key[1] in self.last:  # never based before a distribution that happened
            start = max(start, self.last[key[1]])
        lot = next((x for x in lots if x[1] == start), None)
        if lot:
            lot[0] += amount
        else:
            lots.append([amount, start, 0])
            lots.sort(key=lambda x: x[1])

    def take(self, key: tuple[str, int], amount: int) -> dict | None:
        """Stake leaves newest lots first (they have earned least). When the
        position closes, its reward is paid: what it pays, from what."""
        lots = self.settle(key)
        stake, closing = self.earning_stake(key), 0
        while amount and lots:
            cut = min(lots[-1][0], amount)
            lots[-1][0] -= cut
            amount -= cut
            if not lots[-1][0]:
                closing += lots.pop()[2]
        if lots or not closing // SCALE:
            return None
        return self.payout(key, stake, closing)

    def claim(self, key: tuple[str, int]) -> dict | None:
        """Pay the whole micro-ATH earned; the fraction stays on the lot."""
        lots = self.settle(key)
        if not self.earning_stake(key):
            return None
        paid = self.payout(key, lots[0][0], lots[0][2])
        lots[0][2] %= SCALE
        return paid

    def payout(self, key: tuple[str, int], stake: int, reward_scaled: int) -> dict:
        return {
            "address": key[0],
            "checker": key[1],
            "amount": str(reward_scaled // SCALE),
            "stake": str(stake),
            "reward_scaled": str(reward_scaled),
            "to_epoch": self.last.get(key[1]),
        }

    def distribute(self, checker: int, epoch: int, share: int) -> int:
        """Grow the index by ``share`` over the stake that shared ``epoch``."""
        eligible = sum(
            lot[0] for (_, cid), lots in self.lots.items() if cid == checker for lot in lots if lot[1] < epoch
        )
        if share and eligible:
            self.ratio[checker] += share * SCALE // eligible
        self.last[checker] = epoch
        self.history[checker].append((epoch, self.ratio[checker]))
        return eligible


def rebuild_index(txs: list) -> dict[int, list[dict]]:
    """Each checker's distributions, rebuilt from the ledger's postings:
    {checker id: [{epoch, reward, commission, eligible_stake,
    cumulative_ratio}, ...]}. A lot bonded with ``start_epoch`` s shares
    the rewards of epochs after s."""
    return replay_stake(txs)[0]


def stakes(txs: list) -> dict[int, dict[str, int]]:
    """Who has how much stake bonded to which checker after ``txs``:
    {checker id: {address: uATH}}."""
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for (address, checker), lots in replay_stake(txs)[1].items():
        if sum(lot[0] for lot in lots):
            out[checker][address] = sum(lot[0] for lot in lots)
    return out


def replay_stake(txs: list) -> tuple[dict, dict, dict]:
    """The ledger replayed: each checker's distributions (see
    :func:`rebuild_index`), each holder's lots per checker, and for each
    reward payout posting to delegators (a ``reward`` without
    ``meta.split``) the positions it should pay, recomputed: {height:
    [position, ...]}, or None where a payout from before positions were
    published leaves the claims unknown."""
    pos = Positions()
    out: dict[int, list[dict]] = defaultdict(list)
    payouts: dict[int, list | None] = {}
    closing: list[dict] = []  # what the stake moved since the last payout closed
    unknown: set[str] = set()  # holders with a payout the ledger does not itemise
    for tx in txs:
        kind, meta = tx["kind"], tx["meta"] or {}
        bonded = [(e["address"], int(e["amount"])) for e in tx["entries"] if e["bucket"] == "bonded"]
        moved = []
        if kind == "delegate":
            address, amount = next((a, x) for a, x in bonded if x > 0)
            # Postings from before start_epoch was recorded: their epoch.
            pos.add((address, meta["checker"]), amount, meta.get("start_epoch", meta["epoch"]))
        elif kind == "undelegate":
            address, amount = next((a, -x) for a, x in bonded if x < 0)
            moved.append(pos.take((address, meta["checker"]), amount))
        elif kind == "redelegate":
            address, amount = next((a, x) for a, x in bonded if x > 0)
            moved.append(pos.take((address, meta["src"]), amount))
            pos.add((address, meta["dst"]), amount, meta["start_epoch"])
        elif kind == "slash" and "stake_cuts" in meta:
            for checker, cuts in meta["stake_cuts"].items():
                for address, amount in cuts.items():
                    moved.append(pos.take((address, int(checker)), int(amount)))
        elif kind == "reward" and "split" in meta:
            epoch = meta["epoch"]
            for checker, (reward, commission) in meta["split"].items():
                c, reward, commission = int(checker), int(reward), int(commission)
                eligible = pos.distribute(c, epoch, reward - commission)
                out[c].append(
                    {
                        "epoch": epoch,
                        "reward": reward,
                        "commission": commission,
                        "eligible_stake": eligible,
                        "cumulative_ratio": pos.ratio[c],
                    }
                )
        elif kind == "reward":
            if "positions" not in meta:
                unknown.update(e["address"] for e in tx["entries"] if int(e["amount"]) > 0)
                payouts[tx["height"]] = None
            elif meta.get("automatic"):
                payouts[tx["height"]] = closing
            else:
                claimed = [pos.claim((p["address"], p["checker"])) for p in meta["positions"]]
                payouts[tx["height"]] = [p for p in claimed if p]
            if "positions" in meta and unknown & {p["address"] for p in meta["positions"]}:
                payouts[tx["height"]] = None
            closing = []
        if kind in ("undelegate", "redelegate", "slash"):
            closing = [p for p in moved if p]
    return out, pos.lots, payouts


def check_payouts(rep, txs: list, rewards_address: str) -> None:
    """Every reward paid to delegators (a claim, or a position's reward paid
    as it closed), recomputed position by position from the replay: the
    stake, the reward x SCALE (the index's growth over each lot, plus what
    was left after earlier claims), the amount (that divided by SCALE,
    rounded down); and the posting's legs: out of the rewards pool the
    total, to each holder the sum of its positions."""
    expected_by_height = replay_stake(txs)[2]
    itemised = False
    for tx in txs:
        meta = tx["meta"] or {}
        if tx["kind"] != "reward" or "split" in meta:
            continue
        where = f"reward payout #{tx['height']}"
        if "positions" not in meta:
            if itemised:
                rep.diff(f"{where}: no positions published")
            continue
        itemised = True
        expected = expected_by_height.get(tx["height"])
        if expected is None:
            rep.checked("reward payouts from before itemised claims (legs only)")
            continue
        key = lambda p: (p["checker"], p["address"])  # noqa: E731
        rep.expect("reward payout positions", sorted(meta["positions"], key=key), sorted(expected, key=key), where)
        want: dict[tuple[str, str], int] = defaultdict(int)
        for p in expected:
            want[(p["address"], "available")] += int(p["amount"])
            want[(rewards_address, "available")] -= int(p["amount"])
        rep.expect("reward payout posting", legs(tx), clean(want), where)


def unbonding_step(entries: list[dict], tx: dict) -> dict[str, int] | None:
    """Replay one posting on the unbonding entries not yet matured: an
    undelegation adds one (its holder, checker, epoch, maturity and
    amount); a checker slash takes ``amount x fraction`` (rounded down)
    from each entry it cuts; an ``unbond_mature`` posting returns the
    entries due, and this returns them per address."""
    meta = tx["meta"] or {}
    if tx["kind"] == "undelegate":
        leg = next(e for e in tx["entries"] if e["bucket"] == "unbonding")
        entries.append(
            {
                "address": leg["address"],
                "checker": meta["checker"],
                "epoch": meta["epoch"],
                "maturity": meta["maturity_epoch"],
                "amount": int(leg["amount"]),
            }
        )
    elif tx["kind"] == "slash" and "infraction_epoch" in meta:
        for entry in slashed_entries(entries, meta):
            entry["amount"] -= entry["amount"] * meta["fraction_ppm"] // PPM
    elif tx["kind"] == "slash":
        # A slash from before its infraction was recorded: each address's
        # cut taken from its latest entries first.
        for e in tx["entries"]:
            if e["bucket"] == "unbonding":
                left = -int(e["amount"])
                for entry in sorted((x for x in entries if x["address"] == e["address"]), key=lambda x: -x["maturity"]):
                    cut = min(entry["amount"], left)
                    entry["amount"] -= cut
                    left -= cut
    elif tx["kind"] == "unbond_mature":
        due: dict[str, int] = defaultdict(int)
        for x in entries:
            if x["maturity"] <= meta["epoch"]:
                due[x["address"]] += x["amount"]
        entries[:] = [x for x in entries if x["maturity"] > meta["epoch"]]
        return clean(due)
    return None


def unbonding_entries(txs: list) -> list[dict]:
    """The unbonding entries not yet matured after ``txs``, replayed from the ledger."""
    entries: list[dict] = []
    for tx in txs:
        unbonding_step(entries, tx)
    return entries


def slashed_entries(entries: list[dict], meta: dict) -> list[dict]:
    """The unbonding entries a checker slash cuts: from the slashed checker,
    begun at or after the infraction, not yet matured."""
    return [x for x in entries if x["checker"] == meta["checker"] and x["epoch"] >= meta["infraction_epoch"]]


def check_stake_cuts(rep, txs: list, tx: dict, where: str) -> None:
    """A checker slash takes ``amount x fraction`` (rounded down) of what
    backed the checker, replayed from the ledger before it, as the app
    does: each holder's stake bonded to it; each redelegation away from it
    since the infraction that has not matured, where it went (at most what
    that position still holds; several to one checker share it); each
    unbonding entry from it begun since the infraction. ``meta.stake_cuts``
    must name exactly the bonded cuts, each holder's bonded leg is minus the
    sum of its cuts on every checker, and its unbonding leg minus the sum
    of its entries' cuts."""
    meta = tx["meta"]
    checker, fraction = meta["checker"], meta["fraction_ppm"]
    before = [t for t in txs if t["height"] < tx["height"]]
    lots = replay_stake(before)[1]
    held = {key: sum(lot[0] for lot in rows) for key, rows in lots.items()}
    expected: dict[int, dict[str, int]] = defaultdict(dict)
    for (address, c), total in held.items():
        if c == checker and min(total * fraction // PPM, total):
            expected[checker][address] = min(total * fraction // PPM, total)
    unbonding: dict[str, int] = defaultdict(int)
    if "infraction_epoch" in meta:
        infraction, e = meta["infraction_epoch"], meta["epoch"]
        for t in before:
            m = t["meta"] or {}
            if t["kind"] != "redelegate" or m["src"] != checker or m["epoch"] < infraction:
                continue
            if m["maturity_epoch"] <= e:
                continue
            address, amount = next((x["address"], int(x["amount"])) for x in t["entries"] if int(x["amount"]) > 0)
            dst = m["dst"]
            left = held.get((address, dst), 0) - expected[dst].get(address, 0)
            cut = min(amount * fraction // PPM, left)
            if cut > 0:
                expected[dst][address] = expected[dst].get(address, 0) + cut
        for entry in slashed_entries(unbonding_entries(before), meta):
            unbonding[entry["address"]] -= entry["amount"] * fraction // PPM
        found = {a: v for (a, bucket), v in legs(tx).items() if bucket == "unbonding"}
        rep.expect("checker slash unbonding cuts", found, clean(unbonding), where)
    cuts = {int(c): {a: int(x) for a, x in by.items()} for c, by in meta["stake_cuts"].items()}
    rep.expect("checker slash stake cuts", cuts, {c: by for c, by in expected.items() if by}, where)
    per_address: dict[str, int] = defaultdict(int)
    for by_address in meta["stake_cuts"].values():
        for address, amount in by_address.items():
            per_address[address] -= int(amount)
    bonded = {a: v for (a, bucket), v in legs(tx).items() if bucket == "bonded"}
    rep.expect("checker slash bonded legs", bonded, clean(per_address), where)


def rebuild_unbonding(txs: list) -> dict[int, dict[str, int]]:
    """What each unbonding maturity should pay, per address, from the
    undelegations and slashes before it: {maturity epoch: {address: uATH}}."""
    entries: list[dict] = []
    out: dict[int, dict[str, int]] = {}
    for tx in txs:
        due = unbonding_step(entries, tx)
        if due is not None:
            out[tx["meta"]["epoch"]] = due
    return out


# --- Rental escrow: funding, charges, early ends, moves and remainders --------------


def check_rental_escrow(rep, api, txs: list) -> dict[int, int]:
    """Each rental's escrow replayed from its postings (``meta.rental``) and
    charges, as billing and the rental services move it: funding and
    top-ups (``rental_escrow``) plus what a replaced rental handed over make
    ``escrow_total``; an early end refunds what is left less the epochs
    still to settle (``(end_epoch - (settled through + 1)) x price``); a
    move hands over what is left less those epochs (a reserved rental at
    most what its replacement needs, the surplus refunded); the last epoch
    returns what is left. Returns the recomputed remainder by posting height."""
    rentals = {r["id"]: r for r in api.all("rentals/")}
    charges: dict[int, list] = defaultdict(list)
    for ch in api.all("rental-charges/"):
        charges[ch["rental"]].append(ch)
    charge_heights = {ch["tx_height"] for rows in charges.values() for ch in rows}
    carried_in = {r["replaces"]: r["id"] for r in rentals.values() if r["replaces"]}
    funded: dict[int, list] = defaultdict(list)  # rental -> [(height, amount)]
    refunds: dict[int, list] = defaultdict(list)  # rental -> [(height, amount, tx)], not a charge's
    for tx in txs:
        meta = tx["meta"] or {}
        if tx["kind"] not in ("rental_escrow", "rental_refund") or "rental" not in meta:
            continue
        if tx["kind"] == "rental_refund" and tx["height"] in charge_heights:
            continue  # a failed epoch's refund: checked with its charge
        r = rentals.get(meta["rental"])
        where = f"rental {meta['rental']} posting #{tx['height']}"
        if r is None:
            rep.diff(f"{where}: no such rental published")
            continue
        got = legs(tx)
        amount = got.get((r["renter"], "escrowed"), 0)
        sign = 1 if tx["kind"] == "rental_escrow" else -1
        expected = {(r["renter"], "escrowed"): sign * abs(amount), (r["renter"], "available"): -sign * abs(amount)}
        rep.expect("rental escrow posting", got, clean(expected), where)
        if tx["kind"] == "rental_escrow":
            funded[r["id"]].append((tx["height"], amount))
        else:
            refunds[r["id"]].append((tx["height"], -amount, tx))
    remainders: dict[int, int] = {}
    for rid, r in rentals.items():
        where = f"rental {rid}"
        came = rentals[r["replaces"]]["carried_out"] if r["replaces"] in rentals else 0
        rep.expect("rental escrow total", int(r["escrow_total"]), sum(a for _, a in funded[rid]) + came, where)
        price = int(r["price_per_epoch"])
        mine = charges[rid]

        def left_before(h: int, rid=rid, came=came, mine=mine, r=r) -> tuple[int, int]:
            """(escrow left, last epoch settled) just before height ``h``."""
            done = [ch for ch in mine if ch["tx_height"] is not None and ch["tx_height"] < h]
            left = sum(a for fh, a in funded[rid] if fh < h) + came - sum(int(ch["charge"]) for ch in done)
            left -= sum(a for rh, a, _ in refunds[rid] if rh < h)
            return left, max((ch["epoch"] for ch in done), default=r["start_epoch"] - 1)

        for h, amount, tx in refunds[rid]:
            meta = tx["meta"]
            left, settled = left_before(h)
            keep = max(0, r["end_epoch"] - (settled + 1)) * price
            if "epochs_unserved" in meta:  # ended early: unserved time back
                rep.expect("early-end refund", amount, left - keep, f"{where} posting #{h}")
            elif "replacement" in meta:  # moved to a cheaper node: the surplus back
                rep.expect(
                    "replacement surplus refund", amount, left - keep - int(r["carried_out"]), f"{where} posting #{h}"
                )
            else:  # its last epoch: what is left of the escrow
                last = [ch for ch in mine if ch["epoch"] <= meta.get("epoch", -1)]
                left = sum(a for fh, a in funded[rid] if fh < h) + came - sum(int(ch["charge"]) for ch in last)
                left -= sum(a for rh, a, _ in refunds[rid] if rh < h)
                rep.expect("escrow remainder", amount, left, f"{where} posting #{h}")
                remainders[h] = left
        new = rentals.get(carried_in.get(rid))
        if r["status"] == "replaced" and new is not None and r["mode"] == "reserved":
            # A reserved rental hands over at most what its replacement
            # needs for its time; with a surplus refunded, exactly that.
            need = int(new["escrow_total"])  # its time at its price (no top-ups when reserved)
            surplus = any("replacement" in tx["meta"] for _, _, tx in refunds[rid])
            carried = int(r["carried_out"])
            rep.expect("replacement hand-over", carried == need if surplus else carried <= need, True, where)
        if r["status"] != "active" and len(mine) == r["end_epoch"] - r["start_epoch"]:
            # Once every billed epoch is charged, nothing stays behind: all
            # escrow was charged, refunded or handed over.
            spent = sum(int(ch["charge"]) for ch in mine) + sum(a for _, a, _ in refunds[rid])
            rep.expect("rental escrow spent", int(r["escrow_total"]), spent + int(r["carried_out"]), where)
    return remainders


# --- Governance: proposal deposits and community-pool spends -------------------------

GOVERNANCE_KINDS = ("deposit", "deposit_refund", "burn", "pool_spend")


def tally_outcome(p: dict) -> tuple[str, bool]:
    """(outcome, deposit refunded) of a tallied proposal, from its final
    tally and the bars it was created with, as governance judges them:
    quorum (votes cast / snapshot power), veto (no-with-veto / cast), then
    threshold (yes / non-abstain, strictly above). The deposit is refunded
    when the quorum was reached and the proposal was not vetoed."""
    yes, no, abstain, veto = (int(p[k]) for k in ("yes", "no", "abstain", "no_with_veto"))
    cast, non_abstain = yes + no + abstain + veto, yes + no + veto
    quorum = cast > 0 and cast * PPM >= p["quorum"] * int(p["snapshot_power"] or 0)
    vetoed = cast > 0 and veto * PPM >= p["veto"] * cast
    if not quorum:
        return "rejected", False
    if vetoed:
        return "vetoed", False
    return ("passed" if yes * PPM > p["threshold"] * non_abstain else "rejected"), True


def holder_power(ledger, address: str, height: int) -> int:
    """A holder's voting power just before ``height``: available, bonded and unbonding."""
    return sum(ledger.balance_before(height, address, b) for b in ("available", "bonded", "unbonding"))


def check_proposals(rep, api, txs: list, ledger) -> None:
    """Every proposal posting, recomputed from the published proposals and
    votes: the deposit (the proposer's, at least ``min_deposit`` in force
    when it was made), the tally (each vote's power from the ledger at the
    snapshot), the deposit's refund or burn from it, and a passed spend's
    payment from the community pool to its recipient."""
    proposals = {p["id"]: p for p in api.all("proposals/")}
    deposits, burn = module_address(api, "gov_deposits"), module_address(api, "burn")
    pool = module_address(api, "community_pool")
    modules = set(_modules.values())
    posted: dict[int, list] = defaultdict(list)
    for tx in txs:
        meta = tx["meta"] or {}
        if tx["kind"] not in GOVERNANCE_KINDS or "proposal" not in meta:
            continue
        where = f"proposal #{meta['proposal']} posting #{tx['height']}"
        p = proposals.get(meta["proposal"])
        if p is None:
            rep.diff(f"{where}: no such proposal published")
            continue
        posted[p["id"]].append(tx["kind"])
        deposit = int(p["deposit"])
        if tx["kind"] == "deposit":
            expected = {(p["proposer"], "available"): -deposit, (deposits, "available"): deposit}
            rep.expect("proposal deposit posting", legs(tx), expected, where)
            rep.expect("proposal deposit height", p["deposit_height"], tx["height"], where)
        elif tx["kind"] == "pool_spend":
            amount = int(p["amount"] or 0)
            expected = {(pool, "available"): -amount, (p["recipient"], "available"): amount}
            rep.expect("community-pool spend posting", legs(tx), expected, where)
            rep.expect("community-pool spend height", p["spend_height"], tx["height"], where)
        else:
            refund = tally_outcome(p)[1] if p["tallied_at"] else None
            to = p["proposer"] if refund else burn
            rep.expect("proposal deposit fate", tx["kind"], "deposit_refund" if refund else "burn", where)
            rep.expect(
                "proposal deposit fate posting",
                legs(tx),
                {(deposits, "available"): -deposit, (to, "available"): deposit},
                where,
            )
            rep.expect("proposal deposit fate height", p["deposit_fate_height"], tx["height"], where)
    votes: dict[int, list] = defaultdict(list)
    for v in api.all("votes/"):
        votes[v["proposal"]].append(v)
    params: dict[int, dict] = {}
    for p in proposals.values():
        where = f"proposal #{p['id']}"
        e = p["created_epoch"]
        if e is None:
            rep.diff(f"{where}: no epoch of creation published")
        else:
            if e not in params:
                params[e] = {x["key"]: x["value"] for x in api.get("parameters/", epoch=e)}
            prm = params[e]
            rep.expect("proposal deposit minimum", int(p["deposit"]) >= prm["min_deposit"], True, where)
            rep.expect(
                "proposal bars",
                [p["quorum"], p["threshold"], p["veto"]],
                [prm["quorum"], prm["threshold"], prm["veto"]],
                where,
            )
        if p["snapshot_power"] is not None:
            # Every holder's available, bonded and unbonding ATH right after
            # the snapshot height; the protocol's own accounts do not vote.
            h = p["snapshot_height"] + 1
            addresses = {a for a, _ in ledger.history if a not in modules}
            power = sum(holder_power(ledger, a, h) for a in addresses)
            rep.expect("proposal snapshot power", int(p["snapshot_power"]), power, where)
            # Each vote's power is its voter's at the snapshot; the tally sums them.
            tally = dict.fromkeys(("yes", "no", "abstain", "no_with_veto"), 0)
            for v in votes.get(p["id"], []):
                rep.expect(
                    "vote power", int(v["power"]), holder_power(ledger, v["voter"], h), f"{where} vote {v['id']}"
                )
                tally[v["choice"]] += int(v["power"])
            if p["tallied_at"]:
                rep.expect("proposal tally", {k: int(p[k]) for k in tally}, tally, where)
        want = ["deposit"]
        if p["tallied_at"]:
            outcome, refund = tally_outcome(p)
            want.append("deposit_refund" if refund else "burn")
            if outcome != "passed":
                rep.expect("proposal outcome", p["status"], outcome, where)
            elif p["kind"] == "spend":
                if p["status"] == "executed":
                    want.append("pool_spend")
                else:
                    # Not paid: only when the pool held less than the spend.
                    held = ledger.balance_before((p["deposit_fate_height"] or 0) + 1, pool, "available")
                    rep.expect("unpaid spend", [p["status"], held < int(p["amount"])], ["failed", True], where)
            else:
                expected = ("passed",) if p["kind"] == "text" else ("executed", "failed")
                rep.expect("proposal outcome", p["status"] in expected, True, where)
        rep.expect("proposal postings", posted.get(p["id"], []), want, where)


# --- Compute challenges (docs/challenges.md): do the opened rows verify? ----------

_MATRIX = b"athr-challenge-matrix-v1"


def _matrix_row(seed: bytes, which: bytes, i: int, n: int) -> list[int]:
    raw = hashlib.shake_128(_MATRIX + seed + which + i.to_bytes(4, "little")).digest((n + 1) // 2)
    out = []
    for byte in raw:
        out += [(byte & 15) - 8, (byte >> 4) - 8]
    return out[:n]


def challenge_verified(c: dict) -> bool | None:
    """Whether the rows a challenge opened are rows of A x B under its root
    (None: it opened none), as the dashboard judged it."""
    if not c.get("root") or not c.get("rows"):
        return None
    n, seed, root = c["n"], bytes.fromhex(c["seed"]), bytes.fromhex(c["root"])
    if len(c["proofs"]) != len(c["rows"]):
        return False
    b = [_matrix_row(seed, b"B", j, n) for j in range(n)]
    for i, proof in zip(c["rows"], c["proofs"], strict=True):
        acc = [0] * n
        for aj, bj in zip(_matrix_row(seed, b"A", i, n), b, strict=True):
            if aj:
                acc = [x + aj * y for x, y in zip(acc, bj, strict=True)]
        h = hashlib.sha256(b"\x00" + b"".join(v.to_bytes(4, "little", signed=True) for v in acc)).digest()
        k = i
        if len(proof) != max(0, (n - 1).bit_length()):
            return False
        for sibling in (bytes.fromhex(x) for x in proof):
            h = hashlib.sha256(b"\x01" + (sibling + h if k & 1 else h + sibling)).digest()
            k //= 2
        if h != root:
            return False
    return True


def with_challenge(r: dict) -> dict:
    """The report with its challenge's outcome, as consensus reads it."""
    c = json.loads(r["payload"]).get("challenge")
    r = dict(r)
    r["challenge_passed"] = c["passed"] if c else None
    r["challenge_verified"] = challenge_verified(c) if c else None
    r["challenge_late"] = bool(c and c["elapsed_ms"] is not None and c["elapsed_ms"] > c["deadline_ms"])
    return r


# --- Consensus ----------------------------------------------------------------------


def contradiction(r: dict) -> bool:
    answered = r["task_ppm"] > 0
    if r["task_ppm"] > r["uptime_ppm"]:
        return True
    if (r["latency_ms"] is not None) != answered or (r["spec_ok"] is not None) != answered:
        return True
    if not answered and (r.get("gpu_name_seen") or r.get("gpu_count_seen")):
        return True
    # A pass its own rows do not support, or claimed after its own deadline.
    return bool(r.get("challenge_passed") and (r.get("challenge_verified") is not True or r.get("challenge_late")))


def verdict(reports: list, quorum: int) -> dict | None:
    if len(reports) < quorum or not reports:
        return None
    lat = [r["latency_ms"] for r in reports if r["latency_ms"] is not None]
    spec = [r["spec_ok"] for r in reports if r["spec_ok"] is not None]
    work = [r["workload_ppm"] for r in reports if r.get("workload_ppm") is not None]
    challenges = [r["challenge_passed"] for r in reports if r.get("challenge_passed") is not None]
    return {
        "challenge_ok": (sum(challenges) * 2 > len(challenges)) if len(challenges) >= quorum else None,
        "uptime_ppm": median_low(r["uptime_ppm"] for r in reports),
        "task_ppm": median_low(r["task_ppm"] for r in reports),
        "latency_ms": median_low(lat) if len(lat) >= quorum else None,
        "spec_ok": (sum(spec) * 2 > len(spec)) if len(spec) >= quorum else None,
        "workload_ppm": median_low(work) if len(work) >= quorum else None,
    }


def is_correct(r: dict, v: dict, up_tol: int, lat_tol: int, noise: int) -> bool:
    if abs(r["uptime_ppm"] - v["uptime_ppm"]) > up_tol:
        return False
    mine = r.get("workload_ppm")
    if mine is not None and v["workload_ppm"] is not None and abs(mine - v["workload_ppm"]) > up_tol:
        return False
    if r["spec_ok"] is not None and v["spec_ok"] is not None and r["spec_ok"] != v["spec_ok"]:
        return False
    mine = r.get("challenge_passed")
    if mine is not None and v["challenge_ok"] is not None and mine != v["challenge_ok"]:
        return False
    if (r["spec_ok"] is None) != (v["spec_ok"] is None):
        return False
    if v["latency_ms"] is not None and r["latency_ms"] is not None:
        diff = abs(r["latency_ms"] - v["latency_ms"])
        return not (diff > noise and diff * PPM > lat_tol * v["latency_ms"])
    return (v["latency_ms"] is None) == (r["latency_ms"] is None)


def split(total: int, weights: dict) -> tuple[dict, int]:
    weight_sum = sum(weights.values())
    if total <= 0 or weight_sum <= 0:
        return {}, total
    amounts = {k: total * w // weight_sum for k, w in weights.items() if w > 0}
    return amounts, total - sum(amounts.values())


# --- The audit ----------------------------------------------------------------------


class Report:
    def __init__(self):
        self.diffs: list[str] = []
        self.counts: dict[str, int] = defaultdict(int)

    def diff(self, message: str) -> None:
        self.diffs.append(message)

    def checked(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def expect(self, what: str, found, expected, where: str) -> None:
        self.checked(what)
        if found != expected:
            self.diff(f"{where}: {what} is {found}, recomputed {expected}")


def audit(base: str, first: int, last: int) -> Report:
    api, rep = Api(base), Report()
    txs = api.all("transactions/")
    ledger = Ledger(txs, rep)
    by_height = ledger.txs
    settlements = {s["epoch"]: s for s in api.all("settlements/", epoch_from=first, epoch_to=last)}
    for e in range(first, last + 1):
        if e not in settlements:
            rep.diff(f"epoch {e}: not settled")
    models = {m["id"]: m for m in api.all("gpu-models/")}
    nodes = {n["id"]: n for n in api.all("nodes/")}
    checkers = {c["id"]: c for c in api.all("checkers/")}
    pauses = api.all("node-pauses/")
    keys = defaultdict(list)
    for k in api.all("checker-keys/"):
        keys[k["checker"]].append(k)
    index = rebuild_index(txs)
    check_payouts(rep, txs, module_address(api, "rewards_pool"))
    check_proposals(rep, api, txs, ledger)
    # Every checker slash, holder by holder (a settlement's, or one made by hand).
    for tx in txs:
        if tx["kind"] == "slash" and "stake_cuts" in (tx["meta"] or {}):
            check_stake_cuts(rep, txs, tx, f"slash #{tx['height']} of checker {tx['meta']['checker']}")
    remainders = check_rental_escrow(rep, api, txs)
    unbonding = rebuild_unbonding(txs)
    periods = defaultdict(dict)
    for p in api.all("reward-periods/", epoch_from=first, epoch_to=last):
        periods[p["checker"]][p["epoch"]] = p
    pool_address = module_address(api, "community_pool")
    reserve_address = module_address(api, "emission_reserve")
    dust_address = module_address(api, "dust")
    rewards_address = module_address(api, "rewards_pool")

    for epoch in sorted(settlements):
        s = settlements[epoch]
        where = f"epoch {epoch}"
        p = {x["key"]: x["value"] for x in api.get("parameters/", epoch=epoch)}
        reports = api.all("reports/", epoch=epoch)
        consensus = {c["node"]: c for c in api.all("consensus/", epoch=epoch)}
        checker_epochs = {c["checker"]: c for c in api.all("checker-epochs/", epoch=epoch)}
        noise_rows = api.get("consensus/epochs/", epoch=epoch)["results"]
        noise = noise_rows[0]["latency_noise_ms"] if noise_rows else LATENCY_NOISE_MS
        assigned = defaultdict(set)
        for a in api.all("assignments/", epoch=epoch):
            assigned[a["node"]].add(a["checker"])
        lines = api.all("settlement-lines/", epoch=epoch)

        # Reports: as signed, by an assigned checker.
        by_node = defaultdict(list)
        for r in reports:
            payload = r["payload"].encode()
            rep.expect(
                "report payload hash", hashlib.sha256(payload).hexdigest(), r["payload_hash"], f"report {r['id']}"
            )
            key = r["public_key"]
            # The key must be one this checker published, registered before the report.
            history = keys.get(r["checker"], [])
            known = {k["public_key"] for k in history if when(k["registered_at"]) <= when(r["submitted_at"])}
            if not history:  # a checker from before keys were kept: its one key
                known.add(checkers[r["checker"]]["public_key"])
            rep.expect("report key registered", key in known, True, f"report {r['id']}")
            ok = bool(key) and ed25519_verify(bytes.fromhex(key), payload, bytes.fromhex(r["signature"]))
            rep.expect("report signature", ok, True, f"report {r['id']}")
            body = json.loads(payload)
            fields = {k: r[k] for k in body if k not in ("node", "challenge")}
            rep.expect("report fields as signed", {k: body[k] for k in fields}, fields, f"report {r['id']}")
            if r["checker"] in assigned.get(r["node"], ()):
                by_node[r["node"]].append(with_challenge(r))

        # Consensus and marks.
        counts = defaultdict(lambda: defaultdict(int))
        for checker_ids in assigned.values():
            for c in checker_ids:
                counts[c]["assigned"] += 1
        sound = {}
        marks = {}
        for node_id, rs in by_node.items():
            sound[node_id] = []
            for r in rs:
                counts[r["checker"]]["delivered"] += 1
                if contradiction(r):
                    marks[r["id"]] = False
                    counts[r["checker"]]["incorrect"] += 1
                    counts[r["checker"]]["contradicting"] += 1
                else:
                    sound[node_id].append(r)
        for node_id, ne in consensus.items():
            rs = sound.get(node_id, [])
            v = verdict(rs, p["report_quorum"])
            node_marks = [None] * len(rs)
            if v is not None:
                node_marks = [is_correct(r, v, p["uptime_tolerance"], p["latency_tolerance"], noise) for r in rs]
                if sum(node_marks) < p["report_quorum"]:
                    v, node_marks = None, [None] * len(rs)
            rep.expect("consensus validity", ne["valid"], v is not None, f"{where} node {node_id}")
            if v is not None:
                # A failed majority of challenges makes the spec false.
                v["spec_ok"] = False if v["challenge_ok"] is False else v["spec_ok"]
                for k in ("uptime_ppm", "task_ppm", "latency_ms", "spec_ok", "workload_ppm", "challenge_ok"):
                    rep.expect(f"consensus {k}", ne.get(k), v[k], f"{where} node {node_id}")
            for r, m in zip(rs, node_marks, strict=True):
                marks[r["id"]] = m
                if m is not None:
                    counts[r["checker"]]["correct" if m else "incorrect"] += 1
        for r in reports:
            if r["id"] in marks:
                rep.expect("report mark", r["correct"], marks[r["id"]], f"report {r['id']}")
        for c, ce in checker_epochs.items():
            for k in ("assigned", "delivered", "correct", "incorrect", "contradicting"):
                rep.expect(f"checker {k}", ce[k], counts[c][k], f"{where} checker {c}")

        # Postings of this epoch's settlement.
        low = settlements[epoch - 1]["ledger_height"] if epoch - 1 in settlements else None
        mine = [
            t for t in by_height.values() if (t["meta"] or {}).get("epoch") == epoch and t["kind"] in SETTLEMENT_KINDS
        ]
        mine = [t for t in mine if t["height"] <= s["ledger_height"] and (low is None or t["height"] > low)]
        line_by_kind = defaultdict(list)
        for line in lines:
            line_by_kind[line["kind"]].append(line)
        # Every posting this settlement made, and those recomputed below:
        # one left over is a difference (nothing is taken on trust).
        made = [
            t
            for t in by_height.values()
            if t["kind"] in SETTLEMENT_KINDS
            and (t["meta"] or {}).get("epoch") in (epoch, epoch + 1)
            and t["height"] <= s["ledger_height"]
            and (t["height"] > low if low is not None else t["meta"]["epoch"] == epoch or t["kind"] == "unbond_mature")
        ]
        recomputed: set[int] = set()

        def posting(what: str, tx: dict | None, expected: dict, at: str = where, done: set = recomputed) -> None:
            """Compare a posting's legs with what they should be, and count it recomputed."""
            rep.expect(what, legs(tx) if tx else None, clean(expected), at)
            if tx:
                done.add(tx["height"])

        # Emission split.
        emission_txs = [t for t in mine if t["kind"] == "emission"]
        first_height = min(
            (t["height"] for t in emission_txs + [t for t in mine if t["kind"] == "reward"]), default=None
        )
        reserve = ledger.balance_before(first_height, reserve_address, "available") if first_height else 0
        emission = min(p["emission_per_epoch"], reserve) if first_height else int(s["emission"])
        provider_pool = emission * p["emission_provider_share"] // PPM
        checker_pool = emission * p["emission_checker_share"] // PPM
        community = emission - provider_pool - checker_pool
        rep.expect("community share", int(s["community_emission"]), community if community > 0 else 0, where)

        # Providers: capacity weight x GPUs x uptime, of the nodes that could earn.
        paused_at = pause_state(pauses, by_height[s["ledger_height"]]["created_at"])
        weights = {}
        for node_id, ne in consensus.items():
            node = nodes[node_id]
            if not ne["valid"] or not ne["uptime_ppm"] or ne["spec_ok"] is False:
                continue
            if ne["status_before"] in ("suspended", "offline") or paused_at.get(node_id, False):
                continue
            weights[node_id] = models[node["gpu_model"]]["capacity_weight"] * node["gpu_count"] * ne["uptime_ppm"]
        amounts, dust = split(provider_pool, weights)
        found = {line["node"]: int(line["amount"]) for line in line_by_kind["provider_reward"]}
        rep.expect("provider rewards", found, {k: v for k, v in amounts.items() if v}, where)
        for line in line_by_kind["provider_reward"]:
            rep.expect("provider reward address", line["account"], nodes[line["node"]]["provider"], where)
        prov_tx = [t for t in emission_txs if t["meta"].get("part") == "providers"]
        if amounts:
            expected = defaultdict(int)
            expected[(reserve_address, "available")] -= provider_pool
            for node_id, a in amounts.items():
                expected[(nodes[node_id]["provider"], "available")] += a
            if dust:
                expected[(dust_address, "available")] += dust
            posting("provider emission posting", prov_tx[0] if prov_tx else None, expected)
        rep.expect("provider emission total", int(s["provider_emission"]), sum(amounts.values()), where)

        # Checkers: by correct reports, through the staking index.
        correct = {c: counts[c]["correct"] for c in counts if counts[c]["correct"] > 0}
        c_amounts, c_dust = split(checker_pool, correct)
        found = {line["checker"]: int(line["amount"]) for line in line_by_kind["checker_reward"]}
        rep.expect("checker rewards", found, {k: v for k, v in c_amounts.items() if v}, where)
        reward_tx = [t for t in mine if t["kind"] == "reward" and "split" in (t["meta"] or {})]
        if c_amounts and not reward_tx:
            rep.diff(f"{where}: checker rewards due but no reward posting")
        if c_amounts and reward_tx:
            split_meta = reward_tx[0]["meta"]["split"]
            rep.expect(
                "checker reward posting",
                {int(k): int(v[0]) for k, v in split_meta.items()},
                {k: v for k, v in c_amounts.items() if v},
                where,
            )
            expected = defaultdict(int)
            expected[(reserve_address, "available")] -= sum(c_amounts.values())
            to_pool = 0
            for cid, (reward, commission) in split_meta.items():
                c = checkers[int(cid)]
                rate = commission_rate_at(api, int(cid), reward_tx[0]["created_at"], c)
                eligible = next((x["eligible_stake"] for x in index[int(cid)] if x["epoch"] == epoch), 0)
                expect_commission = int(reward) * rate // PPM if eligible else int(reward)
                rep.expect("commission", int(commission), expect_commission, f"{where} checker {cid}")
                expected[(c["operator"], "available")] += int(commission)
                to_pool += int(reward) - int(commission)
            if reward_tx:
                got = legs(reward_tx[0])
                pool_and_dust = got.get((rewards_address, "available"), 0) + got.get((dust_address, "available"), 0)
                rep.expect("checker reward pool leg", pool_and_dust, to_pool, where)
                got = {k: v for k, v in got.items() if k[0] not in (rewards_address, dust_address)}
                rep.expect("checker reward posting legs", got, clean(expected), where)
                recomputed.add(reward_tx[0]["height"])
            dust_tx = [t for t in emission_txs if t["meta"].get("part") == "dust"]
            rep.expect(
                "checker rewards remainder",
                sum(-legs(t).get((reserve_address, "available"), 0) for t in dust_tx),
                c_dust,
                where,
            )
            for t in dust_tx:
                posting(
                    "checker rewards remainder posting",
                    t,
                    {(reserve_address, "available"): -c_dust, (dust_address, "available"): c_dust},
                )
        # The community share: from the reserve to the community pool.
        for t in (t for t in emission_txs if t["meta"].get("part") == "community"):
            posting(
                "community share posting",
                t,
                {(reserve_address, "available"): -community, (pool_address, "available"): community},
            )
        for cid, rows in index.items():
            for row in rows:
                if row["epoch"] != epoch:
                    continue
                published = periods[cid].get(epoch)
                if published is None:
                    rep.diff(f"{where} checker {cid}: a distribution with no reward period")
                    continue
                for k in ("reward", "commission", "eligible_stake", "cumulative_ratio"):
                    rep.expect(f"F1 {k}", int(published[k]), row[k], f"{where} checker {cid}")

        # Rentals: each billed epoch, and its posting.
        charges = api.all("rental-charges/", epoch=epoch)
        fees = 0
        for ch in charges:
            at = f"{where} rental {ch['rental']}"
            if ch["outcome"] == "failed":
                rep.expect("refund", ch["refunded"], ch["charge"], at)
                rep.expect("sla credit bound", ch["sla_credit"] <= ch["charge"] * p["sla_credit"] // PPM, True, at)
                tx = by_height.get(ch["tx_height"])
                renter = ch["renter"]
                expected = {(renter, "escrowed"): -ch["charge"], (renter, "available"): ch["charge"] + ch["sla_credit"]}
                if ch["sla_credit"]:
                    expected[(ch["provider"], "collateral")] = -ch["sla_credit"]
                posting("refund posting", tx, expected, at)
                refund_line = [x for x in line_by_kind["rental_refund"] if x["details"]["rental"] == ch["rental"]]
                rep.expect("refund line", [int(x["amount"]) for x in refund_line], [ch["refunded"]], at)
                rep.expect("refund line address", [x["account"] for x in refund_line], [renter], at)
            else:
                fee = ch["charge"] * p["protocol_fee"] // PPM
                rep.expect("protocol fee", ch["fee"], fee, at)
                rep.expect("provider part", ch["provider_amount"], ch["charge"] - fee, at)
                fees += fee
        settle_tx = [t for t in mine if t["kind"] == "rental_settle"]
        rep.expect(
            "protocol fees posted", sum(legs(t).get((pool_address, "available"), 0) for t in settle_tx), fees, where
        )
        # The served epochs' posting: out of each renter's escrow its
        # charges, to each provider its part, to the community pool the fees.
        for t in settle_tx:
            served = [ch for ch in charges if ch["outcome"] != "failed" and ch["tx_height"] == t["height"]]
            expected = defaultdict(int)
            for ch in served:
                expected[(ch["renter"], "escrowed")] -= ch["charge"]
                expected[(ch["provider"], "available")] += ch["provider_amount"]
                expected[(pool_address, "available")] += ch["fee"]
            posting("rental settle posting", t, expected)
        rep.expect("protocol fees", int(s["protocol_fees"]), fees, where)
        # What was left in a finished rental's escrow, back to its renter.
        for line in line_by_kind["escrow_return"]:
            tx = by_height.get(line["details"]["tx_height"])
            recomputed_left = remainders.get(line["details"]["tx_height"])
            rep.expect(
                "escrow return", int(line["amount"]), recomputed_left, f"{where} rental {line['details']['rental']}"
            )
            expected = {
                (line["account"], "escrowed"): -int(line["amount"]),
                (line["account"], "available"): int(line["amount"]),
            }
            posting("escrow return posting", tx, expected)
        refunded = sum(int(x["amount"]) for x in line_by_kind["rental_refund"] + line_by_kind["escrow_return"])
        rep.expect("refunds total", int(s["refunds"]), refunded, where)
        rep.expect(
            "sla credits total",
            int(s["sla_credits"]),
            -sum(int(x["amount"]) for x in line_by_kind["sla_credit"]),
            where,
        )
        for line in line_by_kind["sla_credit"]:
            d = line["details"]
            rep.expect(
                "sla credit",
                -int(line["amount"]),
                min(-int(line["amount"]), d["charge"] * p["sla_credit"] // PPM),
                where,
            )
            rep.expect("sla credit parameter", d["sla_credit_ppm"], p["sla_credit"], where)
            tx = by_height.get(d["tx_height"])
            rep.expect(
                "sla credit posting",
                legs(tx).get((line["account"], "collateral")) if tx else None,
                int(line["amount"]),
                where,
            )
        for line in line_by_kind["downtime_slash"]:
            d, node = line["details"], nodes[line["node"]]
            required = models[node["gpu_model"]]["stake_weight"] * node["gpu_count"] * p["collateral_coefficient"]
            rep.expect("required collateral", d["required_collateral"], required, where)
            cap = required * p["downtime_slash"] // PPM
            rep.expect("downtime slash", -int(line["amount"]), min(cap, -int(line["amount"])), where)
            tx = by_height.get(d["tx_height"])
            expected = {
                (line["account"], "collateral"): int(line["amount"]),
                (pool_address, "available"): -int(line["amount"]),
            }
            posting("downtime slash posting", tx, expected)
        false_spec = defaultdict(int)
        for line in line_by_kind["false_spec_slash"]:
            false_spec[(line["account"], "collateral")] += int(line["amount"])
            false_spec[(pool_address, "available")] -= int(line["amount"])
            node = nodes[line["node"]]
            required = models[node["gpu_model"]]["stake_weight"] * node["gpu_count"] * p["collateral_coefficient"]
            rep.expect(
                "false-spec slash",
                -int(line["amount"]),
                min(-int(line["amount"]), required * p["false_spec_slash"] // PPM),
                where,
            )
            d = line.get("details") or {}
            if "collateral_before" in d:  # lines from before inputs were published have none
                rep.expect("false-spec required collateral", d["required_collateral"], required, where)
                rep.expect("false-spec slash parameter", d["false_spec_slash_ppm"], p["false_spec_slash"], where)
                cut = min(d["collateral_before"], required * p["false_spec_slash"] // PPM)
                rep.expect("false-spec slash from inputs", -int(line["amount"]), cut, where)
        # The epoch's false-spec slashes: one posting, collateral to the community pool.
        downtime = {line["details"]["tx_height"] for line in line_by_kind["downtime_slash"]}
        for t in mine:
            if t["kind"] == "slash" and "checker" not in t["meta"] and t["height"] not in downtime:
                posting("false-spec slash posting", t, false_spec)
        slash_txs = [t for t in mine if t["kind"] == "slash" and "stake_cuts" in (t["meta"] or {})]
        for line in line_by_kind["checker_slash"]:
            tx = next((t for t in slash_txs if t["meta"]["checker"] == line["checker"]), None)
            burned = legs(tx).get((module_address(api, "burn"), "available"), 0) if tx else 0
            rep.expect("checker slash", -int(line["amount"]), burned, f"{where} checker {line['checker']}")
            if tx and burned:
                recomputed.add(tx["height"])
            if tx:
                rep.expect("slash fraction", tx["meta"]["fraction_ppm"], p["misreport_slash"], where)

        # Unbonding that matured at this settlement: every undelegation due.
        due = unbonding.get(epoch + 1, {})
        matured = [
            t for t in by_height.values() if t["kind"] == "unbond_mature" and t["meta"].get("epoch") == epoch + 1
        ]
        got = {e["address"]: int(e["amount"]) for t in matured for e in t["entries"] if e["bucket"] == "available"}
        rep.expect("unbonding matured", got, clean(due), where)
        recomputed.update(t["height"] for t in matured)
        rep.expect("unbonded total", int(s["unbonded"]), sum(due.values()), where)

        rep.expect(
            "settled total emission",
            int(s["emission"]),
            int(s["provider_emission"])
            + int(s["emission_dust"])
            + int(s["checker_emission"])
            + int(s["community_emission"]),
            where,
        )
        for t in made:
            if t["height"] in recomputed:
                rep.checked("settlement postings recomputed")
            else:
                rep.diff(f"{where}: posting #{t['height']} ({t['kind']}) was not recomputed")
        rep.checked("epochs")
    return rep


def clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v}


_modules: dict[str, str] = {}


def module_address(api: Api, module: str) -> str:
    """The protocol's own accounts, from the ledger summary."""
    if not _modules:
        with urllib.request.urlopen(api.base.replace("v1/public/", "ledger/"), timeout=60) as r:
            _modules.update({m["module"]: m["address"] for m in json.load(r)["modules"]})
    return _modules[module]


def pause_state(pauses: list, until: str) -> dict[int, bool]:
    """Each node's paused flag as of ``until`` (the settlement's last posting)."""
    state = {}
    limit = when(until)
    for p in pauses:
        if when(p["created_at"]) <= limit:
            state[p["node"]] = p["paused"]
    return state


_rates: dict[int, list] = {}


def commission_rate_at(api: Api, checker: int, at: str, row: dict) -> int:
    """The commission in force when a distribution was posted (at ``at``):
    the rate the first change made after it replaced, else the current one."""
    if checker not in _rates:
        _rates[checker] = api.all("commission-changes/", checker=checker)
    later = [c for c in _rates[checker] if when(c["created_at"]) > when(at)]
    return later[0]["old_rate"] if later else row["commission_rate"]


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        rep = audit(argv[1], int(argv[2]), int(argv[3]))
    except (urllib.error.URLError, ValueError, KeyError) as exc:
        print(f"cannot audit: {exc!r}", file=sys.stderr)
        return 2
    for what, n in sorted(rep.counts.items()):
        print(f"checked {n:>8}  {what}")
    for d in rep.diffs:
        print("DIFFERENCE", d)
    print(f"{len(rep.diffs)} difference(s)")
    return 1 if rep.diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
