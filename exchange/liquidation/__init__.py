"""Liquidation: who is liquidatable, the waterfall, the insurance funds and ADL (rules §7, ``docs/liquidation.md``).

- :mod:`~exchange.liquidation.monitor` — the risk monitor: exact, incremental knowledge of which margin parts
  are liquidatable or past the margin-call level.
- :mod:`~exchange.liquidation.monitor_fields` — the monitor's per-command fields as slots (its base class, read
  in C by the compiled stages).
- :mod:`~exchange.liquidation.index` — the monitor's incremental index over price bands (a mark tick visits
  only the parts it may have pushed over).
- :mod:`~exchange.liquidation.waterfall` — the liquidation waterfall: the engine's liquidation sweep stage.
- :mod:`~exchange.liquidation.insurance` — insurance funds: balances, takeover limits, unwinding, history.
- :mod:`~exchange.liquidation.dydx` — dYdX v4 liquidation rules (integer functions over one margin part).
- :mod:`exchange.liquidation.adl` — auto-deleveraging: scores, ranking, the lazy queue and its bounds.
"""
