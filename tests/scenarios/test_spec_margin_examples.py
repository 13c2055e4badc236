"""rules §11 worked examples 1, 2, 3, 6, 7, 8, 9, 13 and the non-liquidation parts of 12 and 14, played
through the Exchange (the liquidations themselves: ``test_spec_liquidation_examples.py``). Every expected number is derived by hand in the comments (never by the code under
test). ``CheckedExchange`` checks conservation and every rules §9 invariant after each command."""
import pytest

from exchange import (
    AdvanceTime, Client, Instrument, LiquidationStarted, MarginCall, OrderTriggered, PositionSide, Rejected, RejectCode,
    SetIndexPrice, SetMarkPrice,
)
from exchange.accounts.margin import RATIO_INF
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, USDT, of, rejected, units

BTC = "BTCUSDT"
BOTH = PositionSide.BOTH


def btc(**overrides) -> Instrument:
    """BTCUSDT: tick 0.01, lot 0.001 (K = 1,000 units per tick·lot), Binance-like brackets, no fees."""
    params = dict(maker_fee="0", taker_fee="0")
    params.update(overrides)
    return Instrument.linear(BTC, **params)


def coin(symbol: str, **overrides) -> Instrument:
    """A coin with tick 0.01 and lot 1 (K = 10⁶ units per tick·lot), no fees unless given."""
    params = dict(lot_size="1", min_qty="1", maker_fee="0", taker_fee="0")
    params.update(overrides)
    return Instrument.linear(symbol, **params)


def mark(ex, symbol: str, price: str) -> list:
    return ex.apply(SetMarkPrice(symbol, ex.instruments[symbol].price_to_ticks(price)))


def ticks(price: str) -> int:
    return btc().price_to_ticks(price)


# -- 1. cross long, small account ------------------------------------------------------------------------
def test_example_1_a_longs_002_btc_at_50000_with_500_usdt_and_is_liquidated_at_25100_40():
    ex = CheckedExchange([btc()])
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("500")
    maker.deposit("100000")
    mark(ex, BTC, "50000")
    maker.sell(BTC, "0.02", "50000")
    a.buy(BTC, "0.02", "50000")  # default leverage 20

    position = ex.position(1, BTC)
    assert (position.lots, position.leverage) == (20, 20)  # 0.02 BTC = 20 lots of 0.001
    assert position.notional_units == units("1000")  # 0.02 × 50,000
    assert position.initial_margin_units == units("50")  # 1,000 / 20
    assert position.maintenance_margin_units == units("4")  # 1,000 × 0.4% − cum 0
    assert ex.available_balance(1) == units("450")  # 500 − 50
    # LP = (500 − 0.02 × 50,000) / (0.02 × 0.004 − 0.02) = −500 / −0.01992 = 25,100.4016… -> 25,100.40
    assert ex.liquidation_price_ticks(1, BTC) == ticks("25100.40")
    assert position.liquidation_price_ticks == ticks("25100.40")
    # bankruptcy: 500 + 0.02 × (P − 50,000) = 0 -> P = 25,000
    assert ex.bankruptcy_price_ticks(1, BTC) == ticks("25000")

    # at 25,100.41: uPnL = 0.02 × (25,100.41 − 50,000) = −497.9918 -> balance 2.0082 > MM 502.0082 × 0.4% =
    # 2.0080328: not liquidatable, but the ratio crossed 80% -> one margin call
    events = mark(ex, BTC, "25100.41")
    # ratio = 2.0080328 / 2.0082 = 1 − 0.0001672 / 2.0082 = 0.99991674136… -> ceil(× 1e8) = 99,991,675
    assert of(events, MarginCall) == [MarginCall(1, "", BOTH, 99_991_675)]
    assert ex.liquidatable() == []
    # at 25,100.40: balance 2.008 ≤ MM 2.008032 -> liquidated; ratio ceil(2.008032 / 2.008 × 1e8)
    events = mark(ex, BTC, "25100.40")
    assert of(events, MarginCall) == []  # still above the warning level: no second call
    assert of(events, LiquidationStarted) == [LiquidationStarted(1, "", BOTH, 100_001_594, units("2.008"),
                                                                 units("2.008032"))]
    assert ex.liquidatable() == []


