"""Insurance funds (rules §7 steps 3, 4, 6; §10 "backstop"): balances, takeover limits, unwinding, history.

A fund is a reserved ledger account (:data:`exchange.accounts.ledger.FUND_ACCOUNT_BASE`; one per symbol, or one
shared by every symbol when the profile's ``insurance_scope`` is SHARED). Its **balance** is that account's
wallet (units); a position it takes over is an ordinary position of that account, so the fund is the
counterparty and open interest stays balanced. Money only enters a fund from the ledger (liquidation fees,
leftover margin, haircuts, realized PnL of its positions) or from :class:`~exchange.commands.FundInsurance`
(counted as a deposit), so rules §9 conservation needs no extra term.

**History**: every balance change is recorded once, as an :class:`HistoryEntry` and an
:class:`~exchange.events.InsuranceFundChanged` event, by :meth:`InsuranceFunds.sync`: the waterfall calls it
right after each step with the step's reason (a change made inside clearing, e.g. an isolated deficit topped
up when the position closes, is attributed to the step that caused it) and the engine calls it at the end of
every command with reason TRADING (the fund's own fills: unwinding, realized PnL, fees). History is derived
from the journal, so it is not part of the state hash.

**Limits** (:class:`FundLimits`, configurable): a takeover is allowed while the fund's equity (balance +
uPnL of its positions at the mark) is above ``min_equity_units`` and only up to ``max_position_lots`` of
fund position per symbol (None = no limit).

**Unwinding**: on every AdvanceTime the fund sends, per open position in symbol order, one IOC reduce-only
order of ``min(|lots|, max_qty)`` limited at ``unwind_e8`` from the mark (sell at ≥ ``ceil(mark × (1 −
unwind))``, buy at ≤ ``floor(mark × (1 + unwind))``), inside the instrument's price band and range.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..accounts.ledger import FUND_ACCOUNT_BASE, Account, Ledger
from ..enums import InsuranceReason, PositionSide
from ..events import InsuranceFundChanged
from ..spec import Instrument
from ..units import E8, mul_div_ceil, mul_div_floor


@dataclass(frozen=True, slots=True)
class FundLimits:
    """What a fund may take over, and how it unwinds. ``min_equity_units``: takeover only while the fund's
    equity is above it; ``max_position_lots``: largest |fund position| per symbol after a takeover (None = no
    limit, 0 = never take over); ``unwind_e8``: unwind limit distance from the mark (×10⁸, default 1%)."""

    min_equity_units: int = 0
    max_position_lots: int | None = None
    unwind_e8: int = 1_000_000

    def __post_init__(self):
        if self.max_position_lots is not None and self.max_position_lots < 0:
            raise ValueError("max_position_lots must be ≥ 0 or None")
        if not 0 <= self.unwind_e8 < E8:
            raise ValueError("unwind_e8 must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One balance change of a fund: ``seq`` = index of the command in the run (``Exchange.sequence`` − 1 while
    it is applied: its journal index, kept across snapshots), money in units."""

    seq: int
    now_ns: int
    fund_account_id: int
    delta_units: int
    balance_units: int
    reason: InsuranceReason


