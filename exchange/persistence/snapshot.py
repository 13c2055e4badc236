"""Snapshots: the complete state of an :class:`~exchange.engine.Exchange` in one checksummed file
(``docs/snapshot.md``).

A snapshot holds everything that decides the exchange's future events — not only what
:meth:`~exchange.engine.Exchange.state_hash` covers — and its configuration, so :func:`read` rebuilds an
exchange that, given the same later commands, produces the same events and state hashes as the exchange the
snapshot was taken of (snapshot + journal tail = the uninterrupted run). Either implementation writes the
same bytes for the same state, and a snapshot written by either restores on either.

File layout (integers little-endian, as in the journal)::

    offset  size  field
    0       8     magic  b"\\x89EXSNAP\\n"
    8       4     format version (uint32), FORMAT_VERSION = 1
    12      8     body length n (uint64)
    20      n     body: one msgpack map (layout: docs/snapshot.md)
    20 + n  32    SHA-256 of bytes [0, 20 + n) (magic, version, length and body)

The body is a canonical encoding: maps with a fixed key order, every collection in a defined order (by
symbol, by id, or the engine's own priority order), integers as msgpack integers. Files are written
atomically (a temporary file in the same directory, fsync, ``os.replace``, fsync of the directory).
Anything wrong with a file — missing, unreadable, truncated, corrupt, another format version, or a body
that does not make a consistent exchange (:func:`exchange.invariants.check`) — raises :class:`SnapshotError`
(a ``ValueError``) with a one-line message, never another exception type.

What is not in a snapshot: the in-memory journal (a restored exchange starts with an empty ``journal``; its
``sequence`` continues from the snapshot's), the durable journal writer, and the structures derived from the
state, rebuilt on restore: the risk stage's order sums, the risk monitor's mirror, indexes and liquidatable
parts, the ADL queue's caches, the ledger's holders index. A halted exchange
(:attr:`~exchange.engine.Exchange.halted`) cannot be snapshotted: its state may be half-applied.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import tempfile

import msgpack

from .. import _impl, collector
from .._impl import matching_engine_class
from ..enums import PositionSide
from .journal import instrument_from_dict, instrument_to_dict, liquidation_from_dict, profile_from_dict, profile_to_dict
from ..profiles import RiskOptions

MAGIC = b"\x89EXSNAP\n"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIQ")  # magic, format version, body length
_DIGEST_SIZE = hashlib.sha256().digest_size  # 32
_BODY_KEYS = ("config", "clock", "books", "triggers", "position_sides", "ledger", "prices", "funding",
              "liquidation", "monitor", "settled")
_BODY_KEYS_BEFORE_SETTLEMENT = _BODY_KEYS[:-1]  # snapshots written before SettleSymbol existed (none settled)


class SnapshotError(ValueError):
    """A snapshot cannot be written or read (missing, unreadable, truncated, corrupt, wrong version,
    inconsistent content). The message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# ==== the body ============================================================================================
def state_of(exchange) -> dict:
    """The snapshot body of ``exchange`` (plain msgpack-able values; layout in docs/snapshot.md)."""
    if getattr(exchange, "halted", None) is not None:
        raise SnapshotError(f"cannot snapshot a halted exchange ({exchange.halted})")
    books = []
    for symbol in exchange.instruments:
        book = exchange.book(symbol)
        if book.event_count():
            raise SnapshotError(f"cannot snapshot in the middle of a command ({symbol}: undrained matching events)")
        mark, now, last, orders = book.snapshot_state()
        books.append([symbol, mark, now, last, [list(order) for order in orders]])
    return {
        "config": config_of(exchange),
        "clock": [exchange.now_ns, exchange.next_order_id, exchange.sequence],
        "books": books,
        "triggers": [[symbol, [list(order) for order in exchange._triggers[symbol].snapshot_state()]]
                     for symbol in exchange.instruments],
        "position_sides": [[order_id, int(side)] for order_id, side in sorted(exchange._position_sides.items())],
        "ledger": exchange.ledger.snapshot_state(),
        "prices": exchange.prices.snapshot_state(),
        "funding": exchange.funding.snapshot_state(),
        "liquidation": exchange.liquidation.snapshot_state(),
        "monitor": exchange.monitor.snapshot_state(),
        "settled": [[symbol, price] for symbol, price in sorted(exchange.settled.items())],
    }


