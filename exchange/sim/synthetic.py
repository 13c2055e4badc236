"""Seeded synthetic price paths (docs/paths.md §3): GBM with Merton jumps, scripted crash and recovery,
regime switching. Every generator is deterministic for a given ``seed`` (``numpy.random.default_rng``),
simulates several instruments with one correlation matrix, and returns a :class:`~exchange.sim.paths.PricePath`.

Common mechanics:

- Time: ``bar_ns`` per bar, each bar split into ``substeps`` equal sub-steps of ``dt`` years
  (a year is 365 days: crypto trades every day). Rates (``drift``, ``volatility``, ``jump_intensity``) are annual.
- Log price at sub-step boundaries; prices are simulated in *ticks* (``start_ticks × exp(log return)``), so no
  division by the tick size is ever done in floating point.
- Intrabar extremes: within a sub-step the diffusion is a Brownian bridge between its end points ``a`` and ``b``
  with variance ``s² = σ² dt``; its maximum is drawn exactly as ``(a + b + sqrt((b − a)² − 2 s² ln U)) / 2``
  (and the minimum with ``−`` and an independent ``U``). The bar's high / low is the extreme over its sub-steps;
  a jump lands at the end of its sub-step. The order the bar visits them is recorded (``low_first``).
- Ticks: :func:`~exchange.sim.paths.round_ticks` (half away from zero, clamped to ``[1, max_price_ticks]``);
  afterwards ``high >= max(open, close)`` and ``low <= min(open, close)`` hold exactly.
- Correlation: a correlation matrix is validated (square, symmetric, unit diagonal, entries in [−1, 1],
  positive semi-definite) and factored by Cholesky (an eigen-decomposition factor when it is singular).

Bad parameters raise :class:`~exchange.units.InputError` naming the parameter.
"""
from __future__ import annotations

import math
from decimal import Decimal
from numbers import Real
from typing import Sequence

import numpy as np

from ..spec import Instrument
from ..units import InputError, UnitsError
from .paths import PricePath, SymbolSeries, round_ticks

__all__ = ["YEAR_NS", "gbm_jump_path", "crash_recovery_path", "regime_switching_path",
           "correlation_factor", "stationary_distribution"]

YEAR_NS = 365 * 86_400 * 1_000_000_000
_MAX_CELLS = 50_000_000  # bars × substeps × instruments: ~400 MB per float array beyond this


