from decimal import Decimal

import pytest

from exchange import units
from exchange.units import UnitsError


@pytest.mark.parametrize("value", ["100.01", Decimal("100.01"), " 100.01 "])
def test_to_ticks_is_exact_for_str_and_decimal(value):
    assert units.to_ticks(value, "0.01") == 10001


def test_int_price_converts():
    assert units.to_ticks(100, "0.01") == 10000
    assert units.to_lots(3, "1") == 3


@pytest.mark.parametrize("value", ["100.005", "0.0001", "1e-9"])
def test_off_grid_values_are_rejected_not_rounded(value):
    with pytest.raises(UnitsError, match="not a multiple"):
        units.to_ticks(value, "0.01")


@pytest.mark.parametrize("value", [0.1, 1.0, True, None, [1], "abc", "nan", "inf"])
def test_non_exact_or_non_numeric_inputs_are_refused(value):
    with pytest.raises(UnitsError):
        units.to_decimal(value)


def test_bounds_reject_values_beyond_2_62_steps():
    assert units.to_grid(2**62, 1) == 2**62
    with pytest.raises(UnitsError, match="out of bounds"):
        units.to_grid(2**62 + 1, 1)


def test_money_rates_and_time():
    assert units.to_units("1.5") == 150_000_000
    assert units.to_units("0.00000001") == 1
    with pytest.raises(UnitsError):
        units.to_units("0.000000001")
    assert units.to_e8("0.0004") == 40_000
    assert units.to_e8("-0.0002") == -20_000
    assert units.to_ns("1.5") == 1_500_000_000
    assert units.from_units(150_000_000) == Decimal("1.5")
    assert units.from_e8(40_000) == Decimal("0.0004")


def test_lots_and_negative_grid_values():
    assert units.to_lots("0.02", "0.001") == 20
    assert units.to_grid("-0.02", "0.01") == -2
    assert units.from_grid(-2, "0.01") == Decimal("-0.02")


def test_step_must_be_positive():
    with pytest.raises(UnitsError):
        units.to_grid("1", "0")


@pytest.mark.parametrize("a,b,floor,ceil", [(7, 2, 3, 4), (-7, 2, -4, -3), (6, 3, 2, 2), (-6, 3, -2, -2), (0, 5, 0, 0)])
def test_division_rules(a, b, floor, ceil):
    assert units.div_floor(a, b) == floor
    assert units.div_ceil(a, b) == ceil


def test_mul_div_is_exact_beyond_64_bits():
    a, b, c = 2**62, 3 * 10**8, 10**8
    assert units.mul_div_floor(a, b, c) == 3 * 2**62
    assert units.mul_div_ceil(-7, 1, 2) == -3
    assert units.mul_div_floor(-7, 1, 2) == -4


def test_check_bounds():
    assert units.check_bounds("x", 5, 1, 10) == 5
    with pytest.raises(UnitsError, match="outside"):
        units.check_bounds("x", 11, 1, 10)
    with pytest.raises(UnitsError, match="must be an int"):
        units.check_bounds("x", True, 0, 10)
