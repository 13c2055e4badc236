"""``Exchange.adl_score``: the exact score each profile's ADL ranking uses (rules §10 "ADL ranking"), through the
Exchange. Expected values are derived by hand from the venues' published formulas, cited in each test.
BTCUSDT: tick 0.01, lot 0.001 (K = 1,000); default brackets (50,000 .. 250,000 at MMR 0.5%, cum 50)."""
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from exchange import Client, Instrument, InputError, SetMarkPrice
from exchange.liquidation.adl import score as adl
from tests.checked import CheckedExchange

BTC = "BTCUSDT"


def two_longs(profile):
    """A: cross long 1 BTC at 50,000 with a wallet of 10,000; B: isolated long 1 BTC at 52,000 at 20x (margin
    2,600); C and D the shorts. Mark 55,000. No fees."""
    ex = CheckedExchange([Instrument.linear(BTC, maker_fee="0", taker_fee="0", liquidation_fee="0")], profile=profile)
    a, b, c, d = (Client(ex, i) for i in (1, 2, 3, 4))
    for client, amount in ((a, "10000"), (b, "100000"), (c, "100000"), (d, "100000")):
        client.deposit(amount)
    b.set_margin_mode(BTC, "ISOLATED")
    b.set_leverage(BTC, 20)
    ex.apply(SetMarkPrice(BTC, 5_100_000))
    c.sell(BTC, "1", "50000")
    a.buy(BTC, "1", "50000")
    d.sell(BTC, "1", "52000")
    b.buy(BTC, "1", "52000")
    ex.apply(SetMarkPrice(BTC, 5_500_000))
    return ex


def test_bitmex_score_is_pnl_percentage_times_effective_leverage():
    """BitMEX "Auto-Deleveraging" (bitmex.com/app/autoDeleveraging): Ranking = PNL Percentage × Effective Leverage
    (÷ at a loss), Effective Leverage = abs(Mark Value) / (Mark Value − Bankrupt Value), PNL Percentage =
    (Mark Value − Avg Entry Value) / abs(Avg Entry Value); rules example 10.

    A (cross, wallet 10,000): bankruptcy at 50,000 − 10,000 = 40,000; PnL 10%, leverage 55,000 / 15,000:
    score 11/30. B: bankruptcy 52,000 − 2,600 = 49,400; PnL 3,000 / 52,000, leverage 55,000 / 5,600.
    The shorts are at a loss: C (wallet 100,000, entry 50,000, bankruptcy 150,000): PnL −10%, leverage
    55,000 / 95,000: −0.1 ÷ (55/95) = −19/110."""
    ex = two_longs("bitmex")
    assert ex.adl_score(1, BTC) == Fraction(1, 10) * Fraction(55_000, 15_000) == Fraction(11, 30)
    assert ex.adl_score(2, BTC) == Fraction(3_000, 52_000) * Fraction(55_000, 5_600)
    assert ex.adl_score(3, BTC) == Fraction(-1, 10) / Fraction(55_000, 95_000) == Fraction(-19, 110)
    # the ranking the lights show uses the same scores: B (0.5666) before A (0.3666); BitMEX's lights are 20 %
    # steps of the queue's quantity (1 lot each of 2): B at 50 % → ⌈2.5⌉ = 3 → 6 − 3 = 3 lights, A at 100 % → 1
    assert (ex.adl_quantile(2, BTC), ex.adl_quantile(1, BTC)) == (3, 1)


def test_binance_score_is_pnl_percent_times_margin_ratio():
    """Binance "Auto-Deleveraging" ranking as quoted from the Binance FAQ (dev.binance.vision/t/17801):
    Pnl Percent = max(0, Unrealized Profit) / max(1, Wallet Balance); Margin Ratio = Maintenance Margin /
    (WB + UPNL) (0 when that is ≤ 0); Leverage Pnl = Pnl Percent × Margin Ratio.

    A: uPnL 5,000 on a wallet of 10,000: 0.5; MM at 55,000 = 55,000 × 0.5% − 50 = 225, balance 15,000: 0.015;
    score 0.0075 = 3/400. B (isolated: its margin 2,600 is the wallet): uPnL 3,000, 3,000 / 2,600; MM 225,
    balance 5,600: score 3,000/2,600 × 225/5,600. C at a loss: 0."""
    ex = two_longs("binance")
    assert ex.adl_score(1, BTC) == Fraction(3, 400)
    assert ex.adl_score(2, BTC) == Fraction(3_000, 2_600) * Fraction(225, 5_600)
    assert ex.adl_score(3, BTC) == 0


