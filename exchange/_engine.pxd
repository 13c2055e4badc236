# cython: language_level=3
"""The compiled command loop (``exchange/_engine.pyx``): the exchange's per-command fields, which order entry, the
drain and the liquidation stage ``cimport`` to read and write them as C fields instead of Python attributes."""


cdef class ExchangeFields:
    # The base of Exchange (exchange/engine.py) when the compiled core is built: the fields every command reads
    # or writes, stored in the object's C struct. Plain Python objects (``_order_only`` a C flag read as a bool),
    # as the reference keeps them: the reference's code reads and writes them unchanged; a pure-Python build has
    # no base.
    cdef public object halted, sequence, journal, _journal_writer, snapshot_every
    cdef public object _touched, _position_sides, settled, next_order_id
    cdef public bint _order_only
