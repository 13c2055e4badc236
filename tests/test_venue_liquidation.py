"""The venue rules of liquidation per profile (rules §10): bybit's and bitmex's isolated liquidation price on the
entry value, the comparison at equality, and the profile prices reported *before* a liquidation.

Every expected number is computed by hand in the test from the venue's own published formula or example (the
source is in each docstring), never by the code under test. Each scenario runs on both implementations at
once (:class:`Twin`: identical events after every command, identical queries and state hashes).

Instruments: BTC has tick 0.01 and lot 0.001 (K = 1,000: 1 BTC at 10,000 = 1,000 lots at 1,000,000 ticks);
the coin has tick 0.01 and lot 1 (K = 10⁶: 1 lot at 100.00 = 100 USDT). No fees, no minimum notional.
"""
import dataclasses
from fractions import Fraction

import pytest

from exchange import (
    Client, Exchange, FundInsurance, Instrument, LiquidationFill, LiquidationStarted, SetMarkPrice,
)
from exchange.accounts.margin import IsolatedMaintenance, LiquidationTrigger
from exchange.profiles import PROFILES
from tests.checked import CheckedExchange, of, units
from tests.conftest import COMPILED

BTC, COIN, OTHER = "BTCUSDT", "AAAUSDT", "BBBUSDT"


def btc(mmr: str, max_leverage: int) -> Instrument:
    return Instrument.linear(BTC, tick_size="0.01", lot_size="0.001", max_qty="1000", max_price="1000000",
                             min_notional="0", maker_fee="0", taker_fee="0",
                             brackets=[("100000000", mmr, max_leverage)], max_leverage=max_leverage)


def coin(mmr: str, max_leverage: int, symbol: str = COIN) -> Instrument:
    return Instrument.linear(symbol, lot_size="1", min_qty="1", max_qty="100000", max_price="100000", min_notional="0",
                             maker_fee="0", taker_fee="0", brackets=[("100000000", mmr, max_leverage)],
                             max_leverage=max_leverage)


class Twin:
    """The same venue on the reference and (when built) the compiled implementation: ``apply`` gives both every
    command and asserts identical events; queries are answered by both and must agree."""

    def __init__(self, instruments, profile):
        self.exchanges = [CheckedExchange(instruments, profile=profile, implementation=impl)
                          for impl in (("python", "cython") if COMPILED else ("python",))]
        self.instruments = self.exchanges[0].instruments

    def apply(self, command) -> list:
        first, *others = [ex.apply(command) for ex in self.exchanges]
        assert all(events == first for events in others), command
        assert len({ex.state_hash() for ex in self.exchanges}) == 1, command
        return first

    def __getattr__(self, name):
        def query(*args, **kwargs):
            first, *others = [getattr(ex, name)(*args, **kwargs) for ex in self.exchanges]
            assert all(answer == first for answer in others), name
            return first
        return query


def isolated_position(profile: str, instrument: Instrument, leverage: int, qty: str, price: str, short=False,
                      wallet="100000") -> tuple[Twin, Client]:
    """Account 1 opens an isolated position of ``qty`` at ``price`` (long, or short) at ``leverage`` against
    maker 2; the mark is set at the entry price first."""
    ex = Twin([instrument], profile)
    symbol = instrument.symbol
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit(wallet)
    maker.deposit("100000000")
    mark(ex, symbol, price)
    a.set_margin_mode(symbol, "ISOLATED")
    a.set_leverage(symbol, leverage)
    (maker.buy if short else maker.sell)(symbol, qty, price)
    (a.sell if short else a.buy)(symbol, qty, price)
    return ex, a


def mark(ex, symbol: str, price: str) -> list:
    return ex.apply(SetMarkPrice(symbol, ex.instruments[symbol].price_to_ticks(price)))


def liquidated(events) -> list:
    return [(e.account_id, e.symbol) for e in of(events, LiquidationStarted)]


def ticks(price: str) -> int:
    """Price of the 0.01-tick instruments in ticks (exact)."""
    return int(Fraction(price) * 100)


