"""Risk: order-margin holds, available balance, pre-trade checks, and the margin view of accounts
(rules §4, §5). The margin arithmetic itself (IM, MM with brackets, ratios, liquidation and bankruptcy
prices) is :mod:`exchange.accounts.margin`'s; this module decides what it is applied to.

Prices: every valuation uses the symbol's *risk price* — the mark, or the last trade price until a mark is
known (``mark_of``). Money in units (10⁻⁸), quantities in lots, rates ×10⁸.

**Order hold** of one position key (account, symbol, position side), at the (account, symbol) leverage L,
over the key's *opening* resting orders (reduce-only orders, and hedge-mode orders that close their leg,
hold nothing; conditional orders hold nothing until they fire). Per order side s with ``lots_s`` lots of
total order notional ``N_s = Σ price_ticks × lots × K``, and ``closable_s`` = the lots of an opposite
position that side would close first:

    adding_s = ceil(N_s × (lots_s − closable_s) / lots_s)   if lots_s > closable_s, else 0
    hold     = max(ceil(adding_buy / L), ceil(adding_sell / L))

(the closing lots are netted at the side's average order price; the larger side is held because in one
net position both sides cannot add exposure at once.) A MARKET order is valued at the price it may reach:
its price-band edge when a mark is set, else the worst opposite level.

**Available balance** = wallet − Σ IM of cross positions (at the risk price) − Σ order holds
+ Σ unrealized losses of cross positions (+ unrealized gains when ``RiskOptions.count_unrealized_gains``).
Isolated positions (their margin already left the wallet) are not part of it.
**Withdrawable** = the available balance without unrealized gains (never withdrawn, whatever the option).

Pre-trade (new orders and fired conditional orders): an opening order is rejected with -2027 when the
position plus the side's adding notional would sit in a bracket whose max leverage is below L, and with
-2019 when it raises the key's hold by Δ > 0 while ``available − Δ < 0``. Orders that only close are never
refused for margin.

**Bracket styles** (``profile.brackets``, :mod:`exchange.accounts.margin`): MARGINAL and STEPWISE only change the MM
rows. OPEN_INTEREST_IMF (dYdX) values MM on the first bracket alone (one liquidity tier: flat MMF, one max
leverage) and the IM of *positions* with :func:`exchange.accounts.margin.initial_margin_open_interest` at the symbol's
open interest (Σ long lots × risk price × K; O(holders) per valuation). Order holds stay at ``1 / leverage``:
a stored hold must not change when other accounts trade (rules §9 "holds" invariant), so the scaling reaches
an order when it fills and becomes position IM in the available balance.

Liquidatable (rules §5): an isolated position when ``isolated margin + uPnL ≤ MM``; a cross account when it
has cross exposure and ``wallet + Σ cross uPnL ≤ Σ cross MM`` — with the profile's comparison
(``trigger``, :class:`~exchange.accounts.margin.LiquidationTrigger`: ``<`` on hyperliquid, ``<`` and MM > 0 on dydx).
With ``isolated_maintenance`` ENTRY (bybit, bitmex) an isolated position's MM is charged on its entry value
``|entry_cost| × K`` instead of its notional at the mark (:meth:`Risk.isolated_mm`); cross positions always
use the mark.

**Order sums** (what makes a hold O(1)): per (account, symbol, position side) the risk stage keeps, for the
opening resting orders of each side, ``lots`` and ``cost = Σ price_ticks × lots`` (so ``N = cost × K``), and
the lots of the reduce-only ones. The engine reports every resting order it saw change
(:meth:`Risk.track_order`, from the book's own answer, so no event semantics are assumed);
:meth:`Risk.refresh_holds` re-reads one (account, symbol) from the book (for callers that change the book
directly). :meth:`Risk.check_order_sums` compares them with a recomputation (an invariant).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor
from typing import Callable, Iterable

from . import margin
from .ledger import EMPTY, NO_WARNINGS, Account, Ledger, Position
from ..enums import MarginMode, PositionSide, RejectCode, Side
from ..events import MarginCall
from ..profiles import BracketStyle, RiskOptions
from ..spec import Instrument

CROSS = ""  #: the ``symbol`` naming an account's cross margin part (as opposed to an isolated position)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """What the risk stage needs of a resting order (prices in ticks, lots = leaves)."""

    order_id: int
    position_side: PositionSide
    side: Side
    price_ticks: int
    lots: int
    reduce_only: bool


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position with its valuation at the risk price (units; prices in ticks, None = no such price)."""

    symbol: str
    position_side: PositionSide
    lots: int
    entry_cost: int
    isolated_margin_units: int
    margin_mode: MarginMode
    leverage: int
    notional_units: int
    unrealized_pnl_units: int
    initial_margin_units: int
    maintenance_margin_units: int
    liquidation_price_ticks: int | None
    bankruptcy_price_ticks: int | None


