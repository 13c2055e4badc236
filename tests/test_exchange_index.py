"""The Exchange's incremental risk knowledge (exchange.liquidation.monitor) against its oracles, on both implementations.

- ``Exchange.liquidatable()`` (mirror + indexes) equals ``Exchange.liquidatable_full()`` (the full loop) after
  every command;
- an Exchange whose monitor keeps the indexes produces the same events and state hashes as one that
  re-checks every holder on every mark move (the behaviour the margin-call stage is specified by);
- the mirror equals the ledger: the full sweep over it flags exactly the oracle's parts;
- the warning-level bands are conservative: a mark that fires no entry leaves a part's margin-call state
  unchanged.
"""
import dataclasses
import math
import random

import numpy as np
import pytest

from exchange import (
    AdjustIsolatedMargin, Deposit, Exchange, MarginMode, OrderType, PlaceOrder, PositionMode, PositionSide,
    SetLeverage, SetMarginMode, SetMarkPrice, SetPositionMode, Side, TimeInForce, Withdraw,
)
from exchange.accounts.ledger import FUND_ACCOUNT_BASE
from exchange.events import MarkPriceChanged
from exchange.liquidation.index import WarnIndex
from exchange.accounts.margin import IsolatedMaintenance
from exchange.accounts.storage import InstrumentTable, Portfolio
from exchange.clearing.sweep import sweep_reference
from tests.conftest import make_instrument
from tests.streams import random_commands
from tests.test_monitor_incremental import entry_sets

USDT = 10**8


def pair(profile="binance", instruments=None):
    """(indexed, holders): the same venue with the indexes kept from the first account, and never."""
    instruments = instruments or [make_instrument()]
    indexed, holders = Exchange(instruments, profile=profile), Exchange(instruments, profile=profile)
    indexed.monitor.index_from_accounts = 0
    holders.monitor.index_from_accounts = math.inf
    return indexed, holders


def apply_both(indexed, holders, command) -> list:
    """Apply to both; same events; each one's incremental answer equals its full loop. Returns the events."""
    events = indexed.apply(command)
    assert events == holders.apply(command), command
    assert indexed.liquidatable() == indexed.liquidatable_full(), command
    assert holders.liquidatable() == holders.liquidatable_full(), command
    return events


def assert_mirror_is_the_ledger(ex):
    """The full sweep over the flushed mirror at the followed prices flags exactly the oracle's parts."""
    monitor = ex.monitor
    monitor.flush()
    p = monitor.portfolio
    marks = np.array([max(price, 1) for price in monitor.prices], np.int64)
    pos, acc = sweep_reference(p, marks, level=0).liquidatable()
    flagged = {(monitor.ids[a], "", PositionSide.BOTH) for a in acc.tolist()}
    for j in pos.tolist():
        a = int(p.pos_account[j])
        flagged.add((monitor.ids[a], *monitor.slot_key(j)))
    flagged = {f for f in flagged if f[0] < FUND_ACCOUNT_BASE and f[0] not in monitor._unindexed}
    expected = {(x.account_id, x.symbol, x.position_side) for x in ex.liquidatable_full()
                if x.account_id not in monitor._unindexed}
    assert flagged == expected


@pytest.mark.parametrize("profile", ["binance", "bitmex", "dydx", "bybit", "hyperliquid"])
@pytest.mark.parametrize("seed", range(6))
def test_seeded_streams_index_equals_the_full_loop_and_the_old_behaviour(seed, profile):
    indexed, holders = pair(profile)
    for i, command in enumerate(random_commands(seed, 1_500)):
        apply_both(indexed, holders, command)
        if i % 250 == 0:
            assert indexed.state_hash() == holders.state_hash()
    assert indexed.state_hash() == holders.state_hash()
    assert indexed.monitor.indexed  # bitmex too: its stepwise MM through its convex bounds
    assert_mirror_is_the_ledger(indexed)


