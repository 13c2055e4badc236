"""The gateway under attack (issue 12, item 7): bad signatures, stale and future timestamps, replayed signed
requests, unknown and missing keys, oversized and malformed bodies and query strings, wrong methods, unknown
paths, non-ASCII and huge values in every parameter, and a hypothesis fuzz of the state-changing endpoints
(order, leverage, marginType, positionMargin, batchOrders, algoOrder).

Against a real ``exchange-sim serve`` subprocess (manual clock). Every refusal must be a 4xx with a Binance
``{"code": <negative int>, "msg": str}`` body, never a 500 nor the gateway's catch-all ("An unknown error
occured": an internal exception), and must leave the engine's state hash (admin ``GET /admin/v1/state``,
field ``state_hash``) unchanged. The server log must hold no traceback at the end.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from urllib.parse import quote, urlencode, urlsplit

import pytest

requests = pytest.importorskip("requests")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from gateway_helpers import Server  # noqa: E402

FUZZ_EXAMPLES = 60  # per endpoint; the whole file stays well under a minute on either implementation
HTTP = requests.Session()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw-attack")
    s = Server(tmp)
    s.log_path = tmp / "server.log"
    # an open order of account 1 (the amend / cancel targets) and one of account 2 (the isolation target)
    s.order1 = call(s, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                   "timeInForce": "GTC", "quantity": "0.010", "price": "45000",
                                                   "newClientOrderId": "attack-target"}).json()
    s.order2 = call(s, "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
                                                   "timeInForce": "GTC", "quantity": "0.010", "price": "44000"},
                    account=2).json()
    assert "orderId" in s.order1 and "orderId" in s.order2
    yield s
    code = s.stop()
    log = s.log_path.read_text()
    assert code == 0
    assert internal_tracebacks(log) == [], internal_tracebacks(log)[0]


def internal_tracebacks(log: str) -> list[str]:
    """Tracebacks in the server log other than aiohttp's own report of an unparsable HTTP message (garbage on the
    socket is answered 400 by aiohttp's parser, which logs it); any other one is an exception in the gateway."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b[:2000] for b in blocks if "aiohttp.http_exceptions." not in b.split("Error handling request")[0]]


# ---- helpers --------------------------------------------------------------------------------------------
def now_ms() -> int:
    return int(time.time() * 1000)


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def call(s: Server, method: str, path: str, params: dict | None = None, account: int = 1, in_body: bool = False,
         ts: int | None = None, secret: str | None = None, key: str | None = None, raw: str | None = None,
         signature: str | None = None, headers: dict | None = None):
    """A signed request as a Binance client sends it: urlencoded params + timestamp, HMAC-SHA256 last."""
    acc = s.accounts[account]
    if raw is None:
        p = dict(params or {})
        p.setdefault("timestamp", now_ms() if ts is None else ts)
        raw = urlencode(p, quote_via=quote)
    sig = signature if signature is not None else sign(secret or acc["secret"], raw)
    signed = f"{raw}&signature={sig}"
    h = {"X-MBX-APIKEY": acc["api_key"] if key is None else key, **(headers or {})}
    if in_body:
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return HTTP.request(method, s.rest + path, data=signed.encode(), headers=h, timeout=30)
    return HTTP.request(method, f"{s.rest}{path}?{signed}", headers=h, timeout=30)


def state_hash(s: Server) -> str:
    return s.admin("GET", "state")["state_hash"]


def assert_error(r, code: int | None = None, status: int | tuple = (400, 499)) -> dict:
    """A Binance error: 4xx, JSON {code: negative int, msg: str}, not the gateway's catch-all for a bug."""
    lo, hi = (status, status) if isinstance(status, int) else status
    assert lo <= r.status_code <= hi, (r.status_code, r.text[:300])
    assert r.headers.get("Content-Type", "").startswith("application/json"), (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"code", "msg"}, body
    assert isinstance(body["code"], int) and body["code"] < 0 and isinstance(body["msg"], str), body
    assert not body["msg"].startswith("An unknown error occured"), body  # an exception inside the gateway
    if code is not None:
        assert body["code"] == code, body
    return body


def refused_unchanged(s: Server, r, code: int | None = None, status=(400, 499)) -> dict:
    before = s.hash_before
    body = assert_error(r, code, status)
    assert state_hash(s) == before, ("state changed on a reject", body)
    return body


@pytest.fixture
def g(gw):
    gw.hash_before = state_hash(gw)
    return gw


ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
         "price": "40000"}


