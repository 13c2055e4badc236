"""Instruction counts per command under valgrind's callgrind: the A/B that a shared, noisy machine cannot
spoil (timings here swing by ±15 %, instruction counts by well under 1 %).

    PYTHONPATH=. valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/bench_instructions.py MODE

prints ``I refs`` (instructions) for the whole process. Every mode does the same set-up: the demo flow's first
20,000 commands (``exchange.workload.standard_workload``, seed 42) with the demo's deposits, encoded as a
command array, a funded pure-Python reference exchange, and, for ``resting``, 100 funded accounts and 20,000
resting limit orders that never cross.
Then:

- ``none``:    nothing more (the set-up's count, to subtract);
- ``apply``:   ``Exchange.apply`` on each of the 20,000 demo commands;
- ``batch``:   ``Exchange.apply_batch`` on their array;
- ``resting``: ``Exchange.apply`` on each resting order (the path of an order that rests: validation,
  pre-trade check, matching, holds).
- ``reference``: ``Exchange.apply`` of the pure-Python reference (``implementation="python"``, funded as the
  compiled one) on each of the 20,000 demo commands (what the compiled twins' fields and slots cost the
  reference's Python code).

(count of the mode − count of ``none``) / 20,000 is the instructions per command.

The crash has its own pair of modes: ``crash-none`` builds the 5,000-account exchange of
``bench/test_bench_cascade.py`` (its ``build``), ``crash`` builds it and runs a 300-tick crash of 30 %
(its ``crash``); (count of ``crash`` − count of ``crash-none``) / the liquidations it prints is the
instructions per liquidation.

Run it with the Python binary itself, not a shim that execs another process (pyenv's), or valgrind measures
the shim.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exchange import Deposit, Exchange, PlaceOrder, SetMarkPrice  # noqa: E402
from exchange.boundary.batch import encode  # noqa: E402
from exchange.enums import Side  # noqa: E402
from exchange.workload import workload_instrument  # noqa: E402
from test_bench_exchange import demo_flow, funded_exchange  # noqa: E402

N = 20_000
MODES = ("none", "apply", "batch", "resting", "reference", "crash-none", "crash")
CRASH_ACCOUNTS, CRASH_TICKS = 5_000, 300


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in MODES:
        print(f"usage: bench_instructions.py {'|'.join(MODES)} (under valgrind --tool=callgrind)", file=sys.stderr)
        return 2
    if mode.startswith("crash"):
        return crash(mode == "crash")
    instrument, deposits, commands = demo_flow(N)
    commands = list(commands)
    ex = funded_exchange(instrument, deposits)
    rows = encode(commands, ex.symbols)
    reference = funded_exchange(instrument, deposits, "python")
    resting = Exchange([workload_instrument()], keep_commands=False)
    symbol = resting.symbols[0]
    for account in range(1, 101):
        resting.apply(Deposit(account, 10**15))
    resting.apply(SetMarkPrice(symbol, 10_000))
    orders = [PlaceOrder(1 + i % 100, symbol, Side.BUY if i % 2 else Side.SELL, 1,
                         9_000 - i % 500 if i % 2 else 11_000 + i % 500) for i in range(N)]
    if mode == "apply":
        for command in commands:
            ex.apply(command)
    elif mode == "batch":
        ex.apply_batch(rows)
    elif mode == "resting":
        for order in orders:
            resting.apply(order)
    elif mode == "reference":
        for command in commands:
            reference.apply(command)
    return 0


def crash(run: bool) -> int:
    import test_bench_cascade as cascade

    ex = cascade.build(CRASH_ACCOUNTS, "cython")
    if run:
        print(f"liquidations: {cascade.crash(ex, CRASH_TICKS)['liquidations']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
