"""The margin-mode study as one self-contained HTML page: ``OUT/report.html`` (docs/study.md, "Output").

:func:`build_report` reads a study directory written by :func:`~exchange.sim.study.run_study` — ``study.json``,
``summary.csv``, ``worlds.csv``, ``summary_ci.csv`` and each run's Parquet files — and writes a page meant to be
sent to a colleague: what was run, findings stated from the numbers, the cohort and venue tables (means and 95 %
intervals across seeds, in USDT and percent), seven plots and how to reproduce it. It re-runs nothing: rebuild
the CSV files first with :func:`~exchange.sim.study.summarize_study` if they may be stale (``exchange-sim report
OUT`` does both).

The page has no external reference: plots are PNG images (matplotlib, Agg backend) embedded as base64, the style
sheet is inline and there is no script. Every text from the data is escaped with :func:`html.escape`.

Plot conventions
    - One colour per margin policy everywhere (:data:`COLOURS`): a policy world's lines and a cohort's lines,
      markers, bands and boxes share it; the mixed world is grey where it is drawn as a world.
    - Time is minutes from the run's start (the scenario's ``path.start`` for a synthetic path, the first
      snapshot for a historical one); a crash-and-recovery path has its crash segment shaded.
    - Prices are in USDT (ticks × the instrument's ``tick_size``); money in USDT (units / 10⁸).

Liquidation markers on the price plot (first seed)
    Each ``LiquidationStarted`` event is drawn at the price of the liquidated part's first liquidation fill (the
    first ``LiquidationFill``, or ``ADLFill`` on the liquidated side, of that account after the event and before
    its next one, on the event's symbol). A cross-account liquidation (``symbol`` "") is drawn on the symbol of
    that first fill — the position the venue closed first. An event that no fill followed is drawn at the mark
    price of its snapshot, on its symbol (the first symbol for the cross account). Markers
    come from the ``mixed`` world when the study has one (there every cohort trades in the same market, so the
    colours compare policies on one price path); otherwise from every world. A strip under the prices shows
    each world's liquidation times for the same seed.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..units import InputError
from .scenario import MIXED, Scenario
from .summary import STUDY_FILE, read_csv, read_study, return_on_capital, shared_fund

REPORT_FILE = "report.html"
E8 = 10**8

#: one colour per policy (cohort, and the world of that policy); the mixed world as a world is grey
COLOURS = {"isolated": "#1f77b4", "cross": "#d62728", "hybrid": "#2ca02c", "dynamic": "#9467bd", MIXED: "#555555"}
_EXTRA_COLOURS = ("#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_RUN_FILES = ("events.parquet", "prices.parquet", "equity.parquet", "traders.parquet", "accounts.parquet",
              "manifest.json")
_EVENT_KINDS = ("LiquidationStarted", "LiquidationFill", "ADLFill")


def colour(name: str) -> str:
    """The colour of a policy / cohort / world name (a stable fallback for other names)."""
    if name in COLOURS:
        return COLOURS[name]
    return _EXTRA_COLOURS[sum(map(ord, name)) % len(_EXTRA_COLOURS)]


# ==== reading the study ================================================================================
@dataclass
class RunView:
    """What the plots need from one run directory (times in minutes from the run start, money in USDT)."""

    world: str
    seed: int
    times: np.ndarray                      # snapshot times (minutes), sorted, unique
    prices: dict[str, dict[str, np.ndarray]]  # symbol -> {"mark", "index", "last"} in USDT per snapshot (NaN: none)
    insurance: np.ndarray                  # Σ over symbols of the insurance fund per snapshot (USDT)
    cohort_of: dict[int, str]              # leveraged trader account -> cohort
    liq_time: np.ndarray                   # LiquidationStarted: minutes
    liq_account: np.ndarray                # ... account ids
    liq_symbol: list[str]                  # ... where the marker goes
    liq_price: np.ndarray                  # ... marker price (USDT)
    adl_times: np.ndarray                  # ADL fills on the liquidated side: minutes
    equity_times: np.ndarray               # equity snapshots (minutes)
    equity_accounts: np.ndarray            # columns of equity_ratio
    equity_ratio: np.ndarray               # (snapshots, traders): equity / initial capital
    final_return: dict[int, float] = field(default_factory=dict)  # trader -> final return on capital

    def first_liquidation(self) -> dict[int, float]:
        """Trader account -> minutes of its first LiquidationStarted (traders only)."""
        out: dict[int, float] = {}
        for t, a in zip(self.liq_time.tolist(), self.liq_account.tolist()):
            if a in self.cohort_of:
                out.setdefault(a, t)
        return out


@dataclass
class StudyView:
    """A study directory read for the report."""

    out: Path
    study: dict
    scenario: Scenario
    worlds: list[str]
    seeds: list[int]
    cohort_rows: list[dict]                # summary.csv
    world_rows: list[dict]                 # worlds.csv
    ci: dict[tuple[str, str, str], dict]   # summary_ci.csv keyed by (world, cohort, metric)
    runs: list[RunView]

    @property
    def symbols(self) -> list[str]:
        return self.scenario.symbols

    def run(self, world: str, seed: int) -> RunView | None:
        return next((r for r in self.runs if r.world == world and r.seed == seed), None)

    def pairs(self) -> list[tuple[str, str]]:
        """(world, cohort) pairs in the tables' order (policy worlds, then the mixed world's cohorts)."""
        return list(dict.fromkeys((r["world"], r["cohort"]) for r in self.cohort_rows))


def load_study(out) -> StudyView:
    """Read ``out`` (a study directory) or raise :class:`InputError` saying what is missing."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(f"{out}: not a directory")
    study = read_study(out)
    for key in ("scenario", "worlds", "seeds", "runs"):
        if key not in study:
            raise InputError(f"{out / STUDY_FILE}: no {key!r} (not a complete study)")
    try:
        scenario = Scenario(study["scenario"])
    except (InputError, KeyError, TypeError) as exc:
        raise InputError(f"{out / STUDY_FILE}: its scenario is not valid ({exc})") from None
    for name in ("summary.csv", "worlds.csv", "summary_ci.csv"):
        if not (out / name).is_file():
            raise InputError(f"{out / name}: missing; rebuild the tables with summarize_study (exchange-sim report)")
    ci = {(r["world"], r["cohort"], r["metric"]): r for r in read_csv(out / "summary_ci.csv")}
    runs = [_read_run(out / run["dir"], run["world"], int(run["seed"]), scenario) for run in study["runs"]]
    return StudyView(out, study, scenario, list(study["worlds"]), [int(s) for s in study["seeds"]],
                     read_csv(out / "summary.csv"), read_csv(out / "worlds.csv"), ci, runs)


