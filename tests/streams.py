"""Seeded random command streams for the Exchange: every command kind, tiny price ranges so levels
collide, few accounts so self-trade prevention and cancel-by-others happen, and some invalid values.

Accounts 1-4 are funded first with very different balances (2, 50, 1,000 and 100,000 USDT on an instrument
where one lot at the mid is 100 USDT), so margin rejects, margin calls and liquidatable accounts all occur;
account 4 switches to hedge mode; then deposits, withdrawals, leverage / margin-mode / position-mode changes, isolated margin moves, index and
mark prices are mixed into the order flow."""
import itertools
import random

from exchange import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, MarginMode,
    OrderType, PlaceOrder, PositionMode, PositionSide, SetIndexPrice, SetInitialMarginRate, SetLeverage,
    SetMarginMode, SetMarkPrice,
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
            yield _leverage(account, symbol, rng.choice((1, 2, 5, 10, 20, 50, 100, 125, 0, 126)))
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
    opening += _leveraged(rng, symbols)
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
            yield _leverage(rng.randint(1, 4), symbol, rng.choice((5, 10, 20, 50)))


def _leveraged(rng: random.Random, symbols, fund_units: int = 0) -> list:
    """Per symbol: its first mark (MID), a seed of its insurance fund when ``fund_units``, and the leverage of
    accounts 1-4 (10, 20 or 50×), 40 % of them isolated."""
    commands = []
    for symbol in symbols:
        commands.append(SetMarkPrice(symbol, MID))
        if fund_units:
            commands.append(FundInsurance(symbol, fund_units))
        for account in (1, 2, 3, 4):
            commands.append(SetLeverage(account, symbol, rng.choice((10, 20, 50))))
            if rng.random() < 0.4:
                commands.append(SetMarginMode(account, symbol, MarginMode.ISOLATED))
    return commands


def _leverage(account: int, symbol: str, leverage: int):
    """SetLeverage, except that 50 becomes the initial margin rate 1.5 % (66.67×, not an integer leverage), so
    the streams exercise exact rational leverage without changing their random draws."""
    if leverage == 50:
        return SetInitialMarginRate(account, symbol, 1_500_000)
    return SetLeverage(account, symbol, leverage)


# -- the boundary fuzzer's stream (tests/test_fuzz_boundary.py, scripts/fuzz.py) ----------------------------
import dataclasses  # noqa: E402
from decimal import Decimal  # noqa: E402

from exchange import Instrument  # noqa: E402

FUZZ_BALANCES = {1: 30 * USDT, 2: 60 * USDT, 3: 150 * USDT, 4: 400 * USDT, 5: 100_000 * USDT, 6: 1_000 * USDT}
FUZZ_TRADERS = (1, 2, 3, 4, 6)  # 1-4 one-way, high leverage, some isolated; 6 trades in hedge mode
FUZZ_MAKER = 5
FUZZ_HEDGE = 6
FUZZ_STRANGER = 7  # never funded
HOUR_NS = 3600 * 10**9
TIME_LIMIT_NS = 2**62  # the largest simulation time the boundary accepts
RESERVED_ACCOUNT = 2**62  # the insurance funds' ids start here

#: what the harness expects of a case (``fuzz_cases``)
VALID = "valid"  # a well-formed command (the exchange may still refuse it by its rules)
FIELD = "field"  # malformed: exactly one Rejected whose message names the field
REFUSED = "refused"  # well-formed, certainly refused: unknown symbol or order id, another account's order, time back
ODD = "odd"  # a value that may or may not be legal where it is: only the common checks

NOT_INTS = (1.5, 2.0, -0.5, float("nan"), float("inf"), float("-inf"), True, False, "3", "1", "", Decimal("1"),
            Decimal("NaN"), None, b"1", [1])
OUTSIDE_INT64 = (2**63, 2**64, -2**63 - 1, 10**30, -10**30)
NOT_BOOLS = (2, -1, 1.5, 1.0, float("nan"), "True", "1", "", None, Decimal("1"), 2**63, 2**64, [True])
NOT_SYMBOLS = (None, 1, 1.5, True, b"TESTUSDT", ["TESTUSDT"], Decimal("1"), "\ud800", "TESTUSDТ", "X" * 65)  # not ASCII
UNKNOWN_SYMBOLS = ("NOPEUSDT", "", "testusdt", "TESTUSDT ", "TESTUSDT\x00")
ENUM_FIELDS = {"side": Side, "order_type": OrderType, "tif": TimeInForce, "stp": STPMode, "working_type": WorkingType,
               "position_side": PositionSide, "position_mode": PositionMode, "margin_mode": MarginMode}
BOOL_FIELDS = ("reduce_only", "close_position")
#: the documented bounds of the int fields (docs/rules.md, exchange/boundary/validate.py), written out here on their own:
#: ``(lowest, highest, zero allowed)``; a value outside is malformed. Enums are in range or malformed too.
_P = 2**62
FIELD_BOUNDS = {
    "account_id": (0, _P - 1, True), "order_id": (0, 2**63 - 1, True),
    "price_ticks": (0, _P, True), "stop_ticks": (0, _P, True), "activation_ticks": (0, _P, True),
    "mark_ticks": (0, _P, True), "index_ticks": (0, _P, True), "qty_lots": (-_P, _P, True),
    "amount_units": (1, _P, False), "isolated_margin_units": (0, _P, True), "delta_units": (-_P, _P, False),
    "callback_e8": (0, _P, True), "expire_ns": (0, _P, True), "now_ns": (0, _P, True),
    "leverage": (-2**63, 2**63 - 1, True),
}
EDGES = (-1, 0, 1, 10**9, -(10**9), _P, _P + 1, -_P - 1, 2**63 - 1, -2**63)


