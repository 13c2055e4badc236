"""Full sweep (exchange.clearing.sweep) and storage (exchange.accounts.storage): rules §4/§5 cases, bounds, and the
differential reference ⇔ numpy ⇔ compiled on random portfolios including values at the int64 bounds."""
import numpy as np
import pytest

from exchange.accounts import margin as M
from exchange.clearing import sweep as S
from exchange.enums import MarginMode, PositionSide
from exchange.accounts.margin import IsolatedMaintenance, LiquidationTrigger
from exchange.accounts.storage import ACCOUNT_FIELDS, POSITION_FIELDS, InstrumentTable, Portfolio, PortfolioError
from exchange.spec import Instrument
from exchange.units import MAX_ABS_VALUE

USDT = 10**8
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS
COMPILED = S._kernel is not None
needs_clearing = pytest.mark.skipif(not COMPILED, reason="compiled clearing kernel not active (EXCHANGE_PUREPYTHON=1)")
FIELDS = ("pos_liq", "acct_liq", "pos_equity", "pos_mm", "pos_ratio_e8", "acct_equity", "acct_mm", "acct_ratio_e8")
# the profiles' liquidation rules as table settings (rules §10): binance, hyperliquid, dydx, bybit, bitmex (stepwise
# rows), and a combination no built-in profile has (strict with the entry value)
CONFIGS = {
    "at": {},
    "below": dict(trigger=LiquidationTrigger.BELOW_MAINTENANCE),
    "below-positive": dict(trigger=LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE),
    "entry": dict(isolated_maintenance=IsolatedMaintenance.ENTRY),
    "entry-below-positive": dict(isolated_maintenance=IsolatedMaintenance.ENTRY,
                                 trigger=LiquidationTrigger.BELOW_POSITIVE_MAINTENANCE),
    "stepwise-entry": dict(isolated_maintenance=IsolatedMaintenance.ENTRY, stepwise=True),  # bitmex's rows
}


def config_table(insts, config: str) -> InstrumentTable:
    """The table of ``insts`` under one of :data:`CONFIGS` (``stepwise``: every bracket's cum 0, the whole position
    at its step's rate)."""
    settings = dict(CONFIGS[config])
    rows = [M.derive_brackets(i.brackets, stepwise=True) for i in insts] if settings.pop("stepwise", False) else None
    return InstrumentTable(insts, rows, **settings)


def btc(symbol="BTCUSDT", **kw):
    params = dict(tick_size="0.01", lot_size="0.001", max_price="1000000", max_qty="1000", min_notional="0")
    params.update(kw)
    return Instrument.linear(symbol, **params)


def instruments():
    """A mix: BTC-like (K = 1,000), a coarse one (K = 10⁸), a fine one whose sizes pass 2³⁷ lots (K = 1),
    and a multi-tier one with a fractional cum."""
    return [
        btc("AUSDT"),
        Instrument.linear("BUSDT", tick_size="1", lot_size="1", min_price="1", max_price="1000000", min_qty="1",
                          max_qty="40000", min_notional="0"),
        Instrument.linear("CUSDT", tick_size="0.00000001", lot_size="1", min_price="0.00000001", max_price="0.01",
                          min_qty="1", max_qty="4000000000000",
                          min_notional="0", brackets=[("1000", "0.01", 50), ("100000000", "0.05", 10)], max_leverage=50),
        btc("DUSDT", brackets=[("0.00000003", "0.001", 100), ("7", "0.0123457", 50), ("1000", "0.05", 10),
                               ("100000000", "0.33", 3)], max_leverage=100),
    ]


