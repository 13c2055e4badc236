"""exchange.sim.grid: sweeps of tiny scenarios on a real Dask LocalCluster, on a scheduler and a worker started
as separate processes, and in-process (docs/sweeps.md)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytest.importorskip("matplotlib")
ds = pytest.importorskip("pyarrow.dataset")

import exchange.sim.grid as grid_module  # noqa: E402
from exchange._impl import IMPLEMENTATION  # noqa: E402
from exchange.sim.grid import load_grid, read_results, run_sweep  # noqa: E402
from exchange.sim.summary import COHORT_COLUMNS, WORLD_COLUMNS, read_csv  # noqa: E402
from exchange.units import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Two instruments, eight traders, a 30-minute path: one run takes well under a second.
TINY = """
name = "tiny"
seed = 1
seeds = 2
[[instruments]]
symbol = "BTCUSDT"
price = "50000"
[[instruments]]
symbol = "ETHUSDT"
price = "3000"
tick_size = "0.01"
lot_size = "0.01"
[path]
pre = "10m"
crash = "10m"
recovery_time = "10m"
post = "0s"
correlation = 0.8
files = {BTCUSDT = {klines = "bad-klines.csv"}, ETHUSDT = {klines = "bad-klines.csv"}}
[traders]
count = 8
entry_window = ["2m", "8m"]
hold = ["20m", "30m"]
"""

GRID = """
name = "test"
scenario = "tiny.toml"
worlds = ["isolated"]
seeds = 2
metrics = ["liquidated_share", "insurance_min_units"]
[grid]
"path.drop" = [0.2, 0.4]
"""


def write_grid(folder: Path, grid: str = GRID, scenario: str = TINY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(scenario)
    # the historical path of the failing-cell test: a klines file that exists but is not klines
    (folder / "bad-klines.csv").write_text("this,is\nnot,klines\n")
    (folder / "grid.toml").write_text(grid)
    return folder / "grid.toml"


class Progress:
    def __init__(self):
        self.calls = []

    def __call__(self, done, total, cell_id, status):
        self.calls.append((done, total, cell_id, status))

    def statuses(self):
        return sorted(c[3] for c in self.calls)


def result_files(out: Path, table: str = "cohorts") -> list[Path]:
    return sorted((out / "results" / table).glob("world=*/*.parquet"))


# ==== a LocalCluster sweep, its datasets, rerun and skip ==============================================
@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    grid = write_grid(folder)
    progress = Progress()
    result = run_sweep(grid, folder / "out", cluster="local", workers=2, progress=progress)
    return grid, folder / "out", result, progress


def test_local_cluster_runs_every_cell(swept):
    _, out, result, progress = swept
    assert (result["cells"], result["done"], result["skipped"], result["failed"]) == (4, 4, 0, 0)
    assert progress.statuses() == ["done"] * 4
    assert [c[0] for c in progress.calls] == [1, 2, 3, 4] and {c[1] for c in progress.calls} == {4}
    for cell in load_grid(out.parent / "grid.toml").cells:
        manifest = json.loads((out / "cells" / cell.cell_id / "run" / "manifest.json").read_text())
        assert manifest["extra"]["world"] == cell.world and manifest["extra"]["seed"] == cell.seed
        assert manifest["extra"]["scenario"]["path"]["drop"] == cell.overrides["path.drop"]
        assert manifest["implementation"] == IMPLEMENTATION  # the workers run the same core as this process


def test_datasets_read_with_pyarrow_and_pandas(swept):
    pd = pytest.importorskip("pandas")
    _, out, _, _ = swept
    cohorts = ds.dataset(out / "results" / "cohorts", format="parquet", partitioning="hive").to_table()
    assert cohorts.num_rows == 4  # 2 drops x 2 seeds x 1 cohort (the isolated world has one)
    assert {"cell_id", "path_drop", "world", "seed", "cohort", *COHORT_COLUMNS} <= set(cohorts.column_names)
    assert sorted(cohorts.column("path_drop").to_pylist()) == [0.2, 0.2, 0.4, 0.4]
    frame = pd.read_parquet(out / "results" / "worlds")
    assert len(frame) == 4 and {"path_drop", "cell_id", *WORLD_COLUMNS} <= set(frame.columns)
    assert set(frame["world"].astype(str)) == {"isolated"}
    assert sorted(frame.groupby("path_drop").size().tolist()) == [2, 2]


def test_datasets_read_with_polars_and_duckdb(swept):
    _, out, _, _ = swept
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    frame = pl.read_parquet(str(out / "results" / "cohorts" / "**" / "*.parquet"), hive_partitioning=True)
    assert frame.height == 4 and "path_drop" in frame.columns and "world" in frame.columns
    glob = str(out / "results" / "worlds" / "*" / "*.parquet")
    rows = duckdb.sql(f"SELECT path_drop, count(*) FROM read_parquet('{glob}', hive_partitioning = true) "
                      f"GROUP BY path_drop ORDER BY path_drop").fetchall()
    assert rows == [(0.2, 2), (0.4, 2)]


def test_report_summary_and_index(swept):
    _, out, _, _ = swept
    page = (out / "sweep.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "liquidated_share" in page and "insurance_min_units" in page
    summary = read_csv(out / "sweep_summary.csv")
    assert {r["path_drop"] for r in summary} == {0.2, 0.4}
    shares = [r for r in summary if r["metric"] == "liquidated_share"]
    assert len(shares) == 2 and all(r["seeds"] == 2 and r["cohort"] == "isolated" for r in shares)
    cells = read_csv(out / "cells.csv")
    assert [r["status"] for r in cells] == ["done"] * 4
    assert [(r["path_drop"], r["seed"]) for r in cells] == [(0.2, 1), (0.2, 2), (0.4, 1), (0.4, 2)]
    assert read_csv(out / "errors.csv") == []


def test_serial_run_gives_the_same_rows(swept, tmp_path):
    grid, out, _, _ = swept
    result = run_sweep(grid, tmp_path / "serial", cluster="serial")
    assert result["done"] == 4
    for table in ("cohorts", "worlds"):
        assert read_results(tmp_path / "serial", table).equals(read_results(out, table))
    assert (tmp_path / "serial" / "sweep_summary.csv").read_text() == (out / "sweep_summary.csv").read_text()
    assert (tmp_path / "serial" / "cells.csv").read_text() == (out / "cells.csv").read_text()


def test_rerun_skips_finished_cells_and_reruns_a_deleted_one(swept):
    grid, out, _, _ = swept
    before = read_results(out, "cohorts")
    progress = Progress()
    started = time.perf_counter()
    result = run_sweep(grid, out, cluster="local", progress=progress)
    assert (result["done"], result["skipped"], result["failed"]) == (0, 4, 0)
    assert progress.statuses() == ["skipped"] * 4
    assert time.perf_counter() - started < 10  # no cluster is started when nothing is left to run
    victim = result_files(out)[1]
    victim.unlink()
    progress = Progress()
    result = run_sweep(grid, out, cluster="local", workers=1, progress=progress)
    assert (result["done"], result["skipped"], result["failed"]) == (1, 3, 0)
    assert [c[2] for c in progress.calls if c[3] == "done"] == [victim.stem]
    assert read_results(out, "cohorts").equals(before)


# ==== failures, parameter changes, grid changes (in-process runs: the same code path per cell) =========
def test_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    grid = write_grid(tmp_path, GRID.replace('"path.drop" = [0.2, 0.4]',
                                             '"path.kind" = ["crash_recovery", "klines"]'))
    result = run_sweep(grid, tmp_path / "out", cluster="local", workers=2)
    assert (result["done"], result["failed"]) == (2, 2)
    failed = {e["cell_id"] for e in result["errors"]}
    assert len(failed) == 2 and all(e["type"] == "InputError" for e in result["errors"])
    for cell_id in failed:
        error = json.loads((tmp_path / "out" / "errors" / f"{cell_id}.json").read_text())
        assert error["overrides"] == {"path.kind": "klines"}
        assert "bad-klines.csv" in error["message"] and "Traceback" in error["traceback"]
    assert {r["cell_id"] for r in read_csv(tmp_path / "out" / "errors.csv")} == failed
    cohorts = read_results(tmp_path / "out", "cohorts")
    assert set(cohorts.column("path_kind").to_pylist()) == {"crash_recovery"} and cohorts.num_rows == 2
    assert "InputError" in (tmp_path / "out" / "sweep.html").read_text()
    # a rerun retries the failed cells only
    again = run_sweep(grid, tmp_path / "out", cluster="serial")
    assert (again["done"], again["skipped"], again["failed"]) == (0, 2, 2)


def test_changed_base_scenario_reruns_and_changed_grid_replaces_cells(tmp_path):
    grid = write_grid(tmp_path, GRID.replace("seeds = 2", "seeds = 1"))
    out = tmp_path / "out"
    first = run_sweep(grid, out, cluster="serial")
    assert first["done"] == 2
    # the same grid over a different base scenario: same cell ids, different parameters → all run again
    write_grid(tmp_path, GRID.replace("seeds = 2", "seeds = 1"), TINY.replace("count = 8", "count = 6"))
    second = run_sweep(grid, out, cluster="serial")
    assert (second["done"], second["skipped"]) == (2, 0)
    assert set(read_results(out, "cohorts").column("traders").to_pylist()) == {6}
    # one value kept, one replaced: the kept cell is skipped, the dropped one removed from the dataset
    write_grid(tmp_path, GRID.replace("seeds = 2", "seeds = 1").replace("[0.2, 0.4]", "[0.4, 0.3]"),
               TINY.replace("count = 8", "count = 6"))
    third = run_sweep(grid, out, cluster="serial")
    assert (third["done"], third["skipped"], third["removed"]) == (1, 1, 1)
    assert read_results(out, "worlds").column("path_drop").to_pylist() == [0.4, 0.3]  # grid order
    assert len(list((out / "cells").iterdir())) == 2 and len(result_files(out, "worlds")) == 2
    # a kept run directory is part of a finished cell: deleting it reruns the cell
    shutil.rmtree(out / "cells" / result_files(out)[0].stem / "run")
    fourth = run_sweep(grid, out, cluster="serial")
    assert (fourth["done"], fourth["skipped"]) == (1, 1)


def test_keep_runs_false_leaves_no_run_directories(tmp_path):
    grid = write_grid(tmp_path, GRID.replace("seeds = 2", "seeds = 1").replace("[0.2, 0.4]", "[0.3]")
                      .replace('name = "test"', 'name = "test"\nkeep_runs = false'))
    result = run_sweep(grid, tmp_path / "out", cluster="serial")
    assert result["done"] == 1 and not (tmp_path / "out" / "cells").exists()
    assert read_results(tmp_path / "out", "worlds").num_rows == 1
    assert "data:image/png;base64," in (tmp_path / "out" / "sweep.html").read_text()  # one parameter: a line chart


# ==== a scheduler and a worker as separate processes ==================================================
@pytest.fixture
def scheduler(tmp_path):
    """``dask scheduler`` and one ``dask worker`` on 127.0.0.1, as subprocesses; yields the address."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    info = tmp_path / "scheduler.json"
    common = dict(env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--scheduler-file", str(info), "--no-dashboard",
                               "--idle-timeout", "300"], **common)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < deadline, "the scheduler did not start"
            assert procs[0].poll() is None, "the scheduler exited"
            time.sleep(0.1)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(info), "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                                       "--no-nanny", "--death-timeout", "60", "--local-directory",
                                       str(tmp_path / "worker")], **common))
        yield json.loads(info.read_text())["address"]
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_sweep_on_a_running_scheduler(scheduler, tmp_path):
    assert scheduler.startswith("tcp://127.0.0.1:")
    grid = write_grid(tmp_path / "grid", GRID.replace("seeds = 2", "seeds = 1"))
    result = run_sweep(grid, tmp_path / "out", cluster=scheduler)
    assert (result["done"], result["failed"]) == (2, 0)
    assert read_results(tmp_path / "out", "cohorts").num_rows == 2


