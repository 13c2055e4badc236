"""The lazy ADL order over the risk monitor's mirror (``exchange.liquidation.adl.queue``) against the exact oracle
(``deleveraging.ranked``, every candidate scored with Fractions), and the soundness of the float score
bounds it filters with (``exchange.liquidation.adl.bounds``)."""
import dataclasses
import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange import (
    ADLFill, Deposit, Exchange, FundInsurance, MarginMode, PlaceOrder, PositionMode, PositionSide, SetLeverage,
    SetMarginMode, SetMarkPrice, SetPositionMode, Side, TimeInForce,
)
from exchange.accounts import margin
from exchange import _impl
from exchange.liquidation.adl import bounds as adlbounds, queue as adlqueue, ranking as deleveraging, score as adl
from exchange.liquidation.insurance import FundLimits
from exchange.liquidation.waterfall import LiquidationConfig
from exchange.accounts.storage import InstrumentTable, Portfolio
from tests.conftest import make_instrument
from tests.streams import liquidation_commands

USDT = 10**8
SYMBOL, OTHER = "TESTUSDT", "XYZUSDT"
QUEUED_PROFILES = ["binance", "bybit", "hyperliquid", "dydx", "bitmex"]


def crowd(profile: str, n_traders: int, seed: int, indexed: bool = True, symbols=(SYMBOL,),
          implementation: str | None = None) -> Exchange:
    """``n_traders`` accounts (one-way and hedge, isolated and cross, 2–50x) that traded with each other at
    prices walking between 90 and 110 in every symbol, so both sides have many ADL candidates with spread-out
    scores; every fifth trader is the twin of the one before (same wallet, settings and trades: equal scores,
    ties broken by account id). A small insurance fund, so a crash ends in ADL."""
    rng = random.Random(seed)
    ex = Exchange([make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)][:len(symbols)], profile=profile,
                  liquidation=LiquidationConfig(fund=FundLimits(max_position_lots=5)), implementation=implementation)
    ex.monitor.index_from_accounts = 0 if indexed else math.inf
    for symbol in symbols:
        ex.apply(SetMarkPrice(symbol, 10_000))
        ex.apply(FundInsurance(symbol, 5 * USDT))
    plans = []
    for trader in range(1, n_traders + 1):
        plan = plans[-1] if trader % 5 == 0 else (
            rng.randint(50, 2_000), rng.random() < 0.3, rng.random() < 0.4, rng.randint(2, 50))
        plans.append(plan)
        wallet, hedge, isolated, leverage = plan
        ex.apply(Deposit(trader, wallet * USDT))
        if hedge:
            ex.apply(SetPositionMode(trader, PositionMode.HEDGE))
        for symbol in symbols:
            if isolated and symbol == SYMBOL:
                ex.apply(SetMarginMode(trader, symbol, MarginMode.ISOLATED))
            ex.apply(SetLeverage(trader, symbol, leverage))
    price = 10_000
    for trader in range(1, n_traders + 1, 2):
        for buyer, seller in ((trader, trader + 1), (trader + 1, trader)) if trader < n_traders else ():
            for symbol in symbols:
                price = min(max(price + rng.randint(-150, 150), 9_000), 11_000)
                qty = rng.randint(1, 30)
                ex.apply(SetMarkPrice(symbol, price))
                ex.apply(PlaceOrder(seller, symbol, Side.SELL, qty, price, position_side=_side(ex, seller, Side.SELL)))
                ex.apply(PlaceOrder(buyer, symbol, Side.BUY, qty, price, tif=TimeInForce.IOC,
                                    position_side=_side(ex, buyer, Side.BUY)))
    return ex


def _side(ex: Exchange, account_id: int, side: Side) -> PositionSide:
    hedge = ex.ledger.accounts[account_id].position_mode == PositionMode.HEDGE
    return (PositionSide.LONG if side == Side.BUY else PositionSide.SHORT) if hedge else PositionSide.BOTH


def marks_down_and_up() -> list[int]:
    return [10_000 - 250 * i for i in range(1, 17)] + [6_000 + 400 * i for i in range(1, 21)]


