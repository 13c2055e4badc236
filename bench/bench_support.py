"""Helpers of the benchmarks (bench/README.md): the matching benchmarks' constants, result totals and per-command
loop; the command line of the benchmarks that run both implementations on n accounts; the timed loop of quiet
mark moves."""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from exchange.enums import CommandKind, EventKind

N_COMMANDS = 1_000_000  # the standard workload: exchange.workload.standard_workload(1_000_000, seed=42)
N_REFERENCE = 200_000  # the pure-Python reference runs on this prefix (ratios are per command)
SEED = 42
DRAIN_EVERY = 1024  # the per-command loops drain the event buffer this often


def totals(results: np.ndarray | None, events: np.ndarray) -> dict:
    """What every implementation must agree on for the same commands."""
    fills = events["kind"] == EventKind.FILL
    out = {
        "events": int(len(events)),
        "fills": int(fills.sum()),
        "filled_lots": int(events["qty_lots"][fills].sum()),
        "rejects": int((events["kind"] == EventKind.REJECTED).sum()),
        "taker_fees": int(events["taker_fee_units"][fills].sum()),
    }
    if results is not None:
        out["results_sum"] = int(results.sum())
    return out


def per_command_ops(engine, rows: np.ndarray) -> list:
    """``(bound method, args)`` per row, arguments already Python ints (built outside the timed region)."""
    methods = {CommandKind.PLACE: engine.place, CommandKind.CANCEL: engine.cancel, CommandKind.AMEND: engine.amend,
               CommandKind.CANCEL_ALL: engine.cancel_all, CommandKind.SET_MARK: engine.set_mark,
               CommandKind.SET_TIME: engine.set_time}
    ops = []
    for row in rows.tolist():
        kind = row[0]
        if kind == CommandKind.PLACE:
            args = tuple(row[1:11])
        elif kind in (CommandKind.CANCEL,):
            args = (row[1], row[2])
        elif kind == CommandKind.AMEND:
            args = (row[1], row[2], row[6], row[7])
        elif kind == CommandKind.CANCEL_ALL:
            args = (row[2],)
        elif kind == CommandKind.SET_MARK:
            args = (row[6],)
        else:
            args = (row[11],)
        ops.append((methods[kind], args))
    return ops


def run_per_command(engine, ops: list) -> dict:
    """The timed per-command loop: call each command, drain ``take_events()`` every DRAIN_EVERY commands and
    keep running totals (events, fills, filled lots, rejects, taker fees)."""
    take = engine.take_events
    n_events = n_fills = filled_lots = rejects = taker_fees = 0
    mask = DRAIN_EVERY - 1
    for i, (method, args) in enumerate(ops):
        method(*args)
        if i & mask == mask:
            events = take()
            fills = events["kind"] == EventKind.FILL
            n_events += len(events)
            n_fills += int(fills.sum())
            filled_lots += int(events["qty_lots"][fills].sum())
            rejects += int((events["kind"] == EventKind.REJECTED).sum())
            taker_fees += int(events["taker_fee_units"][fills].sum())
    rest = totals(None, take())
    return {"events": n_events + rest["events"], "fills": n_fills + rest["fills"],
            "filled_lots": filled_lots + rest["filled_lots"], "rejects": rejects + rest["rejects"],
            "taker_fees": taker_fees + rest["taker_fees"]}


def main_on_accounts(measure, table, default_accounts: int) -> None:
    """The ``__main__`` of a benchmark over ``n`` accounts (``python bench/NAME.py [n] [--compiled-only]``): each
    implementation's ``measure(n, implementation)`` (the compiled one first; only it with ``--compiled-only``), the
    same end state hash on each checked, ``table(runs)`` printed."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else default_accounts
    from exchange import _impl
    if "--compiled-only" in sys.argv and not _impl.core:
        sys.exit("--compiled-only: the compiled core is not active")
    implementations = ["cython"] if "--compiled-only" in sys.argv else (["cython"] if _impl.core else []) + ["python"]
    runs = [measure(n, implementation) for implementation in implementations]
    assert len({r["state_hash"] for r in runs}) == 1, "the implementations disagree"
    print(table(runs))


def run_quiet_marks(ex, commands: list) -> dict:
    """Apply mark moves that reach no threshold (each must give only its own event), timing each in CPU time:
    the median µs, moves per CPU second, whether the monitor kept its indexes, and the end state hash."""
    clock, per = time.process_time, []
    for command in commands:
        t0 = clock()
        events = ex.apply(command)
        per.append(clock() - t0)
        assert len(events) == 1, events  # only the mark change: nobody near a threshold
    return {"median_us": 1e6 * statistics.median(per), "per_s": len(commands) / sum(per),
            "indexed": ex.monitor.indexed, "state_hash": ex.state_hash()}
