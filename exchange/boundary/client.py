"""A trader's view of the exchange: human values in (str / Decimal / int), commands out.

Every argument is converted exactly before a command exists. A value that cannot become one is answered with
a ``Rejected`` event (nothing is sent, nothing changes) whose message names the argument:

- a price off the tick grid: -4014; a quantity off the lot grid: -4023;
- an unknown symbol: -1121;
- anything else that is not a valid value (an unknown enum name, a float, a number out of range, a money
  amount finer than 10⁻⁸ of the settlement asset, a wrong type): -1102.

So a ``Client`` method never raises for a bad value; it always returns the events of the command, or the one
``Rejected`` event. Money amounts are in the settlement asset ("500" = 500 USDT). Only the constructor
raises (:class:`~exchange.units.InputError` for an account id that is not a valid one).
"""
from __future__ import annotations

from ..commands import (
    AdjustIsolatedMargin, AmendOrder, CancelAll, CancelOrder, Deposit, PlaceOrder, SetInitialMarginRate, SetLeverage,
    SetMarginMode,
    SetPositionMode, Withdraw,
)
from ..enums import (
    MarginMode, OrderType, PositionMode, PositionSide, RejectCode, Side, STPMode, TimeInForce, WorkingType,
    reject_message,
)
from ..events import Rejected
from ..units import InputError, OffGridError, UnitsError, to_e8, to_units
from .validate import ACCOUNT


