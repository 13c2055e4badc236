"""What a recorded run means for each cohort and for the venue (docs/study.md, "Metrics").

Everything here is computed from a run directory's Parquet files and manifest alone (so ``exchange-sim report``
can rebuild a study's tables without re-running it):

- :func:`cohort_rows`: one row per (world, cohort, seed) of leveraged traders — liquidations, time to first
  liquidation, returns on capital, worst loss, loss beyond the allocated margin, fees, funding, deleveraging.
- :func:`world_row`: one row per (world, seed) — liquidation volume, insurance fund path, ADL, mark-to-last
  deviation.
- :func:`confidence_table`: across seeds, per (world, cohort, metric): mean and a 95 % Student-t interval.

Money columns are integer units of 1e-8 (``*_units``); shares and returns are floats computed from those
integers (written with ``repr``, so two identical runs give identical CSV text).
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..units import InputError
from .scenario import Scenario

E8 = 10**8
STUDY_FILE = "study.json"  #: the study's own record in its output directory (docs/study.md)
STUDY_FORMAT = "exchange-study"
COHORT_COLUMNS = (
    "world", "cohort", "seed", "traders", "liquidated", "liquidated_share", "deleveraged",
    "time_to_first_liquidation_s", "median_time_to_liquidation_s",
    "return_on_capital_mean", "return_on_capital_median", "return_on_capital_p05", "worst_loss_share",
    "loss_beyond_allocation_units", "loss_beyond_allocation_traders", "capital_units", "allocated_units",
    "final_equity_units", "fees_paid_units", "funding_paid_units", "entries", "reentries", "switches",
)
WORLD_COLUMNS = (
    "world", "seed", "liquidations", "liquidated_accounts", "liquidation_volume_units", "insurance_takeovers",
    "adl_events", "adl_volume_units", "insurance_start_units", "insurance_min_units", "insurance_end_units",
    "insurance_paid_units", "mark_last_deviation_max", "mark_last_deviation_mean", "commands", "events",
)
#: metrics summarised across seeds (confidence_table), per cohort
CI_METRICS = ("liquidated_share", "time_to_first_liquidation_s", "return_on_capital_mean",
              "return_on_capital_median", "return_on_capital_p05", "worst_loss_share",
              "loss_beyond_allocation_units", "fees_paid_units", "funding_paid_units")
WORLD_CI_METRICS = ("liquidation_volume_units", "adl_events", "insurance_min_units", "insurance_end_units",
                    "mark_last_deviation_max")

_EVENT_COLUMNS = ("kind", "time_ns", "symbol", "account_id", "taker_account_id", "maker_account_id",
                  "taker_fee_units", "maker_fee_units", "fee_units", "amount_units", "price_ticks", "qty_lots",
                  "liquidated", "reason", "delta_units", "counterparty_id")


def read_manifest(run_dir) -> dict:
    return json.loads((Path(run_dir) / "manifest.json").read_text())


class RunData:
    """The columns of one recorded run that the summaries need, as numpy arrays."""

    def __init__(self, run_dir):
        self.dir = Path(run_dir)
        self.manifest = read_manifest(self.dir)
        extra = self.manifest.get("extra") or {}
        self.world, self.seed = extra.get("world", ""), int(extra.get("seed", 0))
        self.scenario = Scenario(extra["scenario"]) if "scenario" in extra else None
        self.k_units = {i.symbol: i.k_units for i in self.scenario.instruments()} if self.scenario else {}
        table = pq.read_table(self.dir / "events.parquet", columns=list(_EVENT_COLUMNS))
        self.events = {name: table.column(name).to_numpy(zero_copy_only=False) for name in _EVENT_COLUMNS}
        self.traders = pq.read_table(self.dir / "traders.parquet").to_pydict()
        self.prices = pq.read_table(self.dir / "prices.parquet").to_pydict()
        accounts = pq.read_table(self.dir / "accounts.parquet", columns=["account_id", "equity_units"]).to_pydict()
        self.final_equity = dict(zip(accounts["account_id"], accounts["equity_units"]))
        # the run starts at the path's first bar: the scenario's path.start (synthetic) or the first snapshot
        synthetic = self.scenario is not None and self.scenario["path.kind"] not in ("klines", "agg_trades")
        self.start_ns = self.scenario["path.start"] if synthetic else min(self.prices["time_ns"], default=0)

    def of_kind(self, kind: str) -> np.ndarray:
        return self.events["kind"] == kind


def return_on_capital(traders: dict, i: int, equity: int) -> float:
    """Trader ``i``'s return on capital (docs/study.md): ``(E + reserve left − C) / C`` with ``C`` = capital +
    reserve and ``E`` its final ``equity``; ``traders`` is ``traders.parquet`` as a dict of columns."""
    start = traders["capital_units"][i] + traders["reserve_units"][i]
    end = equity + traders["reserve_units"][i] - traders["reserve_used_units"][i]
    return (end - start) / start if start else 0.0


def _int(column, mask) -> np.ndarray:
    return np.asarray(column[mask], dtype=object).astype(np.int64)


def cohort_rows(run: RunData | str | Path) -> list[dict]:
    """One row per leveraged-trader cohort of the run (definitions in docs/study.md)."""
    run = run if isinstance(run, RunData) else RunData(run)
    ev = run.events
    t = run.traders
    cohorts = sorted(set(t["cohort"]), key=t["cohort"].index)
    # per-account aggregates from the events
    liq = run.of_kind("LiquidationStarted")
    first_liq: dict[int, int] = {}
    for account, time_ns in zip(_int(ev["account_id"], liq), _int(ev["time_ns"], liq)):
        first_liq.setdefault(int(account), int(time_ns))
    fees: dict[int, int] = {}
    fill = run.of_kind("Fill")
    for col, fee in (("taker_account_id", "taker_fee_units"), ("maker_account_id", "maker_fee_units")):
        for account, amount in zip(_int(ev[col], fill), _int(ev[fee], fill)):
            fees[int(account)] = fees.get(int(account), 0) + int(amount)
    lfill = run.of_kind("LiquidationFill")
    for account, amount in zip(_int(ev["account_id"], lfill), _int(ev["fee_units"], lfill)):
        fees[int(account)] = fees.get(int(account), 0) + int(amount)
    funding: dict[int, int] = {}
    fpaid = run.of_kind("FundingPaid")
    for account, amount in zip(_int(ev["account_id"], fpaid), _int(ev["amount_units"], fpaid)):
        funding[int(account)] = funding.get(int(account), 0) + int(amount)
    deleveraged: set[int] = set()
    adl = run.of_kind("ADLFill")
    for account, was_liquidated in zip(_int(ev["account_id"], adl), ev["liquidated"][adl]):
        if not was_liquidated:
            deleveraged.add(int(account))

    rows = []
    for cohort in cohorts:
        idx = [i for i, c in enumerate(t["cohort"]) if c == cohort]
        accounts = [t["account_id"][i] for i in idx]
        returns, losses_share, beyond, beyond_n = [], [], 0, 0
        capital_total = allocated_total = equity_total = 0
        for i, account in zip(idx, accounts):
            money_in = t["capital_units"][i] + t["reserve_used_units"][i]
            wealth_start = t["capital_units"][i] + t["reserve_units"][i]
            equity = run.final_equity.get(account, 0)
            returns.append(return_on_capital(t, i, equity))
            loss = max(0, money_in - equity)
            losses_share.append(loss / wealth_start if wealth_start else 0.0)
            over = max(0, loss - t["allocated_units"][i])
            beyond += over
            beyond_n += over > 0
            capital_total += wealth_start
            allocated_total += t["allocated_units"][i]
            equity_total += equity
        liquidated = [a for a in accounts if a in first_liq]
        times = sorted(round((first_liq[a] - run.start_ns) / 1e9, 3) for a in liquidated)
        r = np.array(returns, dtype=np.float64)
        rows.append({
            "world": run.world, "cohort": cohort, "seed": run.seed, "traders": len(accounts),
            "liquidated": len(liquidated), "liquidated_share": len(liquidated) / len(accounts) if accounts else 0.0,
            "deleveraged": sum(a in deleveraged for a in accounts),
            "time_to_first_liquidation_s": times[0] if times else None,
            "median_time_to_liquidation_s": float(np.median(times)) if times else None,
            "return_on_capital_mean": float(r.mean()) if r.size else 0.0,
            "return_on_capital_median": float(np.median(r)) if r.size else 0.0,
            "return_on_capital_p05": float(np.quantile(r, 0.05)) if r.size else 0.0,
            "worst_loss_share": max(losses_share, default=0.0),
            "loss_beyond_allocation_units": beyond, "loss_beyond_allocation_traders": beyond_n,
            "capital_units": capital_total, "allocated_units": allocated_total, "final_equity_units": equity_total,
            "fees_paid_units": sum(fees.get(a, 0) for a in accounts),
            "funding_paid_units": sum(funding.get(a, 0) for a in accounts),
            "entries": sum(t["entries"][i] for i in idx), "reentries": sum(t["reentries"][i] for i in idx),
            "switches": sum(t["switches_to_cross"][i] + t["switches_to_isolated"][i] for i in idx),
        })
    return rows


def world_row(run: RunData | str | Path) -> dict:
    """The venue's view of one run (definitions in docs/study.md)."""
    run = run if isinstance(run, RunData) else RunData(run)
    ev = run.events
    lfill = run.of_kind("LiquidationFill")
    volume = 0
    for symbol, price, qty in zip(ev["symbol"][lfill], _int(ev["price_ticks"], lfill), _int(ev["qty_lots"], lfill)):
        volume += int(price) * int(qty) * run.k_units.get(symbol, 0)
    takeovers = int(np.sum(np.asarray(ev["counterparty_id"][lfill], dtype=object).astype(np.int64) >= 2**62)) \
        if lfill.any() else 0
    adl = run.of_kind("ADLFill")
    adl_side = adl & np.asarray([bool(x) if x is not None else False for x in ev["liquidated"]], dtype=bool)
    adl_volume = 0
    for symbol, price, qty in zip(ev["symbol"][adl_side], _int(ev["price_ticks"], adl_side), _int(ev["qty_lots"], adl_side)):
        adl_volume += int(price) * int(qty) * run.k_units.get(symbol, 0)
    # insurance: Σ over symbols per snapshot (a shared fund repeats the same balance on every symbol: count it once)
    p = run.prices
    shared = run.scenario is not None and shared_fund(run.scenario)
    by_time: dict[int, int] = {}
    for time_ns, symbol, balance in zip(p["time_ns"], p["symbol"], p["insurance_balance_units"]):
        if shared:
            by_time[time_ns] = balance
        else:
            by_time[time_ns] = by_time.get(time_ns, 0) + balance
    path = [by_time[k] for k in sorted(by_time)]
    ins = run.of_kind("InsuranceFundChanged")
    paid = -sum(int(d) for d, r in zip(_int(ev["delta_units"], ins), _int(ev["reason"], ins)) if d < 0)
    seed_total = sum(int(d) for d, r in zip(_int(ev["delta_units"], ins), _int(ev["reason"], ins)) if r == 1)
    deviations = [abs(last - mark) / mark for mark, last in zip(p["mark_ticks"], p["last_ticks"]) if mark > 0 and last > 0]
    liq = run.of_kind("LiquidationStarted")
    return {
        "world": run.world, "seed": run.seed, "liquidations": int(liq.sum()),
        "liquidated_accounts": len(set(_int(ev["account_id"], liq).tolist())),
        "liquidation_volume_units": volume, "insurance_takeovers": takeovers,
        "adl_events": int(adl_side.sum()), "adl_volume_units": adl_volume,
        "insurance_start_units": seed_total, "insurance_min_units": min(path, default=0),
        "insurance_end_units": path[-1] if path else 0, "insurance_paid_units": paid,
        "mark_last_deviation_max": max(deviations, default=0.0),
        "mark_last_deviation_mean": (sum(deviations) / len(deviations)) if deviations else 0.0,
        "commands": run.manifest["sequence"], "events": run.manifest["files"]["events.parquet"]["rows"],
    }


