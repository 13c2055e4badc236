"""The market view agents read: prices, books, accounts and a realised volatility estimate."""
from __future__ import annotations

import math

from ...enums import MarginMode, PositionSide
from ..synthetic import YEAR_NS


class MarketView:
    """A read-only view over ``exchange`` for agents. Every query reads the exchange now; nothing changes it.

    Prices are ticks, quantities lots, money units (1e-8), ratios ×1e8, time ns, as in the engine.

    **Volatility** (:meth:`volatility`): an exponentially weighted realised volatility of the *mark* (the index
    while no mark is set), updated by :meth:`observe` (the runner calls it once per step, after the step's
    prices). With ``r = ln(mark_t / mark_{t-1})`` and ``Δt`` the time since the previous observation in years
    (365 days), ``S ← λ S + (1-λ) r²`` and ``T ← λ T + (1-λ) Δt``; the estimate is ``sqrt(S / T)``, an
    **annualised** volatility as a fraction (0.6 = 60 % per √year, the unit of the paths' ``volatility``
    parameter). Dividing the weighted squared returns by the weighted elapsed time makes uneven step lengths
    harmless (a 1 ns step adds its r² ≈ 0 and no time). ``λ = 0.5 ** (1 / halflife_steps)``. It is 0.0 until
    the mark has moved over a positive time (``prior`` before the first two observations, default 0.0).
    """

    def __init__(self, exchange, *, halflife_steps: float = 20.0, prior: float = 0.0):
        if halflife_steps <= 0:
            raise ValueError("halflife_steps must be > 0")
        self._ex = exchange
        self.decay = 0.5 ** (1.0 / halflife_steps)
        self.prior = float(prior)
        self._vol_state: dict[str, list] = {}  # symbol -> [last mark, last time, S, T]
        self.steps = 0  # observe() calls so far

    # -- time and instruments ---------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        return self._ex.now_ns

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._ex.instruments)

    def instrument(self, symbol: str):
        return self._ex.instruments[symbol]

    # -- prices and books -------------------------------------------------------------------------
    def index(self, symbol: str) -> int:
        return self._ex.index_price(symbol)

    def mark(self, symbol: str) -> int:
        return self._ex.mark_price(symbol)

    def last(self, symbol: str) -> int:
        return self._ex.book(symbol).last_price()

    def best_bid(self, symbol: str) -> int:
        """Best bid (ticks), 0 when the side is empty."""
        return self._ex.book(symbol).best_bid() or 0

    def best_ask(self, symbol: str) -> int:
        """Best ask (ticks), 0 when the side is empty."""
        return self._ex.book(symbol).best_ask() or 0

    def depth(self, symbol: str, n: int = 5):
        """``([(price_ticks, lots, orders), ...] bids, [...] asks)``, best first."""
        return self._ex.book(symbol).depth(n)

    def reference(self, symbol: str) -> int:
        """The price agents value things at: the mark, else the index, else the last trade (0: none yet)."""
        return self.mark(symbol) or self.index(symbol) or self.last(symbol)

    # -- accounts ---------------------------------------------------------------------------------
    def position(self, account: int, symbol: str, position_side: PositionSide = PositionSide.BOTH, *,
                 prices: bool = True):
        """A :class:`~exchange.accounts.pretrade.PositionView` (``lots`` signed, ``entry_cost`` = Σ price_ticks × lots,
        ``margin_mode``, ``isolated_margin_units``, uPnL, IM, MM, liquidation and bankruptcy prices) or None when
        flat. ``prices=False`` skips the two prices (None), the view's costly part."""
        return self._ex.position(account, symbol, position_side, prices=prices)

    def position_lots(self, account: int, symbol: str) -> int:
        """Signed lots of the one-way position (0 when flat). O(1)."""
        return self._ex.position_lots(account, symbol)

    def positions(self, account: int) -> list:
        return self._ex.positions(account)

    def margin_mode(self, account: int, symbol: str) -> MarginMode:
        return self._ex.margin_mode(account, symbol)

    def leverage(self, account: int, symbol: str) -> int:
        return self._ex.leverage(account, symbol)

    def wallet(self, account: int) -> int:
        return self._ex.wallet(account)

    def available(self, account: int) -> int:
        return self._ex.available_balance(account) if self._ex.ledger.get(account) is not None else 0

    def margin_balance(self, account: int, symbol: str | None = None) -> int:
        return self._ex.margin_balance(account) if symbol is None else self._ex.margin_balance(account, symbol)

    def margin_ratio_e8(self, account: int, symbol: str | None = None) -> int:
        """MM ÷ margin balance ×1e8 of the part holding ``symbol`` (its isolated position, or the cross
        account); ``symbol`` None: the cross account. 0 without exposure; huge when the balance is ≤ 0."""
        return self._ex.margin_ratio_e8(account) if symbol is None else self._ex.margin_ratio_e8(account, symbol)

    def liquidation_price(self, account: int, symbol: str) -> int | None:
        return self._ex.liquidation_price_ticks(account, symbol)

    def open_orders(self, account: int, symbol: str) -> list[int]:
        return self._ex.open_orders(account, symbol)

    def in_liquidation(self, account: int) -> bool:
        return self._ex.in_liquidation(account)

    # -- volatility -------------------------------------------------------------------------------
    def observe(self) -> None:
        """Update the volatility estimate of every symbol from the current mark (once per step)."""
        self.steps += 1
        now = self.now_ns
        lam = self.decay
        for symbol in self.symbols:
            price = self.mark(symbol) or self.index(symbol)
            if price <= 0:
                continue
            state = self._vol_state.get(symbol)
            if state is None:
                self._vol_state[symbol] = [price, now, 0.0, 0.0]
                continue
            r = math.log(price / state[0])
            dt = (now - state[1]) / YEAR_NS
            state[2] = lam * state[2] + (1.0 - lam) * r * r
            state[3] = lam * state[3] + (1.0 - lam) * dt
            state[0], state[1] = price, now

    def volatility(self, symbol: str) -> float:
        """Annualised EWMA realised volatility of the mark (fraction; see the class docstring)."""
        state = self._vol_state.get(symbol)
        if state is None or state[3] <= 0.0:
            return self.prior
        return math.sqrt(state[2] / state[3])


