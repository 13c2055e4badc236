"""The dydx profile's liquidation rules (rules §7, §10; exchange.liquidation.dydx), checked against the venue's own unit tests.

Source: dydxprotocol/v4-chain at commit 84d4664b, ``protocol/x/clob/keeper/liquidations_test.go`` and
``deleveraging.go``; each test names the venue test whose numbers it reproduces. The venue's subaccount is a margin
part here, its quote balance Q is the wallet less the entry cost (a long bought at E with wallet W: Q = W − q × E;
a short: Q = W + q × E), its oracle price the mark. Expected numbers are derived by hand from the venue's formulas
in the comments (TNC = Q + signed notional, TMMR = 10 % of the notional).

BTC: tick 0.01, lot 0.001 (K = 1,000 units), one liquidity tier IMF 20 % (5x) / MMF 10 % — the venue's
``BtcUsd_20PercentInitial_10PercentMaintenance``; no trading fees."""
import dataclasses

import pytest

from exchange import (
    ADLFill, AdvanceTime, Client, Exchange, FundInsurance, InputError, Instrument, InsuranceReason, LiquidationFill,
    OrderAccepted, SetMarkPrice,
)
from exchange.liquidation import dydx
from exchange.profiles import DYDX_MODULE_DEFAULTS, PPM, PROFILES, DydxLiquidations, VenueProfile
from tests.checked import CheckedExchange, of, units
from tests.conftest import COMPILED

BTC, ETH, COIN = "BTCUSDT", "ETHUSDT", "ABCUSDT"
LIQUIDATED, MAKER, BIDDER = 1, 2, 3
NO_LIMITS = dict(min_position_notional_liquidated_units=0, max_position_portion_liquidated_ppm=PPM,
                 max_notional_liquidated_units=10**30, max_insurance_lost_units=10**30)
VENUE_TESTS = dataclasses.replace(DYDX_MODULE_DEFAULTS, **NO_LIMITS)  # LiquidationsConfig_Default, no block limits


def instrument(symbol=BTC, mmf="0.1", max_leverage=5, **overrides) -> Instrument:
    params = dict(maker_fee="0", taker_fee="0", min_notional="0", max_leverage=max_leverage,
                  brackets=(("1000000000", mmf, max_leverage),))
    params.update(overrides)
    return Instrument.linear(symbol, **params)


def profile(config: DydxLiquidations | None = None, **changes) -> VenueProfile:
    config = config or PROFILES["dydx"].dydx
    return dataclasses.replace(PROFILES["dydx"], name="dydx-test", dydx=dataclasses.replace(config, **changes))


def venue(config=VENUE_TESTS, instruments=None, fund=None, **changes):
    ex = CheckedExchange(instruments or [instrument()], profile=profile(config, **changes))
    for account in (MAKER, BIDDER):
        Client(ex, account).deposit("100000000")
    if fund is not None:
        ex.apply(FundInsurance(BTC, units(fund)))
    return ex


def mark(ex, price: str, symbol=BTC) -> list:
    return ex.apply(SetMarkPrice(symbol, ex.instruments[symbol].price_to_ticks(price)))


def open_position(ex, qty: str, entry: str, wallet: str | None, symbol=BTC, account=LIQUIDATED):
    """``account`` deposits ``wallet`` (if any) and opens ``qty`` (negative: short) at ``entry`` against the maker."""
    mark(ex, entry, symbol)
    if wallet is not None:
        Client(ex, account).deposit(wallet)
    me, maker = Client(ex, account), Client(ex, MAKER)
    if qty.startswith("-"):
        maker.buy(symbol, qty[1:], entry)
        me.sell(symbol, qty[1:], entry)
    else:
        maker.sell(symbol, qty, entry)
        me.buy(symbol, qty, entry)


def liquidation_orders(events) -> list:
    return [e for e in of(events, OrderAccepted) if e.account_id == LIQUIDATED]


def lots(ex, symbol=BTC) -> int:
    position = ex.position(LIQUIDATED, symbol)
    return position.lots if position is not None else 0


