"""Clearing (rules §5): fills -> positions, entry cost, realized PnL with the one rounding rule, fees and
rebates, isolated margin in and out. Instrument: tick 0.01, lot 1, K = 10⁶ units per tick·lot (one lot at
100.00 = 10,000 ticks is 10¹⁰ units = 100 USDT). Expected values are derived by hand."""
import pytest

from exchange.accounts.ledger import Ledger
from exchange.clearing.fills import clear_fill
from exchange.enums import BalanceReason, MarginMode, PositionSide
from exchange.events import BalanceChanged, PositionChanged
from tests.conftest import make_instrument

BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT
INST = make_instrument()
K = INST.k_units  # 10⁶


@pytest.fixture
def ledger():
    return Ledger({INST.symbol: 20})


def fund(ledger, account_id=1, units=10**12):
    account = ledger.open(account_id)
    account.wallet_units += units
    ledger.deposits_units += units
    return account


def fill(ledger, account, buy, price, lots, fee=0, side=BOTH):
    """Clear ``account``'s side of a fill (its events) and the other side on counterparty account 99."""
    events = clear_fill(ledger, INST, account, side, buy, price, lots, fee)
    clear_fill(ledger, INST, ledger.get(99) or fund(ledger, 99), BOTH, not buy, price, lots, 0)
    return events


def conserved(ledger) -> bool:
    held = ledger.fee_pool_units + sum(
        a.wallet_units + sum(p.isolated_margin_units - K * p.entry_cost for p in a.positions.values())
        for a in ledger.accounts.values())
    return held == ledger.deposits_units - ledger.withdrawals_units


def test_open_increase_and_partial_closes_round_the_removed_entry_cost_up(ledger):
    a = fund(ledger)
    for price in (10000, 10001, 10001):
        fill(ledger, a, True, price, 1)
    position = a.positions[(INST.symbol, BOTH)]
    assert (position.lots, position.entry_cost) == (3, 30002)
    # sell 1 at 100.10: removed = ceil(30002 / 3) = 10001 -> realized (10010 − 10001) × K
    events = fill(ledger, a, False, 10010, 1)
    assert events[0] == PositionChanged(INST.symbol, 1, BOTH, 2, 20001, 0, 9 * K)
    # sell 1 more: removed = ceil(20001 / 2) = 10001; the last: removed 10000 exactly (full close)
    assert fill(ledger, a, False, 10010, 1)[0].realized_pnl_units == 9 * K
    assert fill(ledger, a, False, 10010, 1)[0].realized_pnl_units == 10 * K
    # in total exactly (3 × 10010 − 30002) × K: everything settled to the last unit
    assert a.wallet_units == 10**12 + 28 * K
    assert (INST.symbol, BOTH) not in a.positions and conserved(ledger)


def test_a_short_partial_close_also_rounds_toward_plus_infinity_so_less_profit_is_realized(ledger):
    a = fund(ledger)
    for price in (10000, 10001, 10001):
        fill(ledger, a, False, price, 1)
    assert a.positions[(INST.symbol, BOTH)].entry_cost == -30002
    # buy 1 back at 99.90: removed = ceil(−30002 / 3) = ceil(−10000.67) = −10000
    # realized = (−9990 − (−10000)) × K = 10 × K (the exact 10.67 is rounded down)
    (changed, _) = fill(ledger, a, True, 9990, 1)
    assert (changed.lots, changed.entry_cost, changed.realized_pnl_units) == (-2, -20002, 10 * K)
    assert conserved(ledger)


def test_a_fill_through_zero_closes_at_the_fill_price_and_opens_the_rest_there(ledger):
    a = fund(ledger)
    fill(ledger, a, True, 10000, 2)
    (changed, balance) = fill(ledger, a, False, 11000, 5, fee=7)
    # close 2: (2 × 11000 − 20000) × K = 2,000 × K realized; open 3 short at 110.00
    assert changed == PositionChanged(INST.symbol, 1, BOTH, -3, -33000, 0, 2000 * K)
    assert balance == BalanceChanged(1, 2000 * K - 7, a.wallet_units, BalanceReason.TRADE)
    assert conserved(ledger)


def test_fees_go_to_the_pool_and_rebates_come_out_of_it(ledger):
    a, b = fund(ledger, 1), fund(ledger, 2)
    clear_fill(ledger, INST, a, BOTH, True, 10000, 1, 500)
    clear_fill(ledger, INST, b, BOTH, False, 10000, 1, -200)
    assert ledger.fee_pool_units == 300
    assert (a.wallet_units, b.wallet_units) == (10**12 - 500, 10**12 + 200)
    assert conserved(ledger)


def test_hedge_legs_are_separate_positions(ledger):
    a = fund(ledger)
    a.position_mode = 2  # HEDGE
    fill(ledger, a, True, 10000, 2, side=LONG)
    fill(ledger, a, False, 10100, 3, side=SHORT)
    assert a.positions[(INST.symbol, LONG)].lots == 2
    assert a.positions[(INST.symbol, SHORT)].lots == -3
    assert fill(ledger, a, False, 10200, 2, side=LONG)[0].realized_pnl_units == 400 * K  # (2 × 10200 − 20000) K
    assert (INST.symbol, LONG) not in a.positions and conserved(ledger)


def isolated_account(ledger, leverage=10):
    a = fund(ledger)
    ledger.set_settings(a, INST.symbol, MarginMode.ISOLATED, leverage)
    return a


