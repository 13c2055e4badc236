"""The ADL order of :func:`exchange.liquidation.adl.ranking.ranked`, lazily and fast, over the risk monitor's mirror.

An ADL step usually needs only the first few candidates of the opposite side, and a crash has tens of
thousands of ADL steps, so scoring every candidate exactly each time (O(n) Fractions) makes a crash O(n²).
:meth:`ADLQueue.order` gives the same order as :func:`~exchange.liquidation.adl.ranking.ranked` (exactly, ties
included) by *filter and refine*:

- every candidate of the side in the mirror gets float bounds ``lo ≤ score ≤ hi`` in one pass
  (:mod:`exchange.liquidation.adl.bounds` in numpy; compiled, one C call builds the side's columns, bounds
  included, with the first prefixes of the highest bounds from a bounded heap: ``_bounds.candidates_top``;
  longer prefixes come from ``_bounds.top_k``). Compiled, the side's slots are kept from one build to the next
  (``_bounds.SideSlots``): the slots of the accounts the monitor's writer wrote since are merged in, instead of every
  mirror slot being filtered again;
- for a prefix of ``m``, let ``L`` be the m-th largest lower bound: a candidate whose upper bound is below
  ``L`` is beaten by m candidates, so the first m of the exactly sorted others are the true first m. Only
  those (the candidates with ``hi ≥ L``) are scored exactly; candidates known to score exactly 0 are put in
  key order by numpy, unscored (the prefixes of the highest upper bounds count them at -inf). ``m`` starts
  at :data:`FIRST_PREFIX` and grows ×4 while the caller takes more;
- the mirror is the ledger except for the accounts the command has changed so far (the engine's sync rule).
  Among those, an account whose rows still match its ledger state (its
  :meth:`~exchange.liquidation.monitor.RiskMonitor.signature` is the one its rows were written from: accounts the
  command only re-checks) keeps its rows; the others, and the liquidated account, have their rows left out
  of the filter and their positions of the side scored exactly from the ledger at the start (kept per
  signature while the prices stay). A stale position scoring below ``L`` is beaten by m candidates, so it
  waits for a longer prefix.

The order is a snapshot taken when the queue starts: the caller changes only the positions it has taken
(scored before they were yielded) and the liquidated account (scored at the start).

The candidates, their bounds, their highest lower bounds and their exact scores are kept per (symbol, side,
ranking) while the mirror's version and the risk prices stay the same, which they usually do through a
command's liquidation sweep: the first ADL step of a tick costs O(n), the others O(m + accounts
changed since the previous step + candidates with ``hi ≥ L`` + stale scores reaching ``L``). The suspects are
followed through the log of the engine's touched set (:class:`~exchange.accounts.touched.Touched`), the stale
scores are kept in float order, and the prefixes of the bounds are *live lists* that drop skipped rows as a
prefix meets them, so no step pays for every account the command changed before it.

dYdX's seeded order needs no scores: the mirror's candidates and the stale ones, in id order, rotated.
The bitmex ranking reads each part's bankruptcy price, which the mirror gives as ``mark − balance / (lots × K)``
(:func:`exchange.liquidation.adl.bounds.bitmex`). Without the mirror (small exchanges) and for prices outside the
mirror's bounds, the order is :func:`ranked` itself.
"""
from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from dataclasses import dataclass, field
from fractions import Fraction
from operator import itemgetter
from typing import Iterator

import numpy as np

from . import bounds as adlbounds
from ... import _impl
from ...accounts.ledger import FUND_ACCOUNT_BASE
from .ranking import Key, ranked, score_ratio, side_positions
from ...enums import PositionSide
from ...profiles import ADLRanking

FIRST_PREFIX = 4  #: candidates ranked exactly at first, then ×4 while the caller takes more (a crash step takes ~3)
TOP = 64  #: highest lower (and upper) bounds kept sorted per side at first (then grown on demand)
_SIDES = {int(side): side for side in PositionSide}
BOUNDS = {ADLRanking.PNL_X_MARGIN_RATIO: "binance", ADLRanking.PROFIT_X_EFFECTIVE_LEVERAGE: "bybit",
          ADLRanking.PNL_LEVERAGE_INDEX: "bybit", ADLRanking.PNL_X_EFFECTIVE_LEVERAGE: "bitmex"}  #: the bounds function of each ranking (adl.bounds or its twin)


