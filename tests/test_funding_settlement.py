"""Funding inside the Exchange (rules §8, §11 examples 4 and 5): premium samples from the live book, the
weighted average, settlement at interval boundaries, isolated vs cross, rounding dust, history, replay.

Every expected number is derived by hand in the comments. ``CheckedExchange`` checks rules §9 conservation and
every invariant after each command. BTCUSDT: tick 0.01, lot 0.001, so K = 0.01 × 0.001 × 10⁸ = 1,000 units
per tick·lot; the coin instruments: tick 0.01, lot 1, K = 10⁶."""
import io
from decimal import Decimal

import pytest

from exchange import (
    AdvanceTime, BalanceChanged, BalanceReason, Client, FundingPaid, FundingParams, FundingRecord, FundingSettled,
    Instrument, LiquidationStarted, MarginMode, OrderCanceled, PositionChanged, PositionSide, SetIndexPrice,
    SetMarkPrice, TimeAdvanced,
)
from exchange.persistence.journal import dump, read
from exchange.persistence.recovery import replay
from exchange.units import NS_PER_SECOND
from tests.checked import CheckedExchange, of, units
from tests.conftest import COMPILED

BTC, COIN = "BTCUSDT", "COINUSDT"
HOUR = 3600 * NS_PER_SECOND
EIGHT_HOURS = 8 * HOUR
BOTH = PositionSide.BOTH


def btc(**overrides) -> Instrument:
    params = dict(maker_fee="0", taker_fee="0")
    params.update(overrides)
    return Instrument.linear(BTC, **params)


def coin(**overrides) -> Instrument:
    """A coin around 100 with an impact notional of 1,010 USDT and wide caps, no fees."""
    wide = FundingParams(cap_e8=2_000_000, floor_e8=-2_000_000, impact_margin_notional_units=units("1010"))
    params = dict(lot_size="1", min_qty="1", min_notional="0", maker_fee="0", taker_fee="0", funding=wide)
    params.update(overrides)
    return Instrument.linear(COIN, **params)


def venue(*instruments, profile="binance", deposit="1000000"):
    ex = CheckedExchange(list(instruments), profile=profile)
    clients = [Client(ex, account) for account in (1, 2, 3, 4)]
    for client in clients:
        client.deposit(deposit)
    return ex, clients


def mark(ex, symbol, price):
    return ex.apply(SetMarkPrice(symbol, ex.instruments[symbol].price_to_ticks(price)))


def long_short(ex, long, short, symbol, qty, price):
    """``long`` buys ``qty`` from ``short`` at ``price``."""
    short.sell(symbol, qty, price)
    long.buy(symbol, qty, price)


# -- rules example 5 -----------------------------------------------------------------------------------------
def test_example_5_long_2_btc_at_mark_30000_pays_6_and_the_short_receives_6():
    ex, (a, b, *_) = venue(btc())
    mark(ex, BTC, "30000")
    long_short(ex, a, b, BTC, "2", "30000")
    wallets = ex.wallet(1), ex.wallet(2)
    # no index -> no premium samples -> P_avg = 0 -> F = 0 + clamp(0.01% − 0, ±0.05%) = 0.01%
    assert ex.predicted_funding_rate_e8(BTC) == 10_000
    events = ex.apply(AdvanceTime(EIGHT_HOURS))
    # 2 BTC × 30,000 × 0.01% = 6.00 USDT, exactly, each way
    assert of(events, FundingSettled) == [
        FundingSettled(BTC, EIGHT_HOURS, 10_000, 3_000_000, units("6"), units("6"), 0)]
    assert of(events, FundingPaid) == [
        FundingPaid(BTC, 1, BOTH, 2000, units("6"), MarginMode.CROSS),
        FundingPaid(BTC, 2, BOTH, -2000, -units("6"), MarginMode.CROSS),
    ]
    assert of(events, BalanceChanged) == [
        BalanceChanged(1, -units("6"), wallets[0] - units("6"), BalanceReason.FUNDING),
        BalanceChanged(2, units("6"), wallets[1] + units("6"), BalanceReason.FUNDING),
    ]
    assert (ex.wallet(1), ex.wallet(2)) == (wallets[0] - units("6"), wallets[1] + units("6"))
    assert ex.ledger.insurance_fund_units == 0
    assert ex.funding_rate_e8(BTC) == 10_000
    assert ex.funding_history(BTC) == [FundingRecord(EIGHT_HOURS, 10_000, 3_000_000)]
    assert ex.next_funding_time_ns() == 2 * EIGHT_HOURS


