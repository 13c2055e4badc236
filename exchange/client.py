"""A trader's view of the exchange: human values in (str / Decimal / int), commands out.

Prices and quantities are converted exactly with the instrument's grid; a value off the grid is
rejected with -4014 (price) or -4023 (quantity) and never becomes a command, so nothing changes.
Money amounts are in the settlement asset ("500" = 500 USDT) and must be a whole number of units (10⁻⁸);
otherwise they are rejected with -1102 without a command.
"""
from __future__ import annotations

from .commands import (
    AdjustIsolatedMargin, AmendOrder, CancelAll, CancelOrder, Deposit, PlaceOrder, SetLeverage, SetMarginMode,
    SetPositionMode, Withdraw,
)
from .enums import (
    MarginMode, OrderType, PositionMode, PositionSide, RejectCode, Side, STPMode, TimeInForce, WorkingType,
    reject_message,
)
from .events import Rejected
from .units import UnitsError, to_e8, to_units


class Client:
    """Places and manages orders of one account. ``client.buy("BTCUSDT", "0.01", "50000")``."""

    def __init__(self, exchange, account_id: int):
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
        inst = self.exchange.instruments.get(symbol)
        if inst is None:
            return [Rejected(RejectCode.INVALID_SYMBOL, reject_message(RejectCode.INVALID_SYMBOL), symbol, self.account_id)]
        if order_type is None:
            order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        try:
            qty_lots = inst.qty_to_lots(qty or 0)
        except UnitsError:
            return [self._rejected(RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE, symbol)]
        try:
            price_ticks, stop_ticks, activation_ticks = (
                0 if value is None else inst.price_to_ticks(value) for value in (price, stop_price, activation_price)
            )
            callback_e8 = 0 if callback_rate is None else to_e8(callback_rate)
        except UnitsError:
            return [self._rejected(RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE, symbol)]
        return self.exchange.apply(PlaceOrder(
            self.account_id, symbol, _enum(Side, side), qty_lots, price_ticks, _enum(OrderType, order_type),
            _enum(TimeInForce, tif), _enum(STPMode, stp), reduce_only, close_position, stop_ticks,
            _enum(WorkingType, working_type), callback_e8, activation_ticks, expire_ns,
            _enum(PositionSide, position_side),
        ))

    def cancel(self, symbol: str, order_id: int) -> list:
        return self.exchange.apply(CancelOrder(self.account_id, symbol, order_id))

    def cancel_all(self, symbol: str) -> list:
        return self.exchange.apply(CancelAll(self.account_id, symbol))

    def amend(self, symbol: str, order_id: int, price, qty) -> list:
        """Set a resting order's price and remaining quantity."""
        inst = self.exchange.instruments[symbol]
        try:
            qty_lots = inst.qty_to_lots(qty)
        except UnitsError:
            return [self._rejected(RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE, symbol)]
        try:
            price_ticks = inst.price_to_ticks(price)
        except UnitsError:
            return [self._rejected(RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE, symbol)]
        return self.exchange.apply(AmendOrder(self.account_id, symbol, order_id, price_ticks, qty_lots))

    def deposit(self, amount) -> list:
        """Deposit ``amount`` of the settlement asset."""
        return self._money(amount, lambda units: Deposit(self.account_id, units))

    def withdraw(self, amount) -> list:
        return self._money(amount, lambda units: Withdraw(self.account_id, units))

    def set_leverage(self, symbol: str, leverage: int) -> list:
        return self.exchange.apply(SetLeverage(self.account_id, symbol, leverage))

    def set_margin_mode(self, symbol: str, margin_mode, isolated_margin=0) -> list:
        """``margin_mode`` "CROSS" / "ISOLATED"; ``isolated_margin`` moved in when an open position switches
        to isolated (venues with ``allow_mode_switch_with_position``)."""
        return self._money(isolated_margin, lambda units: SetMarginMode(
            self.account_id, symbol, _enum(MarginMode, margin_mode), units))

    def set_position_mode(self, position_mode) -> list:
        return self.exchange.apply(SetPositionMode(self.account_id, _enum(PositionMode, position_mode)))

    def adjust_isolated_margin(self, symbol: str, amount, position_side="BOTH") -> list:
        """Add (``amount`` > 0) or remove (< 0) isolated margin."""
        return self._money(amount, lambda units: AdjustIsolatedMargin(
            self.account_id, symbol, units, _enum(PositionSide, position_side)))

    def _money(self, amount, make_command) -> list:
        try:
            units = to_units(amount)
        except UnitsError:
            return [self._rejected(RejectCode.MALFORMED, "")]
        return self.exchange.apply(make_command(units))

    def _rejected(self, code: RejectCode, symbol: str) -> Rejected:
        return Rejected(code, reject_message(code), symbol, self.account_id)


def _enum(enum_type, value):
    """Accept an enum member, its int value, or its name."""
    return enum_type[value.upper()] if isinstance(value, str) else enum_type(value)
