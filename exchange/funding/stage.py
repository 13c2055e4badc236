"""The exchange's funding stage (rules §8): premium samples on a fixed cadence, settlement at interval
boundaries, history. The arithmetic is :mod:`exchange.funding.rate`'s; this module keeps the state and moves money.

Clock (simulation time, aligned to multiples from time 0):

- symbol ``s`` takes a premium sample at every multiple of its ``funding.sample_interval_ns``;
- every symbol settles at every multiple of ``profile.funding_interval_ns``.

A boundary belongs to the ``AdvanceTime`` that reaches it (``now_ns ≥ t``): the sample at ``t`` and the
settlement at ``t`` happen before any command stamped ``t``. :meth:`Funding.steps` lists the sample times and
settlement boundaries an ``AdvanceTime`` crosses, in time order; at one instant the samples come first, so the
sample at a boundary counts toward that boundary's rate. A symbol whose index was never set takes no sample
(there is no premium without an index); a settlement after an interval without samples uses ``P_avg = 0``,
i.e. the interest rate, clamped.

Settlement of ``symbol`` at ``t`` with rate ``F`` (:func:`exchange.funding.rate.settlement_rate_e8` over the
interval's samples, the venue's cap rule and divisor) and ``mark`` = the symbol's risk price at ``t`` — or,
under ``profile.funding_price == INDEX`` (hyperliquid), its oracle (index) price once one is set:
the funding index moves by the per-lot ``delta`` (:func:`exchange.funding.rate.index_delta_e8`, ``mark × K × F``
under the RATE accrual) and every open position pays ``index_payment_units(lots, delta)`` (> 0 pays, < 0
receives; the payer's amount rounded up, the receiver's down). Cross positions settle in the wallet,
isolated ones in their isolated margin. ``Σ payments ≥ 0`` is the rounding dust; it goes to the symbol's
insurance fund (its reserved ledger account, :mod:`exchange.liquidation.insurance`), so ``Σ wallets + Σ isolated
margins`` does not change (rules §9). A fund
holding a taken-over position pays and receives funding like any other account. Payments are charged in full
even when they exceed what the payer holds: a wallet or isolated margin may go negative, and the
liquidation stage (which runs after the command) deals with it; money stays conserved either way.
The settled rate becomes the symbol's last funding rate (the mark's P1 input, :mod:`exchange.prices`).

:meth:`Funding.state` answers ``Exchange.funding_state``: every part of the running interval's rate
(:class:`FundingState`).

Invariants: every sampler holds only samples taken after the symbol's last settlement; history times are
strictly increasing multiples of the interval; the funding index is the sum of the settled deltas.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import groupby
from typing import Iterator

from . import rate as funding
from .. import _impl
from ..accounts.ledger import Ledger
from ..enums import BalanceReason, MarginMode
from ..events import BalanceChanged, FundingPaid, FundingSettled, PositionChanged
from ..prices import Prices
from ..profiles import FundingPrice, VenueProfile
from ..spec import Instrument


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One settlement: boundary time (ns), the rate paid (×10⁸, per settlement) and the price the payments used
    (ticks: the mark, or the oracle price under ``FundingPrice.INDEX``)."""

    time_ns: int
    rate_e8: int
    mark_ticks: int


