"""The Exchange sequencer: commands in, events out, triggers, time, rejects, state hash."""
import pytest

from exchange import (
    AdvanceTime, AmendOrder, BalanceChanged, CancelAll, CancelOrder, CancelReason, Client, Deposit, Exchange, Fill,
    MarginCall, OrderAccepted, OrderCanceled, OrderTriggered, OrderType, PlaceOrder, PositionChanged, Rejected,
    RejectCode, SetIndexPrice, SetMarkPrice, Side, STPMode, TimeAdvanced, TimeInForce, WorkingType,
)
from tests.conftest import COMPILED, make_instrument

SYM = "TESTUSDT"
BUY, SELL = Side.BUY, Side.SELL


FUNDED = range(1, 10)  # accounts 1..9 hold 1,000,000 USDT each: these tests are about orders, not margin


@pytest.fixture
def ex():
    exchange = Exchange([make_instrument()])
    for account in FUNDED:
        exchange.apply(Deposit(account, 1_000_000 * 10**8))
    return exchange


def apply(ex, command):
    """Apply and check the rules that hold after every command; return the order-level events (the ledger's
    PositionChanged / BalanceChanged / MarginCall are covered by the account tests)."""
    before = ex.state_hash()
    events = ex.apply(command)
    ex.check_invariants()
    if any(isinstance(e, Rejected) for e in events) and len(events) == 1:
        assert ex.state_hash() == before, "a rejected command changed the state"
    return [e for e in events if not isinstance(e, (PositionChanged, BalanceChanged, MarginCall))]


def limit(account, side, qty, price, **kw):
    return PlaceOrder(account, SYM, side, qty, price, **kw)


def test_limit_orders_cross_and_fill_with_fees(ex):
    assert apply(ex, limit(1, SELL, 10, 10000)) == [OrderAccepted(SYM, 1, 1, SELL, OrderType.LIMIT, 10000, 10)]
    events = apply(ex, limit(2, BUY, 4, 10100))
    fill = events[1]
    assert isinstance(fill, Fill)
    assert (fill.price_ticks, fill.qty_lots, fill.maker_order_id, fill.taker_order_id) == (10000, 4, 1, 2)
    # notional = 10000 ticks × 4 lots × K (10⁶) = 4 × 10¹⁰ units (400 USDT); taker 0.05% = 0.2 USDT, maker 0.02%
    assert fill.taker_fee_units == 20_000_000 and fill.maker_fee_units == 8_000_000
    assert (fill.taker_leaves_lots, fill.maker_leaves_lots) == (0, 6)
    assert ex.book(SYM).best_ask() == 10000


def test_unknown_symbol_and_bad_commands_are_rejected_without_change(ex):
    apply(ex, limit(1, SELL, 10, 10000))
    for command in (
        PlaceOrder(1, "NOPE", BUY, 1, 100),
        CancelOrder(1, "NOPE", 1),
        AmendOrder(1, "NOPE", 1, 100, 1),
        CancelAll(1, "NOPE"),
        SetMarkPrice("NOPE", 100),
    ):
        (event,) = apply(ex, command)
        assert event.code == RejectCode.INVALID_SYMBOL
    (event,) = apply(ex, SetMarkPrice(SYM, 0))
    assert event.code == RejectCode.MALFORMED
    top = ex.instruments[SYM].max_price_ticks
    assert event.message == f"SetMarkPrice.mark_ticks: 0 is outside {SYM}'s prices 1..{top} ticks."
    (event,) = apply(ex, SetIndexPrice(SYM, top + 1))
    assert event.code == RejectCode.MALFORMED and event.symbol == SYM
    assert event.message == f"SetIndexPrice.index_ticks: {top + 1} is outside {SYM}'s prices 1..{top} ticks."
    apply(ex, AdvanceTime(10))
    (event,) = apply(ex, AdvanceTime(9))
    assert event.code == RejectCode.MALFORMED and ex.now_ns == 10


def test_rejected_place_does_not_consume_an_order_id(ex):
    (event,) = apply(ex, limit(1, BUY, 0, 10000))
    assert event.code == RejectCode.QTY_LESS_THAN_ZERO and event.message
    assert apply(ex, limit(1, BUY, 1, 10000))[0].order_id == 1


