"""``exchange-sim serve --sync os``: answers once the journal records are written to the OS (fsync in the
background); a gateway killed with SIGKILL right after its answers restores every answered order."""
import subprocess
import sys

from tests.gateway_helpers import ROOT, SYMBOL, Server, sync_client


def test_sync_os_keeps_every_answered_order_through_a_kill(tmp_path):
    s = Server(tmp_path, "--sync", "os")
    try:
        a = sync_client(s, 1)
        placed = [a.create_order(SYMBOL, "limit", "buy", 0.01, 49000 + 10 * i, {"clientOrderId": f"bid-{i}"})
                  for i in range(20)]
        b = sync_client(s, 2)
        b.create_order(SYMBOL, "limit", "sell", 0.01, 49190)  # fills the last bid
        state = s.admin("GET", "state")["state_hash"]
    finally:
        s.proc.kill()  # SIGKILL: no shutdown, no final sync, the journal left open
        s.proc.wait()
        s.log.close()
    s2 = Server(tmp_path, "--restore", journal=s.journal)
    try:
        assert s2.admin("GET", "state")["state_hash"] == state
        a2 = sync_client(s2, 1)
        for i, order in enumerate(placed):
            got = a2.fetch_order(None, SYMBOL, {"origClientOrderId": f"bid-{i}"})
            assert got["id"] == order["id"] and got["status"] == ("closed" if i == 19 else "open")
    finally:
        assert s2.stop() == 0


def test_an_unknown_sync_mode_is_refused(tmp_path):
    run = subprocess.run([sys.executable, "-m", "exchange.cli", "serve", "--sync", "sometimes", "--journal",
                          str(tmp_path / "j")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "invalid choice: 'sometimes'" in run.stderr
    assert not (tmp_path / "j").exists()
