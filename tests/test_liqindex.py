"""Liquidation index (exchange.liquidation.index) against the full sweep as the oracle: it must never miss a
liquidatable isolated position or cross account, on random portfolios and random mark paths."""
import functools
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange.clearing import sweep as S
from exchange.enums import MarginMode, PositionSide
from exchange.liquidation.index import ALWAYS, DOWN, UP, LiqIndex, cross_entries_reference, iso_entry_reference
from exchange.accounts.storage import Portfolio
from tests.test_sweep import CONFIGS, btc, random_marks, random_portfolio

COMPILED = S._kernel is not None
needs_clearing = pytest.mark.skipif(not COMPILED, reason="compiled clearing kernel not active (EXCHANGE_PUREPYTHON=1)")
USDT = 10**8
ISO, CROSS = MarginMode.ISOLATED, MarginMode.CROSS


def exposed(p, symbol):
    """(isolated slots, accounts with a cross position) exposed to ``symbol``."""
    live = (p.pos_account >= 0) & (p.pos_symbol == symbol) & (p.pos_qty_lots != 0)
    iso = live & (p.pos_mode == ISO)
    return set(np.flatnonzero(iso).tolist()), set(p.pos_account[live & (p.pos_mode == CROSS)].tolist())


def walk(p, idx, rng, steps, vol, seen=None):
    """Random mark path through the index, checked against the full sweep after every tick. ``seen`` = what
    was already reported liquidatable (default: what the index's rebuild reported)."""
    marks = idx.marks.copy()
    seen_p, seen_a = seen if seen is not None else (set(idx.liquidatable[0].tolist()), set(idx.liquidatable[1].tolist()))
    t = p.table
    for _ in range(steps):
        s = int(rng.integers(0, t.n_symbols))
        maxp = int(t.max_price_ticks[s])
        marks[s] = int(np.clip(int(marks[s] * (1 + rng.normal(0, vol))) + int(rng.integers(-2, 3)), 1, maxp))
        got_p, got_a = idx.process_mark(s, int(marks[s]))
        full = S.sweep_reference(p, marks, S.FLAGS)
        liq_p, liq_a = set(np.flatnonzero(full.pos_liq).tolist()), set(np.flatnonzero(full.acct_liq).tolist())
        ex_p, ex_a = exposed(p, s)
        # exact: what it reports is liquidatable, and nothing liquidatable and exposed to s is missed
        assert set(got_p.tolist()) == liq_p & ex_p
        assert set(got_a.tolist()) == liq_a & ex_a
        seen_p |= liq_p & ex_p
        seen_a |= liq_a & ex_a
        assert liq_p <= seen_p and liq_a <= seen_a  # everything liquidatable was reported when it became so
    return seen_p, seen_a


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
def test_index_never_misses(seed, config):
    rng = np.random.default_rng(seed)
    p = random_portfolio(rng, 120, hedge=seed % 2 == 1, config=config)
    idx = LiqIndex(p, random_marks(rng, p))
    seen_p, seen_a = walk(p, idx, rng, 120, 0.08)
    assert seen_p and seen_a  # the path did liquidate something


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_index_reference_mode_never_misses(config):
    rng = np.random.default_rng(42)
    p = random_portfolio(rng, 60, hedge=True, config=config)
    idx = LiqIndex(p, random_marks(rng, p), compiled=False)
    walk(p, idx, rng, 60, 0.1)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.002, 0.02, 0.2]), st.sampled_from(sorted(CONFIGS)))
def test_index_property(seed, vol, config):
    rng = np.random.default_rng(seed)
    p = random_portfolio(rng, 30, max_per=4, hedge=seed % 3 == 0, config=config)
    idx = LiqIndex(p, random_marks(rng, p))
    walk(p, idx, rng, 25, vol)


