"""Hedge mode, auto-deleveraging, final settlement and the realtime clock through the gateway, with the real
ccxt clients and raw WebSocket clients against a real server subprocess. Expected numbers come from the
engine's own events (admin events route) or by hand."""
from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import requests

ccxt = pytest.importorskip("ccxt")
aiohttp = pytest.importorskip("aiohttp")

from gateway_helpers import SYMBOL, Server, sync_client  # noqa: E402

UNITS = Decimal(10) ** 8


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    assert s.stop() == 0


def engine_position(server, account_id, side="BOTH"):
    return server.admin("GET", "engine/position",
                        params={"account_id": account_id, "symbol": "BTCUSDT", "position_side": side})["position"]


def admin_raw(server, path, body):
    return requests.post(f"{server.rest}/admin/v1/{path}", json=body, timeout=10,
                         headers={"X-Admin-Token": server.ready["admin_token"]})


def listen_key(server, account_id) -> str:
    return requests.post(f"{server.rest}/fapi/v1/listenKey", timeout=10,
                         headers={"X-MBX-APIKEY": server.accounts[account_id]["api_key"]}).json()["listenKey"]


def test_hedge_mode_through_ccxt(server):
    bot, maker = sync_client(server, 1), sync_client(server, 2)
    bot.load_markets()
    assert bot.fetch_position_mode(SYMBOL)["hedged"] is False
    bot.set_position_mode(True, SYMBOL)
    assert bot.fetch_position_mode(SYMBOL)["hedged"] is True
    maker.create_order(SYMBOL, "limit", "sell", 0.1, 50000)
    maker.create_order(SYMBOL, "limit", "buy", 0.2, 49990)
    long_ = bot.create_order(SYMBOL, "market", "buy", 0.1, None, {"positionSide": "LONG"})
    short = bot.create_order(SYMBOL, "market", "sell", 0.05, None, {"positionSide": "SHORT"})
    assert long_["filled"] == 0.1 and short["filled"] == 0.05
    assert long_["info"]["positionSide"] == "LONG" and short["info"]["positionSide"] == "SHORT"
    legs = {p["side"]: p for p in bot.fetch_positions([SYMBOL]) if p["contracts"]}
    assert set(legs) == {"long", "short"}
    assert legs["long"]["contracts"] == 0.1 and legs["short"]["contracts"] == 0.05
    assert legs["long"]["info"]["positionSide"] == "LONG" and legs["short"]["info"]["positionSide"] == "SHORT"
    assert legs["long"]["entryPrice"] == 50000.0 and legs["short"]["entryPrice"] == 49990.0
    el, es = engine_position(server, 1, "LONG"), engine_position(server, 1, "SHORT")
    assert (el["lots"], es["lots"]) == (100, -50)
    assert Decimal(legs["short"]["info"]["unRealizedProfit"]) == Decimal(es["unrealized_pnl_units"]) / UNITS
    # closing part of the long leg (a sell on LONG) leaves the short leg alone
    bot.create_order(SYMBOL, "market", "sell", 0.04, None, {"positionSide": "LONG"})
    assert (engine_position(server, 1, "LONG")["lots"], engine_position(server, 1, "SHORT")["lots"]) == (60, -50)
    legs = {p["side"]: p["contracts"] for p in bot.fetch_positions([SYMBOL]) if p["contracts"]}
    assert legs == {"long": 0.06, "short": 0.05}
    # the realized PnL of that close, by hand: 0.04 × (49,990 − 50,000) = −0.4
    pnl = bot.fapiPrivateGetIncome({"symbol": "BTCUSDT", "incomeType": "REALIZED_PNL"})
    assert Decimal(pnl[-1]["income"]) == Decimal("-0.4")
    with pytest.raises(ccxt.BaseError) as rejected:  # BOTH in hedge mode: -4061
        bot.create_order(SYMBOL, "limit", "buy", 0.01, 40000)
    assert "-4061" in str(rejected.value)
    with pytest.raises(ccxt.BaseError) as rejected:  # leaving hedge mode with open positions: -4068
        bot.set_position_mode(False, SYMBOL)
    assert "-4068" in str(rejected.value)
    assert bot.fetch_position_mode(SYMBOL)["hedged"] is True


