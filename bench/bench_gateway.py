"""Benchmark of ``exchange-sim serve`` (issue 12 targets). A script, not a timed unit test:

    python bench/bench_gateway.py [--clients 50] [--seconds 10] [--orders 2000] [--procs 2] [--out FILE]
                                  [--profile] [--load-test] [--sync batch|os]

It starts the real server (subprocess, ``--port 0 --ready-file``, ``--clock manual``, journal in a temp dir,
group commit with fsync before the answers; ``--sync os``: the server's mode that answers once the records are
written and fsyncs in the background) with a maker account resting a deep book on both sides (admin API), then:

  floor  GET /fapi/v1/ping round trip, one keep-alive client: what the HTTP stack alone costs
  (a)    REST order round trip, one client: sign + POST /fapi/v1/order (MARKET, 0.001, alternately BUY/SELL,
         so every order matches the maker, each with its own newClientOrderId as ccxt sends one) + engine +
         group commit + the JSON answer; p50 / p99 over --orders
  (b)    orders/s with --clients concurrent clients (the same matching orders) for --seconds, spread over
         --procs client processes (the clients need CPU too: on a 2-core machine they compete with the server);
         the server's CPU (user + system) and the clients' CPU per order are measured in the same window
  (c)    WebSocket: time from the REST answer of an order to its first ORDER_TRADE_UPDATE on the account's user
         stream, same client process and clock (negative = the event arrived before the REST answer)

The floor, (a) and (b) use a lean client, as a load generator would: one keep-alive connection per client, the
request written as bytes and the answer parsed from its Content-Length (:class:`RawHttp`), the HMAC key
schedule done once per account; every order is still signed with its own timestamp, sent over HTTP, matched
and answered. (c) uses aiohttp's client and its WebSocket.

Targets (issue 12): (a) p50 <= 1 ms and p99 <= 5 ms; (b) >= 5,000 orders/s; (c) p50 <= 2 ms.
Prints a table (rich) and writes JSON (--out, default bench_gateway.json). ``--profile`` runs the server under
cProfile during the same run and prints where its time went. ``--load-test`` instead runs
tests/test_gateway_load.py for --seconds (the one-minute no-lost-acknowledgement run:
``--load-test --seconds 60``).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from gateway_helpers import BTC_CONFIG, Server, accounts_toml  # noqa: E402  (the tests' server wrapper)
MAKER = 1
FIRST_CLIENT = 2
TARGETS = {"order_p50_ms": 1.0, "order_p99_ms": 5.0, "orders_per_s": 5000.0, "ws_p50_ms": 2.0}


def config(n_clients: int) -> str:
    return BTC_CONFIG + accounts_toml((i, "10000000000" if i == MAKER else "10000000", f"bench-key-{i}",
                                       f"bench-secret-{i}") for i in range(1, n_clients + FIRST_CLIENT + 1))


def start_server(workdir: Path, n_clients: int, profile: Path | None = None, sync: str = "batch") -> Server:
    """The gateway as the tests start it (tests/gateway_helpers.py), manual clock, ``--sync`` mode; under cProfile
    if asked."""
    python = ("-m", "cProfile", "-o", str(profile)) if profile else ()
    return Server(workdir, "--clock", "manual", "--sync", sync, config=config(n_clients), python=python,
                  start_timeout=60)


# ---- a signed client ------------------------------------------------------------------------------------------
_MACS: dict[int, hmac.HMAC] = {}


def signed(account: int, params: dict) -> str:
    qs = urlencode(dict(params, timestamp=int(time.time() * 1000), recvWindow=60000))
    mac = _MACS.get(account)
    if mac is None:  # the key schedule once per account, as a client keeps its signer
        mac = _MACS[account] = hmac.new(f"bench-secret-{account}".encode(), digestmod=hashlib.sha256)
    mac = mac.copy()
    mac.update(qs.encode())
    return f"{qs}&signature={mac.hexdigest()}"


_CIDS = iter(range(1, 1 << 62))


def order_body(account: int, side: str) -> str:
    """A MARKET order of 0.001 with its own client order id (ccxt sends one with every order)."""
    return signed(account, {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": "0.001",
                            "newClientOrderId": f"b{os.getpid()}-{account}-{next(_CIDS)}"})


async def place(session: aiohttp.ClientSession, rest: str, account: int, side: str) -> dict:
    async with session.post(rest + "/fapi/v1/order", data=order_body(account, side),
                            headers={"X-MBX-APIKEY": f"bench-key-{account}",
                                     "Content-Type": "application/x-www-form-urlencoded"}) as r:
        data = orjson.loads(await r.read())
        if r.status != 200:
            raise RuntimeError(f"order refused: {r.status} {data}")
        return data


class RawHttp(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time; the answer is complete when its
    Content-Length bytes arrived (the gateway always sends one)."""

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.waiter: asyncio.Future | None = None

    @classmethod
    async def connect(cls, rest: str) -> "RawHttp":
        host, port = rest.split("://", 1)[1].rsplit(":", 1)
        _, client = await asyncio.get_running_loop().create_connection(cls, host, int(port))
        client.host = f"{host}:{port}"
        return client

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].decode("latin-1")
        length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n") if line[:15].lower() == "content-length:")
        if len(self.buf) >= end + 4 + length:
            body, self.buf = self.buf[end + 4:end + 4 + length], self.buf[end + 4 + length:]
            self.waiter.set_result((int(head[9:12]), body))

    def connection_lost(self, exc):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    async def request(self, method: str, path: str, headers: str = "", body: str = "") -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{headers}"
                             f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        return await self.waiter

    async def place(self, account: int, side: str) -> dict:
        status, body = await self.request("POST", "/fapi/v1/order", f"X-MBX-APIKEY: bench-key-{account}\r\n"
                                          "Content-Type: application/x-www-form-urlencoded\r\n",
                                          order_body(account, side))
        data = orjson.loads(body)
        if status != 200:
            raise RuntimeError(f"order refused: {status} {data}")
        return data

    def close(self):
        self.transport.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99),
            "mean_ms": statistics.fmean(ms) if ms else float("nan"), "max_ms": max(ms) if ms else float("nan")}


