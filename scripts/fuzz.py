#!/usr/bin/env python
"""The long run of the boundary fuzzer (tests/test_fuzz_boundary.py runs 200,000 commands per CI session).

    python scripts/fuzz.py --commands 2000000 --seed 1 --profile all

Splits ``--commands`` into runs of ``--per-run`` commands (fresh exchanges each), cycling through the profiles,
one and two symbols, and an unlimited / a small insurance fund (the small one makes ADL happen). Each run is
``tests.streams.FuzzRun``: ``tests.streams.fuzz_cases`` (about 80 % valid commands, the rest malformed or
certainly refused) applied to both implementations side by side (only the active one under
EXCHANGE_PUREPYTHON=1), checking after every command: no exception, identical events and state hashes, a
rejected command leaves the hash unchanged, a malformed one is exactly one Rejected naming its field and is not
journaled; the invariants after each of the first ``--dense`` commands of a run and then every ``--every``-th;
at the end of a run the journal replays to the same state hash.

Prints progress and a summary (commands, cases, rejects by code, liquidations, ADL fills, takeovers, funding
settlements, elapsed). Exits 1 at the first failure, printing the run's seed, the command's index, the command,
and ``--run SPEC`` to repeat exactly that run (``--keep-going`` goes on with the next run and lists every
failure at the end).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exchange import FundLimits, RejectCode  # noqa: E402
from exchange import _impl  # noqa: E402
from exchange.profiles import PROFILES  # noqa: E402
from tests.streams import FIELD, ODD, REFUSED, VALID, FuzzFailure, FuzzRun  # noqa: E402

SYMBOL_SETS = {1: ("TESTUSDT",), 2: ("TESTUSDT", "XYZUSDT")}
SMALL_FUND = FundLimits(max_position_lots=2)


def plan(args) -> list[tuple[int, str, int, bool, int]]:
    """The runs: ``(seed, profile, number of symbols, small fund, commands)``."""
    if args.run:
        return [parse_spec(spec) for spec in args.run]
    profiles = list(PROFILES) if args.profile == "all" else args.profile.split(",")
    for name in profiles:
        if name not in PROFILES:
            raise SystemExit(f"unknown profile {name!r} (one of {', '.join(PROFILES)} or all)")
    symbol_counts = (1, 2) if args.symbols == "both" else (int(args.symbols),)
    combos = [(name, k, small) for small in (False, True) for k in symbol_counts for name in profiles]
    runs, left, index = [], args.commands, 0
    while left > 0:
        name, k, small = combos[index % len(combos)]
        n = min(args.per_run, left)
        runs.append((args.seed * 100_000 + index, name, k, small, n))
        left -= n
        index += 1
    return runs


def spec_of(run) -> str:
    seed, name, k, small, n = run
    return f"{seed}:{name}:{k}:{'small' if small else 'unlimited'}:{n}"


def parse_spec(spec: str):
    try:
        seed, name, k, fund, n = spec.split(":")
        assert name in PROFILES and fund in ("small", "unlimited") and int(k) in SYMBOL_SETS
        return int(seed), name, int(k), fund == "small", int(n)
    except (ValueError, AssertionError):
        raise SystemExit(f"--run wants SEED:PROFILE:SYMBOLS(1|2):small|unlimited:COMMANDS, got {spec!r}") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--commands", type=int, default=2_000_000, help="commands in all (default 2,000,000)")
    parser.add_argument("--seed", type=int, default=1, help="master seed; run i uses seed × 100,000 + i")
    parser.add_argument("--profile", default="all", help="a profile name, a comma list, or all (default)")
    parser.add_argument("--symbols", default="both", choices=("1", "2", "both"), help="symbols per run")
    parser.add_argument("--per-run", type=int, default=50_000, help="commands per run (fresh exchanges)")
    parser.add_argument("--implementations", default=None,
                        help="comma list (default: python,cython; python alone under EXCHANGE_PUREPYTHON=1)")
    parser.add_argument("--bad-share", type=float, default=0.2, help="share of malformed / refused commands")
    parser.add_argument("--dense", type=int, default=2_000, help="invariants after each of a run's first N")
    parser.add_argument("--every", type=int, default=10, help="then after every N-th command")
    parser.add_argument("--no-replay", action="store_true", help="skip the journal replay at the end of a run")
    parser.add_argument("--keep-going", action="store_true", help="after a failure go on with the next run")
    parser.add_argument("--run", action="append", metavar="SPEC",
                        help="repeat one run: SEED:PROFILE:SYMBOLS:small|unlimited:COMMANDS (repeatable)")
    args = parser.parse_args(argv)
    implementations = tuple(args.implementations.split(",")) if args.implementations else (
        ("python", "cython") if _impl.core is not None else ("python",))
    runs = plan(args)
    total = sum(run[4] for run in runs)
    print(f"fuzz: {total:,} commands in {len(runs)} runs on {' + '.join(implementations)} "
          f"(seed {args.seed}, bad share {args.bad_share:.0%})", flush=True)

    counts, rejects, failures = Counter(), Counter(), []
    started = time.perf_counter()
    done = 0
    for number, run in enumerate(runs, 1):
        seed, name, k, small, n = run
        fuzz = FuzzRun(seed, n, name, SYMBOL_SETS[k], implementations=implementations, dense=args.dense,
                       every=args.every, fund_limits=SMALL_FUND if small else None, bad_share=args.bad_share)

        def progress(index, number=number, fuzz=fuzz):
            if index == 0:
                return
            elapsed = time.perf_counter() - started
            finished = done + index
            rate = finished / elapsed
            print(f"  run {number}/{len(runs)} {fuzz.describe()}: {index:,}/{fuzz.n:,}; total {finished:,}/{total:,} "
                  f"({finished / total:.1%}), {rate:,.0f} cmd/s, ETA {(total - finished) / rate / 60:.1f} min",
                  flush=True)

        failed = False
        try:
            fuzz.run(progress)
            if not args.no_replay:
                fuzz.check_replay(implementations[-1])
        except FuzzFailure as failure:
            failed = True
            failures.append((spec_of(run), str(failure)))
            print(f"\nFAILURE in run {number} ({spec_of(run)}):\n{failure}\nrepeat: python scripts/fuzz.py "
                  f"--run {spec_of(run)}", flush=True)
        done += sum(fuzz.counts[kind] for kind in (VALID, FIELD, REFUSED, ODD))
        counts.update(fuzz.counts)
        rejects.update(fuzz.rejects)
        if failed and not args.keep_going:
            break
        print(f"run {number}/{len(runs)} {spec_of(run)} {'FAILED' if failed else 'done'}: liquidations "
              f"{fuzz.counts['LiquidationStarted']}, ADL fills {fuzz.counts['ADLFill']}, takeovers "
              f"{fuzz.counts['takeover']}, funding settlements {fuzz.counts['FundingSettled']}", flush=True)
    summary(counts, rejects, done, started, failures)
    return 1 if failures else 0


def summary(counts: Counter, rejects: Counter, commands: int, started: float, failures: list) -> None:
    elapsed = time.perf_counter() - started
    print(f"\n== {commands:,} commands in {elapsed / 60:.1f} min ({commands / max(elapsed, 1e-9):,.0f} cmd/s)")
    print(f"cases: valid {counts['valid']:,}, malformed {counts['field']:,}, refused {counts['refused']:,}, "
          f"odd {counts['odd']:,}; invariant checks {counts['invariant checks']:,}")
    print(f"liquidations started {counts['LiquidationStarted']:,}, liquidation fills {counts['LiquidationFill']:,} "
          f"(takeovers {counts['takeover']:,}), ADL fills {counts['ADLFill']:,}, funding settlements "
          f"{counts['FundingSettled']:,}, triggered {counts['OrderTriggered']:,}, fills {counts['Fill']:,}")
    print("rejects by code:")
    for code, count in sorted(rejects.items(), key=lambda item: -item[1]):
        try:
            label = RejectCode(code).name
        except ValueError:
            label = "?"
        print(f"  {code:>6} {label:<36} {count:,}")
    if failures:
        print(f"\n{len(failures)} failure(s):")
        for spec, message in failures:
            print(f"  --run {spec}: {message.splitlines()[0][:300]}")


if __name__ == "__main__":
    sys.exit(main())
