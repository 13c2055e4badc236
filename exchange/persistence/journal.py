"""The command journal: a durable, append-only, checksummed file of every command the exchange applied.

``Exchange(instruments, ..., journal=path, fsync=...)`` writes each well-formed command to the journal
*before* applying it (:class:`JournalWriter`); :func:`read_file` reads a journal back;
:mod:`exchange.persistence.recovery` rebuilds the exchange from it (:func:`~exchange.persistence.recovery.replay_file`,
or :func:`~exchange.persistence.recovery.recover` starting from a snapshot).
The byte format, the fsync policies and what survives a crash are specified in ``docs/journal.md``; in short::

    magic   8 bytes   89 45 58 4A 52 4E 4C 0A  ("\\x89EXJRNL\\n")
    frame 0           the header: a msgpack map (format, version, instruments, options, profile, liquidation)
    frame i (i >= 1)  command i: a msgpack array [TAG, *fields]  (encode_command)
    frame N + 1       the end record [0, N], written by JournalWriter.close(): the journal is *closed*
    a note            [-1, n, data] between command frames (JournalWriter.note): data that belongs with the n
                      commands before it (the gateway's client order ids), made durable by the same sync; not a
                      command. Its payload CRC starts from n + 1, like the frame of the next command.

    frame   = length (u32 LE) | crc32(length bytes) (u32 LE) | crc32(payload, i) (u32 LE) | payload
              (zlib.crc32, i.e. CRC-32/ISO-HDLC; the payload's CRC starts from the frame number i, so a
              frame moved, repeated or dropped fails its check)

Each record is written with one ``os.write`` on an ``O_APPEND`` descriptor, so a killed process leaves at
most one incomplete frame at the end: the *torn tail*, which reading ignores and reports. Any other damage
(a complete frame whose checksum fails, a bad length, an undecodable or malformed record, a bad frame
followed by more data) is *corruption*: :class:`JournalCorrupt`, naming the offset and the record number.

Errors: every problem raises a :class:`JournalError` (a ``ValueError``, as the old in-memory API did):
:class:`JournalFileError` (missing, a directory, unreadable, or an existing journal a writer would
overwrite), :class:`JournalCorrupt` and its subclass :class:`NotAJournal` (empty, another kind of file,
an unsupported version).

The in-memory API of version 1 still works on the new format: :func:`dump` writes a journal to a binary
stream, :func:`read` / :func:`load` read one, :func:`exchange.persistence.recovery.replay` applies commands to a
fresh exchange.
Replaying a journal through either implementation reproduces the same events and state hash.
"""
from __future__ import annotations

import dataclasses
import errno
import operator
import os
import struct
import time
import zlib
from decimal import Decimal
from enum import IntEnum
from typing import BinaryIO, Iterable, NamedTuple

import msgpack

from ..boundary import validate
from ..commands import COMMAND_TYPES
from ..liquidation.insurance import FundLimits
from ..liquidation.waterfall import LEGACY_LIQUIDATION_KEYS, LiquidationConfig
from ..profiles import DEFAULT_PROFILE, DydxLiquidations, RiskOptions, VenueProfile
from ..spec import FundingParams, Instrument, MarkParams, MarkSource, RiskBracket

try:  # advisory lock: one writer per journal file (POSIX only)
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

FORMAT = "exchange-journal"
VERSION = 2
MAGIC = b"\x89EXJRNL\n"
END_TAG = 0  # the end record [0, commands] that close() writes; command tags start at 1
NOTE_TAG = -1  # a note [-1, commands before it, data] (JournalWriter.note); journals without notes read as before
FRAME = struct.Struct("<III")  # payload length, crc32(length bytes), crc32(payload, frame number)
MAX_HEADER_BYTES = 64 << 20
MAX_RECORD_BYTES = 1 << 20
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, RecursionError,
                  msgpack.UnpackException)


# ==== errors ======================================================================================
class JournalError(ValueError):
    """Any journal problem (a ``ValueError``, as the version-1 API raised). The message is one line."""


class JournalFileError(JournalError):
    """The file is missing, a directory or unreadable, or a writer refuses to overwrite it."""