# -- rule 1: bybit and bitmex isolated liquidation price on the entry value ---------------------------------
def test_bybit_isolated_long_example_liquidation_price_9850():
    """Bybit, "Liquidation Price (USDT Contract)", https://help.bybit.com/hc/en-us/articles/900000181046:
    ``LP(long) = Entry × (1 − IMR + MMR) − Extra Margin / Size``; "long 1 BTC at 10,000 USDT with 50x leverage"
    at MMR 0.5 %: ``10,000 × (1 − 2 % + 0.5 %) = 9,850``. Liquidation "when the Mark Price hits the Liquidation
    Price". (testnet.bybit.com "Liquidation-Price-USDT-Contract": ``LP = Entry − (IM − MM)/Size − Extra/Size``,
    MM = position value at entry × MMR.)"""
    ex, a = isolated_position("bybit", btc("0.005", 100), 50, "1", "10000")
    # IM = 10,000 / 50 = 200 (the isolated margin), MM = 10,000 × 0.5 % = 50: LP = 10,000 − (200 − 50) / 1 = 9,850
    assert ex.position(1, BTC).isolated_margin_units == units("200")
    assert ex.maintenance_margin(1, BTC) == units("50") == ex.position(1, BTC).maintenance_margin_units
    assert ex.liquidation_price_exact(1, BTC) == Fraction(ticks("9850"))
    assert ex.liquidation_price_ticks(1, BTC) == ex.position(1, BTC).liquidation_price_ticks == ticks("9850")
    assert liquidated(mark(ex, BTC, "9850.01")) == []
    assert liquidated(mark(ex, BTC, "9850")) == [(1, BTC)]  # the mark reaches LP


def test_the_mark_notional_rule_liquidates_the_same_position_later():
    """The rule bybit replaces: MM on the notional at the mark (binance) solves 200 + (P − 10,000) = 0.5 % × P,
    P = 9,800 / 0.995 = 9,849.2462… — 76 ticks below bybit's 9,850."""
    ex, _ = isolated_position("binance", btc("0.005", 100), 50, "1", "10000")
    assert ex.liquidation_price_exact(1, BTC) == Fraction(196_000_000, 199)  # 980,000 / 0.995 ticks
    assert ex.liquidation_price_ticks(1, BTC) == 984_924
    assert liquidated(mark(ex, BTC, "9849.25")) == []
    assert liquidated(mark(ex, BTC, "9849.24")) == [(1, BTC)]


def test_bybit_isolated_short_example_liquidation_price_8160():
    """Bybit, https://help.bybit.com/hc/en-us/articles/900000181046: ``LP(short) = Entry × (1 + IMR − MMR) +
    Extra Margin / Size``; "short entry of 1 BTC at 8,000 USDT with 40x leverage": ``8,000 × (1 + 2.5 % − 0.5 %)
    = 8,160``."""
    ex, _ = isolated_position("bybit", btc("0.005", 100), 40, "1", "8000", short=True)
    # IM = 8,000 / 40 = 200, MM = 8,000 × 0.5 % = 40: LP = 8,000 + (200 − 40) = 8,160
    assert ex.liquidation_price_exact(1, BTC) == Fraction(ticks("8160"))
    assert ex.liquidation_price_ticks(1, BTC) == ticks("8160")
    # Bybit's isolated bankruptcy price (rules §10): 8,000 × (1 + 1/40) = 8,200
    assert ex.bankruptcy_price_ticks(1, BTC) == ex.position(1, BTC).bankruptcy_price_ticks == ticks("8200")
    assert liquidated(mark(ex, BTC, "8159.99")) == []
    assert liquidated(mark(ex, BTC, "8160")) == [(1, BTC)]


def test_bybit_extra_margin_added_moves_the_liquidation_price_by_extra_over_size():
    """Same source: ``− Extra Margin Added / Contract Size`` (long): adding 100 USDT to the 1 BTC long of the
    9,850 example gives 9,850 − 100 / 1 = 9,750."""
    ex, a = isolated_position("bybit", btc("0.005", 100), 50, "1", "10000")
    a.adjust_isolated_margin(BTC, "100")
    assert ex.liquidation_price_exact(1, BTC) == Fraction(ticks("9750"))
    assert ex.liquidation_price_ticks(1, BTC) == ticks("9750")
    assert liquidated(mark(ex, BTC, "9750.01")) == []
    assert liquidated(mark(ex, BTC, "9750")) == [(1, BTC)]


