# cython: language_level=3
"""The compiled matching engine's table of contents (``exchange/orders/_matching.pyx``): its C structures, its
fields and its methods, so that order entry and the drain (``exchange/orders/_entry.pyx``,
``exchange/clearing/_fills.pyx``) and the exchange's risk price (``exchange/_engine.pyx``) ``cimport`` it and call
its Python API (the ``cpdef`` methods) in C."""
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t


# ==== C structures ===================================================================================
ctypedef struct Order:
    int64_t order_id
    int64_t account_id
    int64_t price
    int64_t leaves
    int64_t expire_ns     # 0 unless GTD
    int32_t prev          # level FIFO (older neighbour)
    int32_t next          # level FIFO (newer neighbour); free-list link when the slot is free
    int32_t aprev         # account list
    int32_t anext
    int32_t level         # level slot
    int32_t acct          # account slot
    int32_t hpos          # position in the GTD heap, NIL when not GTD
    int8_t side
    int8_t tif
    int8_t stp
    int8_t reduce_only

ctypedef struct Level:
    int64_t price
    int64_t total         # sum of the orders' leaves
    int64_t count         # number of orders
    int32_t head          # oldest order
    int32_t tail          # newest order
    int32_t next_free

ctypedef struct BookSide:
    int64_t* keys         # ascending; best level last (bids: price, asks: -price)
    int32_t* lv           # level slots, parallel to keys
    int64_t n
    int64_t cap

ctypedef struct Account:
    int32_t head
    int32_t count

ctypedef struct HEntry:
    int64_t key
    int32_t val

ctypedef struct HMap:     # int64 key (never INT64_MIN) -> int32 value
    HEntry* slots
    uint64_t mask
    int64_t size
    int shift

ctypedef struct Event:    # one EVENT_DTYPE row (13 x int64, same order)
    int64_t kind
    int64_t order_id
    int64_t account_id
    int64_t side
    int64_t price_ticks
    int64_t qty_lots
    int64_t leaves_lots
    int64_t code
    int64_t maker_order_id
    int64_t maker_account_id
    int64_t maker_leaves_lots
    int64_t maker_fee_units
    int64_t taker_fee_units

ctypedef struct IdSlot:   # for sorting an account's orders by id
    int64_t order_id
    int32_t slot


cdef class MatchingEngine:
    cdef object _instrument
    cdef bint _in_batch             # run_batch is executing without the GIL: refuse re-entry from other threads
    # instrument parameters
    cdef int64_t k_units, min_price, max_price, min_qty, max_qty, max_market_qty, min_notional
    cdef int64_t band_up_e8, band_down_e8, maker_fee_e8, taker_fee_e8
    # market state
    cdef int64_t mark_ticks, now_ns, last_ticks, band_buy, band_sell
    # orders
    cdef Order* orders
    cdef int64_t orders_cap
    cdef int32_t orders_free
    cdef int64_t n_orders
    # levels
    cdef Level* levels
    cdef int64_t levels_cap
    cdef int32_t levels_free
    cdef BookSide sides[3]          # indexed by side (1 = bids, 2 = asks); [0] unused
    # indexes
    cdef HMap ids
    cdef HMap acct_ids
    cdef Account* accounts
    cdef int64_t accounts_n, accounts_cap
    cdef int32_t* heap
    cdef int64_t heap_n, heap_cap
    # events
    cdef Event* ev
    cdef int64_t ev_n, ev_cap
    cdef size_t ev_bytes

    # the Python API that compiled callers reach in C (every other method is ``def``)
    cpdef int64_t place(self, int64_t order_id, int64_t account_id, int64_t side, int64_t order_type, int64_t tif,
                        int64_t price_ticks, int64_t qty_lots, int64_t stp, int64_t reduce_only,
                        int64_t expire_ns) except -1
    cpdef int64_t cancel(self, int64_t order_id, int64_t account_id) except -1
    cpdef clear_events(self)
    cpdef list take_event_rows(self)
    cpdef int64_t last_price(self) noexcept
    cpdef int64_t mark(self) noexcept
    cpdef object order(self, order_id)

    # checks and queries
    cdef inline int _check_idle(self) except -1
    cdef inline int64_t _best_price(self, int side) noexcept nogil
    cdef tuple _order_tuple(self, int32_t s)
    cdef list _depth(self, int side, int64_t levels)
    cdef IdSlot* _collect_account(self, int32_t a) except NULL nogil
    # commands (run_batch rows and the Python API)
    cdef inline void _prefetch_row(self, const int64_t* r) noexcept nogil
    cdef int64_t _run_row(self, const int64_t* r) except -1 nogil
    cdef int64_t _place(self, int64_t oid, int64_t acct, int64_t side, int64_t otype, int64_t tif, int64_t price,
            int64_t qty, int64_t stp, int64_t reduce_only, int64_t expire_ns) except -1 nogil
    cdef int64_t _cancel(self, int64_t oid, int64_t acct) except -1 nogil
    cdef int64_t _amend(self, int64_t oid, int64_t acct, int64_t price, int64_t qty) except -1 nogil
    cdef int64_t _cancel_all(self, int64_t acct) except -1 nogil
    cdef void _set_mark(self, int64_t mark_ticks) noexcept nogil
    cdef int64_t _set_time(self, int64_t now_ns) except -1 nogil
    # validation and matching
    cdef int64_t _check_place(self, int64_t oid, int64_t acct, int64_t side, int64_t otype, int64_t tif,
            int64_t price, int64_t qty, int64_t stp, int64_t reduce_only, int64_t expire_ns) noexcept nogil
    cdef inline int64_t _check_qty(self, int64_t qty, bint is_market) noexcept nogil
    cdef inline int64_t _check_price(self, int64_t side, int64_t price) noexcept nogil
    cdef inline bint _would_take(self, int side, int64_t price) noexcept nogil
    cdef int64_t _fillable(self, int side, int64_t limit, int64_t needed, int64_t acct, int stp) noexcept nogil
    cdef int _match(self, int64_t oid, int64_t acct, int side, int has_limit, int64_t limit, int64_t evt_price,
            int stp, int64_t* leaves_ptr) except -1 nogil
    # the book: orders, levels, accounts
    cdef int _cancel_resting(self, int32_t s, int64_t reason) except -1 nogil
    cdef int _add_order(self, int64_t oid, int64_t acct, int side, int64_t price, int64_t leaves, int tif, int stp,
            int reduce_only, int64_t expire_ns) except -1 nogil
    cdef int _link_level(self, int32_t s) except -1 nogil
    cdef void _unlink_level(self, int32_t s) noexcept nogil
    cdef void _forget(self, int32_t s) noexcept nogil
    cdef inline void _remove(self, int32_t s) noexcept nogil
    cdef int32_t _new_level(self, int64_t price) except -1 nogil
    cdef int32_t _new_account(self, int64_t acct) except -1 nogil
    # the GTD expiry heap
    cdef int _heap_push(self, int32_t s) except -1 nogil
    cdef void _heap_remove(self, int64_t i) noexcept nogil
    cdef void _heap_up(self, int64_t i) noexcept nogil
    cdef void _heap_down(self, int64_t i) noexcept nogil
    # the event buffer
    cdef int _reserve_events(self, int64_t cap) except -1 nogil
    cdef inline int _emit(self, int64_t kind, int64_t oid, int64_t acct, int64_t side, int64_t price, int64_t qty,
            int64_t leaves, int64_t code, int64_t maker_oid, int64_t maker_acct, int64_t maker_leaves,
            int64_t maker_fee, int64_t taker_fee) except -1 nogil
