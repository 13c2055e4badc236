from decimal import Decimal

import pytest

from exchange.spec import FundingParams, Instrument, SpecError


def test_default_instrument_converts_exactly():
    inst = Instrument.linear("BTCUSDT")
    assert inst.base == "BTC" and inst.settle == "USDT"
    assert inst.tick_size == Decimal("0.01") and inst.lot_size == Decimal("0.001")
    assert inst.k_units == 1000  # 0.01 × 0.001 × 1e8
    assert inst.min_notional_units == 500_000_000
    assert (inst.band_up_e8, inst.band_down_e8) == (115_000_000, 85_000_000)
    assert (inst.maker_fee_e8, inst.taker_fee_e8) == (20_000, 50_000)
    assert inst.brackets[2].notional_cap_units == 1_000_000 * 10**8
    assert inst.brackets[2].mmr_e8 == 1_000_000


def test_notional_uses_k():
    inst = Instrument.linear("BTCUSDT")
    # 0.02 BTC at 50,000 = 1,000 USDT
    assert inst.notional_units(inst.price_to_ticks("50000"), inst.qty_to_lots("0.02")) == 1000 * 10**8


def test_k_must_be_an_integer():
    with pytest.raises(SpecError, match="K = "):
        Instrument.linear("X", tick_size="0.000001", lot_size="0.0001")


def test_off_grid_parameters_are_refused():
    with pytest.raises(SpecError):
        Instrument.linear("X", min_qty="0.0005")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(max_price="1000000000", max_qty="1000000"), "2\\^62"),
        (dict(min_qty="2", max_qty="1"), "min_qty"),
        (dict(band_up="0.9"), "band"),
        (dict(maker_fee="-0.001", taker_fee="0.0005"), "rebate"),
        (dict(max_leverage=200), "max_leverage"),
        (dict(max_leverage=50, brackets=[("100", "0.01", 50), ("50", "0.02", 20)]), "increasing"),
        (dict(max_leverage=100, brackets=[("100", "0.02", 100)]), "MMR × max leverage"),
        (dict(brackets=[]), "at least one"),
    ],
)
def test_invalid_definitions_raise(overrides, message):
    with pytest.raises(SpecError, match=message):
        Instrument.linear("X", **overrides)


def test_symbol_must_be_alphanumeric():
    with pytest.raises(SpecError):
        Instrument.linear("BTC-USDT")


def test_funding_params_validate():
    with pytest.raises(SpecError):
        FundingParams(interval_ns=0)
    with pytest.raises(SpecError):
        FundingParams(floor_e8=10, cap_e8=0)


def test_instrument_is_frozen():
    inst = Instrument.linear("BTCUSDT")
    with pytest.raises(AttributeError):
        inst.k_units = 1


# -- bounds derived from the 2⁶² rule (rules §1) ---------------------------------------------------------------
MAX = 2**62


def test_default_bounds_split_the_2_62_budget_evenly():
    inst = Instrument.linear("BTCUSDT")  # K = 1,000: max_price_ticks × max_qty_lots ≤ 2⁶² / 1,000
    budget = MAX // 1000  # 4,611,686,018,427,387
    assert inst.max_price_ticks == 67_909_395  # ⌊√budget⌋: 67,909,395² = 4,611,686,...,025 ≤ budget < 67,909,396²
    assert 67_909_395**2 <= budget < 67_909_396**2
    assert inst.max_qty_lots == budget // 67_909_395 == 67_909_396
    assert (inst.ticks_to_price(inst.max_price_ticks), inst.lots_to_qty(inst.max_qty_lots)) == (
        Decimal("679093.95"), Decimal("67909.396"))
    assert inst.max_market_qty_lots == inst.max_qty_lots
    assert inst.max_price_ticks * inst.max_qty_lots * inst.k_units <= MAX


def test_one_given_bound_gets_the_rest_of_the_budget():
    # max price 1,000,000 = 10⁸ ticks -> ⌊2⁶² / (1,000 × 10⁸)⌋ = 46,116,860 lots = 46,116.860 BTC
    assert Instrument.linear("BTCUSDT", max_price="1000000").max_qty_lots == 46_116_860
    # max qty 1,000 BTC = 10⁶ lots -> ⌊2⁶² / (1,000 × 10⁶)⌋ = 4,611,686,018 ticks = 46,116,860.18
    assert Instrument.linear("BTCUSDT", max_qty="1000").max_price_ticks == 4_611_686_018
    # a coin (lot 1, K = 10⁶): √(2⁶² / 10⁶) -> 2,147,483 ticks (21,474.83) and 2,147,484 coins
    coin = Instrument.linear("AAAUSDT", lot_size="1", min_qty="1")
    assert (coin.max_price_ticks, coin.max_qty_lots) == (2_147_483, 2_147_484)


def test_explicit_bounds_are_kept_as_given():
    inst = Instrument.linear("BTCUSDT", max_price="1000000", max_qty="1000")  # the old defaults
    assert (inst.max_price_ticks, inst.max_qty_lots) == (100_000_000, 1_000_000)


@pytest.mark.parametrize("overrides, message", [
    (dict(max_price="100000000000000"), "max_price × K alone"),  # 10¹⁶ ticks × K > 2⁶²: no room for one lot
    (dict(max_qty="10000000000000"), "max_qty × K alone"),  # 10¹⁶ lots
    (dict(tick_size="1", lot_size="1", multiplier="100000000000", min_qty="1"), "alone exceeds"),  # K = 10¹⁹
    (dict(max_price="1000000000", max_qty="1000000"), "2\\^62"),  # both given: the rule itself
])
def test_bounds_that_cannot_fit_are_refused(overrides, message):
    with pytest.raises(SpecError, match=message):
        Instrument.linear("X", **overrides)