def _read_run(directory: Path, world: str, seed: int, scenario: Scenario) -> RunView:
    for name in _RUN_FILES:
        if not (directory / name).is_file():
            raise InputError(f"{directory / name}: missing (an unfinished or damaged run)")
    ticks = {i["symbol"]: float(Decimal(str(i["tick_size"]))) for i in scenario.raw["instruments"]}
    prices = pq.read_table(directory / "prices.parquet").to_pydict()
    synthetic = scenario["path.kind"] not in ("klines", "agg_trades")
    start_ns = scenario["path.start"] if synthetic else min(prices["time_ns"], default=0)

    def minutes(ns) -> np.ndarray:
        return (np.asarray(ns, dtype=np.float64) - start_ns) / 60e9

    # prices and the insurance fund per snapshot (a shared fund repeats one balance on every symbol)
    p_time = np.asarray(prices["time_ns"], dtype=np.int64)
    times_ns = np.unique(p_time)
    row = np.searchsorted(times_ns, p_time)
    symbols = np.asarray(prices["symbol"], dtype=object)
    by_symbol = {}
    for s in scenario.symbols:
        mask = symbols == s
        series = {}
        for kind in ("mark", "index", "last"):
            values = np.full(times_ns.size, np.nan)
            v = np.asarray(prices[f"{kind}_ticks"], dtype=np.float64)[mask]
            values[row[mask]] = np.where(v > 0, v * ticks[s], np.nan)
            series[kind] = values
        by_symbol[s] = series
    balance = np.asarray(prices["insurance_balance_units"], dtype=np.float64) / E8
    insurance = np.zeros(times_ns.size)
    if shared_fund(scenario):
        insurance[row] = balance
    else:
        np.add.at(insurance, row, balance)

    # traders and their final return on capital (as summary.cohort_rows defines it)
    t = pq.read_table(directory / "traders.parquet").to_pydict()
    cohort_of = dict(zip(t["account_id"], t["cohort"]))
    capital = dict(zip(t["account_id"], t["capital_units"]))
    acc = pq.read_table(directory / "accounts.parquet", columns=["account_id", "equity_units"]).to_pydict()
    final_equity: dict[int, int] = {}
    for a, e in zip(acc["account_id"], acc["equity_units"]):
        final_equity.setdefault(a, e)
    final_return = {a: return_on_capital(t, i, final_equity.get(a, 0)) for i, a in enumerate(t["account_id"])}

    # liquidations and ADL from the events
    ev = pq.read_table(directory / "events.parquet",
                       columns=["kind", "time_ns", "account_id", "symbol", "price_ticks", "liquidated"])
    ev = ev.filter(pc.is_in(ev["kind"], value_set=pa.array(_EVENT_KINDS)))
    e = {name: ev.column(name).to_pylist() for name in ev.column_names}
    liq = _liquidation_markers(e, scenario.symbols, ticks, by_symbol, times_ns)
    adl = [tn for k, tn, lq in zip(e["kind"], e["time_ns"], e["liquidated"]) if k == "ADLFill" and lq]

    # equity of each trader at each snapshot / its initial capital
    eq = pq.read_table(directory / "equity.parquet", columns=["time_ns", "account_id", "equity_units"])
    eq_time = eq["time_ns"].to_numpy()
    eq_acc = eq["account_id"].to_numpy()
    e_times, ti = np.unique(eq_time, return_inverse=True)
    e_accounts, ai = np.unique(eq_acc, return_inverse=True)
    ratio = np.full((e_times.size, e_accounts.size), np.nan)
    cap = np.array([capital.get(int(a), 0) or 1 for a in e_accounts], dtype=np.float64)
    ratio[ti, ai] = eq["equity_units"].to_numpy().astype(np.float64) / cap[ai]

    return RunView(world, seed, minutes(times_ns), by_symbol, insurance, cohort_of,
                   minutes(liq[0]), np.asarray(liq[1], dtype=np.int64), liq[2], np.asarray(liq[3], dtype=np.float64),
                   minutes(adl), minutes(e_times), e_accounts, ratio, final_return)


def _liquidation_markers(e: dict, symbols: list[str], ticks: dict, by_symbol: dict, times_ns: np.ndarray):
    """(times_ns, accounts, symbols, prices) of the LiquidationStarted events, placed as the module docstring says:
    the first liquidation fill of the account after the event (on the event's symbol unless it is the cross
    account's "") and before the account's next LiquidationStarted of the same part."""
    fills: dict[int, list[int]] = {}  # account -> event indices of its liquidation fills
    starts: dict[tuple[int, str], list[int]] = {}  # (account, part) -> event indices of its LiquidationStarted
    for i, (k, a, s, lq) in enumerate(zip(e["kind"], e["account_id"], e["symbol"], e["liquidated"])):
        if k == "LiquidationFill" or (k == "ADLFill" and lq):
            fills.setdefault(a, []).append(i)
        elif k == "LiquidationStarted":
            starts.setdefault((a, s), []).append(i)
    out_t, out_a, out_s, out_p = [], [], [], []
    for i, (k, a, s, tn) in enumerate(zip(e["kind"], e["account_id"], e["symbol"], e["time_ns"])):
        if k != "LiquidationStarted":
            continue
        following = starts[a, s][bisect_right(starts[a, s], i):]
        limit = following[0] if following else len(e["kind"])
        later = fills.get(a, [])
        hit = next((j for j in later[bisect_right(later, i):] if j < limit and (not s or e["symbol"][j] == s)), None)
        if hit is not None and e["price_ticks"][hit] is not None:
            symbol, price = e["symbol"][hit], e["price_ticks"][hit] * ticks[e["symbol"][hit]]
        else:  # no fill followed: the event's symbol (or the first) at the mark price of that moment
            symbol = s or symbols[0]
            mark = by_symbol[symbol]["mark"]
            j = max(0, min(len(mark) - 1, int(np.searchsorted(times_ns, tn, side="right")) - 1))
            price = float(mark[j]) if len(mark) else math.nan
        out_t.append(tn)
        out_a.append(a)
        out_s.append(symbol)
        out_p.append(price)
    return out_t, out_a, out_s, out_p


# ==== formatting =======================================================================================
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_usdt(units) -> str:
    """Units of 1e-8 → USDT with thousands separators (cents below 100 USDT)."""
    if _missing(units):
        return "–"
    x = float(units) / E8
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"
    return text.replace("-", "−")


def fmt_pct(share) -> str:
    return "–" if _missing(share) else f"{100 * float(share):.1f} %".replace("-", "−")


def fmt_min(seconds) -> str:
    return "–" if _missing(seconds) else f"{float(seconds) / 60:.1f} min"


def fmt_count(x) -> str:
    return "–" if _missing(x) else (f"{x:,.1f}" if float(x) != int(x) else f"{int(x):,}")


def fmt_ratio_pct(x) -> str:
    return "–" if _missing(x) else f"{100 * float(x):.2f} %"