@pytest.mark.parametrize("symbols", [(SYMBOL,), (SYMBOL, OTHER)], ids=["one-symbol", "two-symbols"])
@pytest.mark.parametrize("profile", QUEUED_PROFILES)
def test_queue_gives_the_oracles_order_on_every_adl_event(profile, symbols, monkeypatch):
    ex = crowd(profile, 400, seed=3, symbols=symbols)
    assert ex.monitor.indexed
    calls = []
    order = ex.liquidation.adl_queue.order

    def checked(symbol, long, ranking, seed, changing, liquidated):
        expected = deleveraging.ranked(ex.risk, symbol, long, ranking, seed)
        got = list(order(symbol, long, ranking, seed, changing, liquidated))
        assert got == expected
        calls.append(len(expected))
        return iter(got)

    monkeypatch.setattr(ex.liquidation.adl_queue, "order", checked)
    for mark in marks_down_and_up():
        for symbol in symbols:
            ex.apply(SetMarkPrice(symbol, mark))
            ex.check_invariants()
    assert len(calls) > 20 and max(calls) > 4 * adlqueue.FIRST_PREFIX  # the filter path ran, several rounds


@pytest.mark.parametrize("profile", QUEUED_PROFILES)
def test_the_lazy_queue_deleverages_exactly_like_the_full_ranking(profile):
    """Taken lazily (the ADL step stops once covered) the queue gives the same events and state."""
    fast, full = crowd(profile, 300, seed=11), crowd(profile, 300, seed=11, indexed=False)
    adl_fills = 0
    for mark in marks_down_and_up():
        events = fast.apply(SetMarkPrice(SYMBOL, mark))
        assert events == full.apply(SetMarkPrice(SYMBOL, mark))
        adl_fills += sum(isinstance(e, ADLFill) for e in events)
    assert fast.state_hash() == full.state_hash() and adl_fills > 20


# -- soundness of the bounds ---------------------------------------------------------------------------------
INSTRUMENT = make_instrument(max_price="1000", max_qty="10000000")  # K = 10⁶, max price 100,000 ticks
LOTS = st.integers(1, 10_000_000)


