"""Orders: POST/GET/DELETE/PUT /fapi/v1/order, openOrders, openOrder, allOrders, userTrades, allOpenOrders,
batchOrders. Conditional types are accepted here too (older clients); the Algo API is :mod:`.rest_algo`."""
from __future__ import annotations

from ..commands import AmendOrder, CancelOrder, PlaceOrder
from ..enums import OrderType, PositionSide, Side, STPMode, TimeInForce, WorkingType
from ..events import OrderAccepted, Rejected
from . import errors, views, wire
from .errors import ApiError
from .params import Params, in_window

SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
TYPES = {t.name: t for t in OrderType}
TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "GTX": TimeInForce.GTX,
        "GTD": TimeInForce.GTD}
WORKING = {"MARK_PRICE": WorkingType.MARK_PRICE, "CONTRACT_PRICE": WorkingType.CONTRACT_PRICE}
POSITION_SIDES = {"BOTH": PositionSide.BOTH, "LONG": PositionSide.LONG, "SHORT": PositionSide.SHORT}
STP = {"NONE": STPMode.NONE, "EXPIRE_TAKER": STPMode.EXPIRE_TAKER, "EXPIRE_MAKER": STPMode.EXPIRE_MAKER,
       "EXPIRE_BOTH": STPMode.EXPIRE_BOTH}


def build_place(p: Params, algo: bool) -> tuple[PlaceOrder, dict]:
    """A PlaceOrder and its gateway metadata from Binance parameters (classic or algo names)."""
    gw = p.gw
    symbol = p.symbol()
    inst = p.inst(symbol)
    side = p.choice("side", SIDES, errors.INVALID_SIDE)
    otype = p.choice("type", TYPES, errors.INVALID_TYPE)
    if algo and not otype.is_conditional:
        raise ApiError(errors.INVALID_TYPE, "Invalid orderType: the Algo Order API takes STOP, STOP_MARKET, "
                                            "TAKE_PROFIT, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET.")
    limit_like = otype in (OrderType.LIMIT, OrderType.STOP, OrderType.TAKE_PROFIT)
    close_position = p.bool("closePosition")
    qty = 0 if close_position and "quantity" not in p else p.lots(inst, "quantity")
    price = p.ticks(inst, "price", required=limit_like)
    if not limit_like and price:
        raise errors.malformed("price", f"not allowed with type {otype.name}")
    tif = p.choice("timeInForce", TIFS, errors.INVALID_TIF, TimeInForce.GTC)
    stop = 0
    if otype in (OrderType.STOP, OrderType.STOP_MARKET, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_MARKET):
        stop = p.ticks(inst, "triggerPrice" if "triggerPrice" in p else "stopPrice", required=True)
    callback = activation = 0
    if otype == OrderType.TRAILING_STOP_MARKET:
        rate = p.req("callbackRate")
        try:
            from decimal import Decimal, InvalidOperation
            d = Decimal(str(rate))
            if not d.is_finite() or d * 10 ** 6 != int(d * 10 ** 6):
                raise InvalidOperation
            callback = int(d * 10 ** 6)  # percent -> e8 fraction
        except (InvalidOperation, ValueError):
            raise errors.malformed("callbackRate") from None
        activation = p.ticks(inst, "activatePrice" if "activatePrice" in p else "activationPrice")
    working = p.choice("workingType", WORKING, errors.BAD_PARAM, WorkingType.CONTRACT_PRICE)
    pside = p.choice("positionSide", POSITION_SIDES, errors.BAD_PARAM, PositionSide.BOTH)
    stp = p.choice("selfTradePreventionMode", STP, errors.BAD_PARAM, STPMode.NONE)
    gtd_ms = p.int("goodTillDate", low=0)
    expire_ns = 0
    if tif == TimeInForce.GTD:
        if gtd_ms is None:
            raise errors.mandatory("goodTillDate")
        expire_ns = max(1, (gtd_ms - gw.config.epoch_ms) * 1_000_000)
    if p.get("priceMatch", "NONE") != "NONE":
        raise errors.malformed("priceMatch", "only NONE is supported by the simulator")
    cid = p.client_id("clientAlgoId" if algo else "newClientOrderId")
    account_id = p.account.account_id
    if cid and (account_id, cid) in gw.records.open_cids:
        raise ApiError(errors.DUPLICATE_CID)
    cmd = PlaceOrder(account_id, symbol, side, qty, price, otype, tif, stp, p.bool("reduceOnly"), close_position, stop,
                     working, callback, activation, expire_ns, pside)
    return cmd, {"cid": cid, "algo": algo, "gtd": gtd_ms or 0}


