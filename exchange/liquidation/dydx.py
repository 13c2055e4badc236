"""dYdX v4 liquidation rules (rules §7, §10 "dydx"): pure integer functions over one margin part.

The venue's code is the source: ``dydxprotocol/v4-chain`` at 84d4664b, ``protocol/x/clob/keeper/liquidations.go``
and ``deleveraging.go`` (their unit tests are the worked examples of ``tests/test_dydx_liquidation.py``). The
venue's *subaccount* is the engine's margin part (the cross account, or one isolated position), its oracle
price is the mark, and its quote quantums (10⁻⁶ USDC) are the engine's money units (10⁻⁸). The numbers come
from :class:`~exchange.profiles.DydxLiquidations`; :class:`~exchange.liquidation.waterfall.Liquidator` applies them.

Notation (the venue's): TNC, TMMR = the part's margin balance and maintenance margin; PNNV, PMMR, PS = the
liquidated position's signed notional at the mark, its MM and its signed size; a *delta* closes q lots of it.

- **Fillable price** (``GetFillablePrice``), the liquidation order's limit: ``(PNNV − ABR × SMMR × PMMR) / PS``
  with the adjusted bankruptcy rating ``ABR = clamp(BA × (1 − TNC / TMMR), 0, 1)``: the mark for a part at
  maintenance, a spread of ``SMMR × PMMR`` (SMMR × MMF of the price) once it is bankrupt. Rounded to the tick
  *up* for a sell closing a long, *down* for a buy closing a short (``ConvertFillablePriceToSubticks``).
- **Bankruptcy quote of a delta** (``GetBankruptcyPriceInQuoteQuantums``): ``−DNNV − ⌊TNC × |DMMR| / TMMR⌋``,
  the quote the part must receive for it (negative: the most it may pay) so that TNC / TMMR does not fall; the
  floor rounds it toward +∞, so closing at it never needs the fund. (A part without MM, which the venue never
  liquidates, shares TNC by notional instead.)
- **Insurance-fund delta of a fill** (``GetLiquidationInsuranceFundDelta``): ``d = quote − BP_quote(fill)``; if
  ``d ≤ 0`` the fund pays ``−d``; otherwise the fund takes only ``min(⌊|quote| × max_liquidation_fee_ppm⌋, d)``
  and the part keeps the rest.
- **Fill checks** (``validateMatchedLiquidation``): a fill is not made, and matching stops, when the fund would
  fall below zero or the part's insurance lost or notional liquidated in the block would pass its limit.
- **Size** (``GetLiquidatablePositionSizeDelta``): ``min(max(min(min_notional, N), N × portion), max_notional)``
  of the position's notional N, in whole lots rounded down (at least one); the whole position when that covers it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from math import ceil, floor
from typing import Callable, Iterable

from ..profiles import PPM, DydxLiquidations


@dataclass(frozen=True, slots=True)
class PartRisk:
    """The liquidated position in its margin part, as the formulas see it: ``tnc``, ``tmmr`` and ``notional``
    (Σ |notional|) of the part and ``pmmr`` of the position in units, ``lots`` signed, ``mark`` in ticks, ``k`` the
    instrument's units per tick·lot."""

    tnc: int
    tmmr: int
    notional: int
    lots: int
    pmmr: int
    mark: int
    k: int

    @property
    def sign(self) -> int:
        return 1 if self.lots > 0 else -1


MMOf = Callable[[int], int]  # MM (units) of a position of n lots of the symbol at the mark


def adjusted_bankruptcy_rating(tnc: int, tmmr: int, bankruptcy_adjustment_ppm: int) -> Fraction:
    """``clamp(BA × (1 − TNC / TMMR), 0, 1)``; 0 for a part without MM (its spread is 0 anyway)."""
    if tmmr <= 0:
        return Fraction(0)
    rating = Fraction(bankruptcy_adjustment_ppm, PPM) * (1 - Fraction(tnc, tmmr))
    return min(max(rating, Fraction(0)), Fraction(1))


def fillable_price(part: PartRisk, config: DydxLiquidations) -> Fraction:
    """``(PNNV − ABR × SMMR × PMMR) / PS`` in ticks, exact."""
    rating = adjusted_bankruptcy_rating(part.tnc, part.tmmr, config.bankruptcy_adjustment_ppm)
    spread = rating * Fraction(config.spread_to_maintenance_margin_ratio_ppm * part.pmmr, PPM)
    return (part.lots * part.mark * part.k - spread) / (part.lots * part.k)