# metric -> (column title, formatter, note)
COHORT_TABLE = (
    ("liquidated_share", "liquidated", fmt_pct, "share of the cohort's traders with ≥ 1 liquidation"),
    ("time_to_first_liquidation_s", "first liquidation", fmt_min, "minutes from the start to the cohort's first "
     "liquidation (seeds with one)"),
    ("return_on_capital_mean", "return mean", fmt_pct, "mean over traders of (final wealth − initial) / initial"),
    ("return_on_capital_median", "return median", fmt_pct, "median over traders"),
    ("return_on_capital_p05", "return 5 % quantile", fmt_pct, "5 % quantile over traders"),
    ("worst_loss_share", "worst loss", fmt_pct, "largest loss of one trader as a share of its capital"),
    ("loss_beyond_allocation_units", "loss beyond allocation (USDT)", fmt_usdt,
     "Σ over traders of the loss above the margin they allocated to positions"),
    ("fees_paid_units", "fees (USDT)", fmt_usdt, "trading and liquidation fees paid, Σ over the cohort"),
    ("funding_paid_units", "funding paid (USDT)", fmt_usdt, "Σ funding paid (negative: received)"),
)
VENUE_TABLE = (
    ("liquidation_volume_units", "liquidation volume (USDT)", fmt_usdt, "notional of all liquidation fills"),
    ("insurance_min_units", "insurance min (USDT)", fmt_usdt, "lowest Σ insurance fund balance"),
    ("insurance_end_units", "insurance end (USDT)", fmt_usdt, "Σ insurance fund balance at the end"),
    ("adl_events", "ADL fills", fmt_count, "auto-deleveraging fills of liquidated positions"),
    ("mark_last_deviation_max", "max |last − mark| / mark", fmt_ratio_pct, "largest deviation at a snapshot"),
)


def _ci_cell(row: dict | None, fmt, total_seeds: int) -> str:
    """A table cell: the mean, and under it the 95 % interval (or how many seeds had a value)."""
    if row is None or _missing(row["mean"]):
        return '<td class="num"><span class="na" title="no seed has a value">–</span></td>'
    text = _esc(fmt(row["mean"]))
    n = row["seeds"] or 0
    if n >= 2:
        text += f'<br><span class="ci">[{_esc(fmt(row["ci_low"]))}, {_esc(fmt(row["ci_high"]))}]</span>'
    if n < total_seeds:
        text += f'<br><span class="ci">{n} of {total_seeds} seeds</span>'
    return f'<td class="num">{text}</td>'


def _across(n: int, interval: str) -> str:
    """The tables' note on what a cell holds."""
    return "One seed: each cell is that seed's value" if n == 1 else f"Mean across {n} seeds; {interval}"


def _swatch(name: str) -> str:
    return f'<span class="sw" style="background:{colour(name)}"></span>'


# ==== the page's sections ==============================================================================
def _header(v: StudyView) -> str:
    raw = v.scenario.raw
    return (f"<h1>Margin-mode study: {_esc(raw['name'])}</h1>\n"
            f'<p class="lead">{_esc(raw.get("description") or "(no description)")}</p>\n')


