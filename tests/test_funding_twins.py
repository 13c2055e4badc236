"""The compiled funding payments (``exchange/funding/_settle.pyx``) against the reference (``exchange.funding.stage.pay``).

- Direct: seeded ledgers (one-way and hedge accounts, cross and isolated settings, positions of both signs in two
  symbols, accounts of the other symbol only, an insurance fund holding a position), each paid by both at per-lot
  deltas of both signs, zero, tiny (payments that round to nothing for some), and past int64 (the Python-integer
  path): the same events in the same order, the same touched accounts and sums, and the same ledger after.
  The expected payment of one position is written out here (``ceil(lots × delta / 10⁸)``).
- Through the exchange: funding settlements with liquidations between them, under every profile, give the same
  events, command by command, and the same state hash on both implementations, and money is conserved.
- The binding: a compiled exchange's funding stage pays with the twin, the reference's with ``pay``.
"""
import random

import pytest

from exchange import AdvanceTime, Deposit, Exchange, PlaceOrder, SetIndexPrice, SetMarkPrice, _impl
from exchange.accounts.ledger import Ledger, Position
from exchange.commands import SetLeverage, SetMarginMode, SetPositionMode
from exchange.enums import MarginMode, PositionMode, PositionSide, Side, TimeInForce
from exchange.events import BalanceChanged, FundingPaid, PositionChanged
from exchange.funding import stage
from exchange.profiles import PROFILES
from exchange.spec import Instrument
from tests.conftest import COMPILED

SYMBOLS = ("AAAUSDT", "BBBUSDT")
E8 = 10**8


def _ledger(seed: int, compact) -> Ledger:
    """A seeded ledger (module docstring); ``compact``: the compiled ledger's positions kernel, or None."""
    rng = random.Random(seed)
    ledger = Ledger({s: 20 for s in SYMBOLS}, compact_positions=compact)
    for account_id in rng.sample(range(1, 10_000), 60):
        account = ledger.open(account_id)
        account.wallet_units = rng.randint(0, 10**12)
        if rng.random() < 0.3:
            account.position_mode = PositionMode.HEDGE
        for symbol in SYMBOLS:
            if rng.random() < 0.3:
                continue
            isolated = rng.random() < 0.4
            ledger.set_settings(account, symbol, MarginMode.ISOLATED if isolated else MarginMode.CROSS, rng.randint(1, 20))
            sides = ([PositionSide.LONG, PositionSide.SHORT] if account.position_mode == PositionMode.HEDGE
                     else [PositionSide.BOTH])
            for side in rng.sample(sides, rng.randint(1, len(sides))):
                lots = rng.choice([1, 3, 7, 10**6, 10**12]) * (1 if side == PositionSide.LONG else
                                                               -1 if side == PositionSide.SHORT else rng.choice((1, -1)))
                ledger.store(account, symbol, side, Position(lots, lots * 1000, rng.randint(1, 10**9) if isolated else 0))
    fund = ledger.fund_account(SYMBOLS[0])  # a fund holding a taken-over position pays like any account
    ledger.store(fund, SYMBOLS[0], PositionSide.BOTH, Position(-5, -5000, 0))
    return ledger


def _state(ledger: Ledger) -> list:
    return sorted(account.as_state() for account in ledger.accounts.values())


DELTAS = [0, 1, -1, 37, -37, 123_456_789, -987_654_321, 10**14, -(10**14), 2**62, -(2**63), 10**30, -(10**30)]


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("delta", DELTAS)
def test_the_compiled_payments_are_the_references(seed, delta):
    reference, compiled = _ledger(seed, None), _ledger(seed, _impl.positions_kernel)
    assert _state(reference) == _state(compiled)
    for symbol in SYMBOLS:
        expected = stage.pay(reference, symbol, delta)
        got = _impl.funding_kernel.pay(compiled, symbol, delta)
        assert got == expected
        assert _state(compiled) == _state(reference)
        events, touched, paid, received = got
        paying = [e for e in events if isinstance(e, FundingPaid)]
        for event in paying:  # the payment of each position, written out: ceil(lots × delta / 10⁸)
            exact = event.lots * delta
            assert event.amount_units == exact // E8 + (exact % E8 != 0)
            assert event.amount_units != 0
        assert paid == sum(e.amount_units for e in paying if e.amount_units > 0)
        assert received == -sum(e.amount_units for e in paying if e.amount_units < 0)
        assert touched == {e.account_id for e in paying}
        assert [e.account_id for e in paying] == sorted(e.account_id for e in paying)  # by account id
        if delta:
            assert len(paying) > 10  # (the seeded ledgers hold positions of every kind in both symbols)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_compiled_payments_move_the_wallet_or_the_isolated_margin():
    ledger = Ledger({s: 20 for s in SYMBOLS}, compact_positions=_impl.positions_kernel)
    cross, isolated, hedge = ledger.open(1), ledger.open(2), ledger.open(3)
    for account in (cross, isolated, hedge):
        account.wallet_units = 1_000
    ledger.set_settings(isolated, SYMBOLS[0], MarginMode.ISOLATED, 10)
    hedge.position_mode = PositionMode.HEDGE
    ledger.store(cross, SYMBOLS[0], PositionSide.BOTH, Position(3, 3000, 0))
    ledger.store(isolated, SYMBOLS[0], PositionSide.BOTH, Position(-2, -2000, 500))
    ledger.store(hedge, SYMBOLS[0], PositionSide.SHORT, Position(-1, -1000, 0))
    ledger.store(hedge, SYMBOLS[0], PositionSide.LONG, Position(4, 4000, 0))
    events, touched, paid, received = _impl.funding_kernel.pay(ledger, SYMBOLS[0], 50 * E8 + 1)
    # per lot 50.00000001 units: 3 lots pay ceil(150.00000003) = 151; -2 lots receive 100 (toward zero); hedge LONG
    # (4 lots) pays 201 before its SHORT (-1 lot) receives 50
    assert [(type(e), e.account_id) for e in events] == [
        (FundingPaid, 1), (BalanceChanged, 1), (FundingPaid, 2), (PositionChanged, 2),
        (FundingPaid, 3), (BalanceChanged, 3), (FundingPaid, 3), (BalanceChanged, 3)]
    assert [e.amount_units for e in events if isinstance(e, FundingPaid)] == [151, -100, 201, -50]
    assert (cross.wallet_units, isolated.wallet_units, hedge.wallet_units) == (849, 1_000, 849)
    assert isolated.positions[(SYMBOLS[0], PositionSide.BOTH)].isolated_margin_units == 600
    assert (touched, paid, received) == ({1, 2, 3}, 352, 150)


