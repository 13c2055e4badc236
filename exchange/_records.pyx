# cython: language_level=3
"""Slotted records made in C: :class:`RecordMaker`, ``cls(*values)`` for a frozen slotted dataclass without the
Python frame of its ``__init__``.

Built to ``exchange._records``; only :mod:`exchange._impl` imports it (``records_kernel``). Compiled modules
``cimport`` it (``_records.pxd`` declares :class:`RecordMaker` beside the inline slot helpers): the drain's,
the liquidation stage's, order entry's, the monitor stage's and the risk kernel's event records, the batch
path's command records, and (called from Python) the risk stage's position views.
"""
from cpython cimport array
from cpython.object cimport PyObject, PyTypeObject

import array

import dataclasses


cdef tuple NO_ARGS = ()


cdef class RecordMaker:
    """Makes records of one frozen slotted dataclass whose ``__init__`` only stores its arguments (no
    ``__post_init__``, no ``InitVar``; checked when the maker is made): ``cls.__new__(cls)`` (the type's ``tp_new``
    with no arguments), then each value straight into its field's slot, in field order
    (:func:`exchange._records.store`), which is what the generated ``__init__`` does through
    ``object.__setattr__``. The same object, a few times faster. Compiled modules call :meth:`make` or
    :meth:`blank` and :meth:`put`; Python calls the maker itself. O(fields)."""

    def __init__(self, type cls):
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen or "__slots__" not in vars(cls) or hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__qualname__} is not a frozen slotted dataclass without __post_init__")
        fields = dataclasses.fields(cls)
        if not all(f.init for f in fields) or len(fields) != len(cls.__slots__):
            raise TypeError(f"{cls.__qualname__}'s __init__ does not take exactly its fields")
        self.cls = cls
        self.names = tuple(f.name for f in fields)
        self.offsets = array.array("q", [slot_offset(cls, name) for name in self.names])

    def __call__(self, *values):
        return self.make(values)

    cdef object blank(self):
        """A record with no field set yet: each must be :meth:`put` before it is used."""
        return (<PyTypeObject*>self.cls).tp_new(self.cls, <PyObject*>NO_ARGS, NULL)

    cdef object make(self, tuple values):
        if len(values) != len(self.names):
            raise TypeError(f"{self.cls.__qualname__} takes {len(self.names)} values, got {len(values)}")
        record = self.blank()
        cdef Py_ssize_t i
        for i in range(len(values)):
            self.put(record, i, values[i])
        return record
