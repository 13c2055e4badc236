# cython: language_level=3
"""Compiled twin of the order sums and order-margin holds of :mod:`exchange.accounts.pretrade` (rules §4).

Built to ``exchange.accounts._holds``; only :mod:`exchange._impl` imports it (``holds_kernel``), and
:class:`~exchange.accounts.pretrade.Risk` (``compiled=True``) binds its methods in place of the reference's.
The data stay the reference's: the same dicts (``Risk._orders``: (account, symbol) -> sums,
``Risk._order_home``: order id -> (account, symbol)), the same record tuples, the same ``Account.holds``;
the arithmetic is on Python integers (exact, no overflow), so every value equals the reference's.

Contents
--------
- :class:`OrderSums`      twin of ``pretrade._OrderSums``: one (account, symbol)'s resting orders and sums.
- :class:`Holds`          twin of ``Risk.key_hold``, ``Risk.store_holds``, ``Risk.track_order``,
                          ``Risk.order_sums`` and ``pretrade.sums_hold``. Each O(1) (one or two keys).
"""
from exchange.enums import PositionMode, Side

cdef object BUY = Side.BUY
cdef object HEDGE = PositionMode.HEDGE
cdef object LONG_SIDE, SHORT_SIDE, BOTH_SIDE
from exchange.enums import PositionSide
LONG_SIDE, SHORT_SIDE, BOTH_SIDE = PositionSide.LONG, PositionSide.SHORT, PositionSide.BOTH


cdef class OrderSums:
    """One (account, symbol): its resting orders (id -> record) and their sums per position side
    (``[buy lots, buy cost, sell lots, sell cost, reduce-only buy lots, reduce-only sell lots]``).
    Twin of ``exchange.accounts.pretrade._OrderSums``."""

    cdef public dict orders
    cdef public dict sums

    def __init__(self):
        self.orders = {}
        self.sums = {}

    cpdef add(self, tuple record, object sign):
        """Add (``sign`` = 1) or remove (-1) one record from the sums. O(1)."""
        position_side, side, price_ticks, lots, reduce_only = record
        cdef list sums = self.sums.get(position_side)
        if sums is None:
            sums = [0, 0, 0, 0, 0, 0]
            self.sums[position_side] = sums
        cdef bint buy = side == BUY
        cdef int i
        if reduce_only:
            i = 4 if buy else 5
            sums[i] += sign * lots
        else:
            i = 0 if buy else 2
            sums[i] += sign * lots
            sums[i + 1] += sign * price_ticks * lots


