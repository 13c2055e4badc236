"""The ``exchange-sim`` command.

- ``exchange-sim demo [--commands N] [--seed S] [--journal FILE [--fsync POLICY]]``: replays the standard
  seeded order flow through the exchange and prints fills, book depth and throughput (the exchange path and
  the batch path of the active implementation); then runs a small crash (:func:`exchange.scenarios.crash`)
  and prints its liquidations, insurance-fund changes and auto-deleveraging. With ``--journal`` every
  command is written to a durable journal *before* it is applied (``docs/journal.md``); ``--fsync`` is
  ``always``, ``never``, ``every:N``, ``every:Tms`` or ``every:N,Tms`` (default ``every:100ms``: a crash of
  the process loses nothing, a power loss at most the last 100 ms). The file must not exist (or be empty).
- ``exchange-sim replay JOURNAL [--snapshot PATH]``: recovers the exchange from a journal
  (:func:`exchange.persistence.recovery.recover`; from the newest usable snapshot if ``PATH`` is a snapshot file or a
  directory of them) and prints how many commands were replayed, the torn tail ignored (the incomplete
  last record a crash leaves) and the state hash.
- ``exchange-sim info``: which implementation is active.

Exit codes (every error is one line on stderr, ``exchange-sim: error: ...``):

==  ===========================================================================================
0   success (a journal with a torn tail included: the tail is reported and ignored)
1   a check failed (the demo's batch path disagrees with the exchange path)
2   usage error: unknown command or option, a bad value (``--commands 0``, a negative seed, a bad
    ``--fsync`` policy)
3   invalid journal or snapshot: corrupt (a checksum mismatch, a bad record), empty, not a journal,
    an unsupported version, or a snapshot that does not fit the journal
4   file problem: missing, a directory, unreadable, or an existing journal ``demo`` refuses to overwrite
==  ===========================================================================================
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from . import IMPLEMENTATION
from .commands import Deposit, commands_from_rows
from .engine import Exchange, matching_engine_class
from .enums import EventKind
from .events import (
    ADLFill, Fill, InsuranceFundChanged, LiquidationFill, LiquidationStarted, MarkPriceChanged, OrderCanceled, Rejected,
)
from .persistence.journal import JournalError, JournalFileError, parse_fsync
from .persistence.recovery import recover
from .scenarios import CRASH_SYMBOL, crash
from .units import InputError, from_units
from .workload import standard_workload


DEMO_DEPOSIT_UNITS = 10**7 * 10**8  # 10,000,000 USDT per account
CRASH_LINES = 16  # liquidations printed in full
DEMO_FSYNC = "every:100ms"

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INVALID, EXIT_FILE = 0, 1, 2, 3, 4


class UsageError(Exception):
    """A bad command line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``exchange-sim: error: ...``) and returns exit code 2."""

    def error(self, message: str):
        raise UsageError(message)


def _int_in(minimum: int, what: str, maximum: int | None = None):
    """An argparse type: an integer ``>= minimum`` (and ``<= maximum``; ``what`` names it in the error)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text if value is not None else repr(text)}")
        return value
    return parse


_positive_int = _int_in(1, "a positive integer")


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value

_seed = _int_in(0, "an integer >= 0")
_port = _int_in(0, "a port number 0..65535", 65535)


def _fsync(text: str):
    try:
        return parse_fsync(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="exchange-sim", description="Perpetual-futures exchange simulator",
                     epilog="exit codes: 0 ok, 1 a check failed, 2 usage error, 3 invalid journal or snapshot, "
                            "4 file missing / unreadable / exists")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="replay the standard seeded order flow and report")
    demo.add_argument("--commands", type=_positive_int, default=200_000, help="number of commands (default 200,000)")
    demo.add_argument("--seed", type=_seed, default=42, help="seed of the order flow (>= 0, default 42)")
    demo.add_argument("--journal", metavar="FILE", help="journal every command durably to this (new) file")
    demo.add_argument("--fsync", type=_fsync, default=DEMO_FSYNC, metavar="POLICY",
                      help=f"journal fsync policy: always, never, every:N, every:Tms, every:N,Tms "
                           f"(default {DEMO_FSYNC})")
    rep = sub.add_parser("replay", help="recover the exchange from a journal and print its state hash")
    rep.add_argument("path", metavar="JOURNAL")
    rep.add_argument("--snapshot", metavar="PATH",
                     help="start from this snapshot file, or the newest usable one in this directory")
    sub.add_parser("info", help="print the active implementation")
    _research_parsers(sub)
    _serve_parser(sub)
    try:
        args = parser.parse_args(argv)
        if args.command in ("study", "report", "sweep", "scenario"):
            return _research(args)
        if args.command == "demo":
            return _demo(args.commands, args.seed, args.journal, args.fsync)
        if args.command == "replay":
            return _replay(args.path, args.snapshot)
        if args.command == "serve":
            from .gateway.app import main as serve_main
            from .gateway.config import ConfigError

            try:
                return serve_main(args)
            except ConfigError as exc:
                return _error(str(exc), EXIT_USAGE)
        print(f"implementation: {IMPLEMENTATION}")
        return EXIT_OK
    except (UsageError, InputError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except JournalFileError as exc:
        return _error(str(exc), EXIT_FILE)
    except JournalError as exc:
        return _error(str(exc), EXIT_INVALID)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}", EXIT_FILE)
    except _snapshot_error() as exc:
        return _error(f"snapshot: {exc}", EXIT_INVALID)


