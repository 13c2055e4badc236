"""Bounds on ADL scores, vectorised over the risk monitor's mirror (numpy), for the ranking filter of
:mod:`exchange.liquidation.adl.ranking`.

The exact scores (:mod:`exchange.liquidation.adl.score`) are Fractions of integers that do not fit 128 bits, so they are slow
to compute for every opposite position on every ADL event. Here each candidate gets an interval
``lo ≤ score ≤ hi`` computed in float64 from the mirror's exact int64 fields; the filter then scores
exactly only the candidates whose interval reaches the top of the ranking (filter and refine). The intervals
must be *sound*, never tight: a loose interval only costs an exact evaluation.

Soundness
---------
Every integer input is exact in int64 (the mirror's bound, :mod:`exchange.accounts.storage`: ``|lots| × price × K``,
``|entry cost| × K``, wallets and margins are within 2⁶² for prices in ``[1, max_price]``). Each float
operation adds a relative error of at most 2⁻⁵³ ≈ 1.1e-16; a value built in ``n`` operations is within
``n × 1.2e-16`` of the real one. The bounds use 1e-13 per input term (a margin of about 100× over the
operation count used) and widen the final quotient by 1e-9 relative. Signs that decide which formula
applies (profit or loss, positive or non-positive balance) are taken exactly from int64 comparisons where
possible; when a float sum is too close to zero to know its sign, the interval is ``(-inf, +inf)`` and the
candidate is simply scored exactly. The maintenance margin is the mirror's bracket (exact int64 lookup) and
``(notional × mmr − cum) / 10⁸`` in float, widened by one unit for its upward rounding.

A candidate whose exact score is certainly 0 gets ``lo = hi = 0``; every other candidate has ``lo < hi``.
"""
from __future__ import annotations

import numpy as np

from ...enums import MarginMode
from ...accounts.storage import Portfolio

REL = 1e-13  #: error allowance per input term (module docstring)
WIDEN = 1e-9  #: final relative widening of every bound


def _upnl(p: Portfolio, slots: np.ndarray, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sign, value, error)`` of the uPnL ``(lots × mark − entry cost) × K`` of ``slots`` (units): the sign
    exact (int64 comparison), the value in float within ``error``."""
    symbol = p.pos_symbol[slots]
    k = p.table.k_units[symbol].astype(np.float64)
    qp = p.pos_qty_lots[slots] * marks[symbol]  # exact: |lots| × mark × K ≤ 2^62
    cost = p.pos_entry_cost[slots]
    sign = np.sign(qp - cost)  # both terms ≤ 2^62 / K in magnitude: exact
    value = (qp.astype(np.float64) - cost.astype(np.float64)) * k
    error = REL * (np.abs(qp).astype(np.float64) + np.abs(cost).astype(np.float64)) * k
    return sign, value, error


def _maintenance(p: Portfolio, slots: np.ndarray, symbol: int, mark: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of the bracketed maintenance margin of ``slots`` (all in ``symbol``) at ``mark`` (units)."""
    t = p.table
    notional = np.abs(p.pos_qty_lots[slots]) * (mark * int(t.k_units[symbol]))  # exact, ≤ 2^62
    bracket = np.searchsorted(t.br_lookup_cap[symbol], notional)  # Σ (notional > cap): caps ascending
    mmr = t.br_mmr_e8[symbol][bracket].astype(np.float64)
    cum = t.br_cum_units[symbol][bracket].astype(np.float64) + t.br_cum_rem_x8[symbol][bracket] / 1e8
    value = notional.astype(np.float64) * mmr / 1e8 - cum
    error = REL * (notional.astype(np.float64) * mmr / 1e8 + cum) + 1.0
    return value - error, value + error + 1.0  # + 1: the exact MM is rounded up


def _ambiguous(value: np.ndarray, error: np.ndarray) -> np.ndarray:
    """Where the sign of a float sum within ``error`` of the real one is unknown."""
    return np.abs(value) <= error


