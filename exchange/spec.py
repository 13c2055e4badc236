"""Instrument definitions: frozen, validated at construction, integers inside (rules §1, §2).

Build one with :meth:`Instrument.linear`, which takes human values (str / Decimal / int) and converts
them exactly through :mod:`exchange.units`; the dataclass itself holds only integers:

- ``K = tick_size × lot_size × multiplier × 10⁸`` (units of money per tick per lot) must be an integer;
  notional_units = price_ticks × lots × K.
- ``max_price_ticks × max_qty_lots × K`` must stay below 2⁶² so no notional can overflow 64 bits.

Raises :class:`SpecError` (a ``ValueError``) for anything inconsistent.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum
from math import isqrt

from . import units
from .units import E8, MAX_ABS_VALUE, NS_PER_SECOND, UnitsError


class SpecError(units.InputError):
    """An instrument or profile parameter is invalid."""


class MarkSource(IntEnum):
    MEDIAN = 1  # median(P1, P2, last trade), rules §6
    INDEX = 2
    EXTERNAL = 3
    FAIR_PRICE = 4  # BitMEX fair price: index × (1 + last funding rate × time to funding / interval) (= P1)


@dataclass(frozen=True, slots=True)
class RiskBracket:
    """One maintenance-margin tier: applies to notional up to ``notional_cap_units`` (inclusive)."""

    notional_cap_units: int
    mmr_e8: int
    max_leverage: int


@dataclass(frozen=True, slots=True)
class FundingParams:
    """Funding rules (rules §8). Rates ×10⁸ per interval; times in ns.

    ``cap_e8`` / ``floor_e8`` bound the rate under the per-symbol cap rule (binance, bybit); None ("not given")
    derives them from the brackets: ``±75% × the first bracket's MMR`` (Binance's rule; ±0.3% with the default
    brackets, the previous explicit default). ``interest_quote_e8`` / ``interest_base_e8`` (both or neither)
    are the daily borrowing rates of the quote and base currency (Bybit's and BitMEX's interest indices); given,
    they replace ``interest_e8`` with ``(quote − base) × interval / 1 day`` (``docs/funding.md``)."""

    interval_ns: int = 8 * 3600 * NS_PER_SECOND
    sample_interval_ns: int = 5 * NS_PER_SECOND
    interest_e8: int = 10_000  # 0.01% per interval
    clamp_e8: int = 50_000  # ±0.05%
    cap_e8: int | None = None  # None: derived (binance: +75% × first-bracket MMR)
    floor_e8: int | None = None  # None: derived (binance: −75% × first-bracket MMR)
    impact_margin_notional_units: int = 0  # 0 = 200 × max_leverage of the settlement asset
    interest_quote_e8: int | None = None  # daily borrowing rate of the quote currency (Bybit / BitMEX index)
    interest_base_e8: int | None = None  # daily borrowing rate of the base currency

    def __post_init__(self):
        if self.interval_ns <= 0 or self.sample_interval_ns <= 0:
            raise SpecError("funding intervals must be positive")
        if self.sample_interval_ns > self.interval_ns:
            raise SpecError("the premium sample interval cannot exceed the funding interval")
        if self.clamp_e8 < 0 or (self.floor_e8 is not None and self.cap_e8 is not None and self.floor_e8 > self.cap_e8):
            raise SpecError("funding clamp must be ≥ 0 and floor ≤ cap")
        optional = (self.cap_e8, self.floor_e8, self.interest_quote_e8, self.interest_base_e8)
        if any(value is not None and type(value) is not int for value in optional):
            raise SpecError("funding cap, floor and interest indices must be ints (×10⁸) or None")
        if (self.interest_quote_e8 is None) != (self.interest_base_e8 is None):
            raise SpecError("give both interest indices (quote and base) or neither")
        if any(rate is not None and not -E8 <= rate <= E8 for rate in (self.interest_quote_e8, self.interest_base_e8)):
            raise SpecError("interest indices are daily rates within ±100%")


@dataclass(frozen=True, slots=True)
class MarkParams:
    """Mark price rules (rules §6)."""

    source: MarkSource = MarkSource.MEDIAN
    basis_window_ns: int = 60 * NS_PER_SECOND


DEFAULT_BRACKETS = (  # Binance BTCUSDT-style tiers: (cap in USDT, MMR, max leverage)
    ("50000", "0.004", 125),
    ("250000", "0.005", 100),
    ("1000000", "0.01", 50),
    ("10000000", "0.025", 20),
    ("20000000", "0.05", 10),
    ("50000000", "0.1", 5),
    ("100000000", "0.125", 4),
    ("200000000", "0.15", 3),
    ("300000000", "0.25", 2),
    ("500000000", "0.5", 1),
)


@dataclass(frozen=True, slots=True)
class Instrument:
    """A linear perpetual contract. All fields are integers in the units their suffix names."""

    symbol: str
    base: str
    quote: str
    settle: str
    tick_size: Decimal
    lot_size: Decimal
    multiplier: Decimal
    k_units: int  # money units per (tick × lot)
    min_price_ticks: int
    max_price_ticks: int
    min_qty_lots: int
    max_qty_lots: int
    max_market_qty_lots: int
    min_notional_units: int
    band_up_e8: int  # buy limit ≤ mark × up
    band_down_e8: int  # sell limit ≥ mark × down
    maker_fee_e8: int  # negative = rebate
    taker_fee_e8: int
    max_leverage: int
    brackets: tuple[RiskBracket, ...]
    liquidation_fee_e8: int
    funding: FundingParams = field(default_factory=FundingParams)
    mark: MarkParams = field(default_factory=MarkParams)
    min_callback_e8: int = 100_000  # trailing stop callback 0.1% ..
    max_callback_e8: int = 10_000_000  # .. 10%
    # dYdX-style open-interest scaling of the initial margin (bracket style OPEN_INTEREST_IMF): the IMF grows
    # from 1 / leverage at this open interest notional (units) to 100% at the upper cap; upper 0 = disabled
    open_interest_lower_cap_units: int = 0
    open_interest_upper_cap_units: int = 0

    def __post_init__(self):
        if not self.symbol or not self.symbol.isalnum():
            raise SpecError(f"symbol must be non-empty alphanumeric, got {self.symbol!r}")
        if self.k_units <= 0:
            raise SpecError("K must be a positive integer")
        if not 1 <= self.min_price_ticks <= self.max_price_ticks:
            raise SpecError("need 1 ≤ min_price ≤ max_price")
        if not 1 <= self.min_qty_lots <= self.max_qty_lots:
            raise SpecError("need 1 lot ≤ min_qty ≤ max_qty")
        if not 1 <= self.max_market_qty_lots <= self.max_qty_lots:
            raise SpecError("need 1 lot ≤ max_market_qty ≤ max_qty")
        if self.max_price_ticks * self.max_qty_lots * self.k_units > MAX_ABS_VALUE:
            raise SpecError("max_price × max_qty notional exceeds 2^62 units; lower max_price or max_qty")
        if self.min_notional_units < 0:
            raise SpecError("min_notional must be ≥ 0")
        if not (E8 <= self.band_up_e8 <= 100 * E8 and 0 < self.band_down_e8 <= E8):
            raise SpecError("price band needs up ≥ 1 and 0 < down ≤ 1")
        if not (-E8 < self.maker_fee_e8 < E8 and 0 <= self.taker_fee_e8 < E8):
            raise SpecError("fee rates must lie in (-1, 1); taker ≥ 0")
        if self.maker_fee_e8 + self.taker_fee_e8 < 0:
            raise SpecError("maker rebate cannot exceed the taker fee (the venue would pay out money)")
        if not 0 <= self.liquidation_fee_e8 < E8:
            raise SpecError("liquidation fee must be in [0, 1)")
        if not 0 < self.min_callback_e8 <= self.max_callback_e8 < E8:
            raise SpecError("callback range must satisfy 0 < min ≤ max < 100%")
        _validate_brackets(self.brackets, self.max_leverage)
        if not 0 <= self.open_interest_lower_cap_units <= self.open_interest_upper_cap_units <= MAX_ABS_VALUE or (
                self.open_interest_lower_cap_units and not self.open_interest_upper_cap_units):
            raise SpecError("open interest caps need 0 ≤ lower ≤ upper ≤ 2^62 (upper 0 disables scaling)")

    @classmethod
    def linear(
        cls,
        symbol: str = "BTCUSDT",
        *,
        base: str = "",
        quote: str = "USDT",
        tick_size="0.01",
        lot_size="0.001",
        multiplier="1",
        min_price=None,
        max_price=None,
        min_qty="0.001",
        max_qty=None,
        max_market_qty=None,
        min_notional="5",
        band_up="1.15",
        band_down="0.85",
        maker_fee="0.0002",
        taker_fee="0.0005",
        max_leverage: int = 125,
        brackets=DEFAULT_BRACKETS,
        liquidation_fee="0.0125",
        funding: FundingParams | None = None,
        mark: MarkParams | None = None,
        open_interest_caps=("0", "0"),
    ) -> "Instrument":
        """Define a USDT-margined linear perpetual from human values (converted exactly).

        ``min_price`` defaults to one tick; ``max_market_qty`` to ``max_qty``. ``max_price`` and ``max_qty``
        default to the largest bounds the 2⁶² rule allows (``max_price_ticks × max_qty_lots × K ≤ 2⁶²``, rules
        §1): given one, the other is ``⌊2⁶² / (K × it)⌋`` in grid steps; given neither, the budget is split
        evenly, ``max_price_ticks = ⌊√(2⁶² / K)⌋`` and ``max_qty_lots = ⌊2⁶² / (K × max_price_ticks)⌋`` (BTCUSDT
        with tick 0.01, lot 0.001: max price 679,093.95, max quantity 67,909.396). Pass both to choose them.

        ``brackets`` is a sequence of ``(notional_cap, mmr, max_leverage)``; ``open_interest_caps`` the
        ``(lower, upper)`` open interest notionals of dYdX-style IMF scaling. Raises :class:`SpecError`.
        """
        try:
            tick, lot, mult = (units.to_decimal(v) for v in (tick_size, lot_size, multiplier))
            if tick <= 0 or lot <= 0 or mult <= 0:
                raise SpecError("tick_size, lot_size and multiplier must be positive")
            k = tick * lot * mult * E8
            if k != k.to_integral_value():
                raise SpecError(f"K = tick × lot × multiplier × 1e8 = {k} is not an integer")
            max_price_ticks, max_qty_lots = default_bounds(
                int(k), None if max_price is None else units.to_ticks(max_price, tick),
                None if max_qty is None else units.to_lots(max_qty, lot))
            return cls(
                symbol=symbol,
                base=base or (symbol[: -len(quote)] if symbol.endswith(quote) else symbol),
                quote=quote,
                settle=quote,
                tick_size=tick,
                lot_size=lot,
                multiplier=mult,
                k_units=int(k),
                min_price_ticks=units.to_ticks(min_price, tick) if min_price is not None else 1,
                max_price_ticks=max_price_ticks,
                min_qty_lots=units.to_lots(min_qty, lot),
                max_qty_lots=max_qty_lots,
                max_market_qty_lots=units.to_lots(max_market_qty, lot) if max_market_qty is not None else max_qty_lots,
                min_notional_units=units.to_units(min_notional),
                band_up_e8=units.to_e8(band_up),
                band_down_e8=units.to_e8(band_down),
                maker_fee_e8=units.to_e8(maker_fee),
                taker_fee_e8=units.to_e8(taker_fee),
                max_leverage=max_leverage,
                brackets=tuple(
                    RiskBracket(units.to_units(cap), units.to_e8(mmr), int(lev)) for cap, mmr, lev in brackets
                ),
                liquidation_fee_e8=units.to_e8(liquidation_fee),
                funding=funding or FundingParams(),
                mark=mark or MarkParams(),
                open_interest_lower_cap_units=units.to_units(open_interest_caps[0]),
                open_interest_upper_cap_units=units.to_units(open_interest_caps[1]),
            )
        except UnitsError as exc:
            raise SpecError(f"{symbol}: {exc}") from None

    @classmethod
    def hyperliquid(cls, symbol: str = "BTCUSDC", *, margin_tiers=(("150000000", 40), ("1000000000", 20)),
                    quote: str = "USDC", **params) -> "Instrument":
        """A linear perpetual described as Hyperliquid describes one: ``margin_tiers`` are ``(notional cap,
        max leverage)`` rows (default: BTC's mainnet tiers, 40x up to 150M, then 20x; the last cap only has to
        exceed the one before, a larger notional stays in the last row) and each row's MMR is derived, half the
        initial margin rate at its max leverage (:meth:`with_mmr_from_leverage`). ``max_leverage`` defaults to
        the first tier's; every other parameter is :meth:`linear`'s. Raises :class:`SpecError`."""
        try:
            brackets = [(cap, "0", int(leverage)) for cap, leverage in margin_tiers]
        except (TypeError, ValueError):
            raise SpecError(f"{symbol}: margin_tiers must be (notional cap, max leverage) pairs") from None
        params.setdefault("max_leverage", brackets[0][2] if brackets else 1)
        return cls.linear(symbol, quote=quote, brackets=brackets, **params).with_mmr_from_leverage()

    def with_mmr_from_leverage(self) -> "Instrument":
        """This instrument with every bracket's MMR replaced by half the initial margin rate at the bracket's
        max leverage, ``⌈10⁸ / (2 × max leverage)⌉`` e8 (Hyperliquid's rule; rounded up to a whole e8, so 3x
        gives 16.666667 %). The cum follows from the new rates as always (rules §2)."""
        rows = tuple(RiskBracket(b.notional_cap_units, mmr_from_leverage_e8(b.max_leverage), b.max_leverage)
                     for b in self.brackets)
        return dataclasses.replace(self, brackets=rows)

    # -- conversions at the boundary -------------------------------------------------------------
    def price_to_ticks(self, price) -> int:
        """Exact price -> ticks; :class:`~exchange.units.UnitsError` if off the tick grid."""
        return units.to_ticks(price, self.tick_size)

    def qty_to_lots(self, qty) -> int:
        """Exact quantity -> lots; :class:`~exchange.units.UnitsError` if off the lot grid."""
        return units.to_lots(qty, self.lot_size)

    def ticks_to_price(self, ticks: int) -> Decimal:
        return units.from_grid(ticks, self.tick_size)

    def lots_to_qty(self, lots: int) -> Decimal:
        return units.from_grid(lots, self.lot_size)

    def notional_units(self, price_ticks: int, qty_lots: int) -> int:
        """``price × qty`` in money units (exact)."""
        return price_ticks * qty_lots * self.k_units


def default_bounds(k_units: int, max_price_ticks: int | None, max_qty_lots: int | None) -> tuple[int, int]:
    """``(max_price_ticks, max_qty_lots)`` with the missing ones derived from the 2⁶² rule
    (``max_price_ticks × max_qty_lots × K ≤ 2⁶²``; :meth:`Instrument.linear`). Raises :class:`SpecError`
    when a given bound leaves no room for the other (or K alone exceeds 2⁶²)."""
    budget = MAX_ABS_VALUE // k_units  # the largest max_price_ticks × max_qty_lots
    if not budget:
        raise SpecError("K = tick × lot × multiplier × 1e8 alone exceeds 2^62 units")
    if max_price_ticks is None and max_qty_lots is None:
        max_price_ticks = isqrt(budget)
    if max_qty_lots is None:
        max_qty_lots = budget // max(max_price_ticks, 1)  # a max price < 1 tick is refused by validation
        if not max_qty_lots:
            raise SpecError("max_price × K alone exceeds 2^62 units: lower max_price (or give max_qty)")
    elif max_price_ticks is None:
        max_price_ticks = budget // max(max_qty_lots, 1)
        if not max_price_ticks:
            raise SpecError("max_qty × K alone exceeds 2^62 units: lower max_qty (or give max_price)")
    return max_price_ticks, max_qty_lots


def mmr_from_leverage_e8(max_leverage: int) -> int:
    """Half the initial margin rate at ``max_leverage``, rounded up to a whole e8: ``⌈10⁸ / (2 × L)⌉``."""
    return -(-E8 // (2 * max_leverage))


def _validate_brackets(brackets: tuple[RiskBracket, ...], max_leverage: int) -> None:
    if not brackets:
        raise SpecError("at least one risk bracket is required")
    if not 1 <= max_leverage <= brackets[0].max_leverage:
        raise SpecError("max_leverage must be between 1 and the first bracket's max leverage")
    previous = None
    for bracket in brackets:
        if bracket.notional_cap_units <= 0 or not 0 <= bracket.mmr_e8 < E8 or bracket.max_leverage < 1:
            raise SpecError(f"invalid bracket {bracket}")
        if previous is not None and not (
            bracket.notional_cap_units > previous.notional_cap_units
            and bracket.mmr_e8 >= previous.mmr_e8
            and bracket.max_leverage <= previous.max_leverage
        ):
            raise SpecError("brackets need increasing caps, non-decreasing MMR, non-increasing leverage")
        if bracket.mmr_e8 * bracket.max_leverage > E8:
            raise SpecError(f"bracket {bracket}: MMR × max leverage > 1 (maintenance above initial margin)")
        previous = bracket
