"""Optional side-by-side: nautilus_trader's ``OrderMatchingEngine`` on the standard workload (bench/README.md).

Skipped (visibly) when nautilus_trader is not installed; install it into a separate venv (bench/README.md,
"nautilus_trader side by side"). One process times, on the same commands (the first ``NAUTILUS_COMMANDS``
rows of ``standard_workload(1_000_000, seed=42)``, default 200,000: the same prefix as the reference):

(n) nautilus_trader's backtest ``OrderMatchingEngine`` (``nautilus_trader.backtest.engine``), driven
    directly, one Python loop over pre-built calls;
(b) our compiled ``MatchingEngine``, one Python call per command (``bench_support.run_per_command``);
(c) our compiled ``run_batch`` on the same rows.

How the workload maps onto nautilus. Nautilus's matching engine is a backtest fill simulator: a strategy's
orders are filled against an order book built from market data, strategy orders never trade with each
other, and fills never change the book ("recorded book data is immutable"). So the book the 1,000
accounts build is given to nautilus as L3 (market-by-order) data, and every order that takes liquidity
is a strategy order that nautilus fills by walking that book. Per workload command, computed before timing
from our engine's events on the same rows (one pass per command, ``event_count()`` splits the events):

- a LIMIT that does not cross: one ``process_order_book_delta(ADD)`` (order id = ours, L3_MBO book);
- a CANCEL of a resting order: one ``process_order_book_delta(DELETE)``; a cancel our engine rejects
  (unknown id, book empty) is no call at all;
- a MARKET order: ``process_order(MarketOrder IOC)`` for the account's strategy (account ``a`` ->
  ``StrategyId("ACCT-a")`` under one trader and one venue account ``SIM-001``, NETTING, MARGIN);
- a LIMIT that crosses: ``process_order(LimitOrder IOC, same price and quantity)`` (nautilus walks the
  book up to the limit), then ``ADD`` of the remainder our engine rested, if any;
- after a taking order, one ``UPDATE`` (partly filled maker) or ``DELETE`` (filled maker) per maker our
  engine filled: the depletion nautilus does not do itself, so its book stays the same as ours;
- SET_MARK (row 0): no call.

So nautilus makes about 1.4 calls per command (the depletion deltas are part of its time) and its book
equals ours after every command; the checks: the same fills (count, lots, taker fees) and the same number
of resting orders at the end. The events go to a handler on ``ExecEngine.process`` that stands in for
nautilus's ExecutionEngine (apply each event to its order, count it): no risk engine, portfolio or
accounts, like our matching engine. Instrument: ``BENCHUSDT-PERP.SIM``, CryptoPerpetual, tick 0.01, size
increment 1 (our lot), maker 0.02% / taker 0.05% (``MakerTakerFeeModel``), default ``FillModel``.

Timing: CPU time (``time.process_time``), fresh engines built outside the timed region every round,
medians. ``python bench/test_bench_nautilus.py [N] [ROUNDS]`` prints the table (script mode).
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from decimal import Decimal

import numpy as np
import pytest

pytest.importorskip("nautilus_trader")

from nautilus_trader.backtest.engine import OrderMatchingEngine  # noqa: E402
from nautilus_trader.backtest.models import FillModel, MakerTakerFeeModel  # noqa: E402
from nautilus_trader.cache.cache import Cache  # noqa: E402
from nautilus_trader.common.component import MessageBus, TestClock  # noqa: E402
from nautilus_trader.core.uuid import UUID4  # noqa: E402
from nautilus_trader.model.currencies import BTC, USDT  # noqa: E402
from nautilus_trader.model.data import BookOrder, OrderBookDelta  # noqa: E402
from nautilus_trader.model.enums import (  # noqa: E402
    AccountType, BookAction, BookType, OmsType, OrderSide, TimeInForce as NtTimeInForce,
)
from nautilus_trader.model.events import OrderFilled, OrderRejected, OrderSubmitted  # noqa: E402
from nautilus_trader.model.identifiers import (  # noqa: E402
    AccountId, ClientOrderId, InstrumentId, StrategyId, Symbol, TraderId, Venue,
)
from nautilus_trader.model.instruments import CryptoPerpetual  # noqa: E402
from nautilus_trader.model.objects import Money, Price, Quantity  # noqa: E402
from nautilus_trader.model.orders import LimitOrder, MarketOrder  # noqa: E402

from bench_support import N_COMMANDS, N_REFERENCE, SEED, per_command_ops, run_per_command, totals  # noqa: E402
from exchange import _impl  # noqa: E402
from exchange.enums import CommandKind, EventKind, OrderType, Side  # noqa: E402
from exchange.workload import standard_workload  # noqa: E402

N_NAUTILUS = int(os.environ.get("NAUTILUS_COMMANDS", N_REFERENCE))
UNITS_PER_USDT = 10**8  # our fee units: K = 10^6 per tick·lot, one tick·lot = 0.01 USDT
TRADER_ID, ACCOUNT_ID = TraderId("BENCH-001"), AccountId("SIM-001")
INSTRUMENT_ID = InstrumentId(Symbol("BENCHUSDT-PERP"), Venue("SIM"))

pytestmark = pytest.mark.skipif(_impl.core is None, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")


def nautilus_instrument() -> CryptoPerpetual:
    """The workload instrument (exchange.workload.workload_instrument) as a nautilus CryptoPerpetual."""
    return CryptoPerpetual(
        instrument_id=INSTRUMENT_ID, raw_symbol=Symbol("BENCHUSDT"), base_currency=BTC, quote_currency=USDT,
        settlement_currency=USDT, is_inverse=False, price_precision=2, size_precision=0,
        price_increment=Price.from_str("0.01"), size_increment=Quantity.from_int(1), ts_event=0, ts_init=0,
        max_quantity=Quantity.from_int(100_000), min_quantity=Quantity.from_int(1),
        max_price=Price.from_str("10000.00"), min_price=Price.from_str("0.01"),
        min_notional=Money(0, USDT), margin_init=Decimal("0.1"), margin_maint=Decimal("0.05"),
        maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0005"),
    )


def workload_prefix(n: int):
    """The first ``n`` rows of ``standard_workload(1_000_000, seed=42)`` (a shorter ``standard_workload(n)``
    draws different rows: the prefix is what the other benchmarks run)."""
    instrument, rows = standard_workload(N_COMMANDS, SEED)
    return instrument, np.ascontiguousarray(rows[:n])


# ==== the plan: workload rows -> nautilus calls (built once, outside every timed region) ==================
def _split_events(instrument, rows: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Our compiled engine's events for ``rows`` and, per row, the index of its first event."""
    engine = _impl.core.MatchingEngine(instrument)
    count = engine.event_count
    starts = []
    for method, args in per_command_ops(engine, rows):
        starts.append(count())
        method(*args)
    starts.append(count())
    return engine.take_events(), starts


