# cython: language_level=3
"""Compiled twin of the batch path of :mod:`exchange.boundary.batch`: command records in, event columns out.

Built to ``exchange.boundary._batch``; only :mod:`exchange._impl` imports it (``batch_kernel``). Commands and
events are frozen, slotted dataclasses. The generated ``__init__`` of one sets each field through a
Python-level ``object.__setattr__`` call (about 3 µs for a PlaceOrder's 16 fields), and reading a field by
name goes through the type's attribute lookup. Here both go straight to the slot: a slotted field is a member
descriptor of an object slot, which holds the value at a fixed offset in the record (:mod:`exchange._records`).

Contents
--------
- :class:`Maker`         a row of the int64 table -> its command record, made by its class's
                         :class:`~exchange._records.RecordMaker` (each field stored in its slot). O(fields).
- :func:`make_records`   twin of ``batch.make_records``: the records of a table's rows. O(rows × fields).
- :class:`EventColumns`  twin of ``batch.EventRows``: each event's fields read from their slots into one int64
                         buffer per event class, turned into the same tables at the end. O(events × fields).
- :func:`apply_rows`     twin of ``batch.apply_records`` over ``batch._records``: the apply loop of ``apply_batch``,
                         each record made from its row right before it runs. O(commands + events).
"""
from cpython cimport array
from cpython.object cimport PyObject
from exchange._records cimport RecordMaker, slot_offset, slot_value, untrack

import array

import numpy as np

from exchange.commands import PlaceOrder
from exchange.events import Rejected


cdef class Maker:
    """Makes command records from rows of the int64 table (``batch._table``): per tag its record maker and
    columns (-1: the symbol, named by the row's column 1)."""

    cdef dict plans  # tag -> (RecordMaker, columns)
    cdef object symbols

    def __init__(self, dict plans, symbols):
        self.plans = {}
        for tag, (cls, names, columns) in plans.items():
            maker = RecordMaker(cls)
            if maker.names != names:
                raise ValueError(f"{cls.__qualname__}: the plan's fields {names} are not its fields {maker.names}")
            self.plans[tag] = (maker, columns)
        self.symbols = symbols

    cdef object make(self, const long long[:, :] table, Py_ssize_t r):
        """The record of row ``r``, each field stored in its slot in field order (:class:`RecordMaker`). O(fields)."""
        cdef RecordMaker maker
        cdef tuple columns
        cdef Py_ssize_t i, column
        maker, columns = self.plans[table[r, 0]]
        record = maker.blank()
        for i in range(len(columns)):
            column = columns[i]
            maker.put(record, i, self.symbols[table[r, 1]] if column < 0 else table[r, column])
        # integers and a symbol: no cycle, and an exchange that keeps its commands keeps them all (_records.pxd)
        untrack(record)
        return record


def make_records(const long long[:, :] table, dict plans, symbols):
    """Twin of ``batch.make_records``: the command records of ``table``'s rows (already checked)."""
    cdef Maker maker = Maker(plans, symbols)
    return [maker.make(table, r) for r in range(table.shape[0])]


# ==== events ======================================================================================
cdef enum:
    INTEGER = 0  # an int or IntEnum field: its value as int64
    FLAG = 1  # a bool field: its truth
    SYMBOL = 2  # the symbol: its index (-1 for "")
    OBJECT = 3  # a str field (Rejected.message): kept as the object


