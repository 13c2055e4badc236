"""Parameter sweeps on Dask (docs/sweeps.md): a grid of scenario overrides × worlds × seeds, one run per cell.

A grid file (``GRID.toml``) names a base scenario, the worlds and seeds, the metrics to draw and a ``[grid]``
table of dotted scenario keys, each with a list of values. :func:`load_grid` checks all of it, including that
every combination of values gives a valid :class:`~exchange.sim.scenario.Scenario`, before anything runs, and
returns a :class:`GridSpec` whose :attr:`~GridSpec.cells` are the runs (one per combination × world × seed).

:func:`run_sweep` runs the cells that are not already on disk on a Dask cluster (a ``LocalCluster`` started for
the sweep, or a running scheduler at ``tcp://HOST:PORT``) or, with ``cluster="serial"``, one after another in
this process. Each cell runs :func:`~exchange.sim.runner.run_world` on a worker and sends back its
:func:`~exchange.sim.summary.cohort_rows` and :func:`~exchange.sim.summary.world_row`; this process writes them,
as soon as each arrives, into one Parquet file per cell of the hive-partitioned datasets ``OUT/results/cohorts``
and ``OUT/results/worlds`` (atomically: a file is renamed into place complete). The files carry the cell's
identity (its overrides, world, seed and a hash of its resolved scenario) in their metadata, so a rerun skips
every cell whose results are on disk for the same parameters. A failing cell leaves ``OUT/errors/<cell>.json``
(type, message, traceback) and the sweep goes on. At the end the cell index, the error table, the across-seed
summary ``sweep_summary.csv`` and the self-contained report ``sweep.html`` are rewritten from what is on disk,
sorted in grid order, so they do not depend on the order in which workers finished.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..units import InputError
from .scenario import INSTRUMENT_SCHEMA, MIXED, POLICIES, SCHEMA, Scenario, load_scenario
from .summary import (
    CI_METRICS, COHORT_COLUMNS, WORLD_CI_METRICS, WORLD_COLUMNS, RunData, cohort_rows, mean_ci, to_csv, world_row,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

GRID_KEYS = ("name", "description", "scenario", "worlds", "seeds", "metrics", "keep_runs", "grid")
DEFAULT_METRICS = ("liquidated_share", "return_on_capital_mean", "insurance_min_units")
#: grid keys that would change what a cell is rather than how it runs
_FORBIDDEN = {"seed": "seeds", "seeds": "seeds", "study.worlds": "worlds"}
_IDS = ("world", "cohort", "seed")
_FLOAT_COLUMNS = {"liquidated_share", "time_to_first_liquidation_s", "median_time_to_liquidation_s",
                  "return_on_capital_mean", "return_on_capital_median", "return_on_capital_p05",
                  "worst_loss_share", "mark_last_deviation_max", "mark_last_deviation_mean"}
_RESERVED = {"cell_id", "metric", "mean", "ci_low", "ci_high", "seeds", "status", "error_type", "error_message",
             "run_dir", "implementation", *COHORT_COLUMNS, *WORLD_COLUMNS}
TABLES = ("cohorts", "worlds")
_META_KEY = b"exchange.sweep.cell"
WORKER_WAIT_S = 60  # how long a sweep on a running scheduler waits for its first worker
CONNECT_TIMEOUT = "15s"  # ... and for the scheduler to answer


# ==== the grid file ===================================================================================
@dataclass(frozen=True)
class Param:
    """One axis of the grid: a dotted scenario ``key``, its ``values`` and the dataset ``column`` (the key with
    ``.`` → ``_``). ``kind`` is the column's type: bool, int, float, string, or json (lists and tables, stored
    as JSON text)."""

    key: str
    column: str
    values: tuple
    kind: str

    def arrow_type(self) -> pa.DataType:
        return {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}.get(self.kind, pa.string())

    def stored(self, value):
        """``value`` as it appears in the dataset and the CSV files."""
        if self.kind == "json":
            return json.dumps(value, sort_keys=True)
        return float(value) if self.kind == "float" else value

    def label(self, value) -> str:
        """``value`` as a tick label in the report."""
        return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True, eq=False)
class Cell:
    """One run of the sweep: the grid point ``point`` (index in grid order) with its ``overrides``, a world and a
    seed. ``cell_id`` is ``<world>-s<seed>-<hash>``, the hash taken over the sorted overrides, world and seed."""

    cell_id: str
    point: int
    overrides: dict
    world: str
    seed: int
    scenario: Scenario = field(compare=False, repr=False)

    def identity(self) -> dict:
        """What must match for a result on disk to count as this cell's (stored in its Parquet metadata)."""
        return {"cell_id": self.cell_id, "overrides": _sorted(self.overrides), "world": self.world,
                "seed": self.seed, "scenario_sha256": hashlib.sha256(self.scenario.to_json().encode()).hexdigest()}


@dataclass(frozen=True)
class GridSpec:
    """A checked grid file. ``cells`` are in grid order: the product of the parameters' values (first
    parameter slowest), then worlds, then seeds."""

    name: str
    description: str
    scenario: Scenario
    scenario_source: str | None
    params: tuple[Param, ...]
    worlds: tuple[str, ...]
    seeds: tuple[int, ...]
    metrics: tuple[str, ...]
    keep_runs: bool
    cells: tuple[Cell, ...]
    source: str | None = None

    def to_json(self) -> dict:
        """A description of the sweep (``OUT/grid.json``)."""
        return {"format": "exchange-sweep", "version": 1, "name": self.name, "description": self.description,
                "source": self.source, "scenario": self.scenario_source,
                "params": [{"key": p.key, "column": p.column, "kind": p.kind, "values": list(p.values)}
                           for p in self.params],
                "worlds": list(self.worlds), "seeds": list(self.seeds), "metrics": list(self.metrics),
                "keep_runs": self.keep_runs, "cells": len(self.cells), "base_scenario": self.scenario.raw}