@st.composite
def portfolios(draw):
    """Accounts (wallets from −2⁵⁰ to 2⁵⁰ units, including tiny ones) with 1–3 positions in one symbol at
    extreme sizes and prices, cross or isolated (margins from 0), and a mark in the instrument's range."""
    table = InstrumentTable([INSTRUMENT])
    p = Portfolio(table)
    max_price = INSTRUMENT.max_price_ticks
    for _ in range(draw(st.integers(1, 6))):
        a = p.add_account(draw(st.one_of(st.integers(-2**50, 2**50), st.integers(-10, 10))))
        for side in draw(st.sampled_from([[PositionSide.BOTH], [PositionSide.LONG, PositionSide.SHORT]])):
            lots = draw(st.integers(1, 2**62 // (max_price * INSTRUMENT.k_units * 8)))
            lots = -lots if side == PositionSide.SHORT or (side == PositionSide.BOTH and draw(st.booleans())) else lots
            entry = lots * draw(st.integers(1, max_price))
            isolated = draw(st.booleans())
            p.add_position(a, 0, lots, entry, side=side, mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
                           iso_margin_units=draw(st.integers(0, 2**50)) if isolated else 0)
    return p, draw(st.one_of(st.integers(1, max_price), st.just(max_price)))


def exact_scores(p: Portfolio, slots, mark: int, ranking: str) -> list:
    """The oracle: adl.binance_score / adl.bybit_score / adl.bitmex_score from exact integer inputs, slot by slot
    (bitmex: the part's bankruptcy price by ``margin.bankruptcy_price_ticks`` over its legs in the symbol and the
    balance behind them, as ``Risk.bankruptcy_price_ticks`` takes them)."""
    rows, k = p.table.rows[0], INSTRUMENT.k_units
    cross = {}
    for j in range(p.n_slots):
        a = int(p.pos_account[j])
        if a >= 0 and p.pos_qty_lots[j] and p.pos_mode[j] == MarginMode.CROSS:
            upnl = margin.unrealized_pnl(int(p.pos_qty_lots[j]), int(p.pos_entry_cost[j]), mark, k)
            cross[a] = cross.get(a, int(p.acct_wallet_units[a])) + upnl
    scores = []
    for j in slots:
        a, q, c = int(p.pos_account[j]), int(p.pos_qty_lots[j]), int(p.pos_entry_cost[j])
        isolated = p.pos_mode[j] == MarginMode.ISOLATED
        upnl = margin.unrealized_pnl(q, c, mark, k)
        notional = margin.notional_units(q, mark, k)
        if ranking == "binance":
            wallet = int(p.pos_iso_margin_units[j]) if isolated else int(p.acct_wallet_units[a])
            scores.append(adl.binance_score(upnl, wallet, margin.maintenance_margin(rows, notional)))
        elif ranking == "bitmex":  # one symbol: the cross legs' balance is the wallet
            legs = [(q, c)] if isolated else [
                (int(p.pos_qty_lots[i]), int(p.pos_entry_cost[i])) for i in p.slots_of(a)
                if p.pos_qty_lots[i] and p.pos_mode[i] == MarginMode.CROSS]
            balance = int(p.pos_iso_margin_units[j]) if isolated else int(p.acct_wallet_units[a])
            bankruptcy = margin.bankruptcy_price_ticks(balance, legs, k) or 0
            scores.append(adl.bitmex_score(1 if q > 0 else -1, Fraction(c, q), mark, Fraction(bankruptcy)))
        else:
            balance = int(p.pos_iso_margin_units[j]) + upnl if isolated else cross[a]
            scores.append(adl.bybit_score(upnl, abs(c) * k, notional, balance))
    return scores


BOUNDS_IMPLEMENTATIONS = [pytest.param(adlbounds, id="numpy"), pytest.param(
    _impl.adl_bounds_kernel, id="compiled", marks=pytest.mark.skipif(_impl.adl_bounds_kernel is None,
                                                                     reason="compiled core not active"))]


@pytest.mark.parametrize("bounds", BOUNDS_IMPLEMENTATIONS)
@settings(max_examples=300, deadline=None)
@given(portfolios(), st.sampled_from(["binance", "bybit", "bitmex"]))
def test_every_exact_score_lies_within_its_bounds_and_zeros_are_flagged_only_when_exact(bounds, case, ranking):
    p, mark = case
    slots = np.flatnonzero(p.pos_qty_lots != 0)  # the queue bounds open positions only
    lo, hi = getattr(bounds, ranking)(p, slots, 0, np.array([mark], np.int64))
    for j, score in enumerate(exact_scores(p, slots.tolist(), mark, ranking)):
        assert lo[j] <= score <= hi[j], (j, float(score), lo[j], hi[j])
        if lo[j] == 0 == hi[j]:
            assert score == 0


def assert_bounds_agree(lo, hi, ref_lo, ref_hi) -> None:
    """Compiled score bounds against the numpy ones they twin: the same where a bound is infinite, elsewhere within
    a thousandth of the reference interval's width or 1e-12 relative, whichever is larger. The two differ only by
    float rounding (the order in which a cross balance is summed, for one), which can pass 1e-12 relative, and
    an interval is never narrower than the 2 × WIDEN (2e-9) relative that widens every bound: a thousandth of it
    leaves the interval what it is; both are sound (the test above)."""
    for got, want in ((lo, ref_lo), (hi, ref_hi)):
        assert got.shape == want.shape
        finite = np.isfinite(want)
        assert got[~finite].tolist() == want[~finite].tolist()
        tolerance = np.maximum(1e-3 * (ref_hi - ref_lo)[finite], 1e-12 * np.abs(want[finite]))
        assert (np.abs(got[finite] - want[finite]) <= tolerance).all(), (got, want)


@pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active")
@settings(max_examples=200, deadline=None)
@given(portfolios(), st.booleans(), st.integers(0, 8))
def test_the_compiled_candidate_filter_is_the_numpy_one(case, long, n_funds):
    """Same slots as the numpy selection, the same zero flags and the same intervals up to float rounding
    (:func:`assert_bounds_agree`; never in soundness: the test above)."""
    p, mark = case
    ids = np.arange(p.n_accounts, dtype=np.int64)
    ids[:n_funds] += 2**62  # the first accounts play insurance funds: never candidates
    kernel = _impl.adl_bounds_kernel
    slots = kernel.side_slots(p, ids, 0, long, 2**62)
    assert slots.tolist() == adlqueue._side_slots(p, ids, 0, long, 2**62).tolist()
    for ranking in ("binance", "bybit", "bitmex"):
        marks = np.array([mark], np.int64)
        (lo, hi), (ref_lo, ref_hi) = getattr(kernel, ranking)(p, slots, 0, marks), getattr(adlbounds, ranking)(p, slots, 0, marks)
        assert ((lo == 0) & (hi == 0)).tolist() == ((ref_lo == 0) & (ref_hi == 0)).tolist()
        assert_bounds_agree(lo, hi, ref_lo, ref_hi)


@pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active")
@settings(max_examples=200, deadline=None)
@given(portfolios(), st.booleans(), st.integers(0, 8), st.sampled_from(["binance", "bybit", "bitmex", None]))
def test_the_compiled_candidate_columns_are_the_numpy_ones(case, long, n_funds, ranking):
    """``candidates`` (one compiled call) against the queue's numpy columns: the same rows, ledger ids, sides
    and zero flags, dtypes included, and bounds equal up to float rounding (:func:`assert_bounds_agree`; the
    seeded order's are all 0)."""
    p, mark = case
    ids = np.arange(p.n_accounts, dtype=np.int64) * 3 + 5  # ledger ids differ from the portfolio accounts
    ids[:n_funds] += 2**62
    marks = np.array([mark], np.int64)
    got = _impl.adl_bounds_kernel.candidates(p, ids, 0, long, 2**62, marks, ranking)
    want = adlqueue._columns(p, ids, 0, long, 2**62, marks, ranking)
    for g, w in zip(got[:3] + got[5:], want[:3] + want[5:]):
        assert g.dtype == w.dtype and g.tolist() == w.tolist()
    assert got[3].dtype == want[3].dtype == got[4].dtype == want[4].dtype
    assert_bounds_agree(got[3], got[4], want[3], want[4])
    if ranking is None:
        assert not got[3].any() and not got[4].any() and got[5].all()


TOP_K_IMPLEMENTATIONS = [pytest.param(adlbounds.top_k, id="numpy"), pytest.param(
    getattr(_impl.adl_bounds_kernel, "top_k", None), id="compiled",
    marks=pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active"))]


@pytest.mark.parametrize("top_k", TOP_K_IMPLEMENTATIONS)
@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.5, -1.0, math.inf, -math.inf]),
                          st.floats(-1e300, 1e300)), max_size=200), st.integers(-1, 210))
