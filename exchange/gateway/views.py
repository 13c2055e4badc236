"""Binance JSON objects (REST answers and user-stream events) from records and engine queries."""
from __future__ import annotations

from fractions import Fraction

from ..enums import BalanceReason, MarginMode, OrderType, PositionMode, PositionSide
from . import wire
from .records import Order

ACCOUNT_REASON = {
    BalanceReason.DEPOSIT: "DEPOSIT", BalanceReason.WITHDRAW: "WITHDRAW", BalanceReason.TRADE: "ORDER",
    BalanceReason.MARGIN_TRANSFER: "MARGIN_TRANSFER", BalanceReason.FUNDING: "FUNDING_FEE",
    BalanceReason.LIQUIDATION: "INSURANCE_CLEAR", BalanceReason.INSURANCE_TOP_UP: "INSURANCE_CLEAR",
    BalanceReason.SOCIALIZED_LOSS: "ADJUSTMENT",
}


def _type_names(order: Order) -> tuple[str, str]:
    """(type, origType) as Binance shows them."""
    if order.kind == "LIQUIDATION":
        return "LIQUIDATION", "LIQUIDATION"
    if order.kind in ("ADL", "SETTLEMENT"):
        return "MARKET", "MARKET"
    name = order.order_type.name
    if order.algo and order.triggered:
        return order.child_type().name, name
    return name, name


def order_json(order: Order, inst) -> dict:
    typ, orig = _type_names(order)
    if order.kind == "LIQUIDATION":
        typ = orig = "LIMIT"
    executed = wire.qty(inst, order.executed_lots)
    return {
        "orderId": order.order_id, "symbol": order.symbol, "status": order.status, "clientOrderId": order.client_id,
        "price": wire.price(inst, order.price_ticks), "avgPrice": wire.price_exact(inst, order.avg_ticks()),
        "origQty": wire.qty(inst, order.qty_lots), "executedQty": executed,
        "cumQty": executed, "cumQuote": wire.money(order.quote_ticks_lots * inst.k_units),
        "timeInForce": wire.TIF.get(order.tif, "GTC"), "type": typ, "reduceOnly": order.reduce_only,
        "closePosition": order.close_position, "side": wire.SIDE[order.side],
        "positionSide": wire.POSITION_SIDE[order.position_side],  # an int finds its IntEnum key
        "stopPrice": wire.price(inst, order.stop_ticks), "workingType": wire.WORKING.get(order.working_type, "CONTRACT_PRICE"),
        "priceProtect": False, "origType": orig, "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
        "goodTillDate": order.good_till, "time": order.create_ms, "updateTime": order.update_ms,
        **({"activatePrice": wire.price(inst, order.activation_ticks),
            "priceRate": f"{Fraction(order.callback_e8, 10 ** 6).__float__():g}"}
           if order.order_type == OrderType.TRAILING_STOP_MARKET else {}),
    }


def algo_json(order: Order, inst) -> dict:
    return {
        "algoId": order.order_id, "clientAlgoId": order.client_id, "algoType": "CONDITIONAL",
        "orderType": order.order_type.name, "symbol": order.symbol, "side": wire.SIDE[order.side],
        "positionSide": wire.POSITION_SIDE[PositionSide(order.position_side)],
        "timeInForce": wire.TIF.get(order.tif, "GTC"), "quantity": wire.qty(inst, order.qty_lots),
        "algoStatus": order.algo_status, "triggerPrice": wire.price(inst, order.stop_ticks),
        "price": wire.price(inst, order.price_ticks), "icebergQuantity": None,
        "selfTradePreventionMode": "NONE", "workingType": wire.WORKING.get(order.working_type, "CONTRACT_PRICE"),
        "priceMatch": "NONE", "closePosition": order.close_position, "priceProtect": False,
        "reduceOnly": order.reduce_only, "activatePrice": wire.price(inst, order.activation_ticks),
        "callbackRate": f"{order.callback_e8 / 10 ** 6:g}" if order.callback_e8 else "",
        "createTime": order.create_ms, "updateTime": order.update_ms, "triggerTime": order.update_ms if order.triggered else 0,
        "goodTillDate": order.good_till,
        "actualOrderId": str(order.order_id) if order.triggered else "",
        "actualPrice": wire.price_exact(inst, order.avg_ticks()) if order.executed_lots else "0",
    }