def load_grid(source, *, base_dir=None) -> GridSpec:
    """Read and check a grid: ``source`` is a path to a TOML file, TOML text (a ``str`` with a newline) or an
    already-parsed mapping. Relative paths (``scenario``) are taken from the grid file's folder, else
    ``base_dir``, else the working directory. Bad content raises :class:`~exchange.units.InputError` naming the
    key; a missing or unreadable file (the grid's or the scenario's) ``OSError``."""
    raw, file_dir, label = _read_grid(source)
    base = Path(base_dir) if base_dir is not None else (file_dir or Path.cwd())
    for key in raw:
        if key not in GRID_KEYS:
            raise InputError(f"{key}: unknown grid key (known: {', '.join(GRID_KEYS)})")
    scenario, scenario_source = _grid_scenario(raw.get("scenario"), base)
    worlds = _grid_worlds(raw.get("worlds"), scenario)
    seeds = _grid_seeds(raw.get("seeds"), scenario)
    metrics = _grid_metrics(raw.get("metrics"))
    keep_runs = raw.get("keep_runs", True)
    if not isinstance(keep_runs, bool):
        raise InputError(f"keep_runs: expected true or false, got {keep_runs!r}")
    name = _grid_text(raw, "name", Path(label).stem if label else "sweep")
    description = _grid_text(raw, "description", "")
    params = _grid_params(raw.get("grid"), scenario)
    cells = _grid_cells(params, scenario, worlds, seeds)
    return GridSpec(name, description, scenario, scenario_source, params, worlds, seeds, metrics, keep_runs, cells,
                    label)


def _read_grid(source) -> tuple[dict, Path | None, str | None]:
    if isinstance(source, Mapping):
        return dict(source), None, None
    if isinstance(source, str) and "\n" in source:
        text, folder, label = source, None, None
    else:
        path = Path(source).resolve()
        try:
            text = path.read_text("utf-8")  # a missing or unreadable file raises OSError
        except UnicodeDecodeError as exc:
            raise InputError(f"{source}: not a UTF-8 text file ({exc.reason})") from None
        folder, label = path.parent, str(path)
    try:
        return tomllib.loads(text), folder, label
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"grid: not valid TOML ({exc})") from None


def _grid_text(raw, key, default) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str):
        raise InputError(f"{key}: expected a string, got {value!r}")
    return value


def _grid_scenario(value, base: Path) -> tuple[Scenario, str | None]:
    if value is None:
        return load_scenario(None), None
    if not isinstance(value, str) or not value:
        raise InputError(f"scenario: expected a path to a scenario TOML file, got {value!r}")
    path = (base / value).resolve()
    try:
        return load_scenario(path), str(path)
    except InputError as exc:
        raise InputError(f"scenario ({value}): {exc}") from None


def _grid_worlds(value, scenario: Scenario) -> tuple[str, ...]:
    if value is None:
        return tuple(scenario.worlds)
    known = (*POLICIES, MIXED)
    if not isinstance(value, list) or not value:
        raise InputError(f"worlds: expected a non-empty list of worlds ({', '.join(known)}), got {value!r}")
    for i, world in enumerate(value):
        if world not in known:
            raise InputError(f"worlds[{i}]: unknown world {world!r} (known: {', '.join(known)})")
    _no_duplicates("worlds", value)
    return tuple(value)


def _grid_seeds(value, scenario: Scenario) -> tuple[int, ...]:
    if value is None:
        return tuple(scenario.seeds)
    if type(value) is int:
        if not 1 <= value <= 10_000:
            raise InputError(f"seeds: expected a count in [1, 10000] or a list of seeds, got {value}")
        return tuple(scenario["seed"] + i for i in range(value))
    if not isinstance(value, list) or not value:
        raise InputError(f"seeds: expected a count or a non-empty list of seeds, got {value!r}")
    for i, seed in enumerate(value):
        if type(seed) is not int or not 0 <= seed < 2**32:
            raise InputError(f"seeds[{i}]: expected an integer in [0, 2**32), got {seed!r}")
    _no_duplicates("seeds", value)
    return tuple(value)


def metric_names() -> tuple[str, ...]:
    """Every metric a grid may chart: the cohort columns, then the venue columns (ids excluded)."""
    return tuple(dict.fromkeys(c for c in (*COHORT_COLUMNS, *WORLD_COLUMNS) if c not in _IDS))


def _grid_metrics(value) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_METRICS
    if not isinstance(value, list) or not value:
        raise InputError(f"metrics: expected a non-empty list of metric names, got {value!r}")
    known = metric_names()
    for i, name in enumerate(value):
        if name not in known:
            raise InputError(f"metrics[{i}]: unknown metric {name!r} (cohort: "
                             f"{', '.join(c for c in COHORT_COLUMNS if c not in _IDS)}; venue: "
                             f"{', '.join(c for c in WORLD_COLUMNS if c not in _IDS)})")
    _no_duplicates("metrics", value)
    return tuple(value)


