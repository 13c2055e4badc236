"""exchange.sim: the PricePath model, the seeded generators and the Binance public-data loaders (docs/paths.md).

Statistical tolerances are derived from the sampling distributions (stated at each test) at about five
standard errors, and every generator run is seeded, so the tests are deterministic."""
import math
import zipfile

import numpy as np
import pytest

from exchange import AdvanceTime, Exchange, Instrument, InputError, Rejected, SetIndexPrice
from exchange.sim import (
    Bar, FundingEvent, PricePath, PricePoint, SymbolSeries, YEAR_NS, crash_recovery_path, decimal_to_ticks,
    gbm_jump_path, path_from_agg_trades, path_from_klines, prices_to_ticks, read_agg_trades, read_funding,
    read_klines, regime_switching_path, round_ticks, stationary_distribution,
)

MIN = 60 * 10**9
HOUR = 60 * MIN
BTC = Instrument.linear("BTCUSDT", tick_size="0.1", max_price="1000000")
ETH = Instrument.linear("ETHUSDT", tick_size="0.01", max_price="100000")


# ------------------------------------------------------------------------------------------------
# conversions and the path model
# ------------------------------------------------------------------------------------------------
def test_round_ticks_half_away_from_zero_exact_and_clamped():
    x = [2.5, np.nextafter(2.5, 0), 3.5, 0.2, -5.0, 1e15, 7.0]
    assert round_ticks(x, 10**9).tolist() == [3, 2, 4, 1, 1, 10**9, 7]
    assert round_ticks([np.nextafter(10.5, 0), 10.5, 2.0**51 + 0.5], 2**60).tolist() == [10, 11, 2**51 + 1]
    assert prices_to_ticks([50000.05, 0.01], BTC).tolist() == [500001, 1]  # 500000.5 -> away from zero
    with pytest.raises(InputError, match="prices"):
        round_ticks([1.0, float("nan")], 10)


def test_decimal_to_ticks_exact_nearest_ties_away():
    assert decimal_to_ticks("42283.48829787", "0.1") == (422835, False)
    assert decimal_to_ticks("42283.45", "0.1") == (422835, False)  # 422834.5 -> away from zero
    assert decimal_to_ticks("42283.44999999", "0.1") == (422834, False)
    assert decimal_to_ticks("42283.4", "0.1") == (422834, True)
    assert decimal_to_ticks("-0.25", "0.1") == (-3, False)
    with pytest.raises(InputError):
        decimal_to_ticks("abc", "0.1")


def _hand_path():
    a = SymbolSeries("AAA", open=[100, 95], high=[103, 99], low=[94, 95], close=[96, 99],
                     mark=[97, 98], last=[96, 99])
    b = SymbolSeries("BBB", open=[10, 12], high=[12, 13], low=[9, 11], close=[12, 11])
    return PricePath(np.array([0, 300]), 600, (a, b), (FundingEvent(300, "BBB", -2500), FundingEvent(0, "AAA", 100)))


def test_steps_and_events_order():
    path = _hand_path()
    bars = list(path.steps())
    assert bars[0] == Bar(0, 300, "AAA", 100, 103, 94, 96, True, 97, 96)  # down bar: low first
    assert bars[1].low_first is False and bars[3].low_first is True  # BBB bar 0 up: high first; bar 1 down
    assert bars[0].sequence() == (("open", 100), ("low", 94), ("high", 103), ("close", 96))
    assert bars[1].sequence() == (("open", 10), ("high", 12), ("low", 9), ("close", 12))
    assert bars[0].point_times() == (0, 100, 200, 299)
    events = list(path.events())
    assert events[0] == FundingEvent(0, "AAA", 100)
    assert events[1:9] == [
        PricePoint(0, "AAA", "open", 100), PricePoint(0, "BBB", "open", 10),
        PricePoint(100, "AAA", "low", 94), PricePoint(100, "BBB", "high", 12),
        PricePoint(200, "AAA", "high", 103), PricePoint(200, "BBB", "low", 9),
        PricePoint(299, "AAA", "close", 96, 97, 96), PricePoint(299, "BBB", "close", 12, None, None),
    ]
    assert events[9] == FundingEvent(300, "BBB", -2500)  # before the prices stamped 300
    assert [e.time_ns for e in events[10:]] == [300, 300, 400, 400, 500, 500, 599, 599]
    assert path.shifted(1000).times_ns.tolist() == [1000, 1300] and path.shifted(1000).funding[0].time_ns == 1000


