"""``aethir``: the dashboard from a terminal. Tables for people, ``--json``
for scripts; exit status 1 when the API refuses, with its message."""

import argparse
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from .client import ApiError, Client

UATH = 1_000_000


def config_path() -> Path:
    if os.environ.get("AETHIR_CONFIG"):
        return Path(os.environ["AETHIR_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "aethir" / "config.json"


def load_config() -> dict:
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


def save_config(data: dict) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The token is a credential: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)


def uath(text: str) -> str:
    """ATH as typed ("2.5") -> micro-ATH as the API takes it ("2500000")."""
    value = Decimal(text) * UATH
    if value != value.to_integral_value() or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive amount with at most 6 decimals")
    return str(int(value))


def ath(value) -> str:
    if value in (None, ""):
        return ""
    q, r = divmod(int(value), UATH)
    return f"{q}.{r:06d}".rstrip("0").rstrip(".") + " ATH"


def table(rows: list[dict], columns: list[tuple[str, str]], out) -> None:
    cells = [[str(r.get(key, "") if r.get(key) is not None else "") for key, _ in columns] for r in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells]) for i, (_, title) in enumerate(columns)]
    print("  ".join(t.ljust(w) for (_, t), w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip(), file=out)


def results(page):
    return page["results"] if isinstance(page, dict) and "results" in page else page


# --- commands ---------------------------------------------------------------


def cmd_login(api, args, out):
    probe = Client(args.url or api.url, args.token)
    wallet = probe.get("/api/wallet/")
    save_config({"url": probe.url, "token": args.token})
    return wallet, lambda: print(f"Logged in to {probe.url} as wallet {wallet['account']['address']}.", file=out)


def cmd_wallet(api, args, out):
    w = api.get("/api/wallet/")
    a = w["account"]
    rows = [
        {"bucket": k, "amount": ath(a.get(k))}
        for k in ("available", "bonded", "unbonding", "escrowed", "collateral", "total")
        if k in a
    ]
    return w, lambda: (
        print(f"Address {a['address']}", file=out),
        table(rows, [("bucket", "Bucket"), ("amount", "Amount")], out),
    )


def cmd_gpus(api, args, out):
    params = {
        "gpu": args.gpu,
        "min_vram": args.min_vram,
        "count": args.count,
        "region": args.region,
        "near": args.near,
        "max_price": args.max_price,
        "min_health": args.min_health,
        "availability": args.availability,
        "sort": args.sort,
    }
    nodes = results(api.get("/api/marketplace/nodes/", **params))
    for n in nodes:
        n["price"] = ath(n.get("price_per_gpu_hour"))
    cols = [
        ("id", "ID"),
        ("name", "Name"),
        ("gpu_name", "GPU"),
        ("gpu_count", "GPUs"),
        ("region", "Region"),
        ("price", "Price/GPU-h"),
        ("status", "Status"),
    ]
    return nodes, lambda: table(nodes, cols, out)


def cmd_match(api, args, out):
    body = {
        "gpu_model": args.gpu,
        "gpu_count": args.count,
        "region": args.region,
        "limit": args.limit,
        "preference": args.preference,
        "max_price_per_gpu_hour": args.max_price,
    }
    answer = api.post("/api/marketplace/match/", {k: v for k, v in body.items() if v is not None})
    rows = [
        {
            "rank": c["rank"],
            "node": c["node"]["id"],
            "name": c["node"]["name"],
            "score": c["total_ppm"],
            "cost": ath(c["cost_per_hour"]),
            "why": c["why"],
        }
        for c in answer["candidates"]
    ]
    cols = [
        ("rank", "#"),
        ("node", "Node"),
        ("name", "Name"),
        ("score", "Score ppm"),
        ("cost", "Cost/h"),
        ("why", "Why"),
    ]
    return answer, lambda: table(rows, cols, out)


RENTAL_COLUMNS = [
    ("id", "ID"),
    ("node", "Node"),
    ("node_name", "Name"),
    ("mode", "Mode"),
    ("status", "Status"),
    ("escrow", "Escrow left"),
    ("state", "Workload"),
]


def _rental_row(r):
    return {**r, "escrow": ath(r.get("escrow_left")), "state": (r.get("workload") or {}).get("state", "")}


def cmd_rent(api, args, out):
    body = {
        "node": args.node,
        "mode": args.mode,
        "template": args.template,
        "image": args.image,
        "epochs": args.epochs,
        "hours": args.hours,
        "escrow": args.escrow,
        "auto_replace": args.auto_replace,
    }
    if args.command_line:
        body["command"] = args.command_line
    rental = api.post("/api/marketplace/rentals/", {k: v for k, v in body.items() if v not in (None, "")})
    return rental, lambda: table([_rental_row(rental)], RENTAL_COLUMNS, out)


def cmd_rentals(api, args, out):
    rentals = results(api.get("/api/marketplace/rentals/"))
    return rentals, lambda: table([_rental_row(r) for r in rentals], RENTAL_COLUMNS, out)


def cmd_logs(api, args, out):
    """Print the workload's log; with --follow, keep printing what is new
    until the rental ends."""
    seen = ""
    while True:
        rental = api.get(f"/api/marketplace/rentals/{args.rental}/")
        workload = rental.get("workload") or {}
        text = workload.get("log_tail") or ""
        # The server keeps a tail: print only what follows what was printed.
        new = text[len(seen) :] if text.startswith(seen) else text[_overlap(seen, text) :]
        if new:
            out.write(new if new.endswith("\n") else new + "\n")
            out.flush()
        seen = text
        if not args.follow or rental["status"] != "active" or workload.get("state") in ("exited", "failed", "stopped"):
            return None, None
        time.sleep(args.interval)


def _overlap(seen: str, text: str) -> int:
    """How much of ``text`` was already printed (the end of ``seen``)."""
    for size in range(min(len(seen), len(text)), 0, -1):
        if seen.endswith(text[:size]):
            return size
    return 0


def cmd_end(api, args, out):
    rental = api.post(f"/api/marketplace/rentals/{args.rental}/end/")
    return rental, lambda: print(
        f"Rental {rental['id']} {rental['status']}; refunded {ath(rental.get('refunded'))}.", file=out
    )


def cmd_stake(api, args, out):
    if args.action == "claim":
        answer = api.post("/api/staking/claim/", {"checker": args.checker} if args.checker else {})
    else:
        if args.amount is None:
            raise SystemExit("aethir: stake delegate/undelegate need an amount")
        answer = api.post(f"/api/staking/{args.action}/", {"checker": args.checker, "amount": args.amount})
    return answer, lambda: print(json.dumps(answer, indent=2), file=out)


def cmd_vote(api, args, out):
    answer = api.post(f"/api/governance/proposals/{args.proposal}/vote/", {"choice": args.choice})
    return answer, lambda: print(f"Voted {args.choice} on proposal {args.proposal}.", file=out)


def cmd_export(api, args, out):
    response = api.stream(
        f"/api/developer/exports/{args.kind}/", **{"from": args.start, "to": args.end, "format": args.format}
    )
    target = open(args.output, "wb") if args.output else out.buffer if hasattr(out, "buffer") else None
    with response:
        while chunk := response.read(65536):
            if target is None:
                out.write(chunk.decode())
            else:
                target.write(chunk)
    if args.output:
        target.close()
    return None, None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aethir", description="The Aethir network dashboard from a terminal.")
    p.add_argument("--url", help="dashboard URL (default: saved, or AETHIR_URL)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("login", help="save the dashboard URL and a personal API token")
    s.add_argument("--token", required=True)
    s.set_defaults(func=cmd_login)

    sub.add_parser("wallet", help="your balances").set_defaults(func=cmd_wallet)

    g = sub.add_parser("gpus", help="the GPU catalogue").add_subparsers(dest="gpus_cmd", required=True)
    s = g.add_parser("search", help="search with the marketplace's filters")
    for name in ("gpu", "region", "near", "availability", "sort"):
        s.add_argument(f"--{name}")
    s.add_argument("--min-vram", type=int)
    s.add_argument("--count", type=int)
    s.add_argument("--max-price", help="ATH per GPU-hour")
    s.add_argument("--min-health", type=int, help="percent")
    s.set_defaults(func=cmd_gpus)

    s = sub.add_parser("match", help="ask the scheduler for the best nodes")
    s.add_argument("--gpu")
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--region")
    s.add_argument("--max-price", type=uath, help="ATH per GPU-hour")
    s.add_argument("--preference", default="balanced")
    s.add_argument("--limit", type=int, default=5)
    s.set_defaults(func=cmd_match)

    s = sub.add_parser("rent", help="rent a node")
    s.add_argument("node", type=int)
    s.add_argument("--mode", choices=["on_demand", "reserved"], default="on_demand")
    s.add_argument("--template")
    s.add_argument("--image")
    s.add_argument("--command", dest="command_line", help="what the container runs")
    s.add_argument("--epochs", type=int)
    s.add_argument("--hours", type=int)
    s.add_argument("--escrow", type=uath, help="on-demand: ATH to escrow")
    s.add_argument("--auto-replace", action="store_true")
    s.set_defaults(func=cmd_rent)

    sub.add_parser("rentals", help="your rentals").set_defaults(func=cmd_rentals)

    s = sub.add_parser("logs", help="a rental's container log")
    s.add_argument("rental", type=int)
    s.add_argument("--follow", "-f", action="store_true")
    s.add_argument("--interval", type=float, default=2.0)
    s.set_defaults(func=cmd_logs)

    s = sub.add_parser("end", help="end a rental now (the rest is refunded)")
    s.add_argument("rental", type=int)
    s.set_defaults(func=cmd_end)

    s = sub.add_parser("stake", help="delegate, undelegate or claim rewards")
    s.add_argument("action", choices=["delegate", "undelegate", "claim"])
    s.add_argument("checker", type=int, nargs="?")
    s.add_argument("amount", type=uath, nargs="?", help="ATH")
    s.set_defaults(func=cmd_stake)

    s = sub.add_parser("vote", help="vote on a proposal")
    s.add_argument("proposal", type=int)
    s.add_argument("choice", choices=["yes", "no", "abstain", "no_with_veto"])
    s.set_defaults(func=cmd_vote)

    s = sub.add_parser("export", help="download an export (CSV or JSON)")
    s.add_argument("kind", choices=["wallet", "rentals", "earnings", "delegations", "checker"])
    s.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD")
    s.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD")
    s.add_argument("--format", choices=["csv", "json"], default="csv")
    s.add_argument("--output", "-o")
    s.set_defaults(func=cmd_export)
    return p


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    saved = load_config()
    url = args.url or os.environ.get("AETHIR_URL") or saved.get("url") or "http://127.0.0.1:8000"
    token = os.environ.get("AETHIR_TOKEN") or saved.get("token") or ""
    if args.cmd != "login" and not token:
        print("aethir: not logged in: run `aethir login --token …` (or set AETHIR_TOKEN)", file=sys.stderr)
        return 2
    try:
        data, show = args.func(Client(url, token), args, out)
    except ApiError as exc:
        print(f"aethir: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"aethir: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if show is not None:
        if args.json:
            print(json.dumps(data, indent=2), file=out)
        else:
            show()
    return 0
