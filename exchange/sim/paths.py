"""The price-path model: integer time grid, integer-tick OHLC of the index, optional mark / last, funding.

A :class:`PricePath` is what a scenario runner pushes into the exchange with ``AdvanceTime``,
``SetIndexPrice`` and ``SetMarkPrice``. Everything inside is an integer (docs/paths.md):

- ``times_ns``: int64, strictly increasing, the *open* time of each bar; bar ``i`` covers
  ``[times_ns[i], times_ns[i + 1])`` and the last bar ends at ``end_ns``.
- per symbol a :class:`SymbolSeries`: int64 index ticks ``open``, ``high``, ``low``, ``close``; optional
  ``mark`` and ``last`` (one value per bar, observed at the bar's close); optional ``low_first`` (bool, the
  recorded order in which the bar visited its extremes, known for synthetic paths).
- ``funding``: :class:`FundingEvent` (time ns, symbol, rate ×10⁸), time-ordered.

Intrabar convention (:meth:`Bar.sequence`): a bar is visited open → first extreme → second extreme → close.
When ``low_first`` is recorded it decides; otherwise a *down bar* (``close <= open``, a flat bar counts as
down) visits its low first (open → low → high → close) and an *up bar* (``close > open``) its high first
(open → high → low → close).

Float → ticks (:func:`round_ticks`, :func:`prices_to_ticks`): round half away from zero, computed exactly on
the float value, then clamped to ``[1, max_ticks]``. Decimal → ticks (:func:`decimal_to_ticks`): exact
rational arithmetic; off-grid values go to the nearest tick, ties away from zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Iterator, Mapping

import numpy as np

from ..units import InputError, MAX_ABS_VALUE

__all__ = [
    "FundingEvent", "SymbolSeries", "PricePath", "Bar", "PricePoint",
    "round_ticks", "prices_to_ticks", "decimal_to_ticks", "decimal_to_e8",
]

#: the phases of a bar, in :class:`PricePoint.phase`
OPEN, LOW, HIGH, CLOSE = "open", "low", "high", "close"


# --------------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------------
def round_ticks(x, max_ticks: int, *, name: str = "prices") -> np.ndarray:
    """Float tick counts -> int64 ticks: round half away from zero, then clamp to ``[1, max_ticks]``.

    The rounding is exact on the float value: ``f = floor(|x|)``, ``frac = |x| - f`` (exact in IEEE double
    for ``|x| < 2^52``), ``n = f + (frac >= 0.5)``, sign restored. (``floor(x + 0.5)`` is *not* used: the
    addition can itself round, e.g. 0.49999999999999994 + 0.5 == 1.0.) NaN or infinity raises
    :class:`InputError` naming ``name``.
    """
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinity")
    if not isinstance(max_ticks, (int, np.integer)) or isinstance(max_ticks, bool) or max_ticks < 1:
        raise InputError(f"max_ticks must be an int >= 1, got {max_ticks!r}")
    mag = np.abs(arr)
    mag = np.minimum(mag, float(2**52))  # beyond this every double is an integer; clamped below anyway
    whole = np.floor(mag)
    rounded = whole + (mag - whole >= 0.5)
    rounded = np.copysign(rounded, arr)
    return np.clip(rounded, 1, int(max_ticks)).astype(np.int64)


def prices_to_ticks(prices, instrument, *, name: str = "prices") -> np.ndarray:
    """Float prices (price units) -> int64 ticks of ``instrument``.

    ``prices / float(tick_size)`` is one IEEE division (relative error ≤ 2⁻⁵³); the quotient is then rounded
    by :func:`round_ticks` (half away from zero, exact) and clamped to ``[1, instrument.max_price_ticks]``.
    For exact conversion of decimal strings use :func:`decimal_to_ticks`.
    """
    arr = np.asarray(prices, dtype=np.float64)
    return round_ticks(arr / float(instrument.tick_size), instrument.max_price_ticks, name=name)


def _round_fraction(value: Fraction) -> int:
    """Nearest integer to an exact rational, ties away from zero."""
    magnitude = abs(value)
    whole, rest = divmod(magnitude.numerator, magnitude.denominator)
    if 2 * rest >= magnitude.denominator:
        whole += 1
    return whole if value >= 0 else -whole


def decimal_to_ticks(text, tick_size, *, max_ticks: int | None = None) -> tuple[int, bool]:
    """Decimal string / Decimal / int -> ``(ticks, on_grid)`` exactly.

    ``ticks`` = ``value / tick_size`` rounded to the nearest integer, ties away from zero (exact rational
    arithmetic, no float); ``on_grid`` is False when rounding was needed. With ``max_ticks`` the result is
    clamped to ``[1, max_ticks]``. Raises :class:`InputError` for a non-number.
    """
    try:
        dec = text if isinstance(text, Decimal) else Decimal(text.strip() if isinstance(text, str) else text)
    except (InvalidOperation, TypeError, ValueError):
        raise InputError(f"{text!r} is not a decimal number") from None
    if not dec.is_finite():
        raise InputError(f"{text!r} is not finite")
    if dec and abs(dec.adjusted()) > 60:
        raise InputError(f"{text!r} is out of range")
    exact = Fraction(dec) / Fraction(Decimal(tick_size))
    ticks = _round_fraction(exact)
    on_grid = exact.denominator == 1
    if abs(ticks) > MAX_ABS_VALUE:
        raise InputError(f"{text!r} is out of range (more than 2^62 ticks)")
    if max_ticks is not None:
        ticks = min(max(ticks, 1), max_ticks)
    return ticks, on_grid


def decimal_to_e8(text) -> tuple[int, bool]:
    """A decimal rate string -> ``(rate × 10⁸, on_grid)``, nearest, ties away from zero (exact)."""
    return decimal_to_ticks(text, Decimal("0.00000001"))


# --------------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FundingEvent:
    """A funding rate in force at ``time_ns`` for ``symbol`` (rate ×10⁸ per funding interval)."""

    time_ns: int
    symbol: str
    rate_e8: int


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of one symbol, as :meth:`PricePath.steps` yields it (all prices in index ticks)."""

    time_ns: int  # open time
    end_ns: int  # exclusive end (next bar's open time)
    symbol: str
    open: int
    high: int
    low: int
    close: int
    low_first: bool  # True: open -> low -> high -> close
    mark: int | None  # mark at the close, if the path has one
    last: int | None  # last trade price at the close, if the path has one

    def sequence(self) -> tuple[tuple[str, int], ...]:
        """The four index prices a runner applies, in visiting order: ``((phase, ticks), ...)``."""
        first, second = ((LOW, self.low), (HIGH, self.high)) if self.low_first else ((HIGH, self.high), (LOW, self.low))
        return (OPEN, self.open), first, second, (CLOSE, self.close)

    def point_times(self) -> tuple[int, int, int, int]:
        """Times of the four points: open at ``time_ns``, extremes at +d//3 and +2d//3, close at ``end_ns - 1``
        (``d = end_ns - time_ns``)."""
        d = self.end_ns - self.time_ns
        return self.time_ns, self.time_ns + d // 3, self.time_ns + 2 * d // 3, self.end_ns - 1


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One price observation to apply: ``AdvanceTime(time_ns)``, ``SetIndexPrice(symbol, index_ticks)`` and,
    when not None, ``SetMarkPrice(symbol, mark_ticks)``. ``last_ticks`` is informational (the traded price)."""

    time_ns: int
    symbol: str
    phase: str  # "open", "low", "high" or "close"
    index_ticks: int
    mark_ticks: int | None = None
    last_ticks: int | None = None


def _as_ticks_array(name: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(f"{name}: expected a 1-d array of length {n}, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise InputError(f"{name}: expected integer ticks, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=True)
    if n and int(arr.min()) < 1:
        raise InputError(f"{name}: ticks must be >= 1 (min is {int(arr.min())})")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class SymbolSeries:
    """The per-bar integer-tick arrays of one symbol (read-only int64 numpy arrays, one entry per bar).

    ``open``, ``high``, ``low``, ``close`` are the index price; ``mark`` and ``last`` (optional) are values at
    the close; ``low_first`` (optional bool array) records the order the bar visited its extremes.
    Checked: same lengths, ticks >= 1, ``high >= max(open, close)``, ``low <= min(open, close)``.
    """

    symbol: str
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    mark: np.ndarray | None = None
    last: np.ndarray | None = None
    low_first: np.ndarray | None = None

    def __post_init__(self):
        if not isinstance(self.symbol, str) or not self.symbol:
            raise InputError(f"symbol must be a non-empty str, got {self.symbol!r}")
        n = np.asarray(self.close).shape[0] if np.asarray(self.close).ndim == 1 else -1
        for name in ("open", "high", "low", "close", "mark", "last"):
            value = getattr(self, name)
            if value is not None or name in ("open", "high", "low", "close"):
                object.__setattr__(self, name, _as_ticks_array(f"{self.symbol}.{name}", value, n))
        if self.low_first is not None:
            lf = np.asarray(self.low_first)
            if lf.shape != (n,) or lf.dtype != np.bool_:
                raise InputError(f"{self.symbol}.low_first: expected a bool array of length {n}")
            lf = lf.copy()
            lf.flags.writeable = False
            object.__setattr__(self, "low_first", lf)
        bad = np.nonzero((self.high < np.maximum(self.open, self.close)) | (self.low > np.minimum(self.open, self.close)))[0]
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{self.symbol} bar {i}: need low <= open, close <= high, got open={self.open[i]} "
                             f"high={self.high[i]} low={self.low[i]} close={self.close[i]}")

    def __len__(self) -> int:
        return int(self.close.shape[0])

    @property
    def index(self) -> np.ndarray:
        """The index close (alias of ``close``)."""
        return self.close

    def visit_low_first(self) -> np.ndarray:
        """Per bar, whether the low is visited before the high: the recorded order when present, otherwise the
        convention (down or flat bar: low first; up bar: high first)."""
        if self.low_first is not None:
            return self.low_first
        return self.close <= self.open


@dataclass(frozen=True, eq=False)
class PricePath:
    """A time grid and per-symbol integer-tick series; see the module docstring and docs/paths.md."""

    times_ns: np.ndarray
    end_ns: int
    series: tuple[SymbolSeries, ...]
    funding: tuple[FundingEvent, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        times = np.asarray(self.times_ns)
        if times.ndim != 1 or times.shape[0] < 1 or times.dtype.kind not in "iu":
            raise InputError("times_ns: expected a non-empty 1-d integer array")
        times = times.astype(np.int64, copy=True)
        times.flags.writeable = False
        if times.shape[0] > 1 and not np.all(np.diff(times) > 0):
            i = int(np.nonzero(np.diff(times) <= 0)[0][0]) + 1
            raise InputError(f"times_ns must be strictly increasing (index {i}: {times[i - 1]} then {times[i]})")
        if not isinstance(self.end_ns, (int, np.integer)) or int(self.end_ns) <= int(times[-1]):
            raise InputError(f"end_ns must be an int > the last bar's open time {int(times[-1])}")
        object.__setattr__(self, "times_ns", times)
        object.__setattr__(self, "end_ns", int(self.end_ns))
        durations = np.diff(np.append(times, np.int64(self.end_ns)))
        if int(durations.min()) < 4:
            raise InputError("every bar must last at least 4 ns (open, two extremes and close get distinct times)")
        series = tuple(self.series)
        if not series or not all(isinstance(s, SymbolSeries) for s in series):
            raise InputError("series: expected one or more SymbolSeries")
        symbols = [s.symbol for s in series]
        if len(set(symbols)) != len(symbols):
            raise InputError(f"series: duplicate symbol in {symbols}")
        for s in series:
            if len(s) != times.shape[0]:
                raise InputError(f"{s.symbol}: {len(s)} bars but {times.shape[0]} times")
        object.__setattr__(self, "series", series)
        funding = tuple(sorted(self.funding, key=lambda e: (e.time_ns, symbols.index(e.symbol) if e.symbol in symbols else -1)))
        for event in funding:
            if not isinstance(event, FundingEvent) or event.symbol not in symbols:
                raise InputError(f"funding: {event!r} is not a FundingEvent of a symbol in the path")
        object.__setattr__(self, "funding", funding)
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    # -- access --------------------------------------------------------------------------------------
    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(s.symbol for s in self.series)

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])

    def __getitem__(self, symbol: str) -> SymbolSeries:
        for s in self.series:
            if s.symbol == symbol:
                return s
        raise KeyError(symbol)

    def shifted(self, delta_ns: int) -> "PricePath":
        """The same path with every time (bars, end, funding) moved by ``delta_ns``. Historical paths are in
        epoch time; shift them to start near 0 before driving an exchange (shift by a multiple of the funding
        interval to keep funding boundaries aligned)."""
        if not isinstance(delta_ns, (int, np.integer)) or isinstance(delta_ns, bool):
            raise InputError(f"delta_ns must be an int, got {delta_ns!r}")
        delta = int(delta_ns)
        if int(self.times_ns[0]) + delta < 0:
            raise InputError(f"delta_ns={delta} would move the path before time 0")
        return PricePath(self.times_ns + np.int64(delta), self.end_ns + delta, self.series,
                         tuple(FundingEvent(e.time_ns + delta, e.symbol, e.rate_e8) for e in self.funding), self.meta)

    # -- iteration -----------------------------------------------------------------------------------
    def steps(self) -> Iterator[Bar]:
        """Every bar in time order; at one time, symbols in path order."""
        ends = np.append(self.times_ns[1:], np.int64(self.end_ns)).tolist()
        times = self.times_ns.tolist()
        cols = []
        for s in self.series:
            cols.append((s.symbol, s.open.tolist(), s.high.tolist(), s.low.tolist(), s.close.tolist(),
                         s.visit_low_first().tolist(),
                         s.mark.tolist() if s.mark is not None else None,
                         s.last.tolist() if s.last is not None else None))
        for i, t in enumerate(times):
            for sym, o, h, lo, c, lf, mk, ls in cols:
                yield Bar(t, ends[i], sym, o[i], h[i], lo[i], c[i], bool(lf[i]),
                          mk[i] if mk is not None else None, ls[i] if ls is not None else None)

    def events(self) -> Iterator[PricePoint | FundingEvent]:
        """The flat, time-ordered stream a runner applies: per bar four :class:`PricePoint` per symbol (see
        :meth:`Bar.point_times` and :meth:`Bar.sequence`; mark and last ride on the close point), with the
        :class:`FundingEvent` merged in (a funding event comes before price points of the same time)."""
        funding = list(self.funding)
        k = 0
        n_sym = len(self.series)
        bars: list[Bar] = []
        for bar in self.steps():
            bars.append(bar)
            if len(bars) < n_sym:
                continue
            times = bars[0].point_times()
            sequences = [b.sequence() for b in bars]
            for j in range(4):
                while k < len(funding) and funding[k].time_ns <= times[j]:
                    yield funding[k]
                    k += 1
                for b, seq in zip(bars, sequences):
                    phase, ticks = seq[j]
                    if j == 3:
                        yield PricePoint(times[j], b.symbol, phase, ticks, b.mark, b.last)
                    else:
                        yield PricePoint(times[j], b.symbol, phase, ticks)
            bars = []
        yield from funding[k:]

