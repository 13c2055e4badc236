"""Auto-deleveraging over the exchange's positions (SPEC §7 step 5, §10): who is deleveraged first.

:func:`ranked` lists the positions of one side of a symbol in the order ADL takes them, by the profile's
ranking (scores from :mod:`exchange.adl`, exact Fractions, ties by account id):

=========================== ==================================================================================
PNL_X_MARGIN_RATIO (binance) ``binance_score(uPnL, wallet, MM)``; for an isolated position "wallet" is its
                             isolated margin
PNL_X_EFFECTIVE_LEVERAGE     ``bitmex_score(side, entry price, mark, bankruptcy price)`` (a long without a
(bitmex)                     bankruptcy price uses 0)
PROFIT_X_EFFECTIVE_LEVERAGE  ``bybit_score(uPnL, entry notional, notional at mark, margin balance of its part)``
(bybit), PNL_LEVERAGE_INDEX
(hyperliquid)
SEEDED_OFFSET (dydx)         ``seeded_order(account ids, seed)``: ascending id from a seeded pseudo-random start
=========================== ==================================================================================

Insurance-fund positions are candidates too, after every user position (so the opposite side always covers
what is liquidated: open interest is balanced). :func:`ranked` scores every candidate: O(n log n) Python in
the positions of the symbol, the oracle.

:func:`queue` yields the same order lazily, for the ADL step, which usually needs only the first few
candidates. Over the risk monitor's mirror it bounds every candidate's score in one vectorised pass
(:mod:`exchange.adlbounds`) and scores exactly only the candidates that can reach the prefix asked for
(filter and refine): for a prefix of ``m``, with ``L`` the m-th largest lower bound, every candidate whose
upper bound is below ``L`` is beaten by m candidates, so the first m of the exactly sorted rest are the true
first m. ``m`` grows ×4 while the caller keeps taking. Accounts the command has changed (not yet in the
mirror) are scored exactly from the ledger. The order is a snapshot taken when the queue starts: the caller
changes only the positions already taken and the liquidated account (scored at the start). Without the mirror
(small exchanges, stepwise brackets) and for the bitmex ranking (its bankruptcy prices are not in the
mirror), :func:`queue` is :func:`ranked`.
"""
from __future__ import annotations

import heapq
import itertools
import random
from fractions import Fraction
from typing import Iterator

import numpy as np

from . import adl, adlbounds
from .accounts import FUND_ACCOUNT_BASE
from .enums import PositionSide
from .profiles import ADLRanking
from .risk import CROSS

Key = tuple[int, PositionSide]  # (account id, position side) of a position in the symbol
ZERO = Fraction(0)
FIRST_PREFIX = 16  #: candidates :func:`queue` ranks exactly at first (then ×4 while the caller takes more)
BOUNDS = {ADLRanking.PNL_X_MARGIN_RATIO: adlbounds.binance, ADLRanking.PROFIT_X_EFFECTIVE_LEVERAGE: adlbounds.bybit,
          ADLRanking.PNL_LEVERAGE_INDEX: adlbounds.bybit}


def side_positions(ledger, symbol: str, long: bool, account_ids=None) -> tuple[list[Key], list[Key]]:
    """``(user keys, fund keys)`` of the open positions of ``symbol`` on one side, by (account, side), among
    ``account_ids`` (default: every holder)."""
    users, funds = [], []
    holders = ledger.holders[symbol]
    for account_id in sorted(holders if account_ids is None else holders.intersection(account_ids)):
        for side, position in ledger.accounts[account_id].positions_in(symbol):
            if (position.lots > 0) == long:
                (funds if account_id >= FUND_ACCOUNT_BASE else users).append((account_id, side))
    return users, funds


