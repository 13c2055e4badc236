"""Accounts: balances, positions and the margin they need (rules §4, §5, ``docs/margin.md``).

- :mod:`~exchange.accounts.ledger` — the ledger: wallets, positions, isolated margins, per-(account, symbol)
  settings.
- :mod:`~exchange.accounts.margin` — margin mathematics (pure functions): brackets, IM / MM, uPnL, ratios,
  liquidation and bankruptcy prices.
- :mod:`~exchange.accounts.pretrade` — the risk stage over the ledger: order holds, available balance,
  pre-trade checks, and the margin view (``PositionView``, ``Liquidatable``) the monitor reads.
- :mod:`~exchange.accounts.storage` — struct-of-arrays storage of accounts and positions (numpy), the mirror
  the sweep, the liquidation index and the ADL bounds read.
"""
