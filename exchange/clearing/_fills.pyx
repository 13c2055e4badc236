# cython: language_level=3
"""Compiled twin of the clearing path of one command: matching rows -> event records -> clearing of fills ->
order sums, reduce-only trim, holds (rules §4, §5, ``docs/matching.md``).

Built to ``exchange.clearing._fills``; only :mod:`exchange._impl` imports it (``fills_kernel``), and the
:class:`~exchange.Exchange` of the compiled implementation binds a :class:`Drain` as its ``_drain``. It works on
the reference's own state (ledger accounts and positions, the risk stage's order sums, the engine's order
sides and touched set) with Python integers, so every value and event equals the reference's.

Contents
--------
- :class:`Market`     what clearing a fill of one symbol reads from the instrument and the ledger (per symbol).
- :func:`clear_fill`  twin of :func:`exchange.clearing.fills.clear_fill`: one side of a fill -> position,
                      realized PnL, fee, isolated margin; ``[PositionChanged]`` (+ ``BalanceChanged``). O(1).
                      :func:`clear_into` the same with the symbol's :class:`Market` kept by the caller, the
                      events appended to the caller's list.
- :class:`Drain`      twin of ``Exchange._drain`` for one exchange (``_fills.pxd`` declares it, for order
                      entry to call ``run`` directly): the book's rows (``MatchingEngine.take_event_rows``) in
                      order, each fill cleared as it comes, then the order sums of every order seen, the trim
                      of the accounts' reduce-only orders (the engine's ``_trim_reduce_only``, called only
                      when they have some), the order sides of orders gone, the holds of the accounts seen
                      (each account's order sums read once for its trim test and its holds).
                      O(rows + orders and accounts seen).
"""
from cpython.set cimport PySet_Add, PySet_Discard
from exchange._engine cimport check_exchange_layout, touch
from exchange._records cimport RecordMaker
from exchange.accounts._ledger cimport (Account as AccountRec, Position as PositionRec, SymbolSettings as SettingsRec,
                                        check_layout)
from exchange.accounts._margin cimport initial_margin, settings_of
from exchange.accounts._positions cimport drop as drop_position, position_of, store as store_position
from exchange.orders._matching cimport MatchingEngine

import dataclasses

from exchange.accounts.ledger import EMPTY, Position
from exchange.enums import (BalanceReason, CancelReason, EventKind, MarginMode, OrderType, PositionMode, PositionSide,
                            Side)
from exchange.events import BalanceChanged, Fill, OrderAccepted, OrderAmended, OrderCanceled, PositionChanged

cdef object ISOLATED = MarginMode.ISOLATED
cdef object TRADE = BalanceReason.TRADE
cdef object LIMIT = OrderType.LIMIT
cdef object HEDGE = PositionMode.HEDGE
cdef object BOTH = PositionSide.BOTH, LONG = PositionSide.LONG, SHORT = PositionSide.SHORT
cdef dict SIDES = {int(member): member for member in Side}
cdef dict REASONS = {int(member): member for member in CancelReason}
cdef long long FILL_KIND = EventKind.FILL, CANCELED_KIND = EventKind.CANCELED
cdef long long ACCEPTED_KIND = EventKind.ACCEPTED, AMENDED_KIND = EventKind.AMENDED
cdef long long BUY_SIDE = Side.BUY, SELL_SIDE = Side.SELL


cdef bint _position_fields():
    """Check that ``Position.__new__`` plus zeroed fields is ``Position()``: a slotted dataclass of the three
    fields, each defaulting to 0, whose ``__init__`` only stores them."""
    fields = dataclasses.fields(Position)
    assert [f.name for f in fields] == ["lots", "entry_cost", "isolated_margin_units"], fields
    assert all(f.default == 0 and f.init for f in fields) and "__slots__" in vars(Position), Position
    assert not hasattr(Position, "__post_init__"), Position
    return True


_position_fields()
check_exchange_layout()
check_layout()
cdef RecordMaker FILL = RecordMaker(Fill), CANCELED = RecordMaker(OrderCanceled)
cdef RecordMaker ACCEPTED = RecordMaker(OrderAccepted), AMENDED = RecordMaker(OrderAmended)
cdef RecordMaker POSITION_CHANGED = RecordMaker(PositionChanged), BALANCE_CHANGED = RecordMaker(BalanceChanged)


cdef inline object _side(object value):
    member = SIDES.get(value)
    return member if member is not None else Side(value)


cdef class Market:
    """What clearing a fill of one symbol reads from its instrument and the ledger: the symbol, K, the ledger's
    interned position keys and holders set of the symbol and its default settings (fixed for the ledger's life:
    the drain and the liquidation stage keep one per symbol)."""

    def __init__(self, ledger, inst):
        self.symbol, self.k = inst.symbol, inst.k_units
        self.keys, self.holders = ledger._keys[inst.symbol], ledger.holders[inst.symbol]
        self.defaults = ledger._defaults


