"""Enumerations with explicit, stable integer values (0 always means "unset").

The values are part of the journal format and of the compiled core's ABI (``exchange/orders/_matching.pyx`` uses the
same integers; ``tests/test_enums.py`` checks they agree). Never renumber; only append.
"""
from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def sign(self) -> int:
        """+1 for BUY, −1 for SELL."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP = 3  # stop-limit
    STOP_MARKET = 4
    TAKE_PROFIT = 5  # take-profit limit
    TAKE_PROFIT_MARKET = 6
    TRAILING_STOP_MARKET = 7

    @property
    def is_conditional(self) -> bool:
        """True for the types that wait for a trigger price before entering the book."""
        return self >= OrderType.STOP


class TimeInForce(IntEnum):
    GTC = 1  # good till cancelled
    IOC = 2  # immediate or cancel
    FOK = 3  # fill or kill
    GTX = 4  # post-only: rejected if any part would take
    GTD = 5  # good till date (simulation time, ``expire_ns``)


class STPMode(IntEnum):
    """Self-trade prevention, decided by the *taker's* mode when it meets its own account's maker."""

    NONE = 1  # trade with yourself
    EXPIRE_TAKER = 2  # the taker's remainder expires; the maker stays
    EXPIRE_MAKER = 3  # the maker expires; the taker continues
    EXPIRE_BOTH = 4  # both expire


class WorkingType(IntEnum):
    """Which price a conditional order watches."""

    MARK_PRICE = 1
    CONTRACT_PRICE = 2  # last trade price


class PositionMode(IntEnum):
    ONE_WAY = 1
    HEDGE = 2


class MarginMode(IntEnum):
    CROSS = 1
    ISOLATED = 2


class PositionSide(IntEnum):
    BOTH = 1  # one-way mode
    LONG = 2  # hedge mode
    SHORT = 3  # hedge mode


class CancelReason(IntEnum):
    """Why an order left the book without filling completely (``code`` of a CANCELED event)."""

    USER = 1  # cancel or cancel-all by its owner
    IOC = 2  # IOC / market remainder expired after matching
    STP_TAKER = 3  # self-trade prevention expired the taker
    STP_MAKER = 4  # self-trade prevention expired the maker
    GTD_EXPIRED = 5  # good-till-date reached
    PRICE_BAND = 6  # a market order stopped at the price band; the rest expired
    NO_LIQUIDITY = 7  # a market order found an empty opposite side
    AMEND_TO_ZERO = 8  # reserved: an amend that leaves nothing to rest
    REDUCE_ONLY = 9  # a reduce-only order canceled because its position shrank to nothing on its side
    LIQUIDATION = 10  # canceled by the liquidation waterfall (the account's orders, rules §7 step 1)
    ADL = 11  # a deleveraged position's orders in that symbol (rules §7 step 5)
    SETTLEMENT = 12  # every open order of a symbol at its final settlement (SettleSymbol)


class BalanceReason(IntEnum):
    """Why a wallet balance changed (``BalanceChanged.reason``)."""

    DEPOSIT = 1
    WITHDRAW = 2
    TRADE = 3  # a fill: realized PnL, fee, isolated margin moved in or returned
    MARGIN_TRANSFER = 4  # isolated margin added/removed, or moved by a margin-mode switch
    FUNDING = 5  # a cross position's funding payment (paid < 0, received > 0)
    LIQUIDATION = 10  # the liquidation waterfall: leftover margin to the fund, fund paying a fill below bankruptcy
    INSURANCE_TOP_UP = 11  # a negative balance topped up to zero by the insurance fund
    SOCIALIZED_LOSS = 12  # a winner's pro-rata haircut (loss rule SOCIALIZED)
    SETTLEMENT = 13  # final settlement: the insurance fund topping up a part the settlement price left bankrupt


class InsuranceReason(IntEnum):
    """Why an insurance fund's balance changed (``InsuranceFundChanged.reason``, fund history)."""

    SEED = 1  # FundInsurance command (money put in by the venue; counted as a deposit)
    LIQUIDATION_FEE = 2  # rate × liquidated notional, capped by the fill's surplus over bankruptcy
    LEFTOVER = 3  # margin left after a full liquidation
    TOP_UP = 4  # a negative balance topped up (paid out)
    PER_FILL = 5  # dYdX: the fund pays a liquidation fill's shortfall below the bankruptcy price
    SOCIALIZED = 6  # haircuts of winners credited to the fund to cover what it could not pay
    TRADING = 7  # outside the waterfall: the fund's own fills (unwinding), deficits of isolated positions closed by trades
    TAKEOVER = 8  # PnL the fund realizes when a takeover or an ADL match closes part of its own position
    SETTLEMENT = 9  # final settlement: the fund's own position closed, or a bankrupt part topped up


