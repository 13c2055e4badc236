"""Per-account memory sharing (exchange/accounts/ledger.py module docstring, Memory; the risk monitor's compact
per-account bookkeeping): the shared read-only empties, interned settings and position keys, and the
compiled id -> row map, on both implementations. Sharing must never let one account's write show in another,
and must leave the state hash and snapshots as they were."""
import random
from types import MappingProxyType

import pytest

from exchange import _impl
from exchange.accounts.ledger import EMPTY, Ledger, SymbolSettings
from exchange.commands import (
    CancelAll, Deposit, PlaceOrder, SetInitialMarginRate, SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode,
)
from exchange.engine import Exchange
from exchange.enums import MarginMode, OrderType, PositionMode, PositionSide, Side, TimeInForce
from exchange.spec import Instrument
from tests.conftest import COMPILED, make_instrument

SYM, OTHER = "TESTUSDT", "OTHERUSDT"
USDT = 10**8
IMPLEMENTATIONS = ("python", "cython") if COMPILED else ("python",)


def venue(implementation):
    ex = Exchange([make_instrument(), Instrument.linear(OTHER, tick_size="0.01", lot_size="1", min_qty="1",
                                                        max_qty="100000", max_price="100000", min_notional="0")],
                  implementation=implementation)
    for symbol in (SYM, OTHER):
        ex.apply(SetMarkPrice(symbol, 10_000))
    for account in (1, 2, 3, 9):
        ex.apply(Deposit(account, 10_000 * USDT))
    return ex


def bid(ex, account, lots=1, price=9_000, symbol=SYM):
    ex.apply(PlaceOrder(account, symbol, Side.BUY, lots, price, OrderType.LIMIT, TimeInForce.GTC))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_holds_start_shared_and_a_hold_shows_only_in_its_own_account(implementation):
    ex = venue(implementation)
    one, two = ex.ledger.accounts[1], ex.ledger.accounts[2]
    assert one.holds is EMPTY and two.holds is EMPTY and one.settings is EMPTY
    bid(ex, 1)
    assert one.holds and one.holds is not EMPTY and type(one.holds) is dict
    assert two.holds is EMPTY and not EMPTY and len(EMPTY) == 0
    bid(ex, 2, lots=2)
    assert one.holds is not two.holds and one.holds != two.holds
    ex.apply(CancelAll(1, SYM))
    assert one.holds is EMPTY and not EMPTY  # the last hold gone: back to the shared empty
    assert list(two.holds) == [(SYM, PositionSide.BOTH)] and two.holds is not EMPTY
    ex.check_invariants()


def test_the_shared_empty_refuses_every_write():
    """A writer that forgot to take its own mapping fails loudly instead of writing to every account."""
    with pytest.raises(TypeError):
        EMPTY[(SYM, PositionSide.BOTH)] = 1
    assert not hasattr(EMPTY, "pop") and not hasattr(EMPTY, "clear") and not hasattr(EMPTY, "update")
    ledger = Ledger({SYM: 20})
    account = ledger.open(1)
    account.own_holds()[(SYM, PositionSide.BOTH)] = 5
    assert ledger.open(2).holds is EMPTY and not EMPTY and account.holds == {(SYM, PositionSide.BOTH): 5}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_settings_configured_alike_are_shared_and_a_change_shows_only_in_its_own_account(implementation):
    ex = venue(implementation)
    one, two, three = (ex.ledger.accounts[a] for a in (1, 2, 3))
    for account in (1, 2):
        ex.apply(SetMarginMode(account, SYM, MarginMode.ISOLATED))
    assert one.settings is two.settings and isinstance(one.settings, MappingProxyType)
    assert one.settings[SYM] is two.settings[SYM] == SymbolSettings(MarginMode.ISOLATED, 20)
    ex.apply(SetLeverage(1, SYM, 10))
    assert one.settings == {SYM: SymbolSettings(MarginMode.ISOLATED, 10)}
    assert two.settings == {SYM: SymbolSettings(MarginMode.ISOLATED, 20)} and three.settings is EMPTY
    ex.apply(SetLeverage(2, OTHER, 5))  # a second symbol: a mapping of the account's own
    assert two.settings == {SYM: SymbolSettings(MarginMode.ISOLATED, 20), OTHER: SymbolSettings(MarginMode.CROSS, 5)}
    assert one.settings == {SYM: SymbolSettings(MarginMode.ISOLATED, 10)}
    ex.apply(SetInitialMarginRate(3, SYM, 1_500_000))  # a rate: not interned, the account's own
    assert three.settings[SYM].imr_e8 == 1_500_000 and one.settings[SYM].imr_e8 == 0
    assert ex.ledger.settings(two, OTHER).leverage == 5 and ex.ledger.settings(one, OTHER).leverage == 20
    ex.check_invariants()


