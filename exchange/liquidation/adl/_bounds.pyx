# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled twin of :mod:`exchange.liquidation.adl.bounds` and of the ADL queue's candidate selection.

Built to ``exchange.liquidation.adl._bounds``; only :mod:`exchange._impl` imports it (``adl_bounds_kernel``).
Each function takes the reference's arguments and returns what it returns, in one C pass instead of some
twenty numpy passes:

- :func:`side_slots`  the mirror slots of the user positions on one side of a symbol (the queue's filter).
- :func:`candidates`  the queue's candidate columns of one side (``ADLQueue._candidates``) in two C passes;
  :func:`candidates_top` adds the first prefixes of its highest bounds (the queue's first call).
- :class:`SideSlots`  a side's filtered slots kept across commands, followed through the monitor's log of
  written accounts (what :func:`candidates` passes over instead of every mirror slot).
- :func:`top_k`       the ``k`` highest values by (value descending, index ascending), by a bounded heap.
- :func:`live_prefix`, :func:`live_reach`  the queue's live lists (``_live_prefix``, ``_live_reach``) in one
  pass over the entries they meet.
- :func:`stale_look`  the queue's pass over the accounts its stale set looks at (``queue._look``, with
  ``ADLQueue._suspect`` inline), on the queue's own dicts, sets and lists.
- :class:`ExactRank`  a position's exact score as the queue ranks it (``queue._rank`` of
  ``ranking.score_ratio``), on the risk stage's compiled kernel.
- :func:`binance`     bounds of ``max(0, uPnL) / max(1, w) × MM / (w + uPnL)``.
- :func:`bybit`       bounds of ``pnl% × leverage`` (÷ at a loss) on the part's margin balance.
- :func:`bitmex`      bounds of ``pnl% × leverage`` (÷ at a loss), leverage from the part's bankruptcy price.

The formulas, the per-term error allowance ``REL`` and the final widening ``WIDEN`` are the reference's
(its module docstring proves them sound); the integer inputs are the same exact int64 values. Float
results may differ from numpy's in the last bits (summation order of the cross balances, for one), which is
harmless: a sound interval decides only which candidates are scored exactly, never the order they come in.
Divisions are of doubles, or of non-negative integers (``cdivision``).
"""
from libc.math cimport INFINITY, ceil, fabs
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memset
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t
from exchange._records cimport untrack
from exchange.accounts._positions cimport position_of
from exchange.accounts._pretrade cimport RiskKernel

from bisect import bisect_left, insort

import numpy as np

from exchange.accounts.ledger import EMPTY, FUND_ACCOUNT_BASE, Position
from exchange.profiles import ADLRanking
from exchange.enums import PositionMode, PositionSide
from exchange.liquidation.adl.bounds import REL, WIDEN, top_k as reference_top_k
from exchange.liquidation.adl.score import bitmex_ratio

cdef object HEDGE = PositionMode.HEDGE
cdef tuple HEDGE_SIDES = (PositionSide.LONG, PositionSide.SHORT), ONE_WAY_SIDES = (PositionSide.BOTH,)

cdef double C_REL = REL
cdef double C_WIDEN = WIDEN
cdef int8_t ISOLATED = 2  # exchange.enums.MarginMode.ISOLATED
cdef int8_t CROSS = 1     # exchange.enums.MarginMode.CROSS
HEAP_K = 256  #: top_k takes the heap up to this k whatever the length (the queue's prefixes up to 256)


cdef struct Pnl:
    int sign      # sign of lots × mark − entry cost (exact)
    double value  # uPnL in units
    double error  # |value − exact| ≤ error


cdef inline Pnl _upnl(int64_t lots, int64_t cost, int64_t mark, double k) noexcept nogil:
    """The reference's ``_upnl`` for one slot."""
    cdef Pnl r
    cdef int64_t qp = lots * mark  # exact: |lots| × mark × K ≤ 2^62
    r.sign = (qp > cost) - (qp < cost)
    r.value = (<double>qp - <double>cost) * k
    r.error = C_REL * (<double>(qp if qp >= 0 else -qp) + <double>(cost if cost >= 0 else -cost)) * k
    return r


cdef class _Mirror:
    """Typed views of the mirror's columns the bounds read (a Portfolio and its instrument table)."""
    cdef const int64_t[:] qty, cost, iso, wallets, k_units
    cdef const int8_t[:] mode
    cdef const int32_t[:] owner
    cdef const int16_t[:] pos_symbol
    cdef const int64_t[:, :] caps, mmrs, cum_units, cum_rem

    def __init__(self, p):
        t = p.table
        self.qty, self.cost, self.iso = p.pos_qty_lots, p.pos_entry_cost, p.pos_iso_margin_units
        self.wallets, self.k_units = p.acct_wallet_units, t.k_units
        self.mode, self.owner, self.pos_symbol = p.pos_mode, p.pos_account, p.pos_symbol
        self.caps, self.mmrs, self.cum_units, self.cum_rem = t.br_lookup_cap, t.br_mmr_e8, t.br_cum_units, t.br_cum_rem_x8


def side_slots(p, const int64_t[::1] ids, int symbol, bint long, int64_t fund_base):
    """The slots of ``symbol`` whose position is long (``long``) or short, owned by a user account
    (``ids[owner] < fund_base``), ascending (int64). O(slots): :func:`_filter`."""
    cdef Columns c = _columns_of(p, ids)
    cdef Py_ssize_t n_slots = p.n_slots
    cdef int32_t *s = _slot_buffer(n_slots + 1)
    cdef Py_ssize_t n = _filter(&c, symbol, long, fund_base, 0, n_slots, s)
    out = np.empty(n, dtype=np.int64)
    _widen(s, out, n)
    return out


