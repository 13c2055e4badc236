# cython: language_level=3
"""The compiled drain (``exchange/clearing/_fills.pyx``): what order entry and the liquidation stage ``cimport``
to call it, and the clearing of one fill, directly."""
from exchange._engine cimport ExchangeFields
from exchange.accounts._pretrade cimport RiskKernel


cdef class Drain:
    cdef ExchangeFields ex
    cdef dict books, accounts, markets, triggers  # markets: symbol -> its _Market (_fills.pyx)
    cdef object ledger
    cdef RiskKernel kernel  # the risk stage's compiled kernel, called directly

    cpdef list run(self, symbol, order_type=*, bint skip_accepted=*, on_taker_fill=*)


cpdef list clear_fill(ledger, inst, account, position_side, bint buy, object price_ticks, object qty_lots,
                      object fee_units)
