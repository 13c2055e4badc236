"""Market data derived from the engine: per-symbol depth update ids and diffs, candles, 24 h tickers.

One update id per symbol is shared by REST ``lastUpdateId`` and the WebSocket diffs: each diff event consumes
exactly one id (``U == u``) and carries ``pu`` = the previous event's ``u``, so a client that applies the REST
snapshot then the diffs after it never sees a gap.
"""
from __future__ import annotations

from . import wire

INTERVALS_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
                "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000}
DEPTH_LEVELS = 5000


class Depth:
    def __init__(self, exchange):
        self.ex = exchange
        self.update_id = {s: 1 for s in exchange.instruments}
        self.levels = {s: self._levels(s) for s in exchange.instruments}
        self.top = {s: self._top(s) for s in exchange.instruments}

    def _levels(self, symbol):
        bids, asks = self.ex.book(symbol).depth(DEPTH_LEVELS)
        return {p: q for p, q, _ in bids}, {p: q for p, q, _ in asks}

    def _top(self, symbol):
        bids, asks = self.ex.book(symbol).depth(1)
        return (bids[0][:2] if bids else (0, 0)), (asks[0][:2] if asks else (0, 0))

    def diff(self, symbol, messages: bool = True):
        """(event or None, bookTicker or None) after a batch that may have changed the book of ``symbol``.

        ``messages=False`` (nobody streams the symbol): the update id moves on (the book may have changed) but
        the levels, O(levels) to read, are not read: they are marked stale until :meth:`follow`. Otherwise every
        diff is exact (``U == u``, ``pu`` = the previous ``u``)."""
        inst = self.ex.instruments[symbol]
        event = ticker = None
        old = self.levels[symbol]
        if not messages or old is None:  # (stale with messages only if nobody called follow: read, no diff)
            self.levels[symbol] = self._levels(symbol) if messages else None
            self.update_id[symbol] += 1
        else:
            old_b, old_a = old
            new_b, new_a = self._levels(symbol)
            bids = [p for p in sorted(old_b.keys() | new_b.keys(), reverse=True) if old_b.get(p) != new_b.get(p)]
            asks = [p for p in sorted(old_a.keys() | new_a.keys()) if old_a.get(p) != new_a.get(p)]
            self.levels[symbol] = (new_b, new_a)
            if bids or asks:
                pu = self.update_id[symbol]
                self.update_id[symbol] = u = pu + 1
                event = {"e": "depthUpdate", "s": symbol, "U": u, "u": u, "pu": pu,
                         "b": [[wire.price(inst, p), wire.qty(inst, new_b.get(p, 0))] for p in bids],
                         "a": [[wire.price(inst, p), wire.qty(inst, new_a.get(p, 0))] for p in asks]}
        top = self._top(symbol)
        if top != self.top[symbol]:
            self.top[symbol] = top
            (bp, bq), (ap, aq) = top
            if messages:
                ticker = {"e": "bookTicker", "u": self.update_id[symbol], "s": symbol, "b": wire.price(inst, bp),
                          "B": wire.qty(inst, bq), "a": wire.price(inst, ap), "A": wire.qty(inst, aq)}
        return event, ticker

    def follow(self, symbol) -> None:
        """Someone starts streaming ``symbol``: stale levels are read now and the id moves on, so a REST snapshot
        taken from now on is where the next diff starts (``pu`` = its ``lastUpdateId``), and an older one sees a
        gap (Binance's sync algorithm: take a new snapshot)."""
        if self.levels[symbol] is None:
            self.levels[symbol] = self._levels(symbol)
            self.update_id[symbol] += 1

    def snapshot(self, symbol, limit):
        inst = self.ex.instruments[symbol]
        bids, asks = self.ex.book(symbol).depth(limit)
        return {"lastUpdateId": self.update_id[symbol],
                "bids": [[wire.price(inst, p), wire.qty(inst, q)] for p, q, _ in bids],
                "asks": [[wire.price(inst, p), wire.qty(inst, q)] for p, q, _ in asks]}

    def partial(self, symbol, levels):
        snap = self.snapshot(symbol, levels)
        return {"e": "depthUpdate", "s": symbol, "U": snap["lastUpdateId"], "u": snap["lastUpdateId"],
                "pu": snap["lastUpdateId"] - 1, "b": snap["bids"], "a": snap["asks"]}


def klines(records, inst, interval_ms: int, start=None, end=None, limit=500) -> list:
    """Candles of ``interval_ms`` built from the 1-minute trade candles (Binance array rows)."""
    buckets: dict[int, list] = {}
    for minute, c in sorted(records.candles.get(inst.symbol, {}).items()):
        t = minute - minute % interval_ms
        b = buckets.get(t)
        if b is None:
            buckets[t] = list(c)
        else:
            b[1], b[2], b[3] = max(b[1], c[1]), min(b[2], c[2]), c[3]
            for i in (4, 5, 6, 7, 8):
                b[i] += c[i]
    rows = []
    for t, c in sorted(buckets.items()):
        if start is not None and t + interval_ms <= start or end is not None and t > end:
            continue
        rows.append(kline_row(inst, t, interval_ms, c))
    return rows[-limit:] if start is None else rows[:limit]


