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