@pytest.mark.parametrize("times,high,match", [
    ([0, 0], [103, 99], "strictly increasing"),
    ([0, 300], [95, 99], "AAA bar 0"),
])
def test_path_validation(times, high, match):
    with pytest.raises(InputError, match=match):
        PricePath(np.array(times), 600, (SymbolSeries("AAA", [100, 95], high, [94, 95], [96, 99]),))
    with pytest.raises(InputError, match="ticks must be >= 1"):
        SymbolSeries("AAA", [0], [1], [0], [1])
    with pytest.raises(InputError, match="integer ticks"):
        SymbolSeries("AAA", [1.5], [2.0], [1.0], [1.5])


# ------------------------------------------------------------------------------------------------
# synthetic generators
# ------------------------------------------------------------------------------------------------
GBM = dict(bar_ns=MIN, duration_ns=6 * HOUR, drift=[0.1, -0.2], volatility=[0.6, 0.9], jump_intensity=200,
           jump_mean=-0.01, jump_std=0.02, correlation=[[1, 0.5], [0.5, 1]])
CRASH = dict(bar_ns=MIN, drop=[0.3, 0.4], crash_ns=HOUR, hold_ns=30 * MIN, recovery=0.2, recovery_ns=2 * HOUR,
             pre_ns=10 * MIN, post_ns=10 * MIN, volatility=0.5, correlation=[[1, 0.8], [0.8, 1]])
REGIME = dict(bar_ns=MIN, duration_ns=6 * HOUR, regimes=[(0.0, 0.3), (-2.0, [1.5, 2.0])],
              transition=[[0.98, 0.02], [0.05, 0.95]], correlation=[[1, 0.3], [0.3, 1]])
GENERATORS = [(gbm_jump_path, GBM), (crash_recovery_path, CRASH), (regime_switching_path, REGIME)]


def _arrays(path):
    return [path.times_ns] + [getattr(s, f) for s in path.series for f in ("open", "high", "low", "close", "low_first")]


@pytest.mark.parametrize("gen,kw", GENERATORS, ids=lambda v: getattr(v, "__name__", ""))
def test_generators_deterministic_shapes_and_bounds(gen, kw):
    one = gen([BTC, ETH], ["50000", "3000"], seed=7, **kw)
    again = gen([BTC, ETH], ["50000", "3000"], seed=7, **kw)
    other = gen([BTC, ETH], ["50000", "3000"], seed=8, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(_arrays(one), _arrays(again)))
    assert not np.array_equal(one["BTCUSDT"].close, other["BTCUSDT"].close)
    n = len(one)
    assert n == 360 if gen is not crash_recovery_path else n == 230
    assert one.times_ns.dtype == np.int64 and np.all(np.diff(one.times_ns) == MIN) and one.end_ns == n * MIN
    for s, inst in zip(one.series, (BTC, ETH)):
        for f in ("open", "high", "low", "close"):
            arr = getattr(s, f)
            assert arr.dtype == np.int64 and arr.shape == (n,)
            assert arr.min() >= 1 and arr.max() <= inst.max_price_ticks
        assert np.all(s.high >= np.maximum(s.open, s.close)) and np.all(s.low <= np.minimum(s.open, s.close))
        assert np.array_equal(s.open[1:], s.close[:-1])  # continuous path
    assert one["BTCUSDT"].open[0] == 500000 and one["ETHUSDT"].open[0] == 300000


def test_events_drive_an_exchange():
    """The runner loop of docs/paths.md: every point is accepted and moves the index."""
    path = gbm_jump_path([BTC, ETH], ["50000", "3000"], seed=2, bar_ns=MIN, duration_ns=10 * MIN, volatility=0.8)
    ex = Exchange([BTC, ETH], profile="binance")
    now, applied = -1, 0
    for point in path.events():
        if point.time_ns != now:
            assert not any(isinstance(e, Rejected) for e in ex.apply(AdvanceTime(point.time_ns)))
            now = point.time_ns
        assert not any(isinstance(e, Rejected) for e in ex.apply(SetIndexPrice(point.symbol, point.index_ticks)))
        applied += 1
    assert applied == 10 * 4 * 2


