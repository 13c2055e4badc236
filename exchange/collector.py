"""The cycle collector paused while a whole state is encoded or decoded.

The state hash, a snapshot's bytes and a restore build (or read) one structure as large as the state: a tuple or
list per account, position, setting and order, hundreds of thousands at 100,000 accounts, all alive until the
structure is done. Each 700 of them start a young collection, and as they survive, CPython's full collections
come too, each one walking every tracked object of the process (the exchange's own state included) and freeing
nothing: measured at 100,000 accounts, about half of a state hash's time and of a snapshot's, and 40 % of a
restore's. :func:`paused` switches the collector off for the duration and back on after (only if it was on:
a caller that turned it off keeps it off). Reference counting frees everything as usual meanwhile; only a
reference cycle made in that window waits for the next collection. Process-wide, like the switch itself: a
thread running at the same time sees it off too (its cycles are collected later, not lost).
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The cycle collector off inside the block, restored after (module docstring). O(1)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
