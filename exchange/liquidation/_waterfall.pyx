# cython: language_level=3
"""Compiled twin of the liquidation waterfall's per-step glue (:class:`exchange.liquidation.waterfall.Liquidator`)
and of the insurance funds' history sync (:class:`exchange.liquidation.insurance.InsuranceFunds`): the Python
frames every liquidation step pays for (the book order, the takeover, the transfers, the order cancels, the
bracket reduction, the bankruptcy price, the fund records).

Built to ``exchange.liquidation._waterfall``; only :mod:`exchange._impl` imports it (``waterfall_kernel``). A
compiled ``Liquidator`` binds :class:`Steps`'s methods in place of its own, and a compiled ``InsuranceFunds``
binds :class:`Funds`'s. They work on the reference's own state (ledger, books, order sides, touched set, the
funds' history) with Python integers and call the same engine and risk methods in the same order, so events
and state equal the reference's. Whatever a twinned method does, its twin must do too.

Contents
--------
- :class:`Funds`  twins of ``InsuranceFunds.sync`` (O(funds)) and ``InsuranceFunds.equity`` (O(fund positions)).
- :class:`Steps`  twins of ``Liquidator.stage`` (with ``sweep`` and ``Exchange.liquidatable`` inlined; dYdX's
                  sweep, the unwind and the release of liquidation mode are the reference's; O(touched accounts)
                  + the liquidations), ``Liquidator._liquidate`` and ``_step`` (dYdX: the reference's, which its block
                  rules keep apart), ``_book``, ``_takeover``, ``_deleverage`` (the ADL queue's order, the
                  fills made in C), ``_transfer`` (O(1) + the drain, the holds
                  refresh), ``cancel_orders`` (O(orders of the account in the symbol)), ``_kept_lots``
                  (O(brackets)) and ``_bankruptcy_ticks`` (O(positions) under the zero-balance rule); the rarer
                  branches (profile-specific bankruptcy rules, the vault, sliced sizes, the loss rule) call the
                  reference's methods.
"""
from exchange._engine cimport ExchangeFields, check_exchange_layout, touch
from exchange._records cimport RecordMaker, untrack, untrack_all
from exchange.accounts._margin cimport margin_ratio_e8
from exchange.accounts._pretrade cimport RiskKernel
from exchange.clearing._fills cimport Market, clear_into
from exchange.liquidation._monitor cimport Stage, check_monitor_layout

from exchange.accounts.ledger import FUND_ACCOUNT_BASE, Position
from exchange.commands import AdvanceTime
from exchange.accounts.margin import sweep_order
from exchange.enums import CancelReason, InsuranceReason, OrderType, PositionSide, Side, STPMode, TimeInForce
from exchange.events import ADLFill, InsuranceFundChanged, LiquidationFill, LiquidationStarted, OrderCanceled
from exchange.profiles import ADLPrice, LiquidationOrder

check_exchange_layout()
check_monitor_layout()
cdef object LIMIT = OrderType.LIMIT, MARKET = OrderType.MARKET
cdef object IOC = TimeInForce.IOC, FOK = TimeInForce.FOK
cdef object LIQUIDATION = CancelReason.LIQUIDATION, ADL = CancelReason.ADL
cdef object AT_BANKRUPTCY = ADLPrice.BANKRUPTCY
# the event records this module makes, each made in C (``RecordMaker``: no dataclass ``__init__`` frame)
cdef RecordMaker ADL_FILL = RecordMaker(ADLFill), CANCELED = RecordMaker(OrderCanceled)
cdef RecordMaker FUND_CHANGED = RecordMaker(InsuranceFundChanged), STARTED = RecordMaker(LiquidationStarted)
cdef RecordMaker TAKEOVER_FILL = RecordMaker(LiquidationFill)
cdef frozenset NO_SKIP = frozenset()
cdef object IOC_AT_BANKRUPTCY = LiquidationOrder.IOC_AT_BANKRUPTCY, LIMIT_AT_BANKRUPTCY = LiquidationOrder.LIMIT_AT_BANKRUPTCY
cdef object FOK_TIER_THEN_TAKEOVER = LiquidationOrder.FOK_TIER_THEN_TAKEOVER
cdef object MARKET_SLICES = LiquidationOrder.MARKET_SLICES
cdef object BUY = Side.BUY, SELL = Side.SELL
cdef object STP_NONE = STPMode.NONE
cdef object BOTH = PositionSide.BOTH
cdef str CROSS = ""  # exchange.accounts.pretrade.CROSS: the cross part's ``symbol``
cdef object TOP_UP = InsuranceReason.TOP_UP, TAKEOVER = InsuranceReason.TAKEOVER, TRADING = InsuranceReason.TRADING
cdef dict SIDES = {int(member): member for member in Side}
cdef object E8 = 10**8


