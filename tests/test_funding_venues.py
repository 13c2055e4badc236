"""What the venues' funding needs as inputs and shows as queries (issue 10: queries, venue inputs), through the
Exchange, on the active implementation (the suite runs again with EXCHANGE_PUREPYTHON=1; the last test compares
both implementations command by command).

Every expected number comes from the venue's own page or code cited in the test's docstring and is derived by
hand in the comments, never with the code under test. Rates are ×10⁸ (0.01% = 10,000 e8); COIN instruments
have tick 0.01 and lot 1 (K = 10⁶ units per tick·lot)."""
import dataclasses
import io
from fractions import Fraction

import pytest

from exchange import (
    AdvanceTime, Client, Deposit, Exchange, FundingParams, FundingSettled, Instrument, InputError, MarkParams,
    MarkSource, PlaceOrder, SetIndexPrice, SetMarkPrice, Side,
)
from exchange.funding.rate import index_delta_e8
from exchange.persistence.journal import dump, read
from exchange.persistence.recovery import replay
from exchange.accounts.margin import initial_margin_open_interest
from exchange.profiles import PROFILES, FundingAccrual
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, of, units
from tests.conftest import COMPILED

HOUR = 3600 * NS_PER_SECOND
EIGHT_HOURS = 8 * HOUR
NO_FEES = dict(maker_fee="0", taker_fee="0", min_notional="0")


def coin(symbol="COINUSDT", **overrides) -> Instrument:
    params = dict(lot_size="1", min_qty="1", **NO_FEES)
    params.update(overrides)
    return Instrument.linear(symbol, **params)


def venue(*instruments, profile="binance", deposit="10000000"):
    ex = CheckedExchange(list(instruments), profile=profile)
    clients = [Client(ex, account) for account in (1, 2, 3, 4)]
    for client in clients:
        client.deposit(deposit)
    return ex, clients


# -- Binance: the cap derived from the brackets when not given --------------------------------------------------------
def ada(**funding) -> Instrument:
    """ADAUSDT as in Binance's example: maximum leverage 75x, first bracket MMR 0.65%; tick 0.0001, lot 1
    (K = 0.0001 × 1 × 10⁸ = 10,000); the mark only moves by SetMarkPrice."""
    return Instrument.linear("ADAUSDT", tick_size="0.0001", lot_size="1", min_qty="1", max_price="100", max_qty="10000000",
                             max_leverage=75, brackets=(("5000", "0.0065", 75), ("1000000", "0.02", 25)),
                             funding=FundingParams(**funding), mark=MarkParams(MarkSource.EXTERNAL), **NO_FEES)


def test_binance_cap_not_given_is_75_percent_of_the_mmr_at_maximum_leverage():
    """Binance FAQ "Introduction to Binance Futures Funding Rates" (binance.com/en/support/faq/360033525031): the
    Floor and Cap of ADAUSDT come from its table at the maximum leverage 75x, IMR 1.3% and MMR 0.65%; the capped
    rate is ``clamp(F, −0.75 × MMR, 0.75 × MMR)`` (Binance announcement, binance.com/en/feed/post/924700: "upper
    limit multiplier ... from 0.75 to 1 ... clamp(funding rate, −1*maintenance margin rate, 1*maintenance margin
    rate)"). Cap = 0.75 × 0.65% = 0.4875%, floor −0.4875%.

    (The reference notes' ``0.75 × (IMR − MMR)`` gives the same 0.4875% only with Binance's rounded IMR 1.3%;
    with 1 / 75 = 1.333…% it would give 0.5125%: the MMR-only form is the one that reproduces the published
    0.4875%.)"""
    ex, (a, b, *_) = venue(ada())
    state = ex.funding_state("ADAUSDT")
    assert (state.floor_e8, state.cap_e8) == (-487_500, 487_500)
    ex.apply(SetIndexPrice("ADAUSDT", 10_000))  # index 1.0000
    a.buy("ADAUSDT", "20000", "1.1")  # 22,000 USDT of bids at 1.1000; the impact notional is 200 × 75 = 15,000
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    state = ex.funding_state("ADAUSDT")
    # impact bid 1.1000 (the level holds the whole 15,000); no asks: that side contributes 0
    assert (state.impact_notional_units, state.impact_bid_ticks, state.impact_ask_ticks) == (units("15000"), 11_000,
                                                                                            None)
    # P = (1.1 − 1.0) / 1.0 = 10%; F = 10% + clamp(0.01% − 10%, ±0.05%) = 9.95%, capped at 0.4875%
    assert (state.premium_e8, state.samples, state.premium_average_e8) == (10_000_000, 1, 10_000_000)
    assert state.period_rate_e8 == 487_500 == state.predicted_rate_e8 == ex.predicted_funding_rate_e8("ADAUSDT")


