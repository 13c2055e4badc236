# cython: language_level=3
"""Margin arithmetic and look-ups shared by the compiled twins (``cimport``-ed; inlined, no module of its own)."""
from exchange.accounts._ledger cimport Account


cdef inline object initial_margin(object notional_units, object leverage):
    """:func:`exchange.accounts.margin.initial_margin`: ``ceil(notional × denominator / numerator)``; ``leverage``
    an int or a Fraction ≥ 1 (ValueError below 1)."""
    if leverage < 1:
        raise ValueError("leverage must be ≥ 1")
    if type(leverage) is int:
        return -((-notional_units) // leverage)
    return -((-(notional_units * leverage.denominator)) // leverage.numerator)


cdef inline object margin_ratio_e8(object mm_units, object balance_units, bint has_size):
    """:func:`exchange.accounts.margin.margin_ratio_e8`: ``ceil(MM × 10⁸ / balance)``, 0 without size, ``RATIO_INF``
    (2⁶³ − 1, also the saturation value) when the balance is ≤ 0. Python integers: exact at any size."""
    if not has_size:
        return 0
    cdef object ratio_inf = 9_223_372_036_854_775_807  # (margin.RATIO_INF, as the risk kernel checks at import)
    if balance_units <= 0:
        return ratio_inf
    ratio = -((-(mm_units * 100_000_000)) // balance_units)
    return ratio if ratio < ratio_inf else ratio_inf


cdef inline object settings_of(object account, object symbol, object empty, dict defaults):
    """``Ledger.settings(account, symbol)`` of an account (not None): its stored settings of ``symbol``, else
    ``defaults[symbol]`` (``Ledger._defaults``). ``empty`` is the ledger's shared EMPTY (most accounts' settings):
    answered without a call on the mapping proxy. O(1)."""
    stored = (<Account?>account).settings  # the slot (exchange.accounts._ledger)
    if stored is not empty and symbol in stored:  # ``in`` and ``[]``: slot calls, cheaper than ``.get`` on a proxy
        settings = stored[symbol]
        if settings is not None:
            return settings
    return defaults[symbol]