# --------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------
def _int_param(name: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise InputError(f"{name}={value} is outside [{low}, {high if high is not None else '∞'}]")
    return value


def _real(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"{name} must be a real number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise InputError(f"{name} must be finite, got {value!r}")
    return result


def _per_instrument(name: str, value, n: int, *, low: float | None = None, high: float | None = None,
                    low_open: bool = False) -> np.ndarray:
    """A scalar or a length-``n`` sequence of reals -> float64 array of length ``n``, range-checked."""
    if isinstance(value, (str, bytes)):
        raise InputError(f"{name} must be a number or a sequence of {n} numbers, got {value!r}")
    if isinstance(value, (Sequence, np.ndarray)):
        if len(value) != n:
            raise InputError(f"{name}: expected {n} values (one per instrument), got {len(value)}")
        out = np.array([_real(f"{name}[{i}]", v) for i, v in enumerate(value)], dtype=np.float64)
    else:
        out = np.full(n, _real(name, value), dtype=np.float64)
    for i, v in enumerate(out):
        label = name if not isinstance(value, (Sequence, np.ndarray)) else f"{name}[{i}]"
        if low is not None and (v < low or (low_open and v == low)):
            raise InputError(f"{label}={v} must be {'>' if low_open else '>='} {low}")
        if high is not None and v > high:
            raise InputError(f"{label}={v} must be <= {high}")
    return out


def _instruments(instruments) -> tuple[Instrument, ...]:
    if isinstance(instruments, Instrument):
        instruments = (instruments,)
    if isinstance(instruments, (str, bytes)) or not isinstance(instruments, Sequence) or not instruments:
        raise InputError("instruments: expected an Instrument or a non-empty sequence of them")
    for i, inst in enumerate(instruments):
        if not isinstance(inst, Instrument):
            raise InputError(f"instruments[{i}]: expected an Instrument, got {type(inst).__name__}")
    symbols = [inst.symbol for inst in instruments]
    if len(set(symbols)) != len(symbols):
        raise InputError(f"instruments: duplicate symbol in {symbols}")
    return tuple(instruments)


def _start_ticks(start_prices, instruments) -> np.ndarray:
    n = len(instruments)
    if isinstance(start_prices, (str, int, Decimal)) and not isinstance(start_prices, bool):
        start_prices = [start_prices] * n  # one price for every instrument
    if not isinstance(start_prices, Sequence) or len(start_prices) != n:
        raise InputError(f"start_prices: expected {n} prices (str, Decimal or int; one per instrument)")
    ticks = []
    for i, (price, inst) in enumerate(zip(start_prices, instruments)):
        try:
            t = inst.price_to_ticks(price)
        except UnitsError as exc:
            raise InputError(f"start_prices[{i}] ({inst.symbol}): {exc}") from None
        if not 1 <= t <= inst.max_price_ticks:
            raise InputError(f"start_prices[{i}] ({inst.symbol}): {price} is outside [1 tick, max price]")
        ticks.append(t)
    return np.array(ticks, dtype=np.float64)


def correlation_factor(correlation, n: int) -> np.ndarray:
    """Validate an ``n × n`` correlation matrix and return ``A`` with ``A @ A.T == correlation``.

    ``None`` means independent (identity). Cholesky when the matrix is positive definite; for a singular
    positive semi-definite matrix (e.g. perfectly correlated instruments) ``V · diag(sqrt(max(λ, 0)))``
    from its eigen-decomposition. Raises :class:`InputError` naming ``correlation``.
    """
    if correlation is None:
        return np.eye(n)
    try:
        c = np.array(correlation, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("correlation: expected a square matrix of numbers") from None
    if c.shape != (n, n):
        raise InputError(f"correlation: expected shape ({n}, {n}) for {n} instruments, got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise InputError("correlation: contains NaN or infinity")
    if not np.allclose(c, c.T, rtol=0, atol=1e-12):
        raise InputError("correlation: matrix is not symmetric")
    if not np.allclose(np.diag(c), 1.0, rtol=0, atol=1e-12):
        raise InputError("correlation: diagonal entries must be 1")
    if np.any(np.abs(c) > 1.0):
        raise InputError("correlation: entries must lie in [-1, 1]")
    eig = np.linalg.eigvalsh(c)
    if eig[0] < -1e-10:
        raise InputError(f"correlation: matrix is not positive semi-definite (smallest eigenvalue {eig[0]:.3g})")
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(c)
        return vectors * np.sqrt(np.clip(values, 0.0, None))


def stationary_distribution(transition) -> np.ndarray:
    """The stationary distribution ``π`` (``π P = π``, ``Σ π = 1``) of a validated transition matrix."""
    p = _transition(transition)
    k = p.shape[0]
    a = np.vstack([p.T - np.eye(k), np.ones(k)])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    return np.clip(pi, 0.0, None) / np.clip(pi, 0.0, None).sum()


def _transition(transition) -> np.ndarray:
    try:
        p = np.array(transition, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("transition: expected a square matrix of numbers") from None
    if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] < 1:
        raise InputError(f"transition: expected a square matrix, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise InputError("transition: entries must be probabilities in [0, 1]")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, rtol=0, atol=1e-9):
        i = int(np.nonzero(~np.isclose(sums, 1.0, rtol=0, atol=1e-9))[0][0])
        raise InputError(f"transition: row {i} sums to {sums[i]!r}, not 1")
    return p


def _grid(bar_ns, duration_ns, substeps, n_inst, name="duration_ns") -> int:
    bar_ns = _int_param("bar_ns", bar_ns, 4)
    duration_ns = _int_param(name, duration_ns, bar_ns)
    if duration_ns % bar_ns:
        raise InputError(f"{name}={duration_ns} must be a whole number of bars (bar_ns={bar_ns})")
    n_bars = duration_ns // bar_ns
    if n_bars * substeps * n_inst > _MAX_CELLS:
        raise InputError(f"{name}: {n_bars} bars × {substeps} substeps × {n_inst} instruments is too large "
                         f"(limit {_MAX_CELLS} cells); use longer bars or fewer substeps")
    return n_bars


def _common(instruments, start_prices, seed, bar_ns, substeps, start_ns, correlation):
    insts = _instruments(instruments)
    s0 = _start_ticks(start_prices, insts)
    seed = _int_param("seed", seed, 0)
    bar_ns = _int_param("bar_ns", bar_ns, 4)
    substeps = _int_param("substeps", substeps, 1, 10_000)
    start_ns = _int_param("start_ns", start_ns, 0)
    factor = correlation_factor(correlation, len(insts))
    return insts, s0, seed, bar_ns, substeps, start_ns, factor


# --------------------------------------------------------------------------------------------------
# shared path -> bars
# --------------------------------------------------------------------------------------------------
def _bars(log_ret: np.ndarray, diff_end: np.ndarray, bridge_var: np.ndarray, u_hi: np.ndarray, u_lo: np.ndarray,
          s0: np.ndarray, insts, substeps: int, n_bars: int, times: np.ndarray, end_ns: int, meta) -> PricePath:
    """Sub-step log returns -> PricePath.

    ``log_ret``: (n_bars·substeps + 1, k) log price relative to the start at sub-step boundaries;
    ``diff_end``: (n_bars·substeps, k) log price at the end of each sub-step *before* its jump;
    ``bridge_var``: the Brownian-bridge variance of each sub-step (broadcastable to diff_end).
    """
    k = len(insts)
    a = log_ret[:-1]
    b = log_ret[1:]
    spread = np.abs(diff_end - a)
    var = np.broadcast_to(bridge_var, a.shape)
    up = (a + diff_end + np.sqrt(spread * spread - 2.0 * var * np.log(u_hi))) / 2.0
    down = (a + diff_end - np.sqrt(spread * spread - 2.0 * var * np.log(u_lo))) / 2.0
    hi = np.maximum(np.maximum(up, np.maximum(a, diff_end)), b)  # guard float rounding; a jump lands at b
    lo = np.minimum(np.minimum(down, np.minimum(a, diff_end)), b)
    hi = hi.reshape(n_bars, substeps, k)
    lo = lo.reshape(n_bars, substeps, k)
    arg_hi = hi.argmax(axis=1)
    arg_lo = lo.argmin(axis=1)
    bar_hi = hi.max(axis=1)
    bar_lo = lo.min(axis=1)
    # same sub-step holds both extremes: a sub-step that ends higher than it started went down first
    rose = (b > a).reshape(n_bars, substeps, k)
    same_rose = np.take_along_axis(rose, arg_lo[:, None, :], axis=1)[:, 0, :]
    low_first = np.where(arg_lo == arg_hi, same_rose, arg_lo < arg_hi)
    log_s0 = np.log(s0)
    opens = log_ret[0:-1:substeps]
    closes = log_ret[substeps::substeps]
    series = []
    for j, inst in enumerate(insts):
        def ticks(x, name):
            return round_ticks(np.exp(log_s0[j] + x[:, j]), inst.max_price_ticks, name=f"{inst.symbol}.{name}")
        o, c = ticks(opens, "open"), ticks(closes, "close")
        h = np.maximum(ticks(bar_hi, "high"), np.maximum(o, c))
        lw = np.minimum(ticks(bar_lo, "low"), np.minimum(o, c))
        series.append(SymbolSeries(inst.symbol, o, h, lw, c, low_first=low_first[:, j].copy()))
    return PricePath(times, end_ns, tuple(series), (), meta)


def _times(start_ns: int, bar_ns: int, n_bars: int) -> tuple[np.ndarray, int]:
    times = start_ns + bar_ns * np.arange(n_bars, dtype=np.int64)
    return times, start_ns + bar_ns * n_bars


# --------------------------------------------------------------------------------------------------
# generators
# --------------------------------------------------------------------------------------------------
def gbm_jump_path(instruments, start_prices, *, seed: int, bar_ns: int, duration_ns: int, drift=0.0,
                  volatility=0.5, jump_intensity=0.0, jump_mean=0.0, jump_std=0.0, correlation=None,
                  substeps: int = 8, start_ns: int = 0) -> PricePath:
    """Geometric Brownian motion with Merton log-normal jumps, for correlated instruments.

    Per instrument (scalars apply to all, or one value per instrument), with annual ``drift`` μ,
    ``volatility`` σ ≥ 0, ``jump_intensity`` λ ≥ 0 (jumps per year), ``jump_mean`` m and ``jump_std`` v ≥ 0 of
    the log jump size, over sub-steps of ``dt = bar_ns / substeps / YEAR_NS`` years::

        d ln S = (μ − σ²/2 − λ κ) dt + σ dW + Σ J,   κ = exp(m + v²/2) − 1,   J ~ N(m, v²),  N ~ Poisson(λ dt)

    so ``E[S_t] = S_0 e^{μ t}``. The Brownian increments are correlated by ``correlation`` (n × n); jumps are
    independent across instruments. ``duration_ns`` must be a whole number of bars.
    """
    insts, s0, seed, bar_ns, substeps, start_ns, factor = _common(
        instruments, start_prices, seed, bar_ns, substeps, start_ns, correlation)
    k = len(insts)
    n_bars = _grid(bar_ns, duration_ns, substeps, k)
    mu = _per_instrument("drift", drift, k, low=-100.0, high=100.0)
    sigma = _per_instrument("volatility", volatility, k, low=0.0, high=100.0)
    lam = _per_instrument("jump_intensity", jump_intensity, k, low=0.0, high=1e9)
    jm = _per_instrument("jump_mean", jump_mean, k, low=-10.0, high=10.0)
    js = _per_instrument("jump_std", jump_std, k, low=0.0, high=10.0)
    dt = bar_ns / substeps / YEAR_NS
    steps = n_bars * substeps
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((steps, k)) @ factor.T
    counts = rng.poisson(lam * dt, (steps, k))
    jump_z = rng.standard_normal((steps, k))
    u_hi = 1.0 - rng.random((steps, k))  # (0, 1]
    u_lo = 1.0 - rng.random((steps, k))
    kappa = np.expm1(jm + js * js / 2.0)
    diffusion = (mu - sigma * sigma / 2.0 - lam * kappa) * dt + sigma * math.sqrt(dt) * z
    jumps = counts * jm + np.sqrt(counts) * js * jump_z
    log_ret = np.zeros((steps + 1, k))
    np.cumsum(diffusion + jumps, axis=0, out=log_ret[1:])
    diff_end = log_ret[:-1] + diffusion
    times, end_ns = _times(start_ns, bar_ns, n_bars)
    meta = dict(generator="gbm_jump", seed=seed, bar_ns=bar_ns, substeps=substeps)
    return _bars(log_ret, diff_end, sigma * sigma * dt, u_hi, u_lo, s0, insts, substeps, n_bars, times, end_ns, meta)


def crash_recovery_path(instruments, start_prices, *, seed: int, bar_ns: int, drop, crash_ns: int, recovery,
                        recovery_ns: int, hold_ns: int = 0, pre_ns: int = 0, post_ns: int = 0, volatility=0.0,
                        correlation=None, substeps: int = 8, start_ns: int = 0) -> PricePath:
    """A scripted crash and recovery with correlated Brownian-bridge noise.

    Five segments, each a whole number of bars: ``pre_ns`` flat at the start price ``S0``; ``crash_ns`` falling
    to the trough ``S0 (1 − drop)``; ``hold_ns`` flat at the trough; ``recovery_ns`` rising to
    ``S0 (1 − drop)(1 + recovery)``; ``post_ns`` flat. ``drop`` ∈ (0, 1) and ``recovery`` ≥ 0 are fractions
    (0.3 = 30 %), scalars or one per instrument; e.g. drop 0.3, recovery 0.2: 100 → 70 → 84. The skeleton is
    linear in log price within a segment. The noise (annual ``volatility``, correlated by ``correlation``) is a
    Brownian motion pinned to 0 at every segment boundary, so the close at the end of the crash is the trough
    (to one tick of rounding) while wicks around it still move with the noise.
    """
    insts, s0, seed, bar_ns, substeps, start_ns, factor = _common(
        instruments, start_prices, seed, bar_ns, substeps, start_ns, correlation)
    k = len(insts)
    x = _per_instrument("drop", drop, k, low=0.0, high=1.0, low_open=True)
    if np.any(x >= 1.0):
        raise InputError("drop must be < 1 (a fraction: 0.3 = 30 %)")
    y = _per_instrument("recovery", recovery, k, low=0.0, high=1000.0)
    sigma = _per_instrument("volatility", volatility, k, low=0.0, high=100.0)
    segments = []
    for name, value, low in (("pre_ns", pre_ns, 0), ("crash_ns", crash_ns, bar_ns), ("hold_ns", hold_ns, 0),
                             ("recovery_ns", recovery_ns, bar_ns), ("post_ns", post_ns, 0)):
        value = _int_param(name, value, low)
        if value % bar_ns:
            raise InputError(f"{name}={value} must be a whole number of bars (bar_ns={bar_ns})")
        segments.append(value // bar_ns * substeps)
    n_bars = _grid(bar_ns, sum(segments) // substeps * bar_ns, substeps, k,
                   name="pre_ns + crash_ns + hold_ns + recovery_ns + post_ns")
    trough = np.log1p(-x)
    top = trough + np.log1p(y)
    levels = [(0.0, 0.0), (0.0, trough), (trough, trough), (trough, top), (top, top)]
    dt = bar_ns / substeps / YEAR_NS
    steps = n_bars * substeps
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((steps, k)) @ factor.T
    u_hi = 1.0 - rng.random((steps, k))
    u_lo = 1.0 - rng.random((steps, k))
    noise_inc = sigma * math.sqrt(dt) * z
    log_ret = np.zeros((steps + 1, k))
    pos = 0
    for m, (begin, end) in zip(segments, levels):
        if m == 0:
            continue
        frac = (np.arange(1, m + 1, dtype=np.float64) / m)[:, None]
        walk = np.cumsum(noise_inc[pos:pos + m], axis=0)
        bridge = walk - frac * walk[-1]  # pinned to 0 at both ends of the segment
        bridge[-1] = 0.0
        log_ret[pos + 1:pos + m + 1] = begin + (end - begin) * frac + bridge
        pos += m
    diff_end = log_ret[1:]  # no jumps
    times, end_ns = _times(start_ns, bar_ns, n_bars)
    meta = dict(generator="crash_recovery", seed=seed, bar_ns=bar_ns, substeps=substeps,
                trough_index=(segments[0] + segments[1]) // substeps - 1)
    return _bars(log_ret, diff_end, sigma * sigma * dt, u_hi, u_lo, s0, insts, substeps, n_bars, times, end_ns, meta)


def regime_switching_path(instruments, start_prices, *, seed: int, bar_ns: int, duration_ns: int, regimes,
                          transition, initial_regime=0, correlation=None, substeps: int = 8,
                          start_ns: int = 0) -> PricePath:
    """GBM whose (drift, volatility) follows a Markov chain of regimes, shared by all instruments.

    ``regimes`` is a sequence of ``(drift, volatility)`` pairs (annual; each a scalar or one value per
    instrument); ``transition[i][j]`` is the probability of moving from regime ``i`` to ``j`` at a bar boundary
    (rows sum to 1). The regime is constant within a bar; ``initial_regime`` is a regime number or
    ``"stationary"`` (drawn from the stationary distribution). Within a regime
    ``d ln S = (μ_r − σ_r²/2) dt + σ_r dW`` with correlated ``dW``. The regime of each bar is
    ``path.meta["regime"]`` (int64 array).
    """
    insts, s0, seed, bar_ns, substeps, start_ns, factor = _common(
        instruments, start_prices, seed, bar_ns, substeps, start_ns, correlation)
    k = len(insts)
    n_bars = _grid(bar_ns, duration_ns, substeps, k)
    if isinstance(regimes, (str, bytes)) or not isinstance(regimes, Sequence) or not regimes:
        raise InputError("regimes: expected a non-empty sequence of (drift, volatility) pairs")
    mus, sigmas = [], []
    for r, regime in enumerate(regimes):
        if isinstance(regime, (str, bytes)) or not isinstance(regime, Sequence) or len(regime) != 2:
            raise InputError(f"regimes[{r}]: expected a (drift, volatility) pair")
        mus.append(_per_instrument(f"regimes[{r}].drift", regime[0], k, low=-100.0, high=100.0))
        sigmas.append(_per_instrument(f"regimes[{r}].volatility", regime[1], k, low=0.0, high=100.0))
    p = _transition(transition)
    if p.shape[0] != len(regimes):
        raise InputError(f"transition: expected {len(regimes)} × {len(regimes)} for {len(regimes)} regimes, "
                         f"got {p.shape}")
    rng = np.random.default_rng(seed)
    u_chain = rng.random(n_bars)
    if isinstance(initial_regime, str):
        if initial_regime != "stationary":
            raise InputError(f"initial_regime must be a regime number or 'stationary', got {initial_regime!r}")
        first = int(np.searchsorted(np.cumsum(stationary_distribution(p)), u_chain[0], side="right"))
    else:
        first = _int_param("initial_regime", initial_regime, 0, len(regimes) - 1)
    cum = np.cumsum(p, axis=1)
    cum[:, -1] = 1.0
    regime = np.empty(n_bars, dtype=np.int64)
    state = min(first, len(regimes) - 1)
    regime[0] = state
    for i in range(1, n_bars):
        state = int(np.searchsorted(cum[state], u_chain[i], side="right"))
        regime[i] = state
    dt = bar_ns / substeps / YEAR_NS
    steps = n_bars * substeps
    z = rng.standard_normal((steps, k)) @ factor.T
    u_hi = 1.0 - rng.random((steps, k))
    u_lo = 1.0 - rng.random((steps, k))
    mu_sub = np.repeat(np.array(mus)[regime], substeps, axis=0)  # (steps, k)
    sigma_sub = np.repeat(np.array(sigmas)[regime], substeps, axis=0)
    diffusion = (mu_sub - sigma_sub * sigma_sub / 2.0) * dt + sigma_sub * math.sqrt(dt) * z
    log_ret = np.zeros((steps + 1, k))
    np.cumsum(diffusion, axis=0, out=log_ret[1:])
    diff_end = log_ret[1:]
    regime.flags.writeable = False
    times, end_ns = _times(start_ns, bar_ns, n_bars)
    meta = dict(generator="regime_switching", seed=seed, bar_ns=bar_ns, substeps=substeps, regime=regime)
    return _bars(log_ret, diff_end, sigma_sub * sigma_sub * dt, u_hi, u_lo, s0, insts, substeps, n_bars, times,
                 end_ns, meta)