# ---- authentication -------------------------------------------------------------------------------------
def test_bad_signatures_are_1022(g):
    a1, a2 = g.accounts[1], g.accounts[2]
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, signature="0" * 64), -1022)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, secret=a2["secret"]), -1022)  # another secret
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, signature="zz-not-hex"), -1022)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, in_body=True, signature="1" * 64), -1022)
    # a valid signature over different parameters (tampered price after signing)
    raw = urlencode(dict(ORDER, timestamp=now_ms()))
    sig = sign(a1["secret"], raw)
    r = HTTP.post(f"{g.rest}/fapi/v1/order?{raw.replace('price=40000', 'price=41000')}&signature={sig}",
                  headers={"X-MBX-APIKEY": a1["api_key"]})
    refused_unchanged(g, r, -1022)
    # signature missing
    r = HTTP.post(f"{g.rest}/fapi/v1/order?{raw}", headers={"X-MBX-APIKEY": a1["api_key"]})
    refused_unchanged(g, r, -1102)


def test_stale_and_future_timestamps_are_1021(g):
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, ts=now_ms() - 6000), -1021)  # recvWindow 5000
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, recvWindow=1000), ts=now_ms() - 2000), -1021)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, ts=now_ms() + 5000), -1021)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, ts=10 ** 30), -1021)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, ts=1), -1021)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, ts="yesterday"), -1102)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, recvWindow=60001)), -1102)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, recvWindow=0)), -1102)
    # the same request inside a wider window is accepted (the check is the window, not the age alone)
    ok = call(g, "POST", "/fapi/v1/order", dict(ORDER, recvWindow=20000), ts=now_ms() - 6000)
    assert ok.status_code == 200, ok.text
    assert call(g, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": ok.json()["orderId"]}).status_code == 200


def test_replayed_signed_requests_are_refused(g):
    raw = urlencode(dict(ORDER, timestamp=now_ms(), newClientOrderId="replay-me"))
    url = f"{g.rest}/fapi/v1/order?{raw}&signature={sign(g.accounts[1]['secret'], raw)}"
    h = {"X-MBX-APIKEY": g.accounts[1]["api_key"]}
    first = HTTP.post(url, headers=h)
    assert first.status_code == 200, first.text
    g.hash_before = state_hash(g)
    for _ in range(3):
        refused_unchanged(g, HTTP.post(url, headers=h), -1022)
    # the same request with the signature in the body instead of the query is the same signature: refused
    body = f"{raw}&signature={sign(g.accounts[1]['secret'], raw)}"
    refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", data=body, headers={
        **h, "Content-Type": "application/x-www-form-urlencoded"}), -1022)
    # a replayed cancel
    raw = urlencode({"symbol": "BTCUSDT", "orderId": first.json()["orderId"], "timestamp": now_ms()})
    url = f"{g.rest}/fapi/v1/order?{raw}&signature={sign(g.accounts[1]['secret'], raw)}"
    assert HTTP.delete(url, headers=h).status_code == 200
    g.hash_before = state_hash(g)
    refused_unchanged(g, HTTP.delete(url, headers=h), -1022)


