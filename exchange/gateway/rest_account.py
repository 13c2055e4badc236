"""Account, positions, risk settings, income, liquidations: /fapi/v2|v3/account, positionRisk, balance,
/fapi/v1/leverage, marginType, positionMargin, positionSide/dual, leverageBracket, symbolConfig, income,
forceOrders, adlQuantile, commissionRate. Every number is an engine query."""
from __future__ import annotations

from ..commands import AdjustIsolatedMargin, SetLeverage, SetMarginMode, SetPositionMode
from ..enums import MarginMode, PositionMode, PositionSide
from ..events import Rejected
from . import errors, views, wire
from .errors import ApiError
from .params import Params, in_window
from .rest_orders import POSITION_SIDES


async def _apply_one(gw, cmd):
    (events,) = await gw.sequencer.submit([cmd])
    for e in events:
        if type(e) is Rejected:
            raise errors.from_reject(e)
    return events


async def account_v2(gw, p: Params):
    return views.account_json(gw.exchange, gw.records, p.account.account_id, v2=True)


async def account_v3(gw, p: Params):
    return views.account_json(gw.exchange, gw.records, p.account.account_id, v2=False)


async def balance(gw, p: Params):
    return views.balance_json(gw.exchange, gw.records, p.account.account_id)


async def position_risk_v3(gw, p: Params):
    symbol = p.symbol(required=False)
    acc = p.account.account_id
    return [views.position_v3(gw.exchange, gw.records, acc, s, side, v)
            for s, side, v in views.position_rows(gw.exchange, acc, [symbol] if symbol else None)]


async def position_risk_v2(gw, p: Params):
    symbol = p.symbol(required=False)
    acc = p.account.account_id
    return [views.position_v2(gw.exchange, gw.records, acc, s, side, v)
            for s, side, v in views.position_rows(gw.exchange, acc, [symbol] if symbol else None, include_flat=True)]


async def leverage(gw, p: Params):
    symbol = p.symbol()
    lev = p.int("leverage")
    if lev is None:
        raise errors.mandatory("leverage")
    if not 1 <= lev <= 1000:
        raise ApiError(-4028, f"Leverage {lev} is not valid")
    await _apply_one(gw, SetLeverage(p.account.account_id, symbol, lev))
    acc = p.account.account_id
    return {"leverage": gw.exchange.leverage(acc, symbol),
            "maxNotionalValue": wire.money(views.max_notional(gw.exchange, acc, symbol)), "symbol": symbol}


async def margin_type(gw, p: Params):
    symbol = p.symbol()
    mode = p.choice("marginType", {"ISOLATED": MarginMode.ISOLATED, "CROSSED": MarginMode.CROSS,
                                   "CROSS": MarginMode.CROSS}, errors.BAD_PARAM)
    await _apply_one(gw, SetMarginMode(p.account.account_id, symbol, mode))
    return {"code": 200, "msg": "success"}


async def position_margin(gw, p: Params):
    symbol = p.symbol()
    kind = p.choice("type", {"1": 1, "2": 2}, errors.BAD_PARAM)
    amount = p.money("amount")
    if amount <= 0:
        raise errors.malformed("amount", "must be > 0")
    side = p.choice("positionSide", POSITION_SIDES, errors.BAD_PARAM, PositionSide.BOTH)
    await _apply_one(gw, AdjustIsolatedMargin(p.account.account_id, symbol, amount if kind == 1 else -amount, side))
    return {"amount": float(p.get("amount")), "code": 200, "msg": "Successfully modify position margin.", "type": kind}


async def get_dual(gw, p: Params):
    return {"dualSidePosition": gw.exchange.position_mode(p.account.account_id) == PositionMode.HEDGE}


async def set_dual(gw, p: Params):
    hedge = p.bool("dualSidePosition")
    if "dualSidePosition" not in p:
        raise errors.mandatory("dualSidePosition")
    await _apply_one(gw, SetPositionMode(p.account.account_id, PositionMode.HEDGE if hedge else PositionMode.ONE_WAY))
    return {"code": 200, "msg": "success"}


async def leverage_bracket(gw, p: Params):
    symbol = p.symbol(required=False)
    rows = [views.brackets_json(inst) for s, inst in gw.exchange.instruments.items() if symbol is None or s == symbol]
    return rows[0] if symbol and False else rows


async def symbol_config(gw, p: Params):
    symbol = p.symbol(required=False)
    acc = p.account.account_id
    ex = gw.exchange
    return [{"symbol": s, "marginType": "ISOLATED" if ex.margin_mode(acc, s) == MarginMode.ISOLATED else "CROSSED",
             "isAutoAddMargin": False, "leverage": ex.leverage(acc, s),
             "maxNotionalValue": wire.money(views.max_notional(ex, acc, s))}
            for s in ex.instruments if symbol is None or s == symbol]


async def account_config(gw, p: Params):
    return {"feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": True, "dualSidePosition":
            gw.exchange.position_mode(p.account.account_id) == PositionMode.HEDGE, "updateTime": 0,
            "multiAssetsMargin": False, "tradeGroupId": -1}


async def commission_rate(gw, p: Params):
    inst = gw.exchange.instruments[p.symbol()]
    return {"symbol": inst.symbol, "makerCommissionRate": wire.rate(inst.maker_fee_e8),
            "takerCommissionRate": wire.rate(inst.taker_fee_e8)}


async def multi_assets(gw, p: Params):
    return {"multiAssetsMargin": False}


INCOME_TYPES = {"TRANSFER", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR"}


async def income(gw, p: Params):
    symbol = p.symbol(required=False)
    kind = p.get("incomeType")
    start, end, limit = p.window(100, 1000)
    rows = [r for r in gw.records.income.get(p.account.account_id, ()) if (kind is None or r.kind == kind)
            and (symbol is None or r.symbol == symbol) and in_window(r.time_ms, start, end)]
    rows = rows[:limit] if start is not None else rows[-limit:]
    return [{"symbol": r.symbol, "incomeType": r.kind, "income": wire.money(r.units), "asset": "USDT",
             "info": r.info, "time": r.time_ms, "tranId": r.tran_id, "tradeId": str(r.trade_id) if r.trade_id else ""}
            for r in rows]


async def force_orders(gw, p: Params):
    symbol = p.symbol(required=False)
    kind = p.get("autoCloseType")
    if kind not in (None, "LIQUIDATION", "ADL"):
        raise errors.malformed("autoCloseType")
    start, end, limit = p.window(50, 100)
    recs = gw.records
    rows = [recs.orders[i] for i in recs.force_orders.get(p.account.account_id, ())]
    rows = [o for o in rows if (symbol is None or o.symbol == symbol) and (kind is None or o.kind == kind)
            and in_window(o.update_ms, start, end)]
    out = []
    for o in rows[-limit:]:
        body = views.order_json(o, gw.exchange.instruments[o.symbol])
        body.update({"type": "LIMIT", "origType": "LIMIT", "timeInForce": "IOC"})
        out.append(body)
    return out


async def adl_quantile(gw, p: Params):
    symbol = p.symbol(required=False)
    ex = gw.exchange
    acc = p.account.account_id
    out = []
    for s in ex.instruments:
        if symbol is not None and s != symbol:
            continue
        q = {"LONG": 0, "SHORT": 0, "BOTH": 0, "HEDGE": 0}
        for sym, side, view in views.position_rows(ex, acc, [s]):
            q[wire.POSITION_SIDE[side]] = ex.adl_quantile(acc, s, side)
        out.append({"symbol": s, "adlQuantile": q})
    return out
