"""Agents driven through run_agents on a crash path (docs/agents.md). Runs on the active implementation."""
from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest

from exchange import Exchange, FundInsurance, Instrument
from exchange.commands import AdvanceTime, SetIndexPrice
from exchange.enums import BalanceReason, MarginMode, OrderType
from exchange.events import BalanceChanged, MarginModeChanged, OrderAccepted
from exchange.profiles import RiskOptions
from exchange.sim import crash_recovery_path
from exchange.sim import YEAR_NS
from exchange.sim.agents import (
    Agent, Arbitrageur, CrossPolicy, DynamicPolicy, HybridPolicy, IsolatedPolicy, LeveragedTrader,
    MarketMaker, MarketView, MomentumTaker, NoiseTaker, agent_rng, intention_schedule, run_agents,
)

M = 60 * 10**9
U = 10**8
SYMS = ["BTCUSDT", "ETHUSDT"]
PRE_NS, CRASH_NS, RECOVERY_NS = 20 * M, 30 * M, 30 * M
MAKER, ARB, NOISE1, NOISE2, MOMENTUM = 1, 2, 3, 4, 5
ISO, CROSS, HYBRID, DYNAMIC, ISO_TOPUP = 10, 11, 12, 13, 14
CAPITAL = 20_000 * U


def instruments():
    return [Instrument.linear("BTCUSDT", tick_size="0.1", lot_size="0.001"),
            Instrument.linear("ETHUSDT", tick_size="0.01", lot_size="0.01", min_qty="0.01")]


def scenario(seed: int = 1, *, allow_switch: bool = True):
    """A maker, an arbitrageur, noise and momentum takers and five leveraged traders (one schedule of
    intentions replayed under each policy) through a 30 % crash and a 20 % recovery on two symbols."""
    insts = instruments()
    path = crash_recovery_path(insts, ["50000", "3000"], seed=7, bar_ns=M, drop=0.3, crash_ns=CRASH_NS,
                               recovery=0.2, recovery_ns=RECOVERY_NS, pre_ns=PRE_NS, volatility=0.6)
    ex = Exchange(insts, options=RiskOptions(allow_mode_switch_with_position=allow_switch))
    for s in SYMS:
        ex.apply(FundInsurance(s, 1_000 * U))
    intents = intention_schedule(3, SYMS, start_ns=5 * M, end_ns=25 * M, count=4, leverages=(10, 20),
                                 long_prob=1.0, hold_ns=(40 * M, 60 * M))
    agents = [
        MarketMaker(MAKER, SYMS, capital_units=5_000_000 * U, lots=200, levels=5, half_spread_ticks=20,
                    spacing_ticks=20, skew_ticks_per_lot=0.01, widen_vol=1.5, pull_vol=3.0),
        Arbitrageur(ARB, SYMS, capital_units=1_000_000 * U),
        NoiseTaker(NOISE1, SYMS, capital_units=200_000 * U),
        NoiseTaker(NOISE2, SYMS, capital_units=200_000 * U, buy_prob=0.4),
        MomentumTaker(MOMENTUM, SYMS, capital_units=200_000 * U),
        LeveragedTrader(ISO, intents, IsolatedPolicy(), capital_units=CAPITAL,
                        take_profits=((5_000_000, 50_000_000), (10_000_000, 50_000_000))),
        LeveragedTrader(CROSS, intents, CrossPolicy(), capital_units=CAPITAL, reserve_units=5_000 * U,
                        topup_ratio_e8=1_500_000, topup_units=2_000 * U, stop_loss_e8=40_000_000),
        LeveragedTrader(HYBRID, intents, HybridPolicy(conviction_symbol="BTCUSDT"), capital_units=CAPITAL),
        LeveragedTrader(DYNAMIC, intents, DynamicPolicy(), capital_units=CAPITAL, cooldown_ns=5 * M,
                        max_reentries=1),
        LeveragedTrader(ISO_TOPUP, intents, IsolatedPolicy(), capital_units=CAPITAL, reserve_units=3_000 * U,
                        trailing_callback_e8=2_000_000, topup_ratio_e8=20_000_000, topup_units=1_000 * U),
    ]
    record = {"events": [], "steps": []}

    def on_step(view, events):
        record["events"].extend(events)
        record["steps"].append({
            "now": view.now_ns,
            "positions": {a: [(p.symbol, p.lots, p.margin_mode) for p in view.positions(a)] for a in (CROSS, HYBRID)},
            "cross": [(view.margin_ratio_e8(CROSS), [view.margin_ratio_e8(CROSS, p.symbol) for p in view.positions(CROSS)],
                       view.margin_balance(CROSS), view.wallet(CROSS),
                       sum(p.unrealized_pnl_units for p in view.positions(CROSS)),
                       [view.margin_balance(CROSS, p.symbol) for p in view.positions(CROSS)])],
        })

    counts = run_agents(ex, path, agents, seed=seed, on_step=on_step)
    return ex, agents, counts, record


