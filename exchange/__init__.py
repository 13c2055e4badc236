"""exchange: a perpetual-futures exchange simulator with a Cython core.

Import the public API from here; never from ``exchange._core``.
"""
from ._impl import IMPLEMENTATION

__all__ = ["IMPLEMENTATION"]