@pytest.mark.parametrize("profile", ["bybit", "hyperliquid"])
def test_bybit_score_is_profit_percentage_times_effective_leverage(profile):
    """Bybit ADL ranks "in order of highest profit and effective leverage" (help.bybit.com/hc/en-us/articles/
    900000031623; the exact formula is not published: the engine uses pnl% = uPnL / entry notional and effective
    leverage = notional at mark / margin balance, rules §10; hyperliquid as bybit).

    A: 5,000 / 50,000 = 10%, leverage 55,000 / 15,000: 11/30. B: 3,000 / 52,000, leverage 55,000 / 5,600.
    C at a loss: −10% ÷ (55,000 / 95,000) = −19/110."""
    ex = two_longs(profile)
    assert ex.adl_score(1, BTC) == Fraction(11, 30)
    assert ex.adl_score(2, BTC) == Fraction(3_000, 52_000) * Fraction(55_000, 5_600)
    assert ex.adl_score(3, BTC) == Fraction(-19, 110)


def test_dydx_has_no_score_and_a_missing_position_none():
    """dYdX takes offsetting accounts from a pseudo-random start (dydxprotocol/v4-chain
    protocol/x/clob/keeper/deleveraging.go): no score. No position, an unknown account or a fund: None."""
    assert two_longs("dydx").adl_score(1, BTC) is None
    ex = two_longs("binance")
    assert ex.adl_score(9, BTC) is None
    assert ex.adl_score(ex.insurance_fund_account_id(BTC), BTC) is None
    with pytest.raises(InputError, match="unknown symbol"):
        ex.adl_score(1, "NOPEUSDT")


def _binance_by_parts(upnl, wallet, mm):
    """The binance score as the product of its two published factors, each a Fraction (the definition)."""
    pnl_pct = Fraction(max(0, upnl), max(1, wallet))
    balance = wallet + upnl
    return pnl_pct * (Fraction(mm, balance) if balance > 0 else Fraction(0))


def _bybit_by_parts(upnl, entry, notional, balance):
    """The bybit score as pnl% × or ÷ leverage, each a Fraction (the definition)."""
    if entry <= 0 or balance <= 0:
        return Fraction(0)
    pnl_pct, leverage = Fraction(upnl, entry), Fraction(notional, balance)
    return pnl_pct * leverage if pnl_pct >= 0 else pnl_pct / leverage


_units = st.one_of(st.integers(-2**70, 2**70), st.integers(-3, 3))


@settings(max_examples=500, deadline=None)
@given(_units, _units, st.integers(0, 2**70))
def test_binance_score_as_one_fraction_equals_the_product_of_its_factors(upnl, wallet, mm):
    assert adl.binance_score(upnl, wallet, mm) == _binance_by_parts(upnl, wallet, mm)


@settings(max_examples=500, deadline=None)
@given(_units, _units, st.integers(1, 2**70), _units)
def test_bybit_score_as_one_fraction_equals_pnl_times_or_divided_by_leverage(upnl, entry, notional, balance):
    assert adl.bybit_score(upnl, entry, notional, balance) == _bybit_by_parts(upnl, entry, notional, balance)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.integers(1, 2**40), st.integers(-2**40, -1)), st.integers(1, 2**30), st.integers(0, 2**40),
       st.integers(1, 2**30), st.one_of(st.integers(0, 2**31), st.just(0)))
def test_bitmex_ratio_is_the_fraction_score(lots, entry_price, spread, mark, bankruptcy):
    """``bitmex_ratio`` (integers, what the ADL queue compares) against ``bitmex_score`` (Fractions of the entry
    price and the bankruptcy price, the published formula): a position of ``lots`` whose entry cost is
    ``lots × entry_price`` plus part of one more tick per lot (an average entry between ticks)."""
    entry_cost = lots * entry_price + (spread % abs(lots)) * (1 if lots > 0 else -1)
    numerator, denominator = adl.bitmex_ratio(lots * mark - entry_cost, entry_cost, mark, abs(mark - bankruptcy))
    assert denominator > 0
    side = 1 if lots > 0 else -1
    assert Fraction(numerator, denominator) == adl.bitmex_score(side, Fraction(entry_cost, lots), mark,
                                                                Fraction(bankruptcy))