@dataclass
class _Candidates:
    """The mirror's user positions on one side of a symbol, with their score bounds (one ranking)."""

    rows: np.ndarray  # portfolio account of each candidate
    accounts: np.ndarray  # its ledger id
    sides: np.ndarray  # its PositionSide
    lo: np.ndarray
    hi: np.ndarray
    zero: np.ndarray  # True where the score is exactly 0
    top: np.ndarray  # indices of the highest lower bounds, descending (grown on demand)
    zero_order: np.ndarray | None = None  # indices of the zero candidates in key order (made on demand)
    exact: dict[int, tuple] = field(default_factory=dict)  # index -> (key, exact score as :func:`_rank`) found so far
    suspects: dict[int, tuple] = field(default_factory=dict)  # account id -> (signature, liquidated, fresh, stale keys)
    skip: np.ndarray | None = None  # portfolio accounts left out of the filter (ADLQueue._stale keeps it)
    skipped: set[int] = field(default_factory=set)  # the portfolio accounts set in ``skip``
    stale: dict = field(default_factory=dict)  # the stale keys of every suspect, with their exact scores
    stale_order: list = field(default_factory=list)  # (-float score, key) of the scored ones, ascending
    fresh: set[int] = field(default_factory=set)  # suspects whose rows match the ledger
    due_seen: set[int] = field(default_factory=set)  # stale-due accounts looked at
    generation: int | None = -1  # the touched set's generation the above are for (-1: none yet)
    logged: int = 0  # how much of the touched set's log the above have seen
    liquidated: int | None = None  # the liquidated account of the previous call
    hi_top: np.ndarray | None = None  # indices of the highest upper bounds, descending (grown on demand; zeros as -inf)
    reach_hi: np.ndarray | None = None  # the upper bounds ``hi_top`` is by (:func:`_reach_values`; made on demand)
    _hi_desc: np.ndarray | None = None  # minus their upper bounds (ascending, for the binary search)
    top_live: np.ndarray | None = None  # ``top`` without the skipped rows (None: to be made again)
    hi_live: np.ndarray | None = None  # ``hi_top`` without the skipped rows (None: to be made again)
    _hi_live_desc: np.ndarray | None = None
    _hi_live_of: np.ndarray | None = None  # the ``hi_top`` that ``hi_live`` was made from
    top_at: int = 0  # where ``top_live`` starts (the skipped rows its prefix met are before)
    hi_at: int = 0  # where ``hi_live`` starts
    unskipped: bool = False  # a row was unskipped since (the live lists are made again)
    select: object = None  # top_k(values, k): :func:`~exchange.liquidation.adl.bounds.top_k` or its twin (the queue's)
    prefix: object = None  # :func:`_live_prefix` or its twin (the queue's)
    reach: object = None  # :func:`_live_reach` or its twin (the queue's)

    def key(self, j: int) -> Key:
        return int(self.accounts[j]), _SIDES[int(self.sides[j])]

    def highest(self, k: int) -> np.ndarray:
        """Indices of the ``k`` highest lower bounds, descending (ties by index)."""
        if k > len(self.top) and len(self.top) < len(self.lo):  # (a full list holds every candidate)
            self.top = self.select(self.lo, max(2 * k, TOP))
        return self.top[:k]

    def reaching(self, bound: float, select_only: bool = False) -> np.ndarray | None:
        """Indices of the candidates whose upper bound is ≥ ``bound``, by upper bound descending, the zero
        candidates counted at -inf (:func:`_reach_values`: the caller drops them): a prefix of the highest
        upper bounds, grown ×4 (from :data:`TOP`) until it ends below ``bound``. O(n) the first time and at
        each growth, then O(log n + the answer). ``select_only``: grow the prefix, return None."""
        n = len(self.hi)
        if not n:
            return np.zeros(0, np.int64)
        while True:
            top = self.hi_top
            if top is None or (len(top) < n and -self._hi_desc[-1] >= bound):
                if self.reach_hi is None:
                    self.reach_hi = _reach_values(self.hi, self.zero)
                self.hi_top = self.select(self.reach_hi, min(n, TOP if top is None else 4 * len(top)))
                self._hi_desc = -self.reach_hi[self.hi_top]  # ascending
                continue
            if select_only:
                return None
            return top[:np.searchsorted(self._hi_desc, -bound, side="right")]

    def follow_skips(self) -> None:
        """Forget the live lists when a row was unskipped since they were made (skipped rows are dropped from
        them as the prefixes reach them: :meth:`highest_live`, :meth:`reaching_live`)."""
        if self.unskipped:
            self.top_live = self.hi_live = None
        self.unskipped = False

    def highest_live(self, k: int, skip: np.ndarray) -> np.ndarray:
        """The first ``k`` candidates outside skipped rows by lower bound descending (ties by index), or every
        one of them when there are fewer. The live list drops the skipped rows its prefix meets (moving the
        prefix's start), so a call costs O(k + rows skipped since), not O(rows skipped)."""
        while True:
            if self.top_live is None:
                self.top_live, self.top_at = self.top[~skip[self.rows[self.top]]], 0
            self.top_at = self.prefix(self.top_live, self.top_at, k, skip, self.rows)
            head = self.top_live[self.top_at:self.top_at + k]
            if len(head) >= k or len(self.top) == len(self.lo):
                return head
            self.highest(max(2 * len(self.top), k))  # too few live ones: a longer prefix of the lower bounds
            self.top_live = None

    def reaching_live(self, bound: float, skip: np.ndarray) -> np.ndarray:
        """:meth:`reaching` outside skipped rows, dropping the skipped rows it meets as :meth:`highest_live`
        does (the prefix grown as :meth:`reaching` grows it). O(the answer + rows skipped since)."""
        if not len(self.hi):
            return np.zeros(0, np.int64)
        self.reaching(bound, select_only=True)
        if self.hi_live is None or self._hi_live_of is not self.hi_top:  # (re)made from the current prefix
            self.hi_live, self._hi_live_of, self.hi_at = self.hi_top[~skip[self.rows[self.hi_top]]], self.hi_top, 0
            self._hi_live_desc = np.where(self.zero[self.hi_live], np.inf, -self.hi[self.hi_live])
        self.hi_at, end = self.reach(self.hi_live, self._hi_live_desc, self.hi_at, -bound, skip, self.rows)
        return self.hi_live[self.hi_at:end]

    def zeros_by_key(self) -> np.ndarray:
        if self.zero_order is None:
            z = np.flatnonzero(self.zero)
            self.zero_order = z[np.lexsort((self.sides[z], self.accounts[z]))]
        return self.zero_order


