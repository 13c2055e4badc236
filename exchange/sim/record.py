"""Recording a run to Parquet (docs/recording.md).

A run directory holds::

    journal.exj        the exchange's durable journal (the commands; :func:`open_exchange` puts it there)
    events.parquet     every event of every recorded command, one long-format table
    metrics.parquet    one row per (metrics snapshot, cohort)
    prices.parquet     one row per (metrics snapshot, symbol)
    accounts.parquet   the final state: one row per (account, symbol, position side), one per flat account
    manifest.json      format version, files, row counts, sha256, the final state_hash() and sequence

Typical use (a scenario runner)::

    exchange = open_exchange(run_dir, instruments, profile="binance")
    recorder = RunRecorder(run_dir, exchange, cohorts={"whales": [1, 2], "retail": [3, 4]})
    for step, command in enumerate(commands):
        events = exchange.apply(command)
        recorder.record(step, exchange.now_ns, command, events)
        if step % 100 == 0:
            recorder.snapshot_metrics(step, exchange.now_ns)
    recorder.write_final_state()
    recorder.close()          # writes manifest.json
    exchange.close()          # closes the journal (the caller owns the exchange)

The events table's columns are discovered from the dataclasses of :mod:`exchange.events`, so a new event
type needs no change here. Everything written is a deterministic function of the recorded calls: two runs
with the same inputs give byte-identical Parquet files (same pyarrow version; fixed writer options, no
timestamps in the metadata).
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import json
import types
import typing
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..accounts.ledger import FUND_ACCOUNT_BASE
from ..events import LiquidationStarted, event_classes

FORMAT = "exchange-run"
FORMAT_VERSION = 1
JOURNAL_NAME = "journal.exj"
EVENTS_FILE, METRICS_FILE, PRICES_FILE, ACCOUNTS_FILE, MANIFEST_FILE = (
    "events.parquet", "metrics.parquet", "prices.parquet", "accounts.parquet", "manifest.json")
META_COLUMNS = ("seq", "step", "time_ns", "command_seq", "kind")
#: An event field whose name clashes with a meta column is stored as ``event_<name>`` (e.g. FundingSettled.time_ns).
CLASH_PREFIX = "event_"
DEFAULT_FLUSH_ROWS = 65_536

# Fixed writer options: the same rows give the same bytes (pyarrow writes no timestamp anywhere).
WRITER_OPTIONS = dict(
    compression="zstd", compression_level=3, use_dictionary=True, write_statistics=True,
    version="2.6", data_page_version="1.0",
)


# ==== schema discovery ==============================================================================
def _kind_of(tp) -> tuple[str, type | None]:
    """('int' | 'bool' | 'str' | 'enum', enum class or None) for a field's resolved type hint."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _kind_of(args[0])
    if tp is bool:
        return "bool", None
    if inspect.isclass(tp) and issubclass(tp, enum.IntEnum):
        return "enum", tp
    if tp is int:
        return "int", None
    if tp is str:
        return "str", None
    raise TypeError(f"cannot store a field of type {tp!r} in events.parquet (int, bool, str or IntEnum only)")


_ARROW = {"int": pa.int64(), "enum": pa.int64(), "bool": pa.bool_(), "str": pa.string()}


