"""Numpy in, numpy out: the array layout of :meth:`Exchange.apply_batch <exchange.engine.Exchange.apply_batch>`.

Commands
--------
:data:`BATCH_COMMAND_DTYPE` holds one command per row, every field int64:

- ``tag``: the command's ``TAG`` (:data:`exchange.commands.COMMAND_TYPES`: PlaceOrder 1, CancelOrder 2, AmendOrder 3,
  CancelAll 4, SetMarkPrice 5, AdvanceTime 6, Deposit 7, Withdraw 8, SetPositionMode 9, SetMarginMode 10,
  SetLeverage 11, AdjustIsolatedMargin 12, SetIndexPrice 13, FundInsurance 14, SetInitialMarginRate 21,
  SettleSymbol 22);
- ``symbol``: the index of the command's symbol in ``Exchange.symbols`` (ignored by commands without one);
- then :data:`COMMAND_COLUMNS`, the union of the commands' integer fields by name (``account_id``,
  ``qty_lots``, ``price_ticks``, ``mark_ticks``, ``amount_units``, ...). A row is read by its tag: each command
  takes its own fields (every one of them: a field with a default in the record has no default here, so a
  PlaceOrder row must hold its ``order_type``, ``tif``, ``stp``, ``working_type`` and ``position_side``) and
  ignores the others. :func:`encode` writes rows from command records; :data:`COMMAND_DEFAULTS` is a row
  template with the records' defaults.

Decoding refuses, before any command runs, what cannot be a command at all (another dtype, an unknown tag,
a symbol index outside the exchange's symbols) with :class:`BatchError` naming the first bad row. Everything
else a row holds goes through the validation boundary exactly as the record would in
:meth:`~exchange.engine.Exchange.apply` (an out-of-range side or quantity is a ``Rejected`` event of that
command, not an exception).

Results
-------
:data:`RESULT_DTYPE`, one row per command: ``code`` (0, or the reject code of a refused command), ``order_id``
(the id an accepted PlaceOrder got, else 0), ``first_event`` (the ``seq`` of its first event) and ``events``
(how many it emitted).

Events
------
One structured array per event class that occurred (:attr:`BatchResult.events`, by class name, e.g.
``events["Fill"]``), each row ``seq`` (position in the batch's event stream, so the tables interleave back
into the order :meth:`apply` returns), ``command`` (row index of the command that emitted it), then the
record's fields: integers and enums as int64, flags as bool, ``symbol`` as its index (-1: none), and the
``message`` of a ``Rejected`` event as a Python ``str`` (an object column). :meth:`BatchResult.records`
rebuilds the event records, equal to :meth:`apply`'s, from the arrays.
"""
from __future__ import annotations

import dataclasses
import operator
import typing
from functools import cache

import numpy as np

from ..commands import COMMAND_TYPES, PlaceOrder
from .. import events as _events
from .validate import is_int

SYMBOL_FIELD = "symbol"
CHUNK = 4_096  #: event rows per class turned into an array at once (EventRows)


