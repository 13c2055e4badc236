"""Seeded random command streams for the Exchange: every command kind, tiny price ranges so levels
collide, few accounts so self-trade prevention and cancel-by-others happen, and some invalid values.

Accounts 1-4 are funded first with very different balances (2, 50, 1,000 and 100,000 USDT on an instrument
where one lot at the mid is 100 USDT), so margin rejects, margin calls and liquidatable accounts all occur;
account 4 switches to hedge mode; then deposits, withdrawals, leverage / margin-mode / position-mode changes, isolated margin moves, index and
mark prices are mixed into the order flow."""
import random

from exchange import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, MarginMode,
    OrderType, PlaceOrder, PositionMode, PositionSide, SetIndexPrice, SetLeverage, SetMarginMode, SetMarkPrice,
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


LIQ_BALANCES = {1: 30 * USDT, 2: 60 * USDT, 3: 150 * USDT, 4: 400 * USDT, 5: 100_000 * USDT}


def liquidation_commands(seed: int, n: int, symbols=(SYMBOL,)):
    """``n`` commands that keep accounts near liquidation: accounts 1-4 trade with high leverage (10-50x),
    some isolated, against market maker 5 that quotes around a mark that random-walks with jumps of up to
    ±8 %; the insurance funds are seeded now and then (so takeovers and ADL both happen), time advances
    (funds unwind), and deposits, withdrawals and index observations are mixed in. Prices stay inside the
    band around the mark the stream set last."""
    rng = random.Random(seed)
    mark = {symbol: MID for symbol in symbols}
    now = 0
    opening = [Deposit(account, amount) for account, amount in LIQ_BALANCES.items()]
    for symbol in symbols:
        opening.append(SetMarkPrice(symbol, MID))
        for account in (1, 2, 3, 4):
            opening.append(SetLeverage(account, symbol, rng.choice((10, 20, 50))))
            if rng.random() < 0.4:
                opening.append(SetMarginMode(account, symbol, MarginMode.ISOLATED))
    yield from opening[:n]
    for _ in range(n - len(opening)):
        symbol = rng.choice(symbols)
        roll = rng.random()
        m = mark[symbol]
        if roll < 0.30:  # the maker quotes both sides
            side = rng.choice((Side.BUY, Side.SELL))
            offset = rng.randint(1, max(2, m // 50))
            price = m - offset if side == Side.BUY else m + offset
            yield PlaceOrder(5, symbol, side, rng.randint(1, 6), price, tif=TimeInForce.GTC)
        elif roll < 0.55:  # traders take or rest
            account = rng.randint(1, 4)
            side = rng.choice((Side.BUY, Side.SELL))
            if rng.random() < 0.5:
                yield PlaceOrder(account, symbol, side, rng.randint(1, 4), 0, OrderType.MARKET,
                                 reduce_only=rng.random() < 0.1)
            else:
                price = m + rng.randint(-m // 40, m // 40)
                yield PlaceOrder(account, symbol, side, rng.randint(1, 4), price, tif=rng.choice(tuple(TimeInForce)),
                                 reduce_only=rng.random() < 0.1, expire_ns=now + rng.randint(1, 30))
        elif roll < 0.60:
            yield CancelAll(rng.randint(1, 5), symbol)
        elif roll < 0.80:  # the mark walks, sometimes jumps, and drifts back toward the middle
            step = rng.randint(-m // 12, m // 12) if rng.random() < 0.2 else rng.randint(-m // 200, m // 200)
            mark[symbol] = min(max(m + step + (MID - m) // 20, MID // 4), MID * 4)
            yield SetMarkPrice(symbol, mark[symbol])
        elif roll < 0.83:
            yield SetIndexPrice(symbol, m + rng.randint(-m // 100, m // 100))
        elif roll < 0.86:
            now += rng.randint(1, 20)
            yield AdvanceTime(now)
        elif roll < 0.88:
            yield FundInsurance(symbol, rng.choice((USDT, 50 * USDT, 500 * USDT)))
        elif roll < 0.93:
            yield Deposit(rng.randint(1, 4), rng.choice((10 * USDT, 50 * USDT, 200 * USDT)))
        elif roll < 0.95:
            yield Withdraw(rng.randint(1, 4), rng.choice((USDT, 20 * USDT)))
        elif roll < 0.97:
            yield AdjustIsolatedMargin(rng.randint(1, 4), symbol, rng.choice((5 * USDT, -5 * USDT)))
        else:
            yield SetLeverage(rng.randint(1, 4), symbol, rng.choice((5, 10, 20, 50)))