def _expect(name: str, value, otherwise: str) -> str:
    """FIELD if the int ``value`` is outside the documented bounds of ``name``, else ``otherwise``."""
    if name in ENUM_FIELDS:
        return otherwise if value in {int(m) for m in ENUM_FIELDS[name]} else FIELD
    lo, hi, zero = FIELD_BOUNDS[name]
    return otherwise if lo <= value <= hi and (zero or value != 0) else FIELD


class _IntSubclass(int):
    """A plain int subclass: the boundary accepts only exact ints (and the package's enums), so it is refused."""


def fuzz_instruments(symbols=(SYMBOL,)) -> list:
    """The fuzzer's instruments: ``tests.conftest.make_instrument`` under each name (tick 0.01, lot 1,
    K = 10⁶ units per tick·lot, max qty 100,000 lots, max price 100,000)."""
    return [Instrument.linear(symbol, tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000",
                              max_price="100000", min_notional="0", maker_fee="0.0002", taker_fee="0.0005")
            for symbol in symbols]


def fuzz_commands(seed: int, n: int, symbols=(SYMBOL,), orders=None, bad_share: float = 0.2):
    """``n`` commands for the boundary fuzzer: :func:`fuzz_cases` without the expectations."""
    for command, _, _ in fuzz_cases(seed, n, symbols, orders, bad_share):
        yield command


def fuzz_cases(seed: int, n: int, symbols=(SYMBOL,), orders=None, bad_share: float = 0.2):
    """``n`` cases ``(command, field, expect)`` of a seeded stream that keeps accounts near liquidation and
    mixes in every command kind, with about ``bad_share`` of them malformed.

    The valid flow (``expect`` VALID, ``field`` None): accounts 1-4 (30 to 400 USDT, 10-50x, some isolated)
    and 6 (hedge mode) trade market, limit (every TIF and STP mode, some reduce-only) and conditional orders
    (stop, take-profit, trailing, close-position) against maker 5, who quotes around a mark that random-walks
    with jumps of up to ±8 %; cancels, amends and cancel-alls of their own orders; index prices; time moves
    by nanoseconds to minutes and now and then past a funding boundary (whole hours, so funding settles under
    every profile); the insurance funds are seeded now and then (takeovers and ADL both happen); deposits,
    withdrawals, leverage, margin-mode and position-mode changes and isolated margin moves. Enum fields are
    sometimes plain ints and bool fields sometimes 0/1 (both legal).

    A malformed case takes the next valid command and replaces one field: with a wrong type (float, nan,
    inf, bool, str, Decimal, None, bytes, list; for flags anything but a bool or 0 / 1), a value outside
    int64 (2⁶³, 2⁶⁴, −2⁶³−1, 10³⁰) or an int outside the field's documented bounds (:data:`FIELD_BOUNDS`:
    e.g. 2⁶²+1 or −1 for a price, 0 for a deposit, time past 2⁶², a reserved account id ≥ 2⁶², an enum out
    of range) -> ``expect`` FIELD, ``field`` its name; with an unknown symbol, an order id never issued,
    another account's order, a leverage outside 1..125 or a time before now -> REFUSED; or with a value
    that may be legal where it lands (0, 1, 10⁹, an unfunded account) -> ODD; an int subclass -> FIELD. Legal jumps
    to the far future are left out (time would end there). A few cases are the regressions the boundary was
    written for (side 1.5, a STOP_MARKET with tif None, a conditional qty nan, callback / activation / tif /
    expiry 2⁶⁴, order id 2⁶³ or "3", qty 1.5, time 2⁶²+1 and 10³⁰).

    ``orders``: optional list (or deque) the caller appends ``(order_id, account_id)`` to for every
    ``OrderAccepted`` (see :func:`track_orders`); with it cancels and amends name real orders of their own
    account, and "another account's order" is certain (REFUSED). Without it ids are guessed from the number
    of orders placed (and "another account's order" is ODD). The stream depends on nothing else."""
    rng = random.Random(seed)
    flow = _FuzzFlow(rng, tuple(symbols), orders)
    opening = flow.opening()
    for command in opening[:n]:
        yield command, None, VALID
    regressions = 0
    for _ in range(n - len(opening)):
        command = flow.next()
        roll = rng.random()
        if roll >= bad_share:
            if type(command) is AdvanceTime:
                flow.applied_now = command.now_ns  # a valid time never goes backwards: it is applied
            yield command, None, VALID
        elif roll < bad_share * 0.03:
            yield flow.regression(regressions)
            regressions += 1
        elif roll < bad_share * 0.15:
            yield flow.refused(command)
        else:
            yield _mutate(rng, command)


def track_orders(orders, events) -> None:
    """Append ``(order_id, account_id)`` of every ``OrderAccepted`` in ``events`` to ``orders``."""
    for event in events:
        if type(event).__name__ == "OrderAccepted":
            orders.append((event.order_id, event.account_id))


