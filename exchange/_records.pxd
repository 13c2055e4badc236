# cython: language_level=3
"""Slotted records (commands, events) read and written in C: shared by the compiled twins (``cimport``-ed: the
helpers inlined, :class:`RecordMaker` from the module ``exchange/_records.pyx`` builds).

A field of a slotted dataclass is a member descriptor of an object slot: its value sits at a fixed offset in
the record. Reading or storing it there is what the descriptor does, without the attribute lookup through the
type (and, for a frozen dataclass, without the Python frame of its ``__init__``).
"""
from cpython cimport array
from cpython.object cimport PyObject, PyObject_GenericSetAttr, PyTypeObject
from cpython.ref cimport Py_INCREF

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    enum: T_OBJECT_EX

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    PyTypeObject PyMemberDescr_Type
    bint PyObject_TypeCheck(object, PyTypeObject *)


cdef inline Py_ssize_t slot_offset(type cls, str name) except -2:
    """Where ``cls`` records hold field ``name`` (an object slot's member descriptor in the class itself), or -1
    (not a slot: use getattr / setattr). Use it only on records of exactly ``cls``."""
    descr = cls.__dict__.get(name)
    if descr is None or not PyObject_TypeCheck(descr, &PyMemberDescr_Type):
        return -1
    cdef PyMemberDef *member = (<PyMemberDescrObject *><PyObject *>descr).d_member
    return member.offset if member.type == T_OBJECT_EX else -1


cdef inline int check_slots(type cls, tuple names, const Py_ssize_t *offsets, str pxd) except -1:
    """Raise ImportError unless each field ``names[i]`` of ``cls`` is an object slot at ``offsets[i]``, where the
    struct declared in ``pxd`` puts it (a slotted class lays its slots out in sorted name order)."""
    cdef Py_ssize_t i
    for i in range(len(names)):
        if slot_offset(cls, names[i]) != offsets[i]:
            raise ImportError(f"{cls.__qualname__}.{names[i]} is not where {pxd} says (its slots changed): update "
                              f"the struct")
    return 0


cdef inline PyObject *slot_value(object record, Py_ssize_t offset):
    """The value in the slot at ``offset`` (borrowed; NULL when unset)."""
    return (<PyObject **>(<char *><PyObject *>record + offset))[0]


cdef inline int store(object record, Py_ssize_t offset, str name, object value) except -1:
    """Set field ``name`` of a fresh record (made by ``cls.__new__``) to ``value``: into its slot at ``offset``
    when it is one and unset (what the descriptor's set does), else through ``PyObject_GenericSetAttr`` (what a
    frozen dataclass's ``__init__`` calls)."""
    cdef PyObject **slot
    if offset >= 0:
        slot = <PyObject **>(<char *><PyObject *>record + offset)
        if slot[0] == NULL:
            Py_INCREF(value)
            slot[0] = <PyObject *>value
            return 0
    return PyObject_GenericSetAttr(record, name, value)


cdef class RecordMaker:  # exchange/_records.pyx
    cdef readonly type cls
    cdef readonly tuple names  # the fields, in field order
    cdef array.array offsets  # each field's slot offset (slot_offset)

    cdef object blank(self)  # cls.__new__(cls): fields unset
    cdef object make(self, tuple values)  # cls(*values), the values in field order; TypeError on a wrong count

    cdef inline int put(self, object record, Py_ssize_t i, object value) except -1:
        """Set field ``i`` of a :meth:`blank` record to ``value``."""
        return store(record, self.offsets.data.as_longlongs[i], <str>self.names[i], value)


cdef extern from "Python.h":
    int PyObject_IS_GC(object obj)
    void PyObject_GC_UnTrack(void *obj)


# Records outside the cycle collector. An event, an insurance-fund history entry, an ADL score, the ADL queue's
# per-command record of a suspect account, a part's margin state or an account's signature holds integers,
# strings, enums and such records, so it can be in no reference cycle; but as a slotted instance or a tuple of them it is tracked, and a command that liquidates
# hundreds of accounts holds thousands of them while young-generation collections run: each one then moves to
# the oldest generation, and every 25 % growth of that generation runs a full collection over every tracked
# object of the process (at a million accounts, a sixth of a crash's time). The compiled liquidation stage, the
# funds' twin, the ADL queue's compiled pass, the risk kernel's part states and the monitor writer's signatures
# untrack what they make; the compiled command loop untracks each command record an exchange keeps (its
# in-memory journal: every command of the run), and the batch path each command record it makes. Untracking is
# memory-safe: a reference from an untracked object counts as one from outside, so it can only keep objects alive.

cdef inline int untrack(object record) except -1:
    """Take ``record`` (a record of integers, strings and enums) out of the cycle collector. O(1)."""
    if PyObject_IS_GC(record):
        PyObject_GC_UnTrack(<PyObject *>record)
    return 0


cdef inline int untrack_all(list records, Py_ssize_t start) except -1:
    """:func:`untrack` each record of ``records[start:]``. O(len(records) − start)."""
    cdef Py_ssize_t i
    for i in range(start, len(records)):
        untrack(records[i])
    return 0


