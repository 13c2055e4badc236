"""rules §9 invariants of a whole exchange, cheap enough to check after every command in tests.

:func:`check` raises ``AssertionError`` naming the first broken rule:

1. every book and trigger book is internally consistent, uncrossed, and its event buffer drained;
2. the ledger's own invariants (:meth:`exchange.accounts.ledger.Ledger.check_invariants`);
3. **money**: ``Σ wallets + Σ isolated margins + fee pool − Σ_symbol K·Σ signed entry cost
   = Σ deposits − Σ withdrawals``, exactly (the insurance funds are reserved accounts: their balances are
   wallets and their taken-over positions are positions);
4. **open interest**: per symbol, Σ long lots = Σ short lots;
5. **orders**: every open order (resting or conditional) belongs to an existing account and has a position
   side valid in that account's mode, and no other order id is tracked; the resting reduce-only orders of
   a position side and order side together are no larger than what the position can close;
6. **holds**: the risk stage's order sums equal a recomputation from the books, and each stored
   order-margin hold equals a recomputation from them.
"""
from __future__ import annotations

from .enums import PositionMode, PositionSide, Side


def check(exchange) -> None:
    """Check every invariant of ``exchange`` (an :class:`~exchange.engine.Exchange`). O(orders + positions)."""
    ledger = exchange.ledger
    for symbol in exchange.instruments:
        book = exchange.book(symbol)
        book.check_invariants()
        exchange._triggers[symbol].check_invariants()
        assert book.event_count() == 0, f"{symbol}: undrained matching events"
    ledger.check_invariants()
    _check_money(exchange)
    _check_open_interest(exchange)
    _check_orders(exchange)
    _check_holds(exchange)


def _check_money(exchange) -> None:
    ledger = exchange.ledger
    held = ledger.fee_pool_units
    for account in ledger.accounts.values():
        held += account.wallet_units
        for (symbol, _), position in account.positions.items():
            held += position.isolated_margin_units - exchange.instruments[symbol].k_units * position.entry_cost
    net = ledger.deposits_units - ledger.withdrawals_units
    assert held == net, f"money not conserved: held {held} != deposits − withdrawals {net} (off by {held - net})"


def _check_open_interest(exchange) -> None:
    for symbol in exchange.instruments:
        net = sum(position.lots for account in exchange.ledger.accounts.values()
                  for (s, _), position in account.positions.items() if s == symbol)
        assert net == 0, f"{symbol}: long lots − short lots = {net}"


def _check_orders(exchange) -> None:
    tracked = dict(exchange._position_sides)
    for symbol in exchange.instruments:
        book = exchange.book(symbol)
        waiting = [(state[0], state[1]) for state in exchange._triggers[symbol].canonical_state()]
        resting = [(state[0], state[1]) for state in book.canonical_state()[3:]]  # after mark, now, last
        for order_id, account_id in resting + waiting:
            account = exchange.ledger.get(account_id)
            assert account is not None, f"order {order_id} belongs to unknown account {account_id}"
            side = tracked.pop(order_id, None)
            assert side is not None, f"order {order_id} has no position side"
            hedge = account.position_mode == PositionMode.HEDGE
            assert (side != PositionSide.BOTH) == hedge, f"order {order_id}: {side.name} in {account.position_mode.name}"
        for account_id in {account_id for _, account_id in resting}:
            account = exchange.ledger.get(account_id)
            reducing: dict = {}
            for order in exchange._open_orders(account_id, symbol):
                if order.reduce_only:
                    key = (order.position_side, order.side)
                    reducing[key] = reducing.get(key, 0) + order.lots
            for (position_side, side), lots in reducing.items():
                held = exchange.ledger.position(account, symbol, position_side).lots
                closable = max(0, -held) if side == Side.BUY else max(0, held)
                assert lots <= closable, f"account {account_id} {symbol}: reduce-only orders exceed the position"
    assert not tracked, f"position sides tracked for orders that are not open: {sorted(tracked)}"


def _check_holds(exchange) -> None:
    risk = exchange.risk
    risk.check_order_sums((symbol, state, exchange._position_sides[state[0]]) for symbol in exchange.instruments
                          for state in exchange.book(symbol).canonical_state()[3:])  # after mark, now, last
    for account in exchange.ledger.accounts.values():
        expected = {}
        for symbol in exchange.instruments:
            for key in account.position_keys(symbol):
                hold = risk.key_hold(account, *key)[0]
                if hold:
                    expected[key] = hold
        assert account.holds == expected, (
            f"account {account.account_id}: holds {account.holds} != recomputed {expected}")
