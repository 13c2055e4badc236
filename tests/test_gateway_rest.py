"""The gateway's REST surface with the real ccxt binanceusdm client (sync), against a real server subprocess."""
from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal

import pytest
import requests

ccxt = pytest.importorskip("ccxt")
pytest.importorskip("aiohttp")

from gateway_helpers import SYMBOL, Server, sync_client  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("gw-rest"))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def maker(server):
    return sync_client(server, 2)


@pytest.fixture(scope="module")
def bot(server):
    ex = sync_client(server, 1)
    ex.load_markets()
    return ex


def test_load_markets_reads_exchange_info(bot):
    m = bot.market(SYMBOL)
    assert m["swap"] and m["linear"] and m["settle"] == "USDT"
    assert m["precision"]["price"] == 0.1 and m["precision"]["amount"] == 0.001
    assert m["limits"]["cost"]["min"] == 5


def test_balance_is_the_deposit(bot, server):
    bal = bot.fetch_balance()
    assert bal["USDT"]["total"] == 100000.0 and bal["USDT"]["free"] == 100000.0
    wallet_units = server.admin("GET", "engine/position", params={"account_id": 1, "symbol": "BTCUSDT"})["wallet_units"]
    assert Decimal(str(bal["USDT"]["total"])) == Decimal(wallet_units) / 10 ** 8


def test_leverage_and_margin_mode(bot):
    assert bot.set_leverage(20, SYMBOL)["leverage"] == 20
    assert bot.set_margin_mode("isolated", SYMBOL)["code"] == 200
    with pytest.raises(ccxt.MarginModeAlreadySet):
        bot.set_margin_mode("isolated", SYMBOL)
    assert bot.set_margin_mode("cross", SYMBOL)["code"] == 200
    with pytest.raises(ccxt.BadRequest):  # leverage beyond the instrument's max: -4028
        bot.fapiPrivatePostLeverage({"symbol": "BTCUSDT", "leverage": 1000})


def test_limit_market_fill_and_positions_match_engine(bot, maker, server):
    ask = maker.create_order(SYMBOL, "limit", "sell", 0.2, 50010)
    assert ask["status"] == "open"
    buy = bot.create_order(SYMBOL, "market", "buy", 0.1)
    assert buy["status"] == "closed" and buy["filled"] == 0.1 and buy["average"] == 50010.0
    engine = server.admin("GET", "engine/position", params={"account_id": 1, "symbol": "BTCUSDT"})["position"]
    pos = [p for p in bot.fetch_positions([SYMBOL]) if p["contracts"]][0]
    assert pos["side"] == "long" and pos["contracts"] == 0.1 == engine["lots"] / 1000
    assert Decimal(pos["info"]["entryPrice"]) * engine["lots"] == Decimal(engine["entry_cost"]) / 10  # ticks of 0.1
    assert Decimal(pos["info"]["unRealizedProfit"]) == Decimal(engine["unrealized_pnl_units"]) / 10 ** 8
    assert Decimal(pos["info"]["maintMargin"]) == Decimal(engine["maintenance_margin_units"]) / 10 ** 8
    trades = bot.fetch_my_trades(SYMBOL)
    # the taker fee by the rule: 0.1 × 50010 × 0.0005
    assert Decimal(str(trades[-1]["fee"]["cost"])) == Decimal("0.1") * 50010 * Decimal("0.0005")
    maker.cancel_order(ask["id"], SYMBOL)


def test_open_interest_is_the_long_lots(bot, server):
    """``GET /fapi/v1/openInterest`` through ccxt: the long lots of the symbol (after the fill above, the bot's
    0.1 long), as the engine's positions count them."""
    engine = server.admin("GET", "engine/position", params={"account_id": 1, "symbol": "BTCUSDT"})["position"]
    assert engine["lots"] > 0
    reply = bot.fapiPublicGetOpenInterest({"symbol": "BTCUSDT"})
    assert Decimal(reply["openInterest"]) == Decimal(engine["lots"]) / 1000  # lot 0.001; the only long