@pytest.fixture(scope="module")
def run():
    return scenario(1)


def by_account(agents):
    return {a.accounts[0]: a for a in agents}


def test_agents_follow_the_protocol(run):
    _, agents, counts, _ = run
    assert all(isinstance(a, Agent) for a in agents)
    assert counts["steps"] == (PRE_NS + CRASH_NS + RECOVERY_NS) // M * 4
    assert [a["name"] for a in counts["agents"]][:2] == ["maker", "arbitrageur"]
    assert all(a["commands"] > 0 for a in counts["agents"])


def test_deterministic_same_seed_same_hash(run):
    ex, _, counts, _ = run
    ex2, _, counts2, _ = scenario(1)
    assert ex2.state_hash() == ex.state_hash()
    assert counts2 == counts
    ex3, _, _, _ = scenario(2)  # other agent seeds: other noise
    assert ex3.state_hash() != ex.state_hash()
    assert agent_rng(1, 0).random() == agent_rng(1, 0).random() != agent_rng(1, 1).random()


def test_money_is_conserved(run):
    ex, _, _, _ = run
    ex.check_invariants()


def test_maker_is_never_rejected_for_band_or_notional(run):
    _, agents, counts, record = run
    maker_rejects = counts["agents"][0]["rejected"]
    assert not {-4016, -4024, -4164} & set(maker_rejects)
    assert set(maker_rejects) <= {-5022}  # post-only quotes only: nothing else may be refused
    assert by_account(agents)[MAKER].rejects == maker_rejects
    accepted = sum(1 for e in record["events"] if isinstance(e, OrderAccepted) and e.account_id == MAKER)
    assert accepted > 1_000


def test_maker_widens_and_pulls_when_volatility_rises(run):
    _, agents, _, _ = run
    maker = by_account(agents)[MAKER]
    rows = [h for h, s in zip(maker.history, maker.history_symbols) if s == "BTCUSDT"]
    calm = [h for h in rows if 5 * M <= h[0] < PRE_NS]
    crash = [h for h in rows if PRE_NS + 10 * M <= h[0] < PRE_NS + CRASH_NS]
    assert calm and crash
    assert max(h[1] for h in calm) < maker.widen_vol < maker.pull_vol < min(h[1] for h in crash)
    assert {h[2:] for h in calm} == {(5, 20, 200)}  # 5 levels, half spread 20 ticks, 200 lots
    assert {h[2:] for h in crash} == {(1, 80, 100)}  # pulled to 1 level, spread ×4, half size
    assert maker.regime(2.0) == (5, 40, 40, 200)  # the middle regime: wider, same depth


def test_liquidations_happen_in_the_crash(run):
    _, agents, counts, record = run
    assert counts["event_types"]["LiquidationStarted"] > 0
    traders = [a for a in agents if isinstance(a, LeveragedTrader)]
    assert sum(t.liquidations for t in traders) > 0
    times = [e for e in record["events"] if type(e).__name__ == "LiquidationStarted"]
    assert times