@needs_clearing
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("extreme", [False, True])
def test_compiled_entries_equal_reference(seed, extreme, config):
    rng = np.random.default_rng(50 + seed)
    p = random_portfolio(rng, 100, extreme=extreme, hedge=True, config=config)
    marks = random_marks(rng, p, extreme)
    a = LiqIndex(p, marks, compiled=True)
    b = LiqIndex(p, marks, compiled=False)
    for s in range(p.table.n_symbols):
        for d in (DOWN, UP):
            x, y = a.lists[s][d], b.lists[s][d]
            assert sorted(zip(x.v.tolist(), x.key.tolist())) == sorted(zip(y.v.tolist(), y.key.tolist()))
    for u, v in zip(a.liquidatable, b.liquidatable):
        assert np.array_equal(u, v)


def test_isolated_entry_is_the_liquidation_tick():
    # rules §11 example 9 as an index entry: long 1 BTC at 10,000, margin 500, MMR 0 → fires at mark ≤ 9,500
    p = Portfolio([btc(brackets=[("1000000000", "0", 125)])])
    a = p.add_account(0)
    j = p.add_position(a, 0, 1000, 1_000_000_000, mode=ISO, iso_margin_units=500 * USDT)
    entry, liq = iso_entry_reference(p, [1_000_000], j)
    assert entry == (0, DOWN, 950_000) and not liq
    idx = LiqIndex(p, [1_000_000])
    assert list(idx.process_mark(0, 950_001)[0]) == []
    assert list(idx.process_mark(0, 950_000)[0]) == [j]
    assert list(idx.process_mark(0, 900_000)[0]) == [j]  # still liquidatable: still reported
    p.set_position(j, 1000, 1_000_000_000, 1500 * USDT)  # + 1,000 margin → 8,500
    assert not idx.update_position(j)
    assert list(idx.process_mark(0, 850_001)[0]) == []
    assert list(idx.process_mark(0, 850_000)[0]) == [j]


def test_cross_band_is_conservative_and_covers_the_mark():
    """rules §11 example 13's account: its bands contain the marks, and inside them it is never liquidatable."""
    p = Portfolio([btc("AUSDT"), btc("BUSDT")])
    acct = p.add_account(10_000 * USDT)
    p.add_position(acct, 0, 1000, 1000 * 10_000_000)
    p.add_position(acct, 1, -1000, -1000 * 10_000_000)
    marks = [8_800_000, 8_500_000]
    entries, liq = cross_entries_reference(p, marks, acct)
    assert not liq
    lo_a = max(v for s, d, v in entries if s == 0 and d == DOWN) + 1
    hi_b = min(v for s, d, v in entries if s == 1 and d == UP) - 1
    assert lo_a < 8_800_000 and hi_b > 8_500_000
    assert not [e for e in entries if e[0] == 0 and e[1] == UP]  # a long's slack only shrinks downward
    # corners of the box: still safe
    assert S.sweep_reference(p, [lo_a, hi_b]).acct_liq[acct] == 0


def test_liquidatable_account_fires_on_every_mark():
    p = Portfolio([btc("AUSDT"), btc("BUSDT")])
    a = p.add_account(0)
    p.add_position(a, 0, 100, 100 * 5_000_000)
    p.add_position(a, 1, -100, -100 * 5_000_000)
    idx = LiqIndex(p, [4_000_000, 5_000_000])  # A lost 1,000 with no wallet: liquidatable at once
    assert list(idx.liquidatable[1]) == [a]
    entries, liq = cross_entries_reference(p, [4_000_000, 5_000_000], a)
    assert liq and entries == [(0, DOWN, int(ALWAYS)), (1, DOWN, int(ALWAYS))]
    assert list(idx.process_mark(1, 5_000_001)[1]) == [a]
    p.set_wallet(a, 10_000 * USDT)  # rescued by a deposit
    assert not idx.update_account(a)
    assert list(idx.process_mark(1, 5_000_002)[1]) == []