def random_portfolio(rng, n_accounts=300, max_per=6, extreme=False, hedge=False, config="at", insts=None):
    """Seeded random portfolio within the bounds. ``extreme`` scales sizes toward the exposure limit; ``config``
    names the table's liquidation rule (:data:`CONFIGS`)."""
    insts = insts or instruments()
    p = Portfolio(config_table(insts, config))
    t = p.table
    for _ in range(n_accounts):
        budget = MAX_ABS_VALUE if extreme else 10**15
        wallet = int(rng.integers(-budget // 8, budget // 4))
        a = p.add_account(wallet, capacity=int(rng.integers(1, 4)))
        room = MAX_ABS_VALUE - abs(wallet)
        for _ in range(int(rng.integers(0, max_per + 1))):
            s = int(rng.integers(0, len(insts)))
            maxp, k = int(t.max_price_ticks[s]), int(t.k_units[s])
            share = room // 3 if extreme else min(room // 3, 10**14)
            qmax = max(share // (maxp * k), 0)
            if qmax == 0:
                continue
            lots = int(rng.integers(1, qmax + 1)) if rng.random() < 0.7 else int(rng.integers(1, min(qmax, 1000) + 1))
            if rng.random() < 0.1:
                lots = 0
            price = int(rng.integers(1, maxp + 1)) if rng.random() < 0.3 else int(rng.integers(maxp // 100 + 1, maxp // 10 + 2))
            q = lots if rng.random() < 0.5 else -lots
            e = q * price
            mode = ISO if rng.random() < 0.5 else CROSS
            used = max(abs(q) * maxp, abs(e)) * k
            marg = 0
            if mode == ISO:
                cap = max((room - used) // 4, 1)
                marg = int(rng.integers(-cap // 10, cap))
            side = PositionSide.BOTH
            if hedge and mode == CROSS and q != 0:
                side = PositionSide.LONG if q > 0 else PositionSide.SHORT
            p.add_position(a, s, q, e, mode=mode, iso_margin_units=marg, side=side)
            room -= used + abs(marg)
    return p


def random_marks(rng, p, extreme=False):
    t = p.table
    out = []
    for s in range(t.n_symbols):
        maxp = int(t.max_price_ticks[s])
        r = rng.random()
        if extreme and r < 0.2:
            out.append(maxp)
        elif extreme and r < 0.3:
            out.append(1)
        else:
            out.append(int(rng.integers(maxp // 100 + 1, maxp // 10 + 2)))
    return np.array(out, np.int64)


def assert_same(a, b, label):
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert np.array_equal(x, y), f"{label}: {f} differs at {np.flatnonzero(x != y)[:5]}"
    assert (a.n_liq_positions, a.n_liq_accounts) == (b.n_liq_positions, b.n_liq_accounts)


# -- rulebook cases --------------------------------------------------------------------------------------
def test_example13_cross_offset():
    """10,000 wallet, cross long A and short B; A loses 12,000, B gains 15,000 → nobody is liquidated,
    although A alone, isolated with the same 10,000 margin, would be."""
    a_i, b_i = btc("AUSDT"), btc("BUSDT")
    p = Portfolio([a_i, b_i])
    acct = p.add_account(10_000 * USDT)
    # long A: 1 BTC (1,000 lots) at 100,000 (10,000,000 ticks); short B: 1 BTC at 100,000
    p.add_position(acct, 0, 1000, 1000 * 10_000_000)
    p.add_position(acct, 1, -1000, -1000 * 10_000_000)
    marks = [8_800_000, 8_500_000]  # A −12 % (−12,000), B −15 % (short +15,000)
    r = S.sweep_reference(p, marks, S.RATIOS)
    # cross balance = 10,000 − 12,000 + 15,000 = 13,000. Default tiers (0.4 % to 50k, 0.5 % to 250k with cum 50):
    # MM(88,000) = 440 − 50 = 390; MM(85,000) = 425 − 50 = 375
    assert r.acct_equity[acct] == 13_000 * USDT
    assert r.acct_mm[acct] == (390 + 375) * USDT
    assert r.acct_liq[acct] == 0
    # A alone, isolated with 10,000 margin: balance 10,000 − 12,000 = −2,000 ≤ MM 390 → liquidated
    q = Portfolio([a_i, b_i])
    acct2 = q.add_account(0)
    j = q.add_position(acct2, 0, 1000, 1000 * 10_000_000, mode=ISO, iso_margin_units=10_000 * USDT)
    r2 = S.sweep_reference(q, marks, S.RATIOS)
    assert r2.pos_equity[j] == -2_000 * USDT and r2.pos_mm[j] == 390 * USDT
    assert r2.pos_liq[j] == 1 and r2.pos_ratio_e8[j] == M.RATIO_INF


def test_isolated_cannot_affect_cross():
    """An isolated position's state (size, margin, mark) never changes its account's cross part."""
    p = Portfolio([btc("AUSDT"), btc("BUSDT")])
    a = p.add_account(1_000 * USDT)
    p.add_position(a, 0, 100, 100 * 5_000_000)  # cross long 0.1 A at 50,000, marked at 45,000: balance 500
    j = p.add_position(a, 1, -500, -500 * 5_000_000, mode=ISO, iso_margin_units=100 * USDT)
    base = S.sweep_reference(p, [4_500_000, 5_000_000], S.RATIOS)
    for mark_b, margin in ((1_000_000, 100), (9_000_000, 100), (9_000_000, 1), (5_000_000, 10_000)):
        p.set_position(j, -500, -500 * 5_000_000, margin * USDT)
        r = S.sweep_reference(p, [4_500_000, mark_b], S.RATIOS)
        assert (r.acct_equity[a], r.acct_mm[a], r.acct_liq[a]) == (base.acct_equity[a], base.acct_mm[a], base.acct_liq[a])
    # the isolated short deep under water at 90,000: balance 1 − 20,000 ≤ MM → only it is flagged
    p.set_position(j, -500, -500 * 5_000_000, 1 * USDT)
    r = S.sweep_reference(p, [4_500_000, 9_000_000])
    assert r.pos_liq[j] == 1 and r.acct_liq[a] == 0


def test_cross_profit_keeps_a_losing_position_alive():
    p = Portfolio([btc("AUSDT"), btc("BUSDT")])
    a = p.add_account(100 * USDT)
    p.add_position(a, 0, 100, 100 * 5_000_000)  # long 0.1 at 50,000
    # A falls to 48,000: −200 → balance −100 ≤ MM → liquidatable alone
    assert S.sweep_reference(p, [4_800_000, 1_000_000]).acct_liq[a] == 1
    p.add_position(a, 1, 100, 100 * 1_000_000)  # long 0.1 B at 10,000, now at 13,000: +300
    r = S.sweep_reference(p, [4_800_000, 1_300_000], S.RATIOS)
    # balance 100 − 200 + 300 = 200; MM = 4,800 × 0.4 % + 1,300 × 0.4 % = 19.2 + 5.2 = 24.4
    assert r.acct_equity[a] == 200 * USDT and r.acct_mm[a] == 2_440_000_000 and r.acct_liq[a] == 0
    # ratio = ceil(24.4 / 200 × 1e8) = 12,200,000 (12.2 %)
    assert r.acct_ratio_e8[a] == 12_200_000


def test_equality_is_liquidatable_and_zero_size_is_not():
    p = Portfolio([btc(brackets=[("1000000000", "0", 125)])])  # MMR 0
    a = p.add_account(0)
    j = p.add_position(a, 0, 1000, 1_000_000_000, mode=ISO, iso_margin_units=500 * USDT)
    r = S.sweep_reference(p, [950_000], S.RATIOS)  # balance 500 − 500 = 0 = MM → liquidatable (rules §5)
    assert r.pos_equity[j] == 0 and r.pos_liq[j] == 1 and r.pos_ratio_e8[j] == M.RATIO_INF
    assert S.sweep_reference(p, [950_001]).pos_liq[j] == 0
    b = p.add_account(-5)  # negative wallet, no position: not liquidatable
    p.add_position(b, 0, 0, 0)
    r = S.sweep_reference(p, [950_000], S.RATIOS)
    assert r.acct_liq[b] == 0 and r.acct_ratio_e8[b] == 0


# -- storage -------------------------------------------------------------------------------------------
def test_bounds_are_enforced():
    p = Portfolio([btc()])
    with pytest.raises(PortfolioError):
        p.add_account(MAX_ABS_VALUE + 1)
    a = p.add_account(MAX_ABS_VALUE - 10**17)
    # max price 100,000,000 ticks × K 1,000 = 10^11 per lot: 10^6 lots = 10^17 fills the bound exactly
    p.add_position(a, 0, 10**6, 10**6)
    with pytest.raises(PortfolioError):
        p.add_position(a, 0, 1, 1)
    with pytest.raises(PortfolioError):
        p.add_position(a, 0, 0, 0, iso_margin_units=5)  # cross with isolated margin
    b = p.add_account(0)
    with pytest.raises(PortfolioError):
        p.add_position(b, 0, 5, -5)  # entry cost of the wrong sign
    with pytest.raises(PortfolioError):
        p.add_position(b, 0, 5, 5, leverage=126)
    with pytest.raises(PortfolioError):
        p.add_position(b, 0, -5, -5, side=PositionSide.LONG)
    p.check_invariants()
    with pytest.raises(ValueError):
        S.sweep_reference(p, [0])
    with pytest.raises(ValueError):
        S.sweep_numpy(p, [int(p.table.max_price_ticks[0]) + 1])


def test_from_arrays_rejects_like_add_position():
    insts = [btc()]
    with pytest.raises(PortfolioError):
        Portfolio.from_arrays(insts, [MAX_ABS_VALUE], [0], [0], [1], [1])
    p = Portfolio.from_arrays(insts, [MAX_ABS_VALUE - 10**12], [0], [0], [1], [1])
    p.check_invariants()
    assert p.is_compact


def test_growth_relocation_and_compact():
    rng = np.random.default_rng(7)
    p = random_portfolio(rng, 80)
    p.check_invariants()
    assert p.n_holes > 0 and not p.is_compact
    marks = random_marks(rng, p)
    before = S.sweep_reference(p, marks, S.RATIOS)
    slots = [list(p.slots_of(a)) for a in range(p.n_accounts)]
    old_to_new = p.compact()
    p.check_invariants()
    assert p.is_compact and p.n_holes == 0
    after = S.sweep_reference(p, marks, S.RATIOS)
    assert np.array_equal(before.acct_equity, after.acct_equity) and np.array_equal(before.acct_liq, after.acct_liq)
    for a in range(p.n_accounts):
        assert [int(old_to_new[j]) for j in slots[a]] == list(p.slots_of(a))
        for j in slots[a]:
            assert before.pos_equity[j] == after.pos_equity[old_to_new[j]]


def _views_are_the_used_parts(p):
    """Every column read as an attribute is its array's used part, whether kept from an earlier read or not."""
    for name in [n for n, _ in POSITION_FIELDS] + [n for n, _ in ACCOUNT_FIELDS]:
        arrays, n = (p._pos, p.n_slots) if name.startswith("pos_") else (p._acct, p.n_accounts)
        view = getattr(p, name)
        assert len(view) == n and (n == 0 or np.shares_memory(view, arrays[name])) and np.array_equal(view, arrays[name][:n]), name


def test_kept_views_follow_every_change_of_the_used_part():
    """The views are kept in the instance after a first read (Portfolio.__getattr__); each method that changes
    the counts or moves the arrays drops them: a new account, a block moved to the end, arrays grown, compaction,
    bulk construction. A view kept past any of these would show the old length or the old arrays."""
    p = Portfolio([btc()], account_capacity=1, slot_capacity=1)
    _views_are_the_used_parts(p)
    a = p.add_account(10 * USDT, capacity=1)  # grows both kinds of arrays
    _views_are_the_used_parts(p)
    p.add_position(a, 0, 1, 100)
    _views_are_the_used_parts(p)
    p.add_position(a, 0, 2, 200, side=PositionSide.LONG)  # the full block moves to the end with more room
    _views_are_the_used_parts(p)
    assert p.n_holes == 1 and list(p.pos_qty_lots[p.slots_of(a)]) == [1, 2]
    for _ in range(40):  # growth without a new block
        p.add_account(USDT, capacity=2)
        _views_are_the_used_parts(p)
    p.compact()
    _views_are_the_used_parts(p)
    assert p.n_holes == 0 and len(p.pos_account) == p.n_slots
    q = Portfolio.from_arrays([btc()], np.zeros(3, np.int64), np.array([0, 1, 2]), np.zeros(3, np.int64),
                              np.ones(3, np.int64), np.ones(3, np.int64))
    _views_are_the_used_parts(q)
    p.set_position(int(p.slots_of(a)[0]), 5, 500)  # a write through the arrays shows in the kept view
    assert int(p.pos_qty_lots[p.slots_of(a)[0]]) == 5
    import pickle
    r = pickle.loads(pickle.dumps(p))  # the kept views are not state: the copy's are views of its own arrays
    _views_are_the_used_parts(r)
    r.set_position(int(r.slots_of(a)[0]), 7, 700)
    assert int(r.pos_qty_lots[r.slots_of(a)[0]]) == 7 and int(p.pos_qty_lots[p.slots_of(a)[0]]) == 5


def test_bytes_per_position():
    p = random_portfolio(np.random.default_rng(3), 200)
    p.compact()
    assert p.bytes_per_position() <= 64
    n = 1000
    q = Portfolio.from_arrays([btc()], np.zeros(n // 4, np.int64), np.repeat(np.arange(n // 4), 4), np.zeros(n, np.int64),
                              np.ones(n, np.int64), np.ones(n, np.int64))
    assert q.bytes_per_position() == 34 + 32 / 4  # 34 per position + 32 per account of 4


# -- differential -------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("extreme", [False, True])
def test_numpy_matches_reference(seed, extreme, config):
    rng = np.random.default_rng(100 * seed + extreme)
    p = random_portfolio(rng, 150, extreme=extreme, hedge=seed % 2 == 1, config=config)
    for _ in range(3):
        marks = random_marks(rng, p, extreme)
        ref = S.sweep_reference(p, marks, S.RATIOS)
        assert_same(ref, S.sweep_numpy(p, marks, S.RATIOS), "numpy/non-compact")
    p.compact()
    marks = random_marks(rng, p, extreme)
    assert_same(S.sweep_reference(p, marks, S.RATIOS), S.sweep_numpy(p, marks, S.RATIOS), "numpy/compact")


@needs_clearing
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("extreme", [False, True])
def test_compiled_matches_reference(seed, extreme, config):
    rng = np.random.default_rng(1000 + 100 * seed + extreme)
    p = random_portfolio(rng, 150, extreme=extreme, hedge=seed % 2 == 1, config=config)
    if seed % 2:
        p.compact()
    for _ in range(3):
        marks = random_marks(rng, p, extreme)
        ref = S.sweep_reference(p, marks, S.RATIOS)
        for level in (S.FLAGS, S.VALUES, S.RATIOS):
            got = S.sweep_compiled(p, marks, level)
            assert np.array_equal(got.pos_liq, ref.pos_liq) and np.array_equal(got.acct_liq, ref.acct_liq)
            assert (got.n_liq_positions, got.n_liq_accounts) == (ref.n_liq_positions, ref.n_liq_accounts)
        assert_same(ref, got, "compiled")


@needs_clearing
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_compiled_at_the_exact_bounds(config):
    """One account at exposure exactly 2^62: wallet 0, one position of the maximal size at the max price,
    sizes above 2^37 lots (the kernel's wide path), marks at 1 and at the max price."""
    insts = instruments()
    p = Portfolio(config_table(insts, config))
    t = p.table
    biggest = 0
    for s in range(t.n_symbols):
        maxp, k = int(t.max_price_ticks[s]), int(t.k_units[s])
        qmax = MAX_ABS_VALUE // (maxp * k)
        biggest = max(biggest, qmax)
        for sign in (1, -1):
            for mode in (CROSS, ISO):
                a = p.add_account(0)
                p.add_position(a, s, sign * qmax, sign * qmax * maxp, mode=mode)
                a = p.add_account(MAX_ABS_VALUE - qmax * maxp * k)
                p.add_position(a, s, sign * qmax, sign * qmax, mode=mode)
                a = p.add_account(-(MAX_ABS_VALUE - qmax * maxp * k))
                p.add_position(a, s, sign * qmax, sign * qmax * (maxp // 2))
    p.check_invariants()
    assert biggest > 2**37
    for marks in ([1] * t.n_symbols, list(t.max_price_ticks), [int(x) // 3 for x in t.max_price_ticks]):
        ref = S.sweep_reference(p, marks, S.RATIOS)
        assert_same(ref, S.sweep_compiled(p, marks, S.RATIOS), "compiled/bounds")
        assert_same(ref, S.sweep_numpy(p, marks, S.RATIOS), "numpy/bounds")


def test_active_sweep_batch_api():
    rng = np.random.default_rng(11)
    p = random_portfolio(rng, 50)
    marks = random_marks(rng, p)
    r = S.sweep(p, marks)
    ref = S.sweep_reference(p, marks, S.FLAGS)
    assert np.array_equal(r.pos_liq, ref.pos_liq) and np.array_equal(r.acct_liq, ref.acct_liq)
    slots, accounts = r.liquidatable()
    assert list(slots) == list(np.flatnonzero(ref.pos_liq)) and list(accounts) == list(np.flatnonzero(ref.acct_liq))


def four_per_account_portfolio(rng, n_accounts=2000, config="at"):
    """A compact portfolio with exactly 4 positions per account over the 4 test symbols (the layout the
    compiled kernel's fastest path streams), then wallets and isolated margins moved to sit exactly at the
    maintenance margin, one unit above or one below, so every flag is decided at its edge."""
    insts = config_table(instruments(), config)
    t = insts
    n = n_accounts * 4
    acc = np.repeat(np.arange(n_accounts), 4)
    sym = np.tile(np.arange(4), n_accounts)
    maxp = t.max_price_ticks[sym] // 20
    lots = np.maximum(1, (rng.random(n) * 10**12 // (maxp * t.k_units[sym])).astype(np.int64))
    qty = np.where(rng.random(n) < 0.5, lots, -lots)
    entry = qty * np.maximum(1, (maxp * rng.uniform(0.5, 1.5, n)).astype(np.int64))
    iso = rng.random(n) < 0.4
    mode = np.where(iso, int(ISO), int(CROSS))
    wallet = (rng.random(n_accounts) * 10**13).astype(np.int64)
    p = Portfolio.from_arrays(insts, wallet, acc, sym, qty, entry, mode=mode,
                              iso_margin_units=np.where(iso, 10**12, 0))
    marks = np.array([int(m) // 20 for m in t.max_price_ticks], np.int64)
    ref = S.sweep_reference(p, marks, S.VALUES)
    nudge = rng.integers(-1, 2, max(n, n_accounts))  # −1, 0, +1: below, at, above the maintenance margin
    for slot in range(n):
        if iso[slot]:
            shift = int(ref.pos_mm[slot] - ref.pos_equity[slot] + nudge[slot])
            p.set_position(slot, int(qty[slot]), int(entry[slot]), int(p.pos_iso_margin_units[slot]) + shift)
    for a in range(n_accounts):
        p.set_wallet(a, int(wallet[a] + ref.acct_mm[a] - ref.acct_equity[a] + nudge[a]))
    assert p.is_compact
    return p, marks


@needs_clearing
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(3))
def test_compiled_four_positions_per_account_at_the_maintenance_edge(seed, config):
    from exchange.clearing import _sweep as _kernel

    rng = np.random.default_rng(7000 + seed)
    p, marks = four_per_account_portfolio(rng, config=config)
    ref = S.sweep_reference(p, marks, S.RATIOS)
    assert 0 < ref.n_liq_positions and 0 < ref.n_liq_accounts < p.n_accounts  # the edges are really mixed
    for isa in sorted({_kernel.kernel_isa(), "scalar"}):
        previous = _kernel.set_kernel_isa(isa)
        try:
            for level in (S.FLAGS, S.VALUES, S.RATIOS):
                got = S.sweep_compiled(p, marks, level)
                assert np.array_equal(got.pos_liq, ref.pos_liq) and np.array_equal(got.acct_liq, ref.acct_liq), isa
            assert_same(ref, S.sweep_compiled(p, marks, S.RATIOS), f"compiled/{isa}")
        finally:
            _kernel.set_kernel_isa(previous)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_zero_maintenance_and_equality_by_the_tables_trigger(config):
    """MMR 0 (MM = 0) and a balance of 0, −1 or +1 unit, cross and isolated, 4 positions per account (the
    kernel's folded layout) and 3 (its general block): ``≤`` liquidates at 0, ``<`` only below, dYdX's rule
    (``<`` and MM > 0) never; every implementation (and both kernels) agrees with the reference."""
    zero = [btc(s, brackets=[("1000000000", "0", 125)]) for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT")]
    p = Portfolio(config_table(zero, config))
    expected_pos, expected_acct = [], []
    strict, min_mm = M.trigger_terms(p.table.trigger)
    for n in (4, 3):
        for nudge in (-1, 0, 1):
            for _ in range(3):  # 9 accounts per layout: a full block of 8 and a tail
                a = p.add_account(0, capacity=n)
                for s in range(n):
                    iso = s % 2 == 1
                    j = p.add_position(a, s, 1000, 1000 * 1_000_000, mode=ISO if iso else CROSS,
                                       iso_margin_units=(1000 * USDT + nudge) if iso else 0)
                    if iso:
                        expected_pos.append((j, nudge + strict <= 0 and min_mm == 0))
                # cross: two cross positions each losing 1,000 at mark 9,000 (from 10,000): balance = wallet − 2,000
                p.set_wallet(a, (1000 * USDT) * ((n + 1) // 2) + nudge)
                expected_acct.append((a, nudge + strict <= 0 and min_mm == 0))
    marks = [900_000] * 4
    ref = S.sweep_reference(p, marks, S.RATIOS)
    assert [bool(ref.pos_liq[j]) for j, _ in expected_pos] == [flag for _, flag in expected_pos]
    assert [bool(ref.acct_liq[a]) for a, _ in expected_acct] == [flag for _, flag in expected_acct]
    assert_same(ref, S.sweep_numpy(p, marks, S.RATIOS), "numpy")
    if COMPILED:
        from exchange.clearing import _sweep as _kernel

        p.compact()
        ref = S.sweep_reference(p, marks, S.RATIOS)
        for isa in sorted({_kernel.kernel_isa(), "scalar"}):
            previous = _kernel.set_kernel_isa(isa)
            try:
                for level in (S.FLAGS, S.VALUES, S.RATIOS):
                    got = S.sweep_compiled(p, marks, level)
                    assert np.array_equal(got.pos_liq, ref.pos_liq) and np.array_equal(got.acct_liq, ref.acct_liq), isa
                assert_same(ref, S.sweep_compiled(p, marks, S.RATIOS), f"compiled/{isa}")
            finally:
                _kernel.set_kernel_isa(previous)
