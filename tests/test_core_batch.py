"""The compiled batch path: ``run_batch`` must equal the per-command API row for row (docs/matching.md, Batch).

Seeded streams (the differential generator) are run once through ``run_batch`` (whole, and in chunks) and
once command by command on a second engine; results, events and the final state must be identical.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import COMPILED, make_instrument, needs_compiled
from exchange.commands import COMMAND_DTYPE
from exchange.enums import CommandKind, EventKind, OrderType, Side, STPMode, TimeInForce
from exchange.events import EVENT_DTYPE
from exchange.workload import standard_workload
from exchange.orders.matching import apply_row
from test_differential_matching import random_commands, tiny_instrument

if COMPILED:
    from exchange.orders._matching import MatchingEngine as CompiledEngine

pytestmark = needs_compiled


def per_command(engine, commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    results = np.array([apply_row(engine, row) for row in commands.tolist()], dtype=np.int64)
    return results, engine.take_events()


def command(kind, **fields) -> np.ndarray:
    row = np.zeros(1, dtype=COMMAND_DTYPE)
    row["kind"] = kind
    for name, value in fields.items():
        row[name] = value
    return row


@pytest.mark.parametrize("seed", range(6))
def test_run_batch_equals_per_command(seed):
    instrument = tiny_instrument(seed % 2)
    commands = random_commands(seed + 100)
    batch_engine, loop_engine = CompiledEngine(instrument), CompiledEngine(instrument)
    results, events = batch_engine.run_batch(commands)
    expected_results, expected_events = per_command(loop_engine, commands)
    assert results.dtype == np.int64 and events.dtype == EVENT_DTYPE
    assert results.tolist() == expected_results.tolist()
    assert events.tolist() == expected_events.tolist()
    assert batch_engine.canonical_state() == loop_engine.canonical_state()
    assert batch_engine.event_count() == 0
    batch_engine.check_invariants()


@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_run_batch_in_chunks_equals_one_batch(chunk):
    instrument = tiny_instrument(1)
    commands = random_commands(7)
    whole = CompiledEngine(instrument)
    results, events = whole.run_batch(commands)
    chunked = CompiledEngine(instrument)
    parts = [chunked.run_batch(commands[i:i + chunk]) for i in range(0, len(commands), chunk)]
    assert np.concatenate([r for r, _ in parts]).tolist() == results.tolist()
    assert np.concatenate([e for _, e in parts]).tolist() == events.tolist()
    assert chunked.canonical_state() == whole.canonical_state()


def test_run_batch_on_the_standard_workload_equals_per_command():
    instrument, commands = standard_workload(20_000, seed=3)
    batch_engine, loop_engine = CompiledEngine(instrument), CompiledEngine(instrument)
    results, events = batch_engine.run_batch(commands)
    expected_results, expected_events = per_command(loop_engine, commands)
    assert np.array_equal(results, expected_results)
    assert np.array_equal(events, expected_events)
    assert batch_engine.canonical_state() == loop_engine.canonical_state()
    assert (events["kind"] == EventKind.FILL).sum() > 1000


def test_empty_batch():
    engine = CompiledEngine(make_instrument())
    results, events = engine.run_batch(np.zeros(0, dtype=COMMAND_DTYPE))
    assert results.dtype == np.int64 and results.shape == (0,)
    assert events.dtype == EVENT_DTYPE and events.shape == (0,)
    assert engine.canonical_state() == [("mark", 0), ("now", 0), ("last", 0)]


def test_run_batch_returns_rows_buffered_before_the_call_first():
    engine = CompiledEngine(make_instrument())
    engine.place(1, 1, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 100, 5, STPMode.NONE, 0, 0)
    results, events = engine.run_batch(command(CommandKind.CANCEL, order_id=1, account_id=1))
    assert results.tolist() == [0]
    assert events["kind"].tolist() == [EventKind.ACCEPTED, EventKind.CANCELED]
    assert engine.event_count() == 0


def test_run_batch_refuses_bad_input_before_running_anything():
    engine = CompiledEngine(make_instrument())
    good = command(CommandKind.PLACE, order_id=1, account_id=1, side=1, order_type=1, tif=1, price_ticks=100,
                   qty_lots=5, stp=1)
    with pytest.raises(ValueError):
        engine.run_batch(np.concatenate([good, command(9)]))
    with pytest.raises(TypeError):
        engine.run_batch(np.zeros((3, 12), dtype=np.int64))
    assert engine.order_count() == 0 and engine.event_count() == 0


def test_each_command_kind_in_a_batch():
    """One row of every kind, with the events each must produce."""
    engine = CompiledEngine(make_instrument())
    rows = np.concatenate([
        command(CommandKind.SET_MARK, price_ticks=100),
        command(CommandKind.PLACE, order_id=1, account_id=1, side=Side.SELL, order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC, price_ticks=101, qty_lots=10, stp=STPMode.NONE),
        command(CommandKind.PLACE, order_id=2, account_id=1, side=Side.SELL, order_type=OrderType.LIMIT,
                tif=TimeInForce.GTD, price_ticks=102, qty_lots=4, stp=STPMode.NONE, expire_ns=50),
        command(CommandKind.AMEND, order_id=1, account_id=1, price_ticks=101, qty_lots=6),
        command(CommandKind.PLACE, order_id=3, account_id=2, side=Side.BUY, order_type=OrderType.MARKET,
                tif=TimeInForce.GTC, qty_lots=2, stp=STPMode.NONE),
        command(CommandKind.CANCEL, order_id=99, account_id=2),
        command(CommandKind.SET_TIME, time_ns=50),
        command(CommandKind.CANCEL_ALL, account_id=1),
    ])
    results, events = engine.run_batch(rows)
    assert results.tolist() == [0, 0, 0, 0, 0, -2011, 1, 1]
    assert [(e["kind"], e["order_id"], e["code"]) for e in events] == [
        (EventKind.ACCEPTED, 1, 0), (EventKind.ACCEPTED, 2, 0), (EventKind.AMENDED, 1, 1),
        (EventKind.ACCEPTED, 3, 0), (EventKind.FILL, 3, 0), (EventKind.REJECTED, 99, -2011),
        (EventKind.CANCELED, 2, 5), (EventKind.CANCELED, 1, 1),
    ]
    fill = events[events["kind"] == EventKind.FILL][0]
    assert (fill["price_ticks"], fill["qty_lots"], fill["maker_order_id"], fill["maker_leaves_lots"]) == (101, 2, 1, 4)
    # notional 101 × 2 × 10⁶ = 2.02e8 units; maker 0.02% -> 40,400; taker 0.05% -> 101,000
    assert (fill["maker_fee_units"], fill["taker_fee_units"]) == (40_400, 101_000)
    assert engine.last_price() == 101 and engine.mark() == 100 and engine.now() == 50
    assert engine.order_count() == 0


def test_fee_rounding_is_ceil_for_fees_and_rebates():
    """ceil(notional × rate / 1e8) toward +∞: a fee rounds up, a rebate rounds toward zero."""
    instrument = make_instrument(lot_size="0.001", min_qty="0.001", max_qty="100", maker_fee="-0.00007",
                                 taker_fee="0.00033")  # K = 1000
    engine = CompiledEngine(instrument)
    engine.place(1, 1, Side.SELL, OrderType.LIMIT, TimeInForce.GTC, 101, 3, STPMode.NONE, 0, 0)
    engine.place(2, 2, Side.BUY, OrderType.LIMIT, TimeInForce.IOC, 101, 3, STPMode.NONE, 0, 0)
    fill = engine.take_events()[2]
    notional = 101 * 3 * 1000  # 303,000 units
    assert fill["taker_fee_units"] == -(-notional * 33_000 // 10**8) == 100  # 99.99 -> 100
    assert fill["maker_fee_units"] == -(-notional * -7_000 // 10**8) == -21  # -21.21 -> -21


def test_compiled_enum_values_match_exchange_enums():
    from exchange import enums
    from exchange.orders import _matching as _core

    for enum_name, members in _core.ENUM_VALUES.items():
        enum = getattr(enums, enum_name)
        for member, value in members.items():
            assert enum[member] == value, f"{enum_name}.{member}: compiled {value} != {int(enum[member])}"


def test_large_batch_events_are_handed_over_and_independent_of_the_engine():
    """A large batch's events come back without a copy; they stay valid after the engine is gone, and the
    engine keeps working with a fresh buffer."""
    instrument, commands = standard_workload(100_000, seed=5)
    engine = CompiledEngine(instrument)
    results, events = engine.run_batch(commands[:60_000])
    snapshot = events.copy()
    more_results, more_events = engine.run_batch(commands[60_000:])
    del engine
    assert np.array_equal(events, snapshot)
    loop = CompiledEngine(instrument)
    expected_results, expected_events = per_command(loop, commands)
    assert np.concatenate([results, more_results]).tolist() == expected_results.tolist()
    assert np.concatenate([events, more_events]).tolist() == expected_events.tolist()
