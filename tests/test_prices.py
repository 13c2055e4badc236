"""Index and mark prices (rules §6): the three mark sources, P1/P2 rounding, the basis window, and a mark
change feeding triggers and margin like SetMarkPrice does. Prices in ticks of 0.01."""
from exchange import (
    AdvanceTime, Client, Deposit, IndexPriceChanged, MarkParams, MarkPriceChanged, MarkSource, OrderTriggered,
    RejectCode, SetIndexPrice, SetMarkPrice,
)
from exchange.prices import basis_mark_ticks, median_mark_ticks, premium_mark_ticks
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, USDT, rejected
from tests.conftest import make_instrument

SYM = "TESTUSDT"
HOUR = 3600 * NS_PER_SECOND


def venue(source=MarkSource.MEDIAN, window_s=60):
    inst = make_instrument(maker_fee="0", taker_fee="0", mark=MarkParams(source, window_s * NS_PER_SECOND))
    ex = CheckedExchange([inst])
    for account in (1, 2, 3):
        ex.apply(Deposit(account, 10**6 * USDT))
    return ex, Client(ex, 1), Client(ex, 2), Client(ex, 3)


def test_spec_example_6_components():
    # P1 = 50,000 × (1 + 0.01% × 4 h / 8 h) = 50,002.50
    assert premium_mark_ticks(5_000_000, 10_000, 4 * HOUR, 8 * HOUR) == 5_000_250
    # P2 = 50,000 + mean(mid − index) = 50,000 + 10 (samples kept doubled: 2 × 10 ticks·100)
    assert basis_mark_ticks(5_000_000, [2_000, 2_000]) == 5_001_000
    assert median_mark_ticks(5_000_250, 5_001_000, 5_002_000) == 5_001_000


def test_p1_and_p2_round_down():
    # 100.00 × (1 + 0.03% × 1 / 8) = 100.00375 -> 100.00
    assert premium_mark_ticks(10_000, 30_000, HOUR, 8 * HOUR) == 10_000
    # basis samples +0.5 and +1 tick: mean 0.75 -> floor 0; −0.5 -> floor −1
    assert basis_mark_ticks(10_000, [1, 2]) == 10_000
    assert basis_mark_ticks(10_000, [-1]) == 9_999
    assert basis_mark_ticks(10_000, []) == 10_000


def test_median_source_uses_the_book_and_the_last_trade():
    ex, a, b, c = venue()
    events = ex.apply(SetIndexPrice(SYM, 10_000))  # no book, no trade: every component is the index
    assert events == [IndexPriceChanged(SYM, 10_000), MarkPriceChanged(SYM, 10_000)]
    a.sell(SYM, "2", "100.30")
    b.buy(SYM, "1", "100.30")  # last 100.30
    c.buy(SYM, "1", "100.10")  # mid (100.10 + 100.30) / 2 = 100.20
    ex.apply(SetIndexPrice(SYM, 10_000))  # samples: the first had no book; this one +0.20
    # P1 = 100.00 (rate 0), P2 = 100.20, last 100.30 -> 100.20
    assert ex.mark_price(SYM) == 10_020


def test_basis_samples_leave_the_window():
    ex, a, b, c = venue(window_s=10)
    a.sell(SYM, "1", "101")
    c.buy(SYM, "1", "99.40")  # mid 100.20
    ex.apply(SetIndexPrice(SYM, 10_000))  # sample +0.20 at t = 0
    a.cancel_all(SYM)
    c.cancel_all(SYM)
    a.sell(SYM, "1", "100.10")
    c.buy(SYM, "1", "99.90")  # mid 100.00
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    ex.apply(SetIndexPrice(SYM, 10_000))  # samples +0.20, 0 -> mean +0.10; last = index (no trade)
    assert ex.mark_price(SYM) == 10_000  # median(100.00, 100.10, 100.00)
    ex.apply(AdvanceTime(10 * NS_PER_SECOND))  # the t = 0 sample is now out of the 10 s window
    ex.apply(SetIndexPrice(SYM, 10_010))  # kept: (t=5) 0 and (t=10) 100.00 − 100.10 = −0.10 (doubled: −20)
    assert list(ex.prices.feeds[SYM].samples) == [(5 * NS_PER_SECOND, 0), (10 * NS_PER_SECOND, -20)]
    # P2 = 100.10 + floor(−20 / 4) = 100.05; median(P1 100.10, 100.05, last = index 100.10) = 100.10
    assert ex.mark_price(SYM) == 10_010


def test_index_source_and_external_source():
    ex, *_ = venue(MarkSource.INDEX)
    ex.apply(SetIndexPrice(SYM, 12_345))
    assert ex.mark_price(SYM) == 12_345
    ex, *_ = venue(MarkSource.EXTERNAL)
    assert ex.apply(SetIndexPrice(SYM, 12_345)) == [IndexPriceChanged(SYM, 12_345)]
    assert (ex.mark_price(SYM), ex.index_price(SYM)) == (0, 12_345)
    ex.apply(SetMarkPrice(SYM, 11_111))
    assert ex.mark_price(SYM) == 11_111


def test_an_index_move_fires_mark_triggers_like_a_mark_command():
    ex, a, _, _ = venue(MarkSource.INDEX)
    ex.apply(SetIndexPrice(SYM, 10_000))
    stop = a.order(SYM, "BUY", "1", order_type="STOP_MARKET", stop_price="101")[0].order_id
    events = ex.apply(SetIndexPrice(SYM, 10_100))
    assert OrderTriggered(SYM, stop, 1, 10_100) in events


def test_invalid_index_prices_are_rejected():
    ex, *_ = venue()
    assert rejected(ex.apply(SetIndexPrice("NOPE", 1))).code == RejectCode.INVALID_SYMBOL
    for bad in (0, -1, 10**12, "100"):
        assert rejected(ex.apply(SetIndexPrice(SYM, bad))).code == RejectCode.MALFORMED