def crowd(seed: int, n_accounts: int):
    """Commands: a maker and ``n_accounts`` small accounts in two symbols, cross and isolated, one-way and
    hedge, at 20x–100x, so that marks a few percent away liquidate many of them."""
    rng = random.Random(seed)
    symbols = ("TESTUSDT", "XYZUSDT")
    maker = n_accounts + 1
    out = [Deposit(maker, 10**9 * USDT)]
    out += [SetMarkPrice(s, 10_000) for s in symbols]
    for a in range(1, n_accounts + 1):
        out.append(Deposit(a, rng.randint(20, 400) * USDT))
        hedge = rng.random() < 0.2
        if hedge:
            out.append(SetPositionMode(a, PositionMode.HEDGE))
        for s in rng.sample(symbols, rng.randint(1, 2)):
            if rng.random() < 0.35:
                out.append(SetMarginMode(a, s, MarginMode.ISOLATED))
            out.append(SetLeverage(a, s, rng.choice((20, 50, 75, 100))))
            legs = [PositionSide.LONG, PositionSide.SHORT] if hedge else [PositionSide.BOTH]
            for leg in rng.sample(legs, rng.randint(1, len(legs))):
                side = (Side.BUY if leg == PositionSide.LONG else Side.SELL) if hedge else rng.choice((Side.BUY, Side.SELL))
                qty = rng.randint(1, 3)
                maker_side = Side.SELL if side == Side.BUY else Side.BUY
                out.append(PlaceOrder(maker, s, maker_side, qty, 10_000, OrderType.LIMIT, TimeInForce.GTC))
                out.append(PlaceOrder(a, s, side, qty, 10_000, OrderType.LIMIT, TimeInForce.IOC, position_side=leg))
    return out, symbols, maker


@pytest.mark.parametrize("seed, profile", [(0, "binance"), (1, "binance"), (0, "bybit"), (1, "hyperliquid")])
def test_random_mark_paths_with_many_accounts_near_liquidation(seed, profile):
    rng = random.Random(100 + seed)
    n = 300
    setup, symbols, maker = crowd(seed, n)
    indexed, holders = pair(profile, instruments=[make_instrument(), dataclasses.replace(make_instrument(), symbol="XYZUSDT")])
    for command in setup:
        apply_both(indexed, holders, command)
    assert len(indexed.ledger.holders["TESTUSDT"]) > n // 3
    marks = {s: 10_000 for s in symbols}
    liquidated = 0
    for step in range(300):
        roll = rng.random()
        if roll < 0.8:
            s = rng.choice(symbols)
            marks[s] = min(max(marks[s] + rng.randint(-120, 120), 9_000), 11_000)  # ±1.2% steps, ±10% range
            command = SetMarkPrice(s, marks[s])
        elif roll < 0.9:
            command = Deposit(rng.randint(1, n), rng.randint(1, 50) * USDT)
        elif roll < 0.95:
            command = Withdraw(rng.randint(1, n), rng.randint(1, 50) * USDT)
        else:
            command = AdjustIsolatedMargin(rng.randint(1, n), rng.choice(symbols), rng.choice((-5, 5)) * USDT)
        liquidated += sum(type(e).__name__ == "LiquidationStarted" for e in apply_both(indexed, holders, command))
        if step % 60 == 0:
            assert_mirror_is_the_ledger(indexed)
    assert indexed.state_hash() == holders.state_hash()
    assert_mirror_is_the_ledger(indexed)
    assert liquidated > 10  # the path did push accounts over


