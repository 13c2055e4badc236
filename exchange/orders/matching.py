"""The reference matching engine of one instrument: the executable form of ``docs/matching.md``.

The compiled ``exchange.orders._matching.MatchingEngine`` implements the same contract and must produce the same
results and event rows; this module favours obviousness over speed.

Units: prices in ticks, quantities in lots, money in units, rates ×10⁸, time in ns (rules §1).
Rounding: the price band is ``floor(mark × up / 1e8)`` for buys and ``ceil(mark × down / 1e8)`` for sells;
fees are ``ceil(notional × rate / 1e8)`` toward +∞ for either sign (a rebate rounds toward zero).

Invariants (``check_invariants``): those of :class:`exchange.orders.book.Book` (not crossed, no empty level,
leaves > 0, aggregates and indexes consistent) plus: every resting order is a valid side, has a TIF in
{GTC, GTD, GTX}, a price within [min_price, max_price], and a GTD order's ``expire_ns`` is after ``now``.
A rejected command appends one REJECTED row and changes no other state.
"""
from __future__ import annotations

import numpy as np

from .book import Book, Order
from ..commands import COMMAND_DTYPE
from ..enums import CancelReason, CommandKind, EventKind, OrderType, RejectCode, Side, STPMode, TimeInForce
from ..events import EVENT_DTYPE
from .filters import check_notional, check_price_range, check_qty
from ..spec import Instrument
from ..units import E8, mul_div_ceil, mul_div_floor

_RESTING_TIFS = (TimeInForce.GTC, TimeInForce.GTD, TimeInForce.GTX)
_IMMEDIATE_TIFS = (TimeInForce.IOC, TimeInForce.FOK)


def _opposite(side: int) -> int:
    return Side.SELL if side == Side.BUY else Side.BUY


def _crosses(taker_side: int, level_price_ticks: int, limit_ticks: int | None) -> bool:
    """Whether a maker level at ``level_price_ticks`` is within a taker's limit (``None`` = unlimited)."""
    if limit_ticks is None:
        return True
    if taker_side == Side.BUY:
        return level_price_ticks <= limit_ticks
    return level_price_ticks >= limit_ticks


