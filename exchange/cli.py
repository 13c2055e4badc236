"""The ``exchange-sim`` command.

- ``exchange-sim demo``: replays the standard seeded order flow through the exchange and prints fills,
  book depth and throughput (the exchange path and the batch path of the active implementation); then
  runs a small crash (:func:`exchange.scenarios.crash`) and prints its liquidations, insurance-fund
  changes and auto-deleveraging.
- ``exchange-sim replay JOURNAL``: replays a journal and prints its state hash.
- ``exchange-sim info``: which implementation is active.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from . import IMPLEMENTATION, journal
from .commands import Deposit, commands_from_rows
from .engine import Exchange, matching_engine_class
from .enums import EventKind
from .events import (
    ADLFill, Fill, InsuranceFundChanged, LiquidationFill, LiquidationStarted, MarkPriceChanged, OrderCanceled, Rejected,
)
from .scenarios import CRASH_SYMBOL, crash
from .units import from_units
from .workload import standard_workload


DEMO_DEPOSIT_UNITS = 10**7 * 10**8  # 10,000,000 USDT per account
CRASH_LINES = 16  # liquidations printed in full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exchange-sim", description="Perpetual-futures exchange simulator")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="replay the standard seeded order flow and report")
    demo.add_argument("--commands", type=int, default=200_000, help="number of commands (default 200,000)")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--journal", help="also write the command journal to this file")
    rep = sub.add_parser("replay", help="replay a journal file and print its state hash")
    rep.add_argument("path")
    sub.add_parser("info", help="print the active implementation")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.commands, args.seed, args.journal)
    if args.command == "replay":
        return _replay(args.path)
    print(f"implementation: {IMPLEMENTATION}")
    return 0


def _demo(n: int, seed: int, journal_path: str | None) -> int:
    instrument, rows = standard_workload(n, seed)
    commands = commands_from_rows(rows, instrument.symbol)
    print(f"exchange-sim demo: {n:,} seeded commands (seed {seed}) on {instrument.symbol}, "
          f"implementation: {IMPLEMENTATION}")

    exchange = Exchange([instrument])
    accounts = sorted(set(rows["account_id"].tolist()))
    for account_id in accounts:  # fund every trader generously: this flow is about matching, not margin
        exchange.apply(Deposit(account_id, DEMO_DEPOSIT_UNITS))
    counts: Counter = Counter()
    first_fills: list[Fill] = []
    volume_lots = 0
    started = time.perf_counter()
    for command in commands:
        for event in exchange.apply(command):
            counts[type(event).__name__] += 1
            if isinstance(event, Fill):
                volume_lots += event.qty_lots
                if len(first_fills) < 8:
                    first_fills.append(event)
            elif isinstance(event, Rejected):
                counts[f"Rejected  code {int(event.code)}"] += 1
            elif isinstance(event, OrderCanceled):
                counts[f"OrderCanceled  {event.reason.name}"] += 1
    exchange_seconds = time.perf_counter() - started

    price = instrument.ticks_to_price
    print("\nfirst fills:")
    for fill in first_fills:
        print(f"  {fill.taker_side.name:4} {instrument.lots_to_qty(fill.qty_lots)} @ {price(fill.price_ticks)}  "
              f"taker #{fill.taker_order_id} (acct {fill.taker_account_id}) x maker #{fill.maker_order_id} "
              f"(acct {fill.maker_account_id})  fees {fill.taker_fee_units} / {fill.maker_fee_units} units")
    print("\nevents (by kind, then by cancel reason / reject code):")
    for name, count in sorted(counts.items()):
        print(f"  {name:32} {count:>10,}")
    book = exchange.book(instrument.symbol)
    bids, asks = book.depth(5)
    print("\nbook depth (price, qty, orders):")
    for (bp, bq, bn), (ap, aq, an) in zip(bids + [(0, 0, 0)] * (5 - len(bids)), asks + [(0, 0, 0)] * (5 - len(asks))):
        print(f"  bid {price(bp):>10} {bq:>8} {bn:>4}   |   ask {price(ap):>10} {aq:>8} {an:>4}")
    print(f"  last trade {price(book.last_price())}, resting orders {book.order_count():,}")

    batch = matching_engine_class()(instrument)
    started = time.perf_counter()
    _, batch_events = batch.run_batch(rows)
    batch_seconds = time.perf_counter() - started
    batch_volume = int(batch_events["qty_lots"][batch_events["kind"] == EventKind.FILL].sum())
    print("\nthroughput:")
    print(f"  Exchange.apply (events as records): {n / exchange_seconds:>14,.0f} commands/s")
    print(f"  MatchingEngine.run_batch ({IMPLEMENTATION}):  {n / batch_seconds:>14,.0f} commands/s")
    same = batch_volume == volume_lots and batch.canonical_state() == book.canonical_state()
    print(f"  batch path agrees with the exchange path (volume {volume_lots:,} lots, same book): {same}")
    print(f"\nstate hash {exchange.state_hash()}")
    _crash_demo()
    if journal_path:
        with open(journal_path, "wb") as stream:
            journal.dump([instrument], exchange.journal, stream, exchange.options, exchange.profile)
        print(f"journal written to {journal_path}")
    return 0 if same else 1


def _crash_demo() -> None:
    """Part 2: a 30% crash with liquidations, insurance-fund takeovers and auto-deleveraging."""
    exchange, events = crash()
    inst = exchange.instruments[CRASH_SYMBOL]
    price, money = inst.ticks_to_price, from_units
    print(f"\n== crash: {CRASH_SYMBOL} mark 100.00 -> 70.00 in 30 steps; leveraged longs, a thin bid ladder, "
          f"a small insurance fund ==")
    counts = Counter(type(event).__name__ for event in events)
    print("  " + ", ".join(f"{name} {counts[name]}" for name in
                           ("LiquidationStarted", "LiquidationFill", "InsuranceFundChanged", "ADLFill", "MarginCall")))
    mark, shown = 0, 0
    for event in events:
        if isinstance(event, MarkPriceChanged):
            mark = event.mark_ticks
        elif isinstance(event, LiquidationStarted):
            shown += 1
            if shown > CRASH_LINES:
                break
            print(f"  mark {price(mark):>6}  liquidate acct {event.account_id:>3} "
                  f"{'isolated' if event.symbol else 'cross':8} balance {money(event.margin_balance_units):>10} "
                  f"<= MM {money(event.maintenance_margin_units)}")
        elif isinstance(event, LiquidationFill):
            via = "book" if event.order_id else "insurance fund takeover"
            print(f"      {event.side.name:4} {inst.lots_to_qty(event.qty_lots)} @ {price(event.price_ticks)} "
                  f"(bankruptcy {price(event.bankruptcy_price_ticks)}) via {via}")
        elif isinstance(event, ADLFill) and event.liquidated:
            print(f"      ADL: {inst.lots_to_qty(event.qty_lots)} closed @ {price(event.price_ticks)} against the "
                  f"short of acct {event.counterparty_id}")
        elif isinstance(event, InsuranceFundChanged):
            print(f"      insurance fund {money(event.delta_units):+} ({event.reason.name}) -> "
                  f"{money(event.balance_units)}")
    if shown > CRASH_LINES:
        print(f"  ... ({counts['LiquidationStarted'] - CRASH_LINES} more liquidations)")
    exchange.check_invariants()
    print(f"  money conserved exactly and open interest balanced (SPEC §9); fund balance "
          f"{money(exchange.insurance_balance(CRASH_SYMBOL))} USDT")


def _replay(path: str) -> int:
    with open(path, "rb") as stream:
        contents = journal.read(stream)
    exchange, events = journal.replay(contents.instruments, contents.commands, options=contents.options,
                                      profile=contents.profile)
    commands = contents.commands
    print(f"replayed {len(commands):,} commands -> {len(events):,} events; state hash {exchange.state_hash()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
