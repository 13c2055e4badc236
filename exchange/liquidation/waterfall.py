"""The liquidation waterfall (rules §7, §10): the engine's *liquidation sweep* stage.

Money in units (10⁻⁸), prices in ticks, quantities in lots, rates ×10⁸. Every step is exact integer
arithmetic; every rounding goes against the liquidated account (rules §1).

When it runs
------------
:meth:`Liquidator.stage` runs after every accepted command (any of them can move a mark, a balance or a
position: fills, marks, index prices, funding on AdvanceTime, deposits, withdrawals, margin moves). On
AdvanceTime the insurance funds first unwind (:mod:`exchange.liquidation.insurance`). Then :meth:`Liquidator.sweep`:

1. ask ``exchange.liquidatable()`` (the one risk query, so an incremental index can replace it) for the
   liquidatable parts — isolated positions and cross accounts (margin balance ≤ MM, rules §5);
2. process them in the total order (margin ratio desc, account id, symbol, position side), re-checking each
   one first (an earlier liquidation may have changed it);
3. repeat until a scan finds nothing.

The waterfall of one part
-------------------------
``LiquidationStarted``; the account enters *liquidation mode* (below). Step 1: cancel the account's orders
(cross: every order in its cross symbols; isolated: every order in that symbol), reason LIQUIDATION, and
re-check. Then each position of the part (cross: every cross position, by symbol and side) is closed in
*steps* while the part stays liquidatable. A step closes ``q`` lots (the profile decides ``q``, below) at
the position's **bankruptcy price** BP (rounded to the tick against the account: a long's down, a short's
up; clamped to the instrument's price range):

- **book**: the liquidation order — a reduce-only order of the account, STP NONE, its id from the
  exchange's order sequence — goes into the book (price-band-clamped; never beyond BP except where the
  profile says). Its fills pay no taker fee; each fill better than BP by ``surplus = |p − BP| × lots × K``
  pays the **liquidation fee** ``min(ceil(p × lots × K × rate / 10⁸), surplus)`` from the part to the
  insurance fund (before the fill is cleared, so it is never more than the fill brings).
- **takeover**: what the book did not fill is taken over by the symbol's insurance fund at BP, as far as
  the fund's limits allow (:class:`~exchange.liquidation.insurance.FundLimits`): the fund's reserved account becomes the
  counterparty (a transfer through clearing, no fee).
- **ADL**: the rest is matched against opposite positions in ADL order (:mod:`exchange.liquidation.adl.ranking`) at BP
  (hyperliquid: the mark), no fee; each deleveraged position's orders in that symbol are canceled (reason
  ADL); an ``ADLFill`` event for each side. Open interest is balanced, so the opposite side always covers.

After the steps, if the part has no exposure left (it was liquidated to nothing): what is left of its margin
goes to the fund (**leftover**: the isolated margin returned on the close, or the cross wallet), and a
negative remainder is **topped up** to zero by the fund (isolated: already by clearing when the position
closed). If that leaves the fund below zero, the loss rule decides: SOCIALIZED takes the shortfall from the
winners of the symbol (positions with uPnL > 0), pro rata to their uPnL (each share rounded down, the
remaining units one each in ADL order, never more than a winner's uPnL); ADL (default) leaves the fund
negative — the venue's loss — because ADL at BP has already kept losses away from the fund.

Partial liquidation (bracket reduction)
---------------------------------------
Binance and bybit first try to reduce the position to a lower bracket: for the highest lower bracket cap
``c`` such that keeping ``floor(c / (mark × K))`` lots would make the part compliant (balance unchanged, as
closing at the mark realizes exactly the uPnL; MM of the kept size), only the excess is liquidated.
Otherwise the whole position. The sweep re-checks after every step, so a reduction that fills worse than
the mark is followed by more steps.

Profiles (rules §10)
-------------------
================ ===================================================================================
binance          IOC limited at BP after bracket reduction; takeover within limits; ADL.
bybit            bracket reduction as FOK at BP; otherwise (or when the FOK fails) the whole position is
                 taken over at BP (no book order); ADL for what the fund cannot take. Isolated BP =
                 ``entry × (1 − 1/leverage)`` for a long, ``entry × (1 + 1/leverage)`` for a short.
bitmex           the whole position as a limit at BP by the engine (IOC); the fund absorbs the rest with no
                 position limit while its equity is above the floor; ADL.
dydx             the venue's rules (:mod:`exchange.liquidation.dydx`, rules §7 "The dydx waterfall"). A sweep is one
                 *block*: each part is liquidated at most once, one position (seeded choice) sized by the
                 block limits, with an IOC at the *fillable price* ``(PNNV − ABR × SMMR × PMMR) / PS``. Each
                 fill is settled against its own bankruptcy quote: the fund takes the capped fee or pays the
                 shortfall, the part keeps the rest (no leftover). The order is sent only for the lots that
                 pass the venue's fill checks (fund ≥ 0, block limits), walked through the resting orders
                 beforehand. No takeover; ADL (seeded order, the whole position at its BP) only when the
                 part's equity is negative and its order filled nothing; otherwise the rest waits.
hyperliquid      a part whose equity is below ``backstop_equity_e8`` × MM (2/3) is taken over whole by the
                 backstop vault (the fund) at BP; otherwise market orders (limited only by the price band),
                 positions above ``slice_min_notional_units`` in slices of ``liquidation_slice_e8`` (20%,
                 rounded up); a slice starts a cooldown of ``liquidation_cooldown_ns`` (30 s) for the account,
                 during which its liquidation orders are for whole positions; ADL at the mark.
================ ===================================================================================

Liquidation mode (-2023 / -4087)
--------------------------------
Set when a part of the account is liquidated (``LiquidationStarted``). While set: placing an order that is
not reduce-only (new or conditional) is rejected with -2023 (user in liquidation mode); amending an opening
order, or a conditional order firing as an opening order, with -4087 (reduce-only orders only).
Cleared (``LiquidationEnded``) at the end of a command when every margin part of the account with exposure
is below the margin-call level (``RiskOptions.margin_call_e8``, 80%) — at once when it was liquidated to
nothing; after a partial liquidation only once it is safe again (a deposit, a price move, a close).

Termination and determinism
---------------------------
Under dydx each part is liquidated at most once per sweep, so the sweep ends. Otherwise every step closes
at least one lot of the liquidated position (book fills, then takeover, then ADL, which always covers).
Consider the pair (resting lots in all books, Σ |lots| of user positions), compared lexicographically: a
step whose order fills consumes resting lots (the first component falls, whatever happens to makers'
positions); a step without book fills moves lots to the fund or closes them against opposite user positions
(the second component falls, the first does not rise — only cancellations touch the books). Conditional
orders fired by liquidation fills or mark moves can add resting lots, but each fires at most once. Haircuts
move no lots. So the sweep ends after finitely many steps. It reads no clock and no unseeded randomness
(dYdX's ADL order and position choice are seeded by ``adl_seed`` plus ``Exchange.sequence``, the command's
position in the run, which snapshots keep), and processes parts in a total order, so the same journal gives
the same events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import ceil, floor

from . import dydx
from .. import _impl
from ..accounts import margin
from .adl import ranking as deleveraging, score as adl
from ..accounts.ledger import Account, Position
from .adl.queue import ADLQueue
from ..clearing.fills import clear_fill
from ..commands import AdvanceTime
from ..enums import (
    BalanceReason, CancelReason, InsuranceReason, OrderType, PositionSide, RejectCode, Side, STPMode, TimeInForce,
)
from ..events import (
    ADLFill, BalanceChanged, LiquidationEnded, LiquidationFill, LiquidationStarted, OrderCanceled, SettlementFill,
    SymbolSettled,
)
from .insurance import FundLimits, InsuranceFunds
from ..profiles import ADLPrice, Backstop, BankruptcyRule, LiquidationOrder, LossRule
from ..accounts.pretrade import CROSS
from ..units import E8, div_ceil, mul_div_ceil, mul_div_floor


@dataclass(frozen=True, slots=True)
class LiquidationConfig:
    """Numbers of the waterfall that are not in the profile. ``fund``: the insurance funds' limits;
    ``slice_min_notional_units``: hyperliquid liquidates positions above this notional in slices (100,000 USDT);
    ``adl_seed``: seed of dYdX's ADL order and liquidated-position choice. (dYdX's liquidation numbers are the
    profile's :class:`~exchange.profiles.DydxLiquidations`.)"""

    fund: FundLimits = field(default_factory=FundLimits)
    slice_min_notional_units: int = 100_000 * E8
    adl_seed: int = 0


