"""Account commands through the Exchange (rules §4): deposits, withdrawals, position mode, margin mode
(with and without ``allow_mode_switch_with_position``), leverage, isolated margin, and each reject code.

Instrument: tick 0.01, lot 1, K = 10⁶, no fees; one lot at 100.00 is 100 USDT. Account 1 trades, account 9
is the market maker. Every command runs through ``CheckedExchange`` (invariants + unchanged hash on reject).
"""
import pytest

from exchange import (
    AdjustIsolatedMargin, Exchange, BalanceChanged, BalanceReason, Client, Deposit, LeverageChanged, MarginMode,
    MarginModeChanged, OrderType, PlaceOrder, PositionChanged, PositionMode, PositionModeChanged, PositionSide,
    RejectCode, RiskOptions, SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode, Side, Withdraw,
)
from tests.checked import CheckedExchange, USDT, of, rejected
from tests.conftest import COMPILED, make_instrument
from tests.streams import SYMBOL, liquidation_commands

IMPLEMENTATIONS = ("python", "cython") if COMPILED else ("python",)

SYM = "TESTUSDT"
BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT


def venue(wallet_usdt=10_000, **options):
    ex = CheckedExchange([make_instrument(maker_fee="0", taker_fee="0")], options=RiskOptions(**options))
    ex.apply(Deposit(1, wallet_usdt * USDT))
    ex.apply(Deposit(9, 10**6 * USDT))
    ex.apply(SetMarkPrice(SYM, 10000))
    return ex, Client(ex, 1), Client(ex, 9)


def long_position(ex, trader, maker, lots, price="100", **kw):
    maker.sell(SYM, str(lots), price)
    trader.buy(SYM, str(lots), price, **kw)


def code(events):
    return rejected(events).code


# -- deposits and withdrawals ----------------------------------------------------------------------------
def test_deposit_opens_the_account_and_bad_amounts_are_malformed():
    ex, _, _ = venue()
    assert ex.apply(Deposit(5, 3 * USDT)) == [BalanceChanged(5, 3 * USDT, 3 * USDT, BalanceReason.DEPOSIT)]
    for bad in (Deposit(5, 0), Deposit(5, -1), Deposit(-1, 1), Deposit(5, 2**62 + 1)):
        assert code(ex.apply(bad)) == RejectCode.MALFORMED
    assert ex.ledger.deposits_units == (10_000 + 10**6 + 3) * USDT


def test_withdrawal_is_limited_to_the_available_balance():
    ex, trader, maker = venue(wallet_usdt=1_000)
    long_position(ex, trader, maker, 10)  # 1,000 notional at 20x: IM 50 -> available 950
    assert ex.available_balance(1) == 950 * USDT
    assert code(ex.apply(Withdraw(1, 950 * USDT + 1))) == RejectCode.BALANCE_NOT_SUFFICIENT
    assert code(ex.apply(Withdraw(7, 1))) == RejectCode.BALANCE_NOT_SUFFICIENT  # no such account
    assert code(ex.apply(Withdraw(1, 0))) == RejectCode.MALFORMED
    events = ex.apply(Withdraw(1, 950 * USDT))
    assert events[0] == BalanceChanged(1, -950 * USDT, 50 * USDT, BalanceReason.WITHDRAW)
    assert ex.available_balance(1) == 0 and ex.ledger.withdrawals_units == 950 * USDT


def test_unrealized_gains_count_toward_available_only_when_configured_and_are_never_withdrawn():
    for gains in (False, True):
        ex, trader, maker = venue(wallet_usdt=1_000, count_unrealized_gains=gains)
        long_position(ex, trader, maker, 10)
        ex.apply(SetMarkPrice(SYM, 11000))  # +10 × 10 = +100 uPnL; IM 1,100 / 20 = 55
        assert ex.available_balance(1) == (1_000 - 55 + (100 if gains else 0)) * USDT
        assert code(ex.apply(Withdraw(1, 945 * USDT + 1))) == RejectCode.BALANCE_NOT_SUFFICIENT  # gains stay
        ex.apply(SetMarkPrice(SYM, 9000))  # −100: losses always count; IM 45
        assert ex.available_balance(1) == (1_000 - 45 - 100) * USDT