class JournalCorrupt(JournalError):
    """The file's contents are not a valid journal: a bad header, a complete frame with a bad checksum or
    length, an undecodable or malformed record, a bad frame followed by more data. ``offset`` and
    ``record`` (1-based command number; 0 = the header) say where, ``commands`` how many were intact."""

    def __init__(self, message: str, offset: int | None = None, record: int | None = None, commands: int = 0):
        super().__init__(message)
        self.offset, self.record, self.commands = offset, record, commands


class NotAJournal(JournalCorrupt):
    """Empty, another kind of file, or a journal version this build does not read."""


# ==== fsync policies ==============================================================================
@dataclasses.dataclass(frozen=True, slots=True)
class FsyncEvery:
    """Group commit: fsync once ``commands`` records were appended since the last fsync, or (checked when a
    record is appended) once ``ms`` milliseconds passed since it; at least one of the two must be given.
    Between fsyncs a power loss may lose the records not yet synced; a process crash loses none."""

    commands: int | None = None
    ms: float | None = None

    def __post_init__(self):
        if self.commands is None and self.ms is None:
            raise ValueError("FsyncEvery needs commands and/or ms")
        if self.commands is not None and (not isinstance(self.commands, int) or self.commands < 1):
            raise ValueError("FsyncEvery.commands must be an integer >= 1")
        if self.ms is not None and not self.ms > 0:
            raise ValueError("FsyncEvery.ms must be > 0")

    def __str__(self) -> str:
        parts = ([str(self.commands)] if self.commands else []) + ([f"{self.ms:g}ms"] if self.ms else [])
        return "every:" + ",".join(parts)


def parse_fsync(policy) -> str | FsyncEvery:
    """``"always"``, ``"never"``, a :class:`FsyncEvery`, or its string form ``"every:N"``, ``"every:Tms"``,
    ``"every:N,Tms"`` (N commands, T milliseconds) -> ``"always"`` / ``"never"`` / :class:`FsyncEvery`.
    Raises ValueError for anything else."""
    if isinstance(policy, FsyncEvery) or policy in ("always", "never"):
        return policy
    if isinstance(policy, str) and policy.startswith("every:"):
        commands = ms = None
        try:
            for part in policy[len("every:"):].split(","):
                part = part.strip()
                if part.endswith("ms") and ms is None:
                    ms = float(part[:-2])
                elif part.isdigit() and commands is None:
                    commands = int(part)
                else:
                    raise ValueError(part)
            return FsyncEvery(commands, ms)
        except ValueError:
            pass
    raise ValueError(f"bad fsync policy {policy!r}: use always, never, every:N, every:Tms or every:N,Tms")


# ==== records =====================================================================================
_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in COMMAND_TYPES.values()
}


def _tuple_getter(names: tuple[str, ...]):
    """``command -> tuple of its field values`` (attrgetter returns a bare value for a single name)."""
    getter = operator.attrgetter(*names)
    return getter if len(names) > 1 else lambda command: (getter(command),)


_GETTERS = {cls: _tuple_getter(names) for cls, names in _FIELD_NAMES.items()}


def encode_command(command) -> list:
    """A command record -> ``[TAG, *fields]`` of plain ints / bools / strs."""
    names = _FIELD_NAMES.get(type(command)) or tuple(f.name for f in dataclasses.fields(command))
    return [command.TAG, *(_plain(getattr(command, name)) for name in names)]


def decode_command(row: list):
    """Inverse of :func:`encode_command`. Raises ValueError for an unknown tag or wrong arity."""
    if not isinstance(row, (list, tuple)) or not row:
        raise ValueError(f"a command record is a non-empty array, got {type(row).__name__}")
    tag, *values = row
    cls = COMMAND_TYPES.get(tag) if isinstance(tag, int) and not isinstance(tag, bool) else None
    if cls is None:
        raise ValueError(f"unknown command tag {tag!r}")
    names = _FIELD_NAMES[cls]
    if len(values) != len(names):
        raise ValueError(f"{cls.__name__} expects {len(names)} fields, got {len(values)}")
    return cls(*values)


def check_record(command) -> str | None:
    """Why ``command`` could not have been journaled (None if it could): the engine's validation boundary
    (:func:`exchange.boundary.validate.check`), which refuses every malformed command before it is journaled."""
    problem = validate.check(command)
    return None if problem is None else f"{problem[1]} (code {int(problem[0])})"


