"""Conditional orders through Binance's Algo Order API: /fapi/v1/algoOrder, openAlgoOrders, allAlgoOrders,
algoOpenOrders. ``algoId`` is the engine's order id; once triggered, ``actualOrderId`` is the same id and the
order is also visible through the classic /fapi/v1/order endpoints."""
from __future__ import annotations

from ..commands import CancelOrder
from ..events import Rejected
from . import errors, views
from .errors import ApiError
from .params import Params, in_window
from .rest_orders import accepted_order, build_place, cancel_all, find_order


def _json(gw, order):
    return views.algo_json(order, gw.exchange.instruments[order.symbol])


async def new_algo(gw, p: Params):
    if p.get("algoType", "CONDITIONAL") != "CONDITIONAL":
        raise errors.malformed("algoType", "only CONDITIONAL is supported")
    cmd, meta = build_place(p, algo=True)
    (events,) = await gw.sequencer.submit([cmd], [meta])
    return _json(gw, accepted_order(gw, events, cmd.account_id))


async def get_algo(gw, p: Params):
    return _json(gw, find_order(p, algo=True))


async def cancel_algo(gw, p: Params):
    order = find_order(p, algo=True)
    if order.algo_status != "NEW":
        raise ApiError(errors.UNKNOWN_ORDER)
    (events,) = await gw.sequencer.submit([CancelOrder(p.account.account_id, order.symbol, order.order_id)])
    for e in events:
        if type(e) is Rejected:
            raise errors.from_reject(e)
    return {"algoId": order.order_id, "clientAlgoId": order.client_id, "code": "200", "msg": "success",
            "algoStatus": order.algo_status}


def _algos(gw, p: Params):
    symbol = p.symbol(required=False)
    rows = [gw.records.orders[i] for i in gw.records.history.get(p.account.account_id, ())]
    return [o for o in rows if o.algo and (symbol is None or o.symbol == symbol)]


async def open_algos(gw, p: Params):
    return [_json(gw, o) for o in _algos(gw, p) if o.algo_status == "NEW"]


async def all_algos(gw, p: Params):
    start, end, limit = p.window(500, 1000)
    rows = [o for o in _algos(gw, p) if in_window(o.create_ms, start, end)]
    return [_json(gw, o) for o in (rows[:limit] if start is not None else rows[-limit:])]


async def cancel_all_algos(gw, p: Params):
    return await cancel_all(gw, p, algo=True)