def test_binance_explicit_cap_and_the_default_brackets_keep_their_numbers():
    """An explicit cap/floor is the instrument's (rules §10, binance: unchanged); the default brackets' first MMR
    0.4% derives 0.75 × 0.4% = 0.3%, the engine's former explicit default; one bound may be given alone."""
    ex, _ = venue(ada(cap_e8=300_000, floor_e8=-300_000))
    assert (ex.funding_state("ADAUSDT").floor_e8, ex.funding_state("ADAUSDT").cap_e8) == (-300_000, 300_000)
    ex, _ = venue(Instrument.linear("BTCUSDT"))
    assert (ex.funding_state("BTCUSDT").floor_e8, ex.funding_state("BTCUSDT").cap_e8) == (-300_000, 300_000)
    ex, _ = venue(ada(floor_e8=-100_000))
    assert (ex.funding_state("ADAUSDT").floor_e8, ex.funding_state("ADAUSDT").cap_e8) == (-100_000, 487_500)
    with pytest.raises(InputError, match="above the cap"):
        Exchange([ada(floor_e8=600_000)])  # floor 0.6% > derived cap 0.4875%
    ex, _ = venue(ada(), profile="bitmex")  # other cap rules ignore the per-symbol bounds: 75% × (1/75 − 0.65%)
    assert ex.funding_state("ADAUSDT").cap_e8 == Fraction(3, 4) * (Fraction(10**8, 75) - 650_000)


def test_binance_impact_notional_and_premium_index_with_both_sides():
    """Binance FAQ 360033525031: "if the maximum leverage of BNBUSDT perpetual contract is 20x, and its
    corresponding Initial Margin Rate is 5%, then the Impact Margin Notional (IMN) is 4,000 USDT (200 USDT / 5%)";
    Premium Index = [Max(0, Impact Bid − Index) − Max(0, Index − Impact Ask)] / Index."""
    ex, (a, b, *_) = venue(coin("BNBUSDT", max_leverage=20, brackets=(("1000000", "0.02", 20),)))
    assert ex.funding_state("BNBUSDT").impact_notional_units == units("4000")
    ex.apply(SetMarkPrice("BNBUSDT", 30_000))
    ex.apply(SetIndexPrice("BNBUSDT", 30_000))  # index 300.00
    a.buy("BNBUSDT", "10", "301")  # 3,010 USDT at 301
    a.buy("BNBUSDT", "10", "300")  # the rest of 4,000 at 300: 990 / 300 = 3.3 coins
    b.sell("BNBUSDT", "20", "302")
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    state = ex.funding_state("BNBUSDT")
    # impact bid = 4,000 / (10 + 3.3) = 300.7518…; impact ask 302 (20 coins hold 6,040)
    assert state.impact_bid_ticks == Fraction(400_000, Fraction(133, 10))
    assert state.impact_ask_ticks == 30_200
    # P = (300.75188 − 300) / 300 − max(0, 300 − 302) / 300 = 0.25062…%, truncated to 250,626 e8
    assert state.premium_e8 == 250_626
    # F = 0.250626% + clamp(0.01% − 0.250626%, ±0.05%) = 0.200626%, under the derived cap 0.75 × 2% = 1.5%
    assert state.period_rate_e8 == 200_626 and state.cap_e8 == 1_500_000


