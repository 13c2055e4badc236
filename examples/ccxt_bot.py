"""A plain ccxt ``binanceusdm`` bot (sync) that over-leverages and gets liquidated by the simulator.

Start the simulator first (default config: BTCUSDT and ETHUSDT, accounts 1 and 2 with 100,000 USDT each)::

    exchange-sim serve --port 0 --ready-file ready.json --journal /tmp/exsim-demo
    python examples/ccxt_bot.py --ready ready.json

or give the URL and keys yourself (also from the environment: EXSIM_URL, EXSIM_API_KEY, EXSIM_SECRET,
EXSIM_ADMIN_TOKEN, EXSIM_MAKER)::

    python examples/ccxt_bot.py --url http://127.0.0.1:8080 --key KEY --secret SECRET --admin-token TOKEN

The bot is ordinary ccxt code; the only simulator-specific lines are ``point_to_sim`` (the URL override and
the one-line error-table merge from docs/gateway.md). The "admin" part of the demo, which a real venue does
not have, uses the simulator's admin API (``/admin/v1/...`` with ``X-Admin-Token``) to give a second account
some liquidity and then to crash the price. Exit code 0 when the bot was liquidated, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import ccxt
import requests

SYMBOL = "BTC/USDT:USDT"
LEVERAGE = 50


def point_to_sim(ex, rest: str, ws: str | None = None):
    """docs/gateway.md: rewrite every API url to the simulator, keep the path; merge the futures error table."""
    api = ex.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str) and "://" in url:
            tail = url.split("://", 1)[1]
            api[key] = rest + "/" + (tail.split("/", 1)[1] if "/" in tail else "")
    if ws and isinstance(api.get("ws"), dict):
        api["ws"]["linear"] = ws + "/ws"
    ex.exceptions["exact"].update(ex.exceptions["linear"]["exact"])  # the one line (error classes)
    return ex


class Admin:
    """The simulator's admin API (not part of Binance)."""

    def __init__(self, rest: str, token: str):
        self.rest, self.token = rest, token

    def __call__(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        r = requests.request(method, f"{self.rest}/admin/v1/{path}", json=body, params=params,
                             headers={"X-Admin-Token": self.token}, timeout=60)
        if r.status_code != 200:
            raise SystemExit(f"admin {path}: {r.status_code} {r.text}")
        return r.json()


def settings(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="ccxt binanceusdm bot liquidated by exchange-sim")
    ap.add_argument("--ready", help="the server's --ready-file (URL, keys, admin token)")
    ap.add_argument("--url", default=os.environ.get("EXSIM_URL"), help="REST base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--key", default=os.environ.get("EXSIM_API_KEY"))
    ap.add_argument("--secret", default=os.environ.get("EXSIM_SECRET"))
    ap.add_argument("--admin-token", default=os.environ.get("EXSIM_ADMIN_TOKEN"))
    ap.add_argument("--account", type=int, default=1, help="with --ready: the bot's account id (default 1)")
    ap.add_argument("--maker", type=int, default=int(os.environ.get("EXSIM_MAKER", "2")),
                    help="account id the admin API quotes liquidity for (default 2)")
    args = ap.parse_args(argv)
    if args.ready:
        ready = json.loads(Path(args.ready).read_text())
        acc = next(a for a in ready["accounts"] if a["account_id"] == args.account)
        args.url, args.key, args.secret = ready["rest"], acc["api_key"], acc["secret"]
        args.admin_token = args.admin_token or ready["admin_token"]
        if args.maker == args.account:
            args.maker = next(a["account_id"] for a in ready["accounts"] if a["account_id"] != args.account)
    missing = [n for n in ("url", "key", "secret", "admin_token") if not getattr(args, n)]
    if missing:
        ap.error(f"missing {', '.join(missing)} (give --ready FILE, or the flags / EXSIM_* variables)")
    return args


def main(argv=None) -> int:
    args = settings(argv)
    admin = Admin(args.url, args.admin_token)

    # ---- an ordinary ccxt bot -------------------------------------------------------------------------
    ex = point_to_sim(ccxt.binanceusdm({
        "apiKey": args.key, "secret": args.secret, "enableRateLimit": False,
        "options": {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}},
    }), args.url)
    ex.load_markets()
    market = ex.market(SYMBOL)
    balance = ex.fetch_balance()["USDT"]
    print(f"bot: {SYMBOL} tick {market['precision']['price']} lot {market['precision']['amount']}; "
          f"wallet {balance['total']:,.2f} USDT, free {balance['free']:,.2f}")
    lev = ex.set_leverage(LEVERAGE, SYMBOL)
    try:
        ex.set_margin_mode("cross", SYMBOL)
    except ccxt.MarginModeAlreadySet:
        pass  # cross is the default; the simulator answers -4046 as Binance does
    mark = float(ex.fetch_ticker(SYMBOL)["last"] or ex.fetch_mark_price(SYMBOL)["markPrice"])
    max_notional = float(lev.get("maxNotionalValue") or 1e18)
    notional = min(balance["free"] * 40, max_notional * 0.8)  # as large as the 50x bracket allows
    amount = float(ex.amount_to_precision(SYMBOL, notional / mark))
    print(f"bot: leverage {lev['leverage']}x cross (max notional {max_notional:,.0f}); "
          f"buying {amount} BTC ≈ {amount * mark:,.0f} USDT at ~{mark:,.1f}")

    # ---- admin: someone to trade with (a real venue has a book; the manual-clock simulator starts empty) ----
    admin("POST", "deposit", {"account_id": args.maker, "amount": str(int(amount * mark * 2))})
    admin("POST", "order", {"account_id": args.maker, "symbol": market["id"], "side": "SELL",
                            "qty": ex.amount_to_precision(SYMBOL, amount), "price": ex.price_to_precision(SYMBOL, mark)})

    entry = ex.create_order(SYMBOL, "market", "buy", amount)
    print(f"bot: entry order {entry['id']} {entry['status']}, filled {entry['filled']} at {entry['average']}")
    pos = [p for p in ex.fetch_positions([SYMBOL]) if p["contracts"]][0]
    print(f"bot: long {pos['contracts']} BTC, entry {pos['entryPrice']}, liquidation price {pos['liquidationPrice']}, "
          f"margin ratio {pos.get('marginRatio')}")
    liq_price = float(pos["liquidationPrice"])

    # ---- admin: bids below the liquidation price, then crash the mark through it ----------------------
    for frac in (0.999, 0.99):
        admin("POST", "order", {"account_id": args.maker, "symbol": market["id"], "side": "BUY",
                                "qty": ex.amount_to_precision(SYMBOL, amount),
                                "price": ex.price_to_precision(SYMBOL, liq_price * frac)})
    target = ex.price_to_precision(SYMBOL, liq_price * 0.98)
    crash = admin("POST", "crash", {"symbol": market["id"], "to": target, "steps": 10, "step_ms": 1000})
    print(f"admin: crashed {market['id']} to {crash['mark']} in 10 steps "
          f"({crash['liquidation_fills']} liquidation fills, {crash['adl_fills']} ADL fills)")
    time.sleep(0.1)

    # ---- what the bot sees, with ordinary ccxt calls ------------------------------------------------
    left = [p for p in ex.fetch_positions([SYMBOL]) if p["contracts"]]
    liquidations = ex.fetch_my_liquidations(SYMBOL)  # GET /fapi/v1/forceOrders
    orders = ex.fetch_orders(SYMBOL)                  # GET /fapi/v1/allOrders
    after = ex.fetch_balance()["USDT"]
    income = ex.fetch_ledger("USDT")                  # GET /fapi/v1/income

    print("\n=== report ===")
    print(f"position after the crash: {left[0]['contracts'] if left else 0} BTC")
    for liq in liquidations:
        print(f"forceOrder: {liq['contracts']} BTC at {liq['price']} (quote {liq['quoteValue']}), "
              f"{liq['datetime']}")
    print("order history:")
    for o in orders:
        print(f"  {o['id']:>6} {o['info'].get('origType', o['type'])!s:12} {o['side']:4} {o['amount']} "
              f"filled {o['filled']} avg {o['average']} {o['status']} {o['clientOrderId']}")
    kinds = {}
    for row in income:
        kind = row["info"]["incomeType"]
        kinds[kind] = kinds.get(kind, 0.0) + float(row["info"]["income"])  # signed, as Binance sends it
    print("income: " + ", ".join(f"{k} {v:,.2f}" for k, v in sorted(kinds.items())))
    print(f"wallet: {balance['total']:,.2f} -> {after['total']:,.2f} USDT "
          f"({after['total'] - balance['total']:+,.2f})")
    liquidated = bool(liquidations) and not left
    print(f"LIQUIDATED: {'yes' if liquidated else 'no'}")
    return 0 if liquidated else 1


if __name__ == "__main__":
    sys.exit(main())