def test_unknown_and_missing_keys(g):
    r = call(g, "GET", "/fapi/v2/balance", key="not-a-key")
    assert_error(r, -2015, 401)
    r = HTTP.get(f"{g.rest}/fapi/v2/balance?timestamp={now_ms()}&signature={'0' * 64}")
    assert_error(r, -2014, 401)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, key="x" * 5000), -2015, 401)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", ORDER, key=""), -2014, 401)
    r = HTTP.post(f"{g.rest}/fapi/v1/order?timestamp={now_ms()}", headers={"X-MBX-APIKEY": "ключ".encode()})
    refused_unchanged(g, r, -2015, 401)
    # the listenKey endpoint needs a key too
    assert_error(HTTP.post(g.rest + "/fapi/v1/listenKey"), -2014, 401)
    assert_error(HTTP.post(g.rest + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": "nope"}), -2015, 401)
    # the admin API is separate: a trading key is not an admin token
    assert_error(HTTP.get(g.rest + "/admin/v1/state", headers={"X-Admin-Token": g.accounts[1]["api_key"]}), -2015, 401)
    assert_error(HTTP.post(g.rest + "/admin/v1/deposit", json={"account_id": 1, "amount": "1"}), -2015, 401)


def test_a_key_cannot_touch_another_accounts_order(g):
    other = g.order2["orderId"]
    refused_unchanged(g, call(g, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": other}), -2013)
    refused_unchanged(g, call(g, "PUT", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": other, "side": "BUY",
                                                           "quantity": "0.01", "price": "44100"}), -2013)
    assert_error(call(g, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": other}), -2013)
    r = call(g, "DELETE", "/fapi/v1/batchOrders", {"symbol": "BTCUSDT", "orderIdList": json.dumps([other])})
    assert r.status_code == 200 and r.json()[0]["code"] == -2011, r.text
    assert state_hash(g) == g.hash_before


# ---- sizes and shapes -----------------------------------------------------------------------------------
def test_oversized_bodies_are_refused_with_a_code(g):
    h = {"X-MBX-APIKEY": g.accounts[1]["api_key"], "Content-Type": "application/x-www-form-urlencoded"}
    refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", data="a=" + "x" * 200_000, headers=h), status=413)
    # no Content-Length (chunked): the reader stops at the limit
    refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", data=iter([b"a=" + b"x" * 70_000, b"y" * 70_000]),
                                   headers=h), status=413)
    refused_unchanged(g, HTTP.post(g.rest + "/admin/v1/deposit", data="{" + " " * 100_000 + "}",
                                   headers={"X-Admin-Token": g.ready["admin_token"]}), status=413)
    # a correctly signed body just over the limit
    big = {"symbol": "BTCUSDT", "batchOrders": json.dumps([ORDER] * 5), "pad": "p" * 70_000}
    refused_unchanged(g, call(g, "POST", "/fapi/v1/batchOrders", big, in_body=True), status=413)


def test_long_query_strings_under_the_line_limit_are_answered(g):
    """A signed query of ~7 KB (under aiohttp's 8190-byte request line) is parsed and answered with a code."""
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, newClientOrderId="c" * 7000)), -1102)
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, price="1" * 7000)))


def test_oversized_query_string_gets_a_binance_error(g):
    """A request line longer than aiohttp's default limit (8190 bytes) reaches the gateway (its parser takes up
    to 256 KiB) and gets a Binance {code, msg}: a query over 16 KiB is refused with 414, not a text/plain 400."""
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, pad="q" * 20_000)))
    assert_error(HTTP.get(g.rest + "/fapi/v1/depth?symbol=BTCUSDT&x=" + "y" * 20_000))


def test_malformed_bodies(g):
    h = {"X-MBX-APIKEY": g.accounts[1]["api_key"]}
    form = {**h, "Content-Type": "application/x-www-form-urlencoded"}
    # JSON instead of a form: no signature pair can be found
    refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", json=dict(ORDER, timestamp=now_ms()), headers=h), -1102)
    # not UTF-8
    refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", data=b"\xff\xfe\x00symbol=BTCUSDT", headers=form), -1100)
    # garbage forms
    for body in ["&&&===&&", "=", "%ZZ%%%", "symbol", "a=1&a=2&a=3", "\x00\x01\x02", "[" * 1000]:
        refused_unchanged(g, HTTP.post(g.rest + "/fapi/v1/order", data=body.encode(), headers=form))
    # correctly signed, but the JSON parameter is broken
    for bad in ["[", "{}", "[]", "[1,2,3]", '[{"symbol": "BTCUSDT"}]' * 2, json.dumps([ORDER] * 6), "null", '"x"',
                "[" * 5000 + "]" * 5000]:
        r = call(g, "POST", "/fapi/v1/batchOrders", {"batchOrders": bad}, in_body=True)
        if r.status_code == 200:  # a list of per-order errors is Binance's answer for bad items
            assert all(isinstance(x, dict) and x.get("code", 0) < 0 for x in r.json()), r.text
            assert state_hash(g) == g.hash_before
        else:
            refused_unchanged(g, r)
    # admin bodies
    ah = {"X-Admin-Token": g.ready["admin_token"]}
    for body in ["{bad", "[1,2]", "null", '"x"', '{"account_id": {"a": 1}, "amount": [1]}', '{"amount": 1e999}']:
        refused_unchanged(g, HTTP.post(g.rest + "/admin/v1/deposit", data=body, headers=ah), -1102)


