"""The exchange: one sequencer that applies commands in order and returns events (LMAX pattern).

Stage order for every command (ARCHITECTURE "Data flow"): validate -> match -> triggers -> events.
Accounts, margin and liquidation slot in as further stages in later milestones.

Invariants after every command:

- every command is appended to the journal, accepted or not; a rejected command changes nothing else
  (the state hash is unchanged);
- order ids are assigned from one sequence, only to accepted orders, so replaying the journal
  reproduces the same ids, events and state hash on either implementation;
- simulation time never moves backwards; the engine never reads the wall clock or an unseeded random source.
"""
from __future__ import annotations

import hashlib

import msgpack

from . import _impl
from .commands import AdvanceTime, AmendOrder, CancelAll, CancelOrder, PlaceOrder, SetMarkPrice
from .enums import CancelReason, EventKind, OrderType, RejectCode, Side, TimeInForce, WorkingType, reject_message
from .events import (
    Fill, MarkPriceChanged, OrderAccepted, OrderAmended, OrderCanceled, OrderTriggered, Rejected, TimeAdvanced,
)
from .spec import Instrument
from .triggers import ConditionalOrder, TriggerBook, validate_conditional


def matching_engine_class(implementation: str | None = None):
    """The MatchingEngine class of ``implementation`` ("python" or "cython"; default: the active one)."""
    implementation = implementation or _impl.IMPLEMENTATION
    if implementation == "python":
        from .matching import MatchingEngine

        return MatchingEngine
    if implementation == "cython":
        if _impl.core is None:
            raise RuntimeError("the compiled core is not active (EXCHANGE_PUREPYTHON=1 or not built)")
        return _impl.core.MatchingEngine
    raise ValueError(f"unknown implementation {implementation!r}")