async def floor_and_single(rest: str, ws_url: str, n: int) -> dict:
    """floor (ping), (a) order round trip, (c) REST answer -> ORDER_TRADE_UPDATE, one client."""
    out = {}
    raw = await RawHttp.connect(rest)
    for _ in range(50):  # warm-up: connection, caches and the allocator
        await raw.request("GET", "/fapi/v1/ping")
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await raw.request("GET", "/fapi/v1/ping")
        lat.append((time.perf_counter() - t0) * 1000)
    out["ping"] = summary(lat)

    # sign alone (the client's part of the round trip)
    t0 = time.perf_counter()
    for _ in range(1000):
        order_body(FIRST_CLIENT, "BUY")
    out["sign_us"] = (time.perf_counter() - t0) * 1000

    account = FIRST_CLIENT
    for i in range(20):
        await raw.place(account, "BUY" if i % 2 == 0 else "SELL")
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        await raw.place(account, "BUY" if i % 2 == 0 else "SELL")
        lat.append((time.perf_counter() - t0) * 1000)
    out["order"] = summary(lat)
    raw.close()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
        # (c): a user stream of another account; time from the REST answer to the first ORDER_TRADE_UPDATE
        account = FIRST_CLIENT + 1
        async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": f"bench-key-{account}"}) as r:
            key = (await r.json())["listenKey"]
        first_seen: dict[int, float] = {}
        waiters: dict[int, asyncio.Event] = {}
        async with aiohttp.ClientSession() as ws_session:
            async with ws_session.ws_connect(f"{ws_url}/ws/{key}") as ws:
                async def reader():
                    async for msg in ws:
                        t = time.perf_counter()
                        ev = orjson.loads(msg.data)
                        if ev.get("e") == "ORDER_TRADE_UPDATE":
                            oid = ev["o"]["i"]
                            first_seen.setdefault(oid, t)
                            if oid in waiters:
                                waiters[oid].set()
                task = asyncio.ensure_future(reader())
                await asyncio.sleep(0.2)
                answered = {}
                for i in range(n):
                    data = await place(s, rest, account, "BUY" if i % 2 == 0 else "SELL")
                    answered[data["orderId"]] = time.perf_counter()
                    # wait for the event before the next order, so each sample is one order alone
                    if data["orderId"] not in first_seen:
                        waiters[data["orderId"]] = asyncio.Event()
                        try:
                            await asyncio.wait_for(waiters[data["orderId"]].wait(), 2)
                        except asyncio.TimeoutError:
                            pass
                await asyncio.sleep(0.2)
                task.cancel()
        lat = [(first_seen[o] - t) * 1000 for o, t in answered.items() if o in first_seen]
        out["ws"] = summary(lat)
        out["ws"]["missing"] = len(answered) - len(lat)
        out["ws"]["before_rest_answer"] = sum(x < 0 for x in lat)
    return out