# -- Bybit / BitMEX: the interest rate from the quote and base interest indices ----------------------------------------
def test_bybit_interest_rate_from_the_interest_indices():
    """Bybit "What is funding rate and predicted rate" (help.bybit.com/hc/en-us/articles/360039261114):
    "Interest Quote Index = 0.06%, Interest Base Index = 0.03% ... The Interest Rate = (0.06% − 0.03%)/3 = 0.01%"
    (Funding Interval = 3: funding every 8 hours)."""
    ex, _ = venue(Instrument.linear("BTCUSDT", funding=FundingParams(interest_quote_e8=60_000, interest_base_e8=30_000)),
                  profile="bybit")
    state = ex.funding_state("BTCUSDT")
    assert state.interest_e8 == 10_000
    # no premium sample: F = 0 + clamp(0.01% − 0, ±0.05%) = 0.01%
    assert state.period_rate_e8 == 10_000 == state.predicted_rate_e8


def test_bitmex_funding_from_the_lending_rates_and_the_amount_on_the_mark_value():
    """BitMEX "Perpetual Contracts Guide Examples" (bitmex.com/app/perpetualContractsGuideExamples): "Funding
    Quote Rate = 1.00% per day, Funding Base Rate = 0.25% per day, Funding Rate = (1.00% − 0.25%) / 3 = 0.25%;
    Funding Amount = Mark Value × Funding Rate = 20 XBT × 0.25% = 0.05 XBT", the long pays, the short receives.

    The example leaves the premium out (and with it the ±0.05% dampener, which would pull F to P + 0.05%): the
    clamp is widened to 0.5% here so F = I. Linear analog of the 20 XBT mark value: 20 coins at a mark of 1.00.
    BitMEX's cap 75% × (IMR − MMR) = 75% × (1% − 0.35%) = 0.4875% does not bind."""
    lending = FundingParams(interest_quote_e8=1_000_000, interest_base_e8=250_000, clamp_e8=500_000)
    ex, (a, b, *_) = venue(coin(max_leverage=100, brackets=(("1000000", "0.0035", 100),), funding=lending),
                           profile="bitmex")
    assert ex.funding_state("COINUSDT").interest_e8 == 250_000  # (1.00% − 0.25%) / 3
    ex.apply(SetMarkPrice("COINUSDT", 100))
    b.sell("COINUSDT", "20", "1")
    a.buy("COINUSDT", "20", "1")
    wallets = ex.wallet(1), ex.wallet(2)
    events = ex.apply(AdvanceTime(EIGHT_HOURS))
    # 20 lots × 100 ticks × K 10⁶ × 250,000 e8 / 10⁸ = 5,000,000 units = 0.05
    assert of(events, FundingSettled) == [FundingSettled("COINUSDT", EIGHT_HOURS, 250_000, 100, units("0.05"),
                                                         units("0.05"), 0)]
    assert (ex.wallet(1), ex.wallet(2)) == (wallets[0] - units("0.05"), wallets[1] + units("0.05"))


def test_new_inputs_are_validated():
    for bad in (dict(interest_quote_e8=60_000), dict(interest_base_e8=1), dict(interest_quote_e8=2 * 10**8,
                                                                               interest_base_e8=0),
                dict(cap_e8=0.003), dict(floor_e8="-300000"), dict(cap_e8=100, floor_e8=200)):
        with pytest.raises(InputError):
            FundingParams(**bad)
    for bad in (dict(mark_source=9), dict(funding_accrual=3)):
        with pytest.raises(ValueError, match="must be a"):
            dataclasses.replace(PROFILES["bitmex"], **bad)