cpdef list clear_fill(ledger, inst, account, position_side, bint buy, object price_ticks, object qty_lots,
                      object fee_units):
    """Twin of :func:`exchange.clearing.fills.clear_fill` (same arguments, same state changes, same events)."""
    cdef list events = []
    clear_into(events, ledger, Market(ledger, inst), account, position_side, buy, price_ticks, qty_lots, fee_units)
    return events


cdef int clear_into(list events, ledger, Market market, account_obj, position_side, bint buy, object price_ticks,
                    object qty_lots, object fee_units) except -1:
    """:func:`clear_fill`, its events appended to ``events`` (no list of its own). The account, its position and
    settings are read and written through their slots (:mod:`exchange.accounts._ledger`). O(1)."""
    cdef AccountRec account = <AccountRec?>account_obj  # (None: TypeError)
    cdef PositionRec position
    symbol, k = market.symbol, market.k
    cdef SettingsRec settings = settings_of(account, symbol, EMPTY, market.defaults)  # Ledger.settings
    cdef bint isolated = settings.margin_mode == ISOLATED
    cdef dict keys = market.keys
    key = keys[position_side]  # Ledger.key: the interned key
    positions = account.positions
    found = position_of(positions, key, EMPTY)
    if found is None:  # Position() without its dataclass __init__ frame (checked at import: _position_fields);
        found = Position.__new__(Position)  # its slots are still empty: set through the descriptors
        found.lots = found.entry_cost = found.isolated_margin_units = 0
    position = found
    wallet_before = account.wallet_units
    realized = 0
    opening = qty_lots
    lots = position.lots
    if lots and (lots > 0) != buy:
        held = lots if lots > 0 else -lots
        closing = qty_lots if qty_lots < held else held
        sign = 1 if lots > 0 else -1
        removed = -((-(position.entry_cost * closing)) // held)  # div_ceil
        realized = (sign * price_ticks * closing - removed) * k
        position.lots = lots - sign * closing
        position.entry_cost = position.entry_cost - removed
        if isolated:  # fills._settle
            position.isolated_margin_units = position.isolated_margin_units + (realized - fee_units)
        else:
            account.wallet_units = account.wallet_units + (realized - fee_units)
        if isolated and position.lots == 0:  # fills._return_isolated
            left = position.isolated_margin_units
            position.isolated_margin_units = 0
            (account if left >= 0 else ledger.fund_account(symbol)).wallet_units += left
        opening = qty_lots - closing
    if opening:
        signed = opening if buy else -opening
        position.lots = position.lots + signed
        position.entry_cost = position.entry_cost + price_ticks * signed
        if isolated:
            margin = initial_margin(price_ticks * opening * k,
                                    settings.leverage if not settings.imr_e8 else (<object>settings).exact_leverage)
            account.wallet_units = account.wallet_units - margin
            position.isolated_margin_units = position.isolated_margin_units + margin
        if opening == qty_lots:
            account.wallet_units = account.wallet_units - fee_units
    ledger.fee_pool_units += fee_units
    if lots > 0 or position.lots > 0:  # Ledger.store: the open interest
        ledger.long_lots[symbol] += (position.lots if position.lots > 0 else 0) - (lots if lots > 0 else 0)
    if position.lots:  # Ledger.store (the compiled ledger's compact positions, exchange.accounts._positions)
        store_position(account, key, position, EMPTY)
        PySet_Add(market.holders, account.account_id)
    else:
        assert position.entry_cost == 0 and position.isolated_margin_units == 0, f"residue on a closed {key}"
        drop_position(account, key, EMPTY)
        positions = account.positions  # Account.positions_in(symbol) is empty: none of its keys is held
        if positions is EMPTY or not (
                (keys[LONG] in positions or keys[SHORT] in positions) if account.position_mode == HEDGE
                else keys[BOTH] in positions):
            PySet_Discard(market.holders, account.account_id)
    events.append(POSITION_CHANGED.make((
        symbol, account.account_id, position_side, position.lots, position.entry_cost, position.isolated_margin_units,
        realized)))
    if account.wallet_units != wallet_before:
        events.append(BALANCE_CHANGED.make((
            account.account_id, account.wallet_units - wallet_before, account.wallet_units, TRADE)))
    return 0


cdef class Drain:
    """Twin of ``Exchange._drain(symbol, order_type, skip_accepted, on_taker_fill)`` (module docstring) for one
    exchange. It keeps what the exchange sets once in its constructor (books, ledger and its accounts dict,
    each symbol's :class:`Market`, the risk stage's kernel, trigger books) and reads the rest (the order sides,
    which a restore replaces, and the touched set) on every call."""

    def __init__(self, ex):
        self.ex, self.books, self.ledger, self.accounts = ex, ex._books, ex.ledger, ex.ledger.accounts
        self.markets = {symbol: Market(ex.ledger, inst) for symbol, inst in ex.instruments.items()}
        self.kernel = ex.risk.kernel
        self.triggers = ex._triggers

    def __call__(self, symbol, order_type=LIMIT, skip_accepted=False, on_taker_fill=None):
        return self.run(symbol, order_type, skip_accepted, on_taker_fill)

    cpdef list run(self, symbol, order_type=LIMIT, bint skip_accepted=False, on_taker_fill=None):
        """The drain of ``symbol``'s book (see :meth:`__call__`)."""
        cdef list events = []
        cdef set accounts = set()
        cdef set order_ids = set()
        cdef tuple row
        cdef long long kind
        cdef ExchangeFields ex = self.ex
        cdef MatchingEngine book = self.books[symbol]  # (its take_event_rows and order called in C)
        ledger = self.ledger
        cdef dict ledger_accounts = self.accounts
        cdef dict position_sides = ex._position_sides
        cdef Market market = self.markets[symbol]
        for row in book.take_event_rows():
            kind = row[0]
            accounts.add(row[2])
            order_ids.add(row[1])
            if kind == FILL_KIND:
                ex._order_only = False
                taker_side = _side(row[3])
                fill = FILL.make((symbol, row[4], row[5], row[1], row[2], taker_side, row[6], row[8],
                                                   row[9], row[10], 0 if on_taker_fill else row[12], row[11]))
                accounts.add(row[9])
                order_ids.add(row[8])
                events.append(fill)
                if on_taker_fill:
                    events += on_taker_fill(fill)
                clear_into(events, ledger, market, ledger_accounts[row[2]], position_sides[row[1]],
                            taker_side == BUY_SIDE, row[4], row[5], fill.taker_fee_units)
                clear_into(events, ledger, market, ledger_accounts[row[9]], position_sides[row[8]],
                            taker_side == SELL_SIDE, row[4], row[5], row[11])
            elif kind == CANCELED_KIND:
                reason = REASONS.get(row[7])
                events.append(CANCELED.make((
                    symbol, row[1], row[2], _side(row[3]), row[4], row[5],
                    reason if reason is not None else CancelReason(row[7]))))
            elif kind == ACCEPTED_KIND:
                if not skip_accepted:
                    events.append(ACCEPTED.make((
                        symbol, row[1], row[2], _side(row[3]), order_type, row[4], row[5])))
            elif kind == AMENDED_KIND:
                events.append(AMENDED.make((
                    symbol, row[1], row[2], _side(row[3]), row[4], row[6], bool(row[7]))))
            else:  # a REJECTED row only appears with a non-zero return code, handled by the caller
                raise AssertionError(f"unexpected matching row {row}")
        cdef RiskKernel kernel = self.kernel  # the compiled Risk's kernel: its methods called in C
        gone = None  # orders that no longer rest; the trim only removes resting orders, and forgets them itself
        for order_id in order_ids:
            state = book.order(order_id)
            kernel.track_order(symbol, order_id, position_sides.get(order_id), state)
            if state is None:
                if gone is None:
                    gone = [order_id]
                else:
                    gone.append(order_id)
        ordered = accounts if len(accounts) < 2 else sorted(accounts)  # ascending ids (one: no list to build)
        cdef list sums = []  # each account's order sums in the symbol, read once for the trim test and its holds
        for account_id in ordered:
            found = kernel.sums_of(account_id, symbol)
            if kernel.sums_reduce_only(found):  # a reduce-only order: the engine's trim decides (else a no-op)
                events += ex._trim_reduce_only(symbol, account_id)
                # the trim changed this account's reduce-only orders only (they hold no margin, so the sums its
                # holds read did not move; read again all the same, to hold what store_holds would read)
                found = kernel.sums_of(account_id, symbol)
            sums.append(found)
        if gone is not None:
            triggers = self.triggers[symbol]._orders  # TriggerBook's dict: `in` without its __contains__ frame
            for order_id in gone:
                if order_id in position_sides and order_id not in triggers:
                    del position_sides[order_id]
        touched = ex._touched  # a Touched
        cdef Py_ssize_t i = 0
        for account_id in ordered:
            account = ledger_accounts.get(account_id)
            if account is not None:
                kernel.store_holds_from(account, symbol, sums[i])
                touch(touched, account_id)
            i += 1
        return events
