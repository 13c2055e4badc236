"""Loaders for Binance public-data files (data.binance.vision, USDⓈ-M futures) -> integer arrays / PricePath.

Accepted files (docs/paths.md §4), each a ``.zip`` holding exactly one CSV or a plain CSV, with or without the
header row (a first row whose first field is not a number is taken as the header and must carry the
expected first column name and column count); blank lines are skipped:

=========================================  =========================================================================
file                                        columns
=========================================  =========================================================================
``klines``, ``indexPriceKlines``,           open_time, open, high, low, close, volume, close_time, quote_volume,
``markPriceKlines``                         count, taker_buy_volume, taker_buy_quote_volume, ignore   (12)
``fundingRate``                             calc_time, funding_interval_hours, last_funding_rate       (3)
``aggTrades``                               agg_trade_id, price, quantity, first_trade_id, last_trade_id,
                                            transact_time, is_buyer_maker   (7; spot's 8th is_best_match accepted)
=========================================  =========================================================================

Times: the unit of a file is detected from its first time value: below 10¹⁴ it is milliseconds (10¹⁴ ms is
the year 5138), from 10¹⁴ to below 10¹⁷ microseconds (newer spot files; 10¹⁴ µs is 1973); every later time of
the file must be in the same unit. Times become integer ns since the Unix epoch.

Prices: decimal strings converted exactly (integer / rational arithmetic, never float) to ticks of the
instrument; an off-grid price (index prices carry 8 decimals) is rounded to the nearest tick, ties away from
zero, and counted (``meta["off_grid"]``); ``strict_grid=True`` makes it an error instead. A price that
rounds below 1 tick becomes 1 tick; a price ≤ 0 or above the instrument's max price is an error. Funding rates
become ×10⁸ the same way.

Any malformed input (missing file, not a zip, several or no members in the zip, not UTF-8 text, wrong column
count, non-numeric field, unsorted times, inconsistent bar, empty file) raises
:class:`~exchange.units.InputError` whose message starts ``<file>[:<member>] line <n>:``.
"""
from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..spec import Instrument
from ..units import InputError
from .paths import FundingEvent, PricePath, SymbolSeries, decimal_to_ticks

__all__ = ["KlineBars", "Trades", "read_klines", "read_funding", "read_agg_trades", "path_from_klines",
           "path_from_agg_trades"]

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                 "taker_buy_volume", "taker_buy_quote_volume", "ignore")
FUNDING_COLUMNS = ("calc_time", "funding_interval_hours", "last_funding_rate")
AGG_TRADE_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                     "is_buyer_maker")

_MS_LIMIT = 10**14
_US_LIMIT = 10**17
_NUMBER = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?\Z")
_PLAIN_PRICE = re.compile(r"(\d+)(?:\.(\d*))?\Z")


# --------------------------------------------------------------------------------------------------
# low level: files, rows, fields
# --------------------------------------------------------------------------------------------------
def _as_files(files, name: str) -> list:
    if isinstance(files, (str, bytes, os.PathLike)):
        return [files]
    if isinstance(files, Sequence) and files and all(isinstance(f, (str, os.PathLike)) for f in files):
        return list(files)
    raise InputError(f"{name}: expected a file path or a non-empty sequence of file paths, got {files!r}")


def _open_text(path) -> tuple[str, io.TextIOBase]:
    """-> (label, text stream) for a .zip with one member or a plain CSV."""
    label = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise InputError(f"{label} line 1: cannot read ({exc.strerror or exc})") from None
    if magic.startswith(b"PK"):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(f"{label} line 1: not a valid zip file ({exc})") from None
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            archive.close()
            raise InputError(f"{label} line 1: expected exactly one file in the zip, found {len(members)}")
        member = members[0]
        try:
            raw = archive.open(member)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
            archive.close()
            raise InputError(f"{label} line 1: cannot open {member.filename} in the zip ({exc})") from None
        return f"{label}:{member.filename}", io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    if label.lower().endswith(".zip"):
        raise InputError(f"{label} line 1: not a zip file")
    return label, open(path, encoding="utf-8-sig", newline="")