def shared_fund(scenario: Scenario) -> bool:
    from ..profiles import PROFILES

    profile = PROFILES[scenario["profile"]]
    return getattr(profile, "insurance_scope", None) is not None and profile.insurance_scope.name == "SHARED"


# ==== across seeds =====================================================================================
# two-sided 95 % Student-t quantiles t(0.975, df) for df = 1..30; 1.96 beyond
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def mean_ci(values) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of a 95 % Student-t interval for the mean; n < 2 gives low = high = mean.
    ``None`` values (a metric that does not exist for a seed, e.g. no liquidation) are left out."""
    xs = [float(v) for v in values if v is not None and v != ""]
    n = len(xs)
    if n == 0:
        return (math.nan, math.nan, math.nan, 0)
    mean = sum(xs) / n
    if n < 2:
        return (mean, mean, mean, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = (_T975[n - 2] if n - 1 <= len(_T975) else 1.96) * sd / math.sqrt(n)
    return (mean, mean - half, mean + half, n)


def confidence_table(cohort: list[dict], worlds: list[dict]) -> list[dict]:
    """Per (world, cohort, metric) — cohort ``"*"`` for the venue metrics — the mean and 95 % CI across seeds."""
    out = []
    keys = sorted({(r["world"], r["cohort"]) for r in cohort}, key=lambda k: _order(k))
    for world, name in keys:
        rows = [r for r in cohort if r["world"] == world and r["cohort"] == name]
        for metric in CI_METRICS:
            mean, low, high, n = mean_ci(r[metric] for r in rows)
            out.append({"world": world, "cohort": name, "metric": metric, "mean": mean, "ci_low": low,
                        "ci_high": high, "seeds": n})
    for world in sorted({r["world"] for r in worlds}, key=lambda w: _order((w, ""))):
        rows = [r for r in worlds if r["world"] == world]
        for metric in WORLD_CI_METRICS:
            mean, low, high, n = mean_ci(r[metric] for r in rows)
            out.append({"world": world, "cohort": "*", "metric": metric, "mean": mean, "ci_low": low,
                        "ci_high": high, "seeds": n})
    return out


_WORLD_ORDER = ("isolated", "cross", "hybrid", "dynamic", "mixed")


def _order(key) -> tuple:
    world, cohort = key
    w = _WORLD_ORDER.index(world) if world in _WORLD_ORDER else len(_WORLD_ORDER)
    c = _WORLD_ORDER.index(cohort) if cohort in _WORLD_ORDER else len(_WORLD_ORDER)
    return (w, world, c, cohort)


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (*_order((r["world"], r.get("cohort", ""))), r.get("seed", 0)))


# ==== CSV ==============================================================================================
def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def to_csv(rows: list[dict], columns) -> str:
    """Deterministic CSV text (floats by ``repr``, None as empty, ``\\n`` line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def read_csv(path) -> list[dict]:
    """Rows of a CSV written by :func:`to_csv`, with numbers parsed back (empty → None)."""
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        for key, value in row.items():
            row[key] = _parse(value)
    return rows


def _parse(text: str):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text




def read_study(out) -> dict:
    path = Path(out) / STUDY_FILE
    if not path.is_file():
        raise InputError(f"{out}: no {STUDY_FILE} (not a study directory)")
    try:
        study = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(study, dict) or study.get("format") != STUDY_FORMAT:
        raise InputError(f"{path}: not an exchange study")
    return study


__all__ = ["RunData", "cohort_rows", "world_row", "confidence_table", "mean_ci", "to_csv", "read_csv", "sort_rows",
           "COHORT_COLUMNS", "WORLD_COLUMNS", "CI_METRICS", "WORLD_CI_METRICS", "read_manifest", "return_on_capital",
           "shared_fund", "read_study", "STUDY_FILE", "STUDY_FORMAT"]