def ranked(risk, symbol: str, long: bool, ranking: ADLRanking, seed: int) -> list[Key]:
    """Positions of ``symbol`` on the ``long`` side in ADL order (module docstring)."""
    users, funds = side_positions(risk.ledger, symbol, long)
    if ranking == ADLRanking.SEEDED_OFFSET:
        order = {account_id: i for i, account_id in enumerate(adl.seeded_order([a for a, _ in users], seed))}
        users.sort(key=lambda key: order[key[0]])
    else:
        scores = {key: _score(risk, symbol, key, ranking) for key in users}
        # exact integer sort keys: two distinct fractions with denominators below 2^m differ by at least
        # 2^-2m, so floor(score × 2^(2m+2)) orders them exactly, and equal scores get equal keys
        shift = 2 * max((score.denominator.bit_length() for score in scores.values()), default=0) + 2
        users.sort(key=lambda key: (-((scores[key].numerator << shift) // scores[key].denominator), key))
    return users + funds


def queue(risk, monitor, symbol: str, long: bool, ranking: ADLRanking, seed: int, changing: set[int]) -> Iterator[Key]:
    """The order of :func:`ranked`, lazily (module docstring). ``changing``: the accounts the command has
    changed so far, and the liquidated account."""
    mirror = monitor.mirror(changing) if ranking != ADLRanking.PNL_X_EFFECTIVE_LEVERAGE else None
    marks = np.array([risk.mark_of(s) for s in monitor.symbols], dtype=np.int64)
    if mirror is None or (marks < 0).any() or (marks > monitor.portfolio.table.max_price_ticks).any():
        yield from ranked(risk, symbol, long, ranking, seed)
        return
    p, ids, exact, inexact = mirror
    i = monitor.symbols.index(symbol)
    owners = p.pos_account
    slots = np.flatnonzero((p.pos_symbol == i) & ((p.pos_qty_lots > 0) if long else (p.pos_qty_lots < 0))
                           & exact[owners] & (ids[owners] < FUND_ACCOUNT_BASE))
    ledger = risk.ledger
    fund_ids = set(ledger.fund_ids.values())
    users, funds = side_positions(ledger, symbol, long, inexact | fund_ids)
    accounts, sides = ids[owners[slots]], p.pos_side[slots]
    if ranking == ADLRanking.SEEDED_OFFSET:
        yield from _seeded(accounts, sides, users, seed)
    else:
        lo, hi = BOUNDS[ranking](p, slots, i, marks)
        yield from _by_score(accounts, sides, lo, hi, {key: _score(risk, symbol, key, ranking) for key in users},
                             lambda key: _score(risk, symbol, key, ranking))
    yield from funds


def _seeded(accounts: np.ndarray, sides: np.ndarray, users: list[Key], seed: int) -> Iterator[Key]:
    """dYdX's order over the mirror's candidates (``accounts``, ``sides``) and ``users``."""
    accounts = np.concatenate([accounts, np.array([a for a, _ in users], dtype=np.int64)])
    sides = np.concatenate([sides, np.array([s for _, s in users], dtype=np.int8)])
    order = np.argsort(accounts, kind="stable")
    if len(order):
        start = random.Random(seed).randrange(len(order))
        order = np.concatenate([order[start:], order[:start]])
    for j in order.tolist():
        yield int(accounts[j]), PositionSide(int(sides[j]))


def _by_score(accounts: np.ndarray, sides: np.ndarray, lo: np.ndarray, hi: np.ndarray, extra: dict[Key, Fraction],
              score) -> Iterator[Key]:
    """Highest exact score first, ties by key, over the mirror's candidates (``accounts``, ``sides``), whose
    scores lie in ``[lo, hi]`` (exactly 0 where ``lo == hi == 0``), and ``extra`` (scored exactly already);
    ``score(key)`` scores one candidate exactly (module docstring: the prefix argument). The candidates
    known to score 0 are put in key order by numpy and never scored."""
    n, m, taken = len(lo), FIRST_PREFIX, 0
    scores = dict(extra)
    zero = (lo == 0) & (hi == 0)
    while True:
        complete = m >= n
        inside = np.ones(n, dtype=bool) if complete else hi >= np.partition(lo, n - m)[n - m]
        keys = list(extra)
        for j in np.flatnonzero(inside & ~zero).tolist():
            key = (int(accounts[j]), PositionSide(int(sides[j])))
            if key not in scores:
                scores[key] = score(key)
            keys.append(key)
        keys.sort(key=lambda key: (-scores[key], key))
        zeros = np.flatnonzero(inside & zero)
        zeros = zeros[np.lexsort((sides[zeros], accounts[zeros]))]
        known_zero = ((int(accounts[j]), PositionSide(int(sides[j]))) for j in zeros.tolist())
        order = itertools.chain((k for k in keys if scores[k] > 0),
                                heapq.merge((k for k in keys if scores[k] == 0), known_zero),
                                (k for k in keys if scores[k] < 0))
        for key in itertools.islice(order, taken, None if complete else m):
            yield key
            taken += 1
        if complete:
            return
        m *= 4


def quantile(risk, symbol: str, key: Key, ranking: ADLRanking, seed: int) -> int:
    """ADL lights (1–5) of an open user position among the user positions on its side; 0 if none."""
    account = risk.ledger.get(key[0])
    position = risk.ledger.position(account, symbol, key[1])
    if not position.lots or key[0] >= FUND_ACCOUNT_BASE:
        return 0
    users = [k for k in ranked(risk, symbol, position.lots > 0, ranking, seed) if k[0] < FUND_ACCOUNT_BASE]
    return adl.quantile_lights(users.index(key), len(users))


def _score(risk, symbol: str, key: Key, ranking: ADLRanking) -> Fraction:
    account = risk.ledger.accounts[key[0]]
    position = risk.ledger.position(account, symbol, key[1])
    upnl = risk.upnl(symbol, position)
    isolated = risk.is_isolated(account, symbol)
    if ranking == ADLRanking.PNL_X_MARGIN_RATIO:
        wallet = position.isolated_margin_units if isolated else account.wallet_units
        return adl.binance_score(upnl, wallet, risk.position_mm(symbol, position))
    if ranking == ADLRanking.PNL_X_EFFECTIVE_LEVERAGE:
        bankruptcy = risk.bankruptcy_price_ticks(account, symbol, key[1]) or 0
        entry = Fraction(position.entry_cost, position.lots)
        return adl.bitmex_score(1 if position.lots > 0 else -1, entry, risk.mark_of(symbol), Fraction(bankruptcy))
    balance = risk.part_state(account, symbol if isolated else CROSS, key[1])[0]
    k = risk.instruments[symbol].k_units
    return adl.bybit_score(upnl, abs(position.entry_cost) * k, risk.notional(symbol, position), balance)
