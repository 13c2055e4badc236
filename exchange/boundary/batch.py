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
else a row holds meets the validation boundary's rules exactly as the record would in
:meth:`~exchange.engine.Exchange.apply` (an out-of-range side or quantity is a ``Rejected`` event of that
command, not an exception): the rules are tested on whole columns first (:func:`passing`); a row that passes
runs without a second check, one that fails goes through ``apply``, which names the field.

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

import array
import dataclasses
import operator
import typing
from functools import cache

import numpy as np

from ..commands import COMMAND_TYPES, PlaceOrder
from .. import _impl
from .. import events as _events
from . import validate
from .validate import is_int

SYMBOL_FIELD = "symbol"
CHUNK = 512  #: events turned into tables at once (EventRows), command rows made into records at once


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
def _plan(tag: int) -> tuple[type, tuple[str, ...], tuple[int, ...]]:
    """``(record class, its field names, the column of each in a row)``, column -1 for the symbol (the row's
    ``symbol`` index names it)."""
    cls = COMMAND_TYPES[tag]
    names = tuple(f.name for f in dataclasses.fields(cls))
    return cls, names, tuple(-1 if name == SYMBOL_FIELD else BATCH_COMMAND_DTYPE.names.index(name) for name in names)


def decode(rows: np.ndarray, symbols: typing.Sequence[str]) -> list:
    """Command records of ``rows`` (:data:`BATCH_COMMAND_DTYPE`). Raises :class:`BatchError` for another
    dtype, an unknown tag or a symbol index outside ``symbols``. O(rows)."""
    return list(_records(*checked_table(rows, symbols), symbols, make_records))


def make_records(table: np.ndarray, plans: dict, symbols: typing.Sequence[str]) -> list:
    """The command records of ``table``'s rows (:func:`_table`, already checked); ``plans``: tag -> :func:`_plan`.
    The compiled twin (``exchange.boundary._batch``) makes the same records without the dataclass ``__init__``.
    O(rows × fields)."""
    records = []
    for row in table.tolist():
        cls, _, columns = plans[row[0]]
        records.append(cls(*[symbols[row[1]] if column < 0 else row[column] for column in columns]))
    return records


def _records(table: np.ndarray, plans: dict, symbols: typing.Sequence[str], make: typing.Callable) -> typing.Iterator:
    """The command records of a checked table (:func:`checked_table`), made by ``make`` (:func:`make_records` or
    its twin) :data:`CHUNK` rows at a time. :func:`apply_records` applies them as they come, so no record of
    every command stays alive at once (a pile of them would slow the cycle collector down). O(rows)."""
    return (record for start in range(0, len(table), CHUNK) for record in make(table[start:start + CHUNK], plans, symbols))


def checked_table(rows: np.ndarray, symbols: typing.Sequence[str]) -> tuple[np.ndarray, dict]:
    """``(the rows as a 2-d int64 table, tag -> _plan)`` once every row is known to be a command: raises
    :class:`BatchError` naming the first row that is not (another dtype, an unknown tag, a symbol index outside
    ``symbols`` in a command with a symbol). O(rows)."""
    if not isinstance(rows, np.ndarray) or rows.dtype != BATCH_COMMAND_DTYPE or rows.ndim != 1:
        raise BatchError(f"apply_batch needs a 1-d array of BATCH_COMMAND_DTYPE, got "
                         f"{getattr(rows, 'dtype', type(rows).__name__)}")
    tags = rows["tag"]
    unknown = np.flatnonzero(~np.isin(tags, list(COMMAND_TYPES)))
    if len(unknown):
        raise BatchError(f"row {unknown[0]}: unknown command tag {tags[unknown[0]]} "
                         f"(known: {sorted(COMMAND_TYPES)})")
    plans = {tag: _plan(tag) for tag in COMMAND_TYPES}
    with_symbol = np.isin(tags, [tag for tag, plan in plans.items() if -1 in plan[2]])
    outside = np.flatnonzero(with_symbol & ((rows["symbol"] < 0) | (rows["symbol"] >= len(symbols))))
    if len(outside):
        raise BatchError(f"row {outside[0]}: symbol index {rows['symbol'][outside[0]]} is outside "
                         f"0..{len(symbols) - 1}")
    return _table(rows), plans


def _table(rows: np.ndarray) -> np.ndarray:
    """The rows as one 2-d int64 array (a column per field of :data:`BATCH_COMMAND_DTYPE`)."""
    return np.ascontiguousarray(rows).view(np.int64).reshape(len(rows), len(BATCH_COMMAND_DTYPE.names))


