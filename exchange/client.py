"""A trader's view of the exchange: human values in (str / Decimal / int), commands out.

Prices and quantities are converted exactly with the instrument's grid; a value off the grid is
rejected with -4014 (price) or -4023 (quantity) and never becomes a command, so nothing changes.
"""
from __future__ import annotations

from .commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from .enums import OrderType, RejectCode, Side, STPMode, TimeInForce, WorkingType, reject_message
from .events import Rejected
from .units import UnitsError, to_e8


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
        activation_price=None, expire_ns: int = 0,
    ) -> list:
        """Place any order type. Enum arguments accept names ("IOC") or members; ``callback_rate`` is a
        fraction ("0.01" = 1%). Returns the events of the command."""
        inst = self.exchange.instruments.get(symbol)
        if inst is None:
            return [Rejected(RejectCode.INVALID_SYMBOL, reject_message(RejectCode.INVALID_SYMBOL), symbol, self.account_id)]
        if order_type is None:
            order_type = OrderType.MARKET if price is None else OrderType.LIMIT
        try:
            qty_lots = inst.qty_to_lots(qty)
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

    def _rejected(self, code: RejectCode, symbol: str) -> Rejected:
        return Rejected(code, reject_message(code), symbol, self.account_id)


def _enum(enum_type, value):
    """Accept an enum member, its int value, or its name."""
    return enum_type[value.upper()] if isinstance(value, str) else enum_type(value)
