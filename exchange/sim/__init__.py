"""Research front: price paths for scenario runs (docs/paths.md) and recording runs to Parquet (docs/recording.md).

- :mod:`exchange.sim.paths`: the :class:`PricePath` model, its iterators and the float / decimal → tick rules.
- :mod:`exchange.sim.synthetic`: seeded generators (GBM with Merton jumps, crash and recovery, regime switching).
- :mod:`exchange.sim.historical`: loaders for Binance public-data files (data.binance.vision).
- :mod:`exchange.sim.record`: a run's events, metrics, prices and final accounts as Parquet beside its journal
  (imported on its own: ``from exchange.sim.record import RunRecorder``; it loads pyarrow).
"""
from .paths import (
    Bar, FundingEvent, PricePath, PricePoint, SymbolSeries, decimal_to_e8, decimal_to_ticks, prices_to_ticks,
    round_ticks,
)
from .historical import (
    KlineBars, Trades, path_from_agg_trades, path_from_klines, read_agg_trades, read_funding, read_klines,
)
from .synthetic import (
    YEAR_NS, correlation_factor, crash_recovery_path, gbm_jump_path, regime_switching_path, stationary_distribution,
)

__all__ = [
    "PricePath", "SymbolSeries", "Bar", "PricePoint", "FundingEvent",
    "round_ticks", "prices_to_ticks", "decimal_to_ticks", "decimal_to_e8",
    "YEAR_NS", "gbm_jump_path", "crash_recovery_path", "regime_switching_path", "correlation_factor",
    "stationary_distribution",
    "KlineBars", "Trades", "read_klines", "read_funding", "read_agg_trades", "path_from_klines",
    "path_from_agg_trades",
]
