"""Incremental liquidation index: a mark tick visits only the positions/accounts it may have pushed over.

Entries and what they guarantee
-------------------------------
Every entry belongs to one symbol and fires either DOWN (when ``mark ≤ value``) or UP (``mark ≥ value``).

- **Isolated position** (key ``slot·2``): its exact *liquidation tick* T. Its balance − MM is monotone in
  the mark (see :func:`exchange.accounts.margin.liquidation_price_ticks`), so "mark ≤ T" (long, DOWN) or "mark ≥ T"
  (short, UP) is *exactly* the liquidation rule; clamped to ``[1, max_price]`` and absent when no valid
  mark liquidates it. The rule is the table's (the profile's, :class:`~exchange.accounts.storage.InstrumentTable`):
  its trigger, and with ``iso_entry`` the constant MM of the entry value (the tick is then closed-form,
  :func:`exchange.accounts.margin.entry_liquidation_price_ticks`).
- **Cross account** (key ``account·2 + 1``): a *safe band* per symbol. With the current marks the account's
  slack is ``H = wallet + Σ_s g_s`` where ``g_s = Σ_{cross legs of s} (uPnL − MM)`` (integer, ceil MM);
  liquidatable ⇔ ``H ≤ 0``. The slack minus one is split ``b_s = floor((H − 1)·w_s / Σw)`` by gross notional
  ``w_s`` (so every band is about the same relative width) and the band of s is
  ``{P : h_s(P) ≥ g_s − b_s}``, where ``h_s`` is ``Σ(uPnL − MM_exact) − legs`` — a concave lower bound of
  ``g_s`` (``ceil(x) < x + 1``), so the band is an interval ``[lo, hi]``, exact in integers. If every symbol's
  mark stays in its band then ``H(P) > Σ(g_s − b_s) − Σ... ≥ 1 > 0``: the account **cannot** be
  liquidatable. The entries are DOWN at ``lo − 1`` and UP at ``hi + 1`` (omitted at the price limits).
  A liquidatable account (or one whose band would not contain the mark) gets a DOWN entry at
  ``2⁶³ − 1``, which fires on every mark of its symbols. ``H ≥ 1`` rules out every trigger (the strict ones
  need ``H < 0``), so the bands hold for all of them; an account with ``H ≤ 0`` gets the always-firing entry
  and its flag by the trigger.

So after ``process_mark(s, P)`` every position/account that is liquidatable and has exposure to s has
been reported (and everything liquidatable was reported when it became so). The bands are conservative
(an account may be re-checked and found safe), never optimistic.

Data structure
--------------
Per (symbol, direction) a trigger list stores ``value`` (UP values negated, so both fire on
``stored ≥ threshold``), ``key`` and ``version`` in three tiers: a large sorted main array, a sorted middle
tier (at most ``max(2048, n/64)`` entries) and an unsorted pending buffer (at most 256). A query is one
``searchsorted`` per sorted tier (the fired entries are its *suffix*, removed by truncation in O(1)) and a
vectorised scan of the pending buffer; new entries go to the pending buffer, which past 256 is sorted into
the middle tier (O(middle)), which past its bound is merged into the main array (O(n) ``np.insert``); both
folds drop stale entries. So a tick scans at most 256 unsorted entries however many accounts were written
since the last one, and an entry costs O(1) amortised folding (≈ 64 + middle/256 element moves).
Updating a position or account bumps its version, which lazily invalidates its old entries everywhere.
Cost of a mark tick: O(log n + 256 + fired); with nothing near liquidation, a few microseconds.

Caller contract: after changing a position, an isolated margin or a wallet call
:meth:`LiqIndex.update_position` / :meth:`LiqIndex.update_account` (or :meth:`LiqIndex.rearm` for whole
accounts); after :meth:`exchange.accounts.storage.Portfolio.compact` call :meth:`LiqIndex.rebuild`.

Warning level (:class:`WarnIndex`)
----------------------------------
The same trigger lists for the *margin-call* predicate ``warned ⇔ margin ratio ≥ w`` (``w`` = the warning
level ×10⁸, ratio = ``ceil(MM·10⁸ / balance)``, ∞ for balance ≤ 0), which with ``c = w − 1`` is
``balance ≤ 0 or c·balance < 10⁸·MM``. Per part (isolated position or cross account), around the current
marks, a box of per-symbol bands inside which the predicate keeps its current value:

- *not warned*: ``F = c·B − 10⁸·MM ≥ 0``. ``F − `` (its per-symbol parts ``g_s``) is bounded below by the
  concave ``h_s = Σ_legs (c·uPnL − 10⁸·MM_exact − 10⁸)`` (< ``g_s``); the slack ``F`` is split by gross
  notional, ``b_s = floor(F·w_s/Σw)``, and the band is ``{P : h_s(P) ≥ g_s − b_s}``: inside every band
  ``F > 0`` (so ``B > 0`` when ``c > 0``): not warned.
- *warned*: ``U = c·B − 10⁸·MM_exact ≥ F`` (``MM ≥ MM_exact``) is concave per symbol (``u_s``); with
  ``D = −U > 0`` split as ``b_s = floor((D − 1)·w_s/Σw)``, the band is the run of integer prices around the
  mark on which ``u_s(P) ≤ u_s + b_s`` (a half-line: ``u_s`` is concave); inside every band ``U < 0``: warned. (``D ≤ 0``, possible
  only when the part is warned through ``balance ≤ 0`` at a zero MM, gets the always-firing entry.)

Both are exact integer intervals (ceil / floor of the line roots), conservative, never optimistic; a
mark outside the band fires the entry and the caller re-evaluates the part. The warned band is found by
binary search over the concave ``u_s`` (its first maximum past the mark, then the last price at most the
target): :func:`_run_at_most`, twinned by ``exchange.clearing._sweep.warn_entries`` (identical entries).

Non-convex MM (stepwise)
------------------------
The bands need the line sums concave, so MM convex in the notional (marginal tiers: the maximum of the bracket
lines). A stepwise table (bitmex: the whole position at its step's rate, jumping at each cap) is not. Its bands
are drawn with the convex bounds of the table (``upper_rows`` / ``lower_rows``,
:func:`exchange.accounts.margin.convex_bounds`): ``MM_exact`` in ``h_s`` is the upper bound's (so ``h_s`` stays
below ``g_s``), in ``u_s`` the lower bound's (so ``U`` stays above ``F``); ``g_s``, the slack and every flag keep
the exact (rounded) MM. The bands are then narrower, never wider: a mark that leaves one re-checks the part
exactly. An isolated position keeps its exact tick only when its liquidation set is one interval, which a
stepwise MM at the mark breaks; so such a table is indexed only with MM on the entry value
(``InstrumentTable.indexable``; bitmex's rule), and otherwise the risk monitor re-checks every holder.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import product
from math import ceil, floor

import numpy as np

from ..enums import MarginMode
from ..accounts.margin import (
    bracket_index, entry_liquidation_price_ticks, entry_maintenance_margin, fixed_level_ticks, is_liquidatable,
    liquidation_price_ticks, maintenance_margin,
)
from ..accounts.storage import Portfolio
from .._impl import sweep_kernel as _kernel  # the compiled twin (exchange/clearing/_sweep.pyx), None under the reference
from ..units import E8

DOWN, UP = 0, 1
ALWAYS = np.iinfo(np.int64).max  # a DOWN entry with this value fires on any mark
ISO = int(MarginMode.ISOLATED)
_NOTHING = -(2**63)  # below every stored value
_RAW_PENDING = 256  # unsorted entries a trigger list holds before sorting them into its middle tier
_MIN_PENDING = 2048  # the middle tier is merged into the main array past max(this, main / 64) entries


# -- entries: reference (Python ints) -------------------------------------------------------------------
def iso_entry_reference(portfolio: Portfolio, marks, slot: int):
    """``(symbol, direction, value)`` of an isolated slot, or ``None``; and whether it is liquidatable now
    (by the table's trigger; an isolated MM on the entry value when the table says so)."""
    t = portfolio.table
    if portfolio.pos_account[slot] < 0 or portfolio.pos_mode[slot] != ISO or portfolio.pos_qty_lots[slot] == 0:
        return None, False
    s = int(portfolio.pos_symbol[slot])
    q, e, m = int(portfolio.pos_qty_lots[slot]), int(portfolio.pos_entry_cost[slot]), int(portfolio.pos_iso_margin_units[slot])
    k, rows, maxp, mark = int(t.k_units[s]), t.rows[s], int(t.max_price_ticks[s]), int(marks[s])
    upnl = (mark * q - e) * k
    if t.iso_entry:
        liq = is_liquidatable(m + upnl, entry_maintenance_margin(rows, e, k), True, t.trigger)
        T = entry_liquidation_price_ticks(m, q, e, k, rows, t.trigger)
    else:
        liq = is_liquidatable(m + upnl, maintenance_margin(rows, abs(q) * mark * k), True, t.trigger)
        T = liquidation_price_ticks(m, [(q, e)], k, rows, mark, t.trigger)
    if q > 0:
        return (None if T is None else (s, DOWN, min(T, maxp))), liq
    return (None if T is None or T > maxp else (s, UP, max(T, 1))), liq


def _h8_lines(legs, k, rows):
    """Lines ``αP + β`` whose minimum is ``10⁸·(Σ(uPnL − MM_exact) − legs)`` (one per bracket choice)."""
    for choice in product(range(len(rows)), repeat=len(legs)):
        alpha, beta = 0, 0
        for (q, e), n in zip(legs, choice):
            alpha += k * (E8 * q - abs(q) * rows[n].mmr_e8)
            beta += -E8 * e * k + rows[n].cum_x8 - E8
        yield alpha, beta


def cross_entries_reference(portfolio: Portfolio, marks, account: int):
    """``(entries, liquidatable)`` of an account's cross part; entries = [(symbol, direction, value)]."""
    t = portfolio.table
    H = int(portfolio.acct_wallet_units[account])
    legs_by_sym: dict[int, list] = {}
    for j in portfolio.slots_of(account):
        q = int(portfolio.pos_qty_lots[j])
        if portfolio.pos_mode[j] == ISO or q == 0:
            continue
        s = int(portfolio.pos_symbol[j])
        legs_by_sym.setdefault(s, []).append((q, int(portfolio.pos_entry_cost[j])))
    if not legs_by_sym:
        return [], False
    g, w = {}, {}
    for s, legs in legs_by_sym.items():
        k, mark = int(t.k_units[s]), int(marks[s])
        g[s] = sum((mark * q - e) * k - maintenance_margin(t.rows[s], abs(q) * mark * k) for q, e in legs)
        w[s] = sum(abs(q) * mark * k for q, _ in legs)
    H += sum(g.values())
    order = sorted(legs_by_sym)  # entries in symbol order of first appearance is irrelevant: sets compare
    if H <= 0:  # liquidatable, or (a strict trigger) at its edge: re-checked on every move
        mm = sum(maintenance_margin(t.rows[s], abs(q) * int(marks[s]) * int(t.k_units[s]))
                 for s, legs in legs_by_sym.items() for q, _ in legs)
        return [(s, DOWN, int(ALWAYS)) for s in order], is_liquidatable(H + mm, mm, True, t.trigger)
    W = sum(w.values())
    out = []
    for s in order:
        legs = legs_by_sym[s]
        k, rows, maxp, p0 = int(t.k_units[s]), t.upper_rows[s], int(t.max_price_ticks[s]), int(marks[s])
        c8 = E8 * (g[s] - (H - 1) * w[s] // W)
        lo, hi = 1, maxp
        empty = False
        for alpha, beta in _h8_lines(legs, k, rows):
            if alpha > 0:
                lo = max(lo, ceil(Fraction(c8 - beta, alpha)))
            elif alpha < 0:
                hi = min(hi, floor(Fraction(beta - c8, -alpha)))
            elif beta < c8:
                empty = True
        _band_entries(out, s, lo, hi, p0, maxp, empty)
    return out, False


def warn_entries_reference(portfolio: Portfolio, marks, level_e8: int, base_units: int, legs_by_sym: dict):
    """``(entries, warned)`` of one part at the warning level (module docstring): ``base_units`` is the
    isolated margin or the wallet, ``legs_by_sym`` maps symbol index -> [(qty_lots, entry_cost)] (non-zero
    sizes); entries are ``(symbol, direction, value)``. O(Σ_s brackets^legs_s)."""
    t = portfolio.table
    c = level_e8 - 1
    g, u, w = {}, {}, {}
    balance, mm_total = base_units, 0
    for s, legs in legs_by_sym.items():
        k, rows, lower, mark = int(t.k_units[s]), t.rows[s], t.lower_rows[s], int(marks[s])
        g[s] = u[s] = w[s] = 0
        for q, e in legs:
            notional = abs(q) * mark * k
            upnl = (mark * q - e) * k
            mm = maintenance_margin(rows, notional)
            row = lower[bracket_index(lower, notional)]
            balance += upnl
            mm_total += mm
            g[s] += c * upnl - E8 * mm
            u[s] += c * upnl - (notional * row.mmr_e8 - row.cum_x8)
            w[s] += notional
    warned = balance <= 0 or c * balance < E8 * mm_total
    total_w = sum(w.values())
    out = []
    slack = c * base_units + (sum(u.values()) if warned else sum(g.values()))  # −D, or F ≥ 0
    for s in sorted(legs_by_sym):
        legs, k = legs_by_sym[s], int(t.k_units[s])
        maxp, mark = int(t.max_price_ticks[s]), int(marks[s])
        if warned and slack >= 0:
            out.append((s, DOWN, int(ALWAYS)))
            continue
        if not warned:  # band {P : every line ≥ target}
            target = g[s] - slack * w[s] // total_w
            lo, hi, empty = 1, maxp, False
            for alpha, beta in _warn_lines(legs, k, t.upper_rows[s], c, -E8):
                if alpha > 0:
                    lo = max(lo, -((beta - target) // alpha))
                elif alpha < 0:
                    hi = min(hi, (beta - target) // -alpha)
                elif beta < target:
                    empty = True
            _band_entries(out, s, lo, hi, mark, maxp, empty)
            continue
        # warned: the run of prices around the mark on which u_s stays ≤ target (u_s concave)
        target = u[s] + (-slack - 1) * w[s] // total_w
        _run_at_most(out, s, lambda p, lower=t.lower_rows[s]: _warn_sum(legs, k, lower, c, p), target, mark, maxp)
    return out, warned


def _warn_sum(legs, k: int, rows, c: int, price: int) -> int:
    """``u_s(P) = Σ_legs (c·uPnL − 10⁸·MM_exact)`` at ``price`` (concave: MM is convex)."""
    total = 0
    for q, e in legs:
        notional = abs(q) * price * k
        row = rows[bracket_index(rows, notional)]
        total += c * (price * q - e) * k - (notional * row.mmr_e8 - row.cum_x8)
    return total


def _last_true(pred, good: int, bad: int) -> int:
    """The last point where ``pred`` holds walking from ``good`` (true) to ``bad`` (false); ``pred`` monotone on
    that segment. O(log |bad − good|) calls."""
    while abs(bad - good) > 1:
        middle = (good + bad) // 2
        if pred(middle):
            good = middle
        else:
            bad = middle
    return good


def _run_at_most(out: list, s: int, f, target: int, mark: int, maxp: int) -> None:
    """Append the entry of the run of prices around ``mark`` on which the concave ``f`` stays ``≤ target`` (it
    holds at the mark): the run ends on the side of the first maximum past the mark only, at the last price
    still ``≤ target`` (UP one tick above it / DOWN one tick below it); no entry when that maximum is ``≤ target``
    too. O(log max_price) evaluations of ``f``."""
    def rising(p):
        return p < maxp and f(p + 1) > f(p)

    def at_most(p):
        return f(p) <= target

    if rising(mark):
        top = _last_true(rising, mark, maxp) + 1
        if not at_most(top):
            out.append((s, UP, _last_true(at_most, mark, top) + 1))
    else:
        top = _last_true(rising, 1, mark) + 1 if rising(1) else 1
        if not at_most(top):
            out.append((s, DOWN, _last_true(at_most, mark, top) - 1))


def warn_entries_fixed(portfolio: Portfolio, marks, level_e8: int, slot: int):
    """``(entries, warned)`` of an isolated slot whose MM is charged on its entry value (a constant): warned ⇔
    ``B ≤ 0 or c·B < 10⁸·MM`` ⇔ ``B ≤ L`` with ``L = max(0, ceil(10⁸·MM / c) − 1)`` (``c = level − 1``), so the
    state flips at one exact tick (:func:`exchange.accounts.margin.fixed_level_ticks`)."""
    t = portfolio.table
    s = int(portfolio.pos_symbol[slot])
    q, e, m = int(portfolio.pos_qty_lots[slot]), int(portfolio.pos_entry_cost[slot]), int(portfolio.pos_iso_margin_units[slot])
    k, maxp, mark = int(t.k_units[s]), int(t.max_price_ticks[s]), int(marks[s])
    mm = entry_maintenance_margin(t.rows[s], e, k)
    c = level_e8 - 1
    if c == 0 and mm > 0:
        return [], True  # every positive ratio is at the level
    level = max(0, -(-E8 * mm // c) - 1) if c else 0
    warned = m + (mark * q - e) * k <= level
    return _fixed_entries(s, q, fixed_level_ticks(m, q, e, k, level), warned, maxp), warned


def _fixed_entries(s: int, q: int, T: int | None, now: bool, maxp: int) -> list:
    """Entries of a state that holds at ``P ≤ T`` (long) or ``P ≥ T`` (short) and not beyond (T from
    :func:`exchange.accounts.margin.fixed_level_ticks`; None: nowhere), where ``now`` is its value at the mark."""
    if T is None:
        return []
    if q > 0:
        return ([(s, UP, T + 1)] if T < maxp else []) if now else [(s, DOWN, min(T, maxp))]
    return ([(s, DOWN, T - 1)] if T > 1 else []) if now else ([(s, UP, T)] if T <= maxp else [])


def _warn_lines(legs, k, rows, c, per_leg):
    """Lines ``αP + β`` whose minimum is ``Σ_legs (c·uPnL − 10⁸·MM_exact) + legs·per_leg`` (one per bracket
    choice of each leg)."""
    for choice in product(range(len(rows)), repeat=len(legs)):
        alpha, beta = 0, 0
        for (q, e), n in zip(legs, choice):
            alpha += k * (c * q - abs(q) * rows[n].mmr_e8)
            beta += -c * e * k + rows[n].cum_x8 + per_leg
        yield alpha, beta


# -- trigger list ---------------------------------------------------------------------------------------
class _TriggerList:
    """Entries of one (symbol, direction) that fire when ``stored ≥ threshold`` (UP values are negated), in the
    three tiers of the module docstring: main ``v, key, ver`` (``n`` entries, sorted), middle ``mv, mkey, mver``
    (``mn``, sorted), pending ``pv, pkey, pver`` (``m``, unsorted)."""

    def __init__(self):
        self.v, self.key, self.ver, self.n = _empty_tier() + (0,)
        self.mv, self.mkey, self.mver, self.mn = _empty_tier() + (0,)
        self.pv = np.zeros(64, np.int64)
        self.pkey = np.zeros(64, np.int64)
        self.pver = np.zeros(64, np.uint32)
        self.m = 0
        self.pmax = _NOTHING  # the largest pending value (a tick below it skips the scan)

    def push(self, v, key, ver):
        k = len(v)
        if self.m + k > len(self.pv):
            cap = max(2 * len(self.pv), self.m + k)
            for name in ("pv", "pkey", "pver"):
                arr = getattr(self, name)
                grown = np.zeros(cap, arr.dtype)
                grown[: self.m] = arr[: self.m]
                setattr(self, name, grown)
        self.pv[self.m:self.m + k] = v
        self.pkey[self.m:self.m + k] = key
        self.pver[self.m:self.m + k] = ver
        self.m += k
        if k:
            self.pmax = max(self.pmax, int(np.max(v)))

    def settle(self, valid):
        """Fold a full pending buffer into the middle tier, and a full middle tier into the main array, dropping
        entries ``valid`` rejects. O(middle + 256 log 256), or O(n) when the main array takes the middle tier."""
        if self.m <= _RAW_PENDING:
            return
        pending = self.pv[: self.m], self.pkey[: self.m], self.pver[: self.m]
        self.mv, self.mkey, self.mver = self._merge((self.mv[: self.mn], self.mkey[: self.mn], self.mver[: self.mn]),
                                                    pending, valid)
        self.mn, self.m, self.pmax = len(self.mv), 0, _NOTHING
        if self.mn > max(_MIN_PENDING, self.n >> 6):
            self._fold_middle(valid)

    def merge(self, valid):
        """Fold every tier into the main array, dropping entries ``valid`` rejects. O(n + pending log pending)."""
        pending = self.pv[: self.m], self.pkey[: self.m], self.pver[: self.m]
        self.mv, self.mkey, self.mver = self._merge((self.mv[: self.mn], self.mkey[: self.mn], self.mver[: self.mn]),
                                                    pending, valid)
        self.mn, self.m, self.pmax = len(self.mv), 0, _NOTHING
        self._fold_middle(valid)

    def _fold_middle(self, valid):
        self.v, self.key, self.ver = self._merge((self.v[: self.n], self.key[: self.n], self.ver[: self.n]),
                                                 (self.mv[: self.mn], self.mkey[: self.mn], self.mver[: self.mn]), valid)
        self.n = len(self.v)
        self.mv, self.mkey, self.mver, self.mn = _empty_tier() + (0,)

    def fire(self, threshold):
        """Remove and return ``(keys, versions)`` of every entry with ``stored ≥ threshold``. O(1) per tier
        that nothing in fires (its largest value is below the threshold), else O(log) per sorted tier and
        O(pending)."""
        keys, vers = [], []
        if self.n and self.v[self.n - 1] >= threshold:
            i = int(self.v[: self.n].searchsorted(threshold))
            keys.append(self.key[i:self.n])
            vers.append(self.ver[i:self.n])
            self.n = i
        if self.mn and self.mv[self.mn - 1] >= threshold:
            i = int(self.mv[: self.mn].searchsorted(threshold))
            keys.append(self.mkey[i:self.mn])
            vers.append(self.mver[i:self.mn])
            self.mn = i
        if self.m and self.pmax >= threshold:
            pv = self.pv[: self.m]
            hit = pv >= threshold
            keys.append(self.pkey[: self.m][hit])
            vers.append(self.pver[: self.m][hit])
            keep = ~hit
            k = int(keep.sum())
            self.pv[:k], self.pkey[:k], self.pver[:k] = pv[keep], self.pkey[: self.m][keep], self.pver[: self.m][keep]
            self.m = k
            self.pmax = int(self.pv[:k].max()) if k else _NOTHING
        if len(keys) <= 1:
            return (keys[0], vers[0]) if keys else (_EMPTY, _NO_VERSIONS)
        return np.concatenate(keys), np.concatenate(vers)

    def __len__(self):
        return self.n + self.mn + self.m


def _empty_tier() -> tuple:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint32)


def _merged(tier: tuple, other: tuple, valid) -> tuple:
    """The sorted ``tier`` (values, keys, versions) with the entries of ``other`` (any order) inserted, both
    without the entries ``valid`` rejects. O(len(tier) + len(other) · log)."""
    v, key, ver = tier
    ok = valid(key, ver)
    v, key, ver = v[ok], key[ok], ver[ok]
    pv, pk, pr = other
    ok = valid(pk, pr)
    pv, pk, pr = pv[ok], pk[ok], pr[ok]
    order = np.argsort(pv, kind="stable")
    pv, pk, pr = pv[order], pk[order], pr[order]
    at = np.searchsorted(v, pv, side="right")
    return np.insert(v, at, pv), np.insert(key, at, pk), np.insert(ver, at, pr)


_TriggerList._merge = staticmethod(_merged)  # (the compiled list's: _sweep.merged)


if _kernel is not None:
    class _CompiledTriggerList(_kernel.PendingBuffer, _TriggerList):
        """A :class:`_TriggerList` whose pending entries compiled code appends to without a numpy call (the risk
        monitor's writer, :class:`exchange.clearing._sweep.MonitorWriter`), and whose tiers are merged in C
        (``_sweep.merged``, twin of :func:`_merged`)."""

        _merge = staticmethod(_kernel.merged)


class LiqIndex:
    """Liquidation index over a :class:`~exchange.accounts.storage.Portfolio` (see the module docstring).

    ``compiled=None`` uses the compiled threshold kernels when active, the Python reference otherwise
    (both give identical entries).
    """

    def __init__(self, portfolio: Portfolio, marks_ticks, *, compiled: bool | None = None):
        self.portfolio = portfolio
        self.compiled = (_kernel is not None) if compiled is None else compiled
        if self.compiled and _kernel is None:
            raise RuntimeError("the compiled clearing kernel is not active")
        self._list_class = _CompiledTriggerList if self.compiled else _TriggerList
        self.marks = portfolio.table.check_marks(marks_ticks).copy()
        self.rebuild()

    # -- building ----------------------------------------------------------------------------------------
    def _entries_iso(self, slots: np.ndarray):
        """Entries and current flags for isolated slots: (sym, dir, v, key), liq per slot."""
        if self.compiled:
            return self._kernel_entries(_kernel.iso_entries, slots, len(slots))
        rows, liq = [], np.zeros(len(slots), bool)
        for i, j in enumerate(np.asarray(slots, np.int64).tolist()):
            entry, liq[i] = iso_entry_reference(self.portfolio, self.marks, j)
            if entry is not None:
                rows.append((*entry, 2 * j))
        return _columns(rows), liq

    def _entries_cross(self, accounts: np.ndarray):
        """Entries and current flags for the cross parts of accounts."""
        if self.compiled:
            return self._kernel_entries(_kernel.cross_entries, accounts, self._cross_room(accounts))
        rows, liq = [], np.zeros(len(accounts), bool)
        for i, a in enumerate(np.asarray(accounts, np.int64).tolist()):
            entries, liq[i] = cross_entries_reference(self.portfolio, self.marks, a)
            rows.extend((s, d, v, 2 * a + 1) for s, d, v in entries)
        return _columns(rows), liq

    def _cross_room(self, accounts) -> int:
        """Room for the entries of these accounts' cross parts (two per position at most)."""
        return 2 * int(self.portfolio.acct_count[np.asarray(accounts, np.int64)].sum()) if len(accounts) else 0

    def _kernel_entries(self, kernel, items, room: int, *args):
        """Run a compiled entries kernel over ``items`` with ``room`` entries of output; returns (sym, dir, v, key)
        and the flags."""
        items = np.ascontiguousarray(items, np.int64)
        sym, dr, v, key = np.zeros(room, np.int64), np.zeros(room, np.int8), np.zeros(room, np.int64), np.zeros(room, np.int64)
        flags = np.zeros(len(items), np.uint8)
        w = kernel(self.portfolio, self.marks, *args, items, sym, dr, v, key, flags)
        return (sym[:w], dr[:w], v[:w], key[:w]), flags.astype(bool)

    def rebuild(self) -> tuple[np.ndarray, np.ndarray]:
        """Recompute every entry from scratch (after ``compact()`` or bulk changes). O(positions · log).
        Returns (and keeps in ``self.liquidatable``) the isolated slots and accounts liquidatable now."""
        p = self.portfolio
        self.generation = getattr(self, "generation", 0) + 1  # the version arrays and lists were replaced
        self.pos_ver = np.zeros(p.n_slots, np.uint32)
        self.acct_ver = np.zeros(p.n_accounts, np.uint32)
        iso_slots = np.flatnonzero((p.pos_account >= 0) & (p.pos_mode == ISO) & (p.pos_qty_lots != 0))
        (s1, d1, v1, k1), liq1 = self._entries_iso(iso_slots)
        (s2, d2, v2, k2), liq2 = self._entries_cross(np.arange(p.n_accounts))
        self.liquidatable = (iso_slots[liq1], np.flatnonzero(liq2))
        sym, dr = np.concatenate([s1, s2]), np.concatenate([d1, d2])
        v, key = np.concatenate([v1, v2]), np.concatenate([k1, k2])
        stored = np.where(dr == UP, -v, v)
        group = sym * 2 + dr
        order = np.lexsort((stored, group))
        group, stored, key = group[order], stored[order], key[order]
        bounds = np.searchsorted(group, np.arange(2 * p.table.n_symbols + 1))
        self.lists = []
        for s in range(p.table.n_symbols):
            pair = []
            for d in (DOWN, UP):
                g = 2 * s + d
                lo, hi = bounds[g], bounds[g + 1]
                tl = self._list_class()
                tl.v, tl.key, tl.ver, tl.n = stored[lo:hi].copy(), key[lo:hi].copy(), np.zeros(hi - lo, np.uint32), hi - lo
                pair.append(tl)
            self.lists.append(pair)
        return self.liquidatable

    def _ensure_size(self):
        """Grow the version arrays to the portfolio (doubling: O(1) amortised per new slot or account)."""
        p = self.portfolio
        if len(self.pos_ver) < p.n_slots or len(self.acct_ver) < p.n_accounts:
            self.generation += 1
        if len(self.pos_ver) < p.n_slots:
            self.pos_ver = _grown(self.pos_ver, p.n_slots)
        if len(self.acct_ver) < p.n_accounts:
            self.acct_ver = _grown(self.acct_ver, p.n_accounts)

    def _valid(self, key, ver):
        """Whether each entry ``(key, ver)`` is still at its part's version (a cross key ``account·2 + 1`` reads
        ``acct_ver``, an isolated ``slot·2`` ``pos_ver``): bool array. O(n). (Compiled: ``_sweep.current``.)"""
        if self.compiled:
            return _kernel.current(key, ver, self.acct_ver, self.pos_ver)
        ids = key >> 1
        cross = (key & 1).astype(bool)
        cur = np.empty(len(key), np.uint32)
        cur[cross] = self.acct_ver[ids[cross]]
        cur[~cross] = self.pos_ver[ids[~cross]]
        return cur == ver

    def _insert(self, entries):
        sym, dr, v, key = entries
        if not len(v):
            return
        ids = key >> 1
        cross = (key & 1).astype(bool)
        ver = np.where(cross, self.acct_ver[np.where(cross, ids, 0)], self.pos_ver[np.where(cross, 0, ids)]).astype(np.uint32)
        stored = np.where(dr == UP, -v, v)
        for g in np.unique(sym * 2 + dr).tolist():
            sel = (sym * 2 + dr) == g
            tl = self.lists[g >> 1][g & 1]
            tl.push(stored[sel], key[sel], ver[sel])
            tl.settle(self._valid)

    # -- updates -----------------------------------------------------------------------------------------
    def rearm(self, accounts, left_slots=()) -> tuple[np.ndarray, np.ndarray]:
        """Re-arm every position and the cross part of ``accounts`` at the current marks (after any change to
        their rows); ``left_slots`` are slots they no longer use (a block ``add_position`` relocated), whose
        entries are dropped. Returns ``(isolated slots, accounts)`` among them liquidatable now.
        O((their positions + left slots) · log + merges)."""
        self._ensure_size()
        p = self.portfolio
        accounts = np.unique(np.asarray(accounts, np.int64))
        accounts = accounts[accounts >= 0]
        liq_acc = self.update_accounts(accounts) if len(accounts) else _EMPTY
        counts = p.acct_count[accounts].astype(np.int64)
        ends = np.cumsum(counts)
        own = np.repeat(p.acct_begin[accounts] - ends + counts, counts) + np.arange(int(ends[-1]) if len(ends) else 0)
        block = np.unique(np.concatenate([own, np.asarray(left_slots, np.int64)]))
        self.pos_ver[block] += 1  # also invalidates entries of slots that are no longer isolated positions
        iso = block[(p.pos_mode[block] == ISO) & (p.pos_account[block] >= 0)]
        entries, liq = self._entries_iso(iso)
        self._insert(entries)
        return iso[liq], liq_acc

    def update_positions(self, slots) -> np.ndarray:
        """Re-arm after a change to ``slots``: every position of their accounts is re-armed (so a block that
        ``add_position`` relocated is covered) and their cross parts too. Returns the isolated slots among
        ``slots`` that are liquidatable now."""
        slots = np.asarray(slots, np.int64)
        if not len(slots):
            return slots
        liq, _ = self.rearm(self.portfolio.pos_account[slots], slots)
        return np.intersect1d(liq, slots)

    def update_position(self, slot: int) -> bool:
        """Re-arm one slot; True if it is an isolated position liquidatable now."""
        return bool(len(self.update_positions([slot])))

    def update_accounts(self, accounts) -> np.ndarray:
        """Re-arm the cross bands of ``accounts`` at the current marks; returns those liquidatable now."""
        self._ensure_size()
        accounts = np.unique(np.asarray(accounts, np.int64))
        self.acct_ver[accounts] += 1
        entries, liq = self._entries_cross(accounts)
        self._insert(entries)
        return accounts[liq]

    def update_account(self, account: int) -> bool:
        """Re-arm one account's cross part; True if it is liquidatable now."""
        return bool(len(self.update_accounts([account])))

    # -- queries -----------------------------------------------------------------------------------------
    def on_mark(self, symbol: int, mark_ticks: int) -> tuple[np.ndarray, np.ndarray]:
        """Record the new mark of ``symbol`` and pop every entry it fires: returns ``(isolated slots,
        accounts)`` to re-check (ascending, unique, current versions only). Their entries are removed: the
        caller re-checks them exactly and re-arms them (:meth:`recheck`; :meth:`process_mark` does all)."""
        t = self.portfolio.table
        mark_ticks = int(mark_ticks)
        if not 1 <= mark_ticks <= int(t.max_price_ticks[symbol]):
            raise ValueError("mark outside [1, max_price]")
        self.marks[symbol] = mark_ticks
        down, up = self.lists[symbol]
        if self.compiled:  # the same in C (exchange/clearing/_sweep.pyx fire_mark)
            fired = _kernel.fire_mark(down, up, mark_ticks, self.acct_ver, self.pos_ver)
            return (_EMPTY, _EMPTY) if fired is None else fired
        k1, r1 = down.fire(mark_ticks)
        k2, r2 = up.fire(-mark_ticks)
        if not len(k1) and not len(k2):
            return _EMPTY, _EMPTY
        keys, vers = np.concatenate([k1, k2]), np.concatenate([r1, r2])
        keys = keys[self._valid(keys, vers)]
        cross = (keys & 1).astype(bool)
        return np.unique(keys[~cross] >> 1), np.unique(keys[cross] >> 1)

    def recheck(self, slots, accounts) -> tuple[np.ndarray, np.ndarray]:
        """Exact re-check of candidates with the kernel at the current marks, re-arming them.
        Returns ``(liquidatable isolated slots, liquidatable accounts)``."""
        liq_pos = self.update_positions(slots) if len(slots) else _EMPTY
        liq_acc = self.update_accounts(accounts) if len(accounts) else _EMPTY
        return liq_pos, liq_acc

    def process_mark(self, symbol: int, mark_ticks: int) -> tuple[np.ndarray, np.ndarray]:
        """``on_mark`` + ``recheck``: the liquidatable isolated slots and accounts exposed to ``symbol``."""
        slots, accounts = self.on_mark(symbol, mark_ticks)
        if not len(slots) and not len(accounts):
            return _EMPTY, _EMPTY
        return self.recheck(slots, accounts)

    def process_marks(self, marks_ticks) -> tuple[np.ndarray, np.ndarray]:
        """Batch: apply every changed mark in symbol order; returns the union of what was reported."""
        marks = self.portfolio.table.check_marks(marks_ticks)
        pos, acc = [], []
        for s in np.flatnonzero(marks != self.marks).tolist():
            a, b = self.process_mark(s, int(marks[s]))
            pos.append(a)
            acc.append(b)
        if not pos:
            return _EMPTY, _EMPTY
        return np.unique(np.concatenate(pos)), np.unique(np.concatenate(acc))

    def live_keys(self) -> np.ndarray:
        """The keys (unique, ascending) of the entries whose version is current, in every list and tier."""
        found = [_EMPTY]
        for pair in self.lists:
            for tl in pair:
                for key, ver, n in ((tl.key, tl.ver, tl.n), (tl.mkey, tl.mver, tl.mn), (tl.pkey, tl.pver, tl.m)):
                    found.append(key[:n][self._valid(key[:n], ver[:n])])
        return np.unique(np.concatenate(found))

    def n_entries(self) -> int:
        return sum(len(tl) for pair in self.lists for tl in pair)


_EMPTY = np.zeros(0, np.int64)
_NO_VERSIONS = np.zeros(0, np.uint32)


def _grown(versions: np.ndarray, need: int) -> np.ndarray:
    """``versions`` followed by zeros, at least ``need`` long and at least twice as long."""
    grown = np.zeros(max(need, 2 * len(versions)), versions.dtype)
    grown[: len(versions)] = versions
    return grown


def _columns(rows):
    if not rows:
        return (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    sym, dr, v, key = zip(*rows)
    return (np.array(sym, np.int64), np.array(dr, np.int8), np.array(v, np.int64), np.array(key, np.int64))


class WarnIndex(LiqIndex):
    """The trigger lists of :class:`LiqIndex` for the margin-call predicate (module docstring, "Warning
    level"): an entry fires when a part's *warned* state may have changed. Same API; the flags returned by
    ``rebuild`` / ``rearm`` / ``update_*`` mean "warned now". ``compiled``: the compiled entries
    (``exchange.clearing._sweep.warn_entries``; None = when active; levels from 2⁴⁰ always take the reference,
    whose sums are unbounded), else the Python reference (both give identical entries)."""

    def __init__(self, portfolio: Portfolio, marks_ticks, level_e8: int, *, compiled: bool | None = None):
        if level_e8 < 1:
            raise ValueError("the warning level must be ≥ 1 (×10⁸)")
        self.level_e8 = level_e8
        compiled = (_kernel is not None) if compiled is None else compiled
        if compiled and _kernel is not None and level_e8 >= _kernel.MAX_WARN_LEVEL_E8:
            compiled = False
        super().__init__(portfolio, marks_ticks, compiled=compiled)

    def _entries_iso(self, slots: np.ndarray):
        if self.compiled:
            return self._kernel_entries(_kernel.warn_entries, slots, 2 * len(slots), self.level_e8, False)
        p = self.portfolio
        rows, flags = [], np.zeros(len(slots), bool)
        for i, j in enumerate(np.asarray(slots, np.int64).tolist()):
            q = int(p.pos_qty_lots[j])
            if p.pos_account[j] < 0 or p.pos_mode[j] != ISO or q == 0:
                continue
            if p.table.iso_entry:
                entries, flags[i] = warn_entries_fixed(p, self.marks, self.level_e8, j)
                rows.extend((s, d, v, 2 * j) for s, d, v in entries)
                continue
            entries, flags[i] = warn_entries_reference(p, self.marks, self.level_e8, int(p.pos_iso_margin_units[j]),
                                                       {int(p.pos_symbol[j]): [(q, int(p.pos_entry_cost[j]))]})
            rows.extend((s, d, v, 2 * j) for s, d, v in entries)
        return _columns(rows), flags

    def _entries_cross(self, accounts: np.ndarray):
        if self.compiled:
            return self._kernel_entries(_kernel.warn_entries, accounts, self._cross_room(accounts), self.level_e8, True)
        p = self.portfolio
        rows, flags = [], np.zeros(len(accounts), bool)
        for i, a in enumerate(np.asarray(accounts, np.int64).tolist()):
            legs_by_sym: dict[int, list] = {}
            for j in p.slots_of(a):
                q = int(p.pos_qty_lots[j])
                if p.pos_mode[j] != ISO and q != 0:
                    legs_by_sym.setdefault(int(p.pos_symbol[j]), []).append((q, int(p.pos_entry_cost[j])))
            if legs_by_sym:
                entries, flags[i] = warn_entries_reference(p, self.marks, self.level_e8,
                                                           int(p.acct_wallet_units[a]), legs_by_sym)
                rows.extend((s, d, v, 2 * a + 1) for s, d, v in entries)
        return _columns(rows), flags


def _band_entries(out: list, s: int, lo: int, hi: int, mark: int, maxp: int, empty: bool) -> None:
    """Append the entries of the safe band [lo, hi] of symbol ``s``: DOWN at ``lo − 1`` and UP at ``hi + 1``
    where the band has an inner edge; a band that is empty or excludes the mark fires on any move."""
    if empty or not lo <= mark <= hi:
        out.append((s, DOWN, int(ALWAYS)))
        return
    if lo > 1:
        out.append((s, DOWN, lo - 1))
    if hi < maxp:
        out.append((s, UP, hi + 1))
