"""Benchmark: mark moves with many holders of one symbol, under every venue profile.

Workload (seeded, ``build``): one linear symbol (tick 0.01, lot 0.001; mark 10,000.00), ``n`` accounts with
10,000 USDT each and a one-lot cross position (random side, opened against a maker's resting order). Set-up not
timed.

Timed (CPU time): ``MOVES`` ``SetMarkPrice`` commands walking the mark by up to 5 ticks (nobody comes near
liquidation or the margin-call level); reported as the mean CPU time per move (a move to a price the monitor
already followed costs little either way, so the median hides the re-checks). Run twice per profile in one process: with the risk monitor's indexes
(kept from 256 accounts; the bitmex profile's stepwise MM is followed through its convex bounds,
``exchange.accounts.margin.convex_bounds``) and with ``index_from_accounts = inf``: every holder re-checked at
every move, which is what the bitmex profile did before its bounds. Both runs must end in the same state hash.
Then (timed, the indexed run): ``MOVES`` resting buy orders of one account, whose pre-trade check under dydx
reads the symbol's open interest (the ledger's ``long_lots``, kept by every fill; it was summed over every
holder before).

Run: ``python bench/test_bench_profiles.py [n ...]`` (default 1,000 and 10,000 holders), or with pytest-benchmark
``python -m pytest bench/test_bench_profiles.py --benchmark-only`` (bitmex, 2,000 holders).
"""
from __future__ import annotations

import math
import random
import sys
import time

import pytest
from bench_support import run_quiet_marks

from exchange import Deposit, Exchange, OrderType, PlaceOrder, SetMarkPrice, Side, TimeInForce
from exchange.profiles import PROFILES
from exchange.workload import workload_instrument

MOVES, SEED, MID, MAKER = 200, 9, 1_000_000, 10**7
USDT = 10**8


def build(profile: str, n: int, indexes: bool, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng, inst = random.Random(seed), workload_instrument()
    ex = Exchange([inst], profile=profile, keep_commands=False)
    if not indexes:
        ex.monitor.index_from_accounts = math.inf
    ex.apply(Deposit(MAKER, 10**9 * USDT))
    ex.apply(SetMarkPrice(inst.symbol, MID))
    for a in range(1, n + 1):
        side = rng.choice((Side.BUY, Side.SELL))
        ex.apply(Deposit(a, 10_000 * USDT))
        ex.apply(PlaceOrder(MAKER, inst.symbol, Side.SELL if side == Side.BUY else Side.BUY, 1, MID))
        events = ex.apply(PlaceOrder(a, inst.symbol, side, 1, MID, OrderType.LIMIT, TimeInForce.IOC))
        assert any(type(e).__name__ == "Fill" for e in events), events
    return ex


def moves(ex: Exchange, n: int = MOVES, seed: int = SEED) -> list:
    rng, (symbol,) = random.Random(seed + 1), ex.symbols
    mark, out = MID, []
    for _ in range(n):
        mark = max(MID - 100, min(MID + 100, mark + rng.randint(-5, 5)))
        out.append(SetMarkPrice(symbol, mark))
    return out


def resting_orders(ex: Exchange, n: int = MOVES) -> float:
    """Mean CPU µs of ``n`` resting buy orders of account 1 below the mark (each rests: one ``OrderAccepted``)."""
    (symbol,) = ex.symbols
    t0 = time.process_time()
    for i in range(n):
        events = ex.apply(PlaceOrder(1, symbol, Side.BUY, 1, MID // 2 - i))
        assert len(events) == 1, events
    return 1e6 * (time.process_time() - t0) / n


def measure(profile: str, n: int) -> tuple[dict, dict]:
    results = []
    for indexes in (True, False):
        ex = build(profile, n, indexes)
        results.append(run_quiet_marks(ex, moves(ex)))
        results[-1]["order_us"] = resting_orders(ex)
    if results[0]["state_hash"] != results[1]["state_hash"]:
        raise AssertionError(f"the two monitors ended apart under {profile} with {n} holders")
    return results[0], results[1]


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_profile_keeps_its_indexes_and_ends_alike(profile):
    kept, rechecked = measure(profile, 300)
    assert kept["indexed"] and not rechecked["indexed"]


@pytest.mark.parametrize("indexes", [True, False], ids=["indexes", "recheck-every-holder"])
def test_bench_bitmex_mark_moves(benchmark, indexes):
    ex = build("bitmex", 2_000, indexes)
    commands = moves(ex)
    benchmark.pedantic(lambda: [ex.apply(c) for c in commands], rounds=1, iterations=1)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1_000, 10_000]
    print("| profile | holders | µs per mark move (mean), indexes | every holder re-checked | ratio | "
          "µs per resting order |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in sizes:
        for profile in PROFILES:
            kept, rechecked = measure(profile, n)
            assert kept["indexed"]
            print(f"| {profile} | {n:,} | {1e6 / kept['per_s']:,.1f} | {1e6 / rechecked['per_s']:,.1f} | "
                  f"{kept['per_s'] / rechecked['per_s']:,.0f}× | {kept['order_us']:,.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