# -- 2. maintenance amount with derived cum --------------------------------------------------------------
def test_example_2_cum_of_the_third_bracket_is_1300_and_mm_at_500000_is_3700():
    ex = CheckedExchange([btc()])  # brackets 0-50k @0.4%, 50k-250k @0.5%, 250k-1M @1%, ...
    b, c, maker = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    for trader in (b, c):
        trader.deposit("100000")
    maker.deposit("1000000")
    mark(ex, BTC, "50000")
    maker.sell(BTC, "20", "50000")
    b.buy(BTC, "10", "50000")  # notional 500,000
    c.buy(BTC, "5.28", "50000")  # notional 264,000
    # cum2 = 50,000 × (0.5% − 0.4%) = 50; cum3 = 250,000 × (1% − 0.5%) + 50 = 1,300
    # MM(500,000) = 500,000 × 1% − 1,300 = 3,700
    assert ex.maintenance_margin(1, BTC) == units("3700")
    # 264,000 sits at MMR 1%: MM = 2,640 − 1,300 = 1,340 (= 50,000 × 0.4% + 200,000 × 0.5% + 14,000 × 1%)
    assert ex.maintenance_margin(2, BTC) == units("1340")


# -- 3. tiered MM, marginal ------------------------------------------------------------------------------
def test_example_3_a_3500_position_on_1000_wide_tiers_has_mm_92_5():
    tiers = [("1000", "0.02", 20), ("2000", "0.025", 20), ("3000", "0.03", 20), ("4000", "0.035", 20),
             ("5000", "0.04", 20)]
    ex = CheckedExchange([btc(brackets=tiers, max_leverage=20)])
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("1000")
    maker.deposit("1000")
    mark(ex, BTC, "50000")
    maker.sell(BTC, "0.07", "50000")
    a.buy(BTC, "0.07", "50000")  # 3,500 notional
    # 1,000 × 2% + 1,000 × 2.5% + 1,000 × 3% + 500 × 3.5% = 20 + 25 + 30 + 17.5
    assert ex.maintenance_margin(1, BTC) == units("92.5")


# -- 6. mark price ---------------------------------------------------------------------------------------
def test_example_6_mark_is_the_median_of_50002_5_50010_and_50020():
    ex = CheckedExchange([btc()])
    a, b, c = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    for trader in (a, b, c):
        trader.deposit("10000")
    a.sell(BTC, "0.002", "50020")
    b.buy(BTC, "0.001", "50020")  # last trade 50,020; 0.001 still offered at 50,020
    c.buy(BTC, "0.001", "50000")  # best bid 50,000 -> mid 50,010
    ex.prices.feeds[BTC].funding_rate_e8 = 10_000  # last funding rate 0.01% (set by funding, a later stage)
    ex.apply(AdvanceTime(4 * 3600 * NS_PER_SECOND))  # 4 h of the 8 h interval left
    events = ex.apply(SetIndexPrice(BTC, ticks("50000")))
    # P1 = 50,000 × (1 + 0.0001 × 4/8) = 50,002.5; P2 = 50,000 + (50,010 − 50,000) = 50,010; last 50,020
    assert ex.mark_price(BTC) == ticks("50010")
    assert ex.index_price(BTC) == ticks("50000")
    assert [type(e).__name__ for e in events][:2] == ["IndexPriceChanged", "MarkPriceChanged"]


# -- 7. price band and min notional ----------------------------------------------------------------------
def test_example_7_price_band_around_mark_100_and_min_notional_5():
    ex = CheckedExchange([btc(taker_fee="0.0005", maker_fee="0.0002")])
    a = Client(ex, 1)
    a.deposit("10000")
    mark(ex, BTC, "100")  # up 1.15, down 0.85
    assert rejected(a.buy(BTC, "1", "115.01")).code == RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP
    assert rejected(a.sell(BTC, "1", "84.99")).code == RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN
    assert not of(a.buy(BTC, "1", "10"), Rejected)  # a buy far below the mark is fine
    # 0.499 × 10 = 4.99 < 5 and not reduce-only
    assert rejected(a.buy(BTC, "0.499", "10")).code == RejectCode.NOTIONAL_TOO_SMALL