def _what_was_run(v: StudyView) -> str:
    raw = v.scenario.raw
    insts = ", ".join(f"{i['symbol']} (start {i['price']}, tick {i['tick_size']}, lot {i['lot_size']}, max leverage "
                      f"{i['max_leverage']}, fees {i['maker_fee']} / {i['taker_fee']})" for i in raw["instruments"])
    p = raw["path"]
    kind = p["kind"]
    keys = {"crash_recovery": ("drop", "recovery", "pre", "crash", "hold", "recovery_time", "post", "volatility",
                               "correlation"),
            "gbm_jump": ("duration", "drift", "volatility", "jump_intensity", "jump_mean", "jump_std", "correlation"),
            "regime_switching": ("duration", "regimes", "transition", "correlation"),
            "klines": ("files", "gaps"), "agg_trades": ("files",)}.get(kind, ())
    path = ", ".join(f"{k} {p[k]}" for k in keys if p.get(k) is not None)
    n = len(v.symbols)
    t = raw["traders"]
    mk, ar, nz, mo = raw["makers"], raw["arbitrageurs"], raw["noise"], raw["momentum"]
    reserve = f" + {t['reserve']} USDT reserve" if v.scenario["traders.reserve"] else ""
    population = (f"{_plural(mk['per_symbol'] * n, 'market maker')}, {_plural(ar['count'] * n, 'arbitrageur')}, "
                  f"{nz['per_symbol'] * n} noise and {_plural(mo['per_symbol'] * n, 'momentum taker')} "
                  f"(per symbol: {mk['per_symbol']}, {ar['count']}, {nz['per_symbol']}, {mo['per_symbol']}); "
                  f"{t['count']} leveraged traders with {t['capital']} USDT each"
                  f"{reserve}, {_plural(t['intentions'], 'intention')} each, leverage from {t['leverages']}, "
                  f"long with probability {t['long_prob']}, entering {t['entry_window'][0]}–{t['entry_window'][1]} "
                  f"after the start, holding {t['hold'][0]}–{t['hold'][1]}")
    pol = raw["policies"]
    policies = (f"isolated: {pol['isolated']['share']} of capital per position; cross: {pol['cross']['share']}; "
                f"hybrid: {pol['hybrid']['isolated_share']} isolated on "
                f"{pol['hybrid']['conviction_symbol'] or v.symbols[0]}, {pol['hybrid']['share']} cross otherwise; "
                f"dynamic: {pol['dynamic']['share']}, to cross at a {pol['dynamic']['defend_ratio']} margin ratio, "
                f"back to isolated above {pol['dynamic']['extreme_vol']} volatility")
    mixed = (f" In the <i>mixed</i> world trader <i>i</i> uses policy <i>i</i> mod 4, so each cohort has "
             f"about {t['count'] // 4} traders." if MIXED in v.worlds else "")
    runs = len(v.study["runs"])
    items = [
        ("instruments", _esc(insts) + f"; venue profile {_esc(raw['profile'])}; insurance fund "
                                      f"{_esc(raw['insurance']['fund'])} USDT per symbol"),
        ("price path", f"{_esc(kind)}: {_esc(path)} (bar {_esc(p['bar'])}, starting at {_esc(p['start'])})"),
        ("population", _esc(population)),
        ("policies", _esc(policies)),
        ("worlds", _esc(", ".join(v.worlds)) + " — the same path, population and intentions in each world, "
                   "every trader using the world's policy." + mixed),
        ("seeds", f"{_esc(', '.join(map(str, v.seeds)))} ({_plural(len(v.seeds), 'seed')}, "
                  f"{_plural(runs, 'run')}); a seed fixes the price path and the traders' intentions"),
        ("implementation", _esc(v.study.get("implementation", "?"))),
    ]
    rows = "\n".join(f"<tr><th>{k}</th><td>{val}</td></tr>" for k, val in items)
    return f'<h2 id="run">What was run</h2>\n<table class="kv">\n{rows}\n</table>\n'


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _findings(v: StudyView) -> str:
    """One paragraph of facts read from the tables (no interpretation the numbers do not carry)."""
    facts = []
    n = len(v.seeds)
    pairs = v.pairs()
    label = {p: f"{p[1]} traders in the {p[0]} world" for p in pairs}

    def means(metric: str) -> dict:
        values = {p: v.ci.get((*p, metric), {}).get("mean") for p in pairs}
        return {p: x for p, x in values.items() if not _missing(x)}

    share = means("liquidated_share")
    if share and max(share.values()) == 0:
        facts.append("No leveraged trader was liquidated.")
    elif share and max(share.values()) == min(share.values()):
        facts.append(f"Every cohort had the same share of traders liquidated ({fmt_pct(max(share.values()))}).")
    elif share:
        hi, lo = max(share, key=share.get), min(share, key=share.get)
        facts.append(f"The highest share of traders liquidated was among {label[hi]} ({fmt_pct(share[hi])}, mean "
                     f"over {_plural(n, 'seed')}); the lowest among {label[lo]} ({fmt_pct(share[lo])}).")
    iso = [r for r in v.cohort_rows if r["cohort"] == "isolated"]
    if iso:
        bad = [r for r in iso if (r["loss_beyond_allocation_units"] or 0) > 0]
        names = list(dict.fromkeys(r["world"] for r in iso))
        worlds = " and ".join(names) + (" worlds" if len(names) > 1 else " world")
        if not bad:
            facts.append(f"Isolated-margin traders never lost more than the margin they allocated: their loss beyond "
                         f"allocation was 0 in every seed ({_plural(len(iso), 'run')}, {worlds}).")
        else:
            facts.append(f"Isolated-margin traders lost more than they allocated in {len(bad)} of "
                         f"{_plural(len(iso), 'run')} (in total "
                         f"{fmt_usdt(sum(r['loss_beyond_allocation_units'] for r in bad))} USDT).")
    beyond = []
    for p in pairs:
        rows = [r for r in v.cohort_rows if (r["world"], r["cohort"]) == p]
        k = sum((r["loss_beyond_allocation_units"] or 0) > 0 for r in rows)
        if k and p[1] != "isolated":
            mean = v.ci.get((*p, "loss_beyond_allocation_units"), {}).get("mean")
            beyond.append(f"{label[p]} in {k} of {_plural(len(rows), 'seed')} (mean {fmt_usdt(mean)} USDT)")
    if beyond:
        facts.append("Other traders lost more than they allocated: " + "; ".join(beyond) + ".")
    ret = means("return_on_capital_mean")
    if len(ret) > 1:
        hi, lo = max(ret, key=ret.get), min(ret, key=ret.get)
        facts.append(f"Mean return on capital ranged from {fmt_pct(ret[lo])} ({label[lo]}) to "
                     f"{fmt_pct(ret[hi])} ({label[hi]}).")
    if v.world_rows:
        low = min(v.world_rows, key=lambda r: r["insurance_min_units"])
        if low["insurance_min_units"] >= low["insurance_start_units"]:
            facts.append("The insurance fund (Σ over symbols) never fell below its starting balance.")
        else:
            facts.append(f"The insurance fund (Σ over symbols) fell lowest in the {low['world']} world: to "
                         f"{fmt_usdt(low['insurance_min_units'])} USDT in seed {low['seed']}, from "
                         f"{fmt_usdt(low['insurance_start_units'])} USDT at the start.")
        negative = [r for r in v.world_rows if r["insurance_min_units"] < 0]
        if negative:
            where = ", ".join(f"{r['world']} seed {r['seed']}" for r in negative)
            facts.append(f"It went below zero in {len(negative)} of {_plural(len(v.world_rows), 'run')} ({where}).")
        adl = [r for r in v.world_rows if r["adl_events"] > 0]
        if adl:
            where = ", ".join(f"{r['world']} seed {r['seed']} ({_plural(r['adl_events'], 'fill')})" for r in adl)
            facts.append(f"Auto-deleveraging closed liquidated positions in {len(adl)} of "
                         f"{_plural(len(v.world_rows), 'run')}: {where}.")
        else:
            facts.append("No run needed auto-deleveraging.")
    if n == 1:
        facts.append("With one seed there is no interval across seeds: every number is a single sample.")
    elif n < 10:
        facts.append(f"With {n} seeds the 95 % intervals are wide (a t-interval may extend past the possible "
                     f"range); a difference whose intervals overlap is not established by these runs.")
    return '<h2 id="findings">Findings</h2>\n<p class="findings">' + " ".join(_esc(f) for f in facts) + "</p>\n"


def _cohort_table(v: StudyView) -> str:
    n = len(v.seeds)
    traders = {}
    for r in v.cohort_rows:
        traders.setdefault((r["world"], r["cohort"]), []).append(r["traders"])
    head = "".join(f'<th title="{_esc(note)}">{_esc(title)}</th>' for _, title, _, note in COHORT_TABLE)
    body = []
    for world, cohort in v.pairs():
        cells = "".join(_ci_cell(v.ci.get((world, cohort, m)), fmt, n) for m, _, fmt, _ in COHORT_TABLE)
        count = traders.get((world, cohort), [0])
        body.append(f"<tr><td>{_esc(world)}</td><td>{_swatch(cohort)}{_esc(cohort)}</td>"
                    f'<td class="num">{_esc(fmt_count(sum(count) / len(count)))}</td>{cells}</tr>')
    notes = "; ".join(f"<i>{_esc(title)}</i>: {_esc(note)}" for _, title, _, note in COHORT_TABLE)
    return ('<h2 id="tables">Leveraged traders by world and cohort</h2>\n'
            f'<p class="note">{_across(n, "below it the 95 % Student-t interval across seeds")}. '
            f"Final wealth = final equity + unused reserve. {notes}.</p>\n"
            '<table class="data" id="cohort-table"><thead><tr><th>world</th><th>cohort</th><th>traders</th>'
            f"{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>\n")


def _venue_table(v: StudyView) -> str:
    n = len(v.seeds)
    head = "".join(f'<th title="{_esc(note)}">{_esc(title)}</th>' for _, title, _, note in VENUE_TABLE)
    means = {}
    for r in v.world_rows:
        means.setdefault(r["world"], []).append(r)
    body = []
    for world in dict.fromkeys(r["world"] for r in v.world_rows):
        rows = means[world]
        liq = sum(r["liquidations"] for r in rows) / len(rows)
        accounts = sum(r["liquidated_accounts"] for r in rows) / len(rows)
        cells = "".join(_ci_cell(v.ci.get((world, "*", m)), fmt, n) for m, _, fmt, _ in VENUE_TABLE)
        body.append(f"<tr><td>{_swatch(world)}{_esc(world)}</td><td class=\"num\">{_esc(fmt_count(liq))}</td>"
                    f'<td class="num">{_esc(fmt_count(accounts))}</td>{cells}</tr>')
    return ('<h3>The venue by world</h3>\n'
            f'<p class="note">{_across(n, "below it the 95 % interval")}. Liquidations count every LiquidationStarted '
            "event (an account liquidated twice, or one isolated position after another, counts each time); "
            "liquidated accounts include market participants. Insurance: Σ over the symbols' funds.</p>\n"
            '<table class="data" id="venue-table"><thead><tr><th>world</th><th>liquidations</th>'
            f"<th>liquidated accounts</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table>\n")


