"""The ledger: accounts, wallet balances, positions, isolated margins, per-(account, symbol) settings and the
order-margin holds the risk stage stores (rules §4, §9).

Money is in integer units of the settlement asset (10⁻⁸), quantities in signed lots (long > 0), entry cost
in ticks × lots (``entry_cost = Σ price_ticks × signed lots``, rules §5). One settlement asset per venue.

A position is keyed by ``(symbol, position_side)``: ``BOTH`` in one-way mode, ``LONG`` / ``SHORT`` in hedge
mode. Only non-empty positions are stored; a closed position disappears (its isolated margin has been
returned by clearing).

Invariants (checked by :meth:`Ledger.check_invariants`; money conservation by :mod:`exchange.invariants`):

- every stored position has ``lots != 0``; a LONG leg has ``lots > 0``, a SHORT leg ``lots < 0``;
  one-way accounts hold only ``BOTH`` keys, hedge accounts only ``LONG`` / ``SHORT``;
- ``entry_cost`` has the sign of ``lots`` (prices are positive);
- a cross position (by its symbol's margin mode) has ``isolated_margin_units == 0``;
- ``holders[symbol]`` is exactly the set of accounts holding a position in ``symbol``;
- stored holds are positive.

**Insurance funds** are reserved ledger accounts (ids from :data:`FUND_ACCOUNT_BASE` = 2⁶², which no user
command may name): a fund's balance is its account's wallet, and the positions it took over are ordinary
positions, so open interest stays balanced and conservation needs no extra term. One fund per symbol
(``fund_ids`` maps every symbol to ``FUND_ACCOUNT_BASE + its index``) or one shared fund (every symbol maps
to ``FUND_ACCOUNT_BASE``). :mod:`exchange.liquidation.insurance` decides what the funds do.

**Memory** (a venue holds millions of accounts, most with no settings, no holds and one or two positions):
what many accounts hold alike is shared, never copied.

- ``positions``, ``settings`` and ``holds`` of an account that has none are the one read-only :data:`EMPTY`
  mapping; a writer replaces it by a dict of the account's own (:meth:`Ledger.store`, :meth:`Account.own_holds`),
  and ``positions`` / ``holds`` go back to :data:`EMPTY` when their last entry is dropped (writing to
  :data:`EMPTY` raises TypeError, so a writer that forgets cannot write to every account). ``settings`` is
  written only by :meth:`Ledger.set_settings`, which replaces the mapping (none is ever written in place): an
  account with one configured symbol at an integer leverage shares a read-only mapping with every account
  configured alike.
- :class:`SymbolSettings` values at an integer leverage are interned (their number is bounded by margin
  modes × leverages; a rate set by ``SetInitialMarginRate`` is not interned, so no command can grow a pool).
- position keys are the ledger's interned ``(symbol, side)`` tuples (:meth:`Ledger.key`), which the risk
  monitor's mirror shares too. A lookup with an equal fresh tuple finds them as before.
- ``warned`` of an account with no margin-call key is the shared :data:`NO_WARNINGS`.
- compiled (``compact_positions``: :mod:`exchange.accounts._positions`), an account with exactly one position
  holds it as a read-only ``OnePosition`` mapping (32 bytes) instead of a dict of one entry (~220 bytes); it
  answers as that dict would, in the same key order, and the ledger replaces it rather than writing to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping

from ..enums import MarginMode, PositionMode, PositionSide
from ..units import E8

FUND_ACCOUNT_BASE = 2**62  #: the first reserved (insurance fund) account id; user ids are below it
NO_WARNINGS: frozenset = frozenset()  #: ``Account.warned`` of an account with no margin-call key (shared, immutable)
EMPTY = MappingProxyType({})  #: ``Account.positions`` / ``settings`` / ``holds`` when it has none (shared, read-only)
DEFAULT_LEVERAGE = 20  #: leverage of a symbol the account never configured (capped by the instrument's max)


@dataclass(slots=True)
class Position:
    """One position. ``lots`` signed; ``entry_cost`` in ticks × lots (signed); isolated margin in units."""

    lots: int = 0
    entry_cost: int = 0
    isolated_margin_units: int = 0


@dataclass(frozen=True, slots=True)
class SymbolSettings:
    """Margin mode and leverage of one (account, symbol). ``imr_e8`` is the initial margin rate ×10⁸ set by
    ``SetInitialMarginRate`` (bybit's and bitmex's risk limits, not always an integer leverage: 1.5 % is
    66.67×), 0 when the leverage was set as an integer; ``leverage`` is then ⌊10⁸ / imr_e8⌋ (display)."""

    margin_mode: MarginMode
    leverage: int
    imr_e8: int = 0

    @property
    def exact_leverage(self) -> int | Fraction:
        """The leverage the margin arithmetic uses: ``leverage``, or exactly ``10⁸ / imr_e8`` (an int when it
        is one, so a rate of 5 % is the same as leverage 20 everywhere)."""
        if not self.imr_e8:
            return self.leverage
        exact = Fraction(E8, self.imr_e8)
        return exact.numerator if exact.denominator == 1 else exact

    def state(self) -> tuple:
        """``(leverage,)``, or ``(leverage, imr_e8)`` when a rate was set (snapshot and state hash rows)."""
        return (self.leverage, self.imr_e8) if self.imr_e8 else (self.leverage,)


class Account:
    """An account's balances, mode, positions, settings and holds. Mutated only by the engine's stages."""

    __slots__ = ("account_id", "wallet_units", "position_mode", "settings", "positions", "holds", "warned")

    def __init__(self, account_id: int):
        self.account_id = account_id
        self.wallet_units = 0
        self.position_mode = PositionMode.ONE_WAY
        self.settings: Mapping[str, SymbolSettings] = EMPTY  # read-only: Ledger.set_settings replaces it
        self.positions: Mapping[tuple[str, PositionSide], Position] = EMPTY  # written only by Ledger.store
        self.holds: Mapping[tuple[str, PositionSide], int] = EMPTY  # order IM held per position key (units, > 0)
        self.warned: frozenset | set[tuple[str, PositionSide]] = NO_WARNINGS  # margin-call keys at or above the level

    def own_holds(self) -> dict[tuple[str, PositionSide], int]:
        """``holds`` as a dict of this account's own, to write to (replaces the shared :data:`EMPTY`)."""
        holds = self.holds
        if holds is EMPTY:
            holds = self.holds = {}
        return holds

    def position_keys(self, symbol: str) -> tuple[tuple[str, PositionSide], ...]:
        """The position keys the account's mode allows in ``symbol`` (one-way: BOTH; hedge: LONG, SHORT)."""
        if self.position_mode == PositionMode.HEDGE:
            return (symbol, PositionSide.LONG), (symbol, PositionSide.SHORT)
        return ((symbol, PositionSide.BOTH),)

    def positions_in(self, symbol: str) -> list[tuple[PositionSide, Position]]:
        """Open positions of ``symbol`` as ``(position_side, position)``, in key order."""
        return [(key[1], self.positions[key]) for key in self.position_keys(symbol) if key in self.positions]

    def as_state(self) -> tuple:
        return (
            self.account_id, self.wallet_units, int(self.position_mode),
            sorted((symbol, int(s.margin_mode), *s.state()) for symbol, s in self.settings.items()),
            sorted((symbol, int(side), p.lots, p.entry_cost, p.isolated_margin_units)
                   for (symbol, side), p in self.positions.items()),
            sorted((symbol, int(side), units) for (symbol, side), units in self.holds.items()),
            sorted((symbol, int(side)) for symbol, side in self.warned),
        )


