"""exchange: a perpetual-futures exchange simulator with a Cython core.

Import the public API from here; never from ``exchange._core``.
"""
from ._impl import IMPLEMENTATION
from .client import Client
from .commands import AdvanceTime, AmendOrder, CancelAll, CancelOrder, PlaceOrder, SetMarkPrice
from .engine import Exchange, matching_engine_class
from .enums import (
    CancelReason, MarginMode, OrderType, PositionMode, RejectCode, Side, STPMode, TimeInForce, WorkingType,
)
from .events import (
    Fill, MarkPriceChanged, OrderAccepted, OrderAmended, OrderCanceled, OrderTriggered, Rejected, TimeAdvanced,
)
from .journal import dump as dump_journal, load as load_journal, replay
from .spec import FundingParams, Instrument, MarkParams, RiskBracket, SpecError
from .units import UnitsError

__all__ = [
    "IMPLEMENTATION", "Exchange", "Client", "matching_engine_class",
    "PlaceOrder", "CancelOrder", "AmendOrder", "CancelAll", "SetMarkPrice", "AdvanceTime",
    "Side", "OrderType", "TimeInForce", "STPMode", "WorkingType", "CancelReason", "RejectCode",
    "MarginMode", "PositionMode",
    "OrderAccepted", "Rejected", "Fill", "OrderCanceled", "OrderAmended", "OrderTriggered",
    "MarkPriceChanged", "TimeAdvanced",
    "Instrument", "RiskBracket", "FundingParams", "MarkParams", "SpecError", "UnitsError",
    "dump_journal", "load_journal", "replay",
]