def _per_seed_tables(v: StudyView) -> str:
    """The per-seed rows of summary.csv and worlds.csv, folded."""
    cols = (("world", str), ("cohort", str), ("seed", str), ("traders", fmt_count), ("liquidated", fmt_count),
            ("deleveraged", fmt_count), ("time_to_first_liquidation_s", fmt_min),
            ("return_on_capital_mean", fmt_pct), ("worst_loss_share", fmt_pct),
            ("loss_beyond_allocation_units", fmt_usdt), ("loss_beyond_allocation_traders", fmt_count),
            ("final_equity_units", fmt_usdt), ("fees_paid_units", fmt_usdt), ("entries", fmt_count),
            ("reentries", fmt_count), ("switches", fmt_count))
    wcols = (("world", str), ("seed", str), ("liquidations", fmt_count), ("liquidated_accounts", fmt_count),
             ("liquidation_volume_units", fmt_usdt), ("insurance_takeovers", fmt_count), ("adl_events", fmt_count),
             ("adl_volume_units", fmt_usdt), ("insurance_start_units", fmt_usdt), ("insurance_min_units", fmt_usdt),
             ("insurance_end_units", fmt_usdt), ("insurance_paid_units", fmt_usdt),
             ("mark_last_deviation_max", fmt_ratio_pct), ("mark_last_deviation_mean", fmt_ratio_pct))

    def label(column: str) -> str:
        column = re.sub(r"_units$", " (USDT)", column)
        column = re.sub(r"_s$", " (min)", column)
        return column.replace("_", " ")

    def cell(value, fmt) -> str:
        if fmt is str:
            return f"<td>{_esc('' if value is None else value)}</td>"
        return f'<td class="num">{_esc(fmt(value))}</td>'

    def table(rows, columns, ident):
        head = "".join(f"<th>{_esc(label(c))}</th>" for c, _ in columns)
        body = "\n".join("<tr>" + "".join(cell(r.get(c), f) for c, f in columns) + "</tr>" for r in rows)
        return f'<table class="data small" id="{ident}"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'

    return ('<details><summary>Per-seed rows (summary.csv, worlds.csv)</summary>\n'
            + table(v.cohort_rows, cols, "per-seed-cohorts") + "\n"
            + table(v.world_rows, wcols, "per-seed-worlds") + "\n</details>\n")


# ==== plots ============================================================================================
#: matplotlib settings of the report's figures (applied with rc_context: the caller's settings stay untouched)
_RC = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "axes.grid": True,
       "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100,
       "savefig.dpi": 100}


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize, **kwargs):
    """A constrained-layout figure and its axes. The figure is a bare :class:`matplotlib.figure.Figure` (no
    pyplot), so building a report selects no backend and leaves no figure open in the caller's process."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _png(fig) -> str:
    """The figure as an inline <img> (base64 PNG, drawn by Agg)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _shade_crash(ax, v: StudyView, label: bool = False) -> None:
    """Shade the crash segment of a crash-and-recovery path (minutes from the start)."""
    if v.scenario["path.kind"] != "crash_recovery":
        return
    pre, crash = v.scenario["path.pre"] / 60e9, v.scenario["path.crash"] / 60e9
    ax.axvspan(pre, pre + crash, color="#f4c7c3", alpha=0.35, lw=0, label="crash" if label else None, zorder=0)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#777")


def _time_axis(ax) -> None:
    ax.set_xlabel("minutes from the run start")


def _marker_world(v: StudyView) -> list[str]:
    return [MIXED] if MIXED in v.worlds else list(v.worlds)


def plot_prices(v: StudyView):
    """a. Per symbol (first seed): index, mark and each world's last price with liquidation markers by cohort, and
    under it each world's last − mark in % of the mark; at the bottom a strip of every world's liquidation times."""
    seed = v.seeds[0]
    runs = [r for r in (v.run(w, seed) for w in v.worlds) if r is not None]
    base = v.run(_marker_world(v)[0], seed) or runs[0]
    n = len(v.symbols)
    strip_h = 0.32 * len(runs) + 0.5
    ratios = [2.8, 1.0] * n + [strip_h]
    fig, axes = _subplots(2 * n + 1, 1, figsize=(11, sum(ratios) + 0.6), sharex=True,
                          gridspec_kw={"height_ratios": ratios})
    marker_runs = [r for r in runs if r.world in _marker_world(v)]
    cohorts = list(dict.fromkeys(c for r in runs for c in r.cohort_of.values()))
    handles: dict[str, object] = {}
    for k, symbol in enumerate(v.symbols):
        ax, dev = axes[2 * k], axes[2 * k + 1]
        _shade_crash(ax, v, label=True)
        _shade_crash(dev, v)
        for r in runs:
            last, mark = r.prices[symbol]["last"], r.prices[symbol]["mark"]
            (h,) = ax.plot(r.times, last, color=colour(r.world), lw=0.7, alpha=0.6,
                           label=f"last price ({r.world} world)")
            handles.setdefault(h.get_label(), h)
            dev.plot(r.times, 100 * (last - mark) / mark, color=colour(r.world), lw=0.6, alpha=0.75)
        for label, style in (("index", dict(ls="--", lw=1.1)), ("mark", dict(lw=0.9))):
            (h,) = ax.plot(base.times, base.prices[symbol][label], color="black", label=f"{label} price", **style)
            handles.setdefault(h.get_label(), h)
        for cohort in cohorts:
            pts = [(t, p) for r in marker_runs
                   for t, a, s, p in zip(r.liq_time, r.liq_account, r.liq_symbol, r.liq_price)
                   if s == symbol and r.cohort_of.get(int(a)) == cohort]
            h = ax.scatter([t for t, _ in pts], [p for _, p in pts], s=28, color=colour(cohort), edgecolor="black",
                           linewidth=0.5, zorder=5, label=f"liquidation: {cohort} trader")
            handles.setdefault(h.get_label(), h)
        ax.set_ylabel(f"{symbol} (USDT)")
        ax.yaxis.set_major_formatter(_thousands())
        ax.set_title(f"{symbol}, seed {seed}: markers = liquidations of leveraged traders in the "
                     f"{' / '.join(_marker_world(v))} world, at their first liquidation fill")
        dev.axhline(0, color="black", lw=0.6)
        dev.set_ylabel("last − mark\n(% of mark)")
    handles.setdefault("crash", axes[0].patches[0] if axes[0].patches else None)
    handles = {k: h for k, h in handles.items() if h is not None}
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", frameon=False)
    strip = axes[-1]
    _shade_crash(strip, v)
    for row, r in enumerate(runs):
        traders = [i for i, a in enumerate(r.liq_account) if int(a) in r.cohort_of]
        strip.scatter(r.liq_time[traders], np.full(len(traders), row), s=18, marker="|", linewidths=1.4,
                      color=[colour(r.cohort_of[int(r.liq_account[i])]) for i in traders])
    strip.set_yticks(range(len(runs)), [f"{r.world} world" for r in runs])
    strip.set_ylim(len(runs) - 0.5, -0.5)
    strip.set_title(f"liquidations of leveraged traders in each world, seed {seed} (colour = cohort)", fontsize=9)
    strip.grid(axis="y", alpha=0)
    _time_axis(strip)
    return fig


