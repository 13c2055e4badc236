"""The risk monitor's per-command fields as object slots: the base class of
:class:`~exchange.liquidation.monitor.RiskMonitor`.

Every command reads or writes these (the ledger and risk stage, the liquidatable parts, the dirty, stale and due
sets, the evaluations and sync marks of the command, the marks moved, the index switches, the compiled writer
and stage). As slots they sit at fixed offsets in the monitor object: Python code reads them through their
member descriptors (as fast as instance attributes, so the pure-Python reference pays nothing for them), and
the compiled twins (the monitor stage, the command loop, the liquidation stage) read and write them there
directly, as C fields (``exchange/liquidation/_monitor.pxd`` declares the layout and checks it at import). A
new monitor holds None in each until its constructor sets them, so no slot is ever empty.

This module imports nothing from the package: the compiled modules import it while :mod:`exchange._impl` is
still loading them.
"""


class MonitorFields:
    """The slots (module docstring); :class:`~exchange.liquidation.monitor.RiskMonitor` subclasses it."""

    __slots__ = ("_dirty", "_due", "_due_compared", "_due_stale", "_evaluated", "_marked", "_mirrored", "_moves",
                 "_stage", "_stale", "_synced", "_unmarked", "_writer", "index_from_accounts", "indexable", "indexed",
                 "ledger", "parts", "risk", "version")

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        for name in MonitorFields.__slots__:
            setattr(self, name, None)
        return self