def order_event(order: Order, inst, exec_type: str, fill, expire_reason: int, now: int) -> dict:
    typ, orig = _type_names(order)
    o = {
        "s": order.symbol, "c": order.client_id, "S": wire.SIDE[order.side], "o": typ,
        "f": wire.TIF.get(order.tif, "GTC"), "q": wire.qty(inst, order.qty_lots), "p": wire.price(inst, order.price_ticks),
        "ap": wire.price_exact(inst, order.avg_ticks()), "sp": wire.price(inst, order.stop_ticks), "x": exec_type,
        "X": order.status, "i": order.order_id, "l": "0", "z": wire.qty(inst, order.executed_lots), "L": "0",
        "N": "USDT", "n": "0", "T": now, "t": 0, "b": "0", "a": "0", "m": False, "R": order.reduce_only,
        "wt": wire.WORKING.get(order.working_type, "CONTRACT_PRICE"), "ot": orig,
        "ps": wire.POSITION_SIDE[PositionSide(order.position_side)], "cp": order.close_position, "rp": "0",
        "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": order.good_till, "er": str(expire_reason),
    }
    if order.order_type == OrderType.TRAILING_STOP_MARKET:
        o["AP"] = wire.price(inst, order.activation_ticks)
        o["cr"] = f"{order.callback_e8 / 10 ** 6:g}"
    if fill is not None:
        price_ticks, lots, fee, maker, tid, _ = fill
        o.update({"l": wire.qty(inst, lots), "L": wire.price(inst, price_ticks), "n": wire.money(abs(fee)),
                  "t": tid, "m": maker})
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o}


def algo_event(order: Order, inst, now: int) -> dict:
    return {"e": "ALGO_UPDATE", "T": now, "E": now, "o": {
        "caid": order.client_id, "aid": order.order_id, "at": "CONDITIONAL", "o": order.order_type.name,
        "s": order.symbol, "S": wire.SIDE[order.side], "ps": wire.POSITION_SIDE[PositionSide(order.position_side)],
        "f": wire.TIF.get(order.tif, "GTC"), "q": wire.qty(inst, order.qty_lots), "X": order.algo_status,
        "ai": str(order.order_id) if order.triggered else "", "ap": wire.price_exact(inst, order.avg_ticks()),
        "aq": wire.qty(inst, order.executed_lots), "act": "0", "tp": wire.price(inst, order.stop_ticks),
        "p": wire.price(inst, order.price_ticks), "V": "NONE", "wt": wire.WORKING.get(order.working_type, "CONTRACT_PRICE"),
        "pm": "NONE", "cp": order.close_position, "pP": False, "R": order.reduce_only, "tt": 0, "gtd": order.good_till,
        "rm": ""}}


# ---- positions and balances ---------------------------------------------------------------------
def _entry_price(inst, view) -> str:
    if not view.lots:
        return wire.price(inst, 0)
    return wire.price_exact(inst, Fraction(view.entry_cost, view.lots))


def position_rows(ex, account_id: int, symbols=None, include_flat: bool = False) -> list:
    """(symbol, position_side, view or None) for the account, engine views; flat rows when asked."""
    rows = []
    mode = ex.position_mode(account_id)
    sides = (PositionSide.LONG, PositionSide.SHORT) if mode == PositionMode.HEDGE else (PositionSide.BOTH,)
    for symbol in (symbols or ex.instruments):
        for side in sides:
            view = ex.position(account_id, symbol, side)
            if view is not None and view.lots == 0:
                view = None
            if view is not None or include_flat:
                rows.append((symbol, side, view))
    return rows


def _mark(ex, symbol) -> int:
    return ex.risk_price(symbol)


def position_v3(ex, records, account_id, symbol, side, view) -> dict:
    inst = ex.instruments[symbol]
    lots = view.lots if view else 0
    sign = 1 if lots >= 0 else -1
    isolated = view is not None and view.margin_mode == MarginMode.ISOLATED
    im = view.initial_margin_units if view else 0
    return {
        "symbol": symbol, "positionSide": wire.POSITION_SIDE[side], "positionAmt": wire.qty(inst, lots),
        "entryPrice": _entry_price(inst, view) if view else wire.price(inst, 0),
        "breakEvenPrice": _entry_price(inst, view) if view else wire.price(inst, 0),
        "markPrice": wire.price(inst, _mark(ex, symbol)),
        "unRealizedProfit": wire.money(view.unrealized_pnl_units if view else 0),
        "liquidationPrice": wire.price(inst, (view.liquidation_price_ticks or 0) if view else 0),
        "isolatedMargin": wire.money((view.isolated_margin_units + view.unrealized_pnl_units) if isolated else 0),
        "notional": wire.money(sign * (view.notional_units if view else 0)), "marginAsset": inst.settle,
        "isolatedWallet": wire.money(view.isolated_margin_units if isolated else 0),
        "initialMargin": wire.money(im), "maintMargin": wire.money(view.maintenance_margin_units if view else 0),
        "positionInitialMargin": wire.money(im), "openOrderInitialMargin": "0",
        "adl": ex.adl_quantile(account_id, symbol, side) if view else 0,
        "bidNotional": "0", "askNotional": "0", "updateTime": records.now_ms(),
    }


