"""The validation boundary (exchange.boundary.validate), the bounded AdvanceTime and the Client's handling of bad human
values: one regression test per defect found by the adversarial review, on both implementations."""
from decimal import Decimal

import numpy as np

import pytest

from exchange import (
    AdjustIsolatedMargin, AdvanceTime, AmendOrder, CancelAll, CancelOrder, Client, Deposit, Exchange, FundInsurance,
    Instrument, OrderType, PlaceOrder, PositionMode, Rejected, RejectCode, SetIndexPrice, SetLeverage,
    SetMarginMode, SetMarkPrice, SetPositionMode, SettleSymbol, Side, TimeInForce, Withdraw,
)
from exchange.engine import ExchangeHalted
from exchange.spec import FundingParams
from exchange.units import InputError
from tests.conftest import COMPILED, make_instrument
from tests.streams import liquidation_commands, random_commands

SYM = "TESTUSDT"
USDT = 10**8
IMPLEMENTATIONS = ["python"] + (["cython"] if COMPILED else [])


def venue(implementation, hedge=False):
    """Two funded accounts, a mark, a resting bid (order 1) of account 1 and a resting ask (order 2) of 2."""
    ex = Exchange([make_instrument()], implementation=implementation)
    for account in (1, 2):
        ex.apply(Deposit(account, 10_000 * USDT))
    if hedge:
        ex.apply(SetPositionMode(1, PositionMode.HEDGE))
    ex.apply(SetMarkPrice(SYM, 10_000))
    ex.apply(PlaceOrder(1, SYM, Side.BUY, 5, 9_990, position_side=2 if hedge else 1))
    ex.apply(PlaceOrder(2, SYM, Side.SELL, 5, 10_010))
    return ex


def refused(ex, command, field, code=RejectCode.MALFORMED):
    """Apply a malformed command: exactly one Rejected naming ``field``, and nothing changed at all."""
    before = (ex.state_hash(), ex.sequence, len(ex.journal), ex.next_order_id, ex.available_balance(1))
    events = ex.apply(command)
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    assert events[0].code == code, events[0]
    assert f".{field}:" in events[0].message, events[0].message
    assert (ex.state_hash(), ex.sequence, len(ex.journal), ex.next_order_id, ex.available_balance(1)) == before
    ex.check_invariants()
    return events[0]


