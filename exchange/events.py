"""Events: the only outputs of the engine.

Two layers:

- **Matching rows** (``EVENT_DTYPE``): what a :class:`~exchange.matching.MatchingEngine` (Python or
  compiled) appends for every command; 13 int64 fields, identical in both implementations, compared
  row-for-row by the differential tests. Field use per kind:

  ==========  ==============================================================================
  ACCEPTED    order_id, account_id, side, price_ticks (0 = market), qty_lots, leaves_lots
  REJECTED    order_id, account_id, side, price_ticks, qty_lots, code = reject code
  FILL        order_id/account_id/side = taker; price_ticks, qty_lots = the fill;
              leaves_lots = taker's remainder; maker_order_id, maker_account_id,
              maker_leaves_lots; maker_fee_units, taker_fee_units (negative = rebate)
  CANCELED    order_id, account_id, side, price_ticks, qty_lots = lots removed,
              code = CancelReason
  AMENDED     order_id, account_id, side, price_ticks and leaves_lots = new values,
              code = 1 if queue priority was kept else 0
  ==========  ==============================================================================

- **Event records** (frozen dataclasses below): what :meth:`exchange.Exchange.apply` returns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .enums import CancelReason, OrderType, RejectCode, Side

EVENT_FIELDS = (
    "kind", "order_id", "account_id", "side", "price_ticks", "qty_lots", "leaves_lots", "code",
    "maker_order_id", "maker_account_id", "maker_leaves_lots", "maker_fee_units", "taker_fee_units",
)
EVENT_DTYPE = np.dtype([(name, np.int64) for name in EVENT_FIELDS])


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    symbol: str
    order_id: int
    account_id: int
    side: Side
    order_type: OrderType
    price_ticks: int
    qty_lots: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A command refused with a stable code; nothing changed. ``order_id`` is 0 when none was assigned."""

    code: RejectCode
    message: str
    symbol: str = ""
    account_id: int = 0
    order_id: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    """One match at the maker's price. Fees in money units (ceil; a negative fee is a rebate)."""

    symbol: str
    price_ticks: int
    qty_lots: int
    taker_order_id: int
    taker_account_id: int
    taker_side: Side
    taker_leaves_lots: int
    maker_order_id: int
    maker_account_id: int
    maker_leaves_lots: int
    taker_fee_units: int
    maker_fee_units: int


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    symbol: str
    order_id: int
    account_id: int
    side: Side
    price_ticks: int
    canceled_lots: int
    reason: CancelReason


@dataclass(frozen=True, slots=True)
class OrderAmended:
    symbol: str
    order_id: int
    account_id: int
    side: Side
    price_ticks: int
    leaves_lots: int
    priority_kept: bool


@dataclass(frozen=True, slots=True)
class OrderTriggered:
    """A conditional order's trigger condition was met; it now enters the book as LIMIT or MARKET."""

    symbol: str
    order_id: int
    account_id: int
    trigger_price_ticks: int


@dataclass(frozen=True, slots=True)
class MarkPriceChanged:
    symbol: str
    mark_ticks: int


@dataclass(frozen=True, slots=True)
class TimeAdvanced:
    now_ns: int
