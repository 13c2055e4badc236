"""Wiring and life cycle of the gateway: build or restore the engine and the records, route REST paths, run
the aiohttp server, write the ready file, shut down cleanly."""
from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import os
import re
import signal
import sys
import traceback
from collections import deque
from urllib.parse import parse_qsl

import orjson
from aiohttp import HttpVersion11, web

from .. import units
from ..commands import Deposit, SetIndexPrice, SetMarkPrice
from ..engine import Exchange
from ..persistence.journal import read_file
from ..persistence.recovery import recover
from . import admin, config as configmod, errors, rest_account as acc, rest_algo as algo, rest_market as mkt
from . import heap, rest_orders as orders
from .auth import Authenticator
from .errors import ApiError
from .market import Depth
from .params import Params
from .records import Outbox, Records
from .sequencer import Sequencer, read_metas
from .ws import LISTEN_KEY_TTL_MS, Hub, ListenKeys

JOURNAL = "journal"
META = "gateway-meta.json"
SIDECAR = "gateway-orders.jsonl"  # client order ids of directories written before the journal notes
MAX_BODY = 64 * 1024
MAX_QUERY = 16 * 1024  # a longer query string is refused with a Binance error (414)
MAX_LINE = 256 * 1024  # what aiohttp's parser takes in a request line or header, so the check above can answer
EVENT_LOG = 100_000
# the WebSocket paths (a GET with "Upgrade: websocket"): /ws, /stream, /{public|market|private}/{ws|stream}, each
# optionally followed by /<streams or listenKey>
WS_PATH = re.compile(r"/(?:(?:public|market|private)/)?(?:ws|stream)(?:/.*)?")
SNAPSHOT_EVERY = 10_000

