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

Per-lot accrual. One settlement moves ``delta`` (units × 10⁸) per long lot from longs to shorts
(:func:`index_delta_e8`); its running sum is the symbol's *funding index*. A position of ``lots`` pays
``ceil(lots × delta / 10⁸)`` (:func:`index_payment_units`). Under ``FundingAccrual.RATE`` the delta is
``mark × K × rate`` with the settlement rate already truncated to whole e8; under ``FundingAccrual.INDEX``
(dYdX) the 8-hour rate is truncated to whole e8 and the delta itself, ``rate × mark × K × interval / 8 h``,
toward zero (dYdX's funding-index update).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

from ..profiles import HOUR_NS, FundingAccrual, FundingCap, VenueProfile
from ..spec import FundingParams, Instrument
from ..units import E8, UNITS_PER_COIN, InputError

EIGHT_HOURS_NS = 8 * HOUR_NS
DAY_NS = 24 * HOUR_NS
BINANCE_CAP_SHARE = Fraction(3, 4)  #: Binance, cap not given: |F| ≤ 75% × MMR of the first bracket
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
    remaining = impact_notional_units  # (integers until the last level, which is taken fractionally)
    lots_taken = 0
    for price_ticks, lots, _ in levels:
        level_notional = price_ticks * lots * k_units
        if level_notional >= remaining:
            return Fraction(impact_notional_units, k_units) / (lots_taken + Fraction(remaining, price_ticks * k_units))
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


def period_rate_e8(p_avg_e8: Fraction, interest_e8: Fraction | int, clamp_e8: int, floor_e8: Fraction | int,
                   cap_e8: Fraction | int) -> Fraction:
    """The rate-period rate ``clamp(P_avg + clamp(I − P_avg, ±clamp), floor, cap)``, exact (×10⁸)."""
    rate = p_avg_e8 + _clamp(interest_e8 - p_avg_e8, -clamp_e8, clamp_e8)
    return _clamp(rate, floor_e8, cap_e8)


def settlement_rate_e8(p_avg_e8: Fraction, interest_e8: Fraction | int, clamp_e8: int, floor_e8: Fraction | int,
                       cap_e8: Fraction | int, divisor: int = 1) -> int:
    """The rate paid at one settlement: :func:`period_rate_e8` ÷ ``divisor``, exact until one truncation toward
    zero (×10⁸). ``floor``/``cap`` bound the rate-period rate (they may be exact fractions,
    :func:`rate_bounds_e8`); ``divisor`` = ``profile.funding_rate_divisor``. With integer bounds and divisor 1
    this equals truncating first and clamping after (the bounds are whole e8)."""
    return per_settlement_e8(period_rate_e8(p_avg_e8, interest_e8, clamp_e8, floor_e8, cap_e8), divisor)


def per_settlement_e8(period_rate: Fraction, divisor: int) -> int:
    """The rate paid at one settlement from the rate-period rate: ``trunc(F / divisor)`` (toward zero, ×10⁸)."""
    return _truncate(period_rate / divisor)


def interest_rate_e8(params: FundingParams) -> Fraction:
    """The interest rate I of one rate period (×10⁸, exact): ``interest_e8``, or, when the interest indices are
    given (Bybit, BitMEX), ``(quote − base) / (settlements per day)`` = ``(quote − base) × interval / 1 day``
    (both indices are daily borrowing rates; an 8-hour period divides by 3)."""
    if params.interest_quote_e8 is None:
        return Fraction(params.interest_e8)
    return Fraction((params.interest_quote_e8 - params.interest_base_e8) * params.interval_ns, DAY_NS)


def rate_bounds_e8(rule: FundingCap, inst: Instrument) -> tuple[Fraction, Fraction]:
    """``(floor, cap)`` of the rate-period rate (×10⁸, exact) under the venue's cap rule (rules §10).

    IMR / IMF = ``1 / inst.max_leverage``; MMR / MMF = the first risk bracket's rate (the venue's base tier).

    - PER_SYMBOL: the instrument's ``floor_e8`` / ``cap_e8``; one not given (None) is derived by Binance's rule
      ``±75% × MMR`` (±0.3% for the default brackets' 0.4%). Raises :class:`~exchange.units.InputError` when the
      resulting floor is above the cap;
    - BITMEX: ``±75% × (IMR − MMR)``;
    - DYDX: ``±600% × (IMF − MMF)`` per 8 h, scaled to the rate period (× period / 8 h);
    - HYPERLIQUID: ``±4%`` per hour, scaled to the rate period (× period / 1 h; 32% per 8 h, so 4% per hourly
      settlement after the ÷ 8).
    """
    params = inst.funding
    margin_gap = Fraction(E8, inst.max_leverage) - inst.brackets[0].mmr_e8
    if rule == FundingCap.PER_SYMBOL:
        derived = BINANCE_CAP_SHARE * inst.brackets[0].mmr_e8
        floor = -derived if params.floor_e8 is None else Fraction(params.floor_e8)
        cap = derived if params.cap_e8 is None else Fraction(params.cap_e8)
        if floor > cap:
            raise InputError(f"{inst.symbol}: funding floor {floor} e8 is above the cap {cap} e8 (one of them derived "
                             f"as ±75% × the first bracket's MMR)")
        return floor, cap
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
    return index_payment_units(qty_lots, mark_ticks * k_units * rate_e8)


def index_delta_e8(accrual: FundingAccrual, period_rate: Fraction, divisor: int, mark_ticks: int, k_units: int) -> int:
    """What one long lot pays at one settlement (units × 10⁸, signed), from the capped rate-period rate:

    - RATE: ``mark × K × trunc(F / divisor)`` — the settlement rate truncated to whole e8 first;
    - INDEX (dYdX ``GetFundingIndexDelta``): ``trunc(trunc(F) × mark × K / divisor)`` — the 8-hour rate in whole
      e8, then the per-lot delta truncated toward zero (the settlement covers ``1 / divisor`` of the period)."""
    if accrual == FundingAccrual.INDEX:
        return _truncate(Fraction(_truncate(period_rate) * mark_ticks * k_units, divisor))
    return mark_ticks * k_units * per_settlement_e8(period_rate, divisor)


def index_payment_units(qty_lots: int, delta_e8: int) -> int:
    """Signed funding of ``qty_lots`` (long > 0) for a per-lot ``delta_e8`` (:func:`index_delta_e8`):
    ``ceil(lots × delta / 10⁸)`` — the payer's amount rounds up, the receiver's (negative) toward zero."""
    return -((-qty_lots * delta_e8) // E8)


def _truncate(value: Fraction) -> int:
    return int(value)  # int() of a Fraction truncates toward zero


def _clamp(value, low, high):
    return max(low, min(high, value))
