"""The journal: round trip and replay determinism, the durable file (framing, checksums, torn tail versus
corruption, fsync policies, writer failures, resume), and the regressions of the in-memory journal (no file
after a kill, truncated files replayed silently, undetected bit flips, the liquidation config dropped)."""
import dataclasses
import io
import os
import random
import struct

import msgpack
import pytest

from exchange import (
    Exchange, FundLimits, LiquidationConfig, OrderType, PlaceOrder, Rejected, RiskOptions, Side, dump_journal,
    load_journal, replay,
)
from exchange.persistence import journal as journal_module
from exchange.persistence.journal import (
    FRAME, MAGIC, FsyncEvery, JournalCorrupt, JournalError, JournalFileError, JournalWriter, NotAJournal,
    decode_command, encode_command, frame, header_bytes, parse, parse_fsync, read, read_file,
)
from exchange.persistence.recovery import replay_file
from exchange.profiles import PROFILES
from exchange.persistence.recovery import recover
from tests.conftest import COMPILED, make_instrument
from tests.streams import liquidation_commands, random_commands


def run(commands, implementation=None):
    ex = Exchange([make_instrument()], implementation=implementation)
    events, hashes = [], []
    for command in commands:
        before = ex.state_hash()
        produced = ex.apply(command)
        ex.check_invariants()
        if len(produced) == 1 and isinstance(produced[0], Rejected):
            assert ex.state_hash() == before, f"rejected {command} changed state"
        events.append(produced)
        hashes.append(ex.state_hash())
    return ex, events, hashes


def journaled(path, commands, fsync="never", **kwargs):
    """An exchange journaling to ``path`` with ``commands`` applied, closed."""
    ex = Exchange([make_instrument()], journal=str(path), fsync=fsync, **kwargs)
    for command in commands:
        ex.apply(command)
    ex.close()
    return ex


def frame_ends(data: bytes) -> list[int]:
    """Offsets where the header frame and each record frame end (parsed independently of the reader)."""
    pos, ends = len(MAGIC), []
    while pos < len(data):
        length = struct.unpack_from("<I", data, pos)[0]
        pos += FRAME.size + length
        ends.append(pos)
    return ends


# ==== encoding and the in-memory API =============================================================
def test_command_encoding_round_trips():
    command = PlaceOrder(3, "TESTUSDT", Side.SELL, 5, 0, OrderType.TRAILING_STOP_MARKET, callback_e8=100_000)
    assert decode_command(encode_command(command)) == command
    for bad in ([99, 1], [1, 1, 2], [], 5, [True, 1, 2], [None]):
        with pytest.raises(ValueError):
            decode_command(bad)


def test_journal_stream_round_trip_and_replay_reproduce_the_state_hash():
    commands = list(random_commands(seed=7, n=1500))
    ex, events, _ = run(commands)
    buffer = io.BytesIO()
    assert dump_journal(ex.instruments.values(), ex.journal, buffer) == len(ex.journal) == ex.sequence
    buffer.seek(0)
    instruments, loaded = load_journal(buffer)
    assert instruments == list(ex.instruments.values())
    assert loaded == ex.journal  # the well-formed commands; the malformed ones were never journaled
    replayed, replay_events = replay(instruments, loaded)
    assert replayed.state_hash() == ex.state_hash()
    malformed = [e for batch, c in zip(events, commands) if c not in ex.journal for e in batch]
    assert all(isinstance(e, Rejected) for e in malformed)
    assert replay_events == [e for batch in events for e in batch if not any(e is m for m in malformed)]


def test_read_unpacks_as_the_version_1_tuple_and_has_the_rest_as_attributes():
    buffer = io.BytesIO()
    config = LiquidationConfig(adl_seed=5)
    dump_journal([make_instrument()], [], buffer, liquidation=config)
    buffer.seek(0)
    contents = read(buffer)
    instruments, commands, options, profile = contents
    assert commands == [] and contents.liquidation == config and contents.report.closed