# The order commands as C structs (a slotted class's fields sit in sorted name order after
# the header; Cython refuses a size mismatch, check_command_layout() any other change): fields read at their
# offsets. Only the command handlers' compiled twins (exchange/orders/_entry.pyx) cimport them.
cdef extern from *:
    """
    #include <stddef.h>
    typedef struct { PyObject_HEAD PyObject *account_id; PyObject *activation_ticks; PyObject *callback_e8;
                     PyObject *close_position; PyObject *expire_ns; PyObject *order_type; PyObject *position_side;
                     PyObject *price_ticks; PyObject *qty_lots; PyObject *reduce_only; PyObject *side;
                     PyObject *stop_ticks; PyObject *stp; PyObject *symbol; PyObject *tif; PyObject *working_type;
                   } exch_PlaceOrder;
    typedef struct { PyObject_HEAD PyObject *account_id; PyObject *order_id; PyObject *symbol; } exch_CancelOrder;
    typedef struct { PyObject_HEAD PyObject *account_id; PyObject *order_id; PyObject *price_ticks; PyObject *qty_lots;
                     PyObject *symbol; } exch_AmendOrder;
    typedef struct { PyObject_HEAD PyObject *account_id; PyObject *symbol; } exch_CancelAll;
    static const Py_ssize_t exch_place_offsets[] = {offsetof(exch_PlaceOrder, account_id),
        offsetof(exch_PlaceOrder, activation_ticks), offsetof(exch_PlaceOrder, callback_e8),
        offsetof(exch_PlaceOrder, close_position), offsetof(exch_PlaceOrder, expire_ns),
        offsetof(exch_PlaceOrder, order_type), offsetof(exch_PlaceOrder, position_side),
        offsetof(exch_PlaceOrder, price_ticks), offsetof(exch_PlaceOrder, qty_lots),
        offsetof(exch_PlaceOrder, reduce_only), offsetof(exch_PlaceOrder, side), offsetof(exch_PlaceOrder, stop_ticks),
        offsetof(exch_PlaceOrder, stp), offsetof(exch_PlaceOrder, symbol), offsetof(exch_PlaceOrder, tif),
        offsetof(exch_PlaceOrder, working_type)};
    static const Py_ssize_t exch_cancel_offsets[] = {offsetof(exch_CancelOrder, account_id),
        offsetof(exch_CancelOrder, order_id), offsetof(exch_CancelOrder, symbol)};
    static const Py_ssize_t exch_amend_offsets[] = {offsetof(exch_AmendOrder, account_id),
        offsetof(exch_AmendOrder, order_id), offsetof(exch_AmendOrder, price_ticks), offsetof(exch_AmendOrder, qty_lots),
        offsetof(exch_AmendOrder, symbol)};
    static const Py_ssize_t exch_cancel_all_offsets[] = {offsetof(exch_CancelAll, account_id),
        offsetof(exch_CancelAll, symbol)};
    """
    ctypedef class exchange.commands.PlaceOrder [object exch_PlaceOrder, check_size error]:
        cdef object account_id
        cdef object activation_ticks
        cdef object callback_e8
        cdef object close_position
        cdef object expire_ns
        cdef object order_type
        cdef object position_side
        cdef object price_ticks
        cdef object qty_lots
        cdef object reduce_only
        cdef object side
        cdef object stop_ticks
        cdef object stp
        cdef object symbol
        cdef object tif
        cdef object working_type

    ctypedef class exchange.commands.CancelOrder [object exch_CancelOrder, check_size error]:
        cdef object account_id
        cdef object order_id
        cdef object symbol

    ctypedef class exchange.commands.AmendOrder [object exch_AmendOrder, check_size error]:
        cdef object account_id
        cdef object order_id
        cdef object price_ticks
        cdef object qty_lots
        cdef object symbol

    ctypedef class exchange.commands.CancelAll [object exch_CancelAll, check_size error]:
        cdef object account_id
        cdef object symbol

    const Py_ssize_t exch_place_offsets[16]
    const Py_ssize_t exch_cancel_offsets[3]
    const Py_ssize_t exch_amend_offsets[5]
    const Py_ssize_t exch_cancel_all_offsets[2]


cdef inline int check_command_layout() except -1:
    """Raise ImportError unless every field of the four order commands sits where its struct says."""
    check_slots(PlaceOrder, ("account_id", "activation_ticks", "callback_e8", "close_position", "expire_ns",
                             "order_type", "position_side", "price_ticks", "qty_lots", "reduce_only", "side",
                             "stop_ticks", "stp", "symbol", "tif", "working_type"), exch_place_offsets,
                "exchange/_records.pxd")
    check_slots(CancelOrder, ("account_id", "order_id", "symbol"), exch_cancel_offsets, "exchange/_records.pxd")
    check_slots(AmendOrder, ("account_id", "order_id", "price_ticks", "qty_lots", "symbol"), exch_amend_offsets,
                "exchange/_records.pxd")
    check_slots(CancelAll, ("account_id", "symbol"), exch_cancel_all_offsets, "exchange/_records.pxd")
    return 0
