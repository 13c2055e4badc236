"""Funding-rate mathematics (SPEC §8), exact: impact prices, premium index, rate, payments.

All prices are in ticks, money in units (10⁻⁸), rates ×10⁸. Intermediate values are exact
:class:`fractions.Fraction`; each result is rounded once, by the rule its docstring names:

- premium samples and the funding rate are truncated toward zero to whole e8 (a rate, not money);
- a payer's payment rounds up and a receiver's rounds down, so the venue never pays out more than it
  collects; the dust goes to the insurance fund (SPEC §1).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

from .units import E8


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
    if not samples_e8:
        return Fraction(0)
    weights = len(samples_e8) * (len(samples_e8) + 1) // 2
    return Fraction(sum(i * p for i, p in enumerate(samples_e8, start=1)), weights)


def funding_rate_e8(samples_e8: Sequence[int], interest_e8: int, clamp_e8: int, floor_e8: int, cap_e8: int) -> int:
    """``F = P_avg + clamp(I − P_avg, −clamp, +clamp)``, then ``clamp(F, floor, cap)``; ×10⁸, truncated
    toward zero. With no samples P_avg = 0 (F = the interest rate, clamped)."""
    p_avg = average_premium(samples_e8)
    rate = p_avg + _clamp(interest_e8 - p_avg, -clamp_e8, clamp_e8)
    return _clamp(_truncate(rate), floor_e8, cap_e8)


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
