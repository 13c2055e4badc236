"""The exchange: one sequencer that applies commands in order and returns events (LMAX pattern).

Stage order for every command:

    validate -> risk check -> match -> clear fills -> reduce-only trim, holds -> triggers -> margin calls
    -> liquidation sweep (:mod:`exchange.liquidation.waterfall`; on AdvanceTime funding samples and settlements
       (:mod:`exchange.funding.stage`) and the insurance funds' unwinding come first)

- *validate*: field filters, account state, position side (-4061), reduce-only (-2022), pre-trade margin
  (-2027, -2019; :mod:`exchange.accounts.pretrade`). Account checks run after the order's field filters (side, TIF, STP,
  quantity, price range) and before the book's own checks (band, notional, TIF rules).
- *match*: the symbol's matching engine (``docs/matching.md``).
- *clear*: every fill, in order, updates the taker's and the maker's positions, fees and isolated margins
  (:mod:`exchange.clearing.fills`); the ``Fill`` event is followed by both sides' ``PositionChanged`` /
  ``BalanceChanged``.
- *trim, holds*: the resting reduce-only orders (including hedge-mode orders closing their leg) of a
  position must together fit in what it can still close; the newest are amended down (priority kept) or
  canceled (reason REDUCE_ONLY) until they do; then the order-margin holds of every touched (account,
  symbol) are recomputed. Known limit (one-way mode only): a reduce-only maker filled in the same sweep
  after the same account's *non*-reduce-only makers already flipped the position still fills (the
  matching engine does not check reduce-only on makers); it is canceled right after.
- *triggers*: fill prices and mark changes fire conditional orders, which enter as above (a fired
  reduce-only / close-position order closes at most what is open then; -2022 if nothing).
- *margin calls*: a MarginCall event for each margin part of a touched account whose ratio reached the
  warning level (touched: any account whose orders, balances or positions changed, and every holder of a
  symbol whose mark moved — found through the risk monitor's warning-level index: the holders whose state
  may have changed; the others provably keep theirs).

**Sync rule** (the risk monitor, :mod:`exchange.liquidation.monitor`, relies on it for exact liquidation knowledge):
every code path that changes an account — wallet, positions, isolated margins, margin or position mode,
leverage — must add the account id to ``self._touched`` before the command ends, and must not remove
it (``apply`` clears the set after the margin-call stage). A mark is set only through :meth:`_move_mark`.
A path that changes a book's resting orders without :meth:`_drain` must call ``risk.refresh_holds`` (or
``risk.track_order``) for them. Then: after the handler the monitor follows the price moves (the holders
they may have pushed become *due*); :meth:`liquidatable` and the margin-call stage re-evaluate the touched
and due accounts (``_touched`` itself names only accounts the command changed: the ADL queue relies on it,
and, within the liquidation sweep, on each change being followed by its id's addition, which
:class:`~exchange.accounts.touched.Touched` logs);
the SoA mirror and the indexes are rewritten in a batch before the next price move.
``docs/margin.md`` "How the Exchange uses the index".
- *time*: AdvanceTime visits each funding premium-sample time and settlement boundary it crosses, in time order
  (:mod:`exchange.funding.stage`, ``docs/funding.md``): GTD expiries, samples, then settlement of every symbol.

Invariants after every command (:mod:`exchange.invariants`): a rejected command is one ``Rejected`` event and
changes nothing but the journal (the state hash is unchanged); order ids come from one sequence, only for
accepted orders; simulation time never moves backwards; no wall clock, no unseeded randomness. Money is
conserved exactly, open interest balances per symbol, and the stored holds equal a recomputation.

- *liquidation sweep* (after every accepted command; :mod:`exchange.liquidation.waterfall`): on AdvanceTime the insurance
  funds unwind first; then every liquidatable part (:meth:`Exchange.liquidatable`, the one risk query) goes
  through the waterfall until none is left; accounts whose parts are safe again leave liquidation mode
  (orders that are not reduce-only: -2023 to place, -4087 to amend or fire, while in it).

- *quiet skip* (:meth:`Exchange._run`): an order command (place, cancel, amend, cancel-all) in which nothing
  filled changed no wallet, position, isolated margin, setting or price; when nobody is in liquidation mode and
  the monitor's knowledge is complete (:meth:`~exchange.liquidation.monitor.RiskMonitor.quiet`), both stages
  above would re-evaluate its accounts to what they already are and emit nothing, so they are skipped
  (``tests/test_compiled_twins.py`` runs streams both ways).

Compiled twins (selected in ``__init__`` through :mod:`exchange._impl`): under the compiled implementation
``_drain`` is :class:`exchange.clearing._fills.Drain` (rows -> events, clearing, order sums, trim, holds), the
PlaceOrder / CancelOrder / AmendOrder / CancelAll handlers are :mod:`exchange.orders._entry`'s, the handlers of
prices, money and account settings (SetMarkPrice, SetIndexPrice, Deposit, Withdraw, FundInsurance, SetPositionMode,
SetMarginMode, SetLeverage, SetInitialMarginRate, AdjustIsolatedMargin) :mod:`exchange._handlers`' (each hands what
it does not cover, and every refusal of the latter, to the method here: whatever these methods do, those must do
too), a funding settlement's payments :mod:`exchange.funding._settle`'s, and the risk stage's order sums, holds,
available balance, pre-trade check and part states run in :mod:`exchange.accounts._pretrade`.

Commands naming a reserved account (the insurance funds', ids ≥ 2⁶²) are rejected with -1102.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import warnings
from fractions import Fraction

import msgpack

from . import _impl, collector
from ._impl import matching_engine_class  # re-exported: exchange.engine.matching_engine_class
from .boundary import batch, validate
from .liquidation.adl import ranking as deleveraging
from .accounts.ledger import FUND_ACCOUNT_BASE, Ledger
from .accounts.touched import Touched
from .clearing.fills import clear_fill
from .commands import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, PlaceOrder,
    SetIndexPrice, SetInitialMarginRate, SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode, SettleSymbol, Withdraw,
)
from .enums import (
    BalanceReason, CancelReason, EventKind, InsuranceReason, MarginMode, OrderType, PositionMode, PositionSide,
    RejectCode, Side, STPMode, TimeInForce, WorkingType, reject_message,
)
from .fields import ExchangeFields
from .events import (
    BalanceChanged, Fill, IndexPriceChanged, InitialMarginRateChanged, LeverageChanged, MarginModeChanged,
    MarkPriceChanged, OrderAccepted, OrderAmended, OrderCanceled, OrderTriggered, PositionChanged,
    PositionModeChanged, Rejected, TimeAdvanced,
)
from .orders.filters import check_price_precision, check_price_range, check_qty, place_reject_message
from .liquidation.insurance import HistoryEntry
from .liquidation.waterfall import LiquidationConfig, Liquidator
from .funding.stage import Funding, FundingRecord, FundingState
from .liquidation.monitor import RiskMonitor
from .prices import Prices
from .profiles import PROFILES, ADLRanking, InsuranceScope, RiskOptions, VenueProfile
from .accounts.pretrade import CROSS, Liquidatable, OpenOrder, Risk, closes
from .spec import Instrument
from .orders.triggers import ConditionalOrder, TriggerBook, validate_conditional
from .units import E8, MAX_ABS_VALUE, InputError, mul_div_ceil, mul_div_floor


def _known_symbol(query):
    """Queries naming a symbol: an unlisted one raises :class:`~exchange.units.InputError` (not KeyError). The
    parameter's own default (the cross account ``""``, or None for "all") stays allowed."""
    parameters = list(inspect.signature(query).parameters.values())
    position = next(i for i, p in enumerate(parameters) if p.name == "symbol") - 1  # after self
    default = parameters[position + 1].default

    @functools.wraps(query)
    def checked(self, *args, **kwargs):
        symbol = args[position] if len(args) > position else kwargs.get("symbol", default)
        if symbol not in self.instruments and (symbol != default or default is inspect.Parameter.empty):
            raise InputError(f"{query.__name__}: unknown symbol {symbol!r} (listed: {', '.join(self.instruments)})")
        return query(self, *args, **kwargs)

    return checked


class ExchangeHalted(RuntimeError):
    """The exchange refuses commands: an internal error stopped it (the message says which command)."""


