"""exchange.sim.record: a seeded liquidation stream recorded to Parquet and read back (docs/recording.md)."""
import collections
import dataclasses
import enum
import json
import types

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from exchange import AdvanceTime, LiquidationStarted, replay_file  # noqa: E402
from exchange.sim.record import (  # noqa: E402
    EventSchema, JOURNAL_NAME, RunRecorder, event_classes, open_exchange, verify_run,
)
from tests.conftest import make_instrument  # noqa: E402
from tests.streams import liquidation_commands  # noqa: E402

SEED, N, EVERY, FLUSH = 4, 2000, 50, 700  # seed 4: liquidations, insurance takeovers and ADL within 2000 commands
COHORTS = {"traders": [1, 2, 3, 4], "maker": [5]}


def run(directory, seed=SEED, n=N):
    """The stream, then one AdvanceTime to the next funding boundary (FundingSettled / FundingPaid), recorded."""
    exchange = open_exchange(directory, [make_instrument()])
    recorder = RunRecorder(directory, exchange, COHORTS, flush_rows=FLUSH)
    commands = list(liquidation_commands(seed, n))
    commands.append(None)
    events, snapshots = [], 0
    for step, command in enumerate(commands):
        if command is None:
            command = AdvanceTime(exchange.next_funding_time_ns())
        got = exchange.apply(command)
        events.extend(got)
        recorder.record(step, exchange.now_ns, command, got)
        if step % EVERY == 0 or step == len(commands) - 1:
            recorder.snapshot_metrics(step, exchange.now_ns)
            snapshots += 1
    recorder.write_final_state()
    manifest = recorder.close()
    final = dict(hash=exchange.state_hash(), sequence=exchange.sequence, snapshots=snapshots,
                 positions={a: exchange.positions(a) for a in range(1, 6)},
                 wallet={a: exchange.wallet(a) for a in range(1, 6)},
                 margin_balance={a: exchange.margin_balance(a) for a in range(1, 6)},
                 mark=exchange.mark_price("TESTUSDT"), last=exchange.book("TESTUSDT").last_price(),
                 insurance=exchange.insurance_balance("TESTUSDT"))
    exchange.close()
    return events, manifest, final


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    events, manifest, final = run(directory)
    return directory, events, manifest, final


def test_stream_covers_the_interesting_kinds(recorded):
    _, events, _, _ = recorded
    kinds = {type(e).__name__ for e in events}
    assert {"LiquidationStarted", "LiquidationFill", "ADLFill", "FundingSettled", "FundingPaid", "Fill",
            "Rejected", "InsuranceFundChanged"} <= kinds


