"""Orders: the book and matching of one instrument (rules §3, ``docs/matching.md``).

- :mod:`~exchange.orders.book` — the reference limit order book (SortedDict of FIFO levels, indexes).
- :mod:`~exchange.orders.matching` — the reference matching engine, the executable form of ``docs/matching.md``.
- ``_matching.pyx`` (module ``exchange.orders._matching``, headers ``core_int.h``, ``core_mem.h``) — its
  compiled twin (C structs, intrusive FIFO levels, hash index, batch path); reached only through
  :mod:`exchange._impl`.
- :mod:`~exchange.orders.filters` — the order filters shared by matching and the trigger layer.
- :mod:`~exchange.orders.triggers` — conditional orders waiting for their trigger price, shared by both
  implementations.
"""