def accepted_order(gw, events, account_id):
    for e in events:
        if type(e) is Rejected:
            raise errors.from_reject(e)
    for e in events:
        if type(e) is OrderAccepted and e.account_id == account_id:
            return gw.records.orders[e.order_id]
    raise ApiError(errors.UNKNOWN, "The order was not accepted.")


def find_order(p: Params, algo=False, required=True):
    symbol = p.symbol()
    gw = p.gw
    id_name, cid_name = ("algoId", "clientAlgoId") if algo else ("orderId", "origClientOrderId")
    oid = p.int(id_name, low=1)
    if oid is not None:
        order = gw.records.find(p.account.account_id, order_id=oid)
    elif cid_name in p:
        order = gw.records.find(p.account.account_id, client_id=p.get(cid_name))
    else:
        raise errors.mandatory(f"{id_name}' or '{cid_name}")
    if order is None or order.symbol != symbol or (algo and not order.algo):
        raise ApiError(errors.NO_SUCH_ORDER)
    return order


def _json(gw, order):
    return views.order_json(order, gw.exchange.instruments[order.symbol])


async def new_order(gw, p: Params):
    cmd, meta = build_place(p, algo=False)
    (events,) = await gw.sequencer.submit([cmd], [meta])
    return _json(gw, accepted_order(gw, events, cmd.account_id))


async def get_order(gw, p: Params):
    return _json(gw, find_order(p))


async def cancel_order(gw, p: Params):
    order = find_order(p)
    if not order.open:
        raise ApiError(errors.UNKNOWN_ORDER)
    (events,) = await gw.sequencer.submit([CancelOrder(p.account.account_id, order.symbol, order.order_id)])
    for e in events:
        if type(e) is Rejected:
            raise errors.from_reject(e)
    return _json(gw, order)


async def amend_order(gw, p: Params):
    order = find_order(p)
    inst = gw.exchange.instruments[order.symbol]
    side = p.choice("side", SIDES, errors.INVALID_SIDE)
    if side != order.side:
        raise errors.malformed("side", "does not match the order")
    qty = p.lots(inst, "quantity")
    price = p.ticks(inst, "price", required=True)
    if not order.open:
        raise ApiError(errors.UNKNOWN_ORDER)
    (events,) = await gw.sequencer.submit([AmendOrder(p.account.account_id, order.symbol, order.order_id, price,
                                                      qty - order.executed_lots)])
    for e in events:
        if type(e) is Rejected:
            raise errors.from_reject(e)
    return _json(gw, order)


def _classic(order) -> bool:
    return not order.algo or order.triggered


async def open_orders(gw, p: Params):
    symbol = p.symbol(required=False)
    acc = p.account.account_id
    rows = [gw.records.orders[i] for i in gw.records.history.get(acc, ())]
    return [_json(gw, o) for o in rows if o.open and _classic(o) and (symbol is None or o.symbol == symbol)]


async def open_order(gw, p: Params):
    order = find_order(p)
    if not order.open:
        raise ApiError(errors.NO_SUCH_ORDER, "Order does not exist.")
    return _json(gw, order)


async def all_orders(gw, p: Params):
    symbol = p.symbol(required=False)
    start, end, limit = p.window(500, 1000)
    from_id = p.int("orderId", low=0)
    acc = p.account.account_id
    rows = [gw.records.orders[i] for i in gw.records.history.get(acc, ())]
    rows = [o for o in rows if _classic(o) and (symbol is None or o.symbol == symbol) and in_window(o.create_ms, start, end)
            and (from_id is None or o.order_id >= from_id)]
    rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
    return [_json(gw, o) for o in rows]


