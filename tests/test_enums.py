"""Enum values are part of the journal format and of the compiled core's ABI: they never change."""
from exchange.enums import (
    CancelReason, CommandKind, EventKind, OrderType, RejectCode, REJECT_MESSAGES, Side, STPMode, TimeInForce,
    reject_message,
)


def test_stable_values():
    assert [int(v) for v in Side] == [1, 2]
    assert [int(v) for v in OrderType] == [1, 2, 3, 4, 5, 6, 7]
    assert [int(v) for v in TimeInForce] == [1, 2, 3, 4, 5]
    assert [int(v) for v in STPMode] == [1, 2, 3, 4]
    assert [int(v) for v in EventKind] == [1, 2, 3, 4, 5, 6]
    assert [int(v) for v in CommandKind] == [1, 2, 3, 4, 5, 6]
    assert [int(v) for v in CancelReason] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]


def test_binance_codes_named_by_the_spec():
    assert RejectCode.MARGIN_INSUFFICIENT == -2019
    assert RejectCode.REDUCE_ONLY_REJECTED == -2022
    assert RejectCode.NOTIONAL_TOO_SMALL == -4164
    assert RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE == -4014
    assert RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP == -4016
    assert RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN == -4024
    assert RejectCode.FOK_NOT_FILLED == -5021
    assert RejectCode.POST_ONLY_WOULD_TAKE == -5022
    assert RejectCode.WOULD_TRIGGER_IMMEDIATELY == -2021
    assert RejectCode.SYMBOL_SETTLED == -1122  # Binance INVALID_SYMBOL_STATUS


def test_every_code_has_a_message():
    assert set(REJECT_MESSAGES) == set(RejectCode)
    assert reject_message(-2019) == "Margin is insufficient."


def test_side_helpers():
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL
    assert OrderType.STOP.is_conditional and not OrderType.MARKET.is_conditional
