"""``Exchange.apply_batch``: command arrays in, result and event arrays out, exactly as ``apply`` one by one
(``exchange.boundary.batch``)."""
import dataclasses
import gc

import numpy as np
import pytest

from exchange import (
    AdvanceTime, CancelOrder, Deposit, Exchange, OrderAccepted, PlaceOrder, Rejected, SetMarkPrice, Side, replay_file,
)
from exchange import _impl
from exchange.boundary import batch
from exchange.boundary.batch import BATCH_COMMAND_DTYPE, COMMAND_DEFAULTS, BatchError, decode, encode
from exchange.commands import COMMAND_TYPES
from tests.conftest import make_instrument, needs_compiled
from tests.streams import SYMBOL, fuzz_cases, liquidation_commands, random_commands

OTHER = "XYZUSDT"
INSTRUMENTS = [make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)]


def one_by_one(commands, profile="binance"):
    ex = Exchange(INSTRUMENTS, profile=profile)
    return ex, [ex.apply(c) for c in commands]


@pytest.mark.parametrize("profile", ["binance", "bybit", "dydx", "hyperliquid"])
@pytest.mark.parametrize("stream", ["random", "liquidation"])
def test_a_batch_is_apply_one_by_one(profile, stream):
    commands = list(random_commands(5, 1_500) if stream == "random"
                    else liquidation_commands(7, 1_500, (SYMBOL, OTHER)))
    reference, per_command = one_by_one(commands, profile)
    ex = Exchange(INSTRUMENTS, profile=profile)
    result = ex.apply_batch(encode(commands, ex.symbols))
    flat = [e for events in per_command for e in events]
    assert result.records() == flat
    assert ex.state_hash() == reference.state_hash() and ex.journal == reference.journal
    assert result.results["events"].tolist() == [len(events) for events in per_command]
    assert result.results["first_event"].tolist() == np.cumsum([0] + [len(e) for e in per_command])[:-1].tolist()
    for row, command, events in zip(result.results.tolist(), commands, per_command):
        code, order_id, _, _ = row
        refused = bool(events) and type(events[0]) is Rejected
        assert code == (events[0].code if refused else 0)
        accepted = [e.order_id for e in events if type(e) is OrderAccepted and type(command) is PlaceOrder]
        assert order_id == (accepted[0] if accepted and not refused else 0)
    kinds = {type(e).__name__ for e in flat}
    assert set(result.events) == kinds and len(kinds) >= 10
    owner = [i for i, events in enumerate(per_command) for _ in events]  # the command of each event
    if stream == "random":  # commands without events sit between commands with events
        assert any(not events for events in per_command)
    for table in result.events.values():
        assert table["command"].tolist() == [owner[seq] for seq in table["seq"].tolist()]
    fills = result.events.get("Fill")
    assert fills is not None and (fills["seq"] == np.sort(fills["seq"])).all()
    assert all(flat[seq].qty_lots == qty for seq, qty in zip(fills["seq"].tolist(), fills["qty_lots"].tolist()))


def test_int_valued_malformed_fields_are_rejected_as_by_apply():
    """Every fuzz case whose fields fit int64 (bounds broken, enums out of range, unknown orders ...): the same
    Rejected codes and messages, and the same state, through the array as one by one."""
    commands = []
    for command, _, _ in fuzz_cases(11, 2_000, (SYMBOL, OTHER)):
        try:
            encode([command], [SYMBOL, OTHER])
        except BatchError:
            continue  # floats, strings, None, beyond int64: only a record can carry them
        commands.append(command)
    reference, per_command = one_by_one(commands)
    ex = Exchange(INSTRUMENTS)
    result = ex.apply_batch(encode(commands, ex.symbols))
    assert result.records() == [e for events in per_command for e in events]
    assert ex.state_hash() == reference.state_hash()
    rejected = result.events["Rejected"]
    assert len(rejected) > 100 and {-1102, -1117}.issubset(set(rejected["code"].tolist()))


def test_encode_and_decode_are_inverse_for_every_command_kind():
    commands = list(liquidation_commands(3, 2_000, (SYMBOL, OTHER))) + list(random_commands(4, 2_000))
    assert {type(c).TAG for c in commands} >= set(COMMAND_TYPES) - {22}  # all but SettleSymbol
    rows = encode(commands, (SYMBOL, OTHER))
    assert [type(c)(**{f.name: getattr(c, f.name) for f in dataclasses.fields(c)}) for c in decode(rows, (SYMBOL, OTHER))] \
        == commands


@needs_compiled
def test_the_compiled_record_maker_makes_the_reference_records():
    commands = list(liquidation_commands(3, 2_000, (SYMBOL, OTHER))) + list(random_commands(4, 2_000))
    rows = encode(commands, (SYMBOL, OTHER))
    made = list(batch._records(*batch.checked_table(rows, (SYMBOL, OTHER)), (SYMBOL, OTHER),
                               _impl.batch_kernel.make_records))
    assert made == decode(rows, (SYMBOL, OTHER)) == commands
    assert [type(c) for c in made] == [type(c) for c in commands]
    assert [hash(c) for c in made] == [hash(c) for c in commands]


