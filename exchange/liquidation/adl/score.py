"""Auto-deleveraging ranking (rules §7 step 5, §10 "ADL ranking"), exact.

Scores are :class:`fractions.Fraction` so that ties are real ties, broken by account id (lower first).
Inputs are plain integers: money in units, prices in ticks, quantities in lots.

========== ==============================================================================================
profile    score of a candidate position (highest is deleveraged first)
========== ==============================================================================================
binance    ``pnl_pct × margin_ratio``; ``pnl_pct = max(0, upnl) / max(1, wallet)``,
           ``margin_ratio = MM / (wallet + upnl)`` (0 when that balance is ≤ 0)
bitmex     ``pnl_pct × effective_leverage`` when in profit, ``pnl_pct ÷ effective_leverage`` at a loss;
           ``pnl_pct = (mark − entry) / entry × side``, ``effective_leverage = mark / |mark − bankruptcy|``
bybit      as bitmex, with ``effective_leverage = position value at mark / margin balance``
hyperliquid as bybit
dydx       not a score: offsetting accounts are taken from a seeded pseudo-random start (see
           :func:`seeded_order`)
========== ==============================================================================================
"""
from __future__ import annotations

import random
from fractions import Fraction
from typing import Sequence


def binance_score(upnl_units: int, wallet_units: int, mm_units: int) -> Fraction:
    """Default ranking: ``max(0, upnl) / max(1, wallet) × MM / (wallet + upnl)`` (0 when that balance is ≤ 0),
    as one fraction of integer products (one normalisation)."""
    return Fraction(*binance_ratio(upnl_units, wallet_units, mm_units))


def binance_ratio(upnl_units: int, wallet_units: int, mm_units: int) -> tuple[int, int]:
    """:func:`binance_score` as ``(numerator, denominator > 0)``, not normalised (no gcd). O(1) products."""
    balance = wallet_units + upnl_units
    if balance <= 0:
        return 0, 1
    return max(0, upnl_units) * mm_units, max(1, wallet_units) * balance


def bitmex_score(side: int, entry_price: Fraction, mark_ticks: int, bankruptcy_price: Fraction) -> Fraction:
    """``pnl% × effective leverage`` (÷ when at a loss); ``side`` +1 long, −1 short. rules example 10."""
    pnl_pct = side * (mark_ticks - entry_price) / entry_price
    distance = abs(mark_ticks - bankruptcy_price)
    if distance == 0:
        return Fraction(0)
    return _scaled(pnl_pct, Fraction(mark_ticks) / distance)


def bitmex_ratio(upnl_ticks_lots: int, entry_cost: int, mark_ticks: int, distance_ticks: int) -> tuple[int, int]:
    """:func:`bitmex_score` as ``(numerator, denominator > 0)``, not normalised (no gcd), from integers:
    ``upnl_ticks_lots = lots × mark − entry_cost`` (the uPnL in tick·lots), ``distance_ticks = |mark − bankruptcy
    price|`` (the mark itself without a bankruptcy price). ``pnl% = upnl_ticks_lots / |entry_cost|`` (the entry
    price is ``entry_cost / lots``), so a profit scores ``upnl × mark / (|entry_cost| × distance)`` and a loss
    ``upnl × distance / (|entry_cost| × mark)``; 0 at a zero distance. O(1) products."""
    if distance_ticks == 0 or upnl_ticks_lots == 0:
        return 0, 1
    if upnl_ticks_lots > 0:
        return upnl_ticks_lots * mark_ticks, abs(entry_cost) * distance_ticks
    return upnl_ticks_lots * distance_ticks, abs(entry_cost) * mark_ticks


def bybit_score(upnl_units: int, entry_notional_units: int, mark_notional_units: int, margin_balance_units: int) -> Fraction:
    """``pnl% × effective leverage`` (÷ when at a loss); ``pnl% = upnl / entry notional``,
    ``effective leverage = mark notional / margin balance``. Zero for a non-positive balance."""
    return Fraction(*bybit_ratio(upnl_units, entry_notional_units, mark_notional_units, margin_balance_units))


def bybit_ratio(upnl_units: int, entry_notional_units: int, mark_notional_units: int,
                margin_balance_units: int) -> tuple[int, int]:
    """:func:`bybit_score` as ``(numerator, denominator)``, not normalised (no gcd); the denominator is > 0 for
    a position with a mark (as the Fraction's, it is 0 only for a zero mark notional at a loss). O(1) products."""
    if entry_notional_units <= 0 or margin_balance_units <= 0:
        return 0, 1
    if upnl_units >= 0:  # (upnl / entry) × (mark notional / balance), as one fraction
        return upnl_units * mark_notional_units, entry_notional_units * margin_balance_units
    return upnl_units * margin_balance_units, entry_notional_units * mark_notional_units  # ÷ leverage


def rank(scores: dict[int, Fraction]) -> list[int]:
    """Account ids, highest score first, ties by ascending account id."""
    return sorted(scores, key=lambda account: (-scores[account], account))


def quantile_lights(position: int, count: int) -> int:
    """Binance's ADL indicator of the candidate at 0-based ``position`` (from the top) in a ranking of
    ``count`` user positions: its quantile is ``rank / count`` with ``rank = count − position`` (1 for the
    lowest score, ``count`` for the highest), shown in fifths, ``lights = ⌈5 × rank / count⌉`` =
    ``5 − ⌊5 × position / count⌋``: 5 lights for the top fifth (first to be deleveraged) down to 1."""
    if not 0 <= position < count:
        raise ValueError("position out of range")
    return 5 - (position * 5) // count


def quantity_lights(lots_at_or_above: int, total_lots: int) -> int:
    """BitMEX's ADL indicator: the share of the side's quantity ranked at or above the candidate (its own
    included), rounded up to a 20 % step, ``p = ⌈5 × lots_at_or_above / total_lots⌉`` (1..5 = 20 %..100 %),
    shows ``6 − p`` lights: 5 for the top 20 % of the quantity."""
    if not 0 < lots_at_or_above <= total_lots:
        raise ValueError("need 0 < lots at or above ≤ total lots")
    return 6 - -(-5 * lots_at_or_above // total_lots)


def seeded_order(account_ids: Sequence[int], seed: int) -> list[int]:
    """dYdX-style: candidates in ascending id, starting from a pseudo-random offset drawn from ``seed``."""
    ordered = sorted(account_ids)
    if not ordered:
        return []
    start = random.Random(seed).randrange(len(ordered))
    return ordered[start:] + ordered[:start]


def _scaled(pnl_pct: Fraction, leverage: Fraction) -> Fraction:
    return pnl_pct * leverage if pnl_pct >= 0 else pnl_pct / leverage
