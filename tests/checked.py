"""Test helpers for the account tests: an Exchange that checks rules §9 after every command, and units.

Expected values in the tests are derived by hand in the comments next to them, never by the code under
test; these helpers only convert human numbers (exactly, through the instrument's grid)."""
from exchange import Exchange, Rejected
from exchange.units import to_units as units  # "25100.40" USDT -> money units, exactly

USDT = 10**8  # money units per USDT
__all__ = ["CheckedExchange", "USDT", "units", "of", "rejected"]


class CheckedExchange(Exchange):
    """``apply`` also checks every invariant and that a rejected command leaves the state hash unchanged."""

    def apply(self, command) -> list:
        before = self.state_hash()
        events = super().apply(command)
        self.check_invariants()
        if len(events) == 1 and isinstance(events[0], Rejected):
            assert self.state_hash() == before, f"rejected {command} changed the state"
        return events


def of(events: list, kind) -> list:
    """The events of one type."""
    return [e for e in events if isinstance(e, kind)]


def rejected(events: list):
    """The single Rejected event of a refused command (asserts there is exactly one event)."""
    (event,) = events
    assert isinstance(event, Rejected), event
    return event
