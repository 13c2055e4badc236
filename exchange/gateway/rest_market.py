"""Market data (no auth) and the spot / sapi stubs ccxt calls during ``load_markets``."""
from __future__ import annotations

import time

from . import errors, market, wire
from .params import Params, in_window

ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]
PERPETUAL_DELIVERY = 4133404800000


async def ping(gw, p):
    return {}


async def server_time(gw, p):
    return {"serverTime": int(time.time() * 1000)}


SETTLED_STATUS = "SETTLING"  # Binance's status of a delisted perpetual (docs/gateway.md "Final settlement")


def symbol_info(inst, settled: bool = False) -> dict:
    pd, qd = wire.decimals(inst.tick_size), wire.decimals(inst.lot_size)
    return {
        "symbol": inst.symbol, "pair": inst.symbol, "contractType": "PERPETUAL", "deliveryDate": PERPETUAL_DELIVERY,
        "onboardDate": 1569398400000, "status": SETTLED_STATUS if settled else "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": inst.base, "quoteAsset": inst.quote,
        "marginAsset": inst.settle, "pricePrecision": pd, "quantityPrecision": qd, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
        "triggerProtect": "0.0500", "liquidationFee": wire.rate(inst.liquidation_fee_e8), "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": wire.price(inst, inst.min_price_ticks),
             "maxPrice": wire.price(inst, inst.max_price_ticks), "tickSize": wire.price(inst, 1)},
            {"filterType": "LOT_SIZE", "minQty": wire.qty(inst, inst.min_qty_lots), "maxQty": wire.qty(inst, inst.max_qty_lots),
             "stepSize": wire.qty(inst, 1)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": wire.qty(inst, inst.min_qty_lots),
             "maxQty": wire.qty(inst, inst.max_market_qty_lots), "stepSize": wire.qty(inst, 1)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200}, {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": wire.money(inst.min_notional_units).rstrip("0").rstrip(".")},
            {"filterType": "PERCENT_PRICE", "multiplierUp": wire.rate(inst.band_up_e8)[:6],
             "multiplierDown": wire.rate(inst.band_down_e8)[:6], "multiplierDecimal": "4"},
        ],
        "orderTypes": ORDER_TYPES, "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


async def exchange_info(gw, p):
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "futuresType": "U_MARGINED", "rateLimits": [],
            "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [symbol_info(inst, inst.symbol in gw.exchange.settled)
                        for inst in gw.exchange.instruments.values()]}


async def empty_exchange_info(gw, p):
    return {"timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "exchangeFilters": [],
            "symbols": []}


async def empty_list(gw, p):
    return []


async def depth(gw, p: Params):
    symbol = p.symbol()
    limit = p.int("limit", default=500, low=1, high=1000)
    now = gw.records.now_ms()
    return {**gw.depth.snapshot(symbol, limit), "E": now, "T": now}


def _public_trades(gw, p: Params, default_limit=500):
    symbol = p.symbol()
    limit = p.int("limit", default=default_limit, low=1, high=1000)
    return symbol, gw.exchange.instruments[symbol], list(gw.records.public_trades.get(symbol, ())), limit


async def trades(gw, p: Params):
    symbol, inst, rows, limit = _public_trades(gw, p)
    from_id = p.int("fromId", low=0)
    if from_id is not None:
        rows = [t for t in rows if t[0] >= from_id][:limit]
    else:
        rows = rows[-limit:]
    return [{"id": t[0], "price": wire.price(inst, t[1]), "qty": wire.qty(inst, t[2]),
             "quoteQty": wire.money(t[1] * t[2] * inst.k_units), "time": t[3], "isBuyerMaker": t[4]} for t in rows]