@needs_compiled
def test_the_compiled_paths_keep_their_command_records_out_of_the_cycle_collector():
    """An exchange that keeps its commands (the default) keeps every record it applied: made by the batch path's
    maker or by the user, a record of integers, enums and a symbol can be in no reference cycle, so the compiled
    paths take it out of the cycle collector (``exchange/_records.pxd``); tracked, a long run's records pile up
    in the oldest generation and bring full collections over the whole heap."""
    commands = list(liquidation_commands(3, 800, (SYMBOL, OTHER))) + list(random_commands(4, 800))
    fresh = [dataclasses.replace(c) for c in commands]  # (new, tracked records: the originals may be old)
    assert all(gc.is_tracked(c) for c in fresh)
    ex = Exchange(INSTRUMENTS)
    ex.apply_batch(encode(commands, ex.symbols))
    by_apply = Exchange(INSTRUMENTS)
    for command in fresh:
        by_apply.apply(command)
    assert ex.journal == by_apply.journal and len(ex.journal) > 1_000 and by_apply.state_hash() == ex.state_hash()
    assert [c for c in ex.journal if gc.is_tracked(c)] == []
    assert [c for c in by_apply.journal if gc.is_tracked(c)] == []


def test_a_row_template_holds_the_record_defaults():
    row = COMMAND_DEFAULTS.copy()
    row["tag"], row["symbol"], row["account_id"], row["side"], row["qty_lots"], row["price_ticks"] = 1, 0, 7, 1, 3, 10_000
    (command,) = decode(np.array([row]), [SYMBOL])
    assert command == PlaceOrder(7, SYMBOL, Side.BUY, 3, 10_000)


def test_arrays_that_are_not_commands_are_refused_before_anything_runs():
    ex = Exchange(INSTRUMENTS)
    good = encode([SetMarkPrice(SYMBOL, 10_000), Deposit(1, 10**10)], ex.symbols)
    before = ex.state_hash()
    bad_tag, bad_symbol = good.copy(), good.copy()
    bad_tag[1]["tag"] = 99
    bad_symbol[0]["symbol"] = 2
    for rows, message in ((bad_tag, "row 1: unknown command tag 99"), (bad_symbol, "row 0: symbol index 2"),
                          (good.astype([(n, np.int32) for n in BATCH_COMMAND_DTYPE.names]), "BATCH_COMMAND_DTYPE"),
                          (good.reshape(2, 1), "1-d array"), ([1, 2], "BATCH_COMMAND_DTYPE")):
        with pytest.raises(BatchError, match=message):
            ex.apply_batch(rows)
        assert ex.state_hash() == before and ex.journal == []
    assert ex.apply_batch(good).results["code"].tolist() == [0, 0]


def test_encode_never_rounds():
    for bad in (1.5, float("nan"), "3", None, 2**63, True, np.int64(3)):
        with pytest.raises(BatchError, match="qty_lots"):
            encode([PlaceOrder(1, SYMBOL, Side.BUY, bad, 10_000)], [SYMBOL])
    for symbol in ("NOPE", ["TESTUSDT"], None):
        with pytest.raises(BatchError, match="unknown symbol"):
            encode([CancelOrder(1, symbol, 1)], [SYMBOL])
    with pytest.raises(BatchError, match="not a command"):
        encode([object()], [SYMBOL])


def test_a_batch_is_journaled_like_apply(tmp_path):
    commands = list(liquidation_commands(9, 600, (SYMBOL, OTHER))) + [AdvanceTime(10**12)]
    with Exchange(INSTRUMENTS, journal=tmp_path / "j.bin", fsync="never") as ex:
        ex.apply_batch(encode(commands, ex.symbols))
        expected = ex.state_hash()
    assert replay_file(tmp_path / "j.bin")[0].state_hash() == expected


@dataclasses.dataclass(frozen=True)
class Unslotted:  # an event-like record without slots: read by getattr
    symbol: str
    amount_units: int
    flag: bool


@needs_compiled
def test_the_compiled_event_columns_make_the_reference_tables():
    """EventColumns (slots read in C) against EventRows (attrgetter + numpy) on the same events: every event class
    of a liquidation stream (a str column, bool columns, the empty symbol), a record class without slots, and
    more events than a chunk."""
    commands = list(liquidation_commands(7, 1_500, (SYMBOL, OTHER)))
    _, per_command = one_by_one(commands)
    per_command.append([Unslotted(OTHER, -2**63, True), Unslotted("", 2**63 - 1, False)])
    assert sum(map(len, per_command)) > 2 * batch.CHUNK
    reference = batch.EventRows((SYMBOL, OTHER))
    compiled = _impl.batch_kernel.EventColumns((SYMBOL, OTHER), batch.event_dtype)
    for events in per_command:
        reference.add(events)
        compiled.add(events)
    firsts = np.cumsum([0] + [len(e) for e in per_command])[:-1]
    want, got = reference.arrays(firsts), compiled.arrays(firsts)
    assert set(got) == set(want) and len(want) >= 12 and "Unslotted" in want and "Rejected" in want
    for name, table in want.items():
        assert got[name].dtype == table.dtype and got[name].tolist() == table.tolist(), name