def test_load_refuses_other_files():
    with pytest.raises(ValueError):
        load_journal(io.BytesIO(b"\x91\x01"))
    with pytest.raises(NotAJournal):
        load_journal(io.BytesIO(b""))


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_keep_invariants_and_rejects_change_nothing(seed):
    run(random_commands(seed=seed, n=1500))


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("seed", range(10))
def test_both_implementations_produce_the_same_events_and_hashes(seed):
    commands = list(random_commands(seed=100 + seed, n=1500))
    _, events_py, hashes_py = run(commands, implementation="python")
    _, events_c, hashes_c = run(commands, implementation="cython")
    for i, (a, b) in enumerate(zip(events_py, events_c)):
        assert a == b, f"seed {seed}: events differ at command {i}: {commands[i]}"
    assert hashes_py == hashes_c


# ==== the durable file ===========================================================================
def test_the_exchange_journals_every_well_formed_command_before_applying_it(tmp_path, monkeypatch):
    path = tmp_path / "j"
    synced = []  # (records in the file, exchange.sequence) at each fsync
    ex = Exchange([make_instrument()], journal=str(path), fsync="always")
    real = journal_module._datasync
    monkeypatch.setattr(journal_module, "_datasync",
                        lambda fd: (synced.append((ex._journal_writer.commands, ex.sequence)), real(fd)))
    commands = list(random_commands(seed=3, n=150))
    for command in commands:
        ex.apply(command)
    # every record was fsynced while the exchange had not yet applied it
    assert [n for n, _ in synced] == list(range(1, ex.sequence + 1))
    assert all(sequence == n - 1 for n, sequence in synced)
    ex.close()
    contents = read_file(path)
    assert contents.commands == ex.journal and len(ex.journal) == ex.sequence < len(commands)
    assert contents.report.closed and not contents.report.torn_tail
    replayed, _, report = replay_file(path)
    assert replayed.state_hash() == ex.state_hash() and replayed.sequence == ex.sequence
    assert report.commands == ex.sequence


def test_the_liquidation_config_profile_and_options_survive_the_round_trip(tmp_path):
    """Regression: the version-1 header had no liquidation config, so replay silently used the default."""
    config = LiquidationConfig(fund=FundLimits(min_equity_units=10**8, max_position_lots=3, unwind_e8=2_000_000),
                               slice_min_notional_units=5 * 10**12, adl_seed=17)
    options = RiskOptions(allow_mode_switch_with_position=True, margin_call_e8=60_000_000, default_leverage=10)
    dydx = dataclasses.replace(PROFILES["dydx"].dydx, spread_to_maintenance_margin_ratio_ppm=1_200_000)
    profile = dataclasses.replace(PROFILES["dydx"], dydx=dydx)
    ex = journaled(tmp_path / "j", liquidation_commands(seed=4, n=1200), profile=profile, options=options,
                   liquidation=config)
    contents = read_file(tmp_path / "j")
    assert (contents.liquidation, contents.options, contents.profile) == (config, options, ex.profile)
    replayed, _, _ = replay_file(tmp_path / "j")
    assert replayed.liquidation.config == config and replayed.options == options and replayed.profile == ex.profile
    assert replayed.state_hash() == ex.state_hash()
    # the stream version too
    buffer = io.BytesIO()
    dump_journal(ex.instruments.values(), ex.journal, buffer, options, ex.profile, config)
    buffer.seek(0)
    assert read(buffer).liquidation == config
    stream_replayed, _ = replay(contents.instruments, contents.commands, options=options, profile=contents.profile,
                                liquidation=contents.liquidation)
    assert stream_replayed.state_hash() == ex.state_hash()


