"""Benchmark: the Exchange's per-command path, and a mark tick through the risk monitor against the full loop.

(a) ``Exchange.apply`` on the standard demo flow: ``exchange.workload.standard_workload(N_FLOW, seed=42)``
    after the demo's deposits (10,000,000 USDT to each of its 1,000 accounts, outside the timed region), every
    stage included (risk checks, clearing, holds, triggers, the liquidation stage, margin calls). Checked: the
    state hash equals an untimed run's.
(a″) The same flow with each command record made in the timed loop from its field values (a bot's or an
    agent's loop: the record's ``__init__`` is paid too). Checked: the same state hash.
(a′) The same flow as one ``Exchange.apply_batch`` call on its command array (encoded outside the timed
    region), with the result and event arrays built. Checked: the same state hash.
(b) A mark tick on one symbol with N_HOLDERS funded accounts holding positions, none near liquidation or the
    margin-call level: every account deposits 10,000 USDT and buys 1 lot (100 USDT notional at the mark
    100.00) from one maker; 30 % of them isolated. The mark alternates 100.00 / 100.01. Timed:
    - ``Exchange.apply(SetMarkPrice)`` — the monitor's indexes (O(entries fired)), liquidation stage and
      margin-call stage included;
    - the same tick by the full Python loop (the oracle, what the engine did before the index): every
      holder's margin-call state (``Risk.margin_calls``) and ``Exchange.liquidatable_full()``.
    Checked: the tick emits only ``MarkPriceChanged``; both report nobody liquidatable.

Run: ``python -m pytest bench/test_bench_exchange.py --benchmark-only`` (pytest-benchmark), or
``python bench/test_bench_exchange.py`` for the lines quoted in docs/margin.md. Set-up (building 100,000
accounts through ~230,000 commands, and the first tick, which builds the indexes) takes ~20-30 s.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import pytest

from exchange import IMPLEMENTATION, Deposit, Exchange, MarginMode, OrderType, PlaceOrder, SetMarginMode, SetMarkPrice
from exchange._impl import core
from exchange.boundary.batch import encode
from exchange.cli import DEMO_DEPOSIT_UNITS
from exchange.commands import commands_from_rows
from exchange.enums import Side, TimeInForce
from exchange.events import MarkPriceChanged
from exchange.workload import standard_workload, workload_instrument

N_FLOW, SEED = 100_000, 42
N_HOLDERS = 100_000
USDT = 10**8
MARK = 10_000  # ticks: 100.00


# -- (a) the demo flow ----------------------------------------------------------------------------------
def demo_flow(n: int = N_FLOW):
    """``(instrument, deposits, commands)`` of the demo: one deposit per account, then the workload rows."""
    instrument, rows = standard_workload(n, SEED)
    deposits = [Deposit(a, DEMO_DEPOSIT_UNITS) for a in sorted(set(rows["account_id"].tolist()))]
    return instrument, deposits, commands_from_rows(rows, instrument.symbol)


def funded_exchange(instrument, deposits, implementation: str | None = None) -> Exchange:
    ex = Exchange([instrument], implementation=implementation)
    for command in deposits:
        ex.apply(command)
    return ex


def run_flow(ex: Exchange, commands) -> Exchange:
    apply = ex.apply
    for command in commands:
        apply(command)
    return ex


@pytest.fixture(scope="module")
def flow():
    instrument, deposits, commands = demo_flow()
    return instrument, deposits, commands, run_flow(funded_exchange(instrument, deposits), commands).state_hash()


def test_exchange_apply_demo_flow(benchmark, flow):
    instrument, deposits, commands, expected = flow
    ex = benchmark.pedantic(run_flow, setup=lambda: ((funded_exchange(instrument, deposits), commands), {}),
                            rounds=3, iterations=1)
    assert ex.state_hash() == expected
    benchmark.extra_info["commands_per_s"] = len(commands) / benchmark.stats.stats.median


def field_values(commands) -> list[tuple[type, tuple]]:
    """Each command as ``(class, its field values)``: what a loop that makes its commands starts from."""
    return [(type(c), tuple(getattr(c, f.name) for f in dataclasses.fields(c))) for c in commands]


def run_made_flow(ex: Exchange, specs) -> Exchange:
    """(a″) the same flow, each command record made in the loop right before it is applied (what a bot or an
    agent loop pays: the record's ``__init__`` as well as ``apply``)."""
    apply = ex.apply
    for cls, values in specs:
        apply(cls(*values))
    return ex


def test_exchange_apply_demo_flow_records_made_in_the_loop(benchmark, flow):
    instrument, deposits, commands, expected = flow
    specs = field_values(commands)
    ex = benchmark.pedantic(run_made_flow, setup=lambda: ((funded_exchange(instrument, deposits), specs), {}),
                            rounds=3, iterations=1)
    assert ex.state_hash() == expected
    benchmark.extra_info["commands_per_s"] = len(commands) / benchmark.stats.stats.median


def run_batch_flow(ex: Exchange, rows) -> Exchange:
    """(a′) the same flow as one ``Exchange.apply_batch`` call on its command array."""
    ex.apply_batch(rows)
    return ex


def test_exchange_apply_batch_demo_flow(benchmark, flow):
    instrument, deposits, commands, expected = flow
    rows = encode(commands, (instrument.symbol,))
    ex = benchmark.pedantic(run_batch_flow, setup=lambda: ((funded_exchange(instrument, deposits), rows), {}),
                            rounds=3, iterations=1)
    assert ex.state_hash() == expected
    benchmark.extra_info["commands_per_s"] = len(commands) / benchmark.stats.stats.median


# -- (b) a mark tick with many holders ------------------------------------------------------------------
def holders_exchange(n: int = N_HOLDERS) -> Exchange:
    """N funded accounts with one small position each (module docstring); the first tick (index build) done."""
    inst = workload_instrument()
    ex = Exchange([inst])
    maker = n + 1
    ex.apply(Deposit(maker, 10**9 * USDT))
    ex.apply(SetMarkPrice(inst.symbol, MARK))
    for start in range(0, n, 50_000):
        ex.apply(PlaceOrder(maker, inst.symbol, Side.SELL, min(50_000, n - start), MARK, OrderType.LIMIT, TimeInForce.GTC))
    for a in range(1, n + 1):
        ex.apply(Deposit(a, 10_000 * USDT))
        if a % 10 < 3:
            ex.apply(SetMarginMode(a, inst.symbol, MarginMode.ISOLATED))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, 1, MARK, OrderType.LIMIT, TimeInForce.IOC))
    assert len(ex.ledger.holders[inst.symbol]) == n + 1
    ex.apply(SetMarkPrice(inst.symbol, MARK + 1))  # builds / rewrites the indexes once
    assert ex.monitor.indexed
    return ex


