"""The risk monitor: the engine's exact, incremental knowledge of which margin parts are liquidatable, and of
which holders a mark move may have pushed across the margin-call level.

What it keeps
-------------
- A struct-of-arrays mirror of the ledger (:class:`~exchange.accounts.storage.Portfolio`: per account its wallet,
  per position key its size, entry cost, isolated margin, margin mode and leverage; the instrument tables
  carry the risk stage's bracket rows). Portfolio account ``i`` is ledger account ``ids[i]``; a slot's
  position key is read from its symbol and side columns (:meth:`RiskMonitor.slot_key`: the ledger's interned
  key tuples, so the mirror keeps no Python object per position), and a closed position keeps its slot, flat.
  Ledger account ``id`` is portfolio account ``_row[id]``: a dict under the reference, compiled a C hash map
  (:class:`exchange.clearing._sweep.IdRows`, 16 bytes a cell, where a dict of Python ints costs about 90 bytes
  an account). So per account the mirror holds, besides its arrays, one ``ids`` entry and one map cell.
- Two trigger indexes over the mirror (:mod:`exchange.liquidation.index`): :class:`~exchange.liquidation.index.LiqIndex`
  (liquidation thresholds and safe bands; the compiled kernel when it is active) and
  :class:`~exchange.liquidation.index.WarnIndex` (bands of the margin-call level).
- ``parts``: account id -> its liquidatable parts (the answer of :meth:`RiskMonitor.liquidatable`, exact).

The rule it relies on (the engine's sync rule)
----------------------------------------------
Every code path that changes an account (wallet, positions, isolated margins, modes, leverage) adds its id
to the engine's ``touched`` set before the command ends. Then, with the risk prices of the symbols (mark, or
last trade price until a mark exists) as the only other input, an account that is not touched is unchanged.

How it stays exact
------------------
- A touched account is re-evaluated exactly (:meth:`exchange.accounts.pretrade.Risk.part_states`, Python integers) when
  asked (:meth:`sync`, :meth:`liquidatable`, :meth:`margin_stage`) and becomes *dirty* until its mirror rows and
  index entries are rewritten, at the prices it was evaluated at (the indexes' marks):
  - compiled, at the end of the command (:meth:`margin_stage`), by one call into
    :class:`exchange.clearing._sweep.MonitorWriter` (rows, both indexes' entries, their pending buffers: no
    numpy call and no Python loop per account or position; a new account or position key goes through
    :meth:`_new_row` / :meth:`_add_slot` only when the arrays must grow or a block moves). So a price move
    never pays for work other commands did: after a million commands the next mark costs what its fired
    entries cost.
  - reference, lazily, in one batch, just before the indexes are next consulted (the next risk-price move),
    where per-account numpy and Python calls cost less in bulk. The marks are the same either way (nothing
    moves them in between), so both keep the same entries for every account the move does not concern, and
    the same events, stale holders and state.
- A risk-price move of a symbol pops the entries it fires: liquidation candidates (plus the parts already
  liquidatable and exposed to it, which may have recovered without firing) are re-checked exactly by the
  index (:meth:`~exchange.liquidation.index.LiqIndex.rearm`) and re-armed; warning candidates are the holders whose
  margin-call state may have changed. On a *mark* move they become *due* (the margin-call stage
  re-evaluates them, exactly as "every holder of a symbol whose mark moved" did, minus the holders whose
  state provably did not change); on a last-price move (no mark yet) the margin-call stage does not run
  for holders, so they are remembered as *stale* and become due at the next mark move of a symbol
  they hold.
- Without the indexes a price move re-checks every holder of the symbol (exact, the old way), each over all
  its positions. That is the mode below :data:`INDEX_FROM_ACCOUNTS` ledger accounts and as many holdings
  (account and symbol pairs with a position, :meth:`RiskMonitor.holdings`, counted when a price moves: a few
  accounts holding many symbols each would otherwise pay holders × positions per move) — index upkeep (numpy
  and kernel calls, Python warning bands) costs more than re-checking a few holders —, and for tables the indexes cannot follow
  (``InstrumentTable.indexable``: a stepwise MM charged on isolated positions at the mark, dYdX's "MM > 0" rule
  over a zero first rate; bitmex's stepwise MM is followed through its convex bounds). At the threshold the
  mirror is written and both indexes are built at the current prices, once. An account whose values break
  the mirror's 2⁶² bounds is kept out of it (flat rows) and re-checked on every move of a symbol it holds.

Costs: a command costs O(positions of the accounts it touched · log max_price) (compiled: its rewrite
included); a price move costs O(log n + entries fired + liquidatable parts exposed to it), plus, under the
reference, the batched rewrite of the accounts touched since the last one.
"""
from __future__ import annotations