def _rows(path, columns: tuple[str, ...], extra_ok: int = 0) -> Iterator[tuple[str, int, list[str]]]:
    """Yield ``(label, line, fields)`` of the data rows, header (if any) and blank lines skipped."""
    label, stream = _open_text(path)
    seen = False  # first non-blank row (header or data) handled
    data = False
    line = 0
    with stream:
        reader = csv.reader(stream)
        try:
            for row in reader:
                line = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) not in range(len(columns), len(columns) + extra_ok + 1):
                    raise InputError(f"{label} line {line}: expected {len(columns)} columns, got {len(row)}")
                if not seen:
                    seen = True
                    first = row[0].strip()
                    if not (first.isascii() and first.isdigit()):
                        if first.lower() != columns[0]:
                            raise InputError(f"{label} line {line}: first field {row[0]!r} is neither a number nor "
                                             f"the header {columns[0]!r}")
                        continue
                data = True
                yield label, line, row
        except UnicodeDecodeError:
            raise InputError(f"{label} line {line + 1}: not UTF-8 text (not a CSV file?)") from None
        except csv.Error as exc:
            raise InputError(f"{label} line {reader.line_num}: not a CSV row ({exc})") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{label} line {line + 1}: cannot read ({exc})") from None
    if not data:
        raise InputError(f"{label} line {max(line, 1)}: empty file (no data rows)")


def _int_field(label, line, name, text) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"{label} line {line}: {name} {text!r} is not a non-negative integer")
    return int(text)


def _check_numeric(label, line, row, indices):
    for i in indices:
        if not _NUMBER.match(row[i].strip()):
            raise InputError(f"{label} line {line}: {KLINE_COLUMNS[i]} {row[i]!r} is not a number")


class _TimeScale:
    """Detects a file's time unit from its first value and converts every time to ns."""

    def __init__(self, label):
        self.label, self.factor = label, None

    def ns(self, line, name, value: int) -> int:
        unit = 1_000_000 if value < _MS_LIMIT else 1_000 if value < _US_LIMIT else None
        if unit is None:
            raise InputError(f"{self.label} line {line}: {name} {value} is neither milliseconds nor microseconds")
        if self.factor is None:
            self.factor = unit
        elif unit != self.factor:
            raise InputError(f"{self.label} line {line}: {name} {value} is in a different unit (ms / µs) than "
                             f"the file's first time")
        return value * unit


class _Pricer:
    """Exact decimal string -> ticks for one instrument, cached per string."""

    def __init__(self, instrument: Instrument, strict: bool):
        tick = Fraction(instrument.tick_size)
        self.num, self.den = tick.numerator, tick.denominator
        self.instrument, self.strict = instrument, strict
        self.cache: dict[str, tuple[int, bool]] = {}
        self.off_grid = 0

    def __call__(self, label, line, name, text) -> int:
        hit = self.cache.get(text)
        if hit is None:
            hit = self.cache[text] = self._convert(label, line, name, text)
        ticks, on_grid = hit
        if not on_grid:
            if self.strict:
                raise InputError(f"{label} line {line}: {name} {text.strip()} is not a multiple of the tick size "
                                 f"{self.instrument.tick_size} (strict_grid)")
            self.off_grid += 1
        return ticks

    def _convert(self, label, line, name, text) -> tuple[int, bool]:
        stripped = text.strip()
        match = _PLAIN_PRICE.match(stripped)
        if match:  # fast exact path: digits / 10^k / (num / den), nearest, ties away from zero
            frac = match.group(2) or ""
            numerator = int(match.group(1) + frac) * self.den
            denominator = 10 ** len(frac) * self.num
            ticks, rest = divmod(numerator, denominator)
            if 2 * rest >= denominator:
                ticks += 1
            on_grid, positive = rest == 0, numerator > 0
        else:
            if not _NUMBER.match(stripped):
                raise InputError(f"{label} line {line}: {name} {text!r} is not a number")
            try:
                ticks, on_grid = decimal_to_ticks(stripped, self.instrument.tick_size)
            except InputError as exc:
                raise InputError(f"{label} line {line}: {name}: {exc}") from None
            positive = Decimal(stripped) > 0
        if not positive:
            raise InputError(f"{label} line {line}: {name} {stripped} is not a positive price")
        if ticks > self.instrument.max_price_ticks:
            raise InputError(f"{label} line {line}: {name} {stripped} is above {self.instrument.symbol}'s max price "
                             f"{self.instrument.ticks_to_price(self.instrument.max_price_ticks)}")
        if ticks < 1:
            return 1, False
        return ticks, on_grid


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class KlineBars:
    """Klines of one symbol (int64 arrays; prices in ticks, times in epoch ns)."""

    source: str  # label of the first file
    interval_ns: int
    open_time_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    lines: tuple[tuple[str, int], ...]  # (file label, line) of each bar, for messages
    off_grid: int  # prices rounded to the nearest tick


