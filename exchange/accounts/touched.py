"""The engine's *touched* set (the sync rule, :mod:`exchange.engine`) with a log of every addition.

A ``set`` of the account ids the command changed, plus ``log``: every id added, in order, repeats included
(an account changed twice is logged twice), and ``generation``, which :meth:`Touched.clear` (the end of a
command) advances. A reader that remembers ``(generation, len(log))`` learns which accounts were (re)touched
since, in O(new entries) instead of re-checking the whole set: the ADL queue does, between the ADL steps of
one sweep (:mod:`exchange.liquidation.adl.queue`). Within the liquidation sweep every change of an account is
followed by adding its id (the waterfall and the fill paths add after they change an account), so an
account missing from the log since a reader's mark is unchanged since that mark.

The compiled drain (:mod:`exchange.clearing._fills`) adds to the set and appends to ``log`` directly, as
:meth:`Touched.add` does, without its Python frame; whatever :meth:`Touched.add` does, that path must do too.
"""
from __future__ import annotations


class Touched(set):
    """A set of account ids with a log of additions (module docstring). O(1) per addition."""

    __slots__ = ("log", "generation")

    def __init__(self):
        super().__init__()
        self.log: list[int] = []
        self.generation = 0

    def add(self, account_id: int) -> None:
        set.add(self, account_id)
        self.log.append(account_id)

    def update(self, *others) -> None:
        for other in others:
            other = list(other)
            set.update(self, other)
            self.log += other

    def __ior__(self, other):
        self.update(other)
        return self

    def clear(self) -> None:
        set.clear(self)
        self.log.clear()
        self.generation += 1
