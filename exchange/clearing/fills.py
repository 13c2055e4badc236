"""Clearing: one side of a fill -> the account's position, realized PnL, fee and isolated margin (rules §4, §5).

A fill of ``q`` lots at ``p`` ticks changes the position key the order names (``BOTH`` one-way, ``LONG`` /
``SHORT`` hedge) by ``d = ±q`` (buy +). With ``K`` = money units per tick·lot:

- **open / increase** (flat, or same sign): ``lots += d``, ``entry_cost += p × d``; nothing realized.
- **reduce** ``r = min(|d|, |lots|)`` lots of a position of sign ``s``: the entry cost removed is
  ``E_r = ceil(entry_cost × r / |lots|)`` — the one rounding rule, toward +∞ for both signs, so the PnL
  realized now is rounded down (venue side) and the remainder stays in the entry cost; a full close
  (``r = |lots|``) removes the entry cost exactly, so everything is settled to the last unit.
  Realized PnL = ``(s × p × r − E_r) × K``.
- **flip**: the closing part as above, then the rest ``|d| − r`` opens at ``p``.
- **fee** (``Fill`` fee, negative = rebate) goes to the fee pool.

Where money settles:

- cross: realized PnL and fee in the wallet;
- isolated: opening / increasing moves the fill's initial margin ``ceil(p × lots_opened × K / leverage)``
  plus the fee from the wallet into the position's isolated margin, and the fee is paid from there (so
  the isolated margin grows by exactly the IM); on a fill that reduces the position, realized PnL and the
  fee settle in the isolated margin; when the position closes, what is left returns to the wallet. A negative remainder (a loss beyond
  the isolated margin: a fill beyond the bankruptcy price) is absorbed by the symbol's insurance fund, never the
  wallet: the loss of an isolated position is capped at its margin. On a flip the closing part (with the
  fee) settles and returns first, then the opening part moves its margin in.

Money is conserved exactly: Σ wallets (insurance funds included) + Σ isolated margins + fee pool − K·Σ entry cost
does not change (each side's realized PnL is matched by the entry cost it removes; the counterparty's entry
cost moves by the same ``p × q``).
"""
from __future__ import annotations

from ..accounts.ledger import Account, Ledger, Position
from ..enums import BalanceReason, MarginMode, PositionSide
from ..events import BalanceChanged, PositionChanged
from ..accounts.margin import initial_margin
from ..spec import Instrument
from ..units import div_ceil


def clear_fill(ledger: Ledger, inst: Instrument, account: Account, position_side: PositionSide, buy: bool,
               price_ticks: int, qty_lots: int, fee_units: int) -> list:
    """Apply one side of a fill to ``account``; returns ``[PositionChanged]`` plus ``BalanceChanged`` when the
    wallet moved. O(1)."""
    symbol, k = inst.symbol, inst.k_units
    settings = ledger.settings(account, symbol)
    isolated = settings.margin_mode == MarginMode.ISOLATED
    position = ledger.position(account, symbol, position_side)
    lots_before = position.lots
    wallet_before = account.wallet_units
    delta = qty_lots if buy else -qty_lots
    realized = 0
    opening = qty_lots
    if position.lots and (position.lots > 0) != buy:
        closing = min(qty_lots, abs(position.lots))
        sign = 1 if position.lots > 0 else -1
        removed = div_ceil(position.entry_cost * closing, abs(position.lots))
        realized = (sign * price_ticks * closing - removed) * k
        position.lots -= sign * closing
        position.entry_cost -= removed
        _settle(account, position, isolated, realized - fee_units)
        if isolated and position.lots == 0:
            _return_isolated(ledger, symbol, account, position)
        opening = qty_lots - closing
    if opening:
        signed = opening if delta > 0 else -opening
        position.lots += signed
        position.entry_cost += price_ticks * signed
        if isolated:
            margin = initial_margin(price_ticks * opening * k, settings.exact_leverage)
            account.wallet_units -= margin
            position.isolated_margin_units += margin
        if opening == qty_lots:  # no closing part paid the fee: it comes from the wallet (isolated: moved
            account.wallet_units -= fee_units  # in with the margin and paid from there, which nets the same)
    ledger.fee_pool_units += fee_units
    ledger.store(account, symbol, position_side, position, lots_before)
    events: list = [PositionChanged(symbol, account.account_id, position_side, position.lots, position.entry_cost,
                                    position.isolated_margin_units, realized)]
    if account.wallet_units != wallet_before:
        events.append(BalanceChanged(account.account_id, account.wallet_units - wallet_before, account.wallet_units,
                                     BalanceReason.TRADE))
    return events


def _settle(account: Account, position: Position, isolated: bool, amount_units: int) -> None:
    """Credit ``amount_units`` (may be negative) to the isolated margin or the wallet."""
    if isolated:
        position.isolated_margin_units += amount_units
    else:
        account.wallet_units += amount_units


def _return_isolated(ledger: Ledger, symbol: str, account: Account, position: Position) -> None:
    """A closed isolated position gives back its margin; a deficit is topped up by the symbol's insurance fund."""
    left = position.isolated_margin_units
    position.isolated_margin_units = 0
    (account if left >= 0 else ledger.fund_account(symbol)).wallet_units += left