def _integer_fields(cls) -> list[str]:
    """The record's fields other than ``symbol``, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if f.name != SYMBOL_FIELD]


COMMAND_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(
    name for cls in COMMAND_TYPES.values() for name in _integer_fields(cls)))
BATCH_COMMAND_DTYPE = np.dtype([("tag", np.int64), ("symbol", np.int64)] + [(name, np.int64) for name in COMMAND_COLUMNS])
RESULT_DTYPE = np.dtype([("code", np.int64), ("order_id", np.int64), ("first_event", np.int64), ("events", np.int64)])


def _default_row() -> np.ndarray:
    row = np.zeros((), BATCH_COMMAND_DTYPE)
    for cls in COMMAND_TYPES.values():
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING and f.name != SYMBOL_FIELD:
                row[f.name] = int(f.default)
    return row


COMMAND_DEFAULTS = _default_row()  #: a row with every command record's field defaults (tag 0, symbol 0)


class BatchError(ValueError):
    """A command array that cannot be decoded (nothing ran): the message names the first bad row."""


# ==== commands =====================================================================================
@cache
def _plan(tag: int) -> tuple[type, int, typing.Callable]:
    """``(record class, position of its symbol field or -1, itemgetter of its other fields' columns)``."""
    cls = COMMAND_TYPES[tag]
    names = [f.name for f in dataclasses.fields(cls)]
    columns = [BATCH_COMMAND_DTYPE.names.index(name) for name in names if name != SYMBOL_FIELD]
    get = operator.itemgetter(*columns) if len(columns) > 1 else (lambda row, c=columns[0]: (row[c],))
    return cls, names.index(SYMBOL_FIELD) if SYMBOL_FIELD in names else -1, get


def decode(rows: np.ndarray, symbols: typing.Sequence[str]) -> list:
    """Command records of ``rows`` (:data:`BATCH_COMMAND_DTYPE`). Raises :class:`BatchError` for another
    dtype, an unknown tag or a symbol index outside ``symbols``. O(rows)."""
    if not isinstance(rows, np.ndarray) or rows.dtype != BATCH_COMMAND_DTYPE or rows.ndim != 1:
        raise BatchError(f"apply_batch needs a 1-d array of BATCH_COMMAND_DTYPE, got "
                         f"{getattr(rows, 'dtype', type(rows).__name__)}")
    unknown = np.flatnonzero(~np.isin(rows["tag"], list(COMMAND_TYPES)))
    if len(unknown):
        raise BatchError(f"row {unknown[0]}: unknown command tag {rows['tag'][unknown[0]]} "
                         f"(known: {sorted(COMMAND_TYPES)})")
    plans = {tag: _plan(tag) for tag in COMMAND_TYPES}
    commands, n_symbols = [], len(symbols)
    for i, row in enumerate(rows.tolist()):
        cls, at, get = plans[row[0]]
        if at < 0:
            commands.append(cls(*get(row)))
            continue
        if not 0 <= row[1] < n_symbols:
            raise BatchError(f"row {i}: symbol index {row[1]} is outside 0..{n_symbols - 1}")
        values = get(row)
        commands.append(cls(*values[:at], symbols[row[1]], *values[at:]))
    return commands


def encode(commands, symbols: typing.Sequence[str]) -> np.ndarray:
    """Rows (:data:`BATCH_COMMAND_DTYPE`) of command records, every field of each command written. Raises
    :class:`BatchError` for an object that is not a command, a symbol not in ``symbols`` or a field that is not
    an integer (``int``, ``bool`` or one of the package's enums) within int64. O(commands)."""
    index = {symbol: i for i, symbol in enumerate(symbols)}
    rows = np.zeros(len(commands), BATCH_COMMAND_DTYPE)
    for i, command in enumerate(commands):
        tag = getattr(type(command), "TAG", None)
        if COMMAND_TYPES.get(tag) is not type(command):
            raise BatchError(f"item {i}: {type(command).__name__} is not a command")
        row = rows[i]
        row["tag"] = tag
        for f in dataclasses.fields(command):
            value = getattr(command, f.name)
            if f.name == SYMBOL_FIELD:
                if value not in index:
                    raise BatchError(f"item {i}: unknown symbol {value!r}")
                row["symbol"] = index[value]
            elif _encodable(value, f.name in _flags(type(command))):
                row[f.name] = int(value)
            else:  # never a silent conversion: 1.5 is not 1, True is not a side
                raise BatchError(f"item {i}: {type(command).__name__}.{f.name} = {value!r} is not an int64 integer"
                                 f"{' or a bool' if f.name in _flags(type(command)) else ''}")
    return rows


@cache
def _flags(cls) -> frozenset[str]:
    """The record's bool fields."""
    hints = typing.get_type_hints(cls)
    return frozenset(f.name for f in dataclasses.fields(cls) if hints[f.name] is bool)


def _encodable(value, flag: bool) -> bool:
    """What the boundary accepts (an exact int or one of the commands' enums) within int64, or for a flag a
    bool; a bool elsewhere is refused, as the boundary refuses it."""
    if type(value) is bool:
        return flag
    return is_int(value) and -2**63 <= value < 2**63


# ==== events =======================================================================================
EVENT_CLASSES: dict[str, type] = {cls.__name__: cls for cls in _events.event_classes()}


@cache
def event_dtype(cls) -> np.dtype:
    """The row layout of one event class (module docstring)."""
    hints = typing.get_type_hints(cls)
    fields = [("seq", np.int64), ("command", np.int64)]
    for f in dataclasses.fields(cls):
        if f.name == SYMBOL_FIELD:
            fields.append((f.name, np.int64))
        elif hints[f.name] is bool:
            fields.append((f.name, np.bool_))
        elif hints[f.name] is str:  # Rejected.message: a Python str (object column)
            fields.append((f.name, object))
        else:  # int or IntEnum
            fields.append((f.name, np.int64))
    return np.dtype(fields)


class EventRows:
    """Collects events as row tuples per class (one C-level ``attrgetter`` per event) and turns them into the
    tables a chunk at a time (:data:`CHUNK` rows), so few row tuples are alive at once: they hold enum members,
    which keeps them tracked by the cycle collector, and a growing pile of tracked tuples would make its
    collections slower and slower."""

    def __init__(self, symbols: typing.Sequence[str]):
        self.index = {symbol: i for i, symbol in enumerate(symbols)}
        self.index[""] = -1
        self.rows: dict[type, list[tuple]] = {}
        self.chunks: dict[type, list[np.ndarray]] = {}
        self.getters: dict[type, typing.Callable] = {}
        self.seq = 0

    def add(self, command: int, events: list) -> None:
        for event in events:
            cls = type(event)
            getter = self.getters.get(cls)
            if getter is None:
                names = [f.name for f in dataclasses.fields(cls)]
                getter = self.getters[cls] = operator.attrgetter(*names) if len(names) > 1 else (
                    lambda e, get=operator.attrgetter(names[0]): (get(e),))
                self.rows[cls], self.chunks[cls] = [], []
            rows = self.rows[cls]
            rows.append((self.seq, command, *getter(event)))
            self.seq += 1
            if len(rows) == CHUNK:
                self.chunks[cls].append(self._table(cls, rows))
                rows.clear()

    def arrays(self) -> dict[str, np.ndarray]:
        return {cls.__name__: np.concatenate(self.chunks[cls] + [self._table(cls, rows)])
                for cls, rows in self.rows.items()}

    def _table(self, cls, rows: list[tuple]) -> np.ndarray:
        dtype = event_dtype(cls)
        if SYMBOL_FIELD not in dtype.names:
            return np.array(rows, dtype)
        staged = np.array(rows, [(name, object if name == SYMBOL_FIELD else dtype[name]) for name in dtype.names])
        table = np.empty(len(rows), dtype)
        for name in dtype.names:
            if name != SYMBOL_FIELD:
                table[name] = staged[name]
        names, inverse = np.unique(staged[SYMBOL_FIELD].astype(str), return_inverse=True)
        table[SYMBOL_FIELD] = np.array([self.index[name] for name in names.tolist()], np.int64)[inverse]
        return table


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What :meth:`Exchange.apply_batch <exchange.engine.Exchange.apply_batch>` returns (module docstring)."""

    results: np.ndarray  #: RESULT_DTYPE, one row per command
    events: dict[str, np.ndarray]  #: event class name -> its rows (event_dtype), in seq order
    symbols: tuple[str, ...]  #: the exchange's symbols (what the ``symbol`` indices name)

    @property
    def n_events(self) -> int:
        return int(self.results["events"].sum())

    def records(self) -> list:
        """Every event as its record, equal to what :meth:`Exchange.apply` returned, in that order. O(events)."""
        out: list = [None] * self.n_events
        for name, table in self.events.items():
            cls = EVENT_CLASSES[name]
            hints = typing.get_type_hints(cls)
            fields = [(f.name, hints[f.name]) for f in dataclasses.fields(cls)]
            for row in table.tolist():
                values = dict(zip(table.dtype.names, row))
                out[values["seq"]] = cls(**{
                    name: (self.symbols[values[name]] if values[name] >= 0 else "") if name == SYMBOL_FIELD
                    else tp(values[name]) for name, tp in fields})
        return out


def run(exchange, commands: np.ndarray) -> BatchResult:
    """:meth:`Exchange.apply_batch <exchange.engine.Exchange.apply_batch>`: decode every row first, then apply them
    one by one with :meth:`~exchange.engine.Exchange.apply`, collecting results and event rows. O(rows + events)."""
    symbols = exchange.symbols
    records = decode(commands, symbols)
    n = len(records)
    codes, order_ids, firsts, counts = [0] * n, [0] * n, [0] * n, [0] * n
    rows = EventRows(symbols)
    apply = exchange.apply
    for i, command in enumerate(records):
        next_id = exchange.next_order_id
        firsts[i] = rows.seq
        events = apply(command)
        rows.add(i, events)
        counts[i] = len(events)
        if events and type(events[0]) is _events.Rejected:
            codes[i] = events[0].code
        elif type(command) is PlaceOrder and exchange.next_order_id > next_id:
            order_ids[i] = next_id
    results = np.zeros(n, RESULT_DTYPE)
    for name, column in zip(RESULT_DTYPE.names, (codes, order_ids, firsts, counts)):
        results[name] = column
    return BatchResult(results, rows.arrays(), symbols)
