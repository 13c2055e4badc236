"""Exact conversions at the boundary: decimal prices, quantities, money and rates to integers.

The engine's state holds integers only (rules §1):

====================  ===============================  ===========
quantity              integer representation           suffix
====================  ===============================  ===========
price                 ticks (price = ticks × tick)     ``_ticks``
quantity              lots (qty = lots × lot)          ``_lots``
money                 units of 10⁻⁸ settlement asset   ``_units``
rate                  value × 10⁸                      ``_e8``
time                  nanoseconds of simulation time   ``_ns``
====================  ===============================  ===========

Inputs may be ``str``, ``Decimal`` or ``int``; floats are refused because they are not exact.
A value that is not on its grid raises :class:`UnitsError`; nothing is ever rounded silently.
The integer helpers (:func:`div_floor`, :func:`div_ceil`, :func:`mul_div_floor`, :func:`mul_div_ceil`)
are the single rounding rules used everywhere; they are exact for any size of Python int.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

E8 = 100_000_000
UNITS_PER_COIN = E8  # money scale: 1 unit = 10⁻⁸ of the settlement asset
NS_PER_SECOND = 1_000_000_000

INT64_MAX = 2**63 - 1
#: every price, quantity and notional that passes validation is at most this, so products of two fit
#: comfortably in 128 bits and the compiled core can never overflow silently.
MAX_ABS_VALUE = 2**62
_MAX_EXPONENT = 60  # |decimal exponent| beyond which a value cannot be on a usable grid within 2^62 steps


class InputError(ValueError):
    """A human value refused at the boundary (the base of :class:`UnitsError` and
    :class:`~exchange.spec.SpecError`): the message says which value and why; nothing changed."""


class UnitsError(InputError):
    """A boundary value is not representable exactly on its grid, or is out of bounds."""


class OffGridError(UnitsError):
    """A value that is a number but not a whole multiple of its grid step (a price off the tick grid, ...)."""


def to_decimal(value) -> Decimal:
    """``str`` / ``Decimal`` / ``int`` -> ``Decimal`` exactly. Raises :class:`UnitsError` otherwise."""
    if isinstance(value, bool) or isinstance(value, float):
        raise UnitsError(f"{value!r}: floats are not exact; pass a str, Decimal or int")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise UnitsError(f"{value!r} is not a number") from None
    else:
        raise UnitsError(f"{value!r}: expected str, Decimal or int, got {type(value).__name__}")
    if not result.is_finite():
        raise UnitsError(f"{value!r} is not finite")
    return result


def to_grid(value, step) -> int:
    """Number of ``step`` increments in ``value``, exactly; :class:`UnitsError` if off the grid or too large."""
    amount, step = to_decimal(value), to_decimal(step)
    if step <= 0:
        raise UnitsError(f"grid step must be positive, got {step}")
    if amount and amount.adjusted() > _MAX_EXPONENT:  # far beyond any grid's bound: do not expand it
        raise UnitsError(f"{amount} is out of bounds (|value / step| > 2^62)")
    if amount and amount.adjusted() < -_MAX_EXPONENT:
        raise OffGridError(f"{amount} is not a multiple of {step}")
    count = Fraction(amount) / Fraction(step)  # exact, whatever the decimal context's precision
    if count.denominator != 1:
        raise OffGridError(f"{amount} is not a multiple of {step}")
    count = count.numerator
    if abs(count) > MAX_ABS_VALUE:
        raise UnitsError(f"{amount} is out of bounds (|value / step| > 2^62)")
    return count


def from_grid(count: int, step) -> Decimal:
    """Inverse of :func:`to_grid`: ``count × step`` as an exact Decimal."""
    return to_decimal(step) * count


def to_ticks(price, tick_size) -> int:
    """Price -> integer ticks. ``to_ticks("100.01", "0.01") == 10001``."""
    return to_grid(price, tick_size)


def to_lots(qty, lot_size) -> int:
    """Quantity -> integer lots. ``to_lots("0.02", "0.001") == 20``."""
    return to_grid(qty, lot_size)


def to_units(money, scale: int = UNITS_PER_COIN) -> int:
    """Money -> integer units at ``scale`` units per coin (default 10⁸). ``to_units("1.5") == 150_000_000``."""
    return to_grid(money, Decimal(1) / scale)


def from_units(units: int, scale: int = UNITS_PER_COIN) -> Decimal:
    """Integer units -> Decimal money."""
    return Decimal(units) / scale


def to_e8(rate) -> int:
    """Rate -> integer × 10⁸. ``to_e8("0.0004") == 40_000``; finer than 10⁻⁸ raises."""
    return to_grid(rate, Decimal(1) / E8)


def from_e8(rate_e8: int) -> Decimal:
    """Integer rate × 10⁸ -> Decimal."""
    return Decimal(rate_e8) / E8


def to_ns(seconds) -> int:
    """Seconds (str/Decimal/int) -> integer nanoseconds."""
    return to_grid(seconds, Decimal(1) / NS_PER_SECOND)


def div_floor(a: int, b: int) -> int:
    """Floor division (toward −∞), the rule for amounts received."""
    return a // b


def div_ceil(a: int, b: int) -> int:
    """Ceiling division (toward +∞), the rule for amounts owed (margin, fees)."""
    return -((-a) // b)


def mul_div_floor(a: int, b: int, c: int) -> int:
    """``floor(a × b / c)`` exactly (Python ints never overflow)."""
    return (a * b) // c


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """``ceil(a × b / c)`` exactly."""
    return -((-(a * b)) // c)


def check_bounds(name: str, value: int, low: int, high: int) -> int:
    """Return ``value`` if ``low <= value <= high``; raise :class:`UnitsError` naming ``name`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise UnitsError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise UnitsError(f"{name}={value} is outside [{low}, {high}]")
    return value
