"""The exchange-sim command: the demo runs end to end and its two paths agree, journals durably and
replays; every error is one line on stderr with its documented exit code, never a traceback."""
import os
import random
import re
import subprocess
import sys

import pytest

from exchange import IMPLEMENTATION
from exchange.cli import EXIT_CHECK_FAILED, EXIT_FILE, EXIT_INVALID, EXIT_OK, EXIT_USAGE, main
from exchange.persistence.journal import FRAME, MAGIC, read_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_exit_codes_are_the_documented_ones():
    assert (EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_INVALID, EXIT_FILE) == (0, 1, 2, 3, 4)
    import exchange.cli

    for code in range(5):
        assert re.search(rf"^{code}\s+\S", exchange.cli.__doc__, re.M)


def test_demo_runs_and_the_batch_path_agrees(capsys, tmp_path):
    journal = tmp_path / "demo.journal"
    assert main(["demo", "--commands", "3000", "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    assert f"implementation: {IMPLEMENTATION}" in out
    assert "batch path agrees with the exchange path" in out and out.rstrip().endswith(str(journal))
    assert re.search(r"Fill\s+[\d,]+", out)
    crash = re.search(r"LiquidationStarted (\d+), LiquidationFill (\d+), InsuranceFundChanged (\d+), ADLFill (\d+)", out)
    assert crash and all(int(n) > 0 for n in crash.groups())  # the crash liquidates, uses the fund and ADL
    assert "money conserved exactly" in out
    demo_hash = re.search(r"state hash ([0-9a-f]{64})", out).group(1)
    written = int(re.search(r"journal: ([\d,]+) commands \(fsync every:100ms\)", out).group(1).replace(",", ""))
    assert written > 3000  # the flow plus one deposit per trading account
    assert read_file(journal).report.closed

    assert main(["replay", str(journal)]) == 0
    replay_out = capsys.readouterr().out
    replayed = int(re.search(r"replayed ([\d,]+) commands", replay_out).group(1).replace(",", ""))
    assert replayed == written
    assert "torn tail" not in replay_out and "not closed" not in replay_out
    assert replay_out.strip().endswith(demo_hash)

    # a torn tail: reported, exit 0, the state of the intact prefix
    data = journal.read_bytes()
    torn = tmp_path / "torn.journal"
    torn.write_bytes(data[:len(data) - 20])
    assert main(["replay", str(torn)]) == 0
    torn_out = capsys.readouterr().out
    match = re.search(r"replayed ([\d,]+) commands .*\(torn tail of (\d+) bytes at offset ([\d,]+) ignored\)", torn_out)
    assert match and int(match.group(1).replace(",", "")) == written - 1
    assert "the journal was not closed" in torn_out

    # one flipped bit: corruption, exit 3, the offset and the record named
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    (tmp_path / "bad.journal").write_bytes(bytes(damaged))
    assert main(["replay", str(tmp_path / "bad.journal")]) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert re.fullmatch(r"exchange-sim: error: \S+bad.journal: corrupt record \d+ at offset \d+: [^\n]+\n", err)

    # the demo refuses to overwrite a journal
    assert main(["demo", "--commands", "10", "--journal", str(journal)]) == EXIT_FILE
    assert "refusing to overwrite" in capsys.readouterr().err
    assert journal.read_bytes() == data


def test_info(capsys):
    assert main(["info"]) == 0
    assert capsys.readouterr().out.strip() == f"implementation: {IMPLEMENTATION}"


def bad_files(tmp_path):
    rng = random.Random(3)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "random").write_bytes(bytes(rng.randrange(256) for _ in range(3000)))
    (tmp_path / "header-only").write_bytes(MAGIC + bytes(FRAME.size))
    (tmp_path / "dir").mkdir()
    return {
        "missing": (EXIT_FILE, "no such file"),
        "dir": (EXIT_FILE, "is a directory"),
        "empty": (EXIT_INVALID, "empty file"),
        "random": (EXIT_INVALID, "not an exchange journal"),
        "header-only": (EXIT_INVALID, "corrupt header"),
    }


def test_replay_of_bad_files_is_one_line_and_an_exit_code(capsys, tmp_path):
    """Regression: a missing, directory, empty or random file printed a Python traceback."""
    for name, (code, message) in bad_files(tmp_path).items():
        assert main(["replay", str(tmp_path / name)]) == code, name
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and err.startswith("exchange-sim: error: ") and message in err


@pytest.mark.parametrize("argv, message", [
    (["demo", "--commands", "0"], "argument --commands: expected a positive integer, got 0"),
    (["demo", "--commands", "-3"], "argument --commands: expected a positive integer, got -3"),
    (["demo", "--commands", "many"], "argument --commands: expected a positive integer, got 'many'"),
    (["demo", "--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    (["demo", "--fsync", "sometimes"], "argument --fsync: bad fsync policy 'sometimes'"),
    # (serve: a missing --config stops a run whose arguments pass, so a regression fails instead of serving)
    (["serve", "--config", "/nonexistent.toml", "--port", "99999"],
     "argument --port: expected a port number 0..65535, got 99999"),  # (was: port 99999 − 65536 = 34463)
    (["serve", "--config", "/nonexistent.toml", "--port", "-1"],
     "argument --port: expected a port number 0..65535, got -1"),
    (["serve", "--config", "/nonexistent.toml", "--speed", "0"], "argument --speed: expected a number > 0, got '0'"),
    (["serve", "--config", "/nonexistent.toml", "--speed", "nan"],
     "argument --speed: expected a number > 0, got 'nan'"),
    (["serve", "--config", "/nonexistent.toml", "--seed", "-5"], "argument --seed: expected an integer >= 0, got -5"),
    (["replay"], "the following arguments are required: JOURNAL"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: command"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, message):
    """Regression: ``demo --commands 0`` printed a traceback."""
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("exchange-sim: error: ") and message in err


def test_replay_with_a_missing_or_bad_snapshot_file(capsys, tmp_path):
    from exchange import Exchange
    from tests.conftest import make_instrument

    journal = tmp_path / "j"
    Exchange([make_instrument()], journal=str(journal)).close()
    assert main(["replay", str(journal), "--snapshot", str(tmp_path / "nope")]) == EXIT_FILE
    assert "snapshot" in capsys.readouterr().err
    (tmp_path / "garbage").write_bytes(b"garbage")
    assert main(["replay", str(journal), "--snapshot", str(tmp_path / "garbage")]) == EXIT_INVALID
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "garbage" in err


def test_a_real_process_prints_no_traceback(tmp_path):
    bad_files(tmp_path)
    for argv, code in ((["replay", str(tmp_path / "random")], EXIT_INVALID),
                       (["demo", "--commands", "0"], EXIT_USAGE)):
        result = subprocess.run([sys.executable, "-m", "exchange.cli", *argv], capture_output=True, text=True,
                                cwd=ROOT, timeout=60)
        assert result.returncode == code
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
        assert result.stderr.startswith("exchange-sim: error: ")
