"""Sweep benchmark (docs/sweeps.md): the same 16 cells serially in this process and on a 2-worker LocalCluster.

    PYTHONPATH=. python bench/bench_grid.py [--repeat 3] [--workers 2] [--seeds 4]

The grid: the embedded margin-modes scenario, ``path.drop`` × ``traders.count`` (2 × 2), the isolated world,
4 seeds — 16 runs of ~1 s each (``--seeds N``: 4 × N runs). Both ways go through :func:`exchange.sim.grid.run_sweep` into fresh output
directories (``cluster="serial"``: no Dask, one cell after another; ``cluster="local"``: a new LocalCluster,
started and stopped inside the timed region), so both pay for the same writes, summary and report. Printed per
repeat and as medians: wall time, CPU time (this process; for the sweep also its worker processes, counted when
they exit) and the ratio sweep / serial (target ≤ 0.6). The two datasets are checked to be equal. The CPU time
the rest of the machine used meanwhile is printed too: on a shared machine, only repeats near 0 s are clean.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

GRID = """
name = "bench"
worlds = ["isolated"]
seeds = 4
metrics = ["liquidated_share", "insurance_min_units"]
keep_runs = true
[grid]
"path.drop" = [0.25, 0.35]
"traders.count" = [30, 40]
"""


def machine_cpu() -> float:
    """CPU seconds used by the whole machine so far, including time stolen by the host of a virtual machine
    (Linux /proc/stat; 0 elsewhere): the difference from our own CPU time tells whether something else was
    running during a measurement."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(spec, out: Path, cluster: str, workers: int) -> dict:
    from exchange.sim.grid import run_sweep

    wall, cpu, child, machine = time.perf_counter(), time.process_time(), children_cpu(), machine_cpu()
    result = run_sweep(spec, out, cluster=cluster, workers=workers)
    assert result["done"] == len(spec.cells) and result["failed"] == 0, result
    ours = time.process_time() - cpu + children_cpu() - child
    return {"wall": time.perf_counter() - wall, "cpu": ours, "cells_cpu": result["cells_cpu_s"],
            "other": max(0.0, machine_cpu() - machine - ours)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=4, help="seeds per grid point (cells = 4 x seeds)")
    args = parser.parse_args()

    from exchange import _impl
    from exchange.sim.grid import load_grid, read_results

    spec = load_grid(GRID.replace("seeds = 4", f"seeds = {args.seeds}"))
    print(f"implementation {_impl.IMPLEMENTATION}; {len(spec.cells)} cells; {args.workers} workers; "
          f"{args.repeat} repeats")
    serial, sweep = [], []
    with tempfile.TemporaryDirectory(prefix="bench-grid-") as tmp:
        for i in range(args.repeat):
            s = timed(spec, Path(tmp) / f"serial-{i}", "serial", args.workers)
            d = timed(spec, Path(tmp) / f"dask-{i}", "local", args.workers)
            for table in ("cohorts", "worlds"):  # the same rows both ways
                assert read_results(Path(tmp) / f"serial-{i}", table).equals(
                    read_results(Path(tmp) / f"dask-{i}", table))
            serial.append(s)
            sweep.append(d)
            print(f"repeat {i + 1}: serial {s['wall']:6.1f} s wall {s['cpu']:6.1f} s CPU | "
                  f"LocalCluster {d['wall']:6.1f} s wall {d['cpu']:6.1f} s CPU (cells {d['cells_cpu']:.1f} s) | "
                  f"ratio {d['wall'] / s['wall']:.2f} | other processes: {s['other']:.1f} s / {d['other']:.1f} s CPU")
    med = {k: statistics.median(r[k] for r in serial) for k in ("wall", "cpu", "cells_cpu")}
    mdd = {k: statistics.median(r[k] for r in sweep) for k in ("wall", "cpu", "cells_cpu")}
    ratio = mdd["wall"] / med["wall"]
    print(f"median: serial {med['wall']:.1f} s wall, {med['cpu']:.1f} s CPU ({med['cells_cpu']:.1f} s in cells); "
          f"LocalCluster({args.workers}) {mdd['wall']:.1f} s wall, {mdd['cpu']:.1f} s CPU "
          f"({mdd['cells_cpu']:.1f} s in cells); sweep / serial = {ratio:.2f} "
          f"({'meets' if ratio <= 0.6 else 'misses'} the 0.6 target)")


if __name__ == "__main__":  # the LocalCluster's worker processes are spawned: they must not rerun this
    main()
