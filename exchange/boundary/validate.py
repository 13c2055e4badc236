"""The validation boundary: every command field is checked for type and range before anything happens.

:meth:`Exchange.apply <exchange.engine.Exchange.apply>` calls :func:`check` first. A command that fails is
answered with one ``Rejected`` event whose message names the field; it is not journaled and changes nothing.
A command that passes has only exact Python ``int`` values (``IntEnum`` members included) within the bounds
below, so no later stage (the compiled core's int64 arguments, the msgpack journal, the state hash) can
meet a value it cannot represent. What the boundary does not know (the instrument's price and quantity
filters, account state) is checked later by the command's own stage, with the venue's reject codes.

=================  =====================================================  ========================
field kind         accepted                                               refused with
=================  =====================================================  ========================
account id         ``0 <= id < 2**62`` (ids from 2**62 on are reserved)   -1102
symbol             ASCII ``str`` of at most 64 characters                 -1102 (unknown: -1121)
order id           ``0 <= id <= 2**63 - 1``                               -1102
price (ticks)      ``0 <= p <= 2**62`` (the instrument's range: -4013..)  -1102
quantity (lots)    ``-2**62 <= q <= 2**62`` (the instrument's: -4003..)   -1102
money (units)      ``1 <= x <= 2**62``; a margin change ``x != 0``        -1102
rate (×10⁸)        ``0 <= r <= 2**62`` (an initial margin rate: 1/max..1: -4028)  -1102
time (ns)          ``0 <= t <= 2**62`` (``MAX_TIME_NS``, ≈ 146 years)     -1102
leverage           ``-2**63 <= x < 2**63`` (the bracket's 1..max: -4028)  -1102
flag               ``bool``, 0 or 1                                       -1102
side               BUY, SELL                                              -1117
order type         an ``OrderType`` value                                 -1116
time in force      a ``TimeInForce`` value                                -1115
other enums        a value of the field's enum                            -1102
=================  =====================================================  ========================

Everywhere an integer is expected only an exact ``int`` or a member of the package's enums is accepted:
``bool``, ``float`` (NaN included), ``str``, ``Decimal``, ``None``, numpy scalars and other int subclasses are
refused (convert with ``int()``). ``AdvanceTime`` may also jump at most :data:`MAX_TIME_STEP_NS` (366 days)
past the current time (checked by its stage, -1102 naming ``now_ns``): the cost of one command stays bounded
(at most 8,784 hourly funding settlements). Fields are checked in declaration order and
the first failure is reported. Cost: O(fields) per command, no allocation on success.

The common case (every field passes) is one fast check per command type: a generated Python expression in
the reference, and in the compiled implementation its twin :mod:`exchange.boundary._validate`, which runs the
same tests with C comparisons (:func:`checker` gives each implementation's :func:`check`). Whatever a fast
check refuses goes through the rules one by one, which decide and name the field.
"""
from __future__ import annotations

import numpy as np

from .. import _impl
from ..commands import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, PlaceOrder,
    SetIndexPrice, SetInitialMarginRate, SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode, SettleSymbol, Withdraw,
)
from ..enums import (
    MarginMode, OrderType, PositionMode, PositionSide, RejectCode, Side, STPMode, TimeInForce, WorkingType,
)

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
LIMIT = 2**62  #: bound of prices, quantities, money and rates (their products fit in 128 bits)
MAX_TIME_NS = 2**62  #: the latest simulation time (AdvanceTime and GTD expiries)
MAX_TIME_STEP_NS = 366 * 86_400 * 10**9  #: the longest jump of one AdvanceTime (its stage checks it)
RESERVED_ACCOUNT_BASE = 2**62  #: insurance-fund accounts (exchange.accounts.ledger.FUND_ACCOUNT_BASE)
MAX_SYMBOL_LENGTH = 64


