"""The margin-mode study (docs/study.md): every world of a scenario for every seed, then the summaries.

``run_study(scenario, out)`` runs each (world, seed) with :func:`~exchange.sim.runner.run_world` (in worker
processes when ``workers > 1``) into ``out/runs/<world>/seed-<seed>/`` and then :func:`summarize_study`
writes, from those Parquet files alone:

    out/study.json        what was run: the scenario, worlds, seeds, run directories, implementation
    out/summary.csv       one row per (world, cohort, seed) of leveraged traders  (summary.COHORT_COLUMNS)
    out/worlds.csv        one row per (world, seed): the venue's view            (summary.WORLD_COLUMNS)
    out/summary_ci.csv    per (world, cohort, metric): mean and 95 % interval across seeds

The world's runs are independent and each is deterministic, so the files do not depend on ``workers`` or on
the order in which runs finish: two studies of the same scenario give byte-identical CSV files.
"""
from __future__ import annotations

import json
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

from .. import _impl
from ..units import InputError
from .runner import count_steps, run_world
from .scenario import Scenario
from .summary import (  # STUDY_FILE, STUDY_FORMAT, read_study: re-exported (the report reads them there)
    COHORT_COLUMNS, STUDY_FILE, STUDY_FORMAT, WORLD_COLUMNS, cohort_rows, confidence_table, read_study, sort_rows,
    to_csv, world_row,
)

CI_COLUMNS = ("world", "cohort", "metric", "mean", "ci_low", "ci_high", "seeds")


def run_dir(out, world: str, seed: int) -> Path:
    return Path(out) / "runs" / world / f"seed-{seed}"


def prepare_output(out) -> Path:
    """Create ``out`` or clear a previous study in it; refuse a directory that holds anything else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STUDY_FILE).exists():
        raise InputError(f"{out}: the directory is not empty and holds no study; choose another --out")
    if (out / "runs").exists():
        shutil.rmtree(out / "runs")
    for name in (STUDY_FILE, "summary.csv", "worlds.csv", "summary_ci.csv", "report.html"):
        (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _run_one(raw: dict, base_dir: str, world: str, seed: int, directory: str, implementation: str | None,
             queue=None) -> tuple[str, int]:
    """One run in a worker process (the scenario travels as its raw mapping)."""
    scenario = Scenario(raw, base_dir)
    progress = None
    if queue is not None:
        def progress(done, total):
            queue.put((world, seed, done, total))
    run_world(scenario, world, seed, directory, implementation=implementation, progress=progress)
    return world, seed


def run_study(scenario: Scenario, out, *, workers: int = 1, implementation: str | None = None,
              progress: Callable[[str, int, int, int], None] | None = None, report: bool = True) -> dict:
    """Run every world × seed of ``scenario`` into ``out`` and write the summaries (and ``report.html`` unless
    ``report=False``). ``progress(world, seed, steps_done, steps_total)`` is called as runs advance.
    Returns ``study.json``'s content plus ``"summary"`` (the cohort rows)."""
    if type(workers) is not int or workers < 1:
        raise InputError(f"workers must be an int >= 1, got {workers!r}")
    out = prepare_output(out)
    implementation = implementation or _impl.IMPLEMENTATION
    runs = [(world, seed) for seed in scenario.seeds for world in scenario.worlds]
    study = {"format": STUDY_FORMAT, "version": 1, "scenario": scenario.raw, "worlds": scenario.worlds,
             "seeds": scenario.seeds, "implementation": implementation,
             "runs": [{"world": w, "seed": s, "dir": str(run_dir(out, w, s).relative_to(out))} for w, s in runs]}
    if workers == 1 or len(runs) == 1:
        for world, seed in runs:
            cb = (lambda d, t, w=world, s=seed: progress(w, s, d, t)) if progress else None
            run_world(scenario, world, seed, run_dir(out, world, seed), implementation=implementation, progress=cb)
    else:
        _run_parallel(scenario, out, runs, workers, implementation, progress)
    (out / STUDY_FILE).write_text(json.dumps(study, indent=2, sort_keys=True, default=str) + "\n")
    rows = summarize_study(out)
    if report:
        from .report import build_report
        build_report(out)
    return {**study, "summary": rows}


def _run_parallel(scenario, out, runs, workers, implementation, progress) -> None:
    import multiprocessing as mp
    import queue as queue_module

    # fork: works from any script (spawn would re-import an unguarded __main__). The CLI's progress display
    # refreshes from this thread (no refresh thread is running when the workers fork).
    context = mp.get_context("fork")
    with context.Manager() as manager:
        updates = manager.Queue() if progress else None
        with ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=context) as pool:
            futures = [pool.submit(_run_one, scenario.raw, str(scenario.base_dir), w, s, str(run_dir(out, w, s)),
                                   implementation, updates) for w, s in runs]
            if updates is None:
                for future in as_completed(futures):
                    future.result()  # a worker's error is raised here
                return
            pending = set(futures)
            while pending:
                try:
                    progress(*updates.get(timeout=0.1))
                except queue_module.Empty:
                    pass
                for future in [f for f in pending if f.done()]:
                    future.result()
                    pending.discard(future)
            while not updates.empty():
                progress(*updates.get())


def summarize_study(out) -> list[dict]:
    """(Re)compute ``summary.csv``, ``worlds.csv`` and ``summary_ci.csv`` from the runs' Parquet files;
    returns the cohort rows."""
    out = Path(out)
    study = read_study(out)
    cohorts, worlds = [], []
    for run in study["runs"]:
        cohorts += cohort_rows(out / run["dir"])
        worlds.append(world_row(out / run["dir"]))
    cohorts, worlds = sort_rows(cohorts), sort_rows(worlds)
    (out / "summary.csv").write_text(to_csv(cohorts, COHORT_COLUMNS))
    (out / "worlds.csv").write_text(to_csv(worlds, WORLD_COLUMNS))
    (out / "summary_ci.csv").write_text(to_csv(confidence_table(cohorts, worlds), CI_COLUMNS))
    return cohorts


def total_steps(scenario: Scenario) -> int:
    from .runner import build_path
    return count_steps(build_path(scenario, scenario.seeds[0]))


__all__ = ["run_study", "summarize_study", "read_study", "run_dir", "prepare_output", "total_steps", "STUDY_FILE"]