def _nt_side(side: int) -> OrderSide:
    return OrderSide.BUY if side == Side.BUY else OrderSide.SELL


def _delta(action: BookAction, side: int, price_ticks: int, lots: int, order_id: int, ts: int) -> OrderBookDelta:
    order = BookOrder(_nt_side(side), Price(price_ticks / 100, 2), Quantity(lots, 0), order_id)
    return OrderBookDelta(INSTRUMENT_ID, action, order, 0, ts, ts, ts)


def nautilus_plan(instrument, rows: np.ndarray) -> dict:
    """Per command, the nautilus calls of the module docstring: ``("delta", OrderBookDelta)`` (immutable,
    reused by every round) or ``("market"|"limit", fields)`` (the order is built fresh per round). Also
    what nautilus should report: our fills, filled lots and taker fees of the taking orders, and the
    resting orders at the end."""
    events, starts = _split_events(instrument, rows)
    ev = {name: events[name].tolist() for name in events.dtype.names}
    resting: dict[int, tuple[int, int]] = {}  # order id -> (side, price_ticks), to address DELETE/UPDATE
    plan: list[tuple] = []
    for i, row in enumerate(rows.tolist()):
        kind, order_id, account_id, side, order_type, _tif, price_ticks, qty_lots = row[:8]
        ts = 1_000_000_000 + i * 1_000
        lo, hi = starts[i], starts[i + 1]
        if kind == CommandKind.CANCEL:
            for j in range(lo, hi):
                if ev["kind"][j] == EventKind.CANCELED:
                    s, p = resting.pop(ev["order_id"][j])
                    plan.append(("delta", _delta(BookAction.DELETE, s, p, ev["qty_lots"][j], ev["order_id"][j], ts)))
            continue
        if kind != CommandKind.PLACE:
            continue  # SET_MARK
        fills = [j for j in range(lo, hi) if ev["kind"][j] == EventKind.FILL]
        if order_type == OrderType.MARKET:
            plan.append(("market", (order_id, account_id, side, qty_lots, ts)))
        elif fills:
            plan.append(("limit", (order_id, account_id, side, qty_lots, ts, price_ticks)))
        for j in fills:  # the makers' depletion, after the taker saw the book
            maker, leaves = ev["maker_order_id"][j], ev["maker_leaves_lots"][j]
            s, p = resting[maker]
            if leaves:
                plan.append(("delta", _delta(BookAction.UPDATE, s, p, leaves, maker, ts)))
            else:
                del resting[maker]
                plan.append(("delta", _delta(BookAction.DELETE, s, p, 0, maker, ts)))
        if order_type == OrderType.LIMIT:
            leaves = ev["leaves_lots"][hi - 1] if fills else qty_lots
            rested = not any(ev["kind"][j] in (EventKind.CANCELED, EventKind.REJECTED) for j in range(lo, hi))
            if leaves and rested:
                resting[order_id] = (side, price_ticks)
                plan.append(("delta", _delta(BookAction.ADD, side, price_ticks, leaves, order_id, ts)))
    fill_rows = events["kind"] == EventKind.FILL
    return {
        "plan": plan,
        "expected": {
            "fills": int(fill_rows.sum()),
            "filled_lots": int(events["qty_lots"][fill_rows].sum()),
            "taker_fees_usdt": int(events["taker_fee_units"][fill_rows].sum()) / UNITS_PER_USDT,
            "resting": len(resting),
        },
    }


