# cython: language_level=3
"""Compiled twin of the risk monitor's per-command methods (:class:`exchange.liquidation.monitor.RiskMonitor`):
``sync``, ``liquidatable``, ``margin_stage`` and ``_record``, the re-evaluation of the accounts a command
touched that every command with a fill pays for.

Built to ``exchange.liquidation._monitor``; only :mod:`exchange._impl` imports it (``monitor_kernel``). A
``RiskMonitor`` whose compiled writer is active makes one :class:`Stage` and binds its three methods over its
own. They work on the monitor's own sets and dicts (read on every call: a restore replaces them) in the
reference's order, and call the same risk methods on its compiled kernel, directly (``part_states`` while the
risk stage's is still the kernel's: a test may replace it to count evaluations), so events and state equal
the reference's. Inline twins, marked "twin of": ``RiskMonitor.follow_prices`` once the indexes are kept (with
``_price_moved``, ``_owners`` and the indexes' ``on_mark``; its early return otherwise), ``RiskMonitor.quiet``,
``RiskMonitor.forget``, ``RiskMonitor.mark_moved`` (in ``exchange/_handlers.pyx``), ``Risk.is_liquidatable`` (the
trigger's integer terms, read once) and ``RiskMonitor._rewrite`` of the dirty set; whatever those do, this must do
too.

The monitor's per-command fields (its sets and dicts, ``_synced``, ``_moves``, ...) are the slots of
:class:`~exchange.liquidation.monitor_fields.MonitorFields`, the base class of ``RiskMonitor``, so this stage, the
command loop (``exchange/_engine.pyx``) and the liquidation stage (``exchange/liquidation/_waterfall.pyx``) read and
write them as C fields (``_monitor.pxd`` declares the layout), while Python code reads them as attributes. They
hold the same Python objects the reference keeps.

Contents
--------
- :class:`Stage`  ``sync(touched)``, ``liquidatable(touched)``, ``margin_stage(touched, unchanged_since_sync)``
                  of one monitor, and the inline twins ``quiet``, ``forget`` and ``follow`` (``follow_prices``:
                  a risk-price move's fired entries, their owners, the re-check of the liquidation candidates,
                  the warning candidates due or stale) the loop and the liquidation stage call in C.
                  O(positions of the accounts re-evaluated) + the writer's rewrite; a price move O(log n +
                  entries fired + liquidatable parts exposed). ``store_flags``: twin of
                  ``RiskMonitor._store_flags``, a mark move's re-check of the index's candidates.
"""
from cpython.set cimport PySet_Discard
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from exchange._records cimport RecordMaker
from exchange.accounts._margin cimport margin_ratio_e8
from exchange.accounts._pretrade cimport RiskKernel

from exchange.accounts.margin import trigger_terms
from exchange.enums import PositionSide

cdef tuple CROSS_BOTH = ("", PositionSide.BOTH)  # the cross part's key (exchange.accounts.pretrade.CROSS)

check_monitor_layout()


