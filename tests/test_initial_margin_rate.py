"""Leverage as an initial margin rate (``SetInitialMarginRate``, rules §4): bybit and bitmex set risk limits by
IMR, which is not always an integer leverage. BitMEX's risk limits raise the initial margin by the base
maintenance margin at each step (https://www.bitmex.com/app/riskLimitsExamples: "IM = base IM + steps × base
MM"), e.g. 1 % + 0.5 % = 1.5 %, a leverage of 66.67×. Expected numbers derived by hand; both implementations
(:class:`tests.test_venue_liquidation.Twin`)."""
import io
from fractions import Fraction

from exchange import (
    Client, Exchange, InitialMarginRateChanged, LeverageChanged, Rejected, RejectCode, SetInitialMarginRate,
    SetLeverage, dump_journal, load_journal, replay,
)
from tests.checked import of, rejected, units
from tests.test_venue_liquidation import BTC, Twin, btc, isolated_position, liquidated, mark, ticks


def test_one_and_a_half_percent_is_66_67x_with_exact_margins():
    """Isolated long 1 BTC at 10,000 at IMR 1.5 %: margin 150 (not 10,000 / 66 = 151.52); bitmex, MM 0.5 % of
    the entry value (50): LP = 10,000 − (150 − 50) = 9,900; BP = 10,000 − 150 = 9,850."""
    ex = Twin([btc("0.005", 100)], "bitmex")
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("100000")
    maker.deposit("100000000")
    mark(ex, BTC, "10000")
    a.set_margin_mode(BTC, "ISOLATED")
    assert a.set_initial_margin_rate(BTC, "0.015") == [InitialMarginRateChanged(1, BTC, 1_500_000, 66)]
    assert ex.leverage(1, BTC) == 66 and ex.initial_margin_rate(1, BTC) == Fraction(3, 200)
    maker.sell(BTC, "1", "10000")
    a.buy(BTC, "1", "10000")
    assert ex.position(1, BTC).isolated_margin_units == units("150") == ex.initial_margin(1, BTC)
    assert ex.liquidation_price_ticks(1, BTC) == ticks("9900")
    assert ex.bankruptcy_price_ticks(1, BTC) == ticks("9850")
    assert liquidated(mark(ex, BTC, "9900.01")) == []
    assert liquidated(mark(ex, BTC, "9900")) == [(1, BTC)]


def test_order_holds_and_cross_im_use_the_rate():
    """A resting buy of 1 BTC at 10,000 holds ⌈10,000 × 1.5 %⌉ = 150; filled cross, its IM is 150."""
    ex = Twin([btc("0.005", 100)], "bybit")
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("1000")
    maker.deposit("100000000")
    mark(ex, BTC, "10000")
    a.set_initial_margin_rate(BTC, "0.015")
    a.buy(BTC, "1", "10000")
    assert ex.order_margin(1) == units("150") and ex.available_balance(1) == units("850")
    maker.sell(BTC, "1", "10000")
    assert ex.order_margin(1) == 0 and ex.initial_margin(1) == units("150")


def test_bybit_isolated_bankruptcy_price_uses_the_rate():
    """Bybit's isolated BP = entry × (1 − IMR) (rules §10, help.bybit.com "Bankruptcy Price (USDT Contract)"):
    10,000 × (1 − 1.5 %) = 9,850; the short: 10,000 × 1.015 = 10,150."""
    for short, bp in ((False, "9850"), (True, "10150")):
        ex = Twin([btc("0.005", 100)], "bybit")
        a, maker = Client(ex, 1), Client(ex, 2)
        a.deposit("100000")
        maker.deposit("100000000")
        mark(ex, BTC, "10000")
        a.set_margin_mode(BTC, "ISOLATED")
        a.set_initial_margin_rate(BTC, "0.015")
        (maker.buy if short else maker.sell)(BTC, "1", "10000")
        (a.sell if short else a.buy)(BTC, "1", "10000")
        assert ex.bankruptcy_price_ticks(1, BTC) == ticks(bp)


