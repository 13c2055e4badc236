"""The msgpack journal: round trip, replay determinism, and rejected commands leave the state alone."""
import io

import pytest

from exchange import Exchange, OrderType, PlaceOrder, Rejected, Side, dump_journal, load_journal, replay
from exchange.journal import decode_command, encode_command
from tests.conftest import COMPILED, make_instrument
from tests.streams import random_commands


def run(commands, implementation=None):
    ex = Exchange([make_instrument()], implementation=implementation)
    events, hashes = [], []
    for command in commands:
        before = ex.state_hash()
        produced = ex.apply(command)
        ex.check_invariants()
        if len(produced) == 1 and isinstance(produced[0], Rejected):
            assert ex.state_hash() == before, f"rejected {command} changed state"
        events.append(produced)
        hashes.append(ex.state_hash())
    return ex, events, hashes


def test_command_encoding_round_trips():
    command = PlaceOrder(3, "TESTUSDT", Side.SELL, 5, 0, OrderType.TRAILING_STOP_MARKET, callback_e8=100_000)
    assert decode_command(encode_command(command)) == command
    with pytest.raises(ValueError):
        decode_command([99, 1])
    with pytest.raises(ValueError):
        decode_command([1, 1, 2])


def test_journal_file_round_trip_and_replay_reproduce_the_state_hash():
    commands = list(random_commands(seed=7, n=1500))
    ex, events, _ = run(commands)
    buffer = io.BytesIO()
    assert dump_journal(ex.instruments.values(), ex.journal, buffer) == 1500
    buffer.seek(0)
    instruments, loaded = load_journal(buffer)
    assert instruments == list(ex.instruments.values())
    assert loaded == commands
    replayed, replay_events = replay(instruments, loaded)
    assert replayed.state_hash() == ex.state_hash()
    assert replay_events == [e for batch in events for e in batch]


def test_load_refuses_other_files():
    with pytest.raises(ValueError):
        load_journal(io.BytesIO(b"\x91\x01"))


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_keep_invariants_and_rejects_change_nothing(seed):
    run(random_commands(seed=seed, n=1500))


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("seed", range(10))
def test_both_implementations_produce_the_same_events_and_hashes(seed):
    commands = list(random_commands(seed=100 + seed, n=1500))
    _, events_py, hashes_py = run(commands, implementation="python")
    _, events_c, hashes_c = run(commands, implementation="cython")
    for i, (a, b) in enumerate(zip(events_py, events_c)):
        assert a == b, f"seed {seed}: events differ at command {i}: {commands[i]}"
    assert hashes_py == hashes_c
