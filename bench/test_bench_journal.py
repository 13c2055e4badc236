"""Benchmark: what the durable journal and snapshots cost on the demo flow.

``Exchange.apply`` runs the demo flow (``exchange.workload.standard_workload(N, seed=42)`` after the demo's
deposits, as in ``test_bench_exchange.py``) without a journal file and with one under each fsync policy:
``never`` (one ``write`` per command: survives a process crash), ``every:100ms`` (the demo's default) and
``always`` (an fsync per command: survives power loss; measured on a shorter prefix, it is bound by the disk).
Then a snapshot of the final state is written and restored on both implementations. Checked: every run ends
in the same state hash, the journal replays to it, and the restored exchange has it too.

Run: ``python bench/test_bench_journal.py [N]`` (medians of 3 rounds, CPU and wall time), or
``python -m pytest bench/test_bench_journal.py --benchmark-only``.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import pytest

from exchange import Exchange, recover
from exchange._impl import core
from exchange.cli import DEMO_DEPOSIT_UNITS
from exchange.commands import Deposit, commands_from_rows
from exchange.workload import standard_workload

N_FLOW, N_ALWAYS, SEED, ROUNDS = 50_000, 5_000, 42, 3
POLICIES = (None, "never", "every:100ms", "always")


def demo_commands(n: int):
    instrument, rows = standard_workload(n, SEED)
    deposits = [Deposit(a, DEMO_DEPOSIT_UNITS) for a in sorted(set(rows["account_id"].tolist()))]
    return instrument, deposits + commands_from_rows(rows, instrument.symbol)


def run(instrument, commands, policy, directory) -> tuple[float, float, Exchange, str | None]:
    """Apply every command; returns (wall s, CPU s, exchange, journal path)."""
    path = None if policy is None else os.path.join(directory, f"{policy.replace(':', '_')}-{time.time_ns()}.journal")
    ex = Exchange([instrument], journal=path, fsync=policy or "never")
    apply = ex.apply
    wall, cpu = time.perf_counter(), time.process_time()
    for command in commands:
        apply(command)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ex.close()
    return wall, cpu, ex, path


def measure(n: int = N_FLOW, n_always: int = N_ALWAYS) -> list[str]:
    instrument, commands = demo_commands(n)
    lines = [f"Exchange.apply on the demo flow ({len(commands):,} commands; 'always' on the first {n_always:,}), "
             f"median of {ROUNDS} rounds:"]
    base_rate = None
    with tempfile.TemporaryDirectory() as directory:
        hashes = {}
        for policy in POLICIES:
            todo = commands[:n_always] if policy == "always" else commands
            runs = [run(instrument, todo, policy, directory) for _ in range(ROUNDS)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            ex, path = runs[-1][2], runs[-1][3]
            if policy is None:
                full = ex
            hashes.setdefault(len(todo), ex.state_hash())
            assert ex.state_hash() == hashes[len(todo)], policy
            if path is not None:
                assert recover(path)[0].state_hash() == ex.state_hash(), f"{policy}: the journal does not replay"
            rate = len(todo) / wall
            base_rate = base_rate or rate
            lines.append(f"  journal {str(policy):12} {rate:>10,.0f} commands/s (wall)  {len(todo) / cpu:>10,.0f} "
                         f"(CPU)  {rate / base_rate:5.2f}x no journal")
        ex = full
        snap = os.path.join(directory, "state.snapshot")
        started = time.perf_counter()
        ex.snapshot(snap)
        written = time.perf_counter() - started
        lines.append(f"  snapshot of the final state ({os.path.getsize(snap):,} bytes, "
                     f"{ex.book(instrument.symbol).order_count():,} resting orders): written in {written * 1e3:.1f} ms")
        for implementation in ("python", "cython") if core is not None else ("python",):
            started = time.perf_counter()
            restored = Exchange.restore(snap, implementation=implementation)
            lines.append(f"  restored on {implementation:6} in {(time.perf_counter() - started) * 1e3:.1f} ms")
            assert restored.state_hash() == ex.state_hash()
    return lines


@pytest.fixture(scope="module")
def flow():
    return demo_commands(N_FLOW)


@pytest.mark.parametrize("policy", ["none", "never", "every:100ms"])
def test_apply_with_journal(benchmark, flow, policy, tmp_path):
    instrument, commands = flow
    policy = None if policy == "none" else policy
    wall, _, ex, _ = benchmark.pedantic(run, args=(instrument, commands, policy, str(tmp_path)), rounds=ROUNDS,
                                        iterations=1)
    benchmark.extra_info["commands_per_s"] = len(commands) / benchmark.stats.stats.median


if __name__ == "__main__":
    print("\n".join(measure(int(sys.argv[1]) if len(sys.argv) > 1 else N_FLOW)))