def test_bitmex_liquidation_example_long_at_100_liquidation_99_50_bankruptcy_99():
    """BitMEX, "Liquidation Example", https://testnet.bitmex.com/app/liquidationExamples: "A trader goes long
    1 contract at $100.00, with a liquidation price of $99.50 and a bankruptcy price of $99.00" — 100x (IM 1 %)
    with maintenance 0.5 % of the entry value: LP = 100 − (1 − 0.5), BP = 100 − 1."""
    ex, _ = isolated_position("bitmex", coin("0.005", 100), 100, "1", "100")
    # margin = 100 / 100 = 1, MM = 0.5 % × 100 = 0.5
    assert ex.liquidation_price_exact(1, COIN) == Fraction(ticks("99.50"))
    assert ex.liquidation_price_ticks(1, COIN) == ticks("99.50")
    assert ex.bankruptcy_price_ticks(1, COIN) == ex.bankruptcy_price_exact(1, COIN) == ticks("99")
    assert liquidated(mark(ex, COIN, "99.51")) == []
    events = mark(ex, COIN, "99.50")
    assert liquidated(events) == [(1, COIN)]
    # (the mark-notional rule would wait for 1 + (P − 100) = 0.5 % P, P = 99 / 0.995 = 99.497…: tick 99.49)


def test_bitmex_isolated_margin_example_liquidation_price_97():
    """BitMEX, "Isolated and Cross Margin Examples", https://www.bitmex.com/app/isolatedMarginExamples: "a
    position worth 100 … at a price of 100 USD … posts 4 … of initial margin, and their liquidation price is
    set to 97 USD"; "on the way down the liquidation engine assumed control of their position at their
    liquidation price of 97 USD" — 25x with a 1 % maintenance of the entry value: 100 − (4 − 1) = 97."""
    ex, _ = isolated_position("bitmex", coin("0.01", 25), 25, "1", "100")
    assert ex.position(1, COIN).isolated_margin_units == units("4")
    assert ex.liquidation_price_exact(1, COIN) == Fraction(ticks("97"))
    assert liquidated(mark(ex, COIN, "97.01")) == []
    assert liquidated(mark(ex, COIN, "97")) == [(1, COIN)]


def test_bybit_isolated_liquidation_event_uses_the_prices_reported_before_it():
    """The bybit long of the 9,850 example with a funded insurance fund: the liquidation price and the
    bankruptcy price queried before the liquidation (9,850 and 10,000 × (1 − 1/50) = 9,800) are the mark that
    starts it and the price of the takeover."""
    ex, _ = isolated_position("bybit", btc("0.005", 100), 50, "1", "10000")
    ex.apply(FundInsurance(BTC, units("10000")))
    mark(ex, BTC, "9900")
    lp, bp = ex.liquidation_price_ticks(1, BTC), ex.bankruptcy_price_ticks(1, BTC)
    assert (lp, bp) == (ticks("9850"), ticks("9800"))
    assert ex.bankruptcy_price_exact(1, BTC) == Fraction(ticks("9800"))
    events = mark(ex, BTC, "9850")
    (fill,) = of(events, LiquidationFill)
    assert (fill.price_ticks, fill.bankruptcy_price_ticks, fill.qty_lots) == (bp, bp, 1000)
    assert ex.position(1, BTC) is None


# -- rule 2: equality as a profile rule --------------------------------------------------------------------
# Isolated long of 1 coin at 100 at 10x (margin 10) plus 0.9 added (margin 10.9), MMR 1 % (the bracket's max
# leverage is 50, so hyperliquid's derived MMR 1 / (2 × 50) is the same 1 %):
#   mark-notional MM: at 90.00 the balance 10.9 − 10 = 0.9 equals MM 1 % × 90 = 0.9 exactly;
#                     at 89.99 the balance 0.89 < MM 0.8999; at 90.01 the balance 0.91 > MM 0.9001.
#   entry-value MM (bybit, bitmex): MM = 1 % × 100 = 1; 10.9 + (P − 100) ≤ 1 at P ≤ 90.10, equal at 90.10.
EQUALITY = {  # profile -> (liquidation tick, the highest mark that does not liquidate)
    "binance": (ticks("90"), ticks("90.01")),  # rulebook §5: balance ≤ MM (ratio ≥ 100 %)
    "bybit": (ticks("90.10"), ticks("90.11")),  # "when the Mark Price reaches the liquidation price"
    "bitmex": (ticks("90.10"), ticks("90.11")),  # the liquidation engine takes over at the liquidation price
    "hyperliquid": (ticks("89.99"), ticks("90")),  # equity *below* maintenance margin
    "dydx": (ticks("89.99"), ticks("90")),  # IsLiquidatable: MMR > 0 and MMR > NC
}


