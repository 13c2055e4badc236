"""Margin mathematics (exchange.accounts.margin): rules §2/§5 and the worked examples of §11.

Expected values are derived by hand from the rulebook (arithmetic shown in comments), never by the code.
Units: K = tick 0.01 × lot 0.001 × 10⁸ = 1,000 units per tick·lot; 1 USDT = 10⁸ units.
"""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange.accounts import margin as M
from exchange.enums import MarginMode
from exchange.accounts.storage import Portfolio
from exchange.spec import Instrument
from exchange.clearing.sweep import sweep_reference

USDT = 10**8
K = 1000  # tick 0.01 × lot 0.001 × 1e8


def usdt(x) -> int:
    return int(Fraction(str(x)) * USDT)


def inst(symbol="BTCUSDT", brackets=None, **kw):
    params = dict(tick_size="0.01", lot_size="0.001", max_price="1000000", max_qty="1000", min_notional="0")
    params.update(kw)
    if brackets is not None:
        params["brackets"] = brackets
        params.setdefault("max_leverage", brackets[0][2])
    return Instrument.linear(symbol, **params)


EX2 = [("50000", "0.004", 125), ("250000", "0.005", 100), ("1000000", "0.01", 50)]
EX3 = [("1000", "0.02", 50), ("2000", "0.025", 40), ("3000", "0.03", 33), ("4000", "0.035", 28), ("5000", "0.04", 25)]
MULTI = [("1000", "0.01", 50), ("5000", "0.02", 20), ("20000", "0.05", 10), ("100000", "0.1", 5), ("10000000", "0.2", 2)]


# -- rules §11 example 2: cum of brackets ---------------------------------------------------------------
def test_example2_cum_and_mm():
    rows = M.derive_brackets(inst(brackets=EX2).brackets)
    # cum2 = 50,000 × (0.5% − 0.4%) = 50; cum3 = 250,000 × (1% − 0.5%) + 50 = 1,300
    assert [r.cum_units for r in rows] == [0, usdt(50), usdt(1300)]
    assert all(r.cum_rem_x8 == 0 for r in rows)
    # MM(500,000) = 500,000 × 1% − 1,300 = 3,700
    assert M.maintenance_margin(rows, usdt(500_000)) == usdt(3700)
    # 264,000 lies in (250k, 1M] → MMR 1%
    assert rows[M.bracket_index(rows, usdt(264_000))].mmr_e8 == 1_000_000
    # caps are inclusive: 250,000 is still bracket 2 (0.5%); continuity: 250,000 × 0.5% − 50 = 1,200 either way
    assert rows[M.bracket_index(rows, usdt(250_000))].mmr_e8 == 500_000
    assert M.maintenance_margin(rows, usdt(250_000)) == usdt(1200)
    assert M.maintenance_margin(rows, usdt(250_000) + 1) == usdt(1200) + 1  # 1 unit × 1% rounds up to 1
    assert M.max_leverage(rows, usdt(264_000)) == 50


# -- rules §11 example 3: marginal tiers ------------------------------------------------------------------
def test_example3_tiered_mm():
    rows = M.derive_brackets(inst(brackets=EX3).brackets)
    # 1,000×2% + 1,000×2.5% + 1,000×3% + 500×3.5% = 20 + 25 + 30 + 17.5 = 92.5
    assert M.maintenance_margin(rows, usdt(3500)) == usdt("92.5")
    # cum of the 4th tier = 1000×0.5% + 2000×0.5% + 3000×0.5% = 30
    assert rows[3].cum_units == usdt(30)


def test_mm_rounds_up_and_im():
    rows = M.derive_brackets(inst(brackets=EX2).brackets)
    assert M.maintenance_margin(rows, 1) == 1  # 1 unit × 0.4% = 0.004 → 1
    assert M.maintenance_margin(rows, 0) == 0
    assert M.initial_margin(usdt(1000), 20) == usdt(50)
    assert M.initial_margin(7, 2) == 4  # ceil(3.5)
    with pytest.raises(ValueError):
        M.initial_margin(1, 0)


