"""Binance-shaped errors: ``{"code": <negative int>, "msg": "..."}``; never a 500."""
from __future__ import annotations

from ..enums import RejectCode, REJECT_MESSAGES

# codes the gateway emits itself (the engine's are RejectCode)
UNKNOWN = -1000
UNSUPPORTED = -1000
TIMESTAMP = -1021
SIGNATURE = -1022
MANDATORY = -1102
BAD_PARAM = -1102
ILLEGAL_CHARS = -1100
INVALID_TIF = -1115
INVALID_TYPE = -1116
INVALID_SIDE = -1117
INVALID_SYMBOL = -1121
LISTEN_KEY = -1125
UNKNOWN_ORDER = -2011
NO_SUCH_ORDER = -2013
KEY_FORMAT = -2014
BAD_KEY = -2015
DUPLICATE_CID = -4116
ALGO_ONLY = -4120

MESSAGES = {
    TIMESTAMP: "Timestamp for this request is outside of the recvWindow.",
    SIGNATURE: "Signature for this request is not valid.",
    INVALID_SYMBOL: "Invalid symbol.",
    LISTEN_KEY: "This listenKey does not exist.",
    UNKNOWN_ORDER: "Unknown order sent.",
    NO_SUCH_ORDER: "Order does not exist.",
    KEY_FORMAT: "API-key format invalid.",
    BAD_KEY: "Invalid API-key, IP, or permissions for action.",
    DUPLICATE_CID: "ClientOrderId is duplicated.",
    INVALID_TYPE: "Invalid orderType.",
    INVALID_SIDE: "Invalid side.",
    INVALID_TIF: "Invalid timeInForce.",
}


class ApiError(Exception):
    """An error answer: Binance ``code`` and ``msg``, HTTP ``status`` (400 unless said)."""

    def __init__(self, code: int, msg: str | None = None, status: int = 400):
        if msg is None:
            msg = MESSAGES.get(code)
            if msg is None:
                try:
                    msg = REJECT_MESSAGES[RejectCode(code)]
                except ValueError:
                    msg = "An unknown error occured while processing the request."
        super().__init__(msg)
        self.code = int(code)
        self.msg = msg
        self.status = status

    def body(self) -> dict:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(MANDATORY, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def malformed(name: str, detail: str = "") -> ApiError:
    return ApiError(BAD_PARAM, f"Parameter '{name}' was malformed{': ' + detail if detail else ''}.")


def from_reject(event) -> ApiError:
    """An engine ``Rejected`` event -> the same Binance code. The canonical message is used (ccxt matches some
    messages exactly, e.g. "No need to change margin type."); the engine's detail is appended only when the
    canonical message is not one ccxt matches on."""
    code = int(event.code)
    try:
        canonical = REJECT_MESSAGES[RejectCode(code)]
    except ValueError:
        canonical = event.message
    return ApiError(code, canonical)


def unsupported(method: str, path: str) -> ApiError:
    return ApiError(UNSUPPORTED, f"{method} {path} is not supported by the simulator.", status=400)