async def user_trades(gw, p: Params):
    symbol = p.symbol()
    start, end, limit = p.window(500, 1000)
    from_id = p.int("fromId", low=0)
    order_id = p.int("orderId", low=0)
    inst = gw.exchange.instruments[symbol]
    rows = [t for t in gw.records.trades.get(p.account.account_id, ()) if t.symbol == symbol
            and in_window(t.time_ms, start, end) and (from_id is None or t.trade_id >= from_id)
            and (order_id is None or t.order_id == order_id)]
    rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
    return [trade_json(inst, t) for t in rows]


def trade_json(inst, t) -> dict:
    return {"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id, "side": wire.SIDE[t.side],
            "price": wire.price(inst, t.price_ticks), "qty": wire.qty(inst, t.qty_lots),
            "realizedPnl": wire.money(t.realized_units), "marginAsset": inst.settle,
            "quoteQty": wire.money(t.price_ticks * t.qty_lots * inst.k_units), "commission": wire.money(t.fee_units),
            "commissionAsset": inst.settle, "time": t.time_ms, "positionSide": wire.POSITION_SIDE[PositionSide(t.position_side)],
            "buyer": t.side == Side.BUY, "maker": t.maker}


async def cancel_all(gw, p: Params, algo=False):
    symbol = p.symbol()
    acc = p.account.account_id
    targets = [gw.records.orders[i] for i in gw.records.history.get(acc, ())]
    targets = [o for o in targets if o.open and o.symbol == symbol and (o.algo and not o.triggered) == algo]
    if targets:
        await gw.sequencer.submit([CancelOrder(acc, symbol, o.order_id) for o in targets])
    if algo:
        return {"code": 200, "msg": "success"}
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


async def batch_new(gw, p: Params):
    items = p.json_list("batchOrders", 5)
    results: list = [None] * len(items)
    cmds, metas, where = [], [], []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            results[i] = errors.malformed("batchOrders").body()
            continue
        sub = Params(gw, {k: (v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v))
                          for k, v in item.items()}, p.account)
        try:
            cmd, meta = build_place(sub, algo=False)
        except ApiError as exc:
            results[i] = exc.body()
            continue
        cmds.append(cmd)
        metas.append(meta)
        where.append(i)
    if cmds:
        all_events = await gw.sequencer.submit(cmds, metas)
        for i, events in zip(where, all_events):
            try:
                results[i] = _json(gw, accepted_order(gw, events, p.account.account_id))
            except ApiError as exc:
                results[i] = exc.body()
    return results


async def batch_cancel(gw, p: Params):
    symbol = p.symbol()
    acc = p.account.account_id
    # Binance also takes the list names in lower case (ccxt's cancel_orders sends them so)
    ids = next((n for n in ("orderIdList", "orderidlist") if n in p), None)
    if ids is not None:
        refs = [("id", x) for x in p.json_list(ids, 10)]
    else:
        cids = "origclientorderidlist" if "origclientorderidlist" in p else "origClientOrderIdList"
        refs = [("cid", x) for x in p.json_list(cids, 10)]
    results: list = []
    cmds, where = [], []
    for kind, ref in refs:
        order = gw.records.find(acc, order_id=ref) if kind == "id" and isinstance(ref, int) else \
            gw.records.find(acc, client_id=ref) if kind == "cid" and isinstance(ref, str) else None
        if order is None or order.symbol != symbol or not order.open:
            results.append(ApiError(errors.UNKNOWN_ORDER).body())
            continue
        results.append(order)
        cmds.append(CancelOrder(acc, symbol, order.order_id))
        where.append(len(results) - 1)
    if cmds:
        all_events = await gw.sequencer.submit(cmds)
        for i, events in zip(where, all_events):
            rej = next((e for e in events if type(e) is Rejected), None)
            results[i] = errors.from_reject(rej).body() if rej else _json(gw, results[i])
    return results