def test_adl_end_to_end(server):
    bot, cp, other = sync_client(server, 3), sync_client(server, 4), sync_client(server, 1)
    cp.create_order(SYMBOL, "limit", "sell", 0.6, 50000)  # the counterparty: short 0.6
    bot.set_leverage(50, SYMBOL)
    bot.create_order(SYMBOL, "market", "buy", 0.4)  # account 3 (1,000 USDT): long 0.4 at 20x
    other.create_order(SYMBOL, "market", "buy", 0.2)
    assert engine_position(server, 4)["lots"] == -600

    async def scenario():
        async with aiohttp.ClientSession() as http:
            ws4 = await http.ws_connect(f"{server.ws}/private/ws?listenKey={listen_key(server, 4)}")
            ws3 = await http.ws_connect(f"{server.ws}/ws/{listen_key(server, 3)}")
            since = server.events()[-1]["n"]
            # no bids and an empty insurance fund: nobody can absorb the liquidation, ADL closes it
            crash = server.admin("POST", "crash", {"symbol": "BTCUSDT", "to": "45000", "steps": 5})
            got = {4: [], 3: []}
            for ws, acc in ((ws4, 4), (ws3, 3)):
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except asyncio.TimeoutError:
                        if any(m["e"] == "ACCOUNT_UPDATE" for m in got[acc]):
                            break
                        continue
                    got[acc].append(json.loads(msg.data))
            await ws4.close()
            await ws3.close()
            return since, crash, got

    since, crash, got = asyncio.run(asyncio.wait_for(scenario(), 30))
    events = server.events(since)
    adl = [e for e in events if e["type"] == "ADLFill"]
    assert crash["adl_fills"] == len(adl) == 2 and crash["liquidation_fills"] == 0
    leg = next(e for e in adl if not e["liquidated"])
    gone = next(e for e in adl if e["liquidated"])
    assert (leg["account_id"], leg["counterparty_id"], gone["account_id"]) == (4, 3, 3)
    assert leg["qty_lots"] == 400 and leg["side"] == 1  # the short buys back what the long could not sell
    # the counterparty's stream: the ADL leg as a filled MARKET order marked adl_autoclose, the engine's numbers
    orders = [m["o"] for m in got[4] if m["e"] == "ORDER_TRADE_UPDATE"]
    fills = [o for o in orders if o["x"] == "TRADE"]
    assert len(fills) == 1
    (f,) = fills
    assert f["c"] == "adl_autoclose" and f["o"] == "MARKET" and f["X"] == "FILLED" and f["S"] == "BUY"
    assert Decimal(f["L"]) == Decimal(leg["price_ticks"]) / 10 and Decimal(f["l"]) == Decimal(leg["qty_lots"]) / 1000
    assert f["n"] == "0.00000000" and f["ps"] == "BOTH"
    assert [o["x"] for o in orders if o["i"] == f["i"]] == ["NEW", "TRADE"]
    upd = [m["a"] for m in got[4] if m["e"] == "ACCOUNT_UPDATE"][-1]
    assert upd["P"][0]["pa"] == "-0.200"
    # its position is reduced by the ADL quantity, in the engine and through ccxt
    assert engine_position(server, 4)["lots"] == -600 + leg["qty_lots"] == -200
    (pos,) = [p for p in cp.fetch_positions([SYMBOL]) if p["contracts"]]
    assert pos["side"] == "short" and pos["contracts"] == 0.2
    # forceOrders lists the ADL leg for the counterparty (autoCloseType=ADL), the liquidation for the bot
    rows = cp.fetch_my_liquidations(SYMBOL, params={"autoCloseType": "ADL"})
    assert [(r["info"]["clientOrderId"], Decimal(r["info"]["executedQty"])) for r in rows] == [("adl_autoclose", Decimal("0.4"))]
    assert Decimal(rows[0]["info"]["avgPrice"]) == Decimal(leg["price_ticks"]) / 10
    liq = [o["o"] for o in got[3] if o["e"] == "ORDER_TRADE_UPDATE" and o["o"]["o"] == "LIQUIDATION"]
    assert liq and liq[-1]["X"] == "FILLED" and Decimal(liq[-1]["L"]) == Decimal(gone["price_ticks"]) / 10
    assert engine_position(server, 3) is None