def test_negative_rate_shorts_pay_longs():
    ex, (a, b, *_) = venue(btc(funding=FundingParams(interest_e8=-10_000)))
    mark(ex, BTC, "30000")
    long_short(ex, a, b, BTC, "2", "30000")
    before = ex.wallet(1), ex.wallet(2)
    ex.apply(AdvanceTime(EIGHT_HOURS))  # F = −0.01%: the short pays 6.00 to the long
    assert (ex.wallet(1) - before[0], ex.wallet(2) - before[1]) == (units("6"), -units("6"))


# -- rules example 4 through the book ---------------------------------------------------------------------------
def quote_coin(ex, bidder, asker, bids, asks):
    """Rest ``(qty, price)`` bids and asks of the coin."""
    for qty, price in bids:
        bidder.buy(COIN, qty, price)
    for qty, price in asks:
        asker.sell(COIN, qty, price)


def test_premium_from_a_live_book_with_known_depth():
    ex, (a, b, *_) = venue(coin())
    ex.apply(SetIndexPrice(COIN, 10_000))  # index 100.00 (mark 100.00)
    quote_coin(ex, a, b, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])
    # impact bid of 1,010 USDT: 5 × 102 = 510 at 102, then 500 / 100 = 5 lots at 100 -> 1,010 / 10 = 101.00;
    # impact ask: 5 × 103 = 515, then 495 / 104 lots -> above the index, contributes 0.
    # P = (101 − 100) / 100 = 1% = 1,000,000 e8 for every sample; F = 1% + clamp(0.01% − 1%, ±0.05%) = 0.95%
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    assert ex.funding.symbols[COIN].sampler.count == 1
    assert ex.predicted_funding_rate_e8(COIN) == 950_000
    ex.apply(AdvanceTime(30 * NS_PER_SECOND))  # samples at 10, 15, ..., 30 s: all 1%
    assert ex.funding.symbols[COIN].sampler.count == 6
    assert ex.predicted_funding_rate_e8(COIN) == 950_000


def test_weighted_average_across_samples_later_samples_weigh_more():
    ex, (a, b, *_) = venue(coin())
    ex.apply(SetIndexPrice(COIN, 10_000))
    quote_coin(ex, a, b, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])
    ex.apply(AdvanceTime(10 * NS_PER_SECOND))  # samples 1 and 2: 1% each
    a.cancel_all(COIN)
    a.buy(COIN, "20", "100")  # impact bid now exactly 100: no premium
    ex.apply(AdvanceTime(15 * NS_PER_SECOND))  # sample 3: 0
    # P_avg = (1 × 1% + 2 × 1% + 3 × 0) / 6 = 0.5%; F = 0.5% − 0.05% = 0.45%
    assert ex.predicted_funding_rate_e8(COIN) == 450_000


@pytest.mark.parametrize("p_avg_e8, rate_e8",
                         [(20_000, 10_000), (100_000, 50_000), (-80_000, -30_000), (5_000, 10_000)])