# -- the defects of the review, one by one -------------------------------------------------------------
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_fractional_side_is_refused_before_any_account_check(implementation):
    for hedge in (False, True):
        ex = venue(implementation, hedge)
        # was accepted: the available balance went to -489,000 USDT, and in hedge mode a long on the SHORT leg
        refused(ex, PlaceOrder(1, SYM, 1.5, 50_000, 10_000, position_side=3 if hedge else 1), "side")
        assert ex.available_balance(1) >= 0


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_stop_market_without_tif_changes_nothing(implementation):
    ex = venue(implementation)
    # was TypeError after the order id advanced and the position side was recorded
    refused(ex, PlaceOrder(1, SYM, Side.SELL, 1, 0, OrderType.STOP_MARKET, tif=None, stop_ticks=9_000), "tif")
    assert ex.apply(PlaceOrder(1, SYM, Side.BUY, 1, 9_980))[0].order_id == 3  # ids did not move


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("field, value", [
    ("qty_lots", float("nan")), ("qty_lots", 1.5), ("callback_e8", 2**64), ("activation_ticks", 2**64),
    ("tif", 2**64), ("expire_ns", 2**64), ("stop_ticks", float("inf")), ("working_type", 7),
    ("reduce_only", 2), ("close_position", None), ("position_side", Decimal(1)),
])
def test_unrepresentable_conditional_fields_are_refused_and_the_hash_keeps_working(implementation, field, value):
    ex = venue(implementation)
    fields = dict(account_id=1, symbol=SYM, side=Side.SELL, qty_lots=1, order_type=OrderType.TRAILING_STOP_MARKET,
                  callback_e8=100_000, tif=TimeInForce.GTC)
    fields[field] = value
    code = RejectCode.INVALID_TIF if field == "tif" else RejectCode.MALFORMED
    refused(ex, PlaceOrder(**fields), field, code)
    ex.state_hash()  # was OverflowError for ever after a stored 2**64


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_order_ids_outside_int64_and_as_strings_are_refused_alike(implementation):
    ex = venue(implementation)
    # was -2011 on the reference and OverflowError on the compiled core
    assert refused(ex, CancelOrder(1, SYM, 2**63), "order_id").message == \
        "CancelOrder.order_id: 9223372036854775808 is outside 0..2**63-1."
    # was: the reference cancelled order 2, the compiled core raised TypeError
    refused(ex, CancelOrder(2, SYM, "2"), "order_id")
    assert ex.book(SYM).order(2) is not None
    refused(ex, AmendOrder(1, SYM, 1, 9_991, 1.5), "qty_lots")
    refused(ex, PlaceOrder(1, SYM, Side.BUY, 1.5, 9_990), "qty_lots")  # was taken as 1 lot
    assert ex.apply(CancelOrder(1, SYM, 2**63 - 1))[0].code == RejectCode.UNKNOWN_ORDER  # in range: the book decides


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("command, field", [
    (PlaceOrder(True, SYM, Side.BUY, 1, 9_990), "account_id"),
    (PlaceOrder(-1, SYM, Side.BUY, 1, 9_990), "account_id"),
    (PlaceOrder(2**62, SYM, Side.BUY, 1, 9_990), "account_id"),
    (PlaceOrder(1, 7, Side.BUY, 1, 9_990), "symbol"),
    (PlaceOrder(1, "X" * 65, Side.BUY, 1, 9_990), "symbol"),
    (PlaceOrder(1, SYM, Side.BUY, 1, "9990"), "price_ticks"),
    (PlaceOrder(1, SYM, Side.BUY, 1, -1), "price_ticks"),
    (PlaceOrder(1, SYM, Side.BUY, 1, 9_990, stp=0), "stp"),
    (CancelAll(None, SYM), "account_id"),
    (SetMarkPrice(SYM, 2**62 + 1), "mark_ticks"),
    (SetIndexPrice(SYM, 10_000.0), "index_ticks"),
    (AdvanceTime(2**62 + 1), "now_ns"),
    (AdvanceTime(10**30), "now_ns"),
    (AdvanceTime(-1), "now_ns"),
    (Deposit(1, 0), "amount_units"),
    (Deposit(1, Decimal("1e20")), "amount_units"),
    (Withdraw(1, 2**63), "amount_units"),
    (SetPositionMode(1, 3), "position_mode"),
    (SetMarginMode(1, SYM, 2, -5), "isolated_margin_units"),
    (SetMarginMode(1, SYM, None), "margin_mode"),
    (SetLeverage(1, SYM, 2**63), "leverage"),
    (SetLeverage(1, SYM, 10.0), "leverage"),
    (AdjustIsolatedMargin(1, SYM, 0), "delta_units"),
    (AdjustIsolatedMargin(1, SYM, -(2**62) - 1), "delta_units"),
    (FundInsurance(SYM, True), "amount_units"),
])
def test_every_command_kind_checks_its_fields(implementation, command, field):
    ex = venue(implementation)
    refused(ex, command, field)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_enum_values_keep_the_venue_codes(implementation):
    ex = venue(implementation)
    refused(ex, PlaceOrder(1, SYM, 3, 1, 9_990), "side", RejectCode.INVALID_SIDE)
    refused(ex, PlaceOrder(1, SYM, Side.BUY, 1, 9_990, order_type=8), "order_type", RejectCode.INVALID_ORDER_TYPE)
    refused(ex, PlaceOrder(1, SYM, Side.BUY, 1, 9_990, tif=9), "tif", RejectCode.INVALID_TIF)


def test_rejected_event_of_a_malformed_identity_holds_plain_values():
    ex = Exchange([make_instrument()], implementation="python")
    (event,) = ex.apply(CancelOrder(float("nan"), ["list"], 2**70))
    assert (event.symbol, event.account_id, event.order_id) == ("", 0, 0)
    assert "CancelOrder.account_id" in event.message


def test_objects_that_are_not_commands_raise_type_error():
    ex = Exchange([make_instrument()])
    with pytest.raises(TypeError):
        ex.apply("PlaceOrder")
    assert ex.sequence == 0 and ex.journal == []


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_both_implementations_give_identical_events_on_malformed_streams():
    bad = [PlaceOrder(1, SYM, 1.5, 1, 9_990), CancelOrder(1, SYM, 2**63), CancelOrder(2, SYM, "2"),
           AdvanceTime(10**30), PlaceOrder(1, SYM, Side.SELL, 1, 0, OrderType.STOP_MARKET, tif=None, stop_ticks=9_000)]
    a, b = venue("python"), venue("cython")
    for command in bad + list(random_commands(seed=3, n=400)):
        assert a.apply(command) == b.apply(command), command
        assert a.state_hash() == b.state_hash()