# ==== rule 1: the fillable price ================================================================================
# Long 0.1 BTC, mark 50,000: PNNV 5,000, PMMR = TMMR = 500. fillable = (5,000 − ABR × SMMR × 500) / 0.1.
# Q = −4,501: TNC 499, ABR = BA × (1 − 499 / 500) = BA / 500 (open at 60,000 with 1,499: IM 1,200).
# Q = −5,000 / −5,500: TNC 0 / −500, ABR clamped to 1 (open at 70,000 with 2,000 / 1,500: IM 1,400).
# Short 0.1: Q = 5,499 / 5,000 / 4,500 (open at 40,000 with 1,499 / 1,000, at 35,000 with 1,000).
FILLABLE = [  # TestGetFillablePrice cases: (name, qty, entry, wallet, BA ppm, SMMR ppm, fillable)
    ("one long slightly below maintenance", "0.1", "60000", "1499", PPM, 100_000, "49999"),  # 5,000 − 0.1
    ("one long, bankruptcyAdjustmentPpm 2,000,000", "0.1", "60000", "1499", 2 * PPM, 100_000, "49998"),
    ("one long, spreadToMaintenanceMarginRatioPpm 200,000", "0.1", "60000", "1499", PPM, 200_000, "49998"),
    ("SpreadToMaintenanceMarginRatioPpm one million", "0.1", "60000", "1499", PPM, PPM, "49990"),  # spread 1
    ("one short slightly below maintenance", "-0.1", "40000", "1499", PPM, 100_000, "50001"),
    ("one short, bankruptcyAdjustmentPpm 2,000,000", "-0.1", "40000", "1499", 2 * PPM, 100_000, "50002"),
    ("one long at the bankruptcy price", "0.1", "70000", "2000", PPM, 100_000, "49500"),  # spread 0.1 × 500
    ("one short at the bankruptcy price", "-0.1", "40000", "1000", PPM, 100_000, "50500"),
    ("one long below the bankruptcy price", "0.1", "70000", "1500", PPM, 100_000, "49500"),  # ABR clamped
    ("one short below the bankruptcy price", "-0.1", "35000", "1000", PPM, 100_000, "50500"),
    ("bankruptcyAdjustmentPpm is max uint32", "0.1", "60000", "1499", 2**32 - 1, 100_000, "49500"),
]


@pytest.mark.parametrize("qty, entry, wallet, ba, smmr, fillable", [case[1:] for case in FILLABLE],
                         ids=[case[0] for case in FILLABLE])
def test_the_liquidation_order_is_limited_at_the_venues_fillable_price(qty, entry, wallet, ba, smmr, fillable):
    """liquidations_test.go TestGetFillablePrice (the venue computes the same numbers with the same inputs): the
    liquidation order's limit. Of two resting orders, at the fillable price and one tick worse, only the first
    is hit."""
    ex = venue(fund="1000000", bankruptcy_adjustment_ppm=ba, spread_to_maintenance_margin_ratio_ppm=smmr)
    open_position(ex, qty, entry, wallet)
    long = not qty.startswith("-")
    price = ex.instruments[BTC].price_to_ticks(fillable)
    worse = price - 1 if long else price + 1
    place = Client(ex, BIDDER).buy if long else Client(ex, BIDDER).sell
    place(BTC, "0.1", ex.instruments[BTC].ticks_to_price(worse))
    place(BTC, "0.1", fillable)
    events = mark(ex, "50000")
    (order,) = liquidation_orders(events)
    (fill,) = of(events, LiquidationFill)
    assert (order.price_ticks, order.qty_lots, fill.price_ticks, fill.qty_lots) == (price, 100, price, 100)
    assert ex.positions(LIQUIDATED) == [] and ex.book(BTC).depth(1)[0 if long else 1] == [(worse, 100, 1)]


