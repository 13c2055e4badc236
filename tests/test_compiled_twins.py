"""The compiled twins of the per-command path (exchange/accounts/_pretrade.pyx, exchange/clearing/_fills.pyx,
exchange/orders/_entry.pyx) and the engine's quiet skip of the liquidation and margin-call stages.

- Differential: seeded streams of every command kind (hedge mode, isolated margin, reduce-only trims,
  conditional orders, initial margin rates, marks, liquidations) under every profile give the same events,
  command by command, and the same state hash on both implementations; the compiled run's order sums and
  holds equal a recomputation (rules §9 invariants).
- The quiet skip is exact: the same streams with the skip disabled (``RiskMonitor.quiet`` always False, so
  both stages run after every command) give the same events and state hash, on both implementations.
- Crashes with ADL under every profile, with the risk monitor's mirror and indexes kept (so the compiled
  index writer, warning entries and ADL bounds run): the same events, command by command, and state hash;
  and, on each implementation, the same with and without the touched set's log (the incremental ADL
  suspects, monitor sync and mirror against their full paths).
- Position views made in C (``Risk._view_record``) equal the reference's after crashes under every profile.
- Order commands (``exchange/orders/_entry.pyx``): a requoting flow of amends, cancels and cancel-alls in two
  symbols (every refusal an amend can get, amends that fill, liquidations) gives the same events and state
  hash on both implementations under every profile, and the compiled one hands none of it to the reference
  handlers; an amend by an account in liquidation mode is refused alike.
- The binding: the compiled Exchange runs the twins, the reference does not.
"""
import dataclasses
import inspect
import itertools
import random

import numpy as np
import pytest

from exchange import ADLFill, Exchange, SetMarkPrice
from exchange.accounts.pretrade import PositionView, Risk
from exchange.commands import COMMAND_TYPES
from exchange.events import event_classes
from exchange.enums import MarginMode, PositionSide
from exchange.accounts.touched import Touched
from exchange.liquidation.monitor import RiskMonitor
from exchange.liquidation.waterfall import LiquidationConfig
from exchange.profiles import PROFILES
from tests.checked import CheckedExchange
from tests.conftest import COMPILED, make_instrument
from tests.streams import follow_orders, liquidation_commands, random_commands, requote_commands
from tests.test_adl_queue import OTHER, SYMBOL, crowd, marks_down_and_up

STREAMS = [("random", seed) for seed in (3, 11, 29)] + [("liquidation", seed) for seed in (5, 17)]


class FullPathTouched(Touched):
    """A real touched set (the drain adds to its set and log) whose ``generation`` is a new number at every
    read, so that no incremental reader (ADL suspects, monitor sync and mirror) ever finds its mark current:
    each one takes its full path."""

    reads = itertools.count()

    @property
    def generation(self):
        return next(self.reads)

    @generation.setter
    def generation(self, value):
        pass


def _commands(kind: str, seed: int) -> list:
    return list(random_commands(seed, 1_500) if kind == "random" else liquidation_commands(seed, 1_500))


def without_the_quiet_skip(ex: Exchange) -> None:
    """Make every command of ``ex`` run the liquidation and margin-call stages. Both command loops (the
    engine's ``_run`` and its compiled twin) skip them only while ``_order_only`` is still set after the
    command's handler; each handler is wrapped to clear it, as a fill does."""
    def full(handler):
        def run(command):
            events = handler(command)
            ex._order_only = False
            return events
        return run

    ex._handlers = {cls: full(handler) for cls, handler in ex._handlers.items()}


def _run(commands, profile: str, implementation: str, quiet: bool = True):
    ex = Exchange([make_instrument()], implementation=implementation, profile=profile,
                  liquidation=LiquidationConfig())
    if not quiet:
        without_the_quiet_skip(ex)
    events = [ex.apply(command) for command in commands]
    ex.check_invariants()
    return events, ex.state_hash()


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("stream", STREAMS, ids=[f"{kind}-{seed}" for kind, seed in STREAMS])
def test_the_twins_give_the_reference_events_and_state(profile, stream):
    commands = _commands(*stream)
    reference, compiled = _run(commands, profile, "python"), _run(commands, profile, "cython")
    for i, (want, got) in enumerate(zip(reference[0], compiled[0])):
        assert got == want, f"command #{i} {commands[i]!r}"
    assert compiled[1] == reference[1]


