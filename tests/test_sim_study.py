"""The margin-mode study (docs/study.md): determinism, the isolation guarantee across seeds, the summary checked
against an independent computation from the Parquet files, the replay audit, and the command line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import exchange

from exchange import replay_file
from exchange.invariants import check as check_invariants
from exchange.sim.record import verify_run
from exchange.sim.scenario import load_scenario
from exchange.sim.study import read_study, run_dir, run_study, summarize_study
from exchange.sim.summary import read_csv
from exchange.units import InputError

TINY = {"seeds": 2, "traders.count": 8, "path.pre": "10m", "path.crash": "10m", "path.recovery_time": "10m",
        "path.post": "0s", "traders.entry_window": ["2m", "8m"], "traders.hold": ["20m", "30m"],
        "study.worlds": ["isolated", "cross", "mixed"]}


@pytest.fixture(scope="module")
def default_study(tmp_path_factory):
    """The embedded default scenario, three seeds, the isolated and cross worlds and the mixed one."""
    out = tmp_path_factory.mktemp("study")
    scenario = load_scenario(None, {"seeds": 3, "study.worlds": ["isolated", "cross", "mixed"]})
    run_study(scenario, out, workers=2, report=False)
    return out


def test_same_scenario_gives_byte_identical_summaries(tmp_path):
    scenario = load_scenario(None, TINY)
    run_study(scenario, tmp_path / "a", workers=1, report=False)
    run_study(scenario, tmp_path / "b", workers=2, report=False)
    for name in ("summary.csv", "worlds.csv", "summary_ci.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    rows = read_csv(tmp_path / "a" / "summary.csv")
    assert {(r["world"], r["cohort"]) for r in rows} == {
        ("isolated", "isolated"), ("cross", "cross"), ("mixed", "isolated"), ("mixed", "cross"),
        ("mixed", "hybrid"), ("mixed", "dynamic")}
    assert sorted({r["seed"] for r in rows}) == [1, 2]
    # a rerun into the same directory replaces the study and gives the same bytes again
    before = (tmp_path / "a" / "summary.csv").read_bytes()
    run_study(scenario, tmp_path / "a", workers=2, report=False)
    assert (tmp_path / "a" / "summary.csv").read_bytes() == before


def test_isolated_never_loses_beyond_its_allocation(default_study):
    """Isolated margin caps each position's loss at the margin moved into it (rules §4, §7): in every seed and
    world, the isolated cohort's loss beyond the allocated margin is exactly 0. Cross margin has no such cap:
    in the same crash some cross traders lose more than they allocated (their whole account)."""
    rows = read_csv(default_study / "summary.csv")
    isolated = [r for r in rows if r["cohort"] == "isolated"]
    assert len(isolated) == 6  # 3 seeds × (isolated world, mixed world)
    assert all(r["liquidated"] > 0 for r in isolated)  # the crash bites: the cap is exercised, not idle
    assert [r["loss_beyond_allocation_units"] for r in isolated] == [0] * 6
    cross = [r for r in rows if r["cohort"] == "cross" and r["world"] == "cross"]
    assert any(r["loss_beyond_allocation_units"] > 0 for r in cross)
    assert max(r["worst_loss_share"] for r in cross) == 1.0


def test_summary_matches_an_independent_query(default_study):
    """summary.csv against DuckDB over the same Parquet files: liquidated traders, final equity, fees."""
    rows = {(r["world"], r["cohort"], r["seed"]): r for r in read_csv(default_study / "summary.csv")}
    for run in read_study(default_study)["runs"]:
        d = default_study / run["dir"]
        con = duckdb.connect()
        for cohort, liquidated, equity, capital in con.execute(f"""
            select t.cohort,
                   count(distinct case when e.account_id is not null then t.account_id end),
                   sum(distinct_equity.equity), sum(t.capital_units)
            from '{d}/traders.parquet' t
            left join (select distinct account_id from '{d}/events.parquet' where kind = 'LiquidationStarted') e
                   on e.account_id = t.account_id
            join (select distinct account_id, equity_units as equity from '{d}/accounts.parquet') distinct_equity
                   on distinct_equity.account_id = t.account_id
            group by t.cohort""").fetchall():
            row = rows[run["world"], cohort, run["seed"]]
            assert row["liquidated"] == liquidated
            assert row["final_equity_units"] == equity
            assert row["capital_units"] == capital  # no reserve in the default scenario
        fees = dict(con.execute(f"""
            with f as (
              select taker_account_id as a, taker_fee_units as fee from '{d}/events.parquet' where kind = 'Fill'
              union all select maker_account_id, maker_fee_units from '{d}/events.parquet' where kind = 'Fill'
              union all select account_id, fee_units from '{d}/events.parquet' where kind = 'LiquidationFill')
            select t.cohort, coalesce(sum(f.fee), 0) from '{d}/traders.parquet' t left join f on f.a = t.account_id
            group by t.cohort""").fetchall())
        for cohort, total in fees.items():
            assert rows[run["world"], cohort, run["seed"]]["fees_paid_units"] == total


def test_every_run_replays_from_its_journal(default_study):
    d = run_dir(default_study, "mixed", 2)
    audit = verify_run(d)
    assert audit["ok"], audit["problems"]
    exchange, _, _ = replay_file(d / "journal.exj")
    check_invariants(exchange)  # money conserved, orders and holds consistent at the end of the run


def test_summaries_rebuild_from_the_parquet_files(default_study, tmp_path):
    before = (default_study / "summary_ci.csv").read_bytes()
    (default_study / "summary_ci.csv").unlink()
    summarize_study(default_study)
    assert (default_study / "summary_ci.csv").read_bytes() == before
    with pytest.raises(InputError, match="not a study directory"):
        summarize_study(tmp_path)


def _cli(*args, cwd):
    """``exchange-sim`` in a subprocess working in ``cwd``, importing this checkout's package."""
    root = str(Path(exchange.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "exchange.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_command_line_study_and_errors(tmp_path):
    sets = []
    for key, value in TINY.items():
        if key != "seeds":
            sets += ["--set", f"{key}={value!r}".replace("'", '"') if isinstance(value, list) else f"{key}={value}"]
    result = _cli("study", "margin-modes", "--seeds", "1", "--out", "o", "--workers", "2", "--no-report", *sets,
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Leveraged traders by world and cohort" in result.stdout and "The venue by world" in result.stdout
    assert len(read_csv(tmp_path / "o" / "summary.csv")) == 6
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x").write_text("x")
    bad = [
        (("study", "margin-modes", "--out", "junk"), 2, "not empty and holds no study"),
        (("study", "margin-modes", "--set", "traders.count=-1"), 2, "traders.count: -1 is outside"),
        (("study", "margin-modes", "--set", "novalue"), 2, "expected KEY=VALUE"),
        (("study", "margin-modes", "--scenario", "missing.toml"), 4, "missing.toml"),
        (("study", "other"), 2, "unknown study 'other'"),
        (("report", "junk"), 2, "not a study directory"),
    ]
    for args, code, message in bad:
        result = _cli(*args, cwd=tmp_path)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("exchange-sim: error: ") and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "junk").iterdir()) == ["x"]  # refused: nothing changed