PUBLIC, SIGNED, KEY = "public", "signed", "key"
ROUTES = [
    # market data
    ("GET", "/fapi/v1/ping", PUBLIC, mkt.ping), ("GET", "/fapi/v1/time", PUBLIC, mkt.server_time),
    ("GET", "/fapi/v1/exchangeInfo", PUBLIC, mkt.exchange_info), ("GET", "/fapi/v1/depth", PUBLIC, mkt.depth),
    ("GET", "/fapi/v1/trades", PUBLIC, mkt.trades), ("GET", "/fapi/v1/historicalTrades", PUBLIC, mkt.trades),
    ("GET", "/fapi/v1/aggTrades", PUBLIC, mkt.agg_trades), ("GET", "/fapi/v1/klines", PUBLIC, mkt.klines),
    ("GET", "/fapi/v1/markPriceKlines", PUBLIC, mkt.klines), ("GET", "/fapi/v1/indexPriceKlines", PUBLIC, mkt.klines),
    ("GET", "/fapi/v1/ticker/24hr", PUBLIC, mkt.ticker_24h), ("GET", "/fapi/v1/ticker/price", PUBLIC, mkt.ticker_price),
    ("GET", "/fapi/v2/ticker/price", PUBLIC, mkt.ticker_price),
    ("GET", "/fapi/v1/ticker/bookTicker", PUBLIC, mkt.book_ticker),
    ("GET", "/fapi/v1/premiumIndex", PUBLIC, mkt.premium_index), ("GET", "/fapi/v1/fundingRate", PUBLIC, mkt.funding_rate),
    ("GET", "/fapi/v1/fundingInfo", PUBLIC, mkt.funding_info), ("GET", "/fapi/v1/openInterest", PUBLIC, mkt.open_interest),
    # stubs ccxt calls
    ("GET", "/sapi/v1/capital/config/getall", PUBLIC, mkt.empty_list),
    ("GET", "/sapi/v1/margin/allPairs", PUBLIC, mkt.empty_list),
    ("GET", "/sapi/v1/margin/isolated/allPairs", PUBLIC, mkt.empty_list),
    ("GET", "/api/v3/exchangeInfo", PUBLIC, mkt.empty_exchange_info),
    ("GET", "/dapi/v1/exchangeInfo", PUBLIC, mkt.empty_exchange_info),
    # account
    ("GET", "/fapi/v2/account", SIGNED, acc.account_v2), ("GET", "/fapi/v3/account", SIGNED, acc.account_v3),
    ("GET", "/fapi/v2/balance", SIGNED, acc.balance), ("GET", "/fapi/v3/balance", SIGNED, acc.balance),
    ("GET", "/fapi/v2/positionRisk", SIGNED, acc.position_risk_v2),
    ("GET", "/fapi/v3/positionRisk", SIGNED, acc.position_risk_v3),
    ("POST", "/fapi/v1/leverage", SIGNED, acc.leverage), ("POST", "/fapi/v1/marginType", SIGNED, acc.margin_type),
    ("POST", "/fapi/v1/positionMargin", SIGNED, acc.position_margin),
    ("GET", "/fapi/v1/positionSide/dual", SIGNED, acc.get_dual), ("POST", "/fapi/v1/positionSide/dual", SIGNED, acc.set_dual),
    ("GET", "/fapi/v1/leverageBracket", SIGNED, acc.leverage_bracket),
    ("GET", "/fapi/v1/symbolConfig", SIGNED, acc.symbol_config),
    ("GET", "/fapi/v1/accountConfig", SIGNED, acc.account_config),
    ("GET", "/fapi/v1/commissionRate", SIGNED, acc.commission_rate),
    ("GET", "/fapi/v1/multiAssetsMargin", SIGNED, acc.multi_assets),
    ("GET", "/fapi/v1/income", SIGNED, acc.income), ("GET", "/fapi/v1/forceOrders", SIGNED, acc.force_orders),
    ("GET", "/fapi/v1/adlQuantile", SIGNED, acc.adl_quantile),
    # orders
    ("POST", "/fapi/v1/order", SIGNED, orders.new_order), ("GET", "/fapi/v1/order", SIGNED, orders.get_order),
    ("DELETE", "/fapi/v1/order", SIGNED, orders.cancel_order), ("PUT", "/fapi/v1/order", SIGNED, orders.amend_order),
    ("GET", "/fapi/v1/openOrders", SIGNED, orders.open_orders), ("GET", "/fapi/v1/openOrder", SIGNED, orders.open_order),
    ("GET", "/fapi/v1/allOrders", SIGNED, orders.all_orders), ("GET", "/fapi/v1/userTrades", SIGNED, orders.user_trades),
    ("DELETE", "/fapi/v1/allOpenOrders", SIGNED, orders.cancel_all),
    ("POST", "/fapi/v1/batchOrders", SIGNED, orders.batch_new), ("DELETE", "/fapi/v1/batchOrders", SIGNED, orders.batch_cancel),
    # algo
    ("POST", "/fapi/v1/algoOrder", SIGNED, algo.new_algo), ("GET", "/fapi/v1/algoOrder", SIGNED, algo.get_algo),
    ("DELETE", "/fapi/v1/algoOrder", SIGNED, algo.cancel_algo),
    ("GET", "/fapi/v1/openAlgoOrders", SIGNED, algo.open_algos), ("GET", "/fapi/v1/allAlgoOrders", SIGNED, algo.all_algos),
    ("DELETE", "/fapi/v1/algoOpenOrders", SIGNED, algo.cancel_all_algos),
]


