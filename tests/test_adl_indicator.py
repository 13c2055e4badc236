"""The ADL indicator each profile shows (``Exchange.adl_quantile``, rules §7 "ADL ranking", §10): Binance ranks
over the user count (quantile = rank / user count, shown in fifths), BitMEX shows 20 % steps of the side's
quantity. Expected lights derived by hand from the venues' own pages (cited per test).

Coin: tick 0.01, lot 1 (K = 10⁶), fees 0. Every long enters at 100.00 (isolated, leverage 11–16) against one
short (account 9); at the mark 110.00 every long is 10 % in profit and a higher leverage ranks higher under both
rankings (binance: pnl / margin × MM / balance; bitmex: pnl % × mark / (mark − bankruptcy))."""
import dataclasses

import pytest

from exchange import Client, Instrument, SetMarkPrice
from exchange.liquidation.adl.score import quantile_lights, quantity_lights
from exchange.profiles import PROFILES, ADLIndicator
from tests.checked import CheckedExchange

COIN = "AAAUSDT"


def longs(profile, positions):
    """``positions``: (account, lots, leverage) of the isolated longs; account 9 is the short."""
    coin = Instrument.linear(COIN, lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0",
                             max_qty="100000", max_price="100000")
    ex = CheckedExchange([coin], profile=profile)
    short = Client(ex, 9)
    short.deposit("10000000")
    ex.apply(SetMarkPrice(COIN, 10_000))
    for account, lots, leverage in positions:
        client = Client(ex, account)
        client.deposit("100000")
        client.set_margin_mode(COIN, "ISOLATED")
        client.set_leverage(COIN, leverage)
        short.sell(COIN, str(lots), "100")
        client.buy(COIN, str(lots), "100")
    ex.apply(SetMarkPrice(COIN, 11_000))
    return {account: ex.adl_quantile(account, COIN) for account, _, _ in positions}


# BitMEX's example (https://testnet.bitmex.com/app/autoDeleveragingExamples): six longs
#   account  1   2   3   4   5   6
#   quantity 10  10  20  30  20  10
#   PnL rank 3   6   1   4   5   2     (6 = the highest score)
# ranked highest first: 2 (10), 5 (20), 4 (30), 1 (10), 6 (10), 3 (20); BitMEX's table shows their percentiles
# 20 %, 40 %, 60 %, 80 %, 80 %, 100 % — the share of the side's quantity at or above each (10, 30, 60, 70, 80,
# 100 of 100) rounded up to 20 %; 20 % is the top quintile (5 lights), so 5, 4, 3, 2, 2, 1 lights.
BITMEX_EXAMPLE = [(1, 10, 13), (2, 10, 16), (3, 20, 11), (4, 30, 14), (5, 20, 15), (6, 10, 12)]  # leverage = 10 + rank


def test_bitmex_lights_are_20_percent_steps_of_quantity():
    assert [quantity_lights(c, 100) for c in (10, 30, 60, 70, 80, 100)] == [5, 4, 3, 2, 2, 1]
    assert longs("bitmex", BITMEX_EXAMPLE) == {2: 5, 5: 4, 4: 3, 1: 2, 6: 2, 3: 1}


def test_the_same_queue_counted_by_users_gives_binance_style_lights():
    # rank / 6 users in fifths (highest first: ranks 6..1): ⌈5 × 6/6⌉ = 5, ⌈25/6⌉ = 5, ⌈20/6⌉ = 4, ⌈15/6⌉ = 3,
    # ⌈10/6⌉ = 2, ⌈5/6⌉ = 1
    by_users = dataclasses.replace(PROFILES["bitmex"], name="bitmex-by-users", adl_indicator=ADLIndicator.USER_COUNT)
    assert longs(by_users, BITMEX_EXAMPLE) == {2: 5, 5: 5, 4: 4, 1: 3, 6: 2, 3: 1}


def test_binance_quantile_is_rank_over_the_user_count():
    """Binance, "What Is Auto-Deleveraging (ADL)" (binance.com/en/support/faq/360033525471; formula quoted in
    dev.binance.vision/t/17801): "Leverage Pnl Quantile = rank(user.LeveragePnl) / Total User Count", shown as
    5 lights: quantile q = rank / n with rank 1 for the lowest LeveragePnl, lights = ⌈5q⌉."""
    assert [quantile_lights(i, 6) for i in range(6)] == [5, 5, 4, 3, 2, 1]  # ranks 6..1 of 6
    assert [quantile_lights(i, 2) for i in range(2)] == [5, 3]  # ⌈5 × 2/2⌉, ⌈5 × 1/2⌉
    # six equal longs of 10, leverage 11..16: the 16x first; each user counts once, whatever its size
    positions = [(account, 10, 10 + account) for account in range(1, 7)]
    assert longs("binance", positions) == {6: 5, 5: 5, 4: 4, 3: 3, 2: 2, 1: 1}
    # by quantity (bitmex) the same equal sizes give 10, 20, ..., 60 of 60: ⌈5/6⌉..⌈30/6⌉ -> 5, 4, 3, 2, 1, 1
    by_quantity = dataclasses.replace(PROFILES["binance"], name="binance-by-quantity",
                                      adl_indicator=ADLIndicator.QUANTITY)
    assert longs(by_quantity, positions) == {6: 5, 5: 4, 4: 3, 3: 2, 2: 1, 1: 1}


@pytest.mark.parametrize("profile, indicator", [
    ("binance", ADLIndicator.USER_COUNT), ("bybit", ADLIndicator.USER_COUNT), ("bitmex", ADLIndicator.QUANTITY),
    ("dydx", ADLIndicator.USER_COUNT), ("hyperliquid", ADLIndicator.USER_COUNT),
])
def test_each_profiles_indicator_rule(profile, indicator):
    assert PROFILES[profile].adl_indicator == indicator


def test_quantity_lights_bounds():
    with pytest.raises(ValueError):
        quantity_lights(0, 10)
    with pytest.raises(ValueError):
        quantity_lights(11, 10)