class EventSchema:
    """The long-format events table: meta columns, then the union of every event class's fields (first
    appearance in definition order); an IntEnum field also gets a ``<column>_name`` string column."""

    def __init__(self, classes):
        self.classes = list(classes)
        columns: dict[str, str] = {}  # column -> kind ('int', 'bool', 'str'; enums are 'int' + a _name column)
        enum_columns: list[str] = []
        self.plan: dict[type, list[tuple[str, str, str]]] = {}  # class -> [(field, column, kind)]
        for cls in self.classes:
            hints = typing.get_type_hints(cls)
            plan = []
            for f in dataclasses.fields(cls):
                kind, _ = _kind_of(hints[f.name])
                column = CLASH_PREFIX + f.name if f.name in META_COLUMNS else f.name
                stored = "int" if kind == "enum" else kind
                if columns.setdefault(column, stored) != stored:
                    raise TypeError(f"event field {column!r} is {columns[column]} in one class and {stored} in "
                                    f"{cls.__name__}: rename one of them")
                if kind == "enum" and column not in enum_columns:
                    enum_columns.append(column)
                plan.append((f.name, column, kind))
            self.plan[cls] = plan
        fields = [pa.field("seq", pa.int64(), False), pa.field("step", pa.int64(), False),
                  pa.field("time_ns", pa.int64(), False), pa.field("command_seq", pa.int64(), False),
                  pa.field("kind", pa.string(), False)]
        for column, kind in columns.items():
            fields.append(pa.field(column, _ARROW[kind]))
            if column in enum_columns:
                fields.append(pa.field(column + "_name", pa.string()))
        self.schema = pa.schema(fields)
        self.names = self.schema.names
        self.enum_columns = enum_columns
        index = {name: i for i, name in enumerate(self.names)}
        # per class: [(field, column index, name column index or None)], and the column indices it leaves null
        self.slots: dict[type, tuple[list, list[int]]] = {}
        for cls, plan in self.plan.items():
            used, filled = [], set(range(len(META_COLUMNS)))
            for name, column, kind in plan:
                name_index = index[column + "_name"] if kind == "enum" else None
                used.append((name, index[column], name_index))
                filled.add(index[column])
                if name_index is not None:
                    filled.add(name_index)
            self.slots[cls] = (used, [i for i in range(len(self.names)) if i not in filled])