# -- AdvanceTime: cost in events crossed, same result as visiting every step --------------------------------
class SteppingExchange(Exchange):
    """The oracle: AdvanceTime visiting every premium sample time one by one (the former implementation)."""

    def _advance_time(self, cmd):
        if cmd.now_ns < self.now_ns:
            return super()._advance_time(cmd)
        from exchange.events import TimeAdvanced

        events, premiums = [TimeAdvanced(cmd.now_ns)], {}
        for time_ns, sampled, settles in self.funding.steps(self.now_ns, cmd.now_ns):
            events += self._step(time_ns, sampled, settles, premiums)
        return events + self._move_clock(cmd.now_ns, premiums, True)


def with_jumps(commands, seed):
    """The stream with its AdvanceTimes stretched (seconds to hours) and GTD orders expiring in between."""
    import random

    rng = random.Random(seed)
    offset = 0
    for command in commands:
        if isinstance(command, AdvanceTime):
            offset += rng.choice((0, 3 * 10**9, 7 * 10**9, 3_600 * 10**9, 9 * 3_600 * 10**9))
            yield AdvanceTime(command.now_ns + offset)
        elif isinstance(command, PlaceOrder) and command.tif == TimeInForce.GTD:
            yield PlaceOrder(command.account_id, command.symbol, command.side, command.qty_lots, command.price_ticks,
                             command.order_type, command.tif, command.stp, command.reduce_only,
                             expire_ns=command.expire_ns + offset + rng.randint(1, 30 * 10**9))
        else:
            yield command


@pytest.mark.parametrize("seed", range(3))
def test_advance_time_batches_quiet_samples_exactly(seed):
    commands = list(with_jumps(liquidation_commands(seed, 1_500), seed))
    fast, oracle = Exchange([make_instrument()]), SteppingExchange([make_instrument()])
    for i, command in enumerate(commands):
        assert fast.apply(command) == oracle.apply(command), (seed, i, command)
        assert fast.state_hash() == oracle.state_hash(), (seed, i, command)
    assert len(fast.funding_history(SYM)) > 10


