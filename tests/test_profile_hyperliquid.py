"""Hyperliquid's own rules under the ``hyperliquid`` profile (rules §10), each against Hyperliquid's published
numbers; every expected value is derived by hand in the comments. Venue notes: /work/shared/research/venue-rules.md §5.

- funding is paid on the oracle (index) price, not the mark;
- after a 20 % partial (sliced) liquidation, a 30 s cooldown in which liquidation orders are for whole positions;
- each margin tier's maintenance margin rate is half the initial margin rate at its max leverage;
- prices: at most 5 significant figures and 6 − szDecimals decimals, whole numbers always allowed (-1111).

BTC: tick 0.01, lot 0.001 (K = 1,000 units per tick·lot). Coin: tick 0.01, lot 1 (K = 10⁶)."""
import dataclasses

import pytest

from exchange import (
    AdvanceTime, Client, Exchange, FundingPaid, FundingParams, FundingSettled, Instrument, LiquidationFill,
    MarkParams, MarkSource, Rejected, RejectCode, SetIndexPrice, SetMarkPrice,
)
from exchange.orders.filters import check_price_precision, size_decimals
from exchange.profiles import PROFILES, FundingPrice
from exchange.spec import mmr_from_leverage_e8
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, of, units
from tests.conftest import COMPILED

BTC, COIN = "BTCUSDT", "AAAUSDT"
HOUR = 3600 * NS_PER_SECOND
HL = PROFILES["hyperliquid"]


# -- funding on the oracle price -------------------------------------------------------------------------------
def funded_long(profile):
    """Long 10 BTC (account 1) against account 2; mark 10,100 (set externally), oracle (index) 10,000; account 3
    quotes 5 BTC bid at 10,100 and 5 BTC ask at 10,200; impact notional 20,000 USDC (Hyperliquid's for BTC)."""
    btc = Instrument.linear(BTC, maker_fee="0", taker_fee="0", mark=MarkParams(MarkSource.EXTERNAL),
                            funding=FundingParams(impact_margin_notional_units=units("20000")))
    ex = CheckedExchange([btc], profile=profile)
    a, b, c = (Client(ex, i) for i in (1, 2, 3))
    for client in (a, b, c):
        client.deposit("10000000")
    ex.apply(SetMarkPrice(BTC, 1_010_000))
    ex.apply(SetIndexPrice(BTC, 1_000_000))
    b.sell(BTC, "10", "10100")
    a.buy(BTC, "10", "10100")
    c.buy(BTC, "5", "10100")
    c.sell(BTC, "5", "10200")
    return ex


def test_hyperliquid_pays_funding_on_the_oracle_price_not_the_mark():
    """https://hyperliquid.gitbook.io/hyperliquid-docs/trading/funding: payment = position size × oracle price ×
    funding rate ("the oracle price, not the mark price"); the rate's worked example (cortex-vigil.com/wiki/
    funding-rates, quoting those docs): interest 0.01 %, impact bid 10,100 over a 10,000 oracle -> premium 1 %,
    clamp(0.01 % − 1 %, ±0.05 %) = −0.05 % -> 0.95 % per 8 h, paid hourly as 0.95 % / 8 = 0.11875 %."""
    ex = funded_long("hyperliquid")
    events = ex.apply(AdvanceTime(HOUR))
    # impact bid: 20,000 USDC sell into 5 BTC at 10,100 -> 10,100; impact ask 10,200 ≥ oracle -> 0
    (settled,) = of(events, FundingSettled)
    assert (settled.rate_e8, settled.mark_ticks) == (118_750, 1_000_000)  # 0.11875 %, on the oracle 10,000.00
    paid = {e.account_id: e.amount_units for e in of(events, FundingPaid)}
    # 10 BTC × 10,000 × 0.11875 % = 118.75 (on the mark 10,100 it would be 119.9375)
    assert paid == {1: units("118.75"), 2: -units("118.75")}


def test_the_same_venue_on_the_mark_pays_on_the_mark():
    ex = funded_long(dataclasses.replace(HL, name="hl-on-mark", funding_price=FundingPrice.MARK))
    events = ex.apply(AdvanceTime(HOUR))
    assert {e.account_id: e.amount_units for e in of(events, FundingPaid)} == {
        1: units("119.9375"), 2: -units("119.9375")}  # 10 × 10,100 × 0.11875 %


