"""A bot over-leverages, the admin crashes the price, and the bot sees its liquidation through ccxt.pro
``watch_orders`` / ``watch_my_liquidations``, ``fetch_positions`` and forceOrders, with the engine's numbers;
also: async ccxt, market streams (order book sync, trades), per-key isolation and --restore."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

pytest.importorskip("ccxt")
pytest.importorskip("aiohttp")

from gateway_helpers import SYMBOL, Server, async_client, pro_client, sync_client  # noqa: E402


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    assert s.stop() == 0


def test_liquidation_seen_by_the_bot(server):
    bot_sync = sync_client(server, 3)  # 1,000 USDT
    maker = sync_client(server, 2)
    # liquidity for the bot's entry and for the liquidation order
    maker.create_order(SYMBOL, "limit", "sell", 0.5, 50000)
    maker.create_order(SYMBOL, "limit", "buy", 1.0, 47900)

    async def scenario():
        bot = pro_client(server, 3)
        try:
            await bot.load_markets()
            await bot.set_leverage(50, SYMBOL)
            # ccxt.pro 4.5.90 needs watch_balance() before ACCOUNT_UPDATE arrives (docs/gateway.md)
            balance = asyncio.ensure_future(bot.watch_balance())
            liqs = []

            async def watch_liquidations():  # the NEW event (ap 0) comes first, then the CALCULATED fills
                while not any(x["price"] for x in liqs):
                    liqs.extend(await bot.watch_my_liquidations(SYMBOL))
            watcher = asyncio.ensure_future(watch_liquidations())
            orders_seen = []

            async def collect():
                while True:
                    orders_seen.extend(await bot.watch_orders(SYMBOL))
            collector = asyncio.ensure_future(collect())
            await asyncio.sleep(0.5)  # the private stream is connected
            entry = await bot.create_order(SYMBOL, "market", "buy", 0.4)  # 20,000 notional on 1,000: 20x
            assert entry["filled"] == 0.4
            since = server.events()[-1]["n"]
            crash = await asyncio.get_running_loop().run_in_executor(
                None, lambda: server.admin("POST", "crash", {"symbol": "BTCUSDT", "to": "47000", "steps": 5}))
            assert crash["liquidation_fills"] >= 1
            await asyncio.wait_for(watcher, 10)
            await asyncio.sleep(0.3)
            collector.cancel()
            balance.cancel()
            return since, liqs, orders_seen
        finally:
            await bot.close()

    since, liqs, orders_seen = run(scenario())
    engine = [e for e in server.events(since) if e["type"] == "LiquidationFill" and e["account_id"] == 3]
    assert engine, "the engine liquidated account 3"
    # watch_my_liquidations: the engine's fill price and quantity
    filled = [x for x in liqs if x["price"]]
    assert filled[0]["price"] == float(Decimal(engine[0]["price_ticks"]) / 10)
    assert filled[0]["contracts"] == float(Decimal(engine[0]["qty_lots"]) / 1000)
    # watch_orders saw the LIQUIDATION order (o = "LIQUIDATION" in the raw event)
    assert any(o["info"].get("o") == "LIQUIDATION" for o in orders_seen)
    # fetch_positions: nothing left (the engine closed all of it)
    assert server.admin("GET", "engine/position", params={"account_id": 3, "symbol": "BTCUSDT"})["position"] is None
    assert [p for p in bot_sync.fetch_positions([SYMBOL]) if p["contracts"]] == []
    # forceOrders: one row per liquidation order, executedQty and avgPrice from the engine's fills
    rows = bot_sync.fetch_my_liquidations(SYMBOL)
    total = sum(e["qty_lots"] for e in engine)
    assert sum(Decimal(str(r["contracts"])) for r in rows) == Decimal(total) / 1000
    assert {Decimal(str(r["price"])) for r in rows} <= {Decimal(e["price_ticks"]) / 10 for e in engine}
    # the wallet the bot reads is the engine's wallet
    wallet = server.admin("GET", "engine/position", params={"account_id": 3, "symbol": "BTCUSDT"})["wallet_units"]
    assert Decimal(str(bot_sync.fetch_balance()["USDT"]["total"])) == Decimal(wallet) / 10 ** 8


def test_async_client_orders_and_streams(server):
    async def scenario():
        a, pro, other = async_client(server, 1), pro_client(server, 4), pro_client(server, 2)
        try:
            await a.load_markets()
            await pro.load_markets()
            await other.load_markets()
            o = await a.create_order(SYMBOL, "limit", "sell", 0.05, 50500)
            nudges = iter(range(40))

            async def nudged(watch):
                """The watch's next book; while it does not come, move the book with a far bid (not asserted): a
                subscription that lands after a change only hears of the next one."""
                task = asyncio.ensure_future(watch)
                while True:
                    try:
                        return await asyncio.wait_for(asyncio.shield(task), 1)
                    except asyncio.TimeoutError:
                        await other.create_order(SYMBOL, "limit", "buy", 0.001, 40000 - next(nudges))

            # the book is synced from the REST snapshot (which holds the ask) plus the diffs after it; one more
            # update makes sure the stream is live before the diff chain is checked
            book = await nudged(pro.watch_order_book(SYMBOL))
            book = await nudged(pro.watch_order_book(SYMBOL))
            assert book["asks"][0] == [50500.0, 0.05]
            # a second change: the diff chain (U/u/pu) stays consistent with the REST snapshot. The watch waits
            # before the order is sent: the diff may reach the stream before the REST answer (as on Binance), and a
            # watch started after it would only hear of the next change
            watch = asyncio.ensure_future(pro.watch_order_book(SYMBOL))
            await asyncio.sleep(0.2)
            await a.create_order(SYMBOL, "limit", "sell", 0.02, 50400)
            book = await asyncio.wait_for(watch, 10)
            for _ in range(20):
                if book["asks"][0][0] == 50400.0:
                    break
                book = await asyncio.wait_for(pro.watch_order_book(SYMBOL), 10)
            assert book["asks"][:2] == [[50400.0, 0.02], [50500.0, 0.05]]
            # trades stream and isolation: account 2 watching its orders sees none of account 4's
            balances = [asyncio.ensure_future(pro.watch_balance()), asyncio.ensure_future(other.watch_balance())]
            trades_task = asyncio.ensure_future(pro.watch_trades(SYMBOL))
            foreign = asyncio.ensure_future(other.watch_orders(SYMBOL))
            mine = asyncio.ensure_future(pro.watch_orders(SYMBOL))
            await asyncio.sleep(0.5)
            await pro.create_order(SYMBOL, "market", "buy", 0.03)
            trades = await asyncio.wait_for(trades_task, 10)
            assert trades[-1]["price"] == 50400.0 and trades[-1]["amount"] == 0.02 or trades[-1]["price"] == 50500.0
            got = await asyncio.wait_for(mine, 10)
            assert got and all(x["info"]["s"] == "BTCUSDT" for x in got)
            await asyncio.sleep(0.5)
            assert not foreign.done()
            foreign.cancel()
            for b in balances:
                b.cancel()
            assert (await a.fetch_order(o["id"], SYMBOL))["filled"] == 0.01
        finally:
            for ex in (a, pro, other):
                await ex.close()
    run(scenario())


def test_restore_keeps_orders_trades_and_client_ids(tmp_path):
    s = Server(tmp_path)
    try:
        a, b = sync_client(s, 1), sync_client(s, 2)
        resting = a.create_order(SYMBOL, "limit", "buy", 0.01, 49000, {"clientOrderId": "my-bid-1"})
        b.create_order(SYMBOL, "limit", "sell", 0.02, 50100)
        a.create_order(SYMBOL, "market", "buy", 0.02)
        trades_before = a.fetch_my_trades(SYMBOL)
        state_before = s.admin("GET", "state")["state_hash"]
    finally:
        assert s.stop() == 0
    s2 = Server(tmp_path, "--restore", journal=s.journal)
    try:
        assert s2.admin("GET", "state")["state_hash"] == state_before
        a2 = sync_client(s2, 1)
        got = a2.fetch_order(None, SYMBOL, {"origClientOrderId": "my-bid-1"})
        assert got["id"] == resting["id"] and got["clientOrderId"] == "my-bid-1" and got["status"] == "open"
        assert [t["id"] for t in a2.fetch_my_trades(SYMBOL)] == [t["id"] for t in trades_before]
        assert a2.cancel_order(resting["id"], SYMBOL)["status"] == "canceled"
    finally:
        assert s2.stop() == 0


def test_client_ids_are_journal_notes_and_an_old_sidecar_directory_still_restores(tmp_path):
    """Client order ids ride in the engine journal as notes (one sync per batch covers both); a directory of an
    older gateway (a journal without notes + the ``gateway-orders.jsonl`` sidecar) restores with its ids and keeps
    journaling, old ids and new ones side by side."""
    import json

    from exchange.persistence.journal import dump, read_file

    s = Server(tmp_path)
    try:
        a = sync_client(s, 1)
        old = a.create_order(SYMBOL, "limit", "buy", 0.01, 49000, {"clientOrderId": "old-bid"})
        s.admin("POST", "order", {"account_id": 1, "symbol": "BTCUSDT", "side": "BUY", "qty": "0.01",
                                  "price": "48000"})  # no client id: no note row (restored as sim-<order id>)
    finally:
        assert s.stop() == 0
    path = s.journal / "journal"
    contents = read_file(path)
    rows = [row for _, data in contents.notes for row in data["orders"]]
    assert [row[1] for row in rows] == ["old-bid"] and not (s.journal / "gateway-orders.jsonl").exists()
    # rewrite it as an older gateway left it: no notes, the ids in the sidecar
    with open(path, "wb") as f:
        dump(contents.instruments, contents.commands, f, contents.options, contents.profile, contents.liquidation)
    (s.journal / "gateway-orders.jsonl").write_text(
        "".join(json.dumps({"seq": seq, "cid": cid, "algo": algo, "gtd": gtd}) + "\n" for seq, cid, algo, gtd in rows))
    assert read_file(path).notes == []
    for round_ in range(2):
        s2 = Server(tmp_path, "--restore", journal=s.journal)
        try:
            a2 = sync_client(s2, 1)
            assert a2.fetch_order(None, SYMBOL, {"origClientOrderId": "old-bid"})["id"] == old["id"]
            if round_ == 0:
                new = a2.create_order(SYMBOL, "limit", "buy", 0.01, 47000, {"clientOrderId": "new-bid"})
            assert a2.fetch_order(None, SYMBOL, {"origClientOrderId": "new-bid"})["id"] == new["id"]
            assert {o["clientOrderId"] for o in a2.fetch_open_orders(SYMBOL)} >= {"old-bid", "new-bid"}
        finally:
            assert s2.stop() == 0
