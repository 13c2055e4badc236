"""The reference limit order book of one instrument (pure Python, sortedcontainers).

Structure:

- per side, a ``SortedDict`` price_ticks -> :class:`Level`, keyed so that index 0 is the best price
  (highest bid, lowest ask);
- a level is a FIFO of orders (``OrderedDict`` order_id -> :class:`Order`, oldest first) with its
  aggregate ``total_lots``; its order count is ``len(level.orders)``;
- an order-id index, a per-account index (account_id -> set of order ids) and a GTD expiry index
  (``SortedList`` of ``(expire_ns, order_id)``).

Invariants (checked by :meth:`Book.check_invariants`):

- no empty level; every order's ``leaves_lots > 0`` and it sits on its own side at its own price;
- a level's ``total_lots`` is the sum of its orders' leaves;
- the id, account and expiry indexes hold exactly the orders in the levels (the expiry index holds the
  orders with ``expire_ns > 0``);
- the book is not crossed: best bid < best ask when both sides are non-empty.

The book does not match or validate; :mod:`exchange.orders.matching` does. Complexity with L levels per side:
add O(log L) (O(1) when the level exists), remove / reduce O(1) plus O(log L) when a level empties,
best price O(1), cancel by id O(1).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from sortedcontainers import SortedDict, SortedList

from ..enums import Side


class Order:
    """A resting (or entering) order. Prices in ticks, quantities in lots, time in ns.

    ``expire_ns`` is 0 unless the order is GTD; ``reduce_only`` is 0 or 1.
    """

    __slots__ = ("order_id", "account_id", "side", "price_ticks", "leaves_lots", "tif", "stp", "reduce_only",
                 "expire_ns")

    def __init__(self, order_id: int, account_id: int, side: int, price_ticks: int, leaves_lots: int, tif: int,
                 stp: int, reduce_only: int, expire_ns: int):
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.price_ticks = price_ticks
        self.leaves_lots = leaves_lots
        self.tif = tif
        self.stp = stp
        self.reduce_only = reduce_only
        self.expire_ns = expire_ns

    def as_tuple(self) -> tuple:
        """``(order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only, expire_ns)``."""
        return (self.order_id, self.account_id, self.side, self.price_ticks, self.leaves_lots, self.tif, self.stp,
                self.reduce_only, self.expire_ns)

    def __repr__(self) -> str:
        return f"Order{self.as_tuple()}"


class Level:
    """All resting orders at one price of one side, oldest first."""

    __slots__ = ("price_ticks", "orders", "total_lots")

    def __init__(self, price_ticks: int):
        self.price_ticks = price_ticks
        self.orders: OrderedDict[int, Order] = OrderedDict()
        self.total_lots = 0

    def oldest(self) -> Order:
        """The order first in the queue. O(1)."""
        return next(iter(self.orders.values()))


def _priority_key(side: int):
    """Sort key of a side's SortedDict so that index 0 is the best price."""
    return (lambda price_ticks: -price_ticks) if side == Side.BUY else None