cdef class Stage:
    """The per-command methods of one risk monitor (module docstring)."""

    def __init__(self, MonitorFields monitor, RecordMaker liquidatable_part, fire_mark):
        self.monitor, self.liquidatable_part, self.fire_mark = monitor, liquidatable_part, fire_mark
        kernel = getattr(monitor.risk, "kernel", None)
        if kernel is None:
            raise TypeError("the compiled monitor stage needs the compiled risk stage (Risk(compiled=True))")
        self.kernel, self.kernel_part_states = kernel, monitor.risk.part_states
        self.strict, self.min_mm = trigger_terms(monitor.risk.trigger)

    cdef inline list _part_states(self, part_states, account):
        """``part_states(account)``: the kernel's, called in C, while the risk stage's ``part_states`` is still
        the kernel's own (a test may replace it to count the evaluations)."""
        if part_states is self.kernel_part_states:
            return self.kernel.part_states(account)
        return part_states(account)

    cdef int follow(self, touched) except -1:
        """``monitor.follow_prices(touched)``: nothing when it would return at once (no index to start, no price
        moved); with the indexes kept, its twin :meth:`_follow_prices`; else (the indexes to start, or not kept:
        every holder re-checked) the reference method."""
        cdef MonitorFields m = self.monitor
        if not m.indexed:
            if (m.indexable and len(m.ledger.accounts) >= m.index_from_accounts) or m._marked or m._unmarked:
                m.follow_prices(touched)
        elif m._marked or m._unmarked:
            self._follow_prices(touched)
        return 0

    cdef int _follow_prices(self, touched) except -1:
        """Twin of ``RiskMonitor.follow_prices`` once the indexes are kept (``_price_moved`` inline:
        :meth:`_price_moved`)."""
        cdef MonitorFields m = self.monitor
        monitor = <object>m
        cdef set marked = m._marked, moved = m._marked | m._unmarked
        cdef dict symbol_index = monitor._symbol_index
        cdef list prices = monitor.prices
        cdef Py_ssize_t i
        mark_of = m.risk.mark_of
        holders_of = m.ledger.holders
        for symbol in (sorted(moved, key=symbol_index.__getitem__) if len(moved) > 1 else moved):
            i = symbol_index[symbol]
            price = mark_of(symbol)
            is_marked = symbol in marked
            if price == prices[i] and not is_marked:
                continue
            holders = holders_of[symbol]
            warn = set()
            if price != prices[i]:
                prices[i] = price
                m._moves += 1
                warn = self._price_moved(i, price, holders, touched | m._due)
            if is_marked:
                m._due |= warn | (m._stale & holders)
            else:
                m._stale |= warn
        marked.clear()
        return 0

    cdef set _price_moved(self, Py_ssize_t i, price, holders, set touched):
        """Twin of ``RiskMonitor._price_moved`` with the indexes kept (``_rewrite`` of the dirty set, ``on_mark`` of
        both indexes and ``_owners`` inline): re-check the liquidation candidates, return the warning candidates."""
        cdef MonitorFields m = self.monitor
        monitor = <object>m
        cdef set dirty = m._dirty, unindexed = monitor._unindexed
        rewrite = dirty - touched
        if rewrite:  # twin of RiskMonitor._rewrite (compiled: the writer)
            m.version += 1
            ids = sorted(rewrite)
            dirty.difference_update(rewrite)
            m._writer.write(ids, m.indexed)
        cdef set liq = self._owners(monitor, monitor.liq_index, i, price)
        cdef set warn = self._owners(monitor, monitor.warn_index, i, price)
        if unindexed:
            liq |= unindexed & holders
            warn |= unindexed & holders
        cdef dict parts = m.parts
        liq = (liq | {a for a in parts if a in holders}) - touched  # touched ones are re-evaluated anyway
        exact = [a for a in liq if a in unindexed]
        if exact:
            accounts = m.ledger.accounts
            part_states = m.risk.part_states
            for account_id in exact:
                account = accounts[account_id]
                self._record(parts, dirty, account, self._part_states(part_states, account))
                dirty.discard(account_id)  # their rows did not change
        row = monitor._row
        cdef list rechecked = [row[a] for a in liq if a not in unindexed]
        if rechecked:  # (the writer re-arms them without a numpy call per step; the monitor's _store_flags is
            monitor._store_flags(rechecked, *m._writer.recheck(rechecked))  # this stage's, unless a test put one)
        return warn

    cdef set _owners(self, monitor, index, Py_ssize_t i, price):
        """Twin of ``RiskMonitor._owners(*index.on_mark(i, price))``: the ledger ids of the portfolio accounts and
        of the slots' owners that the new mark fires in ``index``, whose entries are compiled (a stage exists only
        with the compiled writer, which both indexes' compiled entries make): the writer's ``fire_mark``, given to
        the constructor, called here as ``on_mark`` calls it."""
        index.marks[i] = price  # (a validated mark: inside the symbol's prices)
        down, up = index.lists[i]
        fired = self.fire_mark(down, up, price, index.acct_ver, index.pos_ver)
        if fired is None:
            return set()
        slots, rows = fired
        cdef list ids = monitor.ids
        cdef set owners = set()
        cdef const int32_t[:] owner
        cdef const int64_t[:] fired_slots = slots, fired_rows = rows
        cdef Py_ssize_t k
        cdef int32_t a
        if fired_slots.shape[0]:
            owner = monitor.portfolio.pos_account
            for k in range(fired_slots.shape[0]):
                a = owner[fired_slots[k]]
                if a >= 0:
                    owners.add(ids[a])
        for k in range(fired_rows.shape[0]):
            if fired_rows[k] >= 0:
                owners.add(ids[fired_rows[k]])
        return owners

    cdef bint quiet(self, touched) except -1:
        """Twin of ``RiskMonitor.quiet``."""
        cdef MonitorFields m = self.monitor
        cdef set stale = m._stale
        return not (m._marked or m._due or m._evaluated or m.parts) and (not stale or stale.isdisjoint(touched))

    cdef int forget(self, tuple account_ids) except -1:
        """Twin of ``RiskMonitor.forget``."""
        cdef MonitorFields m = self.monitor
        for due in (m._due, m._due_compared, m._due_stale):
            if due:
                for account_id in account_ids:
                    PySet_Discard(<set?>due, account_id)
        return 0

    cdef int _record(self, dict parts, set dirty, account, list states) except -1:
        """Twin of ``RiskMonitor._record``: the account's exact liquidatable parts from its part states; it
        becomes dirty."""
        cdef list found = None
        strict, min_mm = self.strict, self.min_mm
        for symbol, side, balance, mm in states:
            if balance + strict <= mm and mm >= min_mm:  # Risk.is_liquidatable with exposure
                if found is None:
                    found = []
                found.append((symbol, side))
        account_id = account.account_id
        if found is not None:
            parts[account_id] = found
        else:
            parts.pop(account_id, None)
        dirty.add(account_id)
        return 0

    def sync(self, touched):
        """Twin of ``RiskMonitor.sync``."""
        self._sync(touched)

    cdef int _sync(self, touched) except -1:
        """:meth:`sync` (called directly by the other two methods). The accounts to re-evaluate are the
        reference's ``todo``, found without building a set when nothing was logged or became due since the
        last sync of the command."""
        cdef MonitorFields m = self.monitor
        self.follow(touched)
        log = getattr(touched, "log", None)
        generation, moves = getattr(touched, "generation", None), m._moves
        synced = m._synced
        cdef set due = m._due
        cdef dict evaluated = m._evaluated
        cdef Py_ssize_t logged
        if log is not None and synced is not None and (<tuple?>synced)[0] == generation and synced[1] == moves:
            logged = synced[2]
            todo = touched.intersection(log[logged:]) if len(log) > logged else set()
            if due:
                todo |= due - evaluated.keys()
        else:
            todo = touched | due
        m._synced = (generation, moves, len(log)) if log is not None else None
        if not todo:
            return 0
        cdef dict accounts = m.ledger.accounts, parts = m.parts
        cdef set dirty = m._dirty
        part_states = m.risk.part_states  # (the risk stage's: a test counts the evaluations)
        for account_id in todo:
            account = accounts.get(account_id)
            if account is not None:
                states = evaluated[account_id] = self._part_states(part_states, account)
                self._record(parts, dirty, account, states)
        return 0

    cpdef list liquidatable(self, touched):
        """Twin of ``RiskMonitor.liquidatable``."""
        self._sync(touched)
        cdef MonitorFields m = self.monitor
        cdef dict parts = m.parts
        cdef list found = []
        if not parts:
            return found
        accounts = m.ledger.accounts
        for account_id in sorted(parts):
            account = accounts[account_id]
            for symbol, side in parts[account_id]:
                balance, mm, exposed = self.kernel.part_state(account, symbol, side)
                found.append(self.liquidatable_part.make((account_id, symbol, side, margin_ratio_e8(mm, balance, exposed))))
        return found

    cpdef list margin_stage(self, touched, bint unchanged_since_sync=False):
        """Twin of ``RiskMonitor.margin_stage``."""
        cdef MonitorFields m = self.monitor
        if m._synced is not None:
            self._sync(touched)
            unchanged_since_sync = True
        else:
            self.follow(touched)
        cdef set due = m._due
        if due:
            touched = touched | due
        cdef dict evaluated = m._evaluated if unchanged_since_sync else {}
        cdef dict accounts = m.ledger.accounts, parts = m.parts
        cdef set dirty = m._dirty
        cdef list events = []
        part_states = m.risk.part_states  # the risk stage's, like sync's (replaceable: a test counts the calls)
        for account_id in (sorted(touched) if len(touched) > 1 else touched):
            account = accounts[account_id]
            states = evaluated.get(account_id)
            if states is None:
                states = self._part_states(part_states, account)
                self._record(parts, dirty, account, states)
            calls = self.kernel.margin_calls(account, states)
            if calls:
                events += calls
        cdef set stale = m._stale
        if stale:
            stale.difference_update(touched)
        m._due, m._due_compared, m._due_stale = set(), set(), set()
        m._evaluated, m._synced, m._mirrored = {}, None, None
        writer = m._writer
        if writer is not None and m.indexed and dirty:  # twin of RiskMonitor._rewrite(self._dirty)
            m.version += 1
            ids = sorted(dirty)
            dirty.clear()
            writer.write(ids, True)
        return events

    # -- a mark move's re-check ------------------------------------------------------------------------
    cpdef store_flags(self, list rows, liq_slots, liq_accounts):
        """Twin of ``RiskMonitor._store_flags``: the liquidatable parts of the re-checked portfolio accounts ``rows``
        from the index's exact flags (their cross part for ``liq_accounts``, an isolated one per slot of
        ``liq_slots``), in the monitor's ``parts``. O(rows + flags · log)."""
        monitor = <object>self.monitor
        p = monitor.portfolio
        cdef const int32_t[:] owner = p.pos_account
        cdef const int16_t[:] symbol = p.pos_symbol
        cdef const int8_t[:] side = p.pos_side
        cdef list slot_keys = monitor._slot_keys, ids = monitor.ids
        cdef dict parts = self.monitor.parts
        cdef dict found = {a: [] for a in rows}
        cdef list slots = liq_slots.tolist()
        cdef Py_ssize_t j
        for a in liq_accounts.tolist():
            (<list>found[a]).append(CROSS_BOTH)
        slots.sort()
        for j in slots:
            (<list>found[owner[j]]).append((<list>slot_keys[symbol[j]])[side[j]])
        for a, flagged in found.items():
            account_id = ids[a]
            if flagged:
                parts[account_id] = sorted(flagged)  # the cross part ("") first, as in Risk.parts
            else:
                parts.pop(account_id, None)