def test_stop_market_on_mark_fires_into_the_book(ex):
    apply(ex, SetMarkPrice(SYM, 10000))
    apply(ex, limit(1, BUY, 5, 9400))
    stop = PlaceOrder(2, SYM, SELL, 3, order_type=OrderType.STOP_MARKET, stop_ticks=9500)
    assert apply(ex, stop) == [OrderAccepted(SYM, 2, 2, SELL, OrderType.STOP_MARKET, 0, 3)]
    assert ex.open_orders(2, SYM) == [2]
    assert apply(ex, SetMarkPrice(SYM, 9501))[1:] == []
    events = apply(ex, SetMarkPrice(SYM, 9500))
    assert events[1] == OrderTriggered(SYM, 2, 2, 9500)
    fill = events[2]
    assert isinstance(fill, Fill) and (fill.taker_order_id, fill.price_ticks, fill.qty_lots) == (2, 9400, 3)
    assert ex.open_orders(2, SYM) == []


def test_order_that_would_trigger_immediately_is_rejected(ex):
    apply(ex, SetMarkPrice(SYM, 10000))
    (event,) = apply(ex, PlaceOrder(2, SYM, SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=10000))
    assert event.code == RejectCode.WOULD_TRIGGER_IMMEDIATELY
    (event,) = apply(ex, PlaceOrder(2, SYM, SELL, 1, order_type=OrderType.TAKE_PROFIT_MARKET, stop_ticks=9999))
    assert event.code == RejectCode.WOULD_TRIGGER_IMMEDIATELY


def test_conditional_validation_codes(ex):
    cases = [
        (dict(order_type=OrderType.STOP_MARKET, stop_ticks=0), RejectCode.STOP_PRICE_LESS_THAN_ZERO),
        (dict(order_type=OrderType.STOP_MARKET, stop_ticks=10**9), RejectCode.STOP_PRICE_GREATER_THAN_MAX_PRICE),
        (dict(order_type=OrderType.STOP, stop_ticks=9000, price_ticks=0), RejectCode.PRICE_LESS_THAN_ZERO),
        (dict(order_type=OrderType.STOP_MARKET, stop_ticks=9000, price_ticks=5), RejectCode.MALFORMED),
        (dict(order_type=OrderType.TRAILING_STOP_MARKET, callback_e8=10), RejectCode.INVALID_CALLBACK_RATE),
        (dict(order_type=OrderType.TRAILING_STOP_MARKET, callback_e8=10**6, activation_ticks=9000),
         RejectCode.INVALID_ACTIVATION_PRICE),
        (dict(order_type=OrderType.STOP, stop_ticks=9000, price_ticks=9000, tif=TimeInForce.GTD, expire_ns=0),
         RejectCode.GTD_TIME_INVALID),
        (dict(order_type=OrderType.LIMIT, price_ticks=9000, close_position=True), RejectCode.MALFORMED),
    ]
    apply(ex, SetMarkPrice(SYM, 10000))
    for kwargs, code in cases:
        (event,) = apply(ex, PlaceOrder(2, SYM, SELL, 1, **kwargs))
        assert event.code == code, kwargs



def test_malformed_orders_name_the_field_at_fault(ex):
    """-1102 on a PlaceOrder names what breaks its type's shape, on the compiled fast path (LIMIT/MARKET) and
    the engine's path (conditional orders) alike; the state is unchanged (``apply``)."""
    apply(ex, SetMarkPrice(SYM, 10000))
    cases = [
        (dict(order_type=OrderType.MARKET, price_ticks=9000),
         "PlaceOrder.price_ticks: a MARKET order takes no price (got 9000)."),
        (dict(order_type=OrderType.STOP_MARKET, stop_ticks=9000, price_ticks=5),
         "PlaceOrder.price_ticks: a STOP_MARKET order takes no price (got 5)."),
        (dict(order_type=OrderType.STOP_MARKET, stop_ticks=9000, close_position=True),
         "PlaceOrder.qty_lots: a close_position order takes no quantity (got 1): it closes the whole position "
         "when it fires."),
        (dict(order_type=OrderType.TRAILING_STOP_MARKET, callback_e8=10**6, stop_ticks=9000),
         "PlaceOrder.stop_ticks: a TRAILING_STOP_MARKET order takes activation_ticks and callback_e8, not "
         "stop_ticks (got 9000)."),
        (dict(order_type=OrderType.LIMIT, price_ticks=9000, close_position=True),
         "PlaceOrder.close_position: only STOP_MARKET and TAKE_PROFIT_MARKET orders close a position (this one "
         "is LIMIT)."),
    ]
    for kwargs, message in cases:
        (event,) = apply(ex, PlaceOrder(2, SYM, SELL, 1, **kwargs))
        assert (event.code, event.message, event.symbol, event.account_id) == (
            RejectCode.MALFORMED, message, SYM, 2), kwargs
    (event,) = apply(ex, PlaceOrder(2, SYM, SELL, 0, order_type=OrderType.STOP_MARKET, stop_ticks=9000,
                                    close_position=True, reduce_only=True))
    assert event.message == "PlaceOrder.reduce_only: a close_position order takes no reduce_only flag (it only closes)."

