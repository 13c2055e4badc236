"""The risk monitor's upkeep of its mirror and indexes (exchange.liquidation.monitor): compiled, the mirror rows and
the index entries of the accounts a command changed are written when it ends (one call into
``exchange.clearing._sweep.MonitorWriter``, no numpy call per account); the reference writes them in one batch
at the next price move (``RiskMonitor._write`` and the indexes' ``rearm``), at the same marks, so both keep the
same entries for every account the price move does not concern.

- The compiled warning-level entries (``exchange.clearing._sweep.warn_entries``) equal the reference's on random
  portfolios (every bracket configuration, extreme values, hedge legs, several warning levels).
- Seeded streams (trades, marks, deposits, withdrawals, isolated margin, mode and leverage changes,
  liquidations, two symbols) with the indexes kept from the first account, on every profile: both
  implementations give the same events command by command and the same state hash, and after every command
  the monitor's invariants hold (:func:`check_monitor`) and ``liquidatable()`` equals ``liquidatable_full()``.
- A mark after many commands pays only for the entries it fires: nothing is left to rewrite.
"""
import dataclasses
import gc

import numpy as np
import pytest

from exchange import Deposit, Exchange, MarginMode, OrderType, PlaceOrder, SetMarginMode, SetMarkPrice, Side
from exchange.liquidation.index import UP, WarnIndex
from exchange.liquidation.waterfall import LiquidationConfig
from exchange.profiles import PROFILES
from tests.conftest import COMPILED, make_instrument, needs_compiled
from tests.streams import liquidation_commands, random_commands
from tests.test_sweep import CONFIGS, _views_are_the_used_parts, random_marks, random_portfolio

IMPLEMENTATIONS = ("python", "cython") if COMPILED else ("python",)
USDT = 10**8


# -- the compiled warning entries ------------------------------------------------------------------------------
def entry_sets(index) -> list:
    """Per (symbol, direction): the sorted (stored value, key) of every entry, in any tier."""
    found = []
    for pair in index.lists:
        for tl in pair:
            v = np.concatenate([tl.v[: tl.n], tl.mv[: tl.mn], tl.pv[: tl.m]])
            key = np.concatenate([tl.key[: tl.n], tl.mkey[: tl.mn], tl.pkey[: tl.m]])
            found.append(sorted(zip(v.tolist(), key.tolist())))
    return found


@needs_compiled
@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("level_e8", [80_000_000, 100_000_000, 150_000_000, 1])
def test_compiled_warning_entries_equal_the_reference(seed, extreme, config, level_e8):
    rng = np.random.default_rng(70 + seed)
    p = random_portfolio(rng, 80, extreme=extreme, hedge=True, config=config)
    marks = random_marks(rng, p, extreme)
    compiled, reference = WarnIndex(p, marks, level_e8, compiled=True), WarnIndex(p, marks, level_e8, compiled=False)
    assert compiled.compiled and not reference.compiled
    assert entry_sets(compiled) == entry_sets(reference)
    for a, b in zip(compiled.liquidatable, reference.liquidatable):  # the "warned now" flags
        assert np.array_equal(a, b)


def test_a_warning_level_beyond_the_compiled_range_takes_the_reference():
    p = random_portfolio(np.random.default_rng(1), 10)
    index = WarnIndex(p, random_marks(np.random.default_rng(1), p), 1 << 41)
    assert not index.compiled


# -- the monitor's invariants ------------------------------------------------------------------------------------
def valid_entries(index) -> dict:
    """key -> {(symbol, direction, stored value)} of the entries whose version is current."""
    found: dict = {}
    for s, pair in enumerate(index.lists):
        for d, tl in enumerate(pair):
            for v, key, ver, n in ((tl.v, tl.key, tl.ver, tl.n), (tl.mv, tl.mkey, tl.mver, tl.mn),
                                   (tl.pv, tl.pkey, tl.pver, tl.m)):
                keys, vers, values = key[:n], ver[:n], v[:n]
                ok = index._valid(keys, vers)
                for value, k in zip(values[ok].tolist(), keys[ok].tolist()):
                    found.setdefault(k, set()).add((s, d, value))
    return found


def fresh_entries(index, a: int) -> dict:
    """key -> entries of portfolio account ``a``'s parts computed now, at the index's marks."""
    p = index.portfolio
    slots = np.arange(int(p.acct_begin[a]), int(p.acct_begin[a]) + int(p.acct_count[a]), dtype=np.int64)
    found: dict = {}
    for (sym, dr, v, key), _ in (index._entries_iso(slots), index._entries_cross(np.array([a], np.int64))):
        for s, d, value, k in zip(sym.tolist(), dr.tolist(), v.tolist(), key.tolist()):
            found.setdefault(k, set()).add((s, d, -value if d == UP else value))
    return found


