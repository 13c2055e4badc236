"""The gateway's records, built only from engine events: orders (with their client ids), trades, income,
force orders, and the user-stream messages they produce.

:meth:`Records.ingest` is called by the sequencer for every applied command with its events, and (on
``--restore``) for every replayed journal command, so the live and the rebuilt records are the same code.
Numbers are the engine's integers; formatting happens in :mod:`.wire` and the REST/WS modules.
"""
from __future__ import annotations

import copy

from collections import defaultdict, deque
from dataclasses import dataclass, field
from fractions import Fraction

from ..commands import PlaceOrder
from ..enums import BalanceReason, CancelReason, OrderType, PositionSide, Side, TimeInForce, WorkingType
from ..events import (
    ADLFill, BalanceChanged, Fill, FundingPaid, LiquidationEnded, LiquidationFill, LiquidationStarted, MarginCall, OrderAccepted, OrderAmended,
    OrderCanceled, OrderTriggered, PositionChanged, Rejected, SettlementFill,
)
from . import wire

SYNTHETIC_BASE = 10 ** 15  # ids of orders the engine has no order for (fund takeovers, ADL legs)
PUBLIC_TRADES_KEPT = 10_000


@dataclass
class Order:
    order_id: int
    account_id: int
    symbol: str
    side: Side
    order_type: OrderType  # the engine's type (STOP_MARKET, ...)
    qty_lots: int
    price_ticks: int = 0
    client_id: str = ""
    tif: int = TimeInForce.GTC
    reduce_only: bool = False
    close_position: bool = False
    stop_ticks: int = 0
    working_type: int = WorkingType.CONTRACT_PRICE
    callback_e8: int = 0
    activation_ticks: int = 0
    position_side: int = PositionSide.BOTH
    algo: bool = False  # placed through the Algo Order API
    kind: str = ""  # "" | "LIQUIDATION" | "ADL" | "SETTLEMENT"
    status: str = "NEW"
    algo_status: str = "NEW"
    triggered: bool = False
    executed_lots: int = 0
    quote_ticks_lots: int = 0  # Σ price_ticks × lots of the fills
    create_ms: int = 0
    update_ms: int = 0
    expire_ms: int = 0
    good_till: int = 0

    @property
    def is_conditional(self) -> bool:
        return self.order_type >= OrderType.STOP

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    def avg_ticks(self) -> Fraction | int:
        if not self.executed_lots:
            return 0
        whole, rest = divmod(self.quote_ticks_lots, self.executed_lots)
        return whole if not rest else Fraction(self.quote_ticks_lots, self.executed_lots)

    def child_type(self) -> OrderType:
        """The type the order trades as once triggered."""
        if self.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT):
            return OrderType.LIMIT
        if self.order_type >= OrderType.STOP:
            return OrderType.MARKET
        return self.order_type


@dataclass
class Trade:
    trade_id: int
    order_id: int
    account_id: int
    symbol: str
    side: Side
    price_ticks: int
    qty_lots: int
    fee_units: int
    maker: bool
    time_ms: int
    position_side: int = PositionSide.BOTH
    realized_units: int = 0


@dataclass
class Income:
    tran_id: int
    account_id: int
    symbol: str
    kind: str
    units: int
    time_ms: int
    info: str = ""
    trade_id: int = 0


@dataclass
class Outbox:
    """What one batch produces for the streams."""
    user: list = field(default_factory=list)  # (account_id, payload)
    market: list = field(default_factory=list)  # (stream, payload)
    depth_dirty: set = field(default_factory=set)
    mark_dirty: set = field(default_factory=set)
    trades: list = field(default_factory=list)  # (symbol, public trade tuple)