# ==== a buffered Parquet table ========================================================================
class _Table:
    """Rows buffered as they come, written as one row group every ``flush_rows`` rows (transposed to columns
    then, in one pass)."""

    def __init__(self, path: Path, schema: pa.Schema, flush_rows: int):
        self.path, self.schema, self.flush_rows = path, schema, flush_rows
        self.buffer: list = []  # rows (sequences in schema order) not yet written
        self.rows = 0  # written + buffered
        self.writer: pq.ParquetWriter | None = None
        self.closed = False

    def append(self, values) -> None:
        """Buffer one row (the table keeps ``values``; pass a new sequence per row). O(1) amortised."""
        self.buffer.append(values)
        self.rows += 1
        if len(self.buffer) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one row group (nothing when none are buffered)."""
        if not self.buffer:
            return
        columns = zip(*self.buffer)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(column, type=field.type) for column, field in zip(columns, self.schema)], schema=self.schema)
        self._writer().write_batch(batch, row_group_size=self.flush_rows)
        self.buffer = []

    def close(self) -> None:
        """Flush and write the footer; a table that got no rows is a valid empty file with the schema."""
        if self.closed:
            return
        self.flush()
        self._writer().close()
        self.closed = True

    def _writer(self) -> pq.ParquetWriter:
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.path), self.schema, **WRITER_OPTIONS)
        return self.writer


# ==== the recorder ====================================================================================
def open_exchange(directory, instruments, *, fsync="never", **kwargs):
    """A fresh :class:`~exchange.Exchange` journaling to ``directory/journal.exj`` (the directory is created).
    ``fsync`` defaults to ``"never"`` (a research run: a killed process loses nothing, only a power loss can);
    every other keyword goes to ``Exchange``."""
    from ..engine import Exchange

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return Exchange(instruments, journal=directory / JOURNAL_NAME, fsync=fsync, **kwargs)


class RunRecorder:
    """Records a run of ``exchange`` into ``directory`` (module docstring, docs/recording.md).

    ``cohorts``: default mapping cohort name -> account ids for :meth:`snapshot_metrics` and
    :meth:`write_final_state`. ``flush_rows``: rows buffered per table before a row group is written (memory
    stays bounded on long runs). Refuses a directory that already holds a recording unless ``overwrite``."""

    def __init__(self, directory, exchange, cohorts=None, *, flush_rows: int = DEFAULT_FLUSH_ROWS,
                 classes=None, overwrite: bool = False):
        if type(flush_rows) is not int or flush_rows < 1:
            raise ValueError("flush_rows must be an int >= 1")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in (EVENTS_FILE, METRICS_FILE, PRICES_FILE, ACCOUNTS_FILE, MANIFEST_FILE):
            if (self.directory / name).exists():
                if not overwrite:
                    raise FileExistsError(f"{self.directory / name}: the directory already holds a recording")
                (self.directory / name).unlink()
        self.exchange = exchange
        self.cohorts = _check_cohorts(cohorts or {})
        self.flush_rows = flush_rows
        self.symbols = list(exchange.instruments)
        self.event_schema = EventSchema(classes if classes is not None else event_classes())
        self.events = _Table(self.directory / EVENTS_FILE, self.event_schema.schema, flush_rows)
        self.metrics = _Table(self.directory / METRICS_FILE, _metrics_schema(self.symbols), flush_rows)
        self.prices = _Table(self.directory / PRICES_FILE, _PRICES_SCHEMA, flush_rows)
        self.accounts_rows: int | None = None
        self.extra_tables: dict[str, int] = {}  # file name -> rows (write_table)
        self.liquidations: dict[int, int] = {}  # account id -> LiquidationStarted events so far
        self.commands = 0
        self.closed = False

    # -- events ----------------------------------------------------------------------------------------
    def record(self, step: int, time_ns: int, command, events) -> None:
        """Append every event of ``command`` (the list ``exchange.apply(command)`` returned) as rows; the
        ``command_seq`` column is ``exchange.sequence`` now (after the command)."""
        self._open()
        command_seq = self.exchange.sequence
        table, slots = self.events, self.event_schema.slots
        width = len(self.event_schema.names)
        for event in events:
            try:
                used, nulls = slots[type(event)]
            except KeyError:
                raise TypeError(f"{type(event).__name__} is not an event class of the schema "
                                f"(pass classes=... to RunRecorder)") from None
            row = [None] * width
            row[0], row[1], row[2], row[3], row[4] = table.rows, step, time_ns, command_seq, type(event).__name__
            for name, index, name_index in used:
                value = getattr(event, name)
                if name_index is not None:
                    row[index], row[name_index] = int(value), value.name
                else:
                    row[index] = value
            table.append(row)
            if type(event) is LiquidationStarted:
                self.liquidations[event.account_id] = self.liquidations.get(event.account_id, 0) + 1
        self.commands += 1

    # -- metrics ---------------------------------------------------------------------------------------
    def snapshot_metrics(self, step: int, time_ns: int, cohorts=None) -> None:
        """One ``metrics.parquet`` row per cohort and one ``prices.parquet`` row per symbol, from the exchange's
        queries now."""
        self._open()
        ex = self.exchange
        cohorts = self.cohorts if cohorts is None else _check_cohorts(cohorts)
        command_seq = ex.sequence
        per_symbol = []
        for symbol in self.symbols:
            mark, index, last = ex.mark_price(symbol), ex.index_price(symbol), ex.book(symbol).last_price()
            per_symbol += [mark, index, last]
            self.prices.append([step, time_ns, command_seq, symbol, mark, index, last, ex.insurance_balance(symbol)])
        for name, ids in cohorts.items():
            with_position = equity = wallet = liquidated = liquidations = 0
            for account_id in ids:
                with_position += ex.has_position(account_id)
                equity += ex.equity(account_id)
                wallet += ex.wallet(account_id)
                count = self.liquidations.get(account_id, 0)
                liquidated += count > 0
                liquidations += count
            self.metrics.append([step, time_ns, command_seq, name, len(ids), with_position, equity, wallet,
                                 liquidated, liquidations, *per_symbol])

    # -- final state -----------------------------------------------------------------------------------
    def write_final_state(self, exchange=None, cohorts=None) -> int:
        """Write ``accounts.parquet``: every account of the ledger (insurance funds flagged) and every cohort
        account; one row per (account, symbol, position side), one row with null position columns for an
        account without positions. Returns the row count."""
        self._open()
        ex = exchange if exchange is not None else self.exchange
        cohorts = self.cohorts if cohorts is None else _check_cohorts(cohorts)
        membership: dict[int, list[str]] = {}
        for name, ids in cohorts.items():
            for account_id in ids:
                membership.setdefault(account_id, []).append(name)
        table = _Table(self.directory / ACCOUNTS_FILE, _ACCOUNTS_SCHEMA, self.flush_rows)
        for account_id in sorted(set(ex.ledger.accounts) | set(membership)):
            exists = account_id in ex.ledger.accounts
            positions = ex.positions(account_id)
            cohort = "|".join(membership[account_id]) if account_id in membership else None
            head = [account_id, cohort, account_id >= FUND_ACCOUNT_BASE, exists, ex.wallet(account_id),
                    ex.margin_balance(account_id), ex.equity(account_id),
                    ex.available_balance(account_id) if exists else 0,
                    ex.in_liquidation(account_id), self.liquidations.get(account_id, 0)]
            if not positions:
                table.append(head + [None] * (len(_ACCOUNTS_SCHEMA) - len(head)))
            for p in positions:
                table.append(head + [
                    p.symbol, int(p.position_side), p.position_side.name, p.lots, p.entry_cost,
                    p.isolated_margin_units, int(p.margin_mode), p.margin_mode.name, p.leverage, p.notional_units,
                    p.unrealized_pnl_units, p.maintenance_margin_units,
                    ex.margin_balance(account_id, p.symbol, p.position_side), p.liquidation_price_ticks,
                    p.bankruptcy_price_ticks])
        table.close()
        self.accounts_rows = table.rows
        return table.rows

    def write_table(self, name: str, table: pa.Table) -> int:
        """Write a caller's table as ``<name>.parquet`` with the same fixed writer options (so it is
        deterministic too) and list it in the manifest. Returns its row count."""
        self._open()
        file = f"{name}.parquet"
        if not name.isidentifier() or file in (EVENTS_FILE, METRICS_FILE, PRICES_FILE, ACCOUNTS_FILE):
            raise ValueError(f"table name {name!r}: expected an identifier other than the recorder's own tables")
        pq.write_table(table, self.directory / file, **WRITER_OPTIONS)
        self.extra_tables[file] = table.num_rows
        return table.num_rows

    # -- close -----------------------------------------------------------------------------------------
    def close(self, extra: dict | None = None) -> dict:
        """Finish the Parquet files and write ``manifest.json`` (returned), with ``extra`` (JSON-serialisable)
        under the key ``"extra"``. The exchange stays open: its owner closes it (which closes the journal)."""
        if self.closed:
            return json.loads((self.directory / MANIFEST_FILE).read_text())
        for table in (self.events, self.metrics, self.prices):
            table.close()
        ex = self.exchange
        files = {}
        for table in (self.events, self.metrics, self.prices):
            files[table.path.name] = _file_entry(table.path, table.rows)
        if self.accounts_rows is not None:
            files[ACCOUNTS_FILE] = _file_entry(self.directory / ACCOUNTS_FILE, self.accounts_rows)
        for file, rows in self.extra_tables.items():
            files[file] = _file_entry(self.directory / file, rows)
        journal = None
        writer = getattr(ex, "_journal_writer", None)
        if writer is not None:
            path = Path(writer.path)
            try:
                journal = str(path.resolve().relative_to(self.directory.resolve()))
            except ValueError:
                journal = str(path.resolve())  # outside the run directory: recorded as an absolute path
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "files": files,
            "journal": journal,
            "sequence": ex.sequence,
            "state_hash": ex.state_hash(),
            "now_ns": ex.now_ns,
            "symbols": self.symbols,
            "implementation": ex.implementation,
            "commands_recorded": self.commands,
            "events_enum_columns": self.event_schema.enum_columns,
            "pyarrow": pa.__version__,
        }
        if extra is not None:
            manifest["extra"] = extra
        (self.directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        self.closed = True
        return manifest

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()

    def _open(self) -> None:
        if self.closed:
            raise ValueError("the recorder is closed")


def verify_run(directory, implementation: str | None = None) -> dict:
    """Audit a recorded run: replay ``journal.exj`` and compare the hash and sequence with the manifest, and the
    files' sha256 and row counts. Returns ``{"ok": bool, "problems": [...], "replayed_hash": ...}``."""
    from ..persistence.recovery import replay_file

    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    problems = []
    for name, entry in manifest["files"].items():
        path = directory / name
        if _sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
        if pq.ParquetFile(path).metadata.num_rows != entry["rows"]:
            problems.append(f"{name}: row count differs from the manifest")
    replayed = None
    if manifest.get("journal") is None:
        problems.append("no journal recorded")
    else:
        exchange, _, _ = replay_file(directory / manifest["journal"], implementation)
        replayed = exchange.state_hash()
        if replayed != manifest["state_hash"]:
            problems.append("the journal's replay gives another state hash")
        if exchange.sequence != manifest["sequence"]:
            problems.append(f"the journal holds {exchange.sequence} commands, the manifest says {manifest['sequence']}")
    return {"ok": not problems, "problems": problems, "replayed_hash": replayed}