class EventKind(IntEnum):
    """Kinds of matching-level events (rows of ``exchange.events.EVENT_DTYPE``)."""

    ACCEPTED = 1
    REJECTED = 2
    FILL = 3
    CANCELED = 4
    AMENDED = 5
    TRIGGERED = 6


class CommandKind(IntEnum):
    """Kinds of rows in a batch command array (``exchange.commands.COMMAND_DTYPE``)."""

    PLACE = 1
    CANCEL = 2
    AMEND = 3
    CANCEL_ALL = 4
    SET_MARK = 5
    SET_TIME = 6


class RejectCode(IntEnum):
    """Reject codes; Binance USDⓈ-M codes where Binance has one, with the message in :data:`REJECT_MESSAGES`."""

    OK = 0
    BAD_PRECISION = -1111
    MALFORMED = -1102
    INVALID_TIF = -1115
    INVALID_ORDER_TYPE = -1116
    INVALID_SIDE = -1117
    INVALID_SYMBOL = -1121
    SYMBOL_SETTLED = -1122  # Binance's INVALID_SYMBOL_STATUS: the symbol was settled (SettleSymbol)
    UNKNOWN_ORDER = -2011
    NO_SUCH_ORDER = -2013
    BALANCE_NOT_SUFFICIENT = -2018
    MARGIN_INSUFFICIENT = -2019
    WOULD_TRIGGER_IMMEDIATELY = -2021
    REDUCE_ONLY_REJECTED = -2022
    USER_IN_LIQUIDATION = -2023
    MAX_POSITION_AT_LEVERAGE = -2027
    LEVERAGE_INSUFFICIENT_MARGIN = -2028
    PRICE_LESS_THAN_ZERO = -4001
    PRICE_GREATER_THAN_MAX_PRICE = -4002
    QTY_LESS_THAN_ZERO = -4003
    QTY_LESS_THAN_MIN_QTY = -4004
    QTY_GREATER_THAN_MAX_QTY = -4005
    STOP_PRICE_LESS_THAN_ZERO = -4006
    STOP_PRICE_GREATER_THAN_MAX_PRICE = -4007
    PRICE_LESS_THAN_MIN_PRICE = -4013
    PRICE_NOT_INCREASED_BY_TICK_SIZE = -4014
    DUPLICATE_ORDER_ID = -4015
    PRICE_HIGHER_THAN_MULTIPLIER_UP = -4016
    QTY_NOT_INCREASED_BY_STEP_SIZE = -4023
    PRICE_LOWER_THAN_MULTIPLIER_DOWN = -4024
    INVALID_LEVERAGE = -4028
    NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
    MARGIN_TYPE_OPEN_ORDERS = -4047
    MARGIN_TYPE_OPEN_POSITION = -4048
    ISOLATED_ONLY = -4049
    CROSS_BALANCE_INSUFFICIENT = -4050
    ISOLATED_BALANCE_INSUFFICIENT = -4051
    NO_ISOLATED_POSITION = -4054
    NO_NEED_TO_CHANGE_POSITION_SIDE = -4059
    POSITION_SIDE_MISMATCH = -4061
    POSITION_SIDE_OPEN_ORDERS = -4067
    POSITION_SIDE_OPEN_POSITION = -4068
    INVALID_CALLBACK_RATE = -4085
    MARKET_QTY_GREATER_THAN_MAX = -4108
    REDUCE_ONLY_ORDER_PERMISSION = -4087
    INVALID_ACTIVATION_PRICE = -4135
    ISOLATED_LEVERAGE_REDUCTION = -4161
    NOTIONAL_TOO_SMALL = -4164
    FOK_NOT_FILLED = -5021
    POST_ONLY_WOULD_TAKE = -5022
    MODIFY_LIMIT_ONLY = -5025
    NO_NEED_TO_MODIFY = -5027
    GTD_TIME_INVALID = -5040


