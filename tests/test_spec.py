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
