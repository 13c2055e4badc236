# cython: language_level=3
"""Margin arithmetic shared by the compiled twins (``cimport``-ed; inlined, no module of its own)."""


cdef inline object initial_margin(object notional_units, object leverage):
    """:func:`exchange.accounts.margin.initial_margin`: ``ceil(notional × denominator / numerator)``; ``leverage``
    an int or a Fraction ≥ 1 (ValueError below 1)."""
    if leverage < 1:
        raise ValueError("leverage must be ≥ 1")
    if type(leverage) is int:
        return -((-notional_units) // leverage)
    return -((-(notional_units * leverage.denominator)) // leverage.numerator)