class Book:
    """Price-time priority book: levels per side plus id, account and expiry indexes."""

    def __init__(self):
        self._sides = {Side.BUY: SortedDict(_priority_key(Side.BUY)), Side.SELL: SortedDict()}
        self._orders: dict[int, Order] = {}
        self._by_account: dict[int, set[int]] = {}
        self._expiries = SortedList()

    # -- changes ---------------------------------------------------------------------------------
    def add(self, order: Order) -> None:
        """Append ``order`` at the back of its level's queue (creating the level). O(log L)."""
        levels = self._sides[order.side]
        level = levels.get(order.price_ticks)
        if level is None:
            level = levels[order.price_ticks] = Level(order.price_ticks)
        level.orders[order.order_id] = order
        level.total_lots += order.leaves_lots
        self._orders[order.order_id] = order
        self._by_account.setdefault(order.account_id, set()).add(order.order_id)
        if order.expire_ns:
            self._expiries.add((order.expire_ns, order.order_id))

    def remove(self, order_id: int) -> Order:
        """Take the order out of the book and every index; returns it with its leaves unchanged.
        O(1), plus O(log L) when its level empties. Raises ``KeyError`` if it is not resting."""
        order = self._orders.pop(order_id)
        levels = self._sides[order.side]
        level = levels[order.price_ticks]
        del level.orders[order_id]
        level.total_lots -= order.leaves_lots
        if not level.orders:
            del levels[order.price_ticks]
        account_ids = self._by_account[order.account_id]
        account_ids.discard(order_id)
        if not account_ids:
            del self._by_account[order.account_id]
        if order.expire_ns:
            self._expiries.remove((order.expire_ns, order_id))
        return order

    def reduce(self, order_id: int, lots: int) -> int:
        """Reduce the order's leaves by ``lots`` in place (queue priority kept); remove it when they reach 0.
        Returns the remaining leaves. Requires ``0 < lots <= leaves``. O(1) unless the order leaves."""
        order = self._orders[order_id]
        if order.leaves_lots == lots:
            self.remove(order_id)
            order.leaves_lots = 0
            return 0
        order.leaves_lots -= lots
        self._sides[order.side][order.price_ticks].total_lots -= lots
        return order.leaves_lots

    # -- queries ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def best_level(self, side: int) -> Level | None:
        """The best level of ``side`` or ``None`` when the side is empty. O(1)."""
        levels = self._sides[side]
        return levels.peekitem(0)[1] if levels else None

    def best_price(self, side: int) -> int:
        """Best price of ``side`` in ticks, 0 when the side is empty. O(1)."""
        level = self.best_level(side)
        return level.price_ticks if level is not None else 0

    def levels(self, side: int) -> Iterator[Level]:
        """The levels of ``side``, best price first."""
        return iter(self._sides[side].values())

    def orders_in_priority(self, side: int) -> Iterator[Order]:
        """The orders of ``side`` in matching priority: best price first, oldest first within a level."""
        for level in self.levels(side):
            yield from level.orders.values()

    def depth(self, side: int, levels: int) -> list[tuple[int, int, int]]:
        """Up to ``levels`` levels of ``side`` as ``(price_ticks, total_lots, order_count)``, best first."""
        result = []
        for level in self.levels(side):
            if len(result) >= levels:
                break
            result.append((level.price_ticks, level.total_lots, len(level.orders)))
        return result

    def order_ids_of(self, account_id: int) -> list[int]:
        """Resting order ids of an account, ascending. O(k log k) for k orders."""
        return sorted(self._by_account.get(account_id, ()))

    def expiring(self, now_ns: int) -> list[int]:
        """Ids of the orders with ``0 < expire_ns <= now_ns``, in ascending (expire_ns, order_id)."""
        return [order_id for _, order_id in self._expiries.irange(maximum=(now_ns, float("inf")))]

    def next_expiry_ns(self) -> int:
        """The earliest ``expire_ns`` in the expiry index, 0 when it is empty. O(1)."""
        return self._expiries[0][0] if self._expiries else 0

    # -- invariants ------------------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Raise ``AssertionError`` naming the first broken invariant (see the module docstring). O(n)."""
        seen: dict[int, Order] = {}
        for side, levels in self._sides.items():
            for price_ticks, level in levels.items():
                _check_level(side, price_ticks, level)
                seen.update(level.orders)
        assert seen.keys() == self._orders.keys(), "order-id index disagrees with the levels"
        assert all(seen[i] is self._orders[i] for i in seen), "order-id index holds a different object"
        by_account: dict[int, set[int]] = {}
        for order in seen.values():
            by_account.setdefault(order.account_id, set()).add(order.order_id)
        assert by_account == self._by_account, "account index disagrees with the levels"
        expiries = sorted((o.expire_ns, o.order_id) for o in seen.values() if o.expire_ns)
        assert expiries == list(self._expiries), "expiry index disagrees with the levels"
        bid, ask = self.best_price(Side.BUY), self.best_price(Side.SELL)
        assert not (bid and ask and bid >= ask), f"book crossed: best bid {bid} >= best ask {ask}"


def _check_level(side: int, price_ticks: int, level: Level) -> None:
    assert level.orders, f"empty level {price_ticks} on side {side}"
    assert level.price_ticks == price_ticks, f"level {level.price_ticks} stored under price {price_ticks}"
    for order_id, order in level.orders.items():
        assert order.order_id == order_id, f"order {order.order_id} stored under id {order_id}"
        assert order.leaves_lots > 0, f"order {order_id} has leaves {order.leaves_lots}"
        assert order.side == side, f"order {order_id} of side {order.side} rests on side {side}"
        assert order.price_ticks == price_ticks, f"order {order_id} at {order.price_ticks} rests at {price_ticks}"
    total = sum(order.leaves_lots for order in level.orders.values())
    assert level.total_lots == total, f"level {price_ticks}: aggregate {level.total_lots} != orders' sum {total}"
