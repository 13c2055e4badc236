"""Benchmark: funding settlements through the whole Exchange, every holder paying or receiving.

Workload: the accounts of ``bench/test_bench_cascade.py``'s ``build`` (``n`` accounts with positions in two
symbols, 40 % isolated, 40 % cross, 20 % hybrid; set-up not timed), both indexes set 1 % below the marks so
that every settlement moves money, then ``SETTLEMENTS`` ``AdvanceTime`` commands, each one funding interval
later: each settles both symbols (a ``FundingPaid`` and a wallet or isolated-margin change per position), and
the liquidation and margin-call stages re-check every account it touched.

Timed: each ``AdvanceTime`` on its own, CPU time of the process. Reported per implementation: the median time
of a settlement (both symbols), payments (``FundingPaid``) per second, and the reference ÷ compiled ratio of
the median at the same accounts, run in the same process. Checked after the run: rules §9 and the same state
hash on both implementations.

Premium samples: ``sampling(levels)`` rests ``levels`` orders of 1 lot on each side of a book (one per price
level around the mark 100.00; the impact notional reaches about 200 of them), sets the index, then times 500
``AdvanceTime`` commands of 5 s each, each taking one premium sample (the impact bid and ask walked over the
book). Printed after the settlements: µs per ``AdvanceTime`` for each implementation at 200 and 4,000 levels.

Run: ``python bench/test_bench_funding.py [n_accounts] [--compiled-only]`` (default 100,000), or with
pytest-benchmark ``FUNDING_ACCOUNTS=100000 python -m pytest bench/test_bench_funding.py --benchmark-only``
(the default there is 10,000 accounts). ``python -m pytest bench/test_bench_funding.py`` without
``--benchmark-only`` also runs a 1,000-account check that both implementations settle alike.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exchange import (AdvanceTime, Deposit, Exchange, FundingPaid, PlaceOrder, SetIndexPrice,  # noqa: E402
                      SetMarkPrice, _impl)
from exchange.enums import Side  # noqa: E402
from exchange.workload import workload_instrument  # noqa: E402
from test_bench_cascade import SYMBOLS, build  # noqa: E402

N_ACCOUNTS, SETTLEMENTS = 100_000, 5


def prepare(n_accounts: int, implementation: str) -> Exchange:
    """The cascade's accounts with both indexes 1 % below the marks (set-up; not timed)."""
    ex = build(n_accounts, implementation)
    for symbol in SYMBOLS:
        ex.apply(SetIndexPrice(symbol, 9_900))
    return ex


def settle(ex: Exchange, settlements: int = SETTLEMENTS) -> dict:
    """Timed: ``settlements`` funding boundaries, one ``AdvanceTime`` each; returns the run's numbers."""
    interval, clock, per, payments = ex.funding.interval_ns, time.process_time, [], 0
    for _ in range(settlements):
        command = AdvanceTime((ex.now_ns // interval + 1) * interval)
        t0 = clock()
        events = ex.apply(command)
        per.append(clock() - t0)
        payments += sum(type(e) is FundingPaid for e in events)
    return {"settlements": settlements, "payments": payments, "seconds": sum(per),
            "median_ms": 1000 * statistics.median(per), "payments_per_s": payments / sum(per)}


def measure(n_accounts: int, implementation: str, settlements: int = SETTLEMENTS) -> dict:
    ex = prepare(n_accounts, implementation)
    result = settle(ex, settlements)
    ex.check_invariants()
    return {"implementation": implementation, "accounts": n_accounts, "state_hash": ex.state_hash(), **result}


@pytest.mark.skipif(_impl.core is None, reason="compiled core not active")
def test_both_implementations_settle_alike():
    runs = [measure(1_000, implementation, 2) for implementation in ("python", "cython")]
    assert runs[0]["state_hash"] == runs[1]["state_hash"]
    assert runs[0]["payments"] == runs[1]["payments"] > 1_000  # (every position pays or receives)


@pytest.mark.parametrize("implementation", ["python", "cython"])
def test_funding_settlement(benchmark, implementation):
    """pytest-benchmark form: one settlement per round (a fresh boundary each time)."""
    if implementation == "cython" and _impl.core is None:
        pytest.skip("compiled core not active")
    ex = prepare(int(os.environ.get("FUNDING_ACCOUNTS", "10000")), implementation)
    interval = ex.funding.interval_ns

    def one():
        ex.apply(AdvanceTime((ex.now_ns // interval + 1) * interval))

    benchmark.pedantic(one, rounds=5, iterations=1)
    ex.check_invariants()


def sampling(levels: int, implementation: str | None = None, steps: int = 500) -> float:
    """CPU µs per ``AdvanceTime`` of 5 s (one premium sample each) with ``levels`` levels of 1 lot on each side
    of the book (module docstring)."""
    instrument = workload_instrument()
    symbol = instrument.symbol
    ex = Exchange([instrument], implementation=implementation, keep_commands=False)
    for command in (SetMarkPrice(symbol, 10_000), Deposit(1, 10**15)):
        ex.apply(command)
    for i in range(levels):
        ex.apply(PlaceOrder(1, symbol, Side.BUY, 1, 9_999 - i))
        ex.apply(PlaceOrder(1, symbol, Side.SELL, 1, 10_001 + i))
    ex.apply(SetIndexPrice(symbol, 9_990))
    started = time.process_time()
    for step in range(1, steps + 1):
        ex.apply(AdvanceTime(step * 5_000_000_000))
    return 1e6 * (time.process_time() - started) / steps


def test_premium_sample(benchmark):
    """pytest-benchmark form: 500 five-second steps over a book of 200 levels a side."""
    benchmark.pedantic(sampling, args=(200,), rounds=3, iterations=1)


def table(runs: list[dict]) -> str:
    lines = ["| implementation | accounts | settlements | payments | ms per settlement (median) | payments/s |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['implementation']} | {r['accounts']:,} | {r['settlements']} | {r['payments']:,} | "
                     f"{r['median_ms']:,.0f} | {r['payments_per_s']:,.0f} |")
    by = {r["implementation"]: r for r in runs}
    if {"python", "cython"} <= set(by):
        lines.append(f"\nreference ÷ compiled (median settlement) at {by['cython']['accounts']:,} accounts: "
                     f"{by['python']['median_ms'] / by['cython']['median_ms']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    from bench_support import main_on_accounts

    main_on_accounts(measure, table, N_ACCOUNTS)
    for levels in (200, 4_000):
        for implementation in (["cython"] if _impl.core else []) + ([] if "--compiled-only" in sys.argv else ["python"]):
            print(f"premium samples [{implementation}], {levels:,} levels a side: "
                  f"{sampling(levels, implementation):,.1f} µs per AdvanceTime of 5 s")
