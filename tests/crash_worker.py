"""The process tests/test_crash_recovery.py kills: applies a seeded command stream to an exchange that
journals durably, and prints ``ack <sequence>`` (flushed) after each ``apply`` returns.

    python tests/crash_worker.py JOURNAL --stream liquidation|random --seed S --n N [--fsync POLICY]
                                 [--resume] [--snapshot-every K --snapshot-dir DIR]

- new journal (default): builds ``Exchange([make_instrument()], journal=JOURNAL, fsync=POLICY)``;
- ``--resume``: :func:`exchange.persistence.recovery.recover` ``(JOURNAL, resume=True)`` and continues the stream after
  the last journaled command (the stream's malformed commands are never journaled: they are skipped when
  counting);
- ``--snapshot-every K``: after every K-th journaled command, ``exchange.snapshot(DIR/snap-<seq>)``, then
  prints ``snapshot <sequence>``.

Prints ``ready <sequence>`` before the first command and ``done <sequence>`` at the end (it closes the
journal then). The implementation is the active one (``EXCHANGE_PUREPYTHON`` from the environment).
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from exchange import Exchange  # noqa: E402
from exchange.boundary import validate  # noqa: E402
from exchange.persistence.recovery import recover  # noqa: E402
from tests.conftest import make_instrument  # noqa: E402
from tests.streams import liquidation_commands, random_commands  # noqa: E402

STREAMS = {"liquidation": liquidation_commands, "random": random_commands}


def stream_after(stream: str, seed: int, n: int, sequence: int):
    """The stream's commands after its ``sequence``-th well-formed (journaled) command."""
    commands = iter(STREAMS[stream](seed, n))
    journaled = 0
    while journaled < sequence:
        if validate.check(next(commands)) is None:
            journaled += 1
    return commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("journal")
    parser.add_argument("--stream", choices=sorted(STREAMS), default="liquidation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--fsync", default="always")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--snapshot-every", type=int, default=0)
    parser.add_argument("--snapshot-dir")
    args = parser.parse_args(argv)

    if args.resume:
        exchange, _ = recover(args.journal, resume=True, fsync=args.fsync)
    else:
        exchange = Exchange([make_instrument()], journal=args.journal, fsync=args.fsync)
    out = sys.stdout
    out.write(f"ready {exchange.sequence}\n")
    out.flush()
    for command in stream_after(args.stream, args.seed, args.n, exchange.sequence):
        exchange.apply(command)
        sequence = exchange.sequence
        out.write(f"ack {sequence}\n")
        out.flush()
        if args.snapshot_every and sequence % args.snapshot_every == 0 and validate.check(command) is None:
            exchange.snapshot(os.path.join(args.snapshot_dir, f"snap-{sequence:08d}"))
            out.write(f"snapshot {sequence}\n")
            out.flush()
    exchange.close()
    out.write(f"done {exchange.sequence}\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