def _mutate(rng: random.Random, command):
    """``(command with one field replaced by a bad value, field, expect)``."""
    name = rng.choice([f.name for f in dataclasses.fields(command)])
    roll = rng.random()
    if name == "symbol":
        if roll < 0.6:
            return dataclasses.replace(command, symbol=rng.choice(NOT_SYMBOLS)), name, FIELD
        return dataclasses.replace(command, symbol=rng.choice(UNKNOWN_SYMBOLS)), name, REFUSED
    if name in BOOL_FIELDS:
        return dataclasses.replace(command, **{name: rng.choice(NOT_BOOLS)}), name, FIELD
    if roll < 0.04:  # the same value as an int subclass: refused (it could override its comparisons)
        return dataclasses.replace(command, **{name: _IntSubclass(getattr(command, name))}), name, FIELD
    if roll < 0.45:
        value, expect = rng.choice(NOT_INTS), FIELD
    elif roll < 0.65:
        value, expect = rng.choice(OUTSIDE_INT64), FIELD
    else:  # in int64: malformed or not by the field's bounds
        if name in ENUM_FIELDS:
            value = rng.choice((0, -1, max(ENUM_FIELDS[name]) + 1, 99, *EDGES))
        elif name == "account_id":
            value = rng.choice((RESERVED_ACCOUNT, RESERVED_ACCOUNT + 1, FUZZ_STRANGER, *EDGES))
        elif name == "leverage":
            value = rng.choice((126, *EDGES))
        elif name == "now_ns":  # no legal jump to the far future: it would end the stream's time
            value = rng.choice((-1, 0, 1, -(10**9), _P + 1, -_P - 1, 2**63 - 1, -2**63))
        else:
            value = rng.choice(EDGES)
        # certainly refused when well-formed: a leverage outside 1..125, an order id never issued
        refused = (name == "leverage" and not 1 <= value <= 125) or (name == "order_id" and value not in (1,))
        expect = _expect(name, value, REFUSED if refused else ODD)
    return dataclasses.replace(command, **{name: value}), name, expect


