"""The compiled twin of the waterfall's per-step glue (``exchange/liquidation/_waterfall.pyx``) against the
reference methods it replaces.

- Method by method: on the states of a crash and recovery (200 accounts with positions spanning several
  brackets, isolated and cross, two symbols),
  the twins of the pure per-step queries (``Liquidator._kept_lots``, ``_bankruptcy_ticks``,
  ``InsuranceFunds.equity``) answer what the reference methods answer on the same compiled exchange, for
  every open position at every mark.
- Whole runs: seeded command streams (resting and conditional orders, so liquidation cancels them) under every
  profile and under tight fund limits (partial takeovers, then ADL) give the same events, command by command,
  and the same state hash on both implementations, and the streams do liquidate, take over and cancel.
- The binding: the compiled Liquidator and InsuranceFunds run the twins, the reference does not.
"""
import dataclasses
import gc
import random

import pytest

from exchange import (
    ADLFill, Exchange, FundInsurance, InsuranceFundChanged, LiquidationEnded, LiquidationFill, LiquidationStarted,
    OrderCanceled, SetMarkPrice,
)
from exchange.accounts.ledger import Position
from exchange.enums import MarginMode, PositionSide
from exchange.accounts.pretrade import CROSS
from exchange.enums import CancelReason
from exchange.liquidation.insurance import FundLimits, InsuranceFunds
from exchange.liquidation.waterfall import LiquidationConfig, Liquidator
from exchange.profiles import PROFILES
from tests.conftest import COMPILED, make_instrument
from tests.streams import liquidation_commands, random_commands
from tests.test_adl_queue import OTHER, SYMBOL, USDT

needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled core not active")

FUNDS = {"default": FundLimits(), "tight": FundLimits(max_position_lots=2, min_equity_units=10**8)}


def big_crowd(profile: str, n: int, seed: int) -> Exchange:
    """A compiled exchange (two symbols, mark 100.00) whose ``n`` accounts hold positions of 10,000 to 3,000,000
    USDT (so many span several brackets and can be reduced to a lower one), isolated or cross, 2-20x, margined
    at 1-1.5 × their initial margin; account 0 holds the opposite of every position. Set up in the ledger."""
    rng = random.Random(seed)
    ex = Exchange([make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)], profile=profile,
                  implementation="cython")
    ledger, k = ex.ledger, ex.instruments[SYMBOL].k_units
    for symbol in (SYMBOL, OTHER):
        ex.apply(SetMarkPrice(symbol, 10_000))
        ex.apply(FundInsurance(symbol, 100_000 * USDT))
    maker, net = ledger.open(0), {SYMBOL: [0, 0], OTHER: [0, 0]}
    for account_id in range(1, n + 1):
        account = ledger.open(account_id)
        for symbol in (SYMBOL, OTHER) if rng.random() < 0.5 else (SYMBOL,):
            isolated, leverage, price = rng.random() < 0.4, rng.randint(2, 20), 10_000 + rng.randint(-100, 100)
            lots = rng.choice((-1, 1)) * rng.randint(100, 30_000)
            margin = abs(lots) * price * k // leverage * rng.randint(100, 150) // 100
            ledger.set_settings(account, symbol, MarginMode.ISOLATED if isolated else MarginMode.CROSS, leverage)
            ledger.store(account, symbol, PositionSide.BOTH, Position(lots, lots * price, margin if isolated else 0))
            account.wallet_units += 0 if isolated else margin
            ledger.deposits_units += margin
            net[symbol][0] += lots
            net[symbol][1] += lots * price
    for symbol, (lots, cost) in net.items():
        ledger.set_settings(maker, symbol, MarginMode.CROSS, 1)
        ledger.store(maker, symbol, PositionSide.BOTH, Position(-lots, -cost, 0))
    maker.wallet_units += 10**12 * USDT
    ledger.deposits_units += 10**12 * USDT
    ex.check_invariants()
    return ex


def _parts(ex: Exchange):
    """``(account, part, symbol, side, position)`` of every open position, by account and key."""
    for account_id in sorted(ex.ledger.accounts):
        account = ex.ledger.accounts[account_id]
        for (symbol, side), position in sorted(account.positions.items()):
            part = symbol if ex.risk.is_isolated(account, symbol) else CROSS
            yield account, part, symbol, side, position


