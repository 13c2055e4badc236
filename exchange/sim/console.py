"""The research commands of ``exchange-sim`` (study, report, sweep, scenario) with rich progress and tables.

:mod:`exchange.cli` parses the command line and maps errors to exit codes; these functions do the work and
print. Bad input raises :class:`~exchange.units.InputError` (exit 2), a missing file ``OSError`` (exit 4).
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

from ..units import InputError

STUDIES = ("margin-modes",)


def parse_set(items) -> dict:
    """``--set KEY=VALUE`` pairs → overrides; the value is read as a TOML value (``0.4``, ``20``,
    ``["5m", "30m"]``, ``true``), else taken as a string."""
    from .scenario import tomllib

    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {item!r}: expected KEY=VALUE (e.g. traders.count=20)")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value
    return out


def make_console():
    """A rich console; 140 columns when the output is not a terminal (a log file keeps the tables whole)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=140)


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


# ==== study ===========================================================================================
def study(name: str, *, scenario_path=None, out=None, seeds=None, workers=None, overrides=None,
          report: bool = True, console=None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .scenario import load_scenario
    from .study import run_study, total_steps

    if name not in STUDIES:
        raise InputError(f"unknown study {name!r} (known: {', '.join(STUDIES)})")
    overrides = dict(overrides or {})
    if seeds is not None:
        overrides["seeds"] = seeds
    scenario = load_scenario(scenario_path, overrides)
    out = Path(out) if out is not None else Path("runs") / name
    workers = workers or default_workers()
    console = console or make_console()
    console.print(f"[bold]study {name}[/bold]: scenario [cyan]{scenario.name}[/cyan], worlds "
                  f"{', '.join(scenario.worlds)}, seeds {scenario.seeds[0]}..{scenario.seeds[-1]}, "
                  f"{workers} worker{'s' * (workers > 1)} → {out}")
    steps = total_steps(scenario)
    started = time.perf_counter()
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, auto_refresh=False, transient=False) as progress:
        tasks = {w: progress.add_task(w, total=steps * len(scenario.seeds)) for w in scenario.worlds}
        seen: dict[tuple[str, int], int] = {}

        def on_progress(world, seed, done, total):
            previous = seen.get((world, seed), 0)
            seen[world, seed] = done
            progress.advance(tasks[world], done - previous)
            progress.refresh()

        result = run_study(scenario, out, workers=workers, progress=on_progress, report=report)
        progress.refresh()
    elapsed = time.perf_counter() - started
    print_summary(out, console)
    console.print(f"finished in {elapsed:.1f} s; files in [bold]{out}[/bold]: summary.csv, worlds.csv, "
                  f"summary_ci.csv, runs/")
    if report:
        console.print(f"report: [bold]{out / 'report.html'}[/bold]")
    return 0 if result else 1


def print_summary(out, console) -> None:
    """The per-cohort and per-world tables of ``summary_ci.csv`` (means with 95 % intervals across seeds)."""
    from rich.table import Table

    from .summary import read_csv

    rows = read_csv(Path(out) / "summary_ci.csv")
    by = {(r["world"], r["cohort"], r["metric"]): r for r in rows}
    keys = []
    for r in rows:
        if r["cohort"] != "*" and (r["world"], r["cohort"]) not in keys:
            keys.append((r["world"], r["cohort"]))
    table = Table(title="Leveraged traders by world and cohort (mean ± 95 % CI across seeds)", header_style="bold")
    cols = [("liquidated", "liquidated_share", _pct), ("first liq. (min)", "time_to_first_liquidation_s", _minutes),
            ("return mean", "return_on_capital_mean", _pct), ("return p05", "return_on_capital_p05", _pct),
            ("worst loss", "worst_loss_share", _pct), ("loss beyond alloc. (USDT)", "loss_beyond_allocation_units", _usdt),
            ("fees (USDT)", "fees_paid_units", _usdt)]
    table.add_column("world")
    table.add_column("cohort")
    for title, _, _ in cols:
        table.add_column(title, justify="right")
    for world, cohort in keys:
        table.add_row(world, cohort, *[_ci(by.get((world, cohort, metric)), fmt) for _, metric, fmt in cols])
    console.print(table)
    venue = Table(title="The venue by world", header_style="bold")
    vcols = [("liq. volume (USDT)", "liquidation_volume_units", _usdt), ("ADL fills", "adl_events", _count),
             ("insurance min (USDT)", "insurance_min_units", _usdt), ("insurance end (USDT)", "insurance_end_units", _usdt),
             ("max |last−mark|/mark", "mark_last_deviation_max", _pct)]
    venue.add_column("world")
    for title, _, _ in vcols:
        venue.add_column(title, justify="right")
    for world in dict.fromkeys(w for w, _ in keys):
        venue.add_row(world, *[_ci(by.get((world, "*", metric)), fmt) for _, metric, fmt in vcols])
    console.print(venue)


