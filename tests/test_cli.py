"""The exchange-sim command: the demo runs end to end and its two paths agree; journals replay."""
import re

from exchange import IMPLEMENTATION
from exchange.cli import main


def test_demo_runs_and_the_batch_path_agrees(capsys, tmp_path):
    journal = tmp_path / "demo.msgpack"
    assert main(["demo", "--commands", "3000", "--journal", str(journal)]) == 0
    out = capsys.readouterr().out
    assert f"implementation: {IMPLEMENTATION}" in out
    assert "batch path agrees with the exchange path" in out and out.rstrip().endswith(str(journal))
    assert re.search(r"Fill\s+[\d,]+", out)
    crash = re.search(r"LiquidationStarted (\d+), LiquidationFill (\d+), InsuranceFundChanged (\d+), ADLFill (\d+)", out)
    assert crash and all(int(n) > 0 for n in crash.groups())  # the crash liquidates, uses the fund and ADL
    assert "money conserved exactly" in out
    demo_hash = re.search(r"state hash ([0-9a-f]{64})", out).group(1)

    assert main(["replay", str(journal)]) == 0
    replay_out = capsys.readouterr().out
    replayed = int(re.search(r"replayed ([\d,]+) commands", replay_out).group(1).replace(",", ""))
    assert replayed > 3000  # the flow plus one deposit per trading account
    assert replay_out.strip().endswith(demo_hash)


def test_info(capsys):
    assert main(["info"]) == 0
    assert capsys.readouterr().out.strip() == f"implementation: {IMPLEMENTATION}"
