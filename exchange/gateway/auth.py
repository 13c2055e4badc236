"""Request signing exactly as Binance: HMAC-SHA256 over the raw query string + raw body, ``signature`` last.

``-2014`` no key, ``-2015`` unknown key (HTTP 401), ``-1022`` bad signature or a replayed state-changing
request, ``-1021`` ``timestamp`` outside ``recvWindow`` (against the wall clock, as clients stamp it).
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from urllib.parse import unquote_plus

from . import errors
from .errors import ApiError

MAX_RECV_WINDOW = 60_000
REPLAY_WINDOW_MS = 60_000


class Authenticator:
    def __init__(self, accounts):
        self.by_key = {a.api_key: a for a in accounts}
        # account id -> an HMAC keyed with its secret, copied for each request (the key schedule is done once)
        self._macs = {a.account_id: hmac.new(a.secret.encode(), digestmod=hashlib.sha256) for a in accounts}
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature -> wall ms (state-changing requests)

    def account_of_key(self, headers) -> object:
        key = headers.get("X-MBX-APIKEY")
        if not key:
            raise ApiError(errors.KEY_FORMAT, status=401)
        account = self.by_key.get(key)
        if account is None:
            raise ApiError(errors.BAD_KEY, status=401)
        return account

    def verify(self, headers, method: str, raw_query: str, raw_body: str, params: dict) -> object:
        """The account of a signed request, or raise ApiError. ``params``: the request's parameters as parsed
        from the same query and body (the query's value wins)."""
        account = self.account_of_key(headers)
        payload, signature = _split_signature(raw_query, raw_body)
        if signature is None:
            raise errors.mandatory("signature")
        signature = signature.lower()
        if not hmac.compare_digest(self._sign(account, payload), signature):
            # python-binance signs unencoded values: accept the decoded payload too
            if not hmac.compare_digest(self._sign(account, unquote_plus(payload)), signature):
                raise ApiError(errors.SIGNATURE)
        now = int(time.time() * 1000)
        ts = params.get("timestamp")
        if ts is None or not ts.isdigit():
            raise errors.mandatory("timestamp")
        window = params.get("recvWindow", "5000")
        if not window.isdigit() or not 0 < int(window) <= MAX_RECV_WINDOW:
            raise errors.malformed("recvWindow", f"must be 1..{MAX_RECV_WINDOW}")
        ts = int(ts)
        if ts >= now + 1000 or now - ts > int(window):
            raise ApiError(errors.TIMESTAMP)
        if method != "GET":
            self._check_replay(signature, now)
        return account

    def _sign(self, account, payload: str) -> str:
        mac = self._macs[account.account_id].copy()
        mac.update(payload.encode())
        return mac.hexdigest()

    def _check_replay(self, signature: str, now: int) -> None:
        seen = self._seen
        while seen:
            oldest, at = next(iter(seen.items()))
            if now - at <= REPLAY_WINDOW_MS:
                break
            seen.popitem(last=False)
        if signature in seen:
            raise ApiError(errors.SIGNATURE, "Signature for this request is not valid: the request was replayed.")
        seen[signature] = now


def _split_signature(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """(payload without the signature pair, signature)."""
    source, other = (raw_body, raw_query) if raw_body else (raw_query, "")
    at = source.rfind("signature=")
    if at > 0 and source[at - 1] == "&" and "&" not in source[at:] and "signature=" not in other \
            and source.count("signature=") == 1:  # the usual request: one signature, the last pair
        return other + source[:at - 1], source[at + 10:]
    return _split_signature_pairs(raw_query, raw_body)


def _split_signature_pairs(raw_query: str, raw_body: str) -> tuple[str, str | None]:
    """The general rule: every pair named ``signature`` removed, the last one's value taken, query then body."""
    signature = None
    parts = []
    for source in (raw_query, raw_body):
        if not source:
            continue
        kept = []
        for pair in source.split("&"):
            if pair.startswith("signature="):
                signature = pair[len("signature="):]
            else:
                kept.append(pair)
        parts.append("&".join(kept))
    return "".join(parts), signature


def sign(secret: str, payload: str) -> str:
    """The signature of ``payload`` (for clients and tests)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