def test_without_an_oracle_price_funding_falls_back_to_the_mark():
    btc = Instrument.linear(BTC, maker_fee="0", taker_fee="0")
    ex = CheckedExchange([btc], profile="hyperliquid")
    a, b = Client(ex, 1), Client(ex, 2)
    for client in (a, b):
        client.deposit("1000000")
    ex.apply(SetMarkPrice(BTC, 3_000_000))
    b.sell(BTC, "1", "30000")
    a.buy(BTC, "1", "30000")
    events = ex.apply(AdvanceTime(HOUR))  # no index, no samples: 0.01 % / 8 = 0.00125 % on the mark 30,000
    assert of(events, FundingSettled)[0].mark_ticks == 3_000_000
    assert {e.account_id: e.amount_units for e in of(events, FundingPaid)} == {1: units("0.375"), 2: -units("0.375")}


# -- the 30 s cooldown after a partial liquidation ---------------------------------------------------------------
def coin_venue(implementation=None):
    """Account 1: cross long 2,000 AAA at 100 (notional 200,000 > 100,000: liquidated in 20 % slices) with
    11,000 USDC; MM = 0.5 % × 2,000 P − 50 (default brackets; the derived MMR of the 100x row is 0.5 % too)."""
    coin = Instrument.linear(COIN, lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0",
                             max_qty="100000", max_price="100000", liquidation_fee="0")
    ex = CheckedExchange([coin], profile="hyperliquid", implementation=implementation)
    a, maker, bidder = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    a.deposit("11000")
    maker.deposit("10000000")
    bidder.deposit("10000000")
    ex.apply(SetMarkPrice(COIN, 10_000))
    maker.sell(COIN, "2000", "100")
    a.buy(COIN, "2000", "100")
    return ex, bidder


def sliced_once(implementation=None):
    """A first 20 % slice at t = 0 that leaves the account compliant (as tests/test_adl_engine.py): 400 lots sold
    at 94.90; wallet 11,000 − 400 × 5.10 = 8,960; at 94.90 the 1,600 left: balance 8,960 − 8,160 = 800 > MM 709.2."""
    ex, bidder = coin_venue(implementation)
    bidder.buy(COIN, "400", "94.90")
    events = ex.apply(SetMarkPrice(COIN, 9_490))
    assert [(e.qty_lots, e.price_ticks) for e in of(events, LiquidationFill)] == [(400, 9_490)]
    bidder.buy(COIN, "1600", "94.80")
    return ex


def test_a_slice_that_leaves_the_account_liquidatable_is_followed_by_the_whole_position():
    """Hyperliquid (testnet announcement of partial liquidations, quoted in docs.tings.xyz/core-mechanics/
    liquidations): "only 20 % of the position will be sent as a market liquidation order ... After a block where
    any position of a user is partially liquidated, there is a cooldown period of 30 seconds. During this cooldown
    period, all market liquidation orders for that user will be for the entire position"."""
    ex, bidder = coin_venue()
    bidder.buy(COIN, "400", "94.50")
    bidder.buy(COIN, "1600", "94.40")
    events = ex.apply(SetMarkPrice(COIN, 9_490))
    # slice ⌈20 % × 2,000⌉ = 400 at 94.50: wallet 11,000 − 400 × 5.50 = 8,800; 1,600 at the mark 94.90: balance
    # 8,800 − 8,160 = 640 ≤ MM 1,600 × 94.90 × 0.5 % − 50 = 709.2 and ≥ ⅔ MM = 472.8 (no vault): liquidatable
    # again at once, inside the cooldown -> the whole 1,600 (not ⌈20 % × 1,600⌉ = 320)
    assert [(e.qty_lots, e.price_ticks) for e in of(events, LiquidationFill)] == [(400, 9_450), (1_600, 9_440)]
    assert ex.position(1, COIN) is None


@pytest.mark.parametrize("seconds, expected", [
    # at 94.84: balance 8,960 − 1,600 × 5.16 = 704 ≤ MM 1,600 × 94.84 × 0.5 % − 50 = 708.72
    (10, [(1_600, 9_480)]),  # 10 s after the slice: inside the 30 s cooldown -> the whole position
    (29, [(1_600, 9_480)]),
    # 30 s after it the cooldown is over: a new slice ⌈20 % × 1,600⌉ = 320 (notional 151,744 > 100,000); then
    # wallet 8,960 − 320 × 5.20 = 7,296, balance 7,296 − 1,280 × 5.16 = 691.2 > MM 121,395.2 × 0.5 % − 50 = 556.976
    (30, [(320, 9_480)]),
    (31, [(320, 9_480)]),
])
def test_the_cooldown_lasts_30_seconds_of_simulation_time(seconds, expected):
    ex = sliced_once()
    ex.apply(AdvanceTime(seconds * NS_PER_SECOND))
    events = ex.apply(SetMarkPrice(COIN, 9_484))
    assert [(e.qty_lots, e.price_ticks) for e in of(events, LiquidationFill)] == expected


