# cython: language_level=3
"""Compiled twin of the engine's command loop: ``Exchange.apply``, ``Exchange._apply_valid`` and
``Exchange._run`` (the validation boundary, journaling, the stages of one command, the halt on an internal error).

Built to ``exchange._engine``; only :mod:`exchange._impl` imports it (``engine_kernel``). The
:class:`~exchange.Exchange` of the compiled implementation makes one :class:`Loop` and binds its ``apply``
(unless a subclass overrides ``apply``: then the subclass's method runs and reaches this loop through
``_apply_valid``) and ``apply_valid``. It keeps what the exchange sets once in its constructor (the handlers,
the monitor's stage, the liquidation stage), reads the rest on every call, as the reference
does (a restore or a test may replace them: journal, sequence, touched set), and calls the same stage methods
in the same order, so events and state equal the reference's. The boundary's fast check is called in C
(``exchange/boundary/_validate.pxd``).

What it saves is the Python frames of the loop on every command. The monitor's stage is called in C
(``exchange/liquidation/_monitor.pxd``: its twins of ``RiskMonitor.follow_prices``'s early return, of
``RiskMonitor.quiet`` and of ``margin_stage``), and ``Touched.clear`` runs inline, marked "twin of"; whatever
those do, this must do too (the differential tests run every stream through both).

Contents
--------
- :class:`Loop`       ``apply(command)`` and ``apply_valid(command)`` of one exchange. O(1) + the command's stages.
"""
from cpython.set cimport PySet_Clear
from exchange._records cimport untrack
from exchange.boundary._validate cimport FastCheck
from exchange.liquidation._monitor cimport Stage, check_monitor_layout

from exchange.events import Rejected


check_exchange_layout()
check_monitor_layout()

cdef class Loop:
    """The command loop of one exchange (module docstring)."""

    cdef ExchangeFields ex
    cdef object halted_error  # exchange.engine.ExchangeHalted
    cdef frozenset order_commands  # exchange.engine._ORDER_COMMANDS
    cdef dict fast  # command class -> the boundary's compiled fast check (what ex._check tries first)
    cdef object checked_apply  # Exchange.apply itself: for a command the fast check does not pass
    # what the exchange sets once in its constructor (the rest, which a restore or a test may replace, is read
    # from it on every command)
    cdef dict handlers
    cdef Stage monitor_stage  # the risk monitor's compiled stage, called in C
    cdef object liquidation

    def __init__(self, ex, halted_error, frozenset order_commands, dict fast, checked_apply):
        self.ex, self.halted_error, self.order_commands = ex, halted_error, order_commands
        self.fast, self.checked_apply = fast, checked_apply
        self.handlers = ex._handlers
        self.liquidation = ex.liquidation
        if ex.monitor._stage is None:
            raise TypeError("the compiled loop needs the risk monitor's compiled stage")
        self.monitor_stage = ex.monitor._stage

    def apply(self, command):
        """Twin of ``Exchange.apply``: a command the boundary's fast check passes (``ex._check`` would return
        None at once) goes on to :meth:`apply_valid`; any other object goes through ``Exchange.apply`` itself,
        which checks it field by field (a Rejected naming the field, TypeError for a non-command, or, when
        every rule passes after all, :meth:`apply_valid` again)."""
        cdef ExchangeFields ex = self.ex
        if ex.halted is not None:
            raise self.halted_error(ex.halted)
        cdef FastCheck passes = self.fast.get(type(command))  # (the checks, called directly)
        if passes is None or not passes.check(command):
            return self.checked_apply(ex, command)
        return self._apply_valid(ex, command)

    def apply_valid(self, command):
        """Twin of ``Exchange._apply_valid``."""
        cdef ExchangeFields ex = self.ex
        if ex.halted is not None:
            raise self.halted_error(ex.halted)
        return self._apply_valid(ex, command)

    cdef list _apply_valid(self, ExchangeFields ex, command):
        """:meth:`apply_valid` once the exchange is known not to be halted."""
        writer = ex._journal_writer
        if writer is not None:
            writer.append(command)
        journal = ex.journal
        if journal is not None:
            journal.append(command)
            if type(command) in self.handlers:  # a checked command record: integers, enums and a symbol
                untrack(command)  # kept for good: never walked by the cycle collector (exchange/_records.pxd)
        ex.sequence += 1
        try:
            events = self._run(ex, command)
        except BaseException as exc:
            ex._halt(command, exc)
            if isinstance(exc, Exception):
                raise self.halted_error(ex.halted) from exc
            raise
        every = ex.snapshot_every
        if every and ex.sequence % every == 0:
            ex._periodic_snapshot()
        return events

    cdef list _run(self, ExchangeFields ex, command):
        """Twin of ``Exchange._run``: the stages of one well-formed, journaled command."""
        cls = type(command)
        ex._order_only = cls in self.order_commands  # cleared by the drain at the first fill
        cdef list events = self.handlers[cls](command)
        cdef Stage monitor_stage = self.monitor_stage
        touched = ex._touched
        monitor_stage.follow(touched)
        if ex._order_only and not self.liquidation.in_liquidation and monitor_stage.quiet(touched):
            _clear(touched)  # the exact skip of Exchange._run (see there)
            return events
        stage = None
        if not (len(events) == 1 and isinstance(events[0], Rejected)):
            stage = self.liquidation.stage(command)
            events += stage
        events += monitor_stage.margin_stage(touched, stage == [])
        _clear(touched)
        return events


cdef inline int _clear(touched) except -1:
    """Twin of ``Touched.clear``: the set, its log, the next generation."""
    PySet_Clear(touched)
    touched.log.clear()
    touched.generation += 1
    return 0