def test_wrong_methods_and_unknown_paths(g):
    for method, path in [("PATCH", "/fapi/v1/order"), ("POST", "/fapi/v1/ping"), ("DELETE", "/fapi/v1/exchangeInfo"),
                         ("PUT", "/fapi/v1/batchOrders"), ("GET", "/fapi/v1/leverage"), ("OPTIONS", "/fapi/v1/order"),
                         ("PATCH", "/fapi/v1/listenKey")]:
        h = {"X-MBX-APIKEY": g.accounts[1]["api_key"]}
        body = assert_error(HTTP.request(method, g.rest + path, headers=h), -1000, (404, 405))
        assert "not supported" in body["msg"]
    for path in ["/", "/fapi/v1/nope", "/fapi/v9/order", "/fapi/v1/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/admin", "/api/v3/order", "/dapi/v1/order", "/fapi/v1/order/%00", "/" + "a" * 4000, "/€"]:
        assert_error(HTTP.get(g.rest + path), -1000, 404)
    assert_error(HTTP.get(g.rest + "/admin/v1/nope", headers={"X-Admin-Token": g.ready["admin_token"]}), -1000, 404)
    assert state_hash(g) == g.hash_before


def test_garbage_on_the_socket_does_not_hurt_the_server(g):
    host, port = urlsplit(g.rest).hostname, urlsplit(g.rest).port
    for raw in [b"GARBAGE\r\n\r\n", b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                b"POST /fapi/v1/order HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)),  # a TLS ClientHello
                b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"]:
        with socket.create_connection((host, port), timeout=5) as so:
            so.sendall(raw)
            try:
                got = so.recv(200)
            except socket.timeout:
                got = b""
            assert not got.startswith(b"HTTP/1.1 5") and not got.startswith(b"HTTP/1.0 5"), got
    assert HTTP.get(g.rest + "/fapi/v1/ping").status_code == 200
    assert state_hash(g) == g.hash_before


def test_a_body_sent_in_several_tcp_segments_is_read_whole(g):
    """A signed POST whose body arrives in three writes (a slow link, Nagle off): the server reads it whole, the
    signature holds and the order is placed (a single read of what had arrived would see a third of it)."""
    acc = g.accounts[1]
    raw = urlencode(dict(ORDER, price="39000", newClientOrderId="split-body", timestamp=now_ms()), quote_via=quote)
    body = f"{raw}&signature={sign(acc['secret'], raw)}".encode()
    head = (f"POST /fapi/v1/order HTTP/1.1\r\nHost: x\r\nX-MBX-APIKEY: {acc['api_key']}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    host, port = urlsplit(g.rest).hostname, urlsplit(g.rest).port
    with socket.create_connection((host, port), timeout=10) as so:
        so.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        third = len(body) // 3
        for part in (head + body[:third], body[third:2 * third], body[2 * third:]):
            so.sendall(part)
            time.sleep(0.05)
        answer = b""
        while chunk := so.recv(65536):
            answer += chunk
    status, _, rest = answer.partition(b"\r\n")
    assert status.split()[1] == b"200", answer[:400]
    placed = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert placed["clientOrderId"] == "split-body" and placed["status"] == "NEW"
    call(g, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "split-body"})


# ---- every parameter: non-ASCII, huge, malformed ----------------------------------------------------------
def _targets(g):
    oid = str(g.order1["orderId"])
    return [
        ("POST", "/fapi/v1/order", dict(ORDER, newClientOrderId="fuzz-1", reduceOnly="false", positionSide="BOTH",
                                        selfTradePreventionMode="NONE", priceMatch="NONE")),
        ("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET", "quantity": "0.001",
                                    "stopPrice": "30000", "workingType": "MARK_PRICE"}),
        ("POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": "SELL", "type": "TRAILING_STOP_MARKET",
                                    "quantity": "0.001", "callbackRate": "1", "activationPrice": "60000"}),
        ("POST", "/fapi/v1/order", dict(ORDER, timeInForce="GTD", goodTillDate=str(now_ms() + 86_400_000))),
        ("PUT", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": oid, "side": "BUY", "quantity": "0.010",
                                   "price": "45000"}),
        ("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "attack-target"}),
        ("POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "20"}),
        ("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "CROSSED"}),
        ("POST", "/fapi/v1/positionMargin", {"symbol": "BTCUSDT", "type": "1", "amount": "10", "positionSide": "BOTH"}),
        ("POST", "/fapi/v1/positionSide/dual", {"dualSidePosition": "false"}),
        ("POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps([ORDER])}),
        ("DELETE", "/fapi/v1/batchOrders", {"symbol": "BTCUSDT", "orderIdList": json.dumps([int(oid)])}),
        ("POST", "/fapi/v1/algoOrder", {"algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL",
                                        "type": "STOP_MARKET", "quantity": "0.001", "triggerPrice": "30000",
                                        "clientAlgoId": "algo-1"}),
        ("DELETE", "/fapi/v1/algoOrder", {"symbol": "BTCUSDT", "algoId": "999999"}),
        ("DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"}),
        ("GET", "/fapi/v1/allOrders", {"symbol": "BTCUSDT", "limit": "10", "startTime": "0", "orderId": "1"}),
        ("GET", "/fapi/v1/income", {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "limit": "10"}),
        ("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "5"}),
        ("GET", "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": "5"}),
    ]


BAD_VALUES = ["€", "ünïcödé", "٤٠٠٠٠", "４００００", "1\u00a0000", "9" * 400, "1" + "0" * 40, "-" + "9" * 40,
              "1e400", "-1e-400", "NaN", "-Infinity", "0x1F", " 1", "1 ", "1_000", "\x00", "%00", "'; DROP TABLE--",
              "[]", "{}", "true", "-0", "0.00000000000000000000001"]


def test_non_ascii_and_huge_values_in_every_parameter(g):
    """Each parameter of each endpoint replaced by each bad value: never a 500 or an internal error; a refusal
    is a {code, msg} and leaves the state untouched. (Some values are legitimately accepted, e.g. an amend to
    the same price; those may change state and are not checked for it.)"""
    refused = accepted = 0
    for method, path, base in _targets(g):
        for name in list(base) + ["extra€"]:
            for bad in BAD_VALUES:
                before = state_hash(g)
                params = dict(base, **{name: bad})
                r = call(g, method, path, params, in_body=(method != "GET" and len(bad) % 2 == 0))
                assert r.status_code < 500, (method, path, name, bad, r.status_code, r.text[:300])
                if r.status_code == 200:
                    accepted += 1
                    body = r.json()
                    if isinstance(body, list):  # batch answers: each item an order or a {code,msg}
                        for item in body:
                            if "code" in item and item["code"] != 200:
                                assert item["code"] < 0 and not item["msg"].startswith("An unknown error")
                    continue
                refused += 1
                body = assert_error(r)
                assert state_hash(g) == before, (method, path, name, bad, body)
    assert refused > 500, refused


def test_non_ascii_digits_and_exponents_are_refused(g):
    """Numbers must have Binance's syntax: Python's int/Decimal would accept non-ASCII digits
    (Arabic-Indic "٤٠٠٠٠", fullwidth "４００００") and exponents ("4E+4", "1e-3"); Binance accepts only
    ^([0-9]{1,20})(\\.[0-9]{1,20})?$ (-1100 "Illegal characters found in parameter"). A bot that sends
    str(0.00001) == "1e-05" gets an order here and a reject on Binance."""
    for name, value in [("price", "٤٠٠٠٠"), ("price", "４００００"), ("price", "4E+4"), ("quantity", "1e-3")]:
        refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, **{name: value})))
    refused_unchanged(g, call(g, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": "٢٠"}))


def test_percent_encoded_queries_are_verified_as_sent(g):
    """Signatures are over the query string as sent (percent-encoded); a signed request with encoded
    characters reaches the parameter checks (-1102) rather than failing the signature (-1022)."""
    refused_unchanged(g, call(g, "POST", "/fapi/v1/order", dict(ORDER, newClientOrderId="€/ü")), -1102)
    oid = g.order1["orderId"]
    r = call(g, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "attack-target"})
    assert r.status_code == 200 and r.json()["orderId"] == oid, r.text
    r = call(g, "DELETE", "/fapi/v1/batchOrders", {"symbol": "BTCUSDT", "orderIdList": "[999999]"})
    assert r.status_code == 200 and r.json()[0]["code"] == -2011, r.text


def test_ccxt_cancel_orders_lowercase_list_names(g):
    """ccxt's cancel_orders sends DELETE /fapi/v1/batchOrders with ``orderidlist`` (and ``origclientorderidlist``)
    in lower case, which Binance accepts; so does the gateway."""
    a = call(g, "POST", "/fapi/v1/order", dict(ORDER, price="39000")).json()["orderId"]
    b = call(g, "POST", "/fapi/v1/order", dict(ORDER, price="39001")).json()["orderId"]
    r = call(g, "DELETE", "/fapi/v1/batchOrders", raw=f"symbol=BTCUSDT&timestamp={now_ms()}&orderidlist=%5B{a}%2C{b}%5D")
    assert r.status_code == 200, r.text
    assert [x.get("status") for x in r.json()] == ["CANCELED", "CANCELED"], r.text


# ---- hypothesis: fuzzed parameters on the state-changing endpoints ---------------------------------------
_numbers = st.one_of(
    st.decimals(min_value=-10 ** 9, max_value=10 ** 9, places=4).map(lambda d: format(d, "f")),
    st.decimals(min_value=0, max_value=1, places=12).map(lambda d: format(d, "f")),
    st.integers(-10 ** 30, 10 ** 30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "0.001", "0.1", "1", "20", "50000", "45000.1", "0.0001", "125", "126", "-1"]),
)
_text = st.one_of(st.text(max_size=40), st.text(alphabet=st.characters(codec="ascii"), max_size=12), st.just(""))
_value = st.one_of(_numbers, _text, st.sampled_from(
    ["BTCUSDT", "ETHUSDT", "BUY", "SELL", "LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
     "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET", "GTC", "IOC", "FOK", "GTX", "GTD", "true", "false", "BOTH",
     "LONG", "SHORT", "ISOLATED", "CROSSED", "MARK_PRICE", "CONTRACT_PRICE", "1", "2", "CONDITIONAL"]))

