"""Clock modes. ``manual``: nothing moves unless the admin API says so. ``realtime``: every tick (100 ms of
wall time) the simulation advances by tick × speed; a GBM price path from :mod:`exchange.sim.synthetic`
drives index and mark, and a :class:`~exchange.sim.agents.maker.MarketMaker` re-quotes around the index. The
tick is one sequencer job, so it is journaled and ordered like any request."""
from __future__ import annotations

import asyncio
import time

from ..commands import AdvanceTime, SetIndexPrice, SetMarkPrice
from ..sim.agents.maker import MarketMaker
from ..sim.agents.view import MarketView
from ..sim.paths import PricePoint
from ..sim.synthetic import gbm_jump_path
from .config import MAKER_ACCOUNT

TICK_S = 0.1
CHUNK_NS = 3600 * 10 ** 9  # the path is generated an hour of simulation time at a time
BAR_NS = 10 ** 9  # the price path's bar at speed <= 10; faster, a bar is a tenth of a tick's simulated time
POINTS_PER_TICK = 10


class RealtimeClock:
    def __init__(self, gw, speed: float, seed: int):
        self.gw = gw
        self.speed = speed
        self.seed = seed
        ex = gw.exchange
        self.view = MarketView(ex)
        self.maker = MarketMaker(MAKER_ACCOUNT, list(ex.instruments), capital_units=10 ** 8 * 50_000_000,
                                 leverage=5, levels=10, half_spread_ticks=5, spacing_ticks=5,
                                 lots=max(1, min(inst.min_qty_lots for inst in ex.instruments.values()) * 100))
        self._points: list = []
        self._chunk = 0
        self._task = None
        self.started = False
        # at most POINTS_PER_TICK price points per symbol and tick, whatever the speed (whole seconds)
        tick_ns = int(TICK_S * speed * 1e9)
        self.bar_ns = max(BAR_NS, tick_ns // POINTS_PER_TICK // BAR_NS * BAR_NS)
        self.chunk_ns = max(CHUNK_NS, self.bar_ns * 3600) // self.bar_ns * self.bar_ns

    def _refill(self, ex) -> None:
        start_ns = ex.now_ns - ex.now_ns % self.bar_ns
        prices = {}
        for s, inst in ex.instruments.items():
            ticks = ex.index_price(s) or ex.mark_price(s) or ex.risk_price(s)
            prices[s] = str(inst.ticks_to_price(ticks or inst.min_price_ticks))
        path = gbm_jump_path(list(ex.instruments.values()), [prices[s] for s in ex.instruments],
                             seed=self.seed * 1_000_003 + self._chunk, bar_ns=self.bar_ns, duration_ns=self.chunk_ns,
                             volatility=0.8, start_ns=start_ns)
        self._chunk += 1
        self._points = [e for e in path.events() if isinstance(e, PricePoint)]
        self._points.reverse()

    def _produce(self, target_ns: int):
        def produce(ex):
            cmds = []
            if not self.started:
                cmds += self.maker.start(self.view)
                self.started = True
            while True:
                if not self._points:
                    self._refill(ex)
                p = self._points[-1]
                if p.time_ns > target_ns:
                    break
                self._points.pop()
                if p.time_ns > ex.now_ns:
                    cmds.append(AdvanceTime(p.time_ns))
                cmds.append(SetIndexPrice(p.symbol, p.index_ticks))
                cmds.append(SetMarkPrice(p.symbol, p.mark_ticks or p.index_ticks))
            if target_ns > ex.now_ns:
                cmds.append(AdvanceTime(target_ns))
            # apply prices first so the maker sees them: the maker's commands are computed lazily below
            out = []
            for c in cmds:
                out.append(c)
            return out, [None] * len(out)
        return produce

    def _maker_produce(self, ex):
        self.view.observe()
        cmds = self.maker.act(self.view)
        return cmds, [None] * len(cmds)

    async def run(self) -> None:
        wall0 = time.monotonic()
        sim0 = self.gw.exchange.now_ns
        while True:
            await asyncio.sleep(TICK_S)
            target = sim0 + int((time.monotonic() - wall0) * self.speed * 1e9)
            try:
                await self.gw.sequencer.run_producer(self._produce(target))
                await self.gw.sequencer.run_producer(self._maker_produce)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the market alive; the error is visible on stderr
                print(f"gateway clock: {exc!r}", flush=True)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="realtime-clock")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