LEGACY_LIQUIDATION_KEYS = ("dydx_spread_e8",)  # stored configs may hold it: now the profile's DydxLiquidations


class Liquidator:
    """The liquidation sweep of one :class:`~exchange.engine.Exchange` (it drives the exchange's books and
    ledger through the exchange's own internals, so orders, fills and holds follow the engine's rules)."""

    def __init__(self, exchange, config: LiquidationConfig):
        self.ex = exchange
        self.profile = exchange.profile
        self.config = config
        self.ledger = exchange.ledger
        self.risk = exchange.risk
        compiled = exchange.implementation == "cython"
        self.funds = InsuranceFunds(exchange.ledger, config.fund, exchange.risk.upnl,
                                    lambda: (exchange.sequence - 1, exchange.now_ns), compiled=compiled)
        self.in_liquidation: set[int] = set()
        self.dydx = self.profile.liquidation_order == LiquidationOrder.IOC_AT_FILLABLE_PRICE  # rules 1-4 of exchange.liquidation.dydx
        self.cooldown_until: dict[int, int] = {}  # account -> end (ns) of its cooldown after a sliced liquidation
        self.adl_queue = ADLQueue(exchange.risk, exchange.monitor, compiled=compiled)
        if compiled:  # the per-step glue in C (exchange/liquidation/_waterfall.pyx), over this object's state
            steps = _impl.waterfall_kernel.Steps(self)
            self._liquidate, self._step, self._book = steps.liquidate, steps.step, steps.book
            self._takeover, self._transfer, self.cancel_orders = steps.takeover, steps.transfer, steps.cancel_orders
            self._deleverage = steps.deleverage
            self._kept_lots, self._bankruptcy_ticks = steps.kept_lots, steps.bankruptcy_ticks
            self.stage = steps.stage

    # ==== snapshots ===============================================================================
    def cooldowns(self) -> list[list[int]]:
        """``[[account, end ns], ...]`` of the cooldowns still running (ascending account): part of the state."""
        now = self.ex.now_ns
        return [[account_id, until] for account_id, until in sorted(self.cooldown_until.items()) if until > now]

    def snapshot_state(self) -> list:
        """``[accounts in liquidation mode (ascending), the insurance funds' state, running cooldowns]``
        (:meth:`~exchange.liquidation.insurance.InsuranceFunds.snapshot_state`, :meth:`cooldowns`); the ADL queue's
        caches are derived."""
        return [sorted(self.in_liquidation), self.funds.snapshot_state(), self.cooldowns()]

    def restore_state(self, state) -> None:
        """Load a :meth:`snapshot_state` (one written before cooldowns existed has none). Raises ValueError
        for an account in liquidation mode the ledger does not have."""
        in_liquidation, funds, *rest = state
        self.in_liquidation = {int(account_id) for account_id in in_liquidation}
        if not self.in_liquidation <= self.ledger.accounts.keys():
            raise ValueError("an account in liquidation mode is not in the ledger")
        self.funds.restore_state(funds)
        self.cooldown_until = {int(account_id): int(until) for account_id, until in (rest[0] if rest else [])}

    # ==== the stage ===============================================================================
    def stage(self, command) -> list:
        """Unwind (on AdvanceTime), sweep, release liquidation mode, record fund history."""
        events = self.funds.sync(InsuranceReason.TRADING)
        if isinstance(command, AdvanceTime):
            events += self._unwind()
        events += self.sweep()
        events += self._release()
        events += self.funds.sync(InsuranceReason.TRADING)
        self.ex._touched.difference_update(self.funds.ids())
        self.ex.monitor.forget(self.funds.ids())
        return events

    def sweep(self) -> list:
        """Liquidate until nothing is liquidatable (module docstring: order, termination). dYdX: one sweep is
        one block, in which each part is liquidated at most once."""
        events: list = []
        block: set[tuple] = set()  # dYdX: the parts liquidated in this block
        while True:
            found = self.ex.liquidatable()
            if self.dydx:
                found = [p for p in found if (p.account_id, p.symbol, p.position_side) not in block]
                block.update((p.account_id, p.symbol, p.position_side) for p in found)
            if not found:
                return events
            for part in sorted(found, key=margin.sweep_order):
                events += self._liquidate(self.ledger.accounts[part.account_id], part.symbol, part.position_side)

    def order_code(self, account: Account | None, reduce_only: bool, placing: bool) -> int:
        """-2023 (placing) / -4087 (amending, firing) for an opening order of an account in liquidation mode."""
        if reduce_only or account is None or account.account_id not in self.in_liquidation:
            return RejectCode.OK
        return RejectCode.USER_IN_LIQUIDATION if placing else RejectCode.REDUCE_ONLY_ORDER_PERMISSION

    # ==== one part ================================================================================
    def _liquidate(self, account: Account, part: str, part_side: PositionSide) -> list:
        liquidatable, balance, mm, exposed = self.risk.part_liquidatable(account, part, part_side)
        if not liquidatable:
            return []
        events: list = [LiquidationStarted(account.account_id, part, part_side,
                                           margin.margin_ratio_e8(mm, balance, exposed), balance, mm)]
        self.in_liquidation.add(account.account_id)
        symbols = [s for s in self.ex.instruments if not self.risk.is_isolated(account, s)] if part == CROSS else [part]
        for symbol in symbols:
            events += self.cancel_orders(account.account_id, symbol, CancelReason.LIQUIDATION)
        wallet_before = account.wallet_units
        keys = [(s, side) for s, side in sorted(account.positions) if s in symbols and (part == CROSS or side == part_side)]
        if self.dydx and keys:  # one position per block, from a seeded offset (GetPerpetualPositionToLiquidate)
            keys = [keys[adl.seeded_order(range(len(keys)), self._seed())[0]]]
        symbol = keys[0][0] if keys else part
        for symbol, side in keys:
            while (symbol, side) in account.positions and self.risk.part_liquidatable(account, part, part_side)[0]:
                events += self._step(account, part, symbol, side)
                if self.dydx:
                    break
        if not self.risk.part_liquidatable(account, part, part_side)[3]:  # liquidated to nothing
            events += self._settle(account, part, symbol, wallet_before)
        return events

    def _settle(self, account: Account, part: str, symbol: str, wallet_before: int) -> list:
        """Leftover margin to the fund, a negative remainder topped up, then the loss rule."""
        left = account.wallet_units - wallet_before if part != CROSS else account.wallet_units
        if self.dydx:
            left = min(left, 0)  # the part keeps what is left; only a deficit is topped up
        events: list = []
        if left:
            self.funds.move(symbol, left)
            account.wallet_units -= left
            reason = InsuranceReason.LEFTOVER if left > 0 else InsuranceReason.TOP_UP
            balance_reason = BalanceReason.LIQUIDATION if left > 0 else BalanceReason.INSURANCE_TOP_UP
            events.append(BalanceChanged(account.account_id, -left, account.wallet_units, balance_reason))
            self.ex._touched.add(account.account_id)  # logged after the change (the ADL queue reads the log)
            events += self.funds.sync(reason)
        if self.profile.loss_rule == LossRule.SOCIALIZED and self.funds.balance(symbol) < 0:
            events += self._socialize(symbol)
        return events

    # ==== one step ================================================================================
    def _step(self, account: Account, part: str, symbol: str, side: PositionSide) -> list:
        """Close some lots of one position: book order, then takeover, then ADL (module docstring)."""
        position = self.ledger.accounts[account.account_id].positions[(symbol, side)]
        long = position.lots > 0
        bp = self._bankruptcy_ticks(account, part, symbol, side, position)
        order = self.profile.liquidation_order
        qty = self._step_qty(account, part, symbol, side, position)
        events: list = []
        filled = 0
        book_order = None  # (order type, tif, limit) of the order sent to the book, if any
        if self._vault_takes_over(account, part, side):
            qty = abs(position.lots)
        elif order == LiquidationOrder.IOC_AT_BANKRUPTCY or order == LiquidationOrder.LIMIT_AT_BANKRUPTCY:
            book_order = OrderType.LIMIT, TimeInForce.IOC, bp
        elif order == LiquidationOrder.FOK_TIER_THEN_TAKEOVER and qty < abs(position.lots):
            book_order = OrderType.LIMIT, TimeInForce.FOK, bp
        elif order == LiquidationOrder.IOC_AT_FILLABLE_PRICE:
            book_order = OrderType.LIMIT, TimeInForce.IOC, self._fillable_ticks(account, part, symbol, side, position)
        elif order == LiquidationOrder.MARKET_SLICES:
            book_order = OrderType.MARKET, TimeInForce.IOC, 0
            if qty < abs(position.lots):  # a slice: the account's next liquidation orders are whole positions
                self._start_cooldown(account.account_id)
        if book_order is not None:
            inst = self.ex.instruments[symbol]
            qty = min(qty, inst.max_market_qty_lots if book_order[0] == OrderType.MARKET else inst.max_qty_lots)
            if self.dydx:  # only what fills before a fill would fail the venue's checks
                qty = self._dydx_fillable_lots(account, part, symbol, side, long, book_order[2], qty)
            filled, placed = self._book(account, symbol, side, long, book_order, qty, bp) if qty else (0, [])
            events += placed
            if book_order[1] == TimeInForce.FOK and not filled:
                qty = abs(position.lots)  # bybit: the reduction failed, the whole position goes to the fund
            else:
                qty -= filled
        if self.dydx:  # the rest waits for the next block; only a bankrupt part whose order filled nothing is deleveraged
            bankrupt = self.risk.part_state(account, part, side)[0] < 0
            qty = self._open_lots(account, symbol, side) if bankrupt and not filled else 0
        qty = min(qty, self._open_lots(account, symbol, side))
        if qty:
            before = self._open_lots(account, symbol, side)
            events += self._takeover(account, symbol, side, long, qty, bp)
            qty -= before - self._open_lots(account, symbol, side)
        if qty:
            events += self._deleverage(account, symbol, side, long, qty, bp)
        return events

    @staticmethod
    def _open_lots(account: Account, symbol: str, side: PositionSide) -> int:
        position = account.positions.get((symbol, side))
        return abs(position.lots) if position is not None else 0

    def _step_qty(self, account: Account, part: str, symbol: str, side: PositionSide, position: Position) -> int:
        lots = abs(position.lots)
        order = self.profile.liquidation_order
        if order == LiquidationOrder.MARKET_SLICES:
            cooling = self.cooldown_until.get(account.account_id, 0) > self.ex.now_ns
            if not cooling and self.risk.notional(symbol, position) > self.config.slice_min_notional_units:
                return min(lots, div_ceil(lots * self.profile.liquidation_slice_e8, E8))
            return lots
        if order in (LiquidationOrder.IOC_AT_BANKRUPTCY, LiquidationOrder.FOK_TIER_THEN_TAKEOVER):
            return lots - self._kept_lots(account, part, symbol, side, position)
        if order == LiquidationOrder.IOC_AT_FILLABLE_PRICE:
            lot_value = self.risk.mark_of(symbol) * self.ex.instruments[symbol].k_units
            return dydx.liquidation_lots(lots, lot_value, self.profile.dydx)
        return lots

    def _start_cooldown(self, account_id: int) -> None:
        """Hyperliquid: after a sliced liquidation the account's liquidation orders are for whole positions
        until ``now + liquidation_cooldown_ns`` (expired cooldowns are dropped here)."""
        now = self.ex.now_ns
        self.cooldown_until = {a: until for a, until in self.cooldown_until.items() if until > now}
        if self.profile.liquidation_cooldown_ns:
            self.cooldown_until[account_id] = now + self.profile.liquidation_cooldown_ns

    def _kept_lots(self, account: Account, part: str, symbol: str, side: PositionSide, position: Position) -> int:
        """Bracket reduction: the most lots the position can keep in a lower bracket so that the part is
        compliant (not liquidatable by the profile's rule) with the rest closed at the mark; 0 when no lower
        bracket does. The kept lots keep their share of the entry cost (an isolated MM on the entry value)."""
        rows = self.risk.brackets[symbol]
        lot_value = self.risk.mark_of(symbol) * self.ex.instruments[symbol].k_units
        current = margin.bracket_index(rows, abs(position.lots) * lot_value)
        balance, mm, _ = self.risk.part_state(account, part, side)
        others_mm = mm - self.risk.part_mm(account, symbol, position)
        sign = 1 if position.lots > 0 else -1
        for row in reversed(rows[:current]):
            keep = min(row.cap_units // lot_value, abs(position.lots) - 1)
            if keep <= 0:
                return 0
            kept_cost = position.entry_cost - div_ceil(position.entry_cost * (abs(position.lots) - keep),
                                                       abs(position.lots))  # as clearing removes it
            if not self.risk.is_liquidatable(
                    balance, others_mm + self.risk.part_mm(account, symbol, Position(sign * keep, kept_cost)), True):
                return keep
        return 0

    def _vault_takes_over(self, account: Account, part: str, side: PositionSide) -> bool:
        """Hyperliquid: the backstop vault takes the whole part when equity < backstop level × MM (level 0:
        no vault)."""
        if not self._has_vault():
            return False
        balance, mm, _ = self.risk.part_state(account, part, side)
        return balance * E8 < self.profile.backstop_equity_e8 * mm

    def _has_vault(self) -> bool:
        """Whether the profile has a backstop vault (hyperliquid with a backstop level)."""
        return self.profile.backstop == Backstop.BACKSTOP_VAULT and bool(self.profile.backstop_equity_e8)

    # -- prices ------------------------------------------------------------------------------------
    def bankruptcy_price_exact(self, account: Account, part: str, symbol: str, side: PositionSide) -> Fraction | None:
        """BP of an open position per the profile's rule (rules §10), exact; None when there is none (≤ 0, or a
        net size of 0 under the zero-balance rule)."""
        exact = self._rule_bankruptcy(account, part, symbol, side)
        if exact is None:
            return self.risk.bankruptcy_price_exact(account, symbol, side)
        return exact if exact > 0 else None

    def bankruptcy_price_ticks(self, account: Account, part: str, symbol: str, side: PositionSide) -> int | None:
        """:meth:`bankruptcy_price_exact` rounded against the account (a long's down, a short's up; the
        zero-balance rule rounds by the part's net size in the symbol, rules §5; dYdX toward the account, as the
        venue rounds); None when there is none."""
        exact = self._rule_bankruptcy(account, part, symbol, side)
        if exact is None:
            return self.risk.bankruptcy_price_ticks(account, symbol, side)
        if exact <= 0:
            return None
        long = account.positions[(symbol, side)].lots > 0
        if self._toward_account():
            return ceil(exact) if long else floor(exact)
        return floor(exact) if long else ceil(exact)

    def _rule_bankruptcy(self, account: Account, part: str, symbol: str, side: PositionSide) -> Fraction | None:
        """The exact BP of a profile-specific rule (bybit isolated, dYdX), possibly ≤ 0; None under the
        zero-balance rule (:meth:`exchange.accounts.pretrade.Risk.bankruptcy_price_exact`)."""
        position = account.positions[(symbol, side)]
        if not self._rule_prices(part):
            return None
        long = position.lots > 0
        if self.profile.bankruptcy == BankruptcyRule.ENTRY_IMR:
            leverage = self.ledger.settings(account, symbol).exact_leverage
            return Fraction(abs(position.entry_cost) * (leverage - 1 if long else leverage + 1),
                            abs(position.lots) * leverage)
        risk = self._dydx_part(account, part, symbol, side)  # DYDX_DELTA: the whole position's quote, as the venue computes it
        return Fraction(dydx.bankruptcy_quote(risk, abs(position.lots), 0), position.lots * risk.k)

    def _rule_prices(self, part: str) -> bool:
        """Whether a profile-specific rule gives the BP of ``part`` (bybit isolated, dYdX); else the zero-balance rule."""
        rule = self.profile.bankruptcy
        return rule == BankruptcyRule.DYDX_DELTA or (rule == BankruptcyRule.ENTRY_IMR and part != CROSS)

    def _toward_account(self) -> bool:
        """dYdX rounds its bankruptcy price toward the account (a long's up, a short's down); the others against."""
        return self.profile.bankruptcy == BankruptcyRule.DYDX_DELTA

    def _bankruptcy_ticks(self, account: Account, part: str, symbol: str, side: PositionSide, position: Position) -> int:
        """BP of the position per the profile's rule, rounded as the profile rounds it, clamped to the price range."""
        long = position.lots > 0
        exact = self._rule_bankruptcy(account, part, symbol, side)
        if exact is None:  # the zero-balance rule: already whole ticks, no Fraction to round
            ticks = self.risk.bankruptcy_price_ticks(account, symbol, side)
            return self._clamp(symbol, ticks if ticks is not None else 0 if long else 2**63)
        if self._toward_account():
            return self._clamp(symbol, ceil(exact) if long else floor(exact))
        return self._clamp(symbol, floor(exact) if long else ceil(exact))

    def _fillable_ticks(self, account: Account, part: str, symbol: str, side: PositionSide, position: Position) -> int:
        """dYdX fillable price (:mod:`exchange.liquidation.dydx`), rounded as the venue, clamped to the price range."""
        return self._clamp(symbol, dydx.fillable_price_ticks(self._dydx_part(account, part, symbol, side),
                                                             self.profile.dydx))

    # -- dYdX --------------------------------------------------------------------------------------
    def _dydx_part(self, account: Account, part: str, symbol: str, side: PositionSide) -> dydx.PartRisk:
        """The position and its part as :mod:`exchange.liquidation.dydx`'s formulas see them."""
        position = account.positions[(symbol, side)]
        tnc, tmmr, _ = self.risk.part_state(account, part, side)
        held = self.risk.cross_positions(account) if part == CROSS else [(symbol, position)]
        return dydx.PartRisk(tnc, tmmr, sum(self.risk.notional(s, p) for s, p in held), position.lots,
                             self.risk.position_mm(symbol, position), self.risk.mark_of(symbol),
                             self.ex.instruments[symbol].k_units)

    def _mm_of(self, symbol: str):
        """MM of a position of n lots of ``symbol`` at the mark (as :meth:`Risk.position_mm`)."""
        rows, lot_value = self.risk.brackets[symbol], self.risk.mark_of(symbol) * self.ex.instruments[symbol].k_units
        return lambda lots: margin.maintenance_margin(rows, lots * lot_value)

    def _dydx_fillable_lots(self, account: Account, part: str, symbol: str, side: PositionSide, long: bool,
                            limit: int, qty: int) -> int:
        """How many of ``qty`` lots the book fills for the liquidation order at ``limit`` (band-clamped) before a
        fill would fail the venue's checks (fund below zero, block limits): the resting orders it meets are
        walked in priority order with the part's state carried from fill to fill."""
        book = self.ex._books[symbol]
        limit = self._band_limit(symbol, long, limit)
        best = book.best_bid() if long else book.best_ask()
        if not best or (best < limit if long else best > limit):
            return 0
        makers = self._makers(book, long, limit)
        return dydx.fillable_lots(self._dydx_part(account, part, symbol, side), makers, qty, self.funds.balance(symbol),
                                  self._mm_of(symbol), self.profile.dydx)

    @staticmethod
    def _makers(book, long: bool, limit: int):
        """``(price, lots)`` of the resting orders an order selling (``long``) or buying at ``limit`` meets, in
        priority order (the book's canonical state lists the bids, then the asks, best first)."""
        wanted = Side.BUY if long else Side.SELL
        for entry in book.canonical_state()[3:]:
            order_side, price, lots = entry[2], entry[3], entry[4]
            if order_side != wanted:
                if long:
                    return  # the asks follow the bids
                continue
            if price < limit if long else price > limit:
                return
            yield price, lots

    def _clamp(self, symbol: str, ticks: int) -> int:
        inst = self.ex.instruments[symbol]
        return min(max(ticks, inst.min_price_ticks), inst.max_price_ticks)

    # -- the book ----------------------------------------------------------------------------------
    def _book(self, account: Account, symbol: str, side: PositionSide, long: bool, book_order, qty: int,
              bp: int) -> tuple[int, list]:
        """Send the liquidation order; ``(lots filled, events)``. A LIMIT is clamped into the price band."""
        order_type, tif, limit = book_order
        book = self.ex._books[symbol]
        if order_type == OrderType.LIMIT:
            limit = self._band_limit(symbol, long, limit)
        order_id = self.ex.next_order_id
        before = abs(account.positions[(symbol, side)].lots)
        code = book.place(order_id, account.account_id, Side.SELL if long else Side.BUY, order_type, tif, limit, qty,
                          STPMode.NONE, 1, 0)
        if code:
            book.clear_events()
            return 0, []
        self.ex.next_order_id += 1
        self.ex._position_sides[order_id] = side
        events = self.ex._drain(symbol, order_type,
                                on_taker_fill=lambda fill: self._fill_fee(account, symbol, side, long, fill, bp))
        events += self.ex._fire_triggers(symbol, events)
        events += self._refresh_mark(symbol)
        after = account.positions.get((symbol, side))
        events += self.funds.sync(InsuranceReason.TOP_UP)  # an isolated deficit covered when the position closed
        return before - (abs(after.lots) if after is not None else 0), events

    def _band_limit(self, symbol: str, long: bool, limit: int) -> int:
        """A liquidation LIMIT's price clamped into the price band around the mark (when there is one)."""
        mark = self.ex._books[symbol].mark()
        if not mark:
            return limit
        inst = self.ex.instruments[symbol]
        if long:
            return max(limit, mul_div_ceil(mark, inst.band_down_e8, E8))
        return min(limit, mul_div_floor(mark, inst.band_up_e8, E8))

    def _fill_fee(self, account: Account, symbol: str, side: PositionSide, long: bool, fill, bp: int) -> list:
        """Before a liquidation fill is cleared: the fee (capped by the surplus over BP) to the fund, or (an
        INSURANCE_PER_FILL backstop) the fund paying the shortfall below BP; dYdX: the fill's insurance-fund delta
        (:mod:`exchange.liquidation.dydx`). Each moves money between the part and the fund."""
        k = self.ex.instruments[symbol].k_units
        surplus = (1 if long else -1) * (fill.price_ticks - bp) * fill.qty_lots * k
        fee = 0
        if self.dydx:  # the fill against its own bankruptcy quote (exchange.liquidation.dydx)
            part = symbol if self.risk.is_isolated(account, symbol) else CROSS
            moved = dydx.fill(self._dydx_part(account, part, symbol, side), fill.price_ticks, fill.qty_lots,
                              self._mm_of(symbol), self.profile.dydx)[0]
            fee = max(moved, 0)
            reason = InsuranceReason.LIQUIDATION_FEE if moved > 0 else InsuranceReason.PER_FILL
        elif surplus >= 0:
            fee = min(mul_div_ceil(fill.price_ticks * fill.qty_lots * k, self.ex.instruments[symbol].liquidation_fee_e8,
                                   E8), surplus)
            moved, reason = fee, InsuranceReason.LIQUIDATION_FEE
        elif self.profile.backstop == Backstop.INSURANCE_PER_FILL:
            moved, reason = surplus, InsuranceReason.PER_FILL
        else:
            moved, reason = 0, InsuranceReason.LIQUIDATION_FEE
        events: list = [LiquidationFill(symbol, account.account_id, side, Side.SELL if long else Side.BUY,
                                        fill.price_ticks, fill.qty_lots, bp, fee, fill.taker_order_id,
                                        fill.maker_account_id)]
        if moved:
            events += self._charge_part(account, symbol, side, moved, BalanceReason.LIQUIDATION)
            self.funds.move(symbol, moved)
            events += self.funds.sync(reason)
        return events

    def _charge_part(self, account: Account, symbol: str, side: PositionSide, units: int, reason) -> list:
        """Take ``units`` (negative: give) from the margin of the position's part."""
        events = []
        if self.risk.is_isolated(account, symbol):
            account.positions[(symbol, side)].isolated_margin_units -= units
        else:
            account.wallet_units -= units
            events.append(BalanceChanged(account.account_id, -units, account.wallet_units, reason))
        self.ex._touched.add(account.account_id)  # logged after the change (the ADL queue reads the log)
        return events

    def _refresh_mark(self, symbol: str) -> list:
        """Median mark with the new last price (cascades: rules §7 via §6)."""
        book = self.ex._books[symbol]
        mark = self.ex.prices.refresh_mark(symbol, self.ex.now_ns, book.last_price())
        if mark is None or mark == book.mark():
            return []
        return self.ex._move_mark(symbol, mark)

    # -- takeover and ADL ----------------------------------------------------------------------------
    def _takeover(self, account: Account, symbol: str, side: PositionSide, long: bool, qty: int, bp: int) -> list:
        """The fund takes over what it may of ``qty`` lots at ``bp`` (:meth:`_takeover_lots`)."""
        taken = self._takeover_lots(symbol, qty, long)
        if not taken:
            return []
        fund = self.funds.fund(symbol)
        events: list = [LiquidationFill(symbol, account.account_id, side, Side.SELL if long else Side.BUY, bp, taken,
                                        bp, 0, 0, fund.account_id)]
        events += self._transfer(symbol, account, side, long, fund, PositionSide.BOTH, bp, taken)
        return events + self.funds.sync(InsuranceReason.TAKEOVER)

    def _takeover_lots(self, symbol: str, qty: int, long: bool) -> int:
        """How many of ``qty`` lots the fund takes over, by the profile's loss rule and backstop."""
        backstop = self.profile.backstop
        if self.profile.loss_rule == LossRule.SOCIALIZED:
            return qty
        if backstop == Backstop.INSURANCE_PER_FILL:
            return 0
        limited = backstop in (Backstop.INSURANCE_TAKEOVER, Backstop.BACKSTOP_VAULT)
        return self.funds.takeover_lots(symbol, qty, long, limited)

    def _deleverage(self, account: Account, symbol: str, side: PositionSide, long: bool, qty: int, bp: int,
                    at_bankruptcy: bool = False, skip: frozenset = frozenset()) -> list:
        """Close ``qty`` lots against the opposite side in ADL order, at ``bp`` (or the mark, by the profile's
        ADL price; always ``bp`` when ``at_bankruptcy``), passing over the accounts in ``skip``."""
        at_bp = at_bankruptcy or self.profile.adl_price == ADLPrice.BANKRUPTCY
        price = bp if at_bp else self.risk.mark_of(symbol)
        events: list = []
        queue = self.adl_queue.order(symbol, not long, self.profile.adl_ranking, self._seed(), self.ex._touched,
                                     account.account_id)
        for counter_id, counter_side in queue:
            if not qty:
                break
            if counter_id in skip:
                continue
            counter = self.ledger.accounts[counter_id]
            q = min(qty, abs(counter.positions[(symbol, counter_side)].lots))
            events += self.cancel_orders(counter_id, symbol, CancelReason.ADL)
            sell, buy = (Side.SELL, Side.BUY) if long else (Side.BUY, Side.SELL)
            events.append(ADLFill(symbol, account.account_id, side, sell, price, q, counter_id, True))
            events.append(ADLFill(symbol, counter_id, counter_side, buy, price, q, account.account_id, False))
            events += self._transfer(symbol, account, side, long, counter, counter_side, price, q)
            qty -= q
        return events + self.funds.sync(InsuranceReason.TAKEOVER)

    def _seed(self) -> int:
        """dYdX's pseudo-random seed: the config's plus the command's position in the run (kept by snapshots)."""
        return self.config.adl_seed + self.ex.sequence

    def _transfer(self, symbol: str, account: Account, side: PositionSide, long: bool, counter: Account,
                  counter_side: PositionSide, price: int, qty: int) -> list:
        """Close ``qty`` lots of the liquidated position against ``counter`` at ``price``, no fee."""
        inst = self.ex.instruments[symbol]
        events = clear_fill(self.ledger, inst, account, side, not long, price, qty, 0)
        events += clear_fill(self.ledger, inst, counter, counter_side, long, price, qty, 0)
        for party in (account, counter):
            self.risk.refresh_holds(party, symbol)
            self.ex._touched.add(party.account_id)
        return events

    def _socialize(self, symbol: str) -> list:
        """Cover the fund's shortfall pro rata from the symbol's winners (module docstring)."""
        shortfall = -self.funds.balance(symbol)
        winners = []
        for long in (True, False):
            for key in deleveraging.ranked(self.risk, symbol, long, self.profile.adl_ranking, self.config.adl_seed):
                account = self.ledger.accounts[key[0]]
                upnl = self.risk.upnl(symbol, account.positions[(symbol, key[1])])
                if upnl > 0 and not self.funds.is_fund(key[0]):
                    winners.append((account, key[1], upnl))
        total = sum(upnl for _, _, upnl in winners)
        if not total:
            return []
        shares = [min(upnl, shortfall * upnl // total) for _, _, upnl in winners]
        rest = min(shortfall, total) - sum(shares)
        for i, (_, _, upnl) in enumerate(winners):
            extra = min(rest, upnl - shares[i])
            shares[i] += extra
            rest -= extra
        events: list = []
        for (account, side, _), share in zip(winners, shares):
            if share:
                events += self._charge_part(account, symbol, side, share, BalanceReason.SOCIALIZED_LOSS)
                self.funds.move(symbol, share)
                self.ex._touched.add(account.account_id)
        return events + self.funds.sync(InsuranceReason.SOCIALIZED)

    # ==== final settlement ========================================================================
    def settle_symbol(self, symbol: str, price: int) -> list:
        """Close every position in ``symbol`` at ``price`` (``SettleSymbol``; ``docs/liquidation.md`` "Final
        settlement"):

        1. every open order in the symbol is canceled, and the mark moves to the settlement price;
        2. a part the price leaves bankrupt (margin balance < 0) is covered by the insurance fund while the fund
           can pay its deficit; otherwise (and always under dYdX, which deleverages negative-TNC subaccounts at
           their bankruptcy price) its position is closed at its bankruptcy price against the opposite side, in
           the profile's ADL order, passing over the other bankrupt parts;
        3. every position left closes at the settlement price, longs against shorts by (account, side), funds last;
        4. the fund pays the deficits it covered in step 2.

        No fee. O(accounts + positions in the symbol)."""
        events: list = []
        for account_id in sorted(self.ledger.accounts):
            events += self.cancel_orders(account_id, symbol, CancelReason.SETTLEMENT)
        if self.ex._books[symbol].mark() != price:
            events += self.ex._move_mark(symbol, price)
        bankrupt = []  # (account, part, side, deficit) in account order
        for long in (True, False):
            users, _ = deleveraging.side_positions(self.ledger, symbol, long)
            for account_id, side in users:
                account = self.ledger.accounts[account_id]
                part, part_side = (symbol, side) if self.risk.is_isolated(account, symbol) else (CROSS, PositionSide.BOTH)
                balance = self.risk.part_state(account, part, part_side)[0]
                if balance < 0:
                    bankrupt.append((account, part, side, -balance))
        bankrupt.sort(key=lambda entry: (entry[0].account_id, entry[2]))
        skip = frozenset(entry[0].account_id for entry in bankrupt)
        covered, capacity = [], 0 if self.dydx else max(self.funds.balance(symbol), 0)
        for account, part, side, deficit in bankrupt:
            if deficit <= capacity:
                capacity -= deficit
                covered.append((account, deficit))
                continue
            position = account.positions.get((symbol, side))
            if position is None or not position.lots:
                continue
            long = position.lots > 0
            bp = self._bankruptcy_ticks(account, part, symbol, side, position)
            events += self._deleverage(account, symbol, side, long, abs(position.lots), bp, True, skip)
        lots = 0
        longs, shorts = (sum(deleveraging.side_positions(self.ledger, symbol, long), []) for long in (True, False))
        i = j = 0
        while i < len(longs) and j < len(shorts):
            (long_id, long_side), (short_id, short_side) = longs[i], shorts[j]
            buyer, seller = self.ledger.accounts[long_id], self.ledger.accounts[short_id]
            q = min(buyer.positions[(symbol, long_side)].lots, -seller.positions[(symbol, short_side)].lots)
            events.append(SettlementFill(symbol, long_id, long_side, Side.SELL, price, q, short_id, False))
            events.append(SettlementFill(symbol, short_id, short_side, Side.BUY, price, q, long_id, False))
            events += self._transfer(symbol, buyer, long_side, True, seller, short_side, price, q)
            lots += q
            i += (symbol, long_side) not in buyer.positions
            j += (symbol, short_side) not in seller.positions
        for account, deficit in covered:
            self.funds.move(symbol, -deficit)
            account.wallet_units += deficit
            self.ex._touched.add(account.account_id)
            events.append(BalanceChanged(account.account_id, deficit, account.wallet_units, BalanceReason.SETTLEMENT))
        events += self.funds.sync(InsuranceReason.SETTLEMENT)
        return events + [SymbolSettled(symbol, price, lots)]

    # ==== orders, unwinding, liquidation mode ====================================================
    def cancel_orders(self, account_id: int, symbol: str, reason: CancelReason) -> list:
        """Cancel every open order (resting and conditional) of the account in ``symbol``; refresh its holds."""
        book = self.ex._books[symbol]
        events: list = []
        for order_id in book.orders_of(account_id):
            _, _, order_side, price_ticks, leaves_lots, *_ = book.order(order_id)
            book.cancel(order_id, account_id)
            del self.ex._position_sides[order_id]
            events.append(OrderCanceled(symbol, order_id, account_id, Side(order_side), price_ticks, leaves_lots, reason))
        book.clear_events()
        for order_id in self.ex._triggers[symbol].orders_of(account_id):
            events.append(self.ex._cancel_conditional(symbol, order_id, reason))
        if events:
            self.risk.refresh_holds(self.ledger.accounts[account_id], symbol)
            self.ex._touched.add(account_id)
        return events

    def _unwind(self) -> list:
        """Each fund position: one IOC reduce-only order near the mark (:mod:`exchange.liquidation.insurance`)."""
        events: list = []
        for fund_id in self.funds.ids():
            account = self.ledger.get(fund_id)
            for (symbol, side), position in sorted(account.positions.items()) if account is not None else ():
                book = self.ex._books[symbol]
                if not book.mark():
                    continue
                buy, limit, qty = self.funds.unwind_order(self.ex.instruments[symbol], position.lots, book.mark())
                order_id = self.ex.next_order_id
                if book.place(order_id, fund_id, Side.BUY if buy else Side.SELL, OrderType.LIMIT, TimeInForce.IOC,
                              limit, qty, STPMode.NONE, 1, 0):
                    book.clear_events()
                    continue
                self.ex.next_order_id += 1
                self.ex._position_sides[order_id] = side
                placed = self.ex._drain(symbol)
                events += placed + self.ex._fire_triggers(symbol, placed)
        return events

    def _release(self) -> list:
        """Clear liquidation mode of accounts whose every part is below the margin-call level."""
        events: list = []
        level = self.ex.options.margin_call_e8
        for account_id in sorted(self.in_liquidation):
            account = self.ledger.accounts[account_id]
            if all(self.risk.margin_ratio_e8(account, s, side) < level for s, side in self.risk.parts(account)):
                self.in_liquidation.discard(account_id)
                events.append(LiquidationEnded(account_id))
        return events