async def agg_trades(gw, p: Params):
    symbol, inst, rows, limit = _public_trades(gw, p)
    start, end = p.int("startTime", low=0), p.int("endTime", low=0)
    from_id = p.int("fromId", low=0)
    rows = [t for t in rows if in_window(t[3], start, end) and (from_id is None or t[0] >= from_id)]
    rows = rows[:limit] if (start is not None or from_id is not None) else rows[-limit:]
    return [{"a": t[0], "p": wire.price(inst, t[1]), "q": wire.qty(inst, t[2]), "f": t[0], "l": t[0], "T": t[3],
             "m": t[4]} for t in rows]


async def klines(gw, p: Params):
    symbol = p.symbol("symbol" if "symbol" in p else "pair")
    interval = p.req("interval")
    if interval not in market.INTERVALS_MS:
        raise errors.malformed("interval")
    start, end, limit = p.window(500, 1500)
    return market.klines(gw.records, gw.exchange.instruments[symbol], market.INTERVALS_MS[interval], start, end, limit)


async def ticker_24h(gw, p: Params):
    symbol = p.symbol(required=False)
    if symbol:
        return market.ticker_24h(gw.records, gw.exchange, symbol)
    return [market.ticker_24h(gw.records, gw.exchange, s) for s in gw.exchange.instruments]


def _price_row(gw, s):
    inst = gw.exchange.instruments[s]
    return {"symbol": s, "price": wire.price(inst, gw.exchange.book(s).last_price()), "time": gw.records.now_ms()}


async def ticker_price(gw, p: Params):
    symbol = p.symbol(required=False)
    if symbol:
        return _price_row(gw, symbol)
    return [_price_row(gw, s) for s in gw.exchange.instruments]


def _book_row(gw, s):
    inst = gw.exchange.instruments[s]
    bids, asks = gw.exchange.book(s).depth(1)
    (bp, bq), (ap, aq) = (bids[0][:2] if bids else (0, 0)), (asks[0][:2] if asks else (0, 0))
    return {"symbol": s, "bidPrice": wire.price(inst, bp), "bidQty": wire.qty(inst, bq), "askPrice": wire.price(inst, ap),
            "askQty": wire.qty(inst, aq), "time": gw.records.now_ms(), "lastUpdateId": gw.depth.update_id[s]}


async def book_ticker(gw, p: Params):
    symbol = p.symbol(required=False)
    if symbol:
        return _book_row(gw, symbol)
    return [_book_row(gw, s) for s in gw.exchange.instruments]


async def premium_index(gw, p: Params):
    symbol = p.symbol(required=False)
    if symbol:
        return market.premium_index(gw.records, gw.exchange, symbol)
    return [market.premium_index(gw.records, gw.exchange, s) for s in gw.exchange.instruments]


async def funding_rate(gw, p: Params):
    symbol = p.symbol(required=False)
    start, end, limit = p.window(100, 1000)
    rows = []
    for s in gw.exchange.instruments:
        if symbol is not None and s != symbol:
            continue
        inst = gw.exchange.instruments[s]
        for rec in gw.exchange.funding_history(s):
            t = wire.ms(gw.config.epoch_ms, rec.time_ns)
            if in_window(t, start, end):
                rows.append({"symbol": s, "fundingRate": wire.rate(rec.rate_e8), "fundingTime": t,
                             "markPrice": wire.price(inst, rec.mark_ticks)})
    rows.sort(key=lambda r: r["fundingTime"])
    return rows[:limit] if start is not None else rows[-limit:]


async def funding_info(gw, p: Params):
    hours = gw.exchange.profile.funding_interval_ns // 3_600_000_000_000
    return [{"symbol": s, "adjustedFundingRateCap": "0.03000000", "adjustedFundingRateFloor": "-0.03000000",
             "fundingIntervalHours": hours, "disclaimer": False} for s in gw.exchange.instruments]


async def open_interest(gw, p: Params):
    symbol = p.symbol()
    inst = gw.exchange.instruments[symbol]
    lots = gw.exchange.ledger.long_lots[symbol]
    return {"symbol": symbol, "openInterest": wire.qty(inst, lots), "time": gw.records.now_ms()}