# ==== bad input ========================================================================================
BAD = [
    ('oops = 1\n[grid]\n"path.drop" = [0.2]', "oops"),
    ('[grid]\n"path.dro" = [0.2]', "grid.path.dro"),
    ('[grid]\n"path.drop" = []', "grid.path.drop"),
    ('[grid]\n"path.drop" = 0.2', "grid.path.drop"),
    ('[grid]\n"path.drop" = [0.2, 1.5]', "grid.path.drop[1]"),
    ('[grid]\n"path.drop" = [0.2, 0.2]', "grid.path.drop[1]"),
    ('[grid]\npath.drop = [0.2, "steep"]', "grid.path.drop[1]"),
    ('[grid]\n"seed" = [1, 2]', "grid.seed"),
    ('[grid]\n"study.worlds" = [["cross"]]', "grid.study.worlds"),
    ('metrics = ["nope"]\n[grid]\n"path.drop" = [0.2]', "metrics[0]"),
    ('metrics = ["world"]\n[grid]\n"path.drop" = [0.2]', "metrics[0]"),
    ('worlds = ["moon"]\n[grid]\n"path.drop" = [0.2]', "worlds[0]"),
    ('worlds = []\n[grid]\n"path.drop" = [0.2]', "worlds"),
    ('seeds = 0\n[grid]\n"path.drop" = [0.2]', "seeds"),
    ('seeds = [1, -1]\n[grid]\n"path.drop" = [0.2]', "seeds[1]"),
    ('keep_runs = "yes"\n[grid]\n"path.drop" = [0.2]', "keep_runs"),
    ('name = "no grid"', "grid"),
    ('[grid]\n"instruments.0.symbol" = ["BTCUSDT", "XRPUSDT"]\n"policies.hybrid.conviction_symbol" = ["BTCUSDT"]',
     "grid: the combination {instruments.0.symbol = \"XRPUSDT\", policies.hybrid.conviction_symbol = \"BTCUSDT\"} "
     "is not a valid scenario: policies.hybrid.conviction_symbol"),
    ('[grid]\n"instruments.5.price" = ["1"]', "grid.instruments.5.price"),
    ('[grid]\n"path.drop" = [0.2', "grid: not valid TOML"),
]