# ==== nautilus: one engine per round ======================================================================
class ExecTally:
    """Stands in for nautilus's ExecutionEngine on ``ExecEngine.process``: applies each event to its order
    (so IOC remainders are canceled as nautilus intends) and counts fills, lots, fees and rejects."""

    def __init__(self, orders: dict):
        self.orders = orders
        self.fills = self.rejects = self.events = 0
        self.filled_lots = 0.0
        self.taker_fees = 0.0

    def __call__(self, event) -> None:
        self.events += 1
        self.orders[event.client_order_id].apply(event)
        if type(event) is OrderFilled:
            self.fills += 1
            self.filled_lots += event.last_qty.as_double()
            self.taker_fees += event.commission.as_double()
        elif type(event) is OrderRejected:
            self.rejects += 1


def nautilus_round(instrument: CryptoPerpetual, plan: list) -> tuple:
    """A fresh engine and the flat ``(bound method, args)`` list for ``plan`` (not timed)."""
    clock = TestClock()
    msgbus = MessageBus(trader_id=TRADER_ID, clock=clock)
    cache = Cache(database=None)
    cache.add_instrument(instrument)
    engine = OrderMatchingEngine(
        instrument=instrument, raw_id=0, fill_model=FillModel(), fee_model=MakerTakerFeeModel(),
        book_type=BookType.L3_MBO, oms_type=OmsType.NETTING, account_type=AccountType.MARGIN,
        msgbus=msgbus, cache=cache, clock=clock, bar_execution=False, trade_execution=False,
    )
    orders: dict = {}
    tally = ExecTally(orders)
    msgbus.register("ExecEngine.process", tally)
    strategies = {}
    delta, place = engine.process_order_book_delta, engine.process_order
    ops = []
    for what, item in plan:
        if what == "delta":
            ops.append((delta, (item,)))
            continue
        order_id, account_id, side, qty_lots, ts = item[:5]
        strategy = strategies.get(account_id) or strategies.setdefault(account_id, StrategyId(f"ACCT-{account_id}"))
        client_id = ClientOrderId(f"O-{order_id}")
        common = dict(trader_id=TRADER_ID, strategy_id=strategy, instrument_id=INSTRUMENT_ID,
                      client_order_id=client_id, order_side=_nt_side(side), quantity=Quantity(qty_lots, 0),
                      init_id=UUID4(), ts_init=ts, time_in_force=NtTimeInForce.IOC)
        order = MarketOrder(**common) if what == "market" else LimitOrder(price=Price(item[5] / 100, 2), **common)
        order.apply(OrderSubmitted(TRADER_ID, strategy, INSTRUMENT_ID, client_id, ACCOUNT_ID, UUID4(), ts, ts))
        orders[client_id] = order
        ops.append((place, (order, ACCOUNT_ID)))
    return engine, tally, ops


def run_nautilus(ops: list) -> None:
    """The timed loop: every pre-built call, in order."""
    for method, args in ops:
        method(*args)


def nautilus_result(engine, tally: ExecTally) -> dict:
    book = engine.get_book()
    resting = sum(len(level.orders()) for level in book.bids()) + sum(len(level.orders()) for level in book.asks())
    return {"fills": tally.fills, "filled_lots": int(round(tally.filled_lots)),
            "taker_fees_usdt": tally.taker_fees, "resting": resting, "rejects": tally.rejects,
            "open_strategy_orders": len(engine.get_open_orders())}