@pytest.mark.parametrize("profile", sorted(EQUALITY))
def test_equality_at_the_maintenance_margin_is_a_profile_rule(profile):
    """Sources: Hyperliquid "Liquidations" (https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations:
    "the account equity falls below the maintenance margin"); dYdX v4 ``protocol/lib/margin/risk.go``
    ``IsLiquidatable``: ``MMR.Sign() > 0 && MMR.Cmp(NC) > 0`` (dydxprotocol/v4-chain); Bybit (help.bybit.com
    900000181046: "triggered when the Mark Price hits the Liquidation Price"); BitMEX isolatedMarginExamples
    ("assumed control … at their liquidation price"); Binance: the rulebook's ``balance ≤ MM`` (rules §5) is
    kept for the default profile although Binance's FAQ words the trigger "Collateral < MM" (docs/rules.md §5)."""
    ex, a = isolated_position(profile, coin("0.01", 50), 10, "1", "100")
    a.adjust_isolated_margin(COIN, "0.9")
    first, safe = EQUALITY[profile]
    assert ex.liquidation_price_ticks(1, COIN) == first
    assert ex.position(1, COIN).liquidation_price_ticks == first
    ex.apply(SetMarkPrice(COIN, safe))
    assert ex.liquidatable() == [] and ex.margin_ratio_e8(1, COIN) <= 100_000_000
    assert liquidated(ex.apply(SetMarkPrice(COIN, first))) == [(1, COIN)]


def test_at_equality_the_ratio_is_100_percent_and_only_the_at_maintenance_profiles_liquidate():
    """The isolated long above at 90.00 (balance 0.9 = MM 0.9): the margin ratio is exactly 100 % (10⁸) on
    binance (liquidated), hyperliquid and dydx (not liquidated: "below" / "MMR > NC")."""
    for profile, expected in (("binance", [(1, COIN)]), ("hyperliquid", []), ("dydx", [])):
        ex, a = isolated_position(profile, coin("0.01", 50), 10, "1", "100")
        a.adjust_isolated_margin(COIN, "0.9")
        assert ex.maintenance_margin(1, COIN) == units("1")  # at the entry mark 100
        mark(ex, COIN, "95")
        assert ex.margin_balance(1, COIN) == units("5.9") and ex.maintenance_margin(1, COIN) == units("0.95")
        events = mark(ex, COIN, "90")
        assert liquidated(events) == expected, profile
        if not expected:
            assert ex.margin_ratio_e8(1, COIN) == 100_000_000 == ex.margin_balance(1, COIN) * 100_000_000 // units("0.9")


@pytest.mark.parametrize("profile, liquidates", [("binance", True), ("hyperliquid", False), ("dydx", False)])
def test_cross_account_at_equality(profile, liquidates):
    """Cross: wallet 10, long 1 coin at 100 (10x), MMR 0: at 90.00 the balance 10 − 10 = 0 equals MM 0 —
    binance liquidates (≤), hyperliquid does not (equity below MM); dYdX never liquidates a zero MM (risk.go
    above). At 89.99 (balance −0.01 < 0) hyperliquid liquidates, dYdX still not. Hyperliquid derives every MMR
    from the max leverage (never 0), so its trigger is tested here with that derivation off."""
    if profile == "hyperliquid":
        profile = dataclasses.replace(PROFILES["hyperliquid"], mmr_from_leverage=False)
    ex = Twin([coin("0", 10)], profile)
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("10")
    maker.deposit("100000")
    mark(ex, COIN, "100")
    a.set_leverage(COIN, 10)
    maker.sell(COIN, "1", "100")
    a.buy(COIN, "1", "100")
    name = profile if isinstance(profile, str) else profile.name
    assert ex.liquidation_price_ticks(1, COIN) == {"binance": ticks("90"), "hyperliquid": ticks("89.99")}.get(name)
    assert liquidated(mark(ex, COIN, "90")) == ([(1, "")] if liquidates else [])
    if not liquidates:
        events = mark(ex, COIN, "89.99")
        assert liquidated(events) == ([(1, "")] if name == "hyperliquid" else [])


