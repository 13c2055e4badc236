"""Auto-deleveraging over the exchange's positions (rules §7 step 5, §10): who is deleveraged first.

:func:`ranked` lists the positions of one side of a symbol in the order ADL takes them, by the profile's
ranking (scores from :mod:`exchange.liquidation.adl.score`, exact Fractions, ties by account id):

=========================== ==================================================================================
PNL_X_MARGIN_RATIO (binance) ``binance_score(uPnL, wallet, MM)``; for an isolated position "wallet" is its
                             isolated margin
PNL_X_EFFECTIVE_LEVERAGE     ``bitmex_score(side, entry price, mark, bankruptcy price)`` (a long without a
(bitmex)                     bankruptcy price uses 0)
PROFIT_X_EFFECTIVE_LEVERAGE  ``bybit_score(uPnL, entry notional, notional at mark, margin balance of its part)``
(bybit), PNL_LEVERAGE_INDEX
(hyperliquid)
SEEDED_OFFSET (dydx)         ``seeded_order(account ids, seed)``: ascending id from a seeded pseudo-random start
=========================== ==================================================================================

Insurance-fund positions are candidates too, after every user position (so the opposite side always covers
what is liquidated: open interest is balanced). :func:`ranked` scores every candidate: O(n log n) Python in
the positions of the symbol, the oracle.

:class:`exchange.liquidation.adl.queue.ADLQueue` gives the same order lazily and fast (what the liquidation
engine uses).
"""
from __future__ import annotations

from fractions import Fraction

from . import score as adl
from ...accounts.ledger import FUND_ACCOUNT_BASE
from ...enums import PositionSide
from ...profiles import ADLIndicator, ADLRanking
from ...accounts.pretrade import CROSS

Key = tuple[int, PositionSide]  # (account id, position side) of a position in the symbol


def side_positions(ledger, symbol: str, long: bool, account_ids=None) -> tuple[list[Key], list[Key]]:
    """``(user keys, fund keys)`` of the open positions of ``symbol`` on one side, by (account, side), among
    ``account_ids`` (default: every holder)."""
    users, funds = [], []
    holders = ledger.holders[symbol]
    for account_id in sorted(holders if account_ids is None else holders.intersection(account_ids)):
        for side, position in ledger.accounts[account_id].positions_in(symbol):
            if (position.lots > 0) == long:
                (funds if account_id >= FUND_ACCOUNT_BASE else users).append((account_id, side))
    return users, funds


def ranked(risk, symbol: str, long: bool, ranking: ADLRanking, seed: int) -> list[Key]:
    """Positions of ``symbol`` on the ``long`` side in ADL order (module docstring)."""
    users, funds = side_positions(risk.ledger, symbol, long)
    if ranking == ADLRanking.SEEDED_OFFSET:
        order = {account_id: i for i, account_id in enumerate(adl.seeded_order([a for a, _ in users], seed))}
        users.sort(key=lambda key: order[key[0]])
    else:
        scores = {key: score(risk, symbol, key, ranking) for key in users}
        # exact integer sort keys: two distinct fractions with denominators below 2^m differ by at least
        # 2^-2m, so floor(score × 2^(2m+2)) orders them exactly, and equal scores get equal keys
        shift = 2 * max((s.denominator.bit_length() for s in scores.values()), default=0) + 2
        users.sort(key=lambda key: (-((scores[key].numerator << shift) // scores[key].denominator), key))
    return users + funds


def quantile(risk, symbol: str, key: Key, ranking: ADLRanking, seed: int,
             indicator: ADLIndicator = ADLIndicator.USER_COUNT, ahead_of=None) -> int:
    """ADL lights (1–5) of an open user position among the user positions on its side, by the profile's
    indicator rule (USER_COUNT: its rank among them, :func:`exchange.liquidation.adl.score.quantile_lights`; QUANTITY: the
    share of their lots ranked at or above it, :func:`exchange.liquidation.adl.score.quantity_lights`); 0 if none.
    ``ahead_of(symbol, long, ranking, key, keys)``: how many positions are ranked before it, the user count and
    (with ``keys``) those positions, or None (:meth:`exchange.liquidation.adl.queue.ADLQueue.ahead_of`); without it,
    or when it gives None, every user position is ranked (:func:`ranked`)."""
    ledger = risk.ledger
    position = ledger.position(ledger.get(key[0]), symbol, key[1])
    if not position.lots or key[0] >= FUND_ACCOUNT_BASE:
        return 0
    long = position.lots > 0
    quantity = indicator == ADLIndicator.QUANTITY
    found = ahead_of(symbol, long, ranking, key, quantity) if ahead_of is not None else None
    if found is None:
        users = [k for k in ranked(risk, symbol, long, ranking, seed) if k[0] < FUND_ACCOUNT_BASE]
        at = users.index(key)
        ahead, count = users[:at], len(users)
    else:
        at, count, ahead = found
    if quantity:
        def lots(keys):
            return sum(abs(ledger.position(ledger.accounts[a], symbol, side).lots) for a, side in keys)
        total = ledger.long_lots[symbol] - lots(side_positions(ledger, symbol, long, set(ledger.fund_ids.values()))[1])
        return adl.quantity_lights(lots(ahead) + abs(position.lots), total)
    return adl.quantile_lights(at, count)


def score(risk, symbol: str, key: Key, ranking: ADLRanking) -> Fraction:
    """The exact ADL score of one position by ``ranking`` (module docstring), from the ledger."""
    if ranking == ADLRanking.PNL_X_EFFECTIVE_LEVERAGE:
        account = risk.ledger.accounts[key[0]]
        position = risk.ledger.position(account, symbol, key[1])
        bankruptcy = risk.bankruptcy_price_ticks(account, symbol, key[1]) or 0
        entry = Fraction(position.entry_cost, position.lots)
        return adl.bitmex_score(1 if position.lots > 0 else -1, entry, risk.mark_of(symbol), Fraction(bankruptcy))
    return Fraction(*score_ratio(risk, symbol, key, ranking))


def score_ratio(risk, symbol: str, key: Key, ranking: ADLRanking) -> tuple[int, int]:
    """:func:`score` as ``(numerator, denominator)``, not normalised (:func:`~exchange.liquidation.adl.score.binance_ratio`,
    :func:`~exchange.liquidation.adl.score.bitmex_ratio`, :func:`~exchange.liquidation.adl.score.bybit_ratio` for
    every other ranking but the seeded one): the ADL queue compares these without a gcd."""
    account = risk.ledger.accounts[key[0]]
    position = risk.ledger.position(account, symbol, key[1])
    if ranking == ADLRanking.PNL_X_EFFECTIVE_LEVERAGE:
        mark = risk.mark_of(symbol)
        bankruptcy = risk.bankruptcy_price_ticks(account, symbol, key[1]) or 0
        return adl.bitmex_ratio(position.lots * mark - position.entry_cost, position.entry_cost, mark,
                                abs(mark - bankruptcy))
    upnl = risk.upnl(symbol, position)
    isolated = risk.is_isolated(account, symbol)
    if ranking == ADLRanking.PNL_X_MARGIN_RATIO:
        wallet = position.isolated_margin_units if isolated else account.wallet_units
        return adl.binance_ratio(upnl, wallet, risk.position_mm(symbol, position))
    balance = risk.part_state(account, symbol if isolated else CROSS, key[1])[0]
    k = risk.instruments[symbol].k_units
    return adl.bybit_ratio(upnl, abs(position.entry_cost) * k, risk.notional(symbol, position), balance)