def test_interned_settings_are_bounded_by_leverages_not_by_rates():
    ledger = Ledger({SYM: 20})
    for account_id, imr_e8 in enumerate(range(1_000_000, 1_000_200)):
        ledger.set_settings(ledger.open(account_id), SYM, MarginMode.CROSS, 10**8 // imr_e8, imr_e8)
    assert not ledger._interned
    for account_id in range(200):
        ledger.set_settings(ledger.open(account_id), SYM, MarginMode.ISOLATED, 1 + account_id % 3)
    assert len(ledger._interned) == 6  # three values, three one-symbol mappings


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_position_keys_are_interned_and_equal_fresh_ones(implementation):
    ex = venue(implementation)
    ex.apply(SetPositionMode(3, PositionMode.HEDGE))
    for account in (1, 2, 3):
        ex.apply(PlaceOrder(9, SYM, Side.SELL, 1, 10_000, OrderType.LIMIT, TimeInForce.GTC))
        ex.apply(PlaceOrder(account, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC,
                            position_side=PositionSide.LONG if account == 3 else PositionSide.BOTH))
    (k1,), (k2,), (k3,) = (list(ex.ledger.accounts[a].positions) for a in (1, 2, 3))
    fresh = (SYM, PositionSide.BOTH)
    assert k1 is k2 is ex.ledger.key(SYM, PositionSide.BOTH) and k1 == fresh and hash(k1) == hash(fresh)
    assert k3 is ex.ledger.key(SYM, PositionSide.LONG) and k3 == (SYM, PositionSide.LONG)
    assert ex.ledger.accounts[1].positions[fresh].lots == 1
    assert ex.ledger.key(SYM, 1) is k1  # an int side finds the same key
    with pytest.raises(KeyError):
        ex.ledger.key("NOPE", PositionSide.BOTH)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_snapshot_round_trip_keeps_the_hash_and_restores_shared_values(implementation):
    ex = venue(implementation)
    ex.apply(SetMarginMode(1, SYM, MarginMode.ISOLATED))
    ex.apply(SetMarginMode(2, SYM, MarginMode.ISOLATED))
    ex.apply(PlaceOrder(9, SYM, Side.SELL, 5, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    for account in (1, 2):
        ex.apply(PlaceOrder(account, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    bid(ex, 3)
    for other in IMPLEMENTATIONS:
        restored = Exchange.restore_bytes(ex.snapshot_bytes(), implementation=other)
        assert restored.state_hash() == ex.state_hash() and restored.snapshot_bytes() == ex.snapshot_bytes()
        accounts = restored.ledger.accounts
        assert accounts[1].holds is EMPTY is accounts[2].holds and accounts[3].holds and accounts[9].holds
        assert accounts[1].settings is accounts[2].settings and accounts[3].settings is EMPTY
        assert next(iter(accounts[1].positions)) is next(iter(accounts[2].positions)) is restored.ledger.key(
            SYM, PositionSide.BOTH)
        restored.check_invariants()


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_the_mirror_reads_slot_keys_from_its_arrays(implementation):
    ex = venue(implementation)
    ex.monitor.index_from_accounts = 1  # keep the mirror from the first account on
    ex.apply(SetPositionMode(2, PositionMode.HEDGE))
    ex.apply(PlaceOrder(9, SYM, Side.SELL, 5, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    ex.apply(PlaceOrder(9, OTHER, Side.BUY, 5, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    ex.apply(PlaceOrder(1, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    ex.apply(PlaceOrder(1, OTHER, Side.SELL, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    ex.apply(PlaceOrder(2, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC, position_side=PositionSide.LONG))
    ex.apply(SetMarkPrice(SYM, 10_001))
    monitor = ex.monitor
    monitor.flush()
    assert monitor.indexed
    for account_id in (1, 2, 9):
        a = monitor.row_of(account_id)
        keys = monitor.keys_of(a)
        assert sorted(keys) == sorted(ex.ledger.accounts[account_id].positions)
        assert all(key is ex.ledger.key(*key) for key in keys)
        assert [monitor.slot_key(j) for j in monitor.portfolio.slots_of(a)] == keys
        assert monitor.written(account_id) == monitor.signature(account_id)
    monitor.check_invariants()


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_compiled_id_map_answers_as_a_dict():
    rows, expected = _impl.sweep_kernel.IdRows(), {}
    rng = random.Random(5)
    ids = list(range(1, 3000)) + [2**62 + i for i in range(5)] + [rng.randrange(2**63) for _ in range(3000)] + [0]
    rng.shuffle(ids)
    for row, account_id in enumerate(ids):
        rows[account_id] = expected[account_id] = row
        if row % 97 == 0:  # a rewrite of an existing id keeps one entry
            rows[account_id] = expected[account_id] = row + 1
    assert len(rows) == len(expected)
    for account_id, row in expected.items():
        assert rows[account_id] == row and rows.get(account_id) == row and account_id in rows
    for missing in (3000, 2**62 + 5, 2**63 - 1, -1):
        assert missing in expected or (rows.get(missing) is None and missing not in rows)
    with pytest.raises(KeyError):
        rows[-5]
    assert rows.nbytes() <= 16 * 4 * len(expected)  # cells filled to at least 1/4 after the last doubling


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_positions_start_shared_and_return_to_the_shared_empty_when_the_last_one_closes(implementation):
    ex = venue(implementation)
    one, two = ex.ledger.accounts[1], ex.ledger.accounts[2]
    assert one.positions is EMPTY is two.positions
    ex.apply(PlaceOrder(9, SYM, Side.SELL, 2, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    ex.apply(PlaceOrder(1, SYM, Side.BUY, 2, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    one_kind = dict if implementation == "python" else _impl.positions_kernel.OnePosition  # (compiled: compact)
    assert type(one.positions) is one_kind and one.positions[(SYM, PositionSide.BOTH)].lots == 2
    assert two.positions is EMPTY and not EMPTY
    ex.apply(PlaceOrder(2, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    ex.apply(PlaceOrder(1, SYM, Side.SELL, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))  # partly closed
    assert one.positions[(SYM, PositionSide.BOTH)].lots == 1 and two.positions[(SYM, PositionSide.BOTH)].lots == 1
    ex.apply(PlaceOrder(2, SYM, Side.SELL, 1, 10_000, OrderType.LIMIT, TimeInForce.GTC))
    ex.apply(PlaceOrder(1, SYM, Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))  # two's closed by one
    assert two.positions is EMPTY and one.positions[(SYM, PositionSide.BOTH)].lots == 2
    assert 2 not in ex.ledger.holders[SYM] and not EMPTY
    ex.check_invariants()
