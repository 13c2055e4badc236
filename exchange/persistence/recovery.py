"""Crash recovery: rebuild an exchange from its durable journal, optionally starting from a snapshot.

:func:`recover` reads the journal (:func:`exchange.persistence.journal.read_file`: a torn tail, the expected result of a
crash, is ignored and reported; corruption raises :class:`~exchange.persistence.journal.JournalCorrupt`), then

- with snapshots: restores the newest usable one (:meth:`Exchange.restore <exchange.engine.Exchange.restore>`)
  and applies the journal's commands from its ``sequence`` on. *Usable*: it restores (its checksum
  verifies), its configuration (instruments, options, profile, liquidation config) equals the journal
  header's, and its sequence is at most the journal's command count. *Newest*: the highest sequence.
- without: replays the whole journal into a fresh exchange built from the header.

:func:`replay` applies commands to a fresh exchange and :func:`replay_file` does it for a journal file
(both were ``exchange.journal``'s; ``exchange.replay`` / ``exchange.replay_file`` are unchanged).

Either way the result equals an uninterrupted run of the journal's commands (the engine is deterministic),
and ``exchange.sequence`` equals the journal's command count. One exception: a journaled command that raised an
internal error (which halts the exchange, :class:`~exchange.engine.ExchangeHalted`) raises again on replay; the
recovered exchange is then the state *before* it, the report names it (``faulted_sequence``, ``fault``), and a
resumed journal is cut before its record. With ``resume=True`` the exchange keeps
journaling into the same file (:meth:`JournalWriter.resume <exchange.persistence.journal.JournalWriter.resume>`
truncates the torn tail first). ``docs/journal.md`` describes the file format and the guarantees.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Iterable

from ..engine import Exchange, ExchangeHalted
from ..liquidation.waterfall import LiquidationConfig
from ..profiles import DEFAULT_PROFILE, RiskOptions, VenueProfile
from ..spec import Instrument
from .snapshot import directory_for
from .journal import (
    JournalError, JournalFile, JournalFileError, JournalWriter, command_frame, exchange_config, read_file,
)


class RecoveryError(JournalError):
    """A snapshot named on its own cannot be used, or the recovered state is inconsistent."""


class SnapshotMissing(RecoveryError, JournalFileError):
    """A snapshot named on its own does not exist or cannot be read."""


@dataclasses.dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover` did. ``skipped``: ``(path, reason)`` of every snapshot not used."""

    journal_path: str
    journal_commands: int
    commands_replayed: int
    valid_length: int
    torn_tail_bytes: int
    torn_tail_offset: int | None
    final_sequence: int
    state_hash: str
    snapshot_path: str | None = None
    snapshot_sequence: int | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    resumed: bool = False
    journal_closed: bool = False
    faulted_sequence: int | None = None  # a journaled command that raised an internal error (then halted)
    fault: str | None = None

    def lines(self) -> list[str]:
        """A human summary, one fact per line."""
        start = (f"from snapshot {self.snapshot_path} (sequence {self.snapshot_sequence:,})"
                 if self.snapshot_path else "from the start of the journal (no snapshot)")
        tail = (f" (torn tail of {self.torn_tail_bytes:,} bytes at offset {self.torn_tail_offset:,} ignored)"
                if self.torn_tail_bytes else "")
        out = [f"replayed {self.commands_replayed:,} commands {start}{tail}"]
        if not self.journal_closed:
            out.append("the journal was not closed (its writer crashed or is still running)")
        out += [f"skipped snapshot {path}: {reason}" for path, reason in self.skipped]
        if self.faulted_sequence is not None:
            out.append(f"command #{self.faulted_sequence:,} halted the exchange and is not applied: {self.fault}")
        out.append(f"sequence {self.final_sequence:,}; state hash {self.state_hash}")
        return out


