"""Seeded random command streams for the Exchange: every command kind, tiny price ranges so levels
collide, few accounts so self-trade prevention and cancel-by-others happen, and some invalid values.

Accounts 1-4 are funded first with very different balances (2, 50, 1,000 and 100,000 USDT on an instrument
where one lot at the mid is 100 USDT), so margin rejects, margin calls and liquidatable accounts all occur;
account 4 switches to hedge mode; then deposits, withdrawals, leverage / margin-mode / position-mode changes, isolated margin moves, index and
mark prices are mixed into the order flow."""
import random

from exchange import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, MarginMode, OrderType,
    PlaceOrder, PositionMode, PositionSide, SetIndexPrice, SetLeverage, SetMarginMode, SetMarkPrice,
    SetPositionMode, Side, STPMode, TimeInForce, Withdraw, WorkingType,
)

SYMBOL = "TESTUSDT"
MID = 10_000
USDT = 10**8
OPENING_BALANCES = {1: 2 * USDT, 2: 50 * USDT, 3: 1_000 * USDT, 4: 100_000 * USDT}


def random_commands(seed: int, n: int, symbol: str = SYMBOL):
    """``n`` commands (the first five fund accounts 1-4 and put account 4 in hedge mode); ids referenced by
    cancels/amends are drawn from the ids issued so far (some stale)."""
    rng = random.Random(seed)
    now = 0
    max_id = 0
    hedge = {account: account == 4 for account in OPENING_BALANCES}  # what the stream believes; may be wrong
    opening = [Deposit(account, amount) for account, amount in OPENING_BALANCES.items()]
    opening.append(SetPositionMode(4, PositionMode.HEDGE))
    yield from opening[:n]
    for _ in range(n - len(opening)):
        roll = rng.random()
        account = rng.randint(1, 4)
        side = rng.choice((Side.BUY, Side.SELL)) if rng.random() > 0.01 else 3
        price = MID + rng.randint(-6, 6)
        qty = rng.randint(1, 8) if rng.random() > 0.02 else rng.choice((0, -1, 10**9))
        if rng.random() < 0.9:
            position_side = rng.choice((PositionSide.LONG, PositionSide.SHORT)) if hedge[account] else PositionSide.BOTH
        else:
            position_side = rng.choice(tuple(PositionSide))
        if roll < 0.38:
            max_id += 1
            tif = rng.choice(tuple(TimeInForce)) if rng.random() > 0.01 else 9
            yield PlaceOrder(account, symbol, side, qty, price, OrderType.LIMIT, tif, rng.choice(tuple(STPMode)),
                             reduce_only=rng.random() < 0.15, expire_ns=now + rng.randint(-5, 50),
                             position_side=position_side)
        elif roll < 0.45:
            max_id += 1
            yield PlaceOrder(account, symbol, side, qty, 0, OrderType.MARKET, stp=rng.choice(tuple(STPMode)),
                             reduce_only=rng.random() < 0.2, position_side=position_side)
        elif roll < 0.52:
            max_id += 1
            kind = rng.choice((OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT,
                               OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET))
            trailing = kind == OrderType.TRAILING_STOP_MARKET
            close = kind in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET) and rng.random() < 0.3
            yield PlaceOrder(
                account, symbol, side, 0 if close else qty,
                price if kind in (OrderType.STOP, OrderType.TAKE_PROFIT) else 0, kind,
                rng.choice((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.GTD)), rng.choice(tuple(STPMode)),
                reduce_only=not close and rng.random() < 0.3, close_position=close,
                stop_ticks=0 if trailing else MID + rng.randint(-8, 8),
                working_type=rng.choice(tuple(WorkingType)),
                callback_e8=rng.choice((10_000, 100_000, 500_000)) if trailing else 0,
                activation_ticks=rng.choice((0, MID + rng.randint(-8, 8))) if trailing else 0,
                expire_ns=now + rng.randint(1, 50), position_side=position_side,
            )
        elif roll < 0.63:
            yield CancelOrder(account, symbol, rng.randint(1, max_id + 1))
        elif roll < 0.70:
            yield AmendOrder(account, symbol, rng.randint(1, max_id + 1), price, max(qty, 1) if rng.random() > 0.05 else 0)
        elif roll < 0.72:
            yield CancelAll(account, symbol)
        elif roll < 0.78:
            big = rng.random() < 0.15
            yield SetMarkPrice(symbol, MID + (rng.randint(-400, 400) if big else rng.randint(-9, 9)))
        elif roll < 0.82:
            yield SetIndexPrice(symbol, MID + rng.randint(-12, 12))
        elif roll < 0.84:
            yield Deposit(account, rng.choice((1, USDT, 20 * USDT, 0, -5)))
        elif roll < 0.86:
            yield Withdraw(account, rng.choice((1, USDT, 10 * USDT, 10**6 * USDT, 0)))
        elif roll < 0.89:
            yield SetLeverage(account, symbol, rng.choice((1, 2, 5, 10, 20, 50, 100, 125, 0, 126)))
        elif roll < 0.92:
            mode = rng.choice(tuple(MarginMode))
            yield SetMarginMode(account, symbol, mode, rng.choice((0, 0, 5 * USDT, 50 * USDT)))
        elif roll < 0.925:
            mode = rng.choice(tuple(PositionMode))
            hedge[account] = mode == PositionMode.HEDGE
            yield SetPositionMode(account, mode)
        elif roll < 0.95:
            yield AdjustIsolatedMargin(account, symbol, rng.choice((USDT, -USDT, 5 * USDT, -5 * USDT, 0)), position_side)
        else:
            now += rng.randint(-1, 10)
            yield AdvanceTime(now)
            now = max(now, 0)