def _serve_parser(sub) -> None:
    serve = sub.add_parser("serve", help="run the Binance USD-M compatible REST + WebSocket gateway (docs/gateway.md)")
    serve.add_argument("--config", metavar="FILE", help="TOML config: instruments, profile, accounts and keys")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="listen port; 0 = a free port (default 8080)")
    serve.add_argument("--clock", choices=("manual", "realtime"), default="manual",
                       help="manual: only the admin API moves time and prices; realtime: a live market")
    serve.add_argument("--speed", type=_positive_float, default=1.0, help="realtime: simulated seconds per wall second")
    serve.add_argument("--journal", metavar="DIR", help="journal directory (default ./exchange-sim-gateway)")
    serve.add_argument("--restore", action="store_true", help="restart from the snapshot + journal in --journal")
    serve.add_argument("--sync", choices=("batch", "os"), default="batch",
                       help="batch: answer once the batch is fsynced (default; survives a power loss); os: answer "
                            "once written to the OS, fsync every 0.1 s (survives a gateway crash)")
    serve.add_argument("--ready-file", metavar="PATH", help="write the ready JSON (urls, admin token, keys) here")
    serve.add_argument("--admin-token", metavar="TOKEN", help="admin API token (default: generated)")
    serve.add_argument("--seed", type=_seed, default=1, help="realtime: seed of the price path (default 1)")
    serve.add_argument("--listen-key-ttl", type=_positive_float, default=3600.0, metavar="SECONDS",
                       help="lifetime of a user-stream listenKey without keepalive (default 3600, as Binance)")


def _research_parsers(sub) -> None:
    study = sub.add_parser("study", help="run a study (margin-modes): every world and seed, summaries, report")
    study.add_argument("name", metavar="STUDY", help="the study: margin-modes")
    study.add_argument("--scenario", metavar="FILE", help="scenario TOML (default: the embedded margin-modes)")
    study.add_argument("--seeds", type=_positive_int, help="number of seeds (default: the scenario's)")
    study.add_argument("--out", metavar="DIR", help="output directory (default runs/<STUDY>)")
    study.add_argument("--workers", type=_positive_int, help="worker processes (default: the CPUs, at most 4)")
    study.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario key (repeatable)")
    study.add_argument("--no-report", action="store_true", help="skip report.html")
    rep = sub.add_parser("report", help="rebuild a study's summaries and report.html from its Parquet files")
    rep.add_argument("out", metavar="OUT")
    sweep = sub.add_parser("sweep", help="run a grid of scenario parameters and seeds on Dask")
    sweep.add_argument("grid", metavar="GRID.toml")
    sweep.add_argument("--out", metavar="DIR", help="output directory (default runs/sweep-<GRID>)")
    sweep.add_argument("--cluster", default="local", metavar="local|tcp://HOST:PORT",
                       help="a local Dask cluster (default) or a running scheduler's address")
    sweep.add_argument("--workers", type=_positive_int, help="local cluster workers (default: the CPUs, at most 4)")
    scen = sub.add_parser("scenario", help="print the default scenario, or check a scenario file")
    scen.add_argument("path", nargs="?", metavar="FILE")
    scen.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario key (repeatable)")


def _research(args) -> int:
    from .sim import console

    if args.command == "study":
        return console.study(args.name, scenario_path=args.scenario, out=args.out, seeds=args.seeds,
                             workers=args.workers, overrides=console.parse_set(args.set), report=not args.no_report)
    if args.command == "report":
        return console.report(args.out)
    if args.command == "sweep":
        return console.sweep(args.grid, out=args.out, cluster=args.cluster, workers=args.workers)
    return console.scenario(args.path, console.parse_set(args.set))


def _error(message: str, code: int) -> int:
    sys.stdout.flush()
    print(f"exchange-sim: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _snapshot_error():
    try:
        from .persistence.snapshot import SnapshotError
    except ImportError:
        return ()
    return SnapshotError


def _demo(n: int, seed: int, journal_path: str | None, fsync=DEMO_FSYNC) -> int:
    instrument, rows = standard_workload(n, seed)
    commands = commands_from_rows(rows, instrument.symbol)
    exchange = Exchange([instrument], journal=journal_path, fsync=fsync)  # journal: None or a new file
    print(f"exchange-sim demo: {n:,} seeded commands (seed {seed}) on {instrument.symbol}, "
          f"implementation: {IMPLEMENTATION}")
    try:
        same = _demo_run(exchange, instrument, rows, commands, n, journal_path and f"journal fsync {fsync}")
    finally:
        exchange.close()
    _crash_demo()
    if journal_path:
        print(f"\njournal: {exchange.sequence:,} commands (fsync {fsync}) written to {journal_path}")
    return EXIT_OK if same else EXIT_CHECK_FAILED


def _demo_run(exchange: Exchange, instrument, rows, commands: list, n: int, journaled: str | None) -> bool:
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
    label = f"Exchange.apply (events as records{', ' + journaled if journaled else ''}):"
    print(f"  {label:36} {n / exchange_seconds:>14,.0f} commands/s")
    print(f"  MatchingEngine.run_batch ({IMPLEMENTATION}):  {n / batch_seconds:>14,.0f} commands/s")
    same = batch_volume == volume_lots and batch.canonical_state() == book.canonical_state()
    print(f"  batch path agrees with the exchange path (volume {volume_lots:,} lots, same book): {same}")
    print(f"\nstate hash {exchange.state_hash()}")
    return same


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
    print(f"  money conserved exactly and open interest balanced (rules §9); fund balance "
          f"{money(exchange.insurance_balance(CRASH_SYMBOL))} USDT")


def _replay(path: str, snapshot: str | None = None) -> int:
    _, report = recover(path, snapshot)
    for line in report.lines():
        print(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
