"""Pre-trade risk (rules §3, §5): order holds, available balance, -2019, -2027, reduce-only -2022, the
reduce-only trim, close-position stops, and holds released on fill / cancel / amend.

Instrument: tick 0.01, lot 1, K = 10⁶, no fees; one lot at 100.00 is 100 USDT; default leverage 20.
"""
from exchange import (
    CancelReason, Client, Deposit, OrderAmended, OrderCanceled, OrderTriggered, PositionSide, Rejected, RejectCode,
    RiskOptions, SetMarkPrice, Side,
)
from exchange.accounts.pretrade import order_hold
from tests.checked import CheckedExchange, USDT, of, rejected
from tests.conftest import make_instrument

SYM = "TESTUSDT"
BUY, SELL = Side.BUY, Side.SELL


def venue(wallet_usdt=100, **options):
    ex = CheckedExchange([make_instrument(maker_fee="0", taker_fee="0")], options=RiskOptions(**options))
    ex.apply(Deposit(1, wallet_usdt * USDT))
    ex.apply(Deposit(9, 10**6 * USDT))
    ex.apply(SetMarkPrice(SYM, 10000))
    return ex, Client(ex, 1), Client(ex, 9)


def code(events):
    return rejected(events).code


def oid(events):
    return events[0].order_id


# -- the hold formula ------------------------------------------------------------------------------------
def test_order_hold_is_the_larger_side_of_what_would_add_exposure():
    k = 10**6
    # flat, buy 10 at 90.00: 9 × 10¹⁰ notional / 20
    assert order_hold(k, 20, 0, [(BUY, 9000, 10)]) == (45 * 10**8, 9 * 10**10, 0)
    # long 3: sells 5 at 100 close 3 first, adding 2/5 of 5 × 10¹⁰; buys 4 at 90 add 3.6 × 10¹⁰
    assert order_hold(k, 20, 3, [(SELL, 10000, 5), (BUY, 9000, 4)]) == (18 * 10**8, 36 * 10**9, 2 * 10**10)
    # short 3: buys of 2 only close
    assert order_hold(k, 20, -3, [(BUY, 9000, 2)]) == (0, 0, 0)
    # closing netted at the side's average price, rounded up once: ceil(20001 × 1/2) = 10001, ceil(/3) = 3334
    assert order_hold(1, 3, -1, [(BUY, 10000, 1), (BUY, 10001, 1)]) == (3334, 10001, 0)


# -- -2019 and holds ------------------------------------------------------------------------------------
def test_an_order_that_would_leave_available_negative_is_refused_and_holds_follow_the_orders():
    ex, trader, maker = venue(wallet_usdt=100)
    assert code(trader.buy(SYM, "21", "100")) == RejectCode.MARGIN_INSUFFICIENT  # 2,100 / 20 = 105 > 100
    buy = oid(trader.buy(SYM, "20", "100"))  # hold 100: available 0
    assert (ex.order_margin(1), ex.available_balance(1)) == (100 * USDT, 0)
    assert code(trader.buy(SYM, "1", "1")) == RejectCode.MARGIN_INSUFFICIENT
    assert code(trader.sell(SYM, "20", "101")) == RejectCode.MARGIN_INSUFFICIENT  # max(100, 2,020 / 20 = 101)
    sell = oid(trader.sell(SYM, "19", "105"))  # the other side: max(100, 1,995 / 20 = 99.75) does not grow
    assert ex.order_margin(1) == 100 * USDT
    trader.cancel(SYM, buy)
    assert ex.order_margin(1) == 9975 * USDT // 100  # the sell side alone
    trader.cancel(SYM, sell)
    assert ex.order_margin(1) == 0 and ex.available_balance(1) == 100 * USDT


def test_a_fill_turns_the_hold_into_position_margin():
    ex, trader, maker = venue(wallet_usdt=100)
    trader.buy(SYM, "20", "100")
    maker.sell(SYM, "20", "100")
    assert ex.order_margin(1) == 0
    assert ex.initial_margin(1) == 100 * USDT and ex.available_balance(1) == 0