def config_of(exchange) -> dict:
    """The configuration an exchange is built from: instruments (by symbol), profile, risk options and
    liquidation config (journal.py's instrument / profile maps)."""
    config = exchange.liquidation.config
    liquidation = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    liquidation["fund"] = dataclasses.asdict(config.fund)
    return {
        "instruments": [instrument_to_dict(exchange.instruments[symbol]) for symbol in exchange.instruments],
        "profile": profile_to_dict(exchange.profile),
        "options": dataclasses.asdict(exchange.options),
        "liquidation": liquidation,
    }


def from_state(body: dict, implementation: str | None, exchange_class):
    """A new ``exchange_class`` (:class:`~exchange.engine.Exchange`, passed in so that this module does not
    import the engine that imports it; ``implementation``: "python", "cython" or None = the active one) holding
    the state of a snapshot body. Raises SnapshotError for a body that is not a consistent
    exchange (and, like ``Exchange``, ValueError / RuntimeError for an unknown or inactive implementation)."""
    _check_implementation(implementation)
    try:
        return _build(body, implementation, exchange_class)
    except SnapshotError:
        raise
    except Exception as exc:  # any malformed content: wrong shapes, types, values, broken invariants
        raise SnapshotError(f"invalid snapshot content: {type(exc).__name__}: {exc}") from exc


def _check_implementation(implementation: str | None) -> None:
    """Misuse, not a bad file: an unknown implementation (ValueError), or "cython" without the compiled core
    (RuntimeError), raised as ``Exchange`` raises them, before any file is read."""
    matching_engine_class(implementation)


def _build(body: dict, implementation: str | None, Exchange):
    from ..invariants import check

    if not isinstance(body, dict) or tuple(body) not in (_BODY_KEYS, _BODY_KEYS_BEFORE_SETTLEMENT):
        raise SnapshotError("invalid snapshot content: unexpected body layout")
    config = body["config"]
    exchange = Exchange([instrument_from_dict(d) for d in config["instruments"]],
                        implementation=implementation or _impl.IMPLEMENTATION,
                        options=RiskOptions(**config["options"]), profile=profile_from_dict(config["profile"]),
                        liquidation=liquidation_from_dict(config["liquidation"]))
    symbols = list(exchange.instruments)
    now_ns, next_order_id, sequence = (int(value) for value in body["clock"])
    if now_ns < 0 or next_order_id < 1 or sequence < 0:
        raise ValueError("negative time or sequence, or an order id sequence below 1")
    exchange.now_ns, exchange.next_order_id, exchange.sequence = now_ns, next_order_id, sequence
    if [entry[0] for entry in body["books"]] != symbols or [entry[0] for entry in body["triggers"]] != symbols:
        raise ValueError("books or trigger books do not match the instruments")
    open_ids: list[int] = []
    for symbol, mark, book_now, last, orders in body["books"]:
        exchange.book(symbol).restore_state(mark, book_now, last, orders)
        open_ids += [int(order[0]) for order in orders]
    for symbol, orders in body["triggers"]:
        exchange._triggers[symbol].restore_state(orders)
        open_ids += [int(order[0]) for order in orders]
    exchange._position_sides = {int(order_id): PositionSide(side) for order_id, side in body["position_sides"]}
    if sorted(open_ids) != sorted(exchange._position_sides) or len(set(open_ids)) != len(open_ids):
        raise ValueError("position sides do not match the open orders (or an order id is open twice)")
    if open_ids and max(open_ids) >= next_order_id:
        raise ValueError("an open order id is not below the next order id")
    exchange.ledger.restore_state(body["ledger"])
    exchange.prices.restore_state(body["prices"])
    exchange.funding.restore_state(body["funding"])
    exchange.liquidation.restore_state(body["liquidation"])
    for symbol, *_, orders in body["books"]:  # derived: the risk stage's order sums, from the books
        book = exchange.book(symbol)
        for order in orders:
            order_id = int(order[0])
            exchange.risk.track_order(symbol, order_id, exchange._position_sides[order_id], book.order(order_id))
    exchange.monitor.restore_state(body["monitor"], {s for s in symbols if exchange.book(s).mark()})
    exchange.settled = {str(symbol): int(price) for symbol, price in body.get("settled", ())}
    if not set(exchange.settled) <= set(symbols):
        raise ValueError("a settled symbol is not an instrument")
    try:
        check(exchange)
    except AssertionError as exc:
        raise SnapshotError(f"snapshot state is inconsistent: {exc}") from exc
    return exchange