def _align(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values`` (first axis over ``times``) sampled on ``grid``: the last value at or before each grid time."""
    if times.size == 0:
        return np.full((grid.size, *values.shape[1:]), np.nan)
    if times.size == grid.size and np.array_equal(times, grid):
        return values
    idx = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, times.size - 1)
    return values[idx]


def _grid(v: StudyView) -> np.ndarray:
    return v.runs[0].times if v.runs else np.zeros(0)


def plot_liquidations(v: StudyView):
    """b. Cumulative number of liquidated traders over time, one panel per world, one line per cohort
    (mean across seeds, thin lines: each seed)."""
    grid = _grid(v)
    cols = min(len(v.worlds), 3)
    rows = math.ceil(len(v.worlds) / cols)
    fig, axes = _subplots(rows, cols, figsize=(11, 2.9 * rows + 0.3), sharex=True, sharey=True, squeeze=False)
    handles = {}
    for ax, world in zip(axes.flat, v.worlds):
        _shade_crash(ax, v)
        runs = [r for r in v.runs if r.world == world]
        cohorts = list(dict.fromkeys(c for r in runs for c in r.cohort_of.values()))
        for cohort in cohorts:
            curves = []
            for r in runs:
                first = [t for a, t in r.first_liquidation().items() if r.cohort_of[a] == cohort]
                curve = np.searchsorted(np.sort(first), grid, side="right").astype(float)
                curves.append(curve)
                ax.plot(grid, curve, color=colour(cohort), lw=0.6, alpha=0.35)
            (h,) = ax.plot(grid, np.mean(curves, axis=0), color=colour(cohort), lw=2, label=cohort)
            handles[cohort] = h
        size = sum(1 for r in runs[:1] for _ in r.cohort_of)
        ax.set_title(f"{world} world ({size} traders)")
        ax.tick_params(labelbottom=True)
    _label_grid(axes, len(v.worlds), "liquidated traders")
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", frameon=False, title="cohort")
    return fig


def _label_grid(axes, used: int, ylabel: str) -> None:
    """Axis labels on a grid of panels: y on the first column, x under the lowest panel of each column; unused
    panels hidden."""
    rows, cols = axes.shape
    for k, ax in enumerate(axes.flat):
        if k >= used:
            ax.axis("off")
            continue
        i, j = divmod(k, cols)
        if j == 0:
            ax.set_ylabel(ylabel)
        if k + cols >= used:
            _time_axis(ax)


def plot_insurance(v: StudyView):
    """c. Σ insurance fund over time per world: each seed thin, the mean across seeds bold."""
    grid = _grid(v)
    fig, ax = _subplots(figsize=(11, 3.8))
    _shade_crash(ax, v, label=True)
    lowest = math.inf
    for world in v.worlds:
        series = [_align(r.times, r.insurance, grid) for r in v.runs if r.world == world]
        for s in series:
            ax.plot(grid, s, color=colour(world), lw=0.6, alpha=0.4)
            lowest = min(lowest, float(np.nanmin(s)) if s.size else math.inf)
        if series:
            ax.plot(grid, np.mean(series, axis=0), color=colour(world), lw=2.2, label=f"{world} (mean)")
    if lowest < 0:
        ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("insurance fund, Σ symbols (USDT)")
    ax.yaxis.set_major_formatter(_thousands())
    ax.set_title("Insurance fund by world (thin: each seed; bold: mean across seeds)")
    _time_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    return fig


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{x:,.0f}")


def plot_adl(v: StudyView):
    """d. ADL fills of liquidated positions: per world and seed (bars) and cumulative over time (mean)."""
    grid = _grid(v)
    fig, (left, right) = _subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 1.4]})
    counts = {(r["world"], r["seed"]): r["adl_events"] for r in v.world_rows}
    width = 0.8 / max(1, len(v.seeds))
    for j, seed in enumerate(v.seeds):
        xs = np.arange(len(v.worlds)) + (j - (len(v.seeds) - 1) / 2) * width
        heights = [counts.get((w, seed), 0) for w in v.worlds]
        bars = left.bar(xs, heights, width=width * 0.92, color=[colour(w) for w in v.worlds],
                        alpha=0.45 + 0.55 * (j + 1) / len(v.seeds), edgecolor="black", linewidth=0.3)
        left.bar_label(bars, labels=[str(h) for h in heights], fontsize=7, padding=1)
    left.set_xticks(range(len(v.worlds)), v.worlds)
    left.set_ylabel("ADL fills (liquidated side)")
    left.set_title(f"per world and seed (bars left to right: seed {', '.join(map(str, v.seeds))})")
    left.grid(axis="x", alpha=0)
    total = sum(counts.values())
    left.set_ylim(0, max(1, max(counts.values(), default=0)) * 1.12)
    if total == 0:
        _empty(left, "no auto-deleveraging in any run")
    _shade_crash(right, v)
    for world in v.worlds:
        curves = [np.searchsorted(np.sort(r.adl_times), grid, side="right") for r in v.runs if r.world == world]
        if curves:
            right.plot(grid, np.mean(curves, axis=0), color=colour(world), lw=2, label=world)
    right.set_ylim(bottom=0)
    right.set_ylabel("cumulative ADL fills\n(mean across seeds)")
    right.set_title("over time")
    _time_axis(right)
    right.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    if total == 0:
        _empty(right, "no auto-deleveraging in any run")
    return fig


def plot_equity_fans(v: StudyView):
    """e. Equity / initial capital over time per (world, cohort): median, 25–75 % and 5–95 % bands across the
    cohort's traders and all seeds."""
    grid = _grid(v)
    panels = v.pairs()  # policy worlds on the first row, the mixed world's cohorts on the second
    column = {c: j for j, c in enumerate(dict.fromkeys(c for _, c in panels))}  # one column per policy
    own = any(w != MIXED for w, _ in panels)
    rows = own + any(w == MIXED for w, _ in panels) or 1
    cols = max(len(column), 1)
    fig, axes = _subplots(rows, cols, figsize=(11, 2.8 * rows + 0.6), sharex=True, sharey=True, squeeze=False)
    layout = [(int(own and w == MIXED), column[c], (w, c)) for w, c in panels]
    used = set()
    for i, j, (world, cohort) in layout:
        ax = axes[i, j]
        used.add((i, j))
        blocks = []
        for r in v.runs:
            if r.world != world:
                continue
            cols_ = [k for k, a in enumerate(r.equity_accounts) if r.cohort_of.get(int(a)) == cohort]
            if cols_:
                blocks.append(_align(r.equity_times, r.equity_ratio[:, cols_], grid))
        _shade_crash(ax, v)
        ax.axhline(1.0, color="black", lw=0.6, alpha=0.6)
        if not blocks:
            _empty(ax, "no traders")
        else:
            x = np.concatenate(blocks, axis=1)
            q = np.nanquantile(x, [0.05, 0.25, 0.5, 0.75, 0.95], axis=1)
            c = colour(cohort)
            ax.fill_between(grid, q[0], q[4], color=c, alpha=0.15, lw=0, label="5–95 %")
            ax.fill_between(grid, q[1], q[3], color=c, alpha=0.35, lw=0, label="25–75 %")
            ax.plot(grid, q[2], color=c, lw=1.8, label="median")
            ax.text(0.98, 0.04, f"{x.shape[1]} trader-runs", transform=ax.transAxes, ha="right", fontsize=8,
                    color="#555")
        ax.set_title(f"{cohort} world" if world == cohort else f"{cohort} in the {world} world", fontsize=9)
        if j == 0:
            ax.set_ylabel("equity / initial capital")
        if i == rows - 1:
            _time_axis(ax)
    for (i, j) in [(i, j) for i in range(rows) for j in range(cols)]:
        if (i, j) not in used:
            axes[i, j].axis("off")
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    fig.legend([Line2D([], [], color="#444", lw=1.8), Patch(color="#444", alpha=0.45),
                Patch(color="#444", alpha=0.18)], ["median", "25–75 %", "5–95 %"],
               loc="outside right upper", frameon=False, title="across traders\nand seeds")
    return fig


def plot_survival(v: StudyView):
    """f. Share of each cohort's traders not yet liquidated over time (pooled over seeds): the policy worlds on
    the left, the mixed world's cohorts on the right."""
    grid = _grid(v)
    groups = [("each policy in its own world", [p for p in v.pairs() if p[0] != MIXED]),
              ("cohorts of the mixed world", [p for p in v.pairs() if p[0] == MIXED])]
    groups = [g for g in groups if g[1]] or [("no leveraged traders", [])]
    fig, axes = _subplots(1, len(groups), figsize=(11, 3.6), sharey=True, squeeze=False)
    handles = {}
    for ax, (title, pairs) in zip(axes[0], groups):
        _shade_crash(ax, v)
        counts = []
        for world, cohort in pairs:
            first, count = [], 0
            for r in v.runs:
                if r.world != world:
                    continue
                liq = r.first_liquidation()
                members = [a for a, c in r.cohort_of.items() if c == cohort]
                count += len(members)
                first += [liq[a] for a in members if a in liq]
            if count:
                alive = 1 - np.searchsorted(np.sort(first), grid, side="right") / count
                (h,) = ax.step(grid, 100 * alive, where="post", color=colour(cohort), lw=2, label=cohort)
                handles.setdefault(cohort, h)
                counts.append(count)
        ax.set_ylim(-3, 103)
        ax.set_ylabel("not yet liquidated (%)")
        size = f"{counts[0]} trader-runs per cohort" if len(set(counts)) == 1 else "trader-runs pooled over seeds"
        ax.set_title(f"{title} ({size})")
        _time_axis(ax)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", frameon=False, title="cohort")
    return fig


def plot_loss_distribution(v: StudyView):
    """g. Final return on capital per trader, per (world, cohort), pooled over seeds: box plot and points."""
    pairs = v.pairs()
    data = []
    for world, cohort in pairs:
        data.append([100 * r.final_return[a] for r in v.runs if r.world == world
                     for a, c in r.cohort_of.items() if c == cohort])
    fig, ax = _subplots(figsize=(11, 3.9))
    positions = np.arange(len(pairs))
    rng = np.random.default_rng(0)  # jitter only
    nonempty = [i for i, d in enumerate(data) if d]
    if nonempty:
        box = ax.boxplot([data[i] for i in nonempty], positions=positions[nonempty], widths=0.55,
                         patch_artist=True, showfliers=False, medianprops={"color": "black"})
        for patch, i in zip(box["boxes"], nonempty):
            patch.set_facecolor(colour(pairs[i][1]))
            patch.set_alpha(0.35)
    for i, d in enumerate(data):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=9, color=colour(pairs[i][1]), alpha=0.7,
                   edgecolor="none", zorder=3)
    ax.axhline(0, color="black", lw=0.7)
    if min((min(d) for d in data if d), default=0) < -50:  # the whole capital lost: only where it is in range
        ax.axhline(-100, color="#999", lw=0.7, ls=":")
    ax.set_xticks(positions, [f"{c}\n({w} world)" if w != MIXED else f"{c}\n(mixed world)" for w, c in pairs])
    ax.set_ylabel("final return on capital (%)")
    ax.set_title("Final return on capital per trader (points: every trader of every seed; box: quartiles, "
                 "whiskers 1.5 IQR)")
    ax.grid(axis="x", alpha=0)
    if MIXED in v.worlds and any(w != MIXED for w, _ in pairs):
        split = sum(1 for w, _ in pairs if w != MIXED) - 0.5
        ax.axvline(split, color="#bbb", lw=1)
    return fig