ENDPOINT_PARAMS = {
    ("POST", "/fapi/v1/order"): ["symbol", "side", "type", "timeInForce", "quantity", "price", "stopPrice",
                                 "reduceOnly", "closePosition", "positionSide", "workingType", "callbackRate",
                                 "activationPrice", "goodTillDate", "newClientOrderId", "selfTradePreventionMode",
                                 "priceMatch", "priceProtect", "newOrderRespType"],
    ("POST", "/fapi/v1/leverage"): ["symbol", "leverage"],
    ("POST", "/fapi/v1/marginType"): ["symbol", "marginType"],
    ("POST", "/fapi/v1/positionMargin"): ["symbol", "type", "amount", "positionSide"],
    ("POST", "/fapi/v1/algoOrder"): ["algoType", "symbol", "side", "type", "quantity", "price", "triggerPrice",
                                     "timeInForce", "workingType", "callbackRate", "activatePrice", "reduceOnly",
                                     "closePosition", "positionSide", "clientAlgoId", "priceProtect"],
}


def _params_for(names):
    return st.dictionaries(st.sampled_from(names + ["junk", "signature2", "€"]), _value, max_size=len(names) + 2)


def _batch_items():
    return st.lists(_params_for(ENDPOINT_PARAMS[("POST", "/fapi/v1/order")]), min_size=0, max_size=6)