def position_v2(ex, records, account_id, symbol, side, view) -> dict:
    inst = ex.instruments[symbol]
    lots = view.lots if view else 0
    sign = 1 if lots >= 0 else -1
    mode = ex.margin_mode(account_id, symbol)
    isolated = mode == MarginMode.ISOLATED
    return {
        "symbol": symbol, "positionAmt": wire.qty(inst, lots),
        "entryPrice": _entry_price(inst, view) if view else wire.price(inst, 0),
        "breakEvenPrice": _entry_price(inst, view) if view else wire.price(inst, 0),
        "markPrice": wire.price(inst, _mark(ex, symbol)),
        "unRealizedProfit": wire.money(view.unrealized_pnl_units if view else 0),
        "liquidationPrice": wire.price(inst, (view.liquidation_price_ticks or 0) if view else 0),
        "leverage": str(ex.leverage(account_id, symbol)), "maxNotionalValue": wire.money(max_notional(ex, account_id, symbol)),
        "marginType": "isolated" if isolated else "cross",
        "isolatedMargin": wire.money((view.isolated_margin_units + view.unrealized_pnl_units) if view and isolated else 0),
        "isAutoAddMargin": "false", "positionSide": wire.POSITION_SIDE[side],
        "notional": wire.money(sign * (view.notional_units if view else 0)),
        "isolatedWallet": wire.money(view.isolated_margin_units if view and isolated else 0),
        "updateTime": records.now_ms(), "isolated": isolated,
        "adlQuantile": ex.adl_quantile(account_id, symbol, side) if view else 0,
    }


def max_notional(ex, account_id, symbol) -> int:
    """The largest bracket cap whose max leverage admits the account's leverage (units)."""
    inst = ex.instruments[symbol]
    lev = ex.leverage(account_id, symbol)
    best = 0
    for b in inst.brackets:
        if b.max_leverage >= lev:
            best = b.notional_cap_units
    return best


def brackets_json(inst) -> dict:
    rows, floor, cum, prev_mmr = [], 0, 0, 0
    for i, b in enumerate(inst.brackets, 1):
        cum += floor * (b.mmr_e8 - prev_mmr) // 10 ** 8
        rows.append({"bracket": i, "initialLeverage": b.max_leverage, "notionalCap": b.notional_cap_units / 10 ** 8,
                     "notionalFloor": floor / 10 ** 8, "maintMarginRatio": b.mmr_e8 / 10 ** 8, "cum": cum / 10 ** 8})
        floor, prev_mmr = b.notional_cap_units, b.mmr_e8
    return {"symbol": inst.symbol, "brackets": rows}


def account_totals(ex, account_id: int) -> dict:
    views = ex.positions(account_id)
    wallet = ex.wallet(account_id)
    upnl = sum(v.unrealized_pnl_units for v in views)
    cross_upnl = sum(v.unrealized_pnl_units for v in views if v.margin_mode == MarginMode.CROSS)
    pos_im = sum(v.initial_margin_units for v in views)
    mm = sum(v.maintenance_margin_units for v in views)
    order_im = ex.order_margin(account_id)
    iso = sum(v.isolated_margin_units for v in views if v.margin_mode == MarginMode.ISOLATED)
    available = ex.available_balance(account_id) if ex.ledger.get(account_id) is not None else 0
    return {"wallet": wallet, "upnl": upnl, "cross_upnl": cross_upnl, "pos_im": pos_im, "order_im": order_im,
            "mm": mm, "available": available, "cross_wallet": wallet - iso, "views": views}


