"""Crash recovery with real processes: a worker (tests/crash_worker.py) applies a seeded stream with the
durable journal on and acknowledges each command after ``apply`` returns; it is killed with SIGKILL at
random moments, then :func:`exchange.persistence.recovery.recover` must give back (a) every acknowledged command (the
recovered sequence is the last acknowledged one, or one more: the command being applied when it died) and
(b) exactly the state of an uninterrupted in-process run after the same number of commands. The worker
restarts from the recovered journal (``--resume``) between kills, so resuming is crash-tested too.

Workers run the active implementation (EXCHANGE_PUREPYTHON is inherited from the environment)."""
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from exchange import Exchange
from exchange.cli import DEMO_DEPOSIT_UNITS, main
from exchange.commands import Deposit, commands_from_rows
from exchange.persistence.journal import read_file
from exchange.persistence.recovery import RecoveryError, SnapshotMissing, recover
from exchange.workload import standard_workload
from tests.conftest import make_instrument
from tests.streams import liquidation_commands, random_commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "crash_worker.py")
STREAMS = {"liquidation": liquidation_commands, "random": random_commands}


class Worker:
    """A crash_worker.py process whose output lines are collected by a thread."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen([sys.executable, WORKER, *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.lines: list[str] = []
        self.seen = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.seen:
                self.lines.append(line.strip())
                self.seen.notify_all()
        with self.seen:
            self.lines.append("<eof>")
            self.seen.notify_all()

    def wait_for(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        with self.seen:
            while True:
                found = next((line for line in self.lines if line.startswith(prefix)), None)
                if found:
                    return found
                if "<eof>" in self.lines:
                    raise AssertionError(f"worker ended before {prefix!r}: {self.proc.stderr.read()}")
                if not self.seen.wait(deadline - time.monotonic()):
                    raise AssertionError(f"no {prefix!r} from the worker in {timeout} s")

    def kill(self) -> int:
        """SIGKILL (if still running); returns the last acknowledged sequence."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        stderr = self.proc.stderr.read()
        assert self.proc.returncode in (-signal.SIGKILL, 0), stderr
        return max(int(line.split()[1]) for line in self.lines if line.split()[0] in ("ready", "ack"))

    @property
    def finished(self) -> bool:
        return any(line.startswith("done") for line in self.lines)

    def numbers(self, kind: str) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith(kind + " ")]


def reference_hashes(stream: str, seed: int, n: int, sequences) -> dict[int, str]:
    """State hash of an uninterrupted in-process run after each of ``sequences`` journaled commands."""
    wanted = set(sequences)
    exchange = Exchange([make_instrument()])
    hashes = {0: exchange.state_hash()} if 0 in wanted else {}
    for command in STREAMS[stream](seed, n):
        if len(hashes) == len(wanted):
            break
        before = exchange.sequence
        exchange.apply(command)
        if exchange.sequence != before and exchange.sequence in wanted:
            hashes[exchange.sequence] = exchange.state_hash()
    assert len(hashes) == len(wanted), "the stream is shorter than a recovered sequence"
    return hashes


@pytest.mark.parametrize("stream, seed, fsync, n, delays", [
    ("liquidation", 21, "always", 20_000, (0.02, 0.4)),
    ("random", 22, "every:200,20ms", 60_000, (0.02, 0.25)),
])
def test_kill_9_at_random_moments_loses_no_acknowledged_command(tmp_path, stream, seed, fsync, n, delays):
    """Regression: a kill during ``exchange-sim demo --journal F`` left no file at all."""
    rng = random.Random(seed)
    journal = tmp_path / "journal"
    recovered: dict[int, str] = {}
    kills = 0
    previous = None
    for round_ in range(4):
        argv = [str(journal), "--stream", stream, "--seed", str(seed), "--n", str(n), "--fsync", fsync]
        worker = Worker(argv + (["--resume"] if round_ else []))
        ready = int(worker.wait_for("ready").split()[1])
        if previous is not None:
            assert ready == previous  # the worker recovered what the parent recovered
        time.sleep(rng.uniform(*delays))
        acked = worker.kill()
        kills += not worker.finished
        assert journal.exists()
        exchange, report = recover(journal)
        sequence = report.final_sequence
        assert acked <= sequence <= acked + 1, f"round {round_}: acknowledged {acked}, recovered {sequence}"
        assert exchange.sequence == sequence and report.journal_commands == sequence
        assert report.commands_replayed == sequence and report.snapshot_path is None
        assert report.journal_closed == worker.finished
        recovered[sequence] = report.state_hash
        previous = sequence
    assert kills >= 3, "the worker finished before most kills: raise n"
    expected = reference_hashes(stream, seed, n, recovered)
    assert recovered == expected


def test_kill_9_during_the_demo_leaves_a_journal_that_replays(tmp_path, capsys):
    """Regression: ``exchange-sim demo --journal F`` only wrote F at the end, so a kill left nothing."""
    journal = tmp_path / "demo.journal"
    n = 60_000
    proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "demo", "--commands", str(n), "--journal",
                             str(journal), "--fsync", "never"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (journal.exists() and journal.stat().st_size > 20_000):  # well into the flow
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the demo wrote no journal"
            time.sleep(0.01)
        time.sleep(random.Random(5).uniform(0.0, 0.1))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    contents = read_file(journal)
    count = contents.report.commands
    assert count > 0 and not contents.report.closed
    assert main(["replay", str(journal)]) == 0
    out = capsys.readouterr().out
    assert f"replayed {count:,} commands" in out and "not closed" in out
    # the same prefix of the demo's commands, in process
    instrument, rows = standard_workload(n, 42)
    accounts = sorted(set(rows["account_id"].tolist()))
    demo_commands = [Deposit(a, DEMO_DEPOSIT_UNITS) for a in accounts] + commands_from_rows(rows, instrument.symbol)
    reference = Exchange([instrument])
    for command in demo_commands[:count]:
        reference.apply(command)
    assert contents.commands == demo_commands[:count]
    assert out.strip().endswith(reference.state_hash())


