# cython: language_level=3
"""The compiled ledger's compact positions mapping (``exchange/accounts/_positions.pyx``): the declarations other
compiled modules ``cimport`` to read an account's one position without a call, and to store positions as
``Ledger.store`` does."""


cdef class OnePosition:
    cdef readonly object key  # the ledger's interned (symbol, side) tuple
    cdef readonly object position  # its Position


cdef int store(object account, object key, object position, object empty) except -1
cdef int drop(object account, object key, object empty) except -1


cdef inline object position_of(object positions, object key, object empty):
    """``positions.get(key)`` of an account's positions (``empty``: the ledger's shared EMPTY), without a method
    call for the shared empty, a :class:`OnePosition` or a dict. O(1)."""
    if positions is empty:
        return None
    if type(positions) is OnePosition:
        one = <OnePosition>positions
        return one.position if (one.key is key or one.key == key) else None
    if type(positions) is dict:
        return (<dict>positions).get(key)
    return positions.get(key)


cdef inline tuple position_keys(object position_mode, dict sides):
    """``Account.position_keys(symbol)``: the keys an account's ``position_mode`` allows in a symbol, from ``sides``, the
    ledger's interned keys of that symbol by position side (``Ledger._keys[symbol]``): one-way (BOTH,), hedge
    (LONG, SHORT). The enums' values (``exchange/accounts/_positions.pyx`` checks them at import). O(1)."""
    if position_mode == 2:  # PositionMode.HEDGE
        return sides[2], sides[3]  # PositionSide.LONG, PositionSide.SHORT
    return (sides[1],)  # PositionSide.BOTH
