"""The gateway's WebSocket streams against a real server subprocess, with raw aiohttp WebSocket clients and
ccxt.pro: MARGIN_CALL (vs the engine's MarginCall), the market streams (vs REST, the engine and hand-computed
values), the depth sync contract (a client rebuilding the book from REST + diffs, and ccxt.pro's
watch_order_book), combined streams and SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, ping/pong, listenKey
keepalive and expiry, and per-key isolation of user events."""
from __future__ import annotations

import asyncio
import json
import random
import time
from decimal import Decimal

import pytest
import requests

pytest.importorskip("ccxt")
aiohttp = pytest.importorskip("aiohttp")

from gateway_helpers import SYMBOL, Server, async_client, pro_client, sync_client  # noqa: E402

UNITS = Decimal(10) ** 8


def run(coro, timeout=50):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    assert s.stop() == 0


def listen_key(server, account_id) -> str:
    r = requests.post(f"{server.rest}/fapi/v1/listenKey", timeout=10,
                      headers={"X-MBX-APIKEY": server.accounts[account_id]["api_key"]})
    assert r.status_code == 200, r.text
    return r.json()["listenKey"]


def put_key(server, account_id, key):
    return requests.put(f"{server.rest}/fapi/v1/listenKey", data={"listenKey": key}, timeout=10,
                        headers={"X-MBX-APIKEY": server.accounts[account_id]["api_key"]})