def test_top_k_is_the_first_k_of_the_stable_descending_sort(top_k, values, k):
    """Ties (many: a few values drawn often), zeros of both signs, infinities, k beyond the length, k ≤ 0,
    and no values at all: exactly the first k of a stable sort by value descending."""
    v = np.array(values, dtype=np.float64)
    got = top_k(v, k)
    assert got.dtype == np.int64
    assert got.tolist() == np.argsort(-v, kind="stable")[:max(k, 0)].tolist()


@pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active")
@pytest.mark.parametrize("n,k", [(10_000, 256), (10_000, 1_000), (4_096, 256), (4_096, 257), (300, 299)])
def test_the_compiled_top_k_on_long_arrays_with_ties(n, k):
    """Both of its paths (the heap for k up to n/16, the reference above) on arrays long enough to take them:
    rising values (every one displaces the heap's root), many ties around the k-th value."""
    rng = np.random.default_rng(n + k)
    for v in (np.arange(n, dtype=np.float64), rng.integers(0, 50, n).astype(np.float64), rng.random(n)):
        for top_k in (_impl.adl_bounds_kernel.top_k, adlbounds.top_k):
            assert top_k(v, k).tolist() == np.argsort(-v, kind="stable")[:k].tolist()


@st.composite
def live_lists(draw):
    """A live list (distinct candidate indices) over candidates owned by a few rows, some skipped, its ``desc``
    values ascending with ties, a start and a prefix length (both may pass the end)."""
    n = draw(st.integers(0, 40))
    rows = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=np.int32)
    skip = np.array(draw(st.lists(st.booleans(), min_size=6, max_size=6)))
    live = np.array(draw(st.permutations(range(n))), dtype=np.int64)[:draw(st.integers(0, n))]
    desc = np.sort(np.array(draw(st.lists(st.sampled_from([-math.inf, -2.0, -1.0, -0.5, 0.0, 3.0, math.inf]),
                                          min_size=len(live), max_size=len(live))), dtype=np.float64))
    return live, desc, rows, skip, draw(st.integers(0, len(live) + 2)), draw(st.integers(0, 45))


@pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active")
@settings(max_examples=400, deadline=None)
@given(live_lists(), st.sampled_from([-math.inf, -1.5, -1.0, 0.0, 1.0, math.inf]))
def test_the_compiled_live_lists_drop_skipped_rows_as_the_reference(case, limit):
    """``live_prefix`` and ``live_reach`` against the queue's numpy ones: the same start (and end) and the same
    live list from the start on (what the queue reads), ``desc`` moved along; with no entry, every entry
    skipped, a start past the end and an infinite limit among the cases."""
    live, desc, rows, skip, at, k = case
    at = min(at, len(live))
    kernel = _impl.adl_bounds_kernel
    mine, ref = live.copy(), live.copy()
    start = kernel.live_prefix(mine, at, k, skip, rows)
    assert start == adlqueue._live_prefix(ref, at, k, skip, rows)
    assert mine[start:].tolist() == ref[start:].tolist()
    assert not skip[rows[mine[start:start + k]]].any()
    (mine, mine_desc), (ref, ref_desc) = (live.copy(), desc.copy()), (live.copy(), desc.copy())
    got = kernel.live_reach(mine, mine_desc, at, limit, skip, rows)
    assert got == adlqueue._live_reach(ref, ref_desc, at, limit, skip, rows)
    assert mine[got[0]:].tolist() == ref[got[0]:].tolist() and mine_desc[got[0]:].tolist() == ref_desc[got[0]:].tolist()
    kept = [j for j, d in zip(live[at:].tolist(), desc[at:].tolist()) if d <= limit and not skip[rows[j]]]
    assert mine[got[0]:got[1]].tolist() == kept


def test_bounds_are_tight_enough_to_filter():
    """On ordinary positions the interval is a hair wide (relative width below 1e-7); bitmex's knows the
    bankruptcy price to a tick when the balance puts it on a tick exactly (here 10,000 ticks from the mark):
    within 1 / 10,000."""
    p = Portfolio(InstrumentTable([INSTRUMENT]))
    for i in range(1, 50):
        a = p.add_account(1_000 * USDT * i)
        p.add_position(a, 0, -i * 10, -i * 10 * 10_000)  # shorts at 100.00
    for ranking in ("binance", "bybit", "bitmex"):
        lo, hi = getattr(adlbounds, ranking)(p, np.flatnonzero(p.pos_qty_lots != 0), 0, np.array([9_000], np.int64))
        width = 1.01e-4 if ranking == "bitmex" else 1e-7
        assert len(lo) == 49 and (lo > 0).all() and ((hi - lo) / lo < width).all(), ranking


def test_the_bitmex_ranking_runs_over_the_mirror(monkeypatch):
    """Each part's bankruptcy price comes from the mirror (``bounds.bitmex``): the queue gives the oracle's order
    without falling back to it."""
    ex = crowd("bitmex", 40, seed=1)
    assert ex.monitor.indexed
    expected = {long: deleveraging.ranked(ex.risk, SYMBOL, long, ex.profile.adl_ranking, 0) for long in (True, False)}
    monkeypatch.setattr(adlqueue, "ranked", lambda *args: pytest.fail("the queue fell back to the oracle"))
    for long in (True, False):
        assert list(ex.liquidation.adl_queue.order(SYMBOL, long, ex.profile.adl_ranking, 0, set(), 1)) == expected[long]



@pytest.mark.parametrize("profile", [p for p in QUEUED_PROFILES if p != "bitmex"])  # (its fund takes every position:
def test_random_liquidation_streams_are_the_same_with_and_without_the_mirror(profile):  # no ADL in these streams)
    """Orders, marks, funding, takeovers and ADL mixed (tests.streams.liquidation_commands): the exchange
    ranking over the mirror gives the same events and state as the one ranking with the oracle."""
    instruments = [make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)]
    runs = []
    for index_from in (0, math.inf):
        ex = Exchange(instruments, profile=profile, liquidation=LiquidationConfig(fund=FundLimits(max_position_lots=2)))
        ex.monitor.index_from_accounts = index_from
        runs.append([ex.apply(c) for c in liquidation_commands(3, 3_000, (SYMBOL, OTHER))] + [ex.state_hash()])
    assert runs[0] == runs[1]
    assert sum(isinstance(e, ADLFill) for events in runs[0][:-1] for e in events) > 10