PLOTS = (
    ("prices", "Prices and liquidations", plot_prices,
     "Seed {seed}: index (dashed) and mark (solid black), with each world's last trade price in the world's "
     "colour; under each symbol, last − mark in % of the mark. Markers: each liquidation of a leveraged trader in "
     "the {markers} world, at the price of its first liquidation fill, coloured by cohort (a cross-account "
     "liquidation is drawn on the symbol of that fill). The strip at the bottom shows every world's liquidation "
     "times for the same seed. Shaded: the crash."),
    ("liquidations", "Liquidations over time", plot_liquidations,
     "Cumulative number of distinct traders liquidated at least once, by cohort; bold: mean across seeds, thin: "
     "each seed."),
    ("insurance", "Insurance fund", plot_insurance,
     "The insurance fund's balance summed over the symbols, in USDT."),
    ("adl", "Auto-deleveraging", plot_adl,
     "ADL fills on the liquidated side (the venue closing a bankrupt position against profitable opposite "
     "positions), per world and seed, and cumulatively over time."),
    ("equity", "Equity fans", plot_equity_fans,
     "Each leveraged trader's equity (cross margin balance + isolated margin balances) divided by its initial "
     "capital, at every snapshot; the bands are quantiles across the cohort's traders of all seeds."),
    ("survival", "Survival", plot_survival,
     "Share of the cohort's trader-runs not yet liquidated (the account's first LiquidationStarted: of an isolated "
     "position or of its cross account), pooled over seeds — the complement of the table's share liquidated."),
    ("returns", "Distribution of final returns", plot_loss_distribution,
     "Final return on capital per trader: (final equity + unused reserve − capital − reserve) / (capital + "
     "reserve), as in summary.csv. −100 % (dotted): the whole capital lost."),
)