def test_one_row_per_event_in_row_groups(recorded):
    directory, events, manifest, _ = recorded
    table = pq.read_table(directory / "events.parquet")
    assert table.num_rows == len(events) == manifest["files"]["events.parquet"]["rows"]
    assert table.column("seq").to_pylist() == list(range(len(events)))
    assert table.column("kind").to_pylist() == [type(e).__name__ for e in events]
    meta = pq.ParquetFile(directory / "events.parquet").metadata
    assert meta.num_row_groups == -(-len(events) // FLUSH)  # flushed every FLUSH rows
    command_seq = table.column("command_seq").to_pylist()
    assert command_seq == sorted(command_seq) and command_seq[-1] == manifest["sequence"]


def test_sampled_rows_equal_the_event_objects(recorded):
    directory, events, _, _ = recorded
    table = pq.read_table(directory / "events.parquet")
    schema = EventSchema(event_classes())
    first_of_kind = {}
    for i, e in enumerate(events):
        first_of_kind.setdefault(type(e), i)
    sample = sorted(set(range(0, len(events), 37)) | set(first_of_kind.values()))
    rows = table.take(sample).to_pylist()
    for i, row in zip(sample, rows):
        event = events[i]
        assert row["kind"] == type(event).__name__
        present = set()
        for name, column, kind in schema.plan[type(event)]:
            value = getattr(event, name)
            present.add(column)
            if kind == "enum":
                assert row[column] == int(value) and row[column + "_name"] == value.name
                present.add(column + "_name")
            else:
                assert row[column] == value and type(row[column]) is type(value), (type(event).__name__, column)
        for column in schema.names[5:]:
            if column not in present:
                assert row[column] is None, (type(event).__name__, column)
    funding = next(e for e in events if type(e).__name__ == "FundingSettled")
    row = table.filter(pa.compute.equal(table.column("kind"), "FundingSettled")).to_pylist()[0]
    assert row["event_time_ns"] == funding.time_ns  # the clash with the meta column time_ns is renamed


def test_liquidation_counts_agree(recorded):
    directory, events, _, _ = recorded
    from_objects = collections.Counter(e.account_id for e in events if type(e) is LiquidationStarted)
    assert from_objects
    table = pq.read_table(directory / "events.parquet", columns=["kind", "account_id"])
    from_file = collections.Counter(r["account_id"] for r in table.to_pylist() if r["kind"] == "LiquidationStarted")
    assert from_file == from_objects
    accounts = pq.read_table(directory / "accounts.parquet").to_pylist()
    per_account = {}
    for row in accounts:
        per_account.setdefault(row["account_id"], row["liquidations"])
        assert per_account[row["account_id"]] == row["liquidations"]
    assert {a: c for a, c in per_account.items() if c} == dict(from_objects)
    metrics = pq.read_table(directory / "metrics.parquet").to_pylist()
    last = {r["cohort"]: r for r in metrics[-len(COHORTS):]}
    for cohort, ids in COHORTS.items():
        assert last[cohort]["liquidations"] == sum(from_objects[a] for a in ids)
        assert last[cohort]["liquidated_accounts"] == sum(1 for a in ids if from_objects[a])


def test_final_state_and_metrics(recorded):
    directory, _, manifest, final = recorded
    rows = pq.read_table(directory / "accounts.parquet").to_pylist()
    assert len(rows) == manifest["files"]["accounts.parquet"]["rows"]
    for account_id in range(1, 6):
        mine = [r for r in rows if r["account_id"] == account_id]
        positions = final["positions"][account_id]
        assert len(mine) == max(1, len(positions))
        assert all(r["wallet_units"] == final["wallet"][account_id] for r in mine)
        assert all(r["cross_margin_balance_units"] == final["margin_balance"][account_id] for r in mine)
        assert all(r["cohort"] == ("maker" if account_id == 5 else "traders") for r in mine)
        if positions:
            assert [(r["symbol"], r["position_side"], r["lots"], r["entry_cost"], r["isolated_margin_units"],
                     r["margin_mode"], r["leverage"], r["unrealized_pnl_units"]) for r in mine] == [
                (p.symbol, int(p.position_side), p.lots, p.entry_cost, p.isolated_margin_units, int(p.margin_mode),
                 p.leverage, p.unrealized_pnl_units) for p in positions]
        else:
            assert mine[0]["symbol"] is None and mine[0]["lots"] is None
    assert any(r["insurance_fund"] for r in rows)
    metrics = pq.read_table(directory / "metrics.parquet")
    assert metrics.num_rows == final["snapshots"] * len(COHORTS)
    assert metrics.column("cohort").to_pylist()[:2] == list(COHORTS)
    last = {r["cohort"]: r for r in metrics.to_pylist()[-len(COHORTS):]}
    traders = last["traders"]
    assert traders["wallet_units"] == sum(final["wallet"][a] for a in COHORTS["traders"])
    assert traders["accounts"] == 4
    assert traders["accounts_with_position"] == sum(1 for a in COHORTS["traders"]
                                                    if any(p.lots for p in final["positions"][a]))
    assert traders["mark_ticks_TESTUSDT"] == final["mark"] and traders["last_ticks_TESTUSDT"] == final["last"]
    prices = pq.read_table(directory / "prices.parquet").to_pylist()
    assert len(prices) == final["snapshots"]
    assert prices[-1]["mark_ticks"] == final["mark"] and prices[-1]["insurance_balance_units"] == final["insurance"]


def test_manifest_hash_equals_the_journal_replay(recorded):
    directory, _, manifest, final = recorded
    assert json.loads((directory / "manifest.json").read_text()) == manifest
    assert manifest["journal"] == JOURNAL_NAME and manifest["version"] == 1
    assert manifest["state_hash"] == final["hash"] and manifest["sequence"] == final["sequence"]
    exchange, _, _ = replay_file(directory / JOURNAL_NAME)
    assert exchange.state_hash() == manifest["state_hash"] and exchange.sequence == manifest["sequence"]
    assert verify_run(directory)["ok"]


def test_same_seed_gives_byte_identical_files(recorded, tmp_path):
    directory, _, manifest, _ = recorded
    _, again, _ = run(tmp_path)
    for name in ("events.parquet", "metrics.parquet", "prices.parquet", "accounts.parquet"):
        assert (tmp_path / name).read_bytes() == (directory / name).read_bytes(), name
    assert again["state_hash"] == manifest["state_hash"]
    assert (tmp_path / "manifest.json").read_bytes() == (directory / "manifest.json").read_bytes()


def test_pandas_reads_it(recorded):
    pd = pytest.importorskip("pandas")
    directory, events, _, _ = recorded
    frame = pd.read_parquet(directory / "events.parquet")
    assert len(frame) == len(events)
    assert (frame["kind"] == "LiquidationStarted").sum() == sum(type(e) is LiquidationStarted for e in events)


def test_polars_reads_it(recorded):
    pl = pytest.importorskip("polars")
    directory, events, _, _ = recorded
    frame = pl.read_parquet(directory / "events.parquet")
    assert frame.height == len(events)
    assert frame.filter(pl.col("kind") == "LiquidationStarted").height == sum(
        type(e) is LiquidationStarted for e in events)


def test_duckdb_reads_it(recorded):
    duckdb = pytest.importorskip("duckdb")
    directory, events, _, _ = recorded
    (count,), = duckdb.sql(f"select count(*) from '{directory / 'events.parquet'}' "
                           f"where kind = 'LiquidationStarted'").fetchall()
    assert count == sum(type(e) is LiquidationStarted for e in events)


# -- schema discovery and edge cases ------------------------------------------------------------------
class _Color(enum.IntEnum):
    RED = 1


def _module(*classes):
    module = types.ModuleType("fake_events")
    for cls in classes:
        cls.__module__ = module.__name__
        setattr(module, cls.__name__, cls)
    return module


def test_a_new_event_type_needs_no_code_change():
    @dataclasses.dataclass(frozen=True)
    class Hello:
        symbol: str
        color: _Color
        time_ns: int
        flag: bool

    classes = event_classes(_module(Hello))
    schema = EventSchema(event_classes() + classes)
    assert {"color", "color_name", "flag"} <= set(schema.names)
    assert schema.names.count("event_time_ns") == 1


def test_a_field_type_conflict_is_refused():
    @dataclasses.dataclass(frozen=True)
    class A:
        x: int

    @dataclasses.dataclass(frozen=True)
    class B:
        x: str

    with pytest.raises(TypeError, match="'x'"):
        EventSchema(event_classes(_module(A, B)))


def test_empty_run_and_an_existing_recording(tmp_path):
    exchange = open_exchange(tmp_path, [make_instrument()])
    recorder = RunRecorder(tmp_path, exchange)
    manifest = recorder.close()
    assert pq.read_table(tmp_path / "events.parquet").num_rows == 0
    assert manifest["files"]["events.parquet"]["rows"] == 0 and "accounts.parquet" not in manifest["files"]
    with pytest.raises(FileExistsError):
        RunRecorder(tmp_path, exchange)
    with pytest.raises(ValueError):
        recorder.record(0, 0, None, [])
    exchange.close()