@dataclass(frozen=True, eq=False)
class Trades:
    """Aggregate trades of one symbol: epoch-ns times (non-decreasing) and prices in ticks (int64 arrays)."""

    source: str
    time_ns: np.ndarray
    price: np.ndarray
    off_grid: int


def read_klines(files, instrument: Instrument, *, strict_grid: bool = False) -> KlineBars:
    """Read ``klines`` / ``indexPriceKlines`` / ``markPriceKlines`` file(s) of one symbol, concatenated in the
    order given. Checks per row: 12 columns, numeric fields, ``close_time - open_time`` the same in every row
    (the interval is ``close_time - open_time + 1`` time unit, Binance's convention), open times strictly
    increasing (also across files), ``low <= open, close <= high``."""
    pricer = _Pricer(instrument, strict_grid)
    times, opens, highs, lows, closes, lines = [], [], [], [], [], []
    interval = None
    first_label = None
    for path in _as_files(files, "klines"):
        scale = None
        for label, line, row in _rows(path, KLINE_COLUMNS):
            if scale is None:
                scale = _TimeScale(label)
                first_label = first_label or label
            _check_numeric(label, line, row, range(11))
            t_open = scale.ns(line, "open_time", _int_field(label, line, "open_time", row[0]))
            t_close = scale.ns(line, "close_time", _int_field(label, line, "close_time", row[6]))
            span = t_close - t_open + scale.factor
            if span <= 0:
                raise InputError(f"{label} line {line}: close_time is before open_time")
            if interval is None:
                interval = span
            elif span != interval:
                raise InputError(f"{label} line {line}: bar interval {span} ns differs from the first bar's "
                                 f"{interval} ns (mixed or calendar intervals such as 1M are not supported)")
            if times and t_open <= times[-1]:
                raise InputError(f"{label} line {line}: open_time {row[0].strip()} is not after the previous bar's "
                                 f"(times must be strictly increasing)")
            o, h, lo, c = (pricer(label, line, name, row[i]) for i, name in ((1, "open"), (2, "high"), (3, "low"),
                                                                             (4, "close")))
            if not (lo <= min(o, c) and h >= max(o, c)):
                raise InputError(f"{label} line {line}: need low <= open, close <= high")
            times.append(t_open)
            opens.append(o), highs.append(h), lows.append(lo), closes.append(c)
            lines.append((label, line))
    arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
    return KlineBars(first_label, interval, arr(times), arr(opens), arr(highs), arr(lows), arr(closes), tuple(lines),
                     pricer.off_grid)


def read_funding(files, symbol: str, *, strict_grid: bool = False) -> tuple[FundingEvent, ...]:
    """Read ``fundingRate`` file(s): one :class:`FundingEvent` per row (``calc_time`` → ns, ``last_funding_rate``
    → ×10⁸, nearest, ties away from zero; more than 8 decimals is an error with ``strict_grid``)."""
    events: list[FundingEvent] = []
    for path in _as_files(files, "funding"):
        scale = None
        for label, line, row in _rows(path, FUNDING_COLUMNS):
            scale = scale or _TimeScale(label)
            t = scale.ns(line, "calc_time", _int_field(label, line, "calc_time", row[0]))
            _int_field(label, line, "funding_interval_hours", row[1])
            text = row[2].strip()
            if not _NUMBER.match(text):
                raise InputError(f"{label} line {line}: last_funding_rate {row[2]!r} is not a number")
            rate, on_grid = decimal_to_ticks(text, Decimal("0.00000001"))
            if strict_grid and not on_grid:
                raise InputError(f"{label} line {line}: last_funding_rate {text} has more than 8 decimals")
            if events and t <= events[-1].time_ns:
                raise InputError(f"{label} line {line}: calc_time {row[0].strip()} is not after the previous row's")
            events.append(FundingEvent(t, symbol, rate))
    return tuple(events)