class Exchange(ExchangeFields):
    """A venue with one order book per instrument, a ledger of accounts, and price feeds.

    ``apply(command)`` is the only way to change state; queries never change it. ``profile`` is the venue's
    rule set (:mod:`exchange.profiles`, a name or a :class:`~exchange.profiles.VenueProfile`; default
    ``"binance"``; under a profile with ``mmr_from_leverage`` (hyperliquid) every bracket's MMR is derived from
    its max leverage, :meth:`Instrument.with_mmr_from_leverage`, and ``self.instruments`` holds the derived
    instruments); ``options`` overrides its risk rules (:class:`~exchange.accounts.pretrade.RiskOptions`); ``liquidation``
    sets the waterfall's numbers and the insurance funds' limits (:class:`~exchange.liquidation.waterfall.LiquidationConfig`).
    ``journal`` (a path) makes the journal durable: every well-formed command is appended to that file before
    it is applied, with the ``fsync`` policy (``docs/journal.md``); :meth:`close` closes it. With
    ``snapshot_every=N`` a snapshot is written to ``<journal>.snapshots/`` after every N journaled commands (the
    newest ``keep_snapshots`` kept), where :func:`exchange.recover` finds them. ``keep_commands=False``: the
    in-memory :attr:`journal` is None instead of a list of every applied command (a long run with a durable
    journal need not hold its commands twice; the gateway and the study runner set it).
    """

    def __init__(self, instruments: list[Instrument], implementation: str | None = None,
                 options: RiskOptions | None = None, profile: VenueProfile | str = "binance",
                 liquidation: LiquidationConfig | None = None, journal=None, fsync="always",
                 snapshot_every: int = 0, keep_snapshots: int = 3, keep_commands: bool = True):
        instruments = list(instruments) if not isinstance(instruments, (str, bytes, Instrument)) and hasattr(
            instruments, "__iter__") else None
        if not instruments or not all(isinstance(i, Instrument) for i in instruments):
            raise InputError("an exchange needs a non-empty list of Instrument (exchange.Instrument.linear(...))")
        if isinstance(profile, str) and profile not in PROFILES:
            raise InputError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        if not isinstance(profile, (str, VenueProfile)):
            raise InputError(f"profile must be a name or a VenueProfile, got {type(profile).__name__}")
        if options is not None and not isinstance(options, RiskOptions):
            raise InputError(f"options must be a RiskOptions, got {type(options).__name__}")
        if liquidation is not None and not isinstance(liquidation, LiquidationConfig):
            raise InputError(f"liquidation must be a LiquidationConfig, got {type(liquidation).__name__}")
        self.implementation = implementation or _impl.IMPLEMENTATION
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        if self.profile.mmr_from_leverage:  # hyperliquid: each bracket's MMR is half the IMR at its max leverage
            instruments = [inst.with_mmr_from_leverage() for inst in instruments]
        self.options = options or self.profile.risk
        engine_class = matching_engine_class(self.implementation)
        self.instruments = {inst.symbol: inst for inst in sorted(instruments, key=lambda i: i.symbol)}
        if len(self.instruments) != len(instruments):
            raise ValueError("duplicate instrument symbols")
        self._books = {symbol: engine_class(inst) for symbol, inst in self.instruments.items()}
        self._triggers = {symbol: TriggerBook() for symbol in self.instruments}
        self._position_sides: dict[int, PositionSide] = {}  # open order id (resting or conditional) -> side
        self.ledger = Ledger({s: min(self.options.default_leverage, i.max_leverage) for s, i in self.instruments.items()},
                             shared_fund=self.profile.insurance_scope == InsuranceScope.SHARED,
                             compact_positions=_impl.positions_kernel if self.implementation == "cython" else None)
        self.prices = Prices(self.instruments, self.profile.funding_interval_ns, self.profile.mark_source)
        risk_price = self.risk_price if self.implementation == "python" else \
            _impl.pretrade_kernel.RiskPrice(self._books)  # compiled: the same, without a Python frame per call
        self.risk = Risk(self.instruments, self.ledger, self.options, risk_price, self._open_orders,
                         self.profile.brackets, self.profile.liquidation_trigger, self.profile.isolated_maintenance,
                         compiled=self.implementation == "cython")
        self.funding = Funding(self.instruments, self.ledger, self.prices, self.profile,
                               compiled=self.implementation == "cython")
        self.monitor = RiskMonitor(self.instruments, self.ledger, self.risk, compiled=self.implementation == "cython")
        self._touched = Touched()  # ids of the accounts this command changed, logged (module docstring, sync rule)
        self._order_only = False  # this command is an order command and nothing has filled yet (:meth:`_run`)
        # the commands this object applied, in order (in memory); None: not kept (keep_commands=False)
        self.journal: list | None = [] if keep_commands else None
        self.sequence = 0  # well-formed commands journaled since the run began (a snapshot keeps it)
        self.halted: str | None = None  # why the exchange refuses commands (:meth:`_halt`), None while it runs
        self._journal_writer = None
        self.now_ns = 0
        self.next_order_id = 1
        self.liquidation = Liquidator(self, liquidation or LiquidationConfig())
        self._handlers = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            CancelAll: self._cancel_all,
            SetMarkPrice: self._set_mark,
            AdvanceTime: self._advance_time,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            SetPositionMode: self._set_position_mode,
            SetMarginMode: self._set_margin_mode,
            SetLeverage: self._set_leverage,
            SetInitialMarginRate: self._set_initial_margin_rate,
            AdjustIsolatedMargin: self._adjust_isolated_margin,
            SetIndexPrice: self._set_index,
            FundInsurance: self._fund_insurance,
            SettleSymbol: self._settle_symbol,
        }
        if self.implementation == "cython":  # the compiled twins of _drain (exchange.clearing._fills) and of the
            self._drain = _impl.fills_kernel.Drain(self)  # order commands' handlers (exchange.orders._entry)
            entry = _impl.entry_kernel.Entry(self, self._drain)
            own = _impl.handlers_kernel.Handlers(self)  # (exchange._handlers: prices, money, settings)
            self._handlers.update({PlaceOrder: entry.place, CancelOrder: entry.cancel, AmendOrder: entry.amend,
                                   CancelAll: entry.cancel_all, SetMarkPrice: own.set_mark, SetIndexPrice: own.set_index,
                                   Deposit: own.deposit, Withdraw: own.withdraw, SetPositionMode: own.set_position_mode,
                                   SetMarginMode: own.set_margin_mode, SetLeverage: own.set_leverage,
                                   SetInitialMarginRate: own.set_initial_margin_rate,
                                   AdjustIsolatedMargin: own.adjust_isolated_margin, FundInsurance: own.fund_insurance})
        self._check = validate.checker(self.implementation)  # compiled: the boundary's fast path in C
        if self.implementation == "cython":  # the compiled command loop (exchange._engine); a subclass's apply stays
            loop = _impl.engine_kernel.Loop(self, ExchangeHalted, _ORDER_COMMANDS, validate.fast_checks(), Exchange.apply)
            self._apply_valid = loop.apply_valid
            if type(self).apply is Exchange.apply:
                self.apply = loop.apply
        self.settled: dict[str, int] = {}  # symbol -> its final settlement price (SettleSymbol); they trade no more
        if type(snapshot_every) is not int or snapshot_every < 0 or type(keep_snapshots) is not int or keep_snapshots < 1:
            raise InputError("snapshot_every must be an int >= 0 and keep_snapshots an int >= 1")
        if snapshot_every and journal is None:
            raise InputError("snapshot_every needs a journal: the snapshots are written beside it")
        self.snapshot_every, self.keep_snapshots = snapshot_every, keep_snapshots
        if journal is not None:  # last: the header records the whole configuration
            from .persistence.journal import JournalWriter

            self._journal_writer = journal if isinstance(journal, JournalWriter) else \
                JournalWriter.create(journal, self, fsync)

    def close(self) -> None:
        """Flush and close the durable journal (if any). The exchange stays queryable."""
        if self._journal_writer is not None:
            self._journal_writer.close()

    @property
    def journal_writer(self):
        """The durable journal's :class:`~exchange.persistence.journal.JournalWriter`, or None without a journal
        (for callers that add notes to it, as the gateway's sequencer does)."""
        return self._journal_writer

    def sync_journal(self) -> None:
        """Flush and fsync the durable journal writer, if there is one; a no-op otherwise (no journal, or the
        journal already closed). For callers that journal with ``fsync="never"`` and commit a group of
        commands at once (the gateway's sequencer: one sync per batch, before any of it is answered). Raises
        :class:`~exchange.persistence.journal.JournalError` as the writer does when the sync fails."""
        writer = self._journal_writer
        if writer is not None and not writer.closed:
            writer.sync()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ==== commands ================================================================================
    def apply(self, command) -> list:
        """Apply one command; return its events.

        The validation boundary (:mod:`exchange.boundary.validate`) comes first: a malformed command is answered with
        one ``Rejected`` event naming the field and is neither journaled nor applied. A well-formed command is
        journaled (written to the durable journal first, when there is one), then applied. Raises TypeError
        for an object that is not a command, :class:`~exchange.persistence.journal.JournalError` when the journal cannot
        be written (the command is then not applied), and :class:`ExchangeHalted` once an internal error has
        stopped the exchange (see :meth:`_halt`)."""
        if self.halted is not None:
            raise ExchangeHalted(self.halted)
        problem = self._check(command)  # TypeError for a non-command
        if problem is not None:
            code, message = problem
            return [Rejected(RejectCode(code), message, *validate.safe_identity(command))]
        return self._apply_valid(command)

    def _apply_valid(self, command) -> list:
        """:meth:`apply` of a command the validation boundary has passed (``apply_batch`` checks its rows in bulk
        and calls this for the ones that pass): journal, run, snapshot."""
        if self.halted is not None:
            raise ExchangeHalted(self.halted)
        if self._journal_writer is not None:
            self._journal_writer.append(command)
        if self.journal is not None:
            self.journal.append(command)
        self.sequence += 1
        try:
            events = self._run(command)
        except BaseException as exc:
            self._halt(command, exc)
            if isinstance(exc, Exception):
                raise ExchangeHalted(self.halted) from exc
            raise  # KeyboardInterrupt and the like pass through; the exchange is halted all the same
        if self.snapshot_every and self.sequence % self.snapshot_every == 0:
            self._periodic_snapshot()
        return events

    def apply_batch(self, commands) -> batch.BatchResult:
        """Apply rows of :data:`~exchange.boundary.batch.BATCH_COMMAND_DTYPE` in order, exactly as :meth:`apply`
        would one by one (validated, journaled, the same events and state), and return the results and the
        events as numpy arrays (:class:`~exchange.boundary.batch.BatchResult`; the layout is the module docstring
        of :mod:`exchange.boundary.batch`). Symbols are indices into :attr:`symbols`.

        Raises :class:`~exchange.boundary.batch.BatchError` before any command runs when the array cannot be
        commands (dtype, unknown tag, symbol index); otherwise raises as :meth:`apply` does, and a halt stops the
        batch with the commands before it applied. The rows that pass the boundary's rules (checked on whole
        columns) run through :meth:`_apply_valid`, the step of :meth:`apply` after its check: a subclass that
        wraps :meth:`apply` sees only the refused rows. O(rows + events)."""
        return batch.run(self, commands)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The instruments' symbols in configuration order (what :meth:`apply_batch`'s symbol indices name)."""
        return tuple(self.instruments)

    def _periodic_snapshot(self) -> None:
        """Every ``snapshot_every`` journaled commands: a snapshot beside the journal, the newest
        ``keep_snapshots`` kept (:func:`exchange.persistence.snapshot.write_periodic`). A failure (disk full, ...) is a
        RuntimeWarning, not an error: the command was applied and journaled, and recovery only gets longer."""
        from .persistence.snapshot import SnapshotError, directory_for, write_periodic

        try:
            write_periodic(self, directory_for(self._journal_writer.path), self.keep_snapshots)
        except (OSError, SnapshotError) as exc:
            warnings.warn(f"periodic snapshot at sequence {self.sequence} failed: {exc}", RuntimeWarning, stacklevel=3)

    def _halt(self, command, exc: BaseException) -> None:
        """Stop the exchange after an internal error. Validation guarantees that a well-formed command cannot
        raise, so this is a bug; the command may be half-applied, and rather than roll back we refuse every
        later command (:class:`ExchangeHalted`) and keep the state for inspection. The journal holds the
        command (it was written before it ran): :func:`exchange.persistence.recovery.recover` rebuilds the state before it."""
        self.halted = f"halted by an internal error in command #{self.sequence} ({type(command).__name__}): " \
                      f"{type(exc).__name__}: {exc}"

    def _run(self, command) -> list:
        """The stages of one well-formed, journaled command."""
        self._order_only = type(command) in _ORDER_COMMANDS  # cleared by _drain at the first fill
        events = self._handlers[type(command)](command)
        self.monitor.follow_prices(self._touched)  # sync: mark moves make the holders they may have pushed due
        if self._order_only and not self.liquidation.in_liquidation and self.monitor.quiet(self._touched):
            # Exact skip of the liquidation and margin-call stages. An order command in which nothing filled
            # changed only resting and conditional orders, holds and order ids: no wallet, position, isolated
            # margin or setting, no price (marks move only through _move_mark, last prices only by fills), no
            # insurance fund balance. Its touched accounts are unchanged for the monitor, whose knowledge of
            # them is exact (RiskMonitor.quiet: none stale or due, nobody liquidatable), and nobody is in
            # liquidation mode, so both stages would re-evaluate them to what they already are and emit
            # nothing: no fund change to record, nothing liquidatable to sweep or release, no margin call.
            self._touched.clear()
            return events
        stage: list | None = None
        if not (len(events) == 1 and isinstance(events[0], Rejected)):
            stage = self.liquidation.stage(command)
            events += stage
        # a stage without events changed nothing: the margin-call stage reuses the sweep's evaluations
        events += self.monitor.margin_stage(self._touched, unchanged_since_sync=stage == [])
        self._touched.clear()
        return events

    # -- orders ------------------------------------------------------------------------------------
    def _trading_book(self, cmd) -> tuple:
        """``(book, None)`` for a command on a symbol that trades, else ``(None, [Rejected])``: -1121 for an
        unknown symbol, -1122 once the symbol is settled."""
        book = self._books.get(cmd.symbol)
        if book is None:
            return None, [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        if cmd.symbol in self.settled:
            return None, [_rejected(RejectCode.SYMBOL_SETTLED, cmd)]
        return book, None

    def _place(self, cmd: PlaceOrder) -> list:
        book, refused = self._trading_book(cmd)
        if refused:
            return refused
        try:
            order_type = _enum(OrderType, cmd.order_type)
        except ValueError:
            return [_rejected(RejectCode.INVALID_ORDER_TYPE, cmd)]
        if cmd.close_position and order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            return [_rejected(RejectCode.MALFORMED, cmd)]
        account = self.ledger.get(cmd.account_id)
        if not self._side_matches_mode(account, cmd.position_side):
            return [_rejected(RejectCode.POSITION_SIDE_MISMATCH, cmd)]
        position_side = _enum(PositionSide, cmd.position_side)
        reduce_only = bool(cmd.reduce_only) or closes(position_side, cmd.side)
        if order_type.is_conditional:
            return self._place_conditional(cmd, order_type, account, position_side, reduce_only)
        inst = self.instruments[cmd.symbol]
        market = order_type == OrderType.MARKET
        code = RejectCode.OK
        if _well_formed(inst, cmd.side, cmd.tif, cmd.stp, cmd.price_ticks, cmd.qty_lots, market):
            price_ticks = self._market_margin_price(cmd.symbol, cmd.side) if market else cmd.price_ticks
            code = self._price_precision(inst, cmd.price_ticks) or self._check_order(
                account, cmd.symbol, position_side, _enum(Side, cmd.side), price_ticks, cmd.qty_lots, reduce_only)
        order_id = self.next_order_id
        code = code or book.place(order_id, cmd.account_id, cmd.side, order_type, cmd.tif, cmd.price_ticks,
                                  cmd.qty_lots, self._stp(cmd.stp), int(reduce_only), cmd.expire_ns)
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        self.next_order_id += 1
        self._position_sides[order_id] = position_side
        events = self._drain(cmd.symbol, order_type)
        return events + self._fire_triggers(cmd.symbol, events)

    def _price_precision(self, inst: Instrument, *prices_ticks: int) -> int:
        """-1111 when a price breaks the profile's precision rule (hyperliquid: 5 significant figures, 6 −
        szDecimals decimals; whole numbers always pass; :func:`~exchange.orders.filters.check_price_precision`). A
        price field filter: it runs after the book's own field filters and before the account checks."""
        for ticks in prices_ticks:
            code = check_price_precision(inst, ticks, self.profile.price_sig_figs, self.profile.price_decimals)
            if code:
                return code
        return RejectCode.OK

    def _stp(self, stp: int) -> int:
        """The STP mode an order enters the book (or the trigger layer) with: the profile's override (dydx,
        hyperliquid: always expire the resting order) or the order's own. Passed into the order, so both
        matching implementations see the same mode."""
        return self.profile.stp_override or stp

    def _place_conditional(self, cmd: PlaceOrder, order_type: OrderType, account, position_side: PositionSide,
                           reduce_only: bool) -> list:
        book = self._books[cmd.symbol]
        inst = self.instruments[cmd.symbol]
        code = validate_conditional(cmd, inst, book.mark(), book.last_price(), self.now_ns)
        code = code or self._price_precision(inst, cmd.price_ticks, cmd.stop_ticks, cmd.activation_ticks)
        if not code and account is None:
            code = RejectCode.MARGIN_INSUFFICIENT  # no account, no balance
        code = code or self.liquidation.order_code(account, reduce_only, placing=True)
        if not code and reduce_only and self._closable(account, cmd.symbol, position_side, cmd.side) < cmd.qty_lots:
            code = RejectCode.REDUCE_ONLY_REJECTED
        if code:
            return [_rejected(code, cmd)]
        order_id = self.next_order_id
        self.next_order_id += 1
        self._position_sides[order_id] = position_side
        self._triggers[cmd.symbol].add(ConditionalOrder(
            order_id, cmd.account_id, Side(cmd.side), order_type, cmd.qty_lots, cmd.price_ticks, int(cmd.tif),
            int(self._stp(cmd.stp)), reduce_only, bool(cmd.close_position), cmd.stop_ticks,
            WorkingType(cmd.working_type), cmd.callback_e8, cmd.activation_ticks,
            cmd.expire_ns if order_type in (OrderType.STOP, OrderType.TAKE_PROFIT) and cmd.tif == TimeInForce.GTD else 0,
        ))
        return [OrderAccepted(cmd.symbol, order_id, cmd.account_id, Side(cmd.side), order_type, cmd.price_ticks,
                              cmd.qty_lots)]

    def _cancel(self, cmd: CancelOrder) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        waiting = self._triggers[cmd.symbol].get(cmd.order_id)
        if waiting is not None:
            if waiting.account_id != cmd.account_id:
                return [_rejected(RejectCode.UNKNOWN_ORDER, cmd)]
            return [self._cancel_conditional(cmd.symbol, cmd.order_id, CancelReason.USER)]
        code = book.cancel(cmd.order_id, cmd.account_id)
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        return self._drain(cmd.symbol)

    def _amend(self, cmd: AmendOrder) -> list:
        book, refused = self._trading_book(cmd)
        if refused:
            return refused
        waiting = self._triggers[cmd.symbol].get(cmd.order_id)
        if waiting is not None and waiting.account_id == cmd.account_id:
            return [_rejected(RejectCode.MODIFY_LIMIT_ONLY, cmd)]
        code = self._check_amend(cmd)
        code = code or book.amend(cmd.order_id, cmd.account_id, cmd.price_ticks, cmd.qty_lots)
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        events = self._drain(cmd.symbol)
        return events + self._fire_triggers(cmd.symbol, events)

    def _check_amend(self, cmd: AmendOrder) -> int:
        """Checks of an amend after the book's field filters would pass: the profile's price precision (-1111),
        then the account: a reduce-only order may not grow past what it can close (-2022); an opening order's new
        hold must fit (-2027, -2019)."""
        resting = self._books[cmd.symbol].order(cmd.order_id)
        inst = self.instruments[cmd.symbol]
        if resting is None or resting[1] != cmd.account_id or not _well_formed(
                inst, resting[2], TimeInForce.GTC, STPMode.NONE, cmd.price_ticks, cmd.qty_lots, False):
            return RejectCode.OK  # the book decides
        account = self.ledger.get(cmd.account_id)
        side = Side(resting[2])
        return self._price_precision(inst, cmd.price_ticks) or self._check_order(account, cmd.symbol, self._position_sides[cmd.order_id], side, cmd.price_ticks,
                                 cmd.qty_lots, bool(resting[7]), replacing=cmd.order_id)

    def _cancel_all(self, cmd: CancelAll) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        book.cancel_all(cmd.account_id)
        events = self._drain(cmd.symbol)
        triggers = self._triggers[cmd.symbol]
        events += [self._cancel_conditional(cmd.symbol, oid, CancelReason.USER) for oid in triggers.orders_of(cmd.account_id)]
        return events

    # -- prices and time ---------------------------------------------------------------------------
    def _set_mark(self, cmd: SetMarkPrice) -> list:
        refused = self._trading_book(cmd)[1]
        if refused:
            return refused
        if not self._valid_price(cmd.symbol, cmd.mark_ticks):
            return [self._price_rejected(cmd, "mark_ticks", cmd.mark_ticks)]
        return self._move_mark(cmd.symbol, cmd.mark_ticks)

    def _set_index(self, cmd: SetIndexPrice) -> list:
        book, refused = self._trading_book(cmd)
        if refused:
            return refused
        if not self._valid_price(cmd.symbol, cmd.index_ticks):
            return [self._price_rejected(cmd, "index_ticks", cmd.index_ticks)]
        mark = self.prices.observe_index(cmd.symbol, cmd.index_ticks, self.now_ns, book.best_bid(), book.best_ask(),
                                         book.last_price())
        events: list = [IndexPriceChanged(cmd.symbol, cmd.index_ticks)]
        if mark is not None and mark != book.mark():
            events += self._move_mark(cmd.symbol, mark)
        return events

    def _move_mark(self, symbol: str, mark_ticks: int) -> list:
        """Set the mark: price band, MARK_PRICE triggers, and every holder's margin is re-checked (through the
        monitor's indexes: the holders whose margin-call state may have changed)."""
        self._books[symbol].set_mark(mark_ticks)
        self.monitor.mark_moved(symbol)
        fired = self._triggers[symbol].observe(WorkingType.MARK_PRICE, mark_ticks)
        return [MarkPriceChanged(symbol, mark_ticks)] + self._run_triggered(symbol, fired)

    def _settle_symbol(self, cmd: SettleSymbol) -> list:
        """Final settlement of a symbol (:class:`~exchange.commands.SettleSymbol`; the waterfall's part is
        :meth:`exchange.liquidation.Liquidator.settle_symbol`)."""
        book, refused = self._trading_book(cmd)
        if refused:
            return refused
        price = cmd.price_ticks or self.prices.feeds[cmd.symbol].index_ticks or book.mark()
        if not self._valid_price(cmd.symbol, price):
            return [Rejected(RejectCode.MALFORMED, f"SettleSymbol.price_ticks: {price} is not a price of {cmd.symbol} "
                                                   f"(give one, or set an index or mark first).", cmd.symbol)]
        events = self.liquidation.settle_symbol(cmd.symbol, price)
        self.settled[cmd.symbol] = price
        return events

    def _valid_price(self, symbol: str, ticks) -> bool:
        return isinstance(ticks, int) and 1 <= ticks <= self.instruments[symbol].max_price_ticks

    def _price_rejected(self, cmd, field: str, ticks) -> Rejected:
        """The reject of a price outside the symbol's range (the boundary checks only 0..2**62)."""
        return Rejected(RejectCode.MALFORMED, f"{type(cmd).__name__}.{field}: {ticks} is outside {cmd.symbol}'s prices "
                                              f"1..{self.instruments[cmd.symbol].max_price_ticks} ticks.", cmd.symbol)

    def _advance_time(self, cmd: AdvanceTime) -> list:
        """Visit every premium sample time and funding boundary crossed, in time order: at each the books
        expire GTD orders up to it, the due symbols take a sample from their book, and at a boundary every
        symbol settles funding (with conditional GTD orders expired first); then ``now_ns`` itself.

        Cost: O(boundaries and GTD expiries crossed), not O(length of the jump). Between two *busy* steps
        (a settlement boundary, or the first step at or after the next GTD expiry) nothing changes a book, so
        the sample times in between all take the same premium and are added at once
        (:meth:`~exchange.funding.stage.Funding.sample_repeated`) — the same samples, in the same order, as
        visiting them one by one (``docs/funding.md``). ``now_ns`` is at most 2⁶² (:mod:`exchange.boundary.validate`)."""
        if not 0 <= cmd.now_ns - self.now_ns <= validate.MAX_TIME_STEP_NS:
            return [Rejected(RejectCode.MALFORMED, f"AdvanceTime.now_ns: {cmd.now_ns} is not within 366 days after the "
                                                   f"current time {self.now_ns} (MAX_TIME_STEP_NS).")]
        until = cmd.now_ns
        events: list = [TimeAdvanced(until)]
        premiums: dict[str, int | None] = {}  # symbol -> its sample while its book stays as it is
        t = self.now_ns
        while True:
            busy = self._next_busy_step(t)
            for symbol, count in self.funding.samples_between(t, min(busy, until + 1)):
                premium = self._premium(symbol, premiums)
                if premium is not None:
                    self.funding.sample_repeated(symbol, premium, count)
            if busy > until:
                break
            events += self._step(busy, self.funding.sampling_at(busy), busy % self.funding.interval_ns == 0, premiums)
            t = busy
        return events + self._move_clock(until, premiums, True)

    def _step(self, time_ns: int, sampled: list[str], settles: bool, premiums: dict) -> list:
        """One step of the clock: move to ``time_ns`` (expiring GTD orders), take the samples due, and settle
        every symbol at a funding boundary."""
        events = self._move_clock(time_ns, premiums, settles)
        for symbol in sampled:
            premium = self._premium(symbol, premiums)
            if premium is not None:
                self.funding.sample(symbol, premium)
        for symbol in self.instruments if settles else ():
            if symbol in self.settled:
                continue
            settled, touched = self.funding.settle(symbol, time_ns, self.risk_price(symbol))
            events += settled
            self._touched |= touched
        return events

    def _next_busy_step(self, after_ns: int) -> int:
        """The first step time after ``after_ns`` at which a book or the ledger may change: the next
        settlement boundary, or, when a resting GTD order expires before it, the first sample time (or
        boundary) at or after that expiry. O(symbols)."""
        settle = self.funding.next_funding_time_ns(after_ns)
        expiry = min((e for e in (book.next_expiry_ns() for book in self._books.values()) if e), default=0)
        if not expiry or expiry >= settle:
            return settle
        return min(settle, self.funding.first_sample_at_or_after(expiry))

    def _premium(self, symbol: str, premiums: dict) -> int | None:
        """The premium sample of ``symbol``'s book as it is now (cached until the book changes)."""
        if symbol in self.settled:
            return None
        if symbol not in premiums:
            premiums[symbol] = self.funding.premium_e8(symbol, *self._impact_depth(symbol))
        return premiums[symbol]

    def _impact_depth(self, symbol: str) -> tuple[list, list]:
        """``symbol``'s book levels, best first, as deep as the impact walk of a premium sample can reach: the
        first ``n`` levels of each side (``n`` from 64, ×4) until each side either holds the impact notional
        within them or has fewer than ``n`` levels (then it is the whole side). The walk stops at the level where
        the notional is reached, so it sees the same levels as over the whole book. O(levels walked)."""
        book, k = self._books[symbol], self.instruments[symbol].k_units
        need = self.funding.impact_units[symbol]
        n = 64
        while True:
            sides = book.depth(n)
            if all(len(levels) < n or k * sum(price * lots for price, lots, _ in levels) >= need for levels in sides):
                return sides
            n *= 4

    def _move_clock(self, now_ns: int, premiums: dict, expire_conditional: bool) -> list:
        """Set the time; expire GTD resting orders (forgetting the sample of a book that changed) and, when
        asked, GTD conditional orders."""
        self.now_ns = now_ns
        events: list = []
        for symbol, book in self._books.items():
            if book.set_time(now_ns):
                premiums.pop(symbol, None)
                events += self._drain(symbol)
            for oid in self._triggers[symbol].expired(now_ns) if expire_conditional else ():
                events.append(self._cancel_conditional(symbol, oid, CancelReason.GTD_EXPIRED))
        return events

    # -- money -------------------------------------------------------------------------------------
    def _deposit(self, cmd: Deposit) -> list:
        if cmd.amount_units > MAX_ABS_VALUE - self.ledger.money_in_units():
            return [_money_cap_rejected(cmd)]
        account = self.ledger.open(cmd.account_id)
        self.ledger.deposits_units += cmd.amount_units
        return [self._credit(account, cmd.amount_units, BalanceReason.DEPOSIT)]

    def _withdraw(self, cmd: Withdraw) -> list:
        account = self.ledger.get(cmd.account_id)
        if account is None or cmd.amount_units > self.risk.withdrawable(account):
            return [_rejected(RejectCode.BALANCE_NOT_SUFFICIENT, cmd)]
        self.ledger.withdrawals_units += cmd.amount_units
        return [self._credit(account, -cmd.amount_units, BalanceReason.WITHDRAW)]

    def _fund_insurance(self, cmd: FundInsurance) -> list:
        """Seed an insurance fund (a deposit into its reserved account; the stage records the history)."""
        if cmd.symbol not in self.instruments:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        if cmd.amount_units > MAX_ABS_VALUE - self.ledger.money_in_units():
            return [_money_cap_rejected(cmd)]
        self.ledger.deposits_units += cmd.amount_units
        self.liquidation.funds.move(cmd.symbol, cmd.amount_units)
        return self.liquidation.funds.sync(InsuranceReason.SEED)

    def _credit(self, account, delta_units: int, reason: BalanceReason) -> BalanceChanged:
        account.wallet_units += delta_units
        self._touched.add(account.account_id)
        return BalanceChanged(account.account_id, delta_units, account.wallet_units, reason)

    # -- account settings --------------------------------------------------------------------------
    def _set_position_mode(self, cmd: SetPositionMode) -> list:
        account = self.ledger.get(cmd.account_id)
        mode = account.position_mode if account is not None else PositionMode.ONE_WAY
        if cmd.position_mode == mode:
            return [_rejected(RejectCode.NO_NEED_TO_CHANGE_POSITION_SIDE, cmd)]
        if any(self._has_open_orders(cmd.account_id, symbol) for symbol in self.instruments):
            return [_rejected(RejectCode.POSITION_SIDE_OPEN_ORDERS, cmd)]
        if account is not None and account.positions:
            return [_rejected(RejectCode.POSITION_SIDE_OPEN_POSITION, cmd)]
        account = self.ledger.open(cmd.account_id)
        account.position_mode = PositionMode(cmd.position_mode)
        self._touched.add(account.account_id)
        return [PositionModeChanged(cmd.account_id, account.position_mode)]

    def _set_margin_mode(self, cmd: SetMarginMode) -> list:
        """rules §4 switching; see :meth:`_check_margin_mode` for the rules and codes."""
        if cmd.symbol not in self.instruments:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        code = self._check_margin_mode(cmd)
        if code == RejectCode.MALFORMED:  # (its only -1102)
            return [Rejected(code, f"SetMarginMode.isolated_margin_units: margin moves only with a switch to isolated "
                                   f"of an open position (got {cmd.isolated_margin_units}).", cmd.symbol, cmd.account_id)]
        if code:
            return [_rejected(code, cmd)]
        account = self.ledger.open(cmd.account_id)
        settings = self.ledger.settings(account, cmd.symbol)
        events: list = []
        for side, position in account.positions_in(cmd.symbol):
            moved = cmd.isolated_margin_units if cmd.margin_mode == MarginMode.ISOLATED else -position.isolated_margin_units
            position.isolated_margin_units += moved
            events.append(self._credit(account, -moved, BalanceReason.MARGIN_TRANSFER))
            events.append(PositionChanged(cmd.symbol, account.account_id, side, position.lots, position.entry_cost,
                                          position.isolated_margin_units, 0))
        self.ledger.set_settings(account, cmd.symbol, cmd.margin_mode, settings.leverage, settings.imr_e8)
        self._touched.add(account.account_id)
        return [MarginModeChanged(cmd.account_id, cmd.symbol, MarginMode(cmd.margin_mode))] + events

    def _check_margin_mode(self, cmd: SetMarginMode) -> int:
        """-1102 malformed; -4046 no change; -4047 open orders; -4048 open position (always with both hedge
        legs open; otherwise unless ``allow_mode_switch_with_position``). Cross -> isolated with a position
        moves ``isolated_margin_units`` out of the wallet: -4051 if it is below the position's IM or would
        leave it liquidatable (margin + uPnL ≤ MM, by the profile's rule), -4050 if the cross side cannot spare it (available
        balance after the move < 0). Isolated -> cross returns the isolated margin to the wallet."""
        account = self.ledger.get(cmd.account_id)
        if cmd.margin_mode == self.ledger.settings(account, cmd.symbol).margin_mode:
            return RejectCode.NO_NEED_TO_CHANGE_MARGIN_TYPE
        if self._has_open_orders(cmd.account_id, cmd.symbol):
            return RejectCode.MARGIN_TYPE_OPEN_ORDERS
        open_positions = account.positions_in(cmd.symbol) if account is not None else []
        moves_in = cmd.margin_mode == MarginMode.ISOLATED and bool(open_positions)
        if cmd.isolated_margin_units and not moves_in:
            return RejectCode.MALFORMED
        if open_positions and (not self.options.allow_mode_switch_with_position or len(open_positions) > 1):
            return RejectCode.MARGIN_TYPE_OPEN_POSITION
        if not moves_in:
            return RejectCode.OK
        (_, position), = open_positions
        amount = cmd.isolated_margin_units
        upnl = self.risk.upnl(cmd.symbol, position)
        if amount < self.risk.position_im(account, cmd.symbol, position) or self.risk.is_liquidatable(
                amount + upnl, self.risk.isolated_mm(cmd.symbol, position), True):
            return RejectCode.ISOLATED_BALANCE_INSUFFICIENT
        counted = upnl if self.options.count_unrealized_gains else min(0, upnl)
        if self.risk.available(account) + self.risk.position_im(account, cmd.symbol, position) - counted < amount:
            return RejectCode.CROSS_BALANCE_INSUFFICIENT
        return RejectCode.OK

    def _set_leverage(self, cmd: SetLeverage) -> list:
        """-4028 outside 1..max leverage; then :meth:`_change_leverage`."""
        inst = self.instruments.get(cmd.symbol)
        if inst is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        if not 1 <= cmd.leverage <= inst.max_leverage:
            return [_rejected(RejectCode.INVALID_LEVERAGE, cmd)]
        code = self._change_leverage(cmd, cmd.leverage, 0)
        return [_rejected(code, cmd)] if code else [LeverageChanged(cmd.account_id, cmd.symbol, cmd.leverage)]

    def _set_initial_margin_rate(self, cmd: SetInitialMarginRate) -> list:
        """-4028 unless ``10⁸ / max leverage ≤ imr_e8 ≤ 10⁸`` (leverage 1..max); then :meth:`_change_leverage`. A
        rate that is an integer leverage is stored as that leverage (the same state as ``SetLeverage``)."""
        inst = self.instruments.get(cmd.symbol)
        if inst is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        if not 0 < cmd.imr_e8 <= E8 or cmd.imr_e8 * inst.max_leverage < E8:
            return [_rejected(RejectCode.INVALID_LEVERAGE, cmd)]
        leverage, rest = divmod(E8, cmd.imr_e8)
        code = self._change_leverage(cmd, leverage, cmd.imr_e8 if rest else 0)
        return [_rejected(code, cmd)] if code else [
            InitialMarginRateChanged(cmd.account_id, cmd.symbol, cmd.imr_e8, leverage)]

    def _change_leverage(self, cmd, leverage: int, imr_e8: int) -> int:
        """Set the (account, symbol) leverage (``imr_e8`` > 0: the exact rate, ``leverage`` its integer part)
        unless: -4161 lowering an isolated position's leverage; -2027 when the position plus its adding orders
        exceed the bracket allowed at the new leverage; -2028 when the new cross IM and holds of the symbol
        would leave the available balance negative. Returns the reject code, or 0 once stored."""
        account = self.ledger.get(cmd.account_id)
        settings = self.ledger.settings(account, cmd.symbol)
        exact = dataclasses.replace(settings, leverage=leverage, imr_e8=imr_e8).exact_leverage
        if account is not None:
            lowering = exact < settings.exact_leverage
            if lowering and settings.margin_mode == MarginMode.ISOLATED and account.positions_in(cmd.symbol):
                return RejectCode.ISOLATED_LEVERAGE_REDUCTION
            exposure = self.risk.max_exposure(account, cmd.symbol)
            if exposure and self.risk.bracket_max_leverage(cmd.symbol, exposure) < exact:
                return RejectCode.MAX_POSITION_AT_LEVERAGE
            raised = self.risk.symbol_requirement(account, cmd.symbol, exact) - \
                self.risk.symbol_requirement(account, cmd.symbol, settings.exact_leverage)
            if raised > 0 and self.risk.available(account) - raised < 0:
                return RejectCode.LEVERAGE_INSUFFICIENT_MARGIN
        account = self.ledger.open(cmd.account_id)
        self.ledger.set_settings(account, cmd.symbol, settings.margin_mode, leverage, imr_e8)
        self.risk.refresh_holds(account, cmd.symbol)
        self._touched.add(account.account_id)
        return RejectCode.OK

    def _adjust_isolated_margin(self, cmd: AdjustIsolatedMargin) -> list:
        """Add (≤ available balance, else -4050) or remove (the isolated margin plus unrealized losses must
        stay ≥ the position's IM, else -4051) margin of an open isolated position (-4049 cross, -4054 none)."""
        if cmd.symbol not in self.instruments:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        account = self.ledger.get(cmd.account_id)
        if not self._side_matches_mode(account, cmd.position_side):
            return [_rejected(RejectCode.POSITION_SIDE_MISMATCH, cmd)]
        if not self.risk.is_isolated(account, cmd.symbol):
            return [_rejected(RejectCode.ISOLATED_ONLY, cmd)]
        side = PositionSide(cmd.position_side)
        position = self.ledger.position(account, cmd.symbol, side)
        if not position.lots:
            return [_rejected(RejectCode.NO_ISOLATED_POSITION, cmd)]
        if cmd.delta_units > 0 and cmd.delta_units > self.risk.available(account):
            return [_rejected(RejectCode.CROSS_BALANCE_INSUFFICIENT, cmd)]
        if cmd.delta_units < 0 and position.isolated_margin_units + cmd.delta_units + min(
                0, self.risk.upnl(cmd.symbol, position)) < self.risk.position_im(account, cmd.symbol, position):
            return [_rejected(RejectCode.ISOLATED_BALANCE_INSUFFICIENT, cmd)]
        position.isolated_margin_units += cmd.delta_units
        return [
            PositionChanged(cmd.symbol, account.account_id, side, position.lots, position.entry_cost,
                            position.isolated_margin_units, 0),
            self._credit(account, -cmd.delta_units, BalanceReason.MARGIN_TRANSFER),
        ]

    # ==== internals: account checks ===============================================================
    @staticmethod
    def _side_matches_mode(account, position_side) -> bool:
        """One-way orders name BOTH; hedge orders LONG or SHORT (-4061 otherwise)."""
        hedge = account is not None and account.position_mode == PositionMode.HEDGE
        allowed = (PositionSide.LONG, PositionSide.SHORT) if hedge else (PositionSide.BOTH,)
        return position_side in allowed

    def _closable(self, account, symbol: str, position_side: PositionSide, side: int) -> int:
        """Lots an order of ``side`` can close on its position key (0 if it would open or increase)."""
        lots = self.ledger.position(account, symbol, position_side).lots
        return max(0, -lots) if side == Side.BUY else max(0, lots)

    def _check_order(self, account, symbol: str, position_side: PositionSide, side: Side, price_ticks: int,
                     qty_lots: int, reduce_only: bool, replacing: int = 0) -> int:
        """-2022 for a reduce-only order larger than what it can close; the risk pre-trade check otherwise."""
        if reduce_only:
            ok = self._closable(account, symbol, position_side, side) >= qty_lots
            return RejectCode.OK if ok else RejectCode.REDUCE_ONLY_REJECTED
        code = self.liquidation.order_code(account, reduce_only, placing=not replacing)
        return code or self.risk.check_opening(account, symbol, position_side, side, price_ticks, qty_lots, replacing)

    def _market_margin_price(self, symbol: str, side: int) -> int:
        """The worst price a MARKET order may reach: its band edge when a mark is set (BUY
        ``floor(mark × up)``, SELL ``ceil(mark × down)``), else the deepest opposite level (0 if empty)."""
        book = self._books[symbol]
        inst = self.instruments[symbol]
        if book.mark():
            if side == Side.BUY:
                return mul_div_floor(book.mark(), inst.band_up_e8, E8)
            return mul_div_ceil(book.mark(), inst.band_down_e8, E8)
        bids, asks = book.depth(book.order_count())
        levels = asks if side == Side.BUY else bids
        return levels[-1][0] if levels else 0

    def _has_open_orders(self, account_id: int, symbol: str) -> bool:
        return bool(self._books[symbol].orders_of(account_id) or self._triggers[symbol].orders_of(account_id))

    def _open_orders(self, account_id: int, symbol: str) -> list[OpenOrder]:
        """The account's resting orders in ``symbol`` for the risk stage, ascending id."""
        book = self._books[symbol]
        orders = []
        for order_id in book.orders_of(account_id):
            _, _, side, price_ticks, leaves_lots, _, _, reduce_only, _ = book.order(order_id)
            orders.append(OpenOrder(order_id, self._position_sides[order_id], Side(side), price_ticks, leaves_lots,
                                    bool(reduce_only)))
        return orders

    # ==== internals: triggers =====================================================================
    def _fire_triggers(self, symbol: str, events: list) -> list:
        """Feed every fill price of ``events`` to last-price triggers; run the orders that fire."""
        return self._run_triggered(symbol, self._observe_fills(symbol, events))

    def _observe_fills(self, symbol: str, events: list) -> list[ConditionalOrder]:
        """Feed each fill price, in order, to the last-price triggers; the orders that fire."""
        triggers = self._triggers[symbol]
        if not len(triggers):  # nothing waits: nothing can fire (observe would return [] for every price)
            return []
        return [
            order
            for event in events if isinstance(event, Fill)
            for order in triggers.observe(WorkingType.CONTRACT_PRICE, event.price_ticks)
        ]

    def _run_triggered(self, symbol: str, fired: list[ConditionalOrder]) -> list:
        """Place fired orders in ascending id; fills they cause may fire more (a cascade, which ends
        because each conditional order fires at most once). A fired order passes the account checks with
        the position as it is now; a reduce-only or close-position order closes at most what is open."""
        events: list = []
        if not fired:
            return events
        book = self._books[symbol]
        fired = sorted(fired, key=lambda o: o.order_id)
        while fired:
            order = fired.pop(0)
            events.append(OrderTriggered(symbol, order.order_id, order.account_id, order.fired_at_ticks))
            as_limit = order.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT)
            order_type = OrderType.LIMIT if as_limit else OrderType.MARKET
            code, qty_lots = self._check_fired(symbol, order, as_limit)
            code = code or book.place(
                order.order_id, order.account_id, order.side, order_type, order.tif if as_limit else TimeInForce.IOC,
                order.price_ticks if as_limit else 0, qty_lots, order.stp, int(order.reduce_only), order.expire_ns,
            )
            if code:
                book.clear_events()
                del self._position_sides[order.order_id]
                events.append(Rejected(RejectCode(code), reject_message(code), symbol, order.account_id, order.order_id))
                continue
            placed = self._drain(symbol, skip_accepted=True)
            events += placed
            fired = sorted(fired + self._observe_fills(symbol, placed), key=lambda o: o.order_id)
        return events

    def _check_fired(self, symbol: str, order: ConditionalOrder, as_limit: bool) -> tuple[int, int]:
        """``(reject code, quantity)`` of a fired conditional order."""
        account = self.ledger.get(order.account_id)
        position_side = self._position_sides[order.order_id]
        inst = self.instruments[symbol]
        if order.reduce_only or order.close_position:
            closable = self._closable(account, symbol, position_side, order.side)
            qty_lots = closable if order.close_position else min(order.qty_lots, closable)
            return (RejectCode.OK if qty_lots else RejectCode.REDUCE_ONLY_REJECTED), qty_lots
        if not _well_formed(inst, order.side, order.tif, order.stp, order.price_ticks, order.qty_lots, not as_limit):
            return RejectCode.OK, order.qty_lots  # the book decides
        price_ticks = order.price_ticks if as_limit else self._market_margin_price(symbol, order.side)
        code = self.liquidation.order_code(account, False, placing=False)
        return code or self.risk.check_opening(account, symbol, position_side, order.side, price_ticks, order.qty_lots), order.qty_lots

    def _cancel_conditional(self, symbol: str, order_id: int, reason: CancelReason) -> OrderCanceled:
        order = self._triggers[symbol].remove(order_id)
        del self._position_sides[order_id]
        return OrderCanceled(symbol, order_id, order.account_id, order.side, order.price_ticks, order.qty_lots, reason)

    # ==== internals: book events, clearing, holds =================================================
    def _drain(self, symbol: str, order_type: OrderType = OrderType.LIMIT, skip_accepted: bool = False,
               on_taker_fill=None) -> list:
        """Turn the matching engine's rows into event records, clearing every fill as it comes; then trim
        reduce-only orders, forget orders that left, and refresh the holds of the accounts involved.
        ``on_taker_fill`` marks a liquidation order: its fills carry no taker fee, and ``on_taker_fill(fill)``
        (its events appended) runs before the taker's side is cleared."""
        events: list = []
        accounts: set[int] = set()
        order_ids: set[int] = set()
        for row in self._books[symbol].take_events().tolist():
            kind = row[0]
            accounts.add(row[2])
            order_ids.add(row[1])
            if kind == EventKind.FILL:
                self._order_only = False
                fill = Fill(symbol, row[4], row[5], row[1], row[2], _enum(Side, row[3]), row[6], row[8], row[9], row[10],
                            0 if on_taker_fill else row[12], row[11])
                accounts.add(fill.maker_account_id)
                order_ids.add(fill.maker_order_id)
                events.append(fill)
                if on_taker_fill:
                    events += on_taker_fill(fill)
                events += self._clear(symbol, fill.taker_order_id, fill.taker_account_id, fill.taker_side == Side.BUY,
                                      fill.price_ticks, fill.qty_lots, fill.taker_fee_units)
                events += self._clear(symbol, fill.maker_order_id, fill.maker_account_id, fill.taker_side == Side.SELL,
                                      fill.price_ticks, fill.qty_lots, fill.maker_fee_units)
            elif kind == EventKind.CANCELED:
                events.append(OrderCanceled(symbol, row[1], row[2], _enum(Side, row[3]), row[4], row[5], _enum(CancelReason, row[7])))
            elif kind == EventKind.ACCEPTED:
                if not skip_accepted:
                    events.append(OrderAccepted(symbol, row[1], row[2], _enum(Side, row[3]), order_type, row[4], row[5]))
            elif kind == EventKind.AMENDED:
                events.append(OrderAmended(symbol, row[1], row[2], _enum(Side, row[3]), row[4], row[6], bool(row[7])))
            else:  # a REJECTED row only appears with a non-zero return code, handled by the caller
                raise AssertionError(f"unexpected matching row {row}")
        book, risk, position_sides = self._books[symbol], self.risk, self._position_sides
        gone = []  # orders that no longer rest; the trim below only removes resting orders, and forgets them itself
        for order_id in order_ids:
            state = book.order(order_id)
            risk.track_order(symbol, order_id, position_sides.get(order_id), state)
            if state is None:
                gone.append(order_id)
        accounts = sorted(accounts)
        for account_id in accounts:
            events += self._trim_reduce_only(symbol, account_id)
        triggers = self._triggers[symbol]
        for order_id in gone:
            if order_id in position_sides and order_id not in triggers:
                del position_sides[order_id]
        for account_id in accounts:
            account = self.ledger.get(account_id)
            if account is not None:
                risk.store_holds(account, symbol)
                self._touched.add(account_id)
        return events

    def _clear(self, symbol: str, order_id: int, account_id: int, buy: bool, price_ticks: int, qty_lots: int,
               fee_units: int) -> list:
        account = self.ledger.accounts[account_id]
        return clear_fill(self.ledger, self.instruments[symbol], account, self._position_sides[order_id], buy,
                          price_ticks, qty_lots, fee_units)

    def _trim_reduce_only(self, symbol: str, account_id: int) -> list:
        """Make the account's resting reduce-only orders of each (position side, order side) together fit in
        what the position can close: in ascending order id each keeps ``min(leaves, what is left)``; an order
        left with less is amended down (priority kept) or canceled (reason REDUCE_ONLY) at 0. Together,
        not one by one, so that one taker sweeping several of them can never flip the position. O(1) when they
        already fit (the order sums say so), else O(its orders)."""
        events: list = []
        sums_by_side = self.risk.order_sums(account_id, symbol)
        if not any(sums[4] or sums[5] for sums in sums_by_side.values()):  # no reduce-only order: nothing to trim
            return events
        book = self._books[symbol]
        account = self.ledger.get(account_id)
        if all((not sums[4] or sums[4] <= self._closable(account, symbol, position_side, Side.BUY))
               and (not sums[5] or sums[5] <= self._closable(account, symbol, position_side, Side.SELL))
               for position_side, sums in sums_by_side.items()):
            return events
        left: dict[tuple[PositionSide, Side], int] = {}
        for order in self._open_orders(account_id, symbol):
            if not order.reduce_only:
                continue
            key = (order.position_side, order.side)
            if key not in left:
                left[key] = self._closable(account, symbol, order.position_side, order.side)
            keep = min(order.lots, left[key])
            left[key] -= keep
            if keep == order.lots:
                continue
            if keep:
                code = book.shrink(order.order_id, keep)  # no filters: the band may have moved past its price
                assert code == 0, f"shrink of resting order {order.order_id} to {keep} refused: {code}"
                events.append(OrderAmended(symbol, order.order_id, account_id, order.side, order.price_ticks, keep, True))
            else:
                book.cancel(order.order_id, account_id)
                del self._position_sides[order.order_id]
                events.append(OrderCanceled(symbol, order.order_id, account_id, order.side, order.price_ticks,
                                            order.lots, CancelReason.REDUCE_ONLY))
            book.clear_events()
            self.risk.track_order(symbol, order.order_id, order.position_side, book.order(order.order_id))
        return events

    # ==== queries =================================================================================
    @_known_symbol
    def book(self, symbol: str):
        """The matching engine of ``symbol`` (for read-only queries: depth, best_bid, order, ...)."""
        return self._books[symbol]

    @_known_symbol
    def open_orders(self, account_id: int, symbol: str) -> list[int]:
        """Open order ids (resting and conditional) of an account in a symbol, ascending."""
        return sorted(self._books[symbol].orders_of(account_id) + self._triggers[symbol].orders_of(account_id))

    @_known_symbol
    def conditional_order(self, symbol: str, order_id: int) -> ConditionalOrder | None:
        return self._triggers[symbol].get(order_id)

    def order_position_side(self, order_id: int) -> PositionSide | None:
        """The position side an open order trades (None when the order is not open)."""
        return self._position_sides.get(order_id)

    def risk_price(self, symbol: str) -> int:
        """The price positions are valued at: the mark, or the last trade price until a mark is set."""
        book = self._books[symbol]
        return book.mark() or book.last_price()

    @_known_symbol
    def index_price(self, symbol: str) -> int:
        """The last index observation (ticks), 0 before the first."""
        return self.prices.feeds[symbol].index_ticks

    @_known_symbol
    def mark_price(self, symbol: str) -> int:
        """The mark (ticks), 0 before the first."""
        return self._books[symbol].mark()

    @_known_symbol
    def funding_history(self, symbol: str) -> list[FundingRecord]:
        """Every settlement of ``symbol`` so far: (boundary time ns, rate ×10⁸, mark ticks), oldest first."""
        return list(self.funding.symbols[symbol].history)

    @_known_symbol
    def funding_rate_e8(self, symbol: str) -> int:
        """The rate paid at the last settlement (×10⁸, > 0: longs pay shorts); 0 before the first."""
        return self.prices.feeds[symbol].funding_rate_e8

    @_known_symbol
    def predicted_funding_rate_e8(self, symbol: str) -> int:
        """The rate the next settlement would pay from the premium samples of the running interval (×10⁸)."""
        return self.funding.predicted_rate_e8(symbol)

    @_known_symbol
    def funding_state(self, symbol: str) -> FundingState:
        """Every part of ``symbol``'s funding rate now (:class:`~exchange.funding.stage.FundingState`): index,
        impact bid / ask and the premium the book gives now, the premium average so far in the interval, the
        interest, clamp, floor / cap, the rate that would settle now, the last rate and the funding index."""
        book = self._books[symbol]
        return self.funding.state(symbol, *book.depth(book.order_count()), self.now_ns)

    def next_funding_time_ns(self) -> int:
        """The next settlement boundary (every symbol settles at multiples of the venue's interval)."""
        return self.funding.next_funding_time_ns(self.now_ns)

    def wallet(self, account_id: int) -> int:
        """Wallet balance in units (0 for an unknown account)."""
        account = self.ledger.get(account_id)
        return account.wallet_units if account is not None else 0

    def available_balance(self, account_id: int) -> int:
        """wallet − cross IM − order holds + cross unrealized losses (and gains, per the options)."""
        return self.risk.available(self.ledger.get(account_id))

    def order_margin(self, account_id: int) -> int:
        """Σ order-margin holds of the account (units)."""
        account = self.ledger.get(account_id)
        return sum(account.holds.values()) if account is not None else 0

    @_known_symbol
    def position(self, account_id: int, symbol: str, position_side: PositionSide = PositionSide.BOTH, *,
                 prices: bool = True):
        """A :class:`~exchange.accounts.pretrade.PositionView` of an open position, or None. ``prices=False``: the
        view without its liquidation and bankruptcy prices (both None; the rest costs a small part of them)."""
        account = self.ledger.get(account_id)
        if account is None or (symbol, position_side) not in account.positions:
            return None
        return self._view(account, symbol, PositionSide(position_side), prices)

    def positions(self, account_id: int) -> list:
        """Views of every open position of the account, by (symbol, position side)."""
        account = self.ledger.get(account_id)
        if account is None:
            return []
        return [self._view(account, symbol, side) for symbol, side in sorted(account.positions)]

    def _view(self, account, symbol: str, side: PositionSide, prices: bool = True):
        """The risk stage's view with the profile's bankruptcy price (:meth:`bankruptcy_price_ticks`)."""
        return self.risk.view(account, symbol, side, lambda: self.liquidation.bankruptcy_price_ticks(
            account, self._part(account, symbol), symbol, side), prices=prices)

    @_known_symbol
    def margin_mode(self, account_id: int, symbol: str) -> MarginMode:
        return self.ledger.settings(self.ledger.get(account_id), symbol).margin_mode

    @_known_symbol
    def leverage(self, account_id: int, symbol: str) -> int:
        """The (account, symbol) leverage; after ``SetInitialMarginRate`` its integer part (⌊10⁸ / imr_e8⌋)."""
        return self.ledger.settings(self.ledger.get(account_id), symbol).leverage

    @_known_symbol
    def initial_margin_rate(self, account_id: int, symbol: str) -> Fraction:
        """The (account, symbol) initial margin rate IM / notional, exactly: ``1 / leverage``, or ``imr_e8 / 10⁸``
        as set by ``SetInitialMarginRate``."""
        return 1 / Fraction(self.ledger.settings(self.ledger.get(account_id), symbol).exact_leverage)

    def position_mode(self, account_id: int) -> PositionMode:
        account = self.ledger.get(account_id)
        return account.position_mode if account is not None else PositionMode.ONE_WAY

    @_known_symbol
    def initial_margin(self, account_id: int, symbol: str = CROSS, position_side: PositionSide = PositionSide.BOTH) -> int:
        """IM of one position, or (``symbol`` omitted) Σ IM of the cross positions (units, rounded up)."""
        account = self.ledger.get(account_id)
        if account is None:
            return 0
        if symbol == CROSS:
            return self.risk.cross_im(account)
        position = self.ledger.position(account, symbol, position_side)
        return self.risk.position_im(account, symbol, position) if position.lots else 0

    @_known_symbol
    def maintenance_margin(self, account_id: int, symbol: str = CROSS,
                           position_side: PositionSide = PositionSide.BOTH) -> int:
        """Bracketed MM of one position (an isolated one on its entry value under bybit and bitmex, rules §10),
        or (``symbol`` omitted) Σ MM of the cross positions (units)."""
        account = self.ledger.get(account_id)
        if account is None:
            return 0
        if symbol == CROSS:
            return self.risk.cross_mm(account)
        position = self.ledger.position(account, symbol, position_side)
        return self.risk.part_mm(account, symbol, position) if position.lots else 0

    @_known_symbol
    def margin_balance(self, account_id: int, symbol: str = CROSS, position_side: PositionSide = PositionSide.BOTH) -> int:
        """Margin balance of the part holding the position (isolated: margin + uPnL; cross: wallet + Σ cross
        uPnL); ``symbol`` omitted: the cross account."""
        account = self.ledger.get(account_id)
        return 0 if account is None else self.risk.part_state(account, self._part(account, symbol), position_side)[0]

    def equity(self, account_id: int) -> int:
        """Cross margin balance + the margin balance of every isolated position (units): the account's value at
        the risk prices. O(positions), without building position views."""
        return self.risk.equity(self.ledger.get(account_id))

    def has_position(self, account_id: int) -> bool:
        """Whether the account holds an open position in any symbol. O(1)."""
        account = self.ledger.get(account_id)
        return account is not None and bool(account.positions)

    @_known_symbol
    def position_lots(self, account_id: int, symbol: str, position_side: PositionSide = PositionSide.BOTH) -> int:
        """The position's signed lots (long > 0), 0 when flat. O(1), without building a view."""
        return self.ledger.position(self.ledger.get(account_id), symbol, position_side).lots

    @_known_symbol
    def margin_ratio_e8(self, account_id: int, symbol: str = CROSS, position_side: PositionSide = PositionSide.BOTH) -> int:
        """MM ÷ margin balance ×10⁸ (rounded up) of the part holding the position; ``symbol`` omitted: the
        cross account. 0 without exposure; :data:`exchange.accounts.margin.RATIO_INF` when the balance is ≤ 0."""
        account = self.ledger.get(account_id)
        return 0 if account is None else self.risk.margin_ratio_e8(account, self._part(account, symbol), position_side)

    def _part(self, account, symbol: str) -> str:
        """The margin part holding ``symbol``'s positions: the symbol if isolated, else the cross account."""
        return symbol if symbol != CROSS and self.risk.is_isolated(account, symbol) else CROSS

    @_known_symbol
    def liquidation_price_ticks(self, account_id: int, symbol: str,
                                position_side: PositionSide = PositionSide.BOTH) -> int | None:
        """The first tick at which the position's margin part is liquidatable by the profile's rule (rules §5,
        §10: its comparison, and bybit's and bitmex's isolated MM on the entry value), None if none: for a long
        the highest such tick, for a short the lowest. It is what the liquidation stage acts on."""
        account = self.ledger.get(account_id)
        return None if account is None else self.risk.liquidation_price_ticks(account, symbol, position_side)

    @_known_symbol
    def liquidation_price_exact(self, account_id: int, symbol: str,
                                position_side: PositionSide = PositionSide.BOTH) -> Fraction | None:
        """The exact liquidation price, a ``Fraction`` of ticks (multiply by the tick size for the price): the
        real root of "margin balance = MM" (the MM before rounding; bybit and bitmex isolated: the venues'
        ``entry ∓ (margin − MM_entry) / size``); None if there is none (LP ≤ 0, or never). The liquidation tick
        (:meth:`liquidation_price_ticks`) is this rounded toward liquidation, where the integer rule flags it."""
        account = self.ledger.get(account_id)
        return None if account is None else self.risk.liquidation_price_exact(account, symbol, position_side)

    @_known_symbol
    def bankruptcy_price_ticks(self, account_id: int, symbol: str,
                               position_side: PositionSide = PositionSide.BOTH) -> int | None:
        """The profile's bankruptcy price of an open position (rules §10) — the price its liquidation order
        is limited at before clamping into the price range — rounded against the account: the zero-balance
        price (binance, bitmex, hyperliquid, bybit cross), ``entry × (1 ∓ 1/leverage)`` (bybit isolated) or
        dYdX's ``mark ∓ balance × MM_position / (MM × |lots| × K)``; None if there is none."""
        account = self.ledger.get(account_id)
        if account is None or (symbol, position_side) not in account.positions:
            return None
        side = PositionSide(position_side)
        return self.liquidation.bankruptcy_price_ticks(account, self._part(account, symbol), symbol, side)

    @_known_symbol
    def bankruptcy_price_exact(self, account_id: int, symbol: str,
                               position_side: PositionSide = PositionSide.BOTH) -> Fraction | None:
        """:meth:`bankruptcy_price_ticks` before rounding: a ``Fraction`` of ticks, or None."""
        account = self.ledger.get(account_id)
        if account is None or (symbol, position_side) not in account.positions:
            return None
        side = PositionSide(position_side)
        return self.liquidation.bankruptcy_price_exact(account, self._part(account, symbol), symbol, side)

    def liquidatable(self) -> list[Liquidatable]:
        """Isolated positions and cross accounts liquidatable now (exposure and margin balance ≤ MM, by the
        profile's comparison and isolated MM, rules §5, §10), ordered by (account, symbol, side); the cross
        account has symbol "". Incremental (:class:`~exchange.liquidation.monitor.RiskMonitor`): O(accounts touched since
        the last call + liquidatable parts), after a price move plus the index candidates. Equal to
        :meth:`liquidatable_full`."""
        return [p for p in self.monitor.liquidatable(self._touched) if p.account_id < FUND_ACCOUNT_BASE]

    def liquidatable_full(self) -> list[Liquidatable]:
        """:meth:`liquidatable` by the full loop over every holder (the oracle). O(positions)."""
        holders = set().union(*self.ledger.holders.values())
        return self.risk.liquidatable_full(self.ledger.accounts[a] for a in holders if a < FUND_ACCOUNT_BASE)

    def in_liquidation(self, account_id: int) -> bool:
        """Whether the account is in liquidation mode (only reduce-only orders; :mod:`exchange.liquidation.waterfall`)."""
        return account_id in self.liquidation.in_liquidation

    @_known_symbol
    def insurance_fund_account_id(self, symbol: str) -> int:
        """The reserved account of ``symbol``'s insurance fund (shared: the same for every symbol)."""
        return self.ledger.fund_ids[symbol]

    @_known_symbol
    def insurance_balance(self, symbol: str) -> int:
        """Balance (units) of the insurance fund serving ``symbol``."""
        return self.liquidation.funds.balance(symbol)

    @_known_symbol
    def insurance_history(self, symbol: str | None = None) -> list[HistoryEntry]:
        """Every balance change of the funds (of the fund serving ``symbol``), oldest first."""
        fund_id = None if symbol is None else self.ledger.fund_ids[symbol]
        return [e for e in self.liquidation.funds.history if fund_id is None or e.fund_account_id == fund_id]

    @_known_symbol
    def adl_quantile(self, account_id: int, symbol: str, position_side: PositionSide = PositionSide.BOTH) -> int:
        """ADL lights (1–5; 5 = deleveraged first) of an open position under the profile's ranking and indicator
        rule (binance: rank / user count in fifths; bitmex: 20 % steps of the side's quantity); 0 if none."""
        if self.ledger.get(account_id) is None:
            return 0
        return deleveraging.quantile(self.risk, symbol, (account_id, PositionSide(position_side)),
                                     self.profile.adl_ranking, self.liquidation.config.adl_seed,
                                     self.profile.adl_indicator, self.liquidation.adl_queue.ahead_of)

    @_known_symbol
    def adl_score(self, account_id: int, symbol: str,
                  position_side: PositionSide = PositionSide.BOTH) -> Fraction | None:
        """The exact score that ranks an open user position for ADL under the profile's ranking (higher is
        deleveraged first; :mod:`exchange.liquidation.adl.score`). None without a position, for an insurance fund (ranked after
        every user) and under the dydx profile's seeded order, which has no score."""
        account, side, ranking = self.ledger.get(account_id), PositionSide(position_side), self.profile.adl_ranking
        if (account is None or account_id >= FUND_ACCOUNT_BASE or ranking == ADLRanking.SEEDED_OFFSET
                or not self.ledger.position(account, symbol, side).lots):
            return None
        return deleveraging.score(self.risk, symbol, (account_id, side), ranking)

    # ==== state ===================================================================================
    def canonical_state(self) -> list:
        """Everything that defines the exchange's future behaviour, in a canonical order."""
        return [
            ("now", self.now_ns),
            ("next_order_id", self.next_order_id),
            *(
                (symbol, self._books[symbol].canonical_state(), self._triggers[symbol].canonical_state())
                for symbol in self.instruments
            ),
            ("position_sides", sorted((oid, int(side)) for oid, side in self._position_sides.items())),
            ("ledger", self.ledger.canonical_state()),
            ("prices", self.prices.canonical_state()),
            ("funding", self.funding.canonical_state()),
            ("in_liquidation", sorted(self.liquidation.in_liquidation)),
            ("liquidation_cooldowns", self.liquidation.cooldowns()),
            *([("settled", sorted(self.settled.items()))] if self.settled else []),
        ]

    def state_hash(self) -> str:
        """SHA-256 of the msgpack encoding of :meth:`canonical_state`; equal for both implementations. (The cycle
        collector is paused while the state is built and packed: :mod:`exchange.collector`.) O(state)."""
        with collector.paused():
            return hashlib.sha256(msgpack.packb(self.canonical_state(), use_bin_type=True)).hexdigest()

    def snapshot(self, path) -> None:
        """Write the complete state and configuration to ``path``, atomically, checksummed
        (:mod:`exchange.persistence.snapshot`, ``docs/snapshot.md``). Raises :class:`~exchange.persistence.snapshot.SnapshotError`."""
        from .persistence import snapshot

        snapshot.write(self, path)

    def snapshot_bytes(self) -> bytes:
        """The bytes :meth:`snapshot` writes (the same for both implementations for the same state)."""
        from .persistence import snapshot

        return snapshot.encode(self)

    @classmethod
    def restore(cls, path, implementation: str | None = None) -> Exchange:
        """A new exchange from a snapshot file, on ``implementation`` (default: the active one); it continues
        exactly as the exchange the snapshot was taken of (empty in-memory journal, same ``sequence``).
        Raises :class:`~exchange.persistence.snapshot.SnapshotError` for a missing, unreadable, truncated, corrupt or
        wrong-version file."""
        from .persistence import snapshot

        return snapshot.read(path, implementation, Exchange)

    @classmethod
    def restore_bytes(cls, data: bytes, implementation: str | None = None) -> Exchange:
        """:meth:`restore` from :meth:`snapshot_bytes`."""
        from .persistence import snapshot

        return snapshot.decode(data, implementation, Exchange)

    def __reduce__(self):
        """Pickle (and deepcopy) through the snapshot bytes, with the in-memory journal; the copy has no
        durable journal writer."""
        from .persistence import snapshot

        return snapshot.unpickle, (snapshot.encode(self), self.implementation, self.journal, Exchange)

    def check_invariants(self) -> None:
        """Raise AssertionError if any rules §9 invariant is broken (:func:`exchange.invariants.check`)."""
        from .invariants import check

        check(self)