@pytest.mark.parametrize("text, key", BAD, ids=[k.split(":")[0] for _, k in BAD])
def test_bad_grid_names_the_key(tmp_path, text, key):
    grid = write_grid(tmp_path, 'scenario = "tiny.toml"\n' + text if not text.startswith("scenario") else text)
    with pytest.raises(InputError, match="^" + re.escape(key)):
        run_sweep(grid, tmp_path / "out", cluster="serial")
    assert not (tmp_path / "out").exists()


def test_missing_files_raise_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_grid(tmp_path / "nope.toml")
    grid = write_grid(tmp_path, 'scenario = "missing.toml"\n[grid]\n"path.drop" = [0.2]')
    with pytest.raises(FileNotFoundError):
        run_sweep(grid, tmp_path / "out", cluster="serial")
    assert not (tmp_path / "out").exists()


def test_bad_run_arguments(tmp_path, monkeypatch):
    grid = write_grid(tmp_path, GRID)
    for kwargs, key in ((dict(cluster="nowhere"), "cluster"), (dict(workers=0), "workers"),
                        (dict(cluster="local", workers=1.5), "workers")):
        with pytest.raises(InputError, match=f"^{key}"):
            run_sweep(grid, tmp_path / "out", **kwargs)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("keep me")
    with pytest.raises(InputError, match="^out"):
        run_sweep(grid, tmp_path / "busy", cluster="serial")
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path / "busy") == ["thesis.tex"]
    monkeypatch.setattr(grid_module, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(InputError, match="^cluster: cannot connect"):
        run_sweep(grid, tmp_path / "out", cluster="tcp://127.0.0.1:9")
    assert not (tmp_path / "out").exists()
