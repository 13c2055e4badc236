# cython: language_level=3
"""The compiled drain (``exchange/clearing/_fills.pyx``): what order entry and the liquidation stage ``cimport``
to call it, and the clearing of one fill, directly."""
from exchange._engine cimport ExchangeFields
from exchange.accounts._pretrade cimport RiskKernel


cdef class Drain:
    cdef ExchangeFields ex
    cdef dict books, accounts, markets, triggers  # markets: symbol -> its Market
    cdef object ledger
    cdef RiskKernel kernel  # the risk stage's compiled kernel, called directly

    cpdef list run(self, symbol, order_type=*, bint skip_accepted=*, on_taker_fill=*)


cdef class Market:  # what clearing a fill of one symbol reads (one per symbol, kept by the caller)
    cdef object symbol, k
    cdef dict keys, defaults
    cdef set holders


cpdef list clear_fill(ledger, inst, account, position_side, bint buy, object price_ticks, object qty_lots,
                      object fee_units)
cdef int clear_into(list events, ledger, Market market, account_obj, position_side, bint buy, object price_ticks,
                    object qty_lots, object fee_units) except -1  # clear_fill, into the caller's list
