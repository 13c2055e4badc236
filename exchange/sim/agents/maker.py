"""The market maker: a ladder around the index with inventory skew that widens and thins as volatility rises."""
from __future__ import annotations

from typing import Sequence

from ...commands import CancelAll, Deposit, PlaceOrder, SetLeverage
from ...enums import Side, TimeInForce
from .base import BaseAgent
from .view import MarketView
from .orders import band_buy_max, band_sell_min, min_lots
from ...units import E8


class MarketMaker(BaseAgent):
    """Quotes a ladder around the index on each of ``symbols``, cancelling and re-quoting every step.

    Parameters (prices in ticks, sizes in lots, money in units, volatility annualised as
    :meth:`MarketView.volatility`):

    - ``account``, ``symbols``; ``capital_units`` deposited at start; ``leverage`` set per symbol (cross).
    - ``levels`` per side; ``half_spread_ticks`` from the centre to the best quote; ``spacing_ticks`` between
      levels; ``lots`` per level (raised to the instrument's min notional at that price).
    - ``skew_ticks_per_lot``: the centre moves against the inventory, ``centre = index − position × skew``
      (integer; a long maker quotes lower to sell its inventory). ``max_inventory_lots``: the side that would
      add to a position beyond it is not quoted.
    - Volatility regimes: at ``vol ≥ widen_vol`` the spread and the spacing are multiplied by ``widen_factor``;
      at ``vol ≥ pull_vol`` by ``widen_factor²`` and only ``stressed_levels`` levels of
      ``lots × stressed_size_e8 / 1e8`` (at least the min-notional size) are quoted — the thin book of a crash.
    - Quotes are post-only (GTX): the maker never takes, so its own orders never move the last price or the
      mark between its commands. Prices are clamped into the band around the current mark (buys ≤
      floor(mark × up), sells ≥ ceil(mark × down)) and the price range, so no quote is rejected for the band
      or min notional. ``history`` records per step and symbol ``(now_ns, vol, levels, half_spread, lots)``.
    """

    def __init__(self, account: int, symbols: Sequence[str], *, capital_units: int, leverage: int = 5,
                 levels: int = 5, half_spread_ticks: int = 10, spacing_ticks: int = 10, lots: int = 100,
                 skew_ticks_per_lot: float = 0.0, max_inventory_lots: int | None = None,
                 widen_vol: float = 1.0, pull_vol: float = 2.0, widen_factor: int = 2, stressed_levels: int = 1,
                 stressed_size_e8: int = 50_000_000, name: str = "maker"):
        super().__init__(name, [account])
        self.account, self.symbols = account, tuple(symbols)
        self.capital_units, self.leverage = capital_units, leverage
        self.levels, self.half_spread_ticks, self.spacing_ticks, self.lots = levels, half_spread_ticks, spacing_ticks, lots
        self.skew_ticks_per_lot, self.max_inventory_lots = skew_ticks_per_lot, max_inventory_lots
        self.widen_vol, self.pull_vol, self.widen_factor = widen_vol, pull_vol, widen_factor
        self.stressed_levels, self.stressed_size_e8 = stressed_levels, stressed_size_e8
        self.history: list[tuple] = []
        self.history_symbols: list[str] = []

    def start(self, view: MarketView) -> list:
        return [Deposit(self.account, self.capital_units)] + [
            SetLeverage(self.account, s, self.leverage) for s in self.symbols]

    def regime(self, vol: float) -> tuple[int, int, int, int]:
        """``(levels, half_spread_ticks, spacing_ticks, lots)`` for a volatility."""
        if vol >= self.pull_vol:
            f = self.widen_factor ** 2
            return (min(self.levels, self.stressed_levels), self.half_spread_ticks * f, self.spacing_ticks * f,
                    max(1, self.lots * self.stressed_size_e8 // E8))
        if vol >= self.widen_vol:
            f = self.widen_factor
            return self.levels, self.half_spread_ticks * f, self.spacing_ticks * f, self.lots
        return self.levels, self.half_spread_ticks, self.spacing_ticks, self.lots

    def act(self, view: MarketView) -> list:
        commands: list = []
        for symbol in self.symbols:
            inst = view.instrument(symbol)
            mark = view.mark(symbol)
            centre = view.index(symbol) or mark
            if not centre:
                continue
            commands.append(CancelAll(self.account, symbol))
            if view.in_liquidation(self.account):
                continue
            vol = view.volatility(symbol)
            levels, half, spacing, lots = self.regime(vol)
            position = view.position_lots(self.account, symbol)
            centre -= int(round(position * self.skew_ticks_per_lot))
            self.history.append((view.now_ns, vol, levels, half, lots))
            self.history_symbols.append(symbol)
            buy_max, sell_min = band_buy_max(inst, mark), band_sell_min(inst, mark)
            cap = self.max_inventory_lots
            for i in range(levels):
                offset = half + i * spacing
                bid = min(centre - offset, buy_max, inst.max_price_ticks)
                ask = min(max(centre + offset, sell_min, inst.min_price_ticks), inst.max_price_ticks)
                if (cap is None or position < cap) and bid >= inst.min_price_ticks:
                    q = min(max(lots, min_lots(inst, bid)), inst.max_qty_lots)
                    commands.append(PlaceOrder(self.account, symbol, Side.BUY, q, bid, tif=TimeInForce.GTX))
                if cap is None or position > -cap:
                    q = min(max(lots, min_lots(inst, ask)), inst.max_qty_lots)
                    commands.append(PlaceOrder(self.account, symbol, Side.SELL, q, ask, tif=TimeInForce.GTX))
        return commands