def recover(journal_path, snapshot_path=None, implementation: str | None = None, *, resume: bool = False,
            fsync="always", snapshot_every: int = 0, keep_snapshots: int = 3):
    """Rebuild the exchange journaled at ``journal_path``: ``(exchange, RecoveryReport)``.

    ``snapshot_path``: None (the periodic snapshots in ``<journal>.snapshots/`` when that directory exists,
    else replay the whole journal); one snapshot file (it must be usable, else
    :class:`RecoveryError` / :class:`SnapshotMissing`); or a directory or a list of paths to choose from
    (the newest usable one; the others are reported in ``report.skipped`` and, if none is usable, the whole
    journal is replayed). ``resume``: the returned exchange keeps journaling into ``journal_path`` with the
    ``fsync`` policy and, with ``snapshot_every``, periodic snapshots (close it with ``exchange.close()``).
    Raises :class:`~exchange.persistence.journal.JournalError` subclasses for a missing, unreadable or corrupt journal."""
    contents = read_file(journal_path)
    report = contents.report
    count = report.commands
    exchange, used, used_sequence, skipped = None, None, None, []
    if snapshot_path is None and os.path.isdir(directory_for(journal_path)):
        snapshot_path = directory_for(journal_path)  # the periodic snapshots (Exchange(snapshot_every=N))
    if snapshot_path is not None:
        candidates, strict = _candidates(snapshot_path)
        exchange, used, used_sequence, skipped = _choose_snapshot(candidates, contents, implementation)
        if strict and exchange is None:
            path, reason, missing = skipped[0]
            raise (SnapshotMissing if missing else RecoveryError)(f"snapshot {path}: {reason}")
    start = used_sequence or 0

    def starting_point():
        if used is not None:
            return Exchange.restore(used, implementation=implementation)
        return Exchange(contents.instruments, implementation=implementation, options=contents.options,
                        profile=contents.profile, liquidation=contents.liquidation)

    exchange = exchange or starting_point()
    valid_length, fault, applied = report.valid_length, None, start
    try:
        for command in contents.commands[start:]:
            exchange.apply(command)
            applied += 1
    except ExchangeHalted as exc:
        # The command faulted in the original run too (the engine is deterministic) and halted it there; its
        # changes may be half-applied, so rebuild the state before it and cut the journal before its record.
        fault = (applied + 1, str(exc))
        exchange = starting_point()
        for command in contents.commands[start:applied]:
            exchange.apply(command)
        count = applied
        valid_length = report.header_length + sum(
            len(command_frame(command, number)) for number, command in enumerate(contents.commands[:applied], 1))
    if exchange.sequence != count:
        raise RecoveryError(f"{report.path}: recovered sequence {exchange.sequence} != {count} journaled "
                            f"commands (a journaled command was refused on replay)")
    if resume:
        exchange._journal_writer = JournalWriter.resume(report.path, exchange, fsync, valid_length,
                                                        commands=count)
        exchange.snapshot_every, exchange.keep_snapshots = snapshot_every, keep_snapshots
    result = RecoveryReport(
        journal_path=report.path, journal_commands=count, commands_replayed=count - start,
        valid_length=report.valid_length, torn_tail_bytes=report.torn_tail_bytes,
        torn_tail_offset=report.torn_tail_offset, final_sequence=exchange.sequence,
        state_hash=exchange.state_hash(), snapshot_path=used, snapshot_sequence=used_sequence,
        skipped=tuple((path, reason) for path, reason, _ in skipped), resumed=resume, journal_closed=report.closed,
        faulted_sequence=fault[0] if fault else None, fault=fault[1] if fault else None,
    )
    return exchange, result


def _candidates(snapshot_path) -> tuple[list[str], bool]:
    """The snapshot files to consider, and whether the one named must be used (a single file)."""
    if isinstance(snapshot_path, (str, bytes, os.PathLike)):
        name = os.fsdecode(snapshot_path)
        if not os.path.isdir(name):
            return [name], True
        try:
            entries = sorted(os.listdir(name))
        except OSError as exc:
            raise SnapshotMissing(f"snapshot directory {name}: cannot list: {exc.strerror or exc}") from None
        # a *.tmp file is an atomic write that never reached its rename (a crash in between): not a snapshot,
        # even when its bytes are complete
        return [p for p in (os.path.join(name, e) for e in entries if not e.endswith(".tmp")) if os.path.isfile(p)], False
    return [os.fsdecode(p) for p in snapshot_path], False