@dataclass(frozen=True, slots=True)
class Liquidatable:
    """A margin part at or past maintenance: an isolated position, or the cross account (symbol "")."""

    account_id: int
    symbol: str
    position_side: PositionSide
    margin_ratio_e8: int


def closes(position_side: PositionSide, side: Side) -> bool:
    """Whether an order of ``side`` on a hedge leg closes it (SELL on LONG, BUY on SHORT)."""
    return (position_side == PositionSide.LONG and side == Side.SELL) or (
        position_side == PositionSide.SHORT and side == Side.BUY)


def order_hold(k_units: int, leverage: int, position_lots: int, orders: Iterable[tuple[int, int, int]]) -> tuple[int, int, int]:
    """``(hold, adding_buy, adding_sell)`` in units for one key's opening orders ``(side, price_ticks, lots)``
    (module docstring). O(orders)."""
    sums = [0, 0, 0, 0]
    for side, price_ticks, qty_lots in orders:
        i = 0 if side == Side.BUY else 2
        sums[i] += qty_lots
        sums[i + 1] += price_ticks * qty_lots
    return sums_hold(k_units, leverage, position_lots, *sums)


def sums_hold(k_units: int, leverage: int, position_lots: int, buy_lots: int, buy_cost: int, sell_lots: int,
              sell_cost: int) -> tuple[int, int, int]:
    """:func:`order_hold` from the order sums (lots and Σ price_ticks × lots per side). O(1).
    (``max(ceil(a/L), ceil(b/L)) = ceil(max(a, b)/L)``; ``leverage`` ≥ 1.)"""
    adding_buy = _adding(buy_cost * k_units, buy_lots, -position_lots if position_lots < 0 else 0)
    adding_sell = _adding(sell_cost * k_units, sell_lots, position_lots if position_lots > 0 else 0)
    return margin.initial_margin(max(adding_buy, adding_sell), leverage), adding_buy, adding_sell


