"""Commands: the only inputs of the engine (frozen records), and the batch command array layout.

Every field is an integer in the unit its suffix names (or a symbol string). Time, marks and deposits
are commands too, so a journal of commands reproduces every event.
Each record has a stable ``TAG`` used by the msgpack journal; never reuse a tag.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .enums import MarginMode, OrderType, PositionMode, PositionSide, Side, STPMode, TimeInForce, WorkingType


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place an order. ``price_ticks`` is 0 for market types; ``stop_ticks`` for STOP/TAKE_PROFIT types;
    ``callback_e8`` and ``activation_ticks`` (0 = activate at once) for TRAILING_STOP_MARKET;
    ``expire_ns`` for GTD. ``position_side`` is BOTH in one-way mode, LONG or SHORT in hedge mode.
    ``close_position`` (STOP_MARKET / TAKE_PROFIT_MARKET only) takes ``qty_lots = 0``: the order closes
    whatever is open when it fires."""

    TAG = 1
    account_id: int
    symbol: str
    side: Side
    qty_lots: int
    price_ticks: int = 0
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    stp: STPMode = STPMode.NONE
    reduce_only: bool = False
    close_position: bool = False
    stop_ticks: int = 0
    working_type: WorkingType = WorkingType.MARK_PRICE
    callback_e8: int = 0
    activation_ticks: int = 0
    expire_ns: int = 0
    position_side: PositionSide = PositionSide.BOTH


@dataclass(frozen=True, slots=True)
class CancelOrder:
    TAG = 2
    account_id: int
    symbol: str
    order_id: int


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Change a resting limit order's price and/or remaining quantity (``qty_lots`` = new leaves).

    A price change or a quantity increase loses queue priority; a pure decrease keeps it (rules §3)."""

    TAG = 3
    account_id: int
    symbol: str
    order_id: int
    price_ticks: int
    qty_lots: int


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every open order (resting and conditional) of an account in one symbol."""

    TAG = 4
    account_id: int
    symbol: str


@dataclass(frozen=True, slots=True)
class SetMarkPrice:
    """An externally supplied mark price (ticks); drives the price band and MARK_PRICE triggers."""

    TAG = 5
    symbol: str
    mark_ticks: int


@dataclass(frozen=True, slots=True)
class AdvanceTime:
    """Move simulation time forward to ``now_ns`` (never backward); expires GTD orders."""

    TAG = 6
    now_ns: int


@dataclass(frozen=True, slots=True)
class Deposit:
    """Credit ``amount_units`` (> 0) to the account's wallet; opens the account on its first deposit."""

    TAG = 7
    account_id: int
    amount_units: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Debit ``amount_units`` (> 0) from the wallet, at most the withdrawable balance (-2018 otherwise)."""

    TAG = 8
    account_id: int
    amount_units: int


@dataclass(frozen=True, slots=True)
class SetPositionMode:
    """One-way or hedge mode for all of the account's symbols; refused with open orders or positions."""

    TAG = 9
    account_id: int
    position_mode: PositionMode


@dataclass(frozen=True, slots=True)
class SetMarginMode:
    """CROSS or ISOLATED for one (account, symbol). ``isolated_margin_units`` is the amount moved from the
    wallet when an open position switches cross -> isolated (only with ``allow_mode_switch_with_position``);
    0 otherwise."""

    TAG = 10
    account_id: int
    symbol: str
    margin_mode: MarginMode
    isolated_margin_units: int = 0


@dataclass(frozen=True, slots=True)
class SetLeverage:
    """Leverage (1 .. the bracket's maximum for the resulting position) for one (account, symbol)."""

    TAG = 11
    account_id: int
    symbol: str
    leverage: int


@dataclass(frozen=True, slots=True)
class SetInitialMarginRate:
    """The leverage of one (account, symbol) as an initial margin rate ×10⁸ (``imr_e8``: 1,500,000 = 1.5 % =
    66.67×), as bybit and bitmex set their risk limits: ``10⁸ / max_leverage ≤ imr_e8 ≤ 10⁸`` (-4028 otherwise);
    then as :class:`SetLeverage` (-4161, -2027, -2028). A rate that is an integer leverage (5 % = 20×) is stored
    as that leverage. (Tag 21 leaves room for other new commands.)"""

    TAG = 21
    account_id: int
    symbol: str
    imr_e8: int