cdef inline object _abs(object value):
    return value if value >= 0 else -value


cdef inline object _open_lots(account, symbol, side):
    """Twin of ``Liquidator._open_lots``: |lots| of the position, 0 when there is none."""
    position = account.positions.get((symbol, side))
    return _abs(position.lots) if position is not None else 0


cdef class Funds:
    """Twins of the per-step methods of one :class:`~exchange.liquidation.insurance.InsuranceFunds`."""

    cdef object funds, ledger
    cdef RecordMaker history_entry  # makes the funds' HistoryEntry records in C
    cdef tuple ids
    cdef dict symbols

    def __init__(self, funds, type history_entry):
        self.funds, self.ledger, self.history_entry = funds, funds.ledger, RecordMaker(history_entry)
        self.ids, self.symbols = funds._ids, funds._symbols  # fixed by the ledger

    cpdef list sync(self, reason):
        """Twin of ``InsuranceFunds.sync``. O(funds)."""
        cdef list events = []
        cdef dict accounts = self.ledger.accounts
        funds = self.funds
        recorded = funds._recorded  # (restore_state rebinds it: read at every call)
        for fund_id in self.ids:
            account = accounts.get(fund_id)
            balance = account.wallet_units if account is not None else 0
            delta = balance - recorded.get(fund_id, 0)
            if delta:
                recorded[fund_id] = balance
                seq, now_ns = funds.clock()
                entry = self.history_entry.make((seq, now_ns, fund_id, delta, balance, reason))
                untrack(entry)  # kept for good, one per liquidation: never walked by the collector (_records.pxd)
                funds.history.append(entry)
                events.append(FUND_CHANGED.make((fund_id, self.symbols[fund_id], delta, balance, reason)))
        return events

    def equity(self, symbol):
        """Twin of ``InsuranceFunds.equity``: balance + Σ uPnL of the fund's positions (integers: any order sums
        the same). O(fund positions)."""
        account = self.ledger.accounts.get(self.ledger.fund_ids[symbol])
        if account is None:
            return 0
        upnl = self.funds.upnl
        equity = account.wallet_units
        for key, position in account.positions.items():
            equity += upnl(key[0], position)
        return equity


cdef class _FillFee:
    """``on_taker_fill`` of a liquidation order: ``Liquidator._fill_fee`` of its part (the reference's lambda)."""

    cdef object fill_fee, account, symbol, side, is_long, bp

    def __init__(self, fill_fee, account, symbol, side, is_long, bp):
        self.fill_fee, self.account, self.symbol, self.side, self.is_long, self.bp = \
            fill_fee, account, symbol, side, is_long, bp

    def __call__(self, fill):
        return self.fill_fee(self.account, self.symbol, self.side, self.is_long, fill, self.bp)