# ==== configuration <-> plain data ================================================================
def instrument_to_dict(inst: Instrument) -> dict:
    data = {f.name: getattr(inst, f.name) for f in dataclasses.fields(inst)}
    data["tick_size"], data["lot_size"], data["multiplier"] = str(inst.tick_size), str(inst.lot_size), str(inst.multiplier)
    data["brackets"] = [dataclasses.astuple(b) for b in inst.brackets]
    data["funding"] = dataclasses.asdict(inst.funding)
    data["mark"] = {"source": int(inst.mark.source), "basis_window_ns": inst.mark.basis_window_ns}
    return data


def instrument_from_dict(data: dict) -> Instrument:
    data = dict(data)
    for name in ("tick_size", "lot_size", "multiplier"):
        data[name] = Decimal(data[name])
    data["brackets"] = tuple(RiskBracket(*b) for b in data["brackets"])
    data["funding"] = FundingParams(**data["funding"])
    data["mark"] = MarkParams(MarkSource(data["mark"]["source"]), data["mark"]["basis_window_ns"])
    return Instrument(**data)


def profile_to_dict(profile: VenueProfile) -> dict:
    data = {f.name: _plain(getattr(profile, f.name)) for f in dataclasses.fields(profile)}
    data["risk"] = dataclasses.asdict(profile.risk)
    data["dydx"] = dataclasses.asdict(profile.dydx)
    return data


def profile_from_dict(data: dict) -> VenueProfile:
    """Inverse of :func:`profile_to_dict`. A field the header lacks (written before the field existed) keeps
    the dataclass default, which is the behaviour such a journal was recorded with."""
    values = dict(data, risk=RiskOptions(**data["risk"]))
    if "dydx" in values:  # headers written before the dYdX liquidations config have the defaults
        values["dydx"] = DydxLiquidations(**values["dydx"])
    for f in dataclasses.fields(VenueProfile):
        if isinstance(f.default, IntEnum) and f.name in values:
            values[f.name] = type(f.default)(values[f.name])
    if values.get("mark_source") is not None:
        values["mark_source"] = MarkSource(values["mark_source"])
    return VenueProfile(**values)


def liquidation_to_dict(config: LiquidationConfig) -> dict:
    return dataclasses.asdict(config)


def liquidation_from_dict(data: dict) -> LiquidationConfig:
    data = {key: value for key, value in data.items() if key not in LEGACY_LIQUIDATION_KEYS}
    return LiquidationConfig(**dict(data, fund=FundLimits(**data["fund"])))


def header_dict(instruments: Iterable[Instrument], options: RiskOptions | None, profile: VenueProfile,
                liquidation: LiquidationConfig | None) -> dict:
    return {"format": FORMAT, "version": VERSION, "instruments": [instrument_to_dict(i) for i in instruments],
            "options": dataclasses.asdict(options or profile.risk), "profile": profile_to_dict(profile),
            "liquidation": liquidation_to_dict(liquidation or LiquidationConfig())}


def exchange_config(exchange) -> tuple:
    """``(instruments, options, profile, liquidation)`` of an exchange, as a journal header holds them."""
    return (list(exchange.instruments.values()), exchange.options, exchange.profile, exchange.liquidation.config)


# ==== framing =====================================================================================
_packer = msgpack.Packer(use_bin_type=True)


def frame(payload: bytes, number: int) -> bytes:
    """One frame: length, its CRC, the payload's CRC (started from the frame ``number``), the payload."""
    length = len(payload)
    length_bytes = length.to_bytes(4, "little")
    return FRAME.pack(length, zlib.crc32(length_bytes), zlib.crc32(payload, number & 0xFFFFFFFF)) + payload


def end_frame(commands: int) -> bytes:
    """The end record ``[0, commands]`` (frame ``commands + 1``) that a cleanly closed journal ends with."""
    return frame(_packer.pack([END_TAG, commands]), commands + 1)


def header_bytes(instruments, options, profile, liquidation) -> bytes:
    """The magic and the header frame: the first bytes of every journal."""
    payload = msgpack.packb(header_dict(instruments, options, profile, liquidation), use_bin_type=True)
    return MAGIC + frame(payload, 0)


