"""Order filters of rules §3 shared by the matching engine and the trigger layer.

Each returns a :class:`~exchange.enums.RejectCode` (0 = passes). Integers only.
"""
from __future__ import annotations

from ..enums import OrderType, RejectCode, reject_message
from ..spec import Instrument

_PRICELESS = (OrderType.MARKET, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET, OrderType.TRAILING_STOP_MARKET)


def check_qty(inst: Instrument, qty_lots: int, market: bool) -> int:
    """Quantity filters, in order: -4003 (≤ 0), -4004 (< min), -4108 (market > max market), -4005 (> max)."""
    if qty_lots <= 0:
        return RejectCode.QTY_LESS_THAN_ZERO
    if qty_lots < inst.min_qty_lots:
        return RejectCode.QTY_LESS_THAN_MIN_QTY
    if market and qty_lots > inst.max_market_qty_lots:
        return RejectCode.MARKET_QTY_GREATER_THAN_MAX
    if qty_lots > inst.max_qty_lots:
        return RejectCode.QTY_GREATER_THAN_MAX_QTY
    return RejectCode.OK


def check_price_range(inst: Instrument, price_ticks: int) -> int:
    """Price filters, in order: -4001 (≤ 0), -4013 (< min price), -4002 (> max price)."""
    if price_ticks <= 0:
        return RejectCode.PRICE_LESS_THAN_ZERO
    if price_ticks < inst.min_price_ticks:
        return RejectCode.PRICE_LESS_THAN_MIN_PRICE
    if price_ticks > inst.max_price_ticks:
        return RejectCode.PRICE_GREATER_THAN_MAX_PRICE
    return RejectCode.OK


def check_notional(inst: Instrument, price_ticks: int, qty_lots: int) -> int:
    """-4164 when ``price × qty × K < min_notional``; a zero price (nothing to value it at) passes."""
    if price_ticks and inst.notional_units(price_ticks, qty_lots) < inst.min_notional_units:
        return RejectCode.NOTIONAL_TOO_SMALL
    return RejectCode.OK


def size_decimals(inst: Instrument) -> int:
    """Hyperliquid's ``szDecimals``: the decimals of the lot size (lot 0.001 → 3, lot 1 or 10 → 0)."""
    return max(0, -inst.lot_size.normalize().as_tuple().exponent)


def check_price_precision(inst: Instrument, price_ticks: int, sig_figs: int, decimals: int) -> int:
    """-1111 when a price that is not a whole number has more than ``sig_figs`` significant figures or more
    than ``decimals − szDecimals`` decimals (Hyperliquid perps: 5 and 6; a limit of 0 is off). Whole-number
    prices and a zero price (a market order) always pass. Exact (Decimal digits of ticks × tick size)."""
    if not price_ticks or not (sig_figs or decimals):
        return RejectCode.OK
    _, digits, exponent = inst.ticks_to_price(price_ticks).normalize().as_tuple()
    if exponent >= 0:
        return RejectCode.OK
    if (sig_figs and len(digits) > sig_figs) or (decimals and -exponent > decimals - size_decimals(inst)):
        return RejectCode.BAD_PRECISION
    return RejectCode.OK


def place_reject_message(code: int, cmd) -> str:
    """The message of a refusal of a ``PlaceOrder`` whose order type is known: the code's text, except for -1102,
    which names the field that breaks the type's shape (close_position on a type that does not close, a price on
    a market-type order, a quantity or reduce-only flag on a close-position order, a stop price on a trailing
    stop) when it can. Only on the refusal path. O(1)."""
    if code != RejectCode.MALFORMED:
        return reject_message(code)
    kind = OrderType(cmd.order_type)
    if cmd.close_position and kind not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
        return f"PlaceOrder.close_position: only STOP_MARKET and TAKE_PROFIT_MARKET orders close a position (this " \
               f"one is {kind.name})."
    if kind in _PRICELESS and cmd.price_ticks != 0:
        return f"PlaceOrder.price_ticks: a {kind.name} order takes no price (got {cmd.price_ticks})."
    if cmd.close_position and cmd.qty_lots != 0:
        return f"PlaceOrder.qty_lots: a close_position order takes no quantity (got {cmd.qty_lots}): it closes " \
               f"the whole position when it fires."
    if cmd.close_position and cmd.reduce_only:
        return "PlaceOrder.reduce_only: a close_position order takes no reduce_only flag (it only closes)."
    if kind == OrderType.TRAILING_STOP_MARKET and cmd.stop_ticks != 0:
        return f"PlaceOrder.stop_ticks: a TRAILING_STOP_MARKET order takes activation_ticks and callback_e8, not " \
               f"stop_ticks (got {cmd.stop_ticks})."
    return reject_message(RejectCode.MALFORMED)
