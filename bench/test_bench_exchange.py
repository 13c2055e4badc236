"""Benchmark: the Exchange's per-command path, and a mark tick through the risk monitor against the full loop.

(a) ``Exchange.apply`` on the standard demo flow: ``exchange.workload.standard_workload(N_FLOW, seed=42)``
    after the demo's deposits (10,000,000 USDT to each of its 1,000 accounts, outside the timed region), every
    stage included (risk checks, clearing, holds, triggers, the liquidation stage, margin calls). Checked: the
    state hash equals an untimed run's.
(a″) The same flow with each command record made in the timed loop from its field values (a bot's or an
    agent's loop: the record's ``__init__`` is paid too). Checked: the same state hash.
(a′) The same flow as one ``Exchange.apply_batch`` call on its command array (encoded outside the timed
    region), with the result and event arrays built. Checked: the same state hash.
(c) A requoting flow (``requote_flow``): 100 market makers keep 5 bids and 5 asks of 1,000 lots each within 50
    ticks of the mid 100.00; 85 % of the commands amend one of their orders to a new price on its side of the
    mid (the leaves set back to 1,000 lots), 10 % are market orders of 1-5 lots from 900 takers, 5 % are a maker's
    ``CancelAll`` and its ten orders placed again. ``Exchange.apply`` on each implementation, compiled ÷
    reference. Checked: the same state hash on both.
(d) An account settings flow (``settings_flow``): 10,000 accounts configure themselves before they trade (20 %
    hedge mode, 30 % isolated margin, each a leverage or, one in four cross ones, an initial margin rate: the idle
    commands), then each takes one lot from a maker (set-up), then changes its leverage again with the position
    open (an isolated one raises it), the isolated ones moving 1 USDT of margin in or out (about one removal
    in eight is refused, -4051), with an index price every 20 commands (the commands with a position).
    ``Exchange.apply`` on each implementation, each part timed on its own, compiled ÷ reference. Checked: the
    same state hash on both.
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

import random

from exchange import (IMPLEMENTATION, AdjustIsolatedMargin, AmendOrder, CancelAll, Deposit, Exchange, MarginMode,
                      OrderType, PlaceOrder, PositionMode, PositionSide, SetIndexPrice, SetInitialMarginRate,
                      SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode)
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


# -- (c) a requoting flow --------------------------------------------------------------------------------
N_REQUOTE, MAKERS, TAKERS, QUOTES, QUOTE_LOTS = 50_000, 100, 900, 5, 1_000


def requote_flow(n: int = N_REQUOTE, seed: int = SEED):
    """``(instrument, set-up commands, timed commands)`` of (c) (module docstring). Every order is accepted and
    no taker exhausts a quote (5 lots at most against 1,000), so the order ids, assigned in placement order,
    are known here: every amend finds its order resting."""
    rng = random.Random(seed)
    instrument = workload_instrument()
    symbol, mid, next_id = instrument.symbol, MARK, 1  # (the mid stays: no amend crosses another maker's quote)
    set_up = [SetMarkPrice(symbol, MARK)] + [Deposit(a, 10**6 * USDT) for a in range(1, MAKERS + TAKERS + 1)]
    quotes: dict[int, list[list]] = {}  # maker -> its resting [order id, side, price]

    def place_quotes(maker: int) -> list:
        nonlocal next_id
        placed = []
        for side in (Side.BUY, Side.SELL):
            for level in range(1, QUOTES + 1):
                price = mid - level if side == Side.BUY else mid + level
                placed.append(PlaceOrder(maker, symbol, side, QUOTE_LOTS, price, OrderType.LIMIT, TimeInForce.GTC))
                quotes.setdefault(maker, []).append([next_id, side, price])
                next_id += 1
        return placed

    for maker in range(1, MAKERS + 1):
        set_up += place_quotes(maker)
    timed: list = []
    while len(timed) < n:
        roll = rng.random()
        if roll < 0.85:
            maker = rng.randint(1, MAKERS)
            quote = rng.choice(quotes[maker])
            order_id, side, was = quote
            offset = rng.randint(1, 50)
            price = mid - offset if side == Side.BUY else mid + offset
            quote[2] = price if price != was else (mid - 51 if side == Side.BUY else mid + 51)  # (always a change)
            timed.append(AmendOrder(maker, symbol, order_id, quote[2], QUOTE_LOTS))
        elif roll < 0.95:
            timed.append(PlaceOrder(rng.randint(MAKERS + 1, MAKERS + TAKERS), symbol, rng.choice((Side.BUY, Side.SELL)),
                                    rng.randint(1, 5), 0, OrderType.MARKET))
            next_id += 1
        else:
            maker = rng.randint(1, MAKERS)
            quotes[maker] = []
            timed.append(CancelAll(maker, symbol))
            timed += place_quotes(maker)
    return instrument, set_up, timed


@pytest.fixture(scope="module")
def requoting():
    instrument, set_up, timed = requote_flow()
    reference = run_flow(run_flow(Exchange([instrument], implementation="python"), set_up), timed).state_hash()
    return instrument, set_up, timed, reference


def test_exchange_apply_requote_flow(benchmark, requoting):
    instrument, set_up, timed, reference = requoting
    ex = benchmark.pedantic(run_flow, setup=lambda: ((run_flow(Exchange([instrument]), set_up), timed), {}),
                            rounds=3, iterations=1)
    assert ex.state_hash() == reference  # the pure-Python reference's end state
    benchmark.extra_info["commands_per_s"] = len(timed) / benchmark.stats.stats.median


# -- (d) account settings --------------------------------------------------------------------------------
N_SETTINGS = 10_000


def settings_flow(n: int = N_SETTINGS, seed: int = SEED):
    """``(instrument, set-up, idle, trades, held)`` of (d) (module docstring): the deposits and a maker's quotes;
    the settings of accounts with nothing open; one trade per account; the settings and margin moves with the
    positions open, index prices between them."""
    rng = random.Random(seed)
    instrument = workload_instrument()
    symbol, maker = instrument.symbol, n + 1
    set_up = [SetMarkPrice(symbol, MARK), Deposit(maker, 10**9 * USDT)] + [Deposit(a, 10_000 * USDT)
                                                                          for a in range(1, n + 1)]
    set_up += [PlaceOrder(maker, symbol, Side.SELL, n, MARK), PlaceOrder(maker, symbol, Side.BUY, n, MARK - 1)]
    hedged = {a for a in range(1, n + 1) if rng.random() < 0.2}
    isolated = {a for a in range(1, n + 1) if rng.random() < 0.3}
    idle, trades, held, leverage = [], [], [], {}
    for a in range(1, n + 1):
        if a in hedged:
            idle.append(SetPositionMode(a, PositionMode.HEDGE))
        if a in isolated:
            idle.append(SetMarginMode(a, symbol, MarginMode.ISOLATED))
        leverage[a] = rng.randint(5, 45)
        idle.append(SetInitialMarginRate(a, symbol, rng.choice((1_500_000, 3_333_333, 4_000_000)))
                    if a not in isolated and rng.random() < 0.25 else SetLeverage(a, symbol, leverage[a]))
        side = rng.choice((Side.BUY, Side.SELL))
        leg = (PositionSide.LONG if side == Side.BUY else PositionSide.SHORT) if a in hedged else PositionSide.BOTH
        trades.append(PlaceOrder(a, symbol, side, 1, 0, OrderType.MARKET, position_side=leg))
    for a in range(1, n + 1):  # (an isolated position's leverage only goes up: lowering it is refused)
        held.append(SetLeverage(a, symbol, rng.randint(leverage[a] + 1, 50) if a in isolated else rng.randint(5, 50)))
        if a in isolated:
            leg = trades[a - 1].position_side
            held.append(AdjustIsolatedMargin(a, symbol, USDT if rng.random() < 0.7 else -USDT, leg))
        if a % 20 == 0:
            held.append(SetIndexPrice(symbol, MARK + rng.randint(-5, 5)))
    return instrument, set_up, idle, trades, held


def run_settings(implementation: str | None = None) -> tuple[float, float, str]:
    """CPU seconds of (d)'s idle and held parts on a fresh exchange, and its end state hash."""
    instrument, set_up, idle, trades, held = settings_flow()
    ex = run_flow(Exchange([instrument], implementation=implementation), set_up)
    started = time.process_time()
    run_flow(ex, idle)
    idle_s = time.process_time() - started
    run_flow(ex, trades)
    started = time.process_time()
    run_flow(ex, held)
    return idle_s, time.process_time() - started, ex.state_hash()