# ==== helpers ========================================================================================
def _check_cohorts(cohorts) -> dict[str, list[int]]:
    checked = {}
    for name, ids in cohorts.items():
        if not isinstance(name, str):
            raise TypeError(f"cohort names are strings, got {name!r}")
        ids = list(ids)
        if not all(type(a) is int for a in ids):
            raise TypeError(f"cohort {name!r}: account ids are ints")
        checked[name] = ids
    return checked


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_entry(path: Path, rows: int) -> dict:
    return {"rows": rows, "bytes": path.stat().st_size, "sha256": _sha256(path)}


def _metrics_schema(symbols) -> pa.Schema:
    fields = [pa.field("step", pa.int64(), False), pa.field("time_ns", pa.int64(), False),
              pa.field("command_seq", pa.int64(), False), pa.field("cohort", pa.string(), False),
              pa.field("accounts", pa.int64(), False), pa.field("accounts_with_position", pa.int64(), False),
              pa.field("equity_units", pa.int64(), False), pa.field("wallet_units", pa.int64(), False),
              pa.field("liquidated_accounts", pa.int64(), False), pa.field("liquidations", pa.int64(), False)]
    for symbol in symbols:
        for what in ("mark_ticks", "index_ticks", "last_ticks"):
            fields.append(pa.field(f"{what}_{symbol}", pa.int64(), False))
    return pa.schema(fields)