def check_monitor(ex: Exchange, written) -> None:
    """After a command: the monitor's invariants (``RiskMonitor.check_invariants``), and, compiled, the accounts
    ``written`` at the end of the command have exactly the entries a recomputation at the current marks gives."""
    m = ex.monitor
    m.check_invariants()
    if not m.indexed or m._writer is None:
        return
    for index in (m.liq_index, m.warn_index):
        live = valid_entries(index)
        for account_id in written:
            a = m.row_of(account_id)
            fresh = fresh_entries(index, a)
            keys = {2 * a + 1} | {2 * j for j in m.portfolio.slots_of(a)}
            assert {k: live[k] for k in keys if k in live} == fresh, (account_id, index)


class Recorder:
    """The accounts of the monitor's last rewrite (reset before each command)."""

    def __init__(self, monitor):
        self.last: set = set()
        self._rewrite = monitor._rewrite
        monitor._rewrite = self

    def __call__(self, account_ids):
        self.last = set(account_ids)
        self._rewrite(account_ids)


def indexed_exchange(instruments, profile: str, implementation: str) -> tuple[Exchange, Recorder]:
    ex = Exchange(instruments, implementation=implementation, profile=profile, liquidation=LiquidationConfig())
    ex.monitor.index_from_accounts = 0
    return ex, Recorder(ex.monitor)


STREAMS = [("random", 4), ("liquidation", 9), ("two-symbol liquidation", 13)]


def stream(kind: str, seed: int, n: int = 700):
    if kind == "random":
        return [make_instrument()], list(random_commands(seed, n))
    if kind == "liquidation":
        return [make_instrument()], list(liquidation_commands(seed, n))
    alt = dataclasses.replace(make_instrument(), symbol="ALTUSDT")
    return [make_instrument(), alt], list(liquidation_commands(seed, n, symbols=("TESTUSDT", "ALTUSDT")))


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("kind, seed", STREAMS, ids=[kind for kind, _ in STREAMS])
def test_streams_keep_the_monitor_exact_on_both_implementations(profile, kind, seed):
    instruments, commands = stream(kind, seed)
    runs = [indexed_exchange(instruments, profile, implementation) for implementation in IMPLEMENTATIONS]
    for i, command in enumerate(commands):
        results = []
        for ex, recorder in runs:
            recorder.last = set()
            results.append(ex.apply(command))
            check_monitor(ex, recorder.last)
            if i % 7 == 0:
                assert ex.liquidatable() == ex.liquidatable_full(), (i, command)
        assert all(events == results[0] for events in results), (i, command)
    assert len({ex.state_hash() for ex, _ in runs}) == 1
    for ex, _ in runs:
        ex.check_invariants()
        assert ex.liquidatable() == ex.liquidatable_full()


@needs_compiled
def test_a_mark_after_many_commands_finds_nothing_to_rewrite():
    """Compiled, accounts set up through commands are written as each command ends: the first mark afterwards
    rewrites nobody (it pays only for the entries it fires), and emits only the mark change."""
    inst = make_instrument()
    ex = Exchange([inst], implementation="cython")
    maker, n = 10_000, 300
    ex.apply(Deposit(maker, 10**9 * USDT))
    ex.apply(SetMarkPrice(inst.symbol, 10_000))
    ex.apply(PlaceOrder(maker, inst.symbol, Side.SELL, n, 10_000))
    for a in range(1, n + 1):
        ex.apply(Deposit(a, 1_000 * USDT))
        if a % 3 == 0:
            ex.apply(SetMarginMode(a, inst.symbol, MarginMode.ISOLATED))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, 1, 10_000, OrderType.MARKET))
    assert ex.monitor.indexed and not ex.monitor._dirty
    recorder = Recorder(ex.monitor)
    assert [type(e).__name__ for e in ex.apply(SetMarkPrice(inst.symbol, 10_001))] == ["MarkPriceChanged"]
    assert recorder.last == set()
    check_monitor(ex, set())


def test_the_monitors_portfolio_views_follow_the_accounts_it_adds():
    """The risk monitor's portfolio keeps the column views it was asked for; the accounts its writer adds (the
    compiled writer adds them in C while the arrays have room) must drop them, or a reader would miss the new
    accounts. Read every view between commands that add accounts, and compare with the arrays' used parts."""
    inst = make_instrument()
    ex = Exchange([inst])
    ex.monitor.index_from_accounts = 1  # keep the mirror from the first account on
    ex.apply(Deposit(10_000, 10**9 * USDT))
    ex.apply(SetMarkPrice(inst.symbol, 10_000))
    ex.apply(PlaceOrder(10_000, inst.symbol, Side.SELL, 200, 10_000))
    p = ex.monitor.portfolio
    for a in range(1, 101):
        ex.apply(Deposit(a, 1_000 * USDT))
        ex.apply(PlaceOrder(a, inst.symbol, Side.BUY, 1, 10_000, OrderType.MARKET))
        ex.apply(SetMarkPrice(inst.symbol, 10_000 + a % 2))
        _views_are_the_used_parts(p)
    assert ex.monitor.indexed and p.n_accounts >= 100 and len(p.acct_wallet_units) == p.n_accounts
    check_monitor(ex, set())