def rest(server, path, **params):
    r = requests.get(f"{server.rest}{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


class Conn:
    """A raw WebSocket client that keeps every JSON message it receives (a background reader)."""

    def __init__(self, session, ws):
        self.session, self.ws = session, ws
        self.messages: list = []
        self.closed = asyncio.Event()
        self._new = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, url, **kw):
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url, **kw)
        return cls(session, ws)

    async def _read(self):
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self.messages.append(json.loads(msg.data))
                elif msg.type == aiohttp.WSMsgType.PONG:
                    self.messages.append({"__pong__": msg.data})
                self._new.set()
        finally:
            self.closed.set()
            self._new.set()

    async def wait_for(self, pred, timeout=5.0):
        """The first kept message matching ``pred`` (waiting for it)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for m in self.messages[seen:]:
                if pred(m):
                    return m
            seen = len(self.messages)
            if self.closed.is_set():
                raise AssertionError(f"connection closed; got {self.messages[-5:]}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message within {timeout}s; got {self.messages[-5:]}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def request(self, method, params=None, rid=1):
        await self.ws.send_str(json.dumps({"method": method, "params": params or [], "id": rid}))
        return await self.wait_for(lambda m: m.get("id") == rid and ("result" in m or "error" in m))

    async def close(self):
        await self.ws.close()
        self.reader.cancel()
        await self.session.close()


# ==== user stream: MARGIN_CALL and isolation ==============================================================
def test_margin_call_matches_the_engine_and_no_key_sees_another_accounts_events(server):
    bot, maker = sync_client(server, 3), sync_client(server, 2)  # account 3: 1,000 USDT, cross
    maker.create_order(SYMBOL, "limit", "sell", 0.1, 50000)
    bot.set_leverage(20, SYMBOL)
    assert bot.create_order(SYMBOL, "market", "buy", 0.1)["filled"] == 0.1
    pos = server.admin("GET", "engine/position", params={"account_id": 3, "symbol": "BTCUSDT"})
    q, entry = Decimal(pos["position"]["lots"]) / 1000, Decimal(pos["position"]["entry_cost"]) / 10 / pos["position"]["lots"]
    wallet = Decimal(pos["wallet_units"]) / UNITS
    mmr = Decimal(pos["position"]["maintenance_margin_units"]) / Decimal(pos["position"]["notional_units"])
    # the mark where MM / margin balance = 0.9 (between the call level 0.8 and liquidation at 1.0), by hand:
    # mmr·q·P = 0.9·(W + q·(P − E))  =>  P = 0.9·(q·E − W) / (q·(0.9 − mmr))
    target = (Decimal("0.9") * (q * entry - wallet) / (q * (Decimal("0.9") - mmr))).quantize(Decimal("0.1"))
    assert 40000 < target < 41000  # 0.1 BTC from 50,000 on 997.5 USDT

    async def scenario():
        mine = await Conn.open(f"{server.ws}/ws/{listen_key(server, 3)}")
        other = await Conn.open(f"{server.ws}/private/ws?listenKey={listen_key(server, 4)}")
        try:
            since = server.events()[-1]["n"]
            server.admin("POST", "price", {"symbol": "BTCUSDT", "mark": str(target), "index": str(target)})
            call = await mine.wait_for(lambda m: m.get("e") == "MARGIN_CALL")
            # account 4's key: the deposit reaches it, nothing of account 3's did
            server.admin("POST", "deposit", {"account_id": 4, "amount": "1"})
            await other.wait_for(lambda m: m.get("e") == "ACCOUNT_UPDATE")
            await asyncio.sleep(0.2)
            return since, call, list(other.messages)
        finally:
            await mine.close()
            await other.close()

    since, call, other_msgs = run(scenario())
    events = server.events(since)
    engine_calls = [e for e in events if e["type"] == "MarginCall"]
    assert [(e["account_id"], e["symbol"]) for e in engine_calls] == [(3, "")]  # the cross account, once
    assert not [e for e in events if e["type"] == "LiquidationStarted"]
    after = server.admin("GET", "engine/position", params={"account_id": 3, "symbol": "BTCUSDT"})
    (row,) = call["p"]
    assert row["s"] == "BTCUSDT" and row["ps"] == "BOTH" and row["mt"] == "CROSSED" and row["pa"] == "0.100"
    assert Decimal(row["mp"]) == target == Decimal(after["mark_ticks"]) / 10
    assert Decimal(row["up"]) == Decimal(after["position"]["unrealized_pnl_units"]) / UNITS == q * (target - entry)
    assert Decimal(row["mm"]) == Decimal(after["position"]["maintenance_margin_units"]) / UNITS
    assert Decimal(call["cw"]) == Decimal(after["wallet_units"]) / UNITS == wallet
    # the engine's ratio from the streamed numbers: MM / (cross wallet + uPnL), ×10⁸
    ratio = Decimal(row["mm"]) / (Decimal(call["cw"]) + Decimal(row["up"])) * UNITS
    assert abs(ratio - engine_calls[0]["margin_ratio_e8"]) <= 1 and 0.8e8 <= ratio < 1e8
    assert all(m.get("e") == "ACCOUNT_UPDATE" for m in other_msgs) and len(other_msgs) == 1
    assert other_msgs[0]["a"]["B"][0]["wb"] == "100001.00000000"


def test_listen_keys_belong_to_their_account(server):
    key3 = listen_key(server, 3)
    r = put_key(server, 4, key3)  # another account's key cannot be kept alive ...
    assert r.status_code == 400 and r.json()["code"] == -1125
    r = requests.delete(f"{server.rest}/fapi/v1/listenKey", data={"listenKey": key3}, timeout=10,
                        headers={"X-MBX-APIKEY": server.accounts[4]["api_key"]})
    assert r.status_code == 200
    assert put_key(server, 3, key3).json() == {"listenKey": key3}  # ... nor deleted
    r = requests.post(f"{server.rest}/fapi/v1/listenKey", timeout=10)
    assert r.status_code == 401 and r.json()["code"] == -2014

    async def scenario():  # an unknown key: an error message, then the server closes the connection
        c = await Conn.open(f"{server.ws}/ws/not-a-listen-key-{'x' * 40}")
        try:
            await asyncio.wait_for(c.closed.wait(), 5)
            return c.messages
        finally:
            await c.close()
    msgs = run(scenario())
    assert msgs == [{"error": {"code": -1125, "msg": "This listenKey does not exist."}}]


def test_listen_key_keepalive_and_expiry(tmp_path):
    s = Server(tmp_path, "--listen-key-ttl", "1.5")
    try:
        key = listen_key(s, 1)

        async def scenario():
            c = await Conn.open(f"{s.ws}/private/ws/{key}")
            try:
                for _ in range(3):  # 3 × 0.8 s > 1.5 s: alive only because PUT extends it
                    await asyncio.sleep(0.8)
                    assert put_key(s, 1, key).json() == {"listenKey": key}
                s.admin("POST", "deposit", {"account_id": 1, "amount": "5"})
                upd = await c.wait_for(lambda m: m.get("e") == "ACCOUNT_UPDATE")
                t0 = time.monotonic()
                expired = await c.wait_for(lambda m: m.get("e") == "listenKeyExpired", timeout=5)
                waited = time.monotonic() - t0
                await asyncio.wait_for(c.closed.wait(), 5)
                return upd, expired, waited
            finally:
                await c.close()

        upd, expired, waited = run(scenario())
        assert upd["a"]["m"] == "DEPOSIT" and upd["a"]["B"][0]["wb"] == "100005.00000000"
        assert expired["listenKey"] == key and waited < 3
        r = put_key(s, 1, key)
        assert r.status_code == 400 and r.json()["code"] == -1125
        assert listen_key(s, 1) != key  # a new key after expiry
    finally:
        assert s.stop() == 0


# ==== market streams ===================================================================================
STREAMS = ["btcusdt@kline_1m", "btcusdt@ticker", "btcusdt@miniTicker", "btcusdt@bookTicker", "btcusdt@markPrice@1s",
           "btcusdt@aggTrade", "btcusdt@trade", "!markPrice@arr", "!ticker@arr", "!miniTicker@arr", "!bookTicker"]


def test_market_streams_fields_and_values(server):
    maker, taker = sync_client(server, 2), sync_client(server, 4)

    async def scenario():
        c = await Conn.open(f"{server.ws}/stream?streams={'/'.join(STREAMS)}")
        try:
            assert (await c.request("LIST_SUBSCRIPTIONS"))["result"] == sorted(STREAMS)
            maker.create_order(SYMBOL, "limit", "sell", 0.05, 50100)
            maker.create_order(SYMBOL, "limit", "buy", 0.04, 49900)
            await c.wait_for(lambda m: m.get("stream") == "btcusdt@bookTicker" and m["data"]["b"] == "49900.0")
            taker.create_order(SYMBOL, "market", "buy", 0.02)
            taker.create_order(SYMBOL, "market", "sell", 0.01)
            await c.wait_for(lambda m: m.get("stream") == "btcusdt@trade" and m["data"]["p"] == "49900.0")
            await c.wait_for(lambda m: m.get("stream") == "btcusdt@bookTicker" and m["data"]["B"] == "0.030")
            server.admin("POST", "price", {"symbol": "BTCUSDT", "mark": "50050", "index": "50020"})
            await c.wait_for(lambda m: m.get("stream") == "btcusdt@markPrice@1s" and m["data"]["p"] == "50050.0")
            await c.wait_for(lambda m: m.get("stream") == "!markPrice@arr")
            return c.messages
        finally:
            await c.close()

    msgs = run(scenario())
    by = {}
    for m in msgs:
        if "stream" in m:
            by.setdefault(m["stream"], []).append(m["data"])
    # trades: hand values (0.02 bought at 50,100, then 0.01 sold at 49,900) and REST /trades
    rest_trades = rest(server, "/fapi/v1/trades", symbol="BTCUSDT")
    assert [(t["p"], t["q"], t["m"]) for t in by["btcusdt@trade"]] == [("50100.0", "0.020", False), ("49900.0", "0.010", True)]
    assert [t["t"] for t in by["btcusdt@trade"]] == [t["id"] for t in rest_trades[-2:]]
    assert all(t["e"] == "trade" and t["s"] == "BTCUSDT" and t["X"] == "MARKET" for t in by["btcusdt@trade"])
    rest_agg = rest(server, "/fapi/v1/aggTrades", symbol="BTCUSDT")
    assert [(a["a"], a["p"], a["q"], a["m"], a["T"]) for a in by["btcusdt@aggTrade"]] == \
        [(a["a"], a["p"], a["q"], a["m"], a["T"]) for a in rest_agg[-2:]]
    # kline: the last event equals the REST candle: o 50100, h 50100, l 49900, c 49900, v 0.03, n 2
    k = by["btcusdt@kline_1m"][-1]["k"]
    row = rest(server, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m")[-1]
    assert (k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["q"], k["n"]) == \
        (row[0], row[1], row[2], row[3], row[4], row[5], row[7], row[8])
    assert (k["o"], k["h"], k["l"], k["c"], k["v"], k["n"], k["i"], k["s"]) == \
        ("50100.0", "50100.0", "49900.0", "49900.0", "0.030", 2, "1m", "BTCUSDT")
    assert Decimal(k["q"]) == Decimal("0.02") * 50100 + Decimal("0.01") * 49900
    # 24 h ticker and mini ticker vs REST
    t, mini = by["btcusdt@ticker"][-1], by["btcusdt@miniTicker"][-1]
    r24 = rest(server, "/fapi/v1/ticker/24hr", symbol="BTCUSDT")
    assert (t["c"], t["o"], t["h"], t["l"], t["v"], t["q"], t["n"], t["L"]) == \
        (r24["lastPrice"], r24["openPrice"], r24["highPrice"], r24["lowPrice"], r24["volume"], r24["quoteVolume"],
         r24["count"], r24["lastId"]) == ("49900.0", "50100.0", "50100.0", "49900.0", "0.030", t["q"], 2, r24["lastId"])
    assert t["e"] == "24hrTicker" and t["p"] == "-200.0" and Decimal(t["P"]) == Decimal("-0.399")
    assert mini["e"] == "24hrMiniTicker" and {k: mini[k] for k in "cohlvq"} == {k: t[k] for k in "cohlvq"}
    assert by["!ticker@arr"][-1] == [t] and by["!miniTicker@arr"][-1] == [mini]  # the all-market arrays
    assert len(by["!ticker@arr"]) == len(by["btcusdt@ticker"]) == 2  # one per batch with trades
    # bookTicker: the last one is the REST book top, same update id
    bt = by["btcusdt@bookTicker"][-1]
    rb = rest(server, "/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")
    assert (bt["b"], bt["B"], bt["a"], bt["A"], bt["u"]) == \
        (rb["bidPrice"], rb["bidQty"], rb["askPrice"], rb["askQty"], rb["lastUpdateId"]) == \
        ("49900.0", "0.030", "50100.0", "0.030", rb["lastUpdateId"])
    assert by["!bookTicker"] == by["btcusdt@bookTicker"]
    # markPrice: the admin's prices, REST premiumIndex and the engine's rate / next funding time
    mp = by["btcusdt@markPrice@1s"][-1]
    pi = rest(server, "/fapi/v1/premiumIndex", symbol="BTCUSDT")
    assert (mp["p"], mp["i"]) == ("50050.0", "50020.0") == (pi["markPrice"], pi["indexPrice"])
    assert mp["T"] == pi["nextFundingTime"] and mp["e"] == "markPriceUpdate" and mp["s"] == "BTCUSDT"
    state = server.admin("GET", "state")
    assert mp["T"] == state["epoch_ms"] + 8 * 3600 * 1000  # manual clock at t = 0: the 08:00 boundary
    assert by["!markPrice@arr"][-1] == [mp]


# ==== depth: the sync contract ===========================================================================
def _apply(book, levels):
    for p, q in levels:
        if Decimal(q) == 0:
            book.pop(Decimal(p), None)
        else:
            book[Decimal(p)] = Decimal(q)


def test_depth_diffs_rebuild_the_rest_book_after_a_burst(server):
    rng = random.Random(7)

    async def scenario():
        raw = await Conn.open(f"{server.ws}/public/ws/3")
        pro = pro_client(server, 1)
        a, b = async_client(server, 1), async_client(server, 2)
        try:
            await asyncio.gather(pro.load_markets(), a.load_markets(), b.load_markets())
            assert await raw.request("SUBSCRIBE", ["btcusdt@depth@100ms"], rid=7) == {"result": None, "id": 7}
            pro_errors = []

            async def watch():  # ccxt.pro's own sync; a ChecksumError (a broken chain) would land here
                while True:
                    try:
                        await pro.watch_order_book(SYMBOL)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        pro_errors.append(exc)
                        await asyncio.sleep(0.05)
            watcher = asyncio.ensure_future(watch())
            await asyncio.sleep(0.3)
            placed = []

            async def op(i):
                ex = a if i % 2 else b
                kind = rng.random()
                if kind < 0.15 and placed:  # cancel a resting order
                    ex2, oid = placed.pop(rng.randrange(len(placed)))
                    try:
                        await ex2.cancel_order(oid, SYMBOL)
                    except Exception:  # filled meanwhile
                        pass
                elif kind < 0.25:  # take liquidity
                    await ex.create_order(SYMBOL, "market", rng.choice(["buy", "sell"]), 0.001 * rng.randint(1, 30))
                else:
                    side = rng.choice(["buy", "sell"])
                    px = 49990 - 10 * rng.randint(0, 40) if side == "buy" else 50010 + 10 * rng.randint(0, 40)
                    o = await ex.create_order(SYMBOL, "limit", side, 0.001 * rng.randint(1, 20), px)
                    placed.append((ex, o["id"]))

            for i in range(30):
                await op(i)
            async with aiohttp.ClientSession() as http:  # the snapshot mid-burst, as a client takes it
                snap_task = asyncio.ensure_future(http.get(f"{server.rest}/fapi/v1/depth",
                                                           params={"symbol": "BTCUSDT", "limit": "1000"}))
                await asyncio.gather(*(op(i) for i in range(30, 45)))
                snap = await (await snap_task).json()
                for i in range(45, 90):
                    await op(i)
                final = await (await http.get(f"{server.rest}/fapi/v1/depth",
                                              params={"symbol": "BTCUSDT", "limit": "1000"})).json()
            await raw.wait_for(lambda m: m.get("e") == "depthUpdate" and m["u"] == final["lastUpdateId"])
            for _ in range(100):
                book = pro.orderbooks.get(SYMBOL)
                if book is not None and book["nonce"] is not None and book["nonce"] >= final["lastUpdateId"]:
                    break
                await asyncio.sleep(0.05)
            watcher.cancel()
            assert pro_errors == []
            book = {"nonce": book["nonce"], "bids": [list(x) for x in book["bids"][:10]],
                    "asks": [list(x) for x in book["asks"][:10]]}
            return snap, final, [m for m in raw.messages if m.get("e") == "depthUpdate"], book
        finally:
            await raw.close()
            for ex in (pro, a, b):
                await ex.close()

    snap, final, diffs, pro_book = run(scenario())
    assert len(diffs) > 60 and snap["lastUpdateId"] < final["lastUpdateId"]
    # the ids form one chain: each event U == u, pu == previous u (Binance futures rules, research §7.4)
    for prev, cur in zip(diffs, diffs[1:]):
        assert cur["pu"] == prev["u"] and cur["U"] <= cur["u"]
    # the client's algorithm: drop u <= lastUpdateId, first applied U <= lastUpdateId+1 <= u, then pu == prev u
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    applied, last_u = 0, snap["lastUpdateId"]
    for d in diffs:
        if d["u"] <= snap["lastUpdateId"]:
            continue
        if applied == 0:
            assert d["U"] <= snap["lastUpdateId"] + 1 <= d["u"]
        else:
            assert d["pu"] == last_u
        _apply(bids, d["b"])
        _apply(asks, d["a"])
        last_u, applied = d["u"], applied + 1
    assert applied > 20 and last_u == final["lastUpdateId"]
    top = 20
    rebuilt_bids = [[str(p), str(bids[p])] for p in sorted(bids, reverse=True)[:top]]
    rebuilt_asks = [[str(p), str(asks[p])] for p in sorted(asks)[:top]]
    assert rebuilt_bids == final["bids"][:top] and rebuilt_asks == final["asks"][:top]
    assert final["bids"] and final["asks"] and Decimal(final["bids"][0][0]) < Decimal(final["asks"][0][0])
    # ccxt.pro's watch_order_book (its own sync and checksum) ends on the same book
    assert pro_book["nonce"] == final["lastUpdateId"]
    assert pro_book["bids"][:10] == [[float(p), float(q)] for p, q in final["bids"][:10]]
    assert pro_book["asks"][:10] == [[float(p), float(q)] for p, q in final["asks"][:10]]


# ==== control protocol, combined streams, ping/pong ======================================================
def test_subscribe_unsubscribe_list_combined_and_ping(server):
    maker, taker = sync_client(server, 2), sync_client(server, 4)

    async def scenario():
        c = await Conn.open(f"{server.ws}/stream?streams=btcusdt@trade", autoping=False)
        raw = await Conn.open(f"{server.ws}/ws")
        try:
            assert await c.request("LIST_SUBSCRIPTIONS", rid=1) == {"result": ["btcusdt@trade"], "id": 1}
            assert await c.request("SUBSCRIBE", ["btcusdt@bookTicker", "btcusdt@aggTrade"], rid=2) == \
                {"result": None, "id": 2}
            assert (await c.request("LIST_SUBSCRIPTIONS", rid=3))["result"] == \
                ["btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@trade"]
            assert await c.request("UNSUBSCRIBE", ["btcusdt@trade"], rid=4) == {"result": None, "id": 4}
            assert (await c.request("LIST_SUBSCRIPTIONS", rid=5))["result"] == ["btcusdt@aggTrade", "btcusdt@bookTicker"]
            bad = await c.request("SUBSCRIBE", ["nosuch@trade"], rid=6)
            assert bad["error"]["code"] == 2 and bad["id"] == 6
            bad = await c.request("SUBSCRIBE", "btcusdt@trade", rid=8)  # params not a list
            assert bad["error"]["code"] == 2
            await c.ws.send_str("{not json")
            assert (await c.wait_for(lambda m: "error" in m and m.get("id") is None))["error"]["code"] == 3
            assert (await c.request("LIST_SUBSCRIPTIONS", rid=9))["result"] == ["btcusdt@aggTrade", "btcusdt@bookTicker"]
            # the raw /ws connection: SUBSCRIBE there gives unwrapped events
            assert await raw.request("SUBSCRIBE", ["btcusdt@aggTrade"], rid=1) == {"result": None, "id": 1}
            await c.ws.ping(b"are-you-there")
            pong = await c.wait_for(lambda m: "__pong__" in m)
            maker.create_order(SYMBOL, "limit", "sell", 0.01, 50200)
            taker.create_order(SYMBOL, "market", "buy", 0.01)
            agg = await c.wait_for(lambda m: m.get("stream") == "btcusdt@aggTrade")
            raw_agg = await raw.wait_for(lambda m: m.get("e") == "aggTrade")
            await asyncio.sleep(0.3)
            return c.messages, agg, raw_agg, pong
        finally:
            await c.close()
            await raw.close()

    msgs, agg, raw_agg, pong = run(scenario())
    assert pong == {"__pong__": b"are-you-there"}
    assert agg["data"] == raw_agg and raw_agg["p"] == "50200.0" and raw_agg["q"] == "0.010"
    streams = {m.get("stream") for m in msgs if "stream" in m}
    assert streams == {"btcusdt@aggTrade", "btcusdt@bookTicker"}  # nothing on the unsubscribed trade stream
    assert all(set(m) == {"stream", "data"} for m in msgs if "stream" in m)


def test_malformed_ws_and_listen_key_requests_are_4xx(server):
    for method in ("PUT", "DELETE"):
        r = requests.request(method, f"{server.rest}/fapi/v1/listenKey", data={"listenKey": "x" * 64}, timeout=10,
                             headers={"X-MBX-APIKEY": server.accounts[1]["api_key"]})
        assert 400 <= r.status_code < 500 or (method == "DELETE" and r.status_code == 200), r.text
        assert isinstance(r.json(), dict)
    r = requests.patch(f"{server.rest}/fapi/v1/listenKey", timeout=10,
                       headers={"X-MBX-APIKEY": server.accounts[1]["api_key"]})
    assert 400 <= r.status_code < 500 and r.json()["code"] == -1000
    r = requests.get(f"{server.rest}/stream?streams=btcusdt@trade", timeout=10)  # no Upgrade header
    assert 400 <= r.status_code < 500 and r.json()["code"] == -1000