# -- position mode ---------------------------------------------------------------------------------------
def test_position_mode_changes_only_without_orders_or_positions():
    ex, trader, maker = venue()
    assert code(trader.set_position_mode("ONE_WAY")) == RejectCode.NO_NEED_TO_CHANGE_POSITION_SIDE
    trader.buy(SYM, "1", "90")
    assert code(trader.set_position_mode("HEDGE")) == RejectCode.POSITION_SIDE_OPEN_ORDERS
    trader.cancel_all(SYM)
    trader.order(SYM, "SELL", "1", order_type="STOP_MARKET", stop_price="90")  # a waiting order counts too
    assert code(trader.set_position_mode("HEDGE")) == RejectCode.POSITION_SIDE_OPEN_ORDERS
    trader.cancel_all(SYM)
    long_position(ex, trader, maker, 1)
    assert code(trader.set_position_mode("HEDGE")) == RejectCode.POSITION_SIDE_OPEN_POSITION
    maker.buy(SYM, "1", "100")
    trader.sell(SYM, "1", "100")
    assert trader.set_position_mode("HEDGE") == [PositionModeChanged(1, PositionMode.HEDGE)]
    assert ex.position_mode(1) == PositionMode.HEDGE
    assert code(ex.apply(SetPositionMode(1, 7))) == RejectCode.MALFORMED


def test_orders_must_name_the_position_side_of_the_mode():
    ex, trader, maker = venue()
    assert code(trader.buy(SYM, "1", "90", position_side="LONG")) == RejectCode.POSITION_SIDE_MISMATCH
    trader.set_position_mode("HEDGE")
    assert code(trader.buy(SYM, "1", "90")) == RejectCode.POSITION_SIDE_MISMATCH  # BOTH in hedge mode
    assert code(trader.order(SYM, "BUY", "1", order_type="STOP_MARKET", stop_price="110")) == \
        RejectCode.POSITION_SIDE_MISMATCH
    maker.sell(SYM, "3", "100")
    trader.buy(SYM, "3", "100", position_side="LONG")
    maker.buy(SYM, "2", "100")
    trader.sell(SYM, "2", "100", position_side="SHORT")  # a separate short leg, not a close
    assert ex.position(1, SYM, LONG).lots == 3 and ex.position(1, SYM, SHORT).lots == -2


# -- margin mode -----------------------------------------------------------------------------------------
def test_margin_mode_switch_rules_by_default():
    ex, trader, maker = venue()
    assert code(trader.set_margin_mode(SYM, "CROSS")) == RejectCode.NO_NEED_TO_CHANGE_MARGIN_TYPE
    (refusal,) = trader.set_margin_mode(SYM, "ISOLATED", "5")  # nothing to move in
    assert refusal.code == RejectCode.MALFORMED and refusal.message == (
        "SetMarginMode.isolated_margin_units: margin moves only with a switch to isolated of an open position "
        "(got 500000000).")
    trader.buy(SYM, "1", "90")
    assert code(trader.set_margin_mode(SYM, "ISOLATED")) == RejectCode.MARGIN_TYPE_OPEN_ORDERS
    trader.cancel_all(SYM)
    long_position(ex, trader, maker, 1)
    assert code(trader.set_margin_mode(SYM, "ISOLATED", "50")) == RejectCode.MARGIN_TYPE_OPEN_POSITION
    assert code(ex.apply(SetMarginMode(1, "NOPE", MarginMode.ISOLATED))) == RejectCode.INVALID_SYMBOL
    assert code(ex.apply(SetMarginMode(1, SYM, 9))) == RejectCode.MALFORMED


