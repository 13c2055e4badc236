"""Shared fixtures. The suite runs against the active implementation (compiled unless
EXCHANGE_PUREPYTHON=1); differential tests additionally compare both when the compiled core is present."""
import pytest

from exchange import _impl
from exchange.orders.matching import MatchingEngine as ReferenceMatchingEngine
from exchange.spec import Instrument

COMPILED = _impl.core is not None
ActiveMatchingEngine = _impl.core.MatchingEngine if COMPILED else ReferenceMatchingEngine

needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")


def make_instrument(**overrides) -> Instrument:
    """A small test instrument: tick 0.01, lot 1, K = 10⁶ units per tick·lot, no min notional."""
    params = dict(
        tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000", max_price="100000",
        min_notional="0", maker_fee="0.0002", taker_fee="0.0005",
    )
    params.update(overrides)
    return Instrument.linear("TESTUSDT", **params)


@pytest.fixture
def instrument():
    return make_instrument()


@pytest.fixture
def engine(instrument):
    """A matching engine of the active implementation."""
    return ActiveMatchingEngine(instrument)