def read_agg_trades(files, instrument: Instrument, *, strict_grid: bool = False) -> Trades:
    """Read ``aggTrades`` file(s) of one symbol: ``transact_time`` → ns (non-decreasing, also across files),
    ``price`` → ticks. The other columns are checked to be numeric (``is_buyer_maker``: true/false)."""
    pricer = _Pricer(instrument, strict_grid)
    times: list[int] = []
    prices: list[int] = []
    first_label = None
    for path in _as_files(files, "agg_trades"):
        scale = None
        for label, line, row in _rows(path, AGG_TRADE_COLUMNS, extra_ok=1):
            if scale is None:
                scale = _TimeScale(label)
                first_label = first_label or label
            for i in (0, 3, 4):
                _int_field(label, line, AGG_TRADE_COLUMNS[i], row[i])
            if not _NUMBER.match(row[2].strip()):
                raise InputError(f"{label} line {line}: quantity {row[2]!r} is not a number")
            if row[6].strip().lower() not in ("true", "false"):
                raise InputError(f"{label} line {line}: is_buyer_maker {row[6]!r} is not true/false")
            t = scale.ns(line, "transact_time", _int_field(label, line, "transact_time", row[5]))
            if times and t < times[-1]:
                raise InputError(f"{label} line {line}: transact_time {row[5].strip()} is before the previous "
                                 f"trade's (times must be non-decreasing)")
            prices.append(pricer(label, line, "price", row[1]))
            times.append(t)
    return Trades(first_label, np.array(times, dtype=np.int64), np.array(prices, dtype=np.int64), pricer.off_grid)


# --------------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------------
def _instrument_map(instruments) -> dict[str, Instrument]:
    if isinstance(instruments, Instrument):
        instruments = (instruments,)
    if isinstance(instruments, Mapping):
        instruments = tuple(instruments.values())
    if not isinstance(instruments, Sequence) or not instruments or not all(isinstance(i, Instrument)
                                                                            for i in instruments):
        raise InputError("instruments: expected an Instrument or a non-empty sequence of them")
    result = {inst.symbol: inst for inst in instruments}
    if len(result) != len(instruments):
        raise InputError("instruments: duplicate symbol")
    return result


def _per_symbol(name: str, files, symbols, *, required: bool) -> dict:
    if files is None:
        if required:
            raise InputError(f"{name}: required")
        return {}
    if not isinstance(files, Mapping):
        if len(symbols) != 1:
            raise InputError(f"{name}: with several instruments pass a mapping symbol -> file(s)")
        files = {symbols[0]: files}
    unknown = [s for s in files if s not in symbols]
    if unknown:
        raise InputError(f"{name}: {unknown} are not among the instruments {list(symbols)}")
    if required:
        missing = [s for s in symbols if s not in files]
        if missing:
            raise InputError(f"{name}: no file(s) for {missing}")
    return dict(files)


def _align(bars: KlineBars, start: int, n: int, gaps: str) -> tuple[np.ndarray, ...]:
    """Bars on the grid ``start + i·interval`` (i < n); gaps raise or are forward-filled with flat bars."""
    interval = bars.interval_ns
    offset = bars.open_time_ns - bars.open_time_ns[0]
    if np.any(offset % interval):
        i = int(np.nonzero(offset % interval)[0][0])
        label, line = bars.lines[i]
        raise InputError(f"{label} line {line}: open_time is not on the {interval} ns grid of the file's first bar")
    pos = offset // interval
    steps = np.diff(pos)
    if gaps == "error" and np.any(steps > 1):
        i = int(np.nonzero(steps > 1)[0][0]) + 1
        label, line = bars.lines[i]
        raise InputError(f"{label} line {line}: {int(steps[i - 1]) - 1} missing bar(s) before this one "
                         f"(gaps='error'; pass gaps='ffill' to fill them with flat bars)")
    size = int(pos[-1]) + 1
    filled = np.full(size, -1, dtype=np.int64)
    filled[pos] = np.arange(pos.shape[0])
    # forward fill: each grid slot takes the latest real bar at or before it
    latest = np.maximum.accumulate(filled)
    real = filled >= 0
    src = latest
    close = bars.close[src]
    o = np.where(real, bars.open[src], close)
    h = np.where(real, bars.high[src], close)
    lo = np.where(real, bars.low[src], close)
    first = (start - int(bars.open_time_ns[0])) // interval
    sl = slice(first, first + n)
    return o[sl], h[sl], lo[sl], close[sl]