def test_a_truncated_journal_is_a_reported_torn_tail_never_a_silent_prefix(tmp_path):
    """Regression: a kill during the version-1 dump left a prefix that replayed silently with exit 0. Every
    cut is now either a torn tail (reported with its size and offset) or, at a frame boundary, a journal
    reported as not closed; the commands read are always exactly the complete frames."""
    journaled(tmp_path / "j", random_commands(seed=5, n=60))
    data = (tmp_path / "j").read_bytes()
    ends = frame_ends(data)  # header, 1..N commands, the end record
    header_end, record_ends = ends[0], ends[1:-1]
    full = parse(data)
    assert full.report.closed and full.report.commands == len(record_ends)
    for cut in range(header_end, len(data)):
        contents = parse(data[:cut])
        complete = sum(1 for end in record_ends if end <= cut)
        report = contents.report
        assert report.commands == complete and contents.commands == full.commands[:complete]
        assert not report.closed
        last = record_ends[complete - 1] if complete else header_end
        assert report.valid_length == last
        assert report.torn_tail_bytes == cut - last and (report.torn_tail_offset == last) == (cut > last)
        if cut > last:
            assert f"torn tail of {cut - last:,} bytes at offset {last:,} ignored" in report.summary()
    for cut in range(header_end):  # a damaged header is never a torn tail
        with pytest.raises(JournalCorrupt):
            parse(data[:cut])


def test_trailing_zeros_are_a_torn_tail_but_zeros_before_data_are_corruption(tmp_path):
    journaled(tmp_path / "j", random_commands(seed=6, n=40))
    data = (tmp_path / "j").read_bytes()
    contents = parse(data + bytes(4096))
    assert contents.report.torn_tail_bytes == 4096 and contents.report.closed
    ends = frame_ends(data)
    middle = ends[10]
    with pytest.raises(JournalCorrupt, match=f"record 11 at offset {middle}"):
        parse(data[:middle] + bytes(64) + data[middle:])
    assert parse(data[:middle] + bytes(64)).report.torn_tail_bytes == 64


def test_every_single_bit_flip_is_detected(tmp_path):
    """Regression: of 300 single-bit flips of a version-1 journal, 60 replayed silently to another state.
    Every bit of the magic, the header's frame, every record and the end record is flipped (and a sample
    of the header's payload): each flip raises JournalCorrupt (NotAJournal for the magic)."""
    journaled(tmp_path / "j", liquidation_commands(seed=8, n=25))
    data = (tmp_path / "j").read_bytes()
    header_end = frame_ends(data)[0]
    rng = random.Random(8)
    positions = [*range(len(MAGIC) + FRAME.size), *rng.sample(range(len(MAGIC) + FRAME.size, header_end), 120),
                 *range(header_end, len(data))]
    flips = 0
    for byte in positions:
        for bit in range(8):
            damaged = bytearray(data)
            damaged[byte] ^= 1 << bit
            with pytest.raises(JournalCorrupt) as caught:
                parse(bytes(damaged), "j")
            flips += 1
            if byte >= header_end:
                assert f"at offset {caught.value.offset}" in str(caught.value) and caught.value.record >= 1
    assert flips > 8 * 600


def test_reordered_repeated_or_missing_records_are_corruption(tmp_path):
    journaled(tmp_path / "j", random_commands(seed=9, n=30))
    data = (tmp_path / "j").read_bytes()
    ends = frame_ends(data)
    a, b, c = ends[3], ends[4], ends[5]  # records 4 and 5 (ends[0] is the header's)
    for damaged, record, offset in ((data[:a] + data[b:c] + data[a:b] + data[c:], 4, a),  # swapped
                                    (data[:b] + data[a:b] + data[b:], 5, b),  # repeated
                                    (data[:a] + data[b:], 4, a)):  # missing
        with pytest.raises(JournalCorrupt, match=f"record {record} at offset {offset}:"):
            parse(damaged)


def craft(records: list[bytes], header=None) -> bytes:
    """A journal whose frames are valid (lengths and checksums right) around arbitrary payloads."""
    head = header_bytes([make_instrument()], None, Exchange([make_instrument()]).profile, None) if header is None \
        else MAGIC + frame(msgpack.packb(header), 0)
    return head + b"".join(frame(payload, i) for i, payload in enumerate(records, 1))