def test_a_long_jump_costs_its_boundaries_not_its_length():
    day_ns = 86_400 * 10**9
    ex = venue(None)
    ex.apply(SetIndexPrice(SYM, 10_000))
    ex.apply(PlaceOrder(1, SYM, Side.BUY, 1, 9_980, tif=TimeInForce.GTD, expire_ns=day_ns // 3))
    calls = []
    move_clock = ex._move_clock
    ex._move_clock = lambda *args: calls.append(args[0]) or move_clock(*args)
    ex.apply(AdvanceTime(30 * day_ns))
    # 30 days at 8 h: 90 settlements; the GTD expiry at 8 h is a boundary itself; plus the final move
    assert len(calls) == 91
    # every 5 s sample of the last interval was taken: 8 h / 5 s = 5,760, all with the same book
    history = ex.funding_history(SYM)
    assert len(history) == 90 and history[-1].time_ns == 30 * day_ns
    assert ex.funding.symbols[SYM].sampler.count == 0  # reset at the boundary the jump ends on
    ex._move_clock = move_clock
    ex.apply(AdvanceTime(30 * day_ns + 8 * 3_600 * 10**9 - 1))
    assert ex.funding.symbols[SYM].sampler.count == 5_759  # samples at 5 s .. 8 h - 5 s


def test_time_and_each_jump_are_bounded():
    year_ns = 366 * 86_400 * 10**9  # MAX_TIME_STEP_NS
    ex = venue(None)
    refused(ex, AdvanceTime(2**62 + 1), "now_ns")
    refused(ex, PlaceOrder(1, SYM, Side.BUY, 1, 9_980, tif=TimeInForce.GTD, expire_ns=2**62 + 1), "expire_ns")
    for too_far in (year_ns + 1, 2**62):
        (event,) = ex.apply(AdvanceTime(too_far))  # well-formed, but more than 366 days at once: its stage refuses
        assert event.code == RejectCode.MALFORMED and event.message.startswith("AdvanceTime.now_ns:")
    events = ex.apply(AdvanceTime(year_ns))  # the longest jump: 1,098 settlements of 8 h
    assert ex.now_ns == year_ns and len(ex.funding_history(SYM)) == year_ns // (8 * 3_600 * 10**9) == 1_098
    assert events[0].now_ns == year_ns
    ex.check_invariants()


# -- an internal error halts the exchange ------------------------------------------------------------------
def test_an_internal_error_halts_the_exchange_instead_of_half_applying_silently():
    ex = venue(None)
    sequence = ex.sequence

    def broken(cmd):
        ex.now_ns += 1  # a half-applied change
        raise KeyError("boom")

    ex._handlers[Deposit] = broken
    with pytest.raises(ExchangeHalted, match="internal error in command #6 .Deposit.: KeyError"):
        ex.apply(Deposit(1, USDT))
    assert ex.sequence == sequence + 1 and ex.journal[-1] == Deposit(1, USDT)  # it was journaled first
    with pytest.raises(ExchangeHalted):
        ex.apply(SetMarkPrice(SYM, 10_001))
    assert ex.halted is not None


# -- Client: bad human values become one Rejected naming the argument ------------------------------------------
@pytest.mark.parametrize("call, code, argument", [
    (lambda c: c.buy(SYM, "1", "100.00", tif="NOPE"), RejectCode.MALFORMED, "tif"),
    (lambda c: c.order(SYM, "UP", "1", "100.00"), RejectCode.MALFORMED, "side"),
    (lambda c: c.buy(SYM, "1", "100.00", position_side=None), RejectCode.MALFORMED, "position_side"),
    (lambda c: c.buy(SYM, "1", "1e30"), RejectCode.MALFORMED, "price"),
    (lambda c: c.buy(SYM, "1", "100.001"), RejectCode.PRICE_NOT_INCREASED_BY_TICK_SIZE, "price"),
    (lambda c: c.buy(SYM, "1.5", "100.00"), RejectCode.QTY_NOT_INCREASED_BY_STEP_SIZE, "qty"),
    (lambda c: c.buy(SYM, 1.0, "100.00"), RejectCode.MALFORMED, "qty"),
    (lambda c: c.buy(SYM, "1", "100.00", reduce_only="yes"), RejectCode.MALFORMED, "reduce_only"),
    (lambda c: c.sell(SYM, "1", None, order_type="TRAILING_STOP_MARKET", callback_rate="0.0000000001"),
     RejectCode.MALFORMED, "callback_rate"),
    (lambda c: c.amend("NOPEUSDT", 1, "100", "1"), RejectCode.INVALID_SYMBOL, "symbol"),
    (lambda c: c.amend(SYM, 1, None, "1"), RejectCode.MALFORMED, "price"),
    (lambda c: c.deposit("1e20"), RejectCode.MALFORMED, "amount"),
    (lambda c: c.deposit("abc"), RejectCode.MALFORMED, "amount"),
    (lambda c: c.withdraw(float("nan")), RejectCode.MALFORMED, "amount"),
    (lambda c: c.set_margin_mode(SYM, "BOTH"), RejectCode.MALFORMED, "margin_mode"),
    (lambda c: c.set_position_mode("SIDEWAYS"), RejectCode.MALFORMED, "position_mode"),
    (lambda c: c.adjust_isolated_margin(SYM, "1e-9"), RejectCode.MALFORMED, "amount"),
    (lambda c: c.set_leverage(SYM, "10"), RejectCode.MALFORMED, "leverage"),
    (lambda c: c.cancel(SYM, "2"), RejectCode.MALFORMED, "order_id"),
])
def test_client_turns_bad_values_into_one_rejected(call, code, argument):
    ex = venue(None)
    before = ex.state_hash()
    (event,) = call(Client(ex, 1))
    assert isinstance(event, Rejected) and event.code == code, event
    assert argument in event.message, event.message
    assert ex.state_hash() == before


def test_client_constructor_and_instruments_raise_input_error():
    with pytest.raises(InputError, match="account_id"):
        Client(Exchange([make_instrument()]), -1)
    for bad in (dict(max_price="1e30"), dict(tick_size="abc"), dict(taker_fee=0.1)):
        with pytest.raises(InputError):
            Instrument.linear("BTCUSDT", **{**dict(tick_size="0.1", lot_size="0.001", min_qty="0.001"), **bad})


# -- the fast paths (generated Python, compiled twin) accept exactly what the rules accept ------------------------------------------------
def test_fast_paths_agree_with_the_rules():
    import dataclasses

    from hypothesis import given, settings, strategies as st

    from exchange.boundary import validate

    values = st.one_of(
        st.integers(min_value=-(2**65), max_value=2**65), st.sampled_from([0, 1, 2, 2**62 - 1, 2**62, 2**62 + 1,
                                                                            2**63 - 1, 2**63, -(2**62)]),
        st.sampled_from(list(Side) + list(TimeInForce) + list(OrderType)), st.booleans(), st.none(),
        st.floats(allow_nan=True), st.text(max_size=70), st.just(Decimal(1)), st.just(SYM),
        st.just(_SneakyInt(1)), st.just(np.int64(1)), st.just("é"), st.just("A" * 64), st.just("A" * 65),
    )

    @settings(max_examples=3_000, deadline=None)
    @given(st.sampled_from(sorted(validate.RULES, key=lambda c: c.__name__)), st.data())
    def check_one(cls, data):
        fields = {f.name: data.draw(values) for f in dataclasses.fields(cls)}
        command = cls(**fields)
        slow = all(rule.problem(getattr(command, name)) is None for name, rule in validate.RULES[cls])
        assert validate._FAST[cls](command) == slow, command
        if validate._FAST_COMPILED is not None:  # the compiled twin (exchange.boundary._validate)
            assert validate._FAST_COMPILED[cls](command) == slow, command
            # it reads a record of exactly its class from the slots, any other (a subclass) by name
            subclass = _SUBCLASSES.setdefault(cls, type(f"My{cls.__name__}", (cls,), {"__slots__": ()}))
            assert validate._FAST_COMPILED[cls](subclass(**fields)) == slow, command

    check_one()


_SUBCLASSES: dict = {}  # command class -> a user's subclass of it


class _SneakyInt(int):
    """An int subclass (refused everywhere an integer is expected, whatever it claims)."""


def test_recovery_rebuilds_the_state_before_a_command_that_halted_the_exchange(tmp_path, monkeypatch):
    from exchange.persistence.journal import read_file
    from exchange.persistence.recovery import recover

    original = Exchange._settle_symbol  # (a handler both implementations run in Python)

    def faulty(self, cmd):  # a deterministic bug: every run that applies this command half-applies it and raises
        if cmd.price_ticks == 7:
            self.now_ns += 1
            raise RuntimeError("bug")
        return original(self, cmd)

    monkeypatch.setattr(Exchange, "_settle_symbol", faulty)
    path = tmp_path / "run.journal"
    commands = list(random_commands(seed=5, n=300))
    ex = Exchange([make_instrument()], journal=path)
    for command in commands:
        ex.apply(command)
    healthy = (ex.state_hash(), ex.sequence)
    with pytest.raises(ExchangeHalted):
        ex.apply(SettleSymbol(make_instrument().symbol, 7))
    ex.close()

    recovered, report = recover(path, resume=True)
    assert report.faulted_sequence == healthy[1] + 1 and "RuntimeError: bug" in report.fault
    assert (recovered.state_hash(), recovered.sequence) == healthy
    recovered.apply(Deposit(1, USDT))  # the resumed journal continues after the last good command
    recovered.close()
    contents = read_file(path)
    assert contents.commands[-1] == Deposit(1, USDT) and len(contents.commands) == healthy[1] + 1


def test_queries_name_an_unknown_symbol_with_input_error():
    ex = venue(None)
    for query, args in [(ex.book, ("NOPE",)), (ex.position, (1, "NOPE")), (ex.margin_mode, (1, "NOPE")),
                        (ex.funding_history, ("NOPE",)), (ex.margin_ratio_e8, (1, "NOPE")),
                        (ex.insurance_balance, ("NOPE",)), (ex.open_orders, (1, 7))]:
        with pytest.raises(InputError, match="unknown symbol"):
            query(*args)
    assert ex.margin_ratio_e8(1) == 0 and ex.insurance_history() == []  # the defaults (cross account, all) stay


@pytest.mark.parametrize("arguments, match", [
    (dict(instruments=[]), "non-empty list of Instrument"),
    (dict(instruments=["BTCUSDT"]), "non-empty list of Instrument"),
    (dict(profile="nope"), "unknown profile 'nope'"),
    (dict(profile=3), "profile must be"),
    (dict(options={}), "options must be a RiskOptions"),
    (dict(liquidation=1), "liquidation must be a LiquidationConfig"),
    (dict(snapshot_every=-1), "snapshot_every"),
    (dict(instruments=[Instrument.linear("BTCUSDT", funding=FundingParams(interval_ns=3600 * 10**9))]),
     "funding rates are quoted per 3600000000000 ns but binance settles every 28800000000000 ns"),
])
def test_the_exchange_constructor_refuses_bad_configuration_with_input_error(arguments, match):
    arguments = {"instruments": [make_instrument()], **arguments}
    with pytest.raises(InputError, match=match):
        Exchange(**arguments)
    assert Exchange({"x": make_instrument()}.values()).instruments  # any iterable of instruments will do