def _snapshot_errors() -> tuple:
    try:
        from .snapshot import SnapshotError
    except ImportError:  # the snapshot module is not there: only OS and journal errors can occur
        return (OSError, JournalError)
    return (SnapshotError, OSError, JournalError)


def _choose_snapshot(candidates: Iterable[str], contents: JournalFile, implementation: str | None):
    """Restore each candidate; keep the usable one with the highest sequence.
    Returns ``(exchange or None, path, sequence, [(path, reason, missing)])`` for the others."""
    errors = _snapshot_errors()
    count = contents.report.commands
    config = contents.config()
    best, best_path, best_sequence, skipped = None, None, None, []
    candidates = list(candidates)
    named = {path: _periodic_sequence(path) for path in candidates}
    if candidates and None not in named.values():  # periodic names carry the sequence: newest first, stop early
        candidates.sort(key=named.get, reverse=True)
    for path in candidates:
        if best is not None and named.get(path) is not None and named[path] <= best_sequence:
            skipped.append((path, f"older (sequence {named[path]:,}) than {best_path} (not read)", False))
            continue
        if not os.path.exists(path):
            skipped.append((path, "no such file", True))
            continue
        if not hasattr(Exchange, "restore"):
            skipped.append((path, "this build cannot restore snapshots", False))
            continue
        try:
            restored = Exchange.restore(path, implementation=implementation)
        except IsADirectoryError:
            skipped.append((path, "is a directory", True))
            continue
        except errors as exc:
            missing = isinstance(exc, OSError)
            skipped.append((path, _one_line(exc, missing), missing))
            continue
        sequence = restored.sequence
        if exchange_config(restored) != config:
            reason = "its configuration (instruments, options, profile, liquidation) differs from the journal's"
        elif sequence > count:
            reason = f"its sequence {sequence:,} is ahead of the journal ({count:,} commands)"
        elif best is not None and sequence <= best_sequence:
            reason = f"older (sequence {sequence:,}) than {best_path} (sequence {best_sequence:,})"
        else:
            if best is not None:
                skipped.append((best_path, f"older (sequence {best_sequence:,}) than {path} "
                                           f"(sequence {sequence:,})", False))
            best, best_path, best_sequence = restored, path, sequence
            continue
        skipped.append((path, reason, False))
    return best, best_path, best_sequence, skipped


def _periodic_sequence(path: str) -> int | None:
    """The sequence in a periodic snapshot's name (``<20 digits>.snapshot``, :func:`exchange.persistence.snapshot.write_periodic`),
    None for any other name."""
    name = os.path.basename(path)
    return int(name[:20]) if len(name) == 29 and name.endswith(".snapshot") and name[:20].isdigit() else None


def _one_line(exc: BaseException, os_error: bool) -> str:
    if os_error and isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def replay(instruments: list[Instrument], commands: Iterable, implementation: str | None = None,
           options: RiskOptions | None = None, profile: VenueProfile | str = DEFAULT_PROFILE,
           liquidation: LiquidationConfig | None = None):
    """A fresh :class:`~exchange.engine.Exchange` with every command applied; returns (exchange, events)."""
    exchange = Exchange(instruments, implementation=implementation, options=options, profile=profile,
                        liquidation=liquidation)
    events = [event for command in commands for event in exchange.apply(command)]
    return exchange, events


def replay_file(path, implementation: str | None = None):
    """Read the journal at ``path`` and replay it into a fresh exchange with the journal's profile, options
    and liquidation config: ``(exchange, events, report)`` (``report``: the :class:`ReadReport`)."""
    contents = read_file(path)
    exchange, events = replay(contents.instruments, contents.commands, implementation, contents.options,
                              contents.profile, contents.liquidation)
    return exchange, events, contents.report