def test_gbm_clamps_to_instrument_bounds():
    tiny = Instrument.linear("TINYUSDT", tick_size="1", lot_size="1", min_qty="1", max_price="120")
    p = gbm_jump_path(tiny, "100", seed=1, bar_ns=HOUR, duration_ns=500 * HOUR, volatility=20.0)
    s = p["TINYUSDT"]
    assert s.high.max() == 120 and s.low.min() == 1  # hits both clamps with 20 annual vol over 500 hours


def test_gbm_realised_correlation_and_volatility():
    # No jumps; 1-minute bars: per-bar log-return sd = σ√dt ≈ 1.1e-3, tick rounding at ~5e6 ticks adds relative
    # noise ~1/(5e6·√12) ≈ 6e-8 (variance ratio ~3e-9), negligible. Sample correlation of n bivariate normal
    # pairs: Fisher z = atanh(r) ~ N(atanh(ρ), 1/(n − 3)); allow 5 standard errors.
    rho, n, sigma = 0.6, 20_000, 0.8
    p = gbm_jump_path([ETH, Instrument.linear("SOLUSDT", tick_size="0.01", max_price="100000")], ["50000", "50000"],
                      seed=11, bar_ns=MIN, duration_ns=n * MIN, volatility=sigma, correlation=[[1, rho], [rho, 1]])
    r1 = np.diff(np.log(p["ETHUSDT"].close.astype(float)))
    r2 = np.diff(np.log(p["SOLUSDT"].close.astype(float)))
    r = np.corrcoef(r1, r2)[0, 1]
    assert abs(math.atanh(r) - math.atanh(rho)) < 5 / math.sqrt(len(r1) - 3)
    # sample sd of m normals: relative standard error ≈ 1/√(2m)
    expected = sigma * math.sqrt(MIN / YEAR_NS)
    assert abs(r1.std(ddof=1) / expected - 1) < 5 / math.sqrt(2 * len(r1))


def test_singular_correlation_is_accepted_and_perfect():
    p = gbm_jump_path([BTC, Instrument.linear("XBTUSDT", tick_size="0.1", max_price="1000000")], "50000", seed=3,
                      bar_ns=MIN, duration_ns=HOUR, volatility=0.7, correlation=[[1, 1], [1, 1]])
    assert np.array_equal(p["BTCUSDT"].close, p["XBTUSDT"].close)


def test_crash_reaches_trough_and_recovers():
    p = crash_recovery_path([BTC, ETH], ["50000", "3000"], seed=5, **CRASH)
    i = p.meta["trough_index"]
    assert i == 69 and p.times_ns[i] + MIN == CRASH["pre_ns"] + CRASH["crash_ns"]  # bar closing at the crash end
    # the noise is pinned at segment ends: the close at the trough is S0·(1 − drop) up to one tick of rounding
    for sym, s0, drop in (("BTCUSDT", 500_000, 0.3), ("ETHUSDT", 300_000, 0.4)):
        s = p[sym]
        trough = s0 * (1 - drop)
        assert abs(int(s.close[i]) - trough) <= 1
        assert abs(int(s.close[-1]) - trough * 1.2) <= 1
        assert s.open[0] == s0 and s.low.min() <= s.close[i]
        # wicks: the noise is a Brownian bridge over each segment (length ≤ the whole path T); its minimum is
        # below −x with probability exp(−2x²/(σ²T)). With 5 segments and p = 1e-9 each:
        # x = σ √(T ln(1e9) / 2); the skeleton never goes below the trough.
        t_years = len(p) * MIN / YEAR_NS
        x = 0.5 * math.sqrt(t_years * math.log(1e9) / 2)
        assert s.low.min() >= trough * math.exp(-x) - 1
    quiet = crash_recovery_path(BTC, "50000", seed=5, **{**CRASH, "volatility": 0.0, "drop": 0.3,
                                                         "correlation": None})
    s = quiet["BTCUSDT"]
    assert s.close[i] == 350_000 and s.low.min() == 350_000 and s.close[-1] == 420_000
    assert s.high.max() == 500_000 and np.all(s.close[:10] == 500_000)


