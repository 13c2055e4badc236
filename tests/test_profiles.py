"""What distinguishes the venue profiles' funding and brackets (rules §10), through the Exchange; every
expected number is derived by hand in the comments. BTCUSDT: tick 0.01, lot 0.001 (K = 1,000 units per
tick·lot); COINUSDT: tick 0.01, lot 1 (K = 10⁶)."""
import pytest

from exchange import (
    AdvanceTime, Client, Exchange, FundingParams, Instrument, MarkParams, MarkSource, SetIndexPrice, SetMarkPrice,
)
from exchange.profiles import PROFILES, BracketStyle
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, units

BTC, COIN = "BTCUSDT", "COINUSDT"
HOUR = 3600 * NS_PER_SECOND
EX2 = (("50000", "0.004", 125), ("250000", "0.005", 100), ("1000000", "0.01", 50))  # rules example 2


def venue(instrument, profile):
    ex = CheckedExchange([instrument], profile=profile)
    clients = [Client(ex, account) for account in (1, 2, 3, 4)]
    for client in clients:
        client.deposit("10000000")
    return ex, clients


# -- funding interval and the 8-hour rate ÷ 8 ----------------------------------------------------------------
@pytest.mark.parametrize("profile, interval_h, rate_e8", [
    ("binance", 8, 10_000), ("bybit", 8, 10_000), ("bitmex", 8, 10_000),
    ("dydx", 1, 1_250), ("hyperliquid", 1, 1_250),  # 0.01% per 8 h ÷ 8 = 0.00125% per hour
])
def test_interval_and_rate_divisor(profile, interval_h, rate_e8):
    ex, _ = venue(Instrument.linear(BTC), profile)
    assert ex.next_funding_time_ns() == interval_h * HOUR
    assert ex.predicted_funding_rate_e8(BTC) == rate_e8  # no samples: the interest rate, per settlement
    ex.apply(AdvanceTime(interval_h * HOUR))
    assert [(r.time_ns, r.rate_e8) for r in ex.funding_history(BTC)] == [(interval_h * HOUR, rate_e8)]
    assert ex.next_funding_time_ns() == 2 * interval_h * HOUR


def test_rates_must_be_quoted_for_the_venue_interval_times_the_divisor():
    hourly = Instrument.linear(BTC, funding=FundingParams(interval_ns=HOUR))
    with pytest.raises(ValueError, match="quoted per"):
        Exchange([hourly], profile="binance")  # binance settles every 8 h: the rates must be 8-hour rates
    with pytest.raises(ValueError, match="quoted per"):
        Exchange([hourly], profile="dydx")  # dydx pays 1/8 of an 8-hour rate every hour


# -- cap rules -------------------------------------------------------------------------------------------------
def capped_coin() -> Instrument:
    """Max leverage 20 (IMR = IMF = 5%), one bracket at MMR 3%; per-symbol cap ±0.3% given explicitly (the
    engine's default before "not given" derived it: ±75% × 3% = ±2.25%, tests/test_funding_venues.py); impact notional
    1,500 USDT; the mark only moves by SetMarkPrice."""
    return Instrument.linear(COIN, lot_size="1", min_qty="1", min_notional="0", maker_fee="0", taker_fee="0",
                             max_leverage=20, brackets=(("100000000", "0.03", 20),),
                             funding=FundingParams(cap_e8=300_000, floor_e8=-300_000,
                                                   impact_margin_notional_units=units("1500")),
                             mark=MarkParams(MarkSource.EXTERNAL))


@pytest.mark.parametrize("profile, rate_e8", [
    ("binance", 300_000),  # the instrument's cap: 0.3%
    ("bybit", 300_000),
    ("bitmex", 1_500_000),  # 75% × (5% − 3%) = 1.5% per 8 h
    ("dydx", 1_500_000),  # 600% × (5% − 3%) = 12% per 8 h; paid hourly: 12% ÷ 8 = 1.5%
    ("hyperliquid", 4_000_000),  # 4% per hour (32% per 8 h, ÷ 8)
])
def test_cap_rules_bound_a_large_premium(profile, rate_e8):
    ex, (a, b, *_) = venue(capped_coin(), profile)
    ex.apply(SetMarkPrice(COIN, 15_000))
    ex.apply(SetIndexPrice(COIN, 10_000))  # index 100.00, mark 150.00
    a.buy(COIN, "10", "150")  # impact bid of 1,500 USDT = 150.00
    b.sell(COIN, "10", "160")
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    # P = (150 − 100) / 100 = 50%; F = 50% + clamp(0.01% − 50%, ±0.05%) = 49.95% per 8 h, then capped
    assert ex.predicted_funding_rate_e8(COIN) == rate_e8


