"""The compiled twins read and write the ledger's records through their slots (exchange/accounts/_ledger.pxd),
and read the order commands (PlaceOrder, CancelOrder, AmendOrder, CancelAll) through theirs (exchange/_records.pxd).

- The layout the structs assume: CPython keeps a slotted class's fields in sorted name order, one pointer each
  after the object header, with nothing else in the object; the declared structs follow that order.
- A store through a slot releases the value it replaces (no leak) and keeps the new one alive: the old
  wallet, entry cost and isolated margin of a position the compiled clearing rewrote are freed, the new ones
  are the reference's.
- The slot reads see what Python code wrote: after writes through the normal attributes, the compiled
  available balance and part states equal the reference's.
"""
import ctypes
import sys

import pytest

from exchange import _impl
from exchange.accounts.ledger import Account, Ledger, Position, SymbolSettings
from exchange.clearing.fills import clear_fill
from exchange.commands import AmendOrder, CancelAll, CancelOrder, PlaceOrder
from exchange.enums import MarginMode, OrderType, PositionSide, Side, STPMode, TimeInForce, WorkingType
from tests.conftest import COMPILED, make_instrument

INST = make_instrument()
BOTH = PositionSide.BOTH


class Tracked(int):
    """An int of its own (never a cached small int), whose references can be counted."""


def _records():
    account = Account(7)
    account.wallet_units, account.holds, account.warned = 10**20, {}, set()
    place = PlaceOrder(5, "BTCUSDT", Side.SELL, 12, 34_567, OrderType.STOP, TimeInForce.IOC, STPMode.EXPIRE_MAKER,
                       True, False, 34_000, WorkingType.CONTRACT_PRICE, 0, 0, 10**18, PositionSide.SHORT)
    return [account, Position(3, 30_000, 10**19), SymbolSettings(MarginMode.ISOLATED, 25, 4_000_000), place,
            CancelOrder(9, "ETHUSDT", 77), AmendOrder(4, "ETHUSDT", 78, 1_234, 10**17), CancelAll(6, "BTCUSDT")]


@pytest.mark.parametrize("record", _records(), ids=lambda r: type(r).__name__)
def test_slots_sit_in_sorted_name_order_one_pointer_each_after_the_header(record):
    """What the structs of exchange/accounts/_ledger.pxd and exchange/_records.pxd declare, read back from the
    objects' memory."""
    cls = type(record)
    names = sorted(cls.__slots__)
    header, pointer = object.__basicsize__, ctypes.sizeof(ctypes.c_void_p)
    assert cls.__basicsize__ == header + pointer * len(names)
    held = [ctypes.c_void_p.from_address(id(record) + header + pointer * i).value for i in range(len(names))]
    assert held == [id(getattr(record, name)) for name in names]


def _ledger_with_isolated_long():
    ledger = Ledger({INST.symbol: 20})
    account = ledger.open(1)
    account.wallet_units = 10**15
    ledger.deposits_units += 10**15
    ledger.set_settings(account, INST.symbol, MarginMode.ISOLATED, 10)
    return ledger, account


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_stores_through_slots_release_the_values_they_replace():
    twins = [_ledger_with_isolated_long() for _ in range(2)]
    for clear, (ledger, account) in zip((clear_fill, _impl.fills_kernel.clear_fill), twins):
        clear(ledger, INST, account, BOTH, True, 10_000, 7, 3)
        position = account.positions[(INST.symbol, BOTH)]
        old = [Tracked(account.wallet_units), Tracked(position.entry_cost), Tracked(position.isolated_margin_units)]
        account.wallet_units, position.entry_cost, position.isolated_margin_units = old
        held = [sys.getrefcount(value) for value in old]  # ours + the slot's (+ the call's argument)
        clear(ledger, INST, account, BOTH, False, 10_100, 7, 5)  # the close: all three rewritten
        assert [sys.getrefcount(value) for value in old] == [n - 1 for n in held], clear
        new = [account.wallet_units, position.entry_cost, position.isolated_margin_units]
        assert all(type(value) is int for value in new) and new[1:] == [0, 0]
    (reference, a), (compiled, b) = twins
    assert compiled.canonical_state() == reference.canonical_state()


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_slot_reads_see_what_python_code_wrote():
    from exchange import Deposit, Exchange, SetMarkPrice

    exchanges = [Exchange([INST], implementation=impl) for impl in ("python", "cython")]
    for ex in exchanges:
        for account_id in (1, 2):
            ex.apply(Deposit(account_id, 10**12))
        ex.apply(SetMarkPrice(INST.symbol, 10_000))
        ex.apply(PlaceOrder(1, INST.symbol, Side.SELL, 5, 10_000))
        ex.apply(PlaceOrder(2, INST.symbol, Side.BUY, 5, 10_000))
        account = ex.ledger.accounts[2]
        account.wallet_units = account.wallet_units - 123_456  # a write through the attribute
        account.positions[(INST.symbol, BOTH)].entry_cost += 7
    reference, compiled = (ex.ledger.accounts[2] for ex in exchanges)
    assert compiled.wallet_units == reference.wallet_units
    assert exchanges[1].risk.available(compiled) == exchanges[0].risk.available(reference)
    assert exchanges[1].risk.part_states(compiled) == exchanges[0].risk.part_states(reference)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_a_missing_account_is_an_error_not_a_read_through_none():
    """Typed as a struct, None would be read at an offset: each entry point checks its type first (the reference
    raises AttributeError there; the compiled twins TypeError)."""
    from exchange import Exchange

    ex = Exchange([INST], implementation="cython")
    kernel = ex.risk.kernel
    calls = [lambda: kernel.part_states(None), lambda: kernel.margin_calls(None),
             lambda: kernel.part_state(None, "", BOTH), lambda: kernel.store_holds(None, INST.symbol),
             lambda: _impl.fills_kernel.clear_fill(ex.ledger, INST, None, BOTH, True, 100, 1, 0)]
    for call in calls:
        with pytest.raises(TypeError, match="NoneType"):
            call()
    assert ex.risk.available(None) == 0  # the one query that answers for no account, as the reference does