def test_last_price_stops_cascade_in_order_id_order(ex):
    # bids at 99, 98, 97; two sell stops on the last price at 99 and 98; a sale at 99 sets them off
    for price in (9900, 9800, 9700):
        apply(ex, limit(1, BUY, 1, price))
    apply(ex, PlaceOrder(2, SYM, SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=9800,
                         working_type=WorkingType.CONTRACT_PRICE))  # id 4
    apply(ex, PlaceOrder(3, SYM, SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=9900,
                         working_type=WorkingType.CONTRACT_PRICE))  # id 5
    events = apply(ex, limit(4, SELL, 1, 9900))  # trades at 99 -> id 5 fires, trades at 98 -> id 4 fires
    kinds = [(type(e).__name__, getattr(e, "order_id", getattr(e, "taker_order_id", None))) for e in events]
    assert kinds == [
        ("OrderAccepted", 6), ("Fill", 6), ("OrderTriggered", 5), ("Fill", 5), ("OrderTriggered", 4), ("Fill", 4),
    ]
    assert [e.price_ticks for e in events if isinstance(e, Fill)] == [9900, 9800, 9700]
    assert ex.book(SYM).best_bid() == 0


def test_trailing_stop_on_last_price(ex):
    apply(ex, PlaceOrder(9, SYM, SELL, 1, order_type=OrderType.TRAILING_STOP_MARKET, callback_e8=1_000_000,
                         working_type=WorkingType.CONTRACT_PRICE))  # id 1, active from the first trade
    apply(ex, limit(1, BUY, 100, 11880))  # id 2: a bid at 118.80 waits for the stop
    for price in (12000, 11900):  # trades at 120 then 119: high 120, not yet 1% below
        apply(ex, limit(2, SELL, 1, price, tif=TimeInForce.GTC))
        events = apply(ex, limit(3, BUY, 1, price, tif=TimeInForce.IOC))
        assert not any(isinstance(e, OrderTriggered) for e in events)
    events = apply(ex, limit(4, SELL, 1, 11880))  # trades at 118.80 = 120 × 0.99 -> fires
    assert OrderTriggered(SYM, 1, 9, 11880) in events
    assert ex.conditional_order(SYM, 1) is None


def test_cancel_amend_and_cancel_all_cover_conditional_orders(ex):
    apply(ex, SetMarkPrice(SYM, 10000))
    apply(ex, PlaceOrder(2, SYM, SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=9000))  # 1
    apply(ex, limit(2, BUY, 1, 9000))  # 2
    apply(ex, PlaceOrder(2, SYM, SELL, 1, order_type=OrderType.STOP_MARKET, stop_ticks=9100))  # 3
    (event,) = apply(ex, CancelOrder(3, SYM, 1))
    assert event.code == RejectCode.UNKNOWN_ORDER
    (event,) = apply(ex, AmendOrder(2, SYM, 1, 9000, 2))
    assert event.code == RejectCode.MODIFY_LIMIT_ONLY
    assert apply(ex, CancelOrder(2, SYM, 1)) == [OrderCanceled(SYM, 1, 2, SELL, 0, 1, CancelReason.USER)]
    events = apply(ex, CancelAll(2, SYM))
    assert [(e.order_id, e.reason) for e in events] == [(2, CancelReason.USER), (3, CancelReason.USER)]
    assert ex.open_orders(2, SYM) == []


