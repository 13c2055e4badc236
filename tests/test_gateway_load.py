"""The gateway under load (issue 12, item 7): 50 concurrent clients place and cancel with signed requests
against a real ``exchange-sim serve`` subprocess while other clients disconnect abruptly (WebSocket user and
market streams reset mid-stream, HTTP requests aborted half-sent or unread). Then the server is stopped with
SIGTERM and its journal is read with the engine's public API (``exchange.persistence.journal.read_file`` +
``Exchange.apply``):

* every acknowledged order (HTTP 200 with an ``orderId``) is a journaled PlaceOrder whose OrderAccepted
  carries that id, for that account, with that client order id (journal notes);
* every journaled PlaceOrder of a load account was answered to its client (no phantom orders);
* every acknowledged cancel is a journaled CancelOrder; the replayed state hash is the served one;
* a ``--restore`` restart serves, for each account, exactly the open orders its client expects;
* the clients that stayed connected got an ``ORDER_TRADE_UPDATE`` for each of their orders, and the server
  answered everyone and exited 0.

The whole file runs in well under a minute (``LOAD_SECONDS`` of load); the one-minute version is
``python bench/bench_gateway.py --clients 50 --seconds 60``.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import time
from urllib.parse import urlencode, urlsplit

import pytest

aiohttp = pytest.importorskip("aiohttp")
orjson = pytest.importorskip("orjson")

from gateway_helpers import BTC_CONFIG, Server, accounts_toml  # noqa: E402

from exchange.commands import CancelOrder, PlaceOrder  # noqa: E402
from exchange.engine import Exchange  # noqa: E402
from exchange.events import OrderAccepted, OrderCanceled, Rejected  # noqa: E402
from exchange.persistence.journal import read_file  # noqa: E402
from exchange.persistence.recovery import replay_file  # noqa: E402
from exchange.gateway.sequencer import read_metas  # noqa: E402

N_CLIENTS = 50
LOAD_SECONDS = float(os.environ.get("GATEWAY_LOAD_SECONDS", "4"))
USER_STREAM_CLIENTS = 5          # load clients 1..5 also keep a user stream open the whole time
WS_ABUSER = N_CLIENTS + 1        # account that opens user streams and resets them
HTTP_ABUSER = N_CLIENTS + 2      # account whose requests are aborted (its orders may be journaled unanswered)
SYMBOL = "BTCUSDT"


def key(i: int) -> str:
    return f"load-key-{i:03d}"


def secret(i: int) -> str:
    return f"load-secret-{i:03d}-{'x' * 16}"


def load_config(n_accounts: int) -> str:
    return BTC_CONFIG + accounts_toml((i, "1000000", key(i), secret(i)) for i in range(1, n_accounts + 1))


def signed_query(account: int, params: dict) -> str:
    params = dict(params, timestamp=int(time.time() * 1000), recvWindow=60000)
    qs = urlencode(params)
    sig = hmac.new(secret(account).encode(), qs.encode(), hashlib.sha256).hexdigest()
    return f"{qs}&signature={sig}"


class Client:
    """A minimal signed Binance client on aiohttp (what a bot's HTTP layer does, without ccxt's overhead)."""

    def __init__(self, session: aiohttp.ClientSession, rest: str, account: int):
        self.s = session
        self.rest = rest
        self.account = account

    async def call(self, method: str, path: str, params: dict, in_body: bool = False):
        signed = signed_query(self.account, params)
        headers = {"X-MBX-APIKEY": key(self.account)}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            req = self.s.request(method, self.rest + path, data=signed, headers=headers)
        else:
            req = self.s.request(method, f"{self.rest}{path}?{signed}", headers=headers)
        async with req as r:
            body = await r.read()
            return r.status, orjson.loads(body)


class Ledger:
    """What the clients were told."""

    def __init__(self):
        self.acked: dict[int, dict[int, str]] = {}       # account -> orderId -> cid
        self.answered_cids: dict[str, int] = {}          # cid -> HTTP status (every answered place)
        self.cancelled: dict[int, set[int]] = {}         # account -> orderIds whose cancel was acknowledged
        self.failures: list = []
        self.requests = 0

    def expected_open(self, account: int) -> set[int]:
        return set(self.acked.get(account, {})) - self.cancelled.get(account, set())


async def trade(rest: str, account: int, deadline: float, ledger: Ledger) -> None:
    """Place non-crossing limit orders (so each client knows exactly what should stay open) and cancel about
    half of them; orders go in the body or the query string, alternately."""
    rng = random.Random(account)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        c = Client(s, rest, account)
        resting: list[int] = []
        n = 0
        while time.monotonic() < deadline:
            n += 1
            buy = rng.random() < 0.5
            price = rng.randint(480000, 499000) / 10 if buy else rng.randint(501000, 520000) / 10
            cid = f"L{account}-{n}"
            status, body = await c.call("POST", "/fapi/v1/order", {
                "symbol": SYMBOL, "side": "BUY" if buy else "SELL", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": f"{rng.randint(1, 10) / 1000:.3f}", "price": f"{price:.1f}", "newClientOrderId": cid},
                in_body=bool(n % 2))
            ledger.requests += 1
            ledger.answered_cids[cid] = status
            if status != 200 or "orderId" not in body or body.get("clientOrderId") != cid:
                ledger.failures.append(("place", account, cid, status, body))
                continue
            ledger.acked.setdefault(account, {})[body["orderId"]] = cid
            resting.append(body["orderId"])
            if rng.random() < 0.5:
                oid = resting.pop(rng.randrange(len(resting)))
                status, body = await c.call("DELETE", "/fapi/v1/order", {"symbol": SYMBOL, "orderId": oid})
                ledger.requests += 1
                if status != 200 or body.get("status") != "CANCELED" or body.get("orderId") != oid:
                    ledger.failures.append(("cancel", account, oid, status, body))
                    continue
                ledger.cancelled.setdefault(account, set()).add(oid)


async def user_stream(rest: str, ws_url: str, account: int, stop: asyncio.Event, seen: dict) -> None:
    """An honest user-stream client kept open through the whole run: collects ORDER_TRADE_UPDATE (id, x)."""
    async with aiohttp.ClientSession() as s:
        async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key(account)}) as r:
            listen_key = (await r.json())["listenKey"]
        async with s.ws_connect(f"{ws_url}/ws/{listen_key}") as ws:
            seen["connected"] = True
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.receive(), 0.2)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    seen["closed"] = msg.type
                    return
                ev = orjson.loads(msg.data)
                if ev.get("e") == "ORDER_TRADE_UPDATE":
                    seen.setdefault("events", set()).add((ev["o"]["i"], ev["o"]["x"]))


async def market_stream(ws_url: str, stop: asyncio.Event, seen: dict) -> None:
    """An honest market-data client (depth + bookTicker) kept open through the whole run."""
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{ws_url}/stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker") as ws:
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.receive(), 0.2)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    seen["closed"] = msg.type
                    return
                seen["messages"] = seen.get("messages", 0) + 1
                seen["last"] = time.monotonic()


# ---- abrupt disconnects ---------------------------------------------------------------------------------
def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), no FIN, no WebSocket close frame."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
    writer.transport.abort()


async def _raw_ws(host: str, port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    ws_key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {ws_key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return reader, writer


async def ws_abuser(rest: str, deadline: float, stats: dict) -> None:
    """User and market streams that are reset mid-stream (some after reading, some without ever reading)."""
    host, port = urlsplit(rest).hostname, urlsplit(rest).port
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            async with s.post(rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": key(WS_ABUSER)}) as r:
                listen_key = (await r.json())["listenKey"]
            conns = [await _raw_ws(host, port, f"/ws/{listen_key}"),
                     await _raw_ws(host, port, "/stream?streams=btcusdt@depth/btcusdt@trade/btcusdt@bookTicker"),
                     await _raw_ws(host, port, "/ws/btcusdt@depth20@100ms")]
            # an order of the abuser's own, so its user stream has something in flight when it is reset
            c = Client(s, rest, WS_ABUSER)
            await c.call("POST", "/fapi/v1/order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                    "quantity": "0.001", "price": "40000.0", "timeInForce": "GTC"})
            for i, (reader, writer) in enumerate(conns):
                if i % 2 == 0:
                    try:
                        got = await asyncio.wait_for(reader.read(256), 0.5)
                        stats["bytes"] = stats.get("bytes", 0) + len(got)
                    except asyncio.TimeoutError:
                        pass
                _reset(writer)
            # an aiohttp WebSocket whose task is cancelled mid-receive, session torn down with it
            ws_task = asyncio.ensure_future(_cancelled_ws(s, rest))
            await asyncio.sleep(0.05)
            ws_task.cancel()
            await asyncio.gather(ws_task, return_exceptions=True)
            stats["cycles"] = stats.get("cycles", 0) + 1
            await asyncio.sleep(0.05)


async def _cancelled_ws(s, rest):
    async with s.ws_connect(rest.replace("http", "ws", 1) + "/ws/btcusdt@aggTrade") as ws:
        await ws.receive()


async def slow_consumer(rest: str, stop: asyncio.Event) -> None:
    """A market-stream client that never reads (the server must drop it, not wait for it)."""
    host, port = urlsplit(rest).hostname, urlsplit(rest).port
    reader, writer = await _raw_ws(host, port, "/stream?streams=btcusdt@depth@0ms/btcusdt@depth20/btcusdt@bookTicker")
    await stop.wait()
    _reset(writer)


async def http_abuser(rest: str, deadline: float, stats: dict) -> None:
    """Signed requests aborted in every phase: half-sent headers, half-sent body, sent but never read, and an
    aiohttp request cancelled by a tiny timeout."""
    host, port = urlsplit(rest).hostname, urlsplit(rest).port
    n = 0
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            n += 1
            order = {"symbol": SYMBOL, "side": "SELL", "type": "LIMIT", "quantity": "0.001", "price": "60000.0",
                     "timeInForce": "GTC", "newClientOrderId": f"A-{n}"}
            body = signed_query(HTTP_ABUSER, order).encode()
            head = (f"POST /fapi/v1/order HTTP/1.1\r\nHost: {host}:{port}\r\nX-MBX-APIKEY: {key(HTTP_ABUSER)}\r\n"
                    f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            for cut in (len(head) // 2, len(head) + len(body) // 2, len(head) + len(body)):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write((head + body)[:cut])
                await writer.drain()
                await asyncio.sleep(0.002)
                _reset(writer)
                stats["aborted"] = stats.get("aborted", 0) + 1
            c = Client(s, rest, HTTP_ABUSER)
            try:
                await asyncio.wait_for(c.call("POST", "/fapi/v1/order", dict(order, newClientOrderId=f"B-{n}")), 0.0005)
            except asyncio.TimeoutError:
                stats["cancelled"] = stats.get("cancelled", 0) + 1
            await asyncio.sleep(0.01)


# ---- the journal ----------------------------------------------------------------------------------------
def journal_orders(journal_dir) -> dict:
    """Replay the journal command by command (the engine's public API) and map every PlaceOrder / CancelOrder
    to its outcome, with the client order id from the gateway's journal notes (keyed by engine sequence)."""
    contents = read_file(os.path.join(journal_dir, "journal"))
    ex = Exchange(contents.instruments, options=contents.options, profile=contents.profile,
                  liquidation=contents.liquidation)
    sidecar = read_metas(contents.notes, os.path.join(journal_dir, "gateway-orders.jsonl"))
    places, cancels = [], []
    for seq, cmd in enumerate(contents.commands, 1):
        events = ex.apply(cmd)
        if type(cmd) is PlaceOrder:
            acc = next((e.order_id for e in events if type(e) is OrderAccepted and e.account_id == cmd.account_id), None)
            rej = next((int(e.code) for e in events if type(e) is Rejected), None)
            places.append({"seq": seq, "account": cmd.account_id, "order_id": acc, "reject": rej,
                           "cid": sidecar.get(seq, {}).get("cid")})
        elif type(cmd) is CancelOrder:
            ok = any(type(e) is OrderCanceled and e.order_id == cmd.order_id for e in events)
            cancels.append({"account": cmd.account_id, "order_id": cmd.order_id, "ok": ok})
    return {"report": contents.report, "places": places, "cancels": cancels, "state_hash": ex.state_hash(),
            "sequence": ex.sequence}


# ---- the test -------------------------------------------------------------------------------------------
async def _run_load(server: Server) -> dict:
    rest, ws_url = server.rest, server.ws
    ledger = Ledger()
    stop = asyncio.Event()
    streams = {i: {} for i in range(1, USER_STREAM_CLIENTS + 1)}
    market = {}
    ws_stats, http_stats = {}, {}
    watchers = [asyncio.ensure_future(user_stream(rest, ws_url, i, stop, streams[i])) for i in streams]
    watchers.append(asyncio.ensure_future(market_stream(ws_url, stop, market)))
    watchers.append(asyncio.ensure_future(slow_consumer(rest, stop)))
    for _ in range(100):
        if all(s.get("connected") for s in streams.values()):
            break
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + LOAD_SECONDS
    started = time.monotonic()
    abusers = [asyncio.ensure_future(ws_abuser(rest, deadline, ws_stats)),
               asyncio.ensure_future(http_abuser(rest, deadline, http_stats))]
    results = await asyncio.gather(*(trade(rest, i, deadline, ledger) for i in range(1, N_CLIENTS + 1)),
                                   return_exceptions=True)
    elapsed = time.monotonic() - started
    await asyncio.gather(*abusers)
    await asyncio.sleep(0.5)  # the last batches reach the honest streams
    stop.set()
    await asyncio.gather(*watchers, return_exceptions=True)
    # the live server still answers everyone, and each account sees exactly its own open orders
    live_open = {}
    async with aiohttp.ClientSession() as s:
        async with s.get(rest + "/fapi/v1/ping") as r:
            assert r.status == 200
        for i in range(1, N_CLIENTS + 1):
            status, body = await Client(s, rest, i).call("GET", "/fapi/v1/openOrders", {"symbol": SYMBOL})
            assert status == 200, body
            live_open[i] = {o["orderId"] for o in body}
    return {"ledger": ledger, "results": results, "streams": streams, "market": market, "ws": ws_stats,
            "http": http_stats, "elapsed": elapsed, "live_open": live_open}


async def _open_orders(rest: str) -> dict[int, set[int]]:
    out = {}
    async with aiohttp.ClientSession() as s:
        for i in range(1, N_CLIENTS + 1):
            status, body = await Client(s, rest, i).call("GET", "/fapi/v1/openOrders", {"symbol": SYMBOL})
            assert status == 200, body
            assert all(o["clientOrderId"].startswith(f"L{i}-") for o in body), "another account's order leaked"
            out[i] = {o["orderId"] for o in body}
    return out


def test_fifty_clients_lose_no_acknowledgement_and_survive_disconnects(tmp_path):
    server = Server(tmp_path, "--clock", "manual", config=load_config(HTTP_ABUSER))
    try:
        run = asyncio.run(asyncio.wait_for(_run_load(server), 120))
        state = server.admin("GET", "state")
    finally:
        code = server.stop()
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]
    log = (tmp_path / "server.log").read_text()
    ledger: Ledger = run["ledger"]

    # every client finished without an exception and every request it made was answered as expected
    assert [r for r in run["results"] if isinstance(r, BaseException)] == []
    assert ledger.failures == [], ledger.failures[:5]
    n_acked = sum(len(v) for v in ledger.acked.values())
    assert len(ledger.acked) == N_CLIENTS and n_acked >= 5 * N_CLIENTS, n_acked
    # the disconnecting clients really did disconnect, repeatedly
    assert run["ws"].get("cycles", 0) >= 3 and run["http"].get("aborted", 0) >= 9, (run["ws"], run["http"])
    # the honest streams were not disturbed: never closed, every acked order's NEW and every cancel's CANCELED
    for i, seen in run["streams"].items():
        assert "closed" not in seen, (i, seen.get("closed"))
        events = seen.get("events", set())
        missing_new = [oid for oid in ledger.acked[i] if (oid, "NEW") not in events]
        missing_cancel = [oid for oid in ledger.cancelled.get(i, ()) if (oid, "CANCELED") not in events]
        assert missing_new == [] and missing_cancel == [], (i, missing_new[:5], missing_cancel[:5])
    assert "closed" not in run["market"] and run["market"].get("messages", 0) > 10, run["market"]
    # each account sees exactly the orders its client expects
    for i in range(1, N_CLIENTS + 1):
        assert run["live_open"][i] == ledger.expected_open(i), i

    # ---- the journal: no lost acknowledgement, no phantom order ----
    j = journal_orders(server.journal)
    assert j["report"].closed and j["report"].torn_tail_bytes == 0
    assert j["state_hash"] == state["state_hash"] and j["sequence"] == state["sequence"]
    by_id = {p["order_id"]: p for p in j["places"] if p["order_id"] is not None}
    for account, orders in ledger.acked.items():
        for oid, cid in orders.items():
            p = by_id.get(oid)
            assert p is not None, f"acknowledged order {oid} ({cid}) is not in the journal"
            assert p["account"] == account and p["cid"] == cid, (oid, cid, p)
    load_places = [p for p in j["places"] if p["account"] <= N_CLIENTS]
    phantoms = [p for p in load_places if p["cid"] not in ledger.answered_cids]
    assert phantoms == [], phantoms[:5]
    assert len(load_places) == len(ledger.answered_cids)  # one journaled PlaceOrder per answered request
    assert all(p["reject"] is None for p in load_places)
    cancelled_ok = {(c["account"], c["order_id"]) for c in j["cancels"] if c["ok"]}
    for account, oids in ledger.cancelled.items():
        assert {(account, oid) for oid in oids} <= cancelled_ok
    # the aborted HTTP requests: whatever of them reached the journal is a well-formed, accepted order
    abuser = [p for p in j["places"] if p["account"] == HTTP_ABUSER]
    assert all(p["order_id"] is not None for p in abuser)
    # the whole journal replays to the served state (the engine's own replay)
    ex, _, _ = replay_file(os.path.join(server.journal, "journal"))
    assert ex.state_hash() == state["state_hash"]

    # ---- restart from the journal: every account's open orders are what its client expects ----
    s2 = Server(tmp_path, "--restore", "--clock", "manual", journal=server.journal)
    try:
        assert s2.admin("GET", "state")["state_hash"] == state["state_hash"]
        restored = asyncio.run(asyncio.wait_for(_open_orders(s2.rest), 60))
    finally:
        assert s2.stop() == 0
    for i in range(1, N_CLIENTS + 1):
        assert restored[i] == ledger.expected_open(i), i
    # no exception escaped the gateway (the handshake reset is test_bug_websocket_reset_during_handshake's)
    unexpected = [b for b in tracebacks(log) if not _handshake_reset(b)]
    assert unexpected == [], unexpected[0]
    print(f"\nload: {N_CLIENTS} clients, {ledger.requests} signed requests in {run['elapsed']:.1f} s "
          f"({ledger.requests / run['elapsed']:.0f}/s), {n_acked} orders acknowledged, "
          f"{sum(len(v) for v in ledger.cancelled.values())} cancelled; ws resets {run['ws'].get('cycles')} cycles, "
          f"http aborts {run['http']}; ws_dropped {state.get('ws_dropped')}")