def fillable_price_ticks(part: PartRisk, config: DydxLiquidations) -> int:
    """The fillable price rounded as the venue rounds it: up for a sell (long), down for a buy (short)."""
    exact = fillable_price(part, config)
    return ceil(exact) if part.lots > 0 else floor(exact)


def bankruptcy_quote(part: PartRisk, qty_lots: int, mm_after: int) -> int:
    """``−DNNV − ⌊TNC × |DMMR| / TMMR⌋`` of closing ``qty_lots`` (units; > 0 the part receives, < 0 it pays);
    ``mm_after`` is the position's MM with ``qty_lots`` fewer lots."""
    dnnv = -part.sign * qty_lots * part.mark * part.k
    if part.tmmr > 0:
        share = part.tnc * (part.pmmr - mm_after) // part.tmmr
    elif part.notional > 0:
        share = part.tnc * abs(dnnv) // part.notional
    else:
        share = part.tnc
    return -dnnv - share


def insurance_fund_delta(quote_units: int, bankruptcy_quote_units: int, max_fee_ppm: int) -> int:
    """What the fund receives for a fill (negative: pays): the shortfall below the bankruptcy quote, or the
    fee ``min(⌊|quote| × fee⌋, surplus)`` above it."""
    surplus = quote_units - bankruptcy_quote_units
    if surplus <= 0:
        return surplus
    return min(abs(quote_units) * max_fee_ppm // PPM, surplus)


def fill(part: PartRisk, price_ticks: int, qty_lots: int, mm_of: MMOf, config: DydxLiquidations) -> tuple[int, PartRisk]:
    """``(insurance-fund delta, the part after)`` of a liquidation fill of ``qty_lots`` at ``price_ticks``: the
    part's balance moves by ``quote + DNNV`` (the fill against the mark) less the fund's delta."""
    mm_after = mm_of(abs(part.lots) - qty_lots)
    quote = part.sign * price_ticks * qty_lots * part.k
    delta = insurance_fund_delta(quote, bankruptcy_quote(part, qty_lots, mm_after), config.max_liquidation_fee_ppm)
    value = qty_lots * part.mark * part.k
    after = replace(part, tnc=part.tnc + quote - part.sign * value - delta, tmmr=part.tmmr - part.pmmr + mm_after,
                    notional=part.notional - value, lots=part.lots - part.sign * qty_lots, pmmr=mm_after)
    return delta, after


def fillable_lots(part: PartRisk, makers: Iterable[tuple[int, int]], want_lots: int, fund_units: int, mm_of: MMOf,
                  config: DydxLiquidations) -> int:
    """How many of ``want_lots`` the resting ``makers`` ((price ticks, lots) in priority order, all within the
    limit) fill before a fill fails the venue's checks (module docstring); matching stops there. The part's
    block limits are whole: the engine sends one order per part and block."""
    filled, insurance_room, notional_room = 0, config.max_insurance_lost_units, config.max_notional_liquidated_units
    for price, lots in makers:
        qty = min(lots, want_lots - filled)
        if qty <= 0:
            break
        delta, after = fill(part, price, qty, mm_of, config)
        notional = qty * part.mark * part.k
        if notional > notional_room or (delta < 0 and (fund_units + delta < 0 or -delta > insurance_room)):
            break
        fund_units += delta
        insurance_room += min(delta, 0)
        notional_room -= notional
        part = after
        filled += qty
    return filled


def liquidation_lots(lots: int, lot_value_units: int, config: DydxLiquidations) -> int:
    """Lots of a position of ``|lots|`` (each worth ``lot_value_units`` at the mark) one block liquidates."""
    lots = abs(lots)
    notional = lots * lot_value_units
    smallest = min(config.min_position_notional_liquidated_units, notional)
    position_limit = max(smallest, notional * config.max_position_portion_liquidated_ppm // PPM)
    limit = min(position_limit, config.max_notional_liquidated_units)
    if notional <= limit or lots <= 1:
        return lots
    return min(max(limit // lot_value_units, 1), lots)
