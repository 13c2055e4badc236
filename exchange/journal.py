"""The command journal: msgpack on disk, replay to an identical exchange.

File format (a msgpack stream): first a header map ``{"format": "exchange-journal", "version": 1,
"instruments": [...], "options": {...}, "profile": {...}}``, then one array per command: ``[TAG, field values
in declaration order]``. Enum fields are stored as their integer values; instruments as maps of their fields
(Decimals as strings); ``options`` are the exchange's :class:`~exchange.risk.RiskOptions`; ``profile`` is
the :class:`~exchange.profiles.VenueProfile` (its rules decide brackets, funding intervals and caps, ...).
Replaying a journal through either implementation reproduces the same events and state hash.
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal
from enum import IntEnum
from typing import BinaryIO, Iterable, NamedTuple

import msgpack

from .commands import COMMAND_TYPES
from .profiles import DEFAULT_PROFILE, VenueProfile
from .risk import RiskOptions
from .spec import FundingParams, Instrument, MarkParams, MarkSource, RiskBracket

FORMAT = "exchange-journal"
VERSION = 1


class Journal(NamedTuple):
    """What a journal file holds: everything :func:`replay` needs."""

    instruments: list[Instrument]
    commands: list
    options: RiskOptions
    profile: VenueProfile


def encode_command(command) -> list:
    """A command record -> ``[TAG, *fields]`` of plain ints / bools / strs."""
    return [command.TAG, *(_plain(getattr(command, f.name)) for f in dataclasses.fields(command))]


def decode_command(row: list):
    """Inverse of :func:`encode_command`. Raises ValueError for an unknown tag or wrong arity."""
    tag, *values = row
    cls = COMMAND_TYPES.get(tag)
    if cls is None:
        raise ValueError(f"unknown command tag {tag}")
    fields = dataclasses.fields(cls)
    if len(values) != len(fields):
        raise ValueError(f"{cls.__name__} expects {len(fields)} fields, got {len(values)}")
    return cls(**{field.name: value for field, value in zip(fields, values)})


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
    return data


def profile_from_dict(data: dict) -> VenueProfile:
    values = dict(data, risk=RiskOptions(**data["risk"]))
    for f in dataclasses.fields(VenueProfile):
        if isinstance(f.default, IntEnum):
            values[f.name] = type(f.default)(values[f.name])
    return VenueProfile(**values)


def dump(instruments: Iterable[Instrument], commands: Iterable, stream: BinaryIO,
         options: RiskOptions | None = None, profile: VenueProfile = DEFAULT_PROFILE) -> int:
    """Write a journal; returns the number of commands written. ``options`` default to the profile's."""
    packer = msgpack.Packer(use_bin_type=True)
    header = {"format": FORMAT, "version": VERSION, "instruments": [instrument_to_dict(i) for i in instruments],
              "options": dataclasses.asdict(options or profile.risk), "profile": profile_to_dict(profile)}
    stream.write(packer.pack(header))
    count = 0
    for command in commands:
        stream.write(packer.pack(encode_command(command)))
        count += 1
    return count


def load(stream: BinaryIO) -> tuple[list[Instrument], list]:
    """Read a journal written by :func:`dump`: ``(instruments, commands)``. Raises ValueError if it is not one."""
    contents = read(stream)
    return contents.instruments, contents.commands


def read(stream: BinaryIO) -> Journal:
    """Read a journal written by :func:`dump`, with its options and profile. Raises ValueError otherwise."""
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=False)
    header = next(unpacker, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"not an exchange journal (version {VERSION})")
    instruments = [instrument_from_dict(d) for d in header["instruments"]]
    commands = [decode_command(row) for row in unpacker]
    return Journal(instruments, commands, RiskOptions(**header["options"]), profile_from_dict(header["profile"]))


def replay(instruments: list[Instrument], commands: Iterable, implementation: str | None = None,
           options: RiskOptions | None = None, profile: VenueProfile | str = DEFAULT_PROFILE):
    """A fresh :class:`~exchange.engine.Exchange` with every command applied; returns (exchange, events)."""
    from .engine import Exchange

    exchange = Exchange(instruments, implementation=implementation, options=options, profile=profile)
    events = [event for command in commands for event in exchange.apply(command)]
    return exchange, events


def _plain(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum -> int
    return value
