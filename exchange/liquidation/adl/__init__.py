"""Auto-deleveraging (rules §7 step 5, §10 "ADL ranking").

- :mod:`~exchange.liquidation.adl.score` — the venues' exact scores (Fractions), lights, dYdX's seeded order.
- :mod:`~exchange.liquidation.adl.ranking` — the exact ADL order over the exchange's positions
  (:func:`~exchange.liquidation.adl.ranking.ranked`).
- :mod:`~exchange.liquidation.adl.queue` — the same order, lazily and fast, over the monitor's mirror.
- :mod:`~exchange.liquidation.adl.bounds` — float bounds on every candidate's score (numpy), the queue's filter.
"""
