"""The compiled per-part risk queries (exchange/accounts/_pretrade.pyx ``RiskKernel``) against the reference
(exchange/accounts/pretrade.py ``Risk``), value for value.

A reference and a compiled :class:`~exchange.accounts.pretrade.Risk` over twin ledgers built from the same
hypothesis draw: two symbols with their own K and bracket tables (MARGINAL, STEPWISE, OPEN_INTEREST_IMF), one-way
and hedge accounts, cross and isolated symbols (integer leverages and initial margin rates), ``isolated_maintenance``
MARK and ENTRY, every liquidation trigger, and prices, sizes, entry costs and balances up to 2⁸⁰ (beyond int64;
bracket caps up to 2¹⁰⁰, beyond the kernel's int64 / 128-bit terms).
Compared: ``notional``, ``upnl``, ``position_mm``, ``isolated_mm``, ``part_mm``, ``is_isolated``,
``is_liquidatable``, ``cross_positions`` (with its order), ``cross_balance``, ``cross_mm``, ``part_state`` (of
every part, and of absent positions), ``part_states``, ``available``, ``margin_calls`` (the calls and the account's warned set), ``bankruptcy_price_ticks`` (every key, present or
not) and ``part_liquidatable``; and ``refresh_holds`` (order records, sums, order homes and holds re-read from a
book of hypothesis orders, over earlier tracked ones).
"""
import gc
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.accounts import margin
from exchange.accounts.ledger import EMPTY, NO_WARNINGS, Ledger, Position
from exchange.accounts.pretrade import CROSS, OpenOrder, Risk
from exchange.enums import MarginMode, PositionMode, PositionSide, Side
from exchange.profiles import BracketStyle, RiskOptions
from tests.conftest import COMPILED

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled core not active")

SYMBOLS = ("AAAUSDT", "BBBUSDT")
BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT
INT64 = 2**63
E8 = 10**8

sizes = st.one_of(st.integers(-10**6, 10**6), st.integers(-2**80, 2**80), st.sampled_from([INT64 - 1, -INT64, INT64]))
money = st.one_of(st.integers(-10**15, 10**15), st.integers(-2**80, 2**80))
marks = st.one_of(st.integers(1, 10**7), st.integers(1, 2**70), st.sampled_from([INT64 - 1, INT64]))
k_units = st.one_of(st.integers(1, 10**8), st.sampled_from([2**40, INT64 - 1, 2**66]))


@st.composite
def bracket_tables(draw):
    """Plain ``(cap, mmr_e8, max leverage)`` rows: caps increasing (some beyond int64), MMR non-decreasing."""
    n = draw(st.integers(1, 4))
    caps = sorted(draw(st.sets(st.one_of(st.integers(1, 10**15), st.integers(1, 2**80), st.integers(1, 2**100)),
                               min_size=n, max_size=n)))  # (2¹⁰⁰: deductions beyond the kernel's 128-bit terms)
    mmrs = sorted(draw(st.lists(st.integers(0, E8 - 1), min_size=n, max_size=n)))
    return [(cap, mmr, max(1, 125 >> i)) for i, (cap, mmr) in enumerate(zip(caps, mmrs))]


@st.composite
def positions(draw, hedge: bool):
    """(key, lots ≠ 0, entry cost, isolated margin) of some keys the account's mode allows."""
    keys = [(s, side) for s in SYMBOLS for side in ((LONG, SHORT) if hedge else (BOTH,))]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)))
    out = []
    for key in chosen:
        lots = draw(sizes.filter(bool))
        if key[1] == LONG:
            lots = abs(lots)
        elif key[1] == SHORT:
            lots = -abs(lots)
        out.append((key, lots, draw(money), draw(money)))
    return out