@needs_compiled
@pytest.mark.parametrize("value", [2**63, -2**63 - 1])
def test_event_integers_beyond_int64_raise_in_both_collectors(value):
    for rows in (batch.EventRows((SYMBOL,)), _impl.batch_kernel.EventColumns((SYMBOL,), batch.event_dtype)):
        with pytest.raises(OverflowError):
            rows.add([Unslotted(SYMBOL, value, False)] * (batch.CHUNK + 1))
            rows.arrays(np.zeros(1, np.int64))


@pytest.mark.parametrize("seed", [11, 12])
def test_the_bulk_check_passes_exactly_what_the_boundary_passes(seed):
    """``batch.passing`` (the rules on whole columns) against ``validate.check`` on each decoded record: fuzz
    rows (ranges broken, enums out of range, reserved accounts, flags of 2) and well-formed ones of every kind;
    commands without a symbol carry junk symbol indices, which they ignore."""
    from exchange.boundary.validate import check
    commands = [c for c, _, _ in fuzz_cases(seed, 3_000, (SYMBOL, OTHER))]
    commands += list(liquidation_commands(seed, 1_000, (SYMBOL, OTHER))) + list(random_commands(seed, 1_000))
    rows = []
    for command in commands:
        try:
            rows.append(encode([command], (SYMBOL, OTHER))[0])
        except BatchError:
            continue
    rows = np.array(rows, BATCH_COMMAND_DTYPE)
    no_symbol = np.isin(rows["tag"], [tag for tag, cls in COMMAND_TYPES.items()
                                      if "symbol" not in {f.name for f in dataclasses.fields(cls)}])
    rows["symbol"][no_symbol] = np.arange(no_symbol.sum()) * 7 - 50
    passes = batch.passing(rows, (SYMBOL, OTHER))
    expected = [check(record) is None for record in decode(rows, (SYMBOL, OTHER))]
    assert passes.tolist() == expected
    assert 100 < sum(expected) < len(expected) - 100 and no_symbol.any()


def test_a_symbol_the_boundary_refuses_is_refused_in_a_batch_too():
    """An instrument whose symbol the boundary refuses (longer than 64 characters): the batch refuses its
    commands as apply does, with the same message."""
    long_symbol = "X" * 65 + "USDT"
    instruments = [make_instrument(), dataclasses.replace(make_instrument(), symbol=long_symbol)]
    commands = [Deposit(1, 10**12), SetMarkPrice(long_symbol, 10_000), PlaceOrder(1, long_symbol, Side.BUY, 1, 10_000),
                PlaceOrder(1, SYMBOL, Side.BUY, 1, 10_000)]
    reference = Exchange(instruments)
    expected = [e for c in commands for e in reference.apply(c)]
    ex = Exchange(instruments)
    result = ex.apply_batch(encode(commands, ex.symbols))
    assert batch.passing(encode(commands, ex.symbols), ex.symbols).tolist() == [1, 0, 0, 1]
    assert result.records() == expected and result.results["code"].tolist()[1:3] == [-1102, -1102]


@needs_compiled
@pytest.mark.parametrize("profile", ["binance", "bybit", "dydx", "hyperliquid", "bitmex"])
def test_compiled_and_reference_batches_give_the_same_arrays(profile):
    """The whole batch path of both implementations on one crash stream (liquidations, takeovers, ADL) with
    malformed rows mixed in: the same results, the same event tables (dtypes and values) and state hash."""
    commands = list(liquidation_commands(13, 1_200, (SYMBOL, OTHER)))
    malformed = [PlaceOrder(1, SYMBOL, 7, 1, 10_000), CancelOrder(-1, SYMBOL, 1), Deposit(2**62, 10**8)]
    commands = commands[:600] + malformed + commands[600:]
    results = {}
    for implementation in ("python", "cython"):
        ex = Exchange(INSTRUMENTS, profile=profile, implementation=implementation)
        results[implementation] = ex.apply_batch(encode(commands, ex.symbols)), ex.state_hash()
    (reference, reference_hash), (compiled, compiled_hash) = results["python"], results["cython"]
    assert compiled_hash == reference_hash
    assert compiled.results.tolist() == reference.results.tolist()
    assert set(compiled.events) == set(reference.events) and {"ADLFill", "Rejected"} <= set(reference.events)
    for name, table in reference.events.items():
        assert compiled.events[name].dtype == table.dtype and compiled.events[name].tolist() == table.tolist(), name