class _Refused(Exception):
    """A human value that cannot become a command: carries the reject code and the detail."""

    def __init__(self, code: RejectCode, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


class Client:
    """Places and manages orders of one account. ``client.buy("BTCUSDT", "0.01", "50000")``."""

    def __init__(self, exchange, account_id: int):
        problem = ACCOUNT.problem(account_id)
        if problem is not None:
            raise InputError(f"account_id: {problem[1]}")
        self.exchange = exchange
        self.account_id = account_id

    def buy(self, symbol: str, qty, price=None, **options) -> list:
        """Buy ``qty`` at limit ``price`` (or at market when ``price`` is None). See :meth:`order`."""
        return self.order(symbol, Side.BUY, qty, price, **options)

    def sell(self, symbol: str, qty, price=None, **options) -> list:
        return self.order(symbol, Side.SELL, qty, price, **options)

    def order(
        self, symbol: str, side, qty, price=None, *, order_type=None, tif="GTC", stp="NONE", reduce_only=False,
        close_position=False, stop_price=None, working_type="MARK_PRICE", callback_rate=None,
        activation_price=None, expire_ns: int = 0, position_side="BOTH",
    ) -> list:
        """Place any order type. Enum arguments accept names ("IOC") or members; ``callback_rate`` is a
        fraction ("0.01" = 1%). Returns the events of the command."""
        def build():
            inst = self._instrument(symbol)
            kind = (OrderType.MARKET if price is None else OrderType.LIMIT) if order_type is None else order_type
            return PlaceOrder(
                self.account_id, symbol, _enum(Side, side, "side"), _lots(inst, qty or 0, "qty"),
                _ticks(inst, price, "price"), _enum(OrderType, kind, "order_type"), _enum(TimeInForce, tif, "tif"),
                _enum(STPMode, stp, "stp"), _flag(reduce_only, "reduce_only"),
                _flag(close_position, "close_position"), _ticks(inst, stop_price, "stop_price"),
                _enum(WorkingType, working_type, "working_type"),
                0 if callback_rate is None else _convert(to_e8, callback_rate, "callback_rate"),
                _ticks(inst, activation_price, "activation_price"), expire_ns,
                _enum(PositionSide, position_side, "position_side"),
            )
        return self._send(symbol, build)

    def cancel(self, symbol: str, order_id: int) -> list:
        return self._send(symbol, lambda: CancelOrder(self.account_id, symbol, order_id))

    def cancel_all(self, symbol: str) -> list:
        return self._send(symbol, lambda: CancelAll(self.account_id, symbol))

    def amend(self, symbol: str, order_id: int, price, qty) -> list:
        """Set a resting order's price and remaining quantity."""
        def build():
            inst = self._instrument(symbol)
            return AmendOrder(self.account_id, symbol, order_id, _ticks(inst, price, "price", required=True),
                              _lots(inst, qty, "qty"))
        return self._send(symbol, build)

    def deposit(self, amount) -> list:
        """Deposit ``amount`` of the settlement asset."""
        return self._send("", lambda: Deposit(self.account_id, _money(amount, "amount")))

    def withdraw(self, amount) -> list:
        return self._send("", lambda: Withdraw(self.account_id, _money(amount, "amount")))

    def set_leverage(self, symbol: str, leverage: int) -> list:
        return self._send(symbol, lambda: SetLeverage(self.account_id, symbol, leverage))

    def set_initial_margin_rate(self, symbol: str, rate) -> list:
        """The leverage as an initial margin rate, a fraction (``"0.015"`` = 1.5 % = 66.67×), exact to 10⁻⁸."""
        return self._send(symbol, lambda: SetInitialMarginRate(self.account_id, symbol,
                                                               _convert(to_e8, rate, "rate")))

    def set_margin_mode(self, symbol: str, margin_mode, isolated_margin=0) -> list:
        """``margin_mode`` "CROSS" / "ISOLATED"; ``isolated_margin`` moved in when an open position switches
        to isolated (venues with ``allow_mode_switch_with_position``)."""
        return self._send(symbol, lambda: SetMarginMode(
            self.account_id, symbol, _enum(MarginMode, margin_mode, "margin_mode"),
            _money(isolated_margin, "isolated_margin")))

    def set_position_mode(self, position_mode) -> list:
        return self._send("", lambda: SetPositionMode(
            self.account_id, _enum(PositionMode, position_mode, "position_mode")))

    def adjust_isolated_margin(self, symbol: str, amount, position_side="BOTH") -> list:
        """Add (``amount`` > 0) or remove (< 0) isolated margin."""
        return self._send(symbol, lambda: AdjustIsolatedMargin(
            self.account_id, symbol, _money(amount, "amount"), _enum(PositionSide, position_side, "position_side")))

    # -- internals ---------------------------------------------------------------------------------
    def _send(self, symbol, build) -> list:
        """Build the command (every conversion may refuse) and apply it; a refusal is one Rejected event."""
        try:
            command = build()
        except _Refused as refused:
            shown = symbol if isinstance(symbol, str) else ""
            return [Rejected(refused.code, f"{reject_message(refused.code)} ({refused.detail})", shown, self.account_id)]
        return self.exchange.apply(command)

    def _instrument(self, symbol):
        inst = self.exchange.instruments.get(symbol) if isinstance(symbol, str) else None
        if inst is None:
            raise _Refused(RejectCode.INVALID_SYMBOL, f"symbol: {symbol!r} is not listed")
        return inst


def _convert(convert, value, name: str, code: RejectCode = RejectCode.MALFORMED) -> int:
    try:
        return convert(value)
    except UnitsError as exc:
        raise _Refused(code, f"{name}: {exc}") from None


def _ticks(inst, price, name: str, required: bool = False) -> int:
    """A price -> ticks (0 when omitted): -4014 off the tick grid, -1102 not a number."""
    if price is None and not required:
        return 0
    try:
        return inst.price_to_ticks(price)
    except UnitsError as exc:
        code = RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE if isinstance(exc, OffGridError) else RejectCode.MALFORMED
        raise _Refused(code, f"{name}: {exc}") from None


def _lots(inst, qty, name: str) -> int:
    """A quantity -> lots: -4023 off the lot grid, -1102 not a number."""
    try:
        return inst.qty_to_lots(qty)
    except UnitsError as exc:
        code = RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE if isinstance(exc, OffGridError) else RejectCode.MALFORMED
        raise _Refused(code, f"{name}: {exc}") from None


def _money(amount, name: str) -> int:
    return _convert(to_units, amount, name)


def _flag(value, name: str) -> bool:
    if value is True or value is False:
        return value
    raise _Refused(RejectCode.MALFORMED, f"{name}: expected True or False, got {value!r}")


def _enum(enum_type, value, name: str):
    """An enum member from a member, its int value, or its name (any case)."""
    try:
        if isinstance(value, str):
            return enum_type[value.strip().upper()]
        if isinstance(value, int) and not isinstance(value, bool):
            return enum_type(value)
    except (KeyError, ValueError):
        pass
    names = ", ".join(member.name for member in enum_type)
    raise _Refused(RejectCode.MALFORMED, f"{name}: {value!r} is not one of {names}")