# -- Hyperliquid: the hourly payment of the 8-hour rate, the 4%-per-hour cap ---------------------------------------------
def test_hyperliquid_pays_an_eighth_of_the_8_hour_rate_and_caps_at_4_percent_an_hour():
    """Hyperliquid funding (hyperliquid.gitbook.io/hyperliquid-docs/trading/funding, as quoted in the reference
    notes §5.5): "F = P + clamp(I − P, −0.0005, 0.0005)", I = 0.01% per 8 hours, "paid hourly at F / 8", "capped
    at 4%/hour": 0.01% / 8 = 0.00125% (1,250 e8) per hourly payment; the cap 4% per hour is 32% per 8 hours."""
    ex, (a, *_) = venue(coin(max_leverage=20, brackets=(("1000000", "0.03", 20),), mark=MarkParams(MarkSource.EXTERNAL)),
                        profile="hyperliquid")
    state = ex.funding_state("COINUSDT")
    assert (state.interest_e8, state.rate_divisor, state.predicted_rate_e8) == (10_000, 8, 1_250)
    assert (state.floor_e8, state.cap_e8) == (-32_000_000, 32_000_000)
    ex.apply(SetMarkPrice("COINUSDT", 20_000))
    ex.apply(SetIndexPrice("COINUSDT", 10_000))
    a.buy("COINUSDT", "100", "200")  # impact bid 200 for the 200 × 20 = 4,000 USDT impact notional: P = 100%
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    state = ex.funding_state("COINUSDT")
    # F = 100% − 0.05% = 99.95%, capped at 32% per 8 h: 4% per hourly payment
    assert (state.period_rate_e8, state.predicted_rate_e8) == (32_000_000, 4_000_000)


# -- dYdX: the funding index ---------------------------------------------------------------------------------------------
def test_dydx_index_delta_matches_the_venue_unit_test():
    """dydxprotocol/v4-chain protocol/x/perpetuals/funding/funding_test.go, "Varied parameters (2)": an 8-hour
    rate of −1,001,999 ppm over 3,600 s (1/8 of the period) at a price of 1,000 quote quantums per base quantum
    moves the index by −1,001,999 × 3,600 × 1,000 / 28,800 = −125,249,875. The function is unit-free."""
    assert index_delta_e8(FundingAccrual.INDEX, Fraction(-1_001_999), 8, 1_000, 1) == -125_249_875
    # the RATE accrual truncates the per-settlement rate first: trunc(−1,001,999 / 8) = −125,249 (× 1,000)
    assert index_delta_e8(FundingAccrual.RATE, Fraction(-1_001_999), 8, 1_000, 1) == -125_249_000


def eth(interest_e8: int) -> Instrument:
    """tick 0.0001 and lot 0.0001: K = 0.0001 × 0.0001 × 10⁸ = 1, so the index delta per lot is
    ``F × mark / 8`` and its truncation shows; max leverage 20 and MMF 3% (dYdX cap 600% × 2% = 12% per 8 h)."""
    return Instrument.linear("ETHUSDT", tick_size="0.0001", lot_size="0.0001", min_qty="0.0001", max_price="100000",
                             max_leverage=20, brackets=(("10000000", "0.03", 20),), mark=MarkParams(MarkSource.EXTERNAL),
                             funding=FundingParams(interest_e8=interest_e8), **NO_FEES)


def long_short_100_eth(ex, a, b) -> tuple[int, int]:
    """Mark 1.0001; ``a`` buys 100 ETH from ``b`` at 1.0001. Returns the two wallets after the trade."""
    ex.apply(SetMarkPrice("ETHUSDT", 10_001))
    b.sell("ETHUSDT", "100", "1.0001")
    a.buy("ETHUSDT", "100", "1.0001")
    return ex.wallet(1), ex.wallet(2)


