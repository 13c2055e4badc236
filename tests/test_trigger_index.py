"""The trigger book's indexes (``exchange.orders.triggers.TriggerBook``) against the naive oracle that walks every
waiting order (``tests/trigger_oracle.py``): the same fired orders, in the same order, at the same prices, the
same trailing state, expiries and account queries, with ``check_invariants`` (every index rebuilt from the
orders and compared) after every step; and the claim that makes the index worth having: an observed price
looks only at the orders it reaches."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from exchange import Exchange, PlaceOrder, SetMarkPrice, Deposit, Side
from exchange.enums import OrderType, WorkingType
from exchange.orders.triggers import ConditionalOrder, TriggerBook
from tests.conftest import make_instrument
from tests.trigger_oracle import LinearTriggerBook

KINDS = (OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET,
         OrderType.TRAILING_STOP_MARKET)
MID = 1_000  # prices drawn near it, so levels collide and observations land exactly on them


def random_order(rng: random.Random, order_id: int) -> ConditionalOrder:
    kind = rng.choice(KINDS)
    trailing = kind == OrderType.TRAILING_STOP_MARKET
    expire_ns = rng.choice((0, 0, rng.randint(1, 40)))
    return ConditionalOrder(
        order_id, rng.randint(1, 5), rng.choice((Side.BUY, Side.SELL)), kind, rng.randint(1, 3), 0, 1, 1, False,
        False, 0 if trailing else MID + rng.randint(-8, 8), rng.choice((WorkingType.MARK_PRICE, WorkingType.CONTRACT_PRICE)),
        rng.choice((1_000_000, 500_000, 3_000_000)) if trailing else 0,
        rng.choice((0, MID + rng.randint(-8, 8))) if trailing else 0, expire_ns)


def state(book) -> list:
    """Everything a caller can see of a book: each waiting order's whole state (trailing activation and extreme
    included), in id order."""
    return [(*order.as_state(), order.fired_at_ticks) for _, order in sorted(book._orders.items())]


def fired(orders) -> list:
    return [(o.order_id, o.fired_at_ticks, o.activated, o.extreme_ticks) for o in orders]


def run_both(rng: random.Random, steps: int, book: TriggerBook | None = None, oracle=None, next_id: int = 1):
    """Apply the same random operations to an indexed book and the oracle, comparing every answer and the whole
    state after each, and checking the indexes after each. Returns both books and the next order id."""
    book = TriggerBook() if book is None else book
    oracle = LinearTriggerBook() if oracle is None else oracle
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.4:
            seed = rng.random()
            book.add(random_order(random.Random(seed), next_id))
            oracle.add(random_order(random.Random(seed), next_id))
            next_id += 1
        elif roll < 0.55 and len(oracle):
            order_id = rng.choice(sorted(oracle._orders))
            assert book.remove(order_id).as_state() == oracle.remove(order_id).as_state()
        elif roll < 0.9:
            working_type = rng.choice((WorkingType.MARK_PRICE, WorkingType.CONTRACT_PRICE))
            price = MID + rng.randint(-12, 12)
            assert fired(book.observe(working_type, price)) == fired(oracle.observe(working_type, price))
        elif roll < 0.95:
            now = rng.randint(0, 45)
            assert book.expired(now) == oracle.expired(now)
        else:
            account = rng.randint(0, 6)
            assert book.orders_of(account) == oracle.orders_of(account)
        assert len(book) == len(oracle)
        assert state(book) == state(oracle)
        book.check_invariants()
    return book, oracle, next_id


@pytest.mark.parametrize("seed", range(30))
def test_the_index_answers_as_the_walk_over_every_order(seed):
    run_both(random.Random(seed), 400)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 150))
def test_the_index_answers_as_the_walk_hypothesis(seed, steps):
    run_both(random.Random(seed), steps)


@pytest.mark.parametrize("seed", range(5))
def test_a_restored_book_goes_on_as_the_original(seed):
    rng = random.Random(seed)
    book, oracle, next_id = run_both(rng, 200)
    copy = TriggerBook()
    copy.restore_state(book.snapshot_state())
    copy.check_invariants()
    assert state(copy) == state(book)
    later = random.Random(seed + 1000)
    run_both(later, 200, copy, oracle, next_id)


def test_a_failed_restore_leaves_the_book_empty():
    book = TriggerBook()
    good = random_order(random.Random(1), 7)
    with pytest.raises(ValueError, match="repeated"):
        book.restore_state([(*good.as_state(), 0), (*good.as_state(), 0)])
    assert len(book) == 0 and book.orders_of(good.account_id) == [] and book.expired(10**9) == []
    book.check_invariants()


def conditional(order_id, kind, side, stop=0, activation=0, callback_e8=0, working_type=WorkingType.MARK_PRICE,
                account=7, expire_ns=0):
    return ConditionalOrder(order_id, account, side, kind, 1, 0, 1, 1, False, False, stop, working_type,
                            callback_e8, activation, expire_ns)


def test_levels_fire_at_and_beyond_exactly_and_only_there():
    book = TriggerBook()
    book.add(conditional(1, OrderType.STOP_MARKET, Side.BUY, stop=105))       # fires at >= 105
    book.add(conditional(2, OrderType.TAKE_PROFIT, Side.SELL, stop=103))      # fires at >= 103
    book.add(conditional(3, OrderType.STOP_MARKET, Side.SELL, stop=95))       # fires at <= 95
    book.add(conditional(4, OrderType.TAKE_PROFIT_MARKET, Side.BUY, stop=97))  # fires at <= 97
    assert book.observe(WorkingType.MARK_PRICE, 102) == [] and book.observe(WorkingType.MARK_PRICE, 98) == []
    assert [o.order_id for o in book.observe(WorkingType.MARK_PRICE, 103)] == [2]
    assert [o.order_id for o in book.observe(WorkingType.MARK_PRICE, 97)] == [4]
    assert [o.order_id for o in book.observe(WorkingType.CONTRACT_PRICE, 200)] == []  # another working type
    assert [(o.order_id, o.fired_at_ticks) for o in book.observe(WorkingType.MARK_PRICE, 200)] == [(1, 200)]
    assert [(o.order_id, o.fired_at_ticks) for o in book.observe(WorkingType.MARK_PRICE, 95)] == [(3, 95)]
    assert len(book) == 0
    book.check_invariants()


def test_a_trailing_stop_waits_at_its_activation_then_follows_every_price():
    book = TriggerBook()
    # SELL, activation 105, callback 1 %: activates at >= 105, then fires at <= highest × 0.99
    book.add(conditional(1, OrderType.TRAILING_STOP_MARKET, Side.SELL, activation=10_500, callback_e8=1_000_000))
    assert book._rising[WorkingType.MARK_PRICE][0] == (10_500, 1) and not book._tracking[WorkingType.MARK_PRICE]
    assert book.observe(WorkingType.MARK_PRICE, 10_499) == []
    assert not book.get(1).activated
    assert book.observe(WorkingType.MARK_PRICE, 12_000) == []  # activates at 120.00 (its first high)
    assert book.get(1).activated and book.get(1).extreme_ticks == 12_000 and 1 in book._tracking[WorkingType.MARK_PRICE]
    assert book.observe(WorkingType.MARK_PRICE, 11_881) == []  # 120 × 0.99 = 118.80: not yet
    assert [(o.order_id, o.fired_at_ticks) for o in book.observe(WorkingType.MARK_PRICE, 11_880)] == [(1, 11_880)]
    book.check_invariants()


def test_expiry_and_account_queries_follow_removals_and_fires():
    book = TriggerBook()
    book.add(conditional(1, OrderType.STOP, Side.BUY, stop=105, expire_ns=50, account=3))
    book.add(conditional(2, OrderType.STOP, Side.BUY, stop=106, expire_ns=40, account=3))
    book.add(conditional(3, OrderType.STOP, Side.SELL, stop=90, expire_ns=40, account=4))
    assert book.expired(39) == [] and book.expired(40) == [2, 3] and book.expired(50) == [2, 3, 1]
    assert book.orders_of(3) == [1, 2] and book.orders_of(4) == [3]
    book.remove(2)
    assert book.observe(WorkingType.MARK_PRICE, 105)[0].order_id == 1
    assert book.expired(50) == [3] and book.orders_of(3) == [] and book.orders_of(4) == [3]
    assert 3 not in book._by_account
    book.check_invariants()


def test_check_invariants_catches_a_drifted_index():
    book = TriggerBook()
    book.add(conditional(1, OrderType.STOP_MARKET, Side.SELL, stop=95))
    del book._orders[1]  # (what a writer that bypassed the methods would leave)
    with pytest.raises(AssertionError, match="drifted"):
        book.check_invariants()


def test_an_observed_price_looks_only_at_the_orders_it_reaches(monkeypatch):
    """With 2,000 stops and take-profits waiting away from the price and 3 trailing stops following it, a mark
    that fires nothing observes the 3 trailing stops only; one that reaches 5 levels observes nothing more (a
    stop fires without being asked) and fires those 5. (The oracle asks all 2,003 every time.)"""
    calls = []
    real = ConditionalOrder.observe

    def counted(self, price_ticks):
        calls.append(self.order_id)
        return real(self, price_ticks)

    monkeypatch.setattr(ConditionalOrder, "observe", counted)
    book = TriggerBook()
    for i in range(1, 2_001):
        kind = OrderType.STOP_MARKET if i % 2 else OrderType.TAKE_PROFIT_MARKET
        book.add(conditional(i, kind, Side.SELL, stop=9_000 - i if kind == OrderType.STOP_MARKET else 11_000 + i))
    for i in range(2_001, 2_004):
        book.add(conditional(i, OrderType.TRAILING_STOP_MARKET, Side.SELL, callback_e8=50_000_000))  # 50 %
    assert book.observe(WorkingType.MARK_PRICE, 10_000) == []
    assert sorted(calls) == [2_001, 2_002, 2_003]
    calls.clear()
    fired = book.observe(WorkingType.MARK_PRICE, 11_010)  # take-profits at 11,002 ... 11,010 (even ids 2 ... 10)
    assert [o.order_id for o in fired] == [2, 4, 6, 8, 10]
    assert sorted(calls) == [2_001, 2_002, 2_003]
    oracle = LinearTriggerBook()
    calls.clear()
    for i in range(1, 2_001):
        oracle.add(conditional(i, OrderType.STOP_MARKET, Side.SELL, stop=9_000 - i))
    oracle.observe(WorkingType.MARK_PRICE, 10_000)
    assert len(calls) == 2_000  # (what the index saves)


def test_an_exchange_with_many_waiting_stops_fires_them_as_the_oracle(monkeypatch):
    """Two exchanges, one on the oracle: the same events command by command and the same state hash, through
    marks that fire stops in bunches and fills that fire last-price orders."""
    def build(oracle: bool) -> Exchange:
        ex = Exchange([make_instrument()], keep_commands=False)
        if oracle:
            ex._triggers["TESTUSDT"] = LinearTriggerBook()
        return ex

    rng = random.Random(5)
    commands = [SetMarkPrice("TESTUSDT", 10_000)] + [Deposit(a, 10**13) for a in range(1, 6)]
    commands += [PlaceOrder(1, "TESTUSDT", Side.BUY, 50, 10_000 - i) for i in range(0, 40)]
    commands += [PlaceOrder(2, "TESTUSDT", Side.SELL, 50, 10_001 + i) for i in range(0, 40)]
    for _ in range(600):
        account = rng.randint(3, 5)
        side = rng.choice((Side.BUY, Side.SELL))
        kind = rng.choice((OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET))
        rises = (side == Side.BUY) == (kind == OrderType.STOP_MARKET)
        stop = 10_000 + (rng.randint(5, 60) if rises else -rng.randint(5, 60))
        commands.append(PlaceOrder(account, "TESTUSDT", side, 1, 0, kind, stop_ticks=stop,
                                   working_type=rng.choice((WorkingType.MARK_PRICE, WorkingType.CONTRACT_PRICE))))
    for i in range(60):
        commands.append(SetMarkPrice("TESTUSDT", 10_000 + rng.randint(-70, 70)))
        commands.append(PlaceOrder(rng.randint(3, 5), "TESTUSDT", rng.choice((Side.BUY, Side.SELL)), 2, 0,
                                   OrderType.MARKET))
    indexed, oracle = build(False), build(True)
    fired = 0
    for command in commands:
        events = indexed.apply(command)
        assert events == oracle.apply(command)
        fired += sum(type(e).__name__ == "OrderTriggered" for e in events)
        indexed._triggers["TESTUSDT"].check_invariants()
    assert indexed.state_hash() == oracle.state_hash()
    assert fired > 100 and len(indexed._triggers["TESTUSDT"]) > 50  # (the stream fires many and leaves many)