def test_the_fillable_price_of_one_of_two_cross_positions_uses_the_parts_totals():
    """liquidations_test.go TestGetFillablePrice "multiple long positions": 0.004 BTC (200) and 0.1 ETH (300) long,
    Q = −490: TNC 10, TMMR 20 + 30 = 50, ABR = 1 − 10 / 50 = 0.8. ETH: (300 − 0.8 × 0.1 × 30) / 0.1 = 2,976 (the
    venue's 372/125 subticks); BTC: (200 − 0.8 × 0.1 × 20) / 0.004 = 49,600. One position per block, chosen from
    a seeded offset (GetPerpetualPositionToLiquidate)."""
    ex = venue(instruments=[instrument(), instrument(ETH)], fund="1000000")
    open_position(ex, "0.004", "70000", "190")  # 280
    open_position(ex, "0.1", "4000", None, symbol=ETH)  # 400: Q = 190 − 680 = −490, IM 136
    Client(ex, BIDDER).buy(BTC, "0.004", "49600")
    Client(ex, BIDDER).buy(ETH, "0.1", "2976")
    assert liquidation_orders(mark(ex, "50000")) == []  # TNC 110 > TMMR 60
    (order,) = liquidation_orders(mark(ex, "3000", ETH))
    expected = {BTC: 4_960_000, ETH: 297_600}
    assert order.price_ticks == expected[order.symbol] and lots(ex, order.symbol) == 0