def test_dydx_settles_through_the_funding_index_truncated_toward_zero():
    """dydxprotocol/v4-chain protocol/x/perpetuals/funding/funding.go ``GetFundingIndexDelta``: index delta =
    8-hour rate × time × price / 28,800 s, "truncated division (towards zero)"; x/subaccounts/lib/updates.go:
    settlement = −Δindex × quantums, divided by 10⁶ "towards negative infinity" (so the payer's amount rounds up,
    the receiver's down). Hourly (time / 28,800 = 1/8).

    8-hour rate −0.010001% (−10,001 e8: shorts pay) at a mark of 1.0001 (10,001 ticks): delta per lot =
    trunc(−10,001 × 10,001 × 1 / 8) = trunc(−12,502,500.125) = −12,502,500 (toward zero; floor would be
    −12,502,501). 100 ETH = 10⁶ lots: the short pays 10⁶ × 12,502,500 / 10⁸ = 125,025 units, the long receives
    125,025; the RATE accrual would have paid trunc(−10,001 / 8) = −1,250 e8 per hour: 10⁶ × 10,001 × 1,250 / 10⁸
    = 125,012.5 (the short 125,013, the long 125,012)."""
    ex, (a, b, *_) = venue(eth(-10_001), profile="dydx")
    state = ex.funding_state("ETHUSDT")
    # v4-documentation funding.mdx: 8-hour cap 600% × (IMF − MMF) = 6 × (5% − 3%) = 12%, paid hourly (÷ 8)
    assert (state.floor_e8, state.cap_e8, state.rate_divisor) == (-12_000_000, 12_000_000, 8)
    wallets = long_short_100_eth(ex, a, b)
    events = ex.apply(AdvanceTime(HOUR))
    # the recorded hourly rate stays trunc(F / 8) = −1,250 e8; the payments follow the index
    assert of(events, FundingSettled) == [FundingSettled("ETHUSDT", HOUR, -1_250, 10_001, 125_025, 125_025, 0)]
    assert (ex.wallet(1), ex.wallet(2)) == (wallets[0] + 125_025, wallets[1] - 125_025)
    assert ex.funding_state("ETHUSDT").funding_index_e8 == -12_502_500
    ex.apply(AdvanceTime(2 * HOUR))
    assert ex.funding_state("ETHUSDT").funding_index_e8 == -25_005_000

    binance_like = dataclasses.replace(PROFILES["dydx"], funding_accrual=FundingAccrual.RATE)
    ex, (a, b, *_) = venue(eth(-10_001), profile=binance_like)
    long_short_100_eth(ex, a, b)
    (settled,) = of(ex.apply(AdvanceTime(HOUR)), FundingSettled)
    assert (settled.paid_units, settled.received_units, settled.dust_units) == (125_013, 125_012, 1)
    assert ex.funding_state("ETHUSDT").funding_index_e8 == -1_250 * 10_001


def test_dydx_pays_funding_on_the_oracle_price_not_the_mark():
    """dydxprotocol/v4-chain protocol/x/perpetuals/keeper/keeper.go: the funding index delta is computed from the
    market's *oracle* price (``pricesKeeper.GetMarketPrice``), not a mark. The index (oracle) is 2.0002 while the
    mark stays 1.0001 (external mark source): delta per lot = trunc(−10,001 × 20,002 / 8) = trunc(−25,005,000.25)
    = −25,005,000; 10⁶ lots: the short pays 10⁶ × 25,005,000 / 10⁸ = 250,050 units, the long receives 250,050
    (twice the payment at the mark, in the test above)."""
    ex, (a, b, *_) = venue(eth(-10_001), profile="dydx")
    ex.apply(SetIndexPrice("ETHUSDT", 20_002))
    wallets = long_short_100_eth(ex, a, b)
    events = ex.apply(AdvanceTime(HOUR))
    assert of(events, FundingSettled) == [FundingSettled("ETHUSDT", HOUR, -1_250, 20_002, 250_050, 250_050, 0)]
    assert (ex.wallet(1), ex.wallet(2)) == (wallets[0] + 250_050, wallets[1] - 250_050)
    assert ex.funding_state("ETHUSDT").funding_index_e8 == -25_005_000