cdef class Steps:
    """Twins of the per-step methods of one :class:`~exchange.liquidation.waterfall.Liquidator` (module
    docstring), made before the compiled ``Liquidator`` binds them: it keeps the reference's own methods for
    the branches it hands back."""

    cdef ExchangeFields ex
    cdef object liquidator, ledger, funds
    cdef RiskKernel kernel  # the risk stage's compiled kernel, called in C
    cdef Stage monitor  # the risk monitor's compiled stage: liquidatable parts and forget, called in C
    cdef Funds funds_twin  # the insurance funds' compiled sync, called in C
    cdef tuple fund_ids  # InsuranceFunds.ids(): fixed by the ledger
    cdef object reference_liquidate, reference_step, reference_step_qty, reference_bankruptcy_ticks
    cdef object order  # the profile's LiquidationOrder
    cdef dict instruments
    cdef dict markets  # symbol -> its Market (what clearing a fill reads, kept as the drain keeps it)
    cdef bint dydx, vault  # Liquidator.dydx, Liquidator._has_vault()
    cdef bint rule_for_cross, rule_for_isolated  # Liquidator._rule_prices of a cross part, of an isolated one

    def __init__(self, liquidator):
        self.liquidator, self.ex = liquidator, liquidator.ex
        self.ledger, self.funds = liquidator.ledger, liquidator.funds
        self.kernel, self.instruments = liquidator.risk.kernel, liquidator.ex.instruments
        self.markets = {symbol: Market(self.ledger, inst) for symbol, inst in self.instruments.items()}
        self.monitor, self.funds_twin = liquidator.ex.monitor._stage, liquidator.funds.twin
        self.fund_ids = liquidator.funds.ids()
        self.reference_liquidate, self.reference_step = liquidator._liquidate, liquidator._step
        self.reference_step_qty, self.reference_bankruptcy_ticks = liquidator._step_qty, liquidator._bankruptcy_ticks
        self.order, self.dydx, self.vault = liquidator.profile.liquidation_order, liquidator.dydx, liquidator._has_vault()
        self.rule_for_cross = liquidator._rule_prices(CROSS)
        self.rule_for_isolated = liquidator._rule_prices("ISOLATED")  # an isolated part is named by its symbol

    # -- the stage ---------------------------------------------------------------------------------
    cpdef list stage(self, command):
        """Twin of ``Liquidator.stage``: fund history, (AdvanceTime) the unwind, the sweep, the release of
        liquidation mode (the reference's, when an account is in it), fund history, the funds out of this
        command's touched and due accounts. The event records leave the cycle collector (``_records.pxd``)."""
        liquidator = self.liquidator
        cdef list events = self.funds_twin.sync(TRADING)
        if isinstance(command, AdvanceTime):
            events += liquidator._unwind()
        if self.dydx:
            events += liquidator.sweep()
        else:
            untrack_all(events, 0)
            events += self._sweep()  # (untracked as it collects them)
        cdef Py_ssize_t swept = len(events)
        if liquidator.in_liquidation:  # else Liquidator._release finds nobody to release
            events += liquidator._release()
        events += self.funds_twin.sync(TRADING)
        self.ex._touched.difference_update(self.fund_ids)
        self.monitor.forget(self.fund_ids)
        untrack_all(events, 0 if self.dydx else swept)
        return events

    cdef list _sweep(self):
        """Twin of ``Liquidator.sweep`` (not dYdX's blocks), with ``Exchange.liquidatable`` inlined."""
        cdef list events = [], found
        cdef Py_ssize_t untracked = 0
        accounts = self.ledger.accounts
        cdef Stage monitor = self.monitor
        while True:
            found = [part for part in monitor.liquidatable(self.ex._touched)
                     if part.account_id < FUND_ACCOUNT_BASE]
            if not found:
                return events
            for part in sorted(found, key=sweep_order):
                events += self.liquidate(accounts[part.account_id], part.symbol, part.position_side)
                untrack_all(events, untracked)  # (a long sweep would otherwise age them: _records.pxd)
                untracked = len(events)

    # -- one part ----------------------------------------------------------------------------------
    cpdef list liquidate(self, account, part, part_side):
        """Twin of ``Liquidator._liquidate`` (dYdX: the reference's)."""
        if self.dydx:
            return self.reference_liquidate(account, part, part_side)
        cdef RiskKernel risk = self.kernel
        liquidatable, balance, mm, exposed = risk.part_liquidatable(account, part, part_side)
        if not liquidatable:
            return []
        account_id = account.account_id
        cdef list events = [STARTED.make((account_id, part, part_side, margin_ratio_e8(mm, balance, exposed), balance,
                                          mm))]
        self.liquidator.in_liquidation.add(account_id)
        cdef bint cross = part == CROSS
        cdef list symbols = [s for s in self.instruments if not risk.is_isolated(account, s)] if cross else [part]
        for symbol in symbols:
            events += self.cancel_orders(account_id, symbol, LIQUIDATION)
        wallet_before = account.wallet_units
        cdef list keys = [(s, side) for s, side in sorted(account.positions) if s in symbols and (cross or side == part_side)]
        symbol = keys[0][0] if keys else part
        for symbol, side in keys:
            while (symbol, side) in account.positions and risk.part_liquidatable(account, part, part_side)[0]:
                events += self.step(account, part, symbol, side)
        if not risk.part_liquidatable(account, part, part_side)[3]:  # liquidated to nothing
            events += self.liquidator._settle(account, part, symbol, wallet_before)
        return events

    # -- one step ----------------------------------------------------------------------------------
    cpdef list step(self, account, part, symbol, side):
        """Twin of ``Liquidator._step`` (dYdX: the reference's)."""
        if self.dydx:
            return self.reference_step(account, part, symbol, side)
        liquidator = self.liquidator
        position = self.ledger.accounts[account.account_id].positions[(symbol, side)]
        is_long = position.lots > 0
        bp = self.bankruptcy_ticks(account, part, symbol, side, position)
        order = self.order
        if order == IOC_AT_BANKRUPTCY or order == FOK_TIER_THEN_TAKEOVER:  # twin of Liquidator._step_qty there
            qty = _abs(position.lots) - self.kept_lots(account, part, symbol, side, position)
        else:
            qty = self.reference_step_qty(account, part, symbol, side, position)
        cdef list events = []
        filled = 0
        book_order = None  # (order type, tif, limit) of the order sent to the book, if any
        if self.vault and liquidator._vault_takes_over(account, part, side):
            qty = _abs(position.lots)
        elif order == IOC_AT_BANKRUPTCY or order == LIMIT_AT_BANKRUPTCY:
            book_order = LIMIT, IOC, bp
        elif order == FOK_TIER_THEN_TAKEOVER and qty < _abs(position.lots):
            book_order = LIMIT, FOK, bp
        elif order == MARKET_SLICES:
            book_order = MARKET, IOC, 0
            if qty < _abs(position.lots):  # a slice: the account's next liquidation orders are whole positions
                liquidator._start_cooldown(account.account_id)
        if book_order is not None:
            inst = self.instruments[symbol]
            most = inst.max_market_qty_lots if book_order[0] == MARKET else inst.max_qty_lots
            if most < qty:
                qty = most
            if qty:
                filled, placed = self.book(account, symbol, side, is_long, book_order, qty, bp)
                events += placed
            if book_order[1] == FOK and not filled:
                qty = _abs(position.lots)  # bybit: the reduction failed, the whole position goes to the fund
            else:
                qty -= filled
        open_lots = _open_lots(account, symbol, side)
        if open_lots < qty:
            qty = open_lots
        if qty:
            events += self.takeover(account, symbol, side, is_long, qty, bp)
            qty -= open_lots - _open_lots(account, symbol, side)
        if qty:
            events += self.deleverage(account, symbol, side, is_long, qty, bp)
        return events

    # -- the book ----------------------------------------------------------------------------------
    cpdef tuple book(self, account, symbol, side, is_long, book_order, qty, bp):
        """Twin of ``Liquidator._book``."""
        order_type, tif, limit = book_order
        cdef ExchangeFields ex = self.ex
        book = ex._books[symbol]
        if order_type == LIMIT:
            limit = self._band_limit(book, symbol, is_long, limit)
        order_id = ex.next_order_id
        before = _abs(account.positions[(symbol, side)].lots)
        code = book.place(order_id, account.account_id, SELL if is_long else BUY, order_type, tif, limit, qty, STP_NONE, 1, 0)
        if code:
            book.clear_events()
            return 0, []
        ex.next_order_id = order_id + 1
        ex._position_sides[order_id] = side
        liquidator = self.liquidator
        cdef list events = ex._drain(symbol, order_type,
                                     on_taker_fill=_FillFee(liquidator._fill_fee, account, symbol, side, is_long, bp))
        events += ex._fire_triggers(symbol, events)
        events += liquidator._refresh_mark(symbol)
        after = account.positions.get((symbol, side))
        events += self.funds_twin.sync(TOP_UP)  # an isolated deficit covered when the position closed
        return before - (_abs(after.lots) if after is not None else 0), events

    cdef object _band_limit(self, book, symbol, is_long, limit):
        """Twin of ``Liquidator._band_limit`` (``mul_div_ceil`` / ``mul_div_floor`` inline)."""
        mark = book.mark()
        if not mark:
            return limit
        inst = self.instruments[symbol]
        if is_long:
            band = -((-(mark * inst.band_down_e8)) // E8)
            return band if band > limit else limit
        band = (mark * inst.band_up_e8) // E8
        return band if band < limit else limit

    # -- takeover and transfers --------------------------------------------------------------------
    cpdef list takeover(self, account, symbol, side, is_long, qty, bp):
        """Twin of ``Liquidator._takeover``."""
        taken = self.liquidator._takeover_lots(symbol, qty, is_long)
        if not taken:
            return []
        fund = self.funds.fund(symbol)
        cdef list events = [TAKEOVER_FILL.make((symbol, account.account_id, side, SELL if is_long else BUY, bp, taken, bp,
                                                0, 0, fund.account_id))]
        events += self.transfer(symbol, account, side, is_long, fund, BOTH, bp, taken)
        events += self.funds_twin.sync(TAKEOVER)
        return events

    cpdef list deleverage(self, account, symbol, side, is_long, qty, bp, bint at_bankruptcy=False,
                          skip=NO_SKIP):
        """Twin of ``Liquidator._deleverage``: ``qty`` lots closed against the opposite side in the order of the
        liquidator's ADL queue (``ADLQueue.order``, as the reference takes it), the ADL fills made in C.
        O(positions taken + the queue's steps)."""
        liquidator = self.liquidator
        profile = liquidator.profile
        price = bp if at_bankruptcy or profile.adl_price == AT_BANKRUPTCY else liquidator.risk.mark_of(symbol)
        cdef list events = []
        account_id = account.account_id
        queue = liquidator.adl_queue.order(symbol, not is_long, profile.adl_ranking, liquidator._seed(),
                                           self.ex._touched, account_id)
        accounts = self.ledger.accounts
        sell, buy = (SELL, BUY) if is_long else (BUY, SELL)
        for counter_id, counter_side in queue:
            if not qty:
                break
            if counter_id in skip:
                continue
            counter = accounts[counter_id]
            lots = _abs(counter.positions[(symbol, counter_side)].lots)
            q = lots if lots < qty else qty  # min(qty, lots)
            events += self.cancel_orders(counter_id, symbol, ADL)
            events.append(ADL_FILL.make((symbol, account_id, side, sell, price, q, counter_id, True)))
            events.append(ADL_FILL.make((symbol, counter_id, counter_side, buy, price, q, account_id, False)))
            events += self.transfer(symbol, account, side, is_long, counter, counter_side, price, q)
            qty -= q
        return events + self.funds_twin.sync(TAKEOVER)

    cpdef list transfer(self, symbol, account, side, is_long, counter, counter_side, price, qty):
        """Twin of ``Liquidator._transfer``: close ``qty`` lots against ``counter`` at ``price``, no fee."""
        cdef Market market = self.markets[symbol]
        cdef list events = []
        clear_into(events, self.ledger, market, account, side, not is_long, price, qty, 0)
        clear_into(events, self.ledger, market, counter, counter_side, is_long, price, qty, 0)
        touched = self.ex._touched
        self.kernel.refresh_holds(account, symbol)
        touch(touched, account.account_id)
        self.kernel.refresh_holds(counter, symbol)
        touch(touched, counter.account_id)
        return events

    # -- orders ------------------------------------------------------------------------------------
    cpdef list cancel_orders(self, account_id, symbol, reason):
        """Twin of ``Liquidator.cancel_orders``."""
        cdef ExchangeFields ex = self.ex
        book = ex._books[symbol]
        cdef list events = []
        order_ids = book.orders_of(account_id)
        if order_ids:
            position_sides = ex._position_sides
            for order_id in order_ids:
                state = book.order(order_id)
                book.cancel(order_id, account_id)
                del position_sides[order_id]
                order_side = SIDES.get(state[2])
                events.append(CANCELED.make((symbol, order_id, account_id, order_side if order_side is not None else
                                             Side(state[2]), state[3], state[4], reason)))
        book.clear_events()
        triggers = ex._triggers[symbol]
        if triggers._orders:  # TriggerBook.orders_of of an empty book is [] (its dict read without a frame)
            for order_id in triggers.orders_of(account_id):
                events.append(ex._cancel_conditional(symbol, order_id, reason))
        if events:
            self.kernel.refresh_holds(self.ledger.accounts[account_id], symbol)
            touch(ex._touched, account_id)
        return events

    # -- sizes and prices --------------------------------------------------------------------------
    cpdef object kept_lots(self, account, part, symbol, side, position):
        """Twin of ``Liquidator._kept_lots`` (``margin.bracket_index`` and ``div_ceil`` inline). O(brackets)."""
        cdef RiskKernel risk = self.kernel
        rows = risk.brackets[symbol]
        lots = _abs(position.lots)
        lot_value = risk.mark_of(symbol) * self.instruments[symbol].k_units
        notional = lots * lot_value
        cdef Py_ssize_t current = len(rows) - 1, i
        for i in range(len(rows)):
            if notional <= rows[i].cap_units:
                current = i
                break
        if current == 0:  # no lower bracket (the reference's part state and MM below change nothing)
            return 0
        balance, mm, _ = risk.part_state(account, part, side)
        others_mm = mm - risk.part_mm(account, symbol, position)
        sign = 1 if position.lots > 0 else -1
        entry_cost = position.entry_cost
        for i in range(current - 1, -1, -1):
            keep = rows[i].cap_units // lot_value
            if keep > lots - 1:
                keep = lots - 1
            if keep <= 0:
                return 0
            kept = Position.__new__(Position)  # Position(sign * keep, kept cost) without its __init__ frame
            kept.lots, kept.isolated_margin_units = sign * keep, 0
            kept.entry_cost = entry_cost + ((-(entry_cost * (lots - keep))) // lots)  # as clearing removes it
            if not risk.is_liquidatable(balance, others_mm + risk.part_mm(account, symbol, kept), True):
                return keep
        return 0

    cpdef object bankruptcy_ticks(self, account, part, symbol, side, position):
        """Twin of ``Liquidator._bankruptcy_ticks``: the zero-balance rule here (already whole ticks), a
        profile-specific rule by the reference."""
        if self.rule_for_cross if part == CROSS else self.rule_for_isolated:
            return self.reference_bankruptcy_ticks(account, part, symbol, side, position)
        ticks = self.kernel.bankruptcy_price_ticks(account, symbol, side)
        if ticks is None:
            ticks = 0 if position.lots > 0 else 2**63
        inst = self.instruments[symbol]
        if ticks < inst.min_price_ticks:
            return inst.min_price_ticks
        return ticks if ticks < inst.max_price_ticks else inst.max_price_ticks