@needs_compiled
@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_query_twins_answer_what_the_reference_methods_answer(profile):
    """The marks walk down 40 % and back; the liquidation sweep runs as usual in between."""
    ex = big_crowd(profile, 200, seed=31)
    liq, funds = ex.liquidation, ex.liquidation.funds
    kept = compared = 0
    for mark in list(range(9_800, 5_900, -300)) + list(range(6_000, 10_001, 500)):
        for symbol in (SYMBOL, OTHER):
            ex.apply(SetMarkPrice(symbol, mark))
        for account, part, symbol, side, position in _parts(ex):
            want = Liquidator._kept_lots(liq, account, part, symbol, side, position)
            assert liq._kept_lots(account, part, symbol, side, position) == want, (account.account_id, symbol, side)
            kept += want > 0
            assert liq._bankruptcy_ticks(account, part, symbol, side, position) == \
                Liquidator._bankruptcy_ticks(liq, account, part, symbol, side, position), (account.account_id, symbol, side)
            compared += 1
        for symbol in (SYMBOL, OTHER):
            assert funds.equity(symbol) == InsuranceFunds.equity(funds, symbol)
    assert compared > 1_000
    assert kept > 100 or len(ex.risk.brackets[SYMBOL]) == 1  # many bracket reductions (dYdX: one bracket, none)


def _run(commands, profile: str, implementation: str, fund: FundLimits):
    ex = Exchange([make_instrument()], implementation=implementation, profile=profile,
                  liquidation=LiquidationConfig(fund=fund))
    events = [ex.apply(command) for command in commands]
    ex.check_invariants()
    return events, ex.state_hash(), ex.liquidation.funds.history


STREAMS = [("liquidation", seed) for seed in (2, 13, 41)] + [("random", seed) for seed in (7, 19)]


@needs_compiled
@pytest.mark.parametrize("fund", list(FUNDS))
@pytest.mark.parametrize("profile", list(PROFILES))
def test_streams_give_the_reference_events_state_and_fund_history(profile, fund):
    seen = {LiquidationStarted: 0, LiquidationFill: 0, OrderCanceled: 0}
    for kind, seed in STREAMS:
        commands = list(liquidation_commands(seed, 1_200) if kind == "liquidation" else random_commands(seed, 1_200))
        reference, compiled = (_run(commands, profile, i, FUNDS[fund]) for i in ("python", "cython"))
        for i, (want, got) in enumerate(zip(reference[0], compiled[0])):
            assert got == want, f"{kind}-{seed} command #{i} {commands[i]!r}"
        assert compiled[1:] == reference[1:]
        for events in reference[0]:
            for event in events:
                if type(event) in seen and (type(event) is not OrderCanceled or event.reason == CancelReason.LIQUIDATION):
                    seen[type(event)] += 1
    assert all(seen.values()), seen  # liquidations, book or fund fills, and orders canceled by liquidation


@needs_compiled
def test_the_compiled_liquidator_binds_the_twins_and_the_reference_does_not():
    from exchange._impl import waterfall_kernel

    compiled, reference = (Exchange([make_instrument()], implementation=i) for i in ("cython", "python"))
    twinned = ("_liquidate", "_step", "_book", "_takeover", "_deleverage", "_transfer", "cancel_orders", "_kept_lots",
               "_bankruptcy_ticks")
    for name in twinned:
        assert type(getattr(compiled.liquidation, name).__self__) is waterfall_kernel.Steps, name
    assert type(compiled.liquidation.funds.sync.__self__) is waterfall_kernel.Funds
    assert type(compiled.liquidation.funds.equity.__self__) is waterfall_kernel.Funds
    assert not set(twinned) & vars(reference.liquidation).keys()
    assert not {"sync", "equity"} & vars(reference.liquidation.funds).keys()


@needs_compiled
def test_the_compiled_sweep_hands_out_its_event_records_untracked():
    """Event records hold integers, strings and enums (no reference cycle); the compiled liquidation stage takes
    its records out of the cycle collector, the sweep's as it collects them (``exchange/_records.pxd``:
    ``untrack_all``), so a long sweep does not age thousands of them into the oldest generation. (The
    reference leaves them tracked: nothing but the collector's work depends on it.)"""
    only_the_stage = (LiquidationStarted, LiquidationFill, LiquidationEnded, ADLFill, InsuranceFundChanged)
    ex = big_crowd("binance", 200, seed=31)
    swept = 0
    for mark in range(9_800, 5_900, -300):
        for symbol in (SYMBOL, OTHER):
            events = [e for e in ex.apply(SetMarkPrice(symbol, mark)) if type(e) in only_the_stage]
            assert [e for e in events if gc.is_tracked(e)] == []
            swept += len(events)
    assert swept > 500
    ex.check_invariants()