def test_the_cooldown_is_part_of_the_state_and_of_snapshots():
    ex = sliced_once()
    ex.apply(AdvanceTime(10 * NS_PER_SECOND))
    assert ex.liquidation.cooldowns() == [[1, 30 * NS_PER_SECOND]]
    restored = Exchange.restore_bytes(ex.snapshot_bytes())
    assert restored.state_hash() == ex.state_hash()
    fills = [[(e.qty_lots, e.price_ticks) for e in of(x.apply(SetMarkPrice(COIN, 9_484)), LiquidationFill)]
             for x in (ex, restored)]
    assert fills == [[(1_600, 9_480)]] * 2
    ex = sliced_once()
    ex.apply(AdvanceTime(30 * NS_PER_SECOND))
    assert ex.liquidation.cooldowns() == []  # over: no longer in the state


@pytest.mark.skipif(not COMPILED, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")
def test_the_cooldown_is_the_same_on_both_implementations():
    runs = []
    for implementation in ("python", "cython"):
        ex = sliced_once(implementation)
        events = ex.apply(AdvanceTime(10 * NS_PER_SECOND)) + ex.apply(SetMarkPrice(COIN, 9_484))
        runs.append((events, ex.state_hash()))
    assert runs[0] == runs[1]


# -- maintenance margin rate = 1 / (2 × max leverage) ----------------------------------------------------------
def test_the_mmr_is_half_the_initial_margin_rate_at_max_leverage():
    """https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers: "maintenance_margin_rate(tier = n) =
    (Initial Margin Rate at Maximum leverage at tier n) / 2. For example, at 20x max leverage,
    maintenance_margin_rate = 2.5%"; 40x (BTC's first tier) -> 1.25 %; 3x -> 16.67 % (rounded up to 16.666667 %)."""
    assert mmr_from_leverage_e8(20) == 2_500_000
    assert mmr_from_leverage_e8(40) == 1_250_000
    assert mmr_from_leverage_e8(3) == 16_666_667
    inst = Instrument.hyperliquid()  # BTC mainnet tiers: 0-150M at 40x, > 150M at 20x
    assert [(b.notional_cap_units, b.mmr_e8, b.max_leverage) for b in inst.brackets] == [
        (units("150000000"), 1_250_000, 40), (units("1000000000"), 2_500_000, 20)]
    assert (inst.max_leverage, inst.quote, inst.base) == (40, "USDC", "BTC")


def test_maintenance_margin_of_a_200m_btc_position_on_the_mainnet_tiers():
    """Same page: maintenance_margin = notional × mmr − deduction, deduction(n) = deduction(n − 1) +
    lower_bound(n) × (mmr(n) − mmr(n − 1)): 200M in the > 150M tier -> 200M × 2.5 % − 150M × (2.5 % − 1.25 %)
    = 5,000,000 − 1,875,000 = 3,125,000 USDC."""
    inst = Instrument.hyperliquid(maker_fee="0", taker_fee="0")
    ex = CheckedExchange([inst], profile="hyperliquid")
    a, b = Client(ex, 1), Client(ex, 2)
    for client in (a, b):
        client.deposit("50000000")
    ex.apply(SetMarkPrice("BTCUSDC", 10_000_000))
    b.sell("BTCUSDC", "2000", "100000")
    a.buy("BTCUSDC", "2000", "100000")  # 2,000 BTC × 100,000 = 200,000,000 USDC, at 20x (the tier's max)
    assert ex.maintenance_margin(1) == units("3125000")


def test_the_profile_derives_the_rate_from_any_bracket_table():
    inst = Instrument.linear(BTC)  # the default (Binance-style) table: its 3x row has MMR 15 %
    assert [b.mmr_e8 for b in inst.brackets][7] == 15_000_000
    hl = Exchange([inst], profile="hyperliquid").instruments[BTC]
    # every other row already is 1 / (2 × L): 0.4 % at 125x, ..., 50 % at 1x; the 3x row becomes 16.666667 %
    assert [b.mmr_e8 for b in hl.brackets] == [400_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
                                               12_500_000, 16_666_667, 25_000_000, 50_000_000]
    assert Exchange([inst], profile="binance").instruments[BTC] == inst  # other venues take the table as given


def test_hyperliquid_instrument_errors_are_spec_errors():
    from exchange import SpecError
    with pytest.raises(SpecError):
        Instrument.hyperliquid(margin_tiers=(("100", "x"),))
    with pytest.raises(SpecError):
        Instrument.hyperliquid(margin_tiers=())
    with pytest.raises(SpecError):
        Instrument.hyperliquid(margin_tiers=(("100", 10), ("50", 5)))  # caps must increase


# -- price precision ------------------------------------------------------------------------------------------
def grid(tick, lot):
    return Instrument.linear("XUSDT", tick_size=tick, lot_size=lot, min_qty=lot, min_notional="0")


@pytest.mark.parametrize("tick, lot, price, ok", [
    # https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/tick-and-lot-size: "1234.5 is valid but
    # 1234.56 is not (6 significant figures)"; "0.001234 is valid, but 0.0012345 is not (more than 6 decimals)";
    # with szDecimals 1: "0.01234 is valid, but 0.012345 is not (more than 6 − 1 = 5 decimals)"; "integer prices
    # are always allowed, regardless of the number of significant figures: e.g. 123456.0 is a valid price"
    ("0.01", "0.001", "1234.5", True),
    ("0.01", "0.001", "1234.56", False),
    ("0.0000001", "1", "0.001234", True),
    ("0.0000001", "1", "0.0012345", False),
    ("0.0000001", "0.1", "0.01234", True),
    ("0.0000001", "0.1", "0.012345", False),
    ("0.01", "0.001", "123456", True),
    ("0.01", "0.001", "123456.1", False),
    ("0.001", "0.001", "1.234", True),  # szDecimals 3: at most 3 decimals
    ("0.0001", "0.001", "1.2345", False),  # 5 significant figures but 4 decimals > 6 − 3
])
def test_hyperliquid_tick_rule(tick, lot, price, ok):
    inst = grid(tick, lot)
    ticks = inst.price_to_ticks(price)
    assert check_price_precision(inst, ticks, 5, 6) == (RejectCode.OK if ok else RejectCode.BAD_PRECISION)
    assert check_price_precision(inst, ticks, 0, 0) == RejectCode.OK  # other venues: off


def test_size_decimals_are_the_lot_sizes_decimals():
    assert [size_decimals(grid("0.01", lot)) for lot in ("0.001", "0.1", "1", "10")] == [3, 1, 0, 0]


def hl_btc(profile="hyperliquid"):
    ex = CheckedExchange([Instrument.linear(BTC, maker_fee="0", taker_fee="0")], profile=profile)
    a = Client(ex, 1)
    a.deposit("1000000")
    ex.apply(SetMarkPrice(BTC, 5_000_000))
    return ex, a


def test_an_off_precision_order_is_rejected_with_1111_under_hyperliquid_only():
    ex, a = hl_btc()
    (event,) = a.buy(BTC, "0.01", "49999.5")  # 6 significant figures
    assert isinstance(event, Rejected) and event.code == RejectCode.BAD_PRECISION == -1111
    assert "significant figures" in event.message
    assert not of(a.buy(BTC, "0.01", "49999"), Rejected)  # a whole number
    assert not of(a.buy(BTC, "0.01", "4999.5"), Rejected)  # 5 significant figures, 1 decimal
    ex, a = hl_btc("binance")
    assert not of(a.buy(BTC, "0.01", "49999.5"), Rejected)


def test_precision_is_checked_on_amends_and_conditional_prices_and_after_the_range():
    ex, a = hl_btc()
    (accepted,) = a.buy(BTC, "0.01", "49000")[:1]
    (event,) = a.amend(BTC, accepted.order_id, "49000.5", "0.01")
    assert event.code == RejectCode.BAD_PRECISION
    (event,) = a.sell(BTC, "0.01", order_type="STOP_MARKET", stop_price="49000.01")
    assert event.code == RejectCode.BAD_PRECISION
    (event,) = a.sell(BTC, "0.01", "49000.5", order_type="STOP", stop_price="49000")
    assert event.code == RejectCode.BAD_PRECISION
    (event,) = a.buy(BTC, "0.01", "999999.99")  # above the max price: the range filter answers first
    assert event.code == RejectCode.PRICE_GREATER_THAN_MAX_PRICE
