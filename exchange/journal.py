"""The command journal: msgpack on disk, replay to an identical exchange.

File format (a msgpack stream): first a header map ``{"format": "exchange-journal", "version": 2,
"instruments": [...], "options": {...}}``, then one array per command: ``[TAG, field values in declaration
order]``. Enum fields are stored as their integer values; instruments as maps of their fields (Decimals as
strings); ``options`` are the venue's :class:`~exchange.risk.RiskOptions`. Replaying a journal through
either implementation reproduces the same events and state hash. Version 2 added the options, the account
commands and ``PlaceOrder.position_side``; version 1 journals are refused.
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import BinaryIO, Iterable

import msgpack

from .commands import COMMAND_TYPES
from .risk import RiskOptions
from .spec import FundingParams, Instrument, MarkParams, MarkSource, RiskBracket

FORMAT = "exchange-journal"
VERSION = 2


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


def dump(instruments: Iterable[Instrument], commands: Iterable, stream: BinaryIO,
         options: RiskOptions | None = None) -> int:
    """Write a journal; returns the number of commands written."""
    packer = msgpack.Packer(use_bin_type=True)
    header = {"format": FORMAT, "version": VERSION, "instruments": [instrument_to_dict(i) for i in instruments],
              "options": dataclasses.asdict(options or RiskOptions())}
    stream.write(packer.pack(header))
    count = 0
    for command in commands:
        stream.write(packer.pack(encode_command(command)))
        count += 1
    return count


def load(stream: BinaryIO) -> tuple[list[Instrument], list]:
    """Read a journal written by :func:`dump`: ``(instruments, commands)``. Raises ValueError if it is not one."""
    instruments, commands, _ = load_with_options(stream)
    return instruments, commands


def load_with_options(stream: BinaryIO) -> tuple[list[Instrument], list, RiskOptions]:
    """Read a journal written by :func:`dump`: ``(instruments, commands, options)``."""
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=False)
    header = next(unpacker, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"not an exchange journal (version {VERSION})")
    instruments = [instrument_from_dict(d) for d in header["instruments"]]
    return instruments, [decode_command(row) for row in unpacker], RiskOptions(**header["options"])


def replay(instruments: list[Instrument], commands: Iterable, implementation: str | None = None,
           options: RiskOptions | None = None):
    """A fresh :class:`~exchange.engine.Exchange` with every command applied; returns (exchange, events)."""
    from .engine import Exchange

    exchange = Exchange(instruments, implementation=implementation, options=options)
    events = [event for command in commands for event in exchange.apply(command)]
    return exchange, events


def _plain(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum -> int
    return value
