"""The gateway process's garbage-collector policy.

Nearly all of the server's heap is long-lived: the records (orders, trades, income), the engine's state, the
event log. CPython's full collection rescans all of it each time the heap grows by a quarter,
and finds almost nothing to free: measured under the benchmark's 50-client load, the full passes took 0.78 s
of 4.3 s of server CPU and the collector freed 32 objects in all (bench/bench_gateway.py). So the survivors of
a full pass are frozen (``gc.freeze``: the collector no longer scans them; reference counting still frees them
as always) and the next full pass scans only what was allocated since. The young generations are collected as
usual, less often (``GEN0_THRESHOLD`` allocations instead of 700; the young objects of a batch mostly die by
reference counting before a pass).

The price: a reference cycle that becomes garbage after it survived a full pass stays in memory (the gateway's
long-lived objects are kept for the life of the process anyway). :func:`release` unfreezes everything.
"""
from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000
_saved: list = []  # the thresholds before install()


def _freeze_survivors(phase: str, info: dict) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def install() -> None:
    """Freeze what exists now (imports, the built or restored state) and every later full pass's survivors."""
    gc.collect()
    gc.freeze()
    if _freeze_survivors not in gc.callbacks:
        _saved[:] = gc.get_threshold()
        gc.set_threshold(GEN0_THRESHOLD, *_saved[1:])
        gc.callbacks.append(_freeze_survivors)


def release() -> None:
    """Undo :func:`install`: the thresholds as they were, nothing frozen."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
        gc.set_threshold(*_saved)
    gc.unfreeze()
