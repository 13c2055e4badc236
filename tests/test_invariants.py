"""rules §9 after every command of seeded random runs (deposits, leverage / mode changes, index and mark
prices mixed into the order flow), the checker catching each kind of corruption, and journal replay with
venue options."""
import io

import pytest

from exchange import Exchange, RiskOptions, dump_journal, replay
from exchange.persistence.journal import read
from exchange.boundary.validate import check
from tests.checked import CheckedExchange
from tests.conftest import COMPILED, make_instrument
from tests.streams import random_commands

OPTIONS = [
    RiskOptions(),
    RiskOptions(allow_mode_switch_with_position=True, count_unrealized_gains=True, margin_call_e8=50_000_000),
]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "switching"])
@pytest.mark.parametrize("seed", range(8))
def test_conservation_and_invariants_hold_after_every_command(seed, options):
    ex = CheckedExchange([make_instrument()], options=options)
    for command in random_commands(seed=1000 + seed, n=1200):
        ex.apply(command)  # CheckedExchange runs every invariant and the reject-hash rule
    assert ex.ledger.fee_pool_units > 0  # the run traded


def traded_exchange():
    ex = Exchange([make_instrument()])
    for command in random_commands(seed=3, n=800):
        ex.apply(command)
    ex.check_invariants()
    return ex


def some_position(ex):
    return next(p for a in ex.ledger.accounts.values() for p in a.positions.values())


@pytest.mark.parametrize("corrupt, message", [
    (lambda ex: setattr(ex.ledger, "fee_pool_units", ex.ledger.fee_pool_units + 1), "money not conserved"),
    (lambda ex: setattr(some_position(ex), "isolated_margin_units", 5), "isolated margin|money"),
    (lambda ex: setattr(some_position(ex), "lots", some_position(ex).lots * 2), "long lots|entry cost|open interest"),
    (lambda ex: ex.ledger.long_lots.__setitem__("TESTUSDT", ex.ledger.long_lots["TESTUSDT"] + 1), "open interest"),
    (lambda ex: ex.ledger.accounts[1].own_holds().__setitem__(("TESTUSDT", 1), 7), "holds"),
    (lambda ex: ex._position_sides.__setitem__(10**9, 1), "not open"),
])
def test_the_checker_catches_each_kind_of_corruption(corrupt, message):
    ex = traded_exchange()
    corrupt(ex)
    with pytest.raises(AssertionError, match=message):
        ex.check_invariants()


def test_a_journal_with_options_replays_to_the_same_state_hash():
    options = OPTIONS[1]
    ex = Exchange([make_instrument()], options=options)
    # malformed commands (the stream has a few) are answered but never journaled: compare the others' events
    events = [e for command in random_commands(seed=11, n=1000) for e in ex.apply(command) if check(command) is None]
    buffer = io.BytesIO()
    dump_journal(ex.instruments.values(), ex.journal, buffer, options=options)
    buffer.seek(0)
    instruments, commands, loaded_options, profile = read(buffer)
    assert loaded_options == options
    replayed, replay_events = replay(instruments, commands, options=loaded_options, profile=profile)
    assert replayed.state_hash() == ex.state_hash() and replay_events == events


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("seed", range(4))
def test_both_implementations_agree_on_accounts_too(seed):
    commands = list(random_commands(seed=2000 + seed, n=1000))
    runs = []
    for implementation in ("python", "cython"):
        ex = Exchange([make_instrument()], implementation=implementation, options=OPTIONS[1])
        runs.append(([ex.apply(c) for c in commands], ex.state_hash()))
    assert runs[0] == runs[1]