def crash_side_by_side(runs) -> int:
    """Both exchanges through the crash down and back up in both symbols, every command's events equal; then the
    invariants and equal state hashes. Returns the ADL fills."""
    adl_fills = 0
    for mark in marks_down_and_up():
        for symbol in (SYMBOL, OTHER):
            command = SetMarkPrice(symbol, mark)
            first, second = (ex.apply(command) for ex in runs)
            assert second == first, f"{command!r}"
            adl_fills += sum(type(e) is ADLFill for e in first)
    for ex in runs:
        ex.check_invariants()
    assert runs[1].state_hash() == runs[0].state_hash()
    return adl_fills


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
def test_crashes_with_adl_are_the_same_on_both_implementations(profile):
    """300 traders in two symbols (one-way and hedge, isolated and cross), the indexes kept from the start,
    a crash down and back up in both symbols: ADL happens, and every command's events and the end state
    are the reference's."""
    runs = [crowd(profile, 300, seed=23, symbols=(SYMBOL, OTHER), implementation=implementation)
            for implementation in ("python", "cython")]
    assert [ex.state_hash() for ex in runs][0] == runs[1].state_hash()
    assert crash_side_by_side(runs) > 10  # ADL fills
    assert runs[1].monitor.indexed  # every profile (bitmex: its stepwise MM through its convex bounds)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
def test_position_views_are_the_references_after_a_crash(profile):
    """Every account's position views (with and without the prices), made in C on the compiled implementation
    (``Risk._view_record``), equal the reference's, field for field, after a crash with ADL; they are frozen
    ``PositionView`` records like the reference's."""
    runs = [crowd(profile, 120, seed=31, symbols=(SYMBOL, OTHER), implementation=implementation)
            for implementation in ("python", "cython")]
    crash_side_by_side(runs)
    ids = sorted(runs[0].ledger.accounts)
    assert ids == sorted(runs[1].ledger.accounts)
    views, compiled_view = 0, None
    for account_id in ids:
        want, got = runs[0].positions(account_id), runs[1].positions(account_id)
        assert got == want and all(type(v) is PositionView for v in got)
        for view in want:
            light = [ex.position(account_id, view.symbol, view.position_side, prices=False) for ex in runs]
            assert light[1] == light[0] and light[1].liquidation_price_ticks is None
            views, compiled_view = views + 1, light[1]
    assert views > 50
    with pytest.raises(dataclasses.FrozenInstanceError):
        compiled_view.lots = 0


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", ["binance", "bybit"])
def test_a_mark_moves_recheck_in_c_is_the_references(profile):
    """``Stage.store_flags`` (a mark move's re-check, bound over ``RiskMonitor._store_flags``) against the
    reference method: two compiled exchanges through the same crash with ADL, one with the reference method put
    back, give the same events, liquidatable parts and state after every command (the re-checks do flag parts)."""
    runs = [crowd(profile, 150, seed=41, symbols=(SYMBOL, OTHER), implementation="cython") for _ in range(2)]
    reference, compiled = runs[0].monitor, runs[1].monitor
    assert compiled._store_flags.__self__ is compiled._stage
    flags = []

    def store_flags(rows, liq_slots, liq_accounts):
        flags.append(len(liq_slots) + len(liq_accounts))
        RiskMonitor._store_flags(reference, rows, liq_slots, liq_accounts)

    reference._store_flags = store_flags
    for mark in marks_down_and_up():
        for symbol in (SYMBOL, OTHER):
            first, second = (ex.apply(SetMarkPrice(symbol, mark)) for ex in runs)
            assert second == first and compiled.parts == reference.parts
    assert runs[1].state_hash() == runs[0].state_hash()
    assert sum(flags) > 20


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", ["binance", "bybit"])
def test_store_flags_in_c_sets_and_clears_the_references_parts(profile):
    """``Stage.store_flags`` against ``RiskMonitor._store_flags`` on the same inputs, with nothing liquidated in
    between: every account re-checked by the index at marks that fall, then rise (parts flagged, several per
    account, then cleared), from the same parts before each call."""
    ex = crowd(profile, 300, seed=43, symbols=(SYMBOL, OTHER), implementation="cython")
    monitor = ex.monitor
    monitor.flush()
    rows = list(range(monitor.portfolio.n_accounts))
    several = cleared = 0
    for mark in (9_000, 7_000, 5_500, 8_000, 12_000):
        for i in range(len(monitor.symbols)):
            monitor.liq_index.on_mark(i, mark)
        liq_slots, liq_accounts = monitor._writer.recheck(rows)
        before = dict(monitor.parts)
        RiskMonitor._store_flags(monitor, rows, liq_slots, liq_accounts)
        want, monitor.parts = monitor.parts, dict(before)
        monitor._stage.store_flags(rows, liq_slots, liq_accounts)
        assert monitor.parts == want
        several += sum(len(parts) > 1 for parts in want.values())
        cleared += len(before.keys() - want.keys())
    assert several and cleared


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_record_maker_takes_exactly_the_fields():
    from exchange._impl import records_kernel

    make = records_kernel.RecordMaker(PositionView)
    values = ("S", PositionSide.BOTH, 1, 2, 3, MarginMode.CROSS, 5, 6, 7, 8, 9, None, 10)
    assert make(*values) == PositionView(*values)
    for wrong in (values[:-1], values + (0,), ()):
        with pytest.raises(TypeError, match="PositionView takes 13 values"):
            make(*wrong)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_record_maker_refuses_a_class_whose_init_does_more_than_store():
    import dataclasses

    from exchange._impl import records_kernel

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self):
            assert self.a >= 0

    @dataclasses.dataclass(frozen=True, slots=True)
    class Defaulted:
        a: int
        b: int = dataclasses.field(default=0, init=False)

    @dataclasses.dataclass(slots=True)
    class Mutable:
        a: int

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        a: int

    for cls in (Checked, Defaulted, Mutable, Unslotted, tuple):
        with pytest.raises(TypeError, match=cls.__qualname__):
            records_kernel.RecordMaker(cls)


