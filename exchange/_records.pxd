# cython: language_level=3
"""Slotted records (commands, events) read and written in C: shared by the compiled twins (``cimport``-ed,
inlined; no module of its own).

A field of a slotted dataclass is a member descriptor of an object slot: its value sits at a fixed offset in
the record. Reading or storing it there is what the descriptor does, without the attribute lookup through the
type (and, for a frozen dataclass, without the Python frame of its ``__init__``).
"""
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