@st.composite
def worlds(draw):
    hedge = draw(st.booleans())
    return dict(
        hedge=hedge,
        style=draw(st.sampled_from(list(BracketStyle))),
        trigger=draw(st.sampled_from(list(margin.LiquidationTrigger))),
        basis=draw(st.sampled_from(list(margin.IsolatedMaintenance))),
        k={s: draw(k_units) for s in SYMBOLS},
        brackets={s: draw(bracket_tables()) for s in SYMBOLS},
        marks={s: draw(marks) for s in SYMBOLS},
        modes={s: draw(st.sampled_from([None, MarginMode.CROSS, MarginMode.ISOLATED])) for s in SYMBOLS},
        imr={s: draw(st.sampled_from([0, 0, 1_500_000, 3_000_000])) for s in SYMBOLS},
        wallet=draw(money),
        positions=draw(positions(hedge)),
        warned=draw(st.lists(st.tuples(st.sampled_from((CROSS,) + SYMBOLS), st.sampled_from([BOTH, LONG, SHORT])),
                             max_size=3)),
        level=draw(st.sampled_from([1, E8 // 2, 80_000_000, E8, 2 * E8])),
    )


def _risk(world, compiled: bool, book=None):
    """A Risk (reference or compiled) over a fresh ledger holding account 1 of ``world``; ``book``: (account,
    symbol) -> its resting orders as :class:`OpenOrder` (``orders_of``)."""
    instruments = {s: SimpleNamespace(k_units=world["k"][s], brackets=world["brackets"][s],
                                      open_interest_lower_cap_units=0, open_interest_upper_cap_units=0,
                                      max_leverage=125) for s in SYMBOLS}
    ledger = Ledger({s: 20 for s in SYMBOLS})
    account = ledger.open(1)
    account.wallet_units = world["wallet"]
    if world["hedge"]:
        account.position_mode = PositionMode.HEDGE
    for symbol, mode in world["modes"].items():
        if mode is not None:
            imr = world["imr"][symbol]
            ledger.set_settings(account, symbol, mode, E8 // imr if imr else 10, imr)
    for key, lots, entry_cost, isolated in world["positions"]:
        isolated = isolated if world["modes"][key[0]] == MarginMode.ISOLATED else 0
        ledger.store(account, key[0], key[1], Position(lots, entry_cost, isolated))
    account.warned = set(world["warned"]) if world["warned"] else NO_WARNINGS
    risk = Risk(instruments, ledger, RiskOptions(margin_call_e8=world["level"]), world["marks"].__getitem__,
                lambda account_id, symbol: (book or {}).get((account_id, symbol), []), bracket_style=world["style"], trigger=world["trigger"],
                isolated_maintenance=world["basis"], compiled=compiled)
    return risk, account


def _outcome(call):
    """The value of ``call()``, or the type of the exception it raised."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the same error on both sides is part of the contract
        return type(exc)


@given(world=worlds())
@settings(max_examples=400, deadline=None)
def test_per_part_queries_are_the_reference(world):
    (ref, ref_account), (comp, comp_account) = (_risk(world, c) for c in (False, True))
    assert comp.part_state.__self__ is comp.kernel  # the compiled twin answers
    for symbol in SYMBOLS:
        assert comp.is_isolated(comp_account, symbol) == ref.is_isolated(ref_account, symbol)
        assert comp.is_isolated(None, symbol) == ref.is_isolated(None, symbol)
        for side in (BOTH, LONG, SHORT):
            position = ref_account.positions.get((symbol, side)) or Position()
            for name in ("notional", "upnl", "position_mm", "isolated_mm"):
                assert getattr(comp, name)(symbol, position) == getattr(ref, name)(symbol, position), name
            assert comp.part_mm(comp_account, symbol, position) == ref.part_mm(ref_account, symbol, position)
            assert comp.part_state(comp_account, symbol, side) == ref.part_state(ref_account, symbol, side)
            assert _outcome(lambda: comp.bankruptcy_price_ticks(comp_account, symbol, side)) == \
                _outcome(lambda: ref.bankruptcy_price_ticks(ref_account, symbol, side))
        for exclude in (CROSS, symbol):
            assert comp.cross_positions(comp_account, exclude) == ref.cross_positions(ref_account, exclude)
    assert comp.cross_positions(comp_account) == ref.cross_positions(ref_account)
    assert comp.cross_balance(comp_account) == ref.cross_balance(ref_account)
    assert comp.cross_mm(comp_account) == ref.cross_mm(ref_account)
    cross = comp.part_state(comp_account, CROSS, BOTH)
    assert cross == ref.part_state(ref_account, CROSS, BOTH)
    assert type(cross[2]) is bool
    for part, side in [(CROSS, BOTH)] + [(s, side) for s in SYMBOLS for side in (BOTH, LONG, SHORT)]:
        assert comp.part_liquidatable(comp_account, part, side) == ref.part_liquidatable(ref_account, part, side)
    for balance, mm in ((cross[0], cross[1]), (0, 0), (5, 5), (4, 5), (6, 5), (-1, 0), (2**70, 2**70 + 1)):
        for exposed in (True, False):
            assert comp.is_liquidatable(balance, mm, exposed) == ref.is_liquidatable(balance, mm, exposed)
    states = ref.part_states(ref_account)
    assert comp.part_states(comp_account) == states
    assert not [s for s in comp.part_states(comp_account) if gc.is_tracked(s)]  # (out of the collector: _records.pxd)
    for gains in (None, True, False):  # the available balance: cross uPnL and IM at random marks and leverages
        assert comp.available(comp_account, gains) == ref.available(ref_account, gains)
    assert comp.margin_calls(comp_account) == ref.margin_calls(ref_account)
    assert comp_account.warned == ref_account.warned
    assert (comp_account.warned is NO_WARNINGS) == (ref_account.warned is NO_WARNINGS)
    comp_account.warned = ref_account.warned = set(world["warned"]) or NO_WARNINGS
    assert comp.margin_calls(comp_account, states) == ref.margin_calls(ref_account, states)
    assert comp_account.warned == ref_account.warned


def _one_world(**changes):
    world = dict(hedge=False, style=BracketStyle.MARGINAL, trigger=margin.LiquidationTrigger.AT_MAINTENANCE,
                 basis=margin.IsolatedMaintenance.MARK, k={s: 10**6 for s in SYMBOLS},
                 brackets={s: [(5 * 10**13, 1_000_000, 50), (2**70, 5_000_000, 10)] for s in SYMBOLS},
                 marks={s: 10_000 for s in SYMBOLS}, modes={s: None for s in SYMBOLS}, imr={s: 0 for s in SYMBOLS},
                 wallet=10**12, positions=[], warned=[], level=80_000_000)
    world.update(changes)
    return world


def test_bankruptcy_prices_by_hand():
    # one-way cross long 10 lots at entry 10,000 ticks (cost 100,000), K 10⁶, wallet 10¹⁰, a short of BBB at its
    # entry (uPnL 0): BP = (cost·K − balance) / (lots·K) = (10¹¹ − 10¹⁰) / 10⁷ = 9,000 ticks exactly
    world = _one_world(wallet=10**10, positions=[(("AAAUSDT", BOTH), 10, 100_000, 0),
                                                 (("BBBUSDT", BOTH), -3, -30_000, 0)])
    for compiled in (False, True):
        risk, account = _risk(world, compiled)
        assert risk.bankruptcy_price_ticks(account, "AAAUSDT", BOTH) == 9_000
        # the short of BBB: (−3·10⁴·10⁶ − 10¹⁰) / (−3·10⁶) = 13,333.3…, rounded up (against a short)
        assert risk.bankruptcy_price_ticks(account, "BBBUSDT", BOTH) == 13_334
        assert risk.bankruptcy_price_ticks(account, "BBBUSDT", LONG) is None  # no such position
    # a wallet that covers the whole long: the price would be ≤ 0, so there is none
    world = _one_world(wallet=2 * 10**11, positions=[(("AAAUSDT", BOTH), 10, 100_000, 0)])
    for compiled in (False, True):
        risk, account = _risk(world, compiled)
        assert risk.bankruptcy_price_ticks(account, "AAAUSDT", BOTH) is None


def test_hedged_cross_legs_net_to_zero_and_isolated_legs_stand_alone():
    legs = [(("AAAUSDT", LONG), 4, 40_000, 0), (("AAAUSDT", SHORT), -4, -40_400, 0),
            (("BBBUSDT", LONG), 2, 20_000, 5 * 10**9)]
    world = _one_world(hedge=True, positions=legs, modes={"AAAUSDT": None, "BBBUSDT": MarginMode.ISOLATED})
    for compiled in (False, True):
        risk, account = _risk(world, compiled)
        assert risk.bankruptcy_price_ticks(account, "AAAUSDT", LONG) is None  # net size 0
        # isolated long 2 at 10,000: (2·10⁴·10⁶ − 5·10⁹) / (2·10⁶) = 7,500
        assert risk.bankruptcy_price_ticks(account, "BBBUSDT", LONG) == 7_500
        # the cross part: wallet + uPnL of AAA's legs (long 0, short (−4·10⁴ + 40,400)·10⁶ = 4·10⁸)
        assert risk.part_state(account, CROSS, BOTH)[0] == 10**12 + 4 * 10**8
        assert [s for s, _ in risk.cross_positions(account)] == ["AAAUSDT", "AAAUSDT"]


def test_a_position_on_a_key_outside_the_mode_raises_on_both_sides():
    # a hedge account holding a BOTH key (not a leg of its mode): the reference finds no leg and raises
    world = _one_world(positions=[(("AAAUSDT", BOTH), 5, 50_000, 0)])
    outcomes = []
    for compiled in (False, True):
        risk, account = _risk(world, compiled)
        account.position_mode = PositionMode.HEDGE
        outcomes.append(_outcome(lambda: risk.bankruptcy_price_ticks(account, "AAAUSDT", BOTH)))
    assert outcomes == [ValueError, ValueError]


def test_margin_calls_at_the_level_boundary():
    # ratio = ceil(MM·10⁸ / balance): a call from the level on, none below it; the kernel's int64 path decides "below"
    # in 128-bit integers and leaves every other case (balance ≤ 0, values beyond int64) to the Python path.
    level = 80_000_000
    balance = 10**9 + 7
    at = (level - 1) * balance // E8 + 1  # the least MM whose ratio reaches the level: MM·10⁸ / balance > level − 1
    cases = [(balance, at, True), (balance, at - 1, False), (balance, at + 1, True), (balance, 0, False),
             (balance, -5, False), (0, 0, True), (-1, 0, True), (1, 1, True), (INT64 - 1, INT64 - 1, True),
             (INT64 - 1, at, False), (1, INT64 - 1, True), (INT64, at, False), (balance, INT64, True),
             (2**80, 2**80 // 5, False), (2**80, 2**80, True)]
    for number, (bal, mm, called) in enumerate(cases):
        states = [(CROSS, BOTH, bal, mm), ("AAAUSDT", LONG, bal, mm)]
        for level_e8 in (level, INT64 + level):  # a level beyond int64: the Python path only
            outcomes = []
            for compiled in (False, True):
                risk, account = _risk(_one_world(level=level_e8, positions=[(("AAAUSDT", BOTH), 10, 100_000, 0)]),
                                      compiled)  # (an account without positions has no calls at all)
                calls = risk.margin_calls(account, [list(state) for state in states])  # any 4-sequences
                outcomes.append((calls, account.warned))
            assert outcomes[0] == outcomes[1], (number, level_e8)
            assert bool(outcomes[1][0]) == (called and level_e8 == level), (number, level_e8)


def test_an_account_without_positions_has_no_parts_and_no_warnings():
    for compiled in (False, True):
        risk, account = _risk(_one_world(warned=[(CROSS, BOTH)]), compiled)
        assert account.positions is EMPTY
        assert risk.part_state(account, CROSS, BOTH) == (10**12, 0, False)
        assert risk.cross_positions(account) == [] and risk.cross_mm(account) == 0
        assert risk.margin_calls(account) == [] and account.warned is NO_WARNINGS


book_orders = st.lists(st.tuples(st.integers(1, 8), st.sampled_from([BOTH, LONG, SHORT]),
                                 st.sampled_from([Side.BUY, Side.SELL, int(Side.BUY), int(Side.SELL)]),
                                 st.one_of(st.integers(1, 10**6), st.integers(1, 2**70)),
                                 st.one_of(st.integers(1, 1000), st.integers(1, 2**70)), st.sampled_from([False, True, 0, 1])),
                       max_size=6, unique_by=lambda order: order[0])


@given(world=worlds(), tracked=book_orders, resting=book_orders, other=book_orders)
@settings(max_examples=200, deadline=None)
def test_refresh_holds_is_the_reference(world, tracked, resting, other):
    """Orders tracked earlier in two symbols (``tracked`` in the first, ``other`` in the second, ids apart), then
    the first symbol re-read from a book holding ``resting``: the same records, sums, homes and holds."""
    book = {(1, SYMBOLS[0]): [OpenOrder(order_id, position_side, Side(side), price, lots, reduce_only)
                              for order_id, position_side, side, price, lots, reduce_only in resting]}
    risks = [_risk(world, compiled, book) for compiled in (False, True)]
    for risk, account in risks:
        for symbol, orders, base in ((SYMBOLS[0], tracked, 0), (SYMBOLS[1], other, 100)):
            for order_id, position_side, side, price, lots, reduce_only in orders:
                risk.track_order(symbol, base + order_id, position_side,
                                 (base + order_id, 1, side, price, lots, 0, 0, reduce_only))
        risk.refresh_holds(account, SYMBOLS[0])
    (ref, ref_account), (comp, comp_account) = risks
    assert comp.refresh_holds.__self__ is comp.kernel
    assert comp._order_home == ref._order_home
    assert comp._orders.keys() == ref._orders.keys()
    for key, bucket in ref._orders.items():
        assert comp._orders[key].orders == bucket.orders
        assert comp._orders[key].sums == bucket.sums
    assert comp_account.holds == ref_account.holds
    assert (comp_account.holds is EMPTY) == (ref_account.holds is EMPTY)
    bucket = comp._orders.get((1, SYMBOLS[0]))
    assert list(bucket.orders if bucket is not None else ()) == [order[0] for order in resting]  # the book's
