# cython: language_level=3
"""The compiled risk-monitor stage (``exchange/liquidation/_monitor.pyx``): what the command loop and the
liquidation stage ``cimport`` to read the monitor's per-command fields
(:class:`exchange.liquidation.monitor_fields.MonitorFields`, the slotted base class of ``RiskMonitor``) as a C
struct and call its stage directly (C field reads and C calls instead of Python attribute lookups and method
calls). A module that cimports it calls :func:`check_monitor_layout` once at import."""
from exchange._records cimport RecordMaker, check_slots
from exchange.accounts._pretrade cimport RiskKernel

cdef extern from *:
    """
    #include <stddef.h>
    typedef struct { PyObject_HEAD PyObject *_dirty; PyObject *_due; PyObject *_due_compared; PyObject *_due_stale;
                     PyObject *_evaluated; PyObject *_marked; PyObject *_mirrored; PyObject *_moves; PyObject *_stage;
                     PyObject *_stale; PyObject *_synced; PyObject *_unmarked; PyObject *_writer;
                     PyObject *index_from_accounts; PyObject *indexable; PyObject *indexed; PyObject *ledger; PyObject *parts;
                     PyObject *risk; PyObject *version; } exch_MonitorFields;
    #define EXCH_MONITOR_AT(field) offsetof(exch_MonitorFields, field)
    static const Py_ssize_t exch_monitor_offsets[] = {EXCH_MONITOR_AT(_dirty), EXCH_MONITOR_AT(_due),
        EXCH_MONITOR_AT(_due_compared), EXCH_MONITOR_AT(_due_stale), EXCH_MONITOR_AT(_evaluated),
        EXCH_MONITOR_AT(_marked), EXCH_MONITOR_AT(_mirrored), EXCH_MONITOR_AT(_moves), EXCH_MONITOR_AT(_stage),
        EXCH_MONITOR_AT(_stale), EXCH_MONITOR_AT(_synced), EXCH_MONITOR_AT(_unmarked), EXCH_MONITOR_AT(_writer),
        EXCH_MONITOR_AT(index_from_accounts), EXCH_MONITOR_AT(indexable), EXCH_MONITOR_AT(indexed),
        EXCH_MONITOR_AT(ledger), EXCH_MONITOR_AT(parts), EXCH_MONITOR_AT(risk), EXCH_MONITOR_AT(version)};
    """
    # The slotted base of RiskMonitor (exchange/liquidation/monitor_fields.py): the fields every command reads or
    # writes, plain Python objects as the reference keeps them, at their slots' offsets.
    ctypedef class exchange.liquidation.monitor_fields.MonitorFields [object exch_MonitorFields, check_size error]:
        cdef object _dirty, _due, _due_compared, _due_stale, _evaluated, _marked, _mirrored, _moves, _stage, _stale
        cdef object _synced, _unmarked, _writer, index_from_accounts, indexable, indexed, ledger, parts, risk, version

    const Py_ssize_t exch_monitor_offsets[20]


cdef inline int check_monitor_layout() except -1:
    """Raise ImportError unless every slot of MonitorFields sits where the struct says."""
    check_slots(MonitorFields, ("_dirty", "_due", "_due_compared", "_due_stale", "_evaluated", "_marked", "_mirrored",
                                "_moves", "_stage", "_stale", "_synced", "_unmarked", "_writer",
                                "index_from_accounts", "indexable", "indexed", "ledger", "parts", "risk", "version"),
                exch_monitor_offsets, "exchange/liquidation/_monitor.pxd")
    return 0


cdef class Stage:
    cdef MonitorFields monitor
    cdef object strict, min_mm  # margin.trigger_terms of the risk stage's trigger
    cdef RecordMaker liquidatable_part  # makes an exchange.accounts.pretrade.Liquidatable, in C
    cdef RiskKernel kernel  # the risk stage's compiled kernel: part states, margin calls, one part's state, in C
    cdef object kernel_part_states  # Risk.part_states as the risk stage bound it (the kernel's)
    cdef object fire_mark  # exchange.clearing._sweep.fire_mark: the firing of a mark in compiled index entries

    cdef int follow(self, touched) except -1
    cdef int _follow_prices(self, touched) except -1
    cdef set _price_moved(self, Py_ssize_t i, price, holders, set touched)
    cdef set _owners(self, monitor, index, Py_ssize_t i, price)
    cdef list _part_states(self, part_states, account)
    cdef int _record(self, dict parts, set dirty, account, list states) except -1
    cdef int _sync(self, touched) except -1
    cdef bint quiet(self, touched) except -1
    cdef int forget(self, tuple account_ids) except -1
    cpdef list liquidatable(self, touched)
    cpdef list margin_stage(self, touched, bint unchanged_since_sync=*)
    cpdef store_flags(self, list rows, liq_slots, liq_accounts)
