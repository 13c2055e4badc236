"""Trigger conditions (rules §3, §11 example 8), at the level of single conditional orders."""
import pytest

from exchange.enums import OrderType, Side, WorkingType
from exchange.orders.triggers import ConditionalOrder, TriggerBook

T = 100  # ticks per unit price (tick 0.01)


def conditional(order_type, side, stop=0, callback_e8=0, activation=0, order_id=1, working_type=WorkingType.MARK_PRICE):
    return ConditionalOrder(order_id, 7, side, order_type, 1, 0, 1, 1, False, False, stop * T, working_type,
                            callback_e8, activation * T, 0)


def test_example_8_stop_market_sell_fires_at_or_below_95():
    order = conditional(OrderType.STOP_MARKET, Side.SELL, stop=95)
    assert not order.observe(9501)
    assert order.observe(9500)
    assert order.observe(9000)


def test_example_8_take_profit_sell_fires_at_or_above_110():
    order = conditional(OrderType.TAKE_PROFIT, Side.SELL, stop=110)
    assert not order.observe(10999)
    assert order.observe(11000)


def test_stop_buy_and_take_profit_buy_are_mirrored():
    stop = conditional(OrderType.STOP, Side.BUY, stop=105)
    assert not stop.observe(10499) and stop.observe(10500)
    take_profit = conditional(OrderType.TAKE_PROFIT_MARKET, Side.BUY, stop=90)
    assert not take_profit.observe(9001) and take_profit.observe(9000)


def test_example_8_trailing_sell_activation_105_callback_1pct_high_120_fires_at_118_80():
    order = conditional(OrderType.TRAILING_STOP_MARKET, Side.SELL, callback_e8=1_000_000, activation=105)
    assert not order.observe(10000)  # below activation: inactive, even after a fall
    assert not order.activated
    assert not order.observe(10500)  # activates at 105, high 105
    assert order.activated and order.extreme_ticks == 10500
    for price in (11000, 12000, 11900, 11881):  # high 120; 118.81 is above 118.80
        assert not order.observe(price)
    assert order.extreme_ticks == 12000
    assert order.observe(11880)  # 120 × 0.99 = 118.80 exactly


def test_trailing_buy_tracks_the_low():
    order = conditional(OrderType.TRAILING_STOP_MARKET, Side.BUY, callback_e8=2_000_000)  # 2%, active at once
    assert not order.observe(10000)
    assert not order.observe(9000)  # new low 90
    assert not order.observe(9179)  # 90 × 1.02 = 91.80
    assert order.observe(9180)


def test_trigger_book_fires_in_order_id_order_and_only_matching_working_type():
    book = TriggerBook()
    book.add(conditional(OrderType.STOP_MARKET, Side.SELL, stop=95, order_id=9))
    book.add(conditional(OrderType.STOP_MARKET, Side.SELL, stop=96, order_id=4))
    book.add(conditional(OrderType.STOP_MARKET, Side.SELL, stop=99, order_id=5, working_type=WorkingType.CONTRACT_PRICE))
    assert [o.order_id for o in book.observe(WorkingType.MARK_PRICE, 9600)] == [4]  # fired orders are removed
    assert 4 not in book and 9 in book
    fired = book.observe(WorkingType.MARK_PRICE, 9000)
    assert [o.order_id for o in fired] == [9]
    assert 5 in book  # watches the last price, not the mark
    assert [o.order_id for o in book.observe(WorkingType.CONTRACT_PRICE, 9000)] == [5]
    assert len(book) == 0
    book.check_invariants()


def test_trigger_book_expiry_and_account_queries():
    book = TriggerBook()
    first = conditional(OrderType.STOP, Side.BUY, stop=105, order_id=3)
    first.expire_ns = 50
    second = conditional(OrderType.STOP, Side.BUY, stop=105, order_id=2)
    second.expire_ns = 50
    book.add(first)
    book.add(second)
    book.add(conditional(OrderType.STOP, Side.BUY, stop=105, order_id=1))
    assert book.expired(49) == []
    assert book.expired(50) == [2, 3]
    assert book.orders_of(7) == [1, 2, 3]
    assert book.orders_of(8) == []
    assert [state[0] for state in book.canonical_state()] == [1, 2, 3]


@pytest.mark.parametrize("price, fires", [(9600, True), (9601, False)])
def test_fires_exactly_at_the_boundary(price, fires):
    assert conditional(OrderType.STOP_MARKET, Side.SELL, stop=96).observe(price) is fires
