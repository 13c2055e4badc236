# cython: language_level=3
"""The compiled command loop (``exchange/_engine.pyx``): the exchange's per-command fields
(:class:`exchange.fields.ExchangeFields`, the slotted base class of ``Exchange``) as a C struct, which the loop,
order entry, the drain and the liquidation stage ``cimport`` to read and write them as C fields instead of
Python attributes. A module that cimports it calls :func:`check_exchange_layout` once at import."""
from cpython.set cimport PySet_Add
from exchange._records cimport check_slots

cdef extern from *:
    """
    #include <stddef.h>
    typedef struct { PyObject_HEAD PyObject *_journal_writer; PyObject *_order_only; PyObject *_position_sides;
                     PyObject *_touched; PyObject *halted; PyObject *journal; PyObject *next_order_id;
                     PyObject *sequence; PyObject *settled; PyObject *snapshot_every; } exch_ExchangeFields;
    static const Py_ssize_t exch_exchange_offsets[] = {offsetof(exch_ExchangeFields, _journal_writer),
        offsetof(exch_ExchangeFields, _order_only), offsetof(exch_ExchangeFields, _position_sides),
        offsetof(exch_ExchangeFields, _touched), offsetof(exch_ExchangeFields, halted),
        offsetof(exch_ExchangeFields, journal), offsetof(exch_ExchangeFields, next_order_id),
        offsetof(exch_ExchangeFields, sequence), offsetof(exch_ExchangeFields, settled),
        offsetof(exch_ExchangeFields, snapshot_every)};
    """
    ctypedef class exchange.fields.ExchangeFields [object exch_ExchangeFields, check_size error]:
        cdef object _journal_writer
        cdef object _order_only
        cdef object _position_sides
        cdef object _touched
        cdef object halted
        cdef object journal
        cdef object next_order_id
        cdef object sequence
        cdef object settled
        cdef object snapshot_every

    const Py_ssize_t exch_exchange_offsets[10]


cdef inline int check_exchange_layout() except -1:
    """Raise ImportError unless every slot of ExchangeFields sits where the struct says."""
    check_slots(ExchangeFields, ("_journal_writer", "_order_only", "_position_sides", "_touched", "halted", "journal",
                                 "next_order_id", "sequence", "settled", "snapshot_every"), exch_exchange_offsets,
                "exchange/_engine.pxd")
    return 0


cdef inline int touch(touched, account_id) except -1:
    """Twin of ``Touched.add`` (``exchange/accounts/touched.py``) on the exchange's touched set: the set and its log,
    without the Python frame. Whatever ``Touched.add`` does, this must do too."""
    PySet_Add(touched, account_id)
    touched.log.append(account_id)
    return 0
