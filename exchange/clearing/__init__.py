"""Clearing: fills into positions, and the mark-to-market sweep (rules §4, §5).

- :mod:`~exchange.clearing.fills` — one side of a fill -> position, realized PnL, fee, isolated margin.
- :mod:`~exchange.clearing.sweep` — the full mark-to-market sweep (reference, numpy, compiled).
- ``_sweep.pyx`` (module ``exchange.clearing._sweep``, headers ``clearing_kernel.h``, ``clearing_int128.h``)
  — the compiled twin of the sweep and of the liquidation index's band entries (nogil, 128-bit); reached
  only through :mod:`exchange._impl`.
"""
