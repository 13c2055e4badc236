"""Benchmark: mark moves in a small exchange whose accounts hold many symbols each (cross margin).

Workload (seeded, ``build``): ``m`` linear symbols (tick 0.01, lot 1; marks 100.00), 100 accounts with
10,000 USDT each and a one-lot position in every symbol (random sides, opened against a maker), so
100 × ``m`` holdings with only 101 accounts. Set-up not timed.

Timed (CPU time): ``MOVES`` ``SetMarkPrice`` commands, each moving a random symbol's mark by up to 5 ticks
(nobody comes near liquidation or the margin-call level). Run twice in one process: with the risk monitor's
indexes, which it keeps from 256 accounts *or* 256 holdings (``RiskMonitor.holdings``), and with
``index_from_accounts = inf``: every holder of the moved symbol re-checked over all its positions, what an
exchange with fewer than 256 accounts did before holdings counted. Both must end in the same state hash.

Run: ``python bench/test_bench_symbols.py [m ...]`` (default 1, 20 and 100 symbols; with one symbol there are
100 holdings, below the threshold, so both runs re-check every holder), or with pytest-benchmark
``python -m pytest bench/test_bench_symbols.py --benchmark-only`` (20 symbols).
"""
from __future__ import annotations

import math
import random
import sys

import pytest
from bench_support import run_quiet_marks

from exchange import Deposit, Exchange, OrderType, PlaceOrder, SetMarkPrice, Side, TimeInForce
from exchange.spec import Instrument

ACCOUNTS, MOVES, SEED, MID, MAKER = 100, 1_000, 5, 10_000, 1_000_000
USDT = 10**8


def build(m: int, indexes: bool, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng = random.Random(seed)
    instruments = [Instrument.linear(f"S{i}USDT", lot_size="1", min_qty="1", min_notional="0", max_qty="10000000",
                                     max_price="1000") for i in range(m)]
    ex = Exchange(instruments, keep_commands=False)
    if not indexes:
        ex.monitor.index_from_accounts = math.inf
    ex.apply(Deposit(MAKER, 10**9 * USDT))
    for inst in instruments:
        ex.apply(SetMarkPrice(inst.symbol, MID))
    for a in range(1, ACCOUNTS + 1):
        ex.apply(Deposit(a, 10_000 * USDT))
        for inst in instruments:
            side = rng.choice((Side.BUY, Side.SELL))
            ex.apply(PlaceOrder(MAKER, inst.symbol, Side.SELL if side == Side.BUY else Side.BUY, 1, MID))
            events = ex.apply(PlaceOrder(a, inst.symbol, side, 1, MID, OrderType.LIMIT, TimeInForce.IOC))
            assert any(type(e).__name__ == "Fill" for e in events), events
    return ex


def moves(ex: Exchange, n: int = MOVES, seed: int = SEED) -> list:
    rng, symbols = random.Random(seed + 1), ex.symbols
    marks = dict.fromkeys(symbols, MID)
    out = []
    for _ in range(n):
        s = rng.choice(symbols)
        marks[s] = max(MID - 100, min(MID + 100, marks[s] + rng.randint(-5, 5)))
        out.append(SetMarkPrice(s, marks[s]))
    return out


def measure(m: int) -> tuple[dict, dict]:
    results = []
    for indexes in (True, False):
        ex = build(m, indexes)
        results.append(run_quiet_marks(ex, moves(ex)))
    if results[0]["state_hash"] != results[1]["state_hash"]:
        raise AssertionError(f"the two monitors ended apart at {m} symbols")
    return results[0], results[1]


def test_both_monitors_end_alike():
    kept, rechecked = measure(20)
    assert kept["indexed"] and not rechecked["indexed"]


@pytest.mark.parametrize("indexes", [True, False], ids=["indexes", "recheck-every-holder"])
def test_bench_mark_moves_many_symbols(benchmark, indexes):
    ex = build(20, indexes)
    commands = moves(ex)
    benchmark.pedantic(lambda: [ex.apply(c) for c in commands], rounds=1, iterations=1)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1, 20, 100]
    print("| symbols | holdings | monitor | median µs per mark move | moves/s (CPU) | indexes ÷ re-check |")
    print("|---:|---:|---|---:|---:|---:|")
    for m in sizes:
        kept, rechecked = measure(m)
        ratio = kept["per_s"] / rechecked["per_s"]
        for name, r in (("indexes kept" if kept["indexed"] else "below the threshold", kept),
                        ("every holder re-checked", rechecked)):
            print(f"| {m} | {ACCOUNTS * m:,} | {name} | {r['median_us']:,.1f} | {r['per_s']:,.0f} | "
                  f"{f'{ratio:,.1f}×' if r is kept else ''} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