def path_from_klines(instruments, klines, *, index_klines=None, mark_klines=None, funding=None,
                     gaps: str = "error", strict_grid: bool = False) -> PricePath:
    """A :class:`PricePath` from Binance klines of one or several symbols.

    ``klines``, ``index_klines``, ``mark_klines`` and ``funding`` map symbol -> file or list of files (with a
    single instrument the file(s) may be passed directly); ``klines`` is required for every instrument, the
    others are optional per symbol. Per symbol the path's index OHLC comes from ``index_klines`` when given,
    else from ``klines``; ``last`` is the klines close; ``mark`` the mark-kline close when given.

    Alignment: every source must have the same interval; the grid is the common range (latest first bar to
    earliest last bar) in steps of the interval. A missing bar inside a file is an error (``gaps="error"``,
    the default) or filled with a flat bar at the previous close (``gaps="ffill"``). Funding events outside
    ``[first bar open, end]`` are dropped. Times stay epoch ns: use :meth:`PricePath.shifted` before a run.
    """
    if gaps not in ("error", "ffill"):
        raise InputError(f"gaps must be 'error' or 'ffill', got {gaps!r}")
    insts = _instrument_map(instruments)
    symbols = tuple(insts)
    sources = {"klines": _per_symbol("klines", klines, symbols, required=True),
               "index_klines": _per_symbol("index_klines", index_klines, symbols, required=False),
               "mark_klines": _per_symbol("mark_klines", mark_klines, symbols, required=False)}
    funding_files = _per_symbol("funding", funding, symbols, required=False)
    loaded: dict[tuple[str, str], KlineBars] = {}
    for kind, per_symbol in sources.items():
        for symbol, files in per_symbol.items():
            loaded[kind, symbol] = read_klines(files, insts[symbol], strict_grid=strict_grid)
    intervals = {bars.interval_ns for bars in loaded.values()}
    if len(intervals) != 1:
        detail = ", ".join(f"{bars.source}: {bars.interval_ns} ns" for bars in loaded.values())
        raise InputError(f"klines: all files must have the same interval ({detail})")
    interval = intervals.pop()
    start = max(int(b.open_time_ns[0]) for b in loaded.values())
    last = min(int(b.open_time_ns[-1]) for b in loaded.values())
    if start > last:
        raise InputError("klines: the files have no common time range")
    for bars in loaded.values():
        if (start - int(bars.open_time_ns[0])) % interval:
            raise InputError(f"{bars.source} line {bars.lines[0][1]}: open times are not on the same grid as the "
                             f"other files")
    n = (last - start) // interval + 1
    times = start + interval * np.arange(n, dtype=np.int64)
    end_ns = start + interval * n
    series, off_grid = [], {}
    for symbol in symbols:
        trade = _align(loaded["klines", symbol], start, n, gaps)
        index = _align(loaded["index_klines", symbol], start, n, gaps) if ("index_klines", symbol) in loaded else trade
        mark = _align(loaded["mark_klines", symbol], start, n, gaps)[3] if ("mark_klines", symbol) in loaded else None
        series.append(SymbolSeries(symbol, *index, mark=mark, last=trade[3]))
        off_grid[symbol] = sum(loaded[k, symbol].off_grid for k in sources if (k, symbol) in loaded)
    events = []
    for symbol, files in funding_files.items():
        events.extend(e for e in read_funding(files, symbol, strict_grid=strict_grid) if start <= e.time_ns <= end_ns)
    meta = dict(source="binance-klines", interval_ns=interval, gaps=gaps, off_grid=off_grid)
    return PricePath(times, end_ns, tuple(series), tuple(events), meta)