def check_nautilus(got: dict, expected: dict) -> None:
    """Nautilus fills what ours fills on the same book, and ends with the same resting orders."""
    assert got["fills"] == expected["fills"], (got, expected)
    assert got["filled_lots"] == expected["filled_lots"], (got, expected)
    assert got["resting"] == expected["resting"], (got, expected)
    assert got["open_strategy_orders"] == 0, got
    assert abs(got["taker_fees_usdt"] - expected["taker_fees_usdt"]) <= 1e-6 * max(1.0, expected["taker_fees_usdt"]), (got, expected)


# ==== pytest-benchmark ====================================================================================
@pytest.fixture(scope="module")
def nautilus_workload():
    instrument, rows = workload_prefix(N_NAUTILUS)
    return instrument, rows, nautilus_plan(instrument, rows)


def _annotate(benchmark, n: int, path: str, implementation: str) -> None:
    benchmark.extra_info.update(commands=n, path=path, implementation=implementation)


@pytest.mark.benchmark(group="nautilus", timer=time.process_time)
def test_nautilus_matching_engine(benchmark, nautilus_workload):
    instrument, rows, prepared = nautilus_workload
    nt_instrument = nautilus_instrument()
    _annotate(benchmark, len(rows), "per-command", "nautilus_trader")
    benchmark.extra_info["nautilus_calls"] = len(prepared["plan"])
    rounds = []

    def setup():
        engine, tally, ops = nautilus_round(nt_instrument, prepared["plan"])
        rounds.append((engine, tally))
        return (ops,), {}

    benchmark.pedantic(run_nautilus, setup=setup, rounds=3, iterations=1)
    for engine, tally in rounds:
        check_nautilus(nautilus_result(engine, tally), prepared["expected"])


@pytest.mark.benchmark(group="nautilus", timer=time.process_time)
def test_ours_per_command_same_commands(benchmark, nautilus_workload):
    instrument, rows, prepared = nautilus_workload
    _annotate(benchmark, len(rows), "per-command", "cython")

    def setup():
        engine = _impl.core.MatchingEngine(instrument)
        return (engine, per_command_ops(engine, rows)), {}

    got = benchmark.pedantic(run_per_command, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    assert got["fills"] == prepared["expected"]["fills"]


@pytest.mark.benchmark(group="nautilus", timer=time.process_time)
def test_ours_batch_same_commands(benchmark, nautilus_workload):
    instrument, rows, prepared = nautilus_workload
    _annotate(benchmark, len(rows), "run_batch", "cython")

    def setup():
        return (_impl.core.MatchingEngine(instrument), rows), {}

    results, events = benchmark.pedantic(lambda engine, r: engine.run_batch(r), setup=setup, rounds=15,
                                         iterations=1, warmup_rounds=2)
    assert totals(None, events)["fills"] == prepared["expected"]["fills"]


# ==== script mode =========================================================================================
def _median_cpu(run, setup, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        args = setup()
        start = time.process_time()
        run(*args)
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(n: int = N_NAUTILUS, rounds: int = 3) -> None:
    t0 = time.process_time()
    instrument, rows = workload_prefix(n)
    prepared = nautilus_plan(instrument, rows)
    nt_instrument = nautilus_instrument()
    print(f"standard workload, first {n:,} commands (seed {SEED}); {len(prepared['plan']):,} nautilus calls; "
          f"prepared in {time.process_time() - t0:.1f} s CPU; CPU-time medians of {rounds} rounds")

    state = {}

    def nt_setup():
        engine, tally, ops = nautilus_round(nt_instrument, prepared["plan"])
        state.update(engine=engine, tally=tally)
        return (ops,)

    t_nt = _median_cpu(run_nautilus, nt_setup, rounds)
    got = nautilus_result(state["engine"], state["tally"])

    def ours_setup():
        engine = _impl.core.MatchingEngine(instrument)
        return engine, per_command_ops(engine, rows)

    t_call = _median_cpu(run_per_command, ours_setup, max(rounds, 5))
    t_batch = _median_cpu(lambda engine, r: engine.run_batch(r), lambda: (_impl.core.MatchingEngine(instrument), rows),
                          max(rounds, 15))
    print("| path | commands | median CPU | commands/s | × nautilus |")
    print("|---|---:|---:|---:|---:|")
    for name, t in (("nautilus_trader OrderMatchingEngine (L3 book, IOC takers)", t_nt),
                    ("ours, compiled, one Python call per command", t_call),
                    ("ours, compiled run_batch", t_batch)):
        print(f"| {name} | {n:,} | {t * 1e3:,.1f} ms | {n / t:,.0f} | {t_nt / t:.1f}× |")
    print(f"nautilus: {got}")
    print(f"ours:     {prepared['expected']}")
    check_nautilus(got, prepared["expected"])
    print("check: same fills, filled lots, taker fees and resting orders on both sides")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