@dataclass(slots=True)
class Sampler:
    """Premium samples of the running interval, kept as ``count`` and ``Σ i·P_i`` (exact, ×10⁸)."""

    count: int = 0
    weighted_sum_e8: int = 0

    def add(self, premium_e8: int) -> None:
        """Append the next sample (weight ``count + 1``). O(1)."""
        self.count += 1
        self.weighted_sum_e8 += self.count * premium_e8

    def add_repeated(self, premium_e8: int, count: int) -> None:
        """Append ``count`` equal samples (weights ``n + 1 .. n + count``). O(1)."""
        self.weighted_sum_e8 += premium_e8 * (count * self.count + count * (count + 1) // 2)
        self.count += count

    def average_e8(self) -> Fraction:
        return funding.weighted_average(self.weighted_sum_e8, self.count)


@dataclass(frozen=True, slots=True)
class FundingState:
    """The parts of a symbol's funding rate now (``Exchange.funding_state``). Rates ×10⁸ of one rate period
    (8 h by default) unless named per settlement; exact values are Fractions; prices in ticks, money in units.

    ``premium_e8`` is the sample the book gives now (None without an index); ``impact_bid_ticks`` /
    ``impact_ask_ticks`` the average fill prices of the impact notional (None: that side cannot absorb it);
    ``premium_average_e8`` the weighted average ``Σ i·P_i / Σ i`` of the ``samples`` taken since the last
    settlement; ``interest_e8`` the interest rate I; ``clamp_e8`` the dampener; ``floor_e8`` / ``cap_e8`` the
    bounds of the profile's cap rule; ``period_rate_e8`` = ``clamp(P_avg + clamp(I − P_avg, ±clamp), floor,
    cap)``; ``predicted_rate_e8`` what a settlement now would pay (``period_rate ÷ divisor``, truncated);
    ``last_rate_e8`` the rate paid at the last settlement; ``funding_index_e8`` the cumulative funding one long
    lot has paid (units × 10⁸)."""

    symbol: str
    index_ticks: int
    impact_notional_units: int
    impact_bid_ticks: Fraction | None
    impact_ask_ticks: Fraction | None
    premium_e8: int | None
    samples: int
    premium_average_e8: Fraction
    interest_e8: Fraction
    clamp_e8: int
    floor_e8: Fraction
    cap_e8: Fraction
    period_rate_e8: Fraction
    rate_divisor: int
    predicted_rate_e8: int
    last_rate_e8: int
    funding_index_e8: int
    next_funding_time_ns: int


@dataclass(slots=True)
class SymbolFunding:
    sampler: Sampler = field(default_factory=Sampler)
    history: list[FundingRecord] = field(default_factory=list)
    index_e8: int = 0  # the funding index: Σ per-lot deltas settled (units × 10⁸)

    def as_state(self) -> tuple:
        """``(count, Σ i·P_i, history, funding index)``. The sum and the index are unbounded (premiums far from the
        index, many settlements), so outside msgpack's integer range they are written as decimal strings
        (``int()`` reads either back)."""
        history = [(r.time_ns, r.rate_e8, r.mark_ticks) for r in self.history]
        return self.sampler.count, _packable(self.sampler.weighted_sum_e8), history, _packable(self.index_e8)


class Funding:
    """Funding of every instrument under ``profile``. Raises ValueError when an instrument's rate period is
    not the venue's interval × divisor (:func:`exchange.funding.rate.check_rate_period`). ``compiled``: the
    payments of a settlement by ``exchange.funding._settle.pay`` (the twin of :func:`pay`)."""

    def __init__(self, instruments: dict[str, Instrument], ledger: Ledger, prices: Prices, profile: VenueProfile,
                 compiled: bool = False):
        for inst in instruments.values():
            funding.check_rate_period(inst, profile)
        self.instruments = instruments
        self.ledger = ledger
        self.prices = prices
        self.interval_ns = profile.funding_interval_ns
        self.divisor = profile.funding_rate_divisor
        self.accrual = profile.funding_accrual
        self.on_index = profile.funding_price == FundingPrice.INDEX
        self.bounds = {s: funding.rate_bounds_e8(profile.funding_cap, inst) for s, inst in instruments.items()}
        self.impact_units = {symbol: funding.impact_notional_units(inst) for symbol, inst in instruments.items()}
        self.symbols = {symbol: SymbolFunding() for symbol in instruments}
        kernel = _impl.funding_kernel if compiled else None
        if compiled and kernel is None:
            raise RuntimeError("the compiled funding settlement is not active")
        self._pay = kernel.pay if kernel else pay  # the payments of a settlement (compiled: exchange.funding._settle)

    # -- clock ------------------------------------------------------------------------------------
    def steps(self, after_ns: int, until_ns: int) -> Iterator[tuple[int, list[str], bool]]:
        """``(t, symbols sampling at t, settles at t)`` for every sample time or settlement boundary ``t`` in
        ``(after_ns, until_ns]``, ascending; symbols in name order. Lazy: O(1) memory, O(log symbols) per step."""
        streams = [((t, "") for t in _multiples(self.interval_ns, after_ns, until_ns))]
        streams += [((t, symbol) for t in _multiples(inst.funding.sample_interval_ns, after_ns, until_ns))
                    for symbol, inst in self.instruments.items()]
        for t, group in groupby(heapq.merge(*streams), key=lambda step: step[0]):
            keys = [key for _, key in group]
            yield t, [key for key in keys if key], "" in keys

    def samples_between(self, after_ns: int, before_ns: int) -> list[tuple[str, int]]:
        """``(symbol, number of its sample times t with after_ns < t < before_ns)`` for the symbols that have
        any, in name order. O(symbols)."""
        counts = []
        for symbol, inst in self.instruments.items():
            step = inst.funding.sample_interval_ns
            count = (before_ns - 1) // step - after_ns // step
            if count > 0:
                counts.append((symbol, count))
        return counts

    def sampling_at(self, time_ns: int) -> list[str]:
        """The symbols that take a sample at ``time_ns``, in name order."""
        return [s for s, inst in self.instruments.items() if time_ns % inst.funding.sample_interval_ns == 0]

    def first_sample_at_or_after(self, time_ns: int) -> int:
        """The first sample time of any symbol at or after ``time_ns``."""
        return min(-(-time_ns // inst.funding.sample_interval_ns) * inst.funding.sample_interval_ns
                   for inst in self.instruments.values())

    def next_funding_time_ns(self, now_ns: int) -> int:
        """The first settlement boundary after ``now_ns``."""
        return (now_ns // self.interval_ns + 1) * self.interval_ns

    # -- sampling ---------------------------------------------------------------------------------
    def premium_e8(self, symbol: str, bids, asks) -> int | None:
        """The premium sample of ``symbol`` from book depth (levels best first), or None without an index."""
        index_ticks = self.prices.feeds[symbol].index_ticks
        if not index_ticks:
            return None
        return funding.book_premium_e8(bids, asks, index_ticks, self.impact_units[symbol],
                                       self.instruments[symbol].k_units)

    def sample(self, symbol: str, premium_e8: int) -> None:
        self.symbols[symbol].sampler.add(premium_e8)

    def sample_repeated(self, symbol: str, premium_e8: int, count: int) -> None:
        """``count`` equal samples at once (the book did not change between their times). O(1)."""
        self.symbols[symbol].sampler.add_repeated(premium_e8, count)

    def period_rate_e8(self, symbol: str) -> Fraction:
        """The capped rate-period rate from the samples taken so far (×10⁸, exact)."""
        params = self.instruments[symbol].funding
        return funding.period_rate_e8(self.symbols[symbol].sampler.average_e8(), funding.interest_rate_e8(params),
                                      params.clamp_e8, *self.bounds[symbol])

    def predicted_rate_e8(self, symbol: str) -> int:
        """The rate the next settlement would pay from the samples taken so far (×10⁸)."""
        return funding.per_settlement_e8(self.period_rate_e8(symbol), self.divisor)

    def state(self, symbol: str, bids, asks, now_ns: int) -> FundingState:
        """Every part of ``symbol``'s rate now, from its book depth (levels best first). O(depth walked)."""
        inst, feed, sampler = self.instruments[symbol], self.prices.feeds[symbol], self.symbols[symbol].sampler
        impact = self.impact_units[symbol]
        bid, ask = (funding.impact_price(levels, impact, inst.k_units) for levels in (bids, asks))
        floor_e8, cap_e8 = self.bounds[symbol]
        return FundingState(
            symbol, feed.index_ticks, impact, bid, ask,
            funding.premium_e8(bid, ask, feed.index_ticks) if feed.index_ticks else None,
            sampler.count, sampler.average_e8(), funding.interest_rate_e8(inst.funding), inst.funding.clamp_e8,
            floor_e8, cap_e8, self.period_rate_e8(symbol), self.divisor, self.predicted_rate_e8(symbol),
            feed.funding_rate_e8, self.symbols[symbol].index_e8, self.next_funding_time_ns(now_ns))

    # -- settlement -------------------------------------------------------------------------------
    def settlement_price(self, symbol: str, mark_ticks: int) -> int:
        """The price positions are valued at: the mark, or the index under ``FundingPrice.INDEX`` (the mark
        while no index was ever set)."""
        if not self.on_index:
            return mark_ticks
        return self.prices.feeds[symbol].index_ticks or mark_ticks

    def settle(self, symbol: str, time_ns: int, mark_ticks: int) -> tuple[list, set[int]]:
        """Settle ``symbol`` at boundary ``time_ns`` with the mark ``mark_ticks`` (module docstring; the payments
        use :meth:`settlement_price`, which the history and ``FundingSettled`` record): move the money, record
        the history, reset the sampler, set the last funding rate. Returns the events and the accounts that
        paid or received. O(positions of the symbol)."""
        mark_ticks = self.settlement_price(symbol, mark_ticks)
        state = self.symbols[symbol]
        rate_e8 = self.predicted_rate_e8(symbol)
        delta_e8 = funding.index_delta_e8(self.accrual, self.period_rate_e8(symbol), self.divisor, mark_ticks,
                                          self.instruments[symbol].k_units)
        state.index_e8 += delta_e8
        payments, touched, paid, received = self._pay(self.ledger, symbol, delta_e8)
        if paid > received:
            self.ledger.fund_account(symbol).wallet_units += paid - received
        state.history.append(FundingRecord(time_ns, rate_e8, mark_ticks))
        state.sampler = Sampler()
        self.prices.feeds[symbol].funding_rate_e8 = rate_e8
        settled = FundingSettled(symbol, time_ns, rate_e8, mark_ticks, paid, received, paid - received)
        return [settled] + payments, touched

    # -- state ------------------------------------------------------------------------------------
    def canonical_state(self) -> list:
        return [(symbol, self.symbols[symbol].as_state()) for symbol in sorted(self.symbols)]

    def snapshot_state(self) -> list:
        """Every symbol's sampler and history: ``[symbol, sample count, Σ i·P_i, [[time, rate, mark], ...]]``;
        :meth:`restore_state` inverts it."""
        return [[symbol, *self.symbols[symbol].as_state()] for symbol in sorted(self.symbols)]

    def restore_state(self, state) -> None:
        """Load a :meth:`snapshot_state` (one entry per symbol; an entry without the funding index, from an
        older snapshot, restores it as 0). Raises ValueError for an unknown or missing symbol."""
        if sorted(symbol for symbol, *_ in state) != sorted(self.symbols):
            raise ValueError("funding state does not match the instruments")
        for symbol, count, weighted_sum_e8, history, *index in state:
            records = [FundingRecord(int(t), int(rate), int(mark)) for t, rate, mark in history]
            self.symbols[symbol] = SymbolFunding(Sampler(int(count), int(weighted_sum_e8)), records,
                                                 int(index[0]) if index else 0)


def pay(ledger: Ledger, symbol: str, delta_e8: int) -> tuple[list, set[int], int, int]:
    """The payments of one settlement of ``symbol`` at the per-lot ``delta_e8`` (:meth:`Funding.settle`):
    ``(events, accounts that paid or received, Σ paid, Σ received)``. Each open position, by account id and then
    key order, pays :func:`~exchange.funding.rate.index_payment_units` (> 0 pays, < 0 receives; nothing when 0):
    a ``FundingPaid``, then a ``PositionChanged`` (isolated: its margin moves) or a ``BalanceChanged`` (cross: the
    wallet moves). (Compiled twin: ``exchange.funding._settle.pay``.) O(holders · log holders)."""
    paid = received = 0
    payments: list = []
    touched: set[int] = set()
    for account_id in sorted(ledger.holders[symbol]):
        account = ledger.accounts[account_id]
        mode = ledger.settings(account, symbol).margin_mode
        for side, position in account.positions_in(symbol):
            amount = funding.index_payment_units(position.lots, delta_e8)
            if not amount:
                continue
            touched.add(account_id)
            if amount > 0:
                paid += amount
            else:
                received -= amount
            payments.append(FundingPaid(symbol, account_id, side, position.lots, amount, mode))
            if mode == MarginMode.ISOLATED:
                position.isolated_margin_units -= amount
                payments.append(PositionChanged(symbol, account_id, side, position.lots, position.entry_cost,
                                                position.isolated_margin_units, 0))
            else:
                account.wallet_units -= amount
                payments.append(BalanceChanged(account_id, -amount, account.wallet_units, BalanceReason.FUNDING))
    return payments, touched, paid, received


def _packable(value: int) -> int | str:
    """``value``, or its decimal string outside msgpack's integer range."""
    return value if -2**63 <= value < 2**64 else str(value)


def _multiples(step_ns: int, after_ns: int, until_ns: int) -> range:
    """Multiples of ``step_ns`` in ``(after_ns, until_ns]``."""
    return range((after_ns // step_ns + 1) * step_ns, until_ns + 1, step_ns)
