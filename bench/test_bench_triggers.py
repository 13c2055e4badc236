"""Benchmark: an exchange with many conditional orders waiting (stop-losses, take-profits, trailing stops, GTD
stops), the trigger book's indexes against the naive oracle that walks every waiting order.

Workload (seeded, ``build``): the demo instrument (tick 0.01, mark 100.00), a maker ladder of 100 bids and 100
asks (1,000 lots each, one tick apart) so market orders fill, 1,000 funded traders, and ``n`` conditional
orders of theirs waiting 1-30 % away from the mark (one in fifty 0.1-0.4 % away): half stop-losses, the other half take-profits (STOP_MARKET
and TAKE_PROFIT_MARKET, both sides), a tenth of them STOP limits good till a time far ahead, a hundredth
trailing stops with an activation price; half watch the mark, half the last trade. Set-up not timed.

Timed (CPU time): ``COMMANDS`` commands of a quiet market: 45 % mark moves of a tick or two (a random walk),
45 % market orders of 1-3 lots (each fill feeds the last-trade triggers), 10 % ``AdvanceTime`` of a second (the
GTD expiry check). The walk stays within 0.5 % of 100.00, so only the near orders fire (as on a real venue, most
orders wait most of the time): what is measured is mostly what waiting costs. Run once with the exchange's ``TriggerBook`` and once with ``tests/trigger_oracle.py``'s
``LinearTriggerBook`` (swapped in before the set-up), same commands; both must end in the same state hash.

Run: ``python bench/test_bench_triggers.py [n ...]`` (default 1,000, 10,000 and 100,000 waiting orders: the
markdown table for the README), or with pytest-benchmark ``TRIGGER_ORDERS=10000 python -m pytest
bench/test_bench_triggers.py --benchmark-only``. ``python -m pytest bench/test_bench_triggers.py`` without
``--benchmark-only`` runs a 2,000-order check that both books end alike.
"""
from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchange import AdvanceTime, Deposit, Exchange, OrderTriggered, PlaceOrder, SetMarkPrice, Side  # noqa: E402
from exchange.enums import OrderType, TimeInForce, WorkingType  # noqa: E402
from exchange.workload import workload_instrument  # noqa: E402
from tests.trigger_oracle import LinearTriggerBook  # noqa: E402

COMMANDS, SEED, TRADERS, MID = 2_000, 11, 1_000, 10_000
WAITING = (1_000, 10_000, 100_000)


def build(n_orders: int, linear: bool, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng = random.Random(seed)
    inst = workload_instrument()
    ex = Exchange([inst], keep_commands=False)
    if linear:
        ex._triggers[inst.symbol] = LinearTriggerBook()
    s = inst.symbol
    ex.apply(SetMarkPrice(s, MID))
    for account in range(TRADERS + 1):
        ex.apply(Deposit(account, 10**15))
    for i in range(100):
        ex.apply(PlaceOrder(0, s, Side.BUY, 1_000, MID - 1 - i))
        ex.apply(PlaceOrder(0, s, Side.SELL, 1_000, MID + 1 + i))
    far = 10**18  # a GTD time no run reaches
    for i in range(n_orders):
        account, side = rng.randint(1, TRADERS), rng.choice((Side.BUY, Side.SELL))
        working = rng.choice((WorkingType.MARK_PRICE, WorkingType.CONTRACT_PRICE))
        away = rng.randint(10, 40) if i % 50 == 1 else MID * rng.randint(100, 3_000) // 10_000  # 0.1-0.4 %, or 1-30 %
        if i % 100 == 0:  # trailing: activates on the far side, 1 % callback
            activation = MID + away if side == Side.SELL else MID - away
            command = PlaceOrder(account, s, side, 1, 0, OrderType.TRAILING_STOP_MARKET, working_type=working,
                                 callback_e8=1_000_000, activation_ticks=activation)
        else:
            kind = rng.choice((OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET))
            rises = (side == Side.BUY) == (kind == OrderType.STOP_MARKET)
            stop = MID + away if rises else MID - away
            if i % 10 == 0:  # a STOP limit good till a far time
                limit = OrderType.STOP if kind == OrderType.STOP_MARKET else OrderType.TAKE_PROFIT
                command = PlaceOrder(account, s, side, 1, stop, limit, TimeInForce.GTD, stop_ticks=stop,
                                     working_type=working, expire_ns=far)
            else:
                command = PlaceOrder(account, s, side, 1, 0, kind, stop_ticks=stop, working_type=working)
        events = ex.apply(command)
        assert type(events[0]).__name__ == "OrderAccepted", events
    return ex


def flow(ex: Exchange, commands: int = COMMANDS, seed: int = SEED) -> list:
    """The timed commands of the module docstring."""
    rng, s = random.Random(seed + 1), ex.symbols[0]
    mark, now, out = MID, ex.now_ns, []
    for _ in range(commands):
        roll = rng.random()
        if roll < 0.45:
            mark = min(MID + 50, max(MID - 50, mark + rng.choice((-2, -1, 1, 2))))
            out.append(SetMarkPrice(s, mark))
        elif roll < 0.9:
            out.append(PlaceOrder(rng.randint(1, TRADERS), s, rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 3),
                                  0, OrderType.MARKET))
        else:
            now += 1_000_000_000
            out.append(AdvanceTime(now))
    return out


def run(ex: Exchange, commands: list) -> dict:
    """Timed: every command on its own, CPU time; the numbers and the state hash."""
    clock, per, fired = time.process_time, [], 0
    for command in commands:
        t0 = clock()
        events = ex.apply(command)
        per.append(clock() - t0)
        fired += sum(type(e) is OrderTriggered for e in events)
    seconds = sum(per)
    return {"commands": len(commands), "seconds": seconds, "per_s": len(commands) / seconds,
            "median_us": 1e6 * statistics.median(per), "fired": fired, "waiting": len(ex._triggers[ex.symbols[0]]),
            "state_hash": ex.state_hash()}


def measure(n_orders: int, commands: int = COMMANDS) -> tuple[dict, dict]:
    """Both books on the same workload: ``(indexed, linear)``; raises if they end apart."""
    results = []
    for linear in (False, True):
        ex = build(n_orders, linear)
        results.append(run(ex, flow(ex, commands)))
        ex.check_invariants()
    indexed, linear = results
    if indexed["state_hash"] != linear["state_hash"] or indexed["fired"] != linear["fired"]:
        raise AssertionError(f"the indexed and the linear trigger books ended apart at {n_orders:,} orders")
    return indexed, linear


def test_both_books_end_alike():
    indexed, linear = measure(2_000, 400)
    assert indexed["state_hash"] == linear["state_hash"] and indexed["waiting"] == linear["waiting"] > 1_500


@pytest.mark.parametrize("linear", [False, True], ids=["indexed", "linear"])
def test_bench_quiet_market_with_waiting_orders(benchmark, linear):
    n = int(os.environ.get("TRIGGER_ORDERS", "10000"))
    ex = build(n, linear)
    commands = flow(ex)
    benchmark.pedantic(lambda: [ex.apply(c) for c in commands], rounds=1, iterations=1)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(WAITING)
    print("| waiting orders | trigger book | commands/s (CPU) | median µs per command | fired | indexed ÷ linear |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        indexed, linear = measure(n)
        ratio = indexed["per_s"] / linear["per_s"]
        for name, r in (("indexed", indexed), ("linear (oracle)", linear)):
            print(f"| {n:,} | {name} | {r['per_s']:,.0f} | {r['median_us']:,.1f} | {r['fired']} | "
                  f"{f'{ratio:,.1f}×' if name == 'indexed' else ''} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
