"""Benchmark: ADL lights (``Exchange.adl_quantile``, what the gateway's ``positionRisk`` reports per position).

Workload (seeded, ``build``): the demo flow's instrument (``exchange.workload.workload_instrument``), ``n``
accounts with random wallets (100–10,000 USDT) each buying 1–20 lots at a random price within ±2 % of 10,000
ticks from a maker, then the mark at 10,300 ticks (every long in profit, scores spread out). Set-up not timed.

Timed (CPU time): the lights of ``QUERIES`` positions, through the exchange (the ADL queue's bounds count the
positions ranked ahead, ``ADLQueue.ahead_of``) and through the full ranking (every user position scored
exactly, ``ranking.quantile`` without the queue), in one process; both must give the same lights.

Run: ``python bench/test_bench_adl_lights.py [n ...]`` (default 1,000 and 10,000 accounts, binance and bitmex),
or ``python -m pytest bench/test_bench_adl_lights.py --benchmark-only`` (binance, 10,000 accounts).
"""
from __future__ import annotations

import random
import sys
import time

import pytest

from exchange import Deposit, Exchange, OrderType, PlaceOrder, PositionSide, SetMarkPrice, Side, TimeInForce
from exchange.liquidation.adl import ranking as deleveraging
from exchange.workload import workload_instrument

QUERIES, SEED, MAKER = 20, 3, 10**7


def build(profile: str, n: int, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng, inst = random.Random(seed), workload_instrument()
    ex = Exchange([inst], profile=profile, keep_commands=False)
    ex.apply(SetMarkPrice(inst.symbol, 10_000))
    ex.apply(Deposit(MAKER, 10**17))
    for a in range(1, n + 1):
        price, lots = rng.randint(9_800, 10_200), rng.randint(1, 20)
        ex.apply(Deposit(a, rng.randint(10**10, 10**12)))
        ex.apply(PlaceOrder(MAKER, inst.symbol, Side.SELL, lots, price))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, lots, price, OrderType.LIMIT, TimeInForce.IOC))
    ex.apply(SetMarkPrice(inst.symbol, 10_300))
    return ex


def lights(ex: Exchange, accounts: list[int], full: bool) -> tuple[list[int], float]:
    """The lights of ``accounts`` (one-way longs) and the mean CPU ms per query."""
    (symbol,) = ex.symbols
    t0, out = time.process_time(), []
    for a in accounts:
        if full:
            out.append(deleveraging.quantile(ex.risk, symbol, (a, PositionSide.BOTH), ex.profile.adl_ranking,
                                             ex.liquidation.config.adl_seed, ex.profile.adl_indicator))
        else:
            out.append(ex.adl_quantile(a, symbol))
    return out, 1e3 * (time.process_time() - t0) / len(accounts)


def measure(profile: str, n: int) -> dict:
    ex = build(profile, n)
    (symbol,) = ex.symbols
    holders = sorted(a for a in ex.ledger.holders[symbol] if a != MAKER and a < 2**62)
    assert len(holders) > n // 2, len(holders)
    accounts = random.Random(SEED + 1).sample(holders, QUERIES)
    fast, fast_ms = lights(ex, accounts, False)
    full, full_ms = lights(ex, accounts, True)
    if fast != full:
        raise AssertionError(f"{profile}, {n} accounts: lights {fast} against the full ranking's {full}")
    return {"fast_ms": fast_ms, "full_ms": full_ms, "lights": fast}


def test_the_queue_gives_the_full_rankings_lights():
    assert len(set(measure("bitmex", 400)["lights"])) > 1


@pytest.mark.parametrize("full", [False, True], ids=["queue", "full-ranking"])
def test_bench_adl_lights(benchmark, full):
    ex = build("binance", 10_000)
    accounts = sorted(ex.ledger.holders[ex.symbols[0]])[:QUERIES]
    benchmark.pedantic(lambda: lights(ex, accounts, full), rounds=1, iterations=1)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1_000, 10_000]
    print("| profile | accounts | ms per query, queue | full ranking | ratio |")
    print("|---|---:|---:|---:|---:|")
    for n in sizes:
        for profile in ("binance", "bitmex"):
            r = measure(profile, n)
            print(f"| {profile} | {n:,} | {r['fast_ms']:,.2f} | {r['full_ms']:,.2f} | "
                  f"{r['full_ms'] / r['fast_ms']:,.0f}× |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
