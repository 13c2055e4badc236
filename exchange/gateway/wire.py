"""Engine integers -> Binance JSON: decimal strings with the instrument's precision, ms timestamps, names."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import orjson

from ..enums import CancelReason, OrderType, PositionSide, Side, TimeInForce, WorkingType
from ..units import UNITS_PER_COIN

MONEY_PLACES = 8


def dumps(obj) -> bytes:
    return orjson.dumps(obj)


def decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


def fmt(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


def price(inst, ticks: int | None) -> str:
    if not ticks:
        return fmt(Decimal(0), decimals(inst.tick_size))
    return fmt(inst.tick_size * ticks, decimals(inst.tick_size))


def price_exact(inst, ticks: Fraction) -> str:
    """A fractional number of ticks (an average price) with 8 more decimals than the tick."""
    places = decimals(inst.tick_size) + 8
    value = Decimal(ticks.numerator) / Decimal(ticks.denominator) * inst.tick_size
    return fmt(value, places).rstrip("0").rstrip(".") if "." in fmt(value, places) else fmt(value, places)


def qty(inst, lots: int) -> str:
    return fmt(inst.lot_size * lots, decimals(inst.lot_size))


def money(units: int) -> str:
    return fmt(Decimal(units) / UNITS_PER_COIN, MONEY_PLACES)


def rate(e8: int) -> str:
    return fmt(Decimal(e8) / 10 ** 8, 8)


SIDE = {Side.BUY: "BUY", Side.SELL: "SELL"}
POSITION_SIDE = {PositionSide.BOTH: "BOTH", PositionSide.LONG: "LONG", PositionSide.SHORT: "SHORT"}
TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.GTX: "GTX",
       TimeInForce.GTD: "GTD"}
TYPE = {t: t.name for t in OrderType}
WORKING = {WorkingType.MARK_PRICE: "MARK_PRICE", WorkingType.CONTRACT_PRICE: "CONTRACT_PRICE"}
#: cancel reason -> (status, execution type); "er" expiry reasons loosely follow Binance's
CANCEL_STATUS = {
    CancelReason.USER: "CANCELED", CancelReason.IOC: "EXPIRED", CancelReason.STP_TAKER: "EXPIRED_IN_MATCH",
    CancelReason.STP_MAKER: "EXPIRED_IN_MATCH", CancelReason.GTD_EXPIRED: "EXPIRED", CancelReason.PRICE_BAND: "EXPIRED",
    CancelReason.NO_LIQUIDITY: "EXPIRED", CancelReason.AMEND_TO_ZERO: "CANCELED", CancelReason.REDUCE_ONLY: "EXPIRED",
    CancelReason.LIQUIDATION: "EXPIRED", CancelReason.ADL: "EXPIRED", CancelReason.SETTLEMENT: "EXPIRED",
}
EXPIRE_REASON = {CancelReason.LIQUIDATION: 5, CancelReason.ADL: 5, CancelReason.GTD_EXPIRED: 6,
                 CancelReason.REDUCE_ONLY: 3, CancelReason.STP_TAKER: 1, CancelReason.STP_MAKER: 1}


def ms(epoch_ms: int, now_ns: int) -> int:
    return epoch_ms + now_ns // 1_000_000