# -- 8. triggers -----------------------------------------------------------------------------------------
def test_example_8_stop_take_profit_and_trailing_stop_fire_where_the_spec_says():
    ex = CheckedExchange([btc()])
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("10000")
    maker.deposit("10000")
    mark(ex, BTC, "100")
    maker.sell(BTC, "3", "100")
    a.buy(BTC, "3", "100")  # A is long 3 BTC
    maker.buy(BTC, "10", "101")  # bids for the stops to sell into (inside the band at every mark below)
    stop = a.order(BTC, "SELL", "1", order_type="STOP_MARKET", stop_price="95", reduce_only=True)[0].order_id
    take = a.order(BTC, "SELL", "1", "110", order_type="TAKE_PROFIT", stop_price="110", reduce_only=True)[0].order_id
    trail = a.order(BTC, "SELL", "1", order_type="TRAILING_STOP_MARKET", callback_rate="0.01",
                    activation_price="105", reduce_only=True)[0].order_id

    def fired(price):
        return [e.order_id for e in of(mark(ex, BTC, price), OrderTriggered)]

    assert fired("95.01") == []
    assert fired("95") == [stop]  # STOP_MARKET SELL 95 fires at ≤ 95
    assert ex.position(1, BTC).lots == 2000
    assert fired("109.99") == []
    assert fired("110") == [take]  # TAKE_PROFIT SELL 110 fires at ≥ 110 (activates the trailing stop too)
    assert fired("120") == []  # high 120
    assert fired("118.81") == []
    assert fired("118.80") == [trail]  # 120 × (1 − 1%)
    assert ex.position(1, BTC).lots == 1000


# -- 9. isolated margin added ----------------------------------------------------------------------------
def test_example_9_adding_isolated_margin_moves_the_liquidation_price_9500_8500_9000():
    ex = CheckedExchange([btc(max_leverage=20, brackets=[("1000000000", "0", 20)])])  # MMR 0, no fees
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("10000")
    maker.deposit("100000")
    a.set_margin_mode(BTC, "ISOLATED")
    a.set_leverage(BTC, 20)
    mark(ex, BTC, "10000")
    maker.sell(BTC, "2", "10000")
    a.buy(BTC, "1", "10000")
    position = ex.position(1, BTC)
    assert position.isolated_margin_units == units("500")  # 10,000 / 20
    assert ex.wallet(1) == units("9500")
    assert position.liquidation_price_ticks == ticks("9500")  # 10,000 − 500 / 1
    a.adjust_isolated_margin(BTC, "1000")
    assert ex.position(1, BTC).isolated_margin_units == units("1500")
    assert ex.liquidation_price_ticks(1, BTC) == ticks("8500")  # 10,000 − 1,500 / 1
    a.buy(BTC, "1", "10000")  # adds 10,000 / 20 = 500 of margin, size 2
    position = ex.position(1, BTC)
    assert (position.lots, position.isolated_margin_units) == (2000, units("2000"))
    assert position.liquidation_price_ticks == ticks("9000")  # (2 × 10,000 − 2,000) / 2
    assert ex.wallet(1) == units("8000")


# -- 12. isolated loss cap (without the liquidation itself) ----------------------------------------------
def test_example_12_an_isolated_5x_long_with_2000_cannot_touch_the_rest_of_the_account():
    fees = dict(taker_fee="0.0005", maker_fee="0.0002")
    ex = CheckedExchange([coin("AAAUSDT", **fees), coin("BBBUSDT", **fees)])
    z, maker = Client(ex, 1), Client(ex, 2)
    z.deposit("10000")
    maker.deposit("1000000")
    for symbol in ("AAAUSDT", "BBBUSDT"):
        mark(ex, symbol, "1000")
        maker.sell(symbol, "10", "1000")
    z.set_margin_mode("AAAUSDT", "ISOLATED")
    z.set_leverage("AAAUSDT", 5)
    z.buy("AAAUSDT", "10", "1000")  # 10,000 notional at 5x: 2,000 isolated; taker fee 10,000 × 0.05% = 5
    z.buy("BBBUSDT", "1", "1000")  # a cross position elsewhere; fee 0.5
    assert ex.position(1, "AAAUSDT").isolated_margin_units == units("2000")
    assert ex.wallet(1) == units("7994.5")  # 10,000 − 2,000 − 5 − 0.5

    events = mark(ex, "AAAUSDT", "700")  # the price collapses 30%: the isolated part is −1,000 (≤ its MM)
    # 2,000 − 10 × 300 = −1,000; MM 7,000 × 0.4% = 28: only the isolated part is liquidated
    assert of(events, LiquidationStarted) == [LiquidationStarted(1, "AAAUSDT", BOTH, RATIO_INF, units("-1000"),
                                                                 units("28"))]
    assert ex.position(1, "AAAUSDT") is None
    assert ex.wallet(1) == units("7994.5")  # untouched: ≥ 8,000 − fees
    assert ex.margin_balance(1) == units("7994.5")  # cross: wallet + BBB uPnL 0
    assert ex.position(1, "BBBUSDT").lots == 1