# -- the compiled signature and written rows --------------------------------------------------------------------
@needs_compiled
@pytest.mark.parametrize("profile", ["binance", "bybit"])
def test_the_compiled_signature_and_written_rows_are_the_reference_ones(profile):
    """``MonitorWriter.signature`` and ``.written`` against ``RiskMonitor``'s Python for every account (hedge legs,
    isolated and cross, the funds, flat accounts) through a crash, and after the ledger was changed under the
    rows (a wallet, a position, a leverage, a new position key): the twins agree where rows and ledger differ."""
    from exchange.accounts.ledger import Position
    from exchange.enums import PositionSide
    from tests.test_adl_queue import SYMBOL, crowd, marks_down_and_up

    ex = crowd(profile, 120, seed=5, implementation="cython")
    monitor, ledger = ex.monitor, ex.ledger
    writer = monitor._writer
    assert writer is not None and monitor.indexed

    def compare() -> int:
        differ = 0
        for account_id in list(ledger.accounts):
            got = monitor.written(account_id), monitor.signature(account_id)
            assert not gc.is_tracked(got[1]) and not [r for r in got[1][1] if gc.is_tracked(r)]  # (_records.pxd)
            monitor._writer = None
            try:
                want = monitor.written(account_id), monitor.signature(account_id)
            finally:
                monitor._writer = writer
            assert got == want, account_id
            differ += got[0] != got[1]
        return differ

    for mark in marks_down_and_up()[::4]:
        ex.apply(SetMarkPrice(SYMBOL, mark))
        compare()
    users = sorted(a for a in ledger.accounts if 0 < a < 2**40)
    ledger.accounts[users[0]].wallet_units += 7
    account = ledger.accounts[users[1]]
    key, position = next(iter(account.positions.items()), ((SYMBOL, PositionSide.BOTH), Position(0, 0, 0)))
    ledger.store(account, key[0], key[1], Position(position.lots + 1, position.entry_cost + 10_000, position.isolated_margin_units))
    ledger.set_settings(ledger.accounts[users[2]], SYMBOL, MarginMode.CROSS, 3)
    holder = ledger.accounts[users[3]]  # a position key its rows do not have yet
    new_side = PositionSide.LONG if (SYMBOL, PositionSide.LONG) not in holder.positions else PositionSide.SHORT
    lots = 2 if new_side == PositionSide.LONG else -2
    ledger.store(holder, SYMBOL, new_side, Position(lots, lots * 10_000, 0))
    assert compare() >= 2
    # stale_due's test in one call (MonitorWriter.stale_of) against the reference's, account by account; also an
    # account the mirror has no row for yet and one kept outside the mirror's bounds
    ledger.open(max(users) + 1)
    monitor._unindexed.add(users[4])
    everyone = list(ledger.accounts)
    monitor._writer = None
    try:
        want = {a for a in everyone if monitor.written(a) != monitor.signature(a)}
    finally:
        monitor._writer = writer
    assert writer.stale_of(everyone, monitor._unindexed) == want
    assert {users[0], users[1], users[3], users[4], max(users) + 1} <= want and len(want) < len(everyone)


# -- the compiled stale-due test --------------------------------------------------------------------------------
@needs_compiled
def test_the_compiled_stale_due_compares_only_suspects_and_finds_what_comparing_every_one_finds(monkeypatch):
    """Compiled, ``RiskMonitor.stale_due(changing)`` compares only the due accounts that the command changed or
    that have no rows in the mirror (every other one holds its ledger state: nothing is left dirty between
    commands). At every call of a two-symbol crash that ends in ADL, under three profiles, the accounts it newly
    found stale are exactly those of its newly compared ones whose rows differ from their ledger state
    (``written != signature``)."""
    from tests.test_adl_queue import OTHER, SYMBOL, crowd, marks_down_and_up

    calls = []
    for profile in ("binance", "bybit", "dydx"):
        ex = crowd(profile, 200, seed=7, symbols=(SYMBOL, OTHER), implementation="cython")
        monitor = ex.monitor
        assert monitor._writer is not None

        def checked(changing, monitor=monitor, stale_due=monitor.stale_due):
            before, stale_before = set(monitor._due_compared), set(monitor._due_stale)
            got = stale_due(changing)
            compared = monitor._due_compared - before
            want = {a for a in compared if monitor.written(a) != monitor.signature(a)}
            assert got - stale_before == want
            calls.append((len(compared), len(want)))
            return got

        monkeypatch.setattr(monitor, "stale_due", checked)
        for mark in marks_down_and_up():
            for symbol in (SYMBOL, OTHER):
                ex.apply(SetMarkPrice(symbol, mark))
    assert len(calls) > 100 and sum(n for n, _ in calls) > 200 and sum(s for _, s in calls) > 0  # (some were stale)