def _no_duplicates(key: str, values: list) -> None:
    seen = []
    for i, v in enumerate(values):
        if v in seen:
            raise InputError(f"{key}[{i}]: duplicate value {v!r}")
        seen.append(v)


def _flatten(table: Mapping, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"path": {"drop": [...]}}`` and ``{"path.drop": [...]}`` both give ``("path.drop", [...])``."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _check_key(key: str) -> None:
    where = f"grid.{key}"
    if key in _FORBIDDEN:
        raise InputError(f"{where}: not a grid parameter; set `{_FORBIDDEN[key]}` at the top of the grid file")
    parts = key.split(".")
    if parts[0] == "instruments":
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in INSTRUMENT_SCHEMA:
            raise InputError(f"{where}: expected instruments.<index>.<key> with a known instrument key "
                             f"({', '.join(INSTRUMENT_SCHEMA)})")
        return
    section, name = ".".join(parts[:-1]), parts[-1]
    if section not in SCHEMA or name not in SCHEMA[section]:
        raise InputError(f"{where}: unknown scenario key")


def _kind(values: list) -> str:
    """The dataset column type of a parameter's values."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if any(isinstance(v, bool) for v in values):
        return "json"
    if all(isinstance(v, int) for v in values):
        return "int"
    if all(isinstance(v, (int, float)) for v in values):
        return "float"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"


def _jsonable(where: str, value) -> None:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _jsonable(f"{where}[{i}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _jsonable(f"{where}.{k}", v)
        return
    raise InputError(f"{where}: {value!r} is not a scenario value (dates and times are not)")


def _grid_params(table, scenario: Scenario) -> tuple[Param, ...]:
    if not isinstance(table, dict) or not table:
        raise InputError("grid: expected a [grid] table with at least one `\"section.key\" = [values]` entry")
    params, columns = [], {}
    for key, values in _flatten(table):
        where = f"grid.{key}"
        _check_key(key)
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: expected a non-empty list of values, got {values!r}")
        _no_duplicates(where, values)
        for i, value in enumerate(values):
            _jsonable(f"{where}[{i}]", value)
            try:
                scenario.override({key: value})
            except InputError as exc:
                raise InputError(f"{where}[{i}]: {exc}") from None
        column = key.replace(".", "_")
        if column in _RESERVED or column in columns:
            clash = columns.get(column, "a result column")
            raise InputError(f"{where}: its column name {column!r} clashes with {clash}")
        columns[column] = f"grid.{key}"
        params.append(Param(key, column, tuple(values), _kind(values)))
    return tuple(params)


def _grid_cells(params, scenario: Scenario, worlds, seeds) -> tuple[Cell, ...]:
    cells = []
    for point, combo in enumerate(itertools.product(*(p.values for p in params))):
        overrides = {p.key: v for p, v in zip(params, combo)}
        try:
            variant = scenario.override(overrides)
            _check_files_exist(variant)
        except InputError as exc:
            shown = ", ".join(f"{k} = {json.dumps(v)}" for k, v in overrides.items())
            raise InputError(f"grid: the combination {{{shown}}} is not a valid scenario: {exc}") from None
        for world in worlds:
            for seed in seeds:
                cells.append(Cell(cell_id(overrides, world, seed), point, overrides, world, seed, variant))
    return tuple(cells)


def _check_files_exist(scenario: Scenario) -> None:
    """Historical paths: every named file exists (its content is read when the cell runs)."""
    if scenario["path.kind"] not in ("klines", "agg_trades"):
        return
    for symbol, kinds in scenario["path.files"].items():
        for kind, files in kinds.items():
            for name in files:
                if not (scenario.base_dir / name).is_file():
                    raise InputError(f"path.files.{symbol}.{kind}: no such file {str(scenario.base_dir / name)!r}")


def _sorted(overrides: Mapping) -> dict:
    return {k: overrides[k] for k in sorted(overrides)}


def cell_id(overrides: Mapping, world: str, seed: int) -> str:
    """``<world>-s<seed>-<10 hex digits>``: stable for the same overrides (in any order), world and seed."""
    text = json.dumps({"overrides": _sorted(overrides), "world": world, "seed": seed}, sort_keys=True,
                      separators=(",", ":"))
    return f"{world}-s{seed}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


# ==== one cell (runs on a worker) =====================================================================
def run_cell(task: dict) -> dict:
    """Run one cell and summarise it; never raises. ``task``: ``scenario`` (raw), ``base_dir``, ``world``,
    ``seed`` and ``run_dir`` (``None``: a temporary directory, removed after). Returns ``{"ok": True, "cohorts":
    [...], "world": {...}, "manifest": {...}, ...}`` or ``{"ok": False, "error": {type, message, traceback}}``."""
    from .runner import run_world

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        scenario = Scenario(task["scenario"], task["base_dir"])
        with ExitStack() as stack:
            if task["run_dir"] is None:
                run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="exchange-cell-"))) / "run"
                manifest = run_world(scenario, task["world"], task["seed"], run_dir)
            else:
                run_dir = Path(task["run_dir"])
                partial = run_dir.with_name(run_dir.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                manifest = run_world(scenario, task["world"], task["seed"], partial)
                shutil.rmtree(run_dir, ignore_errors=True)
                partial.rename(run_dir)
            data = RunData(run_dir)
            cohorts, venue = cohort_rows(data), world_row(data)
    except Exception as exc:  # noqa: BLE001 - a cell's failure is recorded, not raised
        return {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc),
                                       "traceback": traceback.format_exc()},
                "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    return {"ok": True, "cohorts": cohorts, "world": venue,
            "manifest": {k: manifest.get(k) for k in ("implementation", "state_hash", "sequence")},
            "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def _task(spec: GridSpec, cell: Cell, out: Path) -> dict:
    run_dir = str(out / "cells" / cell.cell_id / "run") if spec.keep_runs else None
    return {"scenario": cell.scenario.raw, "base_dir": str(cell.scenario.base_dir), "world": cell.world,
            "seed": cell.seed, "run_dir": run_dir}


# ==== the output directory ============================================================================
def _metric_type(name: str) -> pa.DataType:
    if name in ("world", "cohort"):
        return pa.string()
    return pa.float64() if name in _FLOAT_COLUMNS else pa.int64()


def result_schema(spec: GridSpec, table: str) -> pa.Schema:
    """The columns of one cell's file in ``OUT/results/<table>`` (``world`` is the hive partition, not a
    column of the files): ``cell_id``, the parameter columns, then the summary's columns."""
    columns = COHORT_COLUMNS if table == "cohorts" else WORLD_COLUMNS
    fields = [pa.field("cell_id", pa.string(), False)]
    fields += [pa.field(p.column, p.arrow_type(), False) for p in spec.params]
    fields += [pa.field(c, _metric_type(c)) for c in columns if c != "world"]
    return pa.schema(fields)