def test_final_settlement_through_ccxt(server):
    a, b = sync_client(server, 1), sync_client(server, 2)
    a.load_markets()
    b.create_order(SYMBOL, "limit", "sell", 0.1, 50000)
    a.create_order(SYMBOL, "market", "buy", 0.1)
    resting = a.create_order(SYMBOL, "limit", "buy", 0.01, 49000)
    since = server.events()[-1]["n"]
    # malformed settle requests: 4xx with a code, nothing changes
    before = server.admin("GET", "state")["state_hash"]
    for body, code in (({"symbol": "NOPE"}, -1121), ({"symbol": "BTCUSDT", "price": "abc"}, -1102),
                       ({"symbol": "BTCUSDT", "price": "52000.05"}, -1102), ({}, -1102),
                       ({"symbol": "BTCUSDT", "price": "-5"}, -1102)):
        r = admin_raw(server, "settle", body)
        assert r.status_code == 400 and r.json()["code"] == code, (body, r.text)
    assert server.admin("GET", "state")["state_hash"] == before
    done = server.admin("POST", "settle", {"symbol": "BTCUSDT", "price": "52000"})
    assert done["price"] == "52000.0" and done["lots"] == 100 and done["settlement_fills"] == 2
    events = server.events(since)
    fills = {e["account_id"]: e for e in events if e["type"] == "SettlementFill"}
    assert set(fills) == {1, 2} and all(e["price_ticks"] == 520000 and not e["bankrupt"] for e in fills.values())
    # the symbol trades no more: -1122 (ccxt: BadRequest), a SETTLING status, inactive market
    with pytest.raises(ccxt.BadRequest) as refused:
        a.create_order(SYMBOL, "limit", "buy", 0.01, 49000)
    assert "-1122" in str(refused.value)
    r = admin_raw(server, "settle", {"symbol": "BTCUSDT"})
    assert r.status_code == 400 and r.json()["code"] == -1122
    r = admin_raw(server, "price", {"symbol": "BTCUSDT", "mark": "50000"})
    assert r.status_code == 400 and r.json()["code"] == -1122
    markets = a.load_markets(True)
    assert markets[SYMBOL]["active"] is False and markets[SYMBOL]["info"]["status"] == "SETTLING"
    # positions closed at 52,000; the resting order expired; realized PnL by hand: ±0.1 × 2,000
    assert [p for p in a.fetch_positions([SYMBOL]) if p["contracts"]] == []
    assert [p for p in b.fetch_positions([SYMBOL]) if p["contracts"]] == []
    assert a.fetch_order(resting["id"], SYMBOL)["status"] in ("expired", "canceled")
    assert a.fetch_open_orders(SYMBOL) == []
    last = a.fetch_my_trades(SYMBOL)[-1]
    assert last["price"] == 52000.0 and last["amount"] == 0.1 and last["side"] == "sell" and last["fee"]["cost"] == 0
    assert Decimal(last["info"]["realizedPnl"]) == Decimal("200")
    pnl_a = a.fapiPrivateGetIncome({"symbol": "BTCUSDT", "incomeType": "REALIZED_PNL"})
    pnl_b = b.fapiPrivateGetIncome({"symbol": "BTCUSDT", "incomeType": "REALIZED_PNL"})
    assert Decimal(pnl_a[-1]["income"]) == 200 and Decimal(pnl_b[-1]["income"]) == -200
    changed = {e["account_id"]: e["realized_pnl_units"] for e in events if e["type"] == "PositionChanged"}
    assert changed == {1: 200 * 10 ** 8, 2: -200 * 10 ** 8}
    assert a.fetch_my_liquidations(SYMBOL) == []  # a settlement is not a liquidation


def test_realtime_clock_moves_the_market_and_settles_funding(tmp_path):
    # speed 9,600: 8 h of simulation (the first funding boundary) in 3 s of wall time
    s = Server(tmp_path, "--clock", "realtime", "--speed", "9600")
    try:
        bot = sync_client(s, 1)
        t0 = time.monotonic()
        marks, book = set(), None
        while time.monotonic() - t0 < 2.5:
            marks.add(requests.get(f"{s.rest}/fapi/v1/premiumIndex", params={"symbol": "BTCUSDT"}, timeout=5).json()["markPrice"])
            book = requests.get(f"{s.rest}/fapi/v1/depth", params={"symbol": "BTCUSDT", "limit": 5}, timeout=5).json()
            if len(marks) >= 3 and book["bids"] and book["asks"]:
                break
            time.sleep(0.1)
        assert len(marks) >= 3, marks  # the price path moves the mark
        assert book["bids"] and book["asks"] and Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])
        state = s.admin("GET", "state")
        assert state["clock"] == "realtime" and state["now_ms"] > state["epoch_ms"]
        buy = bot.create_order(SYMBOL, "market", "buy", 0.01)  # the maker's ask
        assert buy["filled"] == 0.01
        held_since = s.admin("GET", "state")["now_ms"] - state["epoch_ms"]
        interval = 8 * 3600 * 1000
        boundary = state["epoch_ms"] + (held_since // interval + 1) * interval  # the first one after the buy
        income = []
        while time.monotonic() - t0 < 12 and not income:
            time.sleep(0.3)
            income = bot.fetch_funding_history(SYMBOL)
        assert income, "no FUNDING_FEE within 12 s"
        assert boundary <= income[0]["timestamp"] < boundary + interval
        paid = [e for e in s.events() if e["type"] == "FundingPaid" and e["account_id"] == 1]
        assert paid and Decimal(str(income[0]["amount"])) == -Decimal(paid[0]["amount_units"]) / UNITS
        rates = bot.fetch_funding_rate_history(SYMBOL)
        assert boundary in [r["timestamp"] for r in rates]
        assert time.monotonic() - t0 < 15
    finally:
        assert s.stop() == 0