def test_switching_a_winner_to_cross_and_back_to_isolated_with_the_option():
    ex, trader, maker = venue(allow_mode_switch_with_position=True)
    trader.set_margin_mode(SYM, "ISOLATED")
    long_position(ex, trader, maker, 10)  # 1,000 notional at 20x: 50 isolated
    assert ex.wallet(1) == 9_950 * USDT
    events = trader.set_margin_mode(SYM, "CROSS")  # isolated -> cross: the 50 returns to the wallet
    assert events[0] == MarginModeChanged(1, SYM, MarginMode.CROSS)
    assert of(events, BalanceChanged) == [BalanceChanged(1, 50 * USDT, 10_000 * USDT, BalanceReason.MARGIN_TRANSFER)]
    assert ex.position(1, SYM).isolated_margin_units == 0

    ex.apply(SetMarkPrice(SYM, 9000))  # −100 uPnL; IM 900 / 20 = 45; MM 900 × 0.4% = 3.6
    assert code(trader.set_margin_mode(SYM, "ISOLATED", "44.99")) == RejectCode.ISOLATED_BALANCE_INSUFFICIENT
    assert code(trader.set_margin_mode(SYM, "ISOLATED", "103.6")) == RejectCode.ISOLATED_BALANCE_INSUFFICIENT
    events = trader.set_margin_mode(SYM, "ISOLATED", "103.61")  # 103.61 − 100 = 3.61 > MM 3.6
    assert of(events, PositionChanged)[0].isolated_margin_units == 10361 * USDT // 100
    assert ex.wallet(1) == 10_000 * USDT - 10361 * USDT // 100
    assert ex.margin_mode(1, SYM) == MarginMode.ISOLATED


def test_cross_to_isolated_needs_the_cross_side_to_spare_the_amount():
    ex, trader, maker = venue(wallet_usdt=100, allow_mode_switch_with_position=True)
    long_position(ex, trader, maker, 10)  # IM 50; available 50
    # available after = 50 + the position's IM 50 − amount ≥ 0
    assert code(trader.set_margin_mode(SYM, "ISOLATED", "100.01")) == RejectCode.CROSS_BALANCE_INSUFFICIENT
    assert of(trader.set_margin_mode(SYM, "ISOLATED", "100"), MarginModeChanged)
    assert ex.wallet(1) == 0 and ex.position(1, SYM).isolated_margin_units == 100 * USDT


def test_a_hedge_symbol_with_both_legs_open_cannot_switch_even_with_the_option():
    ex, trader, maker = venue(allow_mode_switch_with_position=True)
    trader.set_position_mode("HEDGE")
    maker.sell(SYM, "1", "100")
    trader.buy(SYM, "1", "100", position_side="LONG")
    maker.buy(SYM, "1", "100")
    trader.sell(SYM, "1", "100", position_side="SHORT")
    assert code(trader.set_margin_mode(SYM, "ISOLATED", "10")) == RejectCode.MARGIN_TYPE_OPEN_POSITION


# -- leverage --------------------------------------------------------------------------------------------
def test_leverage_bounds_and_isolated_reduction():
    ex, trader, maker = venue()
    for bad in (0, 126):
        assert code(ex.apply(SetLeverage(1, SYM, bad))) == RejectCode.INVALID_LEVERAGE
    assert code(ex.apply(SetLeverage(1, SYM, True))) == RejectCode.MALFORMED  # a bool is not an integer here
    assert trader.set_leverage(SYM, 125) == [LeverageChanged(1, SYM, 125)]
    trader.set_margin_mode(SYM, "ISOLATED")
    long_position(ex, trader, maker, 10)
    assert code(trader.set_leverage(SYM, 124)) == RejectCode.ISOLATED_LEVERAGE_REDUCTION
    assert ex.leverage(1, SYM) == 125


def test_leverage_above_the_bracket_of_the_position_is_refused():
    ex, trader, maker = venue(wallet_usdt=100_000)
    long_position(ex, trader, maker, 600)  # 60,000 notional: bracket 50k-250k allows at most 100x
    assert code(trader.set_leverage(SYM, 101)) == RejectCode.MAX_POSITION_AT_LEVERAGE
    assert trader.set_leverage(SYM, 100) == [LeverageChanged(1, SYM, 100)]


def test_lowering_cross_leverage_that_would_leave_too_little_margin_is_refused():
    ex, trader, maker = venue(wallet_usdt=100)
    long_position(ex, trader, maker, 10)  # 1,000 notional: IM 50 at 20x; 100 at 10x; 1,000 at 1x
    assert code(trader.set_leverage(SYM, 9)) == RejectCode.LEVERAGE_INSUFFICIENT_MARGIN  # IM 112 > 100
    assert trader.set_leverage(SYM, 10) == [LeverageChanged(1, SYM, 10)]
    assert ex.available_balance(1) == 0