def test_a_mark_tick_with_nobody_near_liquidation_rechecks_nobody():
    """Far from every threshold, a tick pops no entry: no account is re-evaluated or margin-called."""
    ex = Exchange([make_instrument()])
    maker = 1_000
    ex.apply(Deposit(maker, 10**9 * USDT))
    ex.apply(SetMarkPrice("TESTUSDT", 10_000))
    for a in range(1, 301):
        ex.apply(Deposit(a, 100_000 * USDT))
        ex.apply(PlaceOrder(maker, "TESTUSDT", Side.SELL, 1, 10_000, OrderType.LIMIT, TimeInForce.GTC))
        ex.apply(PlaceOrder(a, "TESTUSDT", Side.BUY, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    ex.apply(SetMarkPrice("TESTUSDT", 10_001))  # first move after the build: the batch rewrite happens here
    assert ex.monitor.indexed
    evaluated = []
    part_states = ex.risk.part_states
    ex.risk.part_states = lambda account: evaluated.append(account.account_id) or part_states(account)
    assert ex.apply(SetMarkPrice("TESTUSDT", 10_050)) == [MarkPriceChanged("TESTUSDT", 10_050)]
    assert evaluated == []
    assert ex.liquidatable() == ex.liquidatable_full() == []


# -- the warning-level bands -----------------------------------------------------------------------------
def warned_flags(portfolio, marks, level_e8):
    r = sweep_reference(portfolio, marks, level=2)
    iso = (portfolio.pos_mode == MarginMode.ISOLATED) & (portfolio.pos_qty_lots != 0)
    cross_size = np.zeros(portfolio.n_accounts, bool)
    for a in range(portfolio.n_accounts):
        cross_size[a] = any(portfolio.pos_qty_lots[j] != 0 and portfolio.pos_mode[j] != MarginMode.ISOLATED
                            for j in portfolio.slots_of(a))
    return iso & (r.pos_ratio_e8 >= level_e8), cross_size & (r.acct_ratio_e8 >= level_e8)


@pytest.mark.parametrize("maintenance", [IsolatedMaintenance.MARK, IsolatedMaintenance.ENTRY])
@pytest.mark.parametrize("level_e8", [80_000_000, 100_000_000, 30_000_000, 150_000_000, 1])
def test_a_mark_that_fires_no_warning_entry_leaves_the_warned_state_unchanged(level_e8, maintenance):
    rng = random.Random(level_e8)
    instruments = [make_instrument(), dataclasses.replace(make_instrument(), symbol="XYZUSDT")]
    p = Portfolio(InstrumentTable(instruments, isolated_maintenance=maintenance))
    for _ in range(120):
        a = p.add_account(rng.randint(0, 1_500) * USDT)
        for s in rng.sample((0, 1), rng.randint(1, 2)):
            iso = rng.random() < 0.4
            hedge = not iso and rng.random() < 0.3
            for side, sign in ([(PositionSide.LONG, 1), (PositionSide.SHORT, -1)] if hedge
                               else [(PositionSide.BOTH, rng.choice((1, -1)))]):
                q = sign * rng.randint(1, 40)
                entry = q * rng.randint(9_000, 11_000)
                margin = rng.randint(0, 500) * USDT if iso else 0
                p.add_position(a, s, q, entry, mode=MarginMode.ISOLATED if iso else MarginMode.CROSS, iso_margin_units=margin,
                               leverage=1, side=side)
    marks0 = np.array([10_000, 10_000], np.int64)
    before = warned_flags(p, marks0, level_e8)
    for s in (0, 1):
        for price in sorted({rng.randint(8_000, 12_000) for _ in range(25)} | {9_999, 10_001}):
            index = WarnIndex(p, marks0, level_e8)
            fired_slots, fired_accounts = index.on_mark(s, price)
            marks = marks0.copy()
            marks[s] = price
            after = warned_flags(p, marks, level_e8)
            quiet_slots = np.setdiff1d(np.arange(p.n_slots), fired_slots)
            quiet_accounts = np.setdiff1d(np.arange(p.n_accounts), fired_accounts)
            assert (after[0][quiet_slots] == before[0][quiet_slots]).all()
            assert (after[1][quiet_accounts] == before[1][quiet_accounts]).all()
    assert (before[0].any() or before[1].any()) and not before[1].all()  # both states occur


def test_few_accounts_holding_many_symbols_keep_the_indexes():
    """41 accounts (below the 256-account threshold) holding up to 8 symbols each (over 256 holdings), so the first mark
    move starts the indexes (without them each move would re-check every holder over all its positions); a
    tick far from every threshold then re-checks nobody; and a walk of the marks that liquidates some of them
    gives the events and state of a twin that never keeps the indexes."""
    symbols = [f"S{i}USDT" for i in range(8)]
    instruments = [dataclasses.replace(make_instrument(), symbol=s) for s in symbols]
    indexed, holders = Exchange(instruments), Exchange(instruments)
    holders.monitor.index_from_accounts = math.inf
    maker, rng = 1_000, random.Random(3)
    setup = [Deposit(maker, 10**9 * USDT)] + [SetMarkPrice(s, 10_000) for s in symbols]
    for a in range(1, 41):
        setup.append(Deposit(a, rng.choice((30, 60, 400)) * USDT))
        for s in symbols:
            side = rng.choice((Side.BUY, Side.SELL))
            setup.append(PlaceOrder(maker, s, Side.SELL if side == Side.BUY else Side.BUY, 1, 10_000))
            setup.append(PlaceOrder(a, s, side, 1, 10_000, OrderType.LIMIT, TimeInForce.IOC))
    for command in setup:
        apply_both(indexed, holders, command)
    held = {(a, key[0]) for a, account in indexed.ledger.accounts.items() for key, position in account.positions.items()
            if position.lots}
    assert len(indexed.ledger.accounts) == 41 and indexed.monitor.holdings() == len(held) >= 256
    assert not indexed.monitor.indexed  # (no price has moved since the positions opened)
    apply_both(indexed, holders, SetMarkPrice(symbols[0], 10_001))
    assert indexed.monitor.indexed and not holders.monitor.indexed
    evaluated = []
    part_states = indexed.risk.part_states
    indexed.risk.part_states = lambda account: evaluated.append(account.account_id) or part_states(account)
    assert indexed.apply(SetMarkPrice(symbols[1], 10_002)) == [MarkPriceChanged(symbols[1], 10_002)]
    assert evaluated == []
    indexed.risk.part_states = part_states
    holders.apply(SetMarkPrice(symbols[1], 10_002))
    marks, liquidated = {s: 10_000 for s in symbols}, 0
    for _ in range(400):
        s = rng.choice(symbols)
        marks[s] = max(5_000, min(15_000, marks[s] + rng.randint(-500, 500)))
        events = apply_both(indexed, holders, SetMarkPrice(s, marks[s]))
        liquidated += sum(type(e).__name__ == "LiquidationStarted" for e in events)
    assert indexed.state_hash() == holders.state_hash()
    assert_mirror_is_the_ledger(indexed)
    assert liquidated > 5  # (the walk did push accounts over)


def test_hedged_and_high_symbol_legs_keep_the_index_exact():
    """The compiled writer's short cuts (a bit set of the account's symbols and position keys, on the stack, for
    symbol indexes below 256) and their fallbacks: accounts in hedge mode holding both sides of a symbol (two
    cross legs of one symbol), and accounts holding symbols past the 256th, against a twin that never keeps the
    indexes, through marks that liquidate some of them."""
    symbols = [f"S{i}USDT" for i in range(262)]
    instruments = [dataclasses.replace(make_instrument(), symbol=s) for s in symbols]
    indexed, holders = pair(instruments=instruments)
    maker, rng = 1_000, random.Random(11)
    order = indexed.monitor.symbols  # (the monitor's symbol indexes: the exchange's order of its symbols)
    held = [order[i] for i in (0, 1, 2, 255, 256, 257, 261)]
    commands = [Deposit(maker, 10**9 * USDT)] + [SetMarkPrice(s, 10_000) for s in held]
    for a in range(1, 9):
        hedge = a % 2 == 0
        commands.append(Deposit(a, (300 if hedge else rng.choice((40, 80, 500))) * USDT))
        if hedge:
            commands.append(SetPositionMode(a, PositionMode.HEDGE))
        for s in held:
            sides = [(Side.BUY, PositionSide.LONG), (Side.SELL, PositionSide.SHORT)] if hedge else \
                [(rng.choice((Side.BUY, Side.SELL)), PositionSide.BOTH)]
            for side, position_side in sides:
                lots = rng.randint(1, 3)
                commands.append(PlaceOrder(maker, s, Side.SELL if side == Side.BUY else Side.BUY, lots, 10_000))
                commands.append(PlaceOrder(a, s, side, lots, 10_000, OrderType.LIMIT, TimeInForce.IOC,
                                           position_side=position_side))
    for command in commands:
        apply_both(indexed, holders, command)
        indexed.monitor.check_invariants()  # (the mirror's rows equal the ledger: every position key has its slot)
    hedged = indexed.ledger.accounts[2].positions
    assert (order[261], PositionSide.LONG) in hedged and (order[261], PositionSide.SHORT) in hedged
    marks, liquidated = dict.fromkeys(held, 10_000), 0
    for _ in range(400):
        s = rng.choice(held)
        marks[s] = max(4_000, min(16_000, marks[s] + rng.randint(-900, 900)))
        events = apply_both(indexed, holders, SetMarkPrice(s, marks[s]))
        liquidated += sum(type(e).__name__ == "LiquidationStarted" for e in events)
        if rng.random() < 0.2:  # a trade of a held account: its rows and index entries rewritten
            a, s2 = rng.randint(1, 8), rng.choice(held)
            side = rng.choice((Side.BUY, Side.SELL))
            position_side = (PositionSide.LONG if side == Side.BUY else PositionSide.SHORT) if a % 2 == 0 else PositionSide.BOTH
            apply_both(indexed, holders, PlaceOrder(maker, s2, Side.SELL if side == Side.BUY else Side.BUY, 1, marks[s2]))
            apply_both(indexed, holders, PlaceOrder(a, s2, side, 1, marks[s2], OrderType.LIMIT, TimeInForce.IOC,
                                                    position_side=position_side))
        indexed.monitor.check_invariants()
    assert indexed.state_hash() == holders.state_hash()
    assert_mirror_is_the_ledger(indexed)
    assert indexed.monitor.indexed and liquidated > 2
    # every entry of both indexes, built again at the final marks, equals the Python reference's
    m = indexed.monitor
    m.flush()
    for index in (m.liq_index, m.warn_index):
        marks_now = index.marks.copy()
        if isinstance(index, WarnIndex):
            rebuilt = [WarnIndex(m.portfolio, marks_now, index.level_e8, compiled=c) for c in (None, False)]
        else:
            rebuilt = [type(index)(m.portfolio, marks_now, compiled=c) for c in (None, False)]
        assert entry_sets(rebuilt[0]) == entry_sets(rebuilt[1])