@dataclass(frozen=True, slots=True)
class AdjustIsolatedMargin:
    """Add (``delta_units`` > 0) or remove (< 0) margin of an open isolated position."""

    TAG = 12
    account_id: int
    symbol: str
    delta_units: int
    position_side: PositionSide = PositionSide.BOTH


@dataclass(frozen=True, slots=True)
class SetIndexPrice:
    """An index price observation (ticks); under the MEDIAN and INDEX mark sources it moves the mark."""

    TAG = 13
    symbol: str
    index_ticks: int


@dataclass(frozen=True, slots=True)
class FundInsurance:
    """The venue puts ``amount_units`` (> 0) into the insurance fund of ``symbol`` (the shared fund when the
    profile's scope is SHARED); counted as a deposit."""

    TAG = 14
    symbol: str
    amount_units: int


@dataclass(frozen=True, slots=True)
class SettleSymbol:
    """Final settlement (delisting) of ``symbol`` at ``price_ticks`` (0: its index price, the mark until an
    index is set). Every open order in the symbol is canceled, every position is closed at the settlement
    price (a part that the price would leave bankrupt is closed at its bankruptcy price against the opposite
    side, after the insurance fund where the profile has one; dYdX deleverages it at once), and the symbol stops
    trading: orders and price updates for it are refused with -1122 afterwards (``docs/liquidation.md``)."""

    TAG = 22
    symbol: str
    price_ticks: int = 0


COMMAND_TYPES = {cls.TAG: cls for cls in (
    PlaceOrder, CancelOrder, AmendOrder, CancelAll, SetMarkPrice, AdvanceTime, Deposit, Withdraw, SetPositionMode,
    SetMarginMode, SetLeverage, AdjustIsolatedMargin, SetIndexPrice, FundInsurance, SetInitialMarginRate,
    SettleSymbol,
)}

#: One row per command for the compiled batch path (``MatchingEngine.run_batch``); all int64.
#: ``kind`` is an :class:`~exchange.enums.CommandKind`; unused fields are 0.
#: PLACE uses order_id..expire_ns; CANCEL order_id, account_id; AMEND order_id, account_id, price_ticks,
#: qty_lots; CANCEL_ALL account_id; SET_MARK price_ticks; SET_TIME time_ns.
COMMAND_FIELDS = (
    "kind", "order_id", "account_id", "side", "order_type", "tif", "price_ticks", "qty_lots",
    "stp", "reduce_only", "expire_ns", "time_ns",
)
COMMAND_DTYPE = np.dtype([(name, np.int64) for name in COMMAND_FIELDS])


def commands_from_rows(rows: np.ndarray, symbol: str) -> list:
    """Batch rows (``COMMAND_DTYPE``) of one symbol -> command records for :meth:`Exchange.apply`.

    The rows' ``order_id`` of PLACE is dropped (the exchange assigns ids in acceptance order, which equals
    the rows' ids when they were numbered 1, 2, 3, ... and every place is accepted).
    """
    from .enums import CommandKind

    records = []
    for (kind, order_id, account, side, order_type, tif, price, qty, stp, reduce_only, expire_ns, time_ns) in rows.tolist():
        if kind == CommandKind.PLACE:
            records.append(PlaceOrder(account, symbol, side, qty, price, order_type, tif, stp, bool(reduce_only),
                                      expire_ns=expire_ns))
        elif kind == CommandKind.CANCEL:
            records.append(CancelOrder(account, symbol, order_id))
        elif kind == CommandKind.AMEND:
            records.append(AmendOrder(account, symbol, order_id, price, qty))
        elif kind == CommandKind.CANCEL_ALL:
            records.append(CancelAll(account, symbol))
        elif kind == CommandKind.SET_MARK:
            records.append(SetMarkPrice(symbol, price))
        elif kind == CommandKind.SET_TIME:
            records.append(AdvanceTime(time_ns))
        else:
            raise ValueError(f"unknown command kind {kind}")
    return records