class ADLQueue:
    """ADL orders over one exchange's risk monitor (module docstring)."""

    def __init__(self, risk, monitor, compiled: bool = False):
        self.risk = risk
        self.monitor = monitor
        kernel = _impl.adl_bounds_kernel if compiled else None
        if compiled and kernel is None:
            raise RuntimeError("the compiled ADL bounds are not active")
        self._columns = kernel.candidates_top if kernel else _columns_top  # a side's candidate columns (the filter)
        self._top_k = kernel.top_k if kernel else adlbounds.top_k
        self._live = (kernel.live_prefix, kernel.live_reach) if kernel else (_live_prefix, _live_reach)
        self._look = kernel.stale_look if kernel else _look  # _stale's pass over the accounts it looks at
        self._rank = kernel.ExactRank(risk, _Ratio) if kernel else self._rank_reference  # a position's exact rank
        self._cache: dict[tuple[str, bool, ADLRanking], _Candidates] = {}
        self._scores: dict[tuple, tuple[tuple, tuple | None]] = {}  # (symbol, ranking, key) -> (signature, rank)
        self._cache_for: tuple | None = None  # (mirror version, risk prices) the caches hold
        self._caps = monitor.portfolio.table.max_price_ticks.tolist()  # each symbol's highest price in the mirror
        # compiled: each side's filtered mirror slots, kept across commands ((symbol index, long) -> _bounds.SideSlots),
        # followed through the log of the monitor's compiled writer
        self._kept: dict[tuple[int, bool], object] | None = {} if kernel and monitor._writer is not None else None

    def order(self, symbol: str, long: bool, ranking: ADLRanking, seed: int, changing: set[int],
              liquidated: int) -> Iterator[Key]:
        """The positions of ``symbol`` on the ``long`` side in ADL order, lazily. ``changing``: the accounts
        the command has changed so far; ``liquidated``: the account being liquidated."""
        risk = self.risk
        side = self._side(symbol, long, ranking, changing)
        if side is None:
            yield from ranked(risk, symbol, long, ranking, seed)
            return
        candidates, n_accounts = side
        stale, skip = self._stale(n_accounts, candidates, symbol, long, ranking, changing, liquidated)
        if ranking == ADLRanking.SEEDED_OFFSET:
            yield from _seeded(candidates, skip, list(stale), seed)
        else:
            yield from _by_score(candidates, skip, len(candidates.skipped), stale,
                                 lambda key: self._rank(symbol, key, ranking))
        ledger = risk.ledger
        yield from side_positions(ledger, symbol, long, set(ledger.fund_ids.values()))[1]

    def ahead_of(self, symbol: str, long: bool, ranking: ADLRanking, key: Key,
                 keys: bool = True) -> tuple[int, int, list[Key] | None] | None:
        """``(how many user positions are ranked before key, the number of user positions, those positions or None
        without keys)`` on the ``long`` side of ``symbol``, between commands, as :func:`ranked` orders them (``key``
        an open user position of that side); None where the queue would use :func:`ranked` itself (no mirror, marks
        outside it, the seeded order). Every
        candidate's score bounds decide it unless they straddle the key's exact score, then its exact score does (the
        zero candidates compare as 0); the stale positions compare by their exact scores. O(candidates) in numpy,
        plus the exact scores of the candidates whose bounds straddle it and the positions ahead."""
        side = None if ranking == ADLRanking.SEEDED_OFFSET else self._side(symbol, long, ranking, set())
        if side is None:
            return None
        c, n_accounts = side
        stale, skip = self._stale(n_accounts, c, symbol, long, ranking, set(), -1)
        mine = self._rank(symbol, key, ranking)

        def before(other: Key, score: _Ratio) -> bool:  # ranked ahead of key: a higher score, or equal and a lower key
            return score > mine[1] or (score == mine[1] and other < key)

        above, below = np.nextafter(mine[0], math.inf), np.nextafter(mine[0], -math.inf)
        live = ~skip[c.rows] & ~((c.accounts == key[0]) & (c.sides == int(key[1])))
        ahead = live & ~c.zero & (c.lo > above)
        unsure = live & ~c.zero & ~ahead & ~(c.hi < below)
        found = [c.key(j) for j in np.flatnonzero(ahead).tolist()] if keys else []
        count = int(ahead.sum()) - len(found)
        for j in np.flatnonzero(unsure).tolist():
            other = c.key(j)
            known = c.exact.get(j)
            score = known[1] if known is not None else self._rank(symbol, other, ranking)
            if before(other, score[1]):
                found.append(other)
        if mine[1].numerator <= 0:  # the zero candidates: ahead of a loss, or of a 0 with a higher key
            zero = _Ratio(0, 1)
            found += [other for other in map(c.key, np.flatnonzero(live & c.zero).tolist()) if before(other, zero)]
        found += [other for other, score in stale.items() if other != key and before(other, score[1])]
        users = int(live.sum()) + len(stale) + 1 - (key in stale)
        return count + len(found), users, found if keys else None

    def _side(self, symbol: str, long: bool, ranking: ADLRanking, changing: set[int]) -> tuple[_Candidates, int] | None:
        """The side's candidates (kept while the mirror's version and the risk prices stay) and the mirror's
        account count; None where the order is :func:`ranked` itself (no mirror, or a mark outside it)."""
        marks = tuple(map(self.risk.mark_of, self.monitor.symbols))
        view = self.monitor.mirror(changing)
        if view is None or not _within(marks, self._caps):
            return None
        portfolio, ids, version = view
        if self._cache_for != (version, marks):
            self._cache, self._scores, self._cache_for = {}, {}, (version, marks)
        c = self._cache.get((symbol, long, ranking))
        if c is None:
            c = self._cache[symbol, long, ranking] = self._candidates(portfolio, ids, symbol, long, ranking, marks)
        return c, portfolio.n_accounts

    def _stale(self, n_accounts: int, c: _Candidates, symbol: str, long: bool, ranking: ADLRanking,
               changing: set[int], liquidated: int) -> tuple[dict[Key, tuple | None], np.ndarray]:
        """The positions of the side whose mirror rows may not be the ledger's, with their exact scores (as
        :func:`_rank`; None for the seeded order), and the skip mask: the portfolio accounts to leave out of the
        filter. The suspects are ``changing``, the monitor's :meth:`~exchange.liquidation.monitor.RiskMonitor.stale_due`
        and unindexed accounts, and ``liquidated``. A suspect holder whose rows still match the ledger
        (:meth:`~exchange.liquidation.monitor.RiskMonitor.signature`) keeps its rows; the liquidated account never
        does. What each suspect contributes is kept per signature (``c.suspects``), and the stale scores and the
        mask are kept up to date by difference.

        Incremental: when ``changing`` is the engine's :class:`~exchange.accounts.touched.Touched`, only the
        accounts logged since the previous call (plus new stale-due ones and the old and new liquidated
        account) are looked at again; an account not logged since is unchanged (the sync rule). The first call
        of a command (or of a new candidate set) looks at every suspect. O(accounts looked at · their positions)."""
        monitor = self.monitor
        generation = getattr(changing, "generation", None)
        if generation is None or c.generation != generation:  # everything again
            c.generation, c.stale, c.stale_order, c.fresh, c.due_seen = generation, {}, [], set(), set()
            if c.skip is None or len(c.skip) != n_accounts:
                c.skip = np.zeros(n_accounts, dtype=bool)
            else:
                c.skip[list(c.skipped)] = False
            c.skipped, c.unskipped = set(), True
            look = set(changing) | monitor.unindexed
        else:
            look = set(changing.log[c.logged:])
        if generation is not None:
            c.logged = len(changing.log)
        new_due = monitor.stale_due(changing) - c.due_seen
        c.due_seen |= new_due
        look |= new_due
        look.add(liquidated)
        if c.liquidated is not None:
            look.add(c.liquidated)
        c.liquidated = liquidated
        self._look(self, c, look, self.risk.ledger.holders[symbol], symbol, long, ranking, liquidated)
        return c.stale, c.skip

    def _suspect(self, account_id: int, signature: tuple, symbol: str, long: bool, ranking: ADLRanking,
                 liquidated: int) -> tuple:
        """``(signature, liquidated, fresh, {key: exact score as _rank})`` of a suspect holder of ``symbol`` (``_stale``):
        fresh when it is not the liquidated account and its rows were written from ``signature``; otherwise
        its positions on the side, scored exactly from the ledger (None for the seeded order). O(its positions)."""
        ledger, is_liquidated = self.risk.ledger, account_id == liquidated
        keys = [(account_id, side) for side, p in ledger.accounts[account_id].positions_in(symbol)
                if (p.lots > 0) == long]
        if keys and not is_liquidated and self.monitor.written(account_id) == signature:
            return signature, is_liquidated, True, {}
        scored = {}
        for key in keys:
            known = self._scores.get((symbol, ranking, key))
            if known is None or known[0] != signature:
                known = self._scores[symbol, ranking, key] = signature, self._exact(symbol, key, ranking)
            scored[key] = known[1]
        return signature, is_liquidated, False, scored

    def _exact(self, symbol: str, key: Key, ranking: ADLRanking) -> tuple | None:
        """The exact score of a position as :func:`_rank` (None for the seeded order, which needs none). O(1)."""
        return None if ranking == ADLRanking.SEEDED_OFFSET else self._rank(symbol, key, ranking)

    def _rank_reference(self, symbol: str, key: Key, ranking: ADLRanking) -> tuple:
        """:func:`_rank` of the position's :func:`~exchange.liquidation.adl.ranking.score_ratio` (compiled:
        ``_bounds.ExactRank``). O(1)."""
        return _rank(score_ratio(self.risk, symbol, key, ranking))

    def _candidates(self, p, ids: np.ndarray, symbol: str, long: bool, ranking: ADLRanking, marks) -> _Candidates:
        """The side's candidates, with the prefixes of :data:`TOP` highest lower and upper bounds that the first
        :meth:`_Candidates.highest` and :meth:`_Candidates.reaching` would select (none for the seeded order,
        which needs no bounds). O(slots of the mirror + n log TOP); compiled, the filter passes over the side's
        slots kept from the previous call (``_bounds.SideSlots``, followed through the monitor's writer's log of
        the accounts it wrote): O(candidates + slots of the accounts written since + n log TOP) while the log goes on."""
        i = self.monitor.symbols.index(symbol)
        args = (p, ids, i, long, FUND_ACCOUNT_BASE, np.array(marks, dtype=np.int64), BOUNDS.get(ranking),
                0 if ranking == ADLRanking.SEEDED_OFFSET else TOP)
        if self._kept is not None:  # compiled: the filter passes over the side's kept slots, followed first
            kept = self._kept.get((i, long))
            if kept is None:
                kept = self._kept[i, long] = _impl.adl_bounds_kernel.SideSlots(i, long)
            kept.follow(p, ids, FUND_ACCOUNT_BASE, self.monitor._writer)
            args += (kept,)
        *columns, top, hi_top = self._columns(*args)
        c = _Candidates(*columns, top, select=self._top_k, prefix=self._live[0], reach=self._live[1])
        if len(hi_top):
            c.hi_top, c._hi_desc = hi_top, np.where(c.zero[hi_top], np.inf, -c.hi[hi_top])
        return c


