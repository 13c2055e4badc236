"""Conditional orders waiting for their trigger price (rules §3), shared by both implementations.

STOP / STOP_MARKET / TAKE_PROFIT / TAKE_PROFIT_MARKET / TRAILING_STOP_MARKET orders do not rest in the
book. Each watches one price (``working_type``: the mark or the last trade price). When it fires it is
handed back to the engine, which places it into the matching engine under the same order id: STOP and
TAKE_PROFIT as LIMIT orders at ``price_ticks`` with their TIF, the others as MARKET orders.

Trigger conditions at an observed price ``p`` (ticks):

- STOP, STOP_MARKET:             BUY fires when ``p >= stop``, SELL when ``p <= stop``.
- TAKE_PROFIT, TAKE_PROFIT_MARKET: BUY fires when ``p <= stop``, SELL when ``p >= stop``.
- TRAILING_STOP_MARKET: inactive until ``p`` reaches the activation price (SELL: ``p >= activation``,
  BUY: ``p <= activation``; no activation price = active from the first observation); then tracks the
  extreme (SELL: highest, BUY: lowest) and fires when SELL ``p × 10⁸ <= highest × (10⁸ − callback_e8)``,
  BUY ``p × 10⁸ >= lowest × (10⁸ + callback_e8)`` — exact integer comparisons, no rounding.

Orders fire in ascending order id. The trigger book indexes the waiting orders by the price level that
fires them (:class:`TriggerBook`), so a mark or a trade looks only at the orders it fires, whatever the number
waiting. Invariant: every waiting order is in exactly one place of its working type's indexes (a level list or
the trailing stops that follow every price), in its account's set, and, GTD, in the expiry list.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sortedcontainers import SortedList

from ..enums import OrderType, RejectCode, Side, STPMode, TimeInForce, WorkingType
from .filters import check_notional, check_price_range, check_qty
from ..units import E8


@dataclass(slots=True)
class ConditionalOrder:
    order_id: int
    account_id: int
    side: Side
    order_type: OrderType
    qty_lots: int
    price_ticks: int  # limit price once triggered (STOP, TAKE_PROFIT); 0 for the market kinds
    tif: int
    stp: int
    reduce_only: bool
    close_position: bool
    stop_ticks: int
    working_type: WorkingType
    callback_e8: int
    activation_ticks: int
    expire_ns: int
    activated: bool = False
    extreme_ticks: int = 0  # trailing: highest (SELL) or lowest (BUY) price since activation
    fired_at_ticks: int = 0  # the observed price that fired it (set when it leaves the trigger book)

    def observe(self, price_ticks: int) -> bool:
        """Feed one observed price; True when the order fires. Updates trailing state."""
        if self.order_type == OrderType.TRAILING_STOP_MARKET:
            return self._observe_trailing(price_ticks, self.side == Side.BUY)
        return _fires_at(self.order_type, self.side, self.stop_ticks, price_ticks)

    def _observe_trailing(self, price_ticks: int, buy: bool) -> bool:
        if not self.activated:
            reached = (
                self.activation_ticks == 0
                or (buy and price_ticks <= self.activation_ticks)
                or (not buy and price_ticks >= self.activation_ticks)
            )
            if not reached:
                return False
            self.activated, self.extreme_ticks = True, price_ticks
        if buy:
            self.extreme_ticks = min(self.extreme_ticks, price_ticks)
            return price_ticks * E8 >= self.extreme_ticks * (E8 + self.callback_e8)
        self.extreme_ticks = max(self.extreme_ticks, price_ticks)
        return price_ticks * E8 <= self.extreme_ticks * (E8 - self.callback_e8)

    def as_state(self) -> tuple:
        return (
            self.order_id, self.account_id, int(self.side), int(self.order_type), self.qty_lots,
            self.price_ticks, self.tif, self.stp, int(self.reduce_only), int(self.close_position),
            self.stop_ticks, int(self.working_type), self.callback_e8, self.activation_ticks,
            self.expire_ns, int(self.activated), self.extreme_ticks,
        )

    @classmethod
    def from_state(cls, state) -> ConditionalOrder:
        """Inverse of :meth:`as_state` (plus an optional trailing ``fired_at_ticks``), with the field types
        the engine gives (enums, bools). Raises ValueError for a wrong length or an invalid enum value."""
        state = [int(value) for value in state]
        if len(state) not in (17, 18):
            raise ValueError(f"a conditional order state has 17 or 18 fields, got {len(state)}")
        (order_id, account_id, side, order_type, qty_lots, price_ticks, tif, stp, reduce_only, close_position,
         stop_ticks, working_type, callback_e8, activation_ticks, expire_ns, activated, extreme_ticks) = state[:17]
        order_type = OrderType(order_type)
        if not order_type.is_conditional:
            raise ValueError(f"order {order_id} is not a conditional order type")
        return cls(order_id, account_id, Side(side), order_type, qty_lots, price_ticks, tif, stp, bool(reduce_only),
                   bool(close_position), stop_ticks, WorkingType(working_type), callback_e8, activation_ticks,
                   expire_ns, bool(activated), extreme_ticks, state[17] if len(state) == 18 else 0)


class TriggerBook:
    """The waiting conditional orders of one symbol.

    ``_orders`` (order id -> :class:`ConditionalOrder`, in the order they were added) is the whole state: the
    state hash, snapshots and the compiled order entry and drain read it (the compiled code only tests it and
    looks ids up in it; every change goes through the methods below). Beside it, indexes kept by every method
    that changes it, so that no observed price, clock step or account query walks every waiting order:

    - per working type, ``_rising``: ``(level, order id)`` of the orders that fire (or, a trailing stop with an
      activation price, activate) when the price reaches ``level`` from below: BUY STOP / STOP_MARKET, SELL
      TAKE_PROFIT / TAKE_PROFIT_MARKET at their stop price, an inactive SELL trailing stop at its activation
      price; ``_falling`` the mirror (SELL stops, BUY take-profits, inactive BUY trailing stops); both sorted
      (``sortedcontainers.SortedList``);
    - per working type, ``_tracking``: the trailing stops that follow every price (activated, or active from
      their first observation: no activation price), by order id;
    - ``_by_account``: each account's waiting order ids; ``_expiring``: ``(expire_ns, order id)`` of GTD orders.

    Costs: :meth:`observe` O(log n + orders that fire or activate + tracking trailing stops), :meth:`add` and
    :meth:`remove` O(log n), :meth:`orders_of` O(k log k) for the account's k orders, :meth:`expired`
    O(log n + due orders). :meth:`check_invariants` rebuilds the indexes from ``_orders`` and compares (O(n log n)).
    """

    def __init__(self):
        self._orders: dict[int, ConditionalOrder] = {}
        self._rising = {wt: SortedList() for wt in WorkingType}
        self._falling = {wt: SortedList() for wt in WorkingType}
        self._tracking: dict[WorkingType, dict[int, ConditionalOrder]] = {wt: {} for wt in WorkingType}
        self._by_account: dict[int, set[int]] = {}
        self._expiring = SortedList()

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def get(self, order_id: int) -> ConditionalOrder | None:
        return self._orders.get(order_id)

    def add(self, order: ConditionalOrder) -> None:
        assert order.order_id not in self._orders
        self._orders[order.order_id] = order
        self._index(order)

    def remove(self, order_id: int) -> ConditionalOrder:
        """Take a waiting order out (cancel, expiry). Raises KeyError for an id that does not wait."""
        order = self._orders.pop(order_id)
        self._unindex(order)
        return order

    def orders_of(self, account_id: int) -> list[int]:
        """Waiting order ids of an account, ascending. O(k log k) for its k orders."""
        ids = self._by_account.get(account_id)
        return sorted(ids) if ids else []

    def expired(self, now_ns: int) -> list[int]:
        """Ids of GTD orders whose ``expire_ns <= now_ns``, ascending (expire_ns, order_id). They stay until
        removed. O(log n + due orders)."""
        return [order_id for _, order_id in self._expiring.irange(maximum=(now_ns, math.inf))]

    def observe(self, working_type: WorkingType, price_ticks: int) -> list[ConditionalOrder]:
        """Feed a price to every order watching ``working_type``; remove and return those that fire,
        ascending order id. Orders whose level the price does not reach are not looked at."""
        fired, reached = [], []
        rising, falling = self._rising[working_type], self._falling[working_type]
        if rising and rising[0][0] <= price_ticks:  # levels <= price: a prefix
            end = rising.bisect_right((price_ticks, math.inf))
            reached += rising[:end]
            del rising[:end]
        if falling and falling[-1][0] >= price_ticks:  # levels >= price: a suffix
            start = falling.bisect_left((price_ticks, -math.inf))
            reached += falling[start:]
            del falling[start:]
        tracking = self._tracking[working_type]
        for order in tracking.values():  # (before the ones activated now join them: each observes once)
            if order.observe(price_ticks):
                fired.append(order)
        for order in fired:
            del tracking[order.order_id]
        for _, order_id in reached:
            order = self._orders[order_id]
            if order.order_type == OrderType.TRAILING_STOP_MARKET:  # activates here, and may fire at once
                if order.observe(price_ticks):
                    fired.append(order)
                else:
                    tracking[order_id] = order
            else:
                fired.append(order)
        for order in fired:
            order.fired_at_ticks = price_ticks
            del self._orders[order.order_id]
            self._forget(order)
        return sorted(fired, key=lambda order: order.order_id)

    # -- indexes ----------------------------------------------------------------------------------
    def _index(self, order: ConditionalOrder) -> None:
        """Put a waiting order in the indexes (module docstring)."""
        placement = _placement(order)
        if placement is None:
            self._tracking[order.working_type][order.order_id] = order
        else:
            rising, level = placement
            (self._rising if rising else self._falling)[order.working_type].add((level, order.order_id))
        self._by_account.setdefault(order.account_id, set()).add(order.order_id)
        if order.expire_ns:
            self._expiring.add((order.expire_ns, order.order_id))

    def _unindex(self, order: ConditionalOrder) -> None:
        """Take a waiting order out of the indexes (the inverse of :meth:`_index`)."""
        placement = _placement(order)
        if placement is None:
            del self._tracking[order.working_type][order.order_id]
        else:
            rising, level = placement
            (self._rising if rising else self._falling)[order.working_type].remove((level, order.order_id))
        self._forget(order)

    def _forget(self, order: ConditionalOrder) -> None:
        """Drop a leaving order from the account and expiry indexes (its level entry is already gone)."""
        ids = self._by_account[order.account_id]
        ids.discard(order.order_id)
        if not ids:
            del self._by_account[order.account_id]
        if order.expire_ns:
            self._expiring.remove((order.expire_ns, order.order_id))

    def canonical_state(self) -> list[tuple]:
        return [self._orders[oid].as_state() for oid in sorted(self._orders)]

    def snapshot_state(self) -> list[tuple]:
        """Every waiting order with all its state (trailing activation and extreme included), in the book's
        iteration order (ascending id: orders are added in id order): :meth:`restore_state` inverts it."""
        return [(*order.as_state(), order.fired_at_ticks) for order in self._orders.values()]

    def restore_state(self, orders) -> None:
        """Load a :meth:`snapshot_state` into this (empty) trigger book. Raises ValueError otherwise (the book
        is left empty)."""
        if self._orders:
            raise ValueError("restore_state needs an empty trigger book")
        loaded: dict[int, ConditionalOrder] = {}
        for state in orders:
            order = ConditionalOrder.from_state(state)
            if order.order_id <= 0 or order.order_id in loaded:
                raise ValueError(f"conditional order id {order.order_id} is invalid or repeated")
            loaded[order.order_id] = order
        for order in loaded.values():
            self.add(order)

    def check_invariants(self) -> None:
        for oid, order in self._orders.items():
            assert oid == order.order_id > 0, f"trigger index corrupt at {oid}"
            assert order.order_type.is_conditional, f"order {oid} is not conditional"
            assert order.qty_lots > 0 or order.close_position, f"order {oid} has no quantity"
        rebuilt = TriggerBook()
        for order in self._orders.values():
            rebuilt._index(order)
        for name in ("_rising", "_falling"):
            for wt in WorkingType:
                assert list(getattr(self, name)[wt]) == list(getattr(rebuilt, name)[wt]), f"{name}[{wt.name}] drifted"
        for wt in WorkingType:
            assert self._tracking[wt].keys() == rebuilt._tracking[wt].keys(), f"tracking[{wt.name}] drifted"
        assert self._by_account == rebuilt._by_account, "the account index drifted"
        assert list(self._expiring) == list(rebuilt._expiring), "the expiry index drifted"


def _placement(order: ConditionalOrder) -> tuple[bool, int] | None:
    """Where a waiting order sits: ``(rising, level)`` for a level index (:class:`TriggerBook`), None for a
    trailing stop that follows every price (activated, or without an activation price)."""
    if order.order_type == OrderType.TRAILING_STOP_MARKET:
        if order.activated or order.activation_ticks == 0:
            return None
        return order.side == Side.SELL, order.activation_ticks  # SELL activates at p >= activation
    return _rises(order.order_type, order.side), order.stop_ticks


_LIMIT_KINDS = (OrderType.STOP, OrderType.TAKE_PROFIT)


def validate_conditional(cmd, inst, mark_ticks: int, last_ticks: int, now_ns: int) -> int:
    """Reject code for a conditional PlaceOrder (0 = acceptable). Checks in order: enum values, quantity,
    limit price, stop / callback / activation, min notional, GTD time, immediate trigger.

    A ``close_position`` order (STOP_MARKET / TAKE_PROFIT_MARKET, checked by the caller) carries
    ``qty_lots = 0`` and no ``reduce_only`` flag (-1102 otherwise); its quantity is decided when it fires,
    so the quantity and min-notional filters do not apply."""
    kind = OrderType(cmd.order_type)
    as_limit = kind in _LIMIT_KINDS
    if cmd.side not in (Side.BUY, Side.SELL):
        return RejectCode.INVALID_SIDE
    if as_limit and cmd.tif not in tuple(TimeInForce):
        return RejectCode.INVALID_TIF
    if cmd.stp not in tuple(STPMode) or cmd.working_type not in tuple(WorkingType) or cmd.account_id < 0:
        return RejectCode.MALFORMED
    if cmd.close_position:
        code = RejectCode.MALFORMED if cmd.qty_lots != 0 or cmd.reduce_only else RejectCode.OK
    else:
        code = check_qty(inst, cmd.qty_lots, market=not as_limit)
    if code:
        return code
    if as_limit:
        code = check_price_range(inst, cmd.price_ticks)
    elif cmd.price_ticks != 0:
        code = RejectCode.MALFORMED
    if code:
        return code
    if kind == OrderType.TRAILING_STOP_MARKET:
        code = _check_trailing(cmd, inst)
        reference_ticks = cmd.activation_ticks
    else:
        code = _check_stop(inst, cmd.stop_ticks)
        reference_ticks = cmd.price_ticks if as_limit else cmd.stop_ticks
    if code:
        return code
    code = 0 if cmd.reduce_only or cmd.close_position else check_notional(inst, reference_ticks, cmd.qty_lots)
    if code:
        return code
    if as_limit and cmd.tif == TimeInForce.GTD and cmd.expire_ns <= now_ns:
        return RejectCode.GTD_TIME_INVALID
    current = mark_ticks if cmd.working_type == WorkingType.MARK_PRICE else last_ticks
    if current:
        if kind == OrderType.TRAILING_STOP_MARKET:
            passed = cmd.activation_ticks and (
                current >= cmd.activation_ticks if cmd.side == Side.SELL else current <= cmd.activation_ticks
            )
            if passed:
                return RejectCode.INVALID_ACTIVATION_PRICE
        elif _fires_at(kind, Side(cmd.side), cmd.stop_ticks, current):
            return RejectCode.WOULD_TRIGGER_IMMEDIATELY
    return RejectCode.OK


def _rises(kind: OrderType, side: Side) -> bool:
    """Whether a stop or take-profit fires at prices at or above its stop (else at or below)."""
    return (side == Side.BUY) == (kind in (OrderType.STOP, OrderType.STOP_MARKET))


def _fires_at(kind: OrderType, side: Side, stop_ticks: int, price_ticks: int) -> bool:
    return price_ticks >= stop_ticks if _rises(kind, side) else price_ticks <= stop_ticks


def _check_stop(inst, stop_ticks: int) -> int:
    if stop_ticks <= 0:
        return RejectCode.STOP_PRICE_LESS_THAN_ZERO
    if stop_ticks > inst.max_price_ticks:
        return RejectCode.STOP_PRICE_GREATER_THAN_MAX_PRICE
    return RejectCode.OK


def _check_trailing(cmd, inst) -> int:
    if cmd.stop_ticks != 0:
        return RejectCode.MALFORMED
    if not inst.min_callback_e8 <= cmd.callback_e8 <= inst.max_callback_e8:
        return RejectCode.INVALID_CALLBACK_RATE
    if cmd.activation_ticks < 0:
        return RejectCode.STOP_PRICE_LESS_THAN_ZERO
    if cmd.activation_ticks > inst.max_price_ticks:
        return RejectCode.STOP_PRICE_GREATER_THAN_MAX_PRICE
    return RejectCode.OK
