# cython: language_level=3
"""The compiled risk-monitor stage (``exchange/liquidation/_monitor.pyx``): what the command loop and the
liquidation stage ``cimport`` to read the monitor's per-command fields and call its stage directly (C field
reads and C calls instead of Python attribute lookups and method calls)."""
from exchange.accounts._pretrade cimport RiskKernel


cdef class MonitorFields:
    # The base of RiskMonitor (exchange/liquidation/monitor.py) when the compiled core is built: the fields
    # every command reads or writes, stored in the object's C struct. Plain Python objects, as the reference
    # keeps them (the reference's code reads and writes them unchanged; a pure-Python build has no base).
    cdef public object ledger, risk, parts, indexed, convex, index_from_accounts, version, _writer, _stage
    cdef public object _dirty, _stale, _due, _due_compared, _due_stale, _evaluated, _moves, _synced, _mirrored
    cdef public object _marked, _unmarked


cdef class Stage:
    cdef MonitorFields monitor
    cdef object strict, min_mm  # margin.trigger_terms of the risk stage's trigger
    cdef type liquidatable_part  # exchange.accounts.pretrade.Liquidatable
    cdef RiskKernel kernel  # the risk stage's compiled kernel: part states, margin calls, one part's state, in C
    cdef object kernel_part_states  # Risk.part_states as the risk stage bound it (the kernel's)

    cdef int follow(self, touched) except -1
    cdef list _part_states(self, part_states, account)
    cdef int _record(self, dict parts, set dirty, account, list states) except -1
    cdef int _sync(self, touched) except -1
    cdef bint quiet(self, touched) except -1
    cdef int forget(self, tuple account_ids) except -1
    cpdef list liquidatable(self, touched)
    cpdef list margin_stage(self, touched, bint unchanged_since_sync=*)
