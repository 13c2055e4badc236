# cython: language_level=3
"""The compiled matching engine: the C-struct twin of :mod:`exchange.orders.matching` (contract: docs/matching.md).

Same API, same results, same event rows as the pure-Python reference; the differential tests
(tests/test_differential_matching.py) compare both after every command.

Data structures (no Python object is touched between the start and the end of a command):

- order pool: an array of ``Order`` structs with a free list (slots are reused, the pool only grows);
- price levels: a pool of ``Level`` structs, each the head / tail of an intrusive doubly linked FIFO of
  orders, with its aggregate leaves and order count;
- per side, a sorted array of the active levels keyed so that the best price is at the END
  (bids key = price, asks key = -price): the best level is O(1), inserting / removing near the top is a
  short memmove, finding a price is a binary search;
- order_id -> slot: an open-addressing hash map (linear probing, backward-shift deletion, load <= 1/2);
- per-account intrusive doubly linked order lists (account_id -> account slot through a second hash map);
  cancel_all / orders_of sort the account's ids on output;
- GTD expiry: an indexed binary min-heap of slots keyed by (expire_ns, order_id), exact deletion;
- the event buffer: a growable C array of 13 x int64 rows, byte-identical to ``EVENT_DTYPE``
  (exchange/orders/core_mem.h: an anonymous mapping advised for huge pages, grown with mremap). ``take_events()``
  copies a small buffer and hands a large one (a batch's) to the returned array without copying; the
  largest freed buffer is kept as one spare for the next large batch, so a loop of batches does not fault
  in fresh pages every time.

Threads: ``run_batch`` releases the GIL while it runs; any other call on the same engine during that time
raises ``RuntimeError``. Different engines may run batches in parallel threads.

Integer rules: prices, quantities and notionals are range-checked before they are multiplied
(``max_price x max_qty x K < 2^62``); products that can pass 64 bits (notional x fee rate, mark x band
rate, mark x qty x K) use 128-bit intermediates (exchange/orders/core_int.h) and are rounded once with floor / ceil
semantics identical to Python's ``//`` for any sign.

Complexity with L levels per side: place O(log L + fills) (O(1) to join the best level), cancel O(1)
plus O(log L) when its level empties, cancel_all O(k log k), set_time O(e log g) for e expiries among
g GTD orders.
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t, INT64_MIN
from libc.stdlib cimport malloc, realloc, free, qsort
from libc.string cimport memmove, memcpy

import numpy as np

from exchange.commands import COMMAND_DTYPE
from exchange.enums import CommandKind
from exchange.events import EVENT_DTYPE

cdef extern from "core_int.h" nogil:
    int64_t ex_fee(int64_t notional_units, int64_t rate_e8)
    int64_t ex_mul_e8_floor(int64_t a, int64_t rate_e8)
    int64_t ex_mul_e8_ceil(int64_t a, int64_t rate_e8)
    int ex_mul3_lt(int64_t a, int64_t b, int64_t c, int64_t limit)
    void ex_prefetch(const void* p)

cdef extern from "core_mem.h" nogil:
    void* ex_big_alloc(size_t nbytes, size_t* mapped)
    void* ex_big_realloc(void* p, size_t old_mapped, size_t nbytes, size_t* mapped)
    void ex_big_free(void* p, size_t mapped)


# ==== constants (values of exchange.enums; tests/test_enums.py checks they agree) ====================
cdef enum:
    BUY = 1
    SELL = 2
    LIMIT = 1
    MARKET = 2
    GTC = 1
    IOC = 2
    FOK = 3
    GTX = 4
    GTD = 5
    STP_NONE = 1
    STP_EXPIRE_TAKER = 2
    STP_EXPIRE_MAKER = 3
    STP_EXPIRE_BOTH = 4

cdef enum:
    EV_ACCEPTED = 1
    EV_REJECTED = 2
    EV_FILL = 3
    EV_CANCELED = 4
    EV_AMENDED = 5

cdef enum:
    R_USER = 1
    R_IOC = 2
    R_STP_TAKER = 3
    R_STP_MAKER = 4
    R_GTD_EXPIRED = 5
    R_PRICE_BAND = 6
    R_NO_LIQUIDITY = 7

cdef enum:
    C_PLACE = 1
    C_CANCEL = 2
    C_AMEND = 3
    C_CANCEL_ALL = 4
    C_SET_MARK = 5
    C_SET_TIME = 6

cdef enum:
    E_MALFORMED = -1102
    E_INVALID_TIF = -1115
    E_INVALID_ORDER_TYPE = -1116
    E_INVALID_SIDE = -1117
    E_UNKNOWN_ORDER = -2011
    E_NO_SUCH_ORDER = -2013
    E_PRICE_LE_ZERO = -4001
    E_PRICE_GT_MAX = -4002
    E_QTY_LE_ZERO = -4003
    E_QTY_LT_MIN = -4004
    E_QTY_GT_MAX = -4005
    E_PRICE_LT_MIN = -4013
    E_DUPLICATE_ID = -4015
    E_BAND_UP = -4016
    E_BAND_DOWN = -4024
    E_MARKET_QTY_GT_MAX = -4108
    E_NOTIONAL = -4164
    E_FOK = -5021
    E_POST_ONLY = -5022
    E_NO_CHANGE = -5027
    E_GTD_TIME = -5040

cdef enum:
    NCMD = 12  # int64 fields per COMMAND_DTYPE row
    PREFETCH_DISTANCE = 8  # run_batch prefetches the id-map slot of the row this far ahead
    HANDOFF_ROWS = 65536  # take_events() hands a buffer this large to numpy instead of copying it
    SPARE_MIN_BYTES = 16 << 20  # freed event buffers at least this large are kept for reuse (one spare)
    NIL = -1


#: The enum values compiled in above, for tests/test_core_batch.py to compare with exchange.enums.
ENUM_VALUES = {
    "Side": {"BUY": BUY, "SELL": SELL},
    "OrderType": {"LIMIT": LIMIT, "MARKET": MARKET},
    "TimeInForce": {"GTC": GTC, "IOC": IOC, "FOK": FOK, "GTX": GTX, "GTD": GTD},
    "STPMode": {"NONE": STP_NONE, "EXPIRE_TAKER": STP_EXPIRE_TAKER, "EXPIRE_MAKER": STP_EXPIRE_MAKER,
                "EXPIRE_BOTH": STP_EXPIRE_BOTH},
    "EventKind": {"ACCEPTED": EV_ACCEPTED, "REJECTED": EV_REJECTED, "FILL": EV_FILL, "CANCELED": EV_CANCELED,
                  "AMENDED": EV_AMENDED},
    "CancelReason": {"USER": R_USER, "IOC": R_IOC, "STP_TAKER": R_STP_TAKER, "STP_MAKER": R_STP_MAKER,
                     "GTD_EXPIRED": R_GTD_EXPIRED, "PRICE_BAND": R_PRICE_BAND, "NO_LIQUIDITY": R_NO_LIQUIDITY},
    "CommandKind": {"PLACE": C_PLACE, "CANCEL": C_CANCEL, "AMEND": C_AMEND, "CANCEL_ALL": C_CANCEL_ALL,
                    "SET_MARK": C_SET_MARK, "SET_TIME": C_SET_TIME},
    "RejectCode": {"MALFORMED": E_MALFORMED, "INVALID_TIF": E_INVALID_TIF, "INVALID_ORDER_TYPE": E_INVALID_ORDER_TYPE,
                   "INVALID_SIDE": E_INVALID_SIDE, "UNKNOWN_ORDER": E_UNKNOWN_ORDER, "NO_SUCH_ORDER": E_NO_SUCH_ORDER,
                   "PRICE_LESS_THAN_ZERO": E_PRICE_LE_ZERO, "PRICE_GREATER_THAN_MAX_PRICE": E_PRICE_GT_MAX,
                   "QTY_LESS_THAN_ZERO": E_QTY_LE_ZERO, "QTY_LESS_THAN_MIN_QTY": E_QTY_LT_MIN,
                   "QTY_GREATER_THAN_MAX_QTY": E_QTY_GT_MAX, "PRICE_LESS_THAN_MIN_PRICE": E_PRICE_LT_MIN,
                   "DUPLICATE_ORDER_ID": E_DUPLICATE_ID, "PRICE_HIGHER_THAN_MULTIPLIER_UP": E_BAND_UP,
                   "PRICE_LOWER_THAN_MULTIPLIER_DOWN": E_BAND_DOWN, "MARKET_QTY_GREATER_THAN_MAX": E_MARKET_QTY_GT_MAX,
                   "NOTIONAL_TOO_SMALL": E_NOTIONAL, "FOK_NOT_FILLED": E_FOK, "POST_ONLY_WOULD_TAKE": E_POST_ONLY,
                   "NO_NEED_TO_MODIFY": E_NO_CHANGE, "GTD_TIME_INVALID": E_GTD_TIME},
}


# ==== the engine =====================================================================================
cdef class MatchingEngine:
    """One instrument's order book with price-time priority matching (compiled twin of
    :class:`exchange.orders.matching.MatchingEngine`; identical API, results and event rows)."""

    def __cinit__(self, instrument):
        cdef int s
        self.orders = NULL
        self.levels = NULL
        self.accounts = NULL
        self.heap = NULL
        self.ev = NULL
        for s in range(3):
            self.sides[s].keys = NULL
            self.sides[s].lv = NULL
            self.sides[s].n = 0
            self.sides[s].cap = 0
        self.ids.slots = NULL
        self.acct_ids.slots = NULL

    def __init__(self, instrument):
        cdef int s
        if self.orders != NULL:
            raise RuntimeError("MatchingEngine is already initialised")
        self._instrument = instrument
        self.k_units = instrument.k_units
        self.min_price = instrument.min_price_ticks
        self.max_price = instrument.max_price_ticks
        self.min_qty = instrument.min_qty_lots
        self.max_qty = instrument.max_qty_lots
        self.max_market_qty = instrument.max_market_qty_lots
        self.min_notional = instrument.min_notional_units
        self.band_up_e8 = instrument.band_up_e8
        self.band_down_e8 = instrument.band_down_e8
        self.maker_fee_e8 = instrument.maker_fee_e8
        self.taker_fee_e8 = instrument.taker_fee_e8
        self._in_batch = False
        self.mark_ticks = 0
        self.now_ns = 0
        self.last_ticks = 0
        self.band_buy = 0
        self.band_sell = 0
        self.orders_cap = 0
        self.orders_free = NIL
        self.n_orders = 0
        self.levels_cap = 0
        self.levels_free = NIL
        self.accounts_n = 0
        self.accounts_cap = 0
        self.heap_n = 0
        self.heap_cap = 0
        self.ev_n = 0
        self.ev_cap = 0
        self.ev_bytes = 0
        _grow_orders(self, 1024)
        _grow_levels(self, 256)
        for s in (BUY, SELL):
            _side_reserve(&self.sides[s], 256)
        _hm_init(&self.ids, 4096)
        _hm_init(&self.acct_ids, 256)
        self._reserve_events(4096)

    def __dealloc__(self):
        cdef int s
        free(self.orders)
        free(self.levels)
        free(self.accounts)
        free(self.heap)
        _recycle_events(self.ev, self.ev_bytes)
        for s in range(3):
            free(self.sides[s].keys)
            free(self.sides[s].lv)
        free(self.ids.slots)
        free(self.acct_ids.slots)

    @property
    def instrument(self):
        return self._instrument

    # ==== commands (Python API) =====================================================================
    cpdef int64_t place(self, int64_t order_id, int64_t account_id, int64_t side, int64_t order_type, int64_t tif,
                        int64_t price_ticks, int64_t qty_lots, int64_t stp, int64_t reduce_only,
                        int64_t expire_ns) except -1:
        """Validate, then accept and match a LIMIT or MARKET order. Returns the reject code (0 = accepted).
        O(log L + fills)."""
        self._check_idle()
        return self._place(order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp,
                           reduce_only, expire_ns)

    cpdef int64_t cancel(self, int64_t order_id, int64_t account_id) except -1:
        """Cancel a resting order of ``account_id``: 0, or -2011 when it is not resting under that account."""
        self._check_idle()
        return self._cancel(order_id, account_id)

    def amend(self, int64_t order_id, int64_t account_id, int64_t price_ticks, int64_t qty_lots):
        """Change a resting order's price and/or remaining quantity (``qty_lots`` = new leaves).
        Returns the reject code (0 = amended)."""
        self._check_idle()
        return self._amend(order_id, account_id, price_ticks, qty_lots)

    def shrink(self, int64_t order_id, int64_t leaves_lots):
        """Reduce a resting order's leaves to ``leaves_lots`` (``0 < leaves_lots <`` its leaves) in place, queue
        priority kept, with no filters: the engine's own reduce-only trim, not a trader's amend (a band or
        min-notional filter must not keep a reduce-only order larger than its position). Emits AMENDED
        (priority kept). Returns 0, or -2013 when the order does not rest or this is not a decrease."""
        self._check_idle()
        cdef int32_t s = _hm_get(&self.ids, order_id)
        if s == NIL or not 0 < leaves_lots < self.orders[s].leaves:
            return E_NO_SUCH_ORDER
        cdef Order* o = &self.orders[s]
        self.levels[o.level].total -= o.leaves - leaves_lots
        o.leaves = leaves_lots
        self._emit(EV_AMENDED, order_id, o.account_id, o.side, o.price, 0, leaves_lots, 1, 0, 0, 0, 0, 0)
        return 0

    def cancel_all(self, int64_t account_id):
        """Cancel every resting order of the account in ascending order_id; returns how many."""
        self._check_idle()
        return self._cancel_all(account_id)

    def set_mark(self, int64_t mark_ticks):
        """Set the mark price (ticks, >= 1, validated by the caller); it drives the price band."""
        self._check_idle()
        self._set_mark(mark_ticks)

    def set_time(self, int64_t now_ns):
        """Advance time (validated by the caller) and expire GTD orders with ``expire_ns <= now`` in
        ascending (expire_ns, order_id). Returns how many expired."""
        self._check_idle()
        return self._set_time(now_ns)

    def run_batch(self, commands):
        """Run rows of ``COMMAND_DTYPE`` in order, exactly as the per-command methods would, without the GIL.

        Returns ``(results int64, events)`` and leaves the event buffer empty; the events are ``take_events()``
        after the batch (rows buffered before the call come first). Raises ``TypeError`` for another dtype and
        ``ValueError`` for an unknown ``kind``, before any row runs.
        """
        self._check_idle()
        if not isinstance(commands, np.ndarray) or commands.dtype != COMMAND_DTYPE:
            raise TypeError(f"run_batch needs an array of COMMAND_DTYPE, got {getattr(commands, 'dtype', type(commands))}")
        arr = np.ascontiguousarray(commands).reshape(-1)
        cdef Py_ssize_t n = arr.shape[0]
        results = np.empty(n, dtype=np.int64)
        if n == 0:
            return results, self.take_events()
        cdef const int64_t[:, ::1] rows = arr.view(np.int64).reshape(n, NCMD)
        cdef int64_t[::1] out = results
        cdef Py_ssize_t i, bad = -1
        self._reserve_events(self.ev_n + n + 1024)  # most commands append one or two rows
        with nogil:
            for i in range(n):
                if rows[i, 0] < C_PLACE or rows[i, 0] > C_SET_TIME:
                    bad = i
                    break
        if bad >= 0:
            kinds = set(arr["kind"].tolist()) - {int(kind) for kind in CommandKind}
            raise ValueError(f"unknown command kind(s) {sorted(kinds)}")
        self._in_batch = True
        try:
            with nogil:
                for i in range(n):
                    if i + PREFETCH_DISTANCE < n:
                        self._prefetch_row(&rows[i + PREFETCH_DISTANCE, 0])
                    out[i] = self._run_row(&rows[i, 0])
        finally:
            self._in_batch = False
        return results, self.take_events()

    # ==== event buffer ==============================================================================
    def events(self):
        """A copy of the rows appended since the last clear, as an ``EVENT_DTYPE`` array."""
        self._check_idle()
        cdef Py_ssize_t n = self.ev_n
        arr = np.empty(n, dtype=EVENT_DTYPE)
        cdef int64_t[:, ::1] view
        if n:
            view = arr.view(np.int64).reshape(n, 13)
            memcpy(&view[0, 0], self.ev, n * sizeof(Event))
        return arr

    cpdef clear_events(self):
        self._check_idle()
        self.ev_n = 0

    def take_events(self):
        """``events()`` then ``clear_events()``. A large buffer is handed to the returned array without a
        copy (the engine starts a new one)."""
        self._check_idle()
        if self.ev_n < HANDOFF_ROWS:
            arr = self.events()
            self.ev_n = 0
            return arr
        cdef _EventBlock block = _EventBlock()
        block.ptr = self.ev
        block.mapped = self.ev_bytes
        block.nbytes = self.ev_n * sizeof(Event)
        cdef Py_ssize_t n = self.ev_n
        self.ev = NULL
        self.ev_bytes = 0
        self.ev_cap = 0
        self.ev_n = 0
        self._reserve_events(4096)
        return np.frombuffer(block, dtype=EVENT_DTYPE, count=n)

    cpdef list take_event_rows(self):
        """``take_events().tolist()`` without the array: the rows appended since the last clear as a list of
        13-int tuples (``EVENT_DTYPE`` order), then ``clear_events()``. The compiled Exchange drain
        (:mod:`exchange.clearing._fills`) reads them so. O(rows)."""
        self._check_idle()
        cdef Py_ssize_t i, n = self.ev_n
        cdef list rows = []
        cdef Event* e
        for i in range(n):
            e = &self.ev[i]
            rows.append((e.kind, e.order_id, e.account_id, e.side, e.price_ticks, e.qty_lots, e.leaves_lots, e.code,
                         e.maker_order_id, e.maker_account_id, e.maker_leaves_lots, e.maker_fee_units,
                         e.taker_fee_units))
        self.ev_n = 0
        return rows

    def event_count(self):
        return self.ev_n

    # ==== queries ===================================================================================
    def best_bid(self):
        """Best bid in ticks, 0 when there is none. O(1)."""
        return self._best_price(BUY)

    def best_ask(self):
        """Best ask in ticks, 0 when there is none. O(1)."""
        return self._best_price(SELL)

    cpdef int64_t last_price(self) noexcept:
        """Price of the last fill in ticks, 0 before the first fill."""
        return self.last_ticks

    cpdef int64_t mark(self) noexcept:
        return self.mark_ticks

    def now(self):
        return self.now_ns

    def next_expiry_ns(self):
        """The earliest ``expire_ns`` of a resting GTD order, 0 when none rests. O(1)."""
        return self.orders[self.heap[0]].expire_ns if self.heap_n else 0

    cpdef object order(self, order_id):
        """``(order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only, expire_ns)`` of a
        resting order, or ``None``."""
        cdef int32_t s = _hm_get(&self.ids, order_id) if INT64_MIN < order_id < 2**63 else NIL
        return self._order_tuple(s) if s != NIL else None

    def order_count(self):
        return self.n_orders

    def orders_of(self, account_id):
        """Resting order ids of an account, ascending."""
        self._check_idle()
        if not (INT64_MIN < account_id < 2**63):
            return []
        cdef int32_t a = _hm_get(&self.acct_ids, account_id)
        if a == NIL or self.accounts[a].count == 0:
            return []
        cdef int64_t k = self.accounts[a].count
        cdef IdSlot* tmp = self._collect_account(a)
        result = [tmp[i].order_id for i in range(k)]
        free(tmp)
        return result

    def depth(self, int64_t levels):
        """``(bids, asks)``: up to ``levels`` levels per side as ``(price_ticks, total_lots, order_count)``,
        best first."""
        self._check_idle()
        return self._depth(BUY, levels), self._depth(SELL, levels)

    def canonical_state(self):
        """``("mark", m), ("now", t), ("last", p)``, then every resting order tuple: bids best to worst, then
        asks best to worst, each level in queue order."""
        self._check_idle()
        state = [("mark", self.mark_ticks), ("now", self.now_ns), ("last", self.last_ticks)]
        cdef BookSide* bs
        cdef int64_t i
        cdef int32_t s
        cdef int side
        for side in (BUY, SELL):
            bs = &self.sides[side]
            for i in range(bs.n - 1, -1, -1):
                s = self.levels[bs.lv[i]].head
                while s != NIL:
                    state.append(self._order_tuple(s))
                    s = self.orders[s].next
        return state

    # ==== snapshots (exchange/persistence/snapshot.py, docs/snapshot.md) ========================================
    def snapshot_state(self):
        """``(mark, now, last, orders)``: the resting order tuples in matching priority (bids best to worst,
        then asks best to worst, oldest first within a level). Same as the reference engine's."""
        state = self.canonical_state()
        return self.mark_ticks, self.now_ns, self.last_ticks, state[3:]

    def restore_state(self, mark_ticks, now_ns, last_ticks, orders):
        """Load a :meth:`snapshot_state` into this engine, which must hold no order (the reference engine's
        contract: mark, time and last price as they are, then :meth:`restore_order` each order in turn)."""
        self._check_idle()
        mark_ticks, now_ns, last_ticks = int(mark_ticks), int(now_ns), int(last_ticks)
        if self.n_orders:
            raise ValueError("restore_state needs an empty book")
        if not (0 <= mark_ticks < 2**63 and 0 <= now_ns < 2**63 and 0 <= last_ticks < 2**63):
            raise ValueError("mark, time and last price must be >= 0")
        self._set_mark(mark_ticks)
        self.now_ns = now_ns
        self.last_ticks = last_ticks
        for order in orders:
            self.restore_order(*order)

    def restore_order(self, order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only,
                      expire_ns):
        """Insert a resting order exactly as given at the back of its level: no matching, no filters, no
        event (snapshots only). Raises ValueError unless it could rest here (the reference engine's checks
        and messages, :func:`exchange.orders.matching._restore_problem`)."""
        from exchange.orders.matching import _restore_problem

        self._check_idle()
        values = tuple(int(v) for v in (order_id, account_id, side, price_ticks, leaves_lots, tif, stp,
                                        reduce_only, expire_ns))
        fits = all(-(2**63) <= v < 2**63 for v in values)
        duplicate = fits and _hm_get(&self.ids, values[0]) != NIL
        crosses = fits and values[2] in (BUY, SELL) and self._would_take(values[2], values[3])
        problem = _restore_problem(self._instrument, self.now_ns, values, duplicate, crosses)
        if problem:
            raise ValueError(f"cannot restore order {values[0]}: {problem}")
        self._add_order(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7],
                        values[8])

    def __reduce__(self):
        """Pickle through :meth:`snapshot_state` (plus the event rows not yet taken)."""
        return _rebuild_engine, (self._instrument, self.snapshot_state(), self.events())

    def _load_events(self, rows):
        """Append ``EVENT_DTYPE`` rows to the event buffer (unpickling)."""
        self._check_idle()
        arr = np.ascontiguousarray(rows, dtype=EVENT_DTYPE)
        cdef Py_ssize_t n = arr.shape[0]
        if n == 0:
            return
        cdef const int64_t[:, ::1] view = arr.view(np.int64).reshape(n, 13)
        self._reserve_events(self.ev_n + n)
        memcpy(&self.ev[self.ev_n], &view[0, 0], n * sizeof(Event))
        self.ev_n += n

    def check_invariants(self):
        """Raise ``AssertionError`` naming the first broken invariant. O(n)."""
        self._check_idle()
        cdef BookSide* bs
        cdef Level* L
        cdef Order* o
        cdef int64_t i, total, count
        cdef int32_t s, prev
        cdef int side
        seen = {}
        for side in (BUY, SELL):
            bs = &self.sides[side]
            for i in range(bs.n):
                L = &self.levels[bs.lv[i]]
                assert bs.keys[i] == (L.price if side == BUY else -L.price), f"level key {bs.keys[i]} != price {L.price}"
                assert i == 0 or bs.keys[i - 1] < bs.keys[i], f"levels of side {side} not strictly sorted"
                assert L.count > 0 and L.head != NIL, f"empty level {L.price} on side {side}"
                total = count = 0
                prev = NIL
                s = L.head
                while s != NIL:
                    o = &self.orders[s]
                    assert o.prev == prev, f"order {o.order_id}: broken queue link"
                    assert o.level == bs.lv[i], f"order {o.order_id} points to another level"
                    assert o.leaves > 0, f"order {o.order_id} has leaves {o.leaves}"
                    assert o.side == side, f"order {o.order_id} of side {o.side} rests on side {side}"
                    assert o.price == L.price, f"order {o.order_id} at {o.price} rests at {L.price}"
                    assert o.tif in (GTC, GTD, GTX), f"order {o.order_id} rests with TIF {o.tif}"
                    assert self.min_price <= o.price <= self.max_price, (
                        f"order {o.order_id} rests at {o.price}, outside the instrument's price range")
                    assert (o.tif == GTD) == (o.hpos != NIL), f"order {o.order_id}: GTD heap membership"
                    assert o.tif != GTD or o.expire_ns > self.now_ns, (
                        f"GTD order {o.order_id} expired at {o.expire_ns} but rests at {self.now_ns}")
                    assert o.tif == GTD or o.expire_ns == 0, f"order {o.order_id}: expire_ns without GTD"
                    assert o.order_id not in seen, f"order {o.order_id} rests twice"
                    seen[o.order_id] = s
                    total += o.leaves
                    count += 1
                    prev = s
                    s = o.next
                assert L.tail == prev, f"level {L.price}: tail is not the last order"
                assert L.total == total, f"level {L.price}: aggregate {L.total} != orders' sum {total}"
                assert L.count == count, f"level {L.price}: count {L.count} != {count} orders"
        assert len(seen) == self.n_orders == self.ids.size, "order count disagrees with the levels"
        for oid, s in seen.items():
            assert _hm_get(&self.ids, oid) == s, f"order-id index disagrees for {oid}"
        by_account = 0
        for a in range(self.accounts_n):
            count = 0
            s = self.accounts[a].head
            prev = NIL
            while s != NIL:
                o = &self.orders[s]
                assert o.aprev == prev and o.acct == a, f"order {o.order_id}: broken account link"
                assert seen.get(o.order_id) == s, f"account index holds a non-resting order {o.order_id}"
                assert _hm_get(&self.acct_ids, o.account_id) == a, f"order {o.order_id} in another account's list"
                count += 1
                prev = s
                s = o.anext
            assert count == self.accounts[a].count, "account order count disagrees with its list"
            by_account += count
        assert by_account == self.n_orders, "account index disagrees with the levels"
        n_gtd = 0
        for s in seen.values():
            n_gtd += self.orders[s].tif == GTD
        assert n_gtd == self.heap_n, "expiry heap disagrees with the levels"
        for i in range(self.heap_n):
            assert self.orders[self.heap[i]].hpos == i, "expiry heap position index is wrong"
            assert i == 0 or not _heap_less(self.orders, self.heap[i], self.heap[(i - 1) // 2]), "heap order broken"
        bid, ask = self._best_price(BUY), self._best_price(SELL)
        assert not (bid and ask and bid >= ask), f"book crossed: best bid {bid} >= best ask {ask}"

    # ==== internals: queries ========================================================================
    cdef inline int _check_idle(self) except -1:
        if self._in_batch:
            raise RuntimeError("this MatchingEngine is running a batch in another thread")
        return 0

    cdef inline int64_t _best_price(self, int side) noexcept nogil:
        cdef BookSide* bs = &self.sides[side]
        return self.levels[bs.lv[bs.n - 1]].price if bs.n else 0

    cdef tuple _order_tuple(self, int32_t s):
        cdef Order* o = &self.orders[s]
        return (o.order_id, o.account_id, o.side, o.price, o.leaves, o.tif, o.stp, o.reduce_only, o.expire_ns)

    cdef list _depth(self, int side, int64_t levels):
        cdef BookSide* bs = &self.sides[side]
        cdef Level* L
        cdef int64_t i
        result = []
        for i in range(bs.n - 1, max(bs.n - 1 - levels, -1), -1):
            L = &self.levels[bs.lv[i]]
            result.append((L.price, L.total, L.count))
        return result

    cdef IdSlot* _collect_account(self, int32_t a) except NULL nogil:
        """The account's (order_id, slot) pairs sorted by order_id (caller frees)."""
        cdef int64_t k = self.accounts[a].count, j = 0
        cdef IdSlot* tmp = <IdSlot*>malloc((k if k else 1) * sizeof(IdSlot))
        if tmp == NULL:
            with gil:
                raise MemoryError()
        cdef int32_t s = self.accounts[a].head
        while s != NIL:
            tmp[j].order_id = self.orders[s].order_id
            tmp[j].slot = s
            j += 1
            s = self.orders[s].anext
        qsort(tmp, k, sizeof(IdSlot), _cmp_idslot)
        return tmp

    # ==== internals: commands =======================================================================
    cdef inline void _prefetch_row(self, const int64_t* r) noexcept nogil:
        """Batch look-ahead: start loading the id-map slot a coming row will probe (a hint only)."""
        if r[0] <= C_AMEND and r[1] != INT64_MIN:
            ex_prefetch(&self.ids.slots[_hm_home(&self.ids, r[1])])

    cdef int64_t _run_row(self, const int64_t* r) except -1 nogil:
        """Dispatch one COMMAND_DTYPE row (fields in COMMAND_FIELDS order)."""
        cdef int64_t kind = r[0]
        if kind == C_PLACE:
            return self._place(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10])
        if kind == C_CANCEL:
            return self._cancel(r[1], r[2])
        if kind == C_AMEND:
            return self._amend(r[1], r[2], r[6], r[7])
        if kind == C_CANCEL_ALL:
            return self._cancel_all(r[2])
        if kind == C_SET_MARK:
            self._set_mark(r[6])
            return 0
        return self._set_time(r[11])

    cdef int64_t _place(self, int64_t oid, int64_t acct, int64_t side, int64_t otype, int64_t tif,
                        int64_t price, int64_t qty, int64_t stp, int64_t reduce_only,
                        int64_t expire_ns) except -1 nogil:
        cdef int64_t code = self._check_place(oid, acct, side, otype, tif, price, qty, stp, reduce_only, expire_ns)
        if code:
            self._emit(EV_REJECTED, oid, acct, side, price, qty, 0, code, 0, 0, 0, 0, 0)
            return code
        self._emit(EV_ACCEPTED, oid, acct, side, price, qty, qty, 0, 0, 0, 0, 0, 0)
        cdef int has_limit = 1
        cdef int64_t limit = price
        if otype == MARKET:
            if self.mark_ticks:
                limit = self.band_buy if side == BUY else self.band_sell
            else:
                has_limit = 0
        cdef int64_t leaves = qty
        if self._match(oid, acct, <int>side, has_limit, limit, price, <int>stp, &leaves):
            return 0  # expired by self-trade prevention
        if leaves == 0:
            return 0
        cdef int64_t reason
        if otype == MARKET:
            reason = R_PRICE_BAND if self.sides[3 - side].n else R_NO_LIQUIDITY
            self._emit(EV_CANCELED, oid, acct, side, price, leaves, 0, reason, 0, 0, 0, 0, 0)
        elif tif == IOC or tif == FOK:
            self._emit(EV_CANCELED, oid, acct, side, price, leaves, 0, R_IOC, 0, 0, 0, 0, 0)
        else:
            self._add_order(oid, acct, <int>side, price, leaves, <int>tif, <int>stp, reduce_only != 0,
                            expire_ns if tif == GTD else 0)
        return 0

    cdef int64_t _cancel(self, int64_t oid, int64_t acct) except -1 nogil:
        cdef int32_t s = _hm_get(&self.ids, oid)
        if s == NIL or self.orders[s].account_id != acct:
            self._emit(EV_REJECTED, oid, acct, 0, 0, 0, 0, E_UNKNOWN_ORDER, 0, 0, 0, 0, 0)
            return E_UNKNOWN_ORDER
        self._cancel_resting(s, R_USER)
        return 0

    cdef int64_t _amend(self, int64_t oid, int64_t acct, int64_t price, int64_t qty) except -1 nogil:
        cdef int32_t s = _hm_get(&self.ids, oid)
        cdef int64_t code = 0
        cdef Order* o = NULL
        if s == NIL or self.orders[s].account_id != acct:
            code = E_NO_SUCH_ORDER
        else:
            o = &self.orders[s]
            code = self._check_qty(qty, 0)
            if not code:
                code = self._check_price(o.side, price)
            if not code and not o.reduce_only and price * qty * self.k_units < self.min_notional:
                code = E_NOTIONAL
            if not code and price == o.price and qty == o.leaves:
                code = E_NO_CHANGE
            if not code and o.tif == GTX and self._would_take(o.side, price):
                code = E_POST_ONLY
        if code:
            self._emit(EV_REJECTED, oid, acct, 0, price, qty, 0, code, 0, 0, 0, 0, 0)
            return code
        cdef int side = o.side
        if price == o.price and qty < o.leaves:  # pure decrease: in place, priority kept
            self.levels[o.level].total -= o.leaves - qty
            o.leaves = qty
            self._emit(EV_AMENDED, oid, acct, side, price, 0, qty, 1, 0, 0, 0, 0, 0)
            return 0
        self._emit(EV_AMENDED, oid, acct, side, price, 0, qty, 0, 0, 0, 0, 0, 0)
        self._unlink_level(s)
        cdef int64_t leaves = qty
        o.price = price
        o.leaves = qty
        if self._match(oid, acct, side, 1, price, price, o.stp, &leaves) or leaves == 0:
            self._forget(s)
            return 0
        o = &self.orders[s]
        o.leaves = leaves
        self._link_level(s)
        return 0

    cdef int64_t _cancel_all(self, int64_t acct) except -1 nogil:
        cdef int32_t a = _hm_get(&self.acct_ids, acct)
        if a == NIL or self.accounts[a].count == 0:
            return 0
        cdef int64_t k = self.accounts[a].count, j
        cdef IdSlot* tmp = self._collect_account(a)
        for j in range(k):
            self._cancel_resting(tmp[j].slot, R_USER)
        free(tmp)
        return k

    cdef void _set_mark(self, int64_t mark_ticks) noexcept nogil:
        self.mark_ticks = mark_ticks
        self.band_buy = ex_mul_e8_floor(mark_ticks, self.band_up_e8)
        self.band_sell = ex_mul_e8_ceil(mark_ticks, self.band_down_e8)

    cdef int64_t _set_time(self, int64_t now_ns) except -1 nogil:
        self.now_ns = now_ns
        cdef int64_t count = 0
        while self.heap_n and self.orders[self.heap[0]].expire_ns <= now_ns:
            self._cancel_resting(self.heap[0], R_GTD_EXPIRED)
            count += 1
        return count

    # ==== internals: validation (first failing check wins) ==========================================
    cdef int64_t _check_place(self, int64_t oid, int64_t acct, int64_t side, int64_t otype, int64_t tif,
                              int64_t price, int64_t qty, int64_t stp, int64_t reduce_only,
                              int64_t expire_ns) noexcept nogil:
        # step 1: enumerations and identifiers
        if side != BUY and side != SELL:
            return E_INVALID_SIDE
        if otype != LIMIT and otype != MARKET:
            return E_INVALID_ORDER_TYPE
        if otype == LIMIT and (tif < GTC or tif > GTD):
            return E_INVALID_TIF
        if stp < STP_NONE or stp > STP_EXPIRE_BOTH or oid <= 0 or acct < 0:
            return E_MALFORMED
        if otype == MARKET and price != 0:
            return E_MALFORMED
        # step 2: duplicate id
        if _hm_get(&self.ids, oid) != NIL:
            return E_DUPLICATE_ID
        # step 3: quantity
        cdef int64_t code = self._check_qty(qty, otype == MARKET)
        if code:
            return code
        if otype == MARKET:
            # step 6 (market): notional at the mark, skipped without a mark
            if not reduce_only and self.mark_ticks and ex_mul3_lt(self.mark_ticks, qty, self.k_units,
                                                                 self.min_notional):
                return E_NOTIONAL
            return 0
        # steps 4-5: price range and band
        code = self._check_price(side, price)
        if code:
            return code
        # step 6: notional (price <= max_price and qty <= max_qty, so it fits in 62 bits)
        if not reduce_only and price * qty * self.k_units < self.min_notional:
            return E_NOTIONAL
        # steps 7-9: TIF rules
        if tif == GTD and expire_ns <= self.now_ns:
            return E_GTD_TIME
        if tif == GTX and self._would_take(<int>side, price):
            return E_POST_ONLY
        if tif == FOK and self._fillable(<int>side, price, qty, acct, <int>stp) < qty:
            return E_FOK
        return 0

    cdef inline int64_t _check_qty(self, int64_t qty, bint is_market) noexcept nogil:
        if qty <= 0:
            return E_QTY_LE_ZERO
        if qty < self.min_qty:
            return E_QTY_LT_MIN
        if is_market and qty > self.max_market_qty:
            return E_MARKET_QTY_GT_MAX
        if qty > self.max_qty:
            return E_QTY_GT_MAX
        return 0

    cdef inline int64_t _check_price(self, int64_t side, int64_t price) noexcept nogil:
        if price <= 0:
            return E_PRICE_LE_ZERO
        if price < self.min_price:
            return E_PRICE_LT_MIN
        if price > self.max_price:
            return E_PRICE_GT_MAX
        if self.mark_ticks:
            if side == BUY and price > self.band_buy:
                return E_BAND_UP
            if side == SELL and price < self.band_sell:
                return E_BAND_DOWN
        return 0

    cdef inline bint _would_take(self, int side, int64_t price) noexcept nogil:
        cdef int64_t best = self._best_price(3 - side)
        if best == 0:
            return False
        return price >= best if side == BUY else price <= best

    cdef int64_t _fillable(self, int side, int64_t limit, int64_t needed, int64_t acct, int stp) noexcept nogil:
        """Lots a LIMIT taker could fill now (stops counting at ``needed``), honouring its STP mode."""
        cdef BookSide* bs = &self.sides[3 - side]
        cdef int64_t i, fillable = 0
        cdef Level* L
        cdef int32_t s
        for i in range(bs.n - 1, -1, -1):
            L = &self.levels[bs.lv[i]]
            if (side == BUY and L.price > limit) or (side == SELL and L.price < limit):
                break
            if stp == STP_NONE:
                fillable += L.total
                if fillable >= needed:
                    break
                continue
            s = L.head
            while s != NIL:
                if self.orders[s].account_id == acct:
                    if stp != STP_EXPIRE_MAKER:
                        return fillable
                else:
                    fillable += self.orders[s].leaves
                    if fillable >= needed:
                        return fillable
                s = self.orders[s].next
        return fillable

    # ==== internals: matching =======================================================================
    cdef int _match(self, int64_t oid, int64_t acct, int side, int has_limit, int64_t limit,
                    int64_t evt_price, int stp, int64_t* leaves_ptr) except -1 nogil:
        """Fill the taker against the oldest crossing makers until it is done or nothing crosses.
        Returns 1 when self-trade prevention expired the taker (its CANCELED row is emitted), else 0."""
        cdef BookSide* opp = &self.sides[3 - side]
        cdef int64_t leaves = leaves_ptr[0]
        cdef int64_t price, q, notional
        cdef int32_t li, m
        cdef Level* L
        cdef Order* mk
        while leaves > 0 and opp.n:
            li = opp.lv[opp.n - 1]
            L = &self.levels[li]
            price = L.price
            if has_limit and ((side == BUY and price > limit) or (side == SELL and price < limit)):
                break
            m = L.head
            mk = &self.orders[m]
            if stp != STP_NONE and mk.account_id == acct:
                if stp == STP_EXPIRE_MAKER:
                    self._cancel_resting(m, R_STP_MAKER)
                    continue
                if stp == STP_EXPIRE_BOTH:
                    self._cancel_resting(m, R_STP_MAKER)
                self._emit(EV_CANCELED, oid, acct, side, evt_price, leaves, 0, R_STP_TAKER, 0, 0, 0, 0, 0)
                leaves_ptr[0] = 0
                return 1
            q = leaves if leaves < mk.leaves else mk.leaves
            leaves -= q
            mk.leaves -= q
            L.total -= q
            notional = price * q * self.k_units
            self.last_ticks = price
            self._emit(EV_FILL, oid, acct, side, price, q, leaves, 0, mk.order_id, mk.account_id, mk.leaves,
                       ex_fee(notional, self.maker_fee_e8), ex_fee(notional, self.taker_fee_e8))
            if mk.leaves == 0:
                self._remove(m)
        leaves_ptr[0] = leaves
        return 0

    cdef int _cancel_resting(self, int32_t s, int64_t reason) except -1 nogil:
        """Append CANCELED for a resting order's leaves and remove it."""
        cdef Order* o = &self.orders[s]
        self._emit(EV_CANCELED, o.order_id, o.account_id, o.side, o.price, o.leaves, 0, reason, 0, 0, 0, 0, 0)
        self._remove(s)
        return 0

    # ==== internals: book maintenance ===============================================================
    cdef int _add_order(self, int64_t oid, int64_t acct, int side, int64_t price, int64_t leaves, int tif,
                        int stp, int reduce_only, int64_t expire_ns) except -1 nogil:
        """Create a resting order at the back of its level and index it."""
        if self.orders_free == NIL:
            _grow_orders(self, self.orders_cap * 2)
        cdef int32_t s = self.orders_free
        cdef Order* o = &self.orders[s]
        self.orders_free = o.next
        o.order_id = oid
        o.account_id = acct
        o.price = price
        o.leaves = leaves
        o.expire_ns = expire_ns
        o.side = <int8_t>side
        o.tif = <int8_t>tif
        o.stp = <int8_t>stp
        o.reduce_only = <int8_t>reduce_only
        o.hpos = NIL
        self.n_orders += 1
        _hm_put(&self.ids, oid, s)
        # account list (push front; outputs are sorted)
        cdef int32_t a = _hm_get(&self.acct_ids, acct)
        if a == NIL:
            a = self._new_account(acct)
        o = &self.orders[s]
        o.acct = a
        o.aprev = NIL
        o.anext = self.accounts[a].head
        if o.anext != NIL:
            self.orders[o.anext].aprev = s
        self.accounts[a].head = s
        self.accounts[a].count += 1
        if tif == GTD:
            self._heap_push(s)
        self._link_level(s)
        return 0

    cdef int _link_level(self, int32_t s) except -1 nogil:
        """Append order ``s`` at the back of the level of its side and price (creating the level)."""
        cdef int side = self.orders[s].side
        cdef int64_t price = self.orders[s].price
        cdef BookSide* bs = &self.sides[side]
        cdef int64_t key = price if side == BUY else -price
        cdef int64_t pos = _lower_bound(bs.keys, bs.n, key)
        cdef int32_t li
        if pos < bs.n and bs.keys[pos] == key:
            li = bs.lv[pos]
        else:
            li = self._new_level(price)
            if bs.n == bs.cap:
                _side_reserve(bs, bs.cap * 2)
            if pos < bs.n:
                memmove(&bs.keys[pos + 1], &bs.keys[pos], (bs.n - pos) * sizeof(int64_t))
                memmove(&bs.lv[pos + 1], &bs.lv[pos], (bs.n - pos) * sizeof(int32_t))
            bs.keys[pos] = key
            bs.lv[pos] = li
            bs.n += 1
        cdef Level* L = &self.levels[li]
        cdef Order* o = &self.orders[s]
        o.level = li
        o.prev = L.tail
        o.next = NIL
        if L.tail != NIL:
            self.orders[L.tail].next = s
        else:
            L.head = s
        L.tail = s
        L.total += o.leaves
        L.count += 1
        return 0

    cdef void _unlink_level(self, int32_t s) noexcept nogil:
        """Take order ``s`` out of its level's queue (dropping the level when it empties)."""
        cdef Order* o = &self.orders[s]
        cdef int32_t li = o.level
        cdef Level* L = &self.levels[li]
        if o.prev != NIL:
            self.orders[o.prev].next = o.next
        else:
            L.head = o.next
        if o.next != NIL:
            self.orders[o.next].prev = o.prev
        else:
            L.tail = o.prev
        L.total -= o.leaves
        L.count -= 1
        if L.count:
            return
        # drop the empty level from its side (usually the best one: no search, no move)
        cdef BookSide* bs = &self.sides[o.side]
        cdef int64_t pos
        if bs.lv[bs.n - 1] != li:
            pos = _lower_bound(bs.keys, bs.n, L.price if o.side == BUY else -L.price)
            memmove(&bs.keys[pos], &bs.keys[pos + 1], (bs.n - pos - 1) * sizeof(int64_t))
            memmove(&bs.lv[pos], &bs.lv[pos + 1], (bs.n - pos - 1) * sizeof(int32_t))
        bs.n -= 1
        L.next_free = self.levels_free
        self.levels_free = li

    cdef void _forget(self, int32_t s) noexcept nogil:
        """Drop order ``s`` (already out of its level) from every index and free its slot."""
        cdef Order* o = &self.orders[s]
        _hm_del(&self.ids, o.order_id)
        cdef Account* acc = &self.accounts[o.acct]
        if o.aprev != NIL:
            self.orders[o.aprev].anext = o.anext
        else:
            acc.head = o.anext
        if o.anext != NIL:
            self.orders[o.anext].aprev = o.aprev
        acc.count -= 1
        if o.hpos != NIL:
            self._heap_remove(o.hpos)
        self.n_orders -= 1
        o.next = self.orders_free
        self.orders_free = s

    cdef inline void _remove(self, int32_t s) noexcept nogil:
        """Remove a resting order from the book and every index."""
        self._unlink_level(s)
        self._forget(s)

    cdef int32_t _new_level(self, int64_t price) except -1 nogil:
        if self.levels_free == NIL:
            _grow_levels(self, self.levels_cap * 2)
        cdef int32_t li = self.levels_free
        cdef Level* L = &self.levels[li]
        self.levels_free = L.next_free
        L.price = price
        L.total = 0
        L.count = 0
        L.head = NIL
        L.tail = NIL
        return li

    cdef int32_t _new_account(self, int64_t acct) except -1 nogil:
        cdef Account* grown
        if self.accounts_n == self.accounts_cap:
            grown = <Account*>realloc(self.accounts, (self.accounts_cap * 2 + 64) * sizeof(Account))
            if grown == NULL:
                with gil:
                    raise MemoryError()
            self.accounts = grown
            self.accounts_cap = self.accounts_cap * 2 + 64
        cdef int32_t a = <int32_t>self.accounts_n
        self.accounts_n += 1
        self.accounts[a].head = NIL
        self.accounts[a].count = 0
        _hm_put(&self.acct_ids, acct, a)
        return a

    # ---- GTD heap (indexed min-heap of slots by (expire_ns, order_id)) --------------------------
    cdef int _heap_push(self, int32_t s) except -1 nogil:
        cdef int32_t* grown
        if self.heap_n == self.heap_cap:
            grown = <int32_t*>realloc(self.heap, (self.heap_cap * 2 + 64) * sizeof(int32_t))
            if grown == NULL:
                with gil:
                    raise MemoryError()
            self.heap = grown
            self.heap_cap = self.heap_cap * 2 + 64
        self.heap[self.heap_n] = s
        self.orders[s].hpos = <int32_t>self.heap_n
        self.heap_n += 1
        self._heap_up(self.heap_n - 1)
        return 0

    cdef void _heap_remove(self, int64_t i) noexcept nogil:
        cdef int32_t s = self.heap[i]
        self.orders[s].hpos = NIL
        self.heap_n -= 1
        if i == self.heap_n:
            return
        self.heap[i] = self.heap[self.heap_n]
        self.orders[self.heap[i]].hpos = <int32_t>i
        self._heap_up(i)
        self._heap_down(i)

    cdef void _heap_up(self, int64_t i) noexcept nogil:
        cdef int32_t s = self.heap[i]
        cdef int64_t p
        while i > 0:
            p = (i - 1) >> 1
            if not _heap_less(self.orders, s, self.heap[p]):
                break
            self.heap[i] = self.heap[p]
            self.orders[self.heap[i]].hpos = <int32_t>i
            i = p
        self.heap[i] = s
        self.orders[s].hpos = <int32_t>i

    cdef void _heap_down(self, int64_t i) noexcept nogil:
        cdef int32_t s = self.heap[i]
        cdef int64_t c
        while True:
            c = 2 * i + 1
            if c >= self.heap_n:
                break
            if c + 1 < self.heap_n and _heap_less(self.orders, self.heap[c + 1], self.heap[c]):
                c += 1
            if not _heap_less(self.orders, self.heap[c], s):
                break
            self.heap[i] = self.heap[c]
            self.orders[self.heap[i]].hpos = <int32_t>i
            i = c
        self.heap[i] = s
        self.orders[s].hpos = <int32_t>i

    # ---- event buffer ---------------------------------------------------------------------------
    cdef int _reserve_events(self, int64_t cap) except -1 nogil:
        """Make room for ``cap`` rows (the buffer never shrinks while it lives)."""
        cdef size_t mapped = 0
        cdef Event* grown
        if cap <= self.ev_cap:
            return 0
        cdef size_t need = cap * sizeof(Event)
        if need >= SPARE_MIN_BYTES:
            with gil:
                grown = <Event*>_take_spare_events(need, &mapped)
            if grown != NULL:
                if self.ev != NULL:
                    memcpy(grown, self.ev, self.ev_n * sizeof(Event))
                    ex_big_free(self.ev, self.ev_bytes)
                self.ev = grown
                self.ev_bytes = mapped
                self.ev_cap = <int64_t>(mapped // sizeof(Event))
                return 0
        if self.ev == NULL:
            grown = <Event*>ex_big_alloc(cap * sizeof(Event), &mapped)
        else:
            grown = <Event*>ex_big_realloc(self.ev, self.ev_bytes, cap * sizeof(Event), &mapped)
        if grown == NULL:
            with gil:
                raise MemoryError()
        self.ev = grown
        self.ev_bytes = mapped
        self.ev_cap = <int64_t>(mapped // sizeof(Event))
        return 0

    cdef inline int _emit(self, int64_t kind, int64_t oid, int64_t acct, int64_t side, int64_t price,
                          int64_t qty, int64_t leaves, int64_t code, int64_t maker_oid, int64_t maker_acct,
                          int64_t maker_leaves, int64_t maker_fee, int64_t taker_fee) except -1 nogil:
        if self.ev_n == self.ev_cap:
            self._reserve_events(self.ev_cap * 2)
        cdef Event* e = &self.ev[self.ev_n]
        self.ev_n += 1
        e.kind = kind
        e.order_id = oid
        e.account_id = acct
        e.side = side
        e.price_ticks = price
        e.qty_lots = qty
        e.leaves_lots = leaves
        e.code = code
        e.maker_order_id = maker_oid
        e.maker_account_id = maker_acct
        e.maker_leaves_lots = maker_leaves
        e.maker_fee_units = maker_fee
        e.taker_fee_units = taker_fee
        return 0


# ==== internals: C helpers ===========================================================================
cdef inline bint _heap_less(Order* orders, int32_t a, int32_t b) noexcept nogil:
    cdef Order* x = &orders[a]
    cdef Order* y = &orders[b]
    return x.expire_ns < y.expire_ns or (x.expire_ns == y.expire_ns and x.order_id < y.order_id)


cdef int _cmp_idslot(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<IdSlot*>a).order_id, y = (<IdSlot*>b).order_id
    return (x > y) - (x < y)


cdef inline int64_t _lower_bound(const int64_t* keys, int64_t n, int64_t key) noexcept nogil:
    """First index with keys[i] >= key (keys ascending)."""
    cdef int64_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int _grow_orders(MatchingEngine eng, int64_t cap) except -1 nogil:
    """Grow the order pool to ``cap`` slots and chain the new ones into the free list."""
    if cap > 2147483647:
        with gil:
            raise MemoryError("order pool limit reached")
    cdef Order* grown = <Order*>realloc(eng.orders, cap * sizeof(Order))
    if grown == NULL:
        with gil:
            raise MemoryError()
    eng.orders = grown
    cdef int64_t i
    for i in range(cap - 1, eng.orders_cap - 1, -1):
        grown[i].next = eng.orders_free
        eng.orders_free = <int32_t>i
    eng.orders_cap = cap
    return 0


cdef int _grow_levels(MatchingEngine eng, int64_t cap) except -1 nogil:
    cdef Level* grown = <Level*>realloc(eng.levels, cap * sizeof(Level))
    if grown == NULL:
        with gil:
            raise MemoryError()
    eng.levels = grown
    cdef int64_t i
    for i in range(cap - 1, eng.levels_cap - 1, -1):
        grown[i].next_free = eng.levels_free
        eng.levels_free = <int32_t>i
    eng.levels_cap = cap
    return 0


cdef int _side_reserve(BookSide* bs, int64_t cap) except -1 nogil:
    cdef int64_t* keys = <int64_t*>realloc(bs.keys, cap * sizeof(int64_t))
    if keys == NULL:
        with gil:
            raise MemoryError()
    bs.keys = keys
    cdef int32_t* lv = <int32_t*>realloc(bs.lv, cap * sizeof(int32_t))
    if lv == NULL:
        with gil:
            raise MemoryError()
    bs.lv = lv
    bs.cap = cap
    return 0


# ---- open-addressing hash map: int64 key -> int32 value (linear probing, backward-shift delete) --------

cdef inline uint64_t _hm_home(const HMap* h, int64_t key) noexcept nogil:
    return ((<uint64_t>key) * <uint64_t>0x9E3779B97F4A7C15ULL) >> h.shift


cdef int _hm_init(HMap* h, int64_t cap) except -1 nogil:
    """``cap`` must be a power of two."""
    cdef HEntry* slots = <HEntry*>malloc(cap * sizeof(HEntry))
    if slots == NULL:
        with gil:
            raise MemoryError()
    cdef int64_t i
    for i in range(cap):
        slots[i].key = INT64_MIN
    h.slots = slots
    h.mask = <uint64_t>(cap - 1)
    h.size = 0
    cdef int bits = 0
    while (<int64_t>1 << bits) < cap:
        bits += 1
    h.shift = 64 - bits
    return 0


cdef inline int32_t _hm_get(const HMap* h, int64_t key) noexcept nogil:
    if key == INT64_MIN:
        return NIL
    cdef uint64_t i = _hm_home(h, key)
    cdef int64_t k
    while True:
        k = h.slots[i].key
        if k == key:
            return h.slots[i].val
        if k == INT64_MIN:
            return NIL
        i = (i + 1) & h.mask


cdef int _hm_put(HMap* h, int64_t key, int32_t val) except -1 nogil:
    """Insert or overwrite."""
    cdef HEntry* old
    cdef int64_t old_cap, j
    if (h.size + 1) * 2 > <int64_t>(h.mask + 1):
        old = h.slots
        old_cap = <int64_t>(h.mask + 1)
        _hm_init(h, old_cap * 2)
        for j in range(old_cap):
            if old[j].key != INT64_MIN:
                _hm_put(h, old[j].key, old[j].val)
        free(old)
    cdef uint64_t i = _hm_home(h, key)
    while h.slots[i].key != INT64_MIN:
        if h.slots[i].key == key:
            h.slots[i].val = val
            return 0
        i = (i + 1) & h.mask
    h.slots[i].key = key
    h.slots[i].val = val
    h.size += 1
    return 0


cdef void _hm_del(HMap* h, int64_t key) noexcept nogil:
    cdef uint64_t i = _hm_home(h, key), j, home
    while h.slots[i].key != key:
        if h.slots[i].key == INT64_MIN:
            return
        i = (i + 1) & h.mask
    j = i
    while True:
        j = (j + 1) & h.mask
        if h.slots[j].key == INT64_MIN:
            break
        home = _hm_home(h, h.slots[j].key)
        # the entry at j may move to the hole at i unless its home lies cyclically in (i, j]
        if (i <= j and i < home <= j) or (i > j and (home > i or home <= j)):
            continue
        h.slots[i] = h.slots[j]
        i = j
    h.slots[i].key = INT64_MIN
    h.size -= 1


# ---- zero-copy hand-off of a large event buffer to numpy ------------------------------------------------
cdef class _EventBlock:
    """Owns an event buffer handed to numpy by ``take_events``; frees it when the array goes away."""
    cdef void* ptr
    cdef size_t mapped
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]

    def __cinit__(self):
        self.ptr = NULL
        self.mapped = 0
        self.nbytes = 0

    def __getbuffer__(self, Py_buffer* buffer, int flags):
        self.shape[0] = self.nbytes
        self.strides[0] = 1
        buffer.buf = self.ptr
        buffer.obj = self
        buffer.len = self.nbytes
        buffer.readonly = 0
        buffer.itemsize = 1
        buffer.format = "B"
        buffer.ndim = 1
        buffer.shape = self.shape
        buffer.strides = self.strides
        buffer.suboffsets = NULL
        buffer.internal = NULL

    def __releasebuffer__(self, Py_buffer* buffer):
        pass

    def __dealloc__(self):
        _recycle_events(self.ptr, self.mapped)


# One spare event buffer (the largest freed one) is kept for reuse, so a loop of large batches writes into
# memory that is already mapped instead of faulting in (and zeroing) fresh pages every time.
cdef void* _spare_events = NULL
cdef size_t _spare_events_bytes = 0


cdef void _recycle_events(void* ptr, size_t mapped) noexcept:
    """Keep a freed event buffer as the spare if it is the largest seen, else unmap it (needs the GIL)."""
    global _spare_events, _spare_events_bytes
    if ptr == NULL:
        return
    if mapped < SPARE_MIN_BYTES or mapped <= _spare_events_bytes:
        ex_big_free(ptr, mapped)
        return
    ex_big_free(_spare_events, _spare_events_bytes)
    _spare_events = ptr
    _spare_events_bytes = mapped


cdef void* _take_spare_events(size_t need, size_t* mapped) noexcept:
    """The spare buffer if it holds ``need`` bytes (ownership passes to the caller), else NULL (needs the GIL)."""
    global _spare_events, _spare_events_bytes
    cdef void* ptr = _spare_events
    if ptr == NULL or _spare_events_bytes < need:
        return NULL
    mapped[0] = _spare_events_bytes
    _spare_events = NULL
    _spare_events_bytes = 0
    return ptr


def _rebuild_engine(instrument, state, events):
    """Unpickle a :class:`MatchingEngine` (its ``__reduce__``)."""
    engine = MatchingEngine(instrument)
    engine.restore_state(*state)
    engine._load_events(events)
    return engine