class Exchange:
    """A venue with one order book per instrument.

    ``apply(command)`` is the only way to change state; queries never change it.
    """

    def __init__(self, instruments: list[Instrument], implementation: str | None = None):
        if not instruments:
            raise ValueError("an exchange needs at least one instrument")
        self.implementation = implementation or _impl.IMPLEMENTATION
        engine_class = matching_engine_class(self.implementation)
        self.instruments = {inst.symbol: inst for inst in sorted(instruments, key=lambda i: i.symbol)}
        if len(self.instruments) != len(instruments):
            raise ValueError("duplicate instrument symbols")
        self._books = {symbol: engine_class(inst) for symbol, inst in self.instruments.items()}
        self._triggers = {symbol: TriggerBook() for symbol in self.instruments}
        self.journal: list = []
        self.now_ns = 0
        self.next_order_id = 1
        self._handlers = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            CancelAll: self._cancel_all,
            SetMarkPrice: self._set_mark,
            AdvanceTime: self._advance_time,
        }

    # -- commands ---------------------------------------------------------------------------------
    def apply(self, command) -> list:
        """Apply one command; return its events. Raises TypeError for an object that is not a command."""
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"not a command: {command!r}")
        self.journal.append(command)
        return handler(command)

    def _place(self, cmd: PlaceOrder) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        try:
            order_type = OrderType(cmd.order_type)
        except ValueError:
            return [_rejected(RejectCode.INVALID_ORDER_TYPE, cmd)]
        if cmd.close_position and order_type not in (OrderType.STOP_MARKET, OrderType.TAKE_PROFIT_MARKET):
            return [_rejected(RejectCode.MALFORMED, cmd)]
        order_id = self.next_order_id
        if order_type.is_conditional:
            return self._place_conditional(cmd, order_type, order_id)
        code = book.place(
            order_id, cmd.account_id, cmd.side, order_type, cmd.tif, cmd.price_ticks, cmd.qty_lots,
            cmd.stp, int(cmd.reduce_only), cmd.expire_ns,
        )
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        self.next_order_id += 1
        events = self._drain(cmd.symbol, order_type)
        return events + self._fire_triggers(cmd.symbol, events)

    def _place_conditional(self, cmd: PlaceOrder, order_type: OrderType, order_id: int) -> list:
        book = self._books[cmd.symbol]
        inst = self.instruments[cmd.symbol]
        code = validate_conditional(cmd, inst, book.mark(), book.last_price(), self.now_ns)
        if code:
            return [_rejected(code, cmd)]
        self.next_order_id += 1
        self._triggers[cmd.symbol].add(ConditionalOrder(
            order_id, cmd.account_id, Side(cmd.side), order_type, cmd.qty_lots, cmd.price_ticks, int(cmd.tif),
            int(cmd.stp), bool(cmd.reduce_only), bool(cmd.close_position), cmd.stop_ticks,
            WorkingType(cmd.working_type), cmd.callback_e8, cmd.activation_ticks,
            cmd.expire_ns if order_type in (OrderType.STOP, OrderType.TAKE_PROFIT) and cmd.tif == TimeInForce.GTD else 0,
        ))
        return [OrderAccepted(cmd.symbol, order_id, cmd.account_id, Side(cmd.side), order_type, cmd.price_ticks,
                              cmd.qty_lots)]

    def _cancel(self, cmd: CancelOrder) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        waiting = self._triggers[cmd.symbol].get(cmd.order_id)
        if waiting is not None:
            if waiting.account_id != cmd.account_id:
                return [_rejected(RejectCode.UNKNOWN_ORDER, cmd)]
            return [self._cancel_conditional(cmd.symbol, cmd.order_id, CancelReason.USER)]
        code = book.cancel(cmd.order_id, cmd.account_id)
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        return self._drain(cmd.symbol)

    def _amend(self, cmd: AmendOrder) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        waiting = self._triggers[cmd.symbol].get(cmd.order_id)
        if waiting is not None and waiting.account_id == cmd.account_id:
            return [_rejected(RejectCode.MODIFY_LIMIT_ONLY, cmd)]
        code = book.amend(cmd.order_id, cmd.account_id, cmd.price_ticks, cmd.qty_lots)
        if code:
            book.clear_events()
            return [_rejected(code, cmd)]
        events = self._drain(cmd.symbol)
        return events + self._fire_triggers(cmd.symbol, events)

    def _cancel_all(self, cmd: CancelAll) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        book.cancel_all(cmd.account_id)
        events = self._drain(cmd.symbol)
        triggers = self._triggers[cmd.symbol]
        events += [self._cancel_conditional(cmd.symbol, oid, CancelReason.USER) for oid in triggers.orders_of(cmd.account_id)]
        return events

    def _set_mark(self, cmd: SetMarkPrice) -> list:
        book = self._books.get(cmd.symbol)
        if book is None:
            return [_rejected(RejectCode.INVALID_SYMBOL, cmd)]
        inst = self.instruments[cmd.symbol]
        if not isinstance(cmd.mark_ticks, int) or not 1 <= cmd.mark_ticks <= inst.max_price_ticks:
            return [_rejected(RejectCode.MALFORMED, cmd)]
        book.set_mark(cmd.mark_ticks)
        events = [MarkPriceChanged(cmd.symbol, cmd.mark_ticks)]
        fired = self._triggers[cmd.symbol].observe(WorkingType.MARK_PRICE, cmd.mark_ticks)
        return events + self._run_triggered(cmd.symbol, fired)

    def _advance_time(self, cmd: AdvanceTime) -> list:
        if not isinstance(cmd.now_ns, int) or cmd.now_ns < self.now_ns:
            return [_rejected(RejectCode.MALFORMED, cmd)]
        self.now_ns = cmd.now_ns
        events: list = [TimeAdvanced(cmd.now_ns)]
        for symbol, book in self._books.items():
            book.set_time(cmd.now_ns)
            events += self._drain(symbol)
            for oid in self._triggers[symbol].expired(cmd.now_ns):
                events.append(self._cancel_conditional(symbol, oid, CancelReason.GTD_EXPIRED))
        return events

    # -- triggers ---------------------------------------------------------------------------------
    def _fire_triggers(self, symbol: str, events: list) -> list:
        """Feed every fill price of ``events`` to last-price triggers; run the orders that fire."""
        return self._run_triggered(symbol, self._observe_fills(symbol, events))

    def _observe_fills(self, symbol: str, events: list) -> list[ConditionalOrder]:
        """Feed each fill price, in order, to the last-price triggers; the orders that fire."""
        triggers = self._triggers[symbol]
        return [
            order
            for event in events if isinstance(event, Fill)
            for order in triggers.observe(WorkingType.CONTRACT_PRICE, event.price_ticks)
        ]

    def _run_triggered(self, symbol: str, fired: list[ConditionalOrder]) -> list:
        """Place fired orders in ascending id; fills they cause may fire more (a cascade, which ends
        because each conditional order fires at most once)."""
        events: list = []
        book = self._books[symbol]
        fired = sorted(fired, key=lambda o: o.order_id)
        while fired:
            order = fired.pop(0)
            events.append(OrderTriggered(symbol, order.order_id, order.account_id, order.fired_at_ticks))
            as_limit = order.order_type in (OrderType.STOP, OrderType.TAKE_PROFIT)
            code = book.place(
                order.order_id, order.account_id, order.side, OrderType.LIMIT if as_limit else OrderType.MARKET,
                order.tif if as_limit else TimeInForce.IOC, order.price_ticks if as_limit else 0, order.qty_lots,
                order.stp, int(order.reduce_only), order.expire_ns,
            )
            if code:
                book.clear_events()
                events.append(Rejected(RejectCode(code), reject_message(code), symbol, order.account_id, order.order_id))
                continue
            placed = self._drain(symbol, skip_accepted=True)
            events += placed
            fired = sorted(fired + self._observe_fills(symbol, placed), key=lambda o: o.order_id)
        return events

    def _cancel_conditional(self, symbol: str, order_id: int, reason: CancelReason) -> OrderCanceled:
        order = self._triggers[symbol].remove(order_id)
        return OrderCanceled(symbol, order_id, order.account_id, order.side, order.price_ticks, order.qty_lots, reason)

    # -- events -----------------------------------------------------------------------------------
    def _drain(self, symbol: str, order_type: OrderType = OrderType.LIMIT, skip_accepted: bool = False) -> list:
        """Turn the matching engine's rows into event records (and empty its buffer)."""
        events = []
        for row in self._books[symbol].take_events().tolist():
            kind = row[0]
            if kind == EventKind.FILL:
                events.append(Fill(symbol, row[4], row[5], row[1], row[2], Side(row[3]), row[6], row[8], row[9],
                                   row[10], row[12], row[11]))
            elif kind == EventKind.CANCELED:
                events.append(OrderCanceled(symbol, row[1], row[2], Side(row[3]), row[4], row[5], CancelReason(row[7])))
            elif kind == EventKind.ACCEPTED:
                if not skip_accepted:
                    events.append(OrderAccepted(symbol, row[1], row[2], Side(row[3]), order_type, row[4], row[5]))
            elif kind == EventKind.AMENDED:
                events.append(OrderAmended(symbol, row[1], row[2], Side(row[3]), row[4], row[6], bool(row[7])))
            else:  # a REJECTED row only appears with a non-zero return code, handled by the caller
                raise AssertionError(f"unexpected matching row {row}")
        return events

    # -- queries ----------------------------------------------------------------------------------
    def book(self, symbol: str):
        """The matching engine of ``symbol`` (for read-only queries: depth, best_bid, order, ...)."""
        return self._books[symbol]

    def open_orders(self, account_id: int, symbol: str) -> list[int]:
        """Open order ids (resting and conditional) of an account in a symbol, ascending."""
        return sorted(self._books[symbol].orders_of(account_id) + self._triggers[symbol].orders_of(account_id))

    def conditional_order(self, symbol: str, order_id: int) -> ConditionalOrder | None:
        return self._triggers[symbol].get(order_id)

    def canonical_state(self) -> list:
        """Everything that defines the exchange's future behaviour, in a canonical order."""
        return [
            ("now", self.now_ns),
            ("next_order_id", self.next_order_id),
            *(
                (symbol, self._books[symbol].canonical_state(), self._triggers[symbol].canonical_state())
                for symbol in self.instruments
            ),
        ]

    def state_hash(self) -> str:
        """SHA-256 of the msgpack encoding of :meth:`canonical_state`; equal for both implementations."""
        return hashlib.sha256(msgpack.packb(self.canonical_state(), use_bin_type=True)).hexdigest()

    def check_invariants(self) -> None:
        """Raise AssertionError if any book or trigger book is inconsistent."""
        for symbol in self.instruments:
            self._books[symbol].check_invariants()
            self._triggers[symbol].check_invariants()
            assert self._books[symbol].event_count() == 0, f"{symbol}: undrained matching events"


def _rejected(code: int, cmd) -> Rejected:
    return Rejected(
        RejectCode(code), reject_message(code), getattr(cmd, "symbol", ""), getattr(cmd, "account_id", 0),
        getattr(cmd, "order_id", 0),
    )
