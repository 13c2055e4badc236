"""Seeded random command streams for the Exchange: every command kind, tiny price ranges so levels
collide, few accounts so self-trade prevention and cancel-by-others happen, and some invalid values."""
import random

from exchange import (
    AdvanceTime, AmendOrder, CancelAll, CancelOrder, OrderType, PlaceOrder, SetMarkPrice, Side, STPMode,
    TimeInForce, WorkingType,
)

SYMBOL = "TESTUSDT"
MID = 10_000


def random_commands(seed: int, n: int, symbol: str = SYMBOL):
    """``n`` commands; ids referenced by cancels/amends are drawn from the ids issued so far (some stale)."""
    rng = random.Random(seed)
    now = 0
    max_id = 0
    for _ in range(n):
        roll = rng.random()
        account = rng.randint(1, 4)
        side = rng.choice((Side.BUY, Side.SELL)) if rng.random() > 0.01 else 3
        price = MID + rng.randint(-6, 6)
        qty = rng.randint(1, 8) if rng.random() > 0.02 else rng.choice((0, -1, 10**9))
        if roll < 0.45:
            max_id += 1
            tif = rng.choice(tuple(TimeInForce)) if rng.random() > 0.01 else 9
            yield PlaceOrder(account, symbol, side, qty, price, OrderType.LIMIT, tif, rng.choice(tuple(STPMode)),
                             reduce_only=rng.random() < 0.1, expire_ns=now + rng.randint(-5, 50))
        elif roll < 0.52:
            max_id += 1
            yield PlaceOrder(account, symbol, side, qty, 0, OrderType.MARKET, stp=rng.choice(tuple(STPMode)))
        elif roll < 0.60:
            max_id += 1
            kind = rng.choice((OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT,
                               OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET))
            trailing = kind == OrderType.TRAILING_STOP_MARKET
            yield PlaceOrder(
                account, symbol, side, qty, price if kind in (OrderType.STOP, OrderType.TAKE_PROFIT) else 0, kind,
                rng.choice((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.GTD)), rng.choice(tuple(STPMode)),
                stop_ticks=0 if trailing else MID + rng.randint(-8, 8),
                working_type=rng.choice(tuple(WorkingType)),
                callback_e8=rng.choice((10_000, 100_000, 500_000)) if trailing else 0,
                activation_ticks=rng.choice((0, MID + rng.randint(-8, 8))) if trailing else 0,
                expire_ns=now + rng.randint(1, 50),
            )
        elif roll < 0.75:
            yield CancelOrder(account, symbol, rng.randint(1, max_id + 1))
        elif roll < 0.85:
            yield AmendOrder(account, symbol, rng.randint(1, max_id + 1), price, max(qty, 1) if rng.random() > 0.05 else 0)
        elif roll < 0.88:
            yield CancelAll(account, symbol)
        elif roll < 0.95:
            yield SetMarkPrice(symbol, MID + rng.randint(-9, 9))
        else:
            now += rng.randint(-1, 10)
            yield AdvanceTime(now)
            now = max(now, 0)