def binance(p: Portfolio, slots: np.ndarray, symbol: int, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``max(0, uPnL) / max(1, w) × MM / (w + uPnL)`` (0 when ``w + uPnL ≤ 0``), ``w`` the isolated
    margin or the cross wallet."""
    sign, upnl, upnl_err = _upnl(p, slots, marks)
    isolated = p.pos_mode[slots] == MarginMode.ISOLATED
    wallet = np.where(isolated, p.pos_iso_margin_units[slots], p.acct_wallet_units[p.pos_account[slots]])
    w = wallet.astype(np.float64)
    balance = w + upnl
    balance_err = upnl_err + REL * (np.abs(w) + np.abs(upnl))
    mm_lo, mm_hi = _maintenance(p, slots, symbol, int(marks[symbol]))
    denominator = np.maximum(wallet, 1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.maximum(upnl - upnl_err, 0) * np.maximum(mm_lo, 0) / (denominator * (balance + balance_err))
        hi = (upnl + upnl_err) * mm_hi / (denominator * (balance - balance_err))
    lo, hi = lo * (1 - WIDEN), hi * (1 + WIDEN)
    zero = (sign <= 0) | (balance + balance_err <= 0)
    unknown = ~zero & _ambiguous(balance, balance_err)
    lo = np.where(zero, 0.0, np.where(unknown, -np.inf, lo))
    hi = np.where(zero, 0.0, np.where(unknown, np.inf, hi))
    return lo, hi


def bybit(p: Portfolio, slots: np.ndarray, symbol: int, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``pnl% × leverage`` (÷ at a loss), ``pnl% = uPnL / entry notional``, ``leverage = notional /
    margin balance`` (0 when the balance is ≤ 0); the balance is the isolated one, or the account's cross
    balance (wallet + every cross position's uPnL)."""
    sign, upnl, upnl_err = _upnl(p, slots, marks)
    k = float(p.table.k_units[symbol])
    entry = np.abs(p.pos_entry_cost[slots]).astype(np.float64) * k
    notional = (np.abs(p.pos_qty_lots[slots]) * int(marks[symbol])).astype(np.float64) * k
    balance, balance_err = _part_balances(p, slots, marks, upnl, upnl_err)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.abs(upnl)
        gain_lo = np.maximum(size - upnl_err, 0) * notional / (entry * (balance + balance_err))
        gain_hi = (size + upnl_err) * notional / (entry * (balance - balance_err))
        loss_lo = -(size + upnl_err) * (balance + balance_err) / (entry * notional)
        loss_hi = -np.maximum(size - upnl_err, 0) * np.maximum(balance - balance_err, 0) / (entry * notional)
    lo = np.where(sign > 0, gain_lo * (1 - WIDEN), loss_lo * (1 + WIDEN))
    hi = np.where(sign > 0, gain_hi * (1 + WIDEN), loss_hi * (1 - WIDEN))
    zero = (sign == 0) | (balance + balance_err <= 0)
    unknown = ~zero & _ambiguous(balance, balance_err)
    lo = np.where(zero, 0.0, np.where(unknown, -np.inf, lo))
    hi = np.where(zero, 0.0, np.where(unknown, np.inf, hi))
    return lo, hi


def bitmex(p: Portfolio, slots: np.ndarray, symbol: int, marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``pnl% × leverage`` (÷ at a loss), ``pnl% = uPnL / entry notional``, ``leverage = mark / d`` with
    ``d = |mark − bankruptcy price|`` (the mark itself without one; the score is 0 at ``d = 0``).

    The bankruptcy price of a part is where its balance ``B`` (:func:`_part_balances`) is 0 with the other
    symbols' marks held: ``mark − B / (net × K)``, ``net`` the part's lots in the symbol (one isolated position,
    or every cross leg of the account in the symbol), rounded to the tick against the account, and none when
    ``net = 0`` or it is ≤ 0. With ``t = B / (|net| × K)``: net long, it is ``floor(mark − t) = mark − ceil(t)`` and
    exists while ``t < mark``; net short, ``ceil(mark + t) = mark + ceil(t)`` while ``−t < mark``. So
    ``d = |ceil(t)|`` where it exists (a price floored to 0 gives ``d = mark`` either way), else ``d = mark``,
    and ``d`` is bounded from an interval of ``t``: ``mark`` where the price certainly does not exist, else the
    least and greatest ``|c|`` over the integers ``c`` from ``ceil(t_lo)`` to ``ceil(t_hi)``. Where the interval
    leaves open whether the price exists, it holds ``±mark``, so ``mark`` is among those ``|c|`` already. A ``d``
    that may be 0 gives ``(-inf, +inf)`` (scored exactly)."""
    sign, upnl, upnl_err = _upnl(p, slots, marks)
    k, mark = float(p.table.k_units[symbol]), int(marks[symbol])
    entry = np.abs(p.pos_entry_cost[slots]).astype(np.float64) * k
    balance, balance_err = _part_balances(p, slots, marks, upnl, upnl_err)
    net = _part_lots(p, slots, symbol)
    m = float(mark)
    with np.errstate(divide="ignore", invalid="ignore"):
        size = np.abs(net).astype(np.float64) * k
        t = balance / size
        t_err = (balance_err + REL * np.abs(balance)) / size + REL * np.abs(t)
        t_lo, t_hi = t - t_err, t + t_err
    exists = (net != 0) & np.where(net > 0, t_lo < m, -t_hi < m)  # possibly
    c_lo, c_hi = np.ceil(np.where(exists, t_lo, 0.0)), np.ceil(np.where(exists, t_hi, 0.0))
    d_lo = np.where(exists, np.where((c_lo <= 0) & (c_hi >= 0), 0.0, np.minimum(np.abs(c_lo), np.abs(c_hi))), m)
    d_hi = np.where(exists, np.maximum(np.abs(c_lo), np.abs(c_hi)), m)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gain = np.abs(upnl)
        gain_lo = np.maximum(gain - upnl_err, 0) * m / (entry * d_hi)
        gain_hi = (gain + upnl_err) * m / (entry * d_lo)
        loss_lo = -(gain + upnl_err) * d_hi / (entry * m)
        loss_hi = -np.maximum(gain - upnl_err, 0) * d_lo / (entry * m)
    lo = np.where(sign > 0, gain_lo * (1 - WIDEN), loss_lo * (1 + WIDEN))
    hi = np.where(sign > 0, gain_hi * (1 + WIDEN), loss_hi * (1 - WIDEN))
    zero = (sign == 0) | (d_hi == 0)
    unknown = ~zero & ((d_lo == 0) | (mark == 0))
    lo = np.where(zero, 0.0, np.where(unknown, -np.inf, lo))
    hi = np.where(zero, 0.0, np.where(unknown, np.inf, hi))
    return lo, hi


def _part_lots(p: Portfolio, slots: np.ndarray, symbol: int) -> np.ndarray:
    """The lots of each slot's part in ``symbol``: the slot's own when isolated, else the sum over its owner's
    cross positions in the symbol (both hedge legs). Exact int64."""
    cross = np.flatnonzero((p.pos_mode == MarginMode.CROSS) & (p.pos_qty_lots != 0) & (p.pos_account >= 0)
                           & (p.pos_symbol == symbol))
    per_account = np.zeros(p.n_accounts, np.int64)
    np.add.at(per_account, p.pos_account[cross], p.pos_qty_lots[cross])
    isolated = p.pos_mode[slots] == MarginMode.ISOLATED
    return np.where(isolated, p.pos_qty_lots[slots], per_account[p.pos_account[slots]])


def _part_balances(p: Portfolio, slots: np.ndarray, marks: np.ndarray, upnl: np.ndarray,
                   upnl_err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(value, error)`` of the margin balance of each slot's part: isolated margin + uPnL, or the owner's
    wallet + Σ uPnL of its cross positions (every symbol; one pass over the mirror)."""
    cross = np.flatnonzero((p.pos_mode == MarginMode.CROSS) & (p.pos_qty_lots != 0) & (p.pos_account >= 0))
    _, cross_upnl, cross_err = _upnl(p, cross, marks)
    owner_of_cross, n = p.pos_account[cross], p.n_accounts
    wallet = p.acct_wallet_units.astype(np.float64)
    account_sum = wallet + np.bincount(owner_of_cross, cross_upnl, n)
    account_err = REL * np.abs(wallet) + np.bincount(owner_of_cross, cross_err + REL * np.abs(cross_upnl), n)
    owners = p.pos_account[slots]
    isolated = p.pos_mode[slots] == MarginMode.ISOLATED
    margin = p.pos_iso_margin_units[slots].astype(np.float64)
    value = np.where(isolated, margin + upnl, account_sum[owners])
    error = np.where(isolated, upnl_err + REL * (np.abs(margin) + np.abs(upnl)), account_err[owners])
    return value, error


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``values`` (every one when there are fewer) by value descending, ties by
    index ascending: the first ``k`` of a stable sort by value descending, without sorting the others (the
    ADL queue's prefixes of the highest bounds). The values hold no NaN. O(n + k log k)."""
    n = len(values)
    if k >= n:
        order = np.arange(n)
    elif k <= 0:
        return np.zeros(0, np.int64)
    else:
        kth = np.partition(values, n - k)[n - k]  # the k-th highest value
        above = np.flatnonzero(values > kth)
        order = np.concatenate([above, np.flatnonzero(values == kth)[:k - len(above)]])
    return order[np.lexsort((order, -values[order]))]
