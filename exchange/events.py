"""Events: the only outputs of the engine.

Two layers:

- **Matching rows** (``EVENT_DTYPE``): what a :class:`~exchange.orders.matching.MatchingEngine` (Python or
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

import dataclasses
import inspect
import sys
from dataclasses import dataclass

import numpy as np

from .enums import BalanceReason, CancelReason, InsuranceReason, MarginMode, OrderType, PositionMode, PositionSide, RejectCode, Side

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


@dataclass(frozen=True, slots=True)
class IndexPriceChanged:
    symbol: str
    index_ticks: int


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """A wallet moved by ``delta_units`` to ``wallet_units`` (units of the settlement asset)."""

    account_id: int
    delta_units: int
    wallet_units: int
    reason: BalanceReason


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A position after a fill or a margin move. ``lots`` signed (long > 0); ``entry_cost`` = Σ price_ticks ×
    signed lots; ``isolated_margin_units`` 0 for cross; ``realized_pnl_units`` realized by this change
    (before fees)."""

    symbol: str
    account_id: int
    position_side: PositionSide
    lots: int
    entry_cost: int
    isolated_margin_units: int
    realized_pnl_units: int


@dataclass(frozen=True, slots=True)
class MarginCall:
    """The margin ratio (MM ÷ margin balance, ×10⁸) reached the warning level. ``symbol`` is "" for the
    cross account; otherwise the isolated position (symbol, position_side)."""

    account_id: int
    symbol: str
    position_side: PositionSide
    margin_ratio_e8: int


@dataclass(frozen=True, slots=True)
class PositionModeChanged:
    account_id: int
    position_mode: PositionMode


@dataclass(frozen=True, slots=True)
class MarginModeChanged:
    account_id: int
    symbol: str
    margin_mode: MarginMode


@dataclass(frozen=True, slots=True)
class LeverageChanged:
    account_id: int
    symbol: str
    leverage: int


@dataclass(frozen=True, slots=True)
class InitialMarginRateChanged:
    """``SetInitialMarginRate`` took effect: IM = ⌈notional × imr_e8 / 10⁸⌉; ``leverage`` = ⌊10⁸ / imr_e8⌋
    (what :meth:`~exchange.engine.Exchange.leverage` reports)."""

    account_id: int
    symbol: str
    imr_e8: int
    leverage: int


@dataclass(frozen=True, slots=True)
class FundingSettled:
    """Funding of ``symbol`` settled at the interval boundary ``time_ns``. ``rate_e8`` is the rate of this
    settlement (×10⁸; > 0: longs pay shorts), applied to ``|lots| × mark_ticks × K``; ``mark_ticks`` is the
    price the payments used: the mark, or the oracle (index) price on hyperliquid (rules §8). ``paid_units`` (Σ payers,
    each rounded up) − ``received_units`` (Σ receivers, each rounded down) = ``dust_units``, credited to the
    insurance fund. Followed by one :class:`FundingPaid` per position that paid or received."""

    symbol: str
    time_ns: int
    rate_e8: int
    mark_ticks: int
    paid_units: int
    received_units: int
    dust_units: int


@dataclass(frozen=True, slots=True)
class FundingPaid:
    """One position's funding at a settlement: ``amount_units`` > 0 paid, < 0 received; taken from (added to)
    its isolated margin when ``margin_mode`` is ISOLATED, else the wallet (then a ``BalanceChanged`` with reason
    FUNDING follows; an isolated position is followed by its ``PositionChanged``)."""

    symbol: str
    account_id: int
    position_side: PositionSide
    lots: int
    amount_units: int
    margin_mode: MarginMode


# -- liquidation, insurance fund, auto-deleveraging (rules §7; exchange.liquidation.waterfall) -------------------------
@dataclass(frozen=True, slots=True)
class LiquidationStarted:
    """A margin part reached maintenance: ``symbol`` "" = the cross account, else the isolated position.
    Money in units, ratio ×10⁸ (:data:`exchange.accounts.margin.RATIO_INF` when the balance is ≤ 0)."""

    account_id: int
    symbol: str
    position_side: PositionSide
    margin_ratio_e8: int
    margin_balance_units: int
    maintenance_margin_units: int


@dataclass(frozen=True, slots=True)
class LiquidationFill:
    """Lots of a liquidated position closed: in the book (``order_id`` = the liquidation order) or taken over
    by the insurance fund (``order_id`` 0, ``counterparty_id`` = the fund's account). ``fee_units`` = the
    liquidation fee paid to the fund."""

    symbol: str
    account_id: int
    position_side: PositionSide
    side: Side
    price_ticks: int
    qty_lots: int
    bankruptcy_price_ticks: int
    fee_units: int
    order_id: int
    counterparty_id: int


@dataclass(frozen=True, slots=True)
class ADLFill:
    """One side of an auto-deleveraging match (an event for each side): ``account_id``'s position
    ``position_side`` traded ``side`` at ``price_ticks`` (no fee) against ``counterparty_id``; ``liquidated``
    is True for the liquidated side."""

    symbol: str
    account_id: int
    position_side: PositionSide
    side: Side
    price_ticks: int
    qty_lots: int
    counterparty_id: int
    liquidated: bool


@dataclass(frozen=True, slots=True)
class SettlementFill:
    """One side of a final-settlement match (an event for each side): ``account_id``'s position
    ``position_side`` traded ``side`` at ``price_ticks`` (no fee) against ``counterparty_id``. ``bankrupt`` is
    True for a part the settlement price left bankrupt, closed at its bankruptcy price."""

    symbol: str
    account_id: int
    position_side: PositionSide
    side: Side
    price_ticks: int
    qty_lots: int
    counterparty_id: int
    bankrupt: bool


@dataclass(frozen=True, slots=True)
class SymbolSettled:
    """``symbol`` was settled at ``price_ticks``; ``lots`` long lots (and as many short) were closed. It trades no more."""

    symbol: str
    price_ticks: int
    lots: int


@dataclass(frozen=True, slots=True)
class InsuranceFundChanged:
    """An insurance fund's balance (its reserved account's wallet) moved by ``delta_units`` to ``balance_units``."""

    fund_account_id: int
    symbol: str
    delta_units: int
    balance_units: int
    reason: InsuranceReason


@dataclass(frozen=True, slots=True)
class LiquidationEnded:
    """The account left liquidation mode: it may place orders that are not reduce-only again."""

    account_id: int


def event_classes(module=None) -> list[type]:
    """The event record classes of ``module`` (dataclasses defined in it; this module by default), in definition
    order. Recorders and the batch interface discover their columns from it, so a new event needs no change there."""
    module = sys.modules[__name__] if module is None else module
    return [obj for obj in vars(module).values()
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__]