# -- dYdX: the open-interest-scaled initial margin fraction ---------------------------------------------------------------
def test_dydx_open_interest_imf_matches_the_venue_unit_tests():
    """dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier_test.go (quote quantums; base IMF 20% is a
    tier of maximum leverage 5):

    - TestGetAdjustedInitialMarginPpm "Open interest within bounds, rounded": caps 1,000,000 .. 2,000,000, OI
      1,234,567: "0.2 + (0.234_567 * 0.8) = 0.387_653_6 (rounded down to 0.387_653)"; on a notional of 10⁷ the IM
      is 10⁷ × 0.387653 = 3,876,530 (not the unrounded 3,876,536);
    - TestGetInitialMarginQuoteQuantums "realistic numbers": caps 25·10¹² .. 60·10¹², OI 28,123,456,789,123,
      notional 500,000 → 135,697; "scaling_factor = 0.5" (caps 10¹² .. 2·10¹², OI 1.5·10¹²) → 60% → 300,000;
      OI above the upper cap → 500,000; OI at the lower cap → 20% → 100,000."""
    assert initial_margin_open_interest(10**7, 5, 1_234_567, 1_000_000, 2_000_000, 5) == 3_876_530
    assert initial_margin_open_interest(500_000, 5, 28_123_456_789_123, 25 * 10**12, 60 * 10**12, 5) == 135_697
    assert initial_margin_open_interest(500_000, 5, 15 * 10**11, 10**12, 2 * 10**12, 5) == 300_000
    assert initial_margin_open_interest(500_000, 5, 80 * 10**12, 25 * 10**12, 50 * 10**12, 5) == 500_000
    assert initial_margin_open_interest(500_000, 5, 25 * 10**12, 25 * 10**12, 50 * 10**12, 5) == 100_000


def test_dydx_account_leverage_applies_when_its_imf_is_larger_than_the_scaled_tier():
    """dydxprotocol/v4-chain protocol/x/perpetuals/types/liquidity_tier.go ``GetInitialMarginQuoteQuantums``: "use
    the configured IMF if it is greater than the OI scaled IMF". Tier: maximum leverage 20 (IMF 5%), caps 100,000 ..
    300,000; the account at leverage 2 (IMF 50%)."""
    # OI at the lower cap: max(5%, 50%) = 50% of 1,000 = 500
    assert initial_margin_open_interest(1_000, 2, 100_000, 100_000, 300_000, 20) == 500
    # OI 200,000 (s = 1/2): tier 5% + 1/2 × 95% = 52.5% > 50%: 525
    assert initial_margin_open_interest(1_000, 2, 200_000, 100_000, 300_000, 20) == 525
    # OI 110,000 (s = 1/20): tier 5% + 4.75% = 9.75% < 50%: the account's 50% = 500
    assert initial_margin_open_interest(1_000, 2, 110_000, 100_000, 300_000, 20) == 500


# -- BitMEX: the fair price as the mark source ----------------------------------------------------------------------------
def test_bitmex_fair_price_mark_is_the_index_plus_the_decaying_funding_basis():
    """BitMEX "Fair Price Marking" (bitmex.com/app/fairPriceMarking): "Funding Basis = Funding Rate × (Time Until
    Funding / Funding Interval); Fair Price = Index Price × (1 + Funding Basis)". Last rate 0.01% (the interest,
    settled at 8 h without premium samples); at 10 h, 6 h before the next funding: 50,000 × (1 + 0.0001 × 6 / 8) =
    50,003.75. Trades do not move it (the median mark would follow the last trade)."""
    fair = Instrument.linear("BTCUSDT", mark=MarkParams(MarkSource.FAIR_PRICE), **NO_FEES)
    ex, (a, b, *_) = venue(fair, profile="bitmex")
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    assert ex.mark_price("BTCUSDT") == 5_000_000  # no funding yet: the basis is 0
    ex.apply(AdvanceTime(EIGHT_HOURS))
    assert ex.funding_rate_e8("BTCUSDT") == 10_000
    ex.apply(AdvanceTime(EIGHT_HOURS + 2 * HOUR))
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    assert ex.mark_price("BTCUSDT") == 5_000_375
    b.sell("BTCUSDT", "0.01", "51000")
    a.buy("BTCUSDT", "0.01", "51000")
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    assert ex.mark_price("BTCUSDT") == 5_000_375
    # at 15 h (1 h left): 50,000 × (1 + 0.0001 / 8) = 50,000.625, floored to the tick: 50,000.62
    ex.apply(AdvanceTime(EIGHT_HOURS + 7 * HOUR))
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    assert ex.mark_price("BTCUSDT") == 5_000_062