class Gateway:
    def __init__(self, cfg, exchange, journal_dir: str | None, clock_mode: str = "manual",
                 listen_key_ttl_ms: int = LISTEN_KEY_TTL_MS):
        self.config = cfg
        self.exchange = exchange
        self.journal_dir = journal_dir
        self.journal_path = os.path.join(journal_dir, JOURNAL) if journal_dir else None
        self.clock_mode = clock_mode
        self.depth = Depth(exchange)
        self.hub = Hub(self)
        self.listen_keys = ListenKeys(listen_key_ttl_ms)
        self.auth = Authenticator(cfg.accounts)
        self.sequencer = Sequencer(exchange, self.hub)
        self.use_records(Records(exchange, {a.account_id for a in cfg.accounts}, cfg.epoch_ms))
        self.event_log: deque = deque(maxlen=EVENT_LOG)  # the last events; _event_n is the number of the newest
        self._event_n = 0
        self.sequencer.event_sink = self._log_events
        self.last_snapshot = None
        self.routes = {(m, p): (kind, fn) for m, p, kind, fn in ROUTES}
        self.admin_routes = {(m, p): fn for m, p, fn in admin.ROUTES}
        self.clock = None

    def use_records(self, records: Records) -> None:
        self.records = self.sequencer.records = records
        records.listeners = self.hub.by_account

    def _log_events(self, events) -> None:
        """Keep the events (immutable; the admin route converts them to rows when asked). Their running numbers
        follow from the count: no (n, event) pair per event for the collector to track."""
        self.event_log.extend(events)
        self._event_n += len(events)

    def logged_events(self, since: int) -> list:
        """``(n, event)`` of the kept events numbered above ``since``. O(kept)."""
        first = self._event_n - len(self.event_log) + 1
        skip = max(0, since + 1 - first)
        return list(zip(itertools.count(first + skip), itertools.islice(self.event_log, skip, None)))

    # ---- HTTP ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except ApiError as exc:
            return _json(exc.body(), exc.status)
        except Exception as exc:  # a bug: answer with a Binance error and log it, never a 500
            traceback.print_exc(file=sys.stderr)
            return _json({"code": errors.UNKNOWN, "msg": f"An unknown error occured while processing the request: "
                                                         f"{type(exc).__name__}"}, 400)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise ApiError(errors.BAD_PARAM, "Request body too large.", status=413)
        raw_body = ""
        if method in ("POST", "PUT", "DELETE") and request.can_read_body:
            expect = request.headers.get("Expect")
            if expect is not None and request.version == HttpVersion11:  # what aiohttp's router did for us
                if expect.lower() != "100-continue":
                    raise ApiError(errors.BAD_PARAM, f"Unknown Expect: {expect}", status=417)
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0
            try:  # one read when the length is known (the parser delivers no more than it)
                data = await (request.content.readexactly(length) if length is not None else _read_body(request.content))
            except (ConnectionResetError, RuntimeError, asyncio.IncompleteReadError):  # reset by peer, closed, cut short
                if request.transport is not None and not request.transport.is_closing():
                    raise  # the connection is fine: a bug, which handle reports
                return web.Response(status=400)  # the client left mid-body: nothing ran, nobody to answer
            if len(data) > MAX_BODY:
                raise ApiError(errors.BAD_PARAM, "Request body too large.", status=413)
            try:
                raw_body = data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(errors.ILLEGAL_CHARS, "Illegal characters found in the request body.") from None
        if method == "GET":
            await self.sequencer.committed()  # a batch syncing in the thread is not visible yet
        raw_query = request.raw_path.partition("?")[2]  # as sent: signatures are over the percent-encoded query
        if len(raw_query) > MAX_QUERY:
            raise ApiError(errors.BAD_PARAM, f"Query string too long (more than {MAX_QUERY} bytes).", status=414)
        if path.startswith("/admin/"):
            return await self._admin(request, method, path, raw_body)
        if path == "/fapi/v1/listenKey":
            return await self._listen_key(request, method, raw_query, raw_body)
        route = self.routes.get((method, path))
        if route is None:
            if any(p == path for (_, p) in self.routes):
                raise ApiError(errors.UNSUPPORTED, f"{method} {path} is not supported by the simulator.", 405)
            raise ApiError(errors.UNSUPPORTED, f"{method} {path} is not supported by the simulator.", 404)
        kind, fn = route
        account = None
        params = _params(raw_query, raw_body)
        if kind == SIGNED:
            account = self.auth.verify(request.headers, method, raw_query, raw_body, params)
        result = await fn(self, Params(self, params, account))
        return _json(result, 200)

    async def _listen_key(self, request, method, raw_query, raw_body):
        account = self.auth.account_of_key(request.headers)
        params = _params(raw_query, raw_body)
        if method == "POST":
            return _json({"listenKey": self.listen_keys.create(account.account_id)}, 200)
        if method == "PUT":
            return _json({"listenKey": self.listen_keys.keepalive(account.account_id, params.get("listenKey"))}, 200)
        if method == "DELETE":
            for key in self.listen_keys.delete(account.account_id, params.get("listenKey")):
                self.hub.close_key(key, account.account_id, expired=False)
            return _json({}, 200)
        raise ApiError(errors.UNSUPPORTED, f"{method} /fapi/v1/listenKey is not supported.", 405)

    async def _admin(self, request, method, path, raw_body):
        token = request.headers.get("X-Admin-Token", "")
        if not token or not hmac.compare_digest(token, self.config.admin_token):
            raise ApiError(errors.BAD_KEY, "Invalid admin token.", 401)
        fn = self.admin_routes.get((method, path))
        if fn is None:
            raise ApiError(errors.UNSUPPORTED, f"{method} {path} is not an admin route.", 404)
        params = dict(parse_qsl(request.query_string, keep_blank_values=True))
        if raw_body.strip():
            try:
                body = orjson.loads(raw_body)
            except orjson.JSONDecodeError:
                raise errors.malformed("body", "not JSON") from None
            if not isinstance(body, dict):
                raise errors.malformed("body", "a JSON object")
            params.update({k: (str(v).lower() if isinstance(v, bool) else v if isinstance(v, str) else
                               str(v) if isinstance(v, (int, float)) else v) for k, v in body.items()})
        return _json(await fn(self, Params(self, params, None)), 200)

    async def expire_keys(self) -> None:
        every = min(5.0, self.listen_keys.ttl_ms / 4000)  # a short --listen-key-ttl is checked often enough
        while True:
            await asyncio.sleep(every)
            for key, account_id in self.listen_keys.expired():
                self.hub.close_key(key, account_id, expired=True)

    async def dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        """Every request (aiohttp's low-level server: the gateway routes by itself, without an Application)."""
        if request.method == "GET" and request.headers.get("Upgrade", "").lower() == "websocket" \
                and WS_PATH.fullmatch(request.path):
            return await self.hub.handle(request)
        return await self.handle(request)