class _Int:
    """An integer field within ``[lo, hi]``; ``nonzero`` refuses 0."""

    __slots__ = ("lo", "hi", "nonzero", "what")

    def __init__(self, lo: int, hi: int, what: str, nonzero: bool = False):
        self.lo, self.hi, self.nonzero, self.what = lo, hi, nonzero, what

    def problem(self, value) -> tuple[int, str] | None:
        if not is_int(value):
            return RejectCode.MALFORMED, f"expected an integer ({self.what}), got {_show(value)}"
        if not self.lo <= value <= self.hi or (self.nonzero and value == 0):
            return RejectCode.MALFORMED, f"{value} is outside {self.what}"
        return None


class _Enum:
    """A field holding a value of ``cls``; wrong values get ``code``."""

    __slots__ = ("values", "code", "what")

    def __init__(self, cls, code: int = RejectCode.MALFORMED):
        self.values = frozenset(int(member) for member in cls)
        self.code = code
        self.what = " or ".join(f"{member.name} ({int(member)})" for member in cls)

    def problem(self, value) -> tuple[int, str] | None:
        if not is_int(value):
            return RejectCode.MALFORMED, f"expected one of {self.what}, got {_show(value)}"
        if value not in self.values:
            return self.code, f"{value} is not one of {self.what}"
        return None


class _Flag:
    __slots__ = ()

    def problem(self, value) -> tuple[int, str] | None:
        if value is True or value is False or (type(value) is int and value in (0, 1)):
            return None
        return RejectCode.MALFORMED, f"expected a bool (or 0 / 1), got {_show(value)}"


class _Symbol:
    __slots__ = ()

    def problem(self, value) -> tuple[int, str] | None:
        if type(value) is not str:
            return RejectCode.MALFORMED, f"expected a symbol (str), got {_show(value)}"
        if len(value) > MAX_SYMBOL_LENGTH:
            return RejectCode.MALFORMED, f"longer than {MAX_SYMBOL_LENGTH} characters"
        if not value.isascii():
            return RejectCode.MALFORMED, f"{_show(value)} is not ASCII"
        return None


class _Account:
    __slots__ = ()

    def problem(self, value) -> tuple[int, str] | None:
        if not is_int(value):
            return RejectCode.MALFORMED, f"expected an account id (integer), got {_show(value)}"
        if value < 0:
            return RejectCode.MALFORMED, f"{value} is negative"
        if value >= RESERVED_ACCOUNT_BASE:
            return RejectCode.MALFORMED, f"{value} is reserved (ids from 2**62 on are the insurance funds')"
        return None


ACCOUNT, SYMBOL, FLAG = _Account(), _Symbol(), _Flag()
ORDER_ID = _Int(0, INT64_MAX, "0..2**63-1")
PRICE = _Int(0, LIMIT, "0..2**62 ticks")
QTY = _Int(-LIMIT, LIMIT, "-2**62..2**62 lots")
MONEY = _Int(1, LIMIT, "1..2**62 units")
MONEY_OR_ZERO = _Int(0, LIMIT, "0..2**62 units")
MONEY_DELTA = _Int(-LIMIT, LIMIT, "-2**62..2**62 units, not 0", nonzero=True)
RATE = _Int(0, LIMIT, "0..2**62 (×10⁸)")
TIME = _Int(0, MAX_TIME_NS, "0..2**62 ns")
INT64 = _Int(INT64_MIN, INT64_MAX, "int64")