def test_regime_frequencies_near_stationary():
    # Two-state chain with switch probabilities p = 0.02, q = 0.05: π = (q, p)/(p + q) = (5/7, 2/7), second
    # eigenvalue λ = 1 − p − q = 0.93. The fraction of time in state 0 over n steps has variance
    # ≈ π0 π1 (1 + λ)/(1 − λ) / n; allow 5 standard deviations.
    transition = [[0.98, 0.02], [0.05, 0.95]]
    pi = stationary_distribution(transition)
    assert np.allclose(pi, [5 / 7, 2 / 7])
    n = 200_000
    p = regime_switching_path(BTC, "50000", seed=21, bar_ns=MIN, duration_ns=n * MIN, substeps=1,
                              regimes=[(0.0, 0.2), (0.0, 1.2)], transition=transition, initial_regime="stationary")
    regime = p.meta["regime"]
    sd = math.sqrt(pi[0] * pi[1] * (1 + 0.93) / (1 - 0.93) / n)
    assert abs((regime == 0).mean() - pi[0]) < 5 * sd
    # per-regime volatility: sd of m normal returns has relative standard error ≈ 1/√(2m)
    r = np.diff(np.log(p["BTCUSDT"].close.astype(float)))
    for k, sigma in ((0, 0.2), (1, 1.2)):
        rk = r[regime[1:] == k]
        assert abs(rk.std() / (sigma * math.sqrt(MIN / YEAR_NS)) - 1) < 5 / math.sqrt(2 * len(rk))