def _adding(notional_units: int, lots: int, closable_lots: int) -> int:
    """``ceil(N × (lots − closable) / lots)``, 0 when the side only closes."""
    return -(notional_units * (closable_lots - lots) // lots) if lots > closable_lots else 0


class Risk:
    """The margin view over the ledger. ``mark_of(symbol)`` gives the risk price (ticks);
    ``compiled``: the order sums, holds, available balance, pre-trade check and part states (:meth:`key_hold`,
    :meth:`store_holds`, :meth:`track_order`, :meth:`order_sums`, :meth:`available`, :meth:`check_opening`,
    :meth:`part_states`) and the per-part queries (:meth:`notional`, :meth:`upnl`, :meth:`position_mm`,
    :meth:`isolated_mm`, :meth:`part_mm`, :meth:`is_isolated`, :meth:`is_liquidatable`, :meth:`cross_positions`,
    :meth:`cross_balance`, :meth:`cross_mm`, :meth:`part_state`, :meth:`margin_calls`,
    :meth:`bankruptcy_price_ticks`, :meth:`part_liquidatable`, :meth:`refresh_holds`) run in their compiled twin, :mod:`exchange.accounts._pretrade` (the same dicts
    and values);
    ``orders_of(account_id, symbol)`` the account's resting orders there as :class:`OpenOrder`;
    ``bracket_style`` a :class:`~exchange.profiles.BracketStyle` (default MARGINAL); ``trigger`` and
    ``isolated_maintenance`` the profile's liquidation comparison and isolated MM basis (module docstring)."""

    def __init__(self, instruments: dict[str, Instrument], ledger: Ledger, options: RiskOptions,
                 mark_of: Callable[[str], int], orders_of: Callable[[int, str], list[OpenOrder]],
                 bracket_style=None, trigger=margin.LiquidationTrigger.AT_MAINTENANCE,
                 isolated_maintenance=margin.IsolatedMaintenance.MARK, compiled: bool = False):
        style = BracketStyle.MARGINAL if bracket_style is None else BracketStyle(bracket_style)
        self.instruments = instruments
        self.ledger = ledger
        self.options = options
        self.mark_of = mark_of
        self.orders_of = orders_of
        self._orders: dict[tuple[int, str], _OrderSums] = {}  # (account, symbol) -> its resting orders, summed
        self._order_home: dict[int, tuple[int, str]] = {}  # resting order id -> (account, symbol)
        self._sums_class = _OrderSums
        self._view_record = PositionView  # makes a position's view from its values (compiled: without __init__)
        self.kernel = None  # compiled: the RiskKernel whose methods are bound below (the compiled drain calls it)
        self.open_interest_imf = style == BracketStyle.OPEN_INTEREST_IMF
        self.trigger = margin.LiquidationTrigger(trigger)
        self.isolated_at_entry = margin.IsolatedMaintenance(isolated_maintenance) == margin.IsolatedMaintenance.ENTRY
        self.brackets = {
            symbol: margin.derive_brackets(inst.brackets[:1] if self.open_interest_imf else inst.brackets,
                                           stepwise=style == BracketStyle.STEPWISE)
            for symbol, inst in instruments.items()
        }
        if compiled:  # the compiled twin (exchange.accounts._pretrade) over this object's dicts and rows
            from .. import _impl

            self._sums_class = _impl.pretrade_kernel.OrderSums
            self._view_record = _impl.records_kernel.RecordMaker(PositionView)  # (PositionView(*values), in C)
            kernel = self.kernel = _impl.pretrade_kernel.RiskKernel(self)
            self.key_hold, self.store_holds = kernel.key_hold, kernel.store_holds
            self.track_order, self.order_sums = kernel.track_order, kernel.order_sums
            self.available, self.check_opening = kernel.available, kernel.check_opening
            self.part_states = kernel.part_states
            # the per-part queries of the liquidation stage and the monitor
            self.notional, self.upnl, self.position_mm = kernel.notional, kernel.upnl, kernel.position_mm
            self.isolated_mm, self.part_mm, self.is_isolated = kernel.isolated_mm, kernel.part_mm, kernel.is_isolated
            self.is_liquidatable, self.cross_positions = kernel.is_liquidatable, kernel.cross_positions
            self.cross_balance, self.cross_mm, self.part_state = kernel.cross_balance, kernel.cross_mm, kernel.part_state
            self.margin_calls, self.bankruptcy_price_ticks = kernel.margin_calls, kernel.bankruptcy_price_ticks
            self.part_liquidatable, self.refresh_holds = kernel.part_liquidatable, kernel.refresh_holds

    # -- one position -----------------------------------------------------------------------------
    def notional(self, symbol: str, position: Position) -> int:
        """``|lots| × risk price × K`` units."""
        return margin.notional_units(position.lots, self.mark_of(symbol), self.instruments[symbol].k_units)

    def upnl(self, symbol: str, position: Position) -> int:
        return margin.unrealized_pnl(position.lots, position.entry_cost, self.mark_of(symbol),
                                     self.instruments[symbol].k_units)

    def position_im(self, account: Account, symbol: str, position: Position) -> int:
        """IM at the (account, symbol) leverage: ``ceil(notional / leverage)``, or open-interest scaled."""
        leverage = self.ledger.settings(account, symbol).exact_leverage
        return self.initial_margin(symbol, self.notional(symbol, position), leverage)

    def initial_margin(self, symbol: str, notional_units: int, leverage: int) -> int:
        """IM of a position of ``notional_units`` in ``symbol`` (module docstring, bracket styles)."""
        if not self.open_interest_imf:
            return margin.initial_margin(notional_units, leverage)
        inst = self.instruments[symbol]
        return margin.initial_margin_open_interest(
            notional_units, leverage, self.open_interest_units(symbol), inst.open_interest_lower_cap_units,
            inst.open_interest_upper_cap_units, inst.max_leverage)

    def open_interest_units(self, symbol: str) -> int:
        """Σ long lots of ``symbol`` (the ledger's :attr:`~exchange.accounts.ledger.Ledger.long_lots`) × risk price
        × K. O(1)."""
        return margin.notional_units(self.ledger.long_lots[symbol], self.mark_of(symbol), self.instruments[symbol].k_units)

    def position_mm(self, symbol: str, position: Position) -> int:
        """Bracketed maintenance margin (rounded up) of the position's notional."""
        return margin.maintenance_margin(self.brackets[symbol], self.notional(symbol, position))

    def isolated_mm(self, symbol: str, position: Position) -> int:
        """MM of an isolated position: on its entry value under ``isolated_maintenance`` ENTRY, else
        :meth:`position_mm`."""
        if self.isolated_at_entry:
            return margin.entry_maintenance_margin(self.brackets[symbol], position.entry_cost,
                                                   self.instruments[symbol].k_units)
        return self.position_mm(symbol, position)

    def part_mm(self, account: Account, symbol: str, position: Position) -> int:
        """MM the position contributes to its margin part (:meth:`isolated_mm` or :meth:`position_mm`)."""
        return self.isolated_mm(symbol, position) if self.is_isolated(account, symbol) else \
            self.position_mm(symbol, position)

    def is_liquidatable(self, balance_units: int, mm_units: int, exposed: bool) -> bool:
        """The profile's liquidation rule on a part's values (:func:`exchange.accounts.margin.is_liquidatable`)."""
        return margin.is_liquidatable(balance_units, mm_units, exposed, self.trigger)

    def is_isolated(self, account: Account, symbol: str) -> bool:
        return self.ledger.settings(account, symbol).margin_mode == MarginMode.ISOLATED

    # -- account totals ---------------------------------------------------------------------------
    def cross_positions(self, account: Account, exclude_symbol: str = CROSS) -> list[tuple[str, Position]]:
        return [(symbol, p) for (symbol, _), p in sorted(account.positions.items())
                if symbol != exclude_symbol and not self.is_isolated(account, symbol)]

    def cross_balance(self, account: Account) -> int:
        """Cross margin balance: wallet + Σ cross uPnL."""
        return account.wallet_units + sum(self.upnl(s, p) for s, p in self.cross_positions(account))

    def equity(self, account: Account | None) -> int:
        """The cross margin balance plus every isolated position's margin balance (margin + uPnL): what the
        account would hold if every position closed at the risk price, before fees; 0 for no account.
        O(positions)."""
        if account is None:
            return 0
        total = account.wallet_units
        for (symbol, _), position in account.positions.items():
            total += self.upnl(symbol, position)
            if self.is_isolated(account, symbol):
                total += position.isolated_margin_units
        return total

    def cross_mm(self, account: Account) -> int:
        return sum(self.position_mm(s, p) for s, p in self.cross_positions(account))

    def cross_im(self, account: Account) -> int:
        return sum(self.position_im(account, s, p) for s, p in self.cross_positions(account))

    def available(self, account: Account | None, count_gains: bool | None = None) -> int:
        """Available balance (module docstring); 0 for an account that does not exist. ``count_gains``
        overrides the venue option."""
        if account is None:
            return 0
        if count_gains is None:
            count_gains = self.options.count_unrealized_gains
        available = account.wallet_units - sum(account.holds.values())
        for (symbol, _), position in account.positions.items():  # one pass over the cross positions
            if not self.is_isolated(account, symbol):
                upnl = self.upnl(symbol, position)
                available += (upnl if count_gains else min(0, upnl)) - self.position_im(account, symbol, position)
        return available

    def withdrawable(self, account: Account) -> int:
        """The available balance without unrealized gains, whatever the option."""
        return self.available(account, count_gains=False)

    # -- margin parts (cross account or isolated position) ----------------------------------------
    def part_state(self, account: Account, symbol: str, side: PositionSide) -> tuple[int, int, bool]:
        """``(margin balance, MM, has exposure)`` of the cross account (``symbol == ""``) or an isolated
        position."""
        if symbol == CROSS:
            cross = self.cross_positions(account)
            return self.cross_balance(account), self.cross_mm(account), bool(cross)
        position = self.ledger.position(account, symbol, side)
        return (position.isolated_margin_units + self.upnl(symbol, position), self.isolated_mm(symbol, position),
                position.lots != 0)

    def part_liquidatable(self, account: Account, symbol: str, side: PositionSide) -> tuple[bool, int, int, bool]:
        """``(liquidatable, margin balance, MM, has exposure)`` of a part: :meth:`part_state` judged by
        :meth:`is_liquidatable` (the waterfall's re-check). O(positions)."""
        balance, mm, exposed = self.part_state(account, symbol, side)
        return self.is_liquidatable(balance, mm, exposed), balance, mm, exposed

    def margin_ratio_e8(self, account: Account, symbol: str, side: PositionSide) -> int:
        balance, mm, exposed = self.part_state(account, symbol, side)
        return margin.margin_ratio_e8(mm, balance, exposed)

    def parts(self, account: Account) -> list[tuple[str, PositionSide]]:
        """The account's margin parts with exposure: the cross account, then isolated positions, sorted."""
        parts = [(CROSS, PositionSide.BOTH)] if self.cross_positions(account) else []
        return parts + sorted(key for key in account.positions if self.is_isolated(account, key[0]))

    def part_states(self, account: Account) -> list[tuple[str, PositionSide, int, int]]:
        """``(symbol, side, margin balance, MM)`` of every part with exposure, in :meth:`parts` order, in one
        pass over the positions (the engine's hot path; :meth:`part_state` is the one-part query). O(positions)."""
        cross_balance, cross_mm, crossed = account.wallet_units, 0, False
        isolated = []
        positions = account.positions
        for key in sorted(positions):
            symbol = key[0]
            position = positions[key]
            mark, k = self.mark_of(symbol), self.instruments[symbol].k_units
            upnl = (mark * position.lots - position.entry_cost) * k
            isolated_part = self.is_isolated(account, symbol)
            valued = abs(position.entry_cost) if isolated_part and self.isolated_at_entry else abs(position.lots) * mark
            mm = margin.maintenance_margin(self.brackets[symbol], valued * k)
            if isolated_part:
                isolated.append((symbol, key[1], position.isolated_margin_units + upnl, mm))
            else:
                cross_balance += upnl
                cross_mm += mm
                crossed = True
        return ([(CROSS, PositionSide.BOTH, cross_balance, cross_mm)] if crossed else []) + isolated

    def liquidatable_full(self, accounts: Iterable[Account]) -> list[Liquidatable]:
        """Every liquidatable part (exposure and margin balance ≤ MM, by the profile's comparison), by (account,
        symbol, side): the full loop over ``accounts``, the oracle of the engine's incremental answer.
        O(positions)."""
        found = []
        for account in sorted(accounts, key=lambda a: a.account_id):
            for symbol, side in self.parts(account):
                balance, mm, exposed = self.part_state(account, symbol, side)
                if self.is_liquidatable(balance, mm, exposed):
                    found.append(Liquidatable(account.account_id, symbol, side,
                                              margin.margin_ratio_e8(mm, balance, exposed)))
        return found

    def margin_calls(self, account: Account, states: list | None = None) -> list[MarginCall]:
        """Update the account's warned parts; a MarginCall for each part that reached the warning level.
        ``states``: its :meth:`part_states` if already computed. O(positions)."""
        if not account.positions:
            account.warned = NO_WARNINGS
            return []
        calls = []
        warned = []
        level = self.options.margin_call_e8
        for symbol, side, balance, mm in self.part_states(account) if states is None else states:
            ratio = margin.margin_ratio_e8(mm, balance, True)
            if ratio >= level:
                warned.append((symbol, side))
                if (symbol, side) not in account.warned:
                    calls.append(MarginCall(account.account_id, symbol, side, ratio))
        account.warned = set(warned) if warned else NO_WARNINGS  # (most accounts: the shared empty set)
        return calls

    # -- prices of a position ---------------------------------------------------------------------
    def _legs_and_balance(self, account: Account, symbol: str, side: PositionSide, bankruptcy: bool):
        """Legs whose price moves and the balance backing them (rules §5: WB − TMM1 + UPNL1, or WB + UPNL1 for
        the bankruptcy price)."""
        if self.is_isolated(account, symbol):
            position = self.ledger.position(account, symbol, side)
            return [(position.lots, position.entry_cost)], position.isolated_margin_units
        legs = [(p.lots, p.entry_cost) for _, p in account.positions_in(symbol)]
        others = self.cross_positions(account, exclude_symbol=symbol)
        balance = account.wallet_units + sum(self.upnl(s, p) for s, p in others)
        if not bankruptcy:
            balance -= sum(self.position_mm(s, p) for s, p in others)  # cross positions: always at the mark
        return legs, balance

    def liquidation_price_ticks(self, account: Account, symbol: str, side: PositionSide) -> int | None:
        """The tick at which the position's margin part becomes liquidatable, or None (no such price).

        One leg: :func:`exchange.accounts.margin.liquidation_price_ticks` (the exact root rounded toward the
        liquidation side, where the integer rule first flags it), with the profile's comparison; an isolated
        position valued at its entry: :func:`exchange.accounts.margin.entry_liquidation_price_ticks`. Hedge legs of a
        cross symbol together: the exact root (:func:`exchange.accounts.margin.liquidation_price_exact`) rounded toward
        the liquidation side.
        """
        position = self.ledger.position(account, symbol, side)
        if not position.lots:
            return None
        k, rows, mark = self.instruments[symbol].k_units, self.brackets[symbol], self.mark_of(symbol)
        if self.isolated_at_entry and self.is_isolated(account, symbol):
            return margin.entry_liquidation_price_ticks(position.isolated_margin_units, position.lots,
                                                        position.entry_cost, k, rows, self.trigger)
        legs, balance = self._legs_and_balance(account, symbol, side, bankruptcy=False)
        if len(legs) == 1:
            return margin.liquidation_price_ticks(balance, legs, k, rows, mark, self.trigger)
        exact = margin.liquidation_price_exact(balance, legs, k, rows, mark)
        if exact is None:
            return None
        return floor(exact) if sum(q for q, _ in legs) > 0 else ceil(exact)

    def liquidation_price_exact(self, account: Account, symbol: str, side: PositionSide) -> Fraction | None:
        """The exact liquidation price (a ``Fraction`` of ticks) of the position's margin part: the root of
        ``B(P) = MM(P)`` (rules §5; the MM before rounding), or of ``B(P) = MM(entry value)`` for an isolated
        position valued at its entry; None if there is none (LP ≤ 0, or never)."""
        position = self.ledger.position(account, symbol, side)
        if not position.lots:
            return None
        k, rows = self.instruments[symbol].k_units, self.brackets[symbol]
        if self.isolated_at_entry and self.is_isolated(account, symbol):
            return margin.entry_liquidation_price_exact(position.isolated_margin_units, position.lots,
                                                        position.entry_cost, k, rows)
        legs, balance = self._legs_and_balance(account, symbol, side, bankruptcy=False)
        return margin.liquidation_price_exact(balance, legs, k, rows, self.mark_of(symbol))

    def bankruptcy_price_exact(self, account: Account, symbol: str, side: PositionSide) -> Fraction | None:
        """The zero-balance price of the position's margin part (MMR = 0), exact; None if none."""
        if not self.ledger.position(account, symbol, side).lots:
            return None
        legs, balance = self._legs_and_balance(account, symbol, side, bankruptcy=True)
        return margin.bankruptcy_price_exact(balance, legs, self.instruments[symbol].k_units)

    def bankruptcy_price_ticks(self, account: Account, symbol: str, side: PositionSide) -> int | None:
        """Price at which the margin part's balance is 0, rounded against the account; None if none."""
        if not self.ledger.position(account, symbol, side).lots:
            return None
        legs, balance = self._legs_and_balance(account, symbol, side, bankruptcy=True)
        return margin.bankruptcy_price_ticks(balance, legs, self.instruments[symbol].k_units)

    # -- holds and pre-trade ----------------------------------------------------------------------
    def key_hold(self, account: Account, symbol: str, side: PositionSide, extra: tuple[int, int, int] | None = None,
                 replacing: int = 0, leverage: int = 0) -> tuple[int, int, int]:
        """``order_hold`` of the key's resting opening orders, without order ``replacing`` and with ``extra``
        = (side, price, lots), at ``leverage`` (default: the account's). O(1): from the order sums."""
        bucket = self._orders.get((account.account_id, symbol))
        sums = bucket.sums.get(side) if bucket is not None else None
        buy_lots, buy_cost, sell_lots, sell_cost = sums[:4] if sums is not None else (0, 0, 0, 0)
        replaced = bucket.orders.get(replacing) if replacing and bucket is not None else None
        changes = []
        if replaced is not None and replaced[0] == side and not replaced[4]:
            changes.append((replaced[1], replaced[2], -replaced[3]))
        if extra is not None:
            changes.append(extra)
        for order_side, price_ticks, lots in changes:
            if order_side == Side.BUY:
                buy_lots, buy_cost = buy_lots + lots, buy_cost + price_ticks * lots
            else:
                sell_lots, sell_cost = sell_lots + lots, sell_cost + price_ticks * lots
        position = account.positions.get((symbol, side))
        return sums_hold(self.instruments[symbol].k_units, leverage or self.ledger.settings(account, symbol).exact_leverage,
                         position.lots if position is not None else 0, buy_lots, buy_cost, sell_lots, sell_cost)

    def store_holds(self, account: Account, symbol: str) -> None:
        """Recompute (from the order sums) and store the holds of the account's keys in ``symbol``. O(1)."""
        for key in account.position_keys(symbol):
            hold = self.key_hold(account, *key)[0]
            if hold:
                account.own_holds()[key] = hold
            elif key in account.holds:
                del account.holds[key]
        if not account.holds:
            account.holds = EMPTY  # the shared empty (ledger module docstring, Memory)

    def refresh_holds(self, account: Account, symbol: str) -> None:
        """Re-read the account's resting orders in ``symbol`` from the book, then :meth:`store_holds`: for
        callers that changed the book without reporting each order. O(its orders there)."""
        bucket = self._orders.pop((account.account_id, symbol), None)
        for order_id in bucket.orders if bucket is not None else ():
            del self._order_home[order_id]
        for order in self.orders_of(account.account_id, symbol):
            self._remember(order.order_id, account.account_id, symbol, _order_record(
                order.position_side, order.side, order.price_ticks, order.lots, order.reduce_only))
        self.store_holds(account, symbol)

    # -- order sums -------------------------------------------------------------------------------
    def track_order(self, symbol: str, order_id: int, position_side: PositionSide | None, state: tuple | None) -> None:
        """Bring the order sums in line with one order of ``symbol``: ``state`` is the book's
        ``order(order_id)`` tuple (``None`` once it no longer rests). O(1)."""
        home = self._order_home.get(order_id)
        record = None if state is None else _order_record(position_side, state[2], state[3], state[4], state[7])
        if home is not None:
            bucket = self._orders[home]
            if bucket.orders[order_id] == record:
                return
            bucket.add(bucket.orders.pop(order_id), -1)
            del self._order_home[order_id]
            if not bucket.orders:
                del self._orders[home]
        if record is not None:
            self._remember(order_id, state[1], symbol, record)

    def order_sums(self, account_id: int, symbol: str) -> dict[PositionSide, list[int]]:
        """Position side -> ``[buy lots, buy cost, sell lots, sell cost, reduce-only buy lots, reduce-only
        sell lots]`` of the account's resting orders in ``symbol`` (cost = Σ price_ticks × lots; read-only)."""
        bucket = self._orders.get((account_id, symbol))
        return bucket.sums if bucket is not None else {}

    def check_order_sums(self, resting: Iterable[tuple[str, tuple, PositionSide]]) -> None:
        """Raise AssertionError unless the order records and sums equal a recomputation from ``resting``:
        every resting order as ``(symbol, book order tuple, position side)``. O(orders)."""
        expected: dict[tuple[int, str], _OrderSums] = {}
        for symbol, state, position_side in resting:
            bucket = expected.setdefault((state[1], symbol), self._sums_class())
            record = _order_record(position_side, state[2], state[3], state[4], state[7])
            bucket.orders[state[0]] = record
            bucket.add(record, 1)
        for key in expected.keys() | self._orders.keys():
            got, want = self._orders.get(key, self._sums_class()), expected.get(key, self._sums_class())
            assert got.orders == want.orders and {side: sums for side, sums in got.sums.items() if any(sums)} == \
                want.sums, f"account {key[0]} {key[1]}: order records/sums differ from the book"

    def _remember(self, order_id: int, account_id: int, symbol: str, record: tuple) -> None:
        bucket = self._orders.get((account_id, symbol))
        if bucket is None:
            bucket = self._orders[(account_id, symbol)] = self._sums_class()
        bucket.orders[order_id] = record
        bucket.add(record, 1)
        self._order_home[order_id] = (account_id, symbol)

    def check_opening(self, account: Account | None, symbol: str, side: PositionSide, order_side: Side,
                      price_ticks: int, qty_lots: int, replacing: int = 0) -> int:
        """Pre-trade check of an opening order (or of order ``replacing`` amended to these values): -2027,
        -2019 or 0 (module docstring)."""
        if account is None:
            return RejectCode.MARGIN_INSUFFICIENT
        hold, adding_buy, adding_sell = self.key_hold(account, symbol, side, (order_side, price_ticks, qty_lots),
                                                      replacing)
        position = self.ledger.position(account, symbol, side)
        same_side = position.lots > 0 if order_side == Side.BUY else position.lots < 0
        exposure = (self.notional(symbol, position) if same_side else 0) + (
            adding_buy if order_side == Side.BUY else adding_sell)
        if self.bracket_max_leverage(symbol, exposure) < self.ledger.settings(account, symbol).exact_leverage:
            return RejectCode.MAX_POSITION_AT_LEVERAGE
        raised = hold - account.holds.get((symbol, side), 0)
        if raised > 0 and self.available(account) - raised < 0:
            return RejectCode.MARGIN_INSUFFICIENT
        return RejectCode.OK

    def bracket_max_leverage(self, symbol: str, notional_units: int) -> int:
        """The max leverage of the bracket holding ``notional_units``."""
        return margin.max_leverage(self.brackets[symbol], notional_units)

    def symbol_requirement(self, account: Account, symbol: str, leverage: int) -> int:
        """What ``symbol`` takes from the available balance at ``leverage``: its order holds plus the IM of its
        cross positions."""
        held = sum(self.key_hold(account, *key, leverage=leverage)[0] for key in account.position_keys(symbol))
        if self.is_isolated(account, symbol):
            return held
        return held + sum(self.initial_margin(symbol, self.notional(symbol, p), leverage)
                          for _, p in account.positions_in(symbol))

    def view(self, account: Account, symbol: str, side: PositionSide, bankruptcy_price_ticks, *,
             prices: bool = True) -> PositionView:
        """The position's view; ``bankruptcy_price_ticks`` (a callable of no argument) gives its bankruptcy price
        (the liquidation stage's, by the profile: the engine passes it). ``prices=False`` leaves both prices None
        (not computed: they are the view's costly part)."""
        position = self.ledger.position(account, symbol, side)
        settings = self.ledger.settings(account, symbol)
        liquidation = bankruptcy = None
        if prices:
            liquidation = self.liquidation_price_ticks(account, symbol, side)
            bankruptcy = bankruptcy_price_ticks()
        return self._view_record(
            symbol, side, position.lots, position.entry_cost, position.isolated_margin_units, settings.margin_mode,
            settings.leverage, self.notional(symbol, position), self.upnl(symbol, position),
            self.position_im(account, symbol, position), self.part_mm(account, symbol, position), liquidation,
            bankruptcy,
        )

    def max_exposure(self, account: Account, symbol: str) -> int:
        """Largest notional a key of the symbol could reach: position plus its side's adding orders."""
        largest = 0
        for key in account.position_keys(symbol):
            _, adding_buy, adding_sell = self.key_hold(account, *key)
            position = self.ledger.position(account, *key)
            held = self.notional(symbol, position)
            largest = max(largest, adding_buy + (held if position.lots > 0 else 0),
                          adding_sell + (held if position.lots < 0 else 0))
        return largest


def _order_record(position_side, side, price_ticks: int, lots: int, reduce_only) -> tuple:
    """What the order sums keep of one resting order: (position side, side, price ticks, leaves lots,
    reduce-only)."""
    return position_side, int(side), price_ticks, lots, bool(reduce_only)


class _OrderSums:
    """One (account, symbol): its resting orders (id -> record) and their sums per position side (the
    :meth:`Risk.order_sums` layout)."""

    __slots__ = ("orders", "sums")

    def __init__(self):
        self.orders: dict[int, tuple] = {}
        self.sums: dict[PositionSide, list[int]] = {}

    def add(self, record: tuple, sign: int) -> None:
        position_side, side, price_ticks, lots, reduce_only = record
        sums = self.sums.get(position_side)
        if sums is None:
            sums = self.sums[position_side] = [0, 0, 0, 0, 0, 0]
        buy = side == Side.BUY
        if reduce_only:
            sums[4 if buy else 5] += sign * lots
        else:
            i = 0 if buy else 2
            sums[i] += sign * lots
            sums[i + 1] += sign * price_ticks * lots
