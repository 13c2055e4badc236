"""Scenario files (docs/scenarios.md): the embedded default, exact conversions, every bad key named, overrides,
and a historical-klines scenario driven end to end. Runs on the active implementation."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from exchange.sim.runner import TRADER_BASE, build_path, build_world, run_world
from exchange.sim.scenario import default_scenario_text, load_scenario
from exchange.sim.summary import cohort_rows, world_row
from exchange.units import InputError

MIN_NS = 60 * 10**9


def test_default_scenario_resolves_exactly():
    s = load_scenario()
    assert s.name == "margin-modes"
    assert s.symbols == ["BTCUSDT", "ETHUSDT"]
    assert s.worlds == ["isolated", "cross", "hybrid", "dynamic", "mixed"]
    assert s.seeds == [1, 2, 3, 4, 5]
    assert s["traders.capital"] == 10_000 * 10**8           # "10000" USDT → units of 1e-8
    assert s["insurance.fund"] == 2_000 * 10**8
    assert s["policies.isolated.share"] == 25_000_000       # 0.25 → ×1e8
    assert s["policies.hybrid.isolated_share"] == 30_000_000
    assert s["makers.half_spread"] == 40_000                # 0.0004
    assert s["path.crash"] == 30 * MIN_NS                   # "30m" → ns
    assert s["path.start"] == 400 * MIN_NS
    assert s["traders.hold"] == [60 * MIN_NS, 150 * MIN_NS]
    assert [i.symbol for i in s.instruments()] == ["BTCUSDT", "ETHUSDT"]
    assert load_scenario(default_scenario_text()).raw == s.raw


def _text(extra: str = "", drop: str | None = None) -> str:
    text = default_scenario_text()
    if drop:
        text = text.replace(drop, "")
    return text + extra


@pytest.mark.parametrize("text, match", [
    ("bogus = 1\n" + default_scenario_text(), r"^bogus: unknown scenario key"),
    (default_scenario_text().replace("[traders]\n", "[traders]\nleverage = 5\n"), r"^traders\.leverage: unknown key"),
    (default_scenario_text().replace("[traders]\ncount = 40", "[traders]\ncount = -3"), r"^traders\.count: -3 is outside"),
    (default_scenario_text().replace('capital = "10000"', 'capital = "10000.000000001"'), r"^traders\.capital: .*more than 8 decimals"),
    (default_scenario_text().replace('capital = "10000"', 'capital = "ten"'), r"^traders\.capital: .*not a decimal"),
    (default_scenario_text().replace('crash = "30m"', 'crash = "30 parsecs"'), r"^path\.crash: expected a duration"),
    (default_scenario_text().replace("drop = 0.3", "drop = 1.5"), r"^path\.drop: 1\.5 is outside"),
    (default_scenario_text().replace("drop = 0.3", 'drop = "0.3"'), r"^path\.drop: expected a number"),
    (default_scenario_text().replace("correlation = 0.8", "correlation = 1.5"), r"^path\.correlation: 1\.5 is outside"),
    (default_scenario_text().replace('kind = "crash_recovery"', 'kind = "sine"'), r"^path\.kind: unknown kind 'sine'"),
    (default_scenario_text().replace('kind = "crash_recovery"', 'kind = "klines"'), r"^path\.files\.BTCUSDT\.klines: required"),
    (default_scenario_text().replace('conviction_symbol = "BTCUSDT"', 'conviction_symbol = "DOGEUSDT"'),
     r"^policies\.hybrid\.conviction_symbol: 'DOGEUSDT' is not an instrument"),
    (default_scenario_text().replace('"dynamic", "mixed"]', '"dynamic", "chaos"]'), r"^study\.worlds: unknown world 'chaos'"),
    (default_scenario_text().replace('profile = "binance"', 'profile = "ftx"'), r"^profile: unknown profile 'ftx'"),
    (default_scenario_text().replace('lot_size = "0.001"', 'lot_size = "0.001"\nsize = 3'), r"^instruments\[0\]\.size: unknown key"),
    (default_scenario_text().replace('lot_size = "0.001"', 'lot_size = "0.001"\nfunding_interval = "1h"'),
     r"^instruments: BTCUSDT: funding rates are quoted per"),
    (default_scenario_text().replace('symbol = "ETHUSDT"', 'symbol = "BTCUSDT"'), r"^instruments: duplicate symbol"),
    (default_scenario_text().replace('price = "3000"\n', ''), r"^instruments\[1\]\.price: required"),
    (default_scenario_text().replace('entry_window = ["5m", "30m"]', 'entry_window = ["30m", "5m"]'),
     r"^traders\.entry_window: the start must be before the end"),
    (default_scenario_text().replace('leverages = [5, 10, 20]', 'leverages = [5, 200]'), r"^traders\.leverages\[1\]: 200 is outside"),
    (default_scenario_text().replace("[policies.cross]", "[policies.yolo]\nshare = 1\n[policies.cross]"),
     r"^policies\.yolo: unknown policy"),
    ("name = [\n", r"^scenario: not valid TOML"),
])
def test_bad_scenarios_name_the_key(text, match):
    with pytest.raises(InputError, match=match):
        load_scenario(text)


def test_the_scenario_check_builds_the_path(tmp_path, capsys):
    """``exchange-sim scenario FILE`` applies the path's own rules too (whole bars, its length), so a file it calls
    valid runs; before, a bar that does not divide the phases passed the check and failed the study."""
    from exchange.cli import EXIT_USAGE, main

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(default_scenario_text())
    bad.write_text(default_scenario_text().replace('bar = "1m"', 'bar = "7m"'))
    assert main(["scenario", str(good)]) == 0
    assert capsys.readouterr().out.strip().endswith("40 traders; a path of 150 bars")  # 30 + 30 + 60 + 30 minutes
    assert main(["scenario", str(bad)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "exchange-sim: error: path: pre_ns=1800000000000 must be a whole number of bars " \
                  "(bar_ns=420000000000)\n"


def test_overrides_are_checked_like_the_file():
    s = load_scenario(None, {"traders.count": 12, "policies.isolated.share": 0.5, "instruments.1.price": "2500"})
    assert s["traders.count"] == 12 and s["policies.isolated.share"] == 50_000_000
    assert s.start_prices() == ["50000", "2500"]
    with pytest.raises(InputError, match=r"^traders\.nope: unknown scenario key"):
        s.override({"traders.nope": 1})
    with pytest.raises(InputError, match=r"^instruments\.5\.price: expected instruments"):
        s.override({"instruments.5.price": "1"})
    with pytest.raises(InputError, match=r"^traders\.count: expected an integer"):
        s.override({"traders.count": "many"})
    assert s["traders.count"] == 12  # unchanged by the refused overrides


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_scenario(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not a UTF-8 text file"):
        load_scenario(tmp_path / "bin.toml")


def test_every_world_replays_the_same_intentions():
    s = load_scenario(None, {"traders.count": 8})
    path = build_path(s, 3)
    schedules = {}
    for world in s.worlds:
        w = build_world(s, world, 3, path)
        schedules[world] = [(t.account, tuple(t.pending)) for _, t in w.traders]
        assert [t.policy.name for _, t in w.traders] == (
            [world] * 8 if world != "mixed" else ["isolated", "cross", "hybrid", "dynamic"] * 2)
    assert len({json.dumps(v, default=repr) for v in schedules.values()}) == 1
    other = build_world(s, "cross", 4, build_path(s, 4))
    assert [tuple(t.pending) for _, t in other.traders] != [p for _, p in schedules["cross"]]


# ---- a historical scenario: Binance klines files written here in their exact format -------------------
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")
T0_MS = 1704067200000 + 6 * 3600 * 1000  # 2024-01-01 06:00 UTC


def _klines(start: float, moves: list[float]) -> list[str]:
    rows, price = [], start
    for i, move in enumerate(moves):
        open_ms = T0_MS + i * 60_000
        close = round(price * (1 + move), 1)
        high, low = round(max(price, close) * 1.002, 1), round(min(price, close) * 0.995, 1)
        rows.append(f"{open_ms},{price:.1f},{high:.1f},{low:.1f},{close:.1f},10.5,{open_ms + 59_999},1000.0,50,5.0,500.0,0")
        price = close
    return rows


def test_klines_scenario_runs_end_to_end(tmp_path):
    moves = [0.0] * 10 + [-0.02] * 12 + [0.005] * 18  # 40 one-minute bars with a 22 % slide
    (tmp_path / "BTCUSDT-1m.csv").write_text("\n".join([KLINE_HEADER, *_klines(50000.0, moves)]) + "\n")
    text = f"""