# ==== the bankruptcy quote of a delta ========================================================================
# In the venue's own units: quote quantums (10⁻⁶ USD) and base quantums (BTC 10⁻⁸: 500 quantums each at 50,000;
# ETH 10⁻⁹: 3 quantums each at 3,000), so k = 1 and a "tick" is a quantum per base quantum. MM = ⌈10 % × N⌉.
def mm10(notional: int) -> int:
    return -(-notional // 10)


BANKRUPTCY = [  # TestGetBankruptcyPriceInQuoteQuantums: (name, Q $, [(size, price)] liquidated first, delta, BP)
    ("fully closing one long slightly below maintenance", -4_501, [(10_000_000, 500)], -10_000_000, 4_501_000_000),
    ("fully closing one short slightly below maintenance", 5_499, [(-10_000_000, 500)], 10_000_000, -5_499_000_000),
    ("fully closing one long at the bankruptcy price", -5_000, [(10_000_000, 500)], -10_000_000, 5_000_000_000),
    ("partially closing one long at the bankruptcy price", -5_000, [(10_000_000, 500)], -5_000_000, 2_500_000_000),
    ("partially closing one short at the bankruptcy price", 5_000, [(-10_000_000, 500)], 5_000_000, -2_500_000_000),
    ("fully closing one long below the bankruptcy price", -5_100, [(10_000_000, 500)], -10_000_000, 5_100_000_000),
    ("fully closing one short below the bankruptcy price", 4_900, [(-10_000_000, 500)], 10_000_000, -4_900_000_000),
    ("one long of multiple long positions", -490, [(100_000_000, 3), (400_000, 500)], -100_000_000, 294_000_000),
    ("one short of multiple short positions", 510, [(-100_000_000, 3), (-400_000, 500)], 100_000_000, -306_000_000),
    ("one short with a long and a short position", 110, [(-100_000_000, 3), (400_000, 500)], 100_000_000, -306_000_000),
    ("rounds up partially closing one long", -13, [(100_000_000, 500)], -21_347, 2_776),  # from 2,775.11
    ("rounds up partially closing one short", 13, [(-100_000_000, 500)], 21_347, -2_775),  # from −2,775.11
    ("a long that cannot be liquidated at a loss", 1, [(100_000_000, 500)], -100_000_000, -1_000_000),
]


@pytest.mark.parametrize("quote, positions, delta, expected", [case[1:] for case in BANKRUPTCY],
                         ids=[case[0] for case in BANKRUPTCY])
def test_the_bankruptcy_quote_of_a_delta_is_the_venues(quote, positions, delta, expected):
    """liquidations_test.go TestGetBankruptcyPriceInQuoteQuantums: −DNNV − ⌊TNC × |DMMR| / TMMR⌋, e.g. 0.1 ETH
    of a part with TNC 10 and TMMR 50: 300 − 10 × 30 / 50 = 294."""
    (size, price), *others = positions
    tnc = quote * 10**6 + sum(s * p for s, p in positions)
    tmmr = sum(mm10(abs(s) * p) for s, p in positions)
    part = dydx.PartRisk(tnc, tmmr, sum(abs(s) * p for s, p in positions), size, mm10(abs(size) * price), price, 1)
    assert dydx.bankruptcy_quote(part, abs(delta), mm10((abs(size) - abs(delta)) * price)) == expected


# ==== rule 2: the insurance-fund delta of each fill ==========================================================
# Long 0.1, Q = −5,100 (70,000 with 1,900): TNC −100, BP_quote = 5,000 − (−100) = 5,100 (51,000 a BTC).
# Short 0.1, Q = 4,900 (35,000 with 1,400): TNC −100, BP_quote = −5,000 + 100 = −4,900 (49,000 a BTC).
FUND_DELTA = [  # TestGetLiquidationInsuranceFundDelta cases: (name, qty, entry, wallet, fee ppm, fill, fund delta)
    ("long above bankruptcy pays max liquidation fee", "0.1", "70000", "1900", 5_000, "56100", "28.05"),
    ("long, MaxLiquidationFeePpm 25,000", "0.1", "70000", "1900", 25_000, "56100", "140.25"),
    ("long, MaxLiquidationFeePpm one million: all the surplus", "0.1", "70000", "1900", PPM, "56100", "510"),
    ("short above bankruptcy pays max liquidation fee", "-0.1", "35000", "1400", 5_000, "44100", "22.05"),
    ("short, MaxLiquidationFeePpm 25,000", "-0.1", "35000", "1400", 25_000, "44100", "110.25"),
    ("short, MaxLiquidationFeePpm one million", "-0.1", "35000", "1400", PPM, "44100", "490"),
    ("long pays less than the max fee", "0.1", "70000", "1900", 5_000, "51051", "5.1"),
    ("short pays less than the max fee", "-0.1", "35000", "1400", 5_000, "48951", "4.9"),
    ("long at the bankruptcy price", "0.1", "70000", "1900", 5_000, "51000", "0"),
    ("short at the bankruptcy price", "-0.1", "35000", "1400", 5_000, "49000", "0"),
    ("long below bankruptcy: the fund covers the loss", "0.1", "70000", "1900", 5_000, "50490", "-51"),
    ("short below bankruptcy: the fund covers the loss", "-0.1", "35000", "1400", 5_000, "49490", "-49"),
]


@pytest.mark.parametrize("qty, entry, wallet, fee_ppm, price, delta", [case[1:] for case in FUND_DELTA],
                         ids=[case[0] for case in FUND_DELTA])
def test_the_fund_takes_only_the_capped_fee_or_pays_the_shortfall_and_the_part_keeps_the_rest(
        qty, entry, wallet, fee_ppm, price, delta):
    """liquidations_test.go TestGetLiquidationInsuranceFundDelta: e.g. a long sold at 56,100 receives 5,610,
    510 above BP_quote 5,100; the fund takes min(5,610 × 0.5 %, 510) = 28.05. The part keeps Q + quote − delta
    (binance's waterfall would give the whole leftover to the fund)."""
    ex = venue(fund="1000", max_liquidation_fee_ppm=fee_ppm)
    open_position(ex, qty, entry, wallet)
    long = not qty.startswith("-")
    (Client(ex, BIDDER).buy if long else Client(ex, BIDDER).sell)(BTC, "0.1", price)
    events = mark(ex, "50000")  # fillable: 50,000 ∓ 1 × 0.1 × 500 / 0.1 = 49,500 / 50,500 (TNC < 0)
    (fill,) = of(events, LiquidationFill)
    assert (fill.price_ticks, fill.qty_lots) == (ex.instruments[BTC].price_to_ticks(price), 100)
    assert ex.insurance_balance(BTC) - units("1000") == units(delta)
    quote = units(price) // 10 * (1 if long else -1)  # 0.1 BTC
    q = units(wallet) + (-1 if long else 1) * units(entry) // 10
    assert ex.wallet(LIQUIDATED) == q + quote - units(delta) and ex.positions(LIQUIDATED) == []
    assert ex.wallet(LIQUIDATED) >= 0


def test_the_default_dydx_profile_charges_the_public_networks_one_and_a_half_percent():
    """Public-network genesis (v4-chain testing/genesis.sh): max_liquidation_fee_ppm 15,000 and a block size of
    max(min(1,000, 5,000), 10 % × 5,000) = 1,000 = 0.02 BTC. The long of TestGetLiquidationInsuranceFundDelta
    (TNC −100, TMMR 500) sells 0.02 at 56,100: quote 1,122, BP_quote = 1,000 − ⌊−100 × 100 / 500⌋ = 1,020, so the
    fee is min(1,122 × 1.5 % = 16.83, 102) = 16.83."""
    ex = venue(config=PROFILES["dydx"].dydx, fund="1000")
    open_position(ex, "0.1", "70000", "1900")
    Client(ex, BIDDER).buy(BTC, "0.1", "56100")
    (fill,) = of(mark(ex, "50000"), LiquidationFill)
    assert (fill.qty_lots, fill.fee_units) == (20, units("16.83")) and ex.insurance_balance(BTC) == units("1016.83")
    # the part keeps the rest: 1,900 + 0.02 × (56,100 − 70,000) − 16.83 = 1,605.17 in the wallet
    assert ex.wallet(LIQUIDATED) == units("1605.17") and lots(ex) == 80


# Carl: short 1 BTC, Q = 50,499 (40,000 with 10,499), mark 50,000: TNC 499, TMMR 5,000. Fillable with SMMR 1.5:
# 50,000 × (1 + 0.9002 × 1.5 × 10 %) = 56,751.50 (the venue test places the order at 50,500 directly). Dave sells
# 0.25 then 1 at 50,500. Fill 1, 0.25: BP_quote = −12,500 − ⌊499 × 1,250 / 5,000⌋ = −12,624.75, quote −12,625:
# the fund pays 0.25; then TNC 374.25, TMMR 3,750. Fill 2, 0.75: BP_quote = −37,500 − 374.25 = −37,874.25, quote
# −37,875: the fund would pay 0.75.
def carl(fund: str, **changes):
    ex = venue(fund=fund, spread_to_maintenance_margin_ratio_ppm=1_500_000, **changes)
    open_position(ex, "-1", "40000", "10499")
    dave = Client(ex, MAKER)
    dave.sell(BTC, "0.25", "50500")
    dave.sell(BTC, "1", "50500")
    return ex, mark(ex, "50000")


def test_matching_stops_at_the_first_fill_the_fund_cannot_pay():
    """liquidations_test.go TestPlacePerpetualLiquidation_PreexistingLiquidation "Liquidation buy order matches
    with some orders and stops when insurance fund is empty": the fund has 0.99; 0.25 is paid, the next fill
    needs 0.75 > 0.74, so matching stops (LiquidationRequiresDeleveraging). TNC 374.25 ≥ 0: no deleveraging."""
    ex, events = carl("0.99")
    assert [(f.price_ticks, f.qty_lots) for f in of(events, LiquidationFill)] == [(5_050_000, 250)]
    assert ex.insurance_balance(BTC) == units("0.74") and lots(ex) == -750 and of(events, ADLFill) == []
    assert ex.book(BTC).depth(1)[1] == [(5_050_000, 1_000, 1)]  # Dave's 1 BTC still rests


def test_no_match_when_the_fund_cannot_cover_the_first_fill_and_no_deleveraging_with_positive_equity():
    """liquidations_test.go TestPlacePerpetualLiquidation_PreexistingLiquidation "Liquidation buy order does not
    generate a match when deleveraging is required": empty fund, Dave sells 1 at 50,500 (the fund would pay 1).
    Deleveraging follows only for negative TNC (deleveraging.go CanDeleverageSubaccount): Carl's is 499."""
    ex = venue(fund=None, spread_to_maintenance_margin_ratio_ppm=1_500_000)
    open_position(ex, "-1", "40000", "10499")
    Client(ex, MAKER).sell(BTC, "1", "50500")
    events = mark(ex, "50000")
    assert of(events, LiquidationFill) == [] and of(events, ADLFill) == [] and lots(ex) == -1000
    assert ex.liquidatable() and ex.insurance_balance(BTC) == 0


# ==== rule 4: partial liquidation, per block ===================================================================
SIZES = [  # TestGetPerpetualPositionToLiquidate cases, 0.1 BTC = 5,000 notional: (name, limits, lots liquidated)
    ("half position size when MaxPositionPortionLiquidatedPpm is 500,000",
     dict(min_position_notional_liquidated_units=1_000 * 100, max_position_portion_liquidated_ppm=500_000), 50),
    ("full position size when MinPositionNotionalLiquidated is greater than position size",
     dict(min_position_notional_liquidated_units=10_000 * 10**8, max_position_portion_liquidated_ppm=100_000), 100),
    ("max subaccount limit when position larger than subaccount limit",
     dict(max_notional_liquidated_units=units("2500")), 50),
    ("full position when position smaller than subaccount limit", dict(max_notional_liquidated_units=units("10000")), 100),
    ("capped by subaccount block limit when lower than position block limit",
     dict(max_position_portion_liquidated_ppm=500_000, max_notional_liquidated_units=units("2000")), 40),
    ("capped by position block limit when lower than subaccount block limit",
     dict(max_position_portion_liquidated_ppm=400_000, max_notional_liquidated_units=units("2500")), 40),
]


@pytest.mark.parametrize("limits, expected", [case[1:] for case in SIZES], ids=[case[0] for case in SIZES])
def test_one_block_liquidates_at_most_the_position_and_subaccount_limits(limits, expected):
    """liquidations_test.go TestGetPerpetualPositionToLiquidate: size = min(max(min(min notional, N), N ×
    portion), subaccount limit), in whole lots (the venue's step) rounded down; e.g. 50 % of 5,000 = 2,500 ->
    0.05 BTC, a 2,000 subaccount limit -> 0.04 BTC."""
    ex = venue(**limits)
    open_position(ex, "0.1", "60000", "1499")  # TNC 499 at 50,000: fillable 49,999
    Client(ex, BIDDER).buy(BTC, "0.1", "50000")
    (order,) = liquidation_orders(mark(ex, "50000"))
    assert order.qty_lots == expected and lots(ex) == 100 - expected


def test_a_position_is_liquidated_over_several_blocks_of_the_genesis_size():
    """Genesis limits (testing/genesis.sh): 10 % of the position, at least 1,000 USDC, per block (a block is
    one liquidation stage: the one after each accepted command). Long 0.1 at 70,000 with 2,100: Q = −4,900,
    TNC 100, TMMR 500 at 50,000. A block may take max(min(1,000, 5,000), 500) = 1,000 = 0.02 BTC; a bid at
    49,000 (above the fillable 50,000 − 0.8 × 1.5 × 5,000 = 44,000) fills it: BP_quote = 1,000 − ⌊100 × 100
    / 500⌋ = 980 = the quote, so the fund's delta is 0 and TNC falls by 20 a block, TNC / TMMR staying 0.2."""
    ex = venue(config=PROFILES["dydx"].dydx, fund="1")
    open_position(ex, "0.1", "70000", "2100")
    Client(ex, BIDDER).buy(BTC, "0.1", "49000")
    remaining = [lots(ex) for command in [SetMarkPrice(BTC, 5_000_000)] + [AdvanceTime(10**9 * i) for i in range(1, 6)]
                 if ex.apply(command) is not None]
    assert remaining == [80, 60, 40, 20, 0, 0]
    assert ex.wallet(LIQUIDATED) == 0 and ex.insurance_balance(BTC) == units("1")  # 2,100 − 0.1 × (70,000 − 49,000)


def test_matching_stops_before_the_block_limit_of_insurance_lost():
    """liquidations_test.go TestPlacePerpetualLiquidation_PreexistingLiquidation "PlacePerpetualLiquidation
    matches some order and stops before exceeding max insurance lost per block": max_quantums_insurance_lost
    $0.5; the first fill loses 0.25, the second would lose 0.75 more: 0.25 BTC is liquidated, 0.25 lost."""
    ex, events = carl("1000000", max_insurance_lost_units=units("0.5"))
    assert [(f.price_ticks, f.qty_lots) for f in of(events, LiquidationFill)] == [(5_050_000, 250)]
    assert ex.insurance_balance(BTC) == units("999999.75") and lots(ex) == -750
    # the next block sizes a new order from the rest; the same check stops it at Dave's second order again
    events = ex.apply(AdvanceTime(1))
    assert of(events, LiquidationFill) == [] and lots(ex) == -750


def test_the_notional_block_limit_stops_matching_when_a_lot_is_worth_more_than_the_limit():
    """liquidations.go validateLiquidationAgainstSubaccountBlockLimits: a fill whose notional (at the oracle) is
    above what the block allows is not made. 1 lot of 0.001 BTC is worth 50 > a 40 limit: nothing fills."""
    ex = venue(max_notional_liquidated_units=units("40"))
    open_position(ex, "0.1", "60000", "1499")
    Client(ex, BIDDER).buy(BTC, "0.1", "50000")
    events = mark(ex, "50000")
    assert of(events, LiquidationFill) == [] and lots(ex) == 100


# ==== rule 3: deleveraging only with negative equity ===========================================================
def test_a_solvent_part_that_the_book_cannot_fill_is_not_deleveraged():
    """deleveraging.go CanDeleverageSubaccount: only TNC < 0 (or final settlement) deleverages. TNC 499 ≥ 0
    and no bids: the position stays, liquidatable, and is retried in the next block."""
    ex = venue(fund="1000")
    open_position(ex, "0.1", "60000", "1499")
    events = mark(ex, "50000")
    assert of(events, ADLFill) == [] and lots(ex) == 100 and ex.in_liquidation(LIQUIDATED)
    events = Client(ex, BIDDER).buy(BTC, "0.1", "49999")  # the next block
    assert [(f.price_ticks, f.qty_lots) for f in of(events, LiquidationFill)] == [(4_999_900, 100)]


def test_a_bankrupt_part_whose_order_fills_nothing_is_deleveraged_whole_at_its_bankruptcy_price():
    """The venue's documented example (dydx docs "contract loss mechanism", rules example 11): A and B deposit
    100; A long, B short 500 ABC at 1.00; at 2.00 B's equity is −400, its bankruptcy price 1.20 (BP_quote =
    −1,000 − (−400) = −600 for the whole position). No asks: the order fills nothing and TNC < 0, so B's 500 are
    closed against A at 1.20: A ends with 200, B with 0, the fund untouched."""
    ex = CheckedExchange([instrument(COIN, mmf="0.03", max_leverage=20, lot_size="1", min_qty="1")], profile="dydx")
    a, b = Client(ex, 2), Client(ex, LIQUIDATED)
    for client in (a, b):
        client.deposit("100")
    mark(ex, "1", COIN)
    a.buy(COIN, "500", "1")
    b.sell(COIN, "500", "1")
    events = mark(ex, "2", COIN)
    assert [(e.account_id, e.price_ticks, e.qty_lots) for e in of(events, ADLFill)] == [(1, 120, 500), (2, 120, 500)]
    assert ex.wallet(2) == units("200") and ex.wallet(LIQUIDATED) == 0 and ex.insurance_balance(COIN) == 0


def test_a_bankrupt_part_is_not_deleveraged_in_a_block_where_its_order_filled():
    """liquidations.go LiquidateSubaccountsAgainstOrderbook: only an order that filled nothing is queued for
    deleveraging. Long 0.1, Q = −5,100 (TNC −100), a bid for 0.04 at 50,490 (the fund pays 0.4 × 0.51 × 50 =
    20.40... per fill: quote 2,019.60, BP_quote 2,000 + ⌊100 × 200 / 500⌋ = 2,040): the rest waits; the next
    block has no bid, fills nothing, and deleverages the 60 lots left at their bankruptcy price."""
    ex = venue(fund="1000")
    open_position(ex, "0.1", "70000", "1900")
    Client(ex, BIDDER).buy(BTC, "0.04", "50490")
    events = mark(ex, "50000")
    assert [(f.price_ticks, f.qty_lots) for f in of(events, LiquidationFill)] == [(5_049_000, 40)]
    assert of(events, ADLFill) == [] and lots(ex) == 60
    assert ex.insurance_balance(BTC) == units("1000") - units("20.40")
    # TNC −100 + (50,490 − 50,000) × 0.04 + 20.40 = −60 on TMMR 300: BP_quote(0.06) = 3,000 + 60 -> 51,000
    events = ex.apply(AdvanceTime(1))
    assert [(e.account_id, e.price_ticks, e.qty_lots) for e in of(events, ADLFill)] == [(1, 5_100_000, 60),
                                                                                      (MAKER, 5_100_000, 60)]
    assert ex.wallet(LIQUIDATED) == 0 and ex.positions(LIQUIDATED) == []


# ==== configuration ============================================================================================
def test_the_profile_carries_the_public_networks_liquidations_config_and_validates_it_as_the_venue():
    """testing/genesis.sh (public network) and types/liquidations_config.go Validate()."""
    config = PROFILES["dydx"].dydx
    assert (config.max_liquidation_fee_ppm, config.bankruptcy_adjustment_ppm, config.spread_to_maintenance_margin_ratio_ppm,
            config.min_position_notional_liquidated_units, config.max_position_portion_liquidated_ppm,
            config.max_notional_liquidated_units, config.max_insurance_lost_units) == (
        15_000, 1_000_000, 1_500_000, units("1000"), 100_000, units("100000"), units("1000000"))
    assert DYDX_MODULE_DEFAULTS.max_liquidation_fee_ppm == 5_000  # LiquidationsConfig_Default
    for bad in (dict(bankruptcy_adjustment_ppm=PPM - 1), dict(max_liquidation_fee_ppm=0),
                dict(max_liquidation_fee_ppm=PPM + 1), dict(spread_to_maintenance_margin_ratio_ppm=0),
                dict(max_position_portion_liquidated_ppm=0), dict(max_notional_liquidated_units=0),
                dict(max_insurance_lost_units=0), dict(min_position_notional_liquidated_units=-1),
                dict(max_liquidation_fee_ppm=1.5)):
        with pytest.raises(InputError):
            DydxLiquidations(**bad)
    with pytest.raises(InputError):
        dataclasses.replace(PROFILES["binance"], dydx=None)


def test_configs_stored_before_the_dydx_liquidations_config_still_load():
    """Journal headers and snapshots written before this config: a profile map without ``dydx`` gets the
    defaults; a liquidation map's old ``dydx_spread_e8`` (now the profile's SMMR) is ignored."""
    from exchange import LiquidationConfig
    from exchange.persistence.journal import liquidation_from_dict, liquidation_to_dict, profile_from_dict, profile_to_dict

    data = profile_to_dict(PROFILES["dydx"])
    assert profile_from_dict(data) == PROFILES["dydx"]
    del data["dydx"]
    assert profile_from_dict(data) == PROFILES["dydx"]
    custom = profile(VENUE_TESTS, max_insurance_lost_units=7)
    assert profile_from_dict(profile_to_dict(custom)) == custom
    old = dict(liquidation_to_dict(LiquidationConfig(adl_seed=3)), dydx_spread_e8=150_000_000)
    assert liquidation_from_dict(old) == LiquidationConfig(adl_seed=3)


# ==== both implementations ====================================================================================
@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("config", [PROFILES["dydx"].dydx, VENUE_TESTS], ids=["genesis", "module-default"])
def test_both_implementations_agree_through_dydx_liquidations(config):
    from tests.conftest import make_instrument
    from tests.streams import liquidation_commands

    commands = list(liquidation_commands(77, 3_000, ("TESTUSDT", "XYZUSDT")))
    runs = []
    for implementation in ("python", "cython"):
        ex = Exchange([make_instrument(), dataclasses.replace(make_instrument(), symbol="XYZUSDT")],
                      implementation=implementation, profile=profile(config))
        runs.append(([ex.apply(c) for c in commands], ex.state_hash(), ex.insurance_history()))
    assert any(isinstance(e, LiquidationFill) for events in runs[0][0] for e in events)
    assert runs[0] == runs[1]
    # the fund pays a fill's shortfall only while its balance covers it (IsValidInsuranceFundDelta)
    paid = [e for e in runs[0][2] if e.reason == InsuranceReason.PER_FILL]
    assert paid and all(e.balance_units >= 0 for e in paid)
