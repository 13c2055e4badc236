"""Running one world of a scenario and recording it (docs/scenarios.md).

:func:`build_path` makes the scenario's price path for a seed (synthetic: seeded; historical: loaded from the
Binance files and shifted to start near time 0). :func:`build_world` makes the population: market makers,
arbitrageurs and noise / momentum takers (sized in quote money and converted to each instrument's lots at its
first price) and the leveraged traders, whose intentions depend on the seed and the trader's number only, so
every world of a seed replays the same intentions. In a policy world (``isolated``, ``cross``, ``hybrid``,
``dynamic``) every trader uses that policy; in the ``mixed`` world trader ``i`` uses policy ``i mod 4``.

:func:`run_world` drives the world through :func:`~exchange.sim.agents.run_agents` on a journaled exchange
and records it with :class:`~exchange.sim.record.RunRecorder` into one directory: the recorder's files plus
``traders.parquet`` (one row per leveraged trader: capital, allocation, entries, liquidations, switches) and
``equity.parquet`` (every trader's equity at every metrics snapshot). The manifest's ``extra`` holds the
world, the seed and the scenario. Same scenario, world and seed: byte-identical files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from ..commands import FundInsurance
from ..profiles import RiskOptions
from ..units import E8, InputError
from .agents import (
    Arbitrageur, CrossPolicy, DynamicPolicy, HybridPolicy, IsolatedPolicy, LeveragedTrader, MarketMaker,
    MarketView, MomentumTaker, NoiseTaker, intention_schedule, run_agents,
)
from .paths import PricePath
from .scenario import MIXED, POLICIES, Scenario

TRADER_BASE = 1_001  # account ids: market participants from 1, leveraged traders from here
MARKET_COHORTS = ("makers", "arbitrageurs", "noise", "momentum")


# ==== the path ========================================================================================
def build_path(scenario: Scenario, seed: int) -> PricePath:
    """The scenario's price path. Synthetic paths are seeded by ``seed``; historical ones do not depend on it."""
    from . import synthetic
    from .historical import path_from_agg_trades, path_from_klines

    insts = scenario.instruments()
    kind = scenario["path.kind"]
    p = scenario.section("path")
    n = len(insts)
    corr = None
    if p["correlation"] is not None and n > 1:
        rho = p["correlation"]
        corr = [[1.0 if i == j else rho for j in range(n)] for i in range(n)]
    common = dict(seed=seed, bar_ns=p["bar"], substeps=p["substeps"], correlation=corr, start_ns=p["start"])
    if kind == "crash_recovery":
        return synthetic.crash_recovery_path(
            insts, scenario.start_prices(), drop=p["drop"], crash_ns=p["crash"], recovery=p["recovery"],
            recovery_ns=p["recovery_time"], hold_ns=p["hold"], pre_ns=p["pre"], post_ns=p["post"],
            volatility=p["volatility"], **common)
    if kind == "gbm_jump":
        return synthetic.gbm_jump_path(
            insts, scenario.start_prices(), duration_ns=p["duration"], drift=p["drift"], volatility=p["volatility"],
            jump_intensity=p["jump_intensity"], jump_mean=p["jump_mean"], jump_std=p["jump_std"], **common)
    if kind == "regime_switching":
        return synthetic.regime_switching_path(
            insts, scenario.start_prices(), duration_ns=p["duration"], regimes=[tuple(r) for r in p["regimes"]],
            transition=p["transition"], **common)
    files = {s: {k: [str(scenario.base_dir / f) for f in v] for k, v in kinds.items()} for s, kinds in p["files"].items()}

    def per(kind_name):
        out = {s: files[s][kind_name] for s in files if kind_name in files[s]}
        return out or None

    if kind == "klines":
        path = path_from_klines(insts, per("klines"), index_klines=per("index_klines"), mark_klines=per("mark_klines"),
                                funding=per("funding"), gaps=p["gaps"])
    else:
        path = path_from_agg_trades(insts, per("agg_trades"), bar_ns=p["bar"], funding=per("funding"))
    interval = insts[0].funding.interval_ns
    first = int(path.times_ns[0])
    return path.shifted(-(first // interval) * interval)  # keep funding boundaries where they were


# ==== the population ==================================================================================
@dataclass
class World:
    """What :func:`run_world` drives: the agents (in acting order), the cohorts (name → account ids) and the
    leveraged traders with their cohort."""

    name: str
    seed: int
    agents: list
    cohorts: dict[str, list[int]]
    traders: list[tuple[str, LeveragedTrader]] = field(default_factory=list)


def _policy(scenario: Scenario, name: str):
    p = scenario.section(f"policies.{name}")
    if name == "isolated":
        return IsolatedPolicy(share_per_position_e8=p["share"])
    if name == "cross":
        return CrossPolicy(share_per_position_e8=p["share"])
    if name == "hybrid":
        return HybridPolicy(isolated_share_e8=p["isolated_share"], share_per_position_e8=p["share"],
                            conviction_symbol=p["conviction_symbol"] or scenario.symbols[0])
    return DynamicPolicy(share_per_position_e8=p["share"], defend_ratio_e8=p["defend_ratio"],
                         extreme_vol=p["extreme_vol"], cushion_e8=p["cushion"],
                         min_steps_between=p["min_steps_between"], max_refusals=p["max_refusals"])


def trader_seed(seed: int, index: int) -> int:
    """The seed of trader ``index``'s intentions in a run seeded ``seed`` (independent of the world)."""
    return int(np.random.SeedSequence([int(seed), 0x7EAD, int(index)]).generate_state(1)[0])


def build_world(scenario: Scenario, world: str, seed: int, path: PricePath) -> World:
    """The population of ``world`` (a policy name or ``"mixed"``) for ``seed`` over ``path``."""
    if world not in (*POLICIES, MIXED):
        raise InputError(f"world: unknown world {world!r} (known: {', '.join((*POLICIES, MIXED))})")
    insts = {i.symbol: i for i in scenario.instruments()}
    symbols = scenario.symbols
    first = {s: int(path[s].open[0]) for s in symbols}

    def lots(symbol: str, units: int) -> int:
        """Quote money → lots of ``symbol`` at its first price (at least one lot)."""
        return max(1, units // (first[symbol] * insts[symbol].k_units))

    def ticks(symbol: str, rate_e8: int) -> int:
        return max(1, first[symbol] * rate_e8 // E8)

    agents, cohorts = [], {name: [] for name in MARKET_COHORTS}
    next_id = [1]

    def add(cohort: str, agent) -> None:
        agents.append(agent)
        cohorts[cohort].extend(agent.accounts)

    def account() -> int:
        next_id[0] += 1
        return next_id[0] - 1

    m = scenario.section("makers")
    for s in symbols:
        for _ in range(m["per_symbol"]):
            add("makers", MarketMaker(
                account(), [s], capital_units=m["capital"], leverage=m["leverage"], levels=m["levels"],
                half_spread_ticks=ticks(s, m["half_spread"]), spacing_ticks=ticks(s, m["spacing"]),
                lots=lots(s, m["depth"]), skew_ticks_per_lot=m["skew"], max_inventory_lots=None,
                widen_vol=m["widen_vol"], pull_vol=m["pull_vol"], stressed_levels=m["stressed_levels"],
                stressed_size_e8=m["stressed_size"]))
    a = scenario.section("arbitrageurs")
    for s in symbols:
        for _ in range(a["count"]):
            add("arbitrageurs", Arbitrageur(account(), [s], capital_units=a["capital"], leverage=a["leverage"],
                                            threshold_e8=a["threshold"], max_lots=lots(s, a["clip"]),
                                            max_position_lots=lots(s, a["max_position"])))
    nz = scenario.section("noise")
    for s in symbols:
        for _ in range(nz["per_symbol"]):
            add("noise", NoiseTaker(account(), [s], capital_units=nz["capital"], leverage=nz["leverage"],
                                    trade_prob=nz["trade_prob"], buy_prob=nz["buy_prob"],
                                    median_lots=lots(s, nz["median"]), sigma=nz["sigma"],
                                    max_position_lots=lots(s, nz["max_position"])))
    mo = scenario.section("momentum")
    for s in symbols:
        for _ in range(mo["per_symbol"]):
            add("momentum", MomentumTaker(account(), [s], capital_units=mo["capital"], leverage=mo["leverage"],
                                          lookback_steps=mo["lookback"], threshold_e8=mo["threshold"],
                                          lots=lots(s, mo["clip"]), max_position_lots=lots(s, mo["max_position"])))

    t = scenario.section("traders")
    start = int(path.times_ns[0])
    policies = [world] if world != MIXED else list(POLICIES)
    for name in policies:
        cohorts[name] = []
    traders = []
    for i in range(t["count"]):
        policy = policies[i % len(policies)]
        intents = intention_schedule(
            trader_seed(seed, i), symbols, start_ns=start + t["entry_window"][0], end_ns=start + t["entry_window"][1],
            count=t["intentions"], leverages=t["leverages"], long_prob=t["long_prob"],
            hold_ns=tuple(t["hold"]), size_e8=tuple(t["size"]))
        trader = LeveragedTrader(
            TRADER_BASE + i, intents, _policy(scenario, policy), capital_units=t["capital"], reserve_units=t["reserve"],
            entry_slippage_e8=t["slippage"], stop_loss_e8=t["stop_loss"], trailing_callback_e8=t["trailing_callback"],
            take_profits=[tuple(tp) for tp in t["take_profits"]], topup_ratio_e8=t["topup_ratio"],
            topup_units=t["topup"], max_topups=t["max_topups"], cooldown_ns=t["cooldown"],
            max_reentries=t["max_reentries"], name=policy)
        add(policy, trader)
        traders.append((policy, trader))
    return World(world, seed, agents, cohorts, traders)


# ==== one run =========================================================================================
def count_steps(path: PricePath) -> int:
    """How many steps :func:`run_agents` makes over ``path`` (one per distinct price-point time)."""
    return 4 * len(path)


def run_world(scenario: Scenario, world: str, seed: int, directory, *, implementation: str | None = None,
              progress: Callable[[int, int], None] | None = None, path: PricePath | None = None) -> dict:
    """Run ``world`` of ``scenario`` with ``seed`` and record it into ``directory`` (which must not hold a
    recording). Returns the manifest. ``progress(steps_done, steps_total)`` is called every 25 steps and at
    the end."""
    from ..engine import Exchange
    from .record import JOURNAL_NAME, RunRecorder

    directory = Path(directory)
    path = path if path is not None else build_path(scenario, seed)
    population = build_world(scenario, world, seed, path)
    directory.mkdir(parents=True, exist_ok=True)
    exchange = Exchange(scenario.instruments(), implementation=implementation, profile=scenario["profile"],
                        options=RiskOptions(allow_mode_switch_with_position=True),
                        journal=directory / JOURNAL_NAME, fsync="never", keep_commands=False)
    try:
        recorder = RunRecorder(directory, exchange, population.cohorts)
        for symbol in scenario.symbols:
            command = FundInsurance(symbol, scenario["insurance.fund"])
            recorder.record(-1, exchange.now_ns, command, exchange.apply(command))
        every = scenario["study.metrics_every"]
        total = count_steps(path)
        traders = [(cohort, trader.account) for cohort, trader in population.traders]
        equity_rows = {"step": [], "time_ns": [], "account_id": [], "cohort": [], "equity_units": [],
                       "in_position": []}
        step = [0]
        view = MarketView(exchange)

        def on_apply(step_index, command, events):
            recorder.record(step_index, exchange.now_ns, command, events)

        def on_step(_view, _events):
            i = step[0]
            if i % every == 0 or i == total - 1:
                recorder.snapshot_metrics(i, exchange.now_ns)
                for cohort, account_id in traders:
                    equity_rows["step"].append(i)
                    equity_rows["time_ns"].append(exchange.now_ns)
                    equity_rows["account_id"].append(account_id)
                    equity_rows["cohort"].append(cohort)
                    equity_rows["equity_units"].append(exchange.equity(account_id))
                    equity_rows["in_position"].append(exchange.has_position(account_id))
            step[0] += 1
            if progress is not None and (step[0] % 25 == 0 or step[0] == total):
                progress(step[0], total)

        run_agents(exchange, path, population.agents, seed, on_step=on_step, view=view, on_apply=on_apply)
        recorder.write_final_state()
        recorder.write_table("traders", _traders_table(population))
        recorder.write_table("equity", pa.table(equity_rows, schema=_EQUITY_SCHEMA))
        manifest = recorder.close(extra={"world": world, "seed": seed, "steps": step[0],
                                         "scenario": scenario.raw})
    finally:
        exchange.close()
    return manifest


_EQUITY_SCHEMA = pa.schema([
    pa.field("step", pa.int64(), False), pa.field("time_ns", pa.int64(), False),
    pa.field("account_id", pa.int64(), False), pa.field("cohort", pa.string(), False),
    pa.field("equity_units", pa.int64(), False), pa.field("in_position", pa.bool_(), False),
])

_TRADER_COLUMNS = (
    ("account_id", pa.int64()), ("cohort", pa.string()), ("capital_units", pa.int64()),
    ("reserve_units", pa.int64()), ("reserve_used_units", pa.int64()), ("allocated_units", pa.int64()),
    ("committed_isolated_units", pa.int64()), ("entries", pa.int64()),
    ("reentries", pa.int64()), ("skipped", pa.int64()), ("liquidations", pa.int64()),
    ("switches_to_cross", pa.int64()), ("switches_to_isolated", pa.int64()), ("refusals", pa.int64()),
    ("rejected", pa.int64()),
)


def _traders_table(world: World) -> pa.Table:
    rows = {name: [] for name, _ in _TRADER_COLUMNS}
    for cohort, t in world.traders:
        switches = getattr(t.policy, "switches", {})
        refusals = getattr(t.policy, "refusals", {})
        values = (t.account, cohort, t.capital_units, t.reserve_units, t.reserve_used_units, t.allocated_units,
                  t.committed_isolated_units, t.entries, t.reentries, len(t.skipped), t.liquidations, switches.get("CROSS", 0),
                  switches.get("ISOLATED", 0), sum(refusals.values()), sum(t.rejects.values()))
        for (name, _), value in zip(_TRADER_COLUMNS, values):
            rows[name].append(value)
    return pa.table(rows, schema=pa.schema([pa.field(n, t, False) for n, t in _TRADER_COLUMNS]))


__all__ = ["World", "build_path", "build_world", "run_world", "trader_seed", "count_steps", "TRADER_BASE",
           "MARKET_COHORTS"]