# -- 13. cross offset ------------------------------------------------------------------------------------
def test_example_13_a_cross_winner_keeps_a_cross_loser_alive_which_alone_would_be_liquidated():
    ex = CheckedExchange([coin("AAAUSDT"), coin("BBBUSDT")])
    x, y, maker = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    x.deposit("10000")
    y.deposit("10000")
    maker.deposit("1000000")
    for symbol in ("AAAUSDT", "BBBUSDT"):
        mark(ex, symbol, "1000")
    maker.sell("AAAUSDT", "40", "1000")
    maker.buy("BBBUSDT", "20", "1000")
    x.buy("AAAUSDT", "20", "1000")  # X: cross long A ...
    x.sell("BBBUSDT", "20", "1000")  # ... and cross short B
    y.set_margin_mode("AAAUSDT", "ISOLATED")
    y.buy("AAAUSDT", "20", "1000")  # Y: A alone, isolated ...
    y.adjust_isolated_margin("AAAUSDT", "9000")  # ... with the same 10,000 of margin
    assert ex.position(2, "AAAUSDT").isolated_margin_units == units("10000")

    mark(ex, "BBBUSDT", "400")  # B gains 20 × 600 = 12,000 (first: marks move one at a time)
    mark(ex, "AAAUSDT", "480")  # A loses 20 × 520 = 10,400
    # X: 10,000 − 10,400 + 12,000 = 11,600 > MM = 9,600 × 0.4% + 8,000 × 0.4% = 70.4
    assert ex.margin_balance(1) == units("11600")
    assert ex.maintenance_margin(1) == units("70.4")
    # Y: 10,000 − 10,400 = −400 ≤ MM 38.4 -> liquidated (when A fell); X is not
    assert ex.position(2, "AAAUSDT") is None
    assert ex.position(1, "AAAUSDT").lots == 20 and ex.position(1, "BBBUSDT").lots == -20


# -- 14. leverage arithmetic (without the liquidation itself) --------------------------------------------
@pytest.fixture
def five_x():
    """A puts 5,000 of its 10,000 into an isolated 5x long of 25 AAA at 1,000 (25,000 notional)."""
    ex = CheckedExchange([coin("AAAUSDT")])
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("10000")
    maker.deposit("1000000")
    mark(ex, "AAAUSDT", "1000")
    a.set_margin_mode("AAAUSDT", "ISOLATED")
    a.set_leverage("AAAUSDT", 5)
    maker.sell("AAAUSDT", "25", "1000")
    a.buy("AAAUSDT", "25", "1000")
    assert ex.position(1, "AAAUSDT").isolated_margin_units == units("5000")  # 25,000 / 5
    return ex, a, maker


def test_example_14_plus_20_percent_is_plus_5000_which_is_100_percent_on_margin(five_x):
    ex, _, _ = five_x
    mark(ex, "AAAUSDT", "1200")
    assert ex.position(1, "AAAUSDT").unrealized_pnl_units == units("5000")  # 25 × 200
    assert ex.margin_balance(1, "AAAUSDT") == units("10000")  # 5,000 margin + 5,000: 100% on margin


def test_example_14_minus_20_percent_is_liquidatable_before_the_5000_is_gone_and_never_loses_more(five_x):
    ex, a, maker = five_x
    # LP = (5,000 − 25 × 1,000) / (25 × 0.004 − 25) = 803.2128… -> tick 803.21 (balance 80.25 ≤ MM 80.321)
    assert ex.liquidation_price_ticks(1, "AAAUSDT") == 80_321
    assert ex.bankruptcy_price_ticks(1, "AAAUSDT") == 80_000  # 5,000 / 25 = 200 below entry
    assert of(mark(ex, "AAAUSDT", "803.22"), LiquidationStarted) == []  # balance 80.5 > MM 80.322
    # 5,000 − 25 × 196.79 = 80.25 ≤ MM 20,080.25 × 0.4% = 80.321
    assert [e.symbol for e in of(mark(ex, "AAAUSDT", "803.21"), LiquidationStarted)] == ["AAAUSDT"]
    assert ex.position(1, "AAAUSDT") is None