def path_from_agg_trades(instruments, agg_trades, *, bar_ns: int, funding=None,
                         strict_grid: bool = False) -> PricePath:
    """A :class:`PricePath` from Binance ``aggTrades`` resampled into bars of ``bar_ns``.

    Bars are aligned to multiples of ``bar_ns`` since the epoch; bar ``[t, t + bar_ns)`` takes the first trade's
    price as open, the last's as close, the max / min as high / low, and records which extreme traded first
    (``low_first``). The grid runs from the latest first-trade bar to the earliest last-trade bar over the
    symbols; a bar without trades is flat at the previous close (forward fill: quiet seconds are normal; the
    previous close may come from a trade before the grid). ``last`` = close; no mark.
    """
    if isinstance(bar_ns, bool) or not isinstance(bar_ns, (int, np.integer)) or bar_ns < 4:
        raise InputError(f"bar_ns must be an int >= 4, got {bar_ns!r}")
    bar_ns = int(bar_ns)
    insts = _instrument_map(instruments)
    symbols = tuple(insts)
    files = _per_symbol("agg_trades", agg_trades, symbols, required=True)
    funding_files = _per_symbol("funding", funding, symbols, required=False)
    trades = {s: read_agg_trades(files[s], insts[s], strict_grid=strict_grid) for s in symbols}
    start = max(int(t.time_ns[0]) // bar_ns * bar_ns for t in trades.values())
    last = min(int(t.time_ns[-1]) // bar_ns * bar_ns for t in trades.values())
    if start > last:
        raise InputError("agg_trades: the files have no common time range")
    n = (last - start) // bar_ns + 1
    times = start + bar_ns * np.arange(n, dtype=np.int64)
    end_ns = start + bar_ns * n
    series = []
    for symbol in symbols:
        t, p = trades[symbol].time_ns, trades[symbol].price
        bucket = (t - start) // bar_ns
        lo_i = int(np.searchsorted(bucket, 0, side="left"))
        hi_i = int(np.searchsorted(bucket, n, side="left"))
        seed = int(p[lo_i - 1]) if lo_i > 0 else None
        b, q = bucket[lo_i:hi_i], p[lo_i:hi_i]
        idx = np.arange(q.shape[0])
        starts = np.nonzero(np.r_[True, np.diff(b) > 0])[0]
        slots = b[starts]
        o_r = q[starts]
        c_r = q[np.r_[starts[1:] - 1, q.shape[0] - 1]]
        h_r = np.maximum.reduceat(q, starts)
        l_r = np.minimum.reduceat(q, starts)
        seg = np.repeat(np.arange(starts.shape[0]), np.diff(np.r_[starts, q.shape[0]]))
        big = np.iinfo(np.int64).max
        first_hi = np.minimum.reduceat(np.where(q == h_r[seg], idx, big), starts)
        first_lo = np.minimum.reduceat(np.where(q == l_r[seg], idx, big), starts)
        lf_r = first_lo <= first_hi
        which = np.full(n, -1, dtype=np.int64)
        which[slots] = np.arange(slots.shape[0])
        latest = np.maximum.accumulate(which)
        real = which >= 0
        if not real[0]:  # the first bar has no trade: it opens at the last trade before the grid
            if seed is None:
                raise InputError(f"{trades[symbol].source}: no trade at or before the first bar")
        prev_close = np.where(latest >= 0, c_r[np.maximum(latest, 0)], seed if seed is not None else 0)
        close = prev_close
        series.append(SymbolSeries(
            symbol,
            np.where(real, o_r[which], close), np.where(real, h_r[which], close),
            np.where(real, l_r[which], close), close,
            last=close, low_first=np.where(real, lf_r[which], True)))
    events = []
    for symbol, fs in funding_files.items():
        events.extend(e for e in read_funding(fs, symbol, strict_grid=strict_grid) if start <= e.time_ns <= end_ns)
    meta = dict(source="binance-aggTrades", bar_ns=bar_ns,
                off_grid={s: trades[s].off_grid for s in symbols})
    return PricePath(times, end_ns, tuple(series), tuple(events), meta)