def test_fractional_cum_is_exact():
    # cap 1 unit, then +0.5% → cum = 1 × 500,000 / 1e8 = 0.005 units: kept exactly as cum_x8
    rows = M.derive_brackets([(1, 400_000, 10), (10**12, 900_000, 10)])
    assert rows[1].cum_x8 == 500_000 and rows[1].cum_units == 0 and rows[1].cum_rem_x8 == 500_000
    # MM(1000) = ceil((1000 × 0.9% − 0.005)) = ceil(8.995) = 9
    assert M.maintenance_margin(rows, 1000) == 9


def test_upnl_and_ratio():
    # long 20 lots (0.02 BTC) bought at 50,000.00 (5,000,000 ticks): entry cost 100,000,000
    assert M.unrealized_pnl(20, 100_000_000, 5_100_000, K) == usdt(20)  # +1,000 × 0.02
    assert M.unrealized_pnl(-20, -100_000_000, 5_100_000, K) == -usdt(20)
    assert M.margin_ratio_e8(usdt(1), usdt(4), True) == 25_000_000  # 25 %
    assert M.margin_ratio_e8(1, 3, True) == 33_333_334  # ceil
    assert M.margin_ratio_e8(5, 0, True) == M.RATIO_INF
    assert M.margin_ratio_e8(5, -3, True) == M.RATIO_INF
    assert M.margin_ratio_e8(5, 10, False) == 0
    assert M.is_liquidatable(5, 5, True) and not M.is_liquidatable(6, 5, True) and not M.is_liquidatable(0, 5, False)


# -- rules §11 example 1: liquidation price to the cent ---------------------------------------------------
def test_example1_liquidation_price():
    rows = M.derive_brackets([(10**18, 400_000, 125)])  # MMR 0.4 %, cum 0
    wb, legs = usdt(500), [(20, 100_000_000)]  # long 0.02 at 50,000
    # LP = (500 − 0.02 × 50,000) / (0.02 × 0.004 − 0.02) = 500 / 0.01992 = 25,100.4016… USDT
    #    = 625,000,000 / 249 ticks of 0.01
    assert M.liquidation_price_exact(wb, legs, K, rows) == Fraction(625_000_000, 249)
    assert M.liquidation_price_ticks(wb, legs, K, rows) == 2_510_040  # 25,100.40 to the cent
    assert M.liquidation_price_display_ticks(wb, legs, K, rows) == 2_510_041  # safe side (up) for display
    # at 25,100.40: balance 500 − 24,899.60 × 0.02 = 2.008; MM = 502.008 × 0.4 % = 2.008032 → liquidatable
    assert M.balance_minus_mm(wb, legs, K, rows, 2_510_040) == usdt("2.008") - usdt("2.008032")
    # at 25,100.41: balance 2.0082 > MM 2.0080328 (rounded up to 2.00803280) → safe
    assert M.balance_minus_mm(wb, legs, K, rows, 2_510_041) == usdt("2.0082") - usdt("2.0080328")


def test_example1_through_the_sweep():
    i = inst(brackets=[("1000000000", "0.004", 125)], max_leverage=125)
    p = Portfolio([i])
    a = p.add_account(usdt(500))
    p.add_position(a, 0, 20, 100_000_000, leverage=20)
    assert sweep_reference(p, [2_510_040]).acct_liq[a] == 1
    assert sweep_reference(p, [2_510_041]).acct_liq[a] == 0


# -- rules §11 example 9: isolated margin added ----------------------------------------------------------
def test_example9_isolated_margin_moves_lp():
    rows = M.derive_brackets([(10**18, 0, 125)])  # MMR 0, no fees
    # long 1 BTC (1,000 lots) at 10,000 (1,000,000 ticks) at 20x → IM = 10,000 / 20 = 500
    assert M.initial_margin(1000 * 1_000_000 * K, 20) == usdt(500)
    legs = [(1000, 1_000_000_000)]
    # LP = 10,000 − 500 / 1 = 9,500
    assert M.liquidation_price_exact(usdt(500), legs, K, rows) == 950_000
    assert M.liquidation_price_ticks(usdt(500), legs, K, rows) == 950_000
    # + 1,000 margin → 10,000 − 1,500 = 8,500
    assert M.liquidation_price_exact(usdt(1500), legs, K, rows) == 850_000
    # buy 1 more at 10,000 at 20x (+500 margin): size 2, cost 20,000, margin 2,000 → (20,000 − 2,000) / 2 = 9,000
    legs2 = [(2000, 2_000_000_000)]
    assert M.liquidation_price_exact(usdt(2000), legs2, K, rows) == 900_000
    assert M.liquidation_price_ticks(usdt(2000), legs2, K, rows) == 900_000
    # with MMR 0 the bankruptcy price is the liquidation price
    assert M.bankruptcy_price_exact(usdt(2000), legs2, K) == 900_000


