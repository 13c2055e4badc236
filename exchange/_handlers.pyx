# cython: language_level=3
"""Compiled twin of the engine's own handlers of prices, money and account settings: ``SetMarkPrice``,
``SetIndexPrice``, ``Deposit``, ``Withdraw``, ``FundInsurance``, ``SetPositionMode``, ``SetMarginMode``,
``SetLeverage``, ``SetInitialMarginRate`` and ``AdjustIsolatedMargin`` (``Exchange._set_mark`` with ``_move_mark``,
``_set_index``, ``_deposit`` and ``_withdraw`` with ``_credit``, ``_fund_insurance``, ``_set_position_mode``,
``_set_margin_mode``, ``_set_leverage`` and ``_set_initial_margin_rate`` with ``_change_leverage``,
``_adjust_isolated_margin``).

Built to ``exchange._handlers``; only :mod:`exchange._impl` imports it (``handlers_kernel``), and the
:class:`~exchange.Exchange` of the compiled implementation makes one :class:`Handlers` and binds its methods as its
handlers. Each runs the reference's checks in the reference's order on the reference's state (the risk kernel's
twins of the risk stage's methods); a command the reference refuses (unknown or settled symbol, a price outside the
symbol's, a deposit past the venue's money bound, a withdrawal past the withdrawable balance, a setting equal to the
current one, out of range or against the account's margin, a margin move the position or the wallet cannot take)
goes, before anything changed, to the reference method itself, which says why. A margin-mode or position-mode
switch of an account with a position or an open order in what it switches goes to the reference as well (the
refusals, and the switch that moves isolated margin in); the compiled path is the account configured before it
trades. Events and state equal the reference's.

Contents
--------
- :class:`Handlers`  ``set_mark``: the book's mark and price band, the monitor's marked symbols (twin of
                     ``RiskMonitor.mark_moved``), the mark-price triggers (only when conditional orders wait in the
                     symbol). O(1) without them. ``deposit``, ``withdraw``: the wallet, the ledger's money totals,
                     the touched set. O(1); a withdrawal O(the account's positions) for
                     its withdrawable balance. ``fund_insurance``: the fund's account and history. O(1).
                     ``set_index``: the index observation (``Prices.observe_index``),
                     then the mark it gives as ``set_mark`` moves it. O(expired basis samples).
                     ``set_position_mode``, ``set_margin_mode``, ``set_leverage``, ``set_initial_margin_rate``:
                     the settings, the account's holds in the symbol (leverage), the touched set. O(symbols) for
                     the position mode, O(1) otherwise; O(the reference's) when handed to it.
                     ``adjust_isolated_margin``: the position's isolated margin and the wallet. O(the account's
                     positions) for the available balance.
"""
from cpython.set cimport PySet_Add, PySet_Discard
from exchange._engine cimport ExchangeFields, check_exchange_layout, touch
from exchange._records cimport RecordMaker
from exchange.accounts._ledger cimport Account as AccountRec, Position as PositionRec, check_layout
from exchange.accounts._margin cimport initial_margin, settings_of
from exchange.accounts._positions cimport position_keys, position_of
from exchange.accounts._pretrade cimport RiskKernel
from exchange.liquidation._monitor cimport MonitorFields, check_monitor_layout
from exchange.orders._matching cimport MatchingEngine

from fractions import Fraction

from exchange.accounts.ledger import EMPTY
from exchange.accounts.margin import max_leverage
from exchange.enums import BalanceReason, InsuranceReason, MarginMode, PositionMode, PositionSide, WorkingType
from exchange.events import (BalanceChanged, IndexPriceChanged, InitialMarginRateChanged, LeverageChanged,
                             MarginModeChanged, MarkPriceChanged, PositionChanged, PositionModeChanged)
from exchange.units import E8 as E8_UNITS, MAX_ABS_VALUE

