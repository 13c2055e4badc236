# cython: language_level=3
"""Slotted records made in C: :class:`RecordMaker`, ``cls(*values)`` for a frozen slotted dataclass without the
Python frame of its ``__init__``, and :func:`record_init`, such a class's ``__init__`` in C (what the command and
event classes get under the compiled core).

Built to ``exchange._records``; only :mod:`exchange._impl` imports it (``records_kernel``). Compiled modules
``cimport`` it (``_records.pxd`` declares :class:`RecordMaker` beside the inline slot helpers): the drain's,
the liquidation stage's, order entry's, the monitor stage's and the risk kernel's event records, the batch
path's command records, and (called from Python) the risk stage's position views.
"""
from cpython cimport array
from cpython.object cimport PyObject, PyTypeObject

import array

import dataclasses
import inspect


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


def record_init(type cls):
    """An ``__init__`` for ``cls`` (a frozen slotted dataclass as :class:`RecordMaker` takes, no field with a
    default factory) that stores each argument straight into its slot, where the generated one calls
    ``object.__setattr__`` once per field (about 1.7 µs for a ``PlaceOrder``'s 16 fields, several times the
    rest of its making): the same arguments accepted (positional, by keyword, the same defaults), a TypeError
    naming a missing, unexpected or repeated one (or too many positional ones), the same record.
    ``exchange._impl`` gives every command and event class this ``__init__`` when the compiled core is active.
    O(fields)."""
    cdef RecordMaker maker = RecordMaker(cls)
    fields = dataclasses.fields(cls)
    if any(f.default_factory is not dataclasses.MISSING for f in fields) or len(fields) > 63:
        raise TypeError(f"{cls.__qualname__} has a field with a default factory or more than 63 fields")
    cdef tuple names = maker.names
    cdef tuple defaults = tuple(f.default for f in fields)  # MISSING: a required field
    cdef dict index = {name: i for i, name in enumerate(names)}
    cdef Py_ssize_t n = len(names)
    cdef unsigned long long every = (1ULL << n) - 1
    cdef object required = dataclasses.MISSING
    qualname = f"{cls.__qualname__}.__init__"

    def __init__(self, *args, **kwargs):
        cdef Py_ssize_t i, nargs = len(args)
        cdef unsigned long long given
        if nargs > n:
            raise TypeError(f"{qualname}() takes {n + 1} positional arguments but {nargs + 1} were given")
        for i in range(nargs):
            maker.put(self, i, args[i])
        given = (1ULL << nargs) - 1
        if kwargs:
            for name, value in kwargs.items():
                at = index.get(name)
                if at is None:
                    raise TypeError(f"{qualname}() got an unexpected keyword argument '{name}'")
                i = at
                if given >> i & 1:
                    raise TypeError(f"{qualname}() got multiple values for argument '{name}'")
                maker.put(self, i, value)
                given |= 1ULL << i
        if given != every:
            missing = []
            for i in range(n):
                if not given >> i & 1:
                    if defaults[i] is required:
                        missing.append(names[i])
                    else:
                        maker.put(self, i, defaults[i])
            if missing:
                raise TypeError(f"{qualname}() missing {len(missing)} required argument"
                                f"{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}")

    __init__.__qualname__ = qualname
    __init__.__doc__ = cls.__init__.__doc__
    __init__.__signature__ = inspect.signature(cls.__init__)
    return __init__