def test_the_profile_can_select_the_fair_price_for_every_instrument():
    """The profile's ``mark_source`` overrides each instrument's (here MEDIAN, whose P2 and last trade would pull
    the mark to 51,000)."""
    fair_bitmex = dataclasses.replace(PROFILES["bitmex"], mark_source=MarkSource.FAIR_PRICE)
    ex, (a, b, *_) = venue(Instrument.linear("BTCUSDT", **NO_FEES), profile=fair_bitmex)
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    b.sell("BTCUSDT", "0.01", "51000")
    a.buy("BTCUSDT", "0.01", "51000")
    ex.apply(AdvanceTime(EIGHT_HOURS + 2 * HOUR))
    ex.apply(SetIndexPrice("BTCUSDT", 5_000_000))
    assert ex.mark_price("BTCUSDT") == 5_000_375  # as above: 50,000 × (1 + 0.0001 × 6 / 8)


# -- the query's boundary, journal and snapshot ------------------------------------------------------------------------------
def test_funding_state_of_an_unknown_symbol_is_an_input_error():
    ex, _ = venue(coin())
    with pytest.raises(InputError, match="unknown symbol"):
        ex.funding_state("NOPEUSDT")


def configured_run(implementation=None):
    """Every new input and state: derived and explicit caps, interest indices, a fair-price instrument, a profile
    with a mark source, and the dYdX funding index moved by settlements."""
    profile = dataclasses.replace(PROFILES["dydx"], mark_source=MarkSource.FAIR_PRICE)
    instruments = [eth(-10_001), coin(funding=FundingParams(interest_quote_e8=60_000, interest_base_e8=30_000,
                                                            cap_e8=200_000)),
                   ada(floor_e8=-100_000)]
    ex = Exchange(instruments, profile=profile, implementation=implementation)
    events = []
    for account in (1, 2):
        events += ex.apply(Deposit(account, units("1000000")))
    for symbol, price, lots in (("ETHUSDT", 10_001, 10**6), ("COINUSDT", 10_000, 5)):
        events += ex.apply(SetIndexPrice(symbol, price))
        events += ex.apply(PlaceOrder(2, symbol, Side.SELL, lots, price))
        events += ex.apply(PlaceOrder(1, symbol, Side.BUY, lots, price))
    for hours in (1, 2, 3):
        events += ex.apply(AdvanceTime(hours * HOUR))
        events += ex.apply(SetIndexPrice("ETHUSDT", 10_001 + hours))
    return ex, events


def test_new_configuration_and_the_funding_index_round_trip_through_journal_and_snapshot():
    ex, events = configured_run()
    assert ex.funding_state("ETHUSDT").funding_index_e8 != 0
    buffer = io.BytesIO()
    dump(ex.instruments.values(), ex.journal, buffer, profile=ex.profile)
    buffer.seek(0)
    journal = read(buffer)
    assert journal.profile == ex.profile and list(journal.instruments) == list(ex.instruments.values())
    replayed, replayed_events = replay(journal.instruments, journal.commands, profile=journal.profile)
    assert replayed_events == events and replayed.state_hash() == ex.state_hash()
    restored = Exchange.restore_bytes(ex.snapshot_bytes())
    assert restored.profile == ex.profile and restored.instruments == ex.instruments
    assert restored.state_hash() == ex.state_hash()
    for symbol in ex.instruments:
        assert restored.funding_state(symbol) == ex.funding_state(symbol)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")
def test_both_implementations_agree_on_the_new_rules():
    python, cython = configured_run("python"), configured_run("cython")
    assert python[1] == cython[1] and python[0].state_hash() == cython[0].state_hash()
