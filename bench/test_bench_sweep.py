"""Benchmark: the full mark-to-market sweep and a mark tick through the liquidation index.

Workload (seeded, ``make_workload``): 1,000,000 accounts × 4 positions (4 distinct symbols each) across
64 linear symbols (tick 0.01, lot 0.001, default BTC-style tiers: 0.4 % to 50k, 0.5 % to 250k, …).
Mark prices are spread log-uniformly over 1 .. 100,000 USDT; position notionals log-uniform over
10 .. 200,000 USDT (so ~15 % of positions sit above the first bracket), entries within ±2 % of the mark,
30 % isolated (margin = notional / leverage, leverage 2..20) and 70 % cross (wallet = 1..3 × the cross
initial margin). Nobody is near liquidation at the starting marks.

Measured (medians; set-up outside the timed region; every implementation's result is checked):
- full sweep, flags only (level 0) and with balances/MM (level 1): compiled (the kernel this CPU selects, and
  the portable scalar kernel forced, ``_kernel.set_kernel_isa``), numpy; the pure-Python reference on a
  20,000-account subset (per-position rate);
- one mark tick (one symbol moves one tick) through the index, against the compiled full sweep;
- bytes per position of the storage and of the index.

Run: ``python -m pytest bench/test_bench_sweep.py --benchmark-only`` (pytest-benchmark), or
``python bench/test_bench_sweep.py`` for the markdown table in docs/margin.md.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pytest

from exchange import IMPLEMENTATION
from exchange.clearing import sweep as S
from exchange.enums import MarginMode
from exchange.liquidation.index import LiqIndex
from exchange.accounts.storage import Portfolio
from exchange.spec import Instrument

N_ACCOUNTS, PER_ACCOUNT, N_SYMBOLS, SEED = 1_000_000, 4, 64, 20240601
REFERENCE_ACCOUNTS = 20_000
compiled = pytest.mark.skipif(S._kernel is None, reason="compiled clearing kernel not active")


def make_workload(n_accounts=N_ACCOUNTS, seed=SEED):
    rng = np.random.default_rng(seed)
    marks = np.round(10 ** rng.uniform(2, 7, N_SYMBOLS)).astype(np.int64)  # ticks: 1 .. 100,000 USDT
    insts = []
    for i in range(N_SYMBOLS):
        max_price_ticks = 10 ** (len(str(int(marks[i]))) + 1)  # 10..100 × the mark
        max_qty_lots = 4 * 10**18 // (max_price_ticks * 1000)
        insts.append(Instrument.linear(f"S{i:02d}USDT", tick_size="0.01", lot_size="0.001",
                                       max_price=str(max_price_ticks // 100), max_qty=f"{max_qty_lots // 1000}",
                                       min_notional="0"))
    n = n_accounts * PER_ACCOUNT
    acc = np.repeat(np.arange(n_accounts, dtype=np.int64), PER_ACCOUNT)
    base = np.repeat(rng.integers(0, N_SYMBOLS, n_accounts), PER_ACCOUNT)
    sym = (base + np.tile(np.arange(PER_ACCOUNT) * 17, n_accounts)) % N_SYMBOLS  # 4 distinct symbols
    notional_usdt = 10 ** rng.uniform(1, np.log10(200_000), n)
    lots = np.maximum(1, (notional_usdt * 100 / marks[sym] * 1000).astype(np.int64))  # price ticks × 0.001 lot
    sign = np.where(rng.random(n) < 0.5, 1, -1)
    entry_px = np.maximum(1, (marks[sym] * (1 + rng.uniform(-0.02, 0.02, n))).astype(np.int64))
    qty = sign * lots
    entry = qty * entry_px
    iso = rng.random(n) < 0.3
    lev = rng.integers(2, 21, n)
    k = insts[0].k_units
    im = lots * entry_px * k // lev
    mode = np.where(iso, int(MarginMode.ISOLATED), int(MarginMode.CROSS))
    margin = np.where(iso, im, 0)
    cross_im = np.zeros(n_accounts, np.int64)
    np.add.at(cross_im, acc, np.where(iso, 0, im))
    wallet = cross_im * rng.integers(1, 4, n_accounts) + 10**8
    p = Portfolio.from_arrays(insts, wallet, acc, sym, qty, entry, mode=mode, iso_margin_units=margin, leverage=lev)
    return p, marks


@pytest.fixture(scope="module")
def workload():
    return make_workload()


def _isa(name):
    """Context: run the compiled kernel with instruction set ``name`` (restores the previous one)."""
    import contextlib

    @contextlib.contextmanager
    def cm():
        prev = S._kernel.set_kernel_isa(name)
        try:
            yield
        finally:
            S._kernel.set_kernel_isa(prev)
    return cm()


def _median_time(fn, rounds):
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- pytest-benchmark entry points ---------------------------------------------------------------------
@compiled
@pytest.mark.parametrize("level", [S.FLAGS, S.VALUES])
def test_sweep_compiled(benchmark, workload, level):
    p, marks = workload
    out = S._alloc(p, level)
    benchmark.pedantic(S.sweep_compiled, args=(p, marks, level, out), rounds=15, warmup_rounds=2)
    ref = S.sweep_numpy(p, marks, level)
    assert np.array_equal(out.pos_liq, ref.pos_liq) and np.array_equal(out.acct_liq, ref.acct_liq)
    benchmark.extra_info["positions_per_s"] = p.n_positions / benchmark.stats.stats.median


@compiled
@pytest.mark.parametrize("level", [S.FLAGS, S.VALUES])
def test_sweep_compiled_scalar(benchmark, workload, level):
    """The portable kernel (what a CPU without AVX-512 runs)."""
    p, marks = workload
    out = S._alloc(p, level)
    with _isa("scalar"):
        benchmark.pedantic(S.sweep_compiled, args=(p, marks, level, out), rounds=7, warmup_rounds=1)
    ref = S.sweep_numpy(p, marks, level)
    assert np.array_equal(out.pos_liq, ref.pos_liq) and np.array_equal(out.acct_liq, ref.acct_liq)
    benchmark.extra_info["positions_per_s"] = p.n_positions / benchmark.stats.stats.median


@pytest.mark.parametrize("level", [S.FLAGS, S.VALUES])
def test_sweep_numpy(benchmark, workload, level):
    p, marks = workload
    benchmark.pedantic(S.sweep_numpy, args=(p, marks, level), rounds=3, warmup_rounds=1)
    benchmark.extra_info["positions_per_s"] = p.n_positions / benchmark.stats.stats.median


def test_sweep_reference_subset(benchmark, workload):
    p, marks = workload
    subset = range(REFERENCE_ACCOUNTS)
    r = benchmark.pedantic(S.sweep_reference, args=(p, marks, S.FLAGS, subset), rounds=3)
    full = S.sweep_numpy(p, marks, S.FLAGS)
    n = int(p.acct_begin[REFERENCE_ACCOUNTS])
    assert np.array_equal(r.pos_liq[:n], full.pos_liq[:n])
    benchmark.extra_info["positions_per_s"] = n / benchmark.stats.stats.median


def test_index_mark_tick(benchmark, workload):
    p, marks = workload
    idx = LiqIndex(p, marks)
    assert len(idx.liquidatable[0]) == 0 and len(idx.liquidatable[1]) == 0  # nobody near liquidation
    state = {"i": 0}

    def tick():
        s = state["i"] % N_SYMBOLS
        state["i"] += 1
        step = 1 if (state["i"] // N_SYMBOLS) % 2 == 0 else -1
        return idx.process_mark(s, int(idx.marks[s]) + step)

    result = benchmark.pedantic(tick, rounds=2000, warmup_rounds=10)
    assert len(result[0]) == 0 and len(result[1]) == 0


# -- the table -----------------------------------------------------------------------------------------
def main() -> int:
    print(f"implementation: {IMPLEMENTATION}; building workload ({N_ACCOUNTS:,} accounts × {PER_ACCOUNT})...", file=sys.stderr)
    t0 = time.perf_counter()
    p, marks = make_workload()
    n = p.n_positions
    print(f"  built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    results = {}
    isa = None
    if S._kernel is not None:
        isa = S._kernel.kernel_isa()
        for level, name in ((S.FLAGS, "flags"), (S.VALUES, "flags + balances + MM"), (S.RATIOS, "+ ratios")):
            out = S._alloc(p, level)
            dt = _median_time(lambda: S.sweep_compiled(p, marks, level, out), 21)
            results[("compiled", level)] = (dt, out)
            rows.append((f"compiled ({isa}), {name}", dt, n / dt))
        if isa != "scalar":
            with _isa("scalar"):
                for level, name in ((S.FLAGS, "flags"), (S.VALUES, "flags + balances + MM")):
                    out = S._alloc(p, level)
                    dt = _median_time(lambda: S.sweep_compiled(p, marks, level, out), 11)
                    results[("compiled-scalar", level)] = (dt, out)
                    rows.append((f"compiled (scalar, forced), {name}", dt, n / dt))
    for level, name in ((S.FLAGS, "flags"), (S.VALUES, "flags + balances + MM")):
        box = {}
        dt = _median_time(lambda: box.__setitem__("r", S.sweep_numpy(p, marks, level)), 5)
        results[("numpy", level)] = (dt, box["r"])
        rows.append((f"numpy, {name}", dt, n / dt))
    subset = range(REFERENCE_ACCOUNTS)
    m = int(p.acct_begin[REFERENCE_ACCOUNTS])
    box = {}
    dt_ref = _median_time(lambda: box.__setitem__("r", S.sweep_reference(p, marks, S.VALUES, subset)), 3)
    rows.append((f"reference (Python): {REFERENCE_ACCOUNTS:,} accounts measured, time scaled to all", dt_ref * n / m, m / dt_ref))
    # agreement
    ref = box["r"]
    for (impl, level), (_, r) in results.items():
        assert np.array_equal(r.pos_liq, results[("numpy", S.FLAGS)][1].pos_liq), impl
        assert np.array_equal(r.acct_liq, results[("numpy", S.FLAGS)][1].acct_liq), impl
        if level >= S.VALUES:
            assert np.array_equal(r.pos_equity[:m], ref.pos_equity[:m]) and np.array_equal(r.pos_mm[:m], ref.pos_mm[:m])
            assert np.array_equal(r.acct_equity[:REFERENCE_ACCOUNTS], ref.acct_equity[:REFERENCE_ACCOUNTS])
            full = results[("numpy", S.VALUES)][1]
            for f in ("pos_equity", "pos_mm", "acct_equity", "acct_mm"):
                assert np.array_equal(getattr(r, f), getattr(full, f)), (impl, f)
    # index
    t0 = time.perf_counter()
    idx = LiqIndex(p, marks)
    build = time.perf_counter() - t0
    assert len(idx.liquidatable[0]) == 0 and len(idx.liquidatable[1]) == 0
    ticks = []
    for i in range(4000):
        s = i % N_SYMBOLS
        step = 1 if (i // N_SYMBOLS) % 2 == 0 else -1
        t = time.perf_counter()
        got = idx.process_mark(s, int(idx.marks[s]) + step)
        ticks.append(time.perf_counter() - t)
        assert len(got[0]) == 0 and len(got[1]) == 0
    dt_tick = statistics.median(ticks)
    full = results.get(("compiled", S.FLAGS), results[("numpy", S.FLAGS)])[0]
    index_bytes = sum(tl.v.nbytes + tl.key.nbytes + tl.ver.nbytes for pair in idx.lists for tl in pair) \
        + idx.pos_ver.nbytes + idx.acct_ver.nbytes
    print(f"\n{n:,} positions ({N_ACCOUNTS:,} accounts × {PER_ACCOUNT}, {N_SYMBOLS} symbols), implementation {IMPLEMENTATION}"
          f"{f', sweep kernel {isa}' if isa else ''}\n")
    print("| path | median time | positions / s |")
    print("|---|---:|---:|")
    for name, dt, rate in rows:
        print(f"| {name} | {dt * 1e3:,.2f} ms | {rate / 1e6:,.1f} M |")
    base = results[("numpy", S.FLAGS)][0]
    if ("compiled", S.FLAGS) in results:
        print(f"\ncompiled vs numpy (flags): {base / results[('compiled', S.FLAGS)][0]:.1f}×; "
              f"(values): {results[('numpy', S.VALUES)][0] / results[('compiled', S.VALUES)][0]:.1f}×; "
              f"compiled vs reference: {dt_ref * n / m / results[('compiled', S.FLAGS)][0]:,.0f}×")
    print(f"index: build {build:.2f} s, {idx.n_entries():,} entries; one mark tick (none near liquidation): "
          f"{dt_tick * 1e6:,.1f} µs = {100 * dt_tick / full:.3f} % of the full sweep")
    print(f"memory: storage {p.bytes_per_position():.1f} B/position; index {index_bytes / n:.1f} B/position")
    return 0


if __name__ == "__main__":
    sys.exit(main())
