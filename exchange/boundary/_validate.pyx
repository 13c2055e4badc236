# cython: language_level=3
"""Compiled twin of the validation boundary's fast check (:mod:`exchange.boundary.validate`).

Built to ``exchange.boundary._validate``; only :mod:`exchange._impl` imports it (``validate_kernel``). The
reference compiles one boolean Python expression per command type from its rules (``validate._compile``);
this twin runs the same tests over the same rules with C comparisons: an exact ``int`` or a member of the
package's enums in ``[lo, hi]`` (and not 0 when the rule says so), an enum value among the enum's values, an
account id in ``[0, 2**62)``, an ASCII ``str`` symbol of at most 64 characters, a flag that is ``True``,
``False``, 0 or 1. Like the reference it answers True exactly when every field passes; anything else goes
to the rules one by one, which decide and say why. Every bound is within int64, so a value that does not fit
in 64 bits is out of range.

Contents
--------
- :class:`FastCheck`  one command type's check. ``__call__`` O(fields), no allocation; a record of exactly
                      its class has its fields read from their slots (:mod:`exchange._records`).
"""
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject
from exchange._records cimport slot_offset, slot_value

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)

cdef enum Kind:
    INT = 0
    ENUM = 1
    ACCOUNT = 2
    SYMBOL = 3
    FLAG = 4

cdef long long RESERVED_ACCOUNT_BASE = 2**62


cdef class FastCheck:
    """The fast check of one command type: ``fields`` is ``(name, kind, lo, hi, nonzero, values)`` per field in
    declaration order (kind: 0 integer, 1 enum, 2 account, 3 symbol, 4 flag; ``values`` a frozenset for an
    enum, else None); ``int_types`` the exact types an integer field accepts; ``max_symbol`` the longest
    symbol; ``cls`` the command class, whose records' fields are read from their slots (None: by name)."""

    def __init__(self, tuple fields, frozenset int_types, Py_ssize_t max_symbol, type cls=None):
        if len(fields) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields")
        self.n = len(fields)
        self.names = tuple(field[0] for field in fields)
        self.values = tuple(field[5] for field in fields)
        for i, (_, kind, lo, hi, nonzero, _) in enumerate(fields):
            self.kinds[i], self.los[i], self.his[i], self.nonzeros[i] = kind, lo, hi, nonzero
            self.offsets[i] = -1 if cls is None else slot_offset(cls, self.names[i])
        self.cls = cls
        self.int_types = int_types
        self.max_symbol = max_symbol

    def __call__(self, command):
        return self.check(command)

    cdef bint check(self, command) except -1:
        """Whether every field of ``command`` passes (``__call__``; the compiled command loop calls it directly)."""
        cdef Py_ssize_t i
        cdef int kind, overflow
        cdef long long x
        cdef PyObject *slot
        cdef bint exact = type(command) is self.cls
        for i in range(self.n):
            slot = slot_value(command, self.offsets[i]) if exact and self.offsets[i] >= 0 else NULL
            value = <object>slot if slot != NULL else getattr(command, <str>self.names[i])
            kind = self.kinds[i]
            if kind == SYMBOL:
                if not (type(value) is str and PyUnicode_GET_LENGTH(value) <= self.max_symbol
                        and PyUnicode_IS_ASCII(value)):
                    return False
                continue
            if kind == FLAG:
                if not (value is True or value is False or (type(value) is int and (value == 0 or value == 1))):
                    return False
                continue
            if not (type(value) is int or type(value) in self.int_types):
                return False
            if kind == ENUM:
                if value not in <frozenset>self.values[i]:
                    return False
                continue
            x = PyLong_AsLongLongAndOverflow(value, &overflow)
            if overflow:
                return False
            if kind == ACCOUNT:
                if not 0 <= x < RESERVED_ACCOUNT_BASE:
                    return False
            elif x < self.los[i] or x > self.his[i] or (self.nonzeros[i] and x == 0):
                return False
        return True