def test_post_only_ioc_fok_semantics(bot, maker):
    ask = maker.create_order(SYMBOL, "limit", "sell", 0.05, 50020)
    with pytest.raises(ccxt.OrderNotFillable):  # -5022 GTX would take
        bot.create_order(SYMBOL, "limit", "buy", 0.01, 50020, {"postOnly": True})
    with pytest.raises(ccxt.OrderNotFillable):  # -5021 FOK not fully fillable
        bot.create_order(SYMBOL, "limit", "buy", 0.2, 50020, {"timeInForce": "FOK"})
    ioc = bot.create_order(SYMBOL, "limit", "buy", 0.2, 50020, {"timeInForce": "IOC"})
    assert ioc["filled"] == 0.05 and ioc["status"] == "expired"
    assert maker.fetch_order(ask["id"], SYMBOL)["status"] == "closed"


def test_conditional_orders_through_algo_api(bot, server):
    stop = bot.create_order(SYMBOL, "market", "sell", 0.05, None, {"stopLossPrice": 45000, "reduceOnly": True, "workingType": "MARK_PRICE"})
    tp = bot.create_order(SYMBOL, "market", "sell", 0.05, None, {"takeProfitPrice": 60000, "reduceOnly": True})
    stop_limit = bot.create_order(SYMBOL, "limit", "sell", 0.01, 44000, {"triggerPrice": 44500})
    trail = bot.create_order(SYMBOL, "market", "sell", 0.05, None, {"trailingPercent": 1.0, "reduceOnly": True})
    assert stop["type"] == "market" and stop["triggerPrice"] == 45000
    assert stop_limit["type"] == "limit" and stop_limit["price"] == 44000
    ids = {o["id"] for o in bot.fetch_open_orders(SYMBOL, params={"trigger": True})}
    assert {stop["id"], tp["id"], stop_limit["id"], trail["id"]} <= ids
    assert bot.fetch_order(stop["id"], SYMBOL, {"trigger": True})["status"] == "open"
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # -2021: a sell stop above the price fires at once
        bot.create_order(SYMBOL, "market", "sell", 0.01, None, {"stopLossPrice": 55000, "reduceOnly": True})
    for o in (tp, stop_limit, trail):
        bot.cancel_order(o["id"], SYMBOL, {"trigger": True})
    assert bot.fetch_order(tp["id"], SYMBOL, {"trigger": True})["status"] == "canceled"
    # the stop fires when the mark crosses it; the fill is the engine's (a bid at 44900 takes it)
    server.admin("POST", "order", {"account_id": 4, "symbol": "BTCUSDT", "side": "BUY", "qty": "0.05", "price": "44900"})
    server.admin("POST", "price", {"symbol": "BTCUSDT", "mark": "44990", "index": "44990"})
    fired = bot.fetch_order(stop["id"], SYMBOL, {"trigger": True})
    assert fired["status"] == "closed" and fired["info"]["actualOrderId"] == str(stop["id"])
    child = bot.fetch_order(fired["info"]["actualOrderId"], SYMBOL)
    assert child["status"] == "closed" and child["filled"] == 0.05 and child["average"] == 44900.0
    server.admin("POST", "price", {"symbol": "BTCUSDT", "mark": "50000", "index": "50000"})