@pytest.mark.parametrize("implementation", ["python", "cython"] if _impl.core else ["python"])
@pytest.mark.parametrize("profile", [p for p in QUEUED_PROFILES if p != "dydx"])
def test_adl_lights_from_the_queue_are_the_full_rankings(profile, implementation, monkeypatch):
    """``Exchange.adl_quantile`` counts the positions ranked ahead with the queue's bounds
    (``ADLQueue.ahead_of``): for every user position of both sides, between the marks of a crash and recovery
    (liquidations, takeovers, ADL), the positions it finds ahead are exactly those before it in the full ranking
    (``ranked``, every user position scored; ties among the twin traders by key), the user count is the
    ranking's, and the lights equal those of the full ranking (bitmex's quantity steps, the others' user-count
    quintiles)."""
    ex = crowd(profile, 150, seed=9, implementation=implementation)
    queue, calls = ex.liquidation.adl_queue, []
    ahead_of = queue.ahead_of

    def counted(*args):
        found = ahead_of(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(queue, "ahead_of", counted)
    ranking, seed, indicator = ex.profile.adl_ranking, ex.liquidation.config.adl_seed, ex.profile.adl_indicator
    for mark in marks_down_and_up()[::6]:
        ex.apply(SetMarkPrice(SYMBOL, mark))
        orders = {long: [k for k in deleveraging.ranked(ex.risk, SYMBOL, long, ranking, seed) if k[0] < 2**62]
                  for long in (True, False)}
        for account_id in sorted(ex.ledger.holders[SYMBOL]):
            for side, position in ex.ledger.accounts[account_id].positions_in(SYMBOL):
                if account_id < 2**62:
                    key, users = (account_id, side), orders[position.lots > 0]
                    n, count, ahead = ahead_of(SYMBOL, position.lots > 0, ranking, key)
                    assert sorted(ahead) == sorted(users[:users.index(key)]) and count == len(users), (mark, key)
                    assert ahead_of(SYMBOL, position.lots > 0, ranking, key, False) == (n, count, None) and n == len(ahead)
                    assert ex.adl_quantile(account_id, SYMBOL, side) == deleveraging.quantile(
                        ex.risk, SYMBOL, key, ranking, seed, indicator), (mark, key)
    assert len(calls) > 500 and all(calls)  # every answer came from the queue


@pytest.mark.parametrize("profile", ["binance", "bybit", "bitmex"])
def test_positions_ahead_break_exact_ties_by_key(profile):
    """300 longs in groups of three equal accounts (the same deposit, leverage and fill): equal non-zero scores
    whose bounds straddle each other, so only the key decides; ``ahead_of`` finds the positions before each one
    in the full ranking."""
    ex = Exchange([make_instrument()], profile=profile)
    ex.monitor.index_from_accounts = 0
    maker = 10_000
    ex.apply(Deposit(maker, 10**9 * USDT))
    ex.apply(SetMarkPrice(SYMBOL, 10_000))
    for group in range(100):
        for account_id in range(3 * group + 1, 3 * group + 4):
            ex.apply(Deposit(account_id, (200 + 37 * group) * USDT))
            ex.apply(SetLeverage(account_id, SYMBOL, 2 + group % 20))
            ex.apply(PlaceOrder(maker, SYMBOL, Side.SELL, 1 + group % 7, 10_000))
            ex.apply(PlaceOrder(account_id, SYMBOL, Side.BUY, 1 + group % 7, 10_000, tif=TimeInForce.IOC))
    ex.apply(SetMarkPrice(SYMBOL, 10_400))
    ranking = ex.profile.adl_ranking
    users = [k for k in deleveraging.ranked(ex.risk, SYMBOL, True, ranking, 0) if k[0] < 2**62]
    assert len(users) == 300
    for at, key in enumerate(users):
        n, count, ahead = ex.liquidation.adl_queue.ahead_of(SYMBOL, True, ranking, key)
        assert sorted(ahead) == sorted(users[:at]) and count == 300 and n == at, key
        assert ex.liquidation.adl_queue.ahead_of(SYMBOL, True, ranking, key, False) == (at, 300, None)