# -- rules §11 example 14: leverage arithmetic ---------------------------------------------------------
def test_example14_leverage_arithmetic():
    rows = M.derive_brackets(inst().brackets)  # default BTC tiers: 0.4 % below 50k
    # 5,000 at 5x → 25,000 notional: 0.5 BTC (500 lots) at 50,000 (5,000,000 ticks)
    q, e = 500, 500 * 5_000_000
    assert 500 * 5_000_000 * K == usdt(25_000)
    assert M.initial_margin(usdt(25_000), 5) == usdt(5000)
    # +20 % → 60,000: uPnL = 0.5 × 10,000 = +5,000 (100 % on margin)
    assert M.unrealized_pnl(q, e, 6_000_000, K) == usdt(5000)
    # bankruptcy at 50,000 − 5,000 / 0.5 = 40,000 (−20 %): the most an isolated position can lose is 5,000
    assert M.bankruptcy_price_exact(usdt(5000), [(q, e)], K) == 4_000_000
    # the liquidation price is above it: (25,000 − 5,000) / (0.5 × (1 − 0.4 %)) = 40,160.64… → liquidated first
    lp = M.liquidation_price_exact(usdt(5000), [(q, e)], K, rows)
    assert lp == Fraction(20_000 * 100, Fraction(1992, 1000) / 4)  # 20,000 / 0.498 USDT in ticks
    assert lp > 4_000_000


# -- bankruptcy rounding ----------------------------------------------------------------------------
def test_bankruptcy_rounding_against_the_account():
    # long 3 lots, cost 3,000,001 ticks, balance 0 → BP = 1,000,000.33… → a long sells: rounds down
    assert M.bankruptcy_price_ticks(0, [(3, 3_000_001)], K) == 1_000_000
    # short: BP = 1,000,000.33… → a short buys: rounds up
    assert M.bankruptcy_price_ticks(0, [(-3, -3_000_001)], K) == 1_000_001
    assert M.bankruptcy_price_exact(0, [(3, 3_000_000), (-3, -2_000_000)], K) is None  # flat hedge


def test_no_liquidation_price():
    rows = M.derive_brackets(inst().brackets)
    # long 1 lot at 1,000 with 10× its notional as margin → LP ≤ 0 → None
    assert M.liquidation_price_exact(usdt(10), [(1, 100_000)], K, rows) is None
    assert M.liquidation_price_ticks(usdt(10), [(1, 100_000)], K, rows) is None
    with pytest.raises(ValueError):
        M.liquidation_price_exact(0, [(0, 0)], K, rows)


def test_hedge_mode_band():
    rows = M.derive_brackets([(10**18, 1_000_000, 50)])  # MMR 1 %
    # LONG 2 lots at 100 (cost 200) and SHORT 1 lot at 100 (cost −100), K = 1, wallet 50:
    # B(P) = 50 + (2P − 200) + (−P + 100) = P − 50;  MM = 3P × 1 % → safe ⇔ P − 50 > 0.03P ⇔ P > 50 / 0.97
    down, up = M.liquidation_band_exact(50, [(2, 200), (-1, -100)], 1, rows)
    assert down == Fraction(5000, 97) and up is None
    assert M.liquidation_price_exact(50, [(2, 200), (-1, -100)], 1, rows) == Fraction(5000, 97)
    # flat hedge: B = 50, MM = 0.02P → liquidatable above 2,500
    assert M.liquidation_band_exact(50, [(1, 100), (-1, -100)], 1, rows) == (None, 2500)


