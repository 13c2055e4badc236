# cython: language_level=3
"""Compiled twin of order entry: the engine's ``PlaceOrder``, ``CancelOrder``, ``AmendOrder`` and ``CancelAll``
handlers (``Exchange._place``, ``_cancel``, ``_amend``, ``_cancel_all``), on their common path.

Built to ``exchange.orders._entry``; only :mod:`exchange._impl` imports it (``entry_kernel``), and the
:class:`~exchange.Exchange` of the compiled implementation makes one :class:`Entry` and binds its four methods
as its handlers. Each runs the reference's checks in the reference's order on the reference's state;
whatever is not the common path (unknown or settled symbol, an order type that is not a plain one,
``close_position``, a position side the account's mode refuses, a conditional order, a cancel or amend of a
waiting conditional order's id, a cancel-all while conditional orders wait in the symbol) is handed, before
anything changed, to the reference method itself. Events and state equal the reference's.

Contents
--------
- :class:`Entry`  ``place``: twin of ``Exchange._place``: field filters, reduce-only / liquidation-mode /
                  pre-trade checks, ``MatchingEngine.place``, the drain (called directly), last-price
                  triggers. O(1) + the match. ``cancel``: twin of ``Exchange._cancel``. O(1) + the drain.
                  ``amend``: twin of ``Exchange._amend`` (``_check_amend`` inline). O(1) + the match.
                  ``cancel_all``: twin of ``Exchange._cancel_all``. O(the account's orders) + the drain.
"""
from exchange._engine cimport ExchangeFields, check_exchange_layout
from exchange._records cimport (AmendOrder as AmendRec, CancelAll as CancelAllRec, CancelOrder as CancelRec,
                                PlaceOrder as PlaceRec, RecordMaker, check_command_layout)
from exchange.accounts._ledger cimport Account as AccountRec, Position as PositionRec, check_layout
from exchange.accounts._positions cimport position_of
from exchange.accounts._pretrade cimport RiskKernel
from exchange.clearing._fills cimport Drain
from exchange.orders._matching cimport MatchingEngine

from exchange.accounts.ledger import EMPTY
from exchange.enums import OrderType, PositionMode, PositionSide, RejectCode, STPMode, Side, TimeInForce, reject_message
from exchange.events import Rejected
from exchange.orders.filters import place_reject_message

check_command_layout()
check_exchange_layout()
check_layout()
cdef dict ORDER_TYPES = {int(member): member for member in OrderType}
cdef dict POSITION_SIDES = {int(member): member for member in PositionSide}
cdef dict SIDES = {int(member): member for member in Side}
cdef frozenset STP_MODES = frozenset(int(member) for member in STPMode)
cdef frozenset TIME_IN_FORCES = frozenset(int(member) for member in TimeInForce)
cdef object STOP = OrderType.STOP
cdef object MARKET = OrderType.MARKET
cdef object LIMIT = OrderType.LIMIT
cdef object HEDGE = PositionMode.HEDGE
cdef object BOTH = PositionSide.BOTH
cdef object LONG = PositionSide.LONG
cdef object SHORT = PositionSide.SHORT
cdef object BUY = Side.BUY
cdef object SELL = Side.SELL
cdef object OK = RejectCode.OK
cdef object REDUCE_ONLY_REJECTED = RejectCode.REDUCE_ONLY_REJECTED
cdef object USER_IN_LIQUIDATION = RejectCode.USER_IN_LIQUIDATION
cdef object REDUCE_ONLY_ORDER_PERMISSION = RejectCode.REDUCE_ONLY_ORDER_PERMISSION
cdef RecordMaker REJECTED = RecordMaker(Rejected)  # (made in C, without the dataclass __init__ frame)


cdef list _rejected(object code, str symbol, object account_id, object order_id, object place=None):
    """``[engine._rejected(code, cmd)]`` (``place``: the PlaceOrder, whose -1102 names the field at fault)."""
    message = reject_message(code) if place is None else place_reject_message(code, place)
    return [REJECTED.make((RejectCode(code), message, symbol, account_id, order_id))]


cdef inline bint _limit_fields_pass(MatchingEngine book, price_ticks, qty_lots):
    """``filters.check_qty`` and ``filters.check_price_range`` of a limit order both pass (the instrument's limits
    read from the book's C fields, which its constructor copied from the instrument)."""
    return not (qty_lots <= 0 or qty_lots < book.min_qty or qty_lots > book.max_qty
                or price_ticks <= 0 or price_ticks < book.min_price or price_ticks > book.max_price)