def test_example_4_clamp_through_the_book(p_avg_e8, rate_e8):
    ex, (a, b, *_) = venue(coin(funding=FundingParams(impact_margin_notional_units=units("1000"))))
    ex.apply(SetIndexPrice(COIN, 1_000_000))  # index 10,000.00, so one tick is 0.0001% = 100 e8
    price = str(Decimal(1_000_000 + p_avg_e8 // 100) / 100)  # p_avg_e8 / 100 ticks off the index
    if p_avg_e8 > 0:
        quote_coin(ex, a, b, bids=[("1", price)], asks=[("1", "10100")])
    else:
        quote_coin(ex, a, b, bids=[("1", "9900")], asks=[("1", price)])
    # impact notional 1,000 < one lot's 10,000: the best level sets the impact price: P = shift ticks / index
    ex.apply(AdvanceTime(5 * NS_PER_SECOND))
    assert ex.predicted_funding_rate_e8(COIN) == rate_e8


def test_symbol_without_an_index_takes_no_sample():
    ex, (a, b, *_) = venue(coin())
    quote_coin(ex, a, b, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])
    ex.apply(AdvanceTime(60 * NS_PER_SECOND))
    assert ex.funding.symbols[COIN].sampler.count == 0
    assert ex.predicted_funding_rate_e8(COIN) == 10_000  # the interest rate


def test_settlement_uses_the_intervals_samples_and_resets_them():
    ex, (a, b, c, d) = venue(coin())
    ex.apply(SetIndexPrice(COIN, 10_000))
    long_short(ex, c, d, COIN, "1", "100")
    quote_coin(ex, a, b, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])  # P = 1%
    ex.apply(AdvanceTime(EIGHT_HOURS - 5 * NS_PER_SECOND))
    assert ex.funding_history(COIN) == [] and ex.funding.symbols[COIN].sampler.count == 5759
    before = ex.wallet(3)
    ex.apply(AdvanceTime(EIGHT_HOURS))
    # every sample 1% -> F = 0.95%; the mark stayed 100.00: c pays 1 × 100 × 0.95% = 0.95
    assert ex.funding_history(COIN) == [FundingRecord(EIGHT_HOURS, 950_000, 10_000)]
    assert ex.wallet(3) == before - units("0.95")
    assert ex.funding.symbols[COIN].sampler.count == 0 and ex.funding_rate_e8(COIN) == 950_000


# -- where the money comes from ---------------------------------------------------------------------------
def test_isolated_position_pays_from_its_margin_not_the_wallet():
    ex, (a, b, *_) = venue(btc())
    a.set_margin_mode(BTC, "ISOLATED")
    mark(ex, BTC, "30000")
    long_short(ex, a, b, BTC, "2", "30000")
    wallet, margin = ex.wallet(1), ex.position(1, BTC).isolated_margin_units
    events = ex.apply(AdvanceTime(EIGHT_HOURS))
    assert ex.wallet(1) == wallet
    assert ex.position(1, BTC).isolated_margin_units == margin - units("6")
    assert FundingPaid(BTC, 1, BOTH, 2000, units("6"), MarginMode.ISOLATED) in events
    assert PositionChanged(BTC, 1, BOTH, 2000, 2000 * 3_000_000, margin - units("6"), 0) in events


def test_rounding_dust_goes_to_the_insurance_fund():
    ex, (a, b, *_) = venue(btc())
    mark(ex, BTC, "30000.01")
    long_short(ex, a, b, BTC, "0.001", "30000.01")
    before = ex.wallet(1), ex.wallet(2)
    events = ex.apply(AdvanceTime(EIGHT_HOURS))
    # 1 lot × 3,000,001 ticks × K 1,000 × 0.01% = 300,000.1 units: the long pays 300,001, the short gets 300,000
    assert (before[0] - ex.wallet(1), ex.wallet(2) - before[1]) == (300_001, 300_000)
    assert ex.ledger.insurance_fund_units == 1
    assert of(events, FundingSettled)[0].dust_units == 1


def test_a_payment_larger_than_the_isolated_margin_is_charged_in_full_then_liquidation_follows():
    # cap 2%; premium 1% -> F = 0.95% per settlement; an isolated long at 125x holds 0.8% of its notional
    ex, (a, b, c, d) = venue(coin())
    ex.apply(SetIndexPrice(COIN, 10_000))
    a.set_margin_mode(COIN, "ISOLATED")
    a.set_leverage(COIN, 125)
    long_short(ex, a, b, COIN, "100", "100")  # notional 10,000; isolated margin 80
    quote_coin(ex, c, d, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])
    events = ex.apply(AdvanceTime(EIGHT_HOURS))
    # the mark stayed 100.00 (index observations only move it): 10,000 × 0.95% = 95 > 80 -> margin −15
    assert ex.funding_rate_e8(COIN) == 950_000
    paid = events.index(FundingPaid(COIN, 1, BOTH, 100, units("95"), MarginMode.ISOLATED))
    assert events[paid + 1] == PositionChanged(COIN, 1, BOTH, 100, 100 * 10_000, units("80") - units("95"), 0)
    # the short was paid in full; the liquidation stage runs after the settlement (CheckedExchange: conserved)
    assert FundingPaid(COIN, 2, BOTH, -100, -units("95"), MarginMode.CROSS) in events
    assert any(isinstance(e, LiquidationStarted) and e.account_id == 1 for e in events[paid:])