def command_frame(command, number: int) -> bytes:
    """Frame ``number`` (1-based) holding ``command`` (the payload is :func:`encode_command`'s array; msgpack
    writes an IntEnum as its int). Raises JournalError if it cannot be encoded."""
    try:
        getter = _GETTERS.get(type(command))
        payload = _packer.pack([command.TAG, *getter(command)] if getter else encode_command(command))
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise JournalError(f"cannot journal {command!r}: {exc}") from None
    if len(payload) > MAX_RECORD_BYTES:
        raise JournalError(f"cannot journal {type(command).__name__}: {len(payload)} bytes > {MAX_RECORD_BYTES}")
    return frame(payload, number)


# ==== reading =====================================================================================
@dataclasses.dataclass(frozen=True, slots=True)
class ReadReport:
    """What reading found. ``valid_length``: bytes up to the end of the last intact command record (where a
    resumed writer appends); ``closed``: the end record of :meth:`JournalWriter.close` follows it (a journal
    whose writer crashed, or is still running, has none); ``torn_tail_bytes`` / ``torn_tail_offset``: the
    incomplete last frame or trailing zeros ignored (0 / None if none)."""

    path: str
    commands: int
    valid_length: int
    file_size: int
    header_length: int
    torn_tail_bytes: int = 0
    torn_tail_offset: int | None = None
    closed: bool = False

    @property
    def torn_tail(self) -> bool:
        return self.torn_tail_bytes > 0

    def summary(self) -> str:
        if self.torn_tail:
            return (f"recovered {self.commands:,} commands; torn tail of {self.torn_tail_bytes:,} bytes at offset "
                    f"{self.torn_tail_offset:,} ignored")
        return f"read {self.commands:,} commands" + ("" if self.closed else " (the journal was not closed)")


class Journal(NamedTuple):
    """The version-1 result of :func:`read`: unpacks as ``(instruments, commands, options, profile)``."""

    instruments: list[Instrument]
    commands: list
    options: RiskOptions
    profile: VenueProfile


class JournalFile(Journal):
    """What a journal holds: everything :func:`~exchange.persistence.recovery.replay` needs (``instruments``, ``commands``, ``options``,
    ``profile``, ``liquidation``) and the :class:`ReadReport` of reading it (``report``). It still unpacks
    as the version-1 4-tuple ``(instruments, commands, options, profile)``."""

    def __new__(cls, instruments, commands, options, profile, liquidation: LiquidationConfig | None = None,
                report: ReadReport | None = None, notes: list | None = None):
        self = super().__new__(cls, instruments, commands, options, profile)
        self.liquidation = liquidation or LiquidationConfig()
        self.report = report
        self.notes = notes or []  # (commands before the note, data), in file order
        return self

    def __repr__(self) -> str:
        return (f"JournalFile({len(self.instruments)} instruments, {len(self.commands)} commands, "
                f"profile {self.profile.name!r}, report={self.report!r})")

    def config(self) -> tuple:
        """``(instruments, options, profile, liquidation)``: what an exchange built from it is configured with."""
        return (list(self.instruments), self.options, self.profile, self.liquidation)




