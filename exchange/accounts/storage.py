"""Struct-of-arrays storage of accounts and positions, and per-symbol instrument tables (numpy).

Layout (why)
------------
The clearing kernel's job is to stream every position once per mark change and reduce per account.
Positions are therefore stored **grouped by account**: account ``a`` owns the contiguous slots
``[acct_begin[a], acct_begin[a] + acct_count[a])``. A sweep walks accounts in order and, inside each,
its few positions, so every array is read front to back exactly once (no gather, no scatter, no
per-position account index read, no per-account accumulator in memory): the cross balance and MM of an
account are register sums. After :meth:`Portfolio.compact` the blocks are also back to back in account
order, so the stream is perfectly sequential (prefetch-friendly) and the numpy version can use
``np.add.reduceat``.

To keep ``add_position`` O(1) amortised, each account block has a capacity (``acct_cap``); a full block
is moved to the end of the arrays with double the capacity, leaving a *hole* (slots with
``pos_account = -1`` and zero size, never inside any account's range). ``compact()`` removes holes and
slack and returns the old→new slot map; slot numbers are otherwise stable (a closed position keeps its
slot with ``qty_lots = 0``, as a venue keeps an empty position row).

Writers: this class's methods, and the compiled twin of the risk monitor's row writes
(``exchange.clearing._sweep.MonitorWriter``), which writes the same fields under the same bounds straight into
the arrays (``generation`` tells it when they were reallocated).

Per position (34 bytes): ``pos_account`` int32, ``pos_symbol`` int16, ``pos_side`` int8 (PositionSide),
``pos_mode`` int8 (MarginMode), ``pos_leverage`` int16, ``pos_qty_lots`` int64 (signed, long > 0),
``pos_entry_cost`` int64 (Σ price_ticks × lots, signed like qty), ``pos_iso_margin_units`` int64
(0 for cross). The sweep reads only symbol, mode, qty, entry cost and isolated margin (27 bytes).
Per account (32 bytes): ``acct_begin`` int64, ``acct_count`` int32, ``acct_cap`` int32,
``acct_wallet_units`` int64, ``acct_exposure_units`` int64. At 4 positions per account that is
42 bytes per position in total (:meth:`Portfolio.bytes_per_position` measures it).

Bounds (checked on every write, so both implementations accept exactly the same inputs)
-------------------------------------------------------------------------------------------
- ``1 ≤ symbol < n_symbols``-style range checks; mode CROSS ⇒ isolated margin 0; leverage 1..max.
- ``entry_cost`` has the sign of ``qty`` (0 when flat) — it is a sum of positive prices × signed lots.
- Position exposure ``B = max(|qty| × max_price, |entry_cost|) × K``; account exposure
  ``|wallet| + Σ (|isolated margin| + B) ≤ 2⁶²`` (:data:`exchange.units.MAX_ABS_VALUE`).

With marks in ``[1, max_price]`` this bounds every quantity of the sweep: |uPnL| ≤ B, notional ≤ B,
MM ≤ notional, and every per-account sum (cross balance, Σ MM) and every isolated balance stays within
±2⁶², so int64 never overflows; only ``notional × mmr`` (≤ 2⁸⁹) and ``MM × 10⁸`` need wider arithmetic,
which the kernels avoid or do in 128 bits.

Invariants (:meth:`Portfolio.check_invariants`): account blocks are disjoint and inside the used slots;
every slot of a block names its account; slots outside blocks are empty with ``pos_account = -1``;
the exposure bound holds and ``acct_exposure_units`` equals its definition.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..enums import MarginMode, PositionSide
from .margin import (
    BracketRow, IsolatedMaintenance, LiquidationTrigger, convex_bounds, convex_brackets, derive_brackets, trigger_terms,
)
from ..units import E8, MAX_ABS_VALUE

INT64_MAX = np.iinfo(np.int64).max

POSITION_FIELDS = (
    ("pos_account", np.int32),
    ("pos_symbol", np.int16),
    ("pos_side", np.int8),
    ("pos_mode", np.int8),
    ("pos_leverage", np.int16),
    ("pos_qty_lots", np.int64),
    ("pos_entry_cost", np.int64),
    ("pos_iso_margin_units", np.int64),
)
ACCOUNT_FIELDS = (
    ("acct_begin", np.int64),
    ("acct_count", np.int32),
    ("acct_cap", np.int32),
    ("acct_wallet_units", np.int64),
    ("acct_exposure_units", np.int64),
)


class PortfolioError(ValueError):
    """A write would break a bound or an invariant (nothing is changed)."""


class InstrumentTable:
    """Per-symbol numpy tables for the kernels (index = symbol index).

    ``k_units`` (K), ``max_price_ticks``, ``n_brackets``; bracket tables of shape ``(n_symbols, NB)``:
    ``br_cap_units`` (real caps; padding INT64_MAX), ``br_lookup_cap`` (the last real bracket and the
    padding are INT64_MAX, so ``bracket = Σ_n (notional > br_lookup_cap[s, n])`` is branch-free),
    ``br_mmr_e8``, ``br_cum_units`` (= cum_x8 // 10⁸), ``br_cum_rem_x8`` (= cum_x8 mod 10⁸),
    ``br_max_leverage``. ``rows[s]`` holds the :class:`~exchange.accounts.margin.BracketRow` tuple for Python code;
    ``rows`` (one row tuple per instrument) overrides the instruments' own derived brackets (a venue profile
    may value MM on other rows, :class:`exchange.accounts.pretrade.Risk`). The profile's liquidation rule, which every
    kernel applies: ``trigger`` (:class:`~exchange.accounts.margin.LiquidationTrigger`; ``strict`` and ``min_mm`` its
    integer form, :func:`~exchange.accounts.margin.trigger_terms`) and ``iso_entry`` (isolated positions' MM charged
    on their entry value ``|entry_cost| × K``, :class:`~exchange.accounts.margin.IsolatedMaintenance` ENTRY).

    The liquidation and warning indexes draw their bands with convex MM (:mod:`exchange.liquidation.index`):
    ``upper_rows`` / ``lower_rows`` bound each symbol's MM from above and below
    (:func:`~exchange.accounts.margin.convex_bounds`; the rows themselves when they are convex), with the columns
    ``br_upper_mmr_e8``, ``br_upper_cum_units``, ``br_upper_cum_rem_x8`` and the ``br_lower_*`` alike (same caps).
    ``indexable``: whether the indexes can follow this table: every symbol bounded, an isolated position's
    liquidation set one interval (convex rows, or MM on the entry value), and the trigger's ``MM ≥ min_mm`` term
    monotone in the mark (dYdX's "MM > 0" is not when the first rate is 0 and a later one is not).
    """

    def __init__(self, instruments: Sequence, rows: Sequence | None = None, *,
                 trigger: LiquidationTrigger = LiquidationTrigger.AT_MAINTENANCE,
                 isolated_maintenance: IsolatedMaintenance = IsolatedMaintenance.MARK):
        self.trigger = LiquidationTrigger(trigger)
        self.strict, self.min_mm = trigger_terms(self.trigger)
        self.iso_entry = IsolatedMaintenance(isolated_maintenance) == IsolatedMaintenance.ENTRY
        self.instruments = tuple(instruments)
        if not self.instruments:
            raise PortfolioError("at least one instrument is required")
        if len(self.instruments) > np.iinfo(np.int16).max:
            raise PortfolioError("too many symbols for int16 symbol indices")
        self.symbols = tuple(i.symbol for i in self.instruments)
        self.rows: tuple[tuple[BracketRow, ...], ...] = (
            tuple(derive_brackets(i.brackets) for i in self.instruments) if rows is None else tuple(map(tuple, rows)))
        if len(self.rows) != len(self.instruments):
            raise PortfolioError("one bracket table per instrument is required")
        n = len(self.instruments)
        nb = max(len(r) for r in self.rows)
        self.n_symbols, self.nb = n, nb
        self.k_units = np.array([i.k_units for i in self.instruments], dtype=np.int64)
        self.max_price_ticks = np.array([i.max_price_ticks for i in self.instruments], dtype=np.int64)
        self.max_leverage = np.array([i.max_leverage for i in self.instruments], dtype=np.int64)
        self.n_brackets = np.array([len(r) for r in self.rows], dtype=np.int32)
        self.br_cap_units = np.full((n, nb), INT64_MAX, dtype=np.int64)
        self.br_lookup_cap = np.full((n, nb), INT64_MAX, dtype=np.int64)
        self.br_max_leverage = np.zeros((n, nb), dtype=np.int64)
        for s, rows in enumerate(self.rows):
            for b, row in enumerate(rows):
                if row.cap_units > INT64_MAX:
                    raise PortfolioError(f"{self.symbols[s]}: bracket {b} out of bounds")
                self.br_cap_units[s, b] = min(row.cap_units, INT64_MAX)
                if b < len(rows) - 1:
                    self.br_lookup_cap[s, b] = row.cap_units
            self.br_max_leverage[s, :len(rows)] = [row.max_leverage for row in rows]
            self.br_max_leverage[s, len(rows):] = rows[-1].max_leverage  # padding repeats the last bracket
        self.br_mmr_e8, self.br_cum_units, self.br_cum_rem_x8 = self._line_columns(self.rows)
        bounds = [convex_bounds(rows) for rows in self.rows]
        bounds = [b if b is not None and all(row.cum_units <= MAX_ABS_VALUE and row.mmr_e8 <= MAX_ABS_VALUE
                                             for row in b[0] + b[1]) else None for b in bounds]
        self.indexable = all(b is not None for b in bounds) and (
            self.iso_entry or all(map(convex_brackets, self.rows))) and not (
            self.min_mm and any(rows[0].mmr_e8 == 0 and any(row.mmr_e8 for row in rows) for rows in self.rows))
        bounds = [b or (rows, rows) for b, rows in zip(bounds, self.rows)]  # (unused when not indexable)
        self.upper_rows = tuple(b[0] for b in bounds)
        self.lower_rows = tuple(b[1] for b in bounds)
        self.br_upper_mmr_e8, self.br_upper_cum_units, self.br_upper_cum_rem_x8 = self._line_columns(self.upper_rows)
        self.br_lower_mmr_e8, self.br_lower_cum_units, self.br_lower_cum_rem_x8 = self._line_columns(self.lower_rows)

    def _line_columns(self, tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mmr_e8, cum_units, cum_rem_x8)`` columns of one row table per symbol; the padding repeats the last
        bracket, so a padded index can never change a result."""
        shape = (self.n_symbols, self.nb)
        mmr, cum, rem = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
        for s, rows in enumerate(tables):
            for b in range(self.nb):
                row = rows[min(b, len(rows) - 1)]
                if row.cum_units > MAX_ABS_VALUE or row.mmr_e8 > MAX_ABS_VALUE:
                    raise PortfolioError(f"{self.symbols[s]}: bracket {b} out of bounds")
                mmr[s, b], cum[s, b], rem[s, b] = row.mmr_e8, row.cum_units, row.cum_rem_x8
        return mmr, cum, rem

    def check_marks(self, marks_ticks) -> np.ndarray:
        """Return ``marks_ticks`` as a contiguous int64 array; ``ValueError`` unless ``1 ≤ mark ≤ max_price``."""
        marks = np.ascontiguousarray(marks_ticks, dtype=np.int64)
        if marks.shape != (self.n_symbols,):
            raise ValueError(f"need one mark per symbol ({self.n_symbols}), got shape {marks.shape}")
        if (marks < 1).any() or (marks > self.max_price_ticks).any():
            raise ValueError("every mark must satisfy 1 ≤ mark_ticks ≤ the instrument's max_price_ticks")
        return marks


def _exposure(qty: int, entry: int, margin: int, max_price: int, k: int) -> int:
    return abs(margin) + max(abs(qty) * max_price, abs(entry)) * k


class Portfolio:
    """Accounts and positions in struct-of-arrays form (see the module docstring for layout and bounds).

    Attributes named in :data:`POSITION_FIELDS` / :data:`ACCOUNT_FIELDS` are numpy views of the used part
    (``n_slots`` positions, ``n_accounts`` accounts); treat them as read-only outside this class.
    """

    def __init__(self, instruments: Sequence | InstrumentTable, *, account_capacity: int = 16, slot_capacity: int = 64):
        self.table = instruments if isinstance(instruments, InstrumentTable) else InstrumentTable(instruments)
        self._pos = {name: np.zeros(max(slot_capacity, 1), dtype=dt) for name, dt in POSITION_FIELDS}
        self._pos["pos_account"][:] = -1
        self._acct = {name: np.zeros(max(account_capacity, 1), dtype=dt) for name, dt in ACCOUNT_FIELDS}
        self.n_slots = 0
        self.n_accounts = 0
        self.n_holes = 0
        self.generation = 0  # changes whenever an array is reallocated (compiled writers rebind their views)
        self._viewed: list[str] = []  # the views kept in the instance (__getattr__), dropped by _resized

    # -- views -------------------------------------------------------------------------------------------
    def __getattr__(self, name):
        """A column's view of the used part (``pos_*``: ``n_slots`` slots, ``acct_*``: ``n_accounts`` accounts),
        kept in the instance until the used part or an array changes (:meth:`_resized`), so that the next read
        of it is a plain attribute read, not this call. O(1)."""
        d = self.__dict__
        pos = d.get("_pos")
        if pos is not None and name in pos:
            view = pos[name][: self.n_slots]
        else:
            acct = d.get("_acct")
            if acct is None or name not in acct:
                raise AttributeError(name)
            view = acct[name][: self.n_accounts]
        d[name] = view
        self._viewed.append(name)
        return view

    def _resized(self) -> None:
        """Drop the kept views: every write of ``n_slots``, ``n_accounts`` or an array calls it (the compiled
        writer's new accounts too). O(views kept)."""
        d = self.__dict__
        for name in self._viewed:
            d.pop(name, None)
        self._viewed.clear()

    def __getstate__(self) -> dict:
        """The state without the kept views (views of the arrays, not data of their own)."""
        state = {k: v for k, v in self.__dict__.items() if k not in self._viewed}
        state["_viewed"] = []
        return state

    @property
    def n_positions(self) -> int:
        """Number of position slots owned by accounts (open or flat)."""
        return int(self.acct_count.sum())

    @property
    def is_compact(self) -> bool:
        """True when account blocks are back to back in account order with no slack or holes."""
        if self.n_accounts == 0:
            return self.n_slots == 0
        ends = self.acct_begin + self.acct_count
        return bool(self.acct_begin[0] == 0 and (self.acct_begin[1:] == ends[:-1]).all() and ends[-1] == self.n_slots)

    def nbytes(self) -> int:
        """Bytes of the used parts of all position and account arrays."""
        return sum(getattr(self, n).nbytes for n, _ in POSITION_FIELDS) + sum(getattr(self, n).nbytes for n, _ in ACCOUNT_FIELDS)

    def bytes_per_position(self) -> float:
        """``nbytes() / n_positions`` (measured, includes slack and holes if not compact)."""
        return self.nbytes() / max(self.n_positions, 1)

    # -- growth ------------------------------------------------------------------------------------------
    def _grow_pos(self, need: int) -> None:
        cap = len(self._pos["pos_qty_lots"])
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, arr in self._pos.items():
            grown = np.zeros(new, dtype=arr.dtype)
            grown[:cap] = arr
            if name == "pos_account":
                grown[cap:] = -1
            self._pos[name] = grown
        self.generation += 1
        self._resized()

    def _grow_acct(self, need: int) -> None:
        cap = len(self._acct["acct_begin"])
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name, arr in self._acct.items():
            grown = np.zeros(new, dtype=arr.dtype)
            grown[:cap] = arr
            self._acct[name] = grown
        self.generation += 1
        self._resized()

    # -- commands ----------------------------------------------------------------------------------------
    def add_account(self, wallet_units: int = 0, capacity: int = 4) -> int:
        """Append an account with ``wallet_units`` and room for ``capacity`` positions; returns its index."""
        wallet_units = int(wallet_units)
        if abs(wallet_units) > MAX_ABS_VALUE:
            raise PortfolioError("|wallet| exceeds 2^62 units")
        capacity = max(int(capacity), 1)
        a = self.n_accounts
        self._grow_acct(a + 1)
        self._grow_pos(self.n_slots + capacity)
        A = self._acct
        A["acct_begin"][a] = self.n_slots
        A["acct_count"][a] = 0
        A["acct_cap"][a] = capacity
        A["acct_wallet_units"][a] = wallet_units
        A["acct_exposure_units"][a] = abs(wallet_units)
        self.n_slots += capacity
        self.n_accounts += 1
        if self._viewed:
            self._resized()
        return a

    def set_wallet(self, account: int, wallet_units: int) -> None:
        """Set an account's wallet balance (units). Raises :class:`PortfolioError` if a bound breaks."""
        A = self._acct
        old = int(A["acct_wallet_units"][account])
        exposure = int(A["acct_exposure_units"][account]) - abs(old) + abs(int(wallet_units))
        if exposure > MAX_ABS_VALUE:
            raise PortfolioError("account exposure would exceed 2^62 units")
        A["acct_wallet_units"][account] = wallet_units
        A["acct_exposure_units"][account] = exposure

    def _check_position(self, symbol, qty, entry, mode, margin, leverage, side):
        t = self.table
        if not 0 <= symbol < t.n_symbols:
            raise PortfolioError(f"unknown symbol index {symbol}")
        if mode not in (MarginMode.CROSS, MarginMode.ISOLATED):
            raise PortfolioError(f"invalid margin mode {mode}")
        if mode == MarginMode.CROSS and margin != 0:
            raise PortfolioError("a cross position has no isolated margin")
        if not 1 <= leverage <= int(t.max_leverage[symbol]):
            raise PortfolioError(f"leverage {leverage} outside 1..{int(t.max_leverage[symbol])}")
        if side not in (PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT):
            raise PortfolioError(f"invalid position side {side}")
        if (qty == 0 and entry != 0) or qty * entry < 0:
            raise PortfolioError("entry_cost must have the sign of qty (0 when flat)")
        if (side == PositionSide.LONG and qty < 0) or (side == PositionSide.SHORT and qty > 0):
            raise PortfolioError("hedge leg with the wrong sign")

    def add_position(self, account: int, symbol: int, qty_lots: int = 0, entry_cost: int = 0, *,
                     mode: int = MarginMode.CROSS, iso_margin_units: int = 0, leverage: int = 1,
                     side: int = PositionSide.BOTH) -> int:
        """Add a position slot to ``account``; returns its slot. O(1) amortised (a full block moves once).

        Raises :class:`PortfolioError` for an unknown account/symbol or a broken bound (no change then).
        """
        if not 0 <= account < self.n_accounts:
            raise PortfolioError(f"unknown account {account}")
        qty_lots, entry_cost, iso_margin_units = int(qty_lots), int(entry_cost), int(iso_margin_units)
        self._check_position(symbol, qty_lots, entry_cost, mode, iso_margin_units, leverage, side)
        t = self.table
        term = _exposure(qty_lots, entry_cost, iso_margin_units, int(t.max_price_ticks[symbol]), int(t.k_units[symbol]))
        A = self._acct
        exposure = int(A["acct_exposure_units"][account]) + term
        if exposure > MAX_ABS_VALUE:
            raise PortfolioError("account exposure would exceed 2^62 units")
        begin, count, cap = int(A["acct_begin"][account]), int(A["acct_count"][account]), int(A["acct_cap"][account])
        if count == cap:  # move the block to the end with double capacity
            new_cap = max(4, 2 * cap)
            new_begin = self.n_slots
            self._grow_pos(new_begin + new_cap)
            for name, arr in self._pos.items():
                arr[new_begin:new_begin + count] = arr[begin:begin + count]
                arr[begin:begin + cap] = -1 if name == "pos_account" else 0
            self.n_holes += cap
            self.n_slots += new_cap
            self._resized()
            A["acct_begin"][account], A["acct_cap"][account] = new_begin, new_cap
            begin = new_begin
        slot = begin + count
        P = self._pos
        P["pos_account"][slot] = account
        P["pos_symbol"][slot] = symbol
        P["pos_side"][slot] = side
        P["pos_mode"][slot] = mode
        P["pos_leverage"][slot] = leverage
        P["pos_qty_lots"][slot] = qty_lots
        P["pos_entry_cost"][slot] = entry_cost
        P["pos_iso_margin_units"][slot] = iso_margin_units
        A["acct_count"][account] = count + 1
        A["acct_exposure_units"][account] = exposure
        return slot

    def set_position(self, slot: int, qty_lots: int, entry_cost: int, iso_margin_units: int = 0, leverage: int | None = None,
                     mode: int | None = None) -> None:
        """Overwrite the size, entry cost and isolated margin (and, if given, leverage and margin mode) of an
        existing slot (bounds checked; nothing changes on :class:`PortfolioError`). O(1)."""
        P, A, t = self._pos, self._acct, self.table
        account = int(P["pos_account"][slot]) if 0 <= slot < self.n_slots else -1
        if account < 0:
            raise PortfolioError(f"slot {slot} holds no position")
        symbol = int(P["pos_symbol"][slot])
        mode = int(P["pos_mode"][slot]) if mode is None else int(mode)
        leverage = int(P["pos_leverage"][slot]) if leverage is None else int(leverage)
        qty_lots, entry_cost, iso_margin_units = int(qty_lots), int(entry_cost), int(iso_margin_units)
        self._check_position(symbol, qty_lots, entry_cost, mode, iso_margin_units, leverage, int(P["pos_side"][slot]))
        mp, k = int(t.max_price_ticks[symbol]), int(t.k_units[symbol])
        old = _exposure(int(P["pos_qty_lots"][slot]), int(P["pos_entry_cost"][slot]), int(P["pos_iso_margin_units"][slot]), mp, k)
        exposure = int(A["acct_exposure_units"][account]) - old + _exposure(qty_lots, entry_cost, iso_margin_units, mp, k)
        if exposure > MAX_ABS_VALUE:
            raise PortfolioError("account exposure would exceed 2^62 units")
        P["pos_qty_lots"][slot] = qty_lots
        P["pos_entry_cost"][slot] = entry_cost
        P["pos_iso_margin_units"][slot] = iso_margin_units
        P["pos_leverage"][slot] = leverage
        P["pos_mode"][slot] = mode
        A["acct_exposure_units"][account] = exposure

    def compact(self) -> np.ndarray:
        """Remove holes and slack; blocks become back to back in account order. Returns ``old_to_new``
        (int64, −1 for dropped slots). O(slots)."""
        counts = self.acct_count.astype(np.int64)
        new_begin = np.zeros(self.n_accounts, dtype=np.int64)
        np.cumsum(counts[:-1], out=new_begin[1:]) if self.n_accounts > 1 else None
        total = int(counts.sum())
        # gather index: for every new slot, the old slot
        owner = np.repeat(np.arange(self.n_accounts, dtype=np.int64), counts)
        within = np.arange(total, dtype=np.int64) - np.repeat(new_begin, counts)
        src = self.acct_begin.astype(np.int64)[owner] + within
        old_to_new = np.full(self.n_slots, -1, dtype=np.int64)
        old_to_new[src] = np.arange(total, dtype=np.int64)
        for name, arr in list(self._pos.items()):
            self._pos[name] = np.ascontiguousarray(arr[src])
        self._acct["acct_begin"][: self.n_accounts] = new_begin
        self._acct["acct_cap"][: self.n_accounts] = self.acct_count
        for name, arr in list(self._acct.items()):
            self._acct[name] = np.ascontiguousarray(arr[: self.n_accounts])
        self.n_slots, self.n_holes = total, 0
        self.generation += 1
        self._resized()
        return old_to_new

    # -- bulk construction -------------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, instruments, wallet_units, pos_account, pos_symbol, qty_lots, entry_cost, *,
                    mode=None, iso_margin_units=None, leverage=None, side=None) -> "Portfolio":
        """Build a compact portfolio in bulk (vectorised validation of every bound; positions are stably
        grouped by account). Raises :class:`PortfolioError` naming the first broken rule."""
        self = cls(instruments, account_capacity=1, slot_capacity=1)
        t = self.table
        wallet = np.asarray(wallet_units, dtype=np.int64)
        acc = np.asarray(pos_account, dtype=np.int64)
        n = len(acc)
        sym = np.asarray(pos_symbol, dtype=np.int64)
        qty = np.asarray(qty_lots, dtype=np.int64)
        ent = np.asarray(entry_cost, dtype=np.int64)
        mode = np.full(n, MarginMode.CROSS, np.int64) if mode is None else np.asarray(mode, dtype=np.int64)
        marg = np.zeros(n, np.int64) if iso_margin_units is None else np.asarray(iso_margin_units, dtype=np.int64)
        lev = np.ones(n, np.int64) if leverage is None else np.asarray(leverage, dtype=np.int64)
        side = np.full(n, PositionSide.BOTH, np.int64) if side is None else np.asarray(side, dtype=np.int64)
        if not all(len(x) == n for x in (sym, qty, ent, mode, marg, lev, side)):
            raise PortfolioError("position arrays differ in length")
        if n and (acc.min() < 0 or acc.max() >= len(wallet)):
            raise PortfolioError("position names an unknown account")
        if n and (sym.min() < 0 or sym.max() >= t.n_symbols):
            raise PortfolioError("position names an unknown symbol")
        if not np.isin(mode, (MarginMode.CROSS, MarginMode.ISOLATED)).all():
            raise PortfolioError("invalid margin mode")
        if ((mode == MarginMode.CROSS) & (marg != 0)).any():
            raise PortfolioError("a cross position has no isolated margin")
        if ((lev < 1) | (lev > t.max_leverage[sym])).any():
            raise PortfolioError("leverage out of range")
        if not np.isin(side, (PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT)).all():
            raise PortfolioError("invalid position side")
        if ((side == PositionSide.LONG) & (qty < 0)).any() or ((side == PositionSide.SHORT) & (qty > 0)).any():
            raise PortfolioError("hedge leg with the wrong sign")
        if ((qty == 0) & (ent != 0)).any() or (np.sign(qty) * np.sign(ent) < 0).any():
            raise PortfolioError("entry_cost must have the sign of qty (0 when flat)")
        limit = np.int64(MAX_ABS_VALUE)
        k, mp = t.k_units[sym], t.max_price_ticks[sym]
        # the negations below are safe: int64 minimum is rejected first
        if (qty == np.iinfo(np.int64).min).any() or (ent == np.iinfo(np.int64).min).any() or (marg == np.iinfo(np.int64).min).any() \
                or (wallet == np.iinfo(np.int64).min).any():
            raise PortfolioError("value out of bounds")
        aq, ae, am, aw = np.abs(qty), np.abs(ent), np.abs(marg), np.abs(wallet)
        if (aq > limit // (mp * k)).any() or (ae > limit // k).any() or (am > limit).any() or (aw > limit).any():
            raise PortfolioError("account exposure would exceed 2^62 units")
        b = np.maximum(aq * mp, ae) * k  # ≤ 2^62 each
        order = np.argsort(acc, kind="stable")
        counts = np.bincount(acc, minlength=len(wallet)).astype(np.int64)
        begin = np.zeros(len(wallet), dtype=np.int64)
        if len(wallet) > 1:
            np.cumsum(counts[:-1], out=begin[1:])
        # exact per-account sums of terms ≤ 2^63 via 32-bit halves
        lo_mask = np.int64(0xFFFFFFFF)
        bo, mo = b[order], am[order]
        hi = (bo >> 32) + (mo >> 32)
        lo = (bo & lo_mask) + (mo & lo_mask)
        hi_sum = np.zeros(len(wallet), np.int64)
        lo_sum = np.zeros(len(wallet), np.int64)
        nz = counts > 0
        if n:
            hi_sum[nz] = np.add.reduceat(hi, begin[nz])
            lo_sum[nz] = np.add.reduceat(lo, begin[nz])
        if (hi_sum > (1 << 30)).any():
            raise PortfolioError("account exposure would exceed 2^62 units")
        total = (hi_sum.astype(np.uint64) << np.uint64(32)) + lo_sum.astype(np.uint64) + aw.astype(np.uint64)
        if (total > np.uint64(MAX_ABS_VALUE)).any():
            raise PortfolioError("account exposure would exceed 2^62 units")
        self._pos = {
            "pos_account": acc[order].astype(np.int32), "pos_symbol": sym[order].astype(np.int16),
            "pos_side": side[order].astype(np.int8), "pos_mode": mode[order].astype(np.int8),
            "pos_leverage": lev[order].astype(np.int16), "pos_qty_lots": np.ascontiguousarray(qty[order]),
            "pos_entry_cost": np.ascontiguousarray(ent[order]), "pos_iso_margin_units": np.ascontiguousarray(marg[order]),
        }
        self._acct = {
            "acct_begin": begin, "acct_count": counts.astype(np.int32), "acct_cap": counts.astype(np.int32),
            "acct_wallet_units": wallet.copy(), "acct_exposure_units": total.astype(np.int64),
        }
        self.n_slots, self.n_accounts, self.n_holes = n, len(wallet), 0
        self.generation += 1
        self._resized()
        return self

    # -- queries -----------------------------------------------------------------------------------------
    def slots_of(self, account: int) -> range:
        """The slots of ``account``'s positions."""
        b = int(self._acct["acct_begin"][account])
        return range(b, b + int(self._acct["acct_count"][account]))

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the layout or a bound is broken. O(slots) with Python ints."""
        t = self.table
        seen = np.zeros(self.n_slots, dtype=bool)
        for a in range(self.n_accounts):
            b, c, cap = int(self.acct_begin[a]), int(self.acct_count[a]), int(self.acct_cap[a])
            assert 0 <= c <= cap and 0 <= b and b + cap <= self.n_slots, f"account {a} block out of range"
            assert not seen[b:b + cap].any(), f"account {a} block overlaps another"
            seen[b:b + cap] = True
            assert (self.pos_account[b:b + c] == a).all(), f"account {a} block names another account"
            assert (self.pos_account[b + c:b + cap] == -1).all(), "slack slot in use"
            exposure = abs(int(self.acct_wallet_units[a]))
            for j in range(b, b + c):
                s = int(self.pos_symbol[j])
                exposure += _exposure(int(self.pos_qty_lots[j]), int(self.pos_entry_cost[j]), int(self.pos_iso_margin_units[j]),
                                      int(t.max_price_ticks[s]), int(t.k_units[s]))
            assert exposure == int(self.acct_exposure_units[a]) and exposure <= MAX_ABS_VALUE, f"account {a} exposure"
        free = ~seen
        assert (self.pos_account[free] == -1).all() and (self.pos_qty_lots[free] == 0).all(), "hole in use"