def test_hedge_legs_two_sided_band():
    """A flat hedge (LONG and SHORT legs of one symbol) loses only through MM growth: its band is closed
    above (UP entry) and open below."""
    p = Portfolio([btc(brackets=[("1000000000", "0.05", 10)], max_leverage=10)])
    a = p.add_account(100 * USDT)
    p.add_position(a, 0, 1000, 1000 * 100_000, side=PositionSide.LONG)  # 1 BTC at 1,000
    p.add_position(a, 0, -1000, -1000 * 100_000, side=PositionSide.SHORT)
    # balance 100, MM = 2 × P × 5 % → liquidatable at P ≥ 1,000 (100,000 ticks)
    idx = LiqIndex(p, [50_000])
    entries, _ = cross_entries_reference(p, [50_000], a)
    assert [d for _, d, _ in entries] == [UP]
    assert list(idx.process_mark(0, 99_999)[1]) == []
    assert list(idx.process_mark(0, 100_000)[1]) == [a]


def test_updates_after_changes_and_growth():
    rng = np.random.default_rng(9)
    p = random_portfolio(rng, 40)
    marks = random_marks(rng, p)
    idx = LiqIndex(p, marks)
    seen_p, seen_a = set(idx.liquidatable[0].tolist()), set(idx.liquidatable[1].tolist())
    # open new positions (blocks relocate), change margins and wallets, then walk
    for _ in range(30):
        a = int(rng.integers(0, p.n_accounts))
        if rng.random() < 0.5:
            s = int(rng.integers(0, p.table.n_symbols))
            q = int(rng.integers(-50, 51))
            mode = ISO if rng.random() < 0.5 else CROSS
            j = p.add_position(a, s, q, q * int(marks[s]), mode=mode,
                               iso_margin_units=int(rng.integers(0, 10**10)) if mode == ISO else 0)
            if idx.update_position(j):
                seen_p.add(j)
            if mode == CROSS and p.pos_account[j] >= 0:
                seen_a.update(idx.update_accounts([a]).tolist())
        else:
            p.set_wallet(a, int(rng.integers(-10**11, 10**12)))
            if idx.update_account(a):
                seen_a.add(a)
    full = S.sweep_reference(p, idx.marks, S.FLAGS)
    assert set(np.flatnonzero(full.pos_liq).tolist()) <= seen_p
    assert set(np.flatnonzero(full.acct_liq).tolist()) <= seen_a
    walk(p, idx, rng, 60, 0.05, (seen_p, seen_a))
    p.compact()
    idx.rebuild()
    walk(p, idx, rng, 40, 0.05)


def test_batch_marks_and_merge():
    rng = np.random.default_rng(5)
    p = random_portfolio(rng, 200)
    marks = random_marks(rng, p)
    idx = LiqIndex(p, marks)
    for _ in range(20):
        marks = np.maximum(1, (marks * (1 + rng.normal(0, 0.05, len(marks))))).astype(np.int64)
        marks = np.minimum(marks, p.table.max_price_ticks)
        got_p, got_a = idx.process_marks(marks)
        full = S.sweep_reference(p, marks, S.FLAGS)
        assert set(np.flatnonzero(full.pos_liq).tolist()) >= set(got_p.tolist())
    # force merges of the pending buffers and check nothing is lost
    for pair in idx.lists:
        for tl in pair:
            tl.merge(idx._valid)
    walk(p, idx, rng, 30, 0.05)


def test_isolated_entry_on_the_entry_value_is_the_venue_liquidation_price():
    """Bybit's example (help.bybit.com/hc/en-us/articles/900000181046): long 1 BTC at 10,000, 50x (margin 200),
    MMR 0.5 % of the entry value (50): LP = 10,000 − 150 = 9,850 → the entry fires at mark ≤ 9,850.00."""
    from exchange.accounts.margin import IsolatedMaintenance
    from exchange.accounts.storage import InstrumentTable

    p = Portfolio(InstrumentTable([btc(brackets=[("1000000000", "0.005", 125)])],
                                  isolated_maintenance=IsolatedMaintenance.ENTRY))
    a = p.add_account(0)
    j = p.add_position(a, 0, 1000, 1000 * 1_000_000, mode=ISO, iso_margin_units=200 * USDT)
    entry, liq = iso_entry_reference(p, [1_000_000], j)
    assert entry == (0, DOWN, 985_000) and not liq
    idx = LiqIndex(p, [1_000_000])
    assert list(idx.process_mark(0, 985_001)[0]) == []
    assert list(idx.process_mark(0, 985_000)[0]) == [j]