def test_a_leverage_change_re_holds_the_open_orders():
    ex, trader, _ = venue(wallet_usdt=1_000)
    trader.buy(SYM, "12", "90")  # 1,080 notional: hold 54 at 20x
    assert ex.order_margin(1) == 54 * USDT
    trader.set_leverage(SYM, 2)
    assert ex.order_margin(1) == 540 * USDT
    assert code(trader.set_leverage(SYM, 1)) == RejectCode.LEVERAGE_INSUFFICIENT_MARGIN  # 1,080 > 1,000
    assert ex.order_margin(1) == 540 * USDT


# -- isolated margin -------------------------------------------------------------------------------------
def test_adjust_isolated_margin_codes_and_moves():
    ex, trader, maker = venue(wallet_usdt=1_000)
    assert code(trader.adjust_isolated_margin(SYM, "10")) == RejectCode.ISOLATED_ONLY
    trader.set_margin_mode(SYM, "ISOLATED")
    assert code(trader.adjust_isolated_margin(SYM, "10")) == RejectCode.NO_ISOLATED_POSITION
    assert code(trader.adjust_isolated_margin(SYM, "10", position_side="LONG")) == RejectCode.POSITION_SIDE_MISMATCH
    assert code(ex.apply(AdjustIsolatedMargin(1, SYM, 0))) == RejectCode.MALFORMED
    long_position(ex, trader, maker, 10)  # isolated margin 50, wallet 950
    assert code(trader.adjust_isolated_margin(SYM, "950.01")) == RejectCode.CROSS_BALANCE_INSUFFICIENT
    events = trader.adjust_isolated_margin(SYM, "100")
    assert events == [PositionChanged(SYM, 1, BOTH, 10, 100000, 150 * USDT, 0),
                      BalanceChanged(1, -100 * USDT, 850 * USDT, BalanceReason.MARGIN_TRANSFER)]
    ex.apply(SetMarkPrice(SYM, 9900))  # −10 uPnL; IM 990 / 20 = 49.5
    # removal keeps margin + unrealized loss ≥ IM: at most 150 − 10 − 49.5 = 90.5
    assert code(trader.adjust_isolated_margin(SYM, "-90.51")) == RejectCode.ISOLATED_BALANCE_INSUFFICIENT
    trader.adjust_isolated_margin(SYM, "-90.5")
    assert ex.position(1, SYM).isolated_margin_units == 595 * USDT // 10
    assert ex.wallet(1) == 9405 * USDT // 10


def test_an_order_from_an_account_without_money_is_refused():
    ex, _, _ = venue()
    (event,) = ex.apply(PlaceOrder(42, SYM, Side.BUY, 1, 9000))
    assert event.code == RejectCode.MARGIN_INSUFFICIENT
    (event,) = ex.apply(PlaceOrder(42, SYM, Side.SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=9000))
    assert event.code == RejectCode.MARGIN_INSUFFICIENT


def test_ledger_state_is_part_of_the_state_hash():
    ex, trader, _ = venue()
    before = ex.state_hash()
    trader.set_leverage(SYM, 7)
    assert ex.state_hash() != before


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("profile", ["dydx", "binance"])
def test_open_interest_is_kept_by_every_fill_and_restore(profile, implementation):
    """The ledger's open interest (``Ledger.long_lots``, what dYdX's initial margin and the gateway's
    ``/fapi/v1/openInterest`` read in O(1)) equals the long lots counted over every account, after every command
    of a liquidation stream (fills, takeovers, ADL, settlements of the funds) on both implementations and after a
    restore from a snapshot; dYdX's open-interest IM then reads it."""
    ex = Exchange([make_instrument()], profile=profile, implementation=implementation)
    for command in liquidation_commands(7, 1_500):
        ex.apply(command)
        counted = sum(p.lots for a in ex.ledger.accounts.values() for p in a.positions.values() if p.lots > 0)
        assert ex.ledger.long_lots == {SYMBOL: counted}, command
    assert counted > 0
    twin = Exchange.restore_bytes(ex.snapshot_bytes())
    assert twin.ledger.long_lots == ex.ledger.long_lots and twin.state_hash() == ex.state_hash()
    mark, k = ex.risk.mark_of(SYMBOL), ex.instruments[SYMBOL].k_units
    assert ex.risk.open_interest_units(SYMBOL) == counted * mark * k
