"""Venue profiles: the *configurable* rules of rules §10 as named, frozen configurations.

A profile says *which* rule applies; the modules that apply them (margin brackets, liquidation, ADL,
funding) branch on these enums (``LiquidationTrigger`` and ``IsolatedMaintenance`` live in
:mod:`exchange.accounts.margin`, which applies them, and are re-exported here). ``PROFILES[name]`` holds the five built-in venues; ``binance`` is the
default. Numbers are integers in the units their suffix names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .enums import STPMode
from .accounts.margin import IsolatedMaintenance, LiquidationTrigger
from .spec import MarkSource
from .units import E8, NS_PER_SECOND, InputError

HOUR_NS = 3600 * NS_PER_SECOND
PPM = 1_000_000


class BracketStyle(IntEnum):
    MARGINAL = 1  # each slice of notional pays its tier's rate (cum / MM deduction): binance, bybit, hyperliquid
    STEPWISE = 2  # the whole position at the step's rate: bitmex
    OPEN_INTEREST_IMF = 3  # liquidity tier, IMF scaled by open interest: dydx


class LiquidationOrder(IntEnum):
    IOC_AT_BANKRUPTCY = 1  # binance: tier reduction first, IOC limited at the bankruptcy price
    FOK_TIER_THEN_TAKEOVER = 2  # bybit: FOK tier reduction, then insurance takeover at the bankruptcy price
    LIMIT_AT_BANKRUPTCY = 3  # bitmex: the engine's limit order at the bankruptcy price
    IOC_AT_FILLABLE_PRICE = 4  # dydx: IOC at the fillable price, sized by block limits (exchange.liquidation.dydx)
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


class FundingAccrual(IntEnum):
    RATE = 1  # per lot: mark × K × the settlement rate truncated to whole e8
    INDEX = 2  # dydx: the per-lot funding-index delta truncated toward zero (rate × price × time / 8 h)


class LossRule(IntEnum):
    ADL = 1
    SOCIALIZED = 2  # pro-rata haircut of winners


class InsuranceScope(IntEnum):
    PER_SYMBOL = 1
    SHARED = 2


class FundingPrice(IntEnum):
    """The price a funding payment values a position at (``|lots| × price × K × rate``)."""

    MARK = 1  # the risk price (mark): binance, bybit, bitmex, dydx
    INDEX = 2  # the oracle (index) price, the mark until an index is set: dydx, hyperliquid


class ADLIndicator(IntEnum):
    """How :meth:`Exchange.adl_quantile` turns a position's place in the ADL queue into 1-5 lights."""

    USER_COUNT = 1  # rank / number of user positions on the side, in fifths: binance (and the others)
    QUANTITY = 2  # share of the side's quantity ranked at or above it, in 20 % steps: bitmex


@dataclass(frozen=True, slots=True)
class RiskOptions:
    """Venue rules of the risk stage (all *configurable* in the rulebook's sense).

    ``allow_mode_switch_with_position``: SetMarginMode may switch a symbol with an open position (rules §4).
    ``count_unrealized_gains``: unrealized cross gains count toward the available balance.
    ``margin_call_e8``: margin ratio (×10⁸) at which a MarginCall event is emitted (default 80%).
    ``default_leverage``: leverage of an unconfigured (account, symbol), capped by the instrument's max.
    """

    allow_mode_switch_with_position: bool = False
    count_unrealized_gains: bool = False
    margin_call_e8: int = 80_000_000
    default_leverage: int = 20

    def __post_init__(self):
        if not 0 < self.margin_call_e8 or self.default_leverage < 1:
            raise ValueError("margin_call_e8 must be > 0 and default_leverage ≥ 1")


@dataclass(frozen=True, slots=True)
class DydxLiquidations:
    """dYdX v4's liquidations config (x/clob ``LiquidationsConfig``), read by the IOC_AT_FILLABLE_PRICE order
    (:mod:`exchange.liquidation.dydx`). Rates in ppm, as the venue has them; money in units (10⁻⁸; the venue's quote
    quantums are 10⁻⁶ USDC, so 1 quantum = 100 units). The defaults are the public network's genesis
    (v4-chain ``testing/genesis.sh``); :data:`DYDX_MODULE_DEFAULTS` is the module's own default
    (``LiquidationsConfig_Default``). Validated as the venue's ``Validate()`` does (InputError)."""

    max_liquidation_fee_ppm: int = 15_000  # fee cap on a fill's quote (1.5 %)
    bankruptcy_adjustment_ppm: int = PPM  # BA ≥ 1: scales the rating 1 − TNC / TMMR
    spread_to_maintenance_margin_ratio_ppm: int = 1_500_000  # SMMR: widest spread = SMMR × the position's MM
    min_position_notional_liquidated_units: int = 1_000 * E8  # a block may always take this much of a position
    max_position_portion_liquidated_ppm: int = 100_000  # ... or this share of it, whichever is larger
    max_notional_liquidated_units: int = 100_000 * E8  # per margin part and block
    max_insurance_lost_units: int = 1_000_000 * E8  # fund payouts per margin part and block (max_quantums_insurance_lost)

    def __post_init__(self):
        values = [getattr(self, name) for name in self.__slots__]
        if not all(type(v) is int for v in values):
            raise InputError("DydxLiquidations fields must be ints")
        if not (0 < self.max_liquidation_fee_ppm <= PPM and self.bankruptcy_adjustment_ppm >= PPM
                and self.spread_to_maintenance_margin_ratio_ppm > 0 and 0 < self.max_position_portion_liquidated_ppm <= PPM
                and self.max_notional_liquidated_units > 0 and self.max_insurance_lost_units > 0
                and self.min_position_notional_liquidated_units >= 0):
            raise InputError("invalid DydxLiquidations: fee in (0, 1e6] ppm, bankruptcy adjustment ≥ 1e6 ppm, spread "
                             "ratio > 0, portion in (0, 1e6] ppm, notional and insurance limits > 0, min notional ≥ 0")


