"""Leveraged traders: a seeded schedule of intentions, margin policies and the trader that follows them."""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ...commands import AdjustIsolatedMargin, CancelAll, Deposit, PlaceOrder, SetLeverage, SetMarginMode
from ...enums import MarginMode, OrderType, Side, TimeInForce
from ...events import ADLFill, LiquidationFill, LiquidationStarted, Rejected
from .base import BaseAgent
from .view import MarketView
from .orders import band_buy_max, band_sell_min, min_lots, scale_e8, side_of
from ...units import E8


@dataclass(frozen=True, slots=True)
class Intention:
    """What a trader wants, independent of how it margins it: open ``direction`` (+1 long, −1 short) in
    ``symbol`` at ``entry_ns`` with ``leverage``, using ``size_e8 / 1e8`` of the margin budget its policy
    gives a position, and close it at ``exit_ns`` if it is still open."""

    symbol: str
    direction: int
    entry_ns: int
    exit_ns: int
    leverage: int
    size_e8: int = E8


def intention_schedule(seed: int, symbols: Sequence[str], *, start_ns: int, end_ns: int, count: int,
                       leverages: Sequence[int] = (5, 10, 20), long_prob: float = 0.7,
                       hold_ns: tuple[int, int] | None = None, size_e8: tuple[int, int] = (E8 // 2, E8)
                       ) -> tuple[Intention, ...]:
    """``count`` seeded intentions (its own generator from ``seed``, so the same schedule can be replayed
    under every policy): entry uniform in ``[start_ns, end_ns)``, symbol uniform, long with ``long_prob``,
    leverage uniform in ``leverages``, holding time uniform in ``hold_ns`` (``exit = entry + hold``; default
    ``end_ns − start_ns``), size uniform in ``size_e8``. Sorted by entry time."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1D7]))
    lo, hi = hold_ns if hold_ns is not None else (end_ns - start_ns, end_ns - start_ns)
    out = []
    for _ in range(count):
        entry = int(start_ns + rng.integers(0, max(1, end_ns - start_ns)))
        symbol = symbols[int(rng.integers(0, len(symbols)))]
        direction = 1 if rng.random() < long_prob else -1
        leverage = int(leverages[int(rng.integers(0, len(leverages)))])
        hold = int(rng.integers(lo, hi + 1))
        size = int(rng.integers(size_e8[0], size_e8[1] + 1))
        out.append(Intention(symbol, direction, entry, entry + hold, leverage, size))
    return tuple(sorted(out, key=lambda it: (it.entry_ns, it.symbol)))


class MarginPolicy:
    """How a :class:`LeveragedTrader` margins its positions. ``entry_mode(symbol)`` is the mode a position
    is opened in; ``budget_units(capital, symbol)`` the initial margin a full-size position uses
    (``notional = budget × leverage × size``); ``manage`` may return commands for an open position each step;
    ``notify`` sees the trader's events."""

    name = "policy"

    def entry_mode(self, symbol: str) -> MarginMode:
        raise NotImplementedError

    def budget_units(self, capital_units: int, symbol: str) -> int:
        raise NotImplementedError

    def manage(self, trader: "LeveragedTrader", view: MarketView, state: "_PositionState", position) -> list:
        """``position``: the open position's view without its liquidation and bankruptcy prices (None; ask
        ``view.liquidation_price`` for one)."""
        return []

    def notify(self, trader: "LeveragedTrader", events: list) -> None:
        return None


@dataclass
class IsolatedPolicy(MarginPolicy):
    """Each position isolated with ``share_per_position`` (×1e8) of the capital as its margin budget."""

    share_per_position_e8: int = 25_000_000
    name = "isolated"

    def entry_mode(self, symbol):
        return MarginMode.ISOLATED

    def budget_units(self, capital_units, symbol):
        return capital_units * self.share_per_position_e8 // E8


@dataclass
class CrossPolicy(IsolatedPolicy):
    """All capital pooled: every position cross. Positions are sized like :class:`IsolatedPolicy`'s
    (``share_per_position_e8`` of the capital as the budget) so the two are comparable; only the margin
    that backs them differs (the whole wallet, shared with the other positions)."""

    name = "cross"

    def entry_mode(self, symbol):
        return MarginMode.CROSS


@dataclass
class HybridPolicy(MarginPolicy):
    """``isolated_share_e8`` of the capital in an isolated position on ``conviction_symbol``; every other
    symbol cross (backed by the rest of the wallet), sized with ``share_per_position_e8`` of the capital."""

    isolated_share_e8: int = 30_000_000
    conviction_symbol: str = ""
    share_per_position_e8: int = 25_000_000
    name = "hybrid"

    def entry_mode(self, symbol):
        return MarginMode.ISOLATED if symbol == self.conviction_symbol else MarginMode.CROSS

    def budget_units(self, capital_units, symbol):
        share = self.isolated_share_e8 if symbol == self.conviction_symbol else self.share_per_position_e8
        return capital_units * share // E8


@dataclass
class DynamicPolicy(MarginPolicy):
    """Enter isolated (``share_per_position_e8`` of the capital); *defend*: when the isolated margin ratio
    reaches ``defend_ratio_e8``, switch the symbol to CROSS (the isolated margin returns to the wallet and the
    whole wallet backs the position); *ring-fence*: once defended, when the volatility reaches
    ``extreme_vol`` (annualised), switch back to ISOLATED moving ``max(IM, MM − uPnL) × (1 + cushion)`` into
    the position. At most one switch per position every ``min_steps_between`` steps; a position is defended at
    most once and ring-fenced at most once.

    Switching with an open position needs ``RiskOptions(allow_mode_switch_with_position=True)`` and no open
    orders in the symbol (the trader cancels its stops first and re-places them after). Refusals are handled:
    -4048 (switching not allowed by the venue) turns the policy off for that position; -4050 / -4051 (the cross
    side cannot spare the amount, or it is too small) are retried after ``min_steps_between`` steps, at most
    ``max_refusals`` times. ``switches`` and ``refusals`` count what happened."""

    share_per_position_e8: int = 25_000_000
    defend_ratio_e8: int = 15_000_000
    extreme_vol: float = 3.0
    cushion_e8: int = 50_000_000
    min_steps_between: int = 4
    max_refusals: int = 3
    name = "dynamic"
    switches: Counter = field(default_factory=Counter)
    refusals: Counter = field(default_factory=Counter)

    def entry_mode(self, symbol):
        return MarginMode.ISOLATED

    def budget_units(self, capital_units, symbol):
        return capital_units * self.share_per_position_e8 // E8

    def manage(self, trader, view, state, position):
        if state.policy_off or view.steps - state.last_switch_step < self.min_steps_between:
            return []
        account, symbol = trader.account, state.intention.symbol
        if position.margin_mode == MarginMode.ISOLATED and not state.defended:
            if view.margin_ratio_e8(account, symbol) >= self.defend_ratio_e8:
                state.defended, state.last_switch_step = True, view.steps
                state.pending_mode = MarginMode.CROSS
                return trader.switch_commands(view, state, position, SetMarginMode(account, symbol, MarginMode.CROSS))
        elif position.margin_mode == MarginMode.CROSS and state.defended and not state.ringfenced:
            if view.volatility(symbol) >= self.extreme_vol:
                base = max(position.initial_margin_units,
                           position.maintenance_margin_units - position.unrealized_pnl_units)
                amount = base + base * self.cushion_e8 // E8 + 1
                state.last_switch_step = view.steps
                state.pending_mode = MarginMode.ISOLATED
                return trader.switch_commands(view, state, position,
                                              SetMarginMode(account, symbol, MarginMode.ISOLATED, amount))
        return []

    def notify(self, trader, events):
        for event in events:
            if type(event).__name__ == "MarginModeChanged" and event.account_id == trader.account:
                self.switches[MarginMode(event.margin_mode).name] += 1
                state = trader.active.get(event.symbol)
                if state is not None and event.margin_mode == MarginMode.ISOLATED and state.defended:
                    state.ringfenced = True
            elif isinstance(event, Rejected) and event.account_id == trader.account and int(event.code) in (
                    -4046, -4047, -4048, -4050, -4051):
                self.refusals[int(event.code)] += 1
                state = trader.active.get(event.symbol)
                if state is None:
                    continue
                state.refusals += 1
                if int(event.code) == -4048 or state.refusals >= self.max_refusals:
                    state.policy_off = True
                elif state.pending_mode == MarginMode.CROSS:
                    state.defended = False  # try again later


@dataclass
class _PositionState:
    intention: Intention
    phase: str = "enter"  # enter -> opening -> open -> closing
    entries: int = 0
    attempts: int = 0
    liquidated_ns: int | None = None
    protected: bool = False
    topups: int = 0
    defended: bool = False
    ringfenced: bool = False
    policy_off: bool = False
    last_switch_step: int = -10**9
    pending_mode: MarginMode | None = None
    refusals: int = 0
    reentering: bool = False
    mode: MarginMode | None = None  # the position's margin mode at the last act


class LeveragedTrader(BaseAgent):
    """Follows a schedule of :class:`Intention` under a :class:`MarginPolicy`, in one account (one-way mode).

    - ``capital_units`` is deposited at start; ``reserve_units`` is cash *outside* the exchange (the trader's
      own money, not deposited at start) that margin top-ups draw on through ``Deposit``. Deposits count as
      money entering the venue, so conservation holds.
    - Entry: ``CancelAll`` (if orders are open), ``SetMarginMode`` to the policy's mode when it differs,
      ``SetLeverage``, then an IOC limit order at the mark ± ``entry_slippage_e8``; the lots are
      ``floor(budget × size × leverage / (limit × K))``, so the initial margin (taken at fill prices no worse
      than the limit) never exceeds the budget. An intention whose symbol is already busy is skipped; an
      entry that does not fill is retried up to ``entry_attempts`` times.
    - Protection, placed the step after the position appears (each optional): ``stop_loss_e8`` (STOP_MARKET,
      reduce-only, stop at entry × (1 ∓ x)); ``trailing_callback_e8`` (TRAILING_STOP_MARKET, reduce-only,
      clamped to the instrument's callback range); ``take_profits`` = ((gain_e8, fraction_e8), ...):
      staggered TAKE_PROFIT_MARKET reduce-only tranches at entry × (1 ± gain). A stop that would trigger at
      once is not sent.
    - Top-ups (``topup_ratio_e8``, ``topup_units``, ``max_topups`` per entry): when the position's margin ratio
      reaches the level, an isolated position gets ``AdjustIsolatedMargin(+topup_units)`` (preceded by a
      ``Deposit`` from the reserve for what the available balance lacks), a cross one a ``Deposit`` of
      ``min(topup_units, reserve left)``.
    - Exit at ``exit_ns``: cancel, then a reduce-only IOC order at the band's limit.
    - Re-entry: after a liquidation of the position (a LiquidationStarted / LiquidationFill / ADLFill naming the
      account), the trader waits ``cooldown_ns`` and enters again (same intention) while before ``exit_ns``, at
      most ``max_reentries`` times. A position closed by its own stop or take-profit is not re-entered.

    Bookkeeping for tests and studies: ``entries``, ``liquidations``, ``committed_isolated_units`` (Σ over
    isolated entries of the IM bound + entry-fee bound, plus isolated top-ups: the most the wallet can lose to
    isolated positions), ``allocated_units`` (the same bounds over every entry, cross ones included, plus every
    top-up: the margin the trader meant to put at risk), ``reserve_used_units``, ``reentries``, ``skipped``.
    """

    def __init__(self, account: int, intentions: Iterable[Intention], policy: MarginPolicy, *,
                 capital_units: int, reserve_units: int = 0, entry_slippage_e8: int = 1_000_000,
                 entry_attempts: int = 3, stop_loss_e8: int | None = None, trailing_callback_e8: int | None = None,
                 take_profits: Sequence[tuple[int, int]] = (), topup_ratio_e8: int | None = None,
                 topup_units: int = 0, max_topups: int = 1, cooldown_ns: int = 0, max_reentries: int = 0,
                 name: str | None = None):
        super().__init__(name or f"trader-{policy.name}", [account])
        self.account, self.policy = account, policy
        self.pending = deque(sorted(intentions, key=lambda it: (it.entry_ns, it.symbol)))
        self.capital_units, self.reserve_units = capital_units, reserve_units
        self.entry_slippage_e8, self.entry_attempts = entry_slippage_e8, entry_attempts
        self.stop_loss_e8, self.trailing_callback_e8, self.take_profits = stop_loss_e8, trailing_callback_e8, tuple(take_profits)
        self.topup_ratio_e8, self.topup_units, self.max_topups = topup_ratio_e8, topup_units, max_topups
        self.cooldown_ns, self.max_reentries = cooldown_ns, max_reentries
        self.active: dict[str, _PositionState] = {}
        self.entries = 0
        self.liquidations = 0
        self.reentries = 0
        self.skipped: list[Intention] = []
        self.committed_isolated_units = 0
        self.allocated_units = 0
        self.reserve_used_units = 0

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, view: MarketView) -> list:
        commands = [Deposit(self.account, self.capital_units)]
        for symbol in sorted({it.symbol for it in self.pending}):
            mode = self.policy.entry_mode(symbol)
            if view.margin_mode(self.account, symbol) != mode:
                commands.append(SetMarginMode(self.account, symbol, mode))
        return commands

    def notify(self, events: list) -> None:
        super().notify(events)
        for event in events:
            if isinstance(event, (LiquidationStarted, LiquidationFill)) and event.account_id == self.account:
                self._liquidated(event.symbol)
            elif isinstance(event, ADLFill) and event.account_id == self.account and event.liquidated:
                self._liquidated(event.symbol)
        self.policy.notify(self, events)

    def _liquidated(self, symbol: str) -> None:
        """A liquidation named the account: ``symbol`` "" is the cross account (every cross position)."""
        for sym, state in self.active.items():
            hit = sym == symbol or (symbol == "" and state.mode != MarginMode.ISOLATED)
            if hit and state.phase in ("opening", "open", "closing"):
                self.liquidations += 1
                state.liquidated_ns = -1  # set to now at the next act
                state.phase = "liquidated"

    # -- the step -----------------------------------------------------------------------------------
    def act(self, view: MarketView) -> list:
        now = view.now_ns
        commands: list = []
        while self.pending and self.pending[0].entry_ns <= now:
            intention = self.pending.popleft()
            if intention.symbol in self.active or now >= intention.exit_ns:
                self.skipped.append(intention)
                continue
            self.active[intention.symbol] = _PositionState(intention)
        cross_topup_done = False
        for symbol in sorted(self.active):
            state = self.active[symbol]
            it = state.intention
            position = view.position(self.account, symbol, prices=False)  # the prices are not used
            lots = position.lots if position is not None else 0
            if position is not None:
                state.mode = position.margin_mode
            if state.phase == "liquidated":
                if lots:  # partly liquidated, still open: keep managing it
                    state.phase = "open"
                else:
                    if state.liquidated_ns == -1:
                        state.liquidated_ns = now
                    if state.entries > self.max_reentries or now >= it.exit_ns:
                        commands += self._cancel(view, symbol)
                        del self.active[symbol]
                        continue
                    state.phase, state.protected, state.topups, state.attempts = "enter", False, 0, 0
                    state.reentering = True
                    state.defended = state.ringfenced = state.policy_off = False
            if state.phase == "enter":
                if now >= it.exit_ns or view.in_liquidation(self.account):
                    if now >= it.exit_ns:
                        del self.active[symbol]
                    continue
                if state.liquidated_ns is not None and now < state.liquidated_ns + self.cooldown_ns:
                    continue
                entry = self._entry(view, state)
                if entry:
                    commands += entry
                    state.phase = "opening"
                    state.attempts += 1
                else:
                    state.attempts += 1
                    if state.attempts >= self.entry_attempts:
                        del self.active[symbol]
                continue
            if state.phase == "opening":
                if lots:
                    state.phase = "open"
                    state.entries += 1
                    self.entries += 1
                    if state.reentering:
                        self.reentries += 1
                        state.reentering = False
                elif state.attempts >= self.entry_attempts:
                    del self.active[symbol]
                    continue
                else:
                    state.phase = "enter"
                    continue
            if state.phase == "open":
                if not lots:  # closed by its own stop / take-profit
                    commands += self._cancel(view, symbol)
                    del self.active[symbol]
                    continue
                if now >= it.exit_ns:
                    commands += self._cancel(view, symbol) + self._close(view, symbol, lots)
                    state.phase = "closing"
                    continue
                if view.in_liquidation(self.account):
                    continue
                if not state.protected:
                    commands += self._protection(view, state, position)
                    state.protected = True
                if self.topup_ratio_e8 is not None and state.topups < self.max_topups:
                    if view.margin_ratio_e8(self.account, symbol) >= self.topup_ratio_e8:
                        if position.margin_mode == MarginMode.ISOLATED:
                            commands += self._isolated_topup(view, symbol)
                            state.topups += 1
                        elif not cross_topup_done and self.reserve_units > self.reserve_used_units:
                            amount = min(self.topup_units, self.reserve_units - self.reserve_used_units)
                            commands.append(Deposit(self.account, amount))
                            self.reserve_used_units += amount
                            self.allocated_units += amount
                            state.topups += 1
                            cross_topup_done = True
                commands += self.policy.manage(self, view, state, position)
                continue
            if state.phase == "closing":
                if not lots:
                    del self.active[symbol]
                elif not view.in_liquidation(self.account):
                    commands += self._close(view, symbol, lots)
        return commands

    # -- command builders ---------------------------------------------------------------------------
    def _cancel(self, view: MarketView, symbol: str) -> list:
        return [CancelAll(self.account, symbol)] if view.open_orders(self.account, symbol) else []

    def _entry(self, view: MarketView, state: _PositionState) -> list:
        it = state.intention
        inst = view.instrument(it.symbol)
        mark = view.reference(it.symbol)
        if not mark:
            return []
        limit = mark + it.direction * scale_e8(mark, self.entry_slippage_e8)
        limit = min(limit, band_buy_max(inst, view.mark(it.symbol))) if it.direction > 0 else \
            max(limit, band_sell_min(inst, view.mark(it.symbol)))
        budget = self.policy.budget_units(self.capital_units, it.symbol) * it.size_e8 // E8
        lots = min(budget * it.leverage // (limit * inst.k_units), inst.max_qty_lots)
        if lots < min_lots(inst, limit):
            return []
        mode = self.policy.entry_mode(it.symbol)
        commands = self._cancel(view, it.symbol)
        if view.margin_mode(self.account, it.symbol) != mode:
            commands.append(SetMarginMode(self.account, it.symbol, mode))
        if view.leverage(self.account, it.symbol) != it.leverage:
            commands.append(SetLeverage(self.account, it.symbol, it.leverage))
        notional = limit * lots * inst.k_units
        bound = -(-notional // it.leverage) + -(-notional * inst.taker_fee_e8 // E8)
        self.allocated_units += bound
        if mode == MarginMode.ISOLATED:
            self.committed_isolated_units += bound
        commands.append(PlaceOrder(self.account, it.symbol, side_of(it.direction), lots, limit, tif=TimeInForce.IOC))
        return commands

    def _close(self, view: MarketView, symbol: str, lots: int) -> list:
        inst = view.instrument(symbol)
        mark = view.mark(symbol) or view.reference(symbol)
        if lots > 0:
            return [PlaceOrder(self.account, symbol, Side.SELL, lots, max(band_sell_min(inst, mark), inst.min_price_ticks),
                               tif=TimeInForce.IOC, reduce_only=True)]
        return [PlaceOrder(self.account, symbol, Side.BUY, -lots, min(band_buy_max(inst, mark), inst.max_price_ticks),
                           tif=TimeInForce.IOC, reduce_only=True)]

    def _protection(self, view: MarketView, state: _PositionState, position) -> list:
        symbol, lots = state.intention.symbol, position.lots
        inst = view.instrument(symbol)
        mark = view.mark(symbol)
        sign = 1 if lots > 0 else -1
        qty = abs(lots)
        entry = abs(position.entry_cost) // qty
        exit_side = side_of(-sign)
        commands = []
        if self.stop_loss_e8:
            stop = entry - sign * scale_e8(entry, self.stop_loss_e8)
            if stop > 0 and (stop < mark if sign > 0 else stop > mark):
                commands.append(PlaceOrder(self.account, symbol, exit_side, qty, order_type=OrderType.STOP_MARKET,
                                           reduce_only=True, stop_ticks=stop))
        if self.trailing_callback_e8:
            cb = min(max(self.trailing_callback_e8, inst.min_callback_e8), inst.max_callback_e8)
            commands.append(PlaceOrder(self.account, symbol, exit_side, qty,
                                       order_type=OrderType.TRAILING_STOP_MARKET, reduce_only=True, callback_e8=cb))
        left = qty
        for gain_e8, fraction_e8 in self.take_profits:
            tranche = min(left, max(1, qty * fraction_e8 // E8))
            target = entry + sign * scale_e8(entry, gain_e8)
            if tranche <= 0 or not (target > mark if sign > 0 else 0 < target < mark):
                continue
            commands.append(PlaceOrder(self.account, symbol, exit_side, tranche,
                                       order_type=OrderType.TAKE_PROFIT_MARKET, reduce_only=True, stop_ticks=target))
            left -= tranche
        return commands

    def _isolated_topup(self, view: MarketView, symbol: str) -> list:
        commands = []
        amount = self.topup_units
        short = amount - max(0, view.available(self.account))
        if short > 0:
            extra = min(short, self.reserve_units - self.reserve_used_units)
            if extra > 0:
                commands.append(Deposit(self.account, extra))
                self.reserve_used_units += extra
            amount -= short - max(extra, 0)
        if amount > 0:
            commands.append(AdjustIsolatedMargin(self.account, symbol, amount))
            self.committed_isolated_units += amount
            self.allocated_units += amount
        return commands

    def switch_commands(self, view: MarketView, state: _PositionState, position, switch) -> list:
        """A margin-mode switch of an open position: cancel its orders (-4047 otherwise), switch, re-protect."""
        commands = self._cancel(view, state.intention.symbol) + [switch]
        if state.protected:
            commands += self._protection(view, state, position)
        return commands