class Records:
    def __init__(self, exchange, accounts: set[int], epoch_ms: int):
        self.ex = exchange
        self.accounts = set(accounts)
        self.epoch_ms = epoch_ms
        self.orders: dict[int, Order] = {}
        self.open_cids: dict[tuple[int, str], int] = {}
        self.all_cids: dict[tuple[int, str], int] = {}
        self.history: dict[int, list[int]] = defaultdict(list)  # account -> order ids, oldest first
        self.trades: dict[int, list[Trade]] = defaultdict(list)
        self.income: dict[int, list[Income]] = defaultdict(list)
        self.force_orders: dict[int, list[int]] = defaultdict(list)
        self.public_trades: dict[str, deque] = defaultdict(lambda: deque(maxlen=PUBLIC_TRADES_KEPT))
        self.candles: dict[str, dict[int, list]] = defaultdict(dict)  # symbol -> minute ms -> [o,h,l,c,lots,qt,n,tb,tq]
        self.trade_seq: dict[str, int] = defaultdict(int)
        self.next_tran = 1
        self.next_synthetic = SYNTHETIC_BASE
        self.margin_calls: dict[int, list] = defaultdict(list)
        # account -> its user-stream subscribers (the hub's, set by the gateway): stream messages are only made
        # for these accounts (none while restoring)
        self.listeners: dict = {}

    # ---- helpers --------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return wire.ms(self.epoch_ms, self.ex.now_ns)

    def known(self, account_id: int) -> bool:
        return account_id in self.accounts

    def _income(self, account_id, symbol, kind, units, info="", trade_id=0, now=None):
        if not units or account_id not in self.accounts:
            return
        self.income[account_id].append(Income(self.next_tran, account_id, symbol, kind, units,
                                              self.now_ms() if now is None else now, info, trade_id))
        self.next_tran += 1

    def _new_order(self, order: Order) -> Order:
        self.orders[order.order_id] = order
        if order.account_id in self.accounts:
            self.history[order.account_id].append(order.order_id)
            if order.client_id:
                self.open_cids[(order.account_id, order.client_id)] = order.order_id
                self.all_cids[(order.account_id, order.client_id)] = order.order_id
        return order

    def _close(self, order: Order, status: str) -> None:
        order.status = status
        if order.client_id:
            self.open_cids.pop((order.account_id, order.client_id), None)
        if order.algo and order.triggered and order.algo_status == "TRIGGERED":
            order.algo_status = "FINISHED"

    def find(self, account_id: int, order_id=None, client_id=None) -> Order | None:
        if order_id is not None:
            order = self.orders.get(order_id)
        else:
            oid = self.all_cids.get((account_id, client_id))
            order = self.orders.get(oid) if oid is not None else None
        return order if order is not None and order.account_id == account_id else None

    # ---- ingest ---------------------------------------------------------------------------------
    def ingest(self, command, meta: dict | None, events: list, out: Outbox) -> None:
        now = self.now_ms()
        liq_orders = {e.order_id for e in events if isinstance(e, LiquidationFill) and e.order_id}
        last_trade: dict[tuple[int, str], Trade] = {}
        accepted_meta = isinstance(command, PlaceOrder)
        account_touch: dict[int, list] = {}  # account -> [reasons], for ACCOUNT_UPDATE
        positions_touch: dict[int, set] = defaultdict(set)
        liquidating: set[int] = set()
        for e in events:
            t = type(e)
            if t is LiquidationStarted:
                liquidating.add(e.account_id)
            elif t is LiquidationEnded:
                liquidating.discard(e.account_id)
            if t is OrderAccepted:
                own = accepted_meta and e.account_id == command.account_id and e.order_type == command.order_type
                if e.order_id in liq_orders or (e.account_id in liquidating and not own):
                    order = self._new_order(Order(e.order_id, e.account_id, e.symbol, e.side, e.order_type,
                                                  e.qty_lots, e.price_ticks, f"autoclose-{now}{e.order_id}",
                                                  TimeInForce.IOC, True, kind="LIQUIDATION", create_ms=now,
                                                  update_ms=now,
                                                  position_side=self.ex.order_position_side(e.order_id) or 1))
                    self.force_orders[e.account_id].append(e.order_id)
                elif accepted_meta and e.account_id == command.account_id and e.order_type == command.order_type:
                    accepted_meta = False
                    order = self._order_from_place(e, command, meta or {}, now)
                else:  # an order the gateway did not place (agents, fund unwinding)
                    order = self._new_order(Order(e.order_id, e.account_id, e.symbol, e.side, e.order_type,
                                                  e.qty_lots, e.price_ticks, create_ms=now, update_ms=now))
                if order.kind != "LIQUIDATION":  # a liquidation order shows up with its first fill (CALCULATED):
                    self._order_update(order, "NEW", out)  # ccxt keys liquidations by order id and keeps the first
                if order.algo:
                    self._algo_update(order, out)
                out.depth_dirty.add(e.symbol)
            elif t is Fill:
                self._fill(e, now, liq_orders, last_trade, out)
            elif t is LiquidationFill:
                if not e.order_id:  # taken over by the fund (or the backstop vault): a synthetic order
                    trade = self._synthetic(e.symbol, e.account_id, e.side, e.price_ticks, e.qty_lots,
                                            e.position_side, "LIQUIDATION", now, out)
                    last_trade[(e.account_id, e.symbol)] = trade
                out.market.append((f"{e.symbol.lower()}@forceOrder", self._force_event(e, now)))
            elif t is ADLFill:
                kind = "LIQUIDATION" if e.liquidated else "ADL"
                trade = self._synthetic(e.symbol, e.account_id, e.side, e.price_ticks, e.qty_lots, e.position_side,
                                        kind, now, out)
                last_trade[(e.account_id, e.symbol)] = trade
            elif t is SettlementFill:  # final settlement closes the position without a book order
                trade = self._synthetic(e.symbol, e.account_id, e.side, e.price_ticks, e.qty_lots, e.position_side,
                                        "SETTLEMENT", now, out)
                last_trade[(e.account_id, e.symbol)] = trade
                out.depth_dirty.add(e.symbol)
            elif t is OrderCanceled:
                order = self.orders.get(e.order_id)
                if order is not None:
                    reason = CancelReason(e.reason)
                    status = wire.CANCEL_STATUS.get(reason, "CANCELED")
                    if order.algo and not order.triggered:
                        order.algo_status = "CANCELED" if reason == CancelReason.USER else "EXPIRED"
                        order.update_ms = now
                        self._close(order, "CANCELED" if reason == CancelReason.USER else "EXPIRED")
                        self._algo_update(order, out)
                    else:
                        order.update_ms = now
                        self._close(order, status)
                        self._order_update(order, "CANCELED" if status == "CANCELED" else "EXPIRED", out,
                                           expire_reason=wire.EXPIRE_REASON.get(reason, 0))
                        if order.algo:
                            self._algo_update(order, out)
                out.depth_dirty.add(e.symbol)
            elif t is OrderAmended:
                order = self.orders.get(e.order_id)
                if order is not None:
                    order.price_ticks = e.price_ticks
                    order.qty_lots = order.executed_lots + e.leaves_lots
                    order.update_ms = now
                    self._order_update(order, "AMENDMENT", out)
                out.depth_dirty.add(e.symbol)
            elif t is OrderTriggered:
                order = self.orders.get(e.order_id)
                if order is not None:
                    order.triggered = True
                    order.update_ms = now
                    if order.algo:
                        order.algo_status = "TRIGGERED"
                        self._algo_update(order, out)
                    self._order_update(order, "NEW", out)
            elif t is Rejected:
                order = self.orders.get(e.order_id) if e.order_id else None
                if order is not None and order.open:  # a fired conditional order refused when it entered
                    order.update_ms = now
                    self._close(order, "EXPIRED")
                    if order.algo:
                        order.algo_status = "EXPIRED" if not order.triggered else "FINISHED"
                        self._algo_update(order, out)
                    self._order_update(order, "EXPIRED", out)
            elif t is PositionChanged:
                trade = last_trade.get((e.account_id, e.symbol))
                if trade is not None and e.realized_pnl_units:
                    trade.realized_units += e.realized_pnl_units
                    self._income(e.account_id, e.symbol, "REALIZED_PNL", e.realized_pnl_units, "", trade.trade_id, now)
                if e.account_id in self.listeners:
                    positions_touch[e.account_id].add((e.symbol, e.position_side))
                    account_touch.setdefault(e.account_id, [])
            elif t is BalanceChanged:
                if e.account_id in self.listeners:
                    account_touch.setdefault(e.account_id, []).append(e.reason)
                if self.known(e.account_id):
                    if e.reason in (BalanceReason.DEPOSIT, BalanceReason.WITHDRAW):
                        self._income(e.account_id, "", "TRANSFER", e.delta_units, e.reason.name)
                    elif e.reason in (BalanceReason.LIQUIDATION, BalanceReason.INSURANCE_TOP_UP,
                                      BalanceReason.SOCIALIZED_LOSS):
                        self._income(e.account_id, "", "INSURANCE_CLEAR", e.delta_units, BalanceReason(e.reason).name)
            elif t is FundingPaid:
                self._income(e.account_id, e.symbol, "FUNDING_FEE", -e.amount_units)
                if e.account_id in self.listeners:
                    account_touch.setdefault(e.account_id, []).append(BalanceReason.FUNDING)
                    positions_touch[e.account_id].add((e.symbol, e.position_side))
                out.mark_dirty.add(e.symbol)
            elif t is MarginCall:
                if e.account_id in self.listeners:
                    out.user.append((e.account_id, ("MARGIN_CALL", e.symbol, e.position_side, now)))
            else:
                name = t.__name__
                if name in ("MarkPriceChanged", "IndexPriceChanged", "FundingSettled"):
                    out.mark_dirty.add(e.symbol)
        for account_id, reasons in account_touch.items():
            out.user.append((account_id, ("ACCOUNT_UPDATE", reasons, sorted(positions_touch.get(account_id, ())), now)))

    def _order_from_place(self, e: OrderAccepted, cmd: PlaceOrder, meta: dict, now: int) -> Order:
        return self._new_order(Order(
            e.order_id, e.account_id, e.symbol, e.side, e.order_type, cmd.qty_lots, cmd.price_ticks,
            meta.get("cid", "") or f"sim-{e.order_id}", cmd.tif, cmd.reduce_only, cmd.close_position,
            cmd.stop_ticks, cmd.working_type, cmd.callback_e8, cmd.activation_ticks, cmd.position_side,
            bool(meta.get("algo")), create_ms=now, update_ms=now, good_till=int(meta.get("gtd", 0))))

    def _fill(self, e: Fill, now: int, liq_orders: set, last_trade: dict, out: Outbox) -> None:
        sym = e.symbol
        self.trade_seq[sym] += 1
        tid = self.trade_seq[sym]
        buyer_maker = e.taker_side == Side.SELL
        self.public_trades[sym].append((tid, e.price_ticks, e.qty_lots, now, buyer_maker))
        out.trades.append((sym, (tid, e.price_ticks, e.qty_lots, now, buyer_maker)))
        self._candle(sym, now, e.price_ticks, e.qty_lots, e.taker_side == Side.BUY)
        out.depth_dirty.add(sym)
        inst = self.ex.instruments[sym]
        for order_id, account_id, side, leaves, fee, maker in (
                (e.taker_order_id, e.taker_account_id, e.taker_side, e.taker_leaves_lots, e.taker_fee_units, False),
                (e.maker_order_id, e.maker_account_id, e.taker_side.opposite, e.maker_leaves_lots, e.maker_fee_units,
                 True)):
            order = self.orders.get(order_id)
            if order is None:
                continue
            order.executed_lots += e.qty_lots
            order.quote_ticks_lots += e.price_ticks * e.qty_lots
            order.update_ms = now
            if account_id not in self.accounts:
                if leaves == 0:
                    order.status = "FILLED"
                continue
            trade = Trade(tid, order_id, account_id, sym, Side(side), e.price_ticks, e.qty_lots, fee, maker, now,
                          order.position_side)
            self.trades[account_id].append(trade)
            last_trade[(account_id, sym)] = trade
            self._income(account_id, sym, "COMMISSION", -fee, "", tid, now)
            if leaves == 0:
                self._close(order, "FILLED")
            else:
                order.status = "PARTIALLY_FILLED"
            self._order_update(order, "CALCULATED" if order.kind == "LIQUIDATION" else "TRADE", out,
                               fill=(e.price_ticks, e.qty_lots, fee, maker, tid, inst))
            if order.algo:
                self._algo_update(order, out)

    def _synthetic(self, symbol, account_id, side, price_ticks, qty_lots, position_side, kind, now, out) -> Trade:
        """An order + trade for a position change without a book order (fund takeover, ADL)."""
        self.next_synthetic += 1
        oid = self.next_synthetic
        cid = f"autoclose-{now}{oid}" if kind == "LIQUIDATION" else "adl_autoclose" if kind == "ADL" else \
            f"settlement_autoclose-{now}{oid}"
        order = self._new_order(Order(oid, account_id, symbol, Side(side), OrderType.LIMIT if kind == "LIQUIDATION"
                                      else OrderType.MARKET, qty_lots, price_ticks, cid, TimeInForce.IOC, True,
                                      position_side=position_side, kind=kind, create_ms=now, update_ms=now))
        self.trade_seq[symbol] += 1
        tid = self.trade_seq[symbol]
        trade = Trade(tid, oid, account_id, symbol, Side(side), price_ticks, qty_lots, 0, False, now, position_side)
        if self.known(account_id):
            if kind != "SETTLEMENT":  # forceOrders lists liquidations and ADL legs only
                self.force_orders[account_id].append(oid)
            self.trades[account_id].append(trade)
            if kind != "LIQUIDATION":
                self._order_update(order, "NEW", out)
        order.executed_lots = qty_lots
        order.quote_ticks_lots = price_ticks * qty_lots
        self._close(order, "FILLED")
        if self.known(account_id):
            self._order_update(order, "CALCULATED" if kind == "LIQUIDATION" else "TRADE", out,
                               fill=(price_ticks, qty_lots, 0, False, tid, self.ex.instruments[symbol]))
        return trade

    def _candle(self, symbol, now, price_ticks, lots, taker_buy) -> None:
        minute = now - now % 60_000
        c = self.candles[symbol].get(minute)
        if c is None:
            self.candles[symbol][minute] = [price_ticks, price_ticks, price_ticks, price_ticks, lots,
                                            price_ticks * lots, 1, lots if taker_buy else 0,
                                            price_ticks * lots if taker_buy else 0]
        else:
            c[1] = max(c[1], price_ticks)
            c[2] = min(c[2], price_ticks)
            c[3] = price_ticks
            c[4] += lots
            c[5] += price_ticks * lots
            c[6] += 1
            if taker_buy:
                c[7] += lots
                c[8] += price_ticks * lots

    # ---- stream payload markers (formatted by ws.py with engine queries at publish time) ----------
    def _order_update(self, order: Order, exec_type: str, out: Outbox, fill=None, expire_reason: int = 0) -> None:
        if order.account_id in self.listeners:
            out.user.append((order.account_id, ("ORDER", order_snapshot(order), exec_type, fill, expire_reason,
                                                self.now_ms())))

    def _algo_update(self, order: Order, out: Outbox) -> None:
        if order.account_id in self.listeners:
            out.user.append((order.account_id, ("ALGO", order_snapshot(order), self.now_ms())))

    def _force_event(self, e: LiquidationFill, now: int) -> dict:
        inst = self.ex.instruments[e.symbol]
        return {"e": "forceOrder", "E": now, "o": {
            "s": e.symbol, "S": wire.SIDE[Side(e.side)], "o": "LIMIT", "f": "IOC", "q": wire.qty(inst, e.qty_lots),
            "p": wire.price(inst, e.bankruptcy_price_ticks or e.price_ticks), "ap": wire.price(inst, e.price_ticks),
            "X": "FILLED", "l": wire.qty(inst, e.qty_lots), "z": wire.qty(inst, e.qty_lots), "T": now}}


def order_snapshot(order: Order) -> Order:
    """A copy of the order as it is now (stream messages are formatted after the batch). A shallow copy: every
    field is an immutable value."""
    return copy.copy(order)
