"""The admin API (``/admin/v1/...``, header ``X-Admin-Token``): deposits, prices, time, crashes, orders for
any account, snapshots, the state hash and raw engine views. Documented in ``docs/gateway.md``."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from .. import units
from ..commands import AdvanceTime, Deposit, FundInsurance, PlaceOrder, SetIndexPrice, SetMarkPrice, SettleSymbol
from ..enums import OrderType, PositionSide, Side, TimeInForce
from ..events import ADLFill, LiquidationFill, OrderAccepted, Rejected, SettlementFill, SymbolSettled
from ..persistence.snapshot import directory_for
from . import errors, wire
from .params import Params


def _ticks(inst, value, name) -> int:
    try:
        return units.to_ticks(str(value), inst.tick_size)
    except (units.UnitsError, ValueError, TypeError):
        raise errors.malformed(name, "a price on the tick grid") from None


def _reject(events):
    for evs in events:
        for e in evs:
            if type(e) is Rejected:
                raise errors.from_reject(e)


async def accounts(gw, p: Params):
    ex = gw.exchange
    return [{"account_id": a.account_id, "api_key": a.api_key, "wallet": wire.money(ex.wallet(a.account_id)),
             "available": wire.money(ex.available_balance(a.account_id) if ex.ledger.get(a.account_id) else 0)}
            for a in gw.config.accounts]


async def deposit(gw, p: Params):
    account_id = p.req_int("account_id", low=1)
    amount = p.money("amount")
    _reject(await gw.sequencer.submit([Deposit(account_id, amount)]))
    return {"account_id": account_id, "wallet": wire.money(gw.exchange.wallet(account_id))}


async def insurance(gw, p: Params):
    symbol = p.symbol()
    _reject(await gw.sequencer.submit([FundInsurance(symbol, p.money("amount"))]))
    return {"symbol": symbol, "balance": wire.money(gw.exchange.insurance_balance(symbol))}


async def price(gw, p: Params):
    symbol = p.symbol()
    inst = gw.exchange.instruments[symbol]
    cmds = []
    if "index" in p:
        cmds.append(SetIndexPrice(symbol, _ticks(inst, p.get("index"), "index")))
    if "mark" in p:
        cmds.append(SetMarkPrice(symbol, _ticks(inst, p.get("mark"), "mark")))
    if not cmds:
        raise errors.mandatory("mark' or 'index")
    events = await gw.sequencer.submit(cmds)
    _reject(events)
    return {"symbol": symbol, "mark": wire.price(inst, gw.exchange.mark_price(symbol)),
            "index": wire.price(inst, gw.exchange.index_price(symbol)), **_liquidation_counts(events)}


async def advance(gw, p: Params):
    def produce(ex):
        if p.get("to") == "next_funding":
            target = ex.next_funding_time_ns()
        elif "ms" in p:
            target = ex.now_ns + p.int("ms", low=0, high=366 * 86_400_000) * 1_000_000
        elif "seconds" in p:
            target = ex.now_ns + p.int("seconds", low=0, high=366 * 86_400) * 1_000_000_000
        else:
            raise errors.mandatory("seconds' or 'ms' or 'to")
        return [AdvanceTime(target)], [None]
    events = await gw.sequencer.run_producer(produce)
    _reject(events)
    return {"now_ms": gw.records.now_ms(), **_liquidation_counts(events)}


def _liquidation_counts(events) -> dict:
    flat = [e for evs in events for e in evs]
    return {"liquidation_fills": sum(type(e) is LiquidationFill for e in flat),
            "adl_fills": sum(type(e) is ADLFill for e in flat)}


async def crash(gw, p: Params):
    symbol = p.symbol()
    inst = gw.exchange.instruments[symbol]
    target = _ticks(inst, p.req("to"), "to")
    steps = p.int("steps", default=10, low=1, high=10_000)
    step_ms = p.int("step_ms", default=1000, low=0, high=3_600_000)
    if target <= 0:
        raise errors.malformed("to", "must be > 0")

    def produce(ex):
        start = ex.mark_price(symbol) or ex.risk_price(symbol) or target
        cmds = []
        for i in range(1, steps + 1):
            # geometric path from start to target, in integer ticks (the last step is exactly the target)
            ticks = target if i == steps else max(1, int(Decimal(start) * (Decimal(target) / Decimal(start)) **
                                                          (Decimal(i) / Decimal(steps))))
            if step_ms:
                cmds.append(AdvanceTime(ex.now_ns + i * step_ms * 1_000_000))
            cmds += [SetIndexPrice(symbol, ticks), SetMarkPrice(symbol, ticks)]
        return cmds, [None] * len(cmds)
    events = await gw.sequencer.run_producer(produce)
    _reject(events)
    return {"symbol": symbol, "mark": wire.price(inst, gw.exchange.mark_price(symbol)), **_liquidation_counts(events)}


async def settle(gw, p: Params):
    """Final settlement (delisting) of a symbol: the engine's SettleSymbol at ``price`` (omitted: the engine's
    default, the index price). Every open order is canceled, every position closed, and the symbol trades no
    more: orders answer -1122 and exchangeInfo shows it as SETTLING."""
    symbol = p.symbol()
    inst = gw.exchange.instruments[symbol]
    price_ticks = _ticks(inst, p.get("price"), "price") if "price" in p else 0
    if "price" in p and price_ticks <= 0:
        raise errors.malformed("price", "must be > 0")
    events = await gw.sequencer.submit([SettleSymbol(symbol, price_ticks)])
    _reject(events)
    flat = [e for evs in events for e in evs]
    done = next(e for e in flat if type(e) is SymbolSettled)
    return {"symbol": symbol, "price": wire.price(inst, done.price_ticks), "lots": done.lots,
            "settlement_fills": sum(type(e) is SettlementFill for e in flat)}


async def order(gw, p: Params):
    account_id = p.req_int("account_id", low=1)
    symbol = p.symbol()
    inst = gw.exchange.instruments[symbol]
    side = p.choice("side", {"BUY": Side.BUY, "SELL": Side.SELL}, errors.INVALID_SIDE)
    qty = p.lots(inst, "qty")
    px = p.ticks(inst, "price")
    tif = p.choice("tif", {t.name: t for t in TimeInForce}, errors.INVALID_TIF, TimeInForce.GTC)
    cmd = PlaceOrder(account_id, symbol, side, qty, px, OrderType.LIMIT if px else OrderType.MARKET, tif)
    (events,) = await gw.sequencer.submit([cmd], [{"cid": p.client_id("client_id"), "algo": False}])
    _reject([events])
    oid = next((e.order_id for e in events if type(e) is OrderAccepted), 0)
    return {"order_id": oid, "events": len(events)}


async def snapshot(gw, p: Params):
    def produce(ex):
        from ..persistence.snapshot import write_periodic
        ex.sync_journal()  # the journal must hold every command the snapshot includes
        path = write_periodic(ex, directory_for(gw.journal_path), ex.keep_snapshots)
        gw.last_snapshot = str(path)
        return [], []
    await gw.sequencer.run_producer(produce)
    return {"path": gw.last_snapshot, "sequence": gw.exchange.sequence}


async def state(gw, p: Params):
    ex = gw.exchange
    return {"state_hash": ex.state_hash(), "sequence": ex.sequence, "now_ms": gw.records.now_ms(),
            "now_ns": ex.now_ns, "implementation": ex.implementation, "clock": gw.clock_mode,
            "epoch_ms": gw.config.epoch_ms, "ws_dropped": gw.hub.dropped, "batches": gw.sequencer.batches}


async def engine_position(gw, p: Params):
    account_id = p.req_int("account_id", low=1)
    symbol = p.symbol()
    ex = gw.exchange
    side = p.choice("position_side", {"BOTH": PositionSide.BOTH, "LONG": PositionSide.LONG,
                                      "SHORT": PositionSide.SHORT}, errors.BAD_PARAM, PositionSide.BOTH)
    view = ex.position(account_id, symbol, side)
    return {"position": _plain(dataclasses.asdict(view)) if view else None, "wallet_units": ex.wallet(account_id),
            "available_units": ex.available_balance(account_id) if ex.ledger.get(account_id) else 0,
            "mark_ticks": ex.mark_price(symbol), "in_liquidation": ex.in_liquidation(account_id)}


async def engine_events(gw, p: Params):
    since = p.int("since", default=0, low=0)
    return [event_row(n, event) for n, event in gw.logged_events(since)]


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value"), int):
        return int(value)
    return value


def event_row(n: int, event) -> dict:
    row = {"n": n, "type": type(event).__name__}
    for f in dataclasses.fields(event):
        v = getattr(event, f.name)
        row[f.name] = int(v) if isinstance(v, int) else v if isinstance(v, (str, bool)) or v is None else str(v)
    return row


ROUTES = [
    ("GET", "/admin/v1/accounts", accounts), ("POST", "/admin/v1/deposit", deposit),
    ("POST", "/admin/v1/price", price), ("POST", "/admin/v1/advance", advance), ("POST", "/admin/v1/crash", crash),
    ("POST", "/admin/v1/order", order), ("POST", "/admin/v1/settle", settle), ("POST", "/admin/v1/insurance", insurance),
    ("POST", "/admin/v1/snapshot", snapshot), ("GET", "/admin/v1/state", state),
    ("GET", "/admin/v1/engine/position", engine_position), ("GET", "/admin/v1/engine/events", engine_events),
]
