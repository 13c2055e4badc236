"""Funding-rate mathematics (rules §8, §10), exact: impact prices, premium index, rate, caps, payments.

All prices are in ticks, money in units (10⁻⁸), rates ×10⁸, times in ns. Intermediate values are exact
:class:`fractions.Fraction`; each result is rounded once, by the rule its docstring names:

- premium samples and the funding rate are truncated toward zero to whole e8 (a rate, not money);
- a payer's payment rounds up and a receiver's rounds down, so the venue never pays out more than it
  collects; the dust goes to the insurance fund (rules §1).

Rate periods. An instrument's :class:`~exchange.spec.FundingParams` quote the interest, the premium clamp
and the per-symbol cap/floor for one *rate period* (``FundingParams.interval_ns``, 8 h by default). The
venue settles every ``profile.funding_interval_ns`` and pays ``1 / profile.funding_rate_divisor`` of the
rate-period rate each time (the 1-hour venues: the 8-hour rate ÷ 8), so
``interval_ns == funding_interval_ns × funding_rate_divisor`` (:func:`check_rate_period`).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

from .profiles import HOUR_NS, FundingCap, VenueProfile
from .spec import Instrument
from .units import E8, UNITS_PER_COIN, InputError

EIGHT_HOURS_NS = 8 * HOUR_NS
BITMEX_CAP_SHARE = Fraction(3, 4)  #: BitMEX: |F| ≤ 75% × (IMR − MMR)
DYDX_CLAMP_FACTOR = 6  #: dYdX: |F| ≤ 600% × (IMF − MMF) per 8 h
HYPERLIQUID_CAP_PER_HOUR_E8 = 4_000_000  #: Hyperliquid: |F| ≤ 4% per hour
IMPACT_MARGIN_UNITS = 200 * UNITS_PER_COIN  #: default impact margin: notional = 200 × max leverage


def impact_price(levels: Iterable[tuple[int, int, int]], impact_notional_units: int, k_units: int) -> Fraction | None:
    """Average fill price (ticks, exact) of taking ``impact_notional_units`` of notional from ``levels``
    (``(price_ticks, lots, orders)``, best first). The last level is taken fractionally. None when the
    side cannot absorb the whole notional."""
    if impact_notional_units <= 0:
        raise ValueError("impact notional must be positive")
    remaining = Fraction(impact_notional_units)
    lots_taken = Fraction(0)
    for price_ticks, lots, _ in levels:
        level_notional = price_ticks * lots * k_units
        if level_notional >= remaining:
            lots_taken += remaining / (price_ticks * k_units)
            return Fraction(impact_notional_units, k_units) / lots_taken
        remaining -= level_notional
        lots_taken += lots
    return None


def premium_e8(impact_bid: Fraction | None, impact_ask: Fraction | None, index_ticks: int) -> int:
    """``(max(0, impact_bid − index) − max(0, index − impact_ask)) / index`` ×10⁸, truncated toward zero.
    A side that cannot absorb the impact notional contributes 0."""
    if index_ticks <= 0:
        raise ValueError("index price must be positive")
    over = max(Fraction(0), impact_bid - index_ticks) if impact_bid is not None else Fraction(0)
    under = max(Fraction(0), index_ticks - impact_ask) if impact_ask is not None else Fraction(0)
    return _truncate((over - under) * E8 / index_ticks)


def average_premium(samples_e8: Sequence[int]) -> Fraction:
    """Time-weighted average ``Σ i·P_i / Σ i`` (i = 1..n, later samples weigh more), exact, ×10⁸."""
    return weighted_average(sum(i * p for i, p in enumerate(samples_e8, start=1)), len(samples_e8))


def weighted_average(weighted_sum_e8: int, count: int) -> Fraction:
    """``Σ i·P_i / Σ i`` from ``Σ i·P_i`` and n (``Σ i = n(n+1)/2``), exact, ×10⁸; 0 without samples."""
    return Fraction(weighted_sum_e8, count * (count + 1) // 2) if count else Fraction(0)


def funding_rate_e8(samples_e8: Sequence[int], interest_e8: int, clamp_e8: int, floor_e8: int, cap_e8: int) -> int:
    """``F = P_avg + clamp(I − P_avg, −clamp, +clamp)``, then ``clamp(F, floor, cap)``; ×10⁸, truncated
    toward zero. With no samples P_avg = 0 (F = the interest rate, clamped)."""
    return settlement_rate_e8(average_premium(samples_e8), interest_e8, clamp_e8, floor_e8, cap_e8)


def settlement_rate_e8(p_avg_e8: Fraction, interest_e8: int, clamp_e8: int, floor_e8: Fraction | int,
                       cap_e8: Fraction | int, divisor: int = 1) -> int:
    """The rate paid at one settlement: ``clamp(P_avg + clamp(I − P_avg, ±clamp), floor, cap) / divisor``,
    exact until one truncation toward zero (×10⁸). ``floor``/``cap`` bound the rate-period rate (they may be
    exact fractions, :func:`rate_bounds_e8`); ``divisor`` = ``profile.funding_rate_divisor``. With integer
    bounds and divisor 1 this equals truncating first and clamping after (the bounds are whole e8)."""
    rate = p_avg_e8 + _clamp(interest_e8 - p_avg_e8, -clamp_e8, clamp_e8)
    return _truncate(_clamp(rate, floor_e8, cap_e8) / divisor)


def rate_bounds_e8(rule: FundingCap, inst: Instrument) -> tuple[Fraction, Fraction]:
    """``(floor, cap)`` of the rate-period rate (×10⁸, exact) under the venue's cap rule (rules §10).

    IMR / IMF = ``1 / inst.max_leverage``; MMR / MMF = the first risk bracket's rate (the venue's base tier).

    - PER_SYMBOL: the instrument's ``floor_e8`` / ``cap_e8``;
    - BITMEX: ``±75% × (IMR − MMR)``;
    - DYDX: ``±600% × (IMF − MMF)`` per 8 h, scaled to the rate period (× period / 8 h);
    - HYPERLIQUID: ``±4%`` per hour, scaled to the rate period (× period / 1 h; 32% per 8 h, so 4% per hourly
      settlement after the ÷ 8).
    """
    params = inst.funding
    margin_gap = Fraction(E8, inst.max_leverage) - inst.brackets[0].mmr_e8
    if rule == FundingCap.PER_SYMBOL:
        return Fraction(params.floor_e8), Fraction(params.cap_e8)
    if rule == FundingCap.BITMEX:
        cap = BITMEX_CAP_SHARE * margin_gap
    elif rule == FundingCap.DYDX:
        cap = DYDX_CLAMP_FACTOR * margin_gap * Fraction(params.interval_ns, EIGHT_HOURS_NS)
    elif rule == FundingCap.HYPERLIQUID:
        cap = HYPERLIQUID_CAP_PER_HOUR_E8 * Fraction(params.interval_ns, HOUR_NS)
    else:
        raise ValueError(f"unknown funding cap rule {rule!r}")
    return -cap, cap


def check_rate_period(inst: Instrument, profile: VenueProfile) -> None:
    """Raise :class:`~exchange.units.InputError` (a ValueError) unless the instrument's rate period is the
    venue's settlement interval × divisor: a configuration error the Exchange constructor reports."""
    if inst.funding.interval_ns != profile.funding_interval_ns * profile.funding_rate_divisor:
        raise InputError(
            f"{inst.symbol}: funding rates are quoted per {inst.funding.interval_ns} ns but {profile.name} settles "
            f"every {profile.funding_interval_ns} ns paying 1/{profile.funding_rate_divisor} of the rate")