def test_exchange_apply_settings_flow(benchmark):
    instrument, set_up, idle, trades, held = settings_flow()

    def setup():
        return (run_flow(run_flow(run_flow(Exchange([instrument]), set_up), idle), trades), held), {}

    benchmark.pedantic(run_flow, setup=setup, rounds=3, iterations=1)
    benchmark.extra_info["commands_per_s"] = len(held) / benchmark.stats.stats.median


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
    instrument, set_up, timed = requote_flow()
    requote, hashes = {}, set()
    for implementation in ("python", "cython") if core is not None else ("python",):
        cpu = []
        for _ in range(3):
            ex = run_flow(Exchange([instrument], implementation=implementation), set_up)
            started_cpu = time.process_time()
            run_flow(ex, timed)
            cpu.append(time.process_time() - started_cpu)
            hashes.add(ex.state_hash())
        requote[implementation] = len(timed) / statistics.median(cpu)
        print(f"(c) Exchange.apply [{implementation}], requoting flow, {len(timed):,} commands: median "
              f"{requote[implementation]:,.0f} commands/s CPU")
    assert len(hashes) == 1, "the implementations end in different states"
    if len(requote) == 2:
        print(f"(c) compiled ÷ reference (CPU): {requote['cython'] / requote['python']:.2f}; same state hash")
    _, _, idle, _, held = settings_flow()
    settings, hashes = {}, set()
    for implementation in ("python", "cython") if core is not None else ("python",):
        runs = [run_settings(implementation) for _ in range(3)]
        hashes |= {h for _, _, h in runs}
        settings[implementation] = (len(idle) / statistics.median(r[0] for r in runs),
                                    len(held) / statistics.median(r[1] for r in runs))
        print(f"(d) Exchange.apply [{implementation}], settings flow: {len(idle):,} commands with nothing open, median "
              f"{settings[implementation][0]:,.0f} commands/s CPU; {len(held):,} with the positions open, median "
              f"{settings[implementation][1]:,.0f}")
    assert len(hashes) == 1, "the implementations end in different states"
    if len(settings) == 2:
        print(f"(d) compiled ÷ reference (CPU): {settings['cython'][0] / settings['python'][0]:.2f} with nothing open, "
              f"{settings['cython'][1] / settings['python'][1]:.2f} with the positions open; same state hash")
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