cdef inline object _adding(object notional_units, object lots, object closable_lots):
    """``ceil(N × (lots − closable) / lots)``, 0 when the side only closes (twin of ``pretrade._adding``)."""
    if lots > closable_lots:
        return -(notional_units * (closable_lots - lots) // lots)
    return 0


cpdef tuple sums_hold(object k_units, object leverage, object position_lots, object buy_lots, object buy_cost,
                      object sell_lots, object sell_cost):
    """Twin of :func:`exchange.accounts.pretrade.sums_hold`: ``(hold, adding_buy, adding_sell)``. O(1)."""
    adding_buy = _adding(buy_cost * k_units, buy_lots, -position_lots if position_lots < 0 else 0)
    adding_sell = _adding(sell_cost * k_units, sell_lots, position_lots if position_lots > 0 else 0)
    notional = adding_buy if adding_buy >= adding_sell else adding_sell
    # exchange.accounts.margin.initial_margin: ceil(notional × denominator / numerator), leverage ≥ 1
    if leverage < 1:
        raise ValueError("leverage must be ≥ 1")
    if type(leverage) is int:
        return -((-notional) // leverage), adding_buy, adding_sell
    return -((-(notional * leverage.denominator)) // leverage.numerator), adding_buy, adding_sell


cdef class Holds:
    """The holds methods of one :class:`~exchange.accounts.pretrade.Risk`, over its own dicts (module docstring)."""

    cdef dict orders  # Risk._orders
    cdef dict order_home  # Risk._order_home
    cdef dict k_units  # symbol -> K (money units per tick·lot)
    cdef dict defaults  # Ledger._defaults: the settings of a never-configured (account, symbol)

    def __init__(self, risk):
        self.orders = risk._orders
        self.order_home = risk._order_home
        self.k_units = {symbol: inst.k_units for symbol, inst in risk.instruments.items()}
        self.defaults = risk.ledger._defaults

    cdef object _leverage(self, account, symbol):
        """``Ledger.settings(account, symbol).exact_leverage``."""
        settings = account.settings.get(symbol)
        if settings is None:
            settings = self.defaults[symbol]
        return settings.exact_leverage

    cpdef tuple key_hold(self, account, symbol, side, extra=None, replacing=0, leverage=0):
        """Twin of :meth:`Risk.key_hold`: ``order_hold`` of the key's resting opening orders, without order
        ``replacing`` and with ``extra`` = (side, price, lots), at ``leverage`` (default: the account's). O(1)."""
        cdef OrderSums bucket = self.orders.get((account.account_id, symbol))
        buy_lots = buy_cost = sell_lots = sell_cost = 0
        if bucket is not None:
            sums = bucket.sums.get(side)
            if sums is not None:
                buy_lots, buy_cost, sell_lots, sell_cost = sums[0], sums[1], sums[2], sums[3]
            if replacing:
                replaced = bucket.orders.get(replacing)
                if replaced is not None and replaced[0] == side and not replaced[4]:
                    if replaced[1] == BUY:
                        buy_lots, buy_cost = buy_lots - replaced[3], buy_cost - replaced[2] * replaced[3]
                    else:
                        sell_lots, sell_cost = sell_lots - replaced[3], sell_cost - replaced[2] * replaced[3]
        if extra is not None:
            order_side, price_ticks, lots = extra
            if order_side == BUY:
                buy_lots, buy_cost = buy_lots + lots, buy_cost + price_ticks * lots
            else:
                sell_lots, sell_cost = sell_lots + lots, sell_cost + price_ticks * lots
        position = account.positions.get((symbol, side))
        return sums_hold(self.k_units[symbol], leverage or self._leverage(account, symbol),
                         position.lots if position is not None else 0, buy_lots, buy_cost, sell_lots, sell_cost)

    cpdef store_holds(self, account, symbol):
        """Twin of :meth:`Risk.store_holds`: recompute (from the order sums) and store the holds of the
        account's keys in ``symbol``. O(1)."""
        cdef dict holds = account.holds
        if account.position_mode == HEDGE:
            keys = ((symbol, LONG_SIDE), (symbol, SHORT_SIDE))
        else:
            keys = ((symbol, BOTH_SIDE),)
        for key in keys:
            hold = self.key_hold(account, symbol, key[1])[0]
            if hold:
                holds[key] = hold
            else:
                holds.pop(key, None)

    cpdef track_order(self, symbol, order_id, position_side, state):
        """Twin of :meth:`Risk.track_order`: bring the order sums in line with one order of ``symbol``
        (``state``: the book's ``order(order_id)`` tuple, None once it no longer rests). O(1)."""
        cdef OrderSums bucket
        home = self.order_home.get(order_id)
        record = None if state is None else (position_side, int(state[2]), state[3], state[4], bool(state[7]))
        if home is not None:
            bucket = self.orders[home]
            if bucket.orders[order_id] == record:
                return
            bucket.add(bucket.orders.pop(order_id), -1)
            del self.order_home[order_id]
            if not bucket.orders:
                del self.orders[home]
        if record is not None:
            key = (state[1], symbol)
            bucket = self.orders.get(key)
            if bucket is None:
                bucket = self.orders[key] = OrderSums()
            bucket.orders[order_id] = record
            bucket.add(record, 1)
            self.order_home[order_id] = key

    cpdef dict order_sums(self, account_id, symbol):
        """Twin of :meth:`Risk.order_sums` (read-only)."""
        cdef OrderSums bucket = self.orders.get((account_id, symbol))
        return bucket.sums if bucket is not None else {}
