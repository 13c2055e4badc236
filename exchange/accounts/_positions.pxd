# cython: language_level=3
"""The compiled ledger's compact positions mapping (``exchange/accounts/_positions.pyx``): the declarations other
compiled modules ``cimport`` to read an account's one position without a call, and to store positions as
``Ledger.store`` does."""


cdef class OnePosition:
    cdef readonly object key  # the ledger's interned (symbol, side) tuple
    cdef readonly object position  # its Position


cdef int store(object account, object key, object position, object empty) except -1
cdef int drop(object account, object key, object empty) except -1
