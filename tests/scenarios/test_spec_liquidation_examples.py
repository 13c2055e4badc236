"""rules §11 examples 10 (in the engine), 11, 12 and 14 with their liquidations, and the seeds' promises:
an isolated loss is capped at its margin plus fees; a cross account is liquidated as a whole when its total
equity falls below its total MM; cascades through the median mark. Every expected number is derived by hand
in the comments; ``CheckedExchange`` checks rules §9 after every command.

Coins: tick 0.01, lot 1, K = 10⁶ units per tick·lot (1 lot at 1,000.00 = 1,000 USDT)."""
from exchange import (
    ADLFill, Client, FundInsurance, Instrument, LiquidationFill, LiquidationStarted, PositionSide, SetIndexPrice,
    SetMarkPrice,
)
from exchange.accounts.margin import RATIO_INF
from tests.checked import CheckedExchange, of, units

BOTH = PositionSide.BOTH
NO_MM = (("1000000000", "0", 125),)  # one bracket with MMR 0: "MM ignored"


def coin(symbol: str = "AAAUSDT", **overrides) -> Instrument:
    params = dict(lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0")
    params.update(overrides)
    return Instrument.linear(symbol, **params)


def mark(ex, symbol: str, price: str) -> list:
    return ex.apply(SetMarkPrice(symbol, ex.instruments[symbol].price_to_ticks(price)))


# -- 11. deleveraging ------------------------------------------------------------------------------------
def test_example_11_b_bankrupt_at_1_20_is_deleveraged_against_a_who_gains_100_and_b_ends_at_0():
    ex = CheckedExchange([coin(brackets=NO_MM, liquidation_fee="0")])
    a, b = Client(ex, 1), Client(ex, 2)
    a.deposit("100")
    b.deposit("100")
    mark(ex, "AAAUSDT", "1.00")
    b.sell("AAAUSDT", "500", "1.00")
    a.buy("AAAUSDT", "500", "1.00")  # 500 notional on 100: 5x each, within the default 20x

    events = mark(ex, "AAAUSDT", "2.00")
    # B: 100 − 500 × (2.00 − 1.00) = −400 ≤ MM 0 -> liquidated; BP: 100 − 500 × (P − 1) = 0 -> P = 1.20
    assert of(events, LiquidationStarted) == [LiquidationStarted(2, "", BOTH, RATIO_INF, units("-400"), 0)]
    assert ex.book("AAAUSDT").best_ask() == 0  # nothing in the book, the fund is empty -> ADL against A
    assert of(events, ADLFill)[0].price_ticks == 120  # 1.20
    assert [(e.account_id, e.qty_lots, e.liquidated) for e in of(events, ADLFill)] == [(2, 500, True), (1, 500, False)]
    assert ex.wallet(1) == units("200")  # A: 100 + 500 × (1.20 − 1.00) = +100
    assert ex.wallet(2) == 0  # B: 100 − 100
    assert ex.position(1, "AAAUSDT") is None and ex.position(2, "AAAUSDT") is None
    assert ex.insurance_balance("AAAUSDT") == 0


# -- 12. isolated loss cap -------------------------------------------------------------------------------
def hybrid_account(fund: str | None = None):
    """Z: 10,000; 2,000 isolated in a 5x long of 10 AAA at 1,000 (taker fee 5); a cross long of 1 BBB
    (fee 0.5). The maker (account 2) sold both and bids 10 AAA at 750."""
    fees = dict(taker_fee="0.0005", maker_fee="0.0002")
    ex = CheckedExchange([coin("AAAUSDT", **fees), coin("BBBUSDT", **fees)])
    z, maker = Client(ex, 1), Client(ex, 2)
    z.deposit("10000")
    maker.deposit("1000000")
    if fund:
        ex.apply(FundInsurance("AAAUSDT", units(fund)))
    for symbol in ("AAAUSDT", "BBBUSDT"):
        mark(ex, symbol, "1000")
        maker.sell(symbol, "10", "1000")
    z.set_margin_mode("AAAUSDT", "ISOLATED")
    z.set_leverage("AAAUSDT", 5)
    z.buy("AAAUSDT", "10", "1000")  # 10,000 at 5x: 2,000 isolated; fee 10,000 × 0.05% = 5
    z.buy("BBBUSDT", "1", "1000")  # fee 0.5
    maker.buy("AAAUSDT", "10", "750")
    assert ex.wallet(1) == units("7994.5")  # 10,000 − 2,000 − 5 − 0.5
    return ex


def test_example_12_the_isolated_position_is_liquidated_and_the_account_keeps_8000_minus_fees():
    ex = hybrid_account()
    events = mark(ex, "AAAUSDT", "700")  # −30%: the isolated part is 2,000 − 3,000 = −1,000
    assert [(e.account_id, e.symbol) for e in of(events, LiquidationStarted)] == [(1, "AAAUSDT")]
    # BP = 1,000 − 2,000 / 10 = 800; the bids at 750 are worse, the fund is empty: ADL against the maker's short
    assert [(e.account_id, e.price_ticks, e.qty_lots) for e in of(events, ADLFill)] == [(1, 80_000, 10), (2, 80_000, 10)]
    assert ex.position(1, "AAAUSDT") is None
    assert ex.wallet(1) == units("7994.5")  # ≥ 8,000 − fees (5.5): nothing beyond the 2,000 was touched
    assert ex.position(1, "BBBUSDT").lots == 1  # the cross position elsewhere is unaffected
    assert not ex.in_liquidation(1)  # liquidated to nothing: liquidation mode ends at once


def test_example_12_with_a_fund_the_fund_takes_the_position_over_at_the_bankruptcy_price():
    ex = hybrid_account(fund="5000")
    events = mark(ex, "AAAUSDT", "700")
    fund = ex.insurance_fund_account_id("AAAUSDT")
    assert [(e.price_ticks, e.qty_lots, e.counterparty_id) for e in of(events, LiquidationFill)] == [(80_000, 10, fund)]
    assert ex.position(fund, "AAAUSDT").lots == 10  # the fund holds the long (open interest stays balanced)
    assert ex.insurance_balance("AAAUSDT") == units("5000")  # bought at BP: no money moved
    assert ex.position(fund, "AAAUSDT").unrealized_pnl_units == units("-1000")  # 10 × (700 − 800)
    assert ex.wallet(1) == units("7994.5") and ex.position(1, "BBBUSDT").lots == 1


# -- 14. leverage arithmetic -----------------------------------------------------------------------------
def test_example_14_liquidated_before_the_5000_is_gone_and_never_more_than_5000_lost():
    ex = CheckedExchange([coin()])  # liquidation fee 1.25 %
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("10000")
    maker.deposit("1000000")
    mark(ex, "AAAUSDT", "1000")
    a.set_margin_mode("AAAUSDT", "ISOLATED")
    a.set_leverage("AAAUSDT", 5)
    maker.sell("AAAUSDT", "25", "1000")
    a.buy("AAAUSDT", "25", "1000")  # 5,000 at 5x -> 25,000 notional
    assert ex.position(1, "AAAUSDT").notional_units == units("25000")
    mark(ex, "AAAUSDT", "1200")
    assert ex.position(1, "AAAUSDT").unrealized_pnl_units == units("5000")  # +20 % -> +5,000 (100 % on margin)
    mark(ex, "AAAUSDT", "1000")
    maker.buy("AAAUSDT", "25", "803")

    events = mark(ex, "AAAUSDT", "803.21")  # the liquidation tick: 5,000 − 25 × 196.79 = 80.25 ≤ MM 80.321
    assert [e.symbol for e in of(events, LiquidationStarted)] == ["AAAUSDT"]
    # BP 800; filled at 803 -> surplus 3 × 25 = 75; fee min(25 × 803 × 1.25 % = 250.9375, 75) = 75
    (fill,) = of(events, LiquidationFill)
    assert (fill.price_ticks, fill.qty_lots, fill.bankruptcy_price_ticks, fill.fee_units) == (80_300, 25, 80_000, units("75"))
    assert ex.position(1, "AAAUSDT") is None
    # lost to the market: 25 × 197 = 4,925 < 5,000 (the rest, 75, is the fee); never more than 5,000 in all
    assert ex.wallet(1) == units("5000")
    assert ex.insurance_balance("AAAUSDT") == units("75")


# -- 10. bitmex ranking in the engine ---------------------------------------------------------------------
def test_example_10_bitmex_adl_takes_the_52000_long_at_20x_first():
    btc = Instrument.linear("BTCUSDT", maker_fee="0", taker_fee="0", liquidation_fee="0")  # lot 0.001, K = 1,000
    ex = CheckedExchange([btc], profile="bitmex")
    a, b, c, d = (Client(ex, i) for i in (1, 2, 3, 4))
    for client, amount in ((a, "100000"), (b, "100000"), (c, "6000"), (d, "1000000")):
        client.deposit(amount)
    for client, leverage in ((a, 10), (b, 20)):
        client.set_margin_mode("BTCUSDT", "ISOLATED")
        client.set_leverage("BTCUSDT", leverage)
    mark(ex, "BTCUSDT", "51000")
    c.sell("BTCUSDT", "1", "50000")
    a.buy("BTCUSDT", "1", "50000")  # A: entry 50,000 at 10x: margin 5,000 -> BP 45,000
    d.sell("BTCUSDT", "1", "52000")
    b.buy("BTCUSDT", "1", "52000")  # B: entry 52,000 at 20x: margin 2,600 -> BP 49,400
    assert ex.bankruptcy_price_ticks(1, "BTCUSDT") == 4_500_000 and ex.bankruptcy_price_ticks(2, "BTCUSDT") == 4_940_000
    mark(ex, "BTCUSDT", "55000")
    # A: 10 % × 55,000 / 10,000 = 0.55; B: 3,000 / 52,000 × 55,000 / 5,600 = 0.5666 -> B first. BitMEX shows
    # 20 % steps of the side's quantity (bitmex.com/app/autoDeleveragingExamples): B holds 1 of 2 BTC ranked
    # at or above it -> 50 %, rounded up to 60 % -> 3 lights; A: 2 of 2 -> 100 % -> 1 light
    assert (ex.adl_quantile(2, "BTCUSDT"), ex.adl_quantile(1, "BTCUSDT")) == (3, 1)
    # C (cross short 1 at 50,000 with 6,000): balance 6,000 − (P − 50,000) = 0 at 56,000, its BP
    events = mark(ex, "BTCUSDT", "56000")
    assert [e.account_id for e in of(events, LiquidationStarted)] == [3]
    # no book, no fund -> ADL. At 56,000: A 12 % × 56,000 / 11,000 = 0.6109; B 7.692 % × 56,000 / 6,600 = 0.6527
    # -> B is deleveraged, A keeps its long
    assert [(e.account_id, e.price_ticks) for e in of(events, ADLFill)] == [(3, 5_600_000), (2, 5_600_000)]
    assert ex.position(2, "BTCUSDT") is None and ex.position(1, "BTCUSDT").lots == 1000


# -- the seeds' promises -----------------------------------------------------------------------------------
def test_a_cross_account_is_liquidated_as_a_whole_when_total_equity_falls_below_total_mm():
    ex = CheckedExchange([coin("AAAUSDT", liquidation_fee="0"), coin("BBBUSDT", liquidation_fee="0")])
    x, maker = Client(ex, 1), Client(ex, 2)
    x.deposit("1000")
    maker.deposit("1000000")
    for symbol in ("AAAUSDT", "BBBUSDT"):
        mark(ex, symbol, "100")
    maker.sell("AAAUSDT", "50", "100")
    x.buy("AAAUSDT", "50", "100")  # cross long 5,000
    maker.buy("BBBUSDT", "50", "100")
    x.sell("BBBUSDT", "50", "100")  # cross short 5,000
    mark(ex, "BBBUSDT", "109")  # B loses 450: equity 550 > MM 20 + 21.8
    assert ex.positions(1) and not ex.in_liquidation(1)
    events = mark(ex, "AAAUSDT", "89")  # A loses 550: equity 1,000 − 550 − 450 = 0 ≤ MM 17.8 + 21.8
    assert [(e.account_id, e.symbol) for e in of(events, LiquidationStarted)] == [(1, "")]
    assert ex.positions(1) == []  # both cross positions closed
    assert ex.wallet(1) == 0  # BP of A with B at 109: 1,000 − 450 + 50 × (P − 100) = 0 -> 89; ADL at 89, B at mark
    assert not ex.liquidatable()


def test_a_cascade_through_the_median_mark_liquidates_one_account_after_another():
    ex = CheckedExchange([coin(liquidation_fee="0")])  # mark source MEDIAN: median(P1, P2, last)
    maker = Client(ex, 9)
    maker.deposit("1000000")
    ex.apply(SetIndexPrice("AAAUSDT", 100_000))  # index 1,000 with an empty book: the mark is 1,000
    for account, wallet in {1: "105", 2: "97", 3: "90"}.items():  # cross longs of 10 at 1,000 (10,000) at 125x
        trader = Client(ex, account)
        trader.deposit(wallet)
        trader.set_leverage("AAAUSDT", 125)
        maker.sell("AAAUSDT", "10", "1000")
        trader.buy("AAAUSDT", "10", "1000")
    for price in ("994", "992", "985"):
        maker.buy("AAAUSDT", "10", price)
    maker.sell("AAAUSDT", "1", "995")

    events = ex.apply(SetIndexPrice("AAAUSDT", 99_300))
    # P1 = 993 (no funding rate yet); one basis sample 2·(mid − index) = 994 + 995 − 1,986 = 3 -> P2 = 993 + 1.50
    # = 994.50; last 1,000 -> mark 994.50. MM of 10 lots = 0.4 % × 10 × P.
    # #3: 90 − 10 × 5.50 = 35 ≤ 39.78 -> liquidated (BP 991.00), fills 10 at 994 -> mark median(993, 994.5, 994)
    # #2: 97 − 10 × 6 = 37 ≤ 39.76 -> liquidated (BP 990.30), fills 10 at 992 -> mark 993
    # #1: 105 − 10 × 7 = 35 ≤ 39.72 -> liquidated (BP 989.50); bids at 985 are worse -> the fund, which holds
    # the leftovers 90 − 60 = 30 and 97 − 80 = 17 (no liquidation fee here), takes the 10 lots over at BP
    assert [e.account_id for e in of(events, LiquidationStarted)] == [3, 2, 1]
    fund = ex.insurance_fund_account_id("AAAUSDT")
    assert [(e.account_id, e.price_ticks, e.counterparty_id) for e in of(events, LiquidationFill)] == [
        (3, 99_400, 9), (2, 99_200, 9), (1, 98_950, fund)]
    assert ex.insurance_balance("AAAUSDT") == units("47") and ex.position(fund, "AAAUSDT").lots == 10
    assert ex.mark_price("AAAUSDT") == 99_300
    assert all(ex.positions(account) == [] for account in (1, 2, 3)) and not ex.liquidatable()