#: per command type: (field, rule) in declaration order
RULES: dict[type, tuple] = {
    PlaceOrder: (
        ("account_id", ACCOUNT), ("symbol", SYMBOL), ("side", _Enum(Side, RejectCode.INVALID_SIDE)),
        ("qty_lots", QTY), ("price_ticks", PRICE), ("order_type", _Enum(OrderType, RejectCode.INVALID_ORDER_TYPE)),
        ("tif", _Enum(TimeInForce, RejectCode.INVALID_TIF)), ("stp", _Enum(STPMode)), ("reduce_only", FLAG),
        ("close_position", FLAG), ("stop_ticks", PRICE), ("working_type", _Enum(WorkingType)),
        ("callback_e8", RATE), ("activation_ticks", PRICE), ("expire_ns", TIME),
        ("position_side", _Enum(PositionSide)),
    ),
    CancelOrder: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("order_id", ORDER_ID)),
    AmendOrder: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("order_id", ORDER_ID), ("price_ticks", PRICE),
                 ("qty_lots", QTY)),
    CancelAll: (("account_id", ACCOUNT), ("symbol", SYMBOL)),
    SetMarkPrice: (("symbol", SYMBOL), ("mark_ticks", PRICE)),
    SetIndexPrice: (("symbol", SYMBOL), ("index_ticks", PRICE)),
    AdvanceTime: (("now_ns", TIME),),
    Deposit: (("account_id", ACCOUNT), ("amount_units", MONEY)),
    Withdraw: (("account_id", ACCOUNT), ("amount_units", MONEY)),
    SetPositionMode: (("account_id", ACCOUNT), ("position_mode", _Enum(PositionMode))),
    SetMarginMode: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("margin_mode", _Enum(MarginMode)),
                    ("isolated_margin_units", MONEY_OR_ZERO)),
    SetLeverage: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("leverage", INT64)),
    SetInitialMarginRate: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("imr_e8", RATE)),
    AdjustIsolatedMargin: (("account_id", ACCOUNT), ("symbol", SYMBOL), ("delta_units", MONEY_DELTA),
                           ("position_side", _Enum(PositionSide))),
    FundInsurance: (("symbol", SYMBOL), ("amount_units", MONEY)),
    SettleSymbol: (("symbol", SYMBOL), ("price_ticks", PRICE)),
}


def _checker(fast: dict):
    """:func:`check` over the fast checks ``fast`` (class -> callable)."""

    def check(command) -> tuple[int, str] | None:
        """``None`` when every field of ``command`` passes, else ``(reject code, message naming the field)``.
        Raises TypeError for an object that is not a command."""
        passes = fast.get(type(command))
        if passes is None:
            raise TypeError(f"not a command: {_show(command)}")
        if passes(command):
            return None
        for name, rule in RULES[type(command)]:
            problem = rule.problem(getattr(command, name))
            if problem is not None:
                code, detail = problem
                return code, f"{type(command).__name__}.{name}: {detail}."
        return None

    return check


def _compile(cls, rules) -> object:
    """One boolean expression per command type that accepts exactly what the rules accept for exact ``int``
    and ``IntEnum`` values (the common case; ~1 µs for a PlaceOrder). Anything it does not accept goes through
    the rules one by one, which decide and say why."""
    names: dict = {"_INTS": _INT_TYPES}
    terms = []
    for i, (field, rule) in enumerate(rules):
        v = f"c.{field}"
        if isinstance(rule, _Int):
            term = f"type({v}) in _INTS and {rule.lo} <= {v} <= {rule.hi}" + (f" and {v} != 0" if rule.nonzero else "")
        elif isinstance(rule, _Enum):
            names[f"_E{i}"] = rule.values
            term = f"type({v}) in _INTS and {v} in _E{i}"
        elif isinstance(rule, _Account):
            term = f"type({v}) in _INTS and 0 <= {v} < {RESERVED_ACCOUNT_BASE}"
        elif isinstance(rule, _Symbol):
            term = f"type({v}) is str and len({v}) <= {MAX_SYMBOL_LENGTH} and {v}.isascii()"
        else:  # _Flag
            term = f"({v} is True or {v} is False or (type({v}) is int and ({v} == 0 or {v} == 1)))"
        terms.append(f"({term})")
    exec(f"def fast_{cls.__name__}(c):\n    return " + " and ".join(terms), names)  # noqa: S102 - our own text
    return names[f"fast_{cls.__name__}"]