def test_dydx_zero_maintenance_is_never_liquidatable():
    """dYdX ``IsLiquidatable`` needs ``MMR > 0``: an isolated long at MMR 0 whose equity is negative stays open
    (binance liquidates it)."""
    for profile, expected in (("binance", [(1, COIN)]), ("dydx", [])):
        ex, _ = isolated_position(profile, coin("0", 10), 10, "1", "100")
        assert liquidated(mark(ex, COIN, "80")) == expected  # balance 10 − 20 = −10
        if not expected:
            assert ex.liquidatable() == [] and ex.liquidation_price_ticks(1, COIN) is None
            assert ex.margin_balance(1, COIN) == -units("10")


def test_profile_fields_hold_the_venue_rules():
    assert PROFILES["binance"].liquidation_trigger == LiquidationTrigger.AT_MAINTENANCE
    assert PROFILES["bybit"].liquidation_trigger == PROFILES["bitmex"].liquidation_trigger == \
        LiquidationTrigger.AT_MAINTENANCE
    assert PROFILES["hyperliquid"].liquidation_trigger == LiquidationTrigger.BELOW_MAINTENANCE
    assert PROFILES["dydx"].liquidation_trigger == LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE
    assert [name for name, p in PROFILES.items() if p.isolated_maintenance == IsolatedMaintenance.ENTRY] == \
        ["bybit", "bitmex"]


# -- rule 11 (queries): profile prices before the liquidation ----------------------------------------------
def test_dydx_bankruptcy_price_of_one_cross_position_before_liquidation():
    """dYdX shares the subaccount's net collateral among positions by maintenance margin (rules §10, dYdX
    ``GetBankruptcyPriceInQuoteQuantums``: ``−ΔNNV − TNC × |ΔMMR| / TMMR``, closing the whole position). Cross
    wallet 1,000, long 10 AAA and 10 BBB at 100, MMR 1 %, marks 100: TNC = 1,000, MM = 10 + 10; AAA's BP =
    100 − 1,000 × 10 / 20 / 10 = 50.00. The zero-balance price of AAA (BBB held at its mark) is 1,000 + 10 (P −
    100) = 0 → P = 0: none."""
    expected = {"dydx": ticks("50"), "binance": None}
    for profile, bp in expected.items():
        ex = Twin([coin("0.01", 10), coin("0.01", 10, OTHER)], profile)
        a, maker = Client(ex, 1), Client(ex, 2)
        a.deposit("1000")
        maker.deposit("1000000")
        for symbol in (COIN, OTHER):
            mark(ex, symbol, "100")
            a.set_leverage(symbol, 10)
            maker.sell(symbol, "10", "100")
            a.buy(symbol, "10", "100")
        assert ex.bankruptcy_price_ticks(1, COIN) == bp
        assert ex.position(1, COIN).bankruptcy_price_ticks == bp
        assert ex.bankruptcy_price_exact(1, COIN) == (None if bp is None else Fraction(bp))


def test_exact_liquidation_price_of_rules_example_1():
    """rules ex. 1 (binance): wallet 500, cross long 0.02 BTC at 50,000, MMR 0.4 %: LP = (500 − 1,000) /
    (0.02 × 0.004 − 0.02) = 25,100.4016… = 625,000,000 / 249 ticks; the liquidation tick is 25,100.40."""
    inst = Instrument.linear(BTC, tick_size="0.01", lot_size="0.001", max_price="1000000", max_qty="1000",
                             min_notional="0", maker_fee="0", taker_fee="0")
    ex = Twin([inst], "binance")
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("500")
    maker.deposit("1000000")
    mark(ex, BTC, "50000")
    maker.sell(BTC, "0.02", "50000")
    a.buy(BTC, "0.02", "50000")
    assert ex.liquidation_price_exact(1, BTC) == Fraction(625_000_000, 249)
    assert ex.liquidation_price_ticks(1, BTC) == 2_510_040
    assert ex.bankruptcy_price_exact(1, BTC) == Fraction(ticks("25000"))


def test_queries_of_a_missing_position_and_a_missing_account():
    ex, _ = isolated_position("bybit", btc("0.005", 100), 50, "1", "10000")
    for query in (ex.liquidation_price_exact, ex.bankruptcy_price_exact, ex.bankruptcy_price_ticks):
        assert query(7, BTC) is None and query(1, BTC, 2) is None and query(1, BTC, 9) is None
    assert isinstance(ex.exchanges[0], Exchange)