def test_the_rate_is_checked_at_the_boundary_and_against_the_instrument():
    ex = Twin([btc("0.005", 100)], "bybit")
    Client(ex, 1).deposit("1000")
    for imr in (0, 999_999, 100_000_001):  # 0; above 100x (max leverage 100: at least 1 %); above 100 %
        assert rejected(ex.apply(SetInitialMarginRate(1, BTC, imr))).code == RejectCode.INVALID_LEVERAGE
    for bad in (-1, 1.5, "1500000", None):
        assert rejected(ex.apply(SetInitialMarginRate(1, BTC, bad))).code == RejectCode.MALFORMED
    assert rejected(ex.apply(SetInitialMarginRate(1, "NOPE", 1_500_000))).code == RejectCode.INVALID_SYMBOL
    assert ex.apply(SetInitialMarginRate(1, BTC, 1_000_000)) == [InitialMarginRateChanged(1, BTC, 1_000_000, 100)]
    assert ex.apply(SetInitialMarginRate(1, BTC, 100_000_000)) == [InitialMarginRateChanged(1, BTC, 100_000_000, 1)]
    assert of(Client(ex, 1).set_initial_margin_rate(BTC, 0.015), Rejected)  # a float is not exact: refused


def test_the_bracket_check_compares_the_exact_leverage():
    """Rows: to 50,000 at 0.5 % (100x), above at 1 % (max 66x). A 6 BTC position at 10,000 (60,000) sits in the
    66x row: 1.5 % (66.67×) is above 66 → -2027 although its integer part is 66; 1.52 % (65.79×) is allowed."""
    inst = btc("0.005", 100)
    inst = type(inst).linear(BTC, tick_size="0.01", lot_size="0.001", max_qty="1000", max_price="1000000",
                             min_notional="0", maker_fee="0", taker_fee="0", max_leverage=100,
                             brackets=[("50000", "0.005", 100), ("100000000", "0.01", 66)])
    ex = Twin([inst], "bybit")
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("100000")
    maker.deposit("100000000")
    mark(ex, BTC, "10000")
    a.set_leverage(BTC, 10)
    maker.sell(BTC, "6", "10000")
    a.buy(BTC, "6", "10000")
    assert rejected(a.set_initial_margin_rate(BTC, "0.015")).code == RejectCode.MAX_POSITION_AT_LEVERAGE
    assert a.set_initial_margin_rate(BTC, "0.0152") == [InitialMarginRateChanged(1, BTC, 1_520_000, 65)]


def test_lowering_an_isolated_leverage_by_rate_is_refused_with_a_position():
    ex, a = isolated_position("bybit", btc("0.005", 100), 50, "1", "10000")  # 2 %
    assert rejected(a.set_initial_margin_rate(BTC, "0.025")).code == RejectCode.ISOLATED_LEVERAGE_REDUCTION
    assert a.set_initial_margin_rate(BTC, "0.015") == [InitialMarginRateChanged(1, BTC, 1_500_000, 66)]


def test_an_integer_rate_is_that_leverage_and_set_leverage_replaces_a_rate():
    """5 % is 20×: the same state as SetLeverage(20); SetLeverage after a rate stores the integer leverage."""
    by_rate, by_leverage = Twin([btc("0.005", 100)], "bybit"), Twin([btc("0.005", 100)], "bybit")
    assert by_rate.apply(SetInitialMarginRate(1, BTC, 5_000_000)) == [InitialMarginRateChanged(1, BTC, 5_000_000, 20)]
    assert by_leverage.apply(SetLeverage(1, BTC, 20)) == [LeverageChanged(1, BTC, 20)]
    assert by_rate.state_hash() == by_leverage.state_hash()
    by_rate.apply(SetInitialMarginRate(1, BTC, 1_500_000))
    assert by_rate.state_hash() != by_leverage.state_hash()
    by_rate.apply(SetLeverage(1, BTC, 20))
    assert by_rate.state_hash() == by_leverage.state_hash() and by_rate.initial_margin_rate(1, BTC) == Fraction(1, 20)


def test_the_rate_survives_the_journal_and_a_snapshot():
    ex, _ = isolated_position("bitmex", btc("0.005", 100), 50, "1", "10000")
    Client(ex, 3).deposit("100000")
    ex.apply(SetInitialMarginRate(3, BTC, 1_500_000))
    for exchange in ex.exchanges:
        buffer = io.BytesIO()
        dump_journal(exchange.instruments.values(), exchange.journal, buffer, profile=exchange.profile)
        buffer.seek(0)
        instruments, commands = load_journal(buffer)
        assert commands[-1] == SetInitialMarginRate(3, BTC, 1_500_000)
        replayed, _ = replay(instruments, commands, implementation=exchange.implementation, profile="bitmex")
        assert replayed.state_hash() == exchange.state_hash()
        restored = Exchange.restore_bytes(exchange.snapshot_bytes(), exchange.implementation)
        assert restored.state_hash() == exchange.state_hash()
        assert restored.initial_margin_rate(3, BTC) == Fraction(3, 200) and restored.leverage(3, BTC) == 66