@pytest.mark.parametrize("payload, message", [
    (msgpack.packb([1, 1, "TESTUSDT", 3, 5, 10_000, 1, 1, 0, False, False, 0, 1, 0, 0, 0, 0]), "malformed command"),
    (msgpack.packb([7, 1, 1.5]), "malformed command"),
    (msgpack.packb([7, 2**62 + 1, 100]), "malformed command"),
    (msgpack.packb([7, 1]), "undecodable record"),
    (msgpack.packb([99, 1, 2]), "undecodable record"),
    (msgpack.packb({"a": 1}), "undecodable record"),
    (msgpack.packb([0, 5]), "undecodable record"),  # an end record with the wrong count
    (b"\xc1", "undecodable record"),
    (msgpack.packb([7, 1, 100]) + b"\x00", "undecodable record"),
])
def test_a_well_framed_record_must_still_be_a_well_formed_command(payload, message):
    good = msgpack.packb(encode_command(PlaceOrder(1, "TESTUSDT", Side.BUY, 1, 10_000)))
    with pytest.raises(JournalCorrupt, match=f"record 2 at offset \\d+: {message}"):
        parse(craft([good, payload]))
    assert parse(craft([good])).report.commands == 1


def test_data_after_the_end_record_is_corruption(tmp_path):
    journaled(tmp_path / "j", random_commands(seed=10, n=20))
    data = (tmp_path / "j").read_bytes()
    ends = frame_ends(data)
    with pytest.raises(JournalCorrupt, match="after the end record"):
        parse(data + data[ends[0]:ends[1]])


def test_headers_that_are_not_this_version_or_not_a_journal():
    with pytest.raises(NotAJournal, match="unsupported journal version 3"):
        parse(craft([], {"format": "exchange-journal", "version": 3}))
    with pytest.raises(NotAJournal, match="not an exchange journal"):
        parse(craft([], {"format": "something-else", "version": 2}))
    with pytest.raises(JournalCorrupt, match="corrupt header"):
        parse(craft([], {"format": "exchange-journal", "version": 2, "instruments": []}))
    legacy = msgpack.packb({"format": "exchange-journal", "version": 1, "instruments": []})
    with pytest.raises(NotAJournal, match="version-1 journal without checksums"):
        parse(legacy)


def test_missing_directory_empty_and_random_files(tmp_path):
    with pytest.raises(JournalFileError, match="no such file"):
        read_file(tmp_path / "missing")
    with pytest.raises(JournalFileError, match="is a directory"):
        read_file(tmp_path)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(NotAJournal, match="empty file"):
        read_file(tmp_path / "empty")
    rng = random.Random(1)
    for size in (1, 7, 8, 100, 5000):
        (tmp_path / "random").write_bytes(bytes(rng.randrange(256) for _ in range(size)))
        with pytest.raises(NotAJournal, match="not an exchange journal"):
            read_file(tmp_path / "random")
    (tmp_path / "short").write_bytes(MAGIC[:5])
    with pytest.raises(JournalCorrupt, match="truncated journal header"):
        read_file(tmp_path / "short")


# ==== the writer =================================================================================
def test_create_refuses_to_overwrite_and_a_second_writer(tmp_path):
    path = tmp_path / "j"
    journaled(path, random_commands(seed=1, n=10))
    before = path.read_bytes()
    with pytest.raises(JournalFileError, match="refusing to overwrite"):
        Exchange([make_instrument()], journal=str(path))
    assert path.read_bytes() == before
    with pytest.raises(JournalFileError, match="is a directory"):
        Exchange([make_instrument()], journal=str(tmp_path))
    with pytest.raises(JournalFileError, match="cannot create"):
        Exchange([make_instrument()], journal=str(tmp_path / "no" / "j"))
    (tmp_path / "empty").write_bytes(b"")  # an empty file (e.g. touched) may be replaced
    Exchange([make_instrument()], journal=str(tmp_path / "empty")).close()
    assert read_file(tmp_path / "empty").report.commands == 0
    assert sorted(os.listdir(tmp_path)) == ["empty", "j"]  # no temporary file left behind
    live = Exchange([make_instrument()], journal=str(tmp_path / "live"))
    with pytest.raises(JournalFileError, match="another process"):
        JournalWriter.resume(tmp_path / "live", live, valid_length=read_file(tmp_path / "live").report.valid_length,
                             commands=0)
    live.close()