def _plots(v: StudyView) -> str:
    import matplotlib

    parts = ['<h2 id="plots">Plots</h2>']
    for i, (ident, title, fn, caption) in enumerate(PLOTS):
        letter = "abcdefg"[i] if i < 7 else str(i)
        text = caption.format(seed=v.seeds[0], markers=" / ".join(_marker_world(v)))
        with matplotlib.rc_context(_RC):
            image = _png(fn(v))
        parts.append(f'<section class="plot" id="plot-{ident}"><h3>{letter}. {_esc(title)}</h3>\n'
                     f"{image}\n<p class=\"caption\">{_esc(text)}</p></section>")
    return "\n".join(parts) + "\n"


# ==== footer ===========================================================================================
def scenario_toml(raw: dict) -> str:
    """The scenario's raw mapping as TOML text that :func:`~exchange.sim.scenario.load_scenario` reads back to
    the same mapping (``None`` values are left out: they are the defaults)."""
    lines: list[str] = []

    def key(k: str) -> str:
        return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)

    def value(x) -> str:
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, (int, float)):
            return repr(x)
        if isinstance(x, str):
            return json.dumps(x, ensure_ascii=False)
        if isinstance(x, list):
            return "[" + ", ".join(value(i) for i in x) + "]"
        if isinstance(x, dict):
            return "{" + ", ".join(f"{key(k)} = {value(i)}" for k, i in x.items() if i is not None) + "}"
        raise TypeError(f"cannot write {x!r} as TOML")

    def table(mapping: dict, prefix: str) -> None:
        for k, x in mapping.items():
            if x is not None and not isinstance(x, dict) and not _is_table_list(x):
                lines.append(f"{key(k)} = {value(x)}")
        for k, x in mapping.items():
            name = f"{prefix}.{key(k)}" if prefix else key(k)
            if _is_table_list(x):
                for item in x:
                    lines.extend(["", f"[[{name}]]"])
                    table(item, name)
            elif isinstance(x, dict):
                lines.extend(["", f"[{name}]"])
                table(x, name)

    table(raw, "")
    return "\n".join(lines).strip() + "\n"


def _is_table_list(x) -> bool:
    return isinstance(x, list) and bool(x) and all(isinstance(i, dict) for i in x)


def _footer(v: StudyView) -> str:
    files = [
        ("study.json", "what was run: the scenario, worlds, seeds, run directories, implementation"),
        ("summary.csv", "one row per (world, cohort, seed) of leveraged traders"),
        ("worlds.csv", "one row per (world, seed): the venue's view"),
        ("summary_ci.csv", "per (world, cohort, metric): mean and 95 % interval across seeds (cohort * = venue)"),
        ("runs/&lt;world&gt;/seed-&lt;seed&gt;/", "events, metrics, prices, equity, traders and accounts (Parquet), "
                                                  "the journal (journal.exj) and manifest.json of each run"),
        ("report.html", "this page"),
    ]
    file_rows = "\n".join(f"<tr><th><code>{name}</code></th><td>{_esc(text)}</td></tr>" for name, text in files)
    toml = scenario_toml(v.scenario.raw)
    return (
        '<h2 id="reproduce">Reproduce</h2>\n'
        "<p>Save the scenario below (seeds included) as <code>scenario.toml</code> and run the study (each run is "
        "deterministic: the same scenario and seeds give byte-identical CSV files); the second command rebuilds the "
        "tables and this page from the Parquet files without re-running:</p>\n"
        f"<pre>exchange-sim study margin-modes --scenario scenario.toml --out OUT\n"
        f"exchange-sim report OUT</pre>\n"
        "<p>The default scenario alone: <code>exchange-sim study margin-modes</code>.</p>\n"
        f"<details><summary>scenario.toml</summary><pre>{_esc(toml)}</pre></details>\n"
        f'<h3>Files in <code>{_esc(v.out.name or str(v.out))}</code></h3>\n<table class="kv">\n{file_rows}\n</table>\n'
        '<p class="note">Units: money in the files is integer units of 10⁻⁸ USDT (<code>*_units</code>), prices '
        "integer ticks of the instrument's tick size (<code>*_ticks</code>), quantities lots, times ns; this page "
        "shows USDT, prices in USDT and minutes from the run start. Shares and returns are computed from the "
        "integers. See docs/recording.md for the Parquet columns.</p>\n")


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;max-width:1180px;margin:24px auto;
padding:0 16px;line-height:1.45;font-size:14px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:20px 0 6px}.lead{color:#444;margin-top:0}
.findings{background:#f6f8fa;border-left:4px solid #4a7bb7;padding:10px 14px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{padding:3px 7px;vertical-align:top}
table.kv th{text-align:left;white-space:nowrap;color:#444;font-weight:600;padding-right:14px}
table.data{font-size:12.5px;font-variant-numeric:tabular-nums}
table.data th{background:#eef1f5;border-bottom:1px solid #bbb;text-align:right;font-weight:600}
table.data th:first-child,table.data th:nth-child(2){text-align:left}
table.data td:first-child,table.data td:nth-child(2){white-space:nowrap}
table.data td{border-bottom:1px solid #eee}table.data tbody tr:nth-child(even){background:#fafbfc}
td.num{text-align:right;white-space:nowrap}.ci{color:#777;font-size:11px}.na{color:#aaa}
table.small{font-size:11.5px}.note{color:#555;font-size:12.5px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:baseline}
section.plot img{max-width:100%;height:auto;display:block}.caption{color:#555;font-size:12.5px;margin-top:2px}
pre{background:#f6f8fa;padding:8px 10px;overflow-x:auto;font-size:12px}details{margin:8px 0}
summary{cursor:pointer;color:#2a5d9f}nav a{margin-right:12px}
"""


def render(v: StudyView) -> str:
    """The whole page as HTML text."""
    nav = ('<nav><a href="#run">what was run</a><a href="#findings">findings</a><a href="#tables">tables</a>'
           '<a href="#plots">plots</a><a href="#reproduce">reproduce</a></nav>')
    title = _esc(f"Margin-mode study: {v.scenario.raw['name']}")
    body = "".join([_header(v), nav, _what_was_run(v), _findings(v), _cohort_table(v), _venue_table(v),
                    _per_seed_tables(v), _plots(v), _footer(v)])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>{_CSS}</style></head>\n'
            f"<body>\n{body}</body></html>\n")


def build_report(out) -> Path:
    """Write ``out/report.html`` from the study's files (nothing is re-run) and return its path. Raises
    :class:`InputError` if ``out`` is not a complete study directory."""
    view = load_study(out)
    path = Path(out) / REPORT_FILE
    text = render(view)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["build_report", "load_study", "render", "scenario_toml", "StudyView", "RunView", "COLOURS", "colour",
           "PLOTS", "COHORT_TABLE", "VENUE_TABLE", "REPORT_FILE", "fmt_usdt", "fmt_pct", "fmt_min"]