def _worker(rest: str, accounts: list[int], start_at: float, end_at: float) -> dict:
    async def client(account: int, lat: list, counts: list):
        raw = await RawHttp.connect(rest)
        i = 0
        while time.time() < start_at:
            await asyncio.sleep(0.001)
        while time.time() < end_at:
            t0 = time.perf_counter()
            await raw.place(account, "BUY" if i % 2 == 0 else "SELL")
            lat.append((time.perf_counter() - t0) * 1000)
            counts[0] += 1
            i += 1
        raw.close()

    async def main():
        lat: list[float] = []
        counts = [0]
        cpu = []

        async def window():  # this process's CPU time in the timed window
            await asyncio.sleep(max(0.0, start_at - time.time()))
            cpu.append(time.process_time())
            await asyncio.sleep(max(0.0, end_at - time.time()))
            cpu.append(time.process_time())
        await asyncio.gather(window(), *(client(a, lat, counts) for a in accounts))
        return {"orders": counts[0], "lat": lat, "cpu_s": cpu[1] - cpu[0]}

    return asyncio.run(main())


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def throughput(rest: str, n_clients: int, seconds: float, procs: int, server_pid: int) -> dict:
    """Orders/s with ``n_clients`` in ``procs`` processes; also the server's own CPU time in the timed window,
    so its capacity per core is known even when the clients share its cores."""
    accounts = list(range(FIRST_CLIENT, FIRST_CLIENT + n_clients))
    groups = [accounts[i::procs] for i in range(procs)]
    start_at = time.time() + 1.5  # the workers are up and connected by then
    end_at = start_at + seconds
    with ProcessPoolExecutor(procs) as pool:
        jobs = pool.map(_worker, [rest] * procs, groups, [start_at] * procs, [end_at] * procs)
        time.sleep(max(0.0, start_at - time.time()))
        user0, sys0 = cpu_seconds(server_pid)
        time.sleep(max(0.0, end_at - time.time()))
        user1, sys1 = cpu_seconds(server_pid)
        results = list(jobs)
    total = sum(r["orders"] for r in results)
    lat = [x for r in results for x in r["lat"]]
    server_cpu = user1 - user0 + sys1 - sys0
    client_cpu = sum(r["cpu_s"] for r in results)
    per_order = (lambda cpu: cpu / total * 1000 if total else None)
    return {"clients": n_clients, "procs": procs, "seconds": seconds, "orders": total, "orders_per_s": total / seconds,
            "latency": summary(lat), "server_cpu_s": server_cpu, "server_user_s": user1 - user0,
            "server_sys_s": sys1 - sys0, "client_cpu_s": client_cpu,
            "server_cpu_ms_per_order": per_order(server_cpu), "client_cpu_ms_per_order": per_order(client_cpu),
            "orders_per_server_cpu_s": total / server_cpu if server_cpu else None}


def sync_probe(directory: Path, n: int = 200) -> dict:
    """What one durable append costs on this disk now: p50 / p99 of (write 200 bytes, fdatasync) in the journal's
    directory. The order round trip (a) pays one per batch, and this machine's disk varies (0.1 ms to 4 ms)."""
    path = directory / "sync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    lat = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 200)
            (getattr(os, "fdatasync", None) or os.fsync)(fd)
            lat.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return summary(lat)


def seed_book(server: Server) -> dict:
    """The maker (leverage 1: the widest position bracket) rests up to 300 BTC on each side in 10 BTC orders (as
    many as its bracket allows), so every benchmark order matches: a 60 s run at 5,000 orders/s of 0.001 BTC,
    alternating sides, takes 150 BTC per side."""
    import urllib.request
    req = urllib.request.Request(server.rest + "/fapi/v1/leverage", method="POST",
                                 data=signed(MAKER, {"symbol": "BTCUSDT", "leverage": 1}).encode(),
                                 headers={"X-MBX-APIKEY": f"bench-key-{MAKER}",
                                          "Content-Type": "application/x-www-form-urlencoded"})
    urllib.request.urlopen(req, timeout=60).read()
    seeded = {}
    for side, price in (("SELL", "50000.1"), ("BUY", "49999.9")):
        seeded[side] = 0
        for _ in range(30):
            try:
                server.admin("POST", "order", {"account_id": MAKER, "symbol": "BTCUSDT", "side": side, "qty": "10",
                                               "price": price})
            except AssertionError:  # the bracket is full (the admin answered with an error)
                break
            seeded[side] += 10
    return seeded