def _within(marks: tuple[int, ...], caps: list[int]) -> bool:
    """Whether every mark is inside the mirror's price bounds (0..the symbol's highest price)."""
    for mark, cap in zip(marks, caps):
        if not 0 <= mark <= cap:
            return False
    return True


def _look(queue: ADLQueue, c: _Candidates, look: set[int], holders: set[int], symbol: str, long: bool,
          ranking: ADLRanking, liquidated: int) -> None:
    """:meth:`ADLQueue._stale`'s pass over the accounts it looks at: each one's contribution to the stale scores
    (dropped, then what it contributes now: :meth:`ADLQueue._suspect`, kept per signature), the fresh set and the
    skip mask. (Compiled: ``_bounds.stale_look``.) O(accounts looked at · their positions)."""
    monitor = queue.monitor
    for account_id in look:
        fresh = False
        known = c.suspects.get(account_id)
        if known is not None:  # drop what it contributed
            for key in known[3]:
                r = c.stale.pop(key, None)
                if r is not None:
                    del c.stale_order[bisect.bisect_left(c.stale_order, (-r[0], key))]
        if account_id in holders and account_id < FUND_ACCOUNT_BASE:  # funds come last, from the ledger
            signature = monitor.signature(account_id)
            if known is None or known[0] != signature or known[1] != (account_id == liquidated):
                known = c.suspects[account_id] = queue._suspect(account_id, signature, symbol, long, ranking,
                                                               liquidated)
            fresh = known[2]
            if not fresh:
                c.stale.update(known[3])
                for key, r in known[3].items():
                    if r is not None:
                        bisect.insort(c.stale_order, (-r[0], key))
        else:
            c.suspects.pop(account_id, None)
        if fresh:
            c.fresh.add(account_id)
        else:
            c.fresh.discard(account_id)
        row = monitor.row_of(account_id)
        if row is not None:
            if fresh and row in c.skipped:
                c.skipped.discard(row)
                c.skip[row] = False
                c.unskipped = True
            elif not fresh and row not in c.skipped:
                c.skipped.add(row)
                c.skip[row] = True


