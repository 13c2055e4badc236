# cython: language_level=3
"""Compiled twin of the engine's own handlers of a mark and of money: ``SetMarkPrice``, ``Deposit`` and ``Withdraw``
(``Exchange._set_mark`` with ``_move_mark``, ``Exchange._deposit`` and ``Exchange._withdraw`` with ``_credit``), on
their common path.

Built to ``exchange._handlers``; only :mod:`exchange._impl` imports it (``handlers_kernel``), and the
:class:`~exchange.Exchange` of the compiled implementation makes one :class:`Handlers` and binds its methods as its
handlers. Each runs the reference's checks in the reference's order on the reference's state; a command the
reference refuses (unknown or settled symbol, a mark outside the symbol's prices, a deposit past the venue's money
bound, a withdrawal of an unknown account or past the withdrawable balance) goes, before anything changed, to the
reference method itself, which says why. Events and state equal the reference's.

Contents
--------
- :class:`Handlers`  ``set_mark``: the book's mark and price band, the monitor's marked symbols (twin of
                     ``RiskMonitor.mark_moved``), the mark-price triggers (only when conditional orders wait in the
                     symbol). O(1) without them. ``deposit``, ``withdraw``: the wallet, the ledger's money totals,
                     the touched set. O(1); a withdrawal O(the account's positions) for
                     its withdrawable balance.
"""
from cpython.set cimport PySet_Add, PySet_Discard
from exchange._engine cimport ExchangeFields, check_exchange_layout, touch
from exchange._records cimport RecordMaker
from exchange.accounts._ledger cimport Account as AccountRec, check_layout
from exchange.accounts._pretrade cimport RiskKernel
from exchange.liquidation._monitor cimport MonitorFields, check_monitor_layout
from exchange.orders._matching cimport MatchingEngine

from exchange.enums import BalanceReason, WorkingType
from exchange.events import BalanceChanged, MarkPriceChanged
from exchange.units import MAX_ABS_VALUE

check_exchange_layout()
check_monitor_layout()
check_layout()
cdef object DEPOSIT = BalanceReason.DEPOSIT, WITHDRAW = BalanceReason.WITHDRAW
cdef object MARK_PRICE = WorkingType.MARK_PRICE
cdef object MONEY_BOUND = MAX_ABS_VALUE
cdef RecordMaker MARK_CHANGED = RecordMaker(MarkPriceChanged), BALANCE_CHANGED = RecordMaker(BalanceChanged)


cdef class Handlers:
    """The SetMarkPrice, Deposit and Withdraw handlers of one exchange (module docstring). It keeps what the
    exchange sets once in its constructor (books, trigger books, ledger and its accounts, the risk monitor, the
    risk kernel) and reads the rest (settled symbols, the touched set) on every call."""

    cdef ExchangeFields ex
    cdef dict books, triggers, accounts
    cdef object ledger
    cdef MonitorFields monitor
    cdef RiskKernel kernel

    def __init__(self, ex):
        self.ex, self.books, self.triggers = ex, ex._books, ex._triggers
        self.ledger, self.accounts = ex.ledger, ex.ledger.accounts
        self.monitor, self.kernel = ex.monitor, ex.risk.kernel

    def set_mark(self, command):
        """Twin of ``Exchange._set_mark(cmd)`` (``_trading_book``, ``_valid_price`` and ``_move_mark`` inline)."""
        cdef ExchangeFields ex = self.ex
        symbol, mark_ticks = command.symbol, command.mark_ticks
        cdef MatchingEngine book = self.books.get(symbol)
        if book is None or symbol in ex.settled or not (
                isinstance(mark_ticks, int) and 1 <= mark_ticks <= book.max_price):  # Exchange._valid_price
            return type(ex)._set_mark(ex, command)  # (its refusal)
        book._check_idle()
        book._set_mark(mark_ticks)
        cdef MonitorFields m = self.monitor  # twin of RiskMonitor.mark_moved
        PySet_Add(m._marked, symbol)
        PySet_Discard(m._unmarked, symbol)
        changed = MARK_CHANGED.make((symbol, mark_ticks))
        triggers = self.triggers[symbol]
        if triggers._orders:  # else no conditional order waits: nothing fires
            return [changed] + ex._run_triggered(symbol, triggers.observe(MARK_PRICE, mark_ticks))
        return [changed]

    def deposit(self, command):
        """Twin of ``Exchange._deposit(cmd)``."""
        cdef ExchangeFields ex = self.ex
        account_id, amount = command.account_id, command.amount_units
        ledger = self.ledger
        if amount > MONEY_BOUND - ledger.money_in_units():
            return type(ex)._deposit(ex, command)  # (its refusal)
        account = self.accounts.get(account_id)
        if account is None:
            account = ledger.open(account_id)
        ledger.deposits_units += amount
        return [self._credit(ex, account, amount, DEPOSIT)]

    def withdraw(self, command):
        """Twin of ``Exchange._withdraw(cmd)`` (``Risk.withdrawable``: the kernel's available balance without
        unrealized gains)."""
        cdef ExchangeFields ex = self.ex
        account_id, amount = command.account_id, command.amount_units
        account = self.accounts.get(account_id)
        if account is None or amount > self.kernel.available(account, False):
            return type(ex)._withdraw(ex, command)  # (its refusal)
        self.ledger.withdrawals_units += amount
        return [self._credit(ex, account, -amount, WITHDRAW)]

    cdef object _credit(self, ExchangeFields ex, account_obj, delta_units, reason):
        """Twin of ``Exchange._credit``: the wallet moves, the account is touched, its ``BalanceChanged``."""
        cdef AccountRec account = <AccountRec?>account_obj
        account.wallet_units = account.wallet_units + delta_units
        touch(ex._touched, account.account_id)
        return BALANCE_CHANGED.make((account.account_id, delta_units, account.wallet_units, reason))