def test_bitmex_cap_applies_to_negative_rates_too():
    ex, (a, b, *_) = venue(capped_coin(), "bitmex")
    ex.apply(SetMarkPrice(COIN, 7_000))
    ex.apply(SetIndexPrice(COIN, 10_000))
    a.buy(COIN, "10", "60")
    b.sell(COIN, "30", "70")  # impact ask of 1,500 USDT = 70.00 (the best level holds 2,100)
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    # P = −(100 − 70) / 100 = −30%; F = −30% + 0.05% = −29.95%, floored at −75% × (5% − 3%) = −1.5%
    assert ex.predicted_funding_rate_e8(COIN) == -1_500_000


# -- bracket styles ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("btc_qty, marginal, stepwise, flat", [
    # 100,000 notional: marginal 100,000 × 0.5% − cum 50 = 450; stepwise 100,000 × 0.5% = 500;
    # dydx (one liquidity tier, the first bracket): 100,000 × 0.4% = 400
    ("2", "450", "500", "400"),
    # 500,000: marginal 500,000 × 1% − 1,300 = 3,700 (rules example 2); stepwise 5,000; flat 2,000
    ("10", "3700", "5000", "2000"),
])
def test_maintenance_margin_by_bracket_style(btc_qty, marginal, stepwise, flat):
    for profile, expected in (("binance", marginal), ("bitmex", stepwise), ("dydx", flat)):
        ex, (a, b, *_) = venue(Instrument.linear(BTC, brackets=EX2, maker_fee="0", taker_fee="0"), profile)
        ex.apply(SetMarkPrice(BTC, 5_000_000))
        b.sell(BTC, btc_qty, "50000")
        a.buy(BTC, btc_qty, "50000")
        assert ex.maintenance_margin(1, BTC) == units(expected), profile


def test_stepwise_mm_jumps_at_a_cap_marginal_is_continuous():
    ex, (a, b, *_) = venue(Instrument.linear(BTC, brackets=EX2, maker_fee="0", taker_fee="0"), "bitmex")
    ex.apply(SetMarkPrice(BTC, 5_000_000))
    b.sell(BTC, "1", "50000")
    a.buy(BTC, "1", "50000")
    assert ex.maintenance_margin(1, BTC) == units("200")  # 50,000 × 0.4% (cap inclusive)
    ex.apply(SetMarkPrice(BTC, 5_000_001))  # 50,000.01: the next step, 0.5% of the whole position
    assert ex.maintenance_margin(1, BTC) == units("250.00005")
    assert PROFILES["bitmex"].brackets == BracketStyle.STEPWISE


def test_open_interest_scales_the_initial_margin_fraction():
    # base IMF = 1 / leverage 10 = 10% (the instrument's max leverage, dYdX's liquidity-tier IMF, and the accounts'
    # leverage); scaling from 100,000 to 300,000 of open interest notional
    inst = Instrument.linear(BTC, brackets=EX2, maker_fee="0", taker_fee="0", max_leverage=10,
                             open_interest_caps=("100000", "300000"))
    ims = {}
    for profile in ("binance", "dydx"):
        ex, (a, b, c, d) = venue(inst, profile)
        ex.apply(SetMarkPrice(BTC, 5_000_000))
        for client in (a, b, c, d):
            client.set_leverage(BTC, 10)
        b.sell(BTC, "2", "50000")
        a.buy(BTC, "2", "50000")  # OI 100,000 ≤ lower cap: base IMF
        ims[profile] = [ex.initial_margin(1, BTC)]
        d.sell(BTC, "2", "50000")
        c.buy(BTC, "2", "50000")  # OI 200,000: s = 1/2, IMF = 10% + 1/2 × 90% = 55%
        ims[profile].append(ex.initial_margin(1, BTC))
        d.sell(BTC, "2", "50000")
        c.buy(BTC, "2", "50000")  # OI 300,000 ≥ upper cap: IMF 100%
        ims[profile].append(ex.initial_margin(1, BTC))
    assert ims["binance"] == [units("10000")] * 3
    assert ims["dydx"] == [units("10000"), units("55000"), units("100000")]


def test_open_interest_imf_formula_edges():
    from exchange.accounts.margin import initial_margin_open_interest as im

    # notional 1,000 at leverage 3 (base IMF 1/3); caps 100 .. 400
    assert im(1000, 3, 10**6, 0, 0) == 334  # upper 0: scaling disabled, ceil(1,000 / 3)
    assert im(1000, 3, 100, 100, 400) == 334  # at the lower cap: base
    assert im(1000, 3, 400, 100, 400) == 1000  # at the upper cap: the whole notional
    # OI 200: s = 1/3, IMF = 1/3 + 1/3 × 2/3 = 5/9 -> ceil(5,000 / 9) = 556
    assert im(1000, 3, 200, 100, 400) == 556
