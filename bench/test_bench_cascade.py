"""Benchmark: a 30 % crash over 1,000 mark ticks through the whole Exchange, with the liquidation sweep.

Workload (seeded, ``build``): two linear symbols (tick 0.01, lot 1, K = 10⁶, default BTC-style tiers; mark
100.00), ``n`` accounts: 40 % isolated (a long or a short in S1), 40 % cross (positions in both symbols),
20 % hybrid (isolated in S1, cross in S2); leverage uniform in 2..50, notional 500..20,000 USDT, entry
within ±1 % of the mark; wallets and isolated margins = the initial margin × U(1, 1.5) (so the 2..50x
accounts liquidate at very different points of the crash). A market maker (account 0) holds the opposite
of every position and quotes a ladder of bids and asks (10 lots every 0.10 down to 60.00) so liquidation
orders find some liquidity; each fund is seeded with 1,000,000 USDT (takeovers, then ADL when the book and
the fund cannot). The state is built directly in the ledger (set-up, outside the timed region) and checked
against rules §9 before the run.

Timed (CPU time of the process, so other jobs on the machine do not count): 1,000 ``SetMarkPrice`` commands per symbol moving both marks linearly from 100.00 to 70.00 (the crash),
each followed by the liquidation sweep; a *mark tick* is one step of both marks (two commands). Reported:
liquidations (``LiquidationStarted``) per second, time per mark tick (mean over the crash, and the median
tick), and the ratio of the pure-Python reference's time to the compiled one's on the same accounts, run in
the same process. Checked after each run: rules §9, nobody liquidatable, and both implementations end in the
same state hash.

Run: ``python bench/test_bench_cascade.py [n_accounts] [--compiled-only] [--profile=NAME]`` (default 100,000
accounts under binance: the markdown table
for the README and docs/liquidation.md, with the CPU seconds of set-up, crash, final check and end to end;
``--compiled-only`` skips the reference, e.g. ``python bench/test_bench_cascade.py 1000000 --compiled-only``
for the million-account run end to end), or with pytest-benchmark
``CASCADE_ACCOUNTS=100000 python -m pytest bench/test_bench_cascade.py --benchmark-only`` (one round per
implementation; the default there is 10,000 accounts). ``python -m pytest bench/test_bench_cascade.py``
without ``--benchmark-only`` also runs a 2,000-account smoke test.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time

import pytest

from exchange import Exchange, FundInsurance, LiquidationStarted, PlaceOrder, SetMarkPrice, Side, _impl
from exchange.accounts.ledger import Position
from exchange.enums import MarginMode, PositionSide
from exchange.spec import Instrument

N_ACCOUNTS, TICKS, SEED = 100_000, 1_000, 7
#: the venue profile (``--profile=NAME`` or ``CASCADE_PROFILE``; default binance)
PROFILE = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--profile=")),
               os.environ.get("CASCADE_PROFILE", "binance"))
SYMBOLS = ("S1USDT", "S2USDT")
USDT = 10**8


def instruments() -> list[Instrument]:
    return [Instrument.linear(s, lot_size="1", min_qty="1", min_notional="0", max_qty="10000000",
                              max_price="1000", band_down="0.5", band_up="1.5") for s in SYMBOLS]


def build(n_accounts: int, implementation: str, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng = random.Random(seed)
    ex = Exchange(instruments(), implementation=implementation, profile=PROFILE)
    ledger, k = ex.ledger, ex.instruments[SYMBOLS[0]].k_units
    for symbol in SYMBOLS:
        ex.apply(SetMarkPrice(symbol, 10_000))
    maker = ledger.open(0)
    net = {symbol: [0, 0] for symbol in SYMBOLS}  # lots, entry cost the maker must take the other side of
    for account_id in range(1, n_accounts + 1):
        account = ledger.open(account_id)
        kind = rng.random()
        if kind < 0.4:
            legs = [(SYMBOLS[0], True)]  # isolated
        else:
            legs = [(SYMBOLS[0], kind >= 0.8), (SYMBOLS[1], False)]  # cross, or hybrid (isolated S1 + cross S2)
        for symbol, isolated in legs:
            leverage = rng.randint(2, 50)
            price = 10_000 + rng.randint(-100, 100)
            lots = rng.choice((-1, 1)) * max(1, rng.randint(500, 20_000) // 100)
            im = abs(lots) * price * k // leverage
            margin = im * rng.randint(100, 150) // 100
            ledger.set_settings(account, symbol, MarginMode.ISOLATED if isolated else MarginMode.CROSS, leverage)
            position = Position(lots, lots * price, margin if isolated else 0)
            account.wallet_units += 0 if isolated else margin
            ledger.deposits_units += margin
            ledger.store(account, symbol, PositionSide.BOTH, position)
            net[symbol][0] += lots
            net[symbol][1] += lots * price
    for symbol in SYMBOLS:
        lots, cost = net[symbol]
        ledger.set_settings(maker, symbol, MarginMode.CROSS, 1)
        ledger.store(maker, symbol, PositionSide.BOTH, Position(-lots, -cost, 0))
    maker.wallet_units += 10**9 * USDT
    ledger.deposits_units += 10**9 * USDT
    for symbol in SYMBOLS:
        ex.apply(FundInsurance(symbol, 1_000_000 * USDT))
        for step in range(1, 400):
            ex.apply(PlaceOrder(0, symbol, Side.BUY, 10, 10_000 - 10 * step))
            ex.apply(PlaceOrder(0, symbol, Side.SELL, 10, 10_000 + 10 * step))
    ex.check_invariants()
    return ex


def crash(ex: Exchange, ticks: int = TICKS) -> dict:
    """Timed: the 30 % crash (every tick timed on its own); returns the run's numbers."""
    marks = [10_000 - (3_000 * i) // ticks for i in range(1, ticks + 1)]
    started, per_tick = 0, []
    clock = time.process_time  # CPU time of this process: the machine is shared (the crash is one thread)
    for mark in marks:
        t0 = clock()
        for symbol in SYMBOLS:
            started += sum(isinstance(e, LiquidationStarted) for e in ex.apply(SetMarkPrice(symbol, mark)))
        per_tick.append(clock() - t0)
    seconds = sum(per_tick)
    return {"ticks": ticks, "seconds": seconds, "liquidations": started, "liq_per_s": started / seconds,
            "ms_per_tick": 1000 * seconds / ticks, "median_ms_per_tick": 1000 * statistics.median(per_tick)}


def measure(n_accounts: int, implementation: str, ticks: int = TICKS) -> dict:
    """Build, crash (timed tick by tick), check; the numbers, the end state hash, and the CPU time of the
    set-up (``build``, its rules check included), of the final check, and of all three (end to end)."""
    clock = time.process_time
    t0 = clock()
    ex = build(n_accounts, implementation)
    t1 = clock()
    result = crash(ex, ticks)
    t2 = clock()
    check(ex)
    t3 = clock()
    return {"implementation": implementation, "accounts": n_accounts, "state_hash": ex.state_hash(), **result,
            "setup_s": t1 - t0, "check_s": t3 - t2, "end_to_end_s": t3 - t0}


def check(ex: Exchange) -> None:
    ex.check_invariants()
    if PROFILE != "dydx":  # (dYdX liquidates within per-block limits: a part may wait for the next command)
        assert not ex.liquidatable()


def test_cascade_smoke_liquidates_and_conserves():
    result = measure(2_000, _impl.IMPLEMENTATION, ticks=100)
    assert result["liquidations"] > 100


@pytest.mark.skipif(_impl.core is None, reason="compiled core not active")
def test_compiled_and_reference_agree_on_the_crash():
    assert measure(500, "python", 50)["state_hash"] == measure(500, "cython", 50)["state_hash"]


@pytest.mark.parametrize("implementation", ["python", "cython"])
def test_cascade(benchmark, implementation):
    """pytest-benchmark form: one round (the crash is 2,000 commands long) per implementation."""
    if implementation == "cython" and _impl.core is None:
        pytest.skip("compiled core not active")
    n = int(os.environ.get("CASCADE_ACCOUNTS", "10000"))
    holder = {}

    def setup():
        holder["ex"] = build(n, implementation)
        return (holder["ex"],), {}

    result = benchmark.pedantic(crash, setup=setup, rounds=1, iterations=1)
    check(holder["ex"])
    benchmark.extra_info.update(accounts=n, **{k: v for k, v in result.items() if k != "seconds"})


def table(runs: list[dict]) -> str:
    """Markdown rows of the runs, and the reference ÷ compiled ratio at equal scale."""
    lines = ["| implementation | accounts | mark ticks | liquidations | liquidations/s | ms per tick (mean) | "
             "ms per tick (median) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['implementation']} | {r['accounts']:,} | {r['ticks']:,} | {r['liquidations']:,} | "
                     f"{r['liq_per_s']:,.0f} | {r['ms_per_tick']:,.1f} | {r['median_ms_per_tick']:,.1f} |")
    lines.append(f"\nProfile: {PROFILE}. CPU seconds: " + "; ".join(
        f"{r['implementation']}: set-up {r['setup_s']:.1f}, crash {r['seconds']:.1f}, check {r['check_s']:.1f}, "
        f"end to end {r['end_to_end_s']:.1f}" for r in runs))
    by = {r["implementation"]: r for r in runs}
    if {"python", "cython"} <= set(by):
        lines.append(f"\nreference ÷ compiled time at {by['cython']['accounts']:,} accounts: "
                     f"{by['python']['seconds'] / by['cython']['seconds']:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    from bench_support import main_on_accounts

    main_on_accounts(measure, table, N_ACCOUNTS)
