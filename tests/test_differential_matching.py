"""Differential tests: the compiled MatchingEngine against the pure-Python reference (docs/matching.md).

Seeded random command streams over a TINY price range (a dozen ticks, so levels collide and queues form)
and few accounts (so self-trade prevention triggers) exercise every command kind: places of every
side / type / TIF / STP mode, reduce-only, GTD expiries, invalid values of every field (every reject
code of the contract), cancels of live, dead, foreign and unknown ids, amends, cancel-alls, mark changes
(including marks far away and huge ones, for the band and 128-bit paths) and time steps. After every
command the return value, the event rows and ``canonical_state()`` must be equal and both engines must
pass ``check_invariants()``.

A failing seed is a regression case: add it to ``REGRESSION_SEEDS`` with a note.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import COMPILED, needs_compiled
from exchange.commands import COMMAND_DTYPE, COMMAND_FIELDS
from exchange.enums import CommandKind, OrderType, Side, STPMode, TimeInForce
from exchange.orders.matching import MatchingEngine as ReferenceEngine, apply_row
from exchange.spec import Instrument

if COMPILED:
    from exchange.orders._matching import MatchingEngine as CompiledEngine

pytestmark = needs_compiled

SEEDS = list(range(24))
REGRESSION_SEEDS: list[int] = []
N_COMMANDS = 2_000

BASE_TICKS = 100  # the stream's prices sit around 100 ticks (1.00)


def tiny_instrument(variant: int) -> Instrument:
    """Instruments whose filters all bind inside the stream's price range (96..106 ticks).

    variant 0: lot 1, K = 10⁶, exact fees, maker rebate; variant 1: lot 0.001, K = 1000, fees that do not
    divide (ceil rounding of fees and rebates is exercised), a distinct max market quantity.
    """
    if variant == 0:
        return Instrument.linear(
            "TINYUSDT", tick_size="0.01", lot_size="1", min_qty="1", max_qty="40", max_market_qty="25",
            min_price="0.96", max_price="1.06", min_notional="3", band_up="1.03", band_down="0.97",
            maker_fee="-0.0001", taker_fee="0.0004",
        )
    return Instrument.linear(
        "ODDUSDT", tick_size="0.01", lot_size="0.001", min_qty="0.002", max_qty="0.04",
        max_market_qty="0.03", min_price="0.96", max_price="1.06", min_notional="0.003",
        band_up="1.02", band_down="0.98", maker_fee="-0.00007", taker_fee="0.00033",
    )


def random_commands(seed: int, n: int = N_COMMANDS, n_accounts: int = 3) -> np.ndarray:
    """A seeded stream of ``n`` COMMAND_DTYPE rows (see the module docstring). Independent of any engine's
    state: ids are drawn from what the stream placed, so some are live, some filled or canceled."""
    rng = random.Random(seed)
    rows = np.zeros(n, dtype=COMMAND_DTYPE)
    placed: list[tuple[int, int, int, int]] = []  # (order_id, account_id, price, qty) of each place, newest last
    next_id = 1
    now = 0

    def recent() -> tuple[int, int, int, int]:
        return placed[-rng.randint(1, min(len(placed), 40))]

    def weird(valid):
        return rng.choice([0, -1, 3, 7, 99]) if rng.random() < 0.02 else valid

    for i in range(n):
        row = rows[i]
        u = rng.random()
        if u < 0.55 or not placed:  # place
            row["kind"] = CommandKind.PLACE
            if placed and rng.random() < 0.04:
                order_id = recent()[0]  # duplicate if still resting, a legitimate reuse otherwise
            elif rng.random() < 0.01:
                order_id = rng.choice([0, -5])
            else:
                order_id, next_id = next_id, next_id + 1
            account_id = -1 if rng.random() < 0.005 else rng.randrange(n_accounts)
            order_type = OrderType.MARKET if rng.random() < 0.15 else OrderType.LIMIT
            order_type = rng.choice([0, 3, 7]) if rng.random() < 0.01 else order_type
            side = weird(rng.choice([Side.BUY, Side.SELL]))
            tif = weird(rng.choices(list(TimeInForce), weights=[40, 15, 10, 15, 20])[0])
            stp = weird(rng.choices(list(STPMode), weights=[40, 20, 20, 20])[0])
            if order_type == OrderType.MARKET:
                price = 0 if rng.random() < 0.97 else BASE_TICKS
            else:
                price = BASE_TICKS + rng.randint(-5, 5)
                if rng.random() < 0.03:
                    price = rng.choice([0, -3, 90, 95, 107, 120])
            qty = rng.randint(1, 12) if rng.random() < 0.9 else rng.choice([0, -2, 26, 35, 41, 60])
            expire = now + rng.randint(-3, 60) if tif == TimeInForce.GTD else rng.choice([0, 0, 0, 12345])
            reduce_only = 1 if rng.random() < 0.1 else 0
            row["order_id"], row["account_id"], row["side"], row["order_type"] = order_id, account_id, side, order_type
            row["tif"], row["price_ticks"], row["qty_lots"], row["stp"] = tif, price, qty, stp
            row["reduce_only"], row["expire_ns"] = reduce_only, expire
            if order_id > 0:
                placed.append((order_id, account_id, price, qty))
        elif u < 0.72:  # cancel
            row["kind"] = CommandKind.CANCEL
            order_id, account_id, _, _ = recent()
            v = rng.random()
            if v < 0.1:
                account_id = (account_id + 1) % n_accounts  # someone else's order
            elif v < 0.15:
                order_id = rng.choice([0, -1, next_id + 1000, 2**62])
            row["order_id"], row["account_id"] = order_id, account_id
        elif u < 0.86:  # amend
            row["kind"] = CommandKind.AMEND
            order_id, account_id, price, qty = recent()
            if rng.random() < 0.05:
                account_id = (account_id + 1) % n_accounts
            elif rng.random() < 0.03:
                order_id = next_id + 500
            if rng.random() < 0.9:  # else unchanged: -5027 when the order is untouched
                price = BASE_TICKS + rng.randint(-5, 5) if rng.random() < 0.97 else rng.choice([0, 90, 120])
                qty = rng.randint(1, 14) if rng.random() < 0.95 else rng.choice([0, -1, 50])
            row["order_id"], row["account_id"], row["price_ticks"], row["qty_lots"] = order_id, account_id, price, qty
        elif u < 0.89:  # cancel-all
            row["kind"] = CommandKind.CANCEL_ALL
            row["account_id"] = rng.randrange(n_accounts + 1)  # the last account never trades
        elif u < 0.945:  # mark
            row["kind"] = CommandKind.SET_MARK
            v = rng.random()
            if v < 0.9:
                row["price_ticks"] = BASE_TICKS + rng.randint(-4, 4)
            elif v < 0.95:
                row["price_ticks"] = rng.choice([1, 50, 200])
            else:
                row["price_ticks"] = rng.choice([10**12, 2**62, 2**63 - 1])  # 128-bit band and notional paths
        else:  # time
            row["kind"] = CommandKind.SET_TIME
            now += rng.choice([0, 1, 5, 20])
            row["time_ns"] = now
    return rows


def _queries(engine) -> tuple:
    return (engine.best_bid(), engine.best_ask(), engine.last_price(), engine.mark(), engine.now(),
            engine.order_count(), engine.depth(4), [engine.orders_of(a) for a in range(4)],
            [engine.order(i) for i in (1, 2, 3, 5, 8, 13, 21)])


def run_differential(seed: int, variant: int) -> dict:
    """Feed one stream to both engines, comparing after every command. Returns coverage counters."""
    instrument = tiny_instrument(variant)
    reference, compiled = ReferenceEngine(instrument), CompiledEngine(instrument)
    stream = random_commands(seed)
    seen_codes: dict[tuple[int, int], int] = {}
    for i, row in enumerate(stream.tolist()):
        expected = apply_row(reference, row)
        got = apply_row(compiled, row)
        context = f"seed {seed} variant {variant} command {i}: {dict(zip(COMMAND_FIELDS, row))}"
        assert got == expected, f"{context}: result {got} != reference {expected}"
        ref_events, core_events = reference.take_events(), compiled.take_events()
        assert core_events.dtype == ref_events.dtype
        assert core_events.tolist() == ref_events.tolist(), f"{context}: events differ"
        assert compiled.canonical_state() == reference.canonical_state(), f"{context}: state differs"
        reference.check_invariants()
        compiled.check_invariants()
        for event in ref_events.tolist():
            seen_codes[(event[0], event[7])] = seen_codes.get((event[0], event[7]), 0) + 1
        if i % 97 == 0:
            assert _queries(compiled) == _queries(reference), f"{context}: queries differ"
    assert _queries(compiled) == _queries(reference)
    return seen_codes


@pytest.mark.parametrize("seed", SEEDS + REGRESSION_SEEDS)
def test_compiled_matches_reference_after_every_command(seed):
    run_differential(seed, variant=seed % 2)


def test_streams_cover_every_event_and_reject():
    """The streams reach every reject code and cancel reason of the contract (else they test too little)."""
    seen: dict[tuple[int, int], int] = {}
    for seed in (0, 1, 2, 3):
        for key, count in run_differential(seed, variant=seed % 2).items():
            seen[key] = seen.get(key, 0) + count
    rejects = {code for kind, code in seen if kind == 2}
    assert rejects >= {-1102, -1115, -1116, -1117, -2011, -2013, -4001, -4002, -4003, -4004, -4005, -4013,
                       -4015, -4016, -4024, -4108, -4164, -5021, -5022, -5027, -5040}, sorted(rejects)
    reasons = {code for kind, code in seen if kind == 4}
    assert reasons >= {1, 2, 3, 4, 5, 6, 7}, sorted(reasons)
    assert {kind for kind, _ in seen} >= {1, 2, 3, 4, 5}
    assert {code for kind, code in seen if kind == 5} == {0, 1}  # AMENDED with and without priority kept