def test_isolated_losses_stay_within_the_allocation(run):
    """An isolated position can lose at most the margin moved into it: its IM (≤ the budget, since fills are
    no worse than the entry limit) plus the entry fee, plus any top-up. So the wallet ends at or above the
    deposits minus everything committed to isolated positions, and no liquidation ever debits the wallet."""
    ex, agents, _, record = run
    for account in (ISO, ISO_TOPUP):
        trader = by_account(agents)[account]
        assert trader.entries > 0 and trader.liquidations > 0
        deposits = CAPITAL + trader.reserve_used_units
        assert ex.wallet(account) >= deposits - trader.committed_isolated_units
        assert not [e for e in record["events"] if isinstance(e, BalanceChanged) and e.account_id == account
                    and e.reason in (BalanceReason.LIQUIDATION, BalanceReason.INSURANCE_TOP_UP,
                                     BalanceReason.SOCIALIZED_LOSS)]
    # each entry order commits at most the budget plus the fee bound (20x × 0.05 % taker = 1 % of the budget)
    iso = by_account(agents)[ISO]
    budget = CAPITAL * iso.policy.share_per_position_e8 // 10**8
    entry_orders = sum(1 for e in record["events"] if isinstance(e, OrderAccepted) and e.account_id == ISO
                       and e.order_type == OrderType.LIMIT)
    assert 0 < iso.committed_isolated_units <= entry_orders * (budget * 101 // 100 + 2)


def test_cross_positions_share_the_pooled_balance(run):
    _, _, _, record = run
    both = [s for s in record["steps"] if len(s["positions"][CROSS]) == 2]
    assert both, "the cross trader should hold two positions at once"
    for step in both:
        ratio, per_symbol, balance, wallet, upnl, balances = step["cross"][0]
        assert per_symbol == [ratio, ratio]  # one margin part: the cross account
        assert balances == [balance, balance] == [wallet + upnl] * 2
        assert all(mode == MarginMode.CROSS for _, _, mode in step["positions"][CROSS])


def test_hybrid_isolates_the_conviction_trade_only(run):
    _, _, _, record = run
    modes = {(sym, mode) for s in record["steps"] for sym, _, mode in s["positions"][HYBRID]}
    assert ("BTCUSDT", MarginMode.ISOLATED) in modes and ("ETHUSDT", MarginMode.CROSS) in modes
    assert ("BTCUSDT", MarginMode.CROSS) not in modes and ("ETHUSDT", MarginMode.ISOLATED) not in modes


def test_dynamic_policy_switches_both_ways(run):
    _, agents, _, record = run
    switches = [e for e in record["events"] if isinstance(e, MarginModeChanged) and e.account_id == DYNAMIC]
    assert {MarginMode.CROSS, MarginMode.ISOLATED} <= {e.margin_mode for e in switches}
    policy = by_account(agents)[DYNAMIC].policy
    assert policy.switches["CROSS"] >= 1 and policy.switches["ISOLATED"] >= 2  # entry + ring-fence


def test_dynamic_policy_handles_refusal_when_the_venue_forbids_switching():
    ex, agents, counts, record = scenario(1, allow_switch=False)
    trader = by_account(agents)[DYNAMIC]
    assert trader.policy.refusals[-4048] >= 1
    assert trader.policy.switches["CROSS"] == 0
    assert counts["agents"][agents.index(trader)]["rejected"][-4048] == trader.policy.refusals[-4048]
    ex.check_invariants()


def test_trader_behaviours_send_their_orders(run):
    _, agents, _, record = run
    types = Counter((e.account_id, e.order_type) for e in record["events"] if isinstance(e, OrderAccepted))
    assert types[(ISO, OrderType.TAKE_PROFIT_MARKET)] >= 2  # staggered tranches
    assert types[(CROSS, OrderType.STOP_MARKET)] >= 1
    assert types[(ISO_TOPUP, OrderType.TRAILING_STOP_MARKET)] >= 1
    assert by_account(agents)[DYNAMIC].reentries >= 1  # re-entry after a liquidation and the cool-down
    topup = by_account(agents)[ISO_TOPUP]
    assert topup.committed_isolated_units > 0
    deposits = [e for e in record["events"] if isinstance(e, BalanceChanged) and e.account_id == CROSS
                and e.reason == BalanceReason.DEPOSIT]
    assert by_account(agents)[CROSS].reserve_used_units == sum(e.delta_units for e in deposits) > 0  # cross top-ups
    margin_moves = [e for e in record["events"] if isinstance(e, BalanceChanged) and e.account_id == ISO_TOPUP
                    and e.reason == BalanceReason.MARGIN_TRANSFER]
    assert margin_moves  # AdjustIsolatedMargin top-ups


def test_intention_schedule_is_seeded_and_policy_independent():
    a = intention_schedule(5, SYMS, start_ns=0, end_ns=10 * M, count=6)
    assert a == intention_schedule(5, SYMS, start_ns=0, end_ns=10 * M, count=6)
    assert a != intention_schedule(6, SYMS, start_ns=0, end_ns=10 * M, count=6)
    assert [i.entry_ns for i in a] == sorted(i.entry_ns for i in a)
    assert all(i.exit_ns == 10 * M + i.entry_ns and i.leverage in (5, 10, 20) for i in a)


def test_volatility_estimator_units():
    """Alternating ±r log returns every dt: S/T = r²/dt, so the estimate is |r| / sqrt(dt in years)."""
    inst = instruments()[0]
    ex = Exchange([inst])
    view = MarketView(ex, halflife_steps=5)
    dt = 60 * 10**9
    price = 500_000
    assert view.volatility("BTCUSDT") == 0.0
    for k in range(200):
        ex.apply(AdvanceTime(k * dt))
        ex.apply(SetIndexPrice("BTCUSDT", price if k % 2 == 0 else 505_000))
        view.observe()
    r = math.log(505_000 / price)
    assert view.volatility("BTCUSDT") == pytest.approx(r / math.sqrt(dt / YEAR_NS), rel=1e-6)


def test_custom_agent_example_in_the_docs_runs():
    text = (Path(__file__).resolve().parent.parent / "docs" / "agents.md").read_text()
    code = re.search(r"## A custom agent in a few lines\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {"print": lambda *args: None}
    exec(compile(code, "docs/agents.md", "exec"), namespace)
    ex, dip = namespace["ex"], namespace["dip"]
    assert namespace["counts"]["steps"] > 0
    assert ex.position(dip.accounts[0], "BTCUSDT").lots > 0  # it bought the dip
    ex.check_invariants()
