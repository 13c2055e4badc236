"""``exchange.collector.paused``: the cycle collector off while a whole state is encoded or decoded (the state hash,
a snapshot's bytes, a restore), and exactly as it was afterwards."""
import gc

import pytest

from exchange import Deposit, Exchange, PlaceOrder, SetMarkPrice, Side
from exchange.collector import paused
from tests.conftest import make_instrument

USDT = 10**8


@pytest.fixture
def collections():
    """The collections run while the test body runs (``gc.callbacks``), and the collector on at the start."""
    seen = []

    def count(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(count)
    yield seen
    gc.callbacks.remove(count)
    (gc.enable if was else gc.disable)()


def test_paused_restores_the_collector_as_it_was(collections):
    with paused():
        assert not gc.isenabled()
        junk = [[i] for i in range(50_000)]  # 50,000 tracked lists: 70 young collections if it were on
        assert collections == []
    assert gc.isenabled() and len(junk) == 50_000
    with pytest.raises(ZeroDivisionError):
        with paused():
            1 / 0
    assert gc.isenabled()
    gc.disable()
    with paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # a caller that turned it off keeps it off


def crowd(n: int) -> Exchange:
    inst = make_instrument()
    ex = Exchange([inst])
    ex.apply(Deposit(10**6, 10**12 * USDT))
    ex.apply(SetMarkPrice(inst.symbol, 10_000))
    ex.apply(PlaceOrder(10**6, inst.symbol, Side.SELL, n, 10_000))
    for a in range(1, n + 1):
        ex.apply(Deposit(a, 1_000 * USDT))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, 1, 10_000))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, 1, 9_000 + a % 500))
    return ex


def test_the_state_hash_snapshot_and_restore_run_no_collection(collections, tmp_path):
    """Built for a 1,500-account exchange, the state hash's structure is tens of thousands of tuples and lists:
    20 collections while it was built and packed (two of them of the middle generation; full ones at scale),
    as many for a snapshot, 48 for a restore. Now none runs inside, and at most one young or middle collection
    right after (what the state or the restored exchange left young is collected once); the answers are the same,
    and the collector is on afterwards (off, when the caller had turned it off)."""
    ex = crowd(1_500)
    expected = ex.state_hash()
    gc.disable()
    assert ex.state_hash() == expected and gc.isenabled() is False
    gc.enable()
    for step in (ex.state_hash, lambda: ex.snapshot(tmp_path / "s.snapshot"),
                 lambda: Exchange.restore(tmp_path / "s.snapshot")):
        del collections[:]
        answer = step()
        assert len(collections) <= 1 and 2 not in collections and gc.isenabled()
    assert answer.state_hash() == expected
