"""Seeded scenarios built from commands only (so they journal and replay like any run).

:func:`crash` is the main job's second part: leveraged traders (isolated and cross), a market maker
with a thin bid ladder and a small insurance fund; then the mark falls 30% in 30 steps. The book absorbs the
first liquidations, the fund takes over positions until its money runs out, and auto-deleveraging closes the
rest against the most profitable shorts.
"""
from __future__ import annotations

import random

from .boundary.client import Client
from .commands import FundInsurance, SetMarkPrice
from .engine import Exchange
from .spec import Instrument

CRASH_SYMBOL = "BTCUSDT"
MAKER, SHORT_SELLERS = 0, (1, 2, 3)


def crash_instrument() -> Instrument:
    """Tick 0.01, lot 0.001 (K = 1,000), Binance-style brackets, fees 0.02% / 0.05%, liquidation fee 1.25%."""
    return Instrument.linear(CRASH_SYMBOL, min_notional="0", band_down="0.5", band_up="1.5")


def crash(n_traders: int = 40, seed: int = 7, steps: int = 30, fund_usdt: int = 200) -> tuple[Exchange, list]:
    """Build the scenario and run the crash; returns ``(exchange, events of the crash steps)``."""
    rng = random.Random(seed)
    inst = crash_instrument()
    ex = Exchange([inst])
    ex.apply(SetMarkPrice(CRASH_SYMBOL, inst.price_to_ticks("100")))
    ex.apply(FundInsurance(CRASH_SYMBOL, fund_usdt * 10**8))
    maker = Client(ex, MAKER)
    maker.deposit("10000000")
    for account_id in SHORT_SELLERS:  # shorts that profit in the crash: the ADL candidates
        trader = Client(ex, account_id)
        trader.deposit("20000")
        maker.buy(CRASH_SYMBOL, "50", "100")
        trader.sell(CRASH_SYMBOL, "50", "100")
    for account_id in range(10, 10 + n_traders):
        trader = Client(ex, account_id)
        leverage = rng.choice((2, 5, 10, 20, 25, 50))
        qty = f"{rng.randint(1, 20)}"
        trader.deposit(str(100 * int(qty) // leverage * 3 // 2 + 10))
        if rng.random() < 0.5:
            trader.set_margin_mode(CRASH_SYMBOL, "ISOLATED")
        trader.set_leverage(CRASH_SYMBOL, leverage)
        maker.sell(CRASH_SYMBOL, qty, "100")
        trader.buy(CRASH_SYMBOL, qty, "100")
    for level in range(1, 6):  # a thin ladder of bids: 5 lots every 2.00 below 98
        maker.buy(CRASH_SYMBOL, "5", str(98 - 2 * level))
    events = []
    for step in range(1, steps + 1):
        mark = 10_000 - step * 3_000 // steps  # 100.00 -> 70.00 in ticks
        events += ex.apply(SetMarkPrice(CRASH_SYMBOL, mark))
    return ex, events