def test_isolated_open_moves_im_and_fee_from_the_wallet_and_close_returns_what_is_left(ledger):
    a = isolated_account(ledger)
    # 10 lots at 100.00 = 10¹¹ units (1,000 USDT); IM at 10x = 10¹⁰; fee 5 × 10⁷
    fill(ledger, a, True, 10000, 10, fee=5 * 10**7)
    position = a.positions[(INST.symbol, BOTH)]
    assert position.isolated_margin_units == 10**10
    assert a.wallet_units == 10**12 - 10**10 - 5 * 10**7
    # partial close 4 at 95.00: realized (4 × 9500 − 40000) K = −2 × 10⁹, fee 10⁷, both in the isolated margin
    fill(ledger, a, False, 9500, 4, fee=10**7)
    assert position.isolated_margin_units == 10**10 - 2 * 10**9 - 10**7
    assert a.wallet_units == 10**12 - 10**10 - 5 * 10**7  # the wallet did not move
    # close the rest at 95.00: −3 × 10⁹ realized, fee 10⁷; what is left returns
    events = fill(ledger, a, False, 9500, 6, fee=10**7)
    left = 10**10 - 2 * 10**9 - 10**7 - 3 * 10**9 - 10**7
    assert events[1] == BalanceChanged(1, left, 10**12 - 10**10 - 5 * 10**7 + left, BalanceReason.TRADE)
    assert (INST.symbol, BOTH) not in a.positions and conserved(ledger)


def test_an_isolated_loss_beyond_its_margin_goes_to_the_insurance_fund_not_the_wallet(ledger):
    a = isolated_account(ledger)
    fill(ledger, a, True, 10000, 10)  # margin 10¹⁰
    wallet = a.wallet_units
    fill(ledger, a, False, 8000, 10)  # loss (80000 − 100000) × K = 2 × 10¹⁰
    assert a.wallet_units == wallet
    assert ledger.insurance_fund_units == -10**10
    assert conserved(ledger)


def test_an_isolated_flip_returns_the_old_margin_then_moves_the_new_one_in(ledger):
    a = isolated_account(ledger, leverage=5)
    fill(ledger, a, True, 10000, 2)  # margin 2 × 10¹⁰ / 5 = 4 × 10⁹
    (changed, balance) = fill(ledger, a, False, 10500, 5, fee=100)
    # close 2: +10⁹ realized, fee 100 -> 5 × 10⁹ − 100 back; open 3 at 105.00: 3.15 × 10¹⁰ / 5 = 6.3 × 10⁹ in
    assert (changed.lots, changed.entry_cost, changed.isolated_margin_units) == (-3, -31500, 63 * 10**8)
    assert balance.delta_units == 5 * 10**9 - 100 - 63 * 10**8
    assert conserved(ledger)


# -- the compiled twin (exchange/clearing/_fills.pyx clear_fill) against this reference -----------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from exchange import _impl  # noqa: E402
from exchange.accounts.ledger import EMPTY  # noqa: E402
from exchange.enums import PositionMode  # noqa: E402

fill_steps = st.lists(st.tuples(st.integers(1, 4), st.booleans(), st.sampled_from([BOTH, LONG, SHORT]),
                                st.one_of(st.integers(1, 20_000), st.integers(1, 2**70)),
                                st.one_of(st.integers(1, 50), st.integers(1, 2**40)), st.integers(-10**6, 10**9)),
                      min_size=1, max_size=30)


def _twin_ledger(hedge_ids, isolated_ids, leverage):
    ledger = Ledger({INST.symbol: 20})
    for account_id in range(1, 5):
        account = fund(ledger, account_id, 10**15)
        if account_id in hedge_ids:
            account.position_mode = PositionMode.HEDGE
        if account_id in isolated_ids:
            ledger.set_settings(account, INST.symbol, MarginMode.ISOLATED, leverage)
    return ledger


@pytest.mark.skipif(_impl.fills_kernel is None, reason="compiled core not active")
@given(steps=fill_steps, hedge_ids=st.sets(st.integers(1, 4)), isolated_ids=st.sets(st.integers(1, 4)),
       leverage=st.integers(1, 125))
@settings(max_examples=200, deadline=None)
def test_the_compiled_clear_fill_is_the_reference(steps, hedge_ids, isolated_ids, leverage):
    """Seeded fills (opens, closes, flips, hedge legs, isolated margin, rebates, values beyond int64) on twin
    ledgers: the same events, positions, wallets, fee pool, holders and shared empties."""
    ledgers = [_twin_ledger(hedge_ids, isolated_ids, leverage) for _ in range(2)]
    for account_id, buy, side, price, lots, fee in steps:
        side = (LONG if side == LONG else SHORT) if account_id in hedge_ids else BOTH
        got = [clear(ledger, INST, ledger.get(account_id), side, buy, price, lots, fee)
               for ledger, clear in zip(ledgers, (clear_fill, _impl.fills_kernel.clear_fill))]
        assert got[1] == got[0]
        reference, compiled = ledgers
        assert compiled.canonical_state() == reference.canonical_state()
        assert compiled.holders == reference.holders and compiled.fee_pool_units == reference.fee_pool_units
        assert [a.positions is EMPTY for a in compiled.accounts.values()] == \
            [a.positions is EMPTY for a in reference.accounts.values()]
