"""exchange: a perpetual-futures exchange simulator with a Cython core.

Import the public API from here; never from the compiled modules (``exchange._impl`` picks them).

The layout follows a command's path (README "Design"): shared vocabulary at the top (``units``, ``enums``,
``spec``, ``commands``, ``events``, ``profiles``, ``prices``), the sequencer ``engine``, and one folder per stage,
each holding its pure-Python reference and, beside it, its compiled twin: ``boundary`` (validation, the
client), ``orders`` (book, matching, triggers), ``accounts`` (ledger, margin, pre-trade risk, storage),
``clearing`` (fills, the sweep), ``liquidation`` (monitor, index, waterfall, insurance, dYdX, ``adl``),
``funding`` (rate, stage) and ``persistence`` (journal, snapshot, recovery). Tooling: ``invariants``,
``scenarios``, ``workload``, ``cli``; the research front is ``sim``.
"""
from ._impl import IMPLEMENTATION
from .boundary.client import Client
from .commands import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, PlaceOrder,
    SetIndexPrice, SetInitialMarginRate, SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode, SettleSymbol, Withdraw,
)
from .engine import Exchange, ExchangeHalted, matching_engine_class
from .enums import (
    BalanceReason, CancelReason, InsuranceReason, MarginMode, OrderType, PositionMode, PositionSide, RejectCode, Side,
    STPMode, TimeInForce, WorkingType,
)
from .events import (
    ADLFill, BalanceChanged, Fill, FundingPaid, FundingSettled, IndexPriceChanged, InitialMarginRateChanged, InsuranceFundChanged, LeverageChanged, LiquidationEnded,
    LiquidationFill, LiquidationStarted, MarginCall, MarginModeChanged, MarkPriceChanged, OrderAccepted, OrderAmended, OrderCanceled, OrderTriggered, PositionChanged, PositionModeChanged, Rejected,
    SettlementFill, SymbolSettled, TimeAdvanced,
)
from .funding.stage import FundingRecord, FundingState
from .liquidation.insurance import FundLimits, HistoryEntry
from .persistence.journal import FsyncEvery, JournalCorrupt, JournalError, dump as dump_journal, load as load_journal
from .persistence.recovery import replay, replay_file
from .liquidation.waterfall import LiquidationConfig
from .accounts.pretrade import Liquidatable, PositionView
from .profiles import RiskOptions
from .spec import FundingParams, Instrument, MarkParams, MarkSource, RiskBracket, SpecError
from .units import InputError, UnitsError

__all__ = [
    "IMPLEMENTATION", "Exchange", "ExchangeHalted", "Client", "matching_engine_class", "InputError",
    "PlaceOrder", "CancelOrder", "AmendOrder", "CancelAll", "SetMarkPrice", "AdvanceTime",
    "Deposit", "Withdraw", "SetPositionMode", "SetMarginMode", "SetLeverage", "SetInitialMarginRate", "AdjustIsolatedMargin", "SetIndexPrice",
    "Side", "OrderType", "TimeInForce", "STPMode", "WorkingType", "CancelReason", "RejectCode",
    "MarginMode", "PositionMode", "PositionSide", "BalanceReason",
    "OrderAccepted", "Rejected", "Fill", "OrderCanceled", "OrderAmended", "OrderTriggered",
    "MarkPriceChanged", "TimeAdvanced", "IndexPriceChanged", "BalanceChanged", "PositionChanged", "MarginCall",
    "PositionModeChanged", "MarginModeChanged", "LeverageChanged", "InitialMarginRateChanged",
    "RiskOptions", "PositionView", "Liquidatable",
    "Instrument", "RiskBracket", "FundingParams", "MarkParams", "MarkSource", "SpecError", "UnitsError",
    "FundInsurance", "ADLFill", "InsuranceFundChanged", "LiquidationEnded", "LiquidationFill", "LiquidationStarted",
    "FundLimits", "HistoryEntry", "LiquidationConfig", "InsuranceReason",
    "FundingSettled", "FundingPaid", "FundingRecord", "FundingState", "SettleSymbol", "SettlementFill", "SymbolSettled",
    "dump_journal", "load_journal", "replay", "replay_file", "recover", "JournalError", "JournalCorrupt", "FsyncEvery",
]


def recover(journal_path, snapshot_path=None, implementation=None, **options):
    """Rebuild an exchange from its durable journal (and the newest usable snapshot): ``(exchange, report)``.
    See :func:`exchange.persistence.recovery.recover`."""
    from .persistence.recovery import recover as _recover

    return _recover(journal_path, snapshot_path, implementation, **options)