def tracebacks(log: str) -> list[str]:
    return [b[:3000] for b in log.split("Traceback (most recent call last):")[1:]]


def _handshake_reset(block: str) -> bool:
    return "await ws.prepare(request)" in block and "Cannot write to closing transport" in block


async def _reset_handshakes(rest: str, n: int) -> None:
    host, port = urlsplit(rest).hostname, urlsplit(rest).port
    for _ in range(n):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"GET /ws/btcusdt@depth HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        _reset(writer)
        await asyncio.sleep(0.01)


def test_websocket_reset_during_handshake(tmp_path):
    """A client that resets its connection right after sending the WebSocket upgrade makes ``ws.prepare``
    raise ClientConnectionResetError; Hub.handle returns quietly (no traceback in the server log) and the server
    keeps serving."""
    server = Server(tmp_path, config=load_config(2))
    try:
        asyncio.run(asyncio.wait_for(_reset_handshakes(server.rest, 50), 60))
        assert requests_ping(server.rest) == 200
    finally:
        assert server.stop() == 0
    resets = [b for b in tracebacks((tmp_path / "server.log").read_text()) if _handshake_reset(b)]
    assert resets == [], f"{len(resets)} unhandled handshake resets, e.g.\n{resets[0]}"


def requests_ping(rest: str) -> int:
    import urllib.request
    with urllib.request.urlopen(rest + "/fapi/v1/ping", timeout=10) as r:
        return r.status