cdef class _Table:
    """One event class's rows so far: ``width`` int64 columns per row (seq, command, then the fields, an OBJECT
    field's column holding 0) in one growing buffer, and the OBJECT fields' values in a list per field."""

    cdef object dtype  # batch.event_dtype(cls)
    cdef tuple names  # the fields after seq and command
    cdef int[:] kinds
    cdef long long[:] offsets  # where a slot field's value sits in the record (-1: read by getattr)
    cdef Py_ssize_t width, n
    cdef array.array data
    cdef list objects  # one list per OBJECT field, in field order

    def __init__(self, cls, dtype):
        self.dtype = dtype
        self.names = dtype.names[2:]
        self.width = len(dtype.names)
        kinds = array.array("i", [OBJECT if dtype[name] == object else FLAG if dtype[name] == np.bool_
                                  else SYMBOL if name == "symbol" else INTEGER for name in self.names])
        self.kinds = kinds
        self.offsets = array.array("q", [slot_offset(cls, name) for name in self.names])  # (any record class)
        self.data = array.array("q")
        self.n = 0
        self.objects = [[] for kind in kinds if kind == OBJECT]

    cdef int add(self, event, long long seq, dict index) except -1:
        cdef Py_ssize_t at = self.n * self.width, j, o = 0
        cdef int kind
        cdef Py_ssize_t offset
        cdef PyObject *slot
        array.resize_smart(self.data, at + self.width)
        cdef long long *row = self.data.data.as_longlongs + at
        row[0] = seq
        row[1] = 0  # the command: arrays() fills it
        for j in range(len(self.names)):
            offset = self.offsets[j]
            slot = NULL if offset < 0 else slot_value(event, offset)
            value = getattr(event, self.names[j]) if slot == NULL else <object>slot
            kind = self.kinds[j]
            if kind == INTEGER:
                row[j + 2] = value
            elif kind == SYMBOL:
                row[j + 2] = index[value]
            elif kind == FLAG:
                row[j + 2] = 1 if value else 0
            else:
                row[j + 2] = 0
                (<list>self.objects[o]).append(value)
                o += 1
        self.n += 1
        return 0

    def table(self, firsts):
        """The rows as one ``dtype`` array, the command column from ``firsts`` (EventRows.arrays)."""
        rows = np.frombuffer(self.data, np.int64, self.n * self.width).reshape(self.n, self.width)
        out = np.empty(self.n, self.dtype)
        o = 0
        for j, name in enumerate(self.dtype.names):
            if j >= 2 and self.kinds[j - 2] == OBJECT:
                out[name] = self.objects[o]
                o += 1
            elif j == 1:
                out[name] = np.searchsorted(firsts, rows[:, 0], "right") - 1
            else:
                out[name] = rows[:, j]  # int64, or 0/1 into a bool column
        return out


cdef class EventColumns:
    """Twin of ``batch.EventRows``: the same tables, written event by event into per-class int64 buffers by C
    code (one attribute read per field, no Python frame, no record kept), so memory grows with the rows, not
    with live records. O(events × fields)."""

    cdef dict index, tables
    cdef long long seq
    cdef object event_dtype

    def __init__(self, symbols, event_dtype):
        self.index = {symbol: i for i, symbol in enumerate(symbols)}
        self.index[""] = -1
        self.tables = {}
        self.seq = 0
        self.event_dtype = event_dtype

    cpdef add(self, list events):
        cdef _Table table
        for event in events:
            cls = type(event)
            table = self.tables.get(cls)
            if table is None:
                table = self.tables[cls] = _Table(cls, self.event_dtype(cls))
            table.add(event, self.seq, self.index)
            self.seq += 1

    def arrays(self, firsts) -> dict:
        """The tables by class name (EventRows.arrays)."""
        return {cls.__name__: (<_Table>table).table(firsts) for cls, table in self.tables.items()}


def apply_rows(exchange, const long long[:, :] table, Maker maker, const unsigned char[:] checked,
               EventColumns columns, long long[:] codes, long long[:] order_ids, long long[:] counts):
    """Twin of ``batch.apply_records`` over ``batch._records``: each row made into its record right before it is
    applied (``exchange._apply_valid`` where ``checked``, else ``exchange.apply``), its events to ``columns``,
    its reject code, new order id and event count to the arrays. O(rows + events)."""
    apply, apply_valid = exchange.apply, exchange._apply_valid
    cdef Py_ssize_t i
    cdef list events
    for i in range(table.shape[0]):
        command = maker.make(table, i)
        next_id = exchange.next_order_id
        events = apply_valid(command) if checked[i] else apply(command)
        columns.add(events)
        counts[i] = len(events)
        if events and type(events[0]) is Rejected:
            codes[i] = (<object>events[0]).code
        elif type(command) is PlaceOrder and exchange.next_order_id > next_id:
            order_ids[i] = next_id