def passing(rows: np.ndarray, symbols: typing.Sequence[str]) -> np.ndarray:
    """Which rows (already decodable: :func:`_records` checked them) pass the validation boundary, as uint8: 1
    exactly where :func:`exchange.boundary.validate.check` passes the row's record (the rules tested on whole
    columns, :func:`~exchange.boundary.validate.rows_pass`); :func:`apply_records` runs those without checking
    them again, and gives the others to ``apply``, which rejects them naming the field. O(rows × fields)."""
    table, tags = _table(rows), rows["tag"]
    at = {name: j for j, name in enumerate(BATCH_COMMAND_DTYPE.names)}
    symbol_ok = np.array([validate.SYMBOL.problem(symbol) is None for symbol in symbols], dtype=bool)
    ok = np.zeros(len(rows), np.uint8)
    for tag, cls in COMMAND_TYPES.items():
        selected = np.flatnonzero(tags == tag)
        if len(selected):
            part = table[selected]
            named = -1 in _plan(tag)[2]  # (a command without a symbol ignores the column: any value may be there)
            ok[selected] = validate.rows_pass(cls, lambda name: part[:, at[name]],
                                              symbol_ok[part[:, at["symbol"]]] if named else None)
    return ok


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
                if type(value) is not str or value not in index:  # (an unhashable value is not a symbol either)
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
    """Collects the batch's events in one list and turns them into the tables a chunk at a time (at least
    :data:`CHUNK` events): the chunk is split by class with numpy and each column read from its events by one
    C-level pass (``np.fromiter`` over an ``attrgetter``), so no Python code runs per event, and few events
    are alive at once (tracked by the cycle collector, a pile of them would make its collections slower and
    slower). The ``command`` column is filled at the end from the commands' first events (:meth:`arrays`)."""

    def __init__(self, symbols: typing.Sequence[str]):
        self.index = {symbol: i for i, symbol in enumerate(symbols)}
        self.index[""] = -1
        self.pending: list = []
        self.flushed = 0  # seq of pending[0]
        self.chunks: dict[type, list[np.ndarray]] = {}
        self.class_ids: dict[type, int] = {}

    def add(self, events: list) -> None:
        self.pending += events
        if len(self.pending) >= CHUNK:
            self._flush()

    def arrays(self, firsts: np.ndarray) -> dict[str, np.ndarray]:
        """The tables by class name; ``firsts``: the seq of each command's first event (its ``command`` rows)."""
        self._flush()
        tables = {cls.__name__: np.concatenate(chunks) for cls, chunks in self.chunks.items()}
        for table in tables.values():
            table["command"] = np.searchsorted(firsts, table["seq"], "right") - 1
        return tables

    def _flush(self) -> None:
        """The pending events as one table per class. O(events × fields), in C."""
        pending = self.pending
        if not pending:
            return
        class_ids = self.class_ids
        for cls in set(map(type, pending)) - class_ids.keys():
            class_ids[cls] = len(class_ids)
            self.chunks[cls] = []
        ids = np.fromiter(map(class_ids.__getitem__, map(type, pending)), np.int64, len(pending))
        for cls, k in class_ids.items():
            at = np.flatnonzero(ids == k)
            if not len(at):
                continue
            events = [pending[at[0]]] if len(at) == 1 else operator.itemgetter(*at.tolist())(pending)
            dtype = event_dtype(cls)
            table = np.empty(len(events), dtype)
            table["seq"] = at + self.flushed
            for name in dtype.names[2:]:
                values = map(operator.attrgetter(name), events)
                if name == SYMBOL_FIELD:
                    values = map(self.index.__getitem__, values)
                table[name] = np.fromiter(values, dtype[name], len(events))
            self.chunks[cls].append(table)
        self.flushed += len(pending)
        pending.clear()


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
    """:meth:`Exchange.apply_batch <exchange.engine.Exchange.apply_batch>`: check every row first (decodable, then
    which pass the validation boundary), then make and apply the commands one by one (:func:`apply_records`; the
    compiled twin makes each record from its row right before applying it), collecting results and event rows.
    O(rows + events)."""
    symbols = exchange.symbols
    kernel = _impl.batch_kernel if exchange.implementation == "cython" else None
    table, plans = checked_table(commands, symbols)
    checked = passing(commands, symbols)
    n = len(commands)
    codes, order_ids, counts = (array.array("q", [0]) * n for _ in range(3))  # int64, not tracked by the collector
    if kernel is not None:
        rows = kernel.EventColumns(symbols, event_dtype)
        kernel.apply_rows(exchange, table, kernel.Maker(plans, symbols), checked, rows, codes, order_ids, counts)
    else:
        rows = EventRows(symbols)
        apply_records(exchange, _records(table, plans, symbols, make_records), checked, rows, codes, order_ids, counts)
    results = np.zeros(n, RESULT_DTYPE)
    results["code"], results["order_id"], results["events"] = codes, order_ids, counts
    results["first_event"] = np.cumsum(results["events"]) - results["events"]
    return BatchResult(results, rows.arrays(results["first_event"]), symbols)


def apply_records(exchange, records: typing.Iterable, checked: np.ndarray, rows: EventRows, codes, order_ids,
                  counts) -> None:
    """Apply each record: the ones ``checked`` (:func:`passing`) without checking them again, the others with
    ``exchange.apply`` (which rejects them); its events to ``rows``, its reject code (0: none), the order id it
    got (a PlaceOrder that took one, else 0) and its event count to ``codes``, ``order_ids`` and ``counts`` at its
    index. The compiled twin (``exchange.boundary._batch.apply_rows``) makes each record from its row as it goes,
    and writes the events into C buffers as they come (``EventColumns``). O(records + events)."""
    apply, apply_valid = exchange.apply, exchange._apply_valid
    for i, command in enumerate(records):
        next_id = exchange.next_order_id
        events = apply_valid(command) if checked[i] else apply(command)
        rows.add(events)
        counts[i] = len(events)
        if events and type(events[0]) is _events.Rejected:
            codes[i] = events[0].code
        elif type(command) is PlaceOrder and exchange.next_order_id > next_id:
            order_ids[i] = next_id
