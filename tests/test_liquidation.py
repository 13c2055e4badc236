"""The liquidation waterfall (exchange.liquidation.waterfall): order cancellation, partial liquidation by bracket
reduction, the liquidation order and its fee, liquidation mode (-2023 / -4087), and rules §9 after every
command of long seeded runs through every profile (1,000,000 commands in all), with determinism across
implementations. Expected values are derived by hand in the comments.

Coin: tick 0.01, lot 1, K = 10⁶ units per tick·lot (1 lot at 100.00 = 100 USDT)."""
import dataclasses
import io

import pytest

from exchange import (
    CancelReason, Client, Exchange, FundLimits, Instrument, LiquidationConfig, LiquidationEnded, LiquidationFill,
    LiquidationStarted, OrderCanceled, Rejected, RejectCode, RiskOptions, SetMarkPrice, dump_journal, load_journal,
    replay,
)
from exchange.profiles import PROFILES, InsuranceScope, LossRule
from tests.checked import CheckedExchange, of, rejected
from tests.conftest import COMPILED, make_instrument
from tests.streams import liquidation_commands

COIN = "AAAUSDT"


def coin(**overrides) -> Instrument:
    params = dict(lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0", max_qty="100000", max_price="100000")
    params.update(overrides)
    return Instrument.linear(COIN, **params)


def mark(ex, price: str) -> list:
    return ex.apply(SetMarkPrice(COIN, ex.instruments[COIN].price_to_ticks(price)))


def opened(wallet: str, lots: str, instrument=None, leverage=20, profile="binance", bids=()):
    """Account 1 (``wallet``) cross long ``lots`` at 100 from maker 2, who then bids ``bids``."""
    ex = CheckedExchange([instrument or coin()], profile=profile)
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit(wallet)
    maker.deposit("10000000")
    mark(ex, "100")
    a.set_leverage(COIN, leverage)
    maker.set_leverage(COIN, 5)
    maker.sell(COIN, lots, "100")
    a.buy(COIN, lots, "100")
    for qty, price in bids:
        maker.buy(COIN, qty, price)
    return ex, a, maker


def test_the_accounts_orders_are_canceled_first_with_reason_liquidation():
    ex, a, _ = opened("600", "100")  # 10,000 at 20x: IM 500
    a.sell(COIN, "1", "120")
    events = mark(ex, "94.10")  # 600 − 100 × 5.90 = 10 ≤ MM 9,410 × 0.4 % = 37.64
    started = of(events, LiquidationStarted)
    canceled = [e for e in of(events, OrderCanceled) if e.account_id == 1 and e.price_ticks == 12_000]
    assert [e.account_id for e in started] == [1] and [e.reason for e in canceled] == [CancelReason.LIQUIDATION]
    assert events.index(started[0]) < events.index(canceled[0])


TWO_BRACKETS = (("10000", "0.01", 50), ("1000000", "0.05", 10))  # cum of the second: 10,000 × 4 % = 400


def test_partial_liquidation_reduces_the_position_to_the_lower_bracket_only():
    # wallet 2,000; long 150 at 100 at 10x. Balance 2,000 + 150 (P − 100); MM 150 P × 5 % − 400 above 66.67.
    ex, a, _ = opened("2000", "150", coin(brackets=TWO_BRACKETS, max_leverage=50, liquidation_fee="0"), leverage=10,
                      bids=[("200", "87")])
    assert not of(mark(ex, "89"), LiquidationStarted)  # 350 > 667.5 − 400 = 267.5
    events = mark(ex, "88")  # 200 ≤ 660 − 400 = 260
    # keep ≤ 10,000 / 88 -> 113 lots (9,944): MM 99.44 < 200 -> only 37 lots are liquidated, at BP
    # 2,000 + 150 (P − 100) = 0 -> 86.66 (down); the bid at 87 is better
    (fill,) = of(events, LiquidationFill)
    assert (fill.qty_lots, fill.price_ticks, fill.bankruptcy_price_ticks) == (37, 8_700, 8_666)
    assert ex.position(1, COIN).lots == 113
    # balance after: 2,000 − 37 × 13 − 113 × 12 = 163; MM 99.44 -> 61 % < 80 %: liquidation mode ends at once
    assert of(events, LiquidationEnded) == [LiquidationEnded(1)] and not ex.in_liquidation(1)


def test_liquidation_mode_rejects_opening_orders_with_2023_and_amends_with_4087():
    ex = CheckedExchange([coin(brackets=TWO_BRACKETS, max_leverage=50, liquidation_fee="0"), coin_b()],
                         options=RiskOptions(margin_call_e8=50_000_000))
    a, maker = Client(ex, 1), Client(ex, 2)
    a.deposit("2000")
    maker.deposit("10000000")
    mark(ex, "100")
    a.set_leverage(COIN, 10)
    maker.set_leverage(COIN, 5)
    maker.sell(COIN, "150", "100")
    a.buy(COIN, "150", "100")
    a.set_margin_mode("BBBUSDT", "ISOLATED")
    ex.apply(SetMarkPrice("BBBUSDT", 10_000))
    (accepted,) = [e for e in a.buy("BBBUSDT", "1", "90")]  # an isolated opening order elsewhere
    events = mark(ex, "88")  # as above, but no bids: the 37 lots go to ADL at 86.66 against the maker
    # wallet 2,000 − 37 × 13.34 = 1,506.42; balance at 88: 1,506.42 − 1,356 = 150.42; MM 99.44 -> 66 % ≥ 50 %
    assert ex.position(1, COIN).lots == 113 and ex.in_liquidation(1)
    assert ex.open_orders(1, "BBBUSDT") == [accepted.order_id]  # the isolated symbol's order stays
    assert rejected(a.buy(COIN, "1", "80")).code == RejectCode.USER_IN_LIQUIDATION
    assert rejected(a.amend("BBBUSDT", accepted.order_id, "91", "1")).code == RejectCode.REDUCE_ONLY_ORDER_PERMISSION
    assert of(a.sell(COIN, "1", "200", reduce_only=True), Rejected) == []  # reduce-only is allowed
    assert of(a.deposit("100000"), LiquidationEnded) == [LiquidationEnded(1)]  # safe again
    assert of(a.buy(COIN, "1", "80"), Rejected) == []


def coin_b() -> Instrument:
    return Instrument.linear("BBBUSDT", lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0")


# -- long seeded runs: rules §9 after every command -------------------------------------------------------
SOCIALIZED_SHARED = dataclasses.replace(PROFILES["binance"], name="binance-socialized",
                                        loss_rule=LossRule.SOCIALIZED, insurance_scope=InsuranceScope.SHARED)
RUN_PROFILES = [*PROFILES.values(), SOCIALIZED_SHARED]
LIMITS = [FundLimits(), FundLimits(max_position_lots=2, unwind_e8=5_000_000)]  # the second forces ADL
SEEDS_PER_CASE = 10
COMMANDS_PER_RUN = 8_400  # 6 profiles × 2 limits × 10 seeds × 8,400 = 1,008,000 commands per test session


class Invariant(Exchange):
    """An Exchange that checks every rules §9 invariant after each command."""

    def apply(self, command) -> list:
        events = super().apply(command)
        self.check_invariants()
        return events


@pytest.mark.parametrize("limits", LIMITS, ids=["unlimited-fund", "small-fund"])
@pytest.mark.parametrize("profile", RUN_PROFILES, ids=[p.name for p in RUN_PROFILES])
def test_conservation_after_every_command_through_liquidations_takeovers_and_adl(profile, limits):
    counts = {"LiquidationStarted": 0, "ADLFill": 0, "takeover": 0}
    instruments = [make_instrument(), dataclasses.replace(make_instrument(), symbol="XYZUSDT")]
    for seed in range(SEEDS_PER_CASE):
        ex = Invariant(instruments, profile=profile, liquidation=LiquidationConfig(fund=limits))
        symbols = ("TESTUSDT", "XYZUSDT") if seed % 2 else ("TESTUSDT",)
        for command in liquidation_commands(seed, COMMANDS_PER_RUN, symbols):
            for event in ex.apply(command):
                name = type(event).__name__
                if name in counts:
                    counts[name] += 1
                elif name == "LiquidationFill" and event.order_id == 0:
                    counts["takeover"] += 1
        assert not ex.liquidatable()
    assert counts["LiquidationStarted"] > 3 * SEEDS_PER_CASE
    assert counts["ADLFill"] + counts["takeover"] > 0  # which one depends on the profile's backstop


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", RUN_PROFILES, ids=[p.name for p in RUN_PROFILES])
def test_both_implementations_produce_the_same_events_and_state_hashes(profile):
    commands = list(liquidation_commands(77, 3_000))
    runs = []
    for implementation in ("python", "cython"):
        ex = Exchange([make_instrument()], implementation=implementation, profile=profile,
                      liquidation=LiquidationConfig(fund=LIMITS[1]))
        runs.append(([ex.apply(c) for c in commands], ex.state_hash(), ex.insurance_history()))
    assert runs[0] == runs[1]


def test_a_journal_with_liquidations_replays_to_the_same_state_hash_and_events():
    ex = Exchange([make_instrument()])
    events = [e for command in liquidation_commands(5, 3_000) for e in ex.apply(command)]
    assert any(isinstance(e, LiquidationStarted) for e in events)
    buffer = io.BytesIO()
    dump_journal(ex.instruments.values(), ex.journal, buffer)
    buffer.seek(0)
    instruments, commands = load_journal(buffer)
    replayed, replay_events = replay(instruments, commands)
    assert replayed.state_hash() == ex.state_hash() and replay_events == events