def _columns(p, ids: np.ndarray, symbol: int, long: bool, fund_base: int, marks: np.ndarray,
             ranking: str | None) -> tuple:
    """``(rows, accounts, sides, lo, hi, zero)`` of the user positions on one side of ``symbol`` (numpy, a pass
    per column): their portfolio accounts, ledger ids and position sides, the score bounds by ``ranking``
    (a function name of :mod:`~exchange.liquidation.adl.bounds`; None: all 0) and where both are 0. O(slots)."""
    slots = _side_slots(p, ids, symbol, long, fund_base)
    rows = p.pos_account[slots]
    lo, hi = (np.zeros(len(slots)),) * 2 if ranking is None else getattr(adlbounds, ranking)(p, slots, symbol, marks)
    return rows, ids[rows], p.pos_side[slots], lo, hi, (lo == 0) & (hi == 0)


def _columns_top(p, ids: np.ndarray, symbol: int, long: bool, fund_base: int, marks: np.ndarray,
                 ranking: str | None, k: int) -> tuple:
    """:func:`_columns` and the indices of its ``k`` highest lower bounds and of its ``k`` highest
    :func:`_reach_values` (:func:`~exchange.liquidation.adl.bounds.top_k`): ``(rows, accounts, sides, lo, hi, zero,
    top lo, top hi)``. O(slots + n log n)."""
    columns = _columns(p, ids, symbol, long, fund_base, marks, ranking)
    return (*columns, adlbounds.top_k(columns[3], k), adlbounds.top_k(_reach_values(columns[4], columns[5]), k))


