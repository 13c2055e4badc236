"""The compiled ledger's compact positions (exchange/accounts/_positions.pyx): an account with one position holds
a read-only ``OnePosition`` mapping instead of a dict of one entry. Readers must not be able to tell: after every
store and drop it answers exactly as the reference ledger's dict (keys in the same order, lookups, equality),
and it is the kind the memory rule names (EMPTY for none, OnePosition for one, a dict for more)."""
import pickle
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange import _impl
from exchange.accounts.ledger import EMPTY, Account, Ledger, Position
from exchange.enums import PositionSide
from tests.conftest import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled core not active")

SYMBOLS = ("AUSDT", "BUSDT", "CUSDT")
SIDES = (PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT)
KEYS = [(symbol, side) for symbol in SYMBOLS for side in SIDES]
OPERATIONS = st.lists(st.tuples(st.sampled_from(KEYS), st.integers(-3, 3)), max_size=40)


def ledgers():
    defaults = {symbol: 20 for symbol in SYMBOLS}
    return Ledger(defaults), Ledger(defaults, compact_positions=_impl.positions_kernel)


def answers_as(got, want) -> None:
    """``got`` answers every read as the dict (or EMPTY) ``want``."""
    assert len(got) == len(want) and bool(got) == bool(want)
    assert list(got) == list(want) and list(got.items()) == list(want.items())
    assert list(got.values()) == list(want.values()) and list(got.keys()) == list(want.keys())
    assert got == want and want == got and not (got != want)
    assert sorted(got) == sorted(want)
    for key in KEYS:
        assert (key in got) == (key in want) and got.get(key) is want.get(key)
        assert got.get(key, "none") is want.get(key, "none")
        if key in want:
            assert got[key] is want[key]
        else:
            with pytest.raises(KeyError):
                got[key]


@settings(max_examples=300, deadline=None)
@given(OPERATIONS)
def test_compact_positions_answer_as_the_reference_dict_after_every_store(operations):
    """Random opens and closes of positions (lots 0 = the position closed) through ``Ledger.store`` of both
    ledgers: the same keys in the same order, the same objects, and the kind by count."""
    reference, compact = ledgers()
    accounts = (reference.open(1), compact.open(1))
    for (symbol, side), lots in operations:
        new = Position(lots, 100 * lots)  # one object for both ledgers (so lookups can be compared by identity)
        for ledger, account in zip((reference, compact), accounts):
            known = account.positions.get((symbol, side))  # a position stored again is the same object
            ledger.store(account, symbol, side, known if known is not None and lots and known.lots == lots else new)
        got, want = accounts[1].positions, accounts[0].positions
        answers_as(got, want)
        if not want:
            assert got is EMPTY and want is EMPTY
        elif len(want) == 1:
            assert type(got) is _impl.positions_kernel.OnePosition and type(want) is dict
        else:
            assert type(got) is dict
        assert reference.holders == compact.holders
        assert accounts[0].as_state() == accounts[1].as_state()


def test_a_dict_that_drops_to_one_entry_becomes_compact_and_keeps_the_order():
    reference, compact = ledgers()
    accounts = (reference.open(1), compact.open(1))
    steps = [("BUSDT", 1), ("AUSDT", 2), ("CUSDT", 3), ("BUSDT", 0), ("AUSDT", 0), ("AUSDT", 5), ("CUSDT", 0)]
    kinds = []
    for symbol, lots in steps:
        position = Position(lots, 7 * lots)
        for ledger, account in zip((reference, compact), accounts):
            ledger.store(account, symbol, PositionSide.BOTH, position)
        answers_as(accounts[1].positions, accounts[0].positions)
        kinds.append(type(accounts[1].positions).__name__)
    assert kinds == ["OnePosition", "dict", "dict", "dict", "OnePosition", "dict", "OnePosition"]
    assert [key[0] for key in accounts[1].positions] == ["AUSDT"]


def test_one_position_is_a_read_only_mapping():
    one_position = _impl.positions_kernel.OnePosition
    key, position = ("AUSDT", PositionSide.BOTH), Position(2, 200)
    one = one_position(key, position)
    assert isinstance(one, Mapping) and dict(one) == {key: position} and one == {key: position}
    assert one != {key: Position(3, 300)} and one != {key: position, ("BUSDT", PositionSide.BOTH): position}
    assert one != {} and one != one_position(("BUSDT", PositionSide.BOTH), position)
    with pytest.raises(TypeError):
        one[key] = Position(1, 1)
    with pytest.raises(TypeError):
        del one[key]
    with pytest.raises(TypeError):
        hash(one)
    assert not hasattr(one, "pop") and not hasattr(one, "clear") and not hasattr(one, "update")
    assert pickle.loads(pickle.dumps(one)) == one and "AUSDT" in repr(one)
    assert one.keys() - {key} == set() and one.keys() == {key}


def test_an_account_with_one_position_is_small():
    """The point of it: the compact mapping is several times smaller than a dict of one entry."""
    import sys

    one = _impl.positions_kernel.OnePosition(("AUSDT", PositionSide.BOTH), Position(1, 1))
    assert sys.getsizeof(one) <= 48 < 3 * 48 <= sys.getsizeof({("AUSDT", PositionSide.BOTH): Position(1, 1)})
    assert isinstance(Account(1).positions, type(EMPTY))