_STP_MODES, _TIME_IN_FORCES = tuple(STPMode), tuple(TimeInForce)
#: commands that change only orders unless something fills (:meth:`Exchange._run`'s quiet skip)
_ORDER_COMMANDS = frozenset((PlaceOrder, CancelOrder, AmendOrder, CancelAll))
_MEMBERS = {cls: {int(member): member for member in cls} for cls in (CancelReason, OrderType, PositionSide, Side)}


def _enum(cls, value):
    """``cls(value)`` for the hot paths: a dict hit for a valid int, ``cls(value)`` itself otherwise (same
    result, same ValueError)."""
    try:
        return _MEMBERS[cls][value]
    except (KeyError, TypeError):
        return cls(value)


def _well_formed(inst: Instrument, side, tif, stp, price_ticks, qty_lots, market: bool) -> bool:
    """Whether an order passes the field filters the book checks first (side, TIF, STP, quantity, price
    range); account checks only run on well-formed orders so the book's codes keep their precedence."""
    return (
        side in (Side.BUY, Side.SELL) and stp in _STP_MODES and (market or tif in _TIME_IN_FORCES)
        and not check_qty(inst, qty_lots, market) and (market or not check_price_range(inst, price_ticks))
    )


def _money_cap_rejected(cmd) -> Rejected:
    """A deposit that would take the money the venue holds past 2⁶² units (its bound, rules §1)."""
    return Rejected(RejectCode.MALFORMED, f"{type(cmd).__name__}.amount_units: {cmd.amount_units} would take the "
                                          f"venue's money past 2**62 units.", getattr(cmd, "symbol", ""),
                    getattr(cmd, "account_id", 0))


def _rejected(code: int, cmd) -> Rejected:
    """The refusal of ``cmd`` with ``code``: the code's text (a PlaceOrder's -1102 names the field at fault)."""
    message = place_reject_message(code, cmd) if isinstance(cmd, PlaceOrder) else reject_message(code)
    return Rejected(RejectCode(code), message, getattr(cmd, "symbol", ""), getattr(cmd, "account_id", 0),
                    getattr(cmd, "order_id", 0))