# -- properties: the analytic price is where the integer rule flips ----------------------------------
def _flip_check(p, marks, sym, long, T, flag_of):
    maxp = int(p.table.max_price_ticks[sym])
    def flag(mark):
        m = list(marks)
        m[sym] = mark
        return flag_of(sweep_reference(p, m, 0))
    if T is None:
        assert long and not flag(1)
        return
    if long:
        if T <= maxp:
            assert flag(T)
        if T + 1 <= maxp:
            assert not flag(T + 1)
    else:
        if 1 <= T <= maxp:
            assert flag(T)
        if 1 <= T - 1 <= maxp:
            assert not flag(T - 1)


position = st.tuples(
    st.integers(1, 20_000),  # lots
    st.integers(10_000, 10_000_000),  # entry price ticks (100 .. 100,000 USDT)
    st.booleans(),  # long?
)


@settings(max_examples=150, deadline=None)
@given(position, st.integers(0, 200_000), st.integers(10_000, 20_000_000))
def test_isolated_lp_is_where_the_sweep_flips(pos, margin_usdt_e2, mark):
    lots, price, long = pos
    q = lots if long else -lots
    e = q * price
    i = inst(brackets=MULTI, max_qty="100")
    p = Portfolio([i])
    a = p.add_account(0)
    margin = margin_usdt_e2 * USDT // 100
    j = p.add_position(a, 0, q, e, mode=MarginMode.ISOLATED, iso_margin_units=margin)
    rows = p.table.rows[0]
    T = M.liquidation_price_ticks(margin, [(q, e)], K, rows, mark)
    lp = M.liquidation_price_exact(margin, [(q, e)], K, rows, mark)
    _flip_check(p, [mark], 0, long, T, lambda r: r.pos_liq[j])
    if T is not None and lp is not None:
        assert abs(T - lp) <= 1  # the integer rule moves the root by less than one unit of money
    # the bracket re-iteration agrees with the convex envelope (max/min over bracket lines)
    down, up = M.liquidation_band_exact(margin, [(q, e)], K, rows)
    assert lp == (down if long else up)


@settings(max_examples=100, deadline=None)
@given(position, position, st.integers(-50_000, 200_000), st.integers(10_000, 20_000_000), st.integers(10_000, 20_000_000))
def test_cross_lp_is_where_the_sweep_flips(pos1, pos2, wallet_usdt, mark1, mark2):
    l1, p1, long1 = pos1
    l2, p2, long2 = pos2
    q1, q2 = (l1 if long1 else -l1), (l2 if long2 else -l2)
    p = Portfolio([inst("AUSDT", brackets=MULTI, max_qty="100"), inst("BUSDT", brackets=MULTI, max_qty="100")])
    wallet = wallet_usdt * USDT
    a = p.add_account(wallet)
    p.add_position(a, 0, q1, q1 * p1)
    p.add_position(a, 1, q2, q2 * p2)
    rows = p.table.rows
    # rules §5: WB − TMM1 + UPNL1 with the other cross position at its mark
    upnl1 = M.unrealized_pnl(q2, q2 * p2, mark2, K)
    tmm1 = M.maintenance_margin(rows[1], M.notional_units(q2, mark2, K))
    bal = wallet - tmm1 + upnl1
    T = M.liquidation_price_ticks(bal, [(q1, q1 * p1)], K, rows[0], mark1)
    lp = M.liquidation_price_exact(bal, [(q1, q1 * p1)], K, rows[0], mark1)
    _flip_check(p, [mark1, mark2], 0, long1, T, lambda r: r.acct_liq[a])
    if T is not None and lp is not None:
        assert abs(T - lp) <= 1


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(50_000, 5_000_000), st.integers(0, 100_000))
def test_hedge_band_matches_integer_rule(lots_long, lots_short, price, wallet_usdt):
    rows = M.derive_brackets(inst(brackets=MULTI).brackets)
    legs = [(lots_long, lots_long * price), (-lots_short, -lots_short * price)]
    bal = wallet_usdt * USDT
    down, up = M.liquidation_band_exact(bal, legs, K, rows)
    # inside the exact band the integer rule never liquidates by more than the rounding of two MMs (2 units)
    for P in (price // 2, price, price * 2):
        real = Fraction(M.balance_minus_mm(bal, legs, K, rows, P))
        inside = (down is None or P > down) and (up is None or P < up)
        if inside:
            assert real > -2
