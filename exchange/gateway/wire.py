"""Engine integers -> Binance JSON: decimal strings with the instrument's precision, ms timestamps, names."""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import orjson

from ..enums import CancelReason, OrderType, PositionSide, Side, TimeInForce, WorkingType
from ..units import UNITS_PER_COIN

assert UNITS_PER_COIN == 10 ** 8  # money() prints units with 8 decimals

MONEY_PLACES = 8


def dumps(obj) -> bytes:
    return orjson.dumps(obj)


def decimals(step: Decimal) -> int:
    return max(0, -step.normalize().as_tuple().exponent)


def fmt(value: Decimal, places: int) -> str:
    return f"{value:.{places}f}"


_STEPS: dict = {}  # step (Decimal) -> (m, places) with step == m / 10**places exactly


def scale(step: Decimal) -> tuple[int, int]:
    """``(m, places)`` with ``step == m / 10**places`` exactly (cached: steps are few)."""
    found = _STEPS.get(step)
    if found is None:
        places = decimals(step)
        found = _STEPS[step] = (int(step * 10 ** places), places)
    return found


def _fixed(n: int, places: int) -> str:
    """The integer ``n`` scaled by 10**-places, with exactly ``places`` decimals (what ``fmt`` prints for it,
    in integer arithmetic: the hot path of every answer)."""
    if not places:
        return str(n)
    sign = "-" if n < 0 else ""
    whole, frac = divmod(-n if n < 0 else n, 10 ** places)
    return f"{sign}{whole}.{frac:0{places}d}"


def price(inst, ticks: int | None) -> str:
    m, places = scale(inst.tick_size)
    return _fixed(ticks * m if ticks else 0, places)


def price_exact(inst, ticks: Fraction | int) -> str:
    """A fractional number of ticks (an average price) with 8 more decimals than the tick, trailing zeros cut."""
    m, places = scale(inst.tick_size)
    places += 8
    if isinstance(ticks, int) or ticks.denominator == 1:
        text = _fixed(int(ticks) * m * 10 ** 8, places)
    else:
        value = Decimal(ticks.numerator) / Decimal(ticks.denominator) * inst.tick_size
        text = fmt(value, places)
    return text.rstrip("0").rstrip(".") if "." in text else text


def qty(inst, lots: int) -> str:
    m, places = scale(inst.lot_size)
    return _fixed(lots * m, places)


def money(units: int) -> str:
    return _fixed(units, MONEY_PLACES)  # units are 10**-8 (UNITS_PER_COIN)


def rate(e8: int) -> str:
    return _fixed(e8, 8)


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