def _pairs(text: str) -> list:
    """``parse_qsl(text, keep_blank_values=True)``, without its per-pair unquoting when nothing is quoted."""
    if "%" in text or "+" in text:
        return parse_qsl(text, keep_blank_values=True)
    return [pair.partition("=")[::2] for pair in text.split("&") if pair]


async def _read_body(content) -> bytes:
    """The whole request body, however many TCP segments it came in (one ``read`` returns what has arrived so
    far), but never more than ``MAX_BODY + 1`` bytes: the caller refuses anything longer. O(body)."""
    parts, size = [], 0
    while size <= MAX_BODY:
        chunk = await content.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _params(raw_query: str, raw_body: str) -> dict:
    params = dict(_pairs(raw_body)) if raw_body else {}
    if raw_query:
        params.update(_pairs(raw_query))
    params.pop("signature", None)
    return params


def _json(body, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# ==== building and restoring ==========================================================================
def _initial_commands(cfg, instruments) -> list:
    cmds = []
    for inst in instruments:
        price = cfg.initial_prices().get(inst.symbol)
        if price:
            ticks = inst.price_to_ticks(price)
            cmds += [SetIndexPrice(inst.symbol, ticks), SetMarkPrice(inst.symbol, ticks)]
    for a in cfg.accounts:
        amount = units.to_units(a.deposit)
        if amount > 0:
            cmds.append(Deposit(a.account_id, amount))
    return cmds


def build(cfg, journal_dir: str | None, clock_mode: str) -> Gateway:
    """A new gateway: a fresh journal in ``journal_dir`` (refused if one exists)."""
    instruments = cfg.build_instruments()
    if journal_dir:
        os.makedirs(journal_dir, exist_ok=True)
        if os.path.exists(os.path.join(journal_dir, JOURNAL)):
            from ..persistence.journal import JournalFileError
            raise JournalFileError(f"{journal_dir}: already holds a journal; use --restore or another --journal")
        configmod.save(cfg, os.path.join(journal_dir, META))
        ex = Exchange(instruments, profile=cfg.profile, journal=os.path.join(journal_dir, JOURNAL), fsync="never",
                      snapshot_every=SNAPSHOT_EVERY, keep_commands=False)  # the journal file holds them
    else:
        ex = Exchange(instruments, profile=cfg.profile)
    gw = Gateway(cfg, ex, journal_dir, clock_mode)
    out = Outbox()
    for cmd in _initial_commands(cfg, instruments):
        gw.records.ingest(cmd, None, ex.apply(cmd), out)
    gw.depth = Depth(ex)
    ex.sync_journal()
    return gw


def restore(journal_dir: str, clock_mode: str) -> Gateway:
    """Engine from snapshot + journal (``exchange.recover``); records rebuilt by replaying the journal through a
    scratch exchange into the same ingest code, with the client ids of the journal's notes."""
    cfg = configmod.read_saved(os.path.join(journal_dir, META))
    path = os.path.join(journal_dir, JOURNAL)
    ex, report = recover(path, resume=True, fsync="never", snapshot_every=SNAPSHOT_EVERY)
    ex.journal = None  # as in a new gateway: the journal file holds the commands, memory need not
    contents = read_file(path)
    scratch = Exchange(contents.instruments, options=contents.options, profile=contents.profile,
                       liquidation=contents.liquidation, keep_commands=False)
    metas = read_metas(contents.notes, os.path.join(journal_dir, SIDECAR))
    records = Records(scratch, {a.account_id for a in cfg.accounts}, cfg.epoch_ms)
    out = Outbox()
    for seq, cmd in enumerate(contents.commands[:report.journal_commands], 1):
        records.ingest(cmd, metas.get(seq), scratch.apply(cmd), out)
    if scratch.state_hash() != ex.state_hash():
        raise RuntimeError("restore: the replayed state differs from the recovered one")
    records.ex = ex  # the records now follow the recovered (journaling) exchange
    gw = Gateway(cfg, ex, journal_dir, clock_mode)
    gw.use_records(records)
    return gw


async def serve(gw: Gateway, host: str, port: int, ready_file: str | None, speed: float = 1.0, seed: int = 1) -> None:
    # a request line or header up to MAX_LINE reaches the gateway (and gets a Binance error); beyond it aiohttp's
    # parser answers a plain-text 400 itself
    server = web.Server(gw.dispatch, access_log=None, max_line_size=MAX_LINE, max_field_size=MAX_LINE)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    sockets = site._server.sockets if site._server else []
    actual = sockets[0].getsockname()[1] if sockets else port
    heap.install()  # after the engine and the records are built or restored: they live as long as the process
    gw.sequencer.start()
    expiry = asyncio.get_running_loop().create_task(gw.expire_keys())
    if gw.clock_mode == "realtime":
        from .clock import RealtimeClock
        gw.clock = RealtimeClock(gw, speed, seed)
        gw.clock.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(f"listening on http://{shown}:{actual}", flush=True)
    print(f"admin token: {gw.config.admin_token}", flush=True)
    for a in gw.config.accounts:
        print(f"account {a.account_id}: api_key={a.api_key} secret={a.secret}", flush=True)
    if ready_file:
        ready = {"rest": f"http://{shown}:{actual}", "ws": f"ws://{shown}:{actual}", "admin_token": gw.config.admin_token,
                 "accounts": [{"account_id": a.account_id, "api_key": a.api_key, "secret": a.secret}
                              for a in gw.config.accounts]}
        tmp = f"{ready_file}.tmp"
        with open(tmp, "w") as f:
            json.dump(ready, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    await stop.wait()
    if gw.clock:
        await gw.clock.stop()
    expiry.cancel()
    await runner.cleanup()
    await gw.sequencer.stop()
    gw.exchange.close()
    heap.release()


def _run(coro):
    """On uvloop's event loop where it is installed (a dependency except on Windows: a fifth less server CPU per
    order, bench/bench_gateway.py), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(args) -> int:
    """``exchange-sim serve`` (arguments parsed in :mod:`exchange.cli`)."""
    journal_dir = args.journal or "exchange-sim-gateway"
    if args.restore:
        gw = restore(journal_dir, args.clock)
    else:
        cfg = configmod.load(args.config, args.admin_token)
        gw = build(cfg, journal_dir, args.clock)
    if args.admin_token:
        gw.config.admin_token = args.admin_token
    gw.listen_keys.ttl_ms = int(args.listen_key_ttl * 1000)
    gw.sequencer.sync_mode = args.sync  # one of sequencer.SYNC_MODES (the parser's choices)
    _run(serve(gw, args.host, args.port, args.ready_file, args.speed, args.seed))
    return 0