# ==== bytes ===============================================================================================
def encode(exchange) -> bytes:
    """The snapshot file's bytes (module docstring: header, msgpack body, SHA-256). (The cycle collector is paused
    while the body is built and packed: :mod:`exchange.collector`.)"""
    with collector.paused():
        body = msgpack.packb(state_of(exchange), use_bin_type=True)
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, len(body)) + body
    return head + hashlib.sha256(head).digest()


def decode_body(data: bytes) -> dict:
    """Check a snapshot's framing and checksum and return its body. Raises SnapshotError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SnapshotError(f"a snapshot is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise SnapshotError("not an exchange snapshot (bad magic)")
    if len(data) < _HEADER.size:
        raise SnapshotError(f"truncated snapshot ({len(data)} bytes, header incomplete)")
    _, version, length = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise SnapshotError(f"unsupported snapshot format version {version} (this build reads {FORMAT_VERSION})")
    expected = _HEADER.size + length + _DIGEST_SIZE
    if len(data) < expected:
        raise SnapshotError(f"truncated snapshot ({len(data)} of {expected} bytes)")
    if len(data) > expected:
        raise SnapshotError(f"corrupt snapshot ({len(data) - expected} unexpected trailing bytes)")
    head, digest = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.sha256(head).digest() != digest:
        raise SnapshotError("corrupt snapshot (SHA-256 checksum mismatch)")
    try:
        return msgpack.unpackb(head[_HEADER.size:], raw=False, strict_map_key=False)
    except Exception as exc:
        raise SnapshotError(f"corrupt snapshot body: {type(exc).__name__}: {exc}") from exc


def decode(data: bytes, implementation: str | None, exchange_class):
    """A new ``exchange_class`` from snapshot bytes (:func:`encode`). Raises SnapshotError. (The cycle collector is
    paused while the body is read and the state built: :mod:`exchange.collector`.)"""
    _check_implementation(implementation)
    with collector.paused():
        return from_state(decode_body(data), implementation, exchange_class)


# ==== files ===============================================================================================
def write(exchange, path) -> None:
    """Write the snapshot of ``exchange`` to ``path`` atomically: a temporary file in the same directory,
    fsync, ``os.replace``, fsync of the directory. Raises SnapshotError (the old file, if any, is intact)."""
    data = encode(exchange)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(directory)
    except OSError as exc:
        raise SnapshotError(f"cannot write snapshot {path}: {exc}") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def read(path, implementation: str | None, exchange_class):
    """A new ``exchange_class`` from the snapshot file at ``path``. Raises SnapshotError."""
    _check_implementation(implementation)
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except (OSError, TypeError, ValueError) as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc}") from exc
    return decode(data, implementation, exchange_class)


def directory_for(journal_path) -> str:
    """Where the automatic snapshots of a journaled exchange go: ``<journal>.snapshots/`` beside the journal."""
    return os.fspath(journal_path) + ".snapshots"


def write_periodic(exchange, directory: str, keep: int) -> str:
    """Write ``<directory>/<sequence, 20 digits>.snapshot`` and delete all but the newest ``keep`` snapshots
    there (names sort by sequence). Returns the path written."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{exchange.sequence:020d}.snapshot")
    write(exchange, path)
    names = sorted(name for name in os.listdir(directory) if name.endswith(".snapshot") and name[:20].isdigit())
    for name in names[:-keep] if keep > 0 else ():
        os.remove(os.path.join(directory, name))
    return path


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ==== pickle ==============================================================================================
def unpickle(data: bytes, implementation: str, journal, exchange_class):
    """``Exchange.__reduce__``'s constructor: restore on the pickled implementation when it is active here,
    else on the active one (both give the same events), with the pickled in-memory journal."""
    if implementation == "cython" and _impl.core is None:
        implementation = None
    exchange = decode(data, implementation, exchange_class)
    exchange.journal = journal  # None when the original kept no commands (keep_commands=False)
    return exchange
