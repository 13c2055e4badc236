"""The naive oracle of :class:`exchange.orders.triggers.TriggerBook`: the same answers by walking every waiting
order (the book before it was indexed). ``tests/test_trigger_index.py`` holds the indexed book to it after
every step, and ``bench/test_bench_triggers.py`` measures the two side by side and checks they end alike."""
from __future__ import annotations

from exchange.orders.triggers import ConditionalOrder


class LinearTriggerBook:
    """The interface of ``TriggerBook``, every query a pass over all waiting orders: O(n) each."""

    def __init__(self):
        self._orders: dict[int, ConditionalOrder] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: int) -> bool:
        return order_id in self._orders

    def get(self, order_id: int) -> ConditionalOrder | None:
        return self._orders.get(order_id)

    def add(self, order: ConditionalOrder) -> None:
        assert order.order_id not in self._orders
        self._orders[order.order_id] = order

    def remove(self, order_id: int) -> ConditionalOrder:
        return self._orders.pop(order_id)

    def orders_of(self, account_id: int) -> list[int]:
        return sorted(oid for oid, order in self._orders.items() if order.account_id == account_id)

    def expired(self, now_ns: int) -> list[int]:
        due = [(o.expire_ns, oid) for oid, o in self._orders.items() if o.expire_ns and o.expire_ns <= now_ns]
        return [oid for _, oid in sorted(due)]

    def observe(self, working_type, price_ticks: int) -> list[ConditionalOrder]:
        fired = [order for order in self._orders.values()
                 if order.working_type == working_type and order.observe(price_ticks)]
        for order in fired:
            order.fired_at_ticks = price_ticks
            del self._orders[order.order_id]
        return sorted(fired, key=lambda order: order.order_id)

    def canonical_state(self) -> list[tuple]:
        return [self._orders[oid].as_state() for oid in sorted(self._orders)]

    def snapshot_state(self) -> list[tuple]:
        return [(*order.as_state(), order.fired_at_ticks) for order in self._orders.values()]

    def restore_state(self, orders) -> None:
        assert not self._orders
        for state in orders:
            order = ConditionalOrder.from_state(state)
            self._orders[order.order_id] = order

    def check_invariants(self) -> None:
        pass  # (nothing beside the dict to keep in step)
