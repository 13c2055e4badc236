"""The reference order book (exchange.orders.book): levels, FIFO queues, indexes and invariants.

Prices in ticks, quantities in lots. The book is pure Python and used only by the reference engine, so
these tests construct it directly; book behaviour seen through the engine is in test_matching.py.
"""
import pytest

from exchange.orders.book import Book, Order
from exchange.enums import Side, STPMode, TimeInForce

BUY, SELL = Side.BUY, Side.SELL


def order(order_id, side, price_ticks, lots, account_id=1, tif=TimeInForce.GTC, expire_ns=0):
    return Order(order_id, account_id, side, price_ticks, lots, tif, STPMode.NONE, 0, expire_ns)


@pytest.fixture
def book():
    """Bids 100.00 ×(1: 5 lots, 2: 3 lots), 99.90 ×(3: 4); asks 100.10 ×(4: 2), 100.20 ×(5: 7, 6: 1)."""
    b = Book()
    for o in (order(1, BUY, 10000, 5), order(2, BUY, 10000, 3, account_id=2), order(3, BUY, 9990, 4),
              order(4, SELL, 10010, 2, account_id=2), order(5, SELL, 10020, 7), order(6, SELL, 10020, 1)):
        b.add(o)
    b.check_invariants()
    return b


def test_empty_book_has_no_best_prices():
    b = Book()
    assert (b.best_price(BUY), b.best_price(SELL)) == (0, 0)
    assert b.best_level(BUY) is None and len(b) == 0
    assert b.depth(BUY, 5) == [] and b.order_ids_of(1) == []
    b.check_invariants()


def test_best_prices_are_highest_bid_and_lowest_ask(book):
    assert book.best_price(BUY) == 10000
    assert book.best_price(SELL) == 10010
    assert book.best_level(BUY).oldest().order_id == 1


def test_depth_aggregates_lots_and_counts_best_first(book):
    assert book.depth(BUY, 5) == [(10000, 8, 2), (9990, 4, 1)]
    assert book.depth(SELL, 5) == [(10010, 2, 1), (10020, 8, 2)]
    assert book.depth(SELL, 1) == [(10010, 2, 1)]
    assert book.depth(BUY, 0) == []


def test_priority_order_is_price_then_arrival(book):
    assert [o.order_id for o in book.orders_in_priority(BUY)] == [1, 2, 3]
    assert [o.order_id for o in book.orders_in_priority(SELL)] == [4, 5, 6]
    assert [level.price_ticks for level in book.levels(BUY)] == [10000, 9990]


def test_arrival_not_id_decides_queue_position():
    b = Book()
    for order_id in (9, 3, 7):
        b.add(order(order_id, SELL, 10000, 1))
    assert [o.order_id for o in b.orders_in_priority(SELL)] == [9, 3, 7]


def test_remove_keeps_the_rest_of_the_queue(book):
    removed = book.remove(1)
    assert removed.order_id == 1 and removed.leaves_lots == 5
    assert 1 not in book and book.get(1) is None
    assert book.depth(BUY, 5) == [(10000, 3, 1), (9990, 4, 1)]
    assert book.best_level(BUY).oldest().order_id == 2
    book.check_invariants()


def test_removing_the_last_order_of_a_level_removes_the_level(book):
    book.remove(4)
    assert book.best_price(SELL) == 10020
    assert book.depth(SELL, 5) == [(10020, 8, 2)]
    book.check_invariants()


def test_remove_unknown_raises_key_error(book):
    with pytest.raises(KeyError):
        book.remove(99)


def test_reduce_keeps_priority_and_updates_the_aggregate(book):
    assert book.reduce(1, 2) == 3
    assert book.get(1).leaves_lots == 3
    assert book.depth(BUY, 1) == [(10000, 6, 2)]
    assert book.best_level(BUY).oldest().order_id == 1
    book.check_invariants()


def test_reduce_to_zero_removes_the_order(book):
    assert book.reduce(4, 2) == 0
    assert 4 not in book and book.best_price(SELL) == 10020
    book.check_invariants()


def test_account_index_lists_ids_ascending(book):
    assert book.order_ids_of(1) == [1, 3, 5, 6]
    assert book.order_ids_of(2) == [2, 4]
    book.remove(2)
    book.remove(4)
    assert book.order_ids_of(2) == []
    book.check_invariants()


def test_expiry_index_orders_by_time_then_id():
    b = Book()
    b.add(order(5, BUY, 9000, 1, tif=TimeInForce.GTD, expire_ns=300))
    b.add(order(3, BUY, 9000, 1, tif=TimeInForce.GTD, expire_ns=300))
    b.add(order(4, SELL, 9500, 1, tif=TimeInForce.GTD, expire_ns=250))
    b.add(order(1, SELL, 9500, 1))
    assert b.expiring(249) == []
    assert b.expiring(250) == [4]
    assert b.expiring(10**18) == [4, 3, 5]
    b.remove(3)
    assert b.expiring(300) == [4, 5]
    b.check_invariants()


def test_len_counts_resting_orders(book):
    assert len(book) == 6


@pytest.mark.parametrize("corrupt, message", [
    (lambda b: setattr(b.best_level(BUY), "total_lots", 99), "aggregate"),
    (lambda b: setattr(b.get(4), "leaves_lots", 0), "leaves"),
    (lambda b: b._orders.pop(3), "order-id index"),
    (lambda b: b._by_account[1].discard(5), "account index"),
    (lambda b: b.add(order(7, BUY, 10010, 1)), "crossed"),
])
def test_check_invariants_names_the_broken_invariant(book, corrupt, message):
    corrupt(book)
    with pytest.raises(AssertionError, match=message):
        book.check_invariants()