def _ci(row, fmt) -> str:
    if row is None or row["mean"] is None or (isinstance(row["mean"], float) and math.isnan(row["mean"])):
        return "–"
    half = (row["ci_high"] - row["ci_low"]) / 2 if row["ci_high"] is not None else 0
    return f"{fmt(row['mean'])} ± {fmt(half)}" if row["seeds"] and row["seeds"] > 1 else fmt(row["mean"])


def _pct(x) -> str:
    return f"{100 * x:.1f}%"


def _usdt(x) -> str:
    return f"{x / 1e8:,.0f}"


def _minutes(x) -> str:
    return f"{x / 60:.1f}"


def _count(x) -> str:
    return f"{x:.1f}"


# ==== report ==========================================================================================
def report(out, console=None) -> int:
    from .report import build_report
    from .study import summarize_study

    console = console or make_console()
    summarize_study(out)
    path = build_report(out)
    print_summary(out, console)
    console.print(f"report: [bold]{path}[/bold]")
    return 0


# ==== sweep ===========================================================================================
def sweep(grid_path, *, out=None, cluster="local", workers=None, console=None) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .grid import load_grid, run_sweep

    console = console or make_console()
    spec = load_grid(grid_path)
    out = Path(out) if out is not None else Path("runs") / f"sweep-{Path(grid_path).stem}"
    workers = workers or default_workers()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("cells", total=None)

        def on_progress(done, total, cell_id, status):
            progress.update(task, completed=done, total=total, description=f"cells ({cell_id}: {status})")

        result = run_sweep(spec, out, cluster=cluster, workers=workers, progress=on_progress)
    console.print(f"cells: {result.get('done', 0)} run, {result.get('skipped', 0)} skipped, "
                  f"{result.get('failed', 0)} failed → [bold]{out}[/bold]")
    if (out / "sweep.html").exists():
        console.print(f"report: [bold]{out / 'sweep.html'}[/bold]")
    return 1 if result.get("failed") else 0


# ==== scenario ========================================================================================
def scenario(path=None, overrides=None) -> int:
    """Print the embedded default scenario (to copy and edit), or check a file and print it resolved."""
    from .scenario import default_scenario_text, load_scenario

    if path is None and not overrides:
        sys.stdout.write(default_scenario_text())
        return 0
    from .runner import build_path

    s = load_scenario(path, overrides)
    try:  # the path's own rules (whole bars, its length, the files of a historical one): built for the first seed
        bars = len(build_path(s, s.seeds[0]).times_ns)
    except InputError as exc:
        raise InputError(f"path: {exc}") from None
    print(f"{s.name}: valid; worlds {', '.join(s.worlds)}; seeds {s.seeds[0]}..{s.seeds[-1]}; "
          f"instruments {', '.join(s.symbols)}; {s['traders.count']} traders; a path of {bars} bars")
    return 0


__all__ = ["study", "report", "sweep", "scenario", "parse_set", "print_summary", "STUDIES"]
