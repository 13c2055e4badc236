# cython: language_level=3
"""The validation boundary's compiled fast check (``exchange/boundary/_validate.pyx``): what the compiled command
loop ``cimport``-s to call it directly."""

cdef enum:
    MAX_FIELDS = 32  # a command record's fields, at most


cdef class FastCheck:
    cdef tuple names, values
    cdef Py_ssize_t n
    cdef int kinds[MAX_FIELDS]
    cdef long long los[MAX_FIELDS]
    cdef long long his[MAX_FIELDS]
    cdef bint nonzeros[MAX_FIELDS]
    cdef Py_ssize_t offsets[MAX_FIELDS]  # each field's slot in a record of exactly ``cls`` (-1: by name)
    cdef type cls
    cdef frozenset int_types
    cdef Py_ssize_t max_symbol

    cdef bint check(self, command) except -1