class _FuzzFlow:
    """The valid part of :func:`fuzz_cases` (one command per :meth:`next`) and its refused / regression cases."""

    def __init__(self, rng: random.Random, symbols: tuple, orders):
        self.rng = rng
        self.symbols = symbols
        self.orders = orders
        self.mark = {symbol: MID for symbol in symbols}
        self.now = 0  # the time of the last AdvanceTime made (it may have been mutated)
        self.applied_now = 0  # the time of the last AdvanceTime yielded valid: the exchange's time is at least this
        self.placed = 0  # PlaceOrder commands so far: an upper bound of the ids issued
        self.hedge = True  # what the stream believes of account 6

    def opening(self) -> list:
        rng = self.rng
        commands = [Deposit(account, amount) for account, amount in FUZZ_BALANCES.items()]
        commands.append(SetPositionMode(FUZZ_HEDGE, PositionMode.HEDGE))
        for symbol in self.symbols:
            commands += [SetMarkPrice(symbol, MID), SetIndexPrice(symbol, MID), FundInsurance(symbol, 20 * USDT)]
            for account in FUZZ_TRADERS:
                commands.append(SetLeverage(account, symbol, rng.choice((10, 20, 50))))
                if rng.random() < 0.4:
                    commands.append(SetMarginMode(account, symbol, MarginMode.ISOLATED))
        return commands

    # -- helpers -----------------------------------------------------------------------------------
    def _enum(self, member):
        """An enum value, as a plain int one time in ten (both are legal)."""
        return int(member) if self.rng.random() < 0.1 else member

    def _flag(self, value: bool):
        return int(value) if self.rng.random() < 0.1 else value

    def _position_side(self, account: int, side: Side, closing: bool = False):
        if account != FUZZ_HEDGE or not self.hedge:
            return self._enum(PositionSide.BOTH)
        opens_long = side == Side.BUY
        return self._enum(PositionSide.SHORT if opens_long == closing else PositionSide.LONG)

    def _own_order(self, account: int) -> int:
        rng = self.rng
        if self.orders is not None:
            recent = [oid for oid, owner in list(self.orders)[-64:] if owner == account]
            if recent and rng.random() < 0.9:
                return rng.choice(recent)
        return rng.randint(max(1, self.placed - 40), self.placed + 1)

    def _others_order(self, account: int):
        """An order id of another account (certain with ``orders``), or a guess and False."""
        if self.orders is not None:
            recent = [oid for oid, owner in list(self.orders)[-64:] if owner != account]
            if recent:
                return self.rng.choice(recent), True
        return self.rng.randint(max(1, self.placed - 40), self.placed + 1), False

    def _price(self, symbol: str, spread: int) -> int:
        m = self.mark[symbol]
        return max(1, m + self.rng.randint(-max(1, m // spread), max(1, m // spread)))

    # -- the valid flow ----------------------------------------------------------------------------
    def next(self):
        rng = self.rng
        symbol = rng.choice(self.symbols)
        m = self.mark[symbol]
        roll = rng.random()
        account = rng.choice(FUZZ_TRADERS)
        side = rng.choice((Side.BUY, Side.SELL))
        if roll < 0.24:  # the maker quotes both sides
            self.placed += 1
            offset = rng.randint(1, max(2, m // 50))
            price = m - offset if side == Side.BUY else m + offset
            tif = TimeInForce.GTX if rng.random() < 0.1 else TimeInForce.GTC
            return PlaceOrder(FUZZ_MAKER, symbol, self._enum(side), rng.randint(1, 6), price, tif=self._enum(tif))
        if roll < 0.44:  # traders take or rest
            self.placed += 1
            reduce_only = rng.random() < 0.1
            closing = reduce_only or rng.random() < 0.2
            position_side = self._position_side(account, side, closing)
            if position_side in (PositionSide.LONG, PositionSide.SHORT):
                reduce_only = False  # hedge mode: the leg decides
            stp = self._enum(rng.choice(tuple(STPMode)))
            if rng.random() < 0.45:
                return PlaceOrder(account, symbol, self._enum(side), rng.randint(1, 4), 0, self._enum(OrderType.MARKET),
                                  stp=stp, reduce_only=self._flag(reduce_only), position_side=position_side)
            tif = rng.choice(tuple(TimeInForce))
            return PlaceOrder(account, symbol, self._enum(side), rng.randint(1, 4), self._price(symbol, 40),
                              self._enum(OrderType.LIMIT), self._enum(tif), stp, reduce_only=self._flag(reduce_only),
                              expire_ns=self.now + rng.randint(1, 30 * 10**9) if tif == TimeInForce.GTD else 0,
                              position_side=position_side)
        if roll < 0.50:  # conditional orders
            self.placed += 1
            return self._conditional(symbol, account, side)
        if roll < 0.54:
            owner = FUZZ_MAKER if rng.random() < 0.3 else account
            return CancelOrder(owner, symbol, self._own_order(owner))
        if roll < 0.57:
            owner = FUZZ_MAKER if rng.random() < 0.3 else account
            return AmendOrder(owner, symbol, self._own_order(owner), self._price(symbol, 60), rng.randint(1, 6))
        if roll < 0.59:
            return CancelAll(rng.choice((*FUZZ_TRADERS, FUZZ_MAKER)), symbol)
        if roll < 0.76:  # the mark walks, sometimes jumps, and drifts back toward the middle
            step = rng.randint(-m // 12, m // 12) if rng.random() < 0.2 else rng.randint(-m // 200, m // 200)
            self.mark[symbol] = min(max(m + step + (MID - m) // 20, MID // 4), MID * 4)
            return SetMarkPrice(symbol, self.mark[symbol])
        if roll < 0.79:
            return SetIndexPrice(symbol, max(1, m + rng.randint(-m // 100, m // 100)))
        if roll < 0.83:
            return AdvanceTime(self._later())
        if roll < 0.845:
            return FundInsurance(symbol, rng.choice((USDT, 20 * USDT, 200 * USDT)))
        if roll < 0.885:
            return Deposit(rng.choice(FUZZ_TRADERS), rng.choice((10 * USDT, 50 * USDT, 200 * USDT)))
        if roll < 0.90:
            return Withdraw(rng.choice(FUZZ_TRADERS), rng.choice((USDT, 20 * USDT)))
        if roll < 0.92:
            position_side = self._position_side(account, side)
            return AdjustIsolatedMargin(account, symbol, rng.choice((5 * USDT, -5 * USDT, USDT)), position_side)
        if roll < 0.96:
            return SetLeverage(account, symbol, rng.choice((2, 5, 10, 20, 50, 100)))
        if roll < 0.99:
            mode = rng.choice(tuple(MarginMode))
            return SetMarginMode(account, symbol, self._enum(mode), rng.choice((0, 0, 5 * USDT)))
        mode = rng.choice(tuple(PositionMode))
        self.hedge = mode == PositionMode.HEDGE
        return SetPositionMode(FUZZ_HEDGE, self._enum(mode))

    def _later(self) -> int:
        """The next time: nanoseconds to minutes ahead, or past the next whole hour (a funding boundary of
        every profile: 1 h or 8 h)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            self.now += rng.randint(1, 10**6)
        elif roll < 0.85:
            self.now += rng.randint(10**9, 120 * 10**9)
        else:
            self.now = (self.now // HOUR_NS + 1) * HOUR_NS + rng.randint(0, 10**9)
        return self.now

    def _conditional(self, symbol: str, account: int, side: Side) -> PlaceOrder:
        rng = self.rng
        m = self.mark[symbol]
        kind = rng.choice((OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET,
                           OrderType.TRAILING_STOP_MARKET))
        gap = rng.randint(1, max(2, m // 30))
        rising = (side == Side.BUY) == (kind in (OrderType.STOP, OrderType.STOP_MARKET))
        if rng.random() < 0.1:
            rising = not rising  # would trigger immediately: -2021
        stop = m + gap if rising else max(1, m - gap)
        as_limit = kind in (OrderType.STOP, OrderType.TAKE_PROFIT)
        trailing = kind == OrderType.TRAILING_STOP_MARKET
        close = kind in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET) and rng.random() < 0.3
        reduce_only = not close and rng.random() < 0.3
        position_side = self._position_side(account, side, close or reduce_only)
        if position_side in (PositionSide.LONG, PositionSide.SHORT):
            reduce_only = False
        tif = rng.choice((TimeInForce.GTC, TimeInForce.IOC, TimeInForce.GTD)) if as_limit else TimeInForce.GTC
        activation = 0
        if trailing and rng.random() < 0.5:
            activation = max(1, m - gap) if side == Side.SELL else m + gap  # not yet passed
        return PlaceOrder(
            account, symbol, self._enum(side), 0 if close else rng.randint(1, 4),
            stop + rng.randint(-3, 3) if as_limit else 0, self._enum(kind), self._enum(tif),
            self._enum(rng.choice(tuple(STPMode))), reduce_only=self._flag(reduce_only),
            close_position=self._flag(close), stop_ticks=0 if trailing else stop,
            working_type=self._enum(rng.choice(tuple(WorkingType))),
            callback_e8=rng.choice((10_000, 100_000, 500_000)) if trailing else 0,
            activation_ticks=activation, expire_ns=self.now + rng.randint(1, 10**10) if tif == TimeInForce.GTD else 0,
            position_side=position_side,
        )

    # -- certainly refused, and the regressions -----------------------------------------------------
    def refused(self, command):
        """``(a well-formed command the exchange must refuse, field, REFUSED or ODD)``."""
        rng = self.rng
        symbol = rng.choice(self.symbols)
        account = rng.choice((*FUZZ_TRADERS, FUZZ_MAKER))
        roll = rng.random()
        if roll < 0.3:
            order_id, certain = self._others_order(account)
            if rng.random() < 0.5:
                return CancelOrder(account, symbol, order_id), "order_id", REFUSED if certain else ODD
            return (AmendOrder(account, symbol, order_id, self._price(symbol, 60), rng.randint(1, 6)), "order_id",
                    REFUSED if certain else ODD)
        if roll < 0.5:
            order_id = rng.choice((self.placed + rng.randint(2, 10**6), 0, 2**62, 2**63 - 1))
            if rng.random() < 0.5:
                return CancelOrder(account, symbol, order_id), "order_id", REFUSED
            return AmendOrder(account, symbol, order_id, self._price(symbol, 60), 1), "order_id", REFUSED
        if roll < 0.75:
            earlier = self.applied_now - rng.randint(1, 10**9) if self.applied_now else -1
            now_ns = rng.choice((-1, max(-1, earlier), 0 if self.applied_now else -1))
            return AdvanceTime(now_ns), "now_ns", _expect("now_ns", now_ns, REFUSED)
        if hasattr(command, "symbol"):
            return dataclasses.replace(command, symbol=rng.choice(UNKNOWN_SYMBOLS)), "symbol", REFUSED
        return CancelAll(account, rng.choice(UNKNOWN_SYMBOLS)), "symbol", REFUSED

    def regression(self, index: int):
        """The ``index``-th (cycling) of the commands the boundary was written for: ``(command, field, FIELD)``."""
        symbol = self.symbols[index % len(self.symbols)]
        m = self.mark[symbol]
        stop = PlaceOrder(1, symbol, Side.SELL, 1, 0, OrderType.STOP_MARKET, stop_ticks=max(1, m - 50))
        trailing = PlaceOrder(1, symbol, Side.SELL, 1, 0, OrderType.TRAILING_STOP_MARKET, callback_e8=100_000)
        cases = [
            (PlaceOrder(1, symbol, 1.5, 1, m), "side"),
            (dataclasses.replace(stop, tif=None), "tif"),
            (dataclasses.replace(stop, qty_lots=float("nan")), "qty_lots"),
            (dataclasses.replace(trailing, callback_e8=2**64), "callback_e8"),
            (dataclasses.replace(trailing, activation_ticks=2**64), "activation_ticks"),
            (dataclasses.replace(trailing, tif=2**64), "tif"),
            (dataclasses.replace(stop, expire_ns=2**64), "expire_ns"),
            (CancelOrder(1, symbol, 2**63), "order_id"),
            (CancelOrder(2, symbol, str(max(1, self.placed - 3))), "order_id"),
            (PlaceOrder(4, symbol, Side.BUY, 1.5, m), "qty_lots"),
            (AdvanceTime(TIME_LIMIT_NS + 1), "now_ns"),
            (AdvanceTime(10**30), "now_ns"),
        ]
        command, field = cases[index % len(cases)]
        return command, field, FIELD


class FuzzFailure(AssertionError):
    """A check of :class:`FuzzRun` failed; the message names the seed, the command index and the command."""


class FuzzRun:
    """:func:`fuzz_cases` through one exchange per implementation side by side (``implementations``, all on
    the same commands), checking after every command: no exception; identical events and state hashes
    across the implementations; a result that is only Rejected events leaves the hash unchanged; a FIELD
    case gives exactly one Rejected whose message names the field, a REFUSED case only Rejected events; the
    rules §9 invariants (:meth:`Exchange.check_invariants`) after each of the first ``dense`` commands and
    then after every ``every``-th (and the last); a FIELD case is not journaled, any other case is. ``counts``
    tallies cases and the liquidation events, ``rejects`` the reject codes; :meth:`run` raises
    :class:`FuzzFailure` at the first failed check. :meth:`check_replay` then replays the journal (through
    its msgpack form) into a fresh exchange and compares the state hash.

    Cost per command and implementation (2-core CI machine): apply ~40 µs, state_hash ~30-70 µs (it grows
    with the books and the funding history), check_invariants ~60-250 µs."""

    COUNTED = ("LiquidationStarted", "LiquidationFill", "ADLFill", "FundingSettled", "OrderTriggered", "Fill")

    def __init__(self, seed: int, n: int, profile: str = "binance", symbols=(SYMBOL,),
                 implementations=("python", "cython"), dense: int = 2_000, every: int = 10,
                 fund_limits=None, bad_share: float = 0.2):
        from collections import Counter, deque

        from exchange import Exchange, FundLimits, LiquidationConfig

        self.seed, self.n, self.profile, self.symbols = seed, n, profile, tuple(symbols)
        self.implementations = tuple(implementations)
        self.dense, self.every, self.bad_share = dense, every, bad_share
        self.fund_limits = fund_limits or FundLimits()
        self.config = config = LiquidationConfig(fund=self.fund_limits)
        self.exchanges = [Exchange(fuzz_instruments(self.symbols), implementation=impl, profile=profile,
                                   liquidation=config) for impl in self.implementations]
        self.orders = deque(maxlen=256)
        self.counts = Counter()
        self.rejects = Counter()

    def describe(self) -> str:
        cap = self.fund_limits.max_position_lots
        limits = "" if cap is None else f" fund ≤ {cap} lots"
        return f"seed {self.seed} profile {self.profile} symbols {','.join(self.symbols)}{limits}"

    def fail(self, index: int, command, field, expect, what: str):
        raise FuzzFailure(f"{self.describe()}: command #{index} {command!r} ({expect}"
                          f"{'' if field is None else ' ' + field}): {what}")

    def run(self, progress=None) -> "FuzzRun":
        """Apply every case; ``progress(index)`` is called every 10,000 commands."""
        from exchange import Rejected

        exchanges, implementations = self.exchanges, self.implementations
        hashes = [ex.state_hash() for ex in exchanges]
        counts, rejects, counted = self.counts, self.rejects, self.COUNTED
        index = -1
        for index, (command, field, expect) in enumerate(fuzz_cases(self.seed, self.n, self.symbols, self.orders,
                                                                    self.bad_share)):
            if progress is not None and index % 10_000 == 0:
                progress(index)
            counts[expect] += 1
            journaled = len(exchanges[0].journal)
            results = []
            for impl, ex in zip(implementations, exchanges):
                try:
                    results.append(ex.apply(command))
                except Exception as exc:  # noqa: BLE001 - any exception is a finding
                    self.fail(index, command, field, expect, f"{impl} raised {type(exc).__name__}: {exc}")
            events = results[0]
            for impl, other in zip(implementations[1:], results[1:]):
                if other != events:
                    self.fail(index, command, field, expect,
                              f"events differ:\n  {implementations[0]}: {events}\n  {impl}: {other}")
            before = hashes
            hashes = []
            for impl, ex in zip(implementations, exchanges):
                try:
                    hashes.append(ex.state_hash())
                except Exception as exc:  # noqa: BLE001
                    self.fail(index, command, field, expect,
                              f"{impl} state_hash() raised {type(exc).__name__}: {exc}")
            if len(set(hashes)) != 1:
                self.fail(index, command, field, expect,
                          f"state hashes differ: {dict(zip(implementations, hashes))}; events {events}")
            for impl, ex in zip(implementations, exchanges):
                if len(ex.journal) != journaled + (expect != FIELD):
                    self.fail(index, command, field, expect,
                              f"{impl} journal grew by {len(ex.journal) - journaled}")
            only_rejected = bool(events) and all(type(e) is Rejected for e in events)
            if only_rejected and hashes[0] != before[0]:
                self.fail(index, command, field, expect, f"rejected ({events}) but the state hash changed")
            if expect == FIELD:
                if not (len(events) == 1 and type(events[0]) is Rejected and field in events[0].message):
                    self.fail(index, command, field, expect,
                              f"expected one Rejected naming {field!r}, got {events}")
            elif expect == REFUSED and not only_rejected:
                self.fail(index, command, field, expect, f"expected a rejection, got {events}")
            for event in events:
                name = type(event).__name__
                if name == "Rejected":
                    rejects[int(event.code)] += 1
                elif name in counted:
                    counts[name] += 1
                    if name == "LiquidationFill" and event.order_id == 0:
                        counts["takeover"] += 1
            track_orders(self.orders, events)
            if index < self.dense or index % self.every == 0 or index == self.n - 1:
                for impl, ex in zip(implementations, exchanges):
                    try:
                        ex.check_invariants()
                    except Exception as exc:  # noqa: BLE001
                        self.fail(index, command, field, expect,
                                  f"{impl} invariants: {type(exc).__name__}: {exc}")
                counts["invariant checks"] += 1
        counts["commands"] = index + 1
        return self

    def check_replay(self, implementation: str | None = None) -> None:
        """The journal of the first exchange, written and read back (msgpack), replays through
        ``implementation`` (default: the first exchange's) to the same state hash."""
        import io

        from exchange import dump_journal, load_journal, replay

        ex = self.exchanges[0]
        implementation = implementation or self.implementations[0]
        buffer = io.BytesIO()
        try:
            dump_journal(ex.instruments.values(), ex.journal, buffer, profile=ex.profile, liquidation=self.config)
            buffer.seek(0)
            instruments, commands = load_journal(buffer)
            replayed, _ = replay(instruments, commands, implementation, profile=ex.profile, liquidation=self.config)
        except Exception as exc:  # noqa: BLE001
            raise FuzzFailure(f"{self.describe()}: the journal does not replay through {implementation}: "
                              f"{type(exc).__name__}: {exc}") from exc
        if replayed.state_hash() != ex.state_hash():
            raise FuzzFailure(f"{self.describe()}: the journal ({len(commands)} commands) replays through "
                              f"{implementation} to another state")


def requote_commands(seed: int, n: int, orders: dict[str, list], symbols=(SYMBOL,)):
    """``n`` commands of a venue where orders are mostly amended rather than placed (a requoting market maker's
    flow), with no conditional order: the order commands' compiled paths and every refusal they give. Account 5
    (the maker, rich) and traders 1-4 (2-100,000 USDT, 10-50x, some isolated, account 4 in hedge mode) rest limit
    orders, some reduce-only; most commands amend a resting order of the account or of another one, or an
    unknown id, to a new price (sometimes through the touch, so it fills) and size (sometimes 0, past the
    account's margin or past what a reduce-only order can close); traders take with market orders; whole books
    of an account are canceled; the mark walks with jumps that liquidate traders (so some stay in liquidation
    mode while their other orders are amended); money moves in and out. ``orders``: symbol -> ``(order id,
    account, side)`` of the orders still resting, which the caller keeps up to date from each command's events
    (:func:`follow_orders`) while it draws the commands one at a time."""
    rng = random.Random(seed)
    mark = {symbol: MID for symbol in symbols}
    opening = [Deposit(account, amount) for account, amount in {**OPENING_BALANCES, 5: 10**7 * USDT}.items()]
    opening.append(SetPositionMode(4, PositionMode.HEDGE))
    opening += _leveraged(rng, symbols, fund_units=20 * USDT)
    yield from opening[:n]
    for _ in range(n - len(opening)):
        symbol = rng.choice(symbols)
        m = mark[symbol]
        roll = rng.random()
        if roll < 0.25:  # rest an order (the trader's: sometimes reduce-only; hedge: a leg)
            account = rng.choice((1, 2, 3, 4, 5, 5))
            side = rng.choice((Side.BUY, Side.SELL))
            leg = PositionSide.BOTH
            if account == 4:
                leg = rng.choice((PositionSide.LONG, PositionSide.SHORT))
            offset = rng.randint(1, max(2, m // 100))
            yield PlaceOrder(account, symbol, side, rng.randint(1, 8), m - offset if side == Side.BUY else m + offset,
                             tif=TimeInForce.GTC, reduce_only=account != 4 and account != 5 and rng.random() < 0.25,
                             position_side=leg)
        elif roll < 0.65:  # amend: usually the owner's order, sometimes another account's or an unknown id
            placed = orders[symbol]
            order_id, owner, side = rng.choice(placed[-12:]) if placed else (1, 1, Side.BUY)  # (likely resting)
            account = owner if rng.random() < 0.85 else rng.randint(1, 5)
            if rng.random() < 0.05:
                order_id = rng.randint(1, 10**6)
            offset = rng.randint(1, max(2, m // 100)) if rng.random() < 0.85 else -rng.randint(0, m // 60)  # (crosses)
            price = m - offset if side == Side.BUY else m + offset
            qty = 0 if rng.random() < 0.04 else rng.choice((1, 2, 3, 5, 8, 40, 2_000))
            yield AmendOrder(account, symbol, order_id, price, qty)
        elif roll < 0.72:  # a trader takes
            account = rng.randint(1, 4)
            yield PlaceOrder(account, symbol, rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 5), 0, OrderType.MARKET,
                             position_side=rng.choice((PositionSide.LONG, PositionSide.SHORT)) if account == 4
                             else PositionSide.BOTH)
        elif roll < 0.74:
            yield CancelAll(rng.randint(1, 5), symbol)
        elif roll < 0.79:
            placed = orders[symbol]
            order_id, owner, _ = rng.choice(placed[-12:]) if placed else (1, 1, Side.BUY)
            yield CancelOrder(owner, symbol, order_id)
        elif roll < 0.92:  # the mark walks, sometimes jumps, and drifts back toward the middle
            step = rng.randint(-m // 10, m // 10) if rng.random() < 0.2 else rng.randint(-m // 200, m // 200)
            mark[symbol] = min(max(m + step + (MID - m) // 20, MID // 4), MID * 4)
            yield SetMarkPrice(symbol, mark[symbol])
        elif roll < 0.97:
            yield Deposit(rng.randint(1, 4), rng.choice((10 * USDT, 50 * USDT, 200 * USDT)))
        else:
            yield Withdraw(rng.randint(1, 4), rng.choice((USDT, 20 * USDT)))


def follow_orders(orders: dict[str, list], events, ex) -> None:
    """Keep :func:`requote_commands`' ``orders`` up to date after a command of ``ex``: each ``OrderAccepted`` of its
    ``events`` appended, each order no longer in ``ex``'s book dropped."""
    for event in events:
        if type(event).__name__ == "OrderAccepted":
            orders[event.symbol].append((event.order_id, event.account_id, event.side))
    for symbol, placed in orders.items():
        book = ex._books[symbol]
        placed[:] = [entry for entry in placed if book.order(entry[0]) is not None]


def settings_commands(seed: int, n: int, ex, symbols=(SYMBOL,)):
    """The first ``n`` commands of :func:`_settings_flow`."""
    return itertools.islice(_settings_flow(seed, ex, symbols), n)


def _settings_flow(seed: int, ex, symbols):
    """Commands of a venue whose accounts keep changing their settings: position mode, margin mode (with and
    without isolated margin moved in), leverage and initial margin rate, isolated margin moves, on accounts that are idle in the symbol,
    that hold a position there, that have resting or only conditional orders there, or that do not exist yet
    (ids 7-8), each draw sometimes a value the venue refuses (the current setting, out of range, past the
    brackets at the new leverage, more margin than the account can spare). Between them: resting orders, fills
    (accounts 1-6 against the rich account 9; sizes up to the second bracket), stop orders, cancel-alls that make
    accounts idle again, index and mark moves (the latter liquidate some), deposits. ``ex``: the exchange the
    caller applies each command to as it is drawn (the draws read the accounts' position modes and positions)."""
    rng = random.Random(seed)
    opening = [Deposit(account, amount) for account, amount in
               {1: 20 * USDT, 2: 500 * USDT, 3: 5_000 * USDT, 4: 50_000 * USDT, 5: 10**6 * USDT, 6: 300 * USDT,
                9: 10**9 * USDT}.items()]
    opening += [SetMarkPrice(symbol, MID) for symbol in symbols]
    yield from opening
    mark = {symbol: MID for symbol in symbols}
    while True:
        symbol = rng.choice(symbols)
        account = rng.randint(1, 8)
        roll = rng.random()
        known = ex.ledger.get(account)
        hedge = known is not None and known.position_mode == PositionMode.HEDGE
        leg = rng.choice((PositionSide.LONG, PositionSide.SHORT)) if hedge else PositionSide.BOTH
        if rng.random() < 0.03:  # a leg the account's mode does not allow
            leg = PositionSide.BOTH if hedge else PositionSide.LONG
        if roll < 0.10:
            yield SetPositionMode(account, rng.choice((PositionMode.ONE_WAY, PositionMode.HEDGE)))
        elif roll < 0.22:
            held = known is not None and bool(known.positions_in(symbol))
            margin = rng.choice((0, 0, 0, 5 * USDT, 200 * USDT, 10**6 * USDT)) if held else rng.choice((0, 0, 0, 0, USDT))
            yield SetMarginMode(account, symbol, rng.choice((MarginMode.CROSS, MarginMode.ISOLATED)), margin)
        elif roll < 0.36:
            yield SetLeverage(account, symbol, rng.choice((1, 2, 5, 10, 20, 50, 75, 100, 125, 126, 0)))
        elif roll < 0.44:
            yield SetInitialMarginRate(account, symbol, rng.choice((800_000, 1_500_000, 3_333_333, 5_000_000, 10**7,
                                                                    10**8, 10**8 + 1, 700_000)))
        elif roll < 0.60:  # a fill against account 9's resting order (up to the second bracket's notional)
            side = rng.choice((Side.BUY, Side.SELL))
            other = Side.SELL if side == Side.BUY else Side.BUY
            lots = rng.choice((1, 3, 10, 60, 400, 1_200))
            yield PlaceOrder(9, symbol, other, lots, mark[symbol], tif=TimeInForce.GTC)
            yield PlaceOrder(account, symbol, side, lots, mark[symbol], tif=TimeInForce.IOC, position_side=leg)
        elif roll < 0.70:  # a resting order away from the mark
            side = rng.choice((Side.BUY, Side.SELL))
            price = mark[symbol] - rng.randint(50, 500) if side == Side.BUY else mark[symbol] + rng.randint(50, 500)
            yield PlaceOrder(account, symbol, side, rng.choice((1, 5, 50)), price, tif=TimeInForce.GTC,
                             position_side=leg)
        elif roll < 0.74:  # a stop order (a conditional order only)
            side = rng.choice((Side.BUY, Side.SELL))
            stop = mark[symbol] + rng.randint(100, 900) if side == Side.BUY else mark[symbol] - rng.randint(100, 900)
            yield PlaceOrder(account, symbol, side, rng.choice((1, 4)), 0, OrderType.STOP_MARKET, stop_ticks=stop,
                             position_side=leg)
        elif roll < 0.84:
            yield CancelAll(account, symbol)
        elif roll < 0.88:
            step = rng.randint(-MID // 8, MID // 8) if rng.random() < 0.25 else rng.randint(-MID // 100, MID // 100)
            mark[symbol] = min(max(mark[symbol] + step + (MID - mark[symbol]) // 10, MID // 2), MID * 2)
            yield SetMarkPrice(symbol, mark[symbol])
        elif roll < 0.92:
            yield SetIndexPrice(symbol, mark[symbol] + rng.randint(-40, 40))
        elif roll < 0.93:
            yield Deposit(account, rng.choice((10 * USDT, 1_000 * USDT)))
        elif roll < 0.94:  # the venue seeds a fund (sometimes past the money bound: refused)
            yield FundInsurance(symbol, rng.choice((100 * USDT, 100 * USDT, 2**62)))
        else:  # a margin move in or out of a position, mostly an isolated one (cross, none, too much: refused)
            holders = sorted(a for a in ex.ledger.holders[symbol] if a <= 8 and ex.ledger.settings(
                ex.ledger.accounts[a], symbol).margin_mode == MarginMode.ISOLATED)
            if holders and rng.random() < 0.8:
                account = rng.choice(holders)
                sides = [side for side, _ in ex.ledger.accounts[account].positions_in(symbol)]
                leg = rng.choice(sides)
            if rng.random() < 0.1:
                leg = PositionSide.SHORT if leg == PositionSide.BOTH else PositionSide.BOTH
            yield AdjustIsolatedMargin(account, symbol, rng.choice((USDT, 5 * USDT, -USDT, -5 * USDT, 10**7 * USDT,
                                                                    -(10**6) * USDT)), leg)