import numpy as np

from ..accounts.ledger import FUND_ACCOUNT_BASE, Account, Ledger
from ..enums import MarginMode, PositionSide
from .index import _RAW_PENDING, LiqIndex, WarnIndex
from .._impl import sweep_kernel as _kernel  # the compiled writer (exchange/clearing/_sweep.pyx), None under the reference
from .._impl import monitor_kernel as _stage_kernel  # the compiled per-command methods (exchange/liquidation/_monitor.pyx)
from .._impl import records_kernel as _records_kernel  # RecordMaker (exchange/_records.pyx): the stage's records, in C
from ..accounts.margin import IsolatedMaintenance, margin_ratio_e8
from ..accounts.storage import InstrumentTable, Portfolio, PortfolioError
from .monitor_fields import MonitorFields  # the per-command fields as slots (the compiled stages read them in C)
from ..accounts.pretrade import CROSS, Liquidatable, Risk
from ..spec import Instrument

INDEX_FROM_ACCOUNTS = 256  #: ledger accounts, or holdings, from which the indexes are kept (module docstring)


class RiskMonitor(MonitorFields):
    """See the module docstring. ``compiled``: the LiqIndex implementation (None = the active one)."""

    def __init__(self, instruments: dict[str, Instrument], ledger: Ledger, risk: Risk, compiled: bool | None = None):
        self.ledger = ledger
        self.risk = risk
        self.symbols = list(instruments)
        self._symbol_index = {symbol: i for i, symbol in enumerate(self.symbols)}
        rows = [risk.brackets[s] for s in self.symbols]
        self.portfolio = Portfolio(InstrumentTable(
            [instruments[s] for s in self.symbols], rows, trigger=risk.trigger,
            isolated_maintenance=IsolatedMaintenance.ENTRY if risk.isolated_at_entry else IsolatedMaintenance.MARK))
        self.indexable = self.portfolio.table.indexable
        self.indexed = False  # the indexes are kept (module docstring); set once, by _start_indexes
        self.index_from_accounts = INDEX_FROM_ACCOUNTS
        marks = np.ones(len(self.symbols), np.int64)
        self.liq_index = LiqIndex(self.portfolio, marks, compiled=compiled)
        self.warn_index = WarnIndex(self.portfolio, marks, risk.options.margin_call_e8, compiled=self.liq_index.compiled)
        self.prices = [0] * len(self.symbols)  # risk price each symbol was last followed at (0: none yet)
        self.ids: list[int] = []  # portfolio account -> ledger account id
        self._ids = np.zeros(0, dtype=np.int64)  # ``ids`` as an array (rebuilt when it grows)
        self.version = 0  # changes whenever mirror rows are written (readers cache on it)
        # symbol index -> position side -> the ledger's interned key (what a slot's symbol and side columns name)
        self._slot_keys = [[ledger.key(symbol, side) if side else None for side in range(4)] for symbol in self.symbols]
        self.parts: dict[int, list[tuple[str, PositionSide]]] = {}  # account id -> liquidatable parts (non-empty)
        # ledger account id -> portfolio account (compiled: a C hash map of 16-byte cells, module docstring)
        self._row = _kernel.IdRows() if _kernel is not None else {}
        self._dirty: set[int] = set()  # evaluated accounts whose rows and entries are not rewritten yet
        self._stale: set[int] = set()  # holders whose margin-call state a last-price move may have changed
        self._due: set[int] = set()  # holders a mark move of this command may have pushed (re-evaluated with touched)
        self._due_compared: set[int] = set()  # due accounts :meth:`stale_due` compared with the ledger
        self._evaluated: dict[int, list] = {}  # account id -> part states :meth:`sync` found in this command
        self._moves = 0  # risk-price moves followed so far (an evaluation stands while it is unchanged)
        self._synced: tuple | None = None  # (touched generation, _moves, log length) at this command's last sync
        self._mirrored: tuple | None = None  # (touched generation, _moves) of the last full pass of :meth:`mirror`
        self._due_stale: set[int] = set()  # those whose rows did not match
        self._marked: set[str] = set()  # symbols whose mark was set since prices were last followed
        self._unmarked: set[str] = set(self.symbols)  # no mark yet: the risk price is the last trade price
        self._unindexed: set[int] = set()  # accounts outside the mirror's bounds
        # rows and entries of touched accounts written by compiled code (None: by _write and the indexes' rearm)
        self._writer = _kernel.MonitorWriter(self, self.liq_index, self.warn_index, _RAW_PENDING) \
            if self.liq_index.compiled and self.warn_index.compiled else None
        self._stage = None  # compiled: the per-command methods in C (the loop and the liquidation stage call it)
        if self._writer is not None:  # compiled: sync, liquidatable and margin_stage are the twins in C
            stage = self._stage = _stage_kernel.Stage(self, _records_kernel.RecordMaker(Liquidatable),
                                                      _kernel.fire_mark)
            self.sync, self.liquidatable, self.margin_stage = stage.sync, stage.liquidatable, stage.margin_stage
            self._store_flags = stage.store_flags  # a mark move's re-check

    # -- the engine's calls ---------------------------------------------------------------------------------
    def mark_moved(self, symbol: str) -> None:
        """The mark of ``symbol`` was set (even to its old value): its holders are due a margin-call check.
        (The engine sets marks only here, so a marked symbol's risk price moves only through this call; compiled,
        ``exchange/_handlers.pyx`` does the same inline.)"""
        self._marked.add(symbol)
        self._unmarked.discard(symbol)

    def follow_prices(self, touched: set[int]) -> None:
        """Rewrite the dirty accounts (except ``touched``, re-evaluated anyway), then follow every risk-price
        move since the last call (module docstring); warning candidates of mark moves become *due*: the
        command's re-evaluations (:meth:`sync`, :meth:`margin_stage`) cover ``touched`` and them. (They are
        kept apart from ``touched``, which then names exactly the accounts the command changed.)
        O(symbols without a mark yet) when no price moved. (Compiled, once the indexes are kept, the stage runs its
        twin, ``Stage._follow_prices`` with :meth:`_price_moved` and :meth:`_owners` inline: whatever these do, that
        must do too.)"""
        if not self.indexed and self.indexable and len(self.ledger.accounts) >= self.index_from_accounts:
            self._start_indexes()
        if not (self._marked or self._unmarked):  # every symbol has a mark and none was set: nothing moved
            return
        if not self.indexed and self.indexable and self.holdings() >= self.index_from_accounts:
            self._start_indexes()  # few accounts, many positions: a move would re-check them all (O(symbols) to ask)
        for symbol in sorted(self._marked | self._unmarked, key=self._symbol_index.__getitem__):
            i = self._symbol_index[symbol]
            price = self.risk.mark_of(symbol)
            marked = symbol in self._marked
            if price == self.prices[i] and not marked:
                continue
            holders = self.ledger.holders[symbol]
            warn: set[int] = set()
            if price != self.prices[i]:
                self.prices[i] = price
                self._moves += 1
                warn = self._price_moved(i, price, holders, touched | self._due)
            if marked:
                self._due |= warn | (self._stale & holders)
            else:
                self._stale |= warn
        self._marked.clear()

    def sync(self, touched: set[int]) -> None:
        """:meth:`follow_prices`, then re-evaluate the liquidatable parts of every touched or due account.

        Incremental within a command: when ``touched`` is the engine's :class:`~exchange.accounts.touched.Touched`
        and no risk price moved since the previous call of the same command, only the accounts logged since
        that call and the newly due ones are re-evaluated (the others are unchanged: the sync rule, and their
        evaluations in :attr:`_evaluated` stand). O(positions of the accounts re-evaluated)."""
        self.follow_prices(touched)
        log = getattr(touched, "log", None)
        now = (getattr(touched, "generation", None), self._moves)
        if log is not None and self._synced is not None and self._synced[:2] == now:
            todo = touched.intersection(log[self._synced[2]:]) | (self._due - self._evaluated.keys())
        else:
            todo = touched | self._due
        self._synced = (*now, len(log)) if log is not None else None
        for account_id in todo:
            account = self.ledger.accounts.get(account_id)
            if account is not None:
                states = self._evaluated[account_id] = self.risk.part_states(account)
                self._record(account, states)

    def quiet(self, touched: set[int]) -> bool:
        """Whether re-evaluating ``touched`` now would change nothing, provided the command left their wallets,
        positions, isolated margins and settings as they were and moved no price: prices are followed (no mark
        set since :meth:`follow_prices`), nothing is due or evaluated in this command, none of ``touched`` is
        stale, and no part is liquidatable. Between commands every account that is neither stale nor due has
        its exact part states recorded here (``parts``) and its margin-call state on the ledger (``warned``),
        so re-evaluating an unchanged one rewrites the same values. O(1) + O(touched)."""
        return not (self._marked or self._due or self._evaluated or self.parts) and self._stale.isdisjoint(touched)

    def margin_stage(self, touched: set[int], unchanged_since_sync: bool = False) -> list:
        """:meth:`follow_prices`, then the margin-call stage: each touched or due account, in id order, gets
        its MarginCall events and its liquidatable parts from one evaluation (the one :meth:`sync` made in
        this command when the caller says nothing changed since); the command ends (nothing is due any
        more). Returns the events."""
        if self._synced is not None:  # a sync in this command: bring it up to date, then use its evaluations
            self.sync(touched)
            unchanged_since_sync = True
        else:
            self.follow_prices(touched)
        touched = touched | self._due
        evaluated = self._evaluated if unchanged_since_sync else {}
        events: list = []
        for account_id in sorted(touched):
            account = self.ledger.accounts[account_id]
            states = evaluated.get(account_id)
            if states is None:
                states = self.risk.part_states(account)
                self._record(account, states)
            # else sync recorded these very states in this command and nothing changed since: no second _record
            events += self.risk.margin_calls(account, states)
        self._stale -= touched
        self._due, self._due_compared, self._due_stale = set(), set(), set()
        self._evaluated, self._synced, self._mirrored = {}, None, None
        if self._writer is not None and self.indexed:  # compiled: the command's accounts are written as it ends
            self._rewrite(self._dirty)
        return events

    def liquidatable(self, touched: set[int]) -> list[Liquidatable]:
        """:meth:`sync`, then every liquidatable part by (account, symbol, side) with its margin ratio
        (computed now). O(touched + liquidatable parts)."""
        self.sync(touched)
        found = []
        for account_id in sorted(self.parts):
            account = self.ledger.accounts[account_id]
            for symbol, side in self.parts[account_id]:
                balance, mm, exposed = self.risk.part_state(account, symbol, side)
                found.append(Liquidatable(account_id, symbol, side, margin_ratio_e8(mm, balance, exposed)))
        return found

    def mirror(self, changing: set[int]) -> tuple[Portfolio, np.ndarray, int] | None:
        """The mirror for a reader in the middle of a command (ADL ranking): rewrite the dirty accounts that are
        neither ``changing`` (the accounts the command changed) nor due, and return ``(portfolio, ids,
        version)``: ``ids`` the ledger id of each portfolio account (int64), ``version`` a number that changes
        whenever rows are written. Rows equal the ledger except, possibly, for ``changing``, :meth:`stale_due`
        and :attr:`unindexed` (:meth:`signature` and :meth:`written` tell). None while the mirror is not kept."""
        if not self.indexed:
            return None
        # Within a command and without a price move, accounts become dirty after this only through sync and the
        # margin stage, which record changing or due ones (both only grow until the command ends): one pass.
        now = (getattr(changing, "generation", None), self._moves)
        if now[0] is None or self._mirrored != now:
            self._rewrite(self._dirty - changing - self._due)
            self._mirrored = now
        if len(self._ids) != len(self.ids):
            self._ids = np.array(self.ids, dtype=np.int64)
        return self.portfolio, self._ids, self.version

    def signature(self, account_id: int) -> tuple:
        """What the mirror rows of an account hold when they equal the ledger: the wallet, and by key every
        position with a size, entry cost or isolated margin: those, leverage and margin mode. O(its positions).
        (Compiled: ``MonitorWriter.signature``.)"""
        if self._writer is not None:
            return self._writer.signature(account_id)
        account = self.ledger.accounts[account_id]
        rows = []
        for key, p in account.positions.items():
            if p.lots or p.entry_cost or p.isolated_margin_units:
                settings = self.ledger.settings(account, key[0])
                rows.append((key, p.lots, p.entry_cost, p.isolated_margin_units, settings.leverage,
                             int(settings.margin_mode)))
        return account.wallet_units, tuple(sorted(rows))

    def written(self, account_id: int) -> tuple | None:
        """The :meth:`signature` the account's rows hold (read from them; None: no rows, or outside the
        mirror's bounds); rows equal the ledger exactly when it is the current signature. O(its slots).
        (Compiled: ``MonitorWriter.written``.)"""
        a = self._row.get(account_id)
        if a is None or account_id in self._unindexed:
            return None
        if self._writer is not None:
            return self._writer.written(a)
        wallet, slots = self._rows(a)
        return wallet, tuple(sorted((key, *row) for key, row in zip(self.keys_of(a), slots) if row[0] or row[1] or row[2]))

    def slot_key(self, j: int) -> tuple[str, PositionSide]:
        """The position key of portfolio slot ``j`` (an account's slot). O(1)."""
        p = self.portfolio
        return self._slot_keys[int(p.pos_symbol[j])][int(p.pos_side[j])]

    def keys_of(self, a: int) -> list[tuple[str, PositionSide]]:
        """The position keys of portfolio account ``a``'s slots, in slot order. O(its slots)."""
        p = self.portfolio
        b, e = int(p.acct_begin[a]), int(p.acct_begin[a]) + int(p.acct_count[a])
        return [self._slot_keys[s][side] for s, side in zip(p.pos_symbol[b:e].tolist(), p.pos_side[b:e].tolist())]

    def _rows(self, a: int) -> tuple:
        """``(wallet, ((size, entry cost, isolated margin, leverage, margin mode) per slot))`` of portfolio account
        ``a``, read with numpy."""
        p = self.portfolio
        b, e = int(p.acct_begin[a]), int(p.acct_begin[a]) + int(p.acct_count[a])
        columns = (p.pos_qty_lots, p.pos_entry_cost, p.pos_iso_margin_units, p.pos_leverage, p.pos_mode)
        return int(p.acct_wallet_units[a]), tuple(zip(*(column[b:e].tolist() for column in columns)))

    def forget(self, account_ids) -> None:
        """Drop ``account_ids`` from the due re-evaluations of this command (the insurance funds)."""
        for due in (self._due, self._due_compared, self._due_stale):  # (compared ⊆ due: stale_due's test)
            due.difference_update(account_ids)

    def stale_due(self, changing: set[int]) -> set[int]:
        """The due accounts whose rows do not match the ledger (``changing``: the accounts the command has
        changed so far, the engine's touched set). A due account not also touched is unchanged
        by the command, and its rows are not rewritten while it is due, so each is compared once per command.
        O(1) when no account became due since the last call (``_due_compared`` ⊆ ``_due``).

        Compiled, nothing is left to rewrite between commands (every row was written from its account's ledger
        state as the previous command ended), rows written during a command are written from the current state,
        and a ledger state changes only through the command's stages, which add the account to ``changing``
        (the engine's touched set: the sync rule), except an insurance fund's (a takeover moves positions into it
        without touching it). So a due user account outside ``changing`` whose rows are in the mirror holds its
        ledger state, and only the due accounts in ``changing``, the funds and the accounts outside the mirror's
        bounds or without rows are compared (``tests/test_monitor_incremental.py`` checks the answer against comparing
        every one). The reference, whose rewrites are lazy, compares every one."""
        if len(self._due_compared) == len(self._due):
            return self._due_stale
        new = self._due - self._due_compared
        if new:
            self._due_compared |= new
            if self._writer is not None:  # compiled: the suspects, tested in one call
                unindexed, rows = self._unindexed, self._row
                suspects = [a for a in new if a in changing or a >= FUND_ACCOUNT_BASE or a in unindexed
                            or rows.get(a) is None]
                if suspects:
                    self._due_stale |= self._writer.stale_of(suspects, unindexed)
            else:
                self._due_stale |= {a for a in new if self.written(a) != self.signature(a)}
        return self._due_stale

    @property
    def unindexed(self) -> set[int]:
        """Accounts kept out of the mirror (their values break its bounds; their rows are flat)."""
        return self._unindexed

    def row_of(self, account_id: int) -> int | None:
        """The account's portfolio account, if it has one."""
        return self._row.get(account_id)

    def flush(self) -> None:
        """Rewrite every dirty account now (tests and benchmarks: the mirror then equals the ledger)."""
        self._rewrite(self._dirty)

    def check_invariants(self) -> None:
        """Raise AssertionError if the mirror or an index is inconsistent between commands: compiled, nothing is
        left to rewrite; every trader's rows equal the ledger unless it waits to be rewritten (the reference's
        lazy batch) or is outside the mirror's bounds; the portfolio's layout holds; both indexes follow the
        risk prices; every current entry names a live part (an open isolated position, or an account with a
        cross leg). O(accounts + entries)."""
        if not self.indexed:
            return
        assert self._writer is None or not self._dirty, "compiled: accounts left to rewrite"
        for account_id in self.ledger.accounts.keys() - self._dirty - self._unindexed:
            if account_id < FUND_ACCOUNT_BASE:  # the insurance funds are never liquidated nor ranked
                assert self.written(account_id) == self.signature(account_id), f"account {account_id}: rows"
        p = self.portfolio
        p.check_invariants()
        for index in (self.liq_index, self.warn_index):
            assert index.marks.tolist() == [max(price, 1) for price in self.prices], "index marks"
            for key in index.live_keys().tolist():
                i = key >> 1
                if key & 1:
                    legs = p.slots_of(i)
                    live = ((p.pos_mode[legs] != int(MarginMode.ISOLATED)) & (p.pos_qty_lots[legs] != 0)).any()
                else:
                    live = p.pos_account[i] >= 0 and p.pos_mode[i] == int(MarginMode.ISOLATED) and p.pos_qty_lots[i] != 0
                assert live, f"entry key {key} names no live part"

    # -- snapshots ------------------------------------------------------------------------------------------
    def snapshot_state(self) -> list:
        """``[stale accounts (ascending)]``: the one piece of the monitor that is not derived from the ledger and
        the prices between commands (the holders a last-price move may have pushed across the margin-call
        level, re-evaluated at the next mark move of a symbol they hold). The mirror, the indexes and
        ``parts`` are rebuilt by :meth:`restore_state`; nothing is due between commands."""
        return [sorted(self._stale)]

    def restore_state(self, state, marked: set[str]) -> None:
        """Load a :meth:`snapshot_state` into a new monitor over a restored ledger and books, as the end of a
        command leaves it: the current risk prices followed (``marked``: the symbols with a mark), every
        account's liquidatable parts evaluated exactly, the stale holders restored. The mirror and the
        indexes are written at the next price move (or built, from :data:`INDEX_FROM_ACCOUNTS` accounts).
        O(positions). Raises ValueError for a stale account the ledger does not have."""
        (stale,) = state
        self._stale = {int(account_id) for account_id in stale}
        if not self._stale <= self.ledger.accounts.keys():
            raise ValueError("a stale account is not in the ledger")
        self.prices = [self.risk.mark_of(symbol) for symbol in self.symbols]
        self._unmarked = {symbol for symbol in self.symbols if symbol not in marked}
        self._marked = set()
        for account in self.ledger.accounts.values():
            self._record(account, self.risk.part_states(account))

    # -- internals ------------------------------------------------------------------------------------------
    def _start_indexes(self) -> None:
        """Write every account into the mirror and build both indexes at the prices last followed (which
        every account not stale was evaluated at). O(positions · log)."""
        self._dirty = set()
        self.version += 1
        if self._writer is not None:
            self._writer.write(list(self.ledger.accounts), False)
        else:
            for account_id in self.ledger.accounts:
                self._write(account_id)
        self.indexed = True
        for index in (self.liq_index, self.warn_index):
            index.marks[:] = [max(price, 1) for price in self.prices]
            index.rebuild()

    def _record(self, account: Account, states) -> None:
        """Store the exact liquidatable parts of an account from its part states; it becomes dirty."""
        parts = [(symbol, side) for symbol, side, balance, mm in states if self.risk.is_liquidatable(balance, mm, True)]
        if parts:
            self.parts[account.account_id] = parts
        else:
            self.parts.pop(account.account_id, None)
        self._dirty.add(account.account_id)

    def holdings(self) -> int:
        """(account, symbol) pairs with a position: what a price move without the indexes re-checks, summed over
        the symbols (an account holding k symbols counts k times). O(symbols)."""
        return sum(map(len, self.ledger.holders.values()))

    def _price_moved(self, i: int, price: int, holders: set[int], touched: set[int]) -> set[int]:
        """Follow one symbol's new risk price: re-check the liquidation candidates, return the warning
        candidates (ledger ids)."""
        if not self.indexed:
            liq = warn = set(holders)
        else:
            self._rewrite(self._dirty - touched)
            liq = self._owners(*self.liq_index.on_mark(i, price))
            warn = self._owners(*self.warn_index.on_mark(i, price))
            liq |= self._unindexed & holders
            warn |= self._unindexed & holders
        liq = (liq | {a for a in self.parts if a in holders}) - touched  # touched ones are re-evaluated anyway
        exact = [a for a in liq if not self.indexed or a in self._unindexed]
        for account_id in exact:
            self._record(self.ledger.accounts[account_id], self.risk.part_states(self.ledger.accounts[account_id]))
            self._dirty.discard(account_id)  # their rows did not change
        rechecked = [self._row[a] for a in liq if a not in self._unindexed and self.indexed]
        if rechecked:  # (compiled: the writer re-arms them without a numpy call per step)
            rearm = self.liq_index.rearm if self._writer is None else self._writer.recheck
            self._store_flags(rechecked, *rearm(rechecked))
        return warn

    def _owners(self, slots: np.ndarray, accounts: np.ndarray) -> set[int]:
        """Ledger ids of the portfolio accounts and of the slots' owners."""
        owners = self.portfolio.pos_account[slots].tolist() + accounts.tolist()
        return {self.ids[a] for a in owners if a >= 0}

    def _store_flags(self, rows: list[int], liq_slots: np.ndarray, liq_accounts: np.ndarray) -> None:
        """Set ``parts`` of the re-checked portfolio accounts ``rows`` from the index's exact flags."""
        p = self.portfolio
        found: dict[int, list] = {a: [] for a in rows}
        for a in liq_accounts.tolist():
            found[a].append((CROSS, PositionSide.BOTH))
        for j in sorted(liq_slots.tolist()):
            a = int(p.pos_account[j])
            found[a].append(self.slot_key(j))
        for a, parts in found.items():
            account_id = self.ids[a]
            if parts:
                self.parts[account_id] = sorted(parts)  # the cross part ("") first, as in Risk.parts
            else:
                self.parts.pop(account_id, None)

    def _rewrite(self, account_ids: set[int]) -> None:
        """Rewrite the mirror rows of ``account_ids`` from the ledger and re-arm both indexes for them
        (one batch; compiled: :class:`exchange.clearing._sweep.MonitorWriter`, no numpy call per account).
        O(their positions) plus the index updates."""
        if not account_ids:
            return
        self.version += 1
        ids = sorted(account_ids)
        self._dirty.difference_update(account_ids)
        if self._writer is not None:
            self._writer.write(ids, self.indexed)
            return
        rows, left = [], []
        for account_id in ids:
            row, moved = self._write(account_id)
            rows.append(row)
            left += moved
        if self.indexed:
            self.liq_index.rearm(rows, left)
            self.warn_index.rearm(rows, left)

    def _new_row(self, account: Account) -> int:
        """A flat portfolio account for a ledger account the mirror does not hold yet."""
        a = self._row[account.account_id] = self.portfolio.add_account(0, capacity=max(1, len(account.positions)))
        self.ids.append(account.account_id)
        return a

    def _add_slot(self, a: int, key: tuple[str, PositionSide]) -> list[int]:
        """A flat slot for position ``key`` of portfolio account ``a``; returns the slots a relocation of its
        block left."""
        p = self.portfolio
        begin, cap = int(p.acct_begin[a]), int(p.acct_cap[a])
        p.add_position(a, self._symbol_index[key[0]], side=key[1])
        return list(range(begin, begin + cap)) if int(p.acct_begin[a]) != begin else []

    def _write(self, account_id: int) -> tuple[int, list[int]]:
        """Write one account's rows (all flat first, so no intermediate state breaks a bound); returns its
        portfolio account and the slots a relocation left. Outside the bounds it stays flat, unindexed.
        (The reference of :class:`exchange.clearing._sweep.MonitorWriter`.)"""
        p, account = self.portfolio, self.ledger.accounts[account_id]
        a = self._row.get(account_id)
        if a is None:
            a = self._new_row(account)
        keys = self.keys_of(a)
        for j in p.slots_of(a):
            p.set_position(j, 0, 0, 0)
        p.set_wallet(a, 0)
        left = []
        for key in account.positions:
            if key not in keys:
                left += self._add_slot(a, key)
        try:
            p.set_wallet(a, account.wallet_units)
            for j, (symbol, side) in zip(p.slots_of(a), self.keys_of(a)):
                position = account.positions.get((symbol, side))
                if position is not None:
                    settings = self.ledger.settings(account, symbol)
                    p.set_position(j, position.lots, position.entry_cost, position.isolated_margin_units,
                                   settings.leverage, settings.margin_mode)
            self._unindexed.discard(account_id)
        except PortfolioError:
            for j in p.slots_of(a):
                p.set_position(j, 0, 0, 0)
            p.set_wallet(a, 0)
            self._unindexed.add(account_id)
        return a, left