class Ticker:
    """Alternates the mark between MARK and MARK + 1; checks each tick's events."""

    def __init__(self, ex: Exchange):
        self.ex, self.symbol, self.up = ex, next(iter(ex.instruments)), False

    def tick(self):
        self.up = not self.up
        mark = MARK + 1 if self.up else MARK
        events = self.ex.apply(SetMarkPrice(self.symbol, mark))
        assert events == [MarkPriceChanged(self.symbol, mark)]


def full_loop_tick(ex: Exchange) -> list:
    """The oracle's work for one tick: every holder's margin-call state, and the full liquidatable loop."""
    for account_id in sorted(set().union(*ex.ledger.holders.values())):
        ex.risk.margin_calls(ex.ledger.accounts[account_id])
    return ex.liquidatable_full()


@pytest.fixture(scope="module")
def holders():
    return holders_exchange()


def test_mark_tick_through_the_exchange(benchmark, holders):
    benchmark.pedantic(Ticker(holders).tick, rounds=200, iterations=1, warmup_rounds=2)
    assert holders.liquidatable() == []


def test_mark_tick_by_the_full_python_loop(benchmark, holders):
    found = benchmark.pedantic(full_loop_tick, args=(holders,), rounds=3, iterations=1)
    assert found == []


def main() -> int:
    print(f"implementation: {IMPLEMENTATION}")
    instrument, deposits, commands = demo_flow()
    rates, hashes = {}, set()
    for implementation in ("python", "cython") if core is not None else ("python",):
        wall, cpu = [], []
        for _ in range(3):
            ex = funded_exchange(instrument, deposits, implementation)
            started, started_cpu = time.perf_counter(), time.process_time()
            run_flow(ex, commands)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        rates[implementation] = len(commands) / statistics.median(cpu)
        hashes.add(ex.state_hash())
        print(f"(a) Exchange.apply [{implementation}], demo flow, {len(commands):,} commands: median "
              f"{len(commands) / statistics.median(wall):,.0f} commands/s wall, {rates[implementation]:,.0f} CPU")
    assert len(hashes) == 1, "the implementations end in different states"
    if len(rates) == 2:
        print(f"(a) compiled ÷ reference (CPU): {rates['cython'] / rates['python']:.2f}; same state hash")

    def median_cpu(run, arg, implementation=None) -> float:
        """Median CPU seconds of ``run(exchange, arg)`` over 3 fresh funded exchanges, each checked against (a)."""
        cpu = []
        for _ in range(3):
            ex = funded_exchange(instrument, deposits, implementation)
            started_cpu = time.process_time()
            run(ex, arg)
            cpu.append(time.process_time() - started_cpu)
            assert ex.state_hash() in hashes
        return statistics.median(cpu)

    specs = field_values(commands)
    for implementation in ("python", "cython") if core is not None else ("python",):
        print(f"(a'') Exchange.apply [{implementation}], each command record made in the loop: median "
              f"{len(commands) / median_cpu(run_made_flow, specs, implementation):,.0f} commands/s CPU; same state hash")
    rows = encode(commands, (instrument.symbol,))
    print(f"(a') Exchange.apply_batch [{IMPLEMENTATION}], the same flow as one command array: median "
          f"{len(commands) / median_cpu(run_batch_flow, rows):,.0f} commands/s CPU; same state hash")
    started = time.perf_counter()
    ex = holders_exchange()
    print(f"(b) set-up of {N_HOLDERS:,} holders: {time.perf_counter() - started:.1f} s")
    ticker = Ticker(ex)
    tick_times = []
    for _ in range(400):
        started = time.perf_counter()
        ticker.tick()
        tick_times.append(time.perf_counter() - started)
    loop_times = []
    for _ in range(3):
        started = time.perf_counter()
        assert full_loop_tick(ex) == []
        loop_times.append(time.perf_counter() - started)
    tick, loop = statistics.median(tick_times), statistics.median(loop_times)
    print(f"(b) mark tick through the Exchange: median {tick * 1e6:,.1f} µs; full Python loop: median "
          f"{loop * 1e3:,.1f} ms; ratio {loop / tick:,.0f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
