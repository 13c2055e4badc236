# cython: language_level=3
"""Compiled twin of the command maker of :mod:`exchange.boundary.batch` (:func:`~exchange.boundary.batch.make_records`).

Built to ``exchange.boundary._batch``; only :mod:`exchange._impl` imports it (``batch_kernel``). A command
record is a frozen, slotted dataclass, whose generated ``__init__`` sets each field through a Python-level
``object.__setattr__`` call (about 3 µs for a PlaceOrder's 16 fields). This twin makes the same object
without that frame: ``cls.__new__(cls)`` and one ``PyObject_GenericSetAttr`` per field, in field order,
which is what the generated ``__init__`` does. Every field is given, so no default
is involved, and the records have no ``__post_init__``.

Contents
--------
- :func:`make_records`  twin of ``batch.make_records``: the records of a list of decoded rows. O(rows × fields).
"""
from cpython.object cimport PyObject_GenericSetAttr


def make_records(list rows, dict plans, symbols):
    """The command records of ``rows`` (lists of a ``BATCH_COMMAND_DTYPE`` row's columns, already checked), ``plans``:
    tag -> ``(class, field names, columns)`` with column -1 for the symbol (its index is the row's column 1)."""
    cdef list out = []
    cdef list row
    cdef tuple names, columns
    cdef Py_ssize_t i, column
    for row in rows:
        cls, names, columns = plans[row[0]]
        record = cls.__new__(cls)
        for i in range(len(names)):
            column = columns[i]
            PyObject_GenericSetAttr(record, names[i], symbols[row[1]] if column < 0 else row[column])
        out.append(record)
    return out
