"""WebSocket: routes, SUBSCRIBE/UNSUBSCRIBE, listenKeys, and the hub that fans the sequencer's batches out.

Every connection has a bounded queue and its own writer task; :meth:`Hub.publish_batch` only ever does
``put_nowait``, so a slow client never blocks the sequencer: when its queue is full it is disconnected.
"""
from __future__ import annotations

import asyncio
import re
import secrets
import time

import orjson
from aiohttp import WSMsgType, web

from . import market, views, wire
from .errors import ApiError, LISTEN_KEY

QUEUE_SIZE = 2000
LISTEN_KEY_TTL_MS = 60 * 60 * 1000
DEPTH_VARIANTS = ("@depth", "@depth@100ms", "@depth@250ms", "@depth@500ms", "@depth@0ms")
_STREAM = re.compile(
    r"^(?P<sym>[a-z0-9]+)@(?P<kind>depth(?:5|10|20)?(?:@(?:0|100|250|500)ms)?|trade|aggTrade|markPrice(?:@1s)?"
    r"|kline_(?P<iv>1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w)|ticker|miniTicker|bookTicker|forceOrder)$")
_ALL = {"!markPrice@arr", "!markPrice@arr@1s", "!forceOrder@arr", "!bookTicker", "!miniTicker@arr", "!ticker@arr"}


class ListenKeys:
    def __init__(self, ttl_ms: int = LISTEN_KEY_TTL_MS):
        self.ttl_ms = ttl_ms  # lifetime of a key since its creation or last keepalive (--listen-key-ttl)
        self.by_key: dict[str, list] = {}  # key -> [account_id, expires_wall_ms]

    def create(self, account_id: int) -> str:
        now = int(time.time() * 1000)
        for key, entry in self.by_key.items():
            if entry[0] == account_id and entry[1] > now:
                entry[1] = now + self.ttl_ms
                return key
        key = secrets.token_urlsafe(48)
        self.by_key[key] = [account_id, now + self.ttl_ms]
        return key

    def keepalive(self, account_id: int, key: str | None) -> str:
        now = int(time.time() * 1000)
        if key is None:  # Binance accepts PUT without the key: the account's active key
            key = next((k for k, e in self.by_key.items() if e[0] == account_id and e[1] > now), None)
        entry = self.by_key.get(key) if key else None
        if entry is None or entry[0] != account_id or entry[1] <= now:
            raise ApiError(LISTEN_KEY)
        entry[1] = now + self.ttl_ms
        return key

    def delete(self, account_id: int, key: str | None) -> list[str]:
        keys = [k for k, e in self.by_key.items() if e[0] == account_id and (key is None or k == key)]
        for k in keys:
            del self.by_key[k]
        return keys

    def account(self, key: str) -> int | None:
        entry = self.by_key.get(key)
        if entry is None or entry[1] <= int(time.time() * 1000):
            return None
        return entry[0]

    def expired(self) -> list[tuple[str, int]]:
        now = int(time.time() * 1000)
        gone = [(k, e[0]) for k, e in self.by_key.items() if e[1] <= now]
        for k, _ in gone:
            del self.by_key[k]
        return gone


class Client:
    def __init__(self, ws: web.WebSocketResponse, wrapped: bool):
        self.ws = ws
        self.wrapped = wrapped
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.streams: set[str] = set()
        self.listen_keys: dict[str, int] = {}
        self.dropped = False

    def send(self, stream: str, raw: bytes, wrapped: bytes | None = None) -> bool:
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(wrapped if self.wrapped and wrapped is not None else raw)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            return False


def _pair(stream: str, payload) -> tuple[bytes, bytes]:
    return orjson.dumps(payload), orjson.dumps({"stream": stream, "data": payload})