def test_a_market_order_is_checked_at_its_band_edge():
    ex, trader, maker = venue(wallet_usdt=100)
    maker.sell(SYM, "50", "100")
    # BUY band edge = floor(100 × 1.15) = 115: 18 lots -> 2,070 / 20 = 103.5 > 100
    assert code(trader.buy(SYM, "18")) == RejectCode.MARGIN_INSUFFICIENT
    trader.buy(SYM, "17")  # 1,955 / 20 = 97.75; fills at 100
    assert ex.position(1, SYM).lots == 17


def test_an_amend_that_raises_the_hold_is_checked_too():
    ex, trader, _ = venue(wallet_usdt=100)
    buy = oid(trader.buy(SYM, "20", "100"))
    assert code(trader.amend(SYM, buy, "100", "21")) == RejectCode.MARGIN_INSUFFICIENT
    assert code(trader.amend(SYM, buy, "100.01", "20")) == RejectCode.MARGIN_INSUFFICIENT
    trader.amend(SYM, buy, "100", "10")
    assert ex.order_margin(1) == 50 * USDT


def test_a_position_beyond_the_bracket_at_the_chosen_leverage_is_refused():
    ex, trader, maker = venue(wallet_usdt=1_000)
    trader.set_leverage(SYM, 125)  # 125x only up to 50,000 notional
    assert code(trader.buy(SYM, "501", "100")) == RejectCode.MAX_POSITION_AT_LEVERAGE  # 50,100
    maker.sell(SYM, "500", "100")
    trader.buy(SYM, "500", "100")  # exactly 50,000 (IM 400)
    assert code(trader.buy(SYM, "1", "99")) == RejectCode.MAX_POSITION_AT_LEVERAGE
    assert not of(trader.sell(SYM, "1", "101"), Rejected)  # reducing is fine


# -- reduce-only ------------------------------------------------------------------------------------------
def test_reduce_only_orders_may_not_open_increase_or_flip():
    ex, trader, maker = venue(wallet_usdt=1_000)
    assert code(trader.sell(SYM, "1", "101", reduce_only=True)) == RejectCode.REDUCE_ONLY_REJECTED  # flat
    maker.sell(SYM, "3", "100")
    trader.buy(SYM, "3", "100")
    assert code(trader.buy(SYM, "1", "99", reduce_only=True)) == RejectCode.REDUCE_ONLY_REJECTED  # increase
    assert code(trader.sell(SYM, "4", "101", reduce_only=True)) == RejectCode.REDUCE_ONLY_REJECTED  # flip
    assert code(trader.sell(SYM, "4", reduce_only=True)) == RejectCode.REDUCE_ONLY_REJECTED  # market flip
    assert code(trader.order(SYM, "SELL", "4", order_type="STOP_MARKET", stop_price="90", reduce_only=True)) == \
        RejectCode.REDUCE_ONLY_REJECTED
    ro = oid(trader.sell(SYM, "3", "101", reduce_only=True))
    assert ex.order_margin(1) == 0  # reduce-only holds nothing
    assert code(trader.amend(SYM, ro, "101", "4")) == RejectCode.REDUCE_ONLY_REJECTED


def test_hedge_closing_orders_are_reduce_only_by_nature():
    ex, trader, maker = venue(wallet_usdt=1_000)
    trader.set_position_mode("HEDGE")
    maker.sell(SYM, "3", "100")
    trader.buy(SYM, "3", "100", position_side="LONG")
    assert code(trader.sell(SYM, "4", "101", position_side="LONG")) == RejectCode.REDUCE_ONLY_REJECTED
    assert code(trader.buy(SYM, "1", "99", position_side="LONG", reduce_only=True)) == RejectCode.REDUCE_ONLY_REJECTED
    assert code(trader.buy(SYM, "1", "99", position_side="SHORT")) == RejectCode.REDUCE_ONLY_REJECTED
    trader.sell(SYM, "3", "101", position_side="LONG")
    assert ex.order_margin(1) == 0