def _result_path(out: Path, table: str, cell: Cell) -> Path:
    return out / "results" / table / f"world={cell.world}" / f"{cell.cell_id}.parquet"


def _cell_table(spec: GridSpec, cell: Cell, table: str, rows: list[dict]) -> pa.Table:
    schema = result_schema(spec, table)
    data = {"cell_id": [cell.cell_id] * len(rows)}
    for p in spec.params:
        data[p.column] = [p.stored(cell.overrides[p.key])] * len(rows)
    for name in schema.names[1 + len(spec.params):]:
        data[name] = [row[name] for row in rows]
    meta = json.dumps(cell.identity(), sort_keys=True).encode()
    return pa.table(data, schema=schema.with_metadata({_META_KEY: meta}))


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` into a hidden file beside ``path``, then rename it into place (readers never see half a file;
    pyarrow.dataset skips names starting with a dot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"))


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(text))


def _is_complete(out: Path, spec: GridSpec, cell: Cell) -> bool:
    """Both result files are on disk, for this cell's parameters (the identity in their metadata) and with the
    expected columns; with ``keep_runs``, its run directory too."""
    if spec.keep_runs and not (out / "cells" / cell.cell_id / "run" / "manifest.json").is_file():
        return False
    for table in TABLES:
        try:
            schema = pq.read_schema(_result_path(out, table, cell))
            identity = json.loads((schema.metadata or {})[_META_KEY])
        except (OSError, KeyError, ValueError, pa.ArrowException):
            return False
        if identity != cell.identity() or not schema.remove_metadata().equals(result_schema(spec, table)):
            return False
    return True


def _check_out(out_dir) -> Path:
    """``out_dir`` is new, empty or a previous sweep's output (it has ``grid.json``)."""
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"out: {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "grid.json").is_file():
        raise InputError(f"out: {out} is not empty and holds no sweep (no grid.json); choose a new directory")
    return out


def _remove_stale(out: Path, spec: GridSpec, complete: set[str]) -> int:
    """Remove what belongs to no cell of this grid, and the results of cells that will run again (so the
    datasets hold exactly the grid's finished cells). Returns how many cells of another grid were removed."""
    ids = {c.cell_id for c in spec.cells}
    stale: set[str] = set()
    for table in TABLES:
        for path in (out / "results" / table).glob("world=*/*"):
            cell = path.name.split(".")[0] if not path.name.startswith(".") else None
            if cell is None or path.suffix == ".tmp":
                path.unlink()  # a write cut short
            elif cell not in ids or cell not in complete:
                path.unlink()
                stale.update({cell} - ids)
        for folder in (out / "results" / table).glob("world=*"):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    for path in (out / "cells").glob("*"):
        if path.name not in ids:
            shutil.rmtree(path, ignore_errors=True)
            stale.add(path.name)
    for path in (out / "errors").glob("*.json"):
        if path.stem not in ids:
            path.unlink()
    return len(stale)


def read_results(out_dir, table: str = "cohorts") -> pa.Table:
    """A sweep's ``table`` (``"cohorts"`` or ``"worlds"``) as one Arrow table in grid order (parameter values
    in the grid file's order, then world, seed and cohort). The same rows as reading ``OUT/results/<table>``
    with pyarrow.dataset, pandas, polars or DuckDB."""
    if table not in TABLES:
        raise InputError(f"table: expected one of {', '.join(TABLES)}, got {table!r}")
    out = Path(out_dir)
    folder = out / "results" / table
    if not any(folder.glob("world=*/*.parquet")):
        return pa.table({})
    dataset = ds.dataset(folder, format="parquet",
                         partitioning=ds.partitioning(pa.schema([("world", pa.string())]), flavor="hive"))
    return _grid_sorted(dataset.to_table(), json.loads((out / "grid.json").read_text()))


def _grid_sorted(result: pa.Table, grid: dict) -> pa.Table:
    """Sort by each parameter's position in its value list, the world's in ``worlds``, seed, cohort."""
    import pyarrow.compute as pc

    orders = []
    for p in grid["params"]:
        param = Param(p["key"], p["column"], tuple(p["values"]), p["kind"])
        values = pa.array([param.stored(v) for v in param.values], type=param.arrow_type())
        orders.append(pc.index_in(result[param.column], value_set=values))
    orders.append(pc.index_in(result["world"], value_set=pa.array(grid["worlds"], pa.string())))
    orders.append(result["seed"])
    if "cohort" in result.column_names:
        orders.append(pc.index_in(result["cohort"], value_set=pa.array([*POLICIES, MIXED], pa.string())))
        orders.append(result["cohort"])
    orders.append(result["cell_id"])
    keys = pa.table({f"k{i}": column for i, column in enumerate(orders)})
    index = pc.sort_indices(keys, sort_keys=[(f"k{i}", "ascending") for i in range(len(orders))])
    return result.take(index)


# ==== running ===========================================================================================
def _check_cluster(cluster, workers) -> None:
    if type(workers) is not int or workers < 1:
        raise InputError(f"workers: expected a positive integer, got {workers!r}")
    if isinstance(cluster, str):
        if cluster in ("local", "serial") or "://" in cluster:
            return
        raise InputError(f"cluster: expected 'local', 'serial' or a scheduler address such as tcp://HOST:PORT, "
                         f"got {cluster!r}")
    if type(cluster).__name__ != "Client":
        raise InputError(f"cluster: expected 'local', 'serial', tcp://HOST:PORT or a distributed.Client, "
                         f"got {cluster!r}")


# The sweep's own LocalCluster has no dashboard: turn off what only feeds it (the workers' statistical profiler
# samples every thread 100 times a second) and slow the event loops' housekeeping; a few % of CPU per worker.
_LOCAL_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "500ms",
                 "distributed.admin.system-monitor.interval": "2s"}


@contextmanager
def _client(cluster, workers: int):
    """A ``distributed.Client``: the one given, one on a new LocalCluster, or one connected to ``cluster``."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        yield cluster
    elif cluster == "local":
        with dask.config.set(_LOCAL_CONFIG), \
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                             silence_logs=logging.ERROR) as local, Client(local) as client:
            yield client
    else:
        try:
            client = Client(cluster, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cluster: cannot connect to the scheduler at {cluster} ({exc})") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise InputError(f"cluster: no worker joined {cluster} within {WORKER_WAIT_S} s") from None
            yield client


def _execute(tasks: dict[str, dict], client) -> Iterator[tuple[str, dict]]:
    """Run the tasks (cell id → task) and yield ``(cell_id, result)`` as each finishes."""
    if client is None:
        for cid, task in tasks.items():
            yield cid, run_cell(task)
        return
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]  # two sweeps sharing a scheduler never share a task
    by_key = {}
    for cid, task in tasks.items():
        future = client.submit(run_cell, task, key=f"sweep-{cid}-{token}", pure=False, retries=0)
        by_key[future.key] = (cid, future)
    for future in as_completed([f for _, f in by_key.values()]):
        cid, _ = by_key.pop(future.key)
        if future.status == "finished":
            result = future.result()
        else:  # the worker died (or the task was lost): the scheduler gave up on it
            try:
                exc, tb = future.exception(), future.traceback()
            except Exception as lost:  # noqa: BLE001 - e.g. cancelled when the scheduler went away
                exc, tb = lost, None
            result = {"ok": False, "error": {"type": type(exc).__name__, "message": str(exc),
                                             "traceback": "".join(traceback.format_exception(type(exc), exc, tb))}}
        future.release()
        yield cid, result


def _record(out: Path, spec: GridSpec, cell: Cell, result: dict) -> None:
    """Write one finished cell: its result files, or its error file."""
    error_path = out / "errors" / f"{cell.cell_id}.json"
    if not result["ok"]:
        _write_json(error_path, {**cell.identity(), **result["error"]})
        return
    for table, rows in (("cohorts", result["cohorts"]), ("worlds", [result["world"]])):
        arrow = _cell_table(spec, cell, table, rows)
        _write_atomic(_result_path(out, table, cell), lambda tmp, t=arrow: pq.write_table(t, tmp))
    error_path.unlink(missing_ok=True)


def run_sweep(grid, out_dir, *, cluster="local", workers: int = 2,
              progress: Callable[[int, int, str, str], None] | None = None) -> dict:
    """Run every cell of ``grid`` (a :class:`GridSpec`, or what :func:`load_grid` reads) that is not finished in
    ``out_dir``, and write the datasets, the summary and the report.

    ``cluster``: ``"local"`` (a new ``LocalCluster`` of ``workers`` single-threaded processes), a scheduler
    address (``"tcp://HOST:PORT"``; ``workers`` is ignored), a ``distributed.Client``, or ``"serial"`` (in this
    process, no Dask). ``progress(done, total, cell_id, status)`` is called once per cell, status ``"skipped"``,
    ``"done"`` or ``"failed"``. Returns ``{"cells", "done", "skipped", "failed", "removed", "errors", "out",
    "results", "summary", "report", "wall_s", "cells_cpu_s"}`` (``removed``: cells of another grid cleared from
    ``out_dir``; ``errors``: this run's failures; ``cells_cpu_s``: CPU time of the cells run, summed over the
    workers). Bad input raises InputError before anything is written."""
    started = time.perf_counter()
    spec = grid if isinstance(grid, GridSpec) else load_grid(grid)
    _check_cluster(cluster, workers)
    out = _check_out(out_dir)
    by_id = {c.cell_id: c for c in spec.cells}
    complete = {c.cell_id for c in spec.cells if _is_complete(out, spec, c)}
    counts = {"done": 0, "skipped": 0, "failed": 0}
    errors: list[dict] = []
    cells_cpu = 0.0
    total = len(spec.cells)

    def tick(cid: str, status: str) -> None:
        counts[status] += 1
        if progress is not None:
            progress(sum(counts.values()), total, cid, status)

    todo = {c.cell_id: _task(spec, c, out) for c in spec.cells if c.cell_id not in complete}
    with ExitStack() as stack:
        client = None
        if todo and cluster != "serial":
            client = stack.enter_context(_client(cluster, workers))
        out.mkdir(parents=True, exist_ok=True)
        _write_json(out / "grid.json", spec.to_json())
        removed = _remove_stale(out, spec, complete)
        _write_index(out, spec)
        for cell in spec.cells:
            if cell.cell_id in complete:
                tick(cell.cell_id, "skipped")
        for cid, result in _execute(todo, client):
            _record(out, spec, by_id[cid], result)
            cells_cpu += result.get("cpu_s", 0.0)
            if not result["ok"]:
                errors.append({"cell_id": cid, "type": result["error"]["type"],
                               "message": result["error"]["message"]})
            tick(cid, "done" if result["ok"] else "failed")
    wall = time.perf_counter() - started
    run_info = {**counts, "cells": total, "wall_s": wall}
    _write_index(out, spec)
    _write_errors(out, spec)
    rows = {table: _rows(out, spec, table) for table in TABLES}
    _write_text(out / "sweep_summary.csv", summary_csv(spec, rows["cohorts"], rows["worlds"]))
    _write_text(out / "sweep.html", report_html(out, spec, rows["cohorts"], rows["worlds"], run_info))
    return {"cells": total, **counts, "removed": removed, "errors": sorted(errors, key=lambda e: e["cell_id"]),
            "out": str(out), "results": str(out / "results"), "summary": str(out / "sweep_summary.csv"),
            "report": str(out / "sweep.html"), "wall_s": wall, "cells_cpu_s": cells_cpu}


# ==== index and errors ================================================================================
def _cell_status(out: Path, spec: GridSpec, cell: Cell) -> str:
    if all(_result_path(out, t, cell).is_file() for t in TABLES):
        return "done"
    return "failed" if (out / "errors" / f"{cell.cell_id}.json").is_file() else "pending"


def _read_error(out: Path, cell: Cell) -> dict | None:
    try:
        return json.loads((out / "errors" / f"{cell.cell_id}.json").read_text())
    except (OSError, ValueError):
        return None


def _cell_columns(spec: GridSpec) -> list[str]:
    return ["cell_id", *(p.column for p in spec.params), "world", "seed"]


def _cell_fields(spec: GridSpec, cell: Cell) -> dict:
    row = {"cell_id": cell.cell_id, "world": cell.world, "seed": cell.seed}
    row.update({p.column: p.stored(cell.overrides[p.key]) for p in spec.params})
    return row


def _write_index(out: Path, spec: GridSpec) -> None:
    """``OUT/cells.csv``: every cell in grid order with its parameters, status and run directory."""
    rows = []
    for cell in spec.cells:
        status = _cell_status(out, spec, cell)
        run = out / "cells" / cell.cell_id / "run"
        rows.append({**_cell_fields(spec, cell), "status": status,
                     "run_dir": str(run.relative_to(out)) if spec.keep_runs and status == "done" else ""})
    _write_text(out / "cells.csv", to_csv(rows, [*_cell_columns(spec), "status", "run_dir"]))


def _write_errors(out: Path, spec: GridSpec) -> None:
    """``OUT/errors.csv``: the failed cells (full tracebacks in ``OUT/errors/<cell_id>.json``)."""
    rows = []
    for cell in spec.cells:
        error = _read_error(out, cell) if _cell_status(out, spec, cell) == "failed" else None
        if error:
            rows.append({**_cell_fields(spec, cell), "error_type": error.get("type", ""),
                         "error_message": error.get("message", "")})
    _write_text(out / "errors.csv", to_csv(rows, [*_cell_columns(spec), "error_type", "error_message"]))


# ==== summary across seeds ============================================================================
def _rows(out: Path, spec: GridSpec, table: str) -> list[dict]:
    ids = {c.cell_id for c in spec.cells}
    return [r for r in read_results(out, table).to_pylist() if r["cell_id"] in ids]


def _cohort_order(spec: GridSpec, rows: list[dict]) -> list[tuple[str, str]]:
    """(world, cohort) pairs present, worlds in grid order, a mixed world's cohorts in policy order."""
    present = {(r["world"], r["cohort"]) for r in rows}
    order = [*POLICIES, MIXED]
    return sorted(present, key=lambda k: (spec.worlds.index(k[0]) if k[0] in spec.worlds else len(spec.worlds),
                                          order.index(k[1]) if k[1] in order else len(order), k[1]))


def _summary_metrics(spec: GridSpec) -> tuple[list[str], list[str]]:
    cohort = [*CI_METRICS, *(m for m in spec.metrics if m in COHORT_COLUMNS and m not in CI_METRICS)]
    venue = [*WORLD_CI_METRICS, *(m for m in spec.metrics if m not in COHORT_COLUMNS and m not in WORLD_CI_METRICS)]
    return cohort, venue


def summary_rows(spec: GridSpec, cohorts: list[dict], worlds: list[dict]) -> list[dict]:
    """Per grid point, world, cohort (``"*"`` for the venue) and metric: the mean and 95 % interval across
    seeds, in grid order."""
    point_of = {c.cell_id: c.point for c in spec.cells}
    points = {c.point: c for c in spec.cells}
    cohort_metrics, venue_metrics = _summary_metrics(spec)
    groups: dict[tuple, list[dict]] = {}
    for r in cohorts:
        groups.setdefault((point_of[r["cell_id"]], r["world"], r["cohort"]), []).append(r)
    for r in worlds:
        groups.setdefault((point_of[r["cell_id"]], r["world"], "*"), []).append(r)
    pairs = _cohort_order(spec, cohorts)
    out = []
    for point in sorted(points):
        params = {p.column: p.stored(points[point].overrides[p.key]) for p in spec.params}
        keys = [(w, c, cohort_metrics) for w, c in pairs] + [(w, "*", venue_metrics) for w in spec.worlds]
        for world, cohort, metrics in keys:
            rows = groups.get((point, world, cohort))
            if not rows:
                continue
            for metric in metrics:
                mean, low, high, n = mean_ci(r[metric] for r in rows)
                out.append({**params, "world": world, "cohort": cohort, "metric": metric, "mean": mean,
                            "ci_low": low, "ci_high": high, "seeds": n})
    return out


def summary_csv(spec: GridSpec, cohorts: list[dict], worlds: list[dict]) -> str:
    """``sweep_summary.csv``: :func:`summary_rows` as deterministic CSV text."""
    columns = [*(p.column for p in spec.params), "world", "cohort", "metric", "mean", "ci_low", "ci_high", "seeds"]
    return to_csv(summary_rows(spec, cohorts, worlds), columns)


# ==== the report ======================================================================================
def _scale(metric: str) -> tuple[float, str]:
    """Money columns are drawn in quote currency."""
    return (1e-8, f"{metric} (quote currency)") if metric.endswith("_units") else (1.0, metric)


def _panels(spec: GridSpec, metric: str, cohorts: list[dict], worlds: list[dict]):
    """``[(title, rows)]``: one panel per (world, cohort) for a cohort metric, per world for a venue metric."""
    if metric in COHORT_COLUMNS:
        return [(f"{w} world" if w == c else f"{w} world: {c} cohort",
                 [r for r in cohorts if (r["world"], r["cohort"]) == (w, c)]) for w, c in _cohort_order(spec, cohorts)]
    panels = [(f"{w} world", [r for r in worlds if r["world"] == w]) for w in spec.worlds]
    return [(title, rows) for title, rows in panels if rows]


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _heatmap(spec: GridSpec, metric: str, panels) -> str:
    """Mean of ``metric`` over the first two parameters (x: first, y: second), pooled over seeds and over the
    other parameters' values; one panel per world / cohort, one colour scale."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    px, py = spec.params[0], spec.params[1]
    scale, label = _scale(metric)
    values_of = {c.cell_id: (px.values.index(c.overrides[px.key]), py.values.index(c.overrides[py.key]))
                 for c in spec.cells}
    grids = []
    for _, rows in panels:
        sums = np.zeros((len(py.values), len(px.values)))
        counts = np.zeros_like(sums)
        for r in rows:
            if r[metric] is not None and not (isinstance(r[metric], float) and math.isnan(r[metric])):
                x, y = values_of[r["cell_id"]]
                sums[y, x] += r[metric] * scale
                counts[y, x] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            grids.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    cell_w = max(2.8, 0.75 * len(px.values) + 1.2)
    cell_h = max(2.4, 0.45 * len(py.values) + 1.4)
    fig = Figure(figsize=(cell_w * ncols + 1.2, cell_h * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap = colormaps["viridis"].with_extremes(bad="#e0e0e0")
    image = None
    for ax, (title, _), grid in zip(axes.flat, panels, grids):
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                          aspect="auto")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(px.values)), [px.label(v) for v in px.values], fontsize=8)
        ax.set_yticks(range(len(py.values)), [py.label(v) for v in py.values], fontsize=8)
        ax.set_xlabel(px.key, fontsize=9)
        ax.set_ylabel(py.key, fontsize=9)
        for (y, x), value in np.ndenumerate(grid):
            shade = (value - vmin) / (vmax - vmin) if math.isfinite(value) else 1.0
            ax.text(x, y, _fmt(value), ha="center", va="center", fontsize=8,
                    color="white" if shade < 0.6 else "black")
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.9, label=label)
    return _png(fig)


def _line_chart(spec: GridSpec, metric: str, panels) -> str:
    """One parameter: the mean across seeds per value, a line per world / cohort with its 95 % interval."""
    from matplotlib.figure import Figure

    p = spec.params[0]
    scale, label = _scale(metric)
    numeric = p.kind in ("int", "float")
    xs = [float(v) for v in p.values] if numeric else list(range(len(p.values)))
    value_of = {c.cell_id: p.values.index(c.overrides[p.key]) for c in spec.cells}
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    ax = fig.subplots()
    # series side by side around each value, so that their intervals do not hide each other
    step = min((b - a for a, b in zip(sorted(xs), sorted(xs)[1:])), default=1.0)
    offsets = [(i - (len(panels) - 1) / 2) * step * 0.12 / max(1, len(panels) - 1) * 2 for i in range(len(panels))]
    for (title, rows), offset in zip(panels, offsets):
        stats = [mean_ci(r[metric] * scale if r[metric] is not None else None
                         for r in rows if value_of[r["cell_id"]] == i) for i in range(len(p.values))]
        means = [s[0] for s in stats]
        errors = [[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]
        ax.errorbar([x + offset for x in xs], means, yerr=errors, marker="o", capsize=3, label=title)
    ax.set_xticks(xs, [p.label(v) for v in p.values])
    ax.set_xlabel(p.key)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _figures(spec: GridSpec, cohorts: list[dict], worlds: list[dict]) -> list[tuple[str, str, str]]:
    """``[(metric, caption, base64 png)]`` for the grid's metrics that have data."""
    out = []
    rest = [p.key for p in spec.params[2:]]
    for metric in spec.metrics:
        panels = _panels(spec, metric, cohorts, worlds)
        if not panels:
            continue
        if len(spec.params) == 1:
            caption = f"Mean across seeds per value of {spec.params[0].key}, with 95 % intervals."
            out.append((metric, caption, _line_chart(spec, metric, panels)))
        else:
            caption = (f"Mean across seeds{' and across ' + ', '.join(rest) if rest else ''}; "
                       f"x: {spec.params[0].key}, y: {spec.params[1].key}. "
                       f"Grey: no value (nobody liquidated, or every run there failed).")
            out.append((metric, caption, _heatmap(spec, metric, panels)))
    return out


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}table.meta th{width:160px}img{max-width:100%;display:block;margin:6px 0}
.failed{color:#b00020;font-weight:600}.done{color:#1b6e20}.pending{color:#8a6d00}
pre{background:#f8f8f8;padding:8px;overflow-x:auto;font-size:11px}p.caption{color:#555;font-size:13px}"""
_MAX_TABLE_ROWS = 1000


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table of already-escaped cells (at most _MAX_TABLE_ROWS rows)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = ["<tr>" + "".join(f"<td>{value}</td>" for value in row) + "</tr>" for row in rows[:_MAX_TABLE_ROWS]]
    more = f"<p>… {len(rows) - _MAX_TABLE_ROWS} more rows in cells.csv</p>" if len(rows) > _MAX_TABLE_ROWS else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def report_html(out: Path, spec: GridSpec, cohorts: list[dict], worlds: list[dict], run_info: dict) -> str:
    """``sweep.html``: one self-contained page — the sweep's description, a figure per metric (PNG embedded
    as base64), the failed cells with their tracebacks and the table of cells."""
    e = html.escape
    statuses = {c.cell_id: _cell_status(out, spec, c) for c in spec.cells}
    n = {s: sum(v == s for v in statuses.values()) for s in ("done", "failed", "pending")}
    meta = [
        ("scenario", spec.scenario_source or "embedded default (margin-modes)"),
        *((f"grid: {p.key}", ", ".join(p.label(v) for v in p.values)) for p in spec.params),
        ("worlds", ", ".join(spec.worlds)), ("seeds", ", ".join(map(str, spec.seeds))),
        ("cells", f"{len(spec.cells)}: {n['done']} finished, {n['failed']} failed, {n['pending']} pending"),
        ("last run", f"{run_info['done']} ran, {run_info['skipped']} skipped (already on disk), "
                     f"{run_info['failed']} failed, {run_info['wall_s']:.1f} s"),
        ("files", "results/cohorts/, results/worlds/ (Parquet datasets), sweep_summary.csv, cells.csv, errors.csv"
                  + (", cells/<cell>/run/" if spec.keep_runs else "")),
    ]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Sweep: {e(spec.name)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Sweep: {e(spec.name)}</h1>"]
    if spec.description:
        parts.append(f"<p>{e(spec.description)}</p>")
    parts.append("<table class='meta'>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in meta)
                 + "</table>")
    for metric, caption, png in _figures(spec, cohorts, worlds):
        parts.append(f"<h2>{e(metric)}</h2><p class='caption'>{e(caption)}</p>"
                     f"<img alt='{e(metric)}' src='data:image/png;base64,{png}'>")
    failed = [c for c in spec.cells if statuses[c.cell_id] == "failed"]
    parts.append(f"<h2>Errors ({len(failed)})</h2>")
    if failed:
        rows = []
        for cell in failed:
            err = _read_error(out, cell) or {}
            rows.append([e(cell.cell_id), *(e(p.label(cell.overrides[p.key])) for p in spec.params), e(cell.world),
                         str(cell.seed), e(err.get("type", "")),
                         f"{e(err.get('message', ''))}<details><summary>traceback</summary>"
                         f"<pre>{e(err.get('traceback', ''))}</pre></details>"])
        parts.append(_table(["cell", *(p.key for p in spec.params), "world", "seed", "error", "message"], rows))
    else:
        parts.append("<p>None.</p>")
    rows = []
    for cell in spec.cells:
        status = statuses[cell.cell_id]
        row = [e(cell.cell_id), *(e(p.label(cell.overrides[p.key])) for p in spec.params), e(cell.world),
               str(cell.seed), f"<span class='{status}'>{status}</span>"]
        if spec.keep_runs:
            run = f"cells/{cell.cell_id}/run"
            row.append(f"<a href='{e(run)}/manifest.json'>{e(run)}</a>" if status == "done" else "")
        rows.append(row)
    headers = ["cell", *(p.key for p in spec.params), "world", "seed", "status", *(["run"] if spec.keep_runs else [])]
    parts.append(f"<h2>Cells ({len(spec.cells)})</h2>" + _table(headers, rows))
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["GridSpec", "Cell", "Param", "load_grid", "run_sweep", "run_cell", "read_results", "result_schema",
           "summary_rows", "summary_csv", "report_html", "cell_id", "metric_names", "DEFAULT_METRICS", "TABLES"]