def read_file(path) -> JournalFile:
    """Read the journal at ``path``; stops at the first bad frame (module docstring: torn tail vs
    corruption). Raises :class:`JournalFileError`, :class:`NotAJournal` or :class:`JournalCorrupt`."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read()
    except IsADirectoryError:
        raise JournalFileError(f"{name}: is a directory, not a journal file") from None
    except FileNotFoundError:
        raise JournalFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise JournalFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse(data, name)


def parse(data: bytes, name: str = "<journal>") -> JournalFile:
    """Parse a whole journal held in memory (:func:`read_file` without the file)."""
    size = len(data)
    if size == 0:
        raise NotAJournal(f"{name}: empty file, not an exchange journal", 0, 0)
    if data[:len(MAGIC)] != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(data):
            raise JournalCorrupt(f"{name}: truncated journal header ({size} bytes)", 0, 0)
        raise NotAJournal(f"{name}: not an exchange journal{_legacy_hint(data)}", 0, 0)
    instruments, options, profile, liquidation, pos = _parse_header(data, name)
    commands: list = []
    notes: list = []
    number = 1
    torn_bytes, torn_offset, closed_at = 0, None, None
    crc32, unpack_from, unpackb = zlib.crc32, FRAME.unpack_from, msgpack.unpackb
    while pos < size:
        rest = size - pos
        if rest < FRAME.size or not any(data[pos:pos + FRAME.size]) and not data[pos:].strip(b"\0"):
            torn_bytes, torn_offset = rest, pos  # an incomplete frame header, or trailing zeros
            break
        if closed_at is not None:
            _corrupt(name, pos, number, "data after the end record", commands)
        length, length_crc, payload_crc = unpack_from(data, pos)
        if crc32(data[pos:pos + 4]) != length_crc:
            _corrupt(name, pos, number, "bad frame header (length checksum mismatch)", commands)
        if not 0 < length <= MAX_RECORD_BYTES:
            _corrupt(name, pos, number, f"bad record length {length}", commands)
        end = pos + FRAME.size + length
        if end > size:
            torn_bytes, torn_offset = rest, pos  # the last frame is incomplete
            break
        payload = data[pos + FRAME.size:end]
        if crc32(payload, number & 0xFFFFFFFF) != payload_crc:
            _corrupt(name, pos, number, "checksum mismatch", commands)
        try:
            row = unpackb(payload, raw=False, use_list=True)
            if isinstance(row, list) and row and type(row[0]) is int and row[0] == END_TAG:
                if row != [END_TAG, len(commands)]:
                    raise ValueError(f"end record {row!r} does not match {len(commands)} commands")
                closed_at, pos = pos, end
                continue
            if isinstance(row, list) and row and type(row[0]) is int and row[0] == NOTE_TAG:
                if len(row) != 3 or row[1] != len(commands):
                    raise ValueError(f"note {row[:2]!r} does not follow command {len(commands)}")
                notes.append((row[1], row[2]))
                pos = end
                continue
            command = decode_command(row)
            problem = check_record(command)
        except _DECODE_ERRORS as exc:
            _corrupt(name, pos, number, f"undecodable record ({_one_line(exc)})", commands)
        if problem is not None:
            _corrupt(name, pos, number, f"malformed command ({problem})", commands)
        commands.append(command)
        pos, number = end, number + 1
    valid_length = closed_at if closed_at is not None else size - torn_bytes
    report = ReadReport(name, len(commands), valid_length, size, _header_end(data), torn_bytes, torn_offset,
                        closed_at is not None)
    return JournalFile(instruments, commands, options, profile, liquidation, report, notes)


def _tag(payload: bytes):
    """The tag of a record (its array's first item), or None if it is not one."""
    try:
        row = msgpack.unpackb(payload, raw=False)
    except _DECODE_ERRORS:
        return None
    return row[0] if isinstance(row, list) and row and type(row[0]) is int else None


def _resume_offset(name: str, valid_length: int, commands: int) -> int:
    """Where a writer resumed after command ``commands`` appends: ``valid_length`` when the next command's frame
    (or the end record) starts there, else (a torn tail, or a cut computed from the command frames alone when
    the journal holds notes) the end of that command's frame and of the notes that follow it."""
    with open(name, "rb") as f:
        f.seek(valid_length)
        head = f.read(FRAME.size)
        if len(head) == FRAME.size:
            length, length_crc, payload_crc = FRAME.unpack(head)
            payload = f.read(length) if zlib.crc32(head[:4]) == length_crc and 0 < length <= MAX_RECORD_BYTES else b""
            if payload and len(payload) == length and zlib.crc32(payload, (commands + 1) & 0xFFFFFFFF) == payload_crc:
                if _tag(payload) not in (None, NOTE_TAG):
                    return valid_length
        f.seek(0)
        data = f.read()
    pos, seen = _header_end(data), 0
    while pos + FRAME.size <= len(data):
        length = FRAME.unpack_from(data, pos)[0]
        end = pos + FRAME.size + length
        if not 0 < length <= MAX_RECORD_BYTES or end > len(data):
            break  # the torn tail
        tag = _tag(data[pos + FRAME.size:end])
        if tag is None:
            break
        if tag != NOTE_TAG:
            if seen == commands:
                break
            seen += 1
        pos = end
    return pos


def _parse_header(data: bytes, name: str):
    start = len(MAGIC)
    if len(data) < start + FRAME.size:
        raise JournalCorrupt(f"{name}: truncated journal header ({len(data)} bytes)", start, 0)
    length, length_crc, payload_crc = FRAME.unpack_from(data, start)
    if zlib.crc32(data[start:start + 4]) != length_crc or not 0 < length <= MAX_HEADER_BYTES:
        raise JournalCorrupt(f"{name}: corrupt header at offset {start}: bad frame header", start, 0)
    end = start + FRAME.size + length
    if end > len(data):
        raise JournalCorrupt(f"{name}: truncated journal header ({len(data)} of {end} bytes)", start, 0)
    payload = data[start + FRAME.size:end]
    if zlib.crc32(payload, 0) != payload_crc:
        raise JournalCorrupt(f"{name}: corrupt header at offset {start}: checksum mismatch", start, 0)
    try:
        header = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise NotAJournal(f"{name}: not an exchange journal (header format {header.get('format')!r})"
                              if isinstance(header, dict) else f"{name}: not an exchange journal", start, 0)
        if header.get("version") != VERSION:
            raise NotAJournal(f"{name}: unsupported journal version {header.get('version')!r} "
                              f"(this build reads version {VERSION})", start, 0)
        instruments = [instrument_from_dict(d) for d in header["instruments"]]
        options = RiskOptions(**header["options"])
        profile = profile_from_dict(header["profile"])
        liquidation = liquidation_from_dict(header["liquidation"])
        if not instruments or len({i.symbol for i in instruments}) != len(instruments):
            raise ValueError("no instruments, or duplicate symbols")
    except JournalError:
        raise
    except _DECODE_ERRORS as exc:
        raise JournalCorrupt(f"{name}: corrupt header at offset {start}: {_one_line(exc)}", start, 0) from None
    return instruments, options, profile, liquidation, end


def _header_end(data: bytes) -> int:
    return len(MAGIC) + FRAME.size + FRAME.unpack_from(data, len(MAGIC))[0]


def _corrupt(name: str, offset: int, number: int, what: str, commands: list):
    raise JournalCorrupt(f"{name}: corrupt record {number} at offset {offset}: {what}; the {len(commands):,} "
                         f"commands before it are intact", offset, number, len(commands))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _legacy_hint(data: bytes) -> str:
    """A version-1 journal (a bare msgpack stream, no checksums) is named as such."""
    try:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(data[:1 << 20])
        first = next(unpacker, None)
    except Exception:  # noqa: BLE001 - any garbage: it is simply not a journal
        return ""
    if isinstance(first, dict) and first.get("format") == FORMAT:
        return f" (a version-{first.get('version')} journal without checksums: this build reads version {VERSION})"
    return ""


# ==== writing =====================================================================================
class JournalWriter:
    """Appends command records to a journal file, one ``os.write`` per record on an ``O_APPEND`` descriptor,
    fsyncing as the policy says (``"always"``: after every record, before the command is applied;
    ``"never"``; :class:`FsyncEvery`). Build with :meth:`create` (a new journal) or :meth:`resume` (after
    recovery). ``commands``: records in the file; ``length``: its size in bytes. A write or fsync error
    leaves the writer *failed*: it raises :class:`JournalError` for every later command (recover from the
    file)."""

    def __init__(self, fd: int, path: str, policy, commands: int, length: int):
        self.path = path
        self.policy = policy
        self.commands = commands
        self.length = length
        self._fd: int | None = fd
        self._failed: str | None = None
        self._every = policy.commands if isinstance(policy, FsyncEvery) else None
        self._every_s = policy.ms / 1000 if isinstance(policy, FsyncEvery) and policy.ms else None
        self._unsynced = 0
        self._last_sync = time.monotonic()

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def create(cls, path, exchange, fsync="always") -> "JournalWriter":
        """A new journal at ``path`` for ``exchange`` (which has applied nothing yet): the header (its
        instruments, options, profile and liquidation config) is written to a temporary file, fsynced and
        renamed into place, then the directory is fsynced, so the journal exists complete or not at all.
        Refuses (:class:`JournalFileError`) to overwrite an existing non-empty file."""
        policy = parse_fsync(fsync)
        name = os.fspath(path)
        applied = getattr(exchange, "sequence", 0) or 0
        if applied:
            raise JournalError(f"{name}: the exchange has already applied {applied} commands; a new journal "
                               f"starts with a fresh exchange")
        instruments, options, profile, liquidation = exchange_config(exchange)
        data = header_bytes(instruments, options, profile, liquidation)
        _refuse_existing(name)
        tmp = f"{name}.{os.getpid()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            _publish(tmp, name)
            _fsync_dir(name)
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        except JournalError:
            raise
        except OSError as exc:
            raise JournalFileError(f"{name}: cannot create journal: {exc.strerror or exc}") from None
        finally:
            if os.path.exists(tmp):
                _quiet(os.unlink, tmp)
        try:
            _lock(fd, name)
        except JournalError:
            os.close(fd)
            raise
        return cls(fd, name, policy, 0, len(data))

    @classmethod
    def resume(cls, path, exchange, fsync="always", valid_length: int | None = None, *,
               commands: int | None = None) -> "JournalWriter":
        """Keep appending to the journal at ``path`` after ``exchange`` was recovered from it: what lies
        beyond ``valid_length`` (the end record of a closed journal, a torn tail) is truncated first. Without
        ``valid_length`` and ``commands`` (the :class:`ReadReport`'s) the file is read again and its header
        checked against ``exchange``'s configuration. Raises :class:`JournalError` if ``exchange.sequence``
        differs from the journal's command count."""
        policy = parse_fsync(fsync)
        name = os.fspath(path)
        if valid_length is None or commands is None:
            contents = read_file(name)
            if contents.config() != exchange_config(exchange):
                raise JournalError(f"{name}: the journal's configuration differs from the exchange's")
            if valid_length is not None and valid_length != contents.report.valid_length:
                raise JournalError(f"{name}: valid length {valid_length} given, the file's is "
                                   f"{contents.report.valid_length}")
            valid_length, commands = contents.report.valid_length, contents.report.commands
        applied = getattr(exchange, "sequence", None)
        if applied is not None and applied != commands:
            raise JournalError(f"{name}: the exchange has applied {applied} commands, the journal holds {commands}")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | getattr(os, "O_BINARY", 0))
        except IsADirectoryError:
            raise JournalFileError(f"{name}: is a directory, not a journal file") from None
        except OSError as exc:
            raise JournalFileError(f"{name}: cannot open journal: {exc.strerror or exc}") from None
        try:
            _lock(fd, name)
            size = os.fstat(fd).st_size
            if size < valid_length:
                raise JournalError(f"{name}: file is {size} bytes, shorter than its {valid_length} valid bytes")
            if size > valid_length:  # the end record or a torn tail: appending after it would be corruption
                valid_length = _resume_offset(name, valid_length, commands)
                os.ftruncate(fd, valid_length)
                _datasync(fd)
        except OSError as exc:
            os.close(fd)
            raise JournalFileError(f"{name}: cannot truncate the torn tail: {exc.strerror or exc}") from None
        except JournalError:
            os.close(fd)
            raise
        return cls(fd, name, policy, commands, valid_length)

    # -- appending ---------------------------------------------------------------------------------
    def append(self, command) -> int:
        """Write ``command`` as the next record (and fsync per the policy); returns its number (= the
        exchange's sequence once it is applied). Raises :class:`JournalError` if it cannot be written:
        then the command must not be applied."""
        if self._fd is None:
            raise JournalError(f"{self.path}: journal is closed")
        if self._failed:
            raise JournalError(f"{self.path}: journal failed earlier ({self._failed}); recover from the file")
        number = self.commands + 1
        data = command_frame(command, number)
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._fail(exc, truncate=True)
        self.commands = number
        self.length += len(data)
        if self.policy == "always":
            self.sync()
        elif self._every is not None or self._every_s is not None:
            self._unsynced += 1
            if (self._every is not None and self._unsynced >= self._every
                    or self._every_s is not None and time.monotonic() - self._last_sync >= self._every_s):
                self.sync()
        return number

    def note(self, data) -> None:
        """Append a note: ``data`` (msgpack-able) that belongs with the commands written so far, made durable by
        the same sync as they (the gateway's client order ids: one fsync per batch covers both). Not a command:
        the sequence does not change. :func:`read_file` returns the notes as ``JournalFile.notes``."""
        if self._fd is None:
            raise JournalError(f"{self.path}: journal is closed")
        if self._failed:
            raise JournalError(f"{self.path}: journal failed earlier ({self._failed}); recover from the file")
        try:
            payload = _packer.pack([NOTE_TAG, self.commands, data])
        except (TypeError, ValueError, OverflowError) as exc:
            raise JournalError(f"cannot journal the note: {exc}") from None
        if len(payload) > MAX_RECORD_BYTES:
            raise JournalError(f"cannot journal the note: {len(payload)} bytes > {MAX_RECORD_BYTES}")
        data = frame(payload, self.commands + 1)
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            self._fail(exc, truncate=True)
        self.length += len(data)
        if self.policy == "always":
            self.sync()

    def sync(self) -> None:
        """fsync (fdatasync where available) what was appended so far."""
        if self._fd is None or self._failed:
            return
        try:
            _datasync(self._fd)
        except OSError as exc:
            self._fail(exc, truncate=False)
        self._unsynced = 0
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Write the end record (reading then reports the journal *closed*; :meth:`resume` removes it), sync
        (unless the policy is ``"never"``) and close; idempotent."""
        if self._fd is None:
            return
        try:
            if not self._failed:
                try:
                    _write_all(self._fd, end_frame(self.commands))
                except OSError as exc:
                    self._fail(exc, truncate=True)
                if self.policy != "never":
                    self.sync()
        finally:
            fd, self._fd = self._fd, None
            os.close(fd)  # also releases the lock

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else "failed" if self._failed else "open"
        return f"JournalWriter({self.path!r}, fsync={str(self.policy)!r}, commands={self.commands}, {state})"

    def _fail(self, exc: OSError, truncate: bool):
        self._failed = exc.strerror or str(exc)
        if truncate:  # drop a partial frame so the file stays a valid journal
            _quiet(os.ftruncate, self._fd, self.length)
        raise JournalError(f"{self.path}: cannot write the journal: {self._failed}") from None


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written != len(data):  # only on a full disk and the like; a crash in between leaves a torn tail
        view = memoryview(data)[written:]
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise OSError(errno.EIO, "short write")
            view = view[n:]


def _datasync(fd: int) -> None:
    (getattr(os, "fdatasync", None) or os.fsync)(fd)


def _refuse_existing(name: str) -> None:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise JournalFileError(f"{name}: cannot create journal: {exc.strerror or exc}") from None
    if os.path.isdir(name):
        raise JournalFileError(f"{name}: is a directory")
    if st.st_size > 0:
        raise JournalFileError(f"{name}: file exists and is not empty; refusing to overwrite it")


def _publish(tmp: str, name: str) -> None:
    """Move the finished header file into place without overwriting a non-empty file."""
    try:
        os.link(tmp, name)
    except FileExistsError:
        _refuse_existing(name)  # raises unless it is an empty file (then replacing it is fine)
        os.replace(tmp, name)
    except OSError:  # no hard links on this file system
        _refuse_existing(name)
        os.replace(tmp, name)


def _fsync_dir(name: str) -> None:
    directory = os.path.dirname(os.path.abspath(name))
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _lock(fd: int, name: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise JournalFileError(f"{name}: journal is being written by another process") from None


def _quiet(function, *args) -> None:
    try:
        function(*args)
    except OSError:
        pass


# ==== the version-1 in-memory API, on the new format ==============================================
def dump(instruments: Iterable[Instrument], commands: Iterable, stream: BinaryIO,
         options: RiskOptions | None = None, profile: VenueProfile = DEFAULT_PROFILE,
         liquidation: LiquidationConfig | None = None) -> int:
    """Write a whole journal to a binary stream; returns the number of commands written. ``options``
    default to the profile's, ``liquidation`` to ``LiquidationConfig()``."""
    stream.write(header_bytes(instruments, options or profile.risk, profile, liquidation))
    count = 0
    for count, command in enumerate(commands, 1):
        stream.write(command_frame(command, count))
    stream.write(end_frame(count))
    return count


def read(stream: BinaryIO) -> JournalFile:
    """Read a journal from a binary stream (instruments, commands, options, profile, liquidation config and
    the :class:`ReadReport`). Raises :class:`JournalCorrupt` / :class:`NotAJournal` (``ValueError``\\ s)."""
    name = getattr(stream, "name", None)
    return parse(stream.read(), name if isinstance(name, str) else "<journal>")


def load(stream: BinaryIO) -> tuple[list[Instrument], list]:
    """Read a journal: ``(instruments, commands)``. Raises a ``ValueError`` (:class:`JournalError`) if it
    is not one."""
    contents = read(stream)
    return contents.instruments, contents.commands


def _plain(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum -> int
    return value