# -- the boundary instant -------------------------------------------------------------------------------------
def test_a_position_closed_before_the_boundary_pays_nothing_one_open_at_it_pays_in_full():
    ex, (a, b, c, d) = venue(btc())
    mark(ex, BTC, "30000")
    long_short(ex, a, b, BTC, "1", "30000")
    ex.apply(AdvanceTime(EIGHT_HOURS - 1))
    long_short(ex, b, a, BTC, "1", "30000")  # a and b close 1 ns before the boundary
    long_short(ex, c, d, BTC, "1", "30000")  # c and d open 1 ns before it: no pro-rating by time held
    before = [ex.wallet(i) for i in (1, 2, 3, 4)]
    ex.apply(AdvanceTime(EIGHT_HOURS))
    assert [ex.wallet(i) - w for i, w in zip((1, 2, 3, 4), before)] == [0, 0, -units("3"), units("3")]


def test_commands_stamped_at_the_boundary_come_after_its_settlement():
    ex, (a, b, *_) = venue(btc())
    mark(ex, BTC, "30000")
    ex.apply(AdvanceTime(EIGHT_HOURS))
    long_short(ex, a, b, BTC, "1", "30000")  # opened at 8 h, after the 8 h settlement
    before = ex.wallet(1)
    ex.apply(AdvanceTime(2 * EIGHT_HOURS - 1))
    assert ex.wallet(1) == before
    ex.apply(AdvanceTime(2 * EIGHT_HOURS))
    assert ex.wallet(1) == before - units("3")
    assert [r.time_ns for r in ex.funding_history(BTC)] == [EIGHT_HOURS, 2 * EIGHT_HOURS]


def test_several_boundaries_in_one_advance_are_settled_in_order_each_fully():
    ex, (a, b, *_) = venue(btc(), profile="dydx")  # hourly, the 8 h rate ÷ 8
    mark(ex, BTC, "30000")
    long_short(ex, a, b, BTC, "2", "30000")
    before = ex.wallet(1)
    events = ex.apply(AdvanceTime(3 * HOUR + 1))
    # F = 0.01% / 8 = 0.00125% = 1,250 e8 per hour; 60,000 × 0.00125% = 0.75 per hour, three times
    assert [(e.time_ns, e.rate_e8, e.paid_units) for e in of(events, FundingSettled)] == [
        (HOUR, 1_250, units("0.75")), (2 * HOUR, 1_250, units("0.75")), (3 * HOUR, 1_250, units("0.75"))]
    assert ex.wallet(1) == before - units("2.25")
    assert [r.time_ns for r in ex.funding_history(BTC)] == [HOUR, 2 * HOUR, 3 * HOUR]
    assert ex.next_funding_time_ns() == 4 * HOUR


def test_gtd_orders_expire_in_time_order_between_samples():
    ex, (a, b, *_) = venue(coin())
    ex.apply(SetIndexPrice(COIN, 10_000))
    quote_coin(ex, a, b, bids=[("20", "100")], asks=[("5", "103"), ("20", "104")])
    a.buy(COIN, "5", "102", tif="GTD", expire_ns=12 * NS_PER_SECOND)
    events = ex.apply(AdvanceTime(15 * NS_PER_SECOND))
    # samples at 5 s and 10 s see the 102 bid (1%), the one at 15 s does not (0):
    # P_avg = (1 × 1% + 2 × 1% + 3 × 0) / 6 = 0.5% -> F = 0.45%
    assert ex.predicted_funding_rate_e8(COIN) == 450_000
    assert events[0] == TimeAdvanced(15 * NS_PER_SECOND) and len(of(events, OrderCanceled)) == 1


def test_the_settled_rate_feeds_the_mark_p1():
    ex, (a, b, *_) = venue(btc())
    long_short(ex, a, b, BTC, "0.001", "50020")  # last trade 50,020; the book is empty again
    ex.apply(AdvanceTime(EIGHT_HOURS + 4 * HOUR))  # no index, no samples: 0.01% settled at 8 h; 4 h of 8 left
    assert ex.funding_rate_e8(BTC) == 10_000
    ex.apply(SetIndexPrice(BTC, 5_000_000))
    # P1 = 50,000 × (1 + 0.01% × 4/8) = 50,002.50; P2 = the index (no quotes, no basis); last 50,020
    assert ex.mark_price(BTC) == 5_000_250