def report(result: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    a, p, w, t = result["order"], result["ping"], result["ws"], result["throughput"]
    table = Table(title=f"exchange-sim serve ({result['implementation']}), {result['machine']}")
    for col in ("measure", "p50", "p99", "target", "met"):
        table.add_column(col, justify="right" if col != "measure" else "left")

    def row(name, p50, p99, target, met):
        table.add_row(name, p50, p99, target, "yes" if met else "NO")

    table.add_row("floor: GET /fapi/v1/ping, 1 client", f"{p['p50_ms']:.3f} ms", f"{p['p99_ms']:.3f} ms", "", "")
    d = result["disk_sync"]
    table.add_row("disk: append + fdatasync (before / after)", f"{d[0]['p50_ms']:.3f} / {d[1]['p50_ms']:.3f} ms",
                  f"{d[0]['p99_ms']:.3f} / {d[1]['p99_ms']:.3f} ms", "", "")
    row("(a) order round trip, 1 client", f"{a['p50_ms']:.3f} ms", f"{a['p99_ms']:.3f} ms", "p50 ≤ 1, p99 ≤ 5 ms",
        a["p50_ms"] <= 1 and a["p99_ms"] <= 5)
    row(f"(b) orders/s, {t['clients']} clients ({t['procs']} procs, {t['seconds']:.0f} s)",
        f"{t['orders_per_s']:,.0f}/s", f"lat p99 {t['latency']['p99_ms']:.1f} ms", "≥ 5,000/s", t["orders_per_s"] >= 5000)
    row("(c) REST answer → ORDER_TRADE_UPDATE", f"{w['p50_ms']:.3f} ms", f"{w['p99_ms']:.3f} ms", "p50 ≤ 2 ms",
        w["p50_ms"] <= 2)
    Console(width=130).print(table)
    print(f"order / ping p50 ratio: {a['p50_ms'] / p['p50_ms']:.1f}x; signing: {result['sign_us']:.1f} µs per "
          f"request; (b) latency p50 {t['latency']['p50_ms']:.1f} ms; (c) {w['before_rest_answer']} of {w['n']} events "
          f"arrived before the REST answer, {w['missing']} missing; (b) the server used {t['server_cpu_s']:.2f} s of CPU "
          f"(user {t['server_user_s']:.2f}, system {t['server_sys_s']:.2f}) in {t['seconds']:.0f} s: "
          f"{t['orders_per_server_cpu_s'] or 0:,.0f} orders per server CPU second, {t['server_cpu_ms_per_order'] or 0:.3f} ms "
          f"of server CPU and {t['client_cpu_ms_per_order'] or 0:.3f} ms of client CPU per order; "
          f"{result['server']['batches'] or 0:,} batches")
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


def print_profile(path: Path, top: int = 30) -> None:
    stats = pstats.Stats(str(path))
    print(f"\n== server profile ({path}): top {top} by cumulative time ==")
    stats.sort_stats("cumulative").print_stats(top)
    print(f"== top {top} by own time ==")
    stats.sort_stats("tottime").print_stats(top)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0, help="(b) duration; with --load-test the load duration")
    ap.add_argument("--orders", type=int, default=2000, help="(a), (c) and floor: requests with one client")
    ap.add_argument("--procs", type=int, default=2, help="(b) client processes")
    ap.add_argument("--out", type=Path, default=Path("bench_gateway.json"))
    ap.add_argument("--profile", action="store_true", help="run the server under cProfile and print where time goes")
    ap.add_argument("--sync", choices=("batch", "os"), default="batch", help="the server's --sync mode")
    ap.add_argument("--load-test", action="store_true",
                    help="run tests/test_gateway_load.py for --seconds instead (no lost acknowledgement, disconnects)")
    args = ap.parse_args(argv)
    if args.load_test:
        env = dict(os.environ, GATEWAY_LOAD_SECONDS=str(args.seconds))
        return subprocess.call([sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_gateway_load.py"), "-q",
                                "-s", "-p", "no:cacheprovider"], env=env, cwd=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        tmp = Path(tmp)
        prof = tmp / "server.prof" if args.profile else None
        server = start_server(tmp, args.clients, prof, args.sync)
        try:
            seeded = seed_book(server)
            state = server.admin("GET", "state")
            result = {"implementation": state["implementation"], "machine": f"{os.cpu_count()} CPUs, "
                      f"{platform.python_implementation()} {platform.python_version()}",
                      "load_before": os.getloadavg(), "maker_btc": seeded, "args": {k: str(v) for k, v in vars(args).items()}}
            result["disk_sync"] = [sync_probe(tmp)]
            result.update(asyncio.run(floor_and_single(server.rest, server.ws, args.orders)))
            result["disk_sync"].append(sync_probe(tmp))
            result["throughput"] = throughput(server.rest, args.clients, args.seconds, args.procs, server.proc.pid)
            result["load_after"] = os.getloadavg()
            state = server.admin("GET", "state")
            result["server"] = {"sequence": state["sequence"], "batches": state.get("batches"),
                                "ws_dropped": state.get("ws_dropped")}
        finally:
            code = server.stop(timeout=120)  # cProfile writes its file on exit
        if code != 0:
            print((tmp / "server.log").read_text()[-3000:])
            raise SystemExit(f"server exited {code}")
        report(result, args.out)
        if prof is not None and prof.exists():
            print_profile(prof)
    return 0


if __name__ == "__main__":
    sys.exit(main())