def _reach_values(hi: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """The upper bounds :meth:`_Candidates.reaching` selects by: ``hi``, with the candidates known to score 0 at
    -inf (never in a prefix's scored set: the zeros come in key order, unscored), so a bound of 0 does not
    reach every zero candidate of a side. O(n)."""
    return np.where(zero, -np.inf, hi)


def _live_prefix(live: np.ndarray, at: int, k: int, skip: np.ndarray, rows: np.ndarray) -> int:
    """Drop from ``live[at:]`` the entries of skipped rows met before ``k`` kept ones lead it (or it ends): the
    kept ones move up to the new start, which is returned; ``live`` is changed in place. O(entries met)."""
    while True:
        head = live[at:at + k]
        keep = ~skip[rows[head]]
        if keep.all():
            return at
        kept = head[keep]
        at += len(head) - len(kept)
        live[at:at + len(kept)] = kept


def _live_reach(live: np.ndarray, desc: np.ndarray, at: int, limit: float, skip: np.ndarray,
                rows: np.ndarray) -> tuple[int, int]:
    """``(start, end)``: ``live[start:end]`` the entries of ``live[at:]`` whose ``desc`` (ascending) is ≤ ``limit``,
    those of skipped rows dropped (the kept ones, and their ``desc``, move up to the new start; in place).
    O(log n + the entries)."""
    end = at + int(np.searchsorted(desc[at:], limit, side="right"))
    keep = ~skip[rows[live[at:end]]]
    if keep.all():
        return at, end
    kept, kept_desc = live[at:end][keep], desc[at:end][keep]
    at = end - len(kept)
    live[at:end], desc[at:end] = kept, kept_desc
    return at, end


def _side_slots(p, ids: np.ndarray, symbol: int, long: bool, fund_base: int) -> np.ndarray:
    """The mirror slots of the user positions (owner id below ``fund_base``) on one side of ``symbol``, ascending."""
    owners = p.pos_account
    side = (p.pos_qty_lots > 0) if long else (p.pos_qty_lots < 0)
    return np.flatnonzero((p.pos_symbol == symbol) & side & (ids[owners] < fund_base))



class _Ratio:
    """An exact score ``numerator / denominator`` (denominator > 0, not normalised) that compares with another, or
    with a Fraction, by cross-multiplication: what a Fraction gives, without its gcd. O(size of the products)."""

    __slots__ = ("numerator", "denominator")

    def __init__(self, numerator: int, denominator: int):
        self.numerator, self.denominator = numerator, denominator

    def __eq__(self, other) -> bool:
        return self.numerator * other.denominator == other.numerator * self.denominator

    def __lt__(self, other) -> bool:
        return self.numerator * other.denominator < other.numerator * self.denominator

    def __gt__(self, other) -> bool:
        return self.numerator * other.denominator > other.numerator * self.denominator

    __hash__ = None  # (compared, never a key)


def _rank(ratio: tuple[int, int]) -> tuple[float, _Ratio]:
    """``(float(score), score)`` of the score ``ratio`` (:func:`~exchange.liquidation.adl.ranking.score_ratio`):
    sorts exactly as the score but compares as a float first. ``n / d`` of ints is the correctly rounded
    quotient (as a Fraction's float), and rounding to the nearest float is monotonic, so ``float(a) < float(b)``
    implies ``a < b``, and equal floats fall through to the exact :class:`_Ratio`; a score beyond the float range
    is ±inf, which keeps the order too. O(1) divisions."""
    numerator, denominator = ratio
    try:
        value = numerator / denominator
    except OverflowError:
        value = math.inf if numerator > 0 else -math.inf
    return value, _Ratio(numerator, denominator)


def _by_score(c: _Candidates, skip: np.ndarray, n_skipped: int, stale: dict[Key, tuple], rank) -> Iterator[Key]:
    """Highest exact score first, ties by key, over the candidates outside the ``n_skipped`` ``skip``ped rows
    and ``stale`` (``c.stale``, scored already, as :func:`_rank`; the ones that reach a prefix's bound are found
    by binary search in ``c.stale_order``); ``rank(key)`` ranks one candidate exactly (its :func:`_rank`;
    module docstring: the prefix argument). O(log + prefix + candidates with ``hi`` above its bound) per prefix."""
    n, m, taken = len(c.lo), FIRST_PREFIX, 0
    c.follow_skips()
    while True:
        top = c.highest_live(m if m < n else n, skip)
        complete = len(top) < m or m >= n
        bound = -math.inf if complete else float(c.lo[top[m - 1]])
        inside = c.reaching_live(bound, skip)
        if bound == -math.inf:  # (above -inf, the reaching prefixes hold no zero candidate: _reach_values)
            inside = inside[~c.zero[inside]]
        if complete:
            scores = dict(stale)
        else:  # the stale scores whose float reaches the bound: a prefix of c.stale_order
            reach = c.stale_order[:bisect.bisect_right(c.stale_order, -bound, key=itemgetter(0))]
            scores, floor = {}, None
            for _, key in reach:
                r = stale[key]
                if r[0] <= bound:  # an equal float: the exact comparison decides
                    floor = Fraction(bound) if floor is None else floor  # (exact, converted once)
                    if r[1] < floor:
                        continue
                scores[key] = r
        for j in inside.tolist():
            known = c.exact.get(j)
            if known is None:  # valid while the row is not skipped: it is the ledger's state, as when scored
                key = c.key(j)
                known = c.exact[j] = key, rank(key)
            scores[known[0]] = known[1]
        keys = sorted(scores)
        keys.sort(key=scores.__getitem__, reverse=True)  # stable: equal scores stay in key order
        if bound <= 0 and len(c.zeros_by_key()):  # the zero candidates join the scores of 0, in key order
            order = itertools.chain((k for k in keys if scores[k][1].numerator > 0),
                                    heapq.merge((k for k in keys if scores[k][1].numerator == 0),
                                                _keys(c, c.zeros_by_key(), skip)),
                                    (k for k in keys if scores[k][1].numerator < 0))
            order = itertools.islice(order, taken, None if complete else m)
        else:  # (keys is by score descending, ties in key order: positive, 0, negative already)
            order = keys[taken:None if complete else m]
        for key in order:
            yield key
            taken += 1
        if complete:
            return
        m *= 4


def _keys(c: _Candidates, indices: np.ndarray, skip: np.ndarray, chunk: int = 256) -> Iterator[Key]:
    """The keys of the candidates ``indices`` outside ``skip``ped rows, in order, lazily (a chunk at a time)."""
    for start in range(0, len(indices), chunk):
        part = indices[start:start + chunk]
        for j in part[~skip[c.rows[part]]].tolist():
            yield c.key(j)


def _seeded(c: _Candidates, skip: np.ndarray, users: list[Key], seed: int) -> Iterator[Key]:
    """dYdX's order: ascending account id from a seeded start (:func:`exchange.liquidation.adl.score.seeded_order`)."""
    keep = ~skip[c.rows]
    accounts = np.concatenate([c.accounts[keep], np.array([a for a, _ in users], dtype=np.int64)])
    sides = np.concatenate([c.sides[keep], np.array([s for _, s in users], dtype=np.int8)])
    order = np.argsort(accounts, kind="stable")
    if len(order):
        start = random.Random(seed).randrange(len(order))
        order = np.concatenate([order[start:], order[:start]])
    for j in order.tolist():
        yield int(accounts[j]), PositionSide(int(sides[j]))
