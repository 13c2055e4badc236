"""Funding (rules §8, ``docs/funding.md``).

- :mod:`~exchange.funding.rate` — funding-rate mathematics, exact: impact prices, premium index, rate, caps,
  payments.
- :mod:`~exchange.funding.stage` — the engine's funding stage: premium samples on a fixed cadence,
  settlement at interval boundaries, history.
"""