def test_a_writer_needs_a_fresh_exchange(tmp_path):
    ex = Exchange([make_instrument()])
    ex.apply(next(random_commands(seed=1, n=1)))
    with pytest.raises(JournalError, match="already applied 1 commands"):
        JournalWriter.create(tmp_path / "j", ex)


@pytest.mark.parametrize("policy, expected", [
    ("always", "always"), ("never", "never"), ("every:100", FsyncEvery(100)), ("every:5ms", FsyncEvery(ms=5)),
    ("every:100,2.5ms", FsyncEvery(100, 2.5)), (FsyncEvery(3), FsyncEvery(3)),
])
def test_fsync_policies_parse(policy, expected):
    assert parse_fsync(policy) == expected
    assert parse_fsync(str(expected)) == expected


@pytest.mark.parametrize("policy", ["", "sometimes", "every:", "every:0", "every:-1", "every:x", "every:1,2",
                                    "every:0ms", None, 3])
def test_bad_fsync_policies(policy):
    with pytest.raises(ValueError):
        parse_fsync(policy)


@pytest.mark.parametrize("policy, syncs", [("never", 0), ("every:10", 5), ("always", 50)])
def test_fsync_counts(tmp_path, monkeypatch, policy, syncs):
    ex = Exchange([make_instrument()], journal=str(tmp_path / "j"), fsync=policy)
    count = []
    monkeypatch.setattr(journal_module, "_datasync", lambda fd: count.append(fd))
    commands = [c for c in liquidation_commands(seed=2, n=50)]
    for command in commands:
        ex.apply(command)
    assert len(count) == syncs
    ex.close()
    assert len(count) == syncs + (policy != "never")