def impact_notional_units(inst: Instrument) -> int:
    """Notional the impact bid/ask walk: ``impact_margin_notional_units``, or (0) 200 × max leverage."""
    return inst.funding.impact_margin_notional_units or IMPACT_MARGIN_UNITS * inst.max_leverage


def book_premium_e8(bids, asks, index_ticks: int, impact_notional: int, k_units: int) -> int:
    """One premium sample from book depth (``(price_ticks, lots, orders)`` levels, best first): the impact
    bid / ask of ``impact_notional`` units (:func:`impact_price`) against the index (:func:`premium_e8`)."""
    return premium_e8(impact_price(bids, impact_notional, k_units), impact_price(asks, impact_notional, k_units),
                      index_ticks)


def payment_units(qty_lots: int, mark_ticks: int, k_units: int, rate_e8: int) -> int:
    """Signed funding of one position: positive = the position pays. ``qty_lots`` is signed (long > 0);
    with a positive rate longs pay shorts. Magnitude ``|lots| × mark × K × |F| / 10⁸``: rounded up for the
    payer, down for the receiver."""
    amount = qty_lots * mark_ticks * k_units * rate_e8
    return -((-amount) // E8)  # ceil: a payer's amount rounds up, a receiver's (negative) toward zero


def _truncate(value: Fraction) -> int:
    return int(value)  # int() of a Fraction truncates toward zero


def _clamp(value, low, high):
    return max(low, min(high, value))