@pytest.mark.parametrize("gen,kw,match", [
    (gbm_jump_path, dict(GBM, volatility=-1), "volatility"),
    (gbm_jump_path, dict(GBM, drift=float("nan")), "drift"),
    (gbm_jump_path, dict(GBM, volatility="high"), "volatility"),
    (gbm_jump_path, dict(GBM, jump_intensity=[1, 2, 3]), "jump_intensity"),
    (gbm_jump_path, dict(GBM, jump_std=-0.1), "jump_std"),
    (gbm_jump_path, dict(GBM, bar_ns=0), "bar_ns"),
    (gbm_jump_path, dict(GBM, duration_ns=90 * 10**9), "duration_ns"),
    (gbm_jump_path, dict(GBM, substeps=0), "substeps"),
    (gbm_jump_path, dict(GBM, seed=-1), "seed"),
    (gbm_jump_path, dict(GBM, correlation=[[1, 0.5], [0.4, 1]]), "correlation: matrix is not symmetric"),
    (gbm_jump_path, dict(GBM, correlation=[[1, 0], [0, 1], [0, 0]]), "correlation: expected shape"),
    (gbm_jump_path, dict(GBM, correlation=[[1, 2], [2, 1]]), "correlation"),
    (crash_recovery_path, dict(CRASH, drop=1.0), "drop"),
    (crash_recovery_path, dict(CRASH, drop=[0.3, 0]), r"drop\[1\]"),
    (crash_recovery_path, dict(CRASH, recovery=-0.1), "recovery"),
    (crash_recovery_path, dict(CRASH, crash_ns=90 * 10**9), "crash_ns"),
    (crash_recovery_path, dict(CRASH, hold_ns=-MIN), "hold_ns"),
    (regime_switching_path, dict(REGIME, transition=[[0.9, 0.2], [0.5, 0.5]]), "transition: row 0"),
    (regime_switching_path, dict(REGIME, transition=[[1.0]]), "transition"),
    (regime_switching_path, dict(REGIME, regimes=[(0.0,), (0.1, 0.2)]), r"regimes\[0\]"),
    (regime_switching_path, dict(REGIME, regimes=[(0.0, -1), (0.1, 0.2)]), r"regimes\[0\].volatility"),
    (regime_switching_path, dict(REGIME, initial_regime=5), "initial_regime"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_parameters_raise_input_error(gen, kw, match):
    kw = dict(kw)
    kw.setdefault("seed", 1)
    with pytest.raises(InputError, match=match):
        gen([BTC, ETH], ["50000", "3000"], **kw)


def test_bad_start_and_instruments():
    with pytest.raises(InputError, match=r"start_prices\[1\]"):
        gbm_jump_path([BTC, ETH], ["50000", "3000.001"], seed=1, bar_ns=MIN, duration_ns=HOUR)
    with pytest.raises(InputError, match="start_prices"):
        gbm_jump_path([BTC, ETH], ["50000"], seed=1, bar_ns=MIN, duration_ns=HOUR)
    with pytest.raises(InputError, match="instruments"):
        gbm_jump_path([BTC, BTC], "50000", seed=1, bar_ns=MIN, duration_ns=HOUR)
    with pytest.raises(InputError, match="positive semi-definite"):
        gbm_jump_path([BTC, ETH, Instrument.linear("SOLUSDT")], "100", seed=1, bar_ns=MIN, duration_ns=HOUR,
                      correlation=[[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])


# ------------------------------------------------------------------------------------------------
# Binance public-data files (written here in exactly Binance's format)
# ------------------------------------------------------------------------------------------------
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")
T0 = 1704067200000  # 2024-01-01 00:00:00 UTC in ms


def kline(i, o, h, lo, c, t0=T0, scale=1):
    open_ms = t0 + i * 60_000
    return (f"{open_ms * scale},{o},{h},{lo},{c},12.345,{(open_ms + 60_000) * scale - 1},521234.5,100,6.1,"
            f"258000.1,0")


def write(tmp_path, name, lines, header=None, zipped=False):
    text = "\n".join(([header] if header else []) + list(lines)) + "\n"
    path = tmp_path / name
    if zipped:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name[:-4] + ".csv", text)
    else:
        path.write_text(text)
    return path


BTC_KLINES = [kline(0, "42283.50", "42300.00", "42250.10", "42290.40"),
              kline(1, "42290.40", "42295.0", "42100.0", "42150.9"),
              kline(2, "42150.9", "42400.0", "42150.0", "42399.9")]


@pytest.mark.parametrize("zipped,header,scale", [(False, True, 1), (True, False, 1), (True, True, 1000),
                                                 (False, False, 1000)])
def test_read_klines_exact_ticks(tmp_path, zipped, header, scale):
    lines = [kline(i, *row.split(",")[1:5], scale=scale) for i, row in enumerate(BTC_KLINES)]
    path = write(tmp_path, "BTCUSDT-1m-2024-01-01." + ("zip" if zipped else "csv"), lines,
                 KLINE_HEADER if header else None, zipped)
    bars = read_klines(path, BTC)
    assert bars.interval_ns == MIN
    assert bars.open_time_ns.tolist() == [T0 * 10**6 + i * MIN for i in range(3)]
    assert bars.open.tolist() == [422835, 422904, 421509]
    assert bars.high.tolist() == [423000, 422950, 424000]
    assert bars.low.tolist() == [422501, 421000, 421500]
    assert bars.close.tolist() == [422904, 421509, 423999]
    assert bars.off_grid == 0
    assert bars.lines[0][1] == (2 if header else 1)


def test_path_from_klines_index_mark_funding_and_alignment(tmp_path):
    btc = write(tmp_path, "BTCUSDT-1m.csv", BTC_KLINES, KLINE_HEADER)
    # ETH starts one bar later: the common grid is bars 1..2
    eth = write(tmp_path, "ETHUSDT-1m.zip", [kline(1, "2250.00", "2251.00", "2249.99", "2250.50"),
                                             kline(2, "2250.50", "2260.00", "2240.00", "2241.23")], zipped=True)
    index = write(tmp_path, "BTCUSDT-index.csv", [  # 8 decimals: rounded to the 0.1 tick, ties away from zero
        kline(0, "42283.48829787", "42300.01", "42250.05", "42283.45", ),
        kline(1, "42283.45000000", "42300.00", "42100.04999999", "42150.95"),
        kline(2, "42150.95", "42400.0", "42150.0", "42399.96")], KLINE_HEADER)
    mark = write(tmp_path, "BTCUSDT-mark.csv", [kline(i, "42000", c, "42000", c) for i, c in
                                                enumerate(["42000.0", "42001.23", "42002.25"])])
    funding = write(tmp_path, "BTCUSDT-fundingRate.csv",
                    [f"{T0 - 8 * 3_600_000},8,0.00010000", f"{T0 + 60_000},8,-0.00002345",
                     f"{T0 + 8 * 3_600_000},8,0.0001"],
                    "calc_time,funding_interval_hours,last_funding_rate")
    p = path_from_klines([BTC, ETH], {"BTCUSDT": btc, "ETHUSDT": eth}, index_klines={"BTCUSDT": index},
                         mark_klines={"BTCUSDT": mark}, funding={"BTCUSDT": funding})
    assert p.times_ns.tolist() == [T0 * 10**6 + MIN, T0 * 10**6 + 2 * MIN] and p.end_ns == T0 * 10**6 + 3 * MIN
    b, e = p["BTCUSDT"], p["ETHUSDT"]
    assert b.open.tolist() == [422835, 421510] and b.high.tolist() == [423000, 424000]
    assert b.low.tolist() == [421000, 421500] and b.close.tolist() == [421510, 424000]
    assert b.last.tolist() == [421509, 423999] and b.mark.tolist() == [420012, 420023]
    assert e.close.tolist() == [225050, 224123] and e.mark is None and e.last.tolist() == [225050, 224123]
    assert p.funding == (FundingEvent((T0 + 60_000) * 10**6, "BTCUSDT", -2345),)
    assert p.meta["off_grid"]["BTCUSDT"] == 9 + 4  # index: 9 prices off the 0.1 grid; mark: 2 highs, 2 closes
    assert p.meta["interval_ns"] == MIN
    with pytest.raises(InputError, match=r"BTCUSDT-index.csv line 2: open .*strict_grid"):
        path_from_klines(BTC, btc, index_klines=index, strict_grid=True)
    assert read_funding(funding, "BTCUSDT")[0].rate_e8 == 10_000


def test_klines_gap_error_or_forward_fill(tmp_path):
    gappy = write(tmp_path, "gap.csv", [BTC_KLINES[0], kline(3, "42100.0", "42200.0", "42000.0", "42150.0")])
    with pytest.raises(InputError, match=r"gap.csv line 2: 2 missing bar\(s\)"):
        path_from_klines(BTC, gappy)
    p = path_from_klines(BTC, gappy, gaps="ffill")
    s = p["BTCUSDT"]
    assert len(p) == 4 and np.all(np.diff(p.times_ns) == MIN)
    assert s.open.tolist() == [422835, 422904, 422904, 421000]
    assert s.high.tolist() == [423000, 422904, 422904, 422000] and s.low.tolist() == [422501, 422904, 422904, 420000]
    assert s.close.tolist() == [422904, 422904, 422904, 421500]


AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"


@pytest.mark.parametrize("zipped,header,scale", [(False, True, 1), (True, False, 1000)])
def test_agg_trades_resampled(tmp_path, zipped, header, scale):
    trades = [(1, "42000.0", 0), (2, "41990.1", 200), (3, "42010.0", 900), (4, "42005.5", 999),  # bar 0: low first
              (5, "42020.0", 1000), (6, "41999.9", 1500),  # bar 1: high first
              (7, "42003.3", 3100)]  # bar 2 empty (forward fill), bar 3
    lines = [f"{i},{price},0.010,{i},{i},{(T0 + ms) * scale},{'true' if i % 2 else 'false'}" for i, price, ms in trades]
    path = write(tmp_path, "BTCUSDT-aggTrades." + ("zip" if zipped else "csv"), lines, AGG_HEADER if header else None,
                 zipped)
    raw = read_agg_trades(path, BTC)
    assert raw.time_ns.tolist()[:2] == [T0 * 10**6, (T0 + 200) * 10**6] and raw.price[1] == 419901
    p = path_from_agg_trades(BTC, path, bar_ns=10**9)
    s = p["BTCUSDT"]
    assert p.times_ns.tolist() == [T0 * 10**6 + k * 10**9 for k in range(4)]
    assert s.open.tolist() == [420000, 420200, 419999, 420033]
    assert s.high.tolist() == [420100, 420200, 419999, 420033]
    assert s.low.tolist() == [419901, 419999, 419999, 420033]
    assert s.close.tolist() == [420055, 419999, 419999, 420033]
    assert s.low_first.tolist() == [True, False, True, True]
    assert s.last.tolist() == s.close.tolist()


@pytest.mark.parametrize("name,lines,header,match", [
    ("cols.csv", [BTC_KLINES[0], BTC_KLINES[1][:-2]], KLINE_HEADER, "cols.csv line 3: expected 12 columns, got 11"),
    ("num.csv", [BTC_KLINES[0].replace("42300.00", "42,300")], None, "num.csv line 1: expected 12 columns"),
    ("nan.csv", [BTC_KLINES[0].replace("42300.00", "abc")], KLINE_HEADER, "nan.csv line 2: high 'abc' is not a number"),
    ("time.csv", [BTC_KLINES[0].replace(str(T0), "x1", 1)], None,
     "time.csv line 1: first field 'x1' is neither a number nor the header"),
    ("order.csv", [BTC_KLINES[1], BTC_KLINES[0]], KLINE_HEADER, "order.csv line 3: open_time .* not after"),
    ("dup.csv", [BTC_KLINES[0], BTC_KLINES[0]], None, "dup.csv line 2: open_time"),
    ("hl.csv", [kline(0, "1", "2", "3", "1")], None, "hl.csv line 1: need low <= open"),
    ("neg.csv", [kline(0, "-1", "2", "-3", "1")], None, "neg.csv line 1: open -1 is not a positive price"),
    ("big.csv", [kline(0, "1", "2000000", "1", "1")], None, "big.csv line 1: high 2000000 is above"),
    ("empty.csv", [], KLINE_HEADER, "empty.csv line 1: empty file"),
    ("interval.csv", [BTC_KLINES[0], BTC_KLINES[1].replace(str(T0 + 120_000 - 1), str(T0 + 180_000 - 1))], None,
     "interval.csv line 2: bar interval"),
    ("units.csv", [BTC_KLINES[0], kline(1, "1", "1", "1", "1", scale=1000)], None,
     "units.csv line 2: open_time .* different unit"),
])
def test_malformed_klines_name_file_and_line(tmp_path, name, lines, header, match):
    path = write(tmp_path, name, lines, header)
    with pytest.raises(InputError, match=match):
        read_klines(path, BTC)


def test_malformed_containers(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text(BTC_KLINES[0])
    with pytest.raises(InputError, match="fake.zip line 1: not a zip file"):
        read_klines(fake, BTC)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.csv", BTC_KLINES[0])
        zf.writestr("b.csv", BTC_KLINES[1])
    with pytest.raises(InputError, match="two.zip line 1: expected exactly one file in the zip, found 2"):
        read_klines(two, BTC)
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00garbage")
    with pytest.raises(InputError, match="blob.csv line"):
        read_klines(binary, BTC)
    with pytest.raises(InputError, match="missing.csv line 1: cannot read"):
        read_klines(tmp_path / "missing.csv", BTC)
    bad_member = write(tmp_path, "inner.zip", [BTC_KLINES[0], "1,2,3"], zipped=True)
    with pytest.raises(InputError, match="inner.zip:inner.csv line 2: expected 12 columns"):
        read_klines(bad_member, BTC)
    funding = write(tmp_path, "f.csv", [f"{T0},8,0.0001", f"{T0},8,0.0002"])
    with pytest.raises(InputError, match="f.csv line 2: calc_time"):
        read_funding(funding, "BTCUSDT")
    funding = write(tmp_path, "g.csv", [f"{T0},8,zero"])
    with pytest.raises(InputError, match="g.csv line 1: last_funding_rate"):
        read_funding(funding, "BTCUSDT")
    trades = write(tmp_path, "t.csv", [f"1,42000.0,0.01,1,1,{T0 + 5},true", f"2,42000.0,0.01,2,2,{T0},false"])
    with pytest.raises(InputError, match="t.csv line 2: transact_time .* before"):
        read_agg_trades(trades, BTC)
    trades = write(tmp_path, "u.csv", [f"1,42000.0,0.01,1,1,{T0},maybe"])
    with pytest.raises(InputError, match="u.csv line 1: is_buyer_maker"):
        read_agg_trades(trades, BTC)