def test_resting_reduce_only_orders_shrink_with_the_position_newest_first():
    ex, trader, maker = venue(wallet_usdt=1_000)
    maker.sell(SYM, "5", "100")
    trader.buy(SYM, "5", "100")
    older = oid(trader.sell(SYM, "3", "110", reduce_only=True))
    newer = oid(trader.sell(SYM, "2", "111", reduce_only=True))
    maker.buy(SYM, "3", "99")
    events = trader.sell(SYM, "3")  # a plain market sell: long 5 -> 2
    assert events[-2:] == [
        OrderAmended(SYM, older, 1, Side.SELL, 11000, 2, True),  # keeps 2 = what is left to close
        OrderCanceled(SYM, newer, 1, Side.SELL, 11100, 2, CancelReason.REDUCE_ONLY),
    ]
    # a new reduce-only order that does not fit beside the older one is canceled at once
    events = trader.sell(SYM, "2", "112", reduce_only=True)
    assert events[-1].reason == CancelReason.REDUCE_ONLY


def test_one_taker_sweeping_several_closing_orders_never_flips_a_hedge_leg():
    ex, trader, maker = venue(wallet_usdt=1_000)
    trader.set_position_mode("HEDGE")
    maker.buy(SYM, "3", "100")
    trader.sell(SYM, "3", "100", position_side="SHORT")
    trader.buy(SYM, "3", "99", position_side="SHORT")
    events = trader.buy(SYM, "3", "98", position_side="SHORT")
    assert events[-1].reason == CancelReason.REDUCE_ONLY  # together they may close 3, not 6
    maker.sell(SYM, "6", "98")
    assert ex.position(1, SYM, PositionSide.SHORT) is None


def test_close_position_stop_closes_whatever_is_open_when_it_fires():
    ex, trader, maker = venue(wallet_usdt=1_000)
    maker.sell(SYM, "5", "100")
    trader.buy(SYM, "3", "100")
    assert code(trader.order(SYM, "SELL", "1", order_type="STOP_MARKET", stop_price="95", close_position=True)) \
        == RejectCode.MALFORMED  # qty must be 0
    assert code(trader.order(SYM, "SELL", "0", "95", close_position=True)) == RejectCode.MALFORMED  # LIMIT
    stop = oid(trader.order(SYM, "SELL", "0", order_type="STOP_MARKET", stop_price="95", close_position=True))
    trader.buy(SYM, "2", "100")  # the position grows to 5 after the stop was placed
    maker.buy(SYM, "10", "95")
    events = ex.apply(SetMarkPrice(SYM, 9500))
    assert OrderTriggered(SYM, stop, 1, 9500) in events
    assert ex.position(1, SYM) is None


def test_a_fired_reduce_only_order_with_nothing_left_to_close_is_rejected():
    ex, trader, maker = venue(wallet_usdt=1_000)
    maker.sell(SYM, "1", "100")
    trader.buy(SYM, "1", "100")
    stop = oid(trader.order(SYM, "SELL", "1", order_type="STOP_MARKET", stop_price="95", reduce_only=True))
    maker.buy(SYM, "1", "100")
    trader.sell(SYM, "1", "100")  # closed by hand
    events = ex.apply(SetMarkPrice(SYM, 9500))
    assert events[-1] == Rejected(RejectCode.REDUCE_ONLY_REJECTED, events[-1].message, SYM, 1, stop)
    assert ex.open_orders(1, SYM) == []


def test_a_fired_opening_order_is_checked_against_the_margin_available_then():
    ex, trader, maker = venue(wallet_usdt=100)
    stop = oid(trader.order(SYM, "BUY", "10", order_type="STOP_MARKET", stop_price="105"))
    assert ex.order_margin(1) == 0  # waiting orders hold nothing
    trader.buy(SYM, "19", "90")  # hold 85.5 of the 100
    # fires a market BUY checked at its band edge floor(105 × 1.15) = 120.75: 10 × 120.75 / 20 = 60.375 > 14.5
    events = ex.apply(SetMarkPrice(SYM, 10500))
    assert events[-1] == Rejected(RejectCode.MARGIN_INSUFFICIENT, events[-1].message, SYM, 1, stop)
