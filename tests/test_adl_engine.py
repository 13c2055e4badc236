"""Profile differences of the waterfall (rules §10) and ADL in the engine: each test shows what distinguishes
one venue. Expected values derived by hand. Coin: tick 0.01, lot 1, K = 10⁶ (1 lot at 100.00 = 100 USDT);
default brackets (0.4 % up to 50,000; 0.5 % − cum 50 up to 250,000)."""
from exchange import (
    ADLFill, Client, FundInsurance, FundLimits, Instrument, LiquidationConfig, LiquidationFill, SetMarkPrice,
)
from tests.checked import CheckedExchange, of, units

COIN = "AAAUSDT"


def coin(liquidation_fee="0.0125") -> Instrument:
    return Instrument.linear(COIN, lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0",
                             max_qty="100000", max_price="100000", liquidation_fee=liquidation_fee)


def venue(profile="binance", wallet="60", lots="10", fund=None, limits=FundLimits(), isolated_leverage=None,
          liquidation_fee="0.0125"):
    """Account 1 long ``lots`` at 100 (cross at 20x, or isolated at ``isolated_leverage``) from maker 2;
    account 3 is a bidder with money."""
    ex = CheckedExchange([coin(liquidation_fee)], profile=profile, liquidation=LiquidationConfig(fund=limits))
    a, maker, bidder = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    a.deposit(wallet)
    maker.deposit("10000000")
    bidder.deposit("10000000")
    if fund:
        ex.apply(FundInsurance(COIN, units(fund)))
    ex.apply(SetMarkPrice(COIN, 10_000))
    if isolated_leverage:
        a.set_margin_mode(COIN, "ISOLATED")
        a.set_leverage(COIN, isolated_leverage)
    maker.sell(COIN, lots, "100")
    a.buy(COIN, lots, "100")
    return ex, bidder


def mark(ex, ticks: int) -> list:
    return ex.apply(SetMarkPrice(COIN, ticks))


# Cross long 10 at 100 with 60: balance 60 + 10 (P − 100) ≤ 0.04 P at P ≤ 94.37; at 94 it is 0 ≤ 3.76.
# Bankruptcy: 60 + 10 (P − 100) = 0 -> 94.00.

def test_binance_fills_in_the_book_at_better_than_bankruptcy():
    ex, bidder = venue(fund="1000")
    bidder.buy(COIN, "10", "95")
    (fill,) = of(mark(ex, 9_400), LiquidationFill)
    assert (fill.price_ticks, fill.counterparty_id, fill.bankruptcy_price_ticks) == (9_500, 3, 9_400)
    # surplus 10 × 1 = 10 < 1.25 % × 950 = 11.875: the fee is the surplus; nothing is left
    assert fill.fee_units == units("10") and ex.wallet(1) == 0


def test_bybit_takes_the_whole_position_over_at_bankruptcy_without_touching_the_book():
    ex, bidder = venue("bybit", fund="1000")
    bidder.buy(COIN, "10", "95")
    (fill,) = of(mark(ex, 9_400), LiquidationFill)
    assert (fill.price_ticks, fill.counterparty_id) == (9_400, ex.insurance_fund_account_id(COIN))
    assert ex.book(COIN).best_bid() == 9_500  # the bid is still there
    assert ex.wallet(1) == 0


def test_bybit_isolated_bankruptcy_price_is_entry_times_one_minus_imr():
    ex, _ = venue("bybit", wallet="1000", fund="1000", isolated_leverage=10)  # margin 100
    ex.apply(FundInsurance(COIN, units("1")))
    # 100 + 10 (P − 100) ≤ 0.04 P at P ≤ 90.36; BP = 100 × (1 − 1/10) = 90.00
    (fill,) = of(mark(ex, 9_030), LiquidationFill)
    assert fill.price_ticks == 9_000


def test_bitmex_fund_absorbs_without_a_position_limit_where_binance_deleverages():
    no_room = FundLimits(max_position_lots=0)
    ex, _ = venue("binance", fund="1000", limits=no_room)
    events = mark(ex, 9_400)
    assert [(e.account_id, e.price_ticks) for e in of(events, ADLFill)] == [(1, 9_400), (2, 9_400)]
    ex, _ = venue("bitmex", fund="1000", limits=no_room)
    events = mark(ex, 9_400)
    assert of(events, ADLFill) == [] and ex.position(ex.insurance_fund_account_id(COIN), COIN).lots == 10


def test_dydx_fills_at_the_fillable_price_below_bankruptcy_and_the_fund_pays_the_shortfall_per_fill():
    ex, bidder = venue("dydx", wallet="1000", fund="1000", isolated_leverage=10)  # isolated margin 100
    bidder.buy(COIN, "10", "89.50")
    events = mark(ex, 8_900)
    # balance 100 − 110 = −10 -> rating 0: fillable = mark = 89.00; BP = 89 + 10 / 10 = 90.00
    (fill,) = of(events, LiquidationFill)
    assert (fill.price_ticks, fill.bankruptcy_price_ticks) == (8_950, 9_000)
    # shortfall (90 − 89.50) × 10 = 5 paid by the fund; the isolated margin ends at 100 + 5 − 105 = 0
    assert ex.insurance_balance(COIN) == units("995") and ex.wallet(1) == units("900")


def test_binance_does_not_fill_below_bankruptcy():
    ex, bidder = venue("binance", wallet="1000", fund="1000", isolated_leverage=10)
    bidder.buy(COIN, "10", "89.50")
    (fill,) = of(mark(ex, 8_900), LiquidationFill)
    assert (fill.price_ticks, fill.counterparty_id) == (9_000, ex.insurance_fund_account_id(COIN))


def test_hyperliquid_liquidates_a_large_position_in_20_percent_market_slices():
    # long 2,000 at 100 (200,000) with 11,000: MM = 0.5 % × 2,000 P − 50; liquidatable at P ≤ 94.95
    ex, bidder = venue("hyperliquid", wallet="11000", lots="2000", liquidation_fee="0")
    bidder.buy(COIN, "400", "94.90")
    bidder.buy(COIN, "1600", "80")
    events = mark(ex, 9_490)  # balance 11,000 − 10,200 = 800 ≤ MM 899 and ≥ 2/3 MM: a market order
    # one slice of 20 % = 400 lots fills at 94.90; then 8,960 − 1,600 × 5.10 = 800 > MM 709.2: compliant
    assert [(e.qty_lots, e.price_ticks) for e in of(events, LiquidationFill)] == [(400, 9_490)]
    assert ex.position(1, COIN).lots == 1600


def test_hyperliquid_backstop_vault_takes_over_below_two_thirds_of_mm():
    ex, bidder = venue("hyperliquid", fund="1000")
    bidder.buy(COIN, "10", "93.50")
    (fill,) = of(mark(ex, 9_300), LiquidationFill)  # balance −10 < 2/3 × 3.72
    assert (fill.price_ticks, fill.counterparty_id) == (9_400, ex.insurance_fund_account_id(COIN))
    assert ex.book(COIN).best_bid() == 9_350


def test_hyperliquid_deleverages_at_the_mark_and_the_fund_tops_up_the_deficit():
    ex, _ = venue("hyperliquid")  # empty fund: no vault
    events = mark(ex, 9_300)
    assert [(e.account_id, e.price_ticks) for e in of(events, ADLFill)] == [(1, 9_300), (2, 9_300)]
    # A realizes 10 × (93 − 100) = −70 on 60: −10, topped up to 0 by the fund (loss rule ADL: it stays at −10)
    assert ex.wallet(1) == 0 and ex.insurance_balance(COIN) == units("-10")
