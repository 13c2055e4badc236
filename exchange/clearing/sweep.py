"""The full mark-to-market sweep: every isolated position and every account's cross part, at given marks.

Three implementations of one computation, which must agree integer for integer:

- :func:`sweep_reference` — plain loops over Python ints using :mod:`exchange.accounts.margin` (the oracle).
- :func:`sweep_numpy` — vectorised numpy (int64 only; the bounds of :mod:`exchange.accounts.storage` make every
  intermediate fit, see below); kept for the benchmark comparison.
- :func:`sweep_compiled` — the nogil C loop in ``exchange/clearing/_sweep.pyx``.

:func:`sweep` runs the active one (compiled unless ``EXCHANGE_PUREPYTHON=1``).

Definitions (rules §4, §5), per slot ``j`` of a position and per account ``a``:

==================  ==========================================================================
``pos_equity``      isolated: isolated margin + uPnL (its margin balance); cross: its uPnL
``pos_mm``          ``MM(|q| × mark × K)`` (ceil, brackets with cum), every position; an isolated one
                    ``MM(|entry_cost| × K)`` when the table's ``iso_entry`` is set (bybit, bitmex)
``pos_ratio_e8``    isolated: margin ratio (below); cross: 0
``pos_liq``         isolated: ``q ≠ 0 and balance ≤ MM``; cross: 0
``acct_equity``     cross margin balance: wallet + Σ cross uPnL (isolated excluded)
``acct_mm``         Σ cross MM
``acct_ratio_e8``   margin ratio of the cross part
``acct_liq``        cross part has a non-zero position and ``balance ≤ Σ MM``
==================  ==========================================================================

Margin ratio (e8) = ``ceil(MM × 10⁸ / balance)`` if balance > 0; ``2⁶³ − 1`` if the size is non-zero and
balance ≤ 0; 0 with no size; saturating at ``2⁶³ − 1``. "Liquidatable" is ``balance ≤ MM`` (ratio ≥ 100 %,
rules §5) under the default trigger; the table's ``trigger`` (the profile's, rules §10) makes it
``balance + strict ≤ MM and MM ≥ min_mm`` (:func:`exchange.accounts.margin.trigger_terms`: ``<`` for hyperliquid,
``<`` with MM > 0 for dydx).

Levels: 0 = flags only (the hot path, what the liquidation trigger needs), 1 = + balances and MM,
2 = + ratios (a division per row). Non-position slots (holes, slack) get zeros.

Numpy bounds: with the portfolio bounds (account exposure ≤ 2⁶², marks in [1, max_price]) every uPnL,
notional, MM, balance and per-account sum lies in ±2⁶². ``notional × mmr`` (up to 2⁸⁹) is never formed:
``MM = (n // 10⁸)·mmr − cum_units + ceil(((n mod 10⁸)·mmr − cum_rem) / 10⁸)`` keeps every product below 2⁶³.
The ratio's ``MM × 10⁸ / balance`` is split as ``MM = a·balance + r`` and ``r × 10⁸ / balance`` is first
estimated in float64 (error < 10⁻⁷, so off by at most one) and then corrected exactly with the int64
remainder ``r·10⁸ − y·balance`` (its true value lies in ``[−balance, 2·balance) ⊂ int64``, so the wrapping
products give it exactly). Floats only seed; the result is the exact integer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _impl
from ..enums import MarginMode
from ..accounts.margin import RATIO_INF, is_liquidatable, margin_ratio_e8, maintenance_margin
from ..accounts.storage import Portfolio
from ..units import E8

_kernel = _impl.sweep_kernel  # the compiled twin (exchange/clearing/_sweep.pyx), None under the reference

FLAGS, VALUES, RATIOS = 0, 1, 2
ISO = int(MarginMode.ISOLATED)


@dataclass
class SweepResult:
    """Arrays of one sweep (level-dependent ones are ``None`` below their level)."""

    pos_liq: np.ndarray  # uint8 per slot
    acct_liq: np.ndarray  # uint8 per account
    n_liq_positions: int
    n_liq_accounts: int
    pos_equity: np.ndarray | None = None  # int64 units
    pos_mm: np.ndarray | None = None
    pos_ratio_e8: np.ndarray | None = None
    acct_equity: np.ndarray | None = None
    acct_mm: np.ndarray | None = None
    acct_ratio_e8: np.ndarray | None = None

    def liquidatable(self) -> tuple[np.ndarray, np.ndarray]:
        """``(isolated slots, accounts)`` flagged, ascending."""
        return np.flatnonzero(self.pos_liq), np.flatnonzero(self.acct_liq)


def _alloc(portfolio: Portfolio, level: int) -> SweepResult:
    n, m = portfolio.n_slots, portfolio.n_accounts
    r = SweepResult(np.zeros(n, np.uint8), np.zeros(m, np.uint8), 0, 0)
    if level >= VALUES:
        r.pos_equity, r.pos_mm = np.zeros(n, np.int64), np.zeros(n, np.int64)
        r.acct_equity, r.acct_mm = np.zeros(m, np.int64), np.zeros(m, np.int64)
    if level >= RATIOS:
        r.pos_ratio_e8, r.acct_ratio_e8 = np.zeros(n, np.int64), np.zeros(m, np.int64)
    return r


# -- reference ------------------------------------------------------------------------------------------
def sweep_reference(portfolio: Portfolio, marks_ticks, level: int = RATIOS, accounts=None) -> SweepResult:
    """The oracle: Python ints, plain loops. ``accounts`` limits the sweep to those accounts (other rows 0).
    O(positions); raises ``ValueError`` for a mark outside ``[1, max_price]``."""
    t = portfolio.table
    marks = [int(x) for x in t.check_marks(marks_ticks)]
    k = [int(x) for x in t.k_units]
    r = _alloc(portfolio, level)
    begin, count, wallet = portfolio.acct_begin.tolist(), portfolio.acct_count.tolist(), portfolio.acct_wallet_units.tolist()
    sym, mode = portfolio.pos_symbol.tolist(), portfolio.pos_mode.tolist()
    qty, entry, margin = portfolio.pos_qty_lots.tolist(), portfolio.pos_entry_cost.tolist(), portfolio.pos_iso_margin_units.tolist()
    npos = nacct = 0
    for a in (range(portfolio.n_accounts) if accounts is None else accounts):
        eq, mm, has = wallet[a], 0, False
        for j in range(begin[a], begin[a] + count[a]):
            s, q = sym[j], qty[j]
            upnl = (marks[s] * q - entry[j]) * k[s]
            at_entry = t.iso_entry and mode[j] == ISO
            m = maintenance_margin(t.rows[s], (abs(entry[j]) if at_entry else abs(q) * marks[s]) * k[s])
            if mode[j] == ISO:
                ieq = margin[j] + upnl
                flag = is_liquidatable(ieq, m, q != 0, t.trigger)
                r.pos_liq[j] = flag
                npos += flag
                if level >= VALUES:
                    r.pos_equity[j], r.pos_mm[j] = ieq, m
                if level >= RATIOS:
                    r.pos_ratio_e8[j] = margin_ratio_e8(m, ieq, q != 0)
            else:
                eq += upnl
                mm += m
                has = has or q != 0
                if level >= VALUES:
                    r.pos_equity[j], r.pos_mm[j] = upnl, m
        flag = is_liquidatable(eq, mm, has, t.trigger)
        r.acct_liq[a] = flag
        nacct += flag
        if level >= VALUES:
            r.acct_equity[a], r.acct_mm[a] = eq, mm
        if level >= RATIOS:
            r.acct_ratio_e8[a] = margin_ratio_e8(mm, eq, has)
    r.n_liq_positions, r.n_liq_accounts = int(npos), int(nacct)
    return r


# -- numpy ----------------------------------------------------------------------------------------------
def _ratio_numpy(mm: np.ndarray, eq: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Exact ``margin_ratio_e8`` vectorised (see the module docstring for the float-seeded correction)."""
    out = np.zeros(mm.shape, np.int64)
    pos = has & (eq > 0)
    out[has & (eq <= 0)] = RATIO_INF
    m, b = mm[pos], eq[pos]
    a, r = np.divmod(m, b)
    y = np.floor(r.astype(np.float64) / b.astype(np.float64) * 1e8).astype(np.int64)
    with np.errstate(over="ignore"):
        rem = r * np.int64(E8) - y * b  # exact: true value in [−b, 2b)
    low = rem < 0
    y[low] -= 1
    rem[low] += b[low]
    high = rem >= b
    y[high] += 1
    rem[high] -= b[high]
    c = y + (rem > 0)  # ceil(r·1e8 / b) ∈ [0, 1e8]
    lim = RATIO_INF // E8  # 92233720368
    sat = (a > lim) | ((a == lim) & (c > RATIO_INF - lim * E8))
    val = np.minimum(a, lim) * np.int64(E8) + c
    out[pos] = np.where(sat, RATIO_INF, val)
    return out