def _stored(cls, values: dict):
    """The record the dataclass's generated ``__init__`` makes: each field set by ``object.__setattr__``."""
    record = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(record, name, value)
    return record


def _same(a, b) -> bool:
    return type(a) is type(b) and all(getattr(a, f.name) is getattr(b, f.name) for f in dataclasses.fields(a))


RECORD_CLASSES = [*COMMAND_TYPES.values(), *event_classes()]


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_command_and_event_records_are_made_as_the_dataclass_makes_them(cls):
    """Compiled, every command and event class has ``records_kernel.record_init`` as its ``__init__`` (each field
    stored in its slot); the reference keeps the dataclass's. Either way a record made positionally, by keyword
    in any order or with its defaults holds exactly the objects the generated ``__init__`` would store, and a
    missing, unexpected, repeated or extra argument is a TypeError naming it."""
    fields = dataclasses.fields(cls)
    assert (type(cls.__init__).__name__ == "cython_function_or_method") == COMPILED
    assert [(p.name, p.default) for p in inspect.signature(cls).parameters.values()] == \
        [(f.name, inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default) for f in fields]
    values = {f.name: object() for f in fields}  # (distinct objects: identity shows which went where)
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    assert _same(cls(*values.values()), _stored(cls, values))
    assert _same(cls(**dict(reversed(values.items()))), _stored(cls, values))
    half = len(fields) // 2
    assert _same(cls(*list(values.values())[:half], **dict(list(values.items())[half:])), _stored(cls, values))
    defaults = {f.name: values[f.name] if f.name in required else f.default for f in fields}
    assert _same(cls(**{name: values[name] for name in required}), _stored(cls, defaults))
    if required:
        with pytest.raises(TypeError, match=repr(required[-1])):
            cls(*[values[name] for name in required[:-1]])
    with pytest.raises(TypeError, match="'no_such_field'"):
        cls(*values.values(), no_such_field=1)
    with pytest.raises(TypeError, match=repr(fields[0].name)):
        cls(*values.values(), **{fields[0].name: 1})
    with pytest.raises(TypeError):
        cls(*values.values(), 1)
    made = cls(*values.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, fields[0].name, 1)
    assert dataclasses.replace(made) == made and hash(dataclasses.replace(made)) == hash(made)


@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_touched_log_changes_nothing_in_crashes_with_adl(profile, implementation):
    """The incremental readers of the touched set's log (the ADL queue's suspects, the monitor's sync and
    mirror) against their full paths: with a :class:`FullPathTouched` as the touched set every command
    re-checks every suspect, re-evaluates every touched and due account and rewrites the mirror's dirty rows,
    and the same crash gives the same events, command by command, and the same state."""
    runs = [crowd(profile, 300, seed=23, symbols=(SYMBOL, OTHER), implementation=implementation) for _ in range(2)]
    runs[1]._touched = FullPathTouched()
    assert crash_side_by_side(runs) > 10  # ADL fills