check_exchange_layout()
check_monitor_layout()
check_layout()
cdef object DEPOSIT = BalanceReason.DEPOSIT, WITHDRAW = BalanceReason.WITHDRAW
cdef object MARK_PRICE = WorkingType.MARK_PRICE
cdef object MONEY_BOUND = MAX_ABS_VALUE
cdef RecordMaker MARK_CHANGED = RecordMaker(MarkPriceChanged), BALANCE_CHANGED = RecordMaker(BalanceChanged)
cdef RecordMaker INDEX_CHANGED = RecordMaker(IndexPriceChanged), MODE_CHANGED = RecordMaker(PositionModeChanged)
cdef RecordMaker MARGIN_MODE_CHANGED = RecordMaker(MarginModeChanged), LEVERAGE_CHANGED = RecordMaker(LeverageChanged)
cdef RecordMaker RATE_CHANGED = RecordMaker(InitialMarginRateChanged), POSITION_CHANGED = RecordMaker(PositionChanged)
cdef dict POSITION_SIDES = {int(s): s for s in PositionSide}
cdef object MARGIN_TRANSFER = BalanceReason.MARGIN_TRANSFER, SEED = InsuranceReason.SEED
cdef dict POSITION_MODES = {int(m): m for m in PositionMode}, MARGIN_MODES = {int(m): m for m in MarginMode}
cdef object ONE_WAY = PositionMode.ONE_WAY, ISOLATED = MarginMode.ISOLATED
cdef object EMPTY_MAPPING = EMPTY, E8 = E8_UNITS