def kline_row(inst, t, interval_ms, c) -> list:
    return [t, wire.price(inst, c[0]), wire.price(inst, c[1]), wire.price(inst, c[2]), wire.price(inst, c[3]),
            wire.qty(inst, c[4]), t + interval_ms - 1, wire.money(c[5] * inst.k_units), c[6], wire.qty(inst, c[7]),
            wire.money(c[8] * inst.k_units), "0"]


def kline_event(records, inst, interval: str, now: int) -> dict | None:
    ms = INTERVALS_MS[interval]
    rows = klines(records, inst, ms, start=now - now % ms, limit=1)
    if not rows:
        return None
    r = rows[0]
    return {"e": "kline", "E": now, "s": inst.symbol, "k": {
        "t": r[0], "T": r[6], "s": inst.symbol, "i": interval, "f": 0, "L": 0, "o": r[1], "c": r[4], "h": r[2],
        "l": r[3], "v": r[5], "n": r[8], "x": False, "q": r[7], "V": r[9], "Q": r[10], "B": "0"}}


def ticker_24h(records, ex, symbol: str) -> dict:
    inst = ex.instruments[symbol]
    now = records.now_ms()
    trades = [t for t in records.public_trades.get(symbol, ()) if t[3] > now - 86_400_000]
    last = ex.book(symbol).last_price()
    if trades:
        o, h, l = trades[0][1], max(t[1] for t in trades), min(t[1] for t in trades)
        vol = sum(t[2] for t in trades)
        quote = sum(t[1] * t[2] for t in trades)
        first, last_id, count = trades[0][0], trades[-1][0], len(trades)
        last_qty = trades[-1][2]
    else:
        o = h = l = last
        vol = quote = count = last_qty = 0
        first = last_id = 0
    change = last - o
    pct = f"{(change / o * 100):.3f}" if o else "0.000"
    wavg = wire.price_exact(inst, __import__("fractions").Fraction(quote, vol)) if vol else wire.price(inst, last)
    return {"symbol": symbol, "priceChange": wire.price(inst, change) if change >= 0 else "-" + wire.price(inst, -change),
            "priceChangePercent": pct, "weightedAvgPrice": wavg, "lastPrice": wire.price(inst, last),
            "lastQty": wire.qty(inst, last_qty), "openPrice": wire.price(inst, o), "highPrice": wire.price(inst, h),
            "lowPrice": wire.price(inst, l), "volume": wire.qty(inst, vol), "quoteVolume": wire.money(quote * inst.k_units),
            "openTime": now - 86_400_000, "closeTime": now, "firstId": first, "lastId": last_id, "count": count}


def ticker_event(t: dict, now: int) -> dict:
    return {"e": "24hrTicker", "E": now, "s": t["symbol"], "p": t["priceChange"], "P": t["priceChangePercent"],
            "w": t["weightedAvgPrice"], "c": t["lastPrice"], "Q": t["lastQty"], "o": t["openPrice"], "h": t["highPrice"],
            "l": t["lowPrice"], "v": t["volume"], "q": t["quoteVolume"], "O": t["openTime"], "C": t["closeTime"],
            "F": t["firstId"], "L": t["lastId"], "n": t["count"]}


def premium_index(records, ex, symbol: str) -> dict:
    inst = ex.instruments[symbol]
    now = records.now_ms()
    return {"symbol": symbol, "markPrice": wire.price(inst, ex.mark_price(symbol) or ex.risk_price(symbol)),
            "indexPrice": wire.price(inst, ex.index_price(symbol)),
            "estimatedSettlePrice": wire.price(inst, ex.index_price(symbol)),
            "lastFundingRate": wire.rate(ex.funding_rate_e8(symbol)),
            "interestRate": wire.rate(inst.funding.interest_e8) if hasattr(inst.funding, "interest_e8") else "0.00010000",
            "nextFundingTime": wire.ms(records.epoch_ms, ex.next_funding_time_ns()), "time": now}


def mark_event(records, ex, symbol: str) -> dict:
    p = premium_index(records, ex, symbol)
    return {"e": "markPriceUpdate", "E": p["time"], "s": symbol, "p": p["markPrice"], "i": p["indexPrice"],
            "P": p["estimatedSettlePrice"], "r": wire.rate(ex.predicted_funding_rate_e8(symbol)),
            "T": p["nextFundingTime"]}