_PRICES_SCHEMA = pa.schema([
    pa.field("step", pa.int64(), False), pa.field("time_ns", pa.int64(), False),
    pa.field("command_seq", pa.int64(), False), pa.field("symbol", pa.string(), False),
    pa.field("mark_ticks", pa.int64(), False), pa.field("index_ticks", pa.int64(), False),
    pa.field("last_ticks", pa.int64(), False), pa.field("insurance_balance_units", pa.int64(), False),
])

_ACCOUNTS_SCHEMA = pa.schema([
    pa.field("account_id", pa.int64(), False), pa.field("cohort", pa.string()),
    pa.field("insurance_fund", pa.bool_(), False), pa.field("exists", pa.bool_(), False),
    pa.field("wallet_units", pa.int64(), False), pa.field("cross_margin_balance_units", pa.int64(), False),
    pa.field("equity_units", pa.int64(), False), pa.field("available_balance_units", pa.int64(), False),
    pa.field("in_liquidation", pa.bool_(), False), pa.field("liquidations", pa.int64(), False),
    pa.field("symbol", pa.string()), pa.field("position_side", pa.int64()), pa.field("position_side_name", pa.string()),
    pa.field("lots", pa.int64()), pa.field("entry_cost", pa.int64()), pa.field("isolated_margin_units", pa.int64()),
    pa.field("margin_mode", pa.int64()), pa.field("margin_mode_name", pa.string()), pa.field("leverage", pa.int64()),
    pa.field("notional_units", pa.int64()), pa.field("unrealized_pnl_units", pa.int64()),
    pa.field("maintenance_margin_units", pa.int64()), pa.field("margin_balance_units", pa.int64()),
    pa.field("liquidation_price_ticks", pa.int64()), pa.field("bankruptcy_price_ticks", pa.int64()),
])

__all__ = [
    "RunRecorder", "EventSchema", "open_exchange", "verify_run", "event_classes", "JOURNAL_NAME", "FORMAT_VERSION",
    "META_COLUMNS", "WRITER_OPTIONS",
]
