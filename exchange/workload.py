"""The standard seeded order-flow workload (benchmarks in ``bench/`` and ``exchange-sim demo``).

:func:`standard_workload` returns ``(instrument, rows)``: the instrument of :func:`workload_instrument` and
``n`` rows of ``COMMAND_DTYPE`` built from ``numpy.random.default_rng(seed)`` only (same ``n`` and ``seed``,
same rows, on every machine):

- row 0 is ``SET_MARK 10_000`` (100.00), so the price band applies from the start;
- the mid price starts at 10,000 ticks (100.00, tick 0.01) and drifts by a seeded random walk
  (±1 tick with probability 5% each per command; clipped to [6,000, 14,000], which 1M commands never
  reach in practice: the walk's standard deviation after 1M commands is ~316 ticks);
- every other row is, independently: 60% LIMIT GTC (85% passive, 1-50 ticks away from the mid on its own
  side; 15% aggressive, 0-5 ticks through the mid), 30% CANCEL, 10% MARKET; side 50/50;
  size 1-100 lots uniform; account uniform among ``n_accounts`` (1,000) accounts; STP NONE,
  not reduce-only;
- order ids are 1, 2, 3, ... in place order (limit and market), so they equal the ids the exchange assigns
  when every place is accepted (they are: see the instrument);
- a CANCEL targets a uniformly chosen order that is resting at that moment: the generator runs the rows
  through a matching engine as it writes them (:func:`_choose_cancel_targets`), so every cancel succeeds
  except when the book is empty (then it targets an unknown id: a legitimate -2011).

The instrument (:func:`workload_instrument`) is chosen so that no filter rejects this flow: tick 0.01,
lot 1 (K = 10⁶ units per tick·lot), min qty 1 lot, max qty and max market qty 100,000 lots, prices
0.01 .. 10,000.00, min notional 0, price band 0.5 .. 1.5 × mark (the mid stays within ±40%), fees
maker 0.02% / taker 0.05%.

Cost: O(n) numpy plus one pass of the rows through the matching engine to pick cancel targets (~1.5 s per
1M rows with the compiled core).
"""
from __future__ import annotations

import numpy as np

from ._impl import matching_engine_class
from .commands import COMMAND_DTYPE
from .enums import CommandKind, OrderType, Side, STPMode, TimeInForce
from .spec import Instrument

START_MID_TICKS = 10_000
MID_RANGE_TICKS = (6_000, 14_000)
LIMIT_SHARE, CANCEL_SHARE = 0.60, 0.30  # MARKET: the remaining 0.10
PASSIVE_SHARE = 0.85
MAX_PASSIVE_OFFSET_TICKS, MAX_AGGRESSIVE_OFFSET_TICKS = 50, 5
MAX_SIZE_LOTS = 100


def workload_instrument() -> Instrument:
    """The instrument the standard workload runs on (no filter rejects the flow; module docstring)."""
    return Instrument.linear(
        "BENCHUSDT", tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000", max_market_qty="100000",
        min_price="0.01", max_price="10000", min_notional="0", band_up="1.5", band_down="0.5",
        maker_fee="0.0002", taker_fee="0.0005",
    )


