"""Index and mark prices per symbol (rules §6). Prices in ticks, time in ns, rates ×10⁸.

The index is an input (``SetIndexPrice``). Each index observation also takes one *basis sample*
``mid − index`` from the book (only when both sides are quoted; kept as ``2 × (mid − index) = bid + ask −
2 × index`` so a half-tick mid stays exact) and drops samples older than the instrument's
``mark.basis_window_ns`` (a sample at ``t`` is kept while ``t > now − window``).

The mark depends on the instrument's ``mark.source``:

- MEDIAN: ``median(P1, P2, last)`` recomputed at every index observation, with
  ``P1 = floor(index × (10⁸·interval + rate_e8 × time_to_next_funding) / (10⁸·interval))``
  (``interval`` = the venue's settlement interval, ``profile.funding_interval_ns``;
  ``time_to_next_funding = interval − now mod interval``; ``rate`` = the rate paid at the last settlement,
  set by :mod:`exchange.funding.stage`, 0 until the first), ``P2 = index + floor(Σ 2·basis / (2·n))``
  (``index`` with no sample) and ``last`` = the last trade price (the index before the first trade);
- INDEX: the index itself;
- FAIR_PRICE (BitMEX's fair price marking): ``index × (1 + funding basis)``, the funding basis being the last
  funding rate × time to the next funding / interval: exactly P1 above, recomputed at every index observation;
- EXTERNAL: only ``SetMarkPrice`` moves it; index observations are recorded but do not move the mark.

The source is the instrument's ``mark.source``, or the profile's ``mark_source`` when that is set (it then
applies to every instrument).

``SetMarkPrice`` is accepted under every source (an external feed, or an override that stands until the next
index observation under MEDIAN / INDEX). Marks are clamped to the instrument's price range.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .spec import Instrument, MarkSource
from .units import E8


@dataclass(slots=True)
class PriceFeed:
    """One symbol's index, last funding rate and basis samples ``(time_ns, 2 × (mid − index))``."""

    index_ticks: int = 0
    funding_rate_e8: int = 0
    samples: deque = field(default_factory=deque)

    def as_state(self) -> tuple:
        return self.index_ticks, self.funding_rate_e8, [list(sample) for sample in self.samples]


def premium_mark_ticks(index_ticks: int, funding_rate_e8: int, time_to_next_ns: int, interval_ns: int) -> int:
    """P1 = ``floor(index × (1 + rate × time_to_next / interval))`` ticks."""
    return (index_ticks * (E8 * interval_ns + funding_rate_e8 * time_to_next_ns)) // (E8 * interval_ns)


def basis_mark_ticks(index_ticks: int, twice_basis: list[int]) -> int:
    """P2 = ``index + floor(mean(mid − index))`` ticks; the index when there is no sample."""
    if not twice_basis:
        return index_ticks
    return index_ticks + sum(twice_basis) // (2 * len(twice_basis))


def median_mark_ticks(p1_ticks: int, p2_ticks: int, last_ticks: int) -> int:
    """The middle of the three prices."""
    return sorted((p1_ticks, p2_ticks, last_ticks))[1]


class Prices:
    """The price feeds of every instrument; ``funding_interval_ns`` is the venue's settlement interval;
    ``mark_source`` (the profile's), when not None, replaces every instrument's own mark source."""

    def __init__(self, instruments: dict[str, Instrument], funding_interval_ns: int,
                 mark_source: MarkSource | None = None):
        self.instruments = instruments
        self.funding_interval_ns = funding_interval_ns
        self.sources = {symbol: MarkSource(mark_source or inst.mark.source) for symbol, inst in instruments.items()}
        self.feeds = {symbol: PriceFeed() for symbol in instruments}

    def observe_index(self, symbol: str, index_ticks: int, now_ns: int, bid_ticks: int, ask_ticks: int,
                      last_ticks: int) -> int | None:
        """Record an index observation (and a basis sample when both sides are quoted); return the new mark
        under the MEDIAN / INDEX / FAIR_PRICE sources, None under EXTERNAL. O(expired samples)."""
        inst = self.instruments[symbol]
        feed = self.feeds[symbol]
        source = self.sources[symbol]
        feed.index_ticks = index_ticks
        if bid_ticks and ask_ticks:
            feed.samples.append((now_ns, bid_ticks + ask_ticks - 2 * index_ticks))
        while feed.samples and feed.samples[0][0] <= now_ns - inst.mark.basis_window_ns:
            feed.samples.popleft()
        if source == MarkSource.EXTERNAL:
            return None
        if source == MarkSource.INDEX:
            return _in_range(inst, index_ticks)
        if source == MarkSource.FAIR_PRICE:
            return _in_range(inst, self._p1(symbol, now_ns))
        return self._median(symbol, now_ns, last_ticks)

    def refresh_mark(self, symbol: str, now_ns: int, last_ticks: int) -> int | None:
        """The MEDIAN mark recomputed with a new last trade price (no new observation); None under the other
        sources or before the first index observation. Liquidation fills move the mark this way (cascades)."""
        if self.sources[symbol] != MarkSource.MEDIAN or not self.feeds[symbol].index_ticks:
            return None
        return self._median(symbol, now_ns, last_ticks)

    def _p1(self, symbol: str, now_ns: int) -> int:
        """P1 (= BitMEX's fair price) from the feed's index and last funding rate at ``now_ns``."""
        feed = self.feeds[symbol]
        interval = self.funding_interval_ns
        return premium_mark_ticks(feed.index_ticks, feed.funding_rate_e8, interval - now_ns % interval, interval)

    def _median(self, symbol: str, now_ns: int, last_ticks: int) -> int:
        """``median(P1, P2, last)`` from the feed's index, rate and samples, clamped to the price range."""
        feed = self.feeds[symbol]
        p2 = basis_mark_ticks(feed.index_ticks, [basis for _, basis in feed.samples])
        return _in_range(self.instruments[symbol], median_mark_ticks(self._p1(symbol, now_ns), p2,
                                                                     last_ticks or feed.index_ticks))

    def canonical_state(self) -> list:
        return [(symbol, self.feeds[symbol].as_state()) for symbol in sorted(self.feeds)]

    def snapshot_state(self) -> list:
        """Every feed, by symbol: ``[symbol, index, last funding rate, [[time, 2 × basis], ...]]`` (samples
        oldest first): :meth:`restore_state` inverts it."""
        return [[symbol, *self.feeds[symbol].as_state()] for symbol in sorted(self.feeds)]

    def restore_state(self, state) -> None:
        """Load a :meth:`snapshot_state` (one entry per symbol). Raises ValueError for an unknown or missing symbol."""
        if sorted(symbol for symbol, *_ in state) != sorted(self.feeds):
            raise ValueError("price feeds do not match the instruments")
        for symbol, index_ticks, funding_rate_e8, samples in state:
            self.feeds[symbol] = PriceFeed(int(index_ticks), int(funding_rate_e8),
                                           deque((int(t), int(basis)) for t, basis in samples))


def _in_range(inst: Instrument, ticks: int) -> int:
    """``ticks`` clamped to the instrument's price range."""
    return min(max(ticks, inst.min_price_ticks), inst.max_price_ticks)