REJECT_MESSAGES = {
    RejectCode.OK: "OK.",
    RejectCode.BAD_PRECISION: "Precision is over the maximum defined for this asset: a price that is not a whole "
                              "number has too many significant figures or decimals (hyperliquid: at most 5 "
                              "significant figures and 6 − szDecimals decimals).",
    RejectCode.MALFORMED: "A mandatory parameter was not sent, was empty/null, or malformed.",
    RejectCode.INVALID_TIF: "Invalid timeInForce.",
    RejectCode.INVALID_ORDER_TYPE: "Invalid orderType.",
    RejectCode.INVALID_SIDE: "Invalid side.",
    RejectCode.INVALID_SYMBOL: "Invalid symbol.",
    RejectCode.SYMBOL_SETTLED: "Invalid symbol status: the symbol is settled and no longer trades.",
    RejectCode.UNKNOWN_ORDER: "Unknown order sent.",
    RejectCode.NO_SUCH_ORDER: "Order does not exist.",
    RejectCode.BALANCE_NOT_SUFFICIENT: "Balance is insufficient.",
    RejectCode.MARGIN_INSUFFICIENT: "Margin is insufficient.",
    RejectCode.WOULD_TRIGGER_IMMEDIATELY: "Order would immediately trigger.",
    RejectCode.REDUCE_ONLY_REJECTED: "ReduceOnly Order is rejected.",
    RejectCode.USER_IN_LIQUIDATION: "User in liquidation mode now.",
    RejectCode.MAX_POSITION_AT_LEVERAGE: "Exceeded the maximum allowable position at current leverage.",
    RejectCode.LEVERAGE_INSUFFICIENT_MARGIN: "Leverage is smaller than permitted: insufficient margin balance.",
    RejectCode.PRICE_LESS_THAN_ZERO: "Price less than 0.",
    RejectCode.PRICE_GREATER_THAN_MAX_PRICE: "Price greater than max price.",
    RejectCode.QTY_LESS_THAN_ZERO: "Quantity less than or equal to zero.",
    RejectCode.QTY_LESS_THAN_MIN_QTY: "Quantity less than min quantity.",
    RejectCode.QTY_GREATER_THAN_MAX_QTY: "Quantity greater than max quantity.",
    RejectCode.STOP_PRICE_LESS_THAN_ZERO: "Stop price less than zero.",
    RejectCode.STOP_PRICE_GREATER_THAN_MAX_PRICE: "Stop price greater than max price.",
    RejectCode.PRICE_LESS_THAN_MIN_PRICE: "Price less than min price.",
    RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE: "Price not increased by tick size.",
    RejectCode.DUPLICATE_ORDER_ID: "Order id already in use.",
    RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP: "Price higher than multiplier up.",
    RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE: "Quantity not increased by step size.",
    RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN: "Price lower than multiplier down.",
    RejectCode.INVALID_LEVERAGE: "Invalid leverage.",
    RejectCode.NO_NEED_TO_CHANGE_MARGIN_TYPE: "No need to change margin type.",
    RejectCode.MARGIN_TYPE_OPEN_ORDERS: "Margin type cannot be changed if there exists open orders.",
    RejectCode.MARGIN_TYPE_OPEN_POSITION: "Margin type cannot be changed if there exists position.",
    RejectCode.ISOLATED_ONLY: "Add margin only support for isolated position.",
    RejectCode.CROSS_BALANCE_INSUFFICIENT: "Cross balance insufficient.",
    RejectCode.ISOLATED_BALANCE_INSUFFICIENT: "Isolated balance insufficient.",
    RejectCode.NO_ISOLATED_POSITION: "Cannot add position margin: position is 0.",
    RejectCode.NO_NEED_TO_CHANGE_POSITION_SIDE: "No need to change position side.",
    RejectCode.POSITION_SIDE_MISMATCH: "Order's position side does not match user's setting.",
    RejectCode.POSITION_SIDE_OPEN_ORDERS: "Position side cannot be changed if there exists open orders.",
    RejectCode.POSITION_SIDE_OPEN_POSITION: "Position side cannot be changed if there exists position.",
    RejectCode.INVALID_CALLBACK_RATE: "Callback rate must be within the allowed range.",
    RejectCode.MARKET_QTY_GREATER_THAN_MAX: "Market order quantity greater than max market quantity.",
    RejectCode.REDUCE_ONLY_ORDER_PERMISSION: "User can only place reduce only order.",
    RejectCode.INVALID_ACTIVATION_PRICE: "Activation price would trigger immediately.",
    RejectCode.ISOLATED_LEVERAGE_REDUCTION: "Leverage reduction is not supported in Isolated Margin Mode with open positions.",
    RejectCode.NOTIONAL_TOO_SMALL: "Order's notional must be no smaller than the minimum (unless you choose reduce only).",
    RejectCode.FOK_NOT_FILLED: "Due to the order could not be filled immediately, the FOK order has been rejected.",
    RejectCode.POST_ONLY_WOULD_TAKE: "Due to the order could not be executed as maker, the Post Only order will be rejected.",
    RejectCode.MODIFY_LIMIT_ONLY: "Only resting limit orders can be modified.",
    RejectCode.NO_NEED_TO_MODIFY: "No need to modify the order.",
    RejectCode.GTD_TIME_INVALID: "goodTillDate must be later than the current simulation time.",
}


def reject_message(code: int) -> str:
    """The human-readable message of a reject code."""
    return REJECT_MESSAGES[RejectCode(code)]