def _instruments() -> list[Instrument]:
    return [Instrument.linear(s, tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000", max_price="100000",
                              min_notional="0", maker_fee="0.0002", taker_fee="0.0005") for s in SYMBOLS]


def _population(profile: str) -> list:
    """Commands: accounts of every margin setting trading two symbols, then marks, indexes away from them and
    funding boundaries crossed, with marks moving between them so that some accounts liquidate."""
    rng = random.Random(profile)
    commands = [SetMarkPrice(s, 10_000) for s in SYMBOLS]
    for account_id in range(1, 41):
        commands.append(Deposit(account_id, rng.randint(2, 40) * 10**11))
        if account_id % 5 == 0:
            commands.append(SetPositionMode(account_id, PositionMode.HEDGE))
        for symbol in SYMBOLS:
            commands.append(SetLeverage(account_id, symbol, rng.randint(5, 20)))
            if account_id % 3 == 0:
                commands.append(SetMarginMode(account_id, symbol, MarginMode.ISOLATED))
    hedged = {a for a in range(1, 41) if a % 5 == 0}
    for i in range(400):
        symbol = rng.choice(SYMBOLS)
        maker, taker = rng.sample(range(1, 41), 2)
        price = 10_000 + rng.randint(-30, 30)
        lots = rng.randint(1, 40)
        side = rng.choice((Side.BUY, Side.SELL))
        other = Side.SELL if side == Side.BUY else Side.BUY
        commands.append(PlaceOrder(maker, symbol, side, lots, price,
                                   position_side=_side(side) if maker in hedged else PositionSide.BOTH))
        commands.append(PlaceOrder(taker, symbol, other, lots, price, tif=TimeInForce.IOC,
                                   position_side=_side(other) if taker in hedged else PositionSide.BOTH))
    now, interval = 0, PROFILES[profile].funding_interval_ns
    for step in range(6):
        for symbol in SYMBOLS:
            commands.append(SetIndexPrice(symbol, 10_000 + rng.choice((-1, 1)) * rng.randint(20, 200)))
        now += interval
        commands.append(AdvanceTime(now))
        for symbol in SYMBOLS:
            commands.append(SetMarkPrice(symbol, 10_000 + rng.randint(-700, 700)))
    return commands


def _side(order_side: Side) -> PositionSide:
    return PositionSide.LONG if order_side == Side.BUY else PositionSide.SHORT


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
def test_settlements_are_the_same_on_both_implementations(profile):
    instruments = _instruments()
    runs = [Exchange(instruments, profile=profile, implementation=impl) for impl in ("python", "cython")]
    paid = 0
    for command in _population(profile):
        events = [ex.apply(command) for ex in runs]
        assert events[0] == events[1], command
        paid += sum(isinstance(e, FundingPaid) for e in events[1])
        runs[1].check_invariants()  # rules §9: money conserved, sums and holds as recomputed
    assert runs[0].state_hash() == runs[1].state_hash()
    assert paid > 100  # (the stream settles funding for every holder, six times)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
def test_the_compiled_exchange_pays_funding_with_the_twin():
    instruments = _instruments()
    assert Exchange(instruments, implementation="cython").funding._pay is _impl.funding_kernel.pay
    assert Exchange(instruments, implementation="python").funding._pay is stage.pay