QUANTUM_UNITS = 100  # one dYdX quote quantum (10⁻⁶ USDC) in money units (10⁻⁸)
DYDX_MODULE_DEFAULTS = DydxLiquidations(5_000, PPM, 100_000, 1_000 * QUANTUM_UNITS, PPM, 10**14 * QUANTUM_UNITS,
                                        10**14 * QUANTUM_UNITS)


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
    dydx: DydxLiquidations = field(default_factory=DydxLiquidations)  # read by IOC_AT_FILLABLE_PRICE only
    mark_source: MarkSource | None = None  # every instrument's mark source (None: each instrument's own)
    funding_accrual: FundingAccrual = FundingAccrual.RATE
    stp_override: int = 0  # 0: each order's own STP mode; else the STPMode of every order (dydx, hyperliquid)
    funding_price: FundingPrice = FundingPrice.MARK
    liquidation_cooldown_ns: int = 0  # hyperliquid 30 s: after a sliced liquidation, whole positions (rules §7)
    mmr_from_leverage: bool = False  # hyperliquid: each bracket's MMR is 1 / (2 × its max leverage) (rules §2)
    price_sig_figs: int = 0  # hyperliquid 5: a price that is not a whole number has at most this many
    price_decimals: int = 0  # ... significant figures and at most price_decimals − szDecimals decimals (0: off)
    adl_indicator: ADLIndicator = ADLIndicator.USER_COUNT
    # when a part is liquidatable: balance ≤ MM (binance, bybit, bitmex), < MM (hyperliquid), < MM and MM > 0 (dydx)
    liquidation_trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE
    # what an isolated position's MM is charged on: the notional at the mark, or the entry value (bybit, bitmex)
    isolated_maintenance: IsolatedMaintenance = IsolatedMaintenance.MARK

    def __post_init__(self):
        if not isinstance(self.dydx, DydxLiquidations):
            raise InputError("VenueProfile.dydx must be a DydxLiquidations")
        if self.funding_interval_ns <= 0 or self.funding_rate_divisor < 1:
            raise ValueError("funding interval must be positive and the divisor ≥ 1")
        if not 0 < self.liquidation_slice_e8 <= E8 or self.backstop_equity_e8 < 0:
            raise ValueError("liquidation slice must be in (0, 100%] and the backstop level ≥ 0")
        if self.mark_source is not None and self.mark_source not in tuple(MarkSource):
            raise ValueError(f"mark_source must be a MarkSource or None, got {self.mark_source!r}")
        if self.funding_accrual not in tuple(FundingAccrual):
            raise ValueError(f"funding_accrual must be a FundingAccrual, got {self.funding_accrual!r}")
        if self.stp_override not in (0, *STPMode):
            raise ValueError(f"stp_override must be 0 or an STPMode, got {self.stp_override!r}")
        if self.liquidation_cooldown_ns < 0 or self.price_sig_figs < 0 or self.price_decimals < 0:
            raise ValueError("the liquidation cooldown and the price precision limits must be ≥ 0")
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
        funding_cap=FundingCap.BITMEX, adl_indicator=ADLIndicator.QUANTITY, isolated_maintenance=IsolatedMaintenance.ENTRY,
    ),
    "dydx": VenueProfile(
        "dydx", brackets=BracketStyle.OPEN_INTEREST_IMF, liquidation_order=LiquidationOrder.IOC_AT_FILLABLE_PRICE,
        bankruptcy=BankruptcyRule.DYDX_DELTA, backstop=Backstop.INSURANCE_PER_FILL,
        adl_ranking=ADLRanking.SEEDED_OFFSET, funding_interval_ns=HOUR_NS, funding_rate_divisor=8,
        funding_cap=FundingCap.DYDX, funding_accrual=FundingAccrual.INDEX, stp_override=STPMode.EXPIRE_MAKER,
        liquidation_trigger=LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE, funding_price=FundingPrice.INDEX,
    ),
    "hyperliquid": VenueProfile(
        "hyperliquid", liquidation_order=LiquidationOrder.MARKET_SLICES, backstop=Backstop.BACKSTOP_VAULT,
        adl_ranking=ADLRanking.PNL_LEVERAGE_INDEX, adl_price=ADLPrice.MARK, funding_interval_ns=HOUR_NS,
        funding_rate_divisor=8, funding_cap=FundingCap.HYPERLIQUID, liquidation_slice_e8=20_000_000,
        backstop_equity_e8=E8 * 2 // 3, stp_override=STPMode.EXPIRE_MAKER, funding_price=FundingPrice.INDEX,
        liquidation_cooldown_ns=30 * NS_PER_SECOND, mmr_from_leverage=True, price_sig_figs=5, price_decimals=6,
        liquidation_trigger=LiquidationTrigger.BELOW_MAINTENANCE,
    ),
}
DEFAULT_PROFILE = PROFILES["binance"]
