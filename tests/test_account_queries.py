"""The light account queries (equity, has_position, position_lots): values written out by hand from the ledger's
fields, and the same as the heavier queries they replace in the recorder (margin balances, position views)."""
import dataclasses

import pytest

from exchange import Deposit, InputError, MarginMode, PlaceOrder, SetMarginMode, SetMarkPrice, Side
from exchange.enums import PositionSide
from exchange.spec import Instrument
from tests.checked import CheckedExchange
from tests.conftest import COMPILED

K = 10**6  # units per tick·lot of these instruments
A, B = "AAAUSDT", "BBBUSDT"
USDT = 10**8
IMPLEMENTATIONS = ["python"] + (["cython"] if COMPILED else [])


def instrument(symbol: str) -> Instrument:
    return Instrument.linear(symbol, tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000",
                             max_price="100000", min_notional="0", maker_fee="0.0002", taker_fee="0.0005")


@pytest.fixture(params=IMPLEMENTATIONS)
def ex(request):
    ex = CheckedExchange([instrument(A), instrument(B)], implementation=request.param)
    for account in (1, 2):
        ex.apply(Deposit(account, 10_000 * USDT))
    ex.apply(Deposit(9, 10**15))  # the counterparty
    for symbol in (A, B):
        ex.apply(SetMarkPrice(symbol, 10_000))
    ex.apply(SetMarginMode(1, A, MarginMode.ISOLATED))
    # account 1: isolated long 3 A at 100.00, cross short 2 B at 100.00; account 2: cross long 1 A
    for symbol, lots, taker in ((A, 3, 1), (B, -2, 1), (A, 1, 2)):
        ex.apply(PlaceOrder(9, symbol, Side.SELL if lots > 0 else Side.BUY, abs(lots), 10_000))
        ex.apply(PlaceOrder(taker, symbol, Side.BUY if lots > 0 else Side.SELL, abs(lots), 10_000))
    return ex


def by_hand(ex, account_id: int) -> int:
    """wallet + Σ isolated margins + Σ (mark × lots − entry cost) × K, from the ledger's own fields."""
    account = ex.ledger.get(account_id)
    total = account.wallet_units
    for (symbol, _), p in account.positions.items():
        total += (ex.mark_price(symbol) * p.lots - p.entry_cost) * K
        if ex.margin_mode(account_id, symbol) == MarginMode.ISOLATED:
            total += p.isolated_margin_units
    return total


def test_equity_is_wallet_isolated_margins_and_unrealized_pnl(ex):
    assert ex.position_lots(1, A) == 3 and ex.position_lots(1, B) == -2 and ex.position_lots(2, A) == 1
    assert ex.position(1, A).isolated_margin_units > 0  # the isolated part really holds margin
    for marks in ((10_000, 10_000), (9_900, 10_150), (10_123, 9_801)):  # small moves: nobody liquidated
        for symbol, mark in zip((A, B), marks):
            ex.apply(SetMarkPrice(symbol, mark))
        for account_id in (1, 2):
            assert ex.equity(account_id) == by_hand(ex, account_id)
            isolated = sum(ex.margin_balance(account_id, p.symbol, p.position_side)
                           for p in ex.positions(account_id) if p.margin_mode == MarginMode.ISOLATED)
            assert ex.equity(account_id) == ex.margin_balance(account_id) + isolated
    # account 1 at marks (101.23, 98.01): uPnL (10123 − 10000) × 3 + (9801 − 10000) × −2 = 369 + 398 ticks·lots
    account = ex.ledger.get(1)
    assert ex.equity(1) == account.wallet_units + ex.position(1, A).isolated_margin_units + (369 + 398) * K


def test_has_position_and_lots_follow_the_ledger(ex):
    assert ex.has_position(1) and ex.has_position(2) and not ex.has_position(3) and not ex.has_position(9_999)
    assert ex.position_lots(3, A) == 0 and ex.position_lots(1, A, PositionSide.LONG) == 0
    ex.apply(PlaceOrder(9, A, Side.BUY, 1, 10_000))
    ex.apply(PlaceOrder(2, A, Side.SELL, 1, 10_000))  # account 2 closes its one lot
    assert not ex.has_position(2) and ex.position_lots(2, A) == 0 and ex.positions(2) == []
    assert ex.equity(2) == ex.wallet(2) == by_hand(ex, 2)
    assert ex.equity(12_345) == 0  # no such account


def test_position_lots_names_only_listed_symbols(ex):
    with pytest.raises(InputError):
        ex.position_lots(1, "NOPEUSDT")


def test_a_view_without_prices_is_the_view_less_its_prices(ex):
    for account_id, symbol in ((1, A), (1, B), (2, A)):
        full, light = ex.position(account_id, symbol), ex.position(account_id, symbol, prices=False)
        if account_id == 1:  # account 2's long lot is safe at every price: no liquidation price anyway
            assert full.liquidation_price_ticks is not None and full.bankruptcy_price_ticks is not None
        assert light.liquidation_price_ticks is None and light.bankruptcy_price_ticks is None
        assert dataclasses.replace(full, liquidation_price_ticks=None, bankruptcy_price_ticks=None) == light


def test_keep_commands_false_keeps_none_in_memory_and_changes_nothing_else(tmp_path):
    import pickle

    from exchange import Exchange, recover

    commands = [Deposit(1, 10_000 * USDT), SetMarkPrice(A, 10_000), PlaceOrder(1, A, Side.BUY, 2, 10_000),
                PlaceOrder(2, A, Side.SELL, 1, 10_000)]  # the last: account 2 has no money -> rejected
    kept = Exchange([instrument(A)])
    lean = Exchange([instrument(A)], keep_commands=False, journal=tmp_path / "run.journal", fsync="never")
    for command in commands:
        assert kept.apply(command) == lean.apply(command)
    assert kept.journal == commands and lean.journal is None
    assert kept.state_hash() == lean.state_hash() and kept.sequence == lean.sequence == 4
    assert pickle.loads(pickle.dumps(lean)).journal is None
    lean.close()
    again, _ = recover(tmp_path / "run.journal")  # the file still has every command
    assert again.state_hash() == kept.state_hash()