def sweep_numpy(portfolio: Portfolio, marks_ticks, level: int = RATIOS) -> SweepResult:
    """Vectorised sweep (int64, exact under the portfolio bounds). O(positions × brackets) numpy passes."""
    t = portfolio.table
    marks = t.check_marks(marks_ticks)
    r = _alloc(portfolio, level)
    n = portfolio.n_slots
    if n == 0 or portfolio.n_accounts == 0:
        return r
    sym = portfolio.pos_symbol.astype(np.intp)
    q, e = portfolio.pos_qty_lots, portfolio.pos_entry_cost
    k = t.k_units[sym]
    mk = (marks * t.k_units)[sym]
    upnl = q * mk - e * k
    iso = portfolio.pos_mode == ISO
    notional = np.where(iso, np.abs(e) * k, np.abs(q) * mk) if t.iso_entry else np.abs(q) * mk  # MM is valued on it
    idx = np.zeros(n, np.intp)
    for b in range(t.nb - 1):
        idx += notional > t.br_lookup_cap[:, b][sym]
    flat = sym * t.nb + idx
    mmr = t.br_mmr_e8.ravel()[flat]
    A, B = np.divmod(notional, np.int64(E8))
    mm = A * mmr - t.br_cum_units.ravel()[flat] + (B * mmr - t.br_cum_rem_x8.ravel()[flat] + (E8 - 1)) // E8
    live = portfolio.pos_account >= 0
    ieq = portfolio.pos_iso_margin_units + upnl
    r.pos_liq[:] = iso & (q != 0) & (ieq + t.strict <= mm) & (mm >= t.min_mm)
    cross = ~iso & live
    cupnl = np.where(cross, upnl, 0)
    cmm = np.where(cross, mm, 0)
    csize = (cross & (q != 0)).astype(np.int64)
    m = portfolio.n_accounts
    if portfolio.is_compact:
        nz = portfolio.acct_count > 0
        starts = portfolio.acct_begin[nz]
        eq = portfolio.acct_wallet_units.copy()
        acc_mm = np.zeros(m, np.int64)
        has = np.zeros(m, np.int64)
        eq[nz] += np.add.reduceat(cupnl, starts)
        acc_mm[nz] = np.add.reduceat(cmm, starts)
        has[nz] = np.add.reduceat(csize, starts)
    else:
        owner = portfolio.pos_account[live].astype(np.intp)
        eq = portfolio.acct_wallet_units.copy()
        acc_mm = np.zeros(m, np.int64)
        has = np.zeros(m, np.int64)
        np.add.at(eq, owner, cupnl[live])
        np.add.at(acc_mm, owner, cmm[live])
        np.add.at(has, owner, csize[live])
    has = has > 0
    r.acct_liq[:] = has & (eq + t.strict <= acc_mm) & (acc_mm >= t.min_mm)
    r.n_liq_positions, r.n_liq_accounts = int(r.pos_liq.sum()), int(r.acct_liq.sum())
    if level >= VALUES:
        r.pos_equity[:] = np.where(iso, ieq, upnl)
        r.pos_mm[:] = mm
        r.acct_equity[:], r.acct_mm[:] = eq, acc_mm
        dead = ~live
        r.pos_equity[dead] = 0
        r.pos_mm[dead] = 0
    if level >= RATIOS:
        r.pos_ratio_e8[:] = np.where(iso, _ratio_numpy(mm, ieq, iso & (q != 0)), 0)
        r.acct_ratio_e8[:] = _ratio_numpy(acc_mm, eq, has)
    return r


