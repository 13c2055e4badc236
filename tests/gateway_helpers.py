"""Helpers for the gateway tests: start ``exchange-sim serve`` as a real subprocess on a random port, point
the real ccxt clients at it (the documented URL override + the one-line error-table merge), call the admin API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "BTC/USDT:USDT"

BTC_CONFIG = """
profile = "binance"

[[instruments]]
symbol = "BTCUSDT"
tick_size = "0.1"
lot_size = "0.001"
min_notional = "5"
max_price = "1000000"
max_qty = "10000"
price = "50000"
"""


def accounts_toml(accounts) -> str:
    """``[[accounts]]`` tables from ``(account_id, deposit)`` or ``(account_id, deposit, api_key, secret)`` rows."""
    text = ""
    for account_id, deposit, *keys in accounts:
        text += f"\n[[accounts]]\naccount_id = {account_id}\n"
        if keys:
            text += f'api_key = "{keys[0]}"\nsecret = "{keys[1]}"\n'
        text += f'deposit = "{deposit}"\n'
    return text


CONFIG = BTC_CONFIG + accounts_toml([(1, "100000"), (2, "100000"), (3, "1000"), (4, "100000")])


class Server:
    def __init__(self, tmp: Path, *extra: str, config: str = CONFIG, journal: Path | None = None,
                 python: tuple = (), start_timeout: float = 30):
        """``python``: arguments between the interpreter and ``-m exchange.cli`` (the benchmark's cProfile)."""
        self.tmp = Path(tmp)
        self.journal = journal or self.tmp / "journal"
        cfg = self.tmp / "gateway.toml"
        cfg.write_text(config)
        self.ready_path = self.tmp / f"ready-{time.monotonic_ns()}.json"
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log = open(self.tmp / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, *python, "-m", "exchange.cli", "serve", "--config", str(cfg), "--port", "0", "--journal",
             str(self.journal), "--ready-file", str(self.ready_path), *extra],
            cwd=str(self.tmp), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + start_timeout
        while not self.ready_path.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {(self.tmp / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        self.ready = json.loads(self.ready_path.read_text())
        self.rest = self.ready["rest"]
        self.ws = self.ready["ws"]
        self.accounts = {a["account_id"]: a for a in self.ready["accounts"]}

    def admin(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        r = requests.request(method, f"{self.rest}/admin/v1/{path}", json=body, params=params,
                             headers={"X-Admin-Token": self.ready["admin_token"]}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    def events(self, since: int = 0) -> list[dict]:
        return self.admin("GET", "engine/events", params={"since": since})

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def point_to_sim(ex, server: Server):
    """The documented override: every http url -> the simulator (path kept); ws linear -> <ws>/ws; merge the
    futures error table (ccxt picks it by URL prefix, which a localhost URL does not match)."""
    api = ex.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str) and "://" in url:
            rest = url.split("://", 1)[1]
            api[key] = server.rest + "/" + (rest.split("/", 1)[1] if "/" in rest else "")
    if isinstance(api.get("ws"), dict):
        api["ws"]["linear"] = server.ws + "/ws"
    ex.exceptions["exact"].update(ex.exceptions["linear"]["exact"])
    return ex


def client_config(server: Server, account_id: int) -> dict:
    a = server.accounts[account_id]
    return {"apiKey": a["api_key"], "secret": a["secret"], "enableRateLimit": False,
            "options": {"fetchCurrencies": False, "fetchOpenOrders": {"warnWithoutSymbol": False}}}


def sync_client(server: Server, account_id: int):
    import ccxt
    return point_to_sim(ccxt.binanceusdm(client_config(server, account_id)), server)


def async_client(server: Server, account_id: int):
    import ccxt.async_support as ccxta
    return point_to_sim(ccxta.binanceusdm(client_config(server, account_id)), server)


def pro_client(server: Server, account_id: int):
    import ccxt.pro as ccxtpro
    return point_to_sim(ccxtpro.binanceusdm(client_config(server, account_id)), server)
