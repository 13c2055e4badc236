"""Venue profiles: the *configurable* rules of rules §10 as named, frozen configurations.

A profile says *which* rule applies; the modules that apply them (margin brackets, liquidation, ADL,
funding) branch on these enums (``LiquidationTrigger`` and ``IsolatedMaintenance`` live in
:mod:`exchange.margin`, which applies them, and are re-exported here). ``PROFILES[name]`` holds the five built-in venues; ``binance`` is the
default. Numbers are integers in the units their suffix names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .margin import IsolatedMaintenance, LiquidationTrigger
from .risk import RiskOptions
from .units import E8, NS_PER_SECOND

HOUR_NS = 3600 * NS_PER_SECOND


class BracketStyle(IntEnum):
    MARGINAL = 1  # each slice of notional pays its tier's rate (cum / MM deduction): binance, bybit, hyperliquid
    STEPWISE = 2  # the whole position at the step's rate: bitmex
    OPEN_INTEREST_IMF = 3  # liquidity tier, IMF scaled by open interest: dydx


class LiquidationOrder(IntEnum):
    IOC_AT_BANKRUPTCY = 1  # binance: tier reduction first, IOC limited at the bankruptcy price
    FOK_TIER_THEN_TAKEOVER = 2  # bybit: FOK tier reduction, then insurance takeover at the bankruptcy price
    LIMIT_AT_BANKRUPTCY = 3  # bitmex: the engine's limit order at the bankruptcy price
    IOC_AT_FILLABLE_PRICE = 4  # dydx: oracle ± spread × MMF × rating
    MARKET_SLICES = 5  # hyperliquid: market orders, large positions in 20% slices


class BankruptcyRule(IntEnum):
    ZERO_BALANCE = 1  # margin balance = 0: binance, bitmex, hyperliquid
    ENTRY_IMR = 2  # bybit isolated: entry × (1 ∓ IMR)
    DYDX_DELTA = 3  # BP(Δ) = −ΔNNV − TNC × |ΔMMR| / TMMR


class Backstop(IntEnum):
    INSURANCE_TAKEOVER = 1  # the fund takes what the book cannot absorb (binance, bybit)
    INSURANCE_FUND = 2  # the fund absorbs losses, no takeover (bitmex)
    INSURANCE_PER_FILL = 3  # the fund settles each liquidation fill (dydx)
    BACKSTOP_VAULT = 4  # a vault takes over when equity < 2/3 MM (hyperliquid)


class ADLRanking(IntEnum):
    PNL_X_MARGIN_RATIO = 1  # binance
    PROFIT_X_EFFECTIVE_LEVERAGE = 2  # bybit
    PNL_X_EFFECTIVE_LEVERAGE = 3  # bitmex (÷ when at a loss)
    SEEDED_OFFSET = 4  # dydx: offsetting accounts from a seeded pseudo-random start
    PNL_LEVERAGE_INDEX = 5  # hyperliquid


class ADLPrice(IntEnum):
    BANKRUPTCY = 1
    MARK = 2


class FundingCap(IntEnum):
    PER_SYMBOL = 1  # the instrument's cap / floor
    BITMEX = 2  # 75% × (IMR − MMR)
    DYDX = 3  # 600% × (IMF − MMF) per 8 h
    HYPERLIQUID = 4  # 4% per hour


class LossRule(IntEnum):
    ADL = 1
    SOCIALIZED = 2  # pro-rata haircut of winners


class InsuranceScope(IntEnum):
    PER_SYMBOL = 1
    SHARED = 2


@dataclass(frozen=True, slots=True)
class VenueProfile:
    name: str
    brackets: BracketStyle = BracketStyle.MARGINAL
    liquidation_order: LiquidationOrder = LiquidationOrder.IOC_AT_BANKRUPTCY
    bankruptcy: BankruptcyRule = BankruptcyRule.ZERO_BALANCE
    backstop: Backstop = Backstop.INSURANCE_TAKEOVER
    adl_ranking: ADLRanking = ADLRanking.PNL_X_MARGIN_RATIO
    adl_price: ADLPrice = ADLPrice.BANKRUPTCY
    funding_interval_ns: int = 8 * HOUR_NS
    funding_rate_divisor: int = 1  # the 8-hour rate is divided by this per interval (1 h venues: 8)
    funding_cap: FundingCap = FundingCap.PER_SYMBOL
    loss_rule: LossRule = LossRule.ADL
    insurance_scope: InsuranceScope = InsuranceScope.PER_SYMBOL
    liquidation_slice_e8: int = E8  # share of a position one liquidation order may close (hyperliquid 20%)
    backstop_equity_e8: int = 0  # hyperliquid: vault takes over when equity < this × MM (2/3)
    risk: RiskOptions = field(default_factory=RiskOptions)
    # when a part is liquidatable: balance ≤ MM (binance, bybit, bitmex), < MM (hyperliquid), < MM and MM > 0 (dydx)
    liquidation_trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE
    # what an isolated position's MM is charged on: the notional at the mark, or the entry value (bybit, bitmex)
    isolated_maintenance: IsolatedMaintenance = IsolatedMaintenance.MARK

    def __post_init__(self):
        if self.funding_interval_ns <= 0 or self.funding_rate_divisor < 1:
            raise ValueError("funding interval must be positive and the divisor ≥ 1")
        if not 0 < self.liquidation_slice_e8 <= E8 or self.backstop_equity_e8 < 0:
            raise ValueError("liquidation slice must be in (0, 100%] and the backstop level ≥ 0")
        if self.liquidation_trigger not in tuple(LiquidationTrigger) or \
                self.isolated_maintenance not in tuple(IsolatedMaintenance):
            raise ValueError("liquidation_trigger and isolated_maintenance must be values of their enums")


PROFILES = {
    "binance": VenueProfile("binance"),
    "bybit": VenueProfile(
        "bybit", liquidation_order=LiquidationOrder.FOK_TIER_THEN_TAKEOVER, bankruptcy=BankruptcyRule.ENTRY_IMR,
        adl_ranking=ADLRanking.PROFIT_X_EFFECTIVE_LEVERAGE, isolated_maintenance=IsolatedMaintenance.ENTRY,
    ),
    "bitmex": VenueProfile(
        "bitmex", brackets=BracketStyle.STEPWISE, liquidation_order=LiquidationOrder.LIMIT_AT_BANKRUPTCY,
        backstop=Backstop.INSURANCE_FUND, adl_ranking=ADLRanking.PNL_X_EFFECTIVE_LEVERAGE,
        funding_cap=FundingCap.BITMEX, isolated_maintenance=IsolatedMaintenance.ENTRY,
    ),
    "dydx": VenueProfile(
        "dydx", brackets=BracketStyle.OPEN_INTEREST_IMF, liquidation_order=LiquidationOrder.IOC_AT_FILLABLE_PRICE,
        bankruptcy=BankruptcyRule.DYDX_DELTA, backstop=Backstop.INSURANCE_PER_FILL,
        adl_ranking=ADLRanking.SEEDED_OFFSET, funding_interval_ns=HOUR_NS, funding_rate_divisor=8,
        funding_cap=FundingCap.DYDX, liquidation_trigger=LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE,
    ),
    "hyperliquid": VenueProfile(
        "hyperliquid", liquidation_order=LiquidationOrder.MARKET_SLICES, backstop=Backstop.BACKSTOP_VAULT,
        adl_ranking=ADLRanking.PNL_LEVERAGE_INDEX, adl_price=ADLPrice.MARK, funding_interval_ns=HOUR_NS,
        funding_rate_divisor=8, funding_cap=FundingCap.HYPERLIQUID, liquidation_slice_e8=20_000_000,
        backstop_equity_e8=E8 * 2 // 3, liquidation_trigger=LiquidationTrigger.BELOW_MAINTENANCE,
    ),
}
DEFAULT_PROFILE = PROFILES["binance"]