# -- compiled -------------------------------------------------------------------------------------------
def sweep_compiled(portfolio: Portfolio, marks_ticks, level: int = RATIOS, out: SweepResult | None = None) -> SweepResult:
    """The compiled kernel (``RuntimeError`` if it is not active). ``out`` reuses result arrays of a
    previous call at the same or a higher level (no allocation in the timed path)."""
    if _kernel is None:
        raise RuntimeError("the compiled clearing kernel is not active (EXCHANGE_PUREPYTHON=1)")
    marks = portfolio.table.check_marks(marks_ticks)
    r = out if out is not None else _alloc(portfolio, level)
    r.n_liq_positions, r.n_liq_accounts = _kernel.sweep(
        portfolio, marks, level, r.pos_liq, r.acct_liq, r.pos_equity, r.pos_mm, r.pos_ratio_e8,
        r.acct_equity, r.acct_mm, r.acct_ratio_e8)
    return r


def sweep(portfolio: Portfolio, marks_ticks, level: int = FLAGS) -> SweepResult:
    """Batch API of the active implementation: marks for every symbol in (int64 ticks, one per symbol),
    numpy arrays out (see :class:`SweepResult`)."""
    if _kernel is not None:
        return sweep_compiled(portfolio, marks_ticks, level)
    return sweep_reference(portfolio, marks_ticks, level)