def test_kill_9_with_snapshots_recovers_from_the_newest_complete_one(tmp_path):
    rng = random.Random(31)
    journal, snapshots = tmp_path / "journal", tmp_path / "snapshots"
    snapshots.mkdir()
    argv = [str(journal), "--stream", "liquidation", "--seed", "31", "--n", "20000", "--fsync", "always",
            "--snapshot-every", "40", "--snapshot-dir", str(snapshots)]
    worker = Worker(argv)
    worker.wait_for("snapshot")
    time.sleep(rng.uniform(0.02, 0.3))
    acked = worker.kill()
    announced = max(worker.numbers("snapshot"))
    exchange, report = recover(journal, snapshots)
    assert acked <= report.final_sequence <= acked + 1
    assert report.snapshot_sequence in (announced, announced + 40)  # the next one may have completed unannounced
    assert report.snapshot_path == str(snapshots / f"snap-{report.snapshot_sequence:08d}")
    assert report.commands_replayed == report.final_sequence - report.snapshot_sequence
    full, full_report = recover(journal)
    expected = reference_hashes("liquidation", 31, 20000, [report.final_sequence, announced])
    assert report.state_hash == full_report.state_hash == expected[report.final_sequence]
    # the one announced, named on its own, gives the same state
    _, single = recover(journal, snapshots / f"snap-{announced:08d}")
    assert single.snapshot_sequence == announced and single.state_hash == report.state_hash

    # resume: keep journaling after a recovery from a snapshot, kill again
    worker = Worker(argv + ["--resume"])
    assert int(worker.wait_for("ready").split()[1]) == report.final_sequence
    time.sleep(rng.uniform(0.05, 0.3))
    acked = worker.kill()
    again, again_report = recover(journal, snapshots)
    assert acked <= again_report.final_sequence <= acked + 1
    expected = reference_hashes("liquidation", 31, 20000, [again_report.final_sequence])
    assert again_report.state_hash == expected[again_report.final_sequence]


def test_snapshot_choice_skips_bad_ones_and_says_why(tmp_path):
    commands = list(liquidation_commands(seed=41, n=900))
    journal, snapshots = tmp_path / "journal", tmp_path / "snapshots"
    snapshots.mkdir()
    exchange = Exchange([make_instrument()], journal=str(journal), fsync="never")
    for i, command in enumerate(commands[:600], 1):
        exchange.apply(command)
        if i in (200, 400):
            exchange.snapshot(str(snapshots / f"s{i}"))
    exchange.close()
    count = exchange.sequence
    ahead = Exchange([make_instrument()])  # a snapshot beyond the journal's end
    for command in commands:
        ahead.apply(command)
    ahead.snapshot(str(snapshots / "s-ahead"))
    other = Exchange([make_instrument()], profile="bybit")  # another configuration
    other.snapshot(str(snapshots / "s-other"))
    (snapshots / "s-garbage").write_bytes(b"not a snapshot")
    newest = snapshots / "s400"
    damaged = bytearray(newest.read_bytes())
    damaged[len(damaged) // 2] ^= 1
    (snapshots / "s400-damaged").write_bytes(bytes(damaged))

    recovered, report = recover(journal, snapshots)
    assert report.snapshot_path == str(newest) and report.commands_replayed == count - report.snapshot_sequence
    assert recovered.state_hash() == exchange.state_hash() and recovered.sequence == count
    reasons = dict(report.skipped)
    assert "ahead of the journal" in reasons[str(snapshots / "s-ahead")]
    assert "configuration" in reasons[str(snapshots / "s-other")]
    assert "older" in reasons[str(snapshots / "s200")]
    assert str(snapshots / "s-garbage") in reasons and str(snapshots / "s400-damaged") in reasons

    os.remove(newest)
    shutil.move(snapshots / "s400-damaged", tmp_path / "damaged")
    recovered, report = recover(journal, [tmp_path / "damaged", snapshots / "s200"])
    assert report.snapshot_path == str(snapshots / "s200") and recovered.state_hash() == exchange.state_hash()
    with pytest.raises(RecoveryError, match="damaged"):
        recover(journal, tmp_path / "damaged")  # named on its own, it must be usable
    with pytest.raises(SnapshotMissing):
        recover(journal, tmp_path / "nope")


def test_recovery_without_the_snapshot_api_or_any_snapshot(tmp_path):
    journal = tmp_path / "journal"
    exchange = Exchange([make_instrument()], journal=str(journal), fsync="never")
    for command in liquidation_commands(seed=42, n=300):
        exchange.apply(command)
    # not closed: as after a crash
    (tmp_path / "no-snapshots").mkdir()
    recovered, report = recover(journal, tmp_path / "no-snapshots")
    exchange.close()
    assert report.snapshot_path is None and report.skipped == () and not report.journal_closed
    assert recovered.state_hash() == report.state_hash == exchange.state_hash()
    assert report.lines()[0] == f"replayed {exchange.sequence:,} commands from the start of the journal (no snapshot)"
    assert re.fullmatch(r"sequence [\d,]+; state hash [0-9a-f]{64}", report.lines()[-1])