# -- replay ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", ["binance", "hyperliquid"])
def test_replay_of_a_journal_with_funding_reproduces_the_state_hash(profile):
    ex, (a, b, c, d) = venue(coin(), btc(), profile=profile)
    ex.apply(SetIndexPrice(COIN, 10_000))
    quote_coin(ex, a, b, bids=[("5", "102"), ("20", "100")], asks=[("5", "103"), ("20", "104")])
    long_short(ex, c, d, COIN, "1", "102")
    d.set_margin_mode(BTC, "ISOLATED")
    mark(ex, BTC, "30000.01")
    long_short(ex, c, d, BTC, "0.003", "30001")  # hyperliquid refuses an order at 30,000.01 (7 significant figures)
    for hours in (1, 3, 9, 17):
        ex.apply(AdvanceTime(hours * HOUR + 7))
    assert ex.funding_history(COIN) and ex.ledger.insurance_fund_units > 0
    buffer = io.BytesIO()
    dump(ex.instruments.values(), ex.journal, buffer, profile=ex.profile)
    buffer.seek(0)
    journal = read(buffer)
    assert journal.profile == ex.profile
    replayed, _ = replay(journal.instruments, journal.commands, options=journal.options, profile=journal.profile)
    assert replayed.state_hash() == ex.state_hash()
    assert replayed.funding_history(BTC) == ex.funding_history(BTC)


# -- how deep a premium sample reads the book --------------------------------------------------------------------
@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
@pytest.mark.parametrize("bid_levels, ask_levels", [(300, 100), (64, 64), (202, 199), (203, 199), (3, 400), (0, 0)])
def test_a_premium_sample_reads_as_deep_as_the_impact_notional_reaches(implementation, bid_levels, ask_levels):
    """A premium sample walks a prefix of each side (64 levels, then ×4) until the prefix holds the impact
    notional or is the whole side, and must give the premium of the walk over the whole book (the oracle below:
    ``premium_e8`` of ``impact_price`` over every level). The impact notional here is 20,000 USDT and each level
    1 lot of about 100 USDT, so a side needs about 200 levels: 300 bids are read to 256 levels, 100 asks or 64
    levels are a whole side that cannot absorb it (it counts 0). The first n bids hold n × 99.99 − 0.005 n(n − 1)
    USDT: 19,994.97 for 202, 20,092.94 for 203, so 203 bids are the fewest that absorb it. The index 90.00 is
    below the bids, so a bid side that absorbs the notional gives a positive premium that depends on every level
    read."""
    from exchange.engine import Exchange
    from exchange.funding.rate import impact_price, premium_e8

    deep = FundingParams(cap_e8=2_000_000, floor_e8=-2_000_000, impact_margin_notional_units=units("20000"))
    ex = Exchange([coin(funding=deep, band_down="0.5", band_up="1.5")], implementation=implementation)
    symbol, k = COIN, ex.instruments[COIN].k_units
    ex.apply(SetMarkPrice(symbol, 10_000))
    client = Client(ex, 1)
    client.deposit("100000000")
    for i in range(bid_levels):  # 1 lot at 99.99, 99.98, ...
        client.buy(symbol, "1", str(Decimal(9_999 - i) / 100))
    for i in range(ask_levels):  # 1 lot at 100.01, 100.02, ...
        client.sell(symbol, "1", str(Decimal(10_001 + i) / 100))
    ex.apply(SetIndexPrice(symbol, 9_000))
    book = ex._books[symbol]
    bids, asks = book.depth(book.order_count() + 1)
    assert (len(bids), len(asks)) == (bid_levels, ask_levels)
    impact = ex.funding.impact_units[symbol]
    expected = premium_e8(impact_price(bids, impact, k), impact_price(asks, impact, k), 9_000)
    assert ex._premium(symbol, {}) == expected
    assert (expected > 0) == (bid_levels >= 203)
    sampled_bids, sampled_asks = ex._impact_depth(symbol)
    assert sampled_bids == bids[:len(sampled_bids)] and sampled_asks == asks[:len(sampled_asks)]