name = "klines"
seeds = 1
[[instruments]]
symbol = "BTCUSDT"
price = "50000"
[path]
kind = "klines"
files = {{BTCUSDT = {{klines = "BTCUSDT-1m.csv"}}}}
[traders]
count = 6
entry_window = ["1m", "8m"]
hold = ["20m", "30m"]
leverages = [20]
long_prob = 1.0
[policies.hybrid]
conviction_symbol = "BTCUSDT"
[study]
worlds = ["isolated", "cross"]
"""
    (tmp_path / "s.toml").write_text(text)
    s = load_scenario(tmp_path / "s.toml")  # files resolve relative to the scenario file
    path = build_path(s, 1)
    assert len(path) == 40
    assert int(path.times_ns[0]) == 6 * 3600 * 10**9  # shifted by whole 8-hour funding intervals
    manifest = run_world(s, "isolated", 1, tmp_path / "run")
    assert manifest["extra"]["world"] == "isolated"
    traders = pq.read_table(tmp_path / "run" / "traders.parquet").to_pydict()
    assert traders["account_id"] == list(range(TRADER_BASE, TRADER_BASE + 6))
    (row,) = cohort_rows(tmp_path / "run")
    assert row["traders"] == 6 and row["liquidated"] == 6  # 20x longs through a 22 % slide
    assert row["loss_beyond_allocation_units"] == 0
    assert world_row(tmp_path / "run")["liquidations"] >= 6