def standard_workload(n: int = 1_000_000, seed: int = 42, *, n_accounts: int = 1_000) -> tuple[Instrument, np.ndarray]:
    """``(instrument, rows)``: ``n`` seeded ``COMMAND_DTYPE`` rows of the standard order flow (module
    docstring). Raises ``ValueError`` if ``n < 1``."""
    if n < 1:
        raise ValueError("the workload needs at least one command (the initial SET_MARK)")
    rng = np.random.default_rng(seed)
    u_kind, u_passive, u_side, u_pick = (rng.random(n) for _ in range(4))
    offsets_passive = rng.integers(1, MAX_PASSIVE_OFFSET_TICKS + 1, n)
    offsets_aggressive = rng.integers(0, MAX_AGGRESSIVE_OFFSET_TICKS + 1, n)
    sizes = rng.integers(1, MAX_SIZE_LOTS + 1, n)
    accounts = rng.integers(0, n_accounts, n)
    steps = rng.choice(np.array([-1, 0, 1]), size=n, p=[0.05, 0.90, 0.05])
    mid = np.clip(START_MID_TICKS + np.cumsum(steps), *MID_RANGE_TICKS)

    is_limit = u_kind < LIMIT_SHARE
    is_cancel = (u_kind >= LIMIT_SHARE) & (u_kind < LIMIT_SHARE + CANCEL_SHARE)
    is_cancel[0] = is_limit[0] = False
    is_market = ~(is_limit | is_cancel)
    is_market[0] = False
    is_place = is_limit | is_market

    buy = u_side < 0.5
    sign = np.where(buy, 1, -1)  # +1 BUY, -1 SELL: toward the other side of the book
    passive = u_passive < PASSIVE_SHARE
    prices = np.where(passive, mid - sign * offsets_passive, mid + sign * offsets_aggressive)

    rows = np.zeros(n, dtype=COMMAND_DTYPE)
    rows["kind"][0] = CommandKind.SET_MARK
    rows["price_ticks"][0] = START_MID_TICKS
    rows["kind"][is_place] = CommandKind.PLACE
    rows["kind"][is_cancel] = CommandKind.CANCEL
    rows["order_id"][is_place] = np.arange(1, int(is_place.sum()) + 1)
    rows["account_id"][is_place] = accounts[is_place]
    rows["side"][is_place] = np.where(buy, Side.BUY, Side.SELL)[is_place]
    rows["order_type"][is_limit] = OrderType.LIMIT
    rows["order_type"][is_market] = OrderType.MARKET
    rows["tif"][is_place] = TimeInForce.GTC
    rows["price_ticks"][is_limit] = prices[is_limit]
    rows["qty_lots"][is_place] = sizes[is_place]
    rows["stp"][is_place] = STPMode.NONE

    _choose_cancel_targets(rows, is_cancel, u_pick)
    return workload_instrument(), rows


def _choose_cancel_targets(rows: np.ndarray, is_cancel: np.ndarray, u_pick: np.ndarray) -> None:
    """Fill in each CANCEL row with a uniformly chosen order that is resting at that moment.

    The rows are run through a matching engine as they are completed (the active implementation; both give
    the same book, so the workload does not depend on which one runs). Orders that rested when placed are
    kept in a list; a pick that has since been filled is dropped and the pick repeated, so the target is a
    resting order. With no resting order at all, the cancel targets an unknown id (a legitimate -2011).
    """
    engine = matching_engine_class()(workload_instrument())
    live: list[int] = []
    order_ids, accounts = rows["order_id"].tolist(), rows["account_id"].tolist()
    unknown_id = max(order_ids) + 1
    columns = zip(rows["kind"].tolist(), rows["side"].tolist(), rows["order_type"].tolist(),
                  rows["price_ticks"].tolist(), rows["qty_lots"].tolist(), is_cancel.tolist(), u_pick.tolist())
    for i, (kind, side, order_type, price_ticks, qty_lots, cancel, pick) in enumerate(columns):
        if cancel:
            target, owner = unknown_id, 0
            while live:
                j = int(pick * len(live))
                resting = engine.order(live[j])
                live[j], live[-1] = live[-1], live[j]
                stale = live.pop()
                if resting is not None:
                    target, owner = stale, resting[1]
                    break
            order_ids[i], accounts[i] = target, owner
            engine.cancel(target, owner)
        elif kind == CommandKind.PLACE:
            engine.place(order_ids[i], accounts[i], side, order_type, TimeInForce.GTC, price_ticks, qty_lots,
                         STPMode.NONE, 0, 0)
            if engine.order(order_ids[i]) is not None:
                live.append(order_ids[i])
        else:
            engine.set_mark(price_ticks)
        if i % 1024 == 0:
            engine.clear_events()
    rows["order_id"], rows["account_id"] = order_ids, accounts
