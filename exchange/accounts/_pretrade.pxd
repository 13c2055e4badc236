# cython: language_level=3
"""The compiled pre-trade kernel (``exchange/accounts/_pretrade.pyx``): what the drain, order entry and the
risk monitor ``cimport`` to call its methods directly (a C call instead of a Python method call)."""


cdef class RiskPrice:
    cdef dict books  # symbol -> its compiled matching engine
    cdef object price(self, symbol)


cdef class RiskKernel:
    cdef dict orders  # Risk._orders
    cdef dict order_home  # Risk._order_home
    cdef dict k_units  # symbol -> K (money units per tick·lot)
    cdef dict defaults  # Ledger._defaults: the settings of a never-configured (account, symbol)
    cdef dict keys  # Ledger._keys: symbol -> position side -> the interned key
    cdef dict brackets  # Risk.brackets: symbol -> bracket rows
    cdef dict terms  # symbol -> its Terms (K and the brackets in C: the int64 fast path)
    cdef object risk, mark_of, options, orders_of
    cdef RiskPrice prices  # mark_of when it is the compiled exchange's RiskPrice (called in C), else None
    cdef bint count_gains, open_interest_imf, isolated_at_entry
    cdef object strict, min_mm  # margin.trigger_terms of the profile's liquidation trigger

    cdef object _mark(self, symbol)
    # one position
    cpdef object notional(self, symbol, position)
    cpdef object upnl(self, symbol, position)
    cpdef object position_mm(self, symbol, position)
    cpdef object isolated_mm(self, symbol, position)
    cpdef object part_mm(self, account, symbol, position)
    cpdef bint is_isolated(self, account, symbol)
    cpdef bint is_liquidatable(self, balance_units, mm_units, exposed)
    # account totals and margin parts
    cpdef list cross_positions(self, account, exclude_symbol=*)
    cpdef object cross_balance(self, account)
    cpdef object cross_mm(self, account)
    cpdef tuple part_liquidatable(self, account, symbol, side)
    cpdef tuple part_state(self, account, symbol, side)
    cpdef list margin_calls(self, account, states=*)
    cpdef object bankruptcy_price_ticks(self, account, symbol, side)
    cpdef list part_states(self, account)
    # the pre-trade check, order sums and holds
    cpdef object available(self, account, count_gains=*)
    cpdef object check_opening(self, account, symbol, side, order_side, price_ticks, qty_lots, replacing=*)
    cdef object _leverage(self, account, symbol)
    cdef object _key(self, symbol, side)
    cpdef tuple key_hold(self, account, symbol, side, extra=*, replacing=*, leverage=*)
    cdef tuple _key_hold(self, account, symbol, side, extra_side, extra_price, extra_lots, replacing, leverage)
    cdef tuple _key_hold_py(self, account, symbol, side, extra, replacing, leverage)
    cpdef store_holds(self, account, symbol)
    cdef object sums_of(self, account_id, symbol)
    cdef bint sums_reduce_only(self, sums) except -1
    cdef int store_holds_from(self, account, symbol, sums) except -1
    cpdef refresh_holds(self, account, symbol)
    cpdef track_order(self, symbol, order_id, position_side, state)
    cpdef dict order_sums(self, account_id, symbol)
    cpdef bint reduce_only(self, account_id, symbol)
