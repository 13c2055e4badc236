"""Benchmark: the first mark after N accounts were set up through commands, the marks after it, and the memory
per account (a script, not collected by pytest: ``PYTHONPATH=. python bench/bench_scale.py [--accounts N]``).

Set-up (timed separately, CPU): one maker per 100,000 accounts deposits 10⁹ USDT and rests sell orders of
100,000 lots at the mark 100.00; then each of the N accounts deposits 10,000 USDT, 30 % of them switch to isolated margin, and each buys 1 lot
(an IOC order that fills against the maker) — the holders of ``bench/test_bench_exchange.py`` (b). Every
command changes accounts; the risk monitor writes their mirror rows and index entries as the command ends.

Timed (``time.process_time``, CPU):
- the first ``SetMarkPrice`` after the set-up (100.00 → 100.01): before the monitor wrote touched accounts at
  the end of each command it rewrote every account changed since the last mark here (~40 s at 1,000,000);
- the following marks (alternating 100.00 / 100.01; median of ``--marks``). Each emits only MarkPriceChanged.
Memory: the growth of the process's resident set (RSS, ``/proc/self/statm``) over the set-up and the marks,
divided by N — ledger, books, monitor mirror and indexes together (the marks included, because a monitor
that writes its mirror lazily allocates it at the first mark). Each run is a fresh process (so no run reuses the memory
another one freed). The commands are made one at a time, and the exchange keeps no in-memory list of them
(``keep_commands=False``, as the gateway and the study runner run it); ``--keep-commands`` keeps that list.

Options: ``--accounts N`` (default 1,000,000), ``--reference-accounts M`` (default 100,000; 0: none) also
runs the pure-Python reference and the compiled implementation at M for the ratio, ``--marks K`` (default 21),
``--keep-commands``.
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

from exchange import Deposit, Exchange, MarginMode, OrderType, PlaceOrder, SetMarginMode, SetMarkPrice
from exchange._impl import core
from exchange.enums import Side, TimeInForce
from exchange.events import MarkPriceChanged
from exchange.workload import workload_instrument

USDT = 10**8
MARK = 10_000  # ticks: 100.00
CHUNK = 50_000  # lots per resting maker order
PER_MAKER = 100_000  # lots each maker sells (one maker's margin brackets would refuse a million)


def rss_bytes() -> int:
    """The resident set size of this process (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def commands(n: int, symbol: str):
    """The set-up's commands (module docstring), made one at a time so that no list of them counts as memory."""
    makers = range(n + 1, n + 1 + -(-n // PER_MAKER))
    yield SetMarkPrice(symbol, MARK)
    for i, maker in enumerate(makers):
        lots = min(PER_MAKER, n - i * PER_MAKER)
        yield Deposit(maker, 10**9 * USDT)
        for start in range(0, lots, CHUNK):
            yield PlaceOrder(maker, symbol, Side.SELL, min(CHUNK, lots - start), MARK, OrderType.LIMIT, TimeInForce.GTC)
    for a in range(1, n + 1):
        yield Deposit(a, 10_000 * USDT)
        if a % 10 < 3:
            yield SetMarginMode(a, symbol, MarginMode.ISOLATED)
        yield PlaceOrder(a, symbol, Side.BUY, 1, MARK, OrderType.LIMIT, TimeInForce.IOC)


def set_up(n: int, implementation: str, keep_commands: bool = False) -> tuple[Exchange, int, float]:
    """The exchange with ``n`` holders (module docstring); returns it, the commands applied and their CPU time
    (the commands are made inside the timed loop: about 2 % of it)."""
    inst = workload_instrument()
    ex = Exchange([inst], implementation=implementation, keep_commands=keep_commands)
    apply = ex.apply
    applied = 0
    started = time.process_time()
    for command in commands(n, inst.symbol):
        apply(command)
        applied += 1
    seconds = time.process_time() - started
    assert len(ex.ledger.holders[inst.symbol]) == n + -(-n // PER_MAKER)
    return ex, applied, seconds


def mark(ex: Exchange, ticks: int) -> float:
    """CPU seconds of one SetMarkPrice (checked: it emits only the mark change)."""
    symbol = next(iter(ex.instruments))
    started = time.process_time()
    events = ex.apply(SetMarkPrice(symbol, ticks))
    seconds = time.process_time() - started
    assert events == [MarkPriceChanged(symbol, ticks)], events[:5]
    return seconds


def measure(n: int, implementation: str, marks: int, keep_commands: bool = False) -> dict:
    gc.collect()
    before = rss_bytes()
    ex, n_commands, setup_s = set_up(n, implementation, keep_commands)
    first = mark(ex, MARK + 1)
    following = [mark(ex, MARK + (i % 2)) for i in range(marks)]
    assert ex.liquidatable() == []
    gc.collect()
    grown = rss_bytes() - before
    return {"implementation": implementation, "accounts": n, "commands": n_commands, "setup_s": setup_s,
            "first_ms": 1e3 * first, "following_us": 1e6 * statistics.median(following),
            "bytes_per_account": grown / n}


def isolated(n: int, implementation: str, marks: int, keep_commands: bool = False) -> dict:
    """:func:`measure` in a fresh process."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, n, implementation, marks, keep_commands).result()


def table(runs: list[dict]) -> str:
    lines = ["| implementation | accounts | set-up commands | set-up CPU s (commands/s) | first mark CPU ms | "
             "following marks CPU µs (median) | RSS growth per account |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['implementation']} | {r['accounts']:,} | {r['commands']:,} | {r['setup_s']:,.1f} "
                     f"({r['commands'] / r['setup_s']:,.0f}) | {r['first_ms']:,.2f} | {r['following_us']:,.1f} | "
                     f"{r['bytes_per_account']:,.0f} B |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--reference-accounts", type=int, default=100_000)
    parser.add_argument("--marks", type=int, default=21)
    parser.add_argument("--keep-commands", action="store_true",
                        help="keep the exchange's in-memory list of applied commands (Exchange.journal)")
    args = parser.parse_args()
    runs = []
    if core is not None:
        runs.append(isolated(args.accounts, "cython", args.marks, args.keep_commands))
        print(table(runs), flush=True)
    if args.reference_accounts:
        small = [isolated(args.reference_accounts, "python", args.marks, args.keep_commands)]
        if core is not None and args.reference_accounts != args.accounts:
            small.append(isolated(args.reference_accounts, "cython", args.marks, args.keep_commands))
        runs += small
    elif core is None:
        runs.append(isolated(args.accounts, "python", args.marks, args.keep_commands))
    print(table(runs))
    by = {r["implementation"]: r for r in runs if r["accounts"] == args.reference_accounts}
    if {"python", "cython"} <= set(by):
        p, c = by["python"], by["cython"]
        print(f"\nreference ÷ compiled at {args.reference_accounts:,} accounts: set-up {p['setup_s'] / c['setup_s']:.2f}, "
              f"first mark {p['first_ms'] / c['first_ms']:.1f}, following marks {p['following_us'] / c['following_us']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