class MatchingEngine:
    """One instrument's order book with price-time priority matching (pure-Python reference).

    Every command returns an int (a reject code, 0 = accepted, or a count) and appends rows of
    ``EVENT_DTYPE`` to the event buffer; see ``docs/matching.md`` for the exact rows.
    """

    def __init__(self, instrument: Instrument):
        self._instrument = instrument
        self._book = Book()
        self._events: list[tuple[int, ...]] = []
        self._mark_ticks = 0
        self._now_ns = 0
        self._last_price_ticks = 0

    # ==== commands ==============================================================================
    def place(self, order_id: int, account_id: int, side: int, order_type: int, tif: int, price_ticks: int,
              qty_lots: int, stp: int, reduce_only: int, expire_ns: int) -> int:
        """Validate, then accept and match a LIMIT or MARKET order. Returns the reject code (0 = accepted).

        O(log L + fills) for L price levels; a FOK order first walks the crossing orders once more.
        """
        order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp, expire_ns = map(
            int, (order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp, expire_ns))
        reduce_only = 1 if reduce_only else 0
        is_market = order_type == OrderType.MARKET
        code = (
            self._check_place_fields(order_id, account_id, side, order_type, tif, price_ticks, stp)
            or (RejectCode.DUPLICATE_ORDER_ID if order_id in self._book else 0)
            or self._check_qty(qty_lots, is_market)
            or (0 if is_market else self._check_price(side, price_ticks))
            or (0 if reduce_only else self._check_notional(self._mark_ticks if is_market else price_ticks, qty_lots))
            or (0 if is_market else self._check_tif_rules(order_id, account_id, side, tif, price_ticks, qty_lots,
                                                          stp, expire_ns))
        )
        if code:
            self._emit(EventKind.REJECTED, order_id, account_id, side, price_ticks, qty_lots, code=code)
            return int(code)
        expire_ns = expire_ns if not is_market and tif == TimeInForce.GTD else 0
        taker = Order(order_id, account_id, side, price_ticks, qty_lots, tif, stp, reduce_only, expire_ns)
        self._emit(EventKind.ACCEPTED, order_id, account_id, side, price_ticks, qty_lots, leaves_lots=qty_lots)
        self._execute(taker, is_market)
        return 0

    def cancel(self, order_id: int, account_id: int) -> int:
        """Cancel a resting order of ``account_id``: 0, or -2011 when it is not resting under that account. O(1)."""
        order_id, account_id = int(order_id), int(account_id)
        order = self._book.get(order_id)
        if order is None or order.account_id != account_id:
            self._emit(EventKind.REJECTED, order_id, account_id, 0, 0, 0, code=RejectCode.UNKNOWN_ORDER)
            return int(RejectCode.UNKNOWN_ORDER)
        self._cancel_resting(order_id, CancelReason.USER)
        return 0

    def amend(self, order_id: int, account_id: int, price_ticks: int, qty_lots: int) -> int:
        """Change a resting order's price and/or remaining quantity (``qty_lots`` = new leaves).

        A pure decrease keeps queue priority (AMENDED code 1); anything else re-enters the order as a taker at
        its new price (AMENDED code 0), after which it rests at the back of its level. Returns the reject code.
        """
        order_id, account_id, price_ticks, qty_lots = map(int, (order_id, account_id, price_ticks, qty_lots))
        code = self._check_amend(order_id, account_id, price_ticks, qty_lots)
        if code:
            self._emit(EventKind.REJECTED, order_id, account_id, 0, price_ticks, qty_lots, code=code)
            return int(code)
        order = self._book.get(order_id)
        if price_ticks == order.price_ticks and qty_lots < order.leaves_lots:
            self._book.reduce(order_id, order.leaves_lots - qty_lots)
            self._emit(EventKind.AMENDED, order_id, account_id, order.side, price_ticks, 0, leaves_lots=qty_lots,
                       code=1)
            return 0
        self._book.remove(order_id)
        order.price_ticks, order.leaves_lots = price_ticks, qty_lots
        self._emit(EventKind.AMENDED, order_id, account_id, order.side, price_ticks, 0, leaves_lots=qty_lots, code=0)
        self._execute(order, is_market=False)
        return 0

    def shrink(self, order_id: int, leaves_lots: int) -> int:
        """Reduce a resting order's leaves to ``leaves_lots`` (``0 < leaves_lots <`` its leaves) in place, queue
        priority kept, with no filters: the engine's own reduce-only trim, not a trader's amend (a band or
        min-notional filter must not keep a reduce-only order larger than its position). Emits AMENDED
        (priority kept). Returns 0, or -2013 when the order does not rest or this is not a decrease. O(1)."""
        order = self._book.get(int(order_id))
        if order is None or not 0 < leaves_lots < order.leaves_lots:
            return int(RejectCode.NO_SUCH_ORDER)
        self._book.reduce(order.order_id, order.leaves_lots - leaves_lots)
        self._emit(EventKind.AMENDED, order.order_id, order.account_id, order.side, order.price_ticks, 0,
                   leaves_lots=leaves_lots, code=1)
        return 0

    def cancel_all(self, account_id: int) -> int:
        """Cancel every resting order of the account in ascending order_id; returns how many. O(k log k)."""
        order_ids = self._book.order_ids_of(int(account_id))
        for order_id in order_ids:
            self._cancel_resting(order_id, CancelReason.USER)
        return len(order_ids)

    def set_mark(self, mark_ticks: int) -> None:
        """Set the mark price (ticks, >= 1, validated by the caller); it drives the price band."""
        self._mark_ticks = int(mark_ticks)

    def set_time(self, now_ns: int) -> int:
        """Advance time (never backward, validated by the caller) and expire GTD orders with
        ``expire_ns <= now`` in ascending (expire_ns, order_id). Returns how many expired. O(e log n)."""
        self._now_ns = int(now_ns)
        expired = self._book.expiring(self._now_ns)
        for order_id in expired:
            self._cancel_resting(order_id, CancelReason.GTD_EXPIRED)
        return len(expired)

    def next_expiry_ns(self) -> int:
        """The earliest ``expire_ns`` of a resting GTD order, 0 when none rests. O(1)."""
        return self._book.next_expiry_ns()

    def run_batch(self, commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run rows of ``COMMAND_DTYPE`` in order, exactly as the per-command methods would.

        Returns ``(results int64, events)`` and leaves the event buffer empty; the events are
        ``take_events()`` after the batch (rows buffered before the call come first). Raises ``TypeError``
        for another dtype and ``ValueError`` for an unknown ``kind``, before any row runs.
        """
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError(f"run_batch needs an array of COMMAND_DTYPE, got {commands.dtype}")
        unknown = set(commands["kind"].tolist()) - {int(kind) for kind in CommandKind}
        if unknown:
            raise ValueError(f"unknown command kind(s) {sorted(unknown)}")
        results = np.array([apply_row(self, row) for row in commands.tolist()], dtype=np.int64)
        return results, self.take_events()

    # ==== event buffer ==========================================================================
    def events(self) -> np.ndarray:
        """A copy of the rows appended since the last clear, as an ``EVENT_DTYPE`` array."""
        return np.array(self._events, dtype=EVENT_DTYPE) if self._events else np.empty(0, dtype=EVENT_DTYPE)

    def clear_events(self) -> None:
        self._events.clear()

    def take_events(self) -> np.ndarray:
        """``events()`` then ``clear_events()``."""
        rows = self.events()
        self.clear_events()
        return rows

    def event_count(self) -> int:
        return len(self._events)

    # ==== queries ===============================================================================
    def best_bid(self) -> int:
        """Best bid in ticks, 0 when there is none. O(1)."""
        return self._book.best_price(Side.BUY)

    def best_ask(self) -> int:
        """Best ask in ticks, 0 when there is none. O(1)."""
        return self._book.best_price(Side.SELL)

    def last_price(self) -> int:
        """Price of the last fill in ticks, 0 before the first fill."""
        return self._last_price_ticks

    def mark(self) -> int:
        return self._mark_ticks

    def now(self) -> int:
        return self._now_ns

    def order(self, order_id: int) -> tuple | None:
        """``(order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only, expire_ns)`` of a
        resting order, or ``None``."""
        order = self._book.get(order_id)
        return order.as_tuple() if order is not None else None

    def order_count(self) -> int:
        return len(self._book)

    def orders_of(self, account_id: int) -> list[int]:
        """Resting order ids of an account, ascending."""
        return self._book.order_ids_of(account_id)

    def depth(self, levels: int) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """``(bids, asks)``: up to ``levels`` levels per side as ``(price_ticks, total_lots, order_count)``,
        best first."""
        return self._book.depth(Side.BUY, levels), self._book.depth(Side.SELL, levels)

    def canonical_state(self) -> list[tuple]:
        """``("mark", m), ("now", t), ("last", p)``, then every resting order tuple: bids best to worst, then
        asks best to worst, each level in queue order. Equal across implementations for equal histories."""
        state: list[tuple] = [("mark", self._mark_ticks), ("now", self._now_ns), ("last", self._last_price_ticks)]
        for side in (Side.BUY, Side.SELL):
            state.extend(order.as_tuple() for order in self._book.orders_in_priority(side))
        return state

    # ==== snapshots (exchange/persistence/snapshot.py, docs/snapshot.md) ====================================
    def snapshot_state(self) -> tuple:
        """``(mark, now, last, orders)``: everything that decides the engine's future results (the event
        buffer aside); ``orders`` are the resting order tuples (:meth:`order` layout) in matching priority,
        bids best to worst then asks best to worst, oldest first within a level. Equal across
        implementations for equal histories; :meth:`restore_state` inverts it."""
        orders = [order.as_tuple() for side in (Side.BUY, Side.SELL) for order in self._book.orders_in_priority(side)]
        return self._mark_ticks, self._now_ns, self._last_price_ticks, orders

    def restore_state(self, mark_ticks: int, now_ns: int, last_ticks: int, orders) -> None:
        """Load a :meth:`snapshot_state` into this engine, which must hold no order: set the mark, the time
        and the last price as they are (no expiry), then :meth:`restore_order` each order in turn (so the
        given order is the FIFO order within each level). Raises ValueError for a book that is not empty, a
        negative price or time, or an order :meth:`restore_order` refuses (the engine is then partly loaded:
        discard it)."""
        mark_ticks, now_ns, last_ticks = int(mark_ticks), int(now_ns), int(last_ticks)
        if len(self._book):
            raise ValueError("restore_state needs an empty book")
        if mark_ticks < 0 or now_ns < 0 or last_ticks < 0:
            raise ValueError("mark, time and last price must be >= 0")
        self._mark_ticks, self._now_ns, self._last_price_ticks = mark_ticks, now_ns, last_ticks
        for order in orders:
            self.restore_order(*order)

    def restore_order(self, order_id: int, account_id: int, side: int, price_ticks: int, leaves_lots: int, tif: int,
                      stp: int, reduce_only: int, expire_ns: int) -> None:
        """Insert a resting order exactly as given at the back of its level: no matching, no filters, no
        event. For restoring snapshots only. Raises ValueError unless the order could rest here: a new id > 0,
        account >= 0, side BUY / SELL, TIF GTC / GTD / GTX, a valid STP mode, reduce_only 0 / 1, leaves > 0,
        a price within the instrument's range that does not cross the opposite side, and ``expire_ns`` after
        the engine's time for GTD (0 otherwise). O(log L)."""
        values = tuple(map(int, (order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only,
                                 expire_ns)))
        crosses = values[2] in (Side.BUY, Side.SELL) and self._would_take(values[2], values[3])
        problem = _restore_problem(self._instrument, self._now_ns, values, values[0] in self._book, crosses)
        if problem:
            raise ValueError(f"cannot restore order {values[0]}: {problem}")
        self._book.add(Order(*values))

    def __reduce__(self):
        """Pickle through :meth:`snapshot_state` (plus the event rows not yet taken)."""
        return _rebuild_engine, (self._instrument, self.snapshot_state(), list(self._events))

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` naming the first broken invariant (module docstring). O(n)."""
        self._book.check_invariants()
        spec = self._instrument
        for side in (Side.BUY, Side.SELL):
            for order in self._book.orders_in_priority(side):
                assert order.tif in _RESTING_TIFS, f"order {order.order_id} rests with TIF {order.tif}"
                assert spec.min_price_ticks <= order.price_ticks <= spec.max_price_ticks, (
                    f"order {order.order_id} rests at {order.price_ticks}, outside the instrument's price range")
                assert order.tif != TimeInForce.GTD or order.expire_ns > self._now_ns, (
                    f"GTD order {order.order_id} expired at {order.expire_ns} but rests at {self._now_ns}")

    # ==== internals: validation (first failing check wins) ======================================
    @staticmethod
    def _check_place_fields(order_id, account_id, side, order_type, tif, price_ticks, stp) -> int:
        """Place step 1: enumerations and identifiers."""
        if side not in (Side.BUY, Side.SELL):
            return RejectCode.INVALID_SIDE
        if order_type not in (OrderType.LIMIT, OrderType.MARKET):
            return RejectCode.INVALID_ORDER_TYPE
        if order_type == OrderType.LIMIT and not TimeInForce.GTC <= tif <= TimeInForce.GTD:
            return RejectCode.INVALID_TIF
        if not STPMode.NONE <= stp <= STPMode.EXPIRE_BOTH or order_id <= 0 or account_id < 0:
            return RejectCode.MALFORMED
        if order_type == OrderType.MARKET and price_ticks != 0:
            return RejectCode.MALFORMED
        return 0

    def _check_qty(self, qty_lots: int, is_market: bool) -> int:
        """Place step 3 (also amend, as LIMIT)."""
        return check_qty(self._instrument, qty_lots, is_market)

    def _check_price(self, side: int, price_ticks: int) -> int:
        """Place steps 4-5 for a LIMIT price (also amend): instrument range, then the band around the mark."""
        code = check_price_range(self._instrument, price_ticks)
        if code or not self._mark_ticks:
            return code
        if side == Side.BUY and price_ticks > self._band_limit(Side.BUY):
            return RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP
        if side == Side.SELL and price_ticks < self._band_limit(Side.SELL):
            return RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN
        return 0

    def _check_notional(self, price_ticks: int, qty_lots: int) -> int:
        """Place step 6: ``price × qty × K >= min_notional``; a zero price (market without a mark) skips it."""
        return check_notional(self._instrument, price_ticks, qty_lots)

    def _check_tif_rules(self, order_id, account_id, side, tif, price_ticks, qty_lots, stp, expire_ns) -> int:
        """Place steps 7-9 for a LIMIT order: GTD in the future, GTX does not take, FOK fills completely."""
        if tif == TimeInForce.GTD and expire_ns <= self._now_ns:
            return RejectCode.GTD_TIME_INVALID
        if tif == TimeInForce.GTX and self._would_take(side, price_ticks):
            return RejectCode.POST_ONLY_WOULD_TAKE
        if tif == TimeInForce.FOK:
            probe = Order(order_id, account_id, side, price_ticks, qty_lots, tif, stp, 0, 0)
            if self._fillable_lots(probe, qty_lots) < qty_lots:
                return RejectCode.FOK_NOT_FILLED
        return 0

    def _check_amend(self, order_id: int, account_id: int, price_ticks: int, qty_lots: int) -> int:
        """Amend checks in contract order: ownership, qty, price, notional, no change, post-only."""
        order = self._book.get(order_id)
        if order is None or order.account_id != account_id:
            return RejectCode.NO_SUCH_ORDER
        return (
            self._check_qty(qty_lots, is_market=False)
            or self._check_price(order.side, price_ticks)
            or (0 if order.reduce_only else self._check_notional(price_ticks, qty_lots))
            or (RejectCode.NO_NEED_TO_MODIFY
                if (price_ticks, qty_lots) == (order.price_ticks, order.leaves_lots) else 0)
            or (RejectCode.POST_ONLY_WOULD_TAKE
                if order.tif == TimeInForce.GTX and self._would_take(order.side, price_ticks) else 0)
        )

    def _would_take(self, side: int, price_ticks: int) -> bool:
        """Whether a LIMIT at ``price_ticks`` crosses the best opposite price."""
        best = self._book.best_price(_opposite(side))
        return best != 0 and _crosses(side, best, price_ticks)

    def _fillable_lots(self, taker: Order, needed_lots: int) -> int:
        """Lots a taker could fill now (stops counting at ``needed_lots``), honouring its STP mode:
        an own maker is skipped under EXPIRE_MAKER and ends the walk under EXPIRE_TAKER / EXPIRE_BOTH."""
        fillable = 0
        for maker in self._book.orders_in_priority(_opposite(taker.side)):
            if fillable >= needed_lots or not _crosses(taker.side, maker.price_ticks, taker.price_ticks):
                break
            if self._is_self_trade(taker, maker):
                if taker.stp == STPMode.EXPIRE_MAKER:
                    continue
                break
            fillable += maker.leaves_lots
        return fillable

    def _band_limit(self, side: int) -> int:
        """Price band around the mark (mark must be set): BUY ``floor(mark × up)``, SELL ``ceil(mark × down)``."""
        spec = self._instrument
        if side == Side.BUY:
            return mul_div_floor(self._mark_ticks, spec.band_up_e8, E8)
        return mul_div_ceil(self._mark_ticks, spec.band_down_e8, E8)

    # ==== internals: execution ==================================================================
    def _execute(self, taker: Order, is_market: bool) -> None:
        """Match an accepted taker, then rest, or expire its remainder (IOC / FOK / MARKET)."""
        if is_market:
            limit = self._band_limit(taker.side) if self._mark_ticks else None
        else:
            limit = taker.price_ticks
        if self._match(taker, limit) or taker.leaves_lots == 0:
            return
        if is_market:
            stopped_at_band = self._book.best_level(_opposite(taker.side)) is not None
            self._cancel_taker(taker, CancelReason.PRICE_BAND if stopped_at_band else CancelReason.NO_LIQUIDITY)
        elif taker.tif in _IMMEDIATE_TIFS:
            self._cancel_taker(taker, CancelReason.IOC)
        else:
            self._book.add(taker)

    def _match(self, taker: Order, limit_ticks: int | None) -> bool:
        """Fill the taker against the oldest crossing makers until it is done or nothing crosses.
        Returns True when self-trade prevention expired the taker."""
        opposite = _opposite(taker.side)
        while taker.leaves_lots > 0:
            level = self._book.best_level(opposite)
            if level is None or not _crosses(taker.side, level.price_ticks, limit_ticks):
                return False
            maker = level.oldest()
            if not self._is_self_trade(taker, maker):
                self._fill(taker, maker)
            elif taker.stp == STPMode.EXPIRE_MAKER:
                self._cancel_resting(maker.order_id, CancelReason.STP_MAKER)
            else:
                if taker.stp == STPMode.EXPIRE_BOTH:
                    self._cancel_resting(maker.order_id, CancelReason.STP_MAKER)
                self._cancel_taker(taker, CancelReason.STP_TAKER)
                return True
        return False

    @staticmethod
    def _is_self_trade(taker: Order, maker: Order) -> bool:
        """Same account and the taker's STP mode is not NONE."""
        return maker.account_id == taker.account_id and taker.stp != STPMode.NONE

    def _fill(self, taker: Order, maker: Order) -> None:
        """One fill at the maker's price for ``min(leaves)``; fees ``ceil(notional × rate / 1e8)``."""
        spec = self._instrument
        price_ticks = maker.price_ticks
        qty_lots = min(taker.leaves_lots, maker.leaves_lots)
        notional_units = spec.notional_units(price_ticks, qty_lots)
        taker.leaves_lots -= qty_lots
        maker_leaves_lots = self._book.reduce(maker.order_id, qty_lots)
        self._last_price_ticks = price_ticks
        self._emit(EventKind.FILL, taker.order_id, taker.account_id, taker.side, price_ticks, qty_lots,
                   leaves_lots=taker.leaves_lots, maker_order_id=maker.order_id,
                   maker_account_id=maker.account_id, maker_leaves_lots=maker_leaves_lots,
                   maker_fee_units=mul_div_ceil(notional_units, spec.maker_fee_e8, E8),
                   taker_fee_units=mul_div_ceil(notional_units, spec.taker_fee_e8, E8))

    def _cancel_resting(self, order_id: int, reason: CancelReason) -> None:
        """Remove a resting order and append CANCELED for its leaves."""
        order = self._book.remove(order_id)
        self._emit(EventKind.CANCELED, order.order_id, order.account_id, order.side, order.price_ticks,
                   order.leaves_lots, code=reason)

    def _cancel_taker(self, taker: Order, reason: CancelReason) -> None:
        """Expire a taker's remainder (it is not in the book) and append CANCELED for it."""
        self._emit(EventKind.CANCELED, taker.order_id, taker.account_id, taker.side, taker.price_ticks,
                   taker.leaves_lots, code=reason)
        taker.leaves_lots = 0

    def _emit(self, kind: EventKind, order_id: int, account_id: int, side: int, price_ticks: int, qty_lots: int, *,
              leaves_lots: int = 0, code: int = 0, maker_order_id: int = 0, maker_account_id: int = 0,
              maker_leaves_lots: int = 0, maker_fee_units: int = 0, taker_fee_units: int = 0) -> None:
        """Append one EVENT_DTYPE row (fields in ``EVENT_FIELDS`` order; unused fields are 0)."""
        self._events.append((int(kind), order_id, account_id, int(side), price_ticks, qty_lots, leaves_lots,
                             int(code), maker_order_id, maker_account_id, maker_leaves_lots, maker_fee_units, taker_fee_units))


def apply_row(engine, row: tuple) -> int:
    """Run one COMMAND_DTYPE row (a tuple in ``COMMAND_FIELDS`` order) through ``engine``'s per-command API
    (either implementation); returns what that method returns (0 for SET_MARK)."""
    kind, order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp, reduce_only, expire_ns, time_ns = row
    if kind == CommandKind.PLACE:
        return engine.place(order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp, reduce_only,
                            expire_ns)
    if kind == CommandKind.CANCEL:
        return engine.cancel(order_id, account_id)
    if kind == CommandKind.AMEND:
        return engine.amend(order_id, account_id, price_ticks, qty_lots)
    if kind == CommandKind.CANCEL_ALL:
        return engine.cancel_all(account_id)
    if kind == CommandKind.SET_MARK:
        engine.set_mark(price_ticks)
        return 0
    return engine.set_time(time_ns)


def _restore_problem(instrument: Instrument, now_ns: int, order: tuple, duplicate: bool, crosses: bool) -> str:
    """Why ``order`` (a :meth:`MatchingEngine.order` tuple of ints) cannot be restored into a book at time
    ``now_ns`` ("" if it can); ``duplicate``: its id rests already; ``crosses``: its price reaches the opposite
    best. Shared by both implementations' ``restore_order`` (same checks, same messages)."""
    order_id, account_id, side, price_ticks, leaves_lots, tif, stp, reduce_only, expire_ns = order
    if not all(-(2**63) <= value < 2**63 for value in order):
        return "a field is outside int64"
    if order_id <= 0 or duplicate:
        return "order id must be > 0 and not resting already"
    if account_id < 0:
        return "account id must be >= 0"
    if side not in (Side.BUY, Side.SELL):
        return f"invalid side {side}"
    if tif not in _RESTING_TIFS:
        return f"TIF {tif} cannot rest"
    if not STPMode.NONE <= stp <= STPMode.EXPIRE_BOTH:
        return f"invalid STP mode {stp}"
    if reduce_only not in (0, 1):
        return "reduce_only must be 0 or 1"
    if leaves_lots <= 0:
        return "leaves must be > 0"
    if not instrument.min_price_ticks <= price_ticks <= instrument.max_price_ticks:
        return f"price {price_ticks} outside the instrument's range"
    if tif == TimeInForce.GTD and expire_ns <= now_ns:
        return f"GTD expiry {expire_ns} is not after the engine's time {now_ns}"
    if tif != TimeInForce.GTD and expire_ns != 0:
        return "expire_ns must be 0 unless GTD"
    if crosses:
        return "it would cross the opposite side"
    return ""


def _rebuild_engine(instrument: Instrument, state: tuple, events: list) -> MatchingEngine:
    """Unpickle a :class:`MatchingEngine` (its ``__reduce__``)."""
    engine = MatchingEngine(instrument)
    engine.restore_state(*state)
    engine._events = [tuple(row) for row in events]
    return engine