def test_advance_time_expires_gtd_orders_resting_and_conditional(ex):
    apply(ex, SetMarkPrice(SYM, 10000))
    apply(ex, limit(1, BUY, 1, 9000, tif=TimeInForce.GTD, expire_ns=100))  # 1
    apply(ex, PlaceOrder(1, SYM, BUY, 1, 10500, order_type=OrderType.STOP, stop_ticks=10500, tif=TimeInForce.GTD,
                         expire_ns=100))  # 2
    assert apply(ex, AdvanceTime(99)) == [TimeAdvanced(99)]
    events = apply(ex, AdvanceTime(100))
    assert [(type(e).__name__, getattr(e, "order_id", None)) for e in events] == [
        ("TimeAdvanced", None), ("OrderCanceled", 1), ("OrderCanceled", 2),
    ]
    assert all(e.reason == CancelReason.GTD_EXPIRED for e in events[1:])


def test_stp_through_the_exchange(ex):
    apply(ex, limit(1, SELL, 5, 10000))
    events = apply(ex, limit(1, BUY, 5, 10000, stp=STPMode.EXPIRE_TAKER))
    assert events[-1] == OrderCanceled(SYM, 2, 1, BUY, 10000, 5, CancelReason.STP_TAKER)


def test_client_converts_human_values_and_rejects_off_grid_without_a_command(ex):
    trader = Client(ex, account_id=7)
    journal = list(ex.journal)
    (event,) = trader.buy(SYM, "1", "100.005")
    assert event.code == RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE
    (event,) = trader.buy(SYM, "1.5", "100")
    assert event.code == RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE
    assert ex.journal == journal
    (event,) = trader.sell(SYM, "2", "100.01", tif="GTX")
    assert event == OrderAccepted(SYM, 1, 7, SELL, OrderType.LIMIT, 10001, 2)
    assert trader.amend(SYM, 1, "100.02", "1")[0].price_ticks == 10002
    assert trader.cancel(SYM, 1)[0].reason == CancelReason.USER
    assert trader.order(SYM, "SELL", "1", order_type="STOP_MARKET", stop_price="99")[0].order_id == 2
    assert trader.cancel_all(SYM)[0].order_id == 2
    assert trader.buy("NOPE", "1")[0].code == RejectCode.INVALID_SYMBOL


def test_apply_refuses_non_commands(ex):
    with pytest.raises(TypeError):
        ex.apply("not a command")


def test_exchange_needs_unique_instruments():
    with pytest.raises(ValueError):
        Exchange([])
    with pytest.raises(ValueError):
        Exchange([make_instrument(), make_instrument()])


@pytest.mark.parametrize("implementation", ["python"] + (["cython"] if COMPILED else []))
def test_reduce_only_trim_is_not_subject_to_the_price_band(implementation):
    """Found by the boundary fuzzer: with the mark far below a resting reduce-only BUY, the trim after the
    position shrank went through the trader's amend, whose band filter (-4016) refused it silently; the order
    stayed larger than the position. The trim is the venue's own change: no filters apply."""
    from exchange import Deposit, PlaceOrder, SetMarkPrice, Side, OrderType, OrderAmended
    from tests.checked import CheckedExchange

    ex = CheckedExchange([make_instrument()], implementation=implementation)
    for account in (1, 2, 3):
        ex.apply(Deposit(account, 10**15))
    ex.apply(SetMarkPrice("TESTUSDT", 10_000))
    ex.apply(PlaceOrder(2, "TESTUSDT", Side.BUY, 4, 10_000))
    ex.apply(PlaceOrder(1, "TESTUSDT", Side.SELL, 4, 10_000))              # account 1 short 4
    ex.apply(PlaceOrder(1, "TESTUSDT", Side.BUY, 3, 9_800, reduce_only=True))  # order 3: closes 3 of the 4
    ex.apply(PlaceOrder(1, "TESTUSDT", Side.BUY, 3, 9_900))                # order 4: plain bid
    ex.apply(SetMarkPrice("TESTUSDT", 1))  # the band now ends at floor(1 × 1.5) = 1 tick for buys
    events = ex.apply(PlaceOrder(3, "TESTUSDT", Side.SELL, 3, 0, OrderType.MARKET))  # fills order 4: short 1
    assert ex.position(1, "TESTUSDT").lots == -1
    assert OrderAmended("TESTUSDT", 3, 1, Side.BUY, 9_800, 1, True) in events
    assert ex.book("TESTUSDT").order(3)[4] == 1  # leaves 1: fits the position