class Ledger:
    """All accounts plus the venue's own balances (fee pool, insurance fund) and the deposit totals.

    ``default_leverage`` maps each symbol to the leverage of an unconfigured (account, symbol);
    ``shared_fund``: one insurance fund for every symbol instead of one per symbol.
    """

    def __init__(self, default_leverage: dict[str, int], shared_fund: bool = False, compact_positions=None):
        self.default_leverage = dict(default_leverage)
        # the compiled ledger: exchange.accounts._positions (an account's one position as a OnePosition), else None
        self._compact = compact_positions
        self._defaults = {s: SymbolSettings(MarginMode.CROSS, lev) for s, lev in self.default_leverage.items()}
        self.accounts: dict[int, Account] = {}
        self.deposits_units = 0
        self.withdrawals_units = 0
        self.fee_pool_units = 0
        self.fund_ids = {symbol: FUND_ACCOUNT_BASE + (0 if shared_fund else i)
                         for i, symbol in enumerate(sorted(self.default_leverage))}
        self.holders: dict[str, set[int]] = {symbol: set() for symbol in self.default_leverage}
        # Σ long lots per symbol (its open interest), kept by store and by the fills (:meth:`store`'s ``before``)
        self.long_lots: dict[str, int] = dict.fromkeys(self.default_leverage, 0)
        # the interned position keys, symbol -> side -> (symbol, side) (module docstring, Memory)
        self._keys = {symbol: {side: (symbol, side) for side in PositionSide} for symbol in self.default_leverage}
        self._interned: dict = {}  # SymbolSettings at an integer leverage, and one-symbol settings mappings of them

    def money_in_units(self) -> int:
        """Net money the venue holds: deposits − withdrawals (bounded by 2⁶² at deposit)."""
        return self.deposits_units - self.withdrawals_units

    # -- accounts ---------------------------------------------------------------------------------
    def get(self, account_id: int) -> Account | None:
        return self.accounts.get(account_id)

    def open(self, account_id: int) -> Account:
        """The account, created (empty, one-way, default settings) if it does not exist yet."""
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account(account_id)
        return account

    def fund_account(self, symbol: str) -> Account:
        """The reserved account of ``symbol``'s insurance fund (opened on first use)."""
        return self.open(self.fund_ids[symbol])

    @property
    def insurance_fund_units(self) -> int:
        """Σ balances (wallets) of the insurance funds, units; they are already part of Σ wallets."""
        return sum(self.accounts[i].wallet_units for i in set(self.fund_ids.values()) if i in self.accounts)

    def settings(self, account: Account | None, symbol: str) -> SymbolSettings:
        """The (account, symbol) settings; CROSS at the default leverage when never set."""
        stored = account.settings.get(symbol) if account is not None else None
        return stored or self._defaults[symbol]

    def set_settings(self, account: Account, symbol: str, margin_mode: MarginMode, leverage: int,
                     imr_e8: int = 0) -> None:
        """Store the settings; ``imr_e8`` > 0: the leverage was set as an initial margin rate (``leverage``
        is then its integer part)."""
        if imr_e8 and not imr_e8 * leverage <= E8 < imr_e8 * (leverage + 1):
            raise ValueError("leverage must be the integer part of 10⁸ / imr_e8")
        value = SymbolSettings(MarginMode(margin_mode), leverage, imr_e8)
        if imr_e8:  # not interned: an account's own mapping
            account.settings = {**account.settings, symbol: value}
            return
        value = self._interned.setdefault(value, value)
        settings = account.settings
        if not settings or (len(settings) == 1 and symbol in settings):  # none or only this symbol: the shared
            account.settings = self._interned.get((symbol, value)) or self._interned.setdefault(  # mapping of it
                (symbol, value), MappingProxyType({symbol: value}))
        else:  # a new mapping of the account's own (settings are never written in place)
            account.settings = {**settings, symbol: value}

    def key(self, symbol: str, side: PositionSide) -> tuple[str, PositionSide]:
        """The interned position key ``(symbol, side)`` (equal to a fresh tuple; KeyError for an unknown one)."""
        return self._keys[symbol][side]

    # -- positions --------------------------------------------------------------------------------
    @staticmethod
    def position(account: Account | None, symbol: str, side: PositionSide) -> Position:
        """The stored position, or a new empty one (not stored until :meth:`store`)."""
        stored = account.positions.get((symbol, side)) if account is not None else None
        return stored if stored is not None else Position()

    def store(self, account: Account, symbol: str, side: PositionSide, position: Position, before: int | None = None) -> None:
        """Store ``position`` under its key, or drop the key when the position is empty, and keep the symbol's open
        interest (:attr:`long_lots`): ``before`` is the position's lots before the caller changed it in place (the
        fills); without it, the lots of the position stored under the key now (a new position object; the stored
        one itself is taken as unchanged)."""
        key = self._keys[symbol][side]
        positions = account.positions
        if before is None:
            stored = positions.get(key)
            before = 0 if stored is None else stored.lots
        if before > 0 or position.lots > 0:
            self.long_lots[symbol] += max(position.lots, 0) - max(before, 0)
        compact = self._compact
        if position.lots:
            if compact is not None:  # the compiled ledger: one position as a OnePosition
                compact.store_position(account, key, position, EMPTY)
            else:
                if positions is EMPTY:
                    positions = account.positions = {}
                positions[key] = position
            self.holders[symbol].add(account.account_id)
            return
        assert position.entry_cost == 0 and position.isolated_margin_units == 0, f"residue on a closed {key}"
        if compact is not None:
            compact.drop_position(account, key, EMPTY)
        elif key in positions:
            del positions[key]
            if not positions:
                account.positions = EMPTY
        if not account.positions_in(symbol):
            self.holders[symbol].discard(account.account_id)

    # -- state ------------------------------------------------------------------------------------
    def canonical_state(self) -> list:
        return [
            ("venue", self.deposits_units, self.withdrawals_units, self.fee_pool_units),
            *(self.accounts[account_id].as_state() for account_id in sorted(self.accounts)),
        ]

    def snapshot_state(self) -> list:
        """``[deposits, withdrawals, fee pool, accounts]``, each account as ``[id, wallet, position mode,
        settings [[symbol, margin mode, leverage (, initial margin rate e8 when one was set)]], positions
        [[symbol, side, lots, entry cost, isolated margin]], holds [[symbol, side, units]], warned [[symbol,
        side]]]``; accounts by id, the rest sorted
        (no iteration order of these maps changes a result). The insurance funds' reserved accounts are
        ordinary accounts here. ``holders`` is derived (:meth:`restore_state` rebuilds it)."""
        return [self.deposits_units, self.withdrawals_units, self.fee_pool_units,
                [list(self.accounts[account_id].as_state()) for account_id in sorted(self.accounts)]]

    def restore_state(self, state) -> None:
        """Load a :meth:`snapshot_state` into this (empty) ledger; rebuilds ``holders``. Raises ValueError
        for an unknown symbol, an invalid enum value or a repeated account."""
        deposits, withdrawals, fee_pool, accounts = state
        if self.accounts:
            raise ValueError("restore_state needs an empty ledger")
        self.deposits_units, self.withdrawals_units = int(deposits), int(withdrawals)
        self.fee_pool_units = int(fee_pool)
        for account_id, wallet, mode, settings, positions, holds, warned in accounts:
            if account_id in self.accounts:
                raise ValueError(f"account {account_id} appears twice")
            account = self.open(int(account_id))
            account.wallet_units = int(wallet)
            account.position_mode = PositionMode(mode)
            for symbol, margin_mode, leverage, *imr in settings:
                self._symbol(symbol)
                if len(imr) > 1:
                    raise ValueError(f"account {account_id}: a settings row has too many fields")
                self.set_settings(account, symbol, MarginMode(margin_mode), int(leverage), int(imr[0]) if imr else 0)
            for symbol, side, lots, entry_cost, isolated in positions:
                if not lots:
                    raise ValueError(f"account {account_id}: empty position stored")
                self.store(account, self._symbol(symbol), PositionSide(side),
                           Position(int(lots), int(entry_cost), int(isolated)))
            account.holds = {self.key(self._symbol(symbol), PositionSide(side)): int(units)
                             for symbol, side, units in holds} or EMPTY
            account.warned = {(self._symbol(symbol, part=True), PositionSide(side)) for symbol, side in warned} or NO_WARNINGS

    def _symbol(self, symbol, part: bool = False) -> str:
        """``symbol`` if it is one of the ledger's (or, for a margin ``part``, "": the cross part)."""
        if symbol not in self.default_leverage and not (part and symbol == ""):
            raise ValueError(f"unknown symbol {symbol!r}")
        return symbol

    def check_invariants(self) -> None:
        """Raise AssertionError naming the first broken ledger invariant (module docstring). O(positions)."""
        holders: dict[str, set[int]] = {symbol: set() for symbol in self.default_leverage}
        long_lots = dict.fromkeys(self.default_leverage, 0)
        for account in self.accounts.values():
            allowed = {PositionSide.BOTH} if account.position_mode == PositionMode.ONE_WAY else {
                PositionSide.LONG, PositionSide.SHORT}
            for (symbol, side), p in account.positions.items():
                where = f"account {account.account_id} {symbol} {side.name}"
                assert p.lots != 0, f"{where}: empty position stored"
                assert side in allowed, f"{where}: key not allowed in {account.position_mode.name}"
                assert side != PositionSide.LONG or p.lots > 0, f"{where}: LONG leg is short"
                assert side != PositionSide.SHORT or p.lots < 0, f"{where}: SHORT leg is long"
                assert (p.entry_cost > 0) == (p.lots > 0), f"{where}: entry cost sign"
                if self.settings(account, symbol).margin_mode == MarginMode.CROSS:
                    assert p.isolated_margin_units == 0, f"{where}: cross position holds isolated margin"
                holders[symbol].add(account.account_id)
                long_lots[symbol] += max(p.lots, 0)
            assert all(units > 0 for units in account.holds.values()), f"account {account.account_id}: zero hold"
        assert holders == self.holders, "holders index out of date"
        assert long_lots == self.long_lots, f"open interest out of date: {self.long_lots} against {long_lots}"