cdef inline object _closable_code(account, symbol, position_side, side, qty_lots):
    """Twin of the reduce-only branch of ``Exchange._check_order`` (``_closable`` inline): -2022 when an order of
    ``side`` closes fewer than ``qty_lots`` on its position key, else 0."""
    position = position_of(account.positions, (symbol, position_side), EMPTY) if account is not None else None
    lots = (<PositionRec?>position).lots if position is not None else 0
    closable = (-lots if lots < 0 else 0) if side == BUY else (lots if lots > 0 else 0)
    return OK if closable >= qty_lots else REDUCE_ONLY_REJECTED


cdef class Entry:
    """The PlaceOrder, CancelOrder, AmendOrder and CancelAll handlers of one exchange (module docstring). It keeps
    what the exchange sets once in its constructor (books, ledger accounts, instruments, the risk kernel,
    liquidation stage, profile, trigger books, its :class:`~exchange.clearing._fills.Drain`) and reads the rest
    (settled symbols, the next order id, the order sides, the accounts in liquidation) on every call."""

    cdef ExchangeFields ex
    cdef object liquidation, profile
    cdef bint price_rules  # the (frozen) profile has a price precision rule (sig figs or decimals)
    cdef object stp_override  # the profile's STP override (0: none)
    cdef dict books, accounts, instruments, triggers
    cdef Drain drain
    cdef RiskKernel kernel  # the risk stage's compiled kernel: the pre-trade check called directly

    def __init__(self, ex, Drain drain):
        self.ex, self.books, self.accounts, self.instruments = ex, ex._books, ex.ledger.accounts, ex.instruments
        self.liquidation, self.profile, self.triggers = ex.liquidation, ex.profile, ex._triggers
        self.drain, self.kernel = drain, ex.risk.kernel
        self.price_rules = bool(self.profile.price_sig_figs or self.profile.price_decimals)
        self.stp_override = self.profile.stp_override

    cdef list _drained(self, ExchangeFields ex, symbol, order_type):
        """The drain of ``symbol``'s book after an order entered it, then the last-price triggers its fills fire
        (``engine._fire_triggers``; skipped when no conditional order waits: nothing fires)."""
        cdef list events = self.drain.run(symbol, order_type, False, None)
        if self.triggers[symbol]._orders:
            return events + ex._fire_triggers(symbol, events)
        return events

    def place(self, command):
        """Twin of ``Exchange._place(cmd)`` (module docstring). The command's fields, the account's and its
        position's are read from their slots (``exchange._records``, ``exchange.accounts._ledger``)."""
        cdef PlaceRec cmd = command
        cdef AccountRec account
        cdef ExchangeFields ex = self.ex
        symbol = cmd.symbol
        cdef MatchingEngine book = self.books.get(symbol)  # (its place and clear_events called in C)
        order_type = ORDER_TYPES.get(cmd.order_type)
        if book is None or symbol in ex.settled or order_type is None or cmd.close_position or order_type >= STOP:
            return type(ex)._place(ex, cmd)
        account = self.accounts.get(cmd.account_id)
        position_side = cmd.position_side
        if account is not None and account.position_mode == HEDGE:
            if not (position_side == LONG or position_side == SHORT):
                return type(ex)._place(ex, cmd)
        elif not position_side == BOTH:
            return type(ex)._place(ex, cmd)
        position_side = POSITION_SIDES[position_side]
        side, price_ticks, qty_lots, tif, stp = cmd.side, cmd.price_ticks, cmd.qty_lots, cmd.tif, cmd.stp
        cdef bint reduce_only = bool(cmd.reduce_only) or (position_side == LONG and side == SELL) or (
            position_side == SHORT and side == BUY)  # pretrade.closes
        cdef bint market = order_type == MARKET
        code = OK
        # engine._well_formed: side, STP, TIF, then filters.check_qty and filters.check_price_range all pass
        if ((side == BUY or side == SELL) and stp in STP_MODES and (market or tif in TIME_IN_FORCES)
                and (not (qty_lots <= 0 or qty_lots < book.min_qty or qty_lots > book.max_market_qty
                          or qty_lots > book.max_qty) if market
                     else _limit_fields_pass(book, price_ticks, qty_lots))):
            margin_price = ex._market_margin_price(symbol, side) if market else price_ticks
            if self.price_rules:  # else every price passes the precision rule
                code = ex._price_precision(self.instruments[symbol], price_ticks)
            if not code:  # engine._check_order
                if reduce_only:
                    code = _closable_code(account, symbol, position_side, side, qty_lots)
                elif account is not None and account.account_id in self.liquidation.in_liquidation:
                    code = USER_IN_LIQUIDATION  # Liquidator.order_code, placing
                else:
                    code = self.kernel.check_opening(account, symbol, position_side, SIDES[side], margin_price,
                                                     qty_lots, 0)
        order_id = ex.next_order_id
        if not code:
            code = book.place(order_id, cmd.account_id, side, order_type, tif, price_ticks, qty_lots,
                              self.stp_override or stp, reduce_only, cmd.expire_ns)
        if code:
            book.clear_events()
            return _rejected(code, symbol, cmd.account_id, 0, cmd)
        ex.next_order_id = order_id + 1
        ex._position_sides[order_id] = position_side
        return self._drained(ex, symbol, order_type)

    def cancel(self, command):
        """Twin of ``Exchange._cancel(cmd)`` (module docstring)."""
        cdef CancelRec cmd = command
        cdef ExchangeFields ex = self.ex
        symbol = cmd.symbol
        cdef MatchingEngine book = self.books.get(symbol)
        if book is None or cmd.order_id in self.triggers[symbol]._orders:  # (TriggerBook.get without its frame)
            return type(ex)._cancel(ex, cmd)
        code = book.cancel(cmd.order_id, cmd.account_id)
        if code:
            book.clear_events()
            return _rejected(code, symbol, cmd.account_id, cmd.order_id)
        return self.drain.run(symbol, LIMIT, False, None)

    def amend(self, command):
        """Twin of ``Exchange._amend(cmd)`` with ``Exchange._check_amend`` inline (module docstring)."""
        cdef AmendRec cmd = command
        cdef ExchangeFields ex = self.ex
        symbol = cmd.symbol
        cdef MatchingEngine book = self.books.get(symbol)
        order_id = cmd.order_id
        if book is None or symbol in ex.settled or order_id in self.triggers[symbol]._orders:
            return type(ex)._amend(ex, cmd)
        account_id, price_ticks, qty_lots = cmd.account_id, cmd.price_ticks, cmd.qty_lots
        code = OK
        resting = book.order(order_id)  # (order_id, account_id, side, price, leaves, tif, stp, reduce_only, expire)
        # a resting order of this account and new fields that pass the book's filters: the account checks (else
        # the book decides)
        if resting is not None and resting[1] == account_id and _limit_fields_pass(book, price_ticks, qty_lots):
            if self.price_rules:
                code = ex._price_precision(self.instruments[symbol], price_ticks)
            if not code:  # engine._check_order, replacing the order
                account = self.accounts.get(account_id)
                position_side, side = ex._position_sides[order_id], resting[2]
                if resting[7]:
                    code = _closable_code(account, symbol, position_side, side, qty_lots)
                elif account is not None and account_id in self.liquidation.in_liquidation:
                    code = REDUCE_ONLY_ORDER_PERMISSION  # Liquidator.order_code, amending
                else:
                    code = self.kernel.check_opening(account, symbol, position_side, SIDES[side], price_ticks,
                                                     qty_lots, order_id)
        if not code:
            book._check_idle()
            code = book._amend(order_id, account_id, price_ticks, qty_lots)
        if code:
            book.clear_events()
            return _rejected(code, symbol, account_id, order_id)
        return self._drained(ex, symbol, LIMIT)

    def cancel_all(self, command):
        """Twin of ``Exchange._cancel_all(cmd)`` (module docstring): the account's resting orders, in ascending id."""
        cdef CancelAllRec cmd = command
        cdef ExchangeFields ex = self.ex
        symbol = cmd.symbol
        cdef MatchingEngine book = self.books.get(symbol)
        if book is None or self.triggers[symbol]._orders:  # (conditional orders are canceled after the drain)
            return type(ex)._cancel_all(ex, cmd)
        book._check_idle()
        book._cancel_all(cmd.account_id)
        return self.drain.run(symbol, LIMIT, False, None)