cdef struct Item:
    double value
    int64_t index


cdef inline bint _after(Item a, Item b) noexcept nogil:
    """Whether ``a`` comes after ``b`` by (value descending, index ascending)."""
    return a.value < b.value or (a.value == b.value and a.index > b.index)


cdef void _sift(Item *heap, Py_ssize_t n, Py_ssize_t at) noexcept nogil:
    """Restore the heap below ``at``: every item comes after (or is) its children's, so the root is the last
    item by (value descending, index ascending)."""
    cdef Item x = heap[at]
    cdef Py_ssize_t child
    while True:
        child = 2 * at + 1
        if child >= n:
            break
        if child + 1 < n and _after(heap[child + 1], heap[child]):
            child += 1
        if not _after(heap[child], x):
            break
        heap[at] = heap[child]
        at = child
    heap[at] = x


cdef int _top(const double *values, Py_ssize_t n, Py_ssize_t k, int64_t *out) noexcept nogil:
    """Write to ``out`` the indices of the ``k`` (≤ n) highest ``values`` by value descending, ties by index
    ascending: a heap of the first ``k`` so far, scanned once. O(n + k log k + log k per displacement).
    Returns -1 when out of memory (nothing written), else 0."""
    cdef Py_ssize_t i, m
    if k <= 0:
        return 0
    cdef Item *heap = <Item *> malloc(sizeof(Item) * k)
    if heap == NULL:
        return -1
    for i in range(k):
        heap[i].value, heap[i].index = values[i], i
    for i in range(k // 2 - 1, -1, -1):
        _sift(heap, k, i)
    for i in range(k, n):
        if values[i] > heap[0].value:  # (an equal value has a higher index: it comes after)
            heap[0].value, heap[0].index = values[i], i
            _sift(heap, k, 0)
    for m in range(k, 0, -1):  # take the last item out each time: the order from the end
        out[m - 1] = heap[0].index
        heap[0] = heap[m - 1]
        _sift(heap, m - 1, 0)
    free(heap)
    return 0


cdef object _top_array(const double[::1] values, Py_ssize_t k):
    """:func:`_top` of a contiguous array as a new int64 array (``k`` clipped to 0..n)."""
    cdef Py_ssize_t n = values.shape[0]
    k = min(max(k, 0), n)
    out = np.empty(k, np.int64)
    cdef int64_t[::1] o = out
    if k and _top(&values[0], n, k, &o[0]) != 0:
        raise MemoryError()
    return out


def top_k(const double[:] values, Py_ssize_t k):
    """Twin of :func:`exchange.liquidation.adl.bounds.top_k`: indices of the ``k`` highest ``values`` (every one
    when there are fewer) by value descending, ties by index ascending. For ``k`` up to a sixteenth of the
    values, or up to :data:`HEAP_K`, a heap of the first ``k`` so far, scanned once: O(n + k log k + log k per
    displacement); above, the reference (numpy's partition is faster there)."""
    cdef Py_ssize_t n = values.shape[0]
    if k > n:
        k = n
    if k < 0:
        k = 0
    if 16 * k > n and k > HEAP_K:
        return reference_top_k(np.asarray(values), k)
    return _top_array(np.ascontiguousarray(values), k)


cdef struct Brackets:
    const int64_t *caps  # one symbol's rows of the instrument table's bracket columns (contiguous)
    const int64_t *mmrs
    const int64_t *cum_units
    const int64_t *cum_rem
    Py_ssize_t n


cdef Brackets _brackets(t, int symbol) except *:
    """The bracket rows of ``symbol`` in the instrument table ``t`` (its columns are C-contiguous; they must
    outlive the use of the pointers: the portfolio holds the table)."""
    cdef const int64_t[:, ::1] caps = t.br_lookup_cap, mmrs = t.br_mmr_e8, cum_units = t.br_cum_units
    cdef const int64_t[:, ::1] cum_rem = t.br_cum_rem_x8
    cdef Brackets b
    b.caps, b.mmrs, b.cum_units, b.cum_rem = &caps[symbol, 0], &mmrs[symbol, 0], &cum_units[symbol, 0], &cum_rem[symbol, 0]
    b.n = caps.shape[1]
    return b


cdef inline void _binance_one(int64_t lots, int64_t cost, int64_t mark, double k, int64_t mk, int64_t wallet,
                              const Brackets *b, double *lo, double *hi) noexcept nogil:
    """:func:`binance`'s bounds of one position (the same operations in the same order): ``lots``, ``cost``
    and ``wallet`` (the isolated margin or the owner's wallet) from its row, ``mark`` and ``k`` (``mk`` =
    mark × K) its symbol's."""
    cdef Pnl u = _upnl(lots, cost, mark, k)
    cdef double w = <double>wallet, balance = w + u.value
    cdef double balance_err = u.error + C_REL * (fabs(w) + fabs(u.value)), denominator
    cdef int64_t notional
    cdef Py_ssize_t j = 0
    cdef double mmr, cum, value, error, mm_lo, mm_hi
    if u.sign <= 0 or balance + balance_err <= 0:
        lo[0] = hi[0] = 0.0
    elif fabs(balance) <= balance_err:
        lo[0], hi[0] = -INFINITY, INFINITY
    else:  # _maintenance on the row's bracket
        notional = (lots if lots >= 0 else -lots) * mk
        while j < b.n - 1 and b.caps[j] < notional:
            j += 1
        mmr = <double>b.mmrs[j]
        cum = <double>b.cum_units[j] + <double>b.cum_rem[j] / 1e8
        value = <double>notional * mmr / 1e8 - cum
        error = C_REL * (<double>notional * mmr / 1e8 + cum) + 1.0
        mm_lo, mm_hi = value - error, value + error + 1.0  # + 1: the exact MM is rounded up
        denominator = <double>(wallet if wallet > 1 else 1)
        lo[0] = (max(u.value - u.error, 0.0) * max(mm_lo, 0.0) / (denominator * (balance + balance_err))) * (1 - C_WIDEN)
        hi[0] = ((u.value + u.error) * mm_hi / (denominator * (balance - balance_err))) * (1 + C_WIDEN)


def binance(p, const int64_t[:] slots, int symbol, const int64_t[:] marks):
    """Twin of :func:`exchange.liquidation.adl.bounds.binance`: ``(lo, hi)`` float64 (each slot by
    :func:`_binance_one`). O(len(slots))."""
    cdef _Mirror v = _Mirror(p)
    cdef const int64_t[:] qty = v.qty, cost = v.cost, iso = v.iso, wallets = v.wallets, k_units = v.k_units
    cdef const int8_t[:] mode = v.mode
    cdef const int32_t[:] owner = v.owner
    cdef const int16_t[:] pos_symbol = v.pos_symbol
    cdef Py_ssize_t i, n = slots.shape[0]
    lo_out, hi_out = np.empty(n), np.empty(n)
    cdef double[::1] lo = lo_out, hi = hi_out
    cdef int64_t mark = marks[symbol], mk = mark * k_units[symbol], s
    cdef Brackets b = _brackets(p.table, symbol)
    for i in range(n):
        s = slots[i]
        _binance_one(qty[s], cost[s], marks[pos_symbol[s]], <double>k_units[pos_symbol[s]], mk,
                     iso[s] if mode[s] == ISOLATED else wallets[owner[s]], &b, &lo[i], &hi[i])
    return lo_out, hi_out


def bybit(p, const int64_t[:] slots, int symbol, const int64_t[:] marks):
    """Twin of :func:`exchange.liquidation.adl.bounds.bybit`: ``(lo, hi)`` float64. O(slots of the mirror):
    the cross balances are summed over every cross position first."""
    cdef _Mirror v = _Mirror(p)
    cdef const int64_t[:] qty = v.qty, cost = v.cost, iso = v.iso, wallets = v.wallets, k_units = v.k_units
    cdef const int8_t[:] mode = v.mode
    cdef const int32_t[:] owner = v.owner
    cdef const int16_t[:] pos_symbol = v.pos_symbol
    cdef Py_ssize_t i, n = slots.shape[0]
    account_sum_out, account_err_out = _cross_sums(v, marks, p.n_accounts)
    cdef double[:] account_sum = account_sum_out, account_err = account_err_out
    lo_out, hi_out = np.empty(n), np.empty(n)
    cdef double[:] lo = lo_out, hi = hi_out
    cdef int64_t mark = marks[symbol], s, lots, entry_cost
    cdef double k = <double>k_units[symbol], entry, notional, balance, balance_err, margin, size
    cdef Pnl u
    for i in range(n):
        s = slots[i]
        lots, entry_cost = qty[s], cost[s]
        u = _upnl(lots, entry_cost, mark, k)
        if mode[s] == ISOLATED:
            margin = <double>iso[s]
            balance = margin + u.value
            balance_err = u.error + C_REL * (fabs(margin) + fabs(u.value))
        else:
            balance, balance_err = account_sum[owner[s]], account_err[owner[s]]
        if u.sign == 0 or balance + balance_err <= 0:
            lo[i] = hi[i] = 0.0
            continue
        if fabs(balance) <= balance_err:
            lo[i], hi[i] = -INFINITY, INFINITY
            continue
        entry = <double>(entry_cost if entry_cost >= 0 else -entry_cost) * k
        notional = <double>((lots if lots >= 0 else -lots) * mark) * k
        size = fabs(u.value)
        if u.sign > 0:
            lo[i] = max(size - u.error, 0.0) * notional / (entry * (balance + balance_err)) * (1 - C_WIDEN)
            hi[i] = (size + u.error) * notional / (entry * (balance - balance_err)) * (1 + C_WIDEN)
        else:
            lo[i] = -(size + u.error) * (balance + balance_err) / (entry * notional) * (1 + C_WIDEN)
            hi[i] = -max(size - u.error, 0.0) * max(balance - balance_err, 0.0) / (entry * notional) * (1 - C_WIDEN)
    return lo_out, hi_out


cdef tuple _cross_sums(_Mirror v, const int64_t[:] marks, Py_ssize_t n_accounts):
    """``(value, error)`` per account of its wallet plus every cross position's uPnL (the reference's
    ``_part_balances``, cross part). O(slots of the mirror)."""
    account_sum_out, account_err_out = np.empty(n_accounts), np.empty(n_accounts)
    cdef double[:] account_sum = account_sum_out, account_err = account_err_out
    cdef const int64_t[:] qty = v.qty, cost = v.cost, wallets = v.wallets, k_units = v.k_units
    cdef const int8_t[:] mode = v.mode
    cdef const int32_t[:] owner = v.owner
    cdef const int16_t[:] pos_symbol = v.pos_symbol
    cdef Py_ssize_t j
    cdef Pnl u
    for j in range(n_accounts):
        account_sum[j] = <double>wallets[j]
        account_err[j] = C_REL * fabs(<double>wallets[j])
    for j in range(qty.shape[0]):
        if mode[j] == CROSS and qty[j] != 0 and owner[j] >= 0:
            u = _upnl(qty[j], cost[j], marks[pos_symbol[j]], <double>k_units[pos_symbol[j]])
            account_sum[owner[j]] += u.value
            account_err[owner[j]] += u.error + C_REL * fabs(u.value)
    return account_sum_out, account_err_out


def bitmex(p, const int64_t[:] slots, int symbol, const int64_t[:] marks):
    """Twin of :func:`exchange.liquidation.adl.bounds.bitmex`: ``(lo, hi)`` float64. O(slots of the mirror): the
    cross balances and each account's cross lots in the symbol are summed first."""
    cdef _Mirror v = _Mirror(p)
    cdef const int64_t[:] qty = v.qty, cost = v.cost, iso = v.iso, k_units = v.k_units
    cdef const int8_t[:] mode = v.mode
    cdef const int32_t[:] owner = v.owner
    cdef const int16_t[:] pos_symbol = v.pos_symbol
    cdef Py_ssize_t i, j, n = slots.shape[0]
    account_sum_out, account_err_out = _cross_sums(v, marks, p.n_accounts)
    cdef double[:] account_sum = account_sum_out, account_err = account_err_out
    lots_out = np.zeros(p.n_accounts, np.int64)
    cdef int64_t[:] part_lots = lots_out
    lo_out, hi_out = np.empty(n), np.empty(n)
    cdef double[:] lo = lo_out, hi = hi_out
    cdef int64_t mark = marks[symbol], s, net, anet
    cdef double k = <double>k_units[symbol], m = <double>mark, entry, balance, balance_err, margin, gain
    cdef double size, t, t_err, c_lo, c_hi, d_lo, d_hi
    cdef Pnl u
    for j in range(qty.shape[0]):  # the reference's _part_lots
        if mode[j] == CROSS and qty[j] != 0 and owner[j] >= 0 and pos_symbol[j] == symbol:
            part_lots[owner[j]] += qty[j]
    for i in range(n):
        s = slots[i]
        u = _upnl(qty[s], cost[s], mark, k)
        if mode[s] == ISOLATED:
            margin = <double>iso[s]
            balance = margin + u.value
            balance_err = u.error + C_REL * (fabs(margin) + fabs(u.value))
            net = qty[s]
        else:
            balance, balance_err, net = account_sum[owner[s]], account_err[owner[s]], part_lots[owner[s]]
        anet = net if net >= 0 else -net
        d_lo = d_hi = m  # no bankruptcy price (the reference's docstring)
        if net != 0:
            size = <double>anet * k
            t = balance / size
            t_err = (balance_err + C_REL * fabs(balance)) / size + C_REL * fabs(t)
            if (t - t_err < m) if net > 0 else (-(t + t_err) < m):  # the price possibly exists
                c_lo, c_hi = ceil(t - t_err), ceil(t + t_err)
                d_lo = 0.0 if c_lo <= 0 <= c_hi else min(fabs(c_lo), fabs(c_hi))
                d_hi = max(fabs(c_lo), fabs(c_hi))
        if u.sign == 0 or d_hi == 0:
            lo[i] = hi[i] = 0.0
            continue
        if d_lo == 0 or mark == 0:
            lo[i], hi[i] = -INFINITY, INFINITY
            continue
        entry = <double>(cost[s] if cost[s] >= 0 else -cost[s]) * k
        gain = fabs(u.value)
        if u.sign > 0:
            lo[i] = max(gain - u.error, 0.0) * m / (entry * d_hi) * (1 - C_WIDEN)
            hi[i] = (gain + u.error) * m / (entry * d_lo) * (1 + C_WIDEN)
        else:
            lo[i] = -(gain + u.error) * d_hi / (entry * m) * (1 + C_WIDEN)
            hi[i] = -max(gain - u.error, 0.0) * d_lo / (entry * m) * (1 - C_WIDEN)
    return lo_out, hi_out


def candidates(p, const int64_t[::1] ids, int symbol, bint long, int64_t fund_base, const int64_t[:] marks, ranking,
               SideSlots kept=None):
    """The queue's candidates of one side (``ADLQueue._candidates`` builds the same with numpy): ``(rows,
    accounts, sides, lo, hi, zero)``: the portfolio account (int32), ledger id (int64) and position side (int8)
    of each slot of :func:`side_slots`, its score bounds by ``ranking`` ("binance", "bybit", "bitmex", or None:
    all 0.0) and whether both are 0.0. O(slots of the mirror): the filter, then one pass over the candidates
    (binance's bounds computed there, with the symbol's mark and brackets read once; bybit's and bitmex's by
    :func:`bybit` and :func:`bitmex`).
    With ``kept`` (a :class:`SideSlots` of this side that :meth:`SideSlots.follow` brought up to date), the
    filter passes over its slots only: O(candidates + the slots it dropped since)."""
    if ranking not in (None, "binance", "bybit", "bitmex"):
        raise ValueError(f"unknown ADL bounds {ranking!r}")
    cdef Columns c = _columns_of(p, ids)
    cdef Py_ssize_t n_slots = p.n_slots, n
    cdef int32_t *s
    if kept is None:
        s = _slot_buffer(n_slots + 1)
        n = _filter(&c, symbol, long, fund_base, 0, n_slots, s)
    else:
        kept._check_side(p, symbol, long)
        n = kept._prune(&c, symbol, long)
        s = kept.slots
    rows_out, accounts_out = np.empty(n, np.int32), np.empty(n, np.int64)
    sides_out, zero_out = np.empty(n, np.int8), np.empty(n, np.bool_)
    if ranking == "bybit" or ranking == "bitmex":
        slots = np.empty(n, np.int64)
        _widen(s, slots, n)
        lo_out, hi_out = (bybit if ranking == "bybit" else bitmex)(p, slots, symbol, marks)
        if kept is None:
            s = _slot_buffer(0)  # (the same buffer: bybit and bitmex do not use it)
    else:
        lo_out, hi_out = np.zeros(n), np.zeros(n)
    _fill(p, ids, symbol, marks, ranking == "binance", s, n, rows_out, accounts_out, sides_out, lo_out, hi_out,
          zero_out)
    return rows_out, accounts_out, sides_out, lo_out, hi_out, zero_out


cdef struct Columns:
    const int16_t *symbol  # a mirror's columns that the filter reads (its arrays must outlive the use)
    const int32_t *owner
    const int64_t *qty
    const int64_t *ids  # ledger id of each portfolio account


cdef Columns _columns_of(p, const int64_t[::1] ids) except *:
    """The columns the filter reads; OverflowError for a mirror whose slot numbers do not fit the int32 slot lists
    of :func:`side_slots`, :func:`candidates` and :class:`SideSlots`."""
    if p.n_slots >= 2**31 - 1:
        raise OverflowError("more mirror slots than an int32 holds")
    cdef const int16_t[::1] pos_symbol = p.pos_symbol  # (the portfolio's columns are contiguous)
    cdef const int32_t[::1] owner = p.pos_account
    cdef const int64_t[::1] qty = p.pos_qty_lots
    cdef Columns c
    c.symbol, c.owner, c.qty, c.ids = &pos_symbol[0], &owner[0], &qty[0], &ids[0]
    return c


cdef Py_ssize_t _filter(const Columns *c, int symbol, bint long, int64_t fund_base, Py_ssize_t begin,
                        Py_ssize_t end, int32_t *out) noexcept nogil:
    """:func:`side_slots`' filter of the slots ``begin..end-1`` into ``out`` (room for ``end - begin + 1``),
    ascending; returns how many. Two passes: the first without branches (the slots of a symbol and side alternate
    at random), the second drops the funds' (rare). O(end - begin)."""
    cdef int64_t sign = 1 if long else -1, j
    cdef Py_ssize_t i = 0, n = 0
    for j in range(begin, end):
        out[n] = <int32_t>j
        n += (c.symbol[j] == symbol) & (c.qty[j] * sign > 0) & (c.owner[j] >= 0)
    for j in range(n):
        if c.ids[c.owner[out[j]]] < fund_base:
            out[i] = out[j]
            i += 1
    return i


cdef class SideSlots:
    """The mirror slots of one side of one symbol that may hold a user position, kept across commands, so that
    :func:`candidates` does not filter every slot of the mirror once per mark move (at a million accounts that
    filter was a tenth of a crash): a superset of :func:`side_slots`, ascending, without repeats.

    :meth:`follow` brings it up to date from the monitor's writer's log of the portfolio accounts it wrote
    (``MonitorWriter.log_rows``: mirror rows change only when their account is written, and an account's slots
    are its block's): the slots of the accounts logged since that now hold a position of the side are merged
    in; :func:`candidates` drops the ones that no longer do as its pass meets them. The whole filter runs again
    when the log was started over (``MonitorWriter.log_epoch``), the portfolio's arrays were reallocated or
    compacted (``Portfolio.generation``: slot numbers may move) or it is another portfolio. O(slots of the
    accounts logged since · log) per follow; O(mirror slots) when filtering again."""

    cdef int32_t *slots  # ascending; slots[0:n]
    cdef Py_ssize_t n, cap
    cdef uint8_t *member  # member[j]: j is in slots (one byte per mirror slot, member_size of them)
    cdef Py_ssize_t member_size
    cdef object portfolio, generation, epoch
    cdef Py_ssize_t logged  # how much of the log the slots have seen
    cdef readonly int symbol
    cdef readonly bint long

    def __cinit__(self, int symbol, bint long):
        self.symbol, self.long = symbol, long
        self.generation = self.epoch = self.portfolio = None

    def __dealloc__(self):
        free(self.slots)
        free(self.member)

    cdef int _check_side(self, p, int symbol, bint long) except -1:
        if symbol != self.symbol or long != self.long or p is not self.portfolio or p.generation != self.generation:
            raise ValueError("these kept slots are not this side's, or not followed to this portfolio")
        return 0

    cdef int _room(self, Py_ssize_t slots, Py_ssize_t n_slots) except -1:
        """Room for ``slots`` entries and a membership byte for each of ``n_slots`` mirror slots (new bytes 0)."""
        cdef void *grown
        cdef Py_ssize_t size
        if slots > self.cap or self.slots == NULL:
            size = max(slots, 2 * self.cap, 16)
            grown = realloc(self.slots, sizeof(int32_t) * size)
            if grown == NULL:
                raise MemoryError()
            self.slots, self.cap = <int32_t *>grown, size
        if n_slots > self.member_size or self.member == NULL:
            size = max(n_slots, 2 * self.member_size, 16)
            grown = realloc(self.member, size)
            if grown == NULL:
                raise MemoryError()
            self.member = <uint8_t *>grown
            memset(self.member + self.member_size, 0, size - self.member_size)
            self.member_size = size
        return 0

    def follow(self, p, const int64_t[::1] ids, int64_t fund_base, writer):
        """Bring the slots up to date with the mirror ``p`` (``ids`` the ledger id of each portfolio account), from
        the log of the portfolio accounts that ``writer`` (the monitor's ``MonitorWriter``) wrote since."""
        cdef Py_ssize_t n_slots = p.n_slots, i, m, k, w, a, logged = writer.logged
        cdef const int64_t[::1] begin = p.acct_begin
        cdef const int32_t[::1] count = p.acct_count
        cdef const int64_t[::1] log = writer.log_rows
        cdef int32_t *fresh
        cdef Columns c = _columns_of(p, ids)
        epoch = writer.log_epoch
        if (p is not self.portfolio or p.generation != self.generation or epoch != self.epoch
                or self.logged > logged):
            self._room(n_slots + 1, n_slots)
            memset(self.member, 0, self.member_size)
            self.n = _filter(&c, self.symbol, self.long, fund_base, 0, n_slots, self.slots)
            for i in range(self.n):
                self.member[self.slots[i]] = 1
            self.portfolio, self.generation, self.epoch, self.logged = p, p.generation, epoch, logged
            return
        self._room(self.n, n_slots)
        m = 0
        fresh = _slot_buffer(0)
        for i in range(self.logged, logged):  # the slots of the accounts written since that hold the side now
            a = log[i]
            fresh = _slot_buffer(m + count[a] + 1)
            k = _filter(&c, self.symbol, self.long, fund_base, begin[a], begin[a] + count[a], fresh + m)
            for w in range(m, m + k):
                if not self.member[fresh[w]]:
                    self.member[fresh[w]] = 1
                    fresh[m] = fresh[w]
                    m += 1
        self.logged = logged
        if not m:
            return
        qsort(fresh, m, sizeof(int32_t), _int32_cmp)
        self._room(self.n + m, n_slots)
        i, k, w = self.n - 1, m - 1, self.n + m - 1  # merge from the end, in place
        while k >= 0:
            if i >= 0 and self.slots[i] > fresh[k]:
                self.slots[w] = self.slots[i]
                i -= 1
            else:
                self.slots[w] = fresh[k]
                k -= 1
            w -= 1
        self.n += m

    cdef Py_ssize_t _prune(self, const Columns *c, int symbol, bint long) noexcept:
        """Drop the slots that no longer hold a position of the side (in place, without branches); returns how many
        are left: exactly :func:`side_slots`, when :meth:`follow` ran after the last write. The owner of a kept slot
        is not read: a slot holds one account's position key until the portfolio is compacted (a new generation,
        so every slot is filtered again), and a block's relocation leaves holes of size 0."""
        cdef int64_t sign = 1 if long else -1
        cdef Py_ssize_t i, w = 0
        cdef int32_t j
        cdef uint8_t keep
        for i in range(self.n):
            j = self.slots[i]
            keep = (c.symbol[j] == symbol) & (c.qty[j] * sign > 0)
            self.slots[w] = j
            self.member[j] = keep
            w += keep
        self.n = w
        return w

    def check(self, p, const int64_t[::1] ids, int64_t fund_base):
        """Raise AssertionError unless the slots are ascending, without repeats, exactly the members, and hold
        every slot of :func:`side_slots` (tests: after every follow)."""
        cdef Py_ssize_t i
        kept = [self.slots[i] for i in range(self.n)]
        assert kept == sorted(set(kept)), "kept slots not ascending or repeated"
        assert [j for j in range(self.member_size) if self.member[j]] == kept, "membership bytes differ"
        missing = set(side_slots(p, ids, self.symbol, self.long, fund_base).tolist()) - set(kept)
        assert not missing, f"side slots missing: {sorted(missing)[:5]}"

    def __len__(self):
        return self.n


cdef int _int32_cmp(const void *a, const void *b) noexcept nogil:
    cdef int32_t x = (<const int32_t *>a)[0], y = (<const int32_t *>b)[0]
    return (x > y) - (x < y)


cdef int32_t *_slots = NULL  # candidates' slot buffer, kept between calls (a fresh one costs page faults)
cdef Py_ssize_t _slots_size = 0


cdef int32_t *_slot_buffer(Py_ssize_t size) except NULL:
    """The slot buffer, grown to at least ``size`` int32 (its contents kept)."""
    global _slots, _slots_size
    cdef int32_t *grown
    if size > _slots_size or _slots == NULL:
        grown = <int32_t *> realloc(_slots, sizeof(int32_t) * max(size, 2 * _slots_size, 1))
        if grown == NULL:
            raise MemoryError()
        _slots, _slots_size = grown, max(size, 2 * _slots_size, 1)
    return _slots


cdef void _widen(const int32_t *s, int64_t[::1] out, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = s[i]


cdef void _fill(p, const int64_t[:] ids, int symbol, const int64_t[:] marks, bint by_binance, const int32_t *s,
                Py_ssize_t n, rows_out, accounts_out, sides_out, lo_out, hi_out, zero_out) except *:
    """:func:`candidates`'s pass over its ``n`` slots ``s``: rows, ledger ids, sides, binance's bounds (when
    ``by_binance``; else ``lo``/``hi`` are kept) and the zero flags."""
    cdef Py_ssize_t i
    cdef double[::1] lo = lo_out, hi = hi_out
    cdef const int32_t[::1] owner = p.pos_account
    cdef const int8_t[::1] pos_side = p.pos_side, mode = p.pos_mode
    cdef const int64_t[::1] qty = p.pos_qty_lots, cost = p.pos_entry_cost, iso = p.pos_iso_margin_units
    cdef const int64_t[::1] wallets = p.acct_wallet_units
    cdef int32_t[::1] rows = rows_out
    cdef int64_t[::1] accounts = accounts_out
    cdef int8_t[::1] sides = sides_out
    cdef uint8_t[::1] zero = zero_out.view(np.uint8)
    cdef Brackets b
    cdef int64_t mark = 0, mk = 0, j
    cdef double k = 0.0
    if by_binance and n:
        t = p.table
        b = _brackets(t, symbol)
        mark = marks[symbol]
        mk = mark * <int64_t>t.k_units[symbol]
        k = <double><int64_t>t.k_units[symbol]
    for i in range(n):
        j = s[i]
        rows[i] = owner[j]
        accounts[i] = ids[rows[i]]
        sides[i] = pos_side[j]
        if by_binance:
            _binance_one(qty[j], cost[j], mark, k, mk, iso[j] if mode[j] == ISOLATED else wallets[owner[j]], &b,
                         &lo[i], &hi[i])
        zero[i] = (lo[i] == 0.0) & (hi[i] == 0.0)


def live_prefix(int64_t[::1] live, Py_ssize_t at, Py_ssize_t k, skip, const int32_t[::1] rows):
    """Twin of ``exchange.liquidation.adl.queue._live_prefix``: drop from ``live[at:]`` the entries of skipped rows
    (``skip[rows[entry]]``) met before ``k`` kept ones lead it (or it ends), the kept ones moving up to the new
    start, which is returned. O(entries met)."""
    cdef const uint8_t[::1] skipped = skip.view(np.uint8)
    cdef Py_ssize_t n = live.shape[0], i = at, j, found = 0, w
    while i < n and found < k:
        found += not skipped[rows[live[i]]]
        i += 1
    w = i
    for j in range(i - 1, at - 1, -1):  # from the end, so each kept entry moves at most once
        if not skipped[rows[live[j]]]:
            w -= 1
            live[w] = live[j]
    return w


def live_reach(int64_t[::1] live, double[::1] desc, Py_ssize_t at, double limit, skip, const int32_t[::1] rows):
    """Twin of ``exchange.liquidation.adl.queue._live_reach``: ``(start, end)``, ``live[start:end]`` the entries of
    ``live[at:]`` whose ``desc`` (ascending) is ≤ ``limit``, those of skipped rows dropped (the kept ones and their
    ``desc`` move up to the new start). O(the entries)."""
    cdef const uint8_t[::1] skipped = skip.view(np.uint8)
    cdef Py_ssize_t n = live.shape[0], end = at, j, w
    while end < n and desc[end] <= limit:
        end += 1
    w = end
    for j in range(end - 1, at - 1, -1):
        if not skipped[rows[live[j]]]:
            w -= 1
            live[w], desc[w] = live[j], desc[j]
    return w, end


def candidates_top(p, const int64_t[::1] ids, int symbol, bint long, int64_t fund_base, const int64_t[:] marks,
                   ranking, Py_ssize_t k, SideSlots kept=None):
    """:func:`candidates` and, by the heap of :func:`top_k`, the indices of its ``k`` highest lower bounds and of
    its ``k`` highest upper bounds counting the zero candidates' as -inf (each by value descending, ties by
    index; all when there are fewer): ``(rows, accounts, sides, lo, hi, zero, top_lo, top_hi)``, the queue's
    first prefixes with its columns (``ADLQueue._candidates``; reference ``queue._columns_top``).
    O(slots of the mirror + n log k); with ``kept``, as :func:`candidates` with it."""
    columns = candidates(p, ids, symbol, long, fund_base, marks, ranking, kept)
    cdef const double[::1] hi = columns[4]
    cdef const uint8_t[::1] zero = columns[5].view(np.uint8)
    cdef Py_ssize_t i, n = hi.shape[0]
    reach_out = np.empty(n)
    cdef double[::1] reach = reach_out
    for i in range(n):
        reach[i] = -INFINITY if zero[i] else hi[i]
    return (*columns, _top_array(columns[3], k), _top_array(reach_out, k))


def stale_look(queue, c, set look, holders, symbol, bint long, ranking, liquidated):
    """Twin of ``exchange.liquidation.adl.queue._look`` (``ADLQueue._suspect`` inline, the monitor's ``signature``,
    ``written`` and ``row_of`` read from its compiled writer and id map, as ``RiskMonitor`` answers them when
    compiled): each looked-at account's contribution to the stale scores, the fresh set and the skip mask, on the
    queue's own objects, in the reference's order. O(accounts looked at · their positions)."""
    monitor = queue.monitor
    writer, rows, unindexed = monitor._writer, monitor._row, monitor._unindexed
    if writer is None:
        raise TypeError("the compiled stale pass needs the risk monitor's compiled writer")
    cdef dict suspects = c.suspects, stale = c.stale
    cdef list stale_order = c.stale_order
    cdef set fresh_set = c.fresh, skipped = c.skipped
    cdef uint8_t[::1] skip = c.skip.view(np.uint8)
    cdef bint fresh, unskipped = False
    for account_id in look:
        fresh = False
        known = suspects.get(account_id)
        if known is not None:  # drop what it contributed
            for key in known[3]:
                r = stale.pop(key, None)
                if r is not None:
                    del stale_order[bisect_left(stale_order, (-r[0], key))]
        if account_id in holders and account_id < FUND_ACCOUNT_BASE:  # funds come last, from the ledger
            signature = writer.signature(account_id)
            if known is None or known[0] != signature or known[1] != (account_id == liquidated):
                known = suspects[account_id] = _suspect(queue, rows, unindexed, writer, account_id, signature, symbol,
                                                        long, ranking, liquidated)
            fresh = known[2]
            if not fresh:
                stale.update(known[3])
                for key, r in (<dict?>known[3]).items():
                    if r is not None:
                        insort(stale_order, (-r[0], key))
        else:
            suspects.pop(account_id, None)
        if fresh:
            fresh_set.add(account_id)
        else:
            fresh_set.discard(account_id)
        row = rows.get(account_id)
        if row is not None:
            if fresh and row in skipped:
                skipped.discard(row)
                skip[row] = False
                unskipped = True
            elif not fresh and row not in skipped:
                skipped.add(row)
                skip[row] = True
    if unskipped:
        c.unskipped = True


cdef tuple _suspect(queue, rows, set unindexed, writer, account_id, signature, symbol, bint long, ranking,
                    liquidated):
    """Twin of ``ADLQueue._suspect`` (``Account.positions_in`` and ``RiskMonitor.written`` inline)."""
    is_liquidated = account_id == liquidated
    account = queue.risk.ledger.accounts[account_id]
    positions = account.positions
    cdef list keys = []
    for side in (HEDGE_SIDES if account.position_mode == HEDGE else ONE_WAY_SIDES):
        key = (symbol, side)
        if key in positions and (positions[key].lots > 0) == long:
            keys.append((account_id, side))
    if keys and not is_liquidated:
        a = rows.get(account_id)
        if (None if a is None or account_id in unindexed else writer.written(a)) == signature:
            suspect = (signature, is_liquidated, True, {})
            untrack(suspect)  # (kept through the command, as the scores below: _records.pxd)
            return suspect
    cdef dict scored = {}, scores = queue._scores
    for key in keys:
        known = scores.get((symbol, ranking, key))
        if known is None or known[0] != signature:
            known = (signature, queue._exact(symbol, key, ranking))
            untrack(known)
            scores[symbol, ranking, key] = known
        scored[key] = known[1]
    suspect = (signature, is_liquidated, False, scored)
    untrack(suspect)
    return suspect


cdef object BINANCE_RANKING = ADLRanking.PNL_X_MARGIN_RATIO
cdef object BITMEX_RANKING = ADLRanking.PNL_X_EFFECTIVE_LEVERAGE
cdef str CROSS_PART = ""  # exchange.accounts.pretrade.CROSS: the cross part's ``symbol``


cdef class ExactRank:
    """Twin of ``queue._rank(ranking.score_ratio(risk, symbol, key, ranking))`` (with ``score.binance_ratio`` and
    ``score.bybit_ratio`` inline): ``(float score, ratio(numerator, denominator))`` of one position, its uPnL,
    MM, notional and part balance from the risk stage's compiled kernel, called in C (bitmex: its bankruptcy
    price from ``Risk.bankruptcy_price_ticks`` and ``score.bitmex_ratio``). ``ratio`` is the queue's ``_Ratio``.
    O(the account's positions) for a cross part's balance, else O(1)."""
    cdef RiskKernel kernel
    cdef dict accounts, instruments
    cdef object ratio, bankruptcy, mark_of

    def __init__(self, risk, ratio):
        self.kernel, self.accounts, self.instruments, self.ratio = risk.kernel, risk.ledger.accounts, risk.instruments, ratio
        self.bankruptcy, self.mark_of = risk.bankruptcy_price_ticks, risk.mark_of

    def __call__(self, symbol, tuple key, ranking):
        account = self.accounts[key[0]]
        position = position_of(account.positions, (symbol, key[1]), EMPTY)  # Ledger.position, without a call
        if position is None:
            position = Position()
        if ranking == BITMEX_RANKING:  # score.bitmex_ratio, at the part's bankruptcy price
            mark = self.mark_of(symbol)
            distance = abs(mark - (self.bankruptcy(account, symbol, key[1]) or 0))
            numerator, denominator = bitmex_ratio(position.lots * mark - position.entry_cost, position.entry_cost,
                                                  mark, distance)
            return self._ranked(numerator, denominator)
        upnl = self.kernel.upnl(symbol, position)
        isolated = self.kernel.is_isolated(account, symbol)
        if ranking == BINANCE_RANKING:  # score.binance_ratio
            wallet = position.isolated_margin_units if isolated else account.wallet_units
            mm = self.kernel.position_mm(symbol, position)
            balance = wallet + upnl
            if balance <= 0:
                numerator, denominator = 0, 1
            else:
                numerator, denominator = max(0, upnl) * mm, max(1, wallet) * balance
        else:  # score.bybit_ratio, on the part's margin balance
            balance = self.kernel.part_state(account, symbol if isolated else CROSS_PART, key[1])[0]
            entry = abs(position.entry_cost) * self.instruments[symbol].k_units
            notional = self.kernel.notional(symbol, position)
            if entry <= 0 or balance <= 0:
                numerator, denominator = 0, 1
            elif upnl >= 0:
                numerator, denominator = upnl * notional, entry * balance
            else:
                numerator, denominator = upnl * balance, entry * notional
        return self._ranked(numerator, denominator)

    cdef tuple _ranked(self, numerator, denominator):
        """``queue._rank`` of ``(numerator, denominator)``."""
        try:
            value = numerator / denominator
        except OverflowError:
            value = INFINITY if numerator > 0 else -INFINITY
        ratio = self.ratio(numerator, denominator)
        untrack(ratio)  # (kept through the command: never walked by the cycle collector, _records.pxd)
        rank = (value, ratio)
        untrack(rank)
        return rank
