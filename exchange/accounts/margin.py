"""Margin mathematics: brackets with derived cum, IM/MM, uPnL, margin ratio, liquidation and bankruptcy prices.

Pure functions on Python ints (exact for any size); no floats anywhere. rules §1, §2, §5.

Units: prices in ticks, quantities in signed lots, money in units (10⁻⁸), rates ×10⁸ (``_e8``);
``k_units`` = money units per tick·lot (:attr:`exchange.spec.Instrument.k_units`), so
``notional_units = |lots| × mark_ticks × K``.

Brackets and cum
----------------
Bracket n (0-based here) covers notionals in ``(floor_n, cap_n]`` with ``floor_0 = 0`` and
``floor_n = cap_{n-1}``; a notional above the last cap stays in the last bracket. The maintenance amount
is derived (rules §2): ``cum_n = floor_n × (mmr_n − mmr_{n−1}) + cum_{n−1}``, ``cum_0 = 0``. With the rate
in e8 that product is an integer in *units·e8*; we keep it exactly as ``cum_x8`` (= cum × 10⁸) and
expose ``cum_units`` (the integer part) and ``cum_rem_x8`` (the remainder, 0 for every realistic table).

Bracket styles (rules §10, ``profile.brackets``; :class:`~exchange.accounts.pretrade.Risk` picks the rows):

- MARGINAL (binance, bybit, hyperliquid): the rows above; each slice of notional pays its tier's rate.
- STEPWISE (bitmex): ``derive_brackets(..., stepwise=True)`` keeps every ``cum = 0``, so the whole position
  pays its step's rate: ``MM = ceil(notional × mmr_step / 10⁸)``, which jumps at each cap (a 100,000 position
  in tiers 0.4% to 50,000 / 0.5% to 250,000 needs 500, against 450 marginal). MM is then not convex, so the
  hedge-leg band (:func:`liquidation_band_exact`, the lower envelope of the bracket lines) is conservative: it
  uses the highest step's line on every piece; the risk monitor's indexes draw their bands with the convex
  bounds of :func:`convex_bounds`.
- OPEN_INTEREST_IMF (dydx): one liquidity tier, the first row (``MM = notional × MMF``, flat); the initial
  margin fraction grows with the symbol's open interest (:func:`initial_margin_open_interest`).

Rounding rules (each result is rounded exactly once)
----------------------------------------------------
- ``MM(notional) = ceil((notional × mmr_e8 − cum_x8) / 10⁸)``: margin owed rounds up. When cum is a whole
  number of units (``cum_rem_x8 == 0``) this is exactly ``ceil(notional × mmr / 10⁸) − cum_units``, the
  rulebook's formula. Because the tiers are marginal (max of the tangent lines), MM is continuous, convex and
  non-decreasing in the notional.
- ``IM(notional, leverage) = ceil(notional / leverage)`` (leverage exact: an int, or ``10⁸ / imr_e8``).
- Margin ratio (e8) = ``ceil(MM × 10⁸ / balance)`` for balance > 0; :data:`RATIO_INF` when the size is
  non-zero and balance ≤ 0; 0 for zero size. Saturates at :data:`RATIO_INF` (= 2⁶³ − 1).
- Liquidatable ⇔ non-zero size and ``margin balance ≤ MM`` (ratio ≥ 100 %, rules §5) under the default
  :class:`LiquidationTrigger` (binance, bybit, bitmex); hyperliquid liquidates only *below* MM, dYdX only
  when ``MM > 0`` and the balance is below it (a profile's ``liquidation_trigger``, rules §10).

Isolated maintenance (rules §10, :class:`IsolatedMaintenance`): MARK values an isolated position's MM on its
notional at the mark (every position does, by default); ENTRY (bybit, bitmex) on its *entry value*
``|entry_cost| × K``, as those venues' closed liquidation-price formula does — the MM of an isolated position
then does not move with the mark, and its liquidation price is ``entry − (margin − MM_entry) / size``.

Liquidation price
-----------------
The balance of the part that holds the position, as a function of the mark P of its symbol, is
``B(P) = WB' + Σ_legs (P × q − entry_cost) × K`` with ``WB' = WB − TMM1 + UPNL1`` (rules §5: WB = isolated
margin, or the wallet for cross with TMM1/UPNL1 of the other cross positions at their marks); legs are the
one-way position, or the LONG and SHORT legs of one symbol in hedge mode. Three versions are offered:

- :func:`liquidation_price_exact` — the rulebook's real-valued root of ``B(P) = MM(P)`` as a ``Fraction`` of
  ticks (bracket re-iterated until consistent), ``None`` when there is none (LP ≤ 0, or never).
- :func:`liquidation_price_ticks` — the *liquidation tick*: the integer mark at which the exact integer
  rule (ceil-rounded MM, ``balance ≤ MM``) first flags the position when the price moves against it
  (long: the largest liquidating tick; short: the smallest). This is what the sweep sees; it is the
  exact root rounded toward the liquidation side (rules §11 ex. 1: 25,100.4016… → 25,100.40).
- :func:`liquidation_price_display_ticks` — rounded to the tick toward the position's safe side
  (long up, short down), for display only (rules §1).

For one leg the balance minus MM is strictly monotone (slope ``|q|·K·(1 − mmr)``), so there is one root.
With hedge legs it is concave and the safe region is an interval: :func:`liquidation_band_exact` returns
both ends. Bankruptcy price: the same equation with MMR = 0 and cum = 0; rounded to ticks against the
liquidated account (a long sells: down; a short buys: up).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from fractions import Fraction
from itertools import product
from math import ceil, floor
from typing import Iterable, Sequence

from ..units import E8, div_ceil

RATIO_INF = 2**63 - 1  #: margin ratio (e8) reported for a non-zero size with balance ≤ 0 (and the saturation value)
PPM = 10**6  #: dYdX's rate grid (parts per million): its open-interest IMF increase is floored to it


class LiquidationTrigger(IntEnum):
    """When a margin part with exposure is liquidatable (a profile's ``liquidation_trigger``, rules §5, §10)."""

    AT_MAINTENANCE = 1  # balance ≤ MM: binance (the rulebook), bybit (margin rate reaches 100 %), bitmex (mark reaches LP)
    BELOW_MAINTENANCE = 2  # balance < MM: hyperliquid (equity below maintenance margin)
    BELOW_POSITIVE_MAINTENANCE = 3  # MM > 0 and balance < MM: dydx (MMR > NC; a zero MMR is never liquidatable)


class IsolatedMaintenance(IntEnum):
    """What an isolated position's MM is charged on (a profile's ``isolated_maintenance``, rules §10)."""

    MARK = 1  # the notional at the mark, as every cross position
    ENTRY = 2  # the entry value |entry_cost| × K (bybit, bitmex: their published isolated liquidation price)


def trigger_terms(trigger: LiquidationTrigger) -> tuple[int, int]:
    """``(strict, min_mm)`` with ``liquidatable ⇔ size ≠ 0 and balance + strict ≤ MM and MM ≥ min_mm``: the
    integer form of every :class:`LiquidationTrigger` (what the compiled kernels compare)."""
    if trigger == LiquidationTrigger.AT_MAINTENANCE:
        return 0, 0
    if trigger == LiquidationTrigger.BELOW_MAINTENANCE:
        return 1, 0
    if trigger == LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE:
        return 1, 1
    raise ValueError(f"unknown liquidation trigger {trigger!r}")


# -- brackets ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BracketRow:
    """One derived risk bracket. Covers notionals in ``(floor_units, cap_units]`` (the last row: above too)."""

    floor_units: int
    cap_units: int
    mmr_e8: int
    max_leverage: int
    cum_x8: int  # cum × 10⁸, exact (units·e8)

    @property
    def cum_units(self) -> int:
        """Integer part of cum (exact when ``cum_rem_x8 == 0``)."""
        return self.cum_x8 // E8

    @property
    def cum_rem_x8(self) -> int:
        """``cum_x8 mod 10⁸`` (0 ≤ rem < 10⁸)."""
        return self.cum_x8 % E8

    @property
    def cum(self) -> Fraction:
        """cum in units as an exact Fraction."""
        return Fraction(self.cum_x8, E8)


def derive_brackets(brackets: Iterable, stepwise: bool = False) -> tuple[BracketRow, ...]:
    """Derive floors and cum amounts from ``RiskBracket``-like rows (``notional_cap_units``, ``mmr_e8``,
    ``max_leverage``) or from plain ``(cap_units, mmr_e8, max_leverage)`` tuples.

    ``cum_n = floor_n × (mmr_n − mmr_{n−1}) + cum_{n−1}`` (rules §2), kept exactly ×10⁸; ``stepwise``: every
    cum is 0 (the whole position at its step's rate). Raises ``ValueError`` for empty tables, non-increasing caps
    or decreasing MMR. O(len).
    """
    rows: list[BracketRow] = []
    prev_cap, prev_mmr, cum_x8 = 0, 0, 0
    for b in brackets:
        cap, mmr, lev = (b.notional_cap_units, b.mmr_e8, b.max_leverage) if hasattr(b, "mmr_e8") else b
        if cap <= prev_cap or not prev_mmr <= mmr < E8 or lev < 1:
            raise ValueError(f"invalid bracket ({cap}, {mmr}, {lev}) after cap {prev_cap}, mmr {prev_mmr}")
        cum_x8 += 0 if stepwise else prev_cap * (mmr - prev_mmr)
        rows.append(BracketRow(prev_cap, cap, mmr, lev, cum_x8))
        prev_cap, prev_mmr = cap, mmr
    if not rows:
        raise ValueError("at least one bracket is required")
    return tuple(rows)


def convex_brackets(rows: Sequence[BracketRow]) -> bool:
    """Whether MM of these rows is the maximum of the bracket lines (cum derived marginally, rules §2): then it
    is continuous, convex and non-decreasing in the notional. O(len)."""
    cum, prev_cap, prev_mmr = 0, 0, 0
    for row in rows:
        cum += prev_cap * (row.mmr_e8 - prev_mmr)
        if row.cum_x8 != cum:
            return False
        prev_cap, prev_mmr = row.cap_units, row.mmr_e8
    return True


def _marginal(rows: Sequence[BracketRow], rates: Sequence[int]) -> tuple[BracketRow, ...]:
    """Rows on the caps of ``rows`` with these (non-decreasing) rates and cum derived marginally."""
    out, cum, prev_cap, prev_rate = [], 0, 0, 0
    for row, rate in zip(rows, rates):
        cum += prev_cap * (rate - prev_rate)
        out.append(BracketRow(row.floor_units, row.cap_units, rate, row.max_leverage, cum))
        prev_cap, prev_rate = row.cap_units, rate
    return tuple(out)


def convex_bounds(rows: Sequence[BracketRow]) -> tuple[tuple[BracketRow, ...], tuple[BracketRow, ...]] | None:
    """Two convex (marginal) tables on the caps of ``rows`` whose exact MM bounds that of ``rows`` from above and
    from below at every notional: ``(upper, lower)``; both are ``rows`` itself when it is convex already
    (:func:`convex_brackets`). ``None`` when no such pair is derived here (a first line above zero at notional 0,
    a falling rate, or a cum above the marginal one).

    For a stepwise table (bitmex: ``MM = notional × the step's rate``, jumping at each cap) the lower table is
    the marginal one of the same rates (each slice at its own tier's rate costs no more than the whole position
    at the top slice's rate). The upper one runs through the right-hand limits ``Y_i`` of MM at every cap (the
    larger of the two brackets' lines there) and 0 at notional 0: between two caps it rises along the chord
    ``(Y_{i+1} − Y_i) / (cap_i − cap_{i−1})``, the rate rounded up to a whole 10⁻⁸, never below the rate before it,
    and past the last cap at least the last rate. On each bracket both ends of the chord lie on or above the
    bracket's line, so the chord does too. Used by the liquidation and warning indexes, whose bands need MM
    convex (:mod:`exchange.liquidation.index`); a band drawn with a bound is narrower, never wider. O(len)."""
    rows = tuple(rows)
    if convex_brackets(rows):
        return rows, rows
    rates = [row.mmr_e8 for row in rows]
    if rows[0].cum_x8 < 0 or any(b < a for a, b in zip(rates, rates[1:])):
        return None
    lower = _marginal(rows, rates)
    if any(row.cum_x8 > low.cum_x8 for row, low in zip(rows, lower)):
        return None
    upper_rates, y, prev_cap, rate = [], 0, 0, 0  # y: 10⁸ × the bound at prev_cap
    for i, row in enumerate(rows[:-1]):
        nxt = rows[i + 1]
        y_next = max(row.cap_units * row.mmr_e8 - row.cum_x8, row.cap_units * nxt.mmr_e8 - nxt.cum_x8)
        rate = max(rate, div_ceil(y_next - y, row.cap_units - prev_cap))
        upper_rates.append(rate)
        y, prev_cap = y + rate * (row.cap_units - prev_cap), row.cap_units
    upper_rates.append(max(rate, rows[-1].mmr_e8))
    return _marginal(rows, upper_rates), lower


def bracket_index(rows: Sequence[BracketRow], notional_units: int) -> int:
    """Index of the bracket holding ``notional_units``: the first with ``notional ≤ cap`` (caps inclusive),
    the last one for notionals above every cap. Works for ints and Fractions."""
    for i, row in enumerate(rows):
        if notional_units <= row.cap_units:
            return i
    return len(rows) - 1


def maintenance_margin(rows: Sequence[BracketRow], notional_units: int) -> int:
    """``MM = ceil((notional × mmr − cum_x8) / 10⁸)`` units of the notional's bracket (round up, rules §5)."""
    row = rows[bracket_index(rows, notional_units)]
    return div_ceil(notional_units * row.mmr_e8 - row.cum_x8, E8)


def maintenance_margin_exact(rows: Sequence[BracketRow], notional) -> Fraction:
    """MM before rounding (real-valued, for analysis): ``max_n (notional × mmr_n − cum_x8_n) / 10⁸``."""
    row = rows[bracket_index(rows, notional)]
    return Fraction(notional * row.mmr_e8 - row.cum_x8, E8)


def initial_margin(notional_units: int, leverage) -> int:
    """``IM = ceil(notional / leverage)`` units; ``leverage`` an int or an exact rational (a ``Fraction``: an
    initial margin rate set at the venue's precision, ``10⁸ / imr_e8``). Raises ``ValueError`` for leverage < 1."""
    if leverage < 1:
        raise ValueError("leverage must be ≥ 1")
    return div_ceil(notional_units * leverage.denominator, leverage.numerator)


def initial_margin_open_interest(notional_units: int, leverage: int, open_interest_units: int, lower_cap_units: int,
                                 upper_cap_units: int, tier_max_leverage: int | None = None) -> int:
    """dYdX v4 open-interest margin fraction (OIMF), rounded up once, capped at the notional (units).

    dYdX ``GetAdjustedInitialMarginPpm`` / ``GetInitialMarginQuoteQuantums``: the liquidity tier's base IMF
    ``1 / tier_max_leverage`` (default: ``leverage``) grows with ``s = (OI − lower) / (upper − lower)`` (OI = the
    symbol's open interest notional): ``IMF_tier = base + (1 − base) × s``, the increase floored to whole ppm as
    dYdX rounds it; the account's own ``1 / leverage`` applies when it is larger (dYdX's custom IMF):
    ``IM = ceil(notional × max(IMF_tier, 1 / leverage))``. The base applies while ``OI ≤ lower`` or when
    ``upper == 0`` (scaling disabled); at ``OI ≥ upper`` the IM is the whole notional.
    """
    tier_leverage = tier_max_leverage or leverage
    if upper_cap_units == 0 or open_interest_units <= lower_cap_units:
        return initial_margin(notional_units, min(leverage, tier_leverage))
    if open_interest_units >= upper_cap_units:
        return notional_units
    base = Fraction(PPM, tier_leverage)
    increase = (PPM - base) * (open_interest_units - lower_cap_units) // (upper_cap_units - lower_cap_units)
    imf_ppm = max(base + increase, Fraction(PPM, leverage))
    return min(notional_units, ceil(notional_units * imf_ppm / PPM))


def max_leverage(rows: Sequence[BracketRow], notional_units: int) -> int:
    """Highest leverage allowed for a position of this notional (its bracket's ``max_leverage``)."""
    return rows[bracket_index(rows, notional_units)].max_leverage


# -- position values ------------------------------------------------------------------------------------
def notional_units(qty_lots: int, mark_ticks: int, k_units: int) -> int:
    """``|lots| × mark × K`` (exact)."""
    return abs(qty_lots) * mark_ticks * k_units


def unrealized_pnl(qty_lots: int, entry_cost: int, mark_ticks: int, k_units: int) -> int:
    """``(mark × signed_lots − signed_entry_cost) × K`` units, exactly (rules §5)."""
    return (mark_ticks * qty_lots - entry_cost) * k_units


def is_liquidatable(balance_units: int, mm_units: int, has_size: bool,
                    trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE) -> bool:
    """rules §5: liquidation at margin ratio ≥ 100 % ⇔ non-zero size and ``balance ≤ MM`` (the default trigger);
    the stricter triggers (:class:`LiquidationTrigger`) need ``balance < MM`` (and, for dYdX, ``MM > 0``)."""
    strict, min_mm = trigger_terms(trigger)
    return bool(has_size) and balance_units + strict <= mm_units and mm_units >= min_mm


def margin_ratio_e8(mm_units: int, balance_units: int, has_size: bool) -> int:
    """``ceil(MM × 10⁸ / balance)``; 0 without size; :data:`RATIO_INF` if balance ≤ 0 (saturating)."""
    if not has_size:
        return 0
    if balance_units <= 0:
        return RATIO_INF
    return min(div_ceil(mm_units * E8, balance_units), RATIO_INF)


def sweep_order(part) -> tuple:
    """The liquidation sweep's order of the parts it found (a sort key for
    :class:`~exchange.accounts.pretrade.Liquidatable`): the highest margin ratio first, then account, symbol and
    side. (Here, in a module that imports nothing of the package's, so the compiled stage can share it.)"""
    return -part.margin_ratio_e8, part.account_id, part.symbol, part.position_side


def position_state(rows, qty_lots, entry_cost, mark_ticks, k_units, balance_units):
    """``(upnl, mm, balance + upnl, liquidatable)`` of one position whose part holds ``balance_units``."""
    upnl = unrealized_pnl(qty_lots, entry_cost, mark_ticks, k_units)
    mm = maintenance_margin(rows, notional_units(qty_lots, mark_ticks, k_units))
    equity = balance_units + upnl
    return upnl, mm, equity, is_liquidatable(equity, mm, qty_lots != 0)


# -- liquidation and bankruptcy prices ------------------------------------------------------------------
Leg = tuple  # (signed qty_lots, signed entry_cost): one position of the symbol whose price moves


def _legs(legs) -> list[tuple[int, int]]:
    out = [(int(q), int(e)) for q, e in legs if q != 0]
    if not out:
        raise ValueError("no position: a liquidation price needs a non-zero size")
    return out


def balance_minus_mm(balance_units: int, legs, k_units: int, rows, price_ticks: int) -> int:
    """Exact integer ``B(P) − Σ MM_leg(P)`` at an integer price: the sweep's quantity (≤ 0 ⇔ liquidatable)."""
    total = balance_units
    for q, e in legs:
        total += (price_ticks * q - e) * k_units - maintenance_margin(rows, abs(q) * price_ticks * k_units)
    return total


def _root_one_bracket(balance, q, e, k, row) -> Fraction | None:
    """Real root P of ``balance + (Pq − e)K = (|q|PK·mmr − cum_x8)/10⁸`` for one bracket line."""
    den = k * (E8 * q - abs(q) * row.mmr_e8)
    if den == 0:
        return None
    return Fraction(E8 * e * k - row.cum_x8 - E8 * balance, den)


def _lines(legs, k, rows):
    """All linear pieces ``αP + β`` (×10⁸ units) whose minimum is ``10⁸·(B(P) − MMexact(P))`` minus balance."""
    for choice in product(range(len(rows)), repeat=len(legs)):
        alpha, beta = 0, 0
        for (q, e), n in zip(legs, choice):
            alpha += k * (E8 * q - abs(q) * rows[n].mmr_e8)
            beta += -E8 * e * k + rows[n].cum_x8
        yield alpha, beta


def liquidation_band_exact(balance_units: int, legs, k_units: int, rows) -> tuple[Fraction | None, Fraction | None]:
    """Exact ends ``(down, up)`` of the safe region ``{P > 0 : B(P) > MMexact(P)}`` in ticks.

    The position is liquidatable (real-valued model) at ``P ≤ down`` or ``P ≥ up``; ``None`` = no end on that
    side (``down ≤ 0`` is reported as ``None``). If no price is safe the result has ``down ≥ up``.
    Works for hedge legs: balance − MM is concave (the minimum of its bracket lines), so the safe region is
    the intersection of the half-lines ``αP + β > −10⁸·WB'`` over every choice of bracket per leg.
    """
    legs = _legs(legs)
    down = None
    up = None
    c = -E8 * balance_units  # need α P + β > c
    for alpha, beta in _lines(legs, k_units, rows):
        if alpha > 0:
            p = Fraction(c - beta, alpha)
            down = p if down is None or p > down else down
        elif alpha < 0:
            p = Fraction(beta - c, -alpha)
            up = p if up is None or p < up else up
        elif beta <= c:  # flat line never above: liquidatable everywhere
            return Fraction(RATIO_INF), Fraction(0)
    if down is not None and down <= 0:
        down = None
    return down, up


def liquidation_price_exact(balance_units: int, legs, k_units: int, rows, mark_ticks: int | None = None) -> Fraction | None:
    """rules §5 liquidation price as an exact ``Fraction`` of ticks, or ``None`` (LP ≤ 0 / never).

    ``balance_units`` = WB − TMM1 + UPNL1 (isolated: the isolated margin). ``legs`` = [(qty_lots, entry_cost)]:
    one leg for one-way mode; LONG and SHORT legs of the symbol for hedge mode (then the end on the side
    where the net position loses is returned; a flat hedge returns the upper end).
    One leg: the rulebook's formula in integers,
    ``P = (10⁸·e·K − cum_x8 − 10⁸·WB') / (K·(10⁸·q − |q|·mmr))``, started in the bracket of the notional at
    ``mark_ticks`` (or at the entry price) and re-iterated with the bracket of the notional at P until
    consistent.
    """
    legs = _legs(legs)
    if len(legs) == 1:
        q, e = legs[0]
        start_price = mark_ticks if mark_ticks is not None else Fraction(abs(e), abs(q))
        n = bracket_index(rows, abs(q) * start_price * k_units)
        seen = set()
        while n not in seen:
            seen.add(n)
            p = _root_one_bracket(balance_units, q, e, k_units, rows[n])
            m = bracket_index(rows, abs(q) * max(p, 0) * k_units)
            if m == n:
                return p if p > 0 else None
            n = m
        # a cycle can only happen at a bracket boundary; the envelope form is the tie-breaker
    down, up = liquidation_band_exact(balance_units, legs, k_units, rows)
    net = sum(q for q, _ in legs)
    if down is not None and up is not None and down >= up:
        return down  # liquidatable at every price
    return down if net > 0 else up


def _flag(balance_units, legs, k_units, rows, p, trigger=LiquidationTrigger.AT_MAINTENANCE) -> bool:
    mm = sum(maintenance_margin(rows, abs(q) * p * k_units) for q, _ in legs)
    return is_liquidatable(balance_units + sum((p * q - e) * k_units for q, e in legs), mm, True, trigger)


def liquidation_price_ticks(balance_units: int, legs, k_units: int, rows, mark_ticks: int | None = None,
                            trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE) -> int | None:
    """The liquidation tick (one-way position): the integer mark where the exact integer rule first flags it.

    Long: ``max{P ≥ 1 : B(P) ≤ MM(P)}``; short: ``min{P ≥ 1 : B(P) ≤ MM(P)}``; ``None`` if no such tick (the
    long is safe at every positive tick). Exact: starts from the exact root and steps with the integer
    rule, which is monotone in P for one leg (its per-tick change has the sign of q, since MM grows by at
    most ``|q|·K`` per tick). ``trigger``: the profile's comparison (``<`` instead of ``≤``; with
    BELOW_POSITIVE_MAINTENANCE a table whose first row has MMR 0 is not monotone, and a table of zero MMRs
    never liquidates: None). Raises ``ValueError`` for more than one leg.
    """
    legs = _legs(legs)
    if len(legs) != 1:
        raise ValueError("liquidation_price_ticks is defined for one leg; use liquidation_band_exact")
    if trigger_terms(trigger)[1] and all(row.mmr_e8 == 0 for row in rows):
        return None
    q, _ = legs[0]
    lp = liquidation_price_exact(balance_units, legs, k_units, rows, mark_ticks)

    def flag(p: int) -> bool:
        return _flag(balance_units, legs, k_units, rows, p, trigger)

    if q > 0:
        p = max(floor(lp), 1) if lp is not None else 1
        if not flag(p) and p == 1:
            return None
        while flag(p + 1):
            p += 1
        while p >= 1 and not flag(p):
            p -= 1
        return p if p >= 1 else None
    p = max(ceil(lp), 1) if lp is not None else 1  # a short with LP ≤ 0 is liquidatable at every tick
    while p > 1 and flag(p - 1):
        p -= 1
    while not flag(p):
        p += 1
    return p


# -- isolated positions valued at their entry (IsolatedMaintenance.ENTRY: bybit, bitmex) ------------------
def entry_maintenance_margin(rows: Sequence[BracketRow], entry_cost: int, k_units: int) -> int:
    """MM of a position's entry value ``|entry_cost| × K`` (rounded up like every MM)."""
    return maintenance_margin(rows, abs(entry_cost) * k_units)


def entry_liquidation_price_exact(balance_units: int, qty_lots: int, entry_cost: int, k_units: int,
                                  rows) -> Fraction | None:
    """The venues' closed formula ``LP = entry ∓ (margin − MM_entry) / size`` (long −, short +) as an exact
    ``Fraction`` of ticks: the root of ``balance + (P·q − e)·K = MM_exact(entry value)``; None if LP ≤ 0."""
    row = rows[bracket_index(rows, abs(entry_cost) * k_units)]
    mm_x8 = abs(entry_cost) * k_units * row.mmr_e8 - row.cum_x8
    p = Fraction(E8 * (entry_cost * k_units - balance_units) + mm_x8, E8 * qty_lots * k_units)
    return p if p > 0 else None


def fixed_level_ticks(balance_units: int, qty_lots: int, entry_cost: int, k_units: int, level_units: int) -> int | None:
    """The tick where ``B(P) = balance + (P·q − e)·K ≤ level`` (a constant) starts to hold: long: the largest
    such ``P ≥ 1`` (None if none), short: the smallest (at least 1). Exact integers."""
    num = level_units - balance_units + entry_cost * k_units  # B(P) ≤ level ⇔ P·q·K ≤ num
    if qty_lots > 0:
        p = num // (qty_lots * k_units)
        return p if p >= 1 else None
    return max(-(-num // (qty_lots * k_units)), 1)  # q·K < 0: P ≥ ceil(num / (q·K))


def entry_liquidation_price_ticks(balance_units: int, qty_lots: int, entry_cost: int, k_units: int, rows,
                                  trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE) -> int | None:
    """The liquidation tick of an isolated position whose MM is charged on its entry value: the first tick at
    which ``balance + (P·q − e)·K`` reaches ``MM_entry`` by the profile's comparison (long: the largest, short:
    the smallest liquidating tick); None when no tick liquidates it (dYdX's rule with a zero MM)."""
    mm = entry_maintenance_margin(rows, entry_cost, k_units)
    strict, min_mm = trigger_terms(trigger)
    if mm < min_mm:
        return None
    return fixed_level_ticks(balance_units, qty_lots, entry_cost, k_units, mm - strict)


def liquidation_price_display_ticks(balance_units: int, legs, k_units: int, rows, mark_ticks: int | None = None) -> int | None:
    """The exact liquidation price rounded to the tick toward the safe side (long: up, short: down). Display only."""
    lp = liquidation_price_exact(balance_units, legs, k_units, rows, mark_ticks)
    if lp is None:
        return None
    net = sum(q for q, _ in _legs(legs))
    return ceil(lp) if net > 0 else max(floor(lp), 1)


def bankruptcy_price_exact(balance_units: int, legs, k_units: int) -> Fraction | None:
    """Price where the balance is exactly 0 (MMR = 0, cum = 0): ``(Σe·K − WB') / (Σq·K)``; ``None`` if the
    net size is 0 or the price is ≤ 0."""
    legs = _legs(legs)
    net = sum(q for q, _ in legs)
    if net == 0:
        return None
    p = Fraction(sum(e for _, e in legs) * k_units - balance_units, net * k_units)
    return p if p > 0 else None


def bankruptcy_price_ticks(balance_units: int, legs, k_units: int) -> int | None:
    """Bankruptcy price rounded to the tick against the liquidated account (net long: down; net short: up)."""
    bp = bankruptcy_price_exact(balance_units, legs, k_units)
    if bp is None:
        return None
    net = sum(q for q, _ in _legs(legs))
    return floor(bp) if net > 0 else ceil(bp)