def _versions(rng, n_slots, n_accounts):
    return (rng.integers(0, 3, n_accounts).astype(np.uint32), rng.integers(0, 3, n_slots).astype(np.uint32))


def _tier(rng, n, n_slots, n_accounts, values, sort):
    """``n`` random entries (values from ``values``: few distinct ones, so ties are common) with random keys
    of both kinds and versions that are current about half the time."""
    v = rng.choice(values, n).astype(np.int64)
    if sort:
        v = np.sort(v, kind="stable")
    cross = rng.random(n) < 0.5
    key = np.where(cross, 2 * rng.integers(0, n_accounts, n) + 1, 2 * rng.integers(0, n_slots, n)).astype(np.int64)
    return v, key, rng.integers(0, 3, n).astype(np.uint32)


@needs_clearing
@pytest.mark.parametrize("seed", range(40))
def test_compiled_tier_merge_and_version_check_equal_the_reference(seed):
    """``_sweep.merged`` / ``_sweep.current`` (what the compiled trigger lists and ``LiqIndex._valid`` use) give the
    arrays of the reference ``_merged`` and ``_valid``: same entries dropped, same order, ties after the entries
    already in the tier and in their pending order; empty tiers included."""
    from exchange.liquidation import index as I

    rng = np.random.default_rng(seed)
    n_slots, n_accounts = int(rng.integers(1, 40)), int(rng.integers(1, 40))
    acct_ver, pos_ver = _versions(rng, n_slots, n_accounts)
    values = rng.integers(-2**62, 2**62, int(rng.integers(1, 8)))

    valid_ref = functools.partial(I.LiqIndex._valid, SimpleNamespace(compiled=False, acct_ver=acct_ver, pos_ver=pos_ver))
    valid_c = lambda key, ver: S._kernel.current(key, ver, acct_ver, pos_ver)  # noqa: E731
    tier = _tier(rng, int(rng.integers(0, 60)), n_slots, n_accounts, values, True)
    other = _tier(rng, int(rng.integers(0, 300)), n_slots, n_accounts, values, False)
    for key, ver in (tier[1:], other[1:]):
        assert valid_c(key, ver).dtype == np.bool_
        assert np.array_equal(valid_c(key, ver), valid_ref(key, ver))
    want = I._merged(tier, other, valid_ref)
    got = S._kernel.merged(tier, other, valid_c)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype and np.array_equal(g, w)
    assert np.all(np.diff(got[0]) >= 0)


@needs_clearing
def test_compiled_tier_merge_refuses_columns_of_different_lengths_and_unknown_keys():
    v = np.zeros(3, np.int64)
    ok = lambda key, ver: np.ones(len(key), bool)  # noqa: E731
    with pytest.raises(ValueError):
        S._kernel.merged((v, v, np.zeros(2, np.uint32)), (v, v, np.zeros(3, np.uint32)), ok)
    with pytest.raises(ValueError):
        S._kernel.merged((v, v, np.zeros(3, np.uint32)), (v, v, np.zeros(3, np.uint32)), lambda key, ver: ok(key[1:], ver))
    with pytest.raises(IndexError):  # a key past the version arrays (the reference's fancy index raises too)
        S._kernel.current(np.array([7], np.int64), np.zeros(1, np.uint32), np.zeros(3, np.uint32), np.zeros(3, np.uint32))