def _check_fuzz(g, r, where):
    assert r.status_code < 500, (where, r.status_code, r.text[:300])
    if r.status_code == 200:
        return
    assert_error(r)
    after = state_hash(g)
    assert after == g.hash_before, ("state changed on a reject", where, r.text[:300])


FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.parametrize("endpoint", list(ENDPOINT_PARAMS), ids=lambda e: e[1].rsplit("/", 1)[1])
def test_fuzz_state_changing_endpoints(gw, endpoint):
    method, path = endpoint

    @FUZZ
    @given(params=_params_for(ENDPOINT_PARAMS[endpoint]), in_body=st.booleans())
    def fuzz(params, in_body):
        gw.hash_before = state_hash(gw)
        _check_fuzz(gw, call(gw, method, path, params, in_body=in_body), (method, path, params))

    fuzz()


def test_fuzz_batch_orders(gw):
    @FUZZ
    @given(items=_batch_items(), in_body=st.booleans(), raw_items=st.booleans())
    def fuzz(items, in_body, raw_items):
        gw.hash_before = state_hash(gw)
        value = json.dumps(items, ensure_ascii=raw_items)
        r = call(gw, "POST", "/fapi/v1/batchOrders", {"batchOrders": value}, in_body=in_body)
        assert r.status_code < 500, r.text[:300]
        if r.status_code == 200:
            body = r.json()
            assert isinstance(body, list) and len(body) == len(items)
            if all("code" in x for x in body):  # every item refused: nothing changed
                assert all(x["code"] < 0 and not x["msg"].startswith("An unknown error") for x in body), body
                assert state_hash(gw) == gw.hash_before, ("state changed on a reject", items, body)
            return
        assert_error(r)
        assert state_hash(gw) == gw.hash_before, ("state changed on a reject", items, r.text[:300])

    fuzz()