def test_edit_and_cancel(bot):
    o = bot.create_order(SYMBOL, "limit", "buy", 0.01, 40000)
    e = bot.edit_order(o["id"], SYMBOL, "limit", "buy", 0.02, 40100)
    assert e["price"] == 40100 and e["amount"] == 0.02 and e["status"] == "open"
    assert bot.cancel_order(o["id"], SYMBOL)["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):  # -2011: cancel of a closed order
        bot.cancel_order(o["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):
        bot.fetch_order(123456789, SYMBOL)
    bot.create_order(SYMBOL, "limit", "buy", 0.01, 40000)
    bot.cancel_all_orders(SYMBOL)
    assert bot.fetch_open_orders(SYMBOL) == []


def test_reject_codes_surface_as_ccxt_exceptions(server):
    small = sync_client(server, 3)  # 1,000 USDT
    with pytest.raises(ccxt.InsufficientFunds):  # -2019
        small.create_order(SYMBOL, "limit", "buy", 1, 49000)
    with pytest.raises(ccxt.InvalidOrder):  # -2022: reduce-only with no position
        small.create_order(SYMBOL, "market", "sell", 0.01, None, {"reduceOnly": True})
    with pytest.raises(ccxt.InvalidOrder):  # -4164 min notional (0.001 × 1000 < 5)
        small.create_order(SYMBOL, "limit", "buy", 0.001, 1000)
    bad = sync_client(server, 3)
    bad.apiKey = "nope"
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()
    bad = sync_client(server, 3)
    bad.secret = "wrong"
    with pytest.raises(ccxt.AuthenticationError):
        bad.fetch_balance()


def _signed(server, account_id, method, path, params: str, ts=None, secret=None, key=None):
    a = server.accounts[account_id]
    payload = f"{params}&timestamp={ts if ts is not None else int(time.time() * 1000)}".lstrip("&")
    sig = hmac.new((secret or a["secret"]).encode(), payload.encode(), hashlib.sha256).hexdigest()
    body = f"{payload}&signature={sig}"
    headers = {"X-MBX-APIKEY": key or a["api_key"], "Content-Type": "application/x-www-form-urlencoded"}
    if method == "GET":
        return requests.get(f"{server.rest}{path}?{body}", headers=headers, timeout=10), body
    return requests.request(method, f"{server.rest}{path}", data=body, headers=headers, timeout=10), body


def test_signing_rules(server):
    r, _ = _signed(server, 3, "GET", "/fapi/v3/account", "", ts=int(time.time() * 1000) - 60_000)
    assert r.status_code == 400 and r.json()["code"] == -1021
    r, _ = _signed(server, 3, "GET", "/fapi/v3/account", "", secret="x")
    assert r.json()["code"] == -1022
    r, _ = _signed(server, 3, "GET", "/fapi/v3/account", "", key="unknown")
    assert r.status_code == 401 and r.json()["code"] == -2015
    r = requests.get(f"{server.rest}/fapi/v3/account", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == -2014
    r, body = _signed(server, 3, "POST", "/fapi/v1/leverage", "symbol=BTCUSDT&leverage=7")
    assert r.status_code == 200 and r.json()["leverage"] == 7
    replay = requests.post(f"{server.rest}/fapi/v1/leverage", data=body, timeout=10,
                           headers={"X-MBX-APIKEY": server.accounts[3]["api_key"],
                                    "Content-Type": "application/x-www-form-urlencoded"})
    assert replay.status_code == 400 and replay.json()["code"] == -1022


@pytest.mark.parametrize("params", [
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=abc&price=50000&timeInForce=GTC",
    "symbol=NOPE&side=BUY&type=LIMIT&quantity=0.01&price=50000",
    "symbol=BTCUSDT&side=UP&type=LIMIT&quantity=0.01&price=50000",
    "symbol=BTCUSDT&side=BUY&type=WHAT&quantity=0.01&price=50000",
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.0001&price=50000",
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01&price=50000.05",
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=0.01",
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1e400&price=1",
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=-1&price=50000",
    "symbol=BTCUSDT&side=BUY&type=TRAILING_STOP_MARKET&quantity=0.01&callbackRate=nan",
])
def test_malformed_orders_are_4xx_with_a_code_and_change_nothing(server, params):
    before = server.admin("GET", "state")["state_hash"]
    r, _ = _signed(server, 4, "POST", "/fapi/v1/order", params)
    assert 400 <= r.status_code < 500 and isinstance(r.json()["code"], int) and r.json()["code"] < 0
    assert server.admin("GET", "state")["state_hash"] == before


def test_unknown_path_is_a_binance_error(server):
    r = requests.get(f"{server.rest}/fapi/v1/somethingElse", timeout=10)
    assert r.status_code == 404 and r.json()["code"] == -1000
    assert requests.get(f"{server.rest}/sapi/v1/capital/config/getall", timeout=10).json() == []


def test_funding_income_after_an_admin_advanced_interval(server):
    a, b = sync_client(server, 4), sync_client(server, 2)
    a.create_order(SYMBOL, "limit", "sell", 0.1, 50000)
    b.create_order(SYMBOL, "market", "buy", 0.1)
    since = server.events()[-1]["n"]
    # a premium: the mark above the index -> positive rate, longs pay
    server.admin("POST", "price", {"symbol": "BTCUSDT", "index": "49000", "mark": "50000"})
    server.admin("POST", "advance", {"to": "next_funding"})
    paid = [e for e in server.events(since) if e["type"] == "FundingPaid" and e["account_id"] == 4]
    assert paid, "the engine settled funding for account 4"
    income = a.fetch_funding_history(SYMBOL)
    assert income and Decimal(str(income[-1]["amount"])) == -Decimal(paid[-1]["amount_units"]) / 10 ** 8
    rate = a.fetch_funding_rate_history(SYMBOL)
    assert rate and rate[-1]["fundingRate"] is not None