def account_json(ex, records, account_id: int, v2: bool) -> dict:
    t = account_totals(ex, account_id)
    now = records.now_ms()
    asset = {
        "asset": "USDT", "walletBalance": wire.money(t["wallet"]), "unrealizedProfit": wire.money(t["upnl"]),
        "marginBalance": wire.money(t["wallet"] + t["upnl"]), "maintMargin": wire.money(t["mm"]),
        "initialMargin": wire.money(t["pos_im"] + t["order_im"]), "positionInitialMargin": wire.money(t["pos_im"]),
        "openOrderInitialMargin": wire.money(t["order_im"]), "crossWalletBalance": wire.money(t["cross_wallet"]),
        "crossUnPnl": wire.money(t["cross_upnl"]), "availableBalance": wire.money(t["available"]),
        "maxWithdrawAmount": wire.money(max(0, t["available"])), "marginAvailable": True, "updateTime": now or 1,
    }
    positions = []
    for symbol, side, view in position_rows(ex, account_id, include_flat=v2):
        inst = ex.instruments[symbol]
        lots = view.lots if view else 0
        p = {"symbol": symbol, "positionSide": wire.POSITION_SIDE[side], "positionAmt": wire.qty(inst, lots),
             "unrealizedProfit": wire.money(view.unrealized_pnl_units if view else 0),
             "isolatedMargin": wire.money(view.isolated_margin_units if view else 0),
             "notional": wire.money((1 if lots >= 0 else -1) * (view.notional_units if view else 0)),
             "isolatedWallet": wire.money(view.isolated_margin_units if view else 0),
             "initialMargin": wire.money(view.initial_margin_units if view else 0),
             "maintMargin": wire.money(view.maintenance_margin_units if view else 0), "updateTime": now}
        if v2:
            p.update({"leverage": str(ex.leverage(account_id, symbol)),
                      "isolated": ex.margin_mode(account_id, symbol) == MarginMode.ISOLATED,
                      "entryPrice": _entry_price(inst, view) if view else "0",
                      "maxNotional": wire.money(max_notional(ex, account_id, symbol)),
                      "positionInitialMargin": wire.money(view.initial_margin_units if view else 0),
                      "openOrderInitialMargin": "0", "bidNotional": "0", "askNotional": "0"})
        positions.append(p)
    body = {
        "totalInitialMargin": asset["initialMargin"], "totalMaintMargin": asset["maintMargin"],
        "totalWalletBalance": asset["walletBalance"], "totalUnrealizedProfit": asset["unrealizedProfit"],
        "totalMarginBalance": asset["marginBalance"], "totalPositionInitialMargin": asset["positionInitialMargin"],
        "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
        "totalCrossWalletBalance": asset["crossWalletBalance"], "totalCrossUnPnl": asset["crossUnPnl"],
        "availableBalance": asset["availableBalance"], "maxWithdrawAmount": asset["maxWithdrawAmount"],
        "assets": [asset], "positions": positions,
    }
    if v2:
        body.update({"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                     "updateTime": 0, "multiAssetsMargin": False, "tradeGroupId": -1})
    return body


def balance_json(ex, records, account_id: int) -> list:
    t = account_totals(ex, account_id)
    return [{"accountAlias": f"sim{account_id}", "asset": "USDT", "balance": wire.money(t["wallet"]),
             "crossWalletBalance": wire.money(t["cross_wallet"]), "crossUnPnl": wire.money(t["cross_upnl"]),
             "availableBalance": wire.money(t["available"]), "maxWithdrawAmount": wire.money(max(0, t["available"])),
             "marginAvailable": True, "updateTime": records.now_ms()}]


def account_update(ex, account_id: int, reasons: list, touched: list, now: int) -> dict:
    t = account_totals(ex, account_id)
    reason = ACCOUNT_REASON.get(reasons[0], "ORDER") if reasons else "ORDER"
    positions = []
    for symbol, side in touched:
        inst = ex.instruments[symbol]
        view = ex.position(account_id, symbol, side)
        lots = view.lots if view else 0
        isolated = ex.margin_mode(account_id, symbol) == MarginMode.ISOLATED
        positions.append({"s": symbol, "pa": wire.qty(inst, lots),
                          "ep": _entry_price(inst, view) if view and lots else "0", "bep": "0",
                          "cr": "0", "up": wire.money(view.unrealized_pnl_units if view else 0),
                          "mt": "isolated" if isolated else "cross",
                          "iw": wire.money(view.isolated_margin_units if view and isolated else 0),
                          "ps": wire.POSITION_SIDE[PositionSide(side)]})
    return {"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
        "m": reason, "B": [{"a": "USDT", "wb": wire.money(t["wallet"]), "cw": wire.money(t["cross_wallet"]),
                            "bc": "0"}], "P": positions}}


def margin_call(ex, account_id: int, symbol: str, position_side, now: int) -> dict:
    t = account_totals(ex, account_id)
    rows = []
    for view in t["views"]:
        if symbol and (view.symbol != symbol or view.position_side != position_side):
            continue
        if not symbol and view.margin_mode != MarginMode.CROSS:  # a cross call lists the cross positions only
            continue
        inst = ex.instruments[view.symbol]
        isolated = view.margin_mode == MarginMode.ISOLATED
        rows.append({"s": view.symbol, "ps": wire.POSITION_SIDE[PositionSide(view.position_side)],
                     "pa": wire.qty(inst, view.lots), "mt": "ISOLATED" if isolated else "CROSSED",
                     "iw": wire.money(view.isolated_margin_units if isolated else 0),
                     "mp": wire.price(inst, ex.risk_price(view.symbol)), "up": wire.money(view.unrealized_pnl_units),
                     "mm": wire.money(view.maintenance_margin_units)})
    body = {"e": "MARGIN_CALL", "E": now, "p": rows}
    if not symbol:
        body["cw"] = wire.money(t["cross_wallet"])
    return body
