"""Request parameters -> engine integers, with Binance error codes for everything malformed."""
from __future__ import annotations

import re

import orjson

from .. import units
from ..units import MAX_ABS_VALUE, OffGridError, UnitsError
from . import errors, wire
from .errors import ApiError

_CID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
MAX_INT = 2 ** 62
# Binance's number syntax: ASCII digits, an optional fraction, no exponent (an optional minus where a
# negative value means something, e.g. a margin change). Python's int() and Decimal() would also take
# "٤٠", "４０", "4E+4" and "1e-05", which Binance refuses with -1100.
_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?", re.ASCII)
_DECIMAL_SYNTAX = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"


def _number(name: str, value, pattern) -> str:
    """``value`` as a string if it has Binance's number syntax, else -1100 naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise errors.malformed(name)  # a JSON body's wrong type: not a number at all
    text = str(value)
    if not pattern.fullmatch(text):
        raise ApiError(errors.ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; legal range is "
                                             f"'{_DECIMAL_SYNTAX}'.")
    return text


def _grid_count(text: str, step) -> int:
    """``units.to_grid(text, step)`` for a string of Binance's number syntax, in integer arithmetic (the same
    result and errors; the Decimal/Fraction route costs more than the rest of an order's parsing)."""
    m, places = wire.scale(step)
    whole, _, frac = text.lstrip("-").partition(".")
    count, rest = divmod(int(whole + frac) * 10 ** places, m * 10 ** len(frac))
    if rest:
        raise OffGridError(f"{text} is not a multiple of {step}")
    if count > MAX_ABS_VALUE:
        raise UnitsError(f"{text} is out of bounds (|value / step| > 2^62)")
    return -count if text.startswith("-") else count


class Params:
    def __init__(self, gw, params: dict, account=None):
        self.gw = gw
        self.p = params
        self.account = account

    def __contains__(self, name):
        return self.p.get(name) not in (None, "")

    def get(self, name, default=None):
        v = self.p.get(name)
        return default if v in (None, "") else v

    def req(self, name) -> str:
        v = self.p.get(name)
        if v in (None, ""):
            raise errors.mandatory(name)
        return v

    def symbol(self, name="symbol", required=True):
        v = self.p.get(name)
        if v in (None, ""):
            if required:
                raise errors.mandatory(name)
            return None
        if v not in self.gw.exchange.instruments:
            raise ApiError(errors.INVALID_SYMBOL)
        return v

    def inst(self, symbol):
        return self.gw.exchange.instruments[symbol]

    def int(self, name, default=None, low=None, high=MAX_INT) -> int | None:
        v = self.p.get(name)
        if v in (None, ""):
            if default is None:
                return None
            return default
        n = int(_number(name, v, _INTEGER))
        if low is not None and n < low or n > high:
            raise errors.malformed(name, "out of range")
        return n

    def req_int(self, name, low=None, high=MAX_INT) -> int:
        self.req(name)
        return self.int(name, low=low, high=high)

    def bool(self, name, default=False) -> bool:
        v = self.p.get(name)
        if v in (None, ""):
            return default
        s = str(v).lower()
        if s not in ("true", "false"):
            raise errors.malformed(name, "expected true or false")
        return s == "true"

    def choice(self, name, options: dict, code: int, default=None):
        v = self.p.get(name)
        if v in (None, ""):
            if default is None:
                raise errors.mandatory(name)
            return default
        if v not in options:
            raise ApiError(code) if code != errors.BAD_PARAM else errors.malformed(name)
        return options[v]

    def ticks(self, inst, name, required=False) -> int:
        """A price on the instrument's tick grid (0 when absent and not required); -4014 off the grid."""
        return self._grid(name, required, inst.tick_size, -4014, "Price not increased by tick size.", low=0)

    def lots(self, inst, name, required=True) -> int:
        """A quantity on the instrument's lot grid (0 when absent and not required); -4023 off the grid."""
        return self._grid(name, required, inst.lot_size, -4023, "Quantity not increased by step size.", low=-MAX_INT + 1)

    def _grid(self, name, required, step, off_grid_code, off_grid_msg, low) -> int:
        v = self.p.get(name)
        if v in (None, ""):
            if required:
                raise errors.mandatory(name)
            return 0
        v = _number(name, v, _DECIMAL)
        try:
            n = _grid_count(v, step)
        except OffGridError:
            raise ApiError(off_grid_code, off_grid_msg) from None
        except (UnitsError, ValueError, TypeError):
            raise errors.malformed(name) from None
        if not low <= n < MAX_INT:
            raise errors.malformed(name, "out of range")
        return n

    def money(self, name) -> int:
        v = _number(name, self.req(name), _DECIMAL)
        try:
            n = units.to_units(v)
        except (UnitsError, ValueError, TypeError):
            raise errors.malformed(name) from None
        if not -MAX_INT < n < MAX_INT:
            raise errors.malformed(name, "out of range")
        return n

    def client_id(self, name) -> str:
        v = self.p.get(name)
        if v in (None, ""):
            return ""
        if not isinstance(v, str) or not _CID.match(v):
            raise errors.malformed(name, "must match ^[.A-Z:/a-z0-9_-]{1,36}$")
        return v

    def json_list(self, name, max_len) -> list:
        v = self.req(name)
        try:
            data = orjson.loads(v)
        except (orjson.JSONDecodeError, TypeError):
            raise errors.malformed(name, "not a JSON array") from None
        if not isinstance(data, list) or not 1 <= len(data) <= max_len:
            raise errors.malformed(name, f"a JSON array of 1..{max_len} items")
        return data

    def window(self, default_limit=500, max_limit=1000):
        start = self.int("startTime", low=0)
        end = self.int("endTime", low=0)
        limit = self.int("limit", default=default_limit, low=1, high=max_limit)
        return start, end, limit


def in_window(t: int, start, end) -> bool:
    return (start is None or t >= start) and (end is None or t <= end)