cdef class Handlers:
    """The handlers of prices, money and settings of one exchange (module docstring). It keeps what the exchange
    sets once in its constructor (books, trigger books, instruments, prices, ledger and its accounts, holders,
    default settings and keys, the risk monitor, the risk stage and its kernel, the insurance funds) and reads the
    rest (settled symbols, the touched set, the time) on every call."""

    cdef ExchangeFields ex
    cdef dict books, triggers, accounts, instruments, holders, defaults, keys
    cdef object ledger, prices, risk, funds
    cdef MonitorFields monitor
    cdef RiskKernel kernel

    def __init__(self, ex):
        self.ex, self.books, self.triggers, self.instruments = ex, ex._books, ex._triggers, ex.instruments
        self.ledger, self.accounts, self.prices = ex.ledger, ex.ledger.accounts, ex.prices
        self.holders, self.defaults, self.keys = ex.ledger.holders, ex.ledger._defaults, ex.ledger._keys
        self.monitor, self.risk, self.kernel = ex.monitor, ex.risk, ex.risk.kernel
        self.funds = ex.liquidation.funds

    def set_mark(self, command):
        """Twin of ``Exchange._set_mark(cmd)``."""
        cdef ExchangeFields ex = self.ex
        symbol, mark_ticks = command.symbol, command.mark_ticks
        cdef MatchingEngine book = self._priced_book(ex, symbol, mark_ticks)
        if book is None:
            return type(ex)._set_mark(ex, command)  # (its refusal)
        return self._move_mark(ex, book, symbol, mark_ticks)

    cdef MatchingEngine _priced_book(self, ExchangeFields ex, symbol, ticks):
        """The book of ``symbol`` when it trades and ``ticks`` is one of its prices (``Exchange._trading_book`` and
        ``_valid_price``), else None: the reference refuses the command."""
        cdef MatchingEngine book = self.books.get(symbol)
        if book is None or symbol in ex.settled or not (isinstance(ticks, int) and 1 <= ticks <= book.max_price):
            return None
        return book

    cdef list _move_mark(self, ExchangeFields ex, MatchingEngine book, symbol, mark_ticks):
        """Twin of ``Exchange._move_mark`` (``RiskMonitor.mark_moved`` inline)."""
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

    def set_index(self, command):
        """Twin of ``Exchange._set_index(cmd)``."""
        cdef ExchangeFields ex = self.ex
        symbol, index_ticks = command.symbol, command.index_ticks
        cdef MatchingEngine book = self._priced_book(ex, symbol, index_ticks)
        if book is None:
            return type(ex)._set_index(ex, command)  # (its refusal)
        mark = self.prices.observe_index(symbol, index_ticks, (<object>ex).now_ns, book.best_bid(), book.best_ask(),
                                         book.last_ticks)
        cdef list events = [INDEX_CHANGED.make((symbol, index_ticks))]
        if mark is not None and mark != book.mark_ticks:
            events += self._move_mark(ex, book, symbol, mark)
        return events

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

    def fund_insurance(self, command):
        """Twin of ``Exchange._fund_insurance(cmd)``: the fund's account credited (``InsuranceFunds.move``), counted
        as a deposit, its history (``InsuranceFunds.sync``). An unknown symbol or an amount past the money bound
        goes to the reference."""
        cdef ExchangeFields ex = self.ex
        symbol, amount = command.symbol, command.amount_units
        ledger = self.ledger
        if symbol not in self.instruments or amount > MONEY_BOUND - ledger.money_in_units():
            return type(ex)._fund_insurance(ex, command)  # (its refusal)
        ledger.deposits_units += amount
        self.funds.move(symbol, amount)
        return self.funds.sync(SEED)

    # -- account settings (the common path: nothing open in what the setting changes) ------------------------
    def set_position_mode(self, command):
        """Twin of ``Exchange._set_position_mode(cmd)``: an account with no position and no open order (resting or
        conditional) in any symbol switches; anything else goes to the reference."""
        cdef ExchangeFields ex = self.ex
        account_id = command.account_id
        mode = POSITION_MODES.get(command.position_mode)
        account = self.accounts.get(account_id)
        current = (<AccountRec>account).position_mode if account is not None else ONE_WAY
        if mode is None or mode == current or (account is not None and (<AccountRec>account).positions):
            return type(ex)._set_position_mode(ex, command)
        for symbol in self.instruments:
            if self._has_open_orders(account_id, symbol):
                return type(ex)._set_position_mode(ex, command)
        if account is None:
            account = self.ledger.open(account_id)
        (<AccountRec>account).position_mode = mode
        touch(ex._touched, account_id)
        return [MODE_CHANGED.make((account_id, mode))]

    def set_margin_mode(self, command):
        """Twin of ``Exchange._set_margin_mode(cmd)``: a switch of a symbol in which the account holds no position
        and no open order, moving no isolated margin; anything else goes to the reference."""
        cdef ExchangeFields ex = self.ex
        account_id, symbol = command.account_id, command.symbol
        mode = MARGIN_MODES.get(command.margin_mode)
        if mode is None or symbol not in self.instruments or command.isolated_margin_units != 0:
            return type(ex)._set_margin_mode(ex, command)
        account = self.accounts.get(account_id)
        settings = self._settings(account, symbol)
        if (mode == settings.margin_mode or account_id in <set>self.holders[symbol]
                or self._has_open_orders(account_id, symbol)):
            return type(ex)._set_margin_mode(ex, command)
        if account is None:
            account = self.ledger.open(account_id)
        self.ledger.set_settings(account, symbol, mode, settings.leverage, settings.imr_e8)
        touch(ex._touched, account_id)
        return [MARGIN_MODE_CHANGED.make((account_id, symbol, mode))]

    def set_leverage(self, command):
        """Twin of ``Exchange._set_leverage(cmd)`` (``_change_leverage``: :meth:`_change`); a refusal goes to the
        reference."""
        cdef ExchangeFields ex = self.ex
        account_id, symbol, leverage = command.account_id, command.symbol, command.leverage
        inst = self.instruments.get(symbol)
        if inst is None or not (type(leverage) is int and 1 <= leverage <= inst.max_leverage) or not self._change(
                ex, account_id, symbol, leverage, 0):
            return type(ex)._set_leverage(ex, command)  # (its refusal)
        return [LEVERAGE_CHANGED.make((account_id, symbol, leverage))]

    def set_initial_margin_rate(self, command):
        """Twin of ``Exchange._set_initial_margin_rate(cmd)`` (as :meth:`set_leverage`)."""
        cdef ExchangeFields ex = self.ex
        account_id, symbol, imr_e8 = command.account_id, command.symbol, command.imr_e8
        inst = self.instruments.get(symbol)
        if inst is None or not (type(imr_e8) is int and 0 < imr_e8 <= E8 and imr_e8 * inst.max_leverage >= E8):
            return type(ex)._set_initial_margin_rate(ex, command)  # (its refusal)
        leverage, rest = divmod(E8, imr_e8)
        if not self._change(ex, account_id, symbol, leverage, imr_e8 if rest else 0):
            return type(ex)._set_initial_margin_rate(ex, command)  # (its refusal)
        return [RATE_CHANGED.make((account_id, symbol, imr_e8, leverage))]

    def adjust_isolated_margin(self, command):
        """Twin of ``Exchange._adjust_isolated_margin(cmd)``: margin added to (at most the available balance) or
        removed from (the position keeping its IM, unrealized losses counted) an open isolated position; every
        refusal (-1121, -4061, -4049, -4054, -4050, -4051) goes to the reference."""
        cdef ExchangeFields ex = self.ex
        account_id, symbol, delta = command.account_id, command.symbol, command.delta_units
        side = POSITION_SIDES.get(command.position_side)
        account = self.accounts.get(account_id)
        if account is None or side is None or symbol not in self.instruments or type(delta) is not int:
            return type(ex)._adjust_isolated_margin(ex, command)
        keys = self._keys(account, symbol)
        found = None
        for key in keys:  # Exchange._side_matches_mode, then Ledger.position
            if key[1] is side:
                found = position_of((<AccountRec>account).positions, key, EMPTY_MAPPING)
                break
        else:
            return type(ex)._adjust_isolated_margin(ex, command)
        if found is None or not self.kernel.is_isolated(account, symbol) or not (<PositionRec>found).lots:
            return type(ex)._adjust_isolated_margin(ex, command)
        cdef PositionRec position = <PositionRec>found
        if delta > 0 and delta > self.kernel.available(account):
            return type(ex)._adjust_isolated_margin(ex, command)
        if delta < 0 and position.isolated_margin_units + delta + min(0, self.kernel.upnl(symbol, position)) < \
                self._position_im(account, symbol, position):
            return type(ex)._adjust_isolated_margin(ex, command)
        position.isolated_margin_units = position.isolated_margin_units + delta
        changed = POSITION_CHANGED.make((symbol, account_id, side, position.lots, position.entry_cost,
                                         position.isolated_margin_units, 0))
        return [changed, self._credit(ex, account, -delta, MARGIN_TRANSFER)]

    cdef object _position_im(self, account, symbol, position):
        """Twin of ``Risk.position_im``: the IM of the position at the account's exact leverage in ``symbol``."""
        if self.kernel.open_interest_imf:
            return self.risk.position_im(account, symbol, position)
        leverage = (<object>self._settings(account, symbol)).exact_leverage
        return initial_margin(self.kernel.notional(symbol, position), leverage)

    cdef object _settings(self, account, symbol):
        """``Ledger.settings(account, symbol)`` (``account`` may be None). O(1)."""
        if account is None:
            return self.defaults[symbol]
        return settings_of(account, symbol, EMPTY_MAPPING, self.defaults)

    cdef bint _has_open_orders(self, account_id, symbol) except -1:
        """Twin of ``Exchange._has_open_orders``: a resting or a conditional order of the account in ``symbol``."""
        if (<MatchingEngine>self.books[symbol]).orders_of(account_id):
            return True
        triggers = self.triggers[symbol]
        return bool(triggers._orders) and bool(triggers.orders_of(account_id))

    cdef bint _change(self, ExchangeFields ex, account_id, symbol, leverage, imr_e8) except -1:
        """Twin of ``Exchange._change_leverage``: store the leverage (``imr_e8`` > 0: the exact rate) and return True,
        or return False, changing nothing, when it refuses it (-4161, -2027, -2028: the caller hands the command to
        the reference, which says which). An account with no position and no resting order in ``symbol`` passes
        every check by construction (nothing to lower, no exposure, no requirement), and its holds there stay
        none. O(1)."""
        account = self.accounts.get(account_id)
        settings = self._settings(account, symbol)
        cdef bint idle = account_id not in <set>self.holders[symbol] and self.kernel.sums_of(account_id, symbol) is None
        if account is not None and not idle and self._refused(account, symbol, settings, _exact(leverage, imr_e8)):
            return False
        if account is None:
            account = self.ledger.open(account_id)
        self.ledger.set_settings(account, symbol, settings.margin_mode, leverage, imr_e8)
        if idle:  # Risk.refresh_holds without a resting order: the holds from no order sums
            self.kernel.store_holds_from(account, symbol, None)
        else:
            self.kernel.refresh_holds(account, symbol)
        touch(ex._touched, account_id)
        return True

    cdef bint _refused(self, account, symbol, settings, exact) except -1:
        """``_change_leverage``'s checks of an account with a position or a resting order in ``symbol``, at the
        exact leverage ``exact``, on the risk kernel (``Risk.max_exposure``, ``bracket_max_leverage``,
        ``symbol_requirement`` and ``available``, in the reference's order). O(1)."""
        current = (<object>settings).exact_leverage
        if exact < current and settings.margin_mode == ISOLATED and account.account_id in <set>self.holders[symbol]:
            return True  # -4161
        keys = self._keys(account, symbol)
        exposure = 0  # Risk.max_exposure
        for key in keys:
            _, adding_buy, adding_sell = self.kernel.key_hold(account, symbol, key[1])
            position = position_of((<AccountRec>account).positions, key, EMPTY_MAPPING)
            lots = 0 if position is None else (<PositionRec>position).lots
            held = 0 if position is None else self.kernel.notional(symbol, position)
            exposure = max(exposure, adding_buy + (held if lots > 0 else 0), adding_sell + (held if lots < 0 else 0))
        if exposure and max_leverage(self.kernel.brackets[symbol], exposure) < exact:
            return True  # -2027
        raised = self._requirement(account, symbol, keys, exact) - self._requirement(account, symbol, keys, current)
        return raised > 0 and self.kernel.available(account) - raised < 0  # -2028

    cdef object _requirement(self, account, symbol, tuple keys, leverage):
        """Twin of ``Risk.symbol_requirement``: the holds of the keys at ``leverage`` plus the IM of the cross
        positions. O(1)."""
        held = 0
        for key in keys:
            held += self.kernel.key_hold(account, symbol, key[1], None, 0, leverage)[0]
        if self.kernel.is_isolated(account, symbol):
            return held
        for key in keys:
            position = position_of((<AccountRec>account).positions, key, EMPTY_MAPPING)
            if position is not None:
                notional = self.kernel.notional(symbol, position)
                held += self.risk.initial_margin(symbol, notional, leverage) if self.kernel.open_interest_imf else \
                    initial_margin(notional, leverage)
        return held

    cdef tuple _keys(self, account, symbol):
        """``Account.position_keys(symbol)``, the ledger's interned keys. O(1)."""
        return position_keys((<AccountRec>account).position_mode, self.keys[symbol])


cdef object _exact(leverage, imr_e8):
    """``SymbolSettings(mode, leverage, imr_e8).exact_leverage``: ``leverage``, or exactly ``10⁸ / imr_e8`` (an int
    when it is one). O(1)."""
    if not imr_e8:
        return leverage
    exact = Fraction(E8, imr_e8)
    return exact.numerator if exact.denominator == 1 else exact
