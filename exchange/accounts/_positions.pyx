# cython: language_level=3
"""Compiled storage of an account's positions: the compiled ledger keeps an account with exactly one position
as a :class:`OnePosition` (32 bytes: the key and the position, no cycle-collector header) instead of a dict
holding one entry (~220 bytes), which is most accounts of a large venue. Two or more positions are a dict,
none the shared :data:`~exchange.accounts.ledger.EMPTY`, as under the reference (ledger module docstring,
Memory).

Built to ``exchange.accounts._positions``; only :mod:`exchange._impl` imports it (``positions_kernel``); the
ledger of the compiled implementation stores through :func:`store` / :func:`drop` (``Ledger.store``), and
the compiled clearing path ``cimport``-s them (``_positions.pxd``). Readers see a read-only mapping that
answers as the dict it replaces: the same keys in the same order (a dict that drops to one entry becomes a
``OnePosition``, one that grows becomes a dict in insertion order), so no event or state hash depends on
which it is.

Contents
--------
- :class:`OnePosition`  a read-only mapping of one position key to its Position. O(1) per operation.
- :func:`store`         ``Ledger.store`` of an open position: under its key, growing or shrinking the mapping's
                        kind as needed. O(positions) when a OnePosition becomes a dict, else O(1).
- :func:`drop`          ``Ledger.store`` of an empty position: its key removed. O(1), or O(2) when a dict of two
                        becomes a OnePosition.
"""
cimport cython

from collections.abc import Mapping

from exchange.enums import PositionMode, PositionSide

if (PositionMode.HEDGE, PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT) != (2, 1, 2, 3):
    raise ImportError("exchange/accounts/_positions.pxd: position_keys assumes the enums' values; update it")


@cython.no_gc  # it holds an interned key tuple and a Position (integers): it can be in no reference cycle
@cython.final
cdef class OnePosition:
    """``{key: position}``, read-only (module docstring). The ledger replaces it rather than writing to it."""

    def __init__(self, key, position):
        self.key, self.position = key, position

    def __len__(self):
        return 1

    def __iter__(self):
        return iter((self.key,))

    def __contains__(self, key):
        return key == self.key

    def __getitem__(self, key):
        if key == self.key:
            return self.position
        raise KeyError(key)

    def get(self, key, default=None):
        return self.position if key == self.key else default

    def keys(self):
        return {self.key: None}.keys()

    def items(self):
        return ((self.key, self.position),)

    def values(self):
        return (self.position,)

    def __eq__(self, other):
        if isinstance(other, OnePosition):
            return self.key == (<OnePosition> other).key and self.position == (<OnePosition> other).position
        if isinstance(other, Mapping):
            return len(other) == 1 and self.key in other and other[self.key] == self.position
        return NotImplemented

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # a mapping, like the dict it stands for

    def __repr__(self):
        return f"OnePosition({{{self.key!r}: {self.position!r}}})"

    def __reduce__(self):
        return OnePosition, (self.key, self.position)


Mapping.register(OnePosition)


cdef int store(object account, object key, object position, object empty) except -1:
    """Store the open ``position`` under ``key`` in the account's positions (``empty``: the ledger's EMPTY)."""
    positions = account.positions
    if positions is empty:
        account.positions = OnePosition(key, position)
    elif type(positions) is OnePosition:
        one = <OnePosition> positions
        if one.key == key:
            if one.position is not position:
                account.positions = OnePosition(key, position)
        else:
            account.positions = {one.key: one.position, key: position}
    else:
        positions[key] = position
    return 0


cdef int drop(object account, object key, object empty) except -1:
    """Remove ``key`` from the account's positions, if it is there."""
    positions = account.positions
    if type(positions) is OnePosition:
        if (<OnePosition> positions).key == key:
            account.positions = empty
    elif positions is not empty and key in positions:
        del positions[key]
        if len(positions) == 1:
            (left, position), = positions.items()
            account.positions = OnePosition(left, position)
        elif not positions:
            account.positions = empty
    return 0


def store_position(account, key, position, empty):
    """:func:`store` for Python callers (``Ledger.store`` of the compiled ledger)."""
    store(account, key, position, empty)


def drop_position(account, key, empty):
    """:func:`drop` for Python callers."""
    drop(account, key, empty)
