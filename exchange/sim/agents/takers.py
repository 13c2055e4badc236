"""Takers: an arbitrageur that keeps the last price near the index, noise and momentum takers."""
from __future__ import annotations

import math
from collections import deque
from typing import Sequence

from ...commands import Deposit, PlaceOrder, SetLeverage
from ...enums import TimeInForce
from .base import BaseAgent
from .view import MarketView
from .orders import band_buy_max, band_sell_min, min_lots, scale_e8, side_of
from ...units import E8


class _Taker(BaseAgent):
    """Deposit and leverage at start; IOC limit orders bounded by the band, with a position cap."""

    def __init__(self, name, account, symbols, capital_units, leverage, max_position_lots, slippage_e8):
        super().__init__(name, [account])
        self.account, self.symbols = account, tuple(symbols)
        self.capital_units, self.leverage = capital_units, leverage
        self.max_position_lots, self.slippage_e8 = max_position_lots, slippage_e8

    def start(self, view: MarketView) -> list:
        return [Deposit(self.account, self.capital_units)] + [
            SetLeverage(self.account, s, self.leverage) for s in self.symbols]

    def _take(self, view: MarketView, symbol: str, sign: int, lots: int, limit: int | None = None) -> list:
        """An IOC order of ``lots`` (capped so |position| ≤ max_position_lots) limited at ``limit`` or at
        reference × (1 ± slippage), clamped into the band."""
        inst = view.instrument(symbol)
        ref = view.reference(symbol)
        if not ref or view.in_liquidation(self.account):
            return []
        position = view.position_lots(self.account, symbol)
        room = self.max_position_lots - sign * position
        lots = min(lots, room, inst.max_qty_lots)
        if limit is None:
            limit = ref + sign * scale_e8(ref, self.slippage_e8)
        mark = view.mark(symbol)
        limit = min(limit, band_buy_max(inst, mark)) if sign > 0 else max(limit, band_sell_min(inst, mark))
        limit = min(max(limit, inst.min_price_ticks), inst.max_price_ticks)
        if lots < min_lots(inst, limit):
            return []
        return [PlaceOrder(self.account, symbol, side_of(sign), int(lots), int(limit), tif=TimeInForce.IOC)]


class Arbitrageur(_Taker):
    """Keeps the last price near the index: when ``|last − index| / index > threshold_e8 / 1e8`` it takes the
    other side with an IOC limited at the index (so it only takes quotes on the wrong side of the index), up
    to ``max_lots`` per step and ``max_position_lots`` of inventory. When inside the threshold and
    ``unwind`` is set it reduces inventory with IOC orders limited at the index ± ``threshold`` (so it only
    unwinds at a price no worse than the index by the threshold)."""

    def __init__(self, account: int, symbols: Sequence[str], *, capital_units: int, leverage: int = 5,
                 threshold_e8: int = 200_000, max_lots: int = 100, max_position_lots: int = 1_000,
                 unwind: bool = True, name: str = "arbitrageur"):
        super().__init__(name, account, symbols, capital_units, leverage, max_position_lots, 0)
        self.threshold_e8, self.max_lots, self.unwind = threshold_e8, max_lots, unwind

    def act(self, view: MarketView) -> list:
        commands: list = []
        for symbol in self.symbols:
            index, last = view.index(symbol), view.last(symbol)
            if not index or not last:
                continue
            band = scale_e8(index, self.threshold_e8)
            if last > index + band:
                commands += self._take(view, symbol, -1, self.max_lots, limit=index)
            elif last < index - band:
                commands += self._take(view, symbol, +1, self.max_lots, limit=index)
            elif self.unwind:
                position = view.position_lots(self.account, symbol)
                if position:
                    sign = -1 if position > 0 else 1
                    lots = min(abs(position), self.max_lots)
                    commands += self._take(view, symbol, sign, lots, limit=index - sign * band)
        return commands


class NoiseTaker(_Taker):
    """Random IOC orders: each step and symbol, with probability ``trade_prob``, a buy or a sell (``buy_prob``)
    of ``round(lognormal(ln(median_lots), sigma))`` lots (at least the min-notional size), limited at the
    reference price ± ``slippage_e8``; |position| stays ≤ ``max_position_lots``."""

    def __init__(self, account: int, symbols: Sequence[str], *, capital_units: int, leverage: int = 5,
                 trade_prob: float = 0.3, buy_prob: float = 0.5, median_lots: int = 50, sigma: float = 0.8,
                 max_position_lots: int = 1_000, slippage_e8: int = 1_000_000, name: str = "noise"):
        super().__init__(name, account, symbols, capital_units, leverage, max_position_lots, slippage_e8)
        self.trade_prob, self.buy_prob, self.median_lots, self.sigma = trade_prob, buy_prob, median_lots, sigma

    def act(self, view: MarketView) -> list:
        commands: list = []
        for symbol in self.symbols:
            # draw every number every step so the stream of draws does not depend on the state
            u, v, z = self.rng.random(), self.rng.random(), self.rng.standard_normal()
            if u >= self.trade_prob:
                continue
            sign = 1 if v < self.buy_prob else -1
            lots = max(1, int(round(self.median_lots * math.exp(self.sigma * z))))
            ref = view.reference(symbol)
            if ref:
                lots = max(lots, min_lots(view.instrument(symbol), ref))
            commands += self._take(view, symbol, sign, lots)
        return commands


class MomentumTaker(_Taker):
    """Trades in the direction of the mark's return over the last ``lookback_steps`` steps: above
    ``threshold_e8`` it buys ``lots`` (IOC at the reference + slippage), below −threshold it sells, up to
    ``max_position_lots``."""

    def __init__(self, account: int, symbols: Sequence[str], *, capital_units: int, leverage: int = 5,
                 lookback_steps: int = 12, threshold_e8: int = 500_000, lots: int = 50,
                 max_position_lots: int = 500, slippage_e8: int = 1_000_000, name: str = "momentum"):
        super().__init__(name, account, symbols, capital_units, leverage, max_position_lots, slippage_e8)
        self.lookback_steps, self.threshold_e8, self.lots = lookback_steps, threshold_e8, lots
        self._marks = {s: deque(maxlen=lookback_steps + 1) for s in self.symbols}

    def act(self, view: MarketView) -> list:
        commands: list = []
        for symbol in self.symbols:
            ref = view.reference(symbol)
            if not ref:
                continue
            marks = self._marks[symbol]
            marks.append(ref)
            if len(marks) <= self.lookback_steps:
                continue
            past = marks[0]
            move_e8 = (ref - past) * E8 // past
            if move_e8 > self.threshold_e8:
                commands += self._take(view, symbol, +1, self.lots)
            elif move_e8 < -self.threshold_e8:
                commands += self._take(view, symbol, -1, self.lots)
        return commands