class Hub:
    def __init__(self, gateway):
        self.gw = gateway
        self.by_stream: dict[str, set[Client]] = {}
        self.by_account: dict[int, set[tuple[Client, str]]] = {}
        self.clients: set[Client] = set()
        self.dropped = 0

    # ---- subscriptions -------------------------------------------------------------------------
    def valid(self, stream: str) -> bool:
        if stream in _ALL:
            return True
        m = _STREAM.match(stream)
        return bool(m) and m.group("sym").upper() in self.gw.exchange.instruments

    def subscribe(self, client: Client, stream: str) -> None:
        client.streams.add(stream)
        self.by_stream.setdefault(stream, set()).add(client)
        # the depth levels of a symbol nobody streamed are stale (Depth.diff): read them before the next batch
        name = stream.partition("@")[0]
        instruments = self.gw.exchange.instruments
        for symbol in instruments if name == "!bookTicker" else (name.upper(),) if name.upper() in instruments else ():
            self.gw.depth.follow(symbol)

    def unsubscribe(self, client: Client, stream: str) -> None:
        client.streams.discard(stream)
        subs = self.by_stream.get(stream)
        if subs:
            subs.discard(client)
            if not subs:
                del self.by_stream[stream]

    def attach_user(self, client: Client, key: str, account_id: int) -> None:
        client.listen_keys[key] = account_id
        self.by_account.setdefault(account_id, set()).add((client, key))

    def detach(self, client: Client) -> None:
        for stream in list(client.streams):
            self.unsubscribe(client, stream)
        for key, account_id in client.listen_keys.items():
            subs = self.by_account.get(account_id)
            if subs is not None:
                subs.discard((client, key))
                if not subs:  # the records make user-stream messages only for accounts listed here
                    del self.by_account[account_id]
        self.clients.discard(client)

    def close_key(self, key: str, account_id: int, expired: bool) -> None:
        now = self.gw.records.now_ms()
        for client, k in list(self.by_account.get(account_id, ())):
            if k != key:
                continue
            if expired:
                client.send(key, *_pair(key, {"e": "listenKeyExpired", "E": now, "listenKey": key}))
            client.send(key, b"__close__")

    # ---- publishing ----------------------------------------------------------------------------
    def _stream(self, stream: str, payload) -> None:
        subs = self.by_stream.get(stream)
        if not subs:
            return
        raw, wrapped = _pair(stream, payload)
        for client in list(subs):
            if not client.send(stream, raw, wrapped):
                self._drop(client)

    def _has(self, stream: str) -> bool:
        return stream in self.by_stream

    def _user(self, account_id: int, payload) -> None:
        subs = self.by_account.get(account_id)
        if not subs:
            return
        raw = orjson.dumps(payload)
        for client, key in list(subs):
            if not client.send(key, raw, orjson.dumps({"stream": key, "data": payload})):
                self._drop(client)

    def _drop(self, client: Client) -> None:
        self.dropped += 1
        self.detach(client)
        asyncio.get_running_loop().create_task(client.ws.close())

    def publish_batch(self, out) -> None:
        gw = self.gw
        ex = gw.exchange
        for account_id, marker in out.user:
            if account_id not in self.by_account:
                continue
            kind = marker[0]
            if kind == "ORDER":
                _, order, exec_type, fill, er, now = marker
                self._user(account_id, views.order_event(order, ex.instruments[order.symbol], exec_type, fill, er, now))
            elif kind == "ALGO":
                _, order, now = marker
                self._user(account_id, views.algo_event(order, ex.instruments[order.symbol], now))
            elif kind == "ACCOUNT_UPDATE":
                _, reasons, touched, now = marker
                self._user(account_id, views.account_update(ex, account_id, reasons, touched, now))
            elif kind == "MARGIN_CALL":
                _, symbol, side, now = marker
                self._user(account_id, views.margin_call(ex, account_id, symbol, side, now))
        now = gw.records.now_ms()
        streams = self.by_stream
        # what someone streams: symbols (lower case) and the all-market names ("!ticker", "!markPrice", ...)
        live = {name.partition("@")[0] for name in streams}
        for stream, payload in out.market:
            self._stream(stream, payload)
            if stream.endswith("@forceOrder"):
                self._stream("!forceOrder@arr", payload)
        traded = []
        for symbol, (tid, price_ticks, lots, t, buyer_maker) in out.trades:
            if symbol not in traded:
                traded.append(symbol)
            s = symbol.lower()
            if s not in live:
                continue
            inst = ex.instruments[symbol]
            if self._has(f"{s}@trade"):
                self._stream(f"{s}@trade", {"e": "trade", "E": t, "T": t, "s": symbol, "t": tid,
                                            "p": wire.price(inst, price_ticks), "q": wire.qty(inst, lots),
                                            "X": "MARKET", "m": buyer_maker})
            if self._has(f"{s}@aggTrade"):
                self._stream(f"{s}@aggTrade", {"e": "aggTrade", "E": t, "s": symbol, "a": tid,
                                               "p": wire.price(inst, price_ticks), "q": wire.qty(inst, lots),
                                               "f": tid, "l": tid, "T": t, "m": buyer_maker})
        tickers, minis = [], []
        for symbol in traded:
            s = symbol.lower()
            if s not in live and "!ticker" not in live and "!miniTicker" not in live:
                continue
            inst = ex.instruments[symbol]
            for stream in [st for st in streams if st.startswith(f"{s}@kline_")]:
                event = market.kline_event(gw.records, inst, stream.split("_", 1)[1], now)
                if event:
                    self._stream(stream, event)
            if self._has(f"{s}@ticker") or self._has(f"{s}@miniTicker") or self._has("!ticker@arr") \
                    or self._has("!miniTicker@arr"):
                t = market.ticker_event(market.ticker_24h(gw.records, ex, symbol), now)
                mini = {k: t[k] for k in ("E", "s", "c", "o", "h", "l", "v", "q")} | {"e": "24hrMiniTicker"}
                self._stream(f"{s}@ticker", t)
                self._stream(f"{s}@miniTicker", mini)
                tickers.append(t)
                minis.append(mini)
        if tickers:  # the all-market arrays: the tickers that changed in this batch
            self._stream("!ticker@arr", tickers)
            self._stream("!miniTicker@arr", minis)
        for symbol in sorted(out.depth_dirty):
            s = symbol.lower()
            event, ticker = gw.depth.diff(symbol, s in live or "!bookTicker" in live)  # the ids follow the book
            if event is not None:
                event = {"e": "depthUpdate", "E": now, "T": now, **{k: v for k, v in event.items() if k != "e"}}
                for v in DEPTH_VARIANTS:
                    self._stream(s + v, event)
                for n in (5, 10, 20):
                    for suffix in ("", "@100ms", "@250ms", "@500ms", "@0ms"):
                        if self._has(f"{s}@depth{n}{suffix}"):
                            self._stream(f"{s}@depth{n}{suffix}", {"E": now, "T": now, **gw.depth.partial(symbol, n)})
            if ticker is not None:
                ticker = {**ticker, "E": now, "T": now}
                self._stream(f"{s}@bookTicker", ticker)
                self._stream("!bookTicker", ticker)
        marks = []
        all_marks = "!markPrice" in live
        for symbol in sorted(out.mark_dirty):
            s = symbol.lower()
            if s not in live and not all_marks:
                continue
            event = market.mark_event(gw.records, ex, symbol)
            marks.append(event)
            self._stream(f"{s}@markPrice", event)
            self._stream(f"{s}@markPrice@1s", event)
        if marks:
            self._stream("!markPrice@arr", marks)
            self._stream("!markPrice@arr@1s", marks)

    # ---- the connection ------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 16)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client reset the connection during the handshake: nothing to serve
            # a plain response: aiohttp's writing it to the closed transport ends quietly (an unprepared
            # WebSocketResponse would raise "Call .prepare() first" from aiohttp's own write_eof)
            return web.Response(status=400)
        parts = [p for p in request.path.split("/") if p]
        wrapped = "stream" in parts
        client = Client(ws, wrapped)
        self.clients.add(client)
        writer = asyncio.get_running_loop().create_task(self._writer(client))
        try:
            keys = []
            if request.query.get("listenKey"):
                keys.append(request.query["listenKey"])
            tail = parts[-1] if parts and parts[-1] not in ("ws", "stream") else None
            streams = [s for s in request.query.get("streams", "").split("/") if s]
            if tail:
                streams.append(tail)
            for name in streams:
                if self.valid(name):
                    self.subscribe(client, name)
                elif self.gw.listen_keys.account(name) is not None:
                    keys.append(name)
                elif name.isdigit():  # ccxt's /public/ws/<n> connection index
                    continue
                elif "@" not in name and name not in _ALL:  # not a stream name: an unknown (or expired) listenKey
                    keys.append(name)
            for key in keys:
                account_id = self.gw.listen_keys.account(key)
                if account_id is None:
                    await ws.send_str(orjson.dumps({"error": {"code": -1125, "msg": "This listenKey does not exist."}}).decode())
                    await ws.close()
                    return ws
                self.attach_user(client, key, account_id)
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = self._control(client, msg.data)
                    if reply is not None:
                        await ws.send_str(orjson.dumps(reply).decode())
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.detach(client)
            writer.cancel()
        return ws

    def _control(self, client: Client, text: str):
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        if not isinstance(data, dict):
            return {"error": {"code": 3, "msg": "Invalid request"}, "id": None}
        rid = data.get("id")
        method = data.get("method")
        params = data.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": rid}
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE") or not isinstance(params, list) or \
                not all(isinstance(p, str) for p in params):
            return {"error": {"code": 2, "msg": "Invalid request: unknown method or malformed params"}, "id": rid}
        bad = [p for p in params if not self.valid(p)]
        if bad and method == "SUBSCRIBE":
            return {"error": {"code": 2, "msg": f"Invalid request: invalid stream {bad[0]}"}, "id": rid}
        for p in params:
            (self.subscribe if method == "SUBSCRIBE" else self.unsubscribe)(client, p)
        return {"result": None, "id": rid}

    async def _writer(self, client: Client) -> None:
        ws = client.ws
        try:
            while True:
                msg = await client.queue.get()
                if msg == b"__close__":
                    await ws.close()
                    return
                await ws.send_str(msg.decode())
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
