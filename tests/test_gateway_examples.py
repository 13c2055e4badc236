"""The examples (issue 12, item 8) run end to end against a real ``exchange-sim serve``:

* ``examples/ccxt_bot.py`` (sync ccxt binanceusdm) opens a large long at 50x, the admin API crashes the price,
  and the bot's report says it was liquidated, with the forceOrders quantities the engine filled;
* ``examples/freqtrade/config.json`` + ``gateway.toml``: freqtrade itself is NOT installed or run here; the test
  builds the ccxt ``binance`` client the way freqtrade does (its ``ccxt_config`` merged into the constructor,
  ``defaultType: swap``), checks that no URL is left pointing at binance.com, and makes the calls freqtrade
  makes at startup and on entry against a server started with the example's TOML.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest

ccxt = pytest.importorskip("ccxt")
pytest.importorskip("aiohttp")

from gateway_helpers import BTC_CONFIG, ROOT, Server, accounts_toml  # noqa: E402

EXAMPLES = ROOT / "examples"
DEFAULT_LIKE = BTC_CONFIG + accounts_toml([(1, "100000"), (2, "100000")])


def test_ccxt_bot_is_liquidated(tmp_path):
    server = Server(tmp_path, config=DEFAULT_LIKE)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        run = subprocess.run([sys.executable, str(EXAMPLES / "ccxt_bot.py"), "--ready", str(server.ready_path)],
                             capture_output=True, text=True, timeout=120, env=env)
        events = server.events()
        position = server.admin("GET", "engine/position", params={"account_id": 1, "symbol": "BTCUSDT"})
    finally:
        assert server.stop() == 0
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    assert "LIQUIDATED: yes" in out, out
    # the report's numbers are the engine's
    fills = [e for e in events if e["type"] == "LiquidationFill" and e["account_id"] == 1]
    assert fills and position["position"] is None
    reported = [Decimal(q) for q in re.findall(r"forceOrder: ([0-9.]+) BTC", out)]
    assert sum(reported) == Decimal(sum(e["qty_lots"] for e in fills)) / 1000, (reported, fills)
    assert "position after the crash: 0 BTC" in out
    assert re.search(r"autoclose-\d+", out), out  # the liquidation orders are in the bot's order history


def freqtrade_client(config: dict, rest: str | None = None):
    """ccxt.binance as freqtrade builds it: key/secret + the futures default type, deep-merged with ccxt_config."""
    ex_conf = config["exchange"]
    text = json.dumps(ex_conf["ccxt_config"])
    if rest is not None:
        text = text.replace("http://127.0.0.1:8080", rest)
    merged = {"apiKey": ex_conf["key"], "secret": ex_conf["secret"], "enableRateLimit": True,
              "options": {"defaultType": "swap"}}
    ccxt_conf = json.loads(text)
    merged["options"].update(ccxt_conf.pop("options", {}))
    merged.update(ccxt_conf)
    return getattr(ccxt, ex_conf["name"])(merged)


def test_freqtrade_config_targets_only_the_simulator():
    config = json.loads((EXAMPLES / "freqtrade" / "config.json").read_text())
    assert config["trading_mode"] == "futures" and config["margin_mode"] in ("isolated", "cross")
    assert config["exchange"]["name"] == "binance"
    ex = freqtrade_client(config)
    leaks = {k: v for k, v in ex.urls["api"].items() if isinstance(v, str) and not v.startswith("http://127.0.0.1:8080/")}
    assert leaks == {}, leaks
    import ccxt.pro as ccxtpro
    async_conf = config["exchange"]["ccxt_async_config"]
    pro = ccxtpro.binance({**async_conf, "options": {"defaultType": "swap", **async_conf["options"]}})
    ws = pro.urls["api"]["ws"]
    assert ws["linear"].startswith("ws://127.0.0.1:8080/"), ws["linear"]


def test_freqtrade_calls_against_the_example_server(tmp_path):
    """What freqtrade calls at startup and around an entry, through the client its config builds."""
    config = json.loads((EXAMPLES / "freqtrade" / "config.json").read_text())
    toml = (EXAMPLES / "freqtrade" / "gateway.toml").read_text()
    server = Server(tmp_path, config=toml)
    try:
        ex = freqtrade_client(config, server.rest)
        markets = ex.load_markets()
        for pair in config["exchange"]["pair_whitelist"]:
            assert markets[pair]["swap"] and markets[pair]["linear"]
        assert ex.fapiPrivateGetPositionSideDual()["dualSidePosition"] is False
        assert ex.fapiPrivateGetMultiAssetsMargin()["multiAssetsMargin"] is False
        assert abs(ex.fetch_time() - ex.milliseconds()) < 1500
        tiers = ex.fetch_leverage_tiers(["BTC/USDT:USDT"])
        assert tiers["BTC/USDT:USDT"][0]["maxLeverage"] >= 1
        assert Decimal(str(ex.fetch_balance()["USDT"]["total"])) == Decimal("100000")
        rates = ex.fetch_funding_rates(["BTC/USDT:USDT"])
        assert rates["BTC/USDT:USDT"]["markPrice"] == 50000.0
        # before every entry: margin mode (the second call raises the exact ccxt class freqtrade ignores) + leverage
        ex.set_margin_mode(config["margin_mode"], "BTC/USDT:USDT")
        with pytest.raises(ccxt.MarginModeAlreadySet):
            ex.set_margin_mode(config["margin_mode"], "BTC/USDT:USDT")
        assert ex.set_leverage(3, "BTC/USDT:USDT")["leverage"] == 3
        order = ex.create_order("BTC/USDT:USDT", "limit", "buy", 0.01, 49000)
        assert ex.fetch_order(order["id"], "BTC/USDT:USDT")["status"] == "open"
        assert [o["id"] for o in ex.fetch_open_orders("BTC/USDT:USDT")] == [order["id"]]
        assert ex.cancel_order(order["id"], "BTC/USDT:USDT")["status"] == "canceled"
        assert ex.fetch_positions(["BTC/USDT:USDT"]) is not None
        ex.fetch_ohlcv("BTC/USDT:USDT", "5m", params={"price": "mark"})
        ex.fetch_ledger("USDT")  # income
    finally:
        assert server.stop() == 0
