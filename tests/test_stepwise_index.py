"""The indexes under a stepwise MM (bitmex: the whole position at its step's rate, jumping at each cap).

- :func:`exchange.accounts.margin.convex_bounds`: hand-derived bounds of a small table; on random stepwise tables
  the lower bound ≤ the stepwise MM ≤ the upper bound at every notional probed (each cap, one unit either side,
  random points), both bounds convex; convex tables are their own bounds; tables it cannot bound give None.
- The bands drawn with the bounds are conservative: at random prices inside every band of a cross account (its
  box, corners included) it is not liquidatable; inside a not-warned part's box it is not warned, inside a
  warned part's box it is warned (exact rule, the full sweep's values).
- Whether a table can be indexed: stepwise with MM on the entry value (bitmex) yes, stepwise at the mark no.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange.accounts import margin as M
from exchange.accounts.storage import InstrumentTable, Portfolio
from exchange.clearing import sweep as S
from exchange.enums import MarginMode, PositionSide
from exchange.liquidation.index import ALWAYS, DOWN, UP, cross_entries_reference, warn_entries_reference
from exchange.units import E8
from tests.test_sweep import btc, config_table, instruments, random_marks, random_portfolio

USDT = 10**8


def exact8(rows, notional: int) -> int:
    """10⁸ × the unrounded MM of ``notional`` under ``rows`` (its bracket's line)."""
    row = rows[M.bracket_index(rows, notional)]
    return notional * row.mmr_e8 - row.cum_x8


def test_bounds_of_a_small_stepwise_table_by_hand():
    # 0.4 % to 50,000, 0.5 % to 250,000, 1 % above (units of 1; rates ×10⁸)
    rows = M.derive_brackets([(50_000, 400_000, 125), (250_000, 500_000, 100), (10**9, 1_000_000, 50)], stepwise=True)
    upper, lower = M.convex_bounds(rows)
    # lower: the marginal table of the same rates (cum 0, 50,000 × 0.1 %, + 250,000 × 0.5 %)
    assert [r.mmr_e8 for r in lower] == [400_000, 500_000, 1_000_000]
    assert [r.cum_x8 for r in lower] == [0, 50_000 * 100_000, 50_000 * 100_000 + 250_000 * 500_000]
    # upper: from 0 to the right limit at 50,000 (50,000 × 0.5 % = 250): rate 0.5 %; then to 250,000 × 1 % = 2,500:
    # (2,500 − 250) / 200,000 = 1.125 %; past the last cap max(1.125 %, 1 %)
    assert [r.mmr_e8 for r in upper] == [500_000, 1_125_000, 1_125_000]
    assert exact8(upper, 50_000) == 250 * E8 and exact8(upper, 250_000) == 2_500 * E8
    # the stepwise MM jumps from 200 to 250.005 one unit past the first cap; the upper bound is there already
    assert exact8(rows, 50_000) == 200 * E8 and exact8(rows, 50_001) == 50_001 * 500_000
    assert exact8(upper, 50_001) >= exact8(rows, 50_001) > exact8(lower, 50_001)


def test_convex_tables_are_their_own_bounds_and_unboundable_tables_none():
    rows = M.derive_brackets(btc().brackets)
    upper, lower = M.convex_bounds(rows)
    assert upper is rows and lower is rows
    one = M.derive_brackets([(10**9, 500_000, 100)], stepwise=True)
    assert M.convex_bounds(one) == (one, one)  # one bracket: stepwise is marginal
    above = (M.BracketRow(0, 100, 1_000_000, 100, -5 * E8),)  # MM(0) = 5 > 0: no bound through 0
    assert M.convex_bounds(above) is None
    falling = (M.BracketRow(0, 100, 2_000_000, 100, 0), M.BracketRow(100, 10**9, 1_000_000, 50, 0))
    assert M.convex_bounds(falling) is None
    high_cum = (M.BracketRow(0, 100, 1_000_000, 100, 0), M.BracketRow(100, 10**9, 2_000_000, 50, 10**9 * E8))
    assert M.convex_bounds(high_cum) is None  # the second line lies below the marginal one


@st.composite
def stepwise_tables(draw):
    n = draw(st.integers(1, 8))
    caps = sorted(draw(st.sets(st.integers(1, 10**15), min_size=n, max_size=n)))
    rates = sorted(draw(st.lists(st.integers(0, E8 - 1), min_size=n, max_size=n)))
    return M.derive_brackets([(c, r, 1) for c, r in zip(caps, rates)], stepwise=True)


@settings(max_examples=300, deadline=None)
@given(stepwise_tables(), st.lists(st.integers(0, 2 * 10**15), max_size=20))
def test_bounds_hold_at_every_cap_and_between(rows, extra):
    upper, lower = M.convex_bounds(rows)
    assert M.convex_brackets(upper) and M.convex_brackets(lower)
    assert [r.cap_units for r in upper] == [r.cap_units for r in rows] == [r.cap_units for r in lower]
    points = set(extra) | {0}
    for row in rows:
        points |= {row.cap_units - 1, row.cap_units, row.cap_units + 1}
    for n in points:
        if n >= 0:
            assert exact8(lower, n) <= exact8(rows, n) <= exact8(upper, n), n


def test_which_tables_the_indexes_follow():
    insts = instruments()
    stepwise = [M.derive_brackets(i.brackets, stepwise=True) for i in insts]
    assert InstrumentTable(insts).indexable
    assert InstrumentTable(insts, stepwise, isolated_maintenance=M.IsolatedMaintenance.ENTRY).indexable
    # at the mark, a stepwise isolated position can be liquidatable just past a cap and safe further on
    assert not InstrumentTable(insts, stepwise).indexable
    zero_first = [btc(brackets=[("1000", "0", 100), ("1000000000", "0.01", 50)], max_leverage=100)]
    assert not InstrumentTable(zero_first, trigger=M.LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE).indexable


def box(entries, symbols, table):
    """{symbol: (lo, hi)} of one part's entries (the price range outside which an entry fires)."""
    out = {}
    for s in symbols:
        lo, hi = 1, int(table.max_price_ticks[s])
        for es, d, v in entries:
            if es == s and d == DOWN:
                lo = max(lo, v + 1)
            elif es == s and d == UP:
                hi = min(hi, v - 1)
        out[s] = (lo, hi)
    return out


def points_in(bounds, marks, rng, n):
    """Corners of the box, then random points inside it (symbols outside it keep their marks)."""
    symbols = sorted(bounds)
    for corner in range(1 << len(symbols)):
        p = marks.copy()
        for i, s in enumerate(symbols):
            p[s] = bounds[s][1] if corner >> i & 1 else bounds[s][0]
        yield p
    for _ in range(n):
        p = marks.copy()
        for s in symbols:
            p[s] = int(rng.integers(bounds[s][0], bounds[s][1] + 1))
        yield p


def near_the_edge(rng, n_accounts: int, level_e8: int = E8):
    """Cross accounts holding 1–3 positions in two BTC-like symbols (the default tiers, stepwise) at notionals
    spread over every bracket (1,000 to 300,000,000 USDT, log-uniform), with wallets that put their balance between
    0.8 and 1.6 times their stepwise MM ÷ ``level``: many sit close to a cap and close to the edge."""
    insts = [btc("AUSDT"), btc("BUSDT")]
    p = Portfolio(config_table(insts, "stepwise-entry"))
    marks = np.array([5_000_000, 7_000_000], np.int64)  # 50,000 and 70,000 USDT; K = 1,000 units per tick·lot
    rows = p.table.rows
    for _ in range(n_accounts):
        a = p.add_account(0, capacity=3)
        upnl = mm = 0
        for s in rng.choice(2, int(rng.integers(1, 4))):
            notional = int(10 ** rng.uniform(3, 8.5)) * USDT
            q = max(notional // (int(marks[s]) * 1000), 1) * (1 if rng.random() < 0.5 else -1)
            entry = q * int(marks[s] * rng.uniform(0.97, 1.03))
            p.add_position(a, int(s), q, entry, side=PositionSide.LONG if q > 0 else PositionSide.SHORT)
            upnl += (q * int(marks[s]) - entry) * 1000
            mm += M.maintenance_margin(rows[s], abs(q) * int(marks[s]) * 1000)
        p.set_wallet(a, int(mm * E8 // level_e8 * rng.uniform(0.8, 1.6)) - upnl)
    return p, marks


@pytest.mark.parametrize("seed", range(4))
def test_liquidation_bands_of_stepwise_accounts_are_safe_inside(seed):
    rng = np.random.default_rng(900 + seed)
    p, marks = near_the_edge(rng, 200) if seed % 2 else (None, None)
    if p is None:
        p = random_portfolio(rng, 150, hedge=True, config="stepwise-entry")
        marks = random_marks(rng, p)
    checked = 0
    for a in range(p.n_accounts):
        entries, liq = cross_entries_reference(p, marks, a)
        if liq or not entries or any(v == ALWAYS for _, _, v in entries):
            continue
        bounds = box(entries, {s for s, _, _ in entries}, p.table)
        for prices in points_in(bounds, marks, rng, 6):
            assert S.sweep_reference(p, prices, S.FLAGS).acct_liq[a] == 0, (a, prices)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("level_e8", [100_000_000, 80_000_000])
@pytest.mark.parametrize("seed", range(3))
def test_warning_bands_of_stepwise_accounts_keep_their_state_inside(seed, level_e8):
    rng = np.random.default_rng(950 + seed)
    p, marks = near_the_edge(rng, 150, level_e8) if seed % 2 == 0 else (None, None)
    if p is None:
        p = random_portfolio(rng, 120, hedge=True, config="stepwise-entry")
        marks = random_marks(rng, p)
    c = level_e8 - 1
    seen = {True: 0, False: 0}
    for a in range(p.n_accounts):
        legs: dict = {}
        for j in p.slots_of(a):
            if p.pos_mode[j] != MarginMode.ISOLATED and p.pos_qty_lots[j] != 0:
                legs.setdefault(int(p.pos_symbol[j]), []).append((int(p.pos_qty_lots[j]), int(p.pos_entry_cost[j])))
        if not legs:
            continue
        entries, warned = warn_entries_reference(p, marks, level_e8, int(p.acct_wallet_units[a]), legs)
        if any(v == ALWAYS for _, _, v in entries):
            continue
        for prices in points_in(box(entries, legs, p.table), marks, rng, 4):
            full = S.sweep_reference(p, prices, S.VALUES)
            balance, mm = int(full.acct_equity[a]), int(full.acct_mm[a])
            assert (balance <= 0 or c * balance < E8 * mm) == warned, (a, prices)
            seen[warned] += 1
    assert seen[True] > 20 and seen[False] > 20
