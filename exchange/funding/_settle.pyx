# cython: language_level=3
"""Compiled twin of the funding stage's payments: :func:`exchange.funding.stage.pay`.

Built to ``exchange.funding._settle``; only :mod:`exchange._impl` imports it (``funding_kernel``), and a compiled
:class:`~exchange.funding.stage.Funding` binds :func:`pay`. The same payments, in the same order, with the same
events and the same state: each open position of the symbol, by account id and then key order (one-way: BOTH;
hedge: LONG, SHORT), pays ``ceil(lots × delta / 10⁸)`` (the reference's ``index_payment_units``), in int64 when
the product fits, on Python integers otherwise; the money
moves on the ledger's own records; the events are made in C (``RecordMaker``) and each is taken out of the cycle
collector (``exchange/_records.pxd``: a settlement at a million holders makes millions of them).

Contents
--------
- :func:`pay`  ``(events, touched, Σ paid, Σ received)`` of one settlement. O(holders · log holders): the sort
  of the holders, then O(1) per holder.
"""
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.set cimport PySet_Add
from exchange._records cimport RecordMaker, untrack
from exchange.accounts._ledger cimport Account as AccountRec, Position as PositionRec, check_layout
from exchange.accounts._margin cimport settings_of
from exchange.accounts._positions cimport position_keys, position_of

from exchange.accounts.ledger import EMPTY
from exchange.enums import BalanceReason, MarginMode
from exchange.events import BalanceChanged, FundingPaid, PositionChanged

cdef extern from *:
    """
    static inline int settle_mul_ovf(long long a, long long b, long long *r) { return __builtin_mul_overflow(a, b, r); }
    """
    bint mul_ovf "settle_mul_ovf" (long long a, long long b, long long *r)

check_layout()
cdef object ISOLATED = MarginMode.ISOLATED
cdef object FUNDING = BalanceReason.FUNDING
cdef object EMPTY_POSITIONS = EMPTY
cdef object E8 = 10**8
cdef long long E8_C = 100_000_000
cdef RecordMaker FUNDING_PAID = RecordMaker(FundingPaid), POSITION_CHANGED = RecordMaker(PositionChanged)
cdef RecordMaker BALANCE_CHANGED = RecordMaker(BalanceChanged)


cdef inline object _payment(object lots, object delta, long long delta64, bint delta_fits):
    """``index_payment_units(lots, delta)``: ``ceil(lots × delta / 10⁸)``, in int64 when ``lots × delta`` fits
    (the floor, plus one when it is not exact), else on Python ints. O(1)."""
    cdef int overflow = 0
    cdef long long lots64, product, q
    if delta_fits:
        lots64 = PyLong_AsLongLongAndOverflow(lots, &overflow)
        if not overflow and not mul_ovf(lots64, delta64, &product):
            q = product // E8_C  # (Cython's ``//`` on C integers floors, as Python's: no cdivision here)
            if q * E8_C != product:
                q += 1
            return PyLong_FromLongLong(q)
    return -((-lots * delta) // E8)


cdef inline int _append(list events, event) except -1:
    """Append an event made here, out of the cycle collector at once: kept tracked until the end, the young
    collections would move them to the oldest generation, whose growth runs full collections over every object
    of the process. O(1)."""
    untrack(event)
    events.append(event)
    return 0


def pay(ledger, symbol, delta_e8):
    """Twin of :func:`exchange.funding.stage.pay` (``ledger``: the exchange's ``Ledger``; ``delta_e8``: the
    per-lot index delta, any int)."""
    cdef dict accounts = ledger.accounts, defaults = ledger._defaults, keys = ledger._keys[symbol]
    cdef int overflow = 0
    cdef long long delta64 = PyLong_AsLongLongAndOverflow(delta_e8, &overflow)
    cdef bint delta_fits = not overflow
    cdef list payments = []
    cdef set touched = set()
    cdef AccountRec account
    cdef bint isolated
    cdef PositionRec position
    paid = received = 0
    for account_id in sorted(ledger.holders[symbol]):
        account = <AccountRec?>accounts[account_id]
        margin_mode = settings_of(account, symbol, EMPTY_POSITIONS, defaults).margin_mode
        isolated = margin_mode is ISOLATED or margin_mode == ISOLATED
        for key in position_keys(account.position_mode, keys):
            found = position_of(account.positions, key, EMPTY_POSITIONS)
            if found is None:
                continue
            position = <PositionRec>found
            amount = _payment(position.lots, delta_e8, delta64, delta_fits)
            if not amount:
                continue
            PySet_Add(touched, account_id)
            if amount > 0:
                paid += amount
            else:
                received -= amount
            side = (<tuple>key)[1]
            _append(payments, FUNDING_PAID.make((symbol, account_id, side, position.lots, amount, margin_mode)))
            if isolated:
                position.isolated_margin_units = position.isolated_margin_units - amount
                _append(payments, POSITION_CHANGED.make((symbol, account_id, side, position.lots, position.entry_cost,
                                                         position.isolated_margin_units, 0)))
            else:
                account.wallet_units = account.wallet_units - amount
                _append(payments, BALANCE_CHANGED.make((account_id, -amount, account.wallet_units, FUNDING)))
    return payments, touched, paid, received