def test_sync_journal_fsyncs_the_writer_once_and_is_a_no_op_without_one(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(journal_module, "_datasync", lambda fd: synced.append(fd))
    plain = Exchange([make_instrument()])
    plain.sync_journal()  # no journal: nothing to do, no error
    ex = Exchange([make_instrument()], journal=str(tmp_path / "j"), fsync="never")
    for command in liquidation_commands(seed=2, n=20):
        ex.apply(command)
    assert synced == []  # "never": appends alone do not sync
    ex.sync_journal()
    assert len(synced) == 1
    ex.sync_journal()
    assert len(synced) == 2
    ex.close()
    n = len(synced)
    ex.sync_journal()  # closed: a no-op
    assert len(synced) == n


def test_sync_journal_raises_journal_error_when_the_fsync_fails(tmp_path, monkeypatch):
    path = tmp_path / "j"
    ex = Exchange([make_instrument()], journal=str(path), fsync="never")
    commands = list(liquidation_commands(seed=3, n=20))
    for command in commands[:10]:
        ex.apply(command)

    def failing(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal_module, "_datasync", failing)
    with pytest.raises(JournalError, match="Input/output error"):
        ex.sync_journal()
    with pytest.raises(JournalError, match="failed earlier"):  # the writer stopped, as on a failed write
        ex.apply(commands[10])


def test_fsync_every_ms_syncs_on_the_first_append_after_the_interval(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(journal_module.time, "monotonic", lambda: now[0])
    ex = Exchange([make_instrument()], journal=str(tmp_path / "j"), fsync="every:50ms")
    count = []
    monkeypatch.setattr(journal_module, "_datasync", lambda fd: count.append(fd))
    commands = liquidation_commands(seed=2, n=10)
    ex.apply(next(commands))
    now[0] += 0.049
    ex.apply(next(commands))
    assert count == []
    now[0] += 0.002
    ex.apply(next(commands))
    assert len(count) == 1


def test_a_failed_write_applies_nothing_and_stops_the_journal(tmp_path, monkeypatch):
    path = tmp_path / "j"
    ex = Exchange([make_instrument()], journal=str(path), fsync="never")
    commands = list(liquidation_commands(seed=3, n=40))
    for command in commands[:30]:
        ex.apply(command)
    before = ex.state_hash(), ex.sequence
    real_write = os.write

    def failing_write(fd, data):  # half the frame reaches the file, then the disk is full
        real_write(fd, bytes(data)[:len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "write", failing_write)
    with pytest.raises(JournalError, match="No space left on device"):
        ex.apply(commands[30])
    monkeypatch.setattr(journal_module.os, "write", real_write)
    assert (ex.state_hash(), ex.sequence) == before
    with pytest.raises(JournalError, match="failed earlier"):
        ex.apply(commands[31])
    ex.close()
    contents = read_file(path)  # the partial frame was truncated away: a valid journal of 30 commands
    assert contents.report.commands == 30 and not contents.report.torn_tail and not contents.report.closed
    recovered, _ = recover(path)
    assert recovered.state_hash() == before[0]


def test_an_unencodable_command_is_refused_before_anything_is_written(tmp_path):
    ex = Exchange([make_instrument()], journal=str(tmp_path / "j"))
    writer = ex._journal_writer
    with pytest.raises(JournalError, match="cannot journal"):
        writer.append(PlaceOrder(1, "TESTUSDT", Side.BUY, 2**70, 1))
    assert writer.commands == 0 and writer.length == os.path.getsize(tmp_path / "j")
    ex.close()
    with pytest.raises(JournalError, match="closed"):
        writer.append(PlaceOrder(1, "TESTUSDT", Side.BUY, 1, 1))


def test_resume_truncates_the_torn_tail_and_continues(tmp_path):
    path = tmp_path / "j"
    commands = list(liquidation_commands(seed=5, n=600))
    ex = journaled(path, commands[:300])
    data = path.read_bytes()
    ends = frame_ends(data)
    path.write_bytes(data[:ends[-2] - 5])  # drop the end record and 5 bytes of the last command: a torn tail
    recovered, report = recover(path, resume=True, fsync="every:100")
    assert report.torn_tail_bytes == ends[-2] - 5 - ends[-3] and report.final_sequence == ex.sequence - 1
    reference, stream = Exchange([make_instrument()]), iter(commands)
    while reference.sequence < recovered.sequence:
        reference.apply(next(stream))
    for command in stream:
        recovered.apply(command)
        reference.apply(command)
    recovered.close()
    contents = read_file(path)
    assert contents.report.closed and not contents.report.torn_tail
    assert contents.report.commands == recovered.sequence == reference.sequence
    again, _ = recover(path)
    assert again.state_hash() == reference.state_hash() == recovered.state_hash()


def test_resume_checks_the_exchange_against_the_journal(tmp_path):
    path = tmp_path / "j"
    journaled(path, random_commands(seed=2, n=50))
    with pytest.raises(JournalError, match="configuration differs"):
        JournalWriter.resume(path, Exchange([make_instrument()], profile="bybit"))
    with pytest.raises(JournalError, match="has applied 0 commands"):
        JournalWriter.resume(path, Exchange([make_instrument()]))


def test_resume_after_a_clean_close_replaces_the_end_record(tmp_path):
    path = tmp_path / "j"
    commands = list(liquidation_commands(seed=6, n=400))
    first = journaled(path, commands[:200])
    assert read_file(path).report.closed
    recovered, report = recover(path, resume=True)
    assert report.journal_closed and report.final_sequence == first.sequence
    for command in commands[200:]:
        recovered.apply(command)
    recovered.close()
    contents = read_file(path)
    assert contents.report.closed and contents.report.commands == recovered.sequence
    uninterrupted = journaled(tmp_path / "k", commands)
    assert contents.commands == read_file(tmp_path / "k").commands
    assert recover(path)[1].state_hash == uninterrupted.state_hash()