_INT_TYPES = frozenset({int, Side, OrderType, TimeInForce, STPMode, WorkingType, PositionSide, PositionMode,
                        MarginMode})
_FAST = {cls: _compile(cls, rules) for cls, rules in RULES.items()}


def _kernel_fields(rules) -> tuple:
    """``(name, kind, lo, hi, nonzero, values)`` per rule: the compiled twin's table
    (:class:`exchange.boundary._validate.FastCheck`; kind 0 integer, 1 enum, 2 account, 3 symbol, 4 flag)."""
    kinds = {_Enum: 1, _Account: 2, _Symbol: 3, _Flag: 4}
    return tuple((name, 0, rule.lo, rule.hi, rule.nonzero, None) if isinstance(rule, _Int)
                 else (name, kinds[type(rule)], 0, 0, False, rule.values if isinstance(rule, _Enum) else None)
                 for name, rule in rules)


_FAST_COMPILED = None if _impl.validate_kernel is None else {
    cls: _impl.validate_kernel.FastCheck(_kernel_fields(rules), _INT_TYPES, MAX_SYMBOL_LENGTH, cls)
    for cls, rules in RULES.items()}

check = _checker(_FAST)  #: the reference's check (generated Python expressions)


def fast_checks() -> dict:
    """Command class -> the compiled fast check that :func:`checker` ``("cython")`` tries first (True: every
    field passes; False: ask the checker, which says why). Only under the compiled implementation."""
    assert _FAST_COMPILED is not None, "the compiled core is not active"
    return _FAST_COMPILED


def checker(implementation: str):
    """:func:`check` of ``implementation``: under ``"cython"`` its fast path is the compiled twin
    (:mod:`exchange.boundary._validate`), which accepts exactly what the reference's does."""
    return _checker(_FAST_COMPILED) if implementation == "cython" and _FAST_COMPILED is not None else check


def rows_pass(cls, column, symbol_ok=None):
    """Which rows of ``cls`` commands held as int64 columns pass every rule: a bool array, True exactly where
    :func:`check` would return None for the record made of the row (the batch path's check in bulk;
    ``column(name)`` gives a field's int64 array, ``symbol_ok`` a bool array, True where the row's symbol passes
    the symbol rule). Every value in such a column is an exact ``int``, so only the ranges and the enum values
    are left to test. O(rows × fields), vectorised."""
    ok = None
    for name, rule in RULES[cls]:
        if isinstance(rule, _Symbol):
            passes = symbol_ok
        else:
            v = column(name)
            if isinstance(rule, _Int):
                passes = (v >= rule.lo) & (v <= rule.hi)
                if rule.nonzero:
                    passes &= v != 0
            elif isinstance(rule, _Enum):
                passes = np.isin(v, sorted(rule.values))
            elif isinstance(rule, _Account):
                passes = (v >= 0) & (v < RESERVED_ACCOUNT_BASE)
            else:  # _Flag
                passes = (v == 0) | (v == 1)
        ok = passes if ok is None else ok & passes
    return ok


def safe_identity(command) -> tuple[str, int, int]:
    """``(symbol, account_id, order_id)`` of a command for its Rejected event, each replaced by its empty
    value when it is itself malformed (so the event holds plain, representable values)."""
    symbol = getattr(command, "symbol", "")
    account_id = getattr(command, "account_id", 0)
    order_id = getattr(command, "order_id", 0)
    return (
        symbol if SYMBOL.problem(symbol) is None else "",
        int(account_id) if ACCOUNT.problem(account_id) is None else 0,
        int(order_id) if ORDER_ID.problem(order_id) is None else 0,
    )


def is_int(value) -> bool:
    """An exact ``int`` or a member of one of the package's enums; int subclasses of other kinds are refused
    (they may override comparisons and lie about their range)."""
    return type(value) in _INT_TYPES


def _show(value) -> str:
    """A short description of a refused value: its repr (cut at 40 characters) and type."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not break the answer
        text = "<unprintable>"
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__!s:.40})"
