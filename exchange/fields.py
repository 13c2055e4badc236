"""The exchange's per-command fields as object slots: the base class of :class:`~exchange.engine.Exchange`.

Every command reads or writes these (the halt reason, the sequence number, the in-memory and durable
journals, the touched set, the open orders' position sides, the settled symbols, the next order id and the
order-only flag). As slots they sit at fixed offsets in the exchange object: Python code reads them through
their member descriptors (as fast as instance attributes), and the compiled twins (the command loop, order
entry, the drain, the liquidation stage) read and write them there directly, as C fields
(``exchange/_engine.pxd`` declares the layout and checks it at import). A new exchange holds None in each (the
order-only flag False) until its constructor sets them, so no slot is ever empty.

This module imports nothing from the package: the compiled modules import it while :mod:`exchange._impl` is
still loading them.
"""


class ExchangeFields:
    """The slots (module docstring); :class:`~exchange.engine.Exchange` subclasses it."""

    __slots__ = ("_journal_writer", "_order_only", "_position_sides", "_touched", "halted", "journal", "next_order_id",
                 "sequence", "settled", "snapshot_every")

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        for name in ExchangeFields.__slots__:
            setattr(self, name, None)
        self._order_only = False
        return self