class InsuranceFunds:
    """The funds of one exchange over its ledger. ``upnl(symbol, position)`` values a position at the mark;
    ``clock()`` gives ``(seq, now_ns)`` of the command being applied, for the history; ``compiled``: :meth:`sync`
    and :meth:`equity` run in their compiled twin (:mod:`exchange.liquidation._waterfall`)."""

    def __init__(self, ledger: Ledger, limits: FundLimits, upnl, clock, compiled: bool = False):
        self.ledger = ledger
        self.limits = limits
        self.upnl = upnl
        self.clock = clock
        self.history: list[HistoryEntry] = []
        self._recorded: dict[int, int] = {}  # fund account id -> balance at the last history entry
        self._ids = tuple(sorted(set(ledger.fund_ids.values())))
        self._symbols = {fund_id: self.symbol_of(fund_id) for fund_id in self._ids}  # (fund ids are fixed)
        self.twin = None  # compiled: the twins of sync and equity (the liquidation stage calls sync in C)
        if compiled:
            from .. import _impl

            twin = self.twin = _impl.waterfall_kernel.Funds(self, HistoryEntry)
            self.sync, self.equity = twin.sync, twin.equity

    # -- queries ----------------------------------------------------------------------------------
    def account_id(self, symbol: str) -> int:
        return self.ledger.fund_ids[symbol]

    def ids(self) -> tuple[int, ...]:
        """The funds' account ids, ascending (fixed by the ledger)."""
        return self._ids

    def is_fund(self, account_id: int) -> bool:
        return account_id >= FUND_ACCOUNT_BASE

    def balance(self, symbol: str) -> int:
        """The fund's wallet (units); 0 before it was first used."""
        account = self.ledger.get(self.account_id(symbol))
        return account.wallet_units if account is not None else 0

    def equity(self, symbol: str) -> int:
        """Balance + uPnL of every position of the fund at the mark (units)."""
        account = self.ledger.get(self.account_id(symbol))
        if account is None:
            return 0
        return account.wallet_units + sum(self.upnl(s, p) for (s, _), p in sorted(account.positions.items()))

    def symbol_of(self, account_id: int) -> str:
        """A symbol the fund serves (the first; for the shared fund any symbol names it)."""
        return min(s for s, i in self.ledger.fund_ids.items() if i == account_id)

    # -- takeover -------------------------------------------------------------------------------------
    def takeover_lots(self, symbol: str, lots: int, buy: bool, limited: bool) -> int:
        """How many of ``lots`` the fund may take over in ``symbol`` (buying when ``buy``). ``limited``
        applies :class:`FundLimits`'s max position; the equity floor always applies."""
        if self.equity(symbol) <= self.limits.min_equity_units:
            return 0
        if not limited or self.limits.max_position_lots is None:
            return lots
        held = self.ledger.position(self.ledger.get(self.account_id(symbol)), symbol, PositionSide.BOTH).lots
        after_max = self.limits.max_position_lots
        room = after_max - held if buy else after_max + held  # |held + d| ≤ max
        return max(0, min(lots, room))

    # -- money and history ----------------------------------------------------------------------------
    def fund(self, symbol: str) -> Account:
        return self.ledger.fund_account(symbol)

    def move(self, symbol: str, delta_units: int) -> None:
        """Add ``delta_units`` (may be negative) to the fund's balance; the caller moves the opposite amount
        elsewhere in the ledger and calls :meth:`sync`."""
        self.fund(symbol).wallet_units += delta_units

    def sync(self, reason: InsuranceReason) -> list[InsuranceFundChanged]:
        """Record every fund balance change since the last record, attributed to ``reason``. O(funds)."""
        events = []
        accounts, recorded = self.ledger.accounts, self._recorded
        for fund_id in self._ids:
            account = accounts.get(fund_id)
            balance = account.wallet_units if account is not None else 0
            delta = balance - recorded.get(fund_id, 0)
            if delta:
                recorded[fund_id] = balance
                self.history.append(HistoryEntry(*self.clock(), fund_id, delta, balance, reason))
                events.append(InsuranceFundChanged(fund_id, self._symbols[fund_id], delta, balance, reason))
        return events

    # -- snapshots --------------------------------------------------------------------------------------
    def snapshot_state(self) -> list:
        """``[history, recorded]``: every history entry ``[seq, now, fund id, delta, balance, reason]`` oldest
        first, and ``[[fund id, balance at its last entry], ...]`` by id (what :meth:`sync` compares with)."""
        history = [[e.seq, e.now_ns, e.fund_account_id, e.delta_units, e.balance_units, int(e.reason)]
                   for e in self.history]
        return [history, [[fund_id, self._recorded[fund_id]] for fund_id in sorted(self._recorded)]]

    def restore_state(self, state) -> None:
        """Load a :meth:`snapshot_state`. Raises ValueError for an unknown reason or fund account."""
        history, recorded = state
        self.history = [
            HistoryEntry(int(seq), int(now), int(fund_id), int(delta), int(balance), InsuranceReason(reason))
            for seq, now, fund_id, delta, balance, reason in history
        ]
        self._recorded = {int(fund_id): int(balance) for fund_id, balance in recorded}
        if not set(self._recorded) <= set(self._ids):
            raise ValueError("insurance state names an account that is not a fund")

    def unwind_order(self, inst: Instrument, lots: int, mark_ticks: int) -> tuple[bool, int, int]:
        """``(buy, limit_ticks, qty_lots)`` of the IOC that unwinds a fund position of ``lots`` (≠ 0)."""
        buy = lots < 0
        if buy:
            limit = min(mul_div_floor(mark_ticks, E8 + self.limits.unwind_e8, E8),
                        mul_div_floor(mark_ticks, inst.band_up_e8, E8), inst.max_price_ticks)
        else:
            limit = max(mul_div_ceil(mark_ticks, E8 - self.limits.unwind_e8, E8),
                        mul_div_ceil(mark_ticks, inst.band_down_e8, E8), inst.min_price_ticks)
        return buy, limit, min(abs(lots), inst.max_qty_lots)
