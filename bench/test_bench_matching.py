"""Matching throughput on the standard workload, three ways side by side (bench/README.md):

(a) the pure-Python reference, per-command API (on the first 200,000 commands);
(b) the compiled engine, per-command API: a Python loop calling place / cancel / set_mark with arguments
    pre-converted to Python ints, draining ``take_events()`` every 1,024 commands;
(c) the compiled engine, ``run_batch`` on the whole COMMAND_DTYPE array (also on the 200,000 prefix, for a
    same-commands ratio against (a)).

Each round starts from a fresh engine built in ``setup`` (not timed). Every benchmark checks its totals
(events, fills, filled lots, rejects, taker fees) against the batch path's. Throughput = commands / median
time (``bench/report.py`` prints the table).
"""
from __future__ import annotations

import numpy as np
import pytest

from bench_support import per_command_ops, run_per_command, totals
from exchange import _impl
from exchange.orders.matching import MatchingEngine as ReferenceEngine

compiled = pytest.mark.skipif(_impl.core is None, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")


def expected_totals(instrument, rows) -> dict:
    """The batch path's totals for ``rows`` (compiled when active, else the reference)."""
    engine = (_impl.core.MatchingEngine if _impl.core is not None else ReferenceEngine)(instrument)
    results, events = engine.run_batch(rows)
    return totals(None, events)


def _annotate(benchmark, n: int, path: str, implementation: str) -> None:
    benchmark.extra_info.update(commands=n, path=path, implementation=implementation)


@pytest.mark.benchmark(group="matching")
def test_reference_per_command(benchmark, reference_prefix):
    instrument, rows = reference_prefix
    _annotate(benchmark, len(rows), "per-command", "python")

    def setup():
        engine = ReferenceEngine(instrument)
        return (engine, per_command_ops(engine, rows)), {}

    got = benchmark.pedantic(run_per_command, setup=setup, rounds=3, iterations=1)
    assert got == expected_totals(instrument, rows)


@compiled
@pytest.mark.benchmark(group="matching")
def test_compiled_per_command(benchmark, workload):
    instrument, rows = workload
    _annotate(benchmark, len(rows), "per-command", "cython")

    def setup():
        engine = _impl.core.MatchingEngine(instrument)
        return (engine, per_command_ops(engine, rows)), {}

    got = benchmark.pedantic(run_per_command, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    assert got == expected_totals(instrument, rows)


def _run_batch(engine, rows):
    return engine.run_batch(rows)  # checked after timing: counting events is not part of the batch path


@compiled
@pytest.mark.benchmark(group="matching")
def test_compiled_batch(benchmark, workload):
    instrument, rows = workload
    _annotate(benchmark, len(rows), "run_batch", "cython")

    def setup():
        return (_impl.core.MatchingEngine(instrument), rows), {}

    results, events = benchmark.pedantic(_run_batch, setup=setup, rounds=15, iterations=1, warmup_rounds=2)
    assert totals(None, events) == expected_totals(instrument, rows)
    reference = ReferenceEngine(instrument)  # the reference agrees on the prefix (checked in full by tests/)
    assert totals(None, reference.run_batch(rows[:20_000])[1]) == expected_totals(instrument, rows[:20_000])


@compiled
@pytest.mark.benchmark(group="matching")
def test_compiled_batch_reference_prefix(benchmark, reference_prefix):
    instrument, rows = reference_prefix
    _annotate(benchmark, len(rows), "run_batch", "cython")

    def setup():
        return (_impl.core.MatchingEngine(instrument), rows), {}

    results, events = benchmark.pedantic(_run_batch, setup=setup, rounds=15, iterations=1, warmup_rounds=2)
    reference_results, reference_events = ReferenceEngine(instrument).run_batch(rows)
    assert np.array_equal(results, reference_results) and np.array_equal(events, reference_events)
