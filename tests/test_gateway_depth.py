"""The gateway's depth ids and diffs (exchange.gateway.market.Depth) on a real exchange, without a server:
nobody streaming a symbol means its levels are not read, yet its update id still moves; a subscription reads
them and moves the id (an older snapshot then shows a gap), and later diffs are exact."""
from exchange import Exchange
from exchange.commands import Deposit, PlaceOrder, SetIndexPrice, SetMarkPrice
from exchange.enums import Side
from exchange.gateway.market import Depth
from tests.conftest import make_instrument

SYM = "TESTUSDT"


def _exchange():
    ex = Exchange([make_instrument()])
    for cmd in (SetIndexPrice(SYM, 10_000), SetMarkPrice(SYM, 10_000), Deposit(1, 10 ** 14), Deposit(2, 10 ** 14)):
        ex.apply(cmd)
    return ex


def _place(ex, account, side, lots, ticks):
    events = ex.apply(PlaceOrder(account, SYM, side, lots, ticks))
    assert type(events[0]).__name__ == "OrderAccepted", events


def _book(depth):
    """What a client following the diffs holds: the REST snapshot's levels as (price, qty) strings."""
    snap = depth.snapshot(SYM, 1000)
    return snap["lastUpdateId"], dict(map(tuple, snap["bids"])), dict(map(tuple, snap["asks"]))


def test_no_subscriber_moves_the_id_without_reading_the_levels():
    ex = _exchange()
    depth = Depth(ex)
    start = depth.update_id[SYM]
    _place(ex, 1, Side.BUY, 5, 9_990)
    assert depth.diff(SYM, messages=False) == (None, None)
    assert depth.levels[SYM] is None and depth.update_id[SYM] == start + 1  # stale, the id moved
    _place(ex, 1, Side.SELL, 5, 10_010)
    depth.diff(SYM, messages=False)
    assert depth.update_id[SYM] == start + 2


def test_follow_reads_stale_levels_then_diffs_are_exact():
    ex = _exchange()
    depth = Depth(ex)
    _place(ex, 1, Side.BUY, 5, 9_990)
    depth.diff(SYM, messages=False)
    old_id, _, _ = _book(depth)  # a snapshot taken while nobody streamed
    _place(ex, 1, Side.BUY, 3, 9_980)
    depth.diff(SYM, messages=False)
    depth.follow(SYM)  # someone subscribes: the levels are read, the id moves
    assert depth.levels[SYM] is not None and depth.update_id[SYM] == old_id + 2
    depth.follow(SYM)  # a second subscriber: nothing to read, the id stays
    assert depth.update_id[SYM] == old_id + 2
    snap_id, bids, asks = _book(depth)  # the subscriber's snapshot
    _place(ex, 2, Side.SELL, 2, 9_990)  # fills 2 of the 5 at 99.90
    _place(ex, 1, Side.SELL, 4, 10_020)
    event, ticker = depth.diff(SYM, messages=True)
    # the diff continues the new snapshot; the older one sees a gap
    assert event["pu"] == snap_id != old_id and event["U"] == event["u"] == snap_id + 1
    bids.update(map(tuple, event["b"]))
    asks.update(map(tuple, event["a"]))
    _, want_bids, want_asks = _book(depth)
    assert {p: q for p, q in bids.items() if float(q)} == want_bids == {"99.90": "3", "99.80": "3"}
    assert {p: q for p, q in asks.items() if float(q)} == want_asks == {"100.20": "4"}
    assert ticker["b"] == "99.90" and ticker["B"] == "3" and ticker["u"] == event["u"]
    _place(ex, 1, Side.SELL, 1, 10_030)
    event, _ = depth.diff(SYM, messages=True)
    assert event["pu"] == snap_id + 1 and event["a"] == [["100.30", "1"]] and event["b"] == []
