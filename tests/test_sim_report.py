"""exchange.sim.report: the study's self-contained HTML page, built from the study directory's files alone.

Two tiny studies (8 traders, a 30-minute crash path): isolated / cross / mixed over 2 seeds, and hybrid / dynamic
over 1 seed (no mixed world, no interval across seeds). Runs under the compiled core and EXCHANGE_PUREPYTHON=1.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import time
from html.parser import HTMLParser

import pytest

pytest.importorskip("matplotlib")

from exchange.sim.report import (  # noqa: E402
    COHORT_TABLE, PLOTS, VENUE_TABLE, build_report, fmt_pct, fmt_usdt, scenario_toml,
)
from exchange.sim.scenario import load_scenario  # noqa: E402
from exchange.sim.study import run_study, summarize_study  # noqa: E402
from exchange.sim.summary import CI_METRICS, WORLD_CI_METRICS, read_csv  # noqa: E402
from exchange.units import InputError  # noqa: E402

TINY = {"seeds": 2, "traders.count": 8, "path.pre": "10m", "path.crash": "10m", "path.recovery_time": "10m",
        "path.post": "0s", "traders.entry_window": ["2m", "8m"], "traders.hold": ["20m", "30m"],
        "study.worlds": ["isolated", "cross", "mixed"]}
CSVS = ("summary.csv", "worlds.csv", "summary_ci.csv")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "out"
    started = time.perf_counter()
    run_study(load_scenario(None, TINY), out, workers=1, report=True)
    elapsed = time.perf_counter() - started
    assert elapsed < 40, f"the tiny study took {elapsed:.1f} s"
    return out


@pytest.fixture(scope="module")
def one_seed(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "out"
    run_study(load_scenario(None, {**TINY, "seeds": 1, "study.worlds": ["hybrid", "dynamic"]}), out, workers=1,
              report=True)
    return out


class Tables(HTMLParser):
    """Rows of the tables with an id, as lists of cell texts (a <br> separates the mean from its interval)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current = None
        self.cell = None
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self.current = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append(" | ")
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.current[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(path) -> Tables:
    tables = Tables()
    tables.feed(path.read_text(encoding="utf-8"))
    return tables


def sections(text: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="plot" id="plot-([a-z]+)">(.*?)</section>', text, re.S))


def test_report_is_written_and_self_contained(study):
    path = study / "report.html"
    assert path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert path.stat().st_size < 3 * 2**20
    # no external resource: no script, no stylesheet link, no src/href/url() to another host or a file
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    for attr, value in re.findall(r'\b(src|href)\s*=\s*["\']([^"\']*)', text):
        assert value.startswith(("data:image/png;base64,", "#")), (attr, value[:60])
    assert not re.search(r"url\(", text)
    assert "http://" not in text and "https://" not in text


def test_every_plot_section_has_an_embedded_image(study):
    text = (study / "report.html").read_text(encoding="utf-8")
    found = sections(text)
    assert list(found) == [ident for ident, *_ in PLOTS]
    for ident, body in found.items():
        images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', body)
        assert len(images) == 1, ident
        png = base64.b64decode(images[0])
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, ident


def test_summary_table_has_every_world_and_cohort(study):
    tables = parse(study / "report.html")
    rows = read_csv(study / "summary.csv")
    pairs = list(dict.fromkeys((r["world"], r["cohort"]) for r in rows))
    assert ("mixed", "dynamic") in pairs and ("isolated", "isolated") in pairs
    body = tables.tables["cohort-table"][1:]
    assert [(r[0], r[1]) for r in body] == pairs
    header = tables.tables["cohort-table"][0]
    assert "liquidated" in header and "loss beyond allocation (USDT)" in header and "funding paid (USDT)" in header
    ci = {(r["world"], r["cohort"], r["metric"]): r for r in read_csv(study / "summary_ci.csv")}
    for row in body:
        world, cohort = row[0], row[1]
        share = row[header.index("liquidated")]
        assert share.split(" | ")[0] == fmt_pct(ci[world, cohort, "liquidated_share"]["mean"])
        beyond = row[header.index("loss beyond allocation (USDT)")]
        assert beyond.split(" | ")[0] == fmt_usdt(ci[world, cohort, "loss_beyond_allocation_units"]["mean"])
        assert "[" in share  # two seeds: an interval under the mean
    venue = tables.tables["venue-table"]
    assert [r[0] for r in venue[1:]] == ["isolated", "cross", "mixed"]
    assert "insurance min (USDT)" in venue[0] and "ADL fills" in venue[0]


def test_tables_cover_every_summarised_metric():
    assert [m for m, *_ in COHORT_TABLE] == list(CI_METRICS)
    assert {m for m, *_ in VENUE_TABLE} == set(WORLD_CI_METRICS)


def test_human_units():
    assert fmt_usdt(123_456_789_012) == "1,235"
    assert fmt_usdt(-5_000_000_000) == "−50.00"
    assert fmt_usdt(None) == "–"
    assert fmt_pct(-0.1234) == "−12.3 %"
    assert fmt_pct(float("nan")) == "–"


def test_findings_state_the_data(study):
    text = (study / "report.html").read_text(encoding="utf-8")
    findings = re.search(r'<p class="findings">(.*?)</p>', text, re.S).group(1)
    rows = read_csv(study / "summary.csv")
    iso = [r for r in rows if r["cohort"] == "isolated"]
    if all(r["loss_beyond_allocation_units"] == 0 for r in iso):
        assert "loss beyond allocation was 0 in every seed" in findings
    worlds = read_csv(study / "worlds.csv")
    low = min(worlds, key=lambda r: r["insurance_min_units"])
    if low["insurance_min_units"] < low["insurance_start_units"]:
        assert f"fell lowest in the {low['world']} world" in findings
        assert fmt_usdt(low["insurance_min_units"]) in findings


def test_rebuild_from_parquet_gives_the_same_tables(study, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    before = parse(copy / "report.html")
    csv_before = {name: (copy / name).read_bytes() for name in CSVS}
    for name in (*CSVS, "report.html"):
        (copy / name).unlink()
    summarize_study(copy)
    import matplotlib

    font_size = matplotlib.rcParams["font.size"]
    started = time.perf_counter()
    path = build_report(copy)
    assert time.perf_counter() - started < 20
    assert matplotlib.rcParams["font.size"] == font_size  # the caller's matplotlib settings are left alone
    assert path == copy / "report.html"
    for name in CSVS:
        assert (copy / name).read_bytes() == csv_before[name]
    after = parse(path)
    assert set(after.tables) == set(before.tables) >= {"cohort-table", "venue-table", "per-seed-cohorts",
                                                       "per-seed-worlds"}
    for ident, rows in before.tables.items():
        assert after.tables[ident] == rows, ident
    assert len(after.images) == len(before.images) == len(PLOTS)


def test_scenario_in_the_footer_reproduces_the_study(study):
    raw = json.loads((study / "study.json").read_text())["scenario"]
    text = scenario_toml(raw)
    assert load_scenario(text).raw == raw
    page = (study / "report.html").read_text(encoding="utf-8")
    assert "exchange-sim study margin-modes --scenario scenario.toml --out OUT" in page
    assert "exchange-sim report OUT" in page
    assert 'seeds = 2' in page


def test_scenario_toml_round_trips_unusual_values():
    scenario = load_scenario(None, {"description": 'a "quoted" \\ line\nand ünïcode', "traders.stop_loss": 0.1,
                                    "path.kind": "klines", "path.files": {"BTCUSDT": {"klines": ["a b.csv"]},
                                                                          "ETHUSDT": {"klines": ["e.csv"]}}})
    assert load_scenario(scenario_toml(scenario.raw)).raw == scenario.raw


def test_one_seed_without_mixed_world(one_seed):
    path = one_seed / "report.html"
    tables = parse(path)
    pairs = [(r[0], r[1]) for r in tables.tables["cohort-table"][1:]]
    assert pairs == [("hybrid", "hybrid"), ("dynamic", "dynamic")]
    text = path.read_text(encoding="utf-8")
    assert list(sections(text)) == [ident for ident, *_ in PLOTS]
    assert "With one seed there is no interval" in text
    assert "hybrid / dynamic world" in text  # liquidation markers from every world when there is no mixed world


def test_not_a_study_raises_input_error(tmp_path, study):
    with pytest.raises(InputError):
        build_report(tmp_path)  # empty directory
    with pytest.raises(InputError):
        build_report(tmp_path / "missing")
    (tmp_path / "study.json").write_text('{"format": "something-else"}')
    with pytest.raises(InputError):
        build_report(tmp_path)
    (tmp_path / "study.json").write_text("not json")
    with pytest.raises(InputError):
        build_report(tmp_path)
    # a study whose tables were deleted, or whose run lost a file
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    (copy / "summary_ci.csv").unlink()
    with pytest.raises(InputError, match="summary_ci.csv"):
        build_report(copy)
    summarize_study(copy)
    run = json.loads((copy / "study.json").read_text())["runs"][0]["dir"]
    (copy / run / "equity.parquet").unlink()
    with pytest.raises(InputError, match="equity.parquet"):
        build_report(copy)
    assert not (tmp_path / "report.html").exists()


def test_liquidation_markers_follow_the_first_fill():
    import numpy as np

    from exchange.sim.report import _liquidation_markers

    kinds = ["LiquidationStarted", "LiquidationFill", "LiquidationStarted", "ADLFill", "LiquidationStarted",
             "LiquidationStarted", "LiquidationFill"]
    e = {"kind": kinds,
         "time_ns": [10, 10, 20, 20, 30, 40, 40],
         "account_id": [1, 1, 2, 2, 3, 1, 1],
         "symbol": ["", "ETH", "BTC", "BTC", "", "BTC", "BTC"],
         "price_ticks": [None, 250, None, 4000, None, None, 3900],
         "liquidated": [None, None, None, True, None, None, None]}
    marks = {"BTC": {"mark": np.array([100.0, 200.0, 300.0])}, "ETH": {"mark": np.array([1.0, 2.0, 3.0])}}
    t, a, s, p = _liquidation_markers(e, ["BTC", "ETH"], {"BTC": 0.1, "ETH": 0.01}, marks, np.array([0, 25, 35]))
    assert t == [10, 20, 30, 40] and a == [1, 2, 3, 1]
    assert s == ["ETH", "BTC", "BTC", "BTC"]  # the cross account's marker goes to the symbol of its first fill
    assert p == pytest.approx([2.5, 400.0, 200.0, 390.0])  # no fill for account 3: first symbol at the mark


def test_text_from_the_study_is_escaped(study, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    meta = json.loads((copy / "study.json").read_text())
    meta["scenario"]["name"] = "<script>alert(1)</script>"
    meta["scenario"]["description"] = 'a & b <img src="x"> "quoted"'
    (copy / "study.json").write_text(json.dumps(meta))
    text = build_report(copy).read_text(encoding="utf-8")
    assert "<script" not in text and '<img src="x">' not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "a &amp; b &lt;img" in text