def _fake_index(compiled, lists, acct_ver, pos_ver):
    """What ``LiqIndex.on_mark`` reads of its index, for one symbol whose trigger lists are ``lists``."""
    from exchange.liquidation import index as I

    fake = SimpleNamespace(compiled=compiled, lists=[lists], marks=np.zeros(1, np.int64), acct_ver=acct_ver,
                           pos_ver=pos_ver, portfolio=SimpleNamespace(table=SimpleNamespace(max_price_ticks=[60])))
    fake._valid = functools.partial(I.LiqIndex._valid, fake)
    return fake


def _list_state(trigger_list):
    t = trigger_list
    return (t.n, t.mn, t.m, t.pmax, t.v[:t.n].tolist(), t.key[:t.n].tolist(), t.ver[:t.n].tolist(),
            t.mv[:t.mn].tolist(), t.mkey[:t.mn].tolist(), t.mver[:t.mn].tolist(),
            t.pv[:t.m].tolist(), t.pkey[:t.m].tolist(), t.pver[:t.m].tolist())


@needs_clearing
@pytest.mark.parametrize("seed", range(30))
def test_compiled_firing_equals_the_reference(seed):
    """``_sweep.fire_mark`` (the compiled ``LiqIndex.on_mark``'s firing) against the reference ``on_mark`` on twin
    trigger lists (a reference ``_TriggerList`` and a compiled one) filled alike: every tier (main, middle,
    pending), values with ties, stale versions, both directions; after each mark the same slots and accounts
    (ascending, unique, int64) and the same tiers left, with entries pushed and settled between marks."""
    from exchange.liquidation import index as I

    rng = np.random.default_rng(seed)
    n_slots, n_accounts = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    acct_ver, pos_ver = _versions(rng, n_slots, n_accounts)
    values = rng.integers(-60, 61, int(rng.integers(1, 12)))
    lists = {}
    for kind in (I._TriggerList, I._CompiledTriggerList):
        lists[kind] = (kind(), kind())
    for direction in range(2):
        main = _tier(rng, int(rng.integers(0, 40)), n_slots, n_accounts, values, True)
        middle = _tier(rng, int(rng.integers(0, 20)), n_slots, n_accounts, values, True)
        for pair in lists.values():
            t = pair[direction]
            t.v, t.key, t.ver, t.n = *(a.copy() for a in main), len(main[0])
            t.mv, t.mkey, t.mver, t.mn = *(a.copy() for a in middle), len(middle[0])
    reference = _fake_index(False, lists[I._TriggerList], acct_ver, pos_ver)
    compiled = _fake_index(True, lists[I._CompiledTriggerList], acct_ver, pos_ver)
    fired = 0
    for step in range(40):
        for direction in range(2):
            pending = _tier(rng, int(rng.integers(0, 12)), n_slots, n_accounts, values, False)
            for pair in lists.values():
                pair[direction].push(*pending)
                if step % 7 == 6:
                    pair[direction].settle(reference._valid)
        mark = int(rng.integers(1, 61))
        want = I.LiqIndex.on_mark(reference, 0, mark)
        got = I.LiqIndex.on_mark(compiled, 0, mark)
        for w, g in zip(want, got):
            assert g.dtype == np.int64 and g.tolist() == w.tolist()
        fired += len(want[0]) + len(want[1])
        for r, c in zip(lists[I._TriggerList], lists[I._CompiledTriggerList]):
            assert _list_state(c) == _list_state(r)
    assert fired


@needs_clearing
def test_compiled_firing_refuses_a_key_past_the_versions():
    from exchange.liquidation import index as I

    down, up = I._CompiledTriggerList(), I._CompiledTriggerList()
    down.push(np.array([5], np.int64), np.array([2 * 9], np.int64), np.zeros(1, np.uint32))
    with pytest.raises(IndexError, match="names no account or slot"):
        S._kernel.fire_mark(down, up, 3, np.zeros(2, np.uint32), np.zeros(2, np.uint32))