@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
@pytest.mark.parametrize("profile", ["binance", "dydx", "hyperliquid"])
@pytest.mark.parametrize("stream", STREAMS, ids=[f"{kind}-{seed}" for kind, seed in STREAMS])
def test_the_quiet_skip_changes_nothing(implementation, profile, stream):
    commands = _commands(*stream)
    skipping, running = _run(commands, profile, implementation), _run(commands, profile, implementation, quiet=False)
    for i, (want, got) in enumerate(zip(running[0], skipping[0])):
        assert got == want, f"command #{i} {commands[i]!r}"
    assert skipping[1] == running[1]


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_compiled_exchange_binds_the_twins_and_the_reference_does_not():
    from exchange import AmendOrder, CancelAll, CancelOrder, Deposit, FundInsurance, PlaceOrder, SetIndexPrice, Withdraw
    from exchange.commands import AdjustIsolatedMargin, SetInitialMarginRate, SetLeverage, SetMarginMode, SetPositionMode
    from exchange._impl import (engine_kernel, entry_kernel, fills_kernel, handlers_kernel, monitor_kernel,
                                pretrade_kernel, records_kernel, waterfall_kernel)

    compiled, reference = (Exchange([make_instrument()], implementation=i) for i in ("cython", "python"))
    assert type(compiled._drain) is fills_kernel.Drain
    assert type(compiled._handlers[PlaceOrder].__self__) is entry_kernel.Entry
    entry = compiled._handlers[PlaceOrder].__self__
    assert [compiled._handlers[cls] for cls in (CancelOrder, AmendOrder, CancelAll)] == [
        entry.cancel, entry.amend, entry.cancel_all]
    own = compiled._handlers[SetMarkPrice].__self__
    assert type(own) is handlers_kernel.Handlers
    own_commands = (SetMarkPrice, SetIndexPrice, Deposit, Withdraw, SetPositionMode, SetMarginMode, SetLeverage,
                    SetInitialMarginRate, AdjustIsolatedMargin, FundInsurance)
    assert [compiled._handlers[cls] for cls in own_commands] == [
        own.set_mark, own.set_index, own.deposit, own.withdraw, own.set_position_mode, own.set_margin_mode,
        own.set_leverage, own.set_initial_margin_rate, own.adjust_isolated_margin, own.fund_insurance]
    assert isinstance(compiled.risk._sums_class(), pretrade_kernel.OrderSums)
    assert type(compiled.risk._view_record) is records_kernel.RecordMaker and reference.risk._view_record is PositionView
    assert "key_hold" in vars(compiled.risk) and "check_opening" in vars(compiled.risk)
    assert type(compiled.apply.__self__) is engine_kernel.Loop and compiled._apply_valid.__self__ is compiled.apply.__self__
    assert type(compiled.risk.mark_of) is pretrade_kernel.RiskPrice
    assert type(compiled.monitor.sync.__self__) is monitor_kernel.Stage
    assert type(compiled.liquidation.stage.__self__) is waterfall_kernel.Steps
    assert compiled.monitor.margin_stage.__self__ is compiled.monitor.liquidatable.__self__ is compiled.monitor.sync.__self__
    checked = CheckedExchange([make_instrument()], implementation="cython")  # a subclass's own apply stays
    assert checked.apply.__func__ is CheckedExchange.apply and type(checked._apply_valid.__self__) is engine_kernel.Loop
    assert "_drain" not in vars(reference) and reference._handlers[PlaceOrder] == reference._place
    assert reference._handlers[AmendOrder] == reference._amend and reference._handlers[CancelAll] == reference._cancel_all
    assert [reference._handlers[cls] for cls in own_commands] == [
        reference._set_mark, reference._set_index, reference._deposit, reference._withdraw, reference._set_position_mode,
        reference._set_margin_mode, reference._set_leverage, reference._set_initial_margin_rate,
        reference._adjust_isolated_margin, reference._fund_insurance]
    assert not {"apply", "_apply_valid"} & vars(reference).keys() and reference.risk.mark_of == reference.risk_price
    assert not {"sync", "liquidatable", "margin_stage"} & vars(reference.monitor).keys()
    assert "stage" not in vars(reference.liquidation)
    assert not {"key_hold", "check_opening", "part_states"} & vars(reference.risk).keys()
    assert isinstance(reference.risk, Risk)


