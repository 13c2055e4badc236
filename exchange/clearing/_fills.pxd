# cython: language_level=3
"""The compiled drain (``exchange/clearing/_fills.pyx``): what order entry ``cimport``-s to call it directly."""
from exchange.accounts._pretrade cimport RiskKernel


cdef class Drain:
    cdef object ex
    cdef dict books, accounts, instruments, triggers
    cdef object ledger
    cdef RiskKernel kernel  # the risk stage's compiled kernel, called directly

    cpdef list run(self, symbol, order_type=*, bint skip_accepted=*, on_taker_fill=*)