def _demo_commands(n: int) -> tuple:
    """The demo flow's first ``n`` commands after its deposits (1,000 accounts: the monitor keeps its indexes),
    with a mark move every 500 commands so margin calls and index candidates occur."""
    from exchange import Deposit, SetMarkPrice
    from exchange.cli import DEMO_DEPOSIT_UNITS
    from exchange.commands import commands_from_rows
    from exchange.workload import standard_workload

    instrument, rows = standard_workload(n, 42)
    commands = commands_from_rows(rows, instrument.symbol)
    for i in range(len(commands) - 1, 0, -500):
        commands.insert(i, SetMarkPrice(instrument.symbol, 9_000 + i % 2_000))
    deposits = [Deposit(a, DEMO_DEPOSIT_UNITS // 10**4) for a in sorted(set(rows["account_id"].tolist()))]
    return instrument, deposits + commands


@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
def test_the_quiet_skip_changes_nothing_with_the_indexes_kept(implementation):
    instrument, commands = _demo_commands(4_000)
    runs = []
    for quiet in (True, False):
        ex = Exchange([instrument], implementation=implementation)
        if not quiet:
            without_the_quiet_skip(ex)
        runs.append(([ex.apply(command) for command in commands], ex.state_hash()))
        assert ex.monitor.indexed
    assert runs[0] == runs[1]
    assert any(type(e).__name__ == "MarginCall" for events in runs[0][0] for e in events)


def _two_symbols(profile: str, implementation: str) -> Exchange:
    return Exchange([make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)], profile=profile,
                    implementation=implementation, liquidation=LiquidationConfig())


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
def test_amends_and_cancel_alls_are_the_references_on_the_compiled_path(profile, monkeypatch):
    """The requote flow (tests.streams.requote_commands), drawn while the reference runs it, then run on the
    compiled implementation: every command's events and the state hash are the reference's, and not one amend or
    cancel-all went to the reference's handler (no conditional order waits, every symbol trades)."""
    from exchange import AmendOrder, Fill, Rejected
    from exchange.enums import RejectCode

    reference, orders, commands, want = _two_symbols(profile, "python"), {SYMBOL: [], OTHER: []}, [], []
    for command in requote_commands(7, 2_500, orders, (SYMBOL, OTHER)):
        commands.append(command)
        want.append(reference.apply(command))
        follow_orders(orders, want[-1], reference)
    amended = [events for command, events in zip(commands, want) if type(command) is AmendOrder]
    codes = {e.code for events in amended for e in events if type(e) is Rejected}
    assert {RejectCode.NO_SUCH_ORDER, RejectCode.MARGIN_INSUFFICIENT, RejectCode.REDUCE_ONLY_REJECTED} <= codes
    assert sum(any(type(e) is Fill for e in events) for events in amended) > 50  # amends through the touch
    handed = []
    for name in ("_amend", "_cancel_all"):
        monkeypatch.setattr(Exchange, name, lambda ex, cmd, _name=name, _was=getattr(Exchange, name): (
            handed.append(_name), _was(ex, cmd))[1])
    compiled = _two_symbols(profile, "cython")
    for i, command in enumerate(commands):
        assert compiled.apply(command) == want[i], f"command #{i} {command!r}"
    assert handed == []
    compiled.check_invariants()
    assert compiled.state_hash() == reference.state_hash()


@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
def test_an_amend_by_an_account_in_liquidation_mode_may_only_reduce(implementation):
    """An account in liquidation mode (kept there across commands while its liquidation is not done) may not amend
    an opening order (-4087, "User can only place reduce only order."), while a reduce-only order's amend is
    checked only against what it can close (-2022 past it); once an amend passes, the command's stages release
    a safe account and its opening orders may be amended again. The same on both implementations."""
    from exchange import AmendOrder, Deposit, OrderAccepted, PlaceOrder, Rejected, Side
    from exchange.enums import RejectCode

    ex = _two_symbols("binance", implementation)
    for command in (SetMarkPrice(SYMBOL, 10_000), Deposit(1, 10**5 * 10**8), Deposit(2, 10**5 * 10**8),
                    PlaceOrder(2, SYMBOL, Side.SELL, 5, 10_000), PlaceOrder(1, SYMBOL, Side.BUY, 5, 10_000),
                    PlaceOrder(1, SYMBOL, Side.BUY, 3, 9_900), PlaceOrder(1, SYMBOL, Side.SELL, 2, 10_100,
                                                                           reduce_only=True)):
        events = ex.apply(command)
    assert type(events[0]) is OrderAccepted and events[0].order_id == 4
    ex.liquidation.in_liquidation.add(1)  # (as a partial liquidation leaves it between commands)
    refused = ex.apply(AmendOrder(1, SYMBOL, 3, 9_950, 3))
    assert [(type(e), e.code, e.order_id) for e in refused] == [(Rejected, RejectCode.REDUCE_ONLY_ORDER_PERMISSION, 3)]
    assert ex.apply(AmendOrder(1, SYMBOL, 4, 10_050, 6))[0].code == RejectCode.REDUCE_ONLY_REJECTED  # holds 5
    amended = ex.apply(AmendOrder(1, SYMBOL, 4, 10_050, 5))  # its stages then find the account safe: released
    assert [type(e).__name__ for e in amended] == ["OrderAmended", "LiquidationEnded"]
    assert amended[0].price_ticks == 10_050 and ex.liquidation.in_liquidation == set()
    assert ex.apply(AmendOrder(1, SYMBOL, 3, 9_950, 3))[0].price_ticks == 9_950
    ex.check_invariants()


def _last_price_stream(seed: int, steps: int) -> list:
    """Commands of two symbols of which only SYMBOL ever gets a mark: 60 leveraged traders (some isolated) open
    positions in both against two rich makers; then the makers trade OTHER with each other at a walking price
    (its risk price is that last trade price: the traders' margin-call states move without their accounts
    being touched, so they become stale), SYMBOL's mark walks (stale holders of SYMBOL become due), and traders
    trade now and then."""
    from exchange import Deposit, MarginMode, OrderType, PlaceOrder, SetLeverage, SetMarginMode, Side

    rng = random.Random(seed)
    usdt = 10**8
    commands = [Deposit(1, 10**8 * usdt), Deposit(2, 10**8 * usdt), SetMarkPrice(SYMBOL, 10_000)]
    traders = range(3, 63)
    for trader in traders:
        commands.append(Deposit(trader, rng.randint(60, 400) * usdt))
        for symbol in (SYMBOL, OTHER):
            commands.append(SetLeverage(trader, symbol, rng.choice((20, 25, 50))))
        if rng.random() < 0.3:
            commands.append(SetMarginMode(trader, OTHER, MarginMode.ISOLATED))
    for trader in traders:
        for symbol in (SYMBOL, OTHER):
            side = rng.choice((Side.BUY, Side.SELL))
            lots = rng.randint(1, 8)
            commands.append(PlaceOrder(1, symbol, Side.SELL if side == Side.BUY else Side.BUY, lots, 10_000))
            commands.append(PlaceOrder(trader, symbol, side, lots, 0, OrderType.MARKET))
    other, mark = 10_000, 10_000
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.5:  # the makers trade OTHER: its last price walks
            other = min(max(other + rng.randint(-250, 250), 7_000), 13_000)
            commands.append(PlaceOrder(1, OTHER, Side.SELL, 1, other))
            commands.append(PlaceOrder(2, OTHER, Side.BUY, 1, other))
        elif roll < 0.85:
            mark = min(max(mark + rng.randint(-200, 200), 8_000), 12_000)
            commands.append(SetMarkPrice(SYMBOL, mark))
        else:
            trader, side = rng.choice(traders), rng.choice((Side.BUY, Side.SELL))
            symbol = rng.choice((SYMBOL, OTHER))
            price = other if symbol == OTHER else mark
            commands.append(PlaceOrder(1, symbol, Side.SELL if side == Side.BUY else Side.BUY, 1, price))
            commands.append(PlaceOrder(trader, symbol, side, 1, 0, OrderType.MARKET))
    return commands


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", ["binance", "bybit", "hyperliquid"])
def test_the_compiled_price_follow_is_the_references(profile, monkeypatch):
    """``Stage.follow`` with the indexes kept (the twin of ``RiskMonitor.follow_prices`` and ``_price_moved``):
    commands of two symbols, one of which never gets a mark (:func:`_last_price_stream`: last-price moves make
    holders stale; every mark of the other symbol follows both), with the indexes kept from the first account, on
    both implementations: every command's events, the liquidatable parts, the stale holders and the prices
    followed are the reference's, the state hash too, and the compiled monitor never calls the reference method
    once its indexes are kept."""
    commands = _last_price_stream(7, 1_500)
    runs = [_two_symbols(profile, implementation) for implementation in ("python", "cython")]
    for ex in runs:
        ex.monitor.index_from_accounts = 0
    called = []  # (the compiled monitor's?, its indexes kept?) of each call of the reference method
    was = RiskMonitor.follow_prices
    monkeypatch.setattr(RiskMonitor, "follow_prices", lambda m, touched: (
        called.append((m is runs[1].monitor, m.indexed)), was(m, touched))[1])
    last_price_moves = stale_seen = liquidated = 0
    for i, command in enumerate(commands):
        followed = runs[1].monitor.prices[1]
        first, second = (ex.apply(command) for ex in runs)
        assert second == first, f"command #{i} {command!r}"
        reference, compiled = runs[0].monitor, runs[1].monitor
        assert (compiled.parts, compiled._stale, compiled.prices) == (reference.parts, reference._stale, reference.prices)
        last_price_moves += compiled.prices[1] != followed
        stale_seen += bool(compiled._stale)
        liquidated += any(type(e).__name__ == "LiquidationStarted" for e in first)
    assert runs[0].monitor.indexed and runs[1].monitor.indexed
    assert last_price_moves > 200 and stale_seen > 50 and liquidated > 5  # (the stream does what it says)
    for ex in runs:
        ex.check_invariants()
    assert runs[1].state_hash() == runs[0].state_hash()
    assert (False, True) in called and (True, True) not in called


@pytest.mark.parametrize("implementation", ["python", "cython"] if COMPILED else ["python"])
def test_marks_and_money_the_reference_refuses_are_refused_alike(implementation):
    """The compiled handlers of a mark, a deposit and a withdrawal (``exchange/_handlers.pyx``) leave every refusal
    to the reference method: a deposit past the venue's money bound, a withdrawal by an unknown account or past
    the withdrawable balance, a mark outside the symbol's prices or of a settled symbol. Each is refused with its
    code, changes nothing, and what passes moves the wallet and the ledger's totals exactly, on both
    implementations."""
    from exchange import Deposit, OrderType, PlaceOrder, Rejected, SettleSymbol, Side, Withdraw
    from exchange.enums import RejectCode
    from exchange.units import MAX_ABS_VALUE

    ex = _two_symbols("binance", implementation)
    usdt = 10**8
    for command in (SetMarkPrice(SYMBOL, 10_000), SetMarkPrice(OTHER, 10_000), Deposit(1, 1_000 * usdt),
                    Deposit(2, 1_000 * usdt), PlaceOrder(2, SYMBOL, Side.SELL, 20, 10_000),
                    PlaceOrder(1, SYMBOL, Side.BUY, 20, 0, OrderType.MARKET)):
        ex.apply(command)
    wallet, held = ex.ledger.accounts[1].wallet_units, ex.risk.withdrawable(ex.ledger.accounts[1])
    before = ex.state_hash()
    refusals = [(Deposit(3, MAX_ABS_VALUE - ex.ledger.money_in_units() + 1), RejectCode.MALFORMED),
                (Withdraw(9, 1), RejectCode.BALANCE_NOT_SUFFICIENT),
                (Withdraw(1, held + 1), RejectCode.BALANCE_NOT_SUFFICIENT),
                (SetMarkPrice(SYMBOL, make_instrument().max_price_ticks + 1), RejectCode.MALFORMED)]
    for command, code in refusals:
        events = ex.apply(command)
        assert [(type(e), e.code) for e in events] == [(Rejected, code)], command
    assert ex.state_hash() == before and 3 not in ex.ledger.accounts
    deposits = ex.ledger.deposits_units
    assert ex.apply(Withdraw(1, held))[0].wallet_units == wallet - held
    assert ex.apply(Deposit(3, 5 * usdt))[0].wallet_units == 5 * usdt
    assert (ex.ledger.deposits_units, ex.ledger.withdrawals_units) == (deposits + 5 * usdt, held)
    ex.apply(SettleSymbol(OTHER, 10_000))
    assert ex.apply(SetMarkPrice(OTHER, 10_100))[0].code == RejectCode.SYMBOL_SETTLED
    ex.check_invariants()
