"""The ADL queue's candidates kept across commands: binance's bounds over a span of marks (sound at every mark
of the span, both implementations), the monitor's rows written since a mark, the prefixes patched with new
candidates, and the queue against the exact oracle (``ranking.ranked``) on every ADL event of crashes whose
marks move in small steps (so the candidates are kept, patched and re-scored)."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange import SetMarkPrice, _impl
from exchange.liquidation.adl import bounds as adlbounds, queue as adlqueue, ranking as deleveraging
from tests.test_adl_queue import BOUNDS_IMPLEMENTATIONS, OTHER, SYMBOL, crowd, exact_scores, portfolios


@pytest.mark.parametrize("bounds", BOUNDS_IMPLEMENTATIONS)
@settings(max_examples=300, deadline=None)
@given(portfolios(), st.integers(0, 3_000), st.lists(st.floats(0, 1), min_size=1, max_size=3))
def test_span_bounds_hold_at_every_mark_of_the_span_and_zeros_only_when_zero_throughout(bounds, case, width, at):
    p, low = case
    high = min(low + width, int(p.table.max_price_ticks[0]))
    slots = np.flatnonzero(p.pos_qty_lots != 0)
    lo, hi = bounds.binance(p, slots, 0, np.array([low], np.int64), high)
    for mark in {low, high, *(low + int(f * (high - low)) for f in at)}:
        for j, score in enumerate(exact_scores(p, slots.tolist(), mark, "binance")):
            assert lo[j] <= score <= hi[j], (mark, j, float(score), lo[j], hi[j])
            if lo[j] == 0 == hi[j]:
                assert score == 0


@pytest.mark.skipif(_impl.adl_bounds_kernel is None, reason="compiled core not active")
@settings(max_examples=200, deadline=None)
@given(portfolios(), st.integers(0, 3_000), st.booleans())
def test_compiled_span_bounds_are_the_numpy_ones(case, width, long):
    p, low = case
    high = min(low + width, int(p.table.max_price_ticks[0]))
    slots = np.flatnonzero((p.pos_qty_lots > 0) if long else (p.pos_qty_lots < 0))
    marks = np.array([low], np.int64)
    (lo, hi), (ref_lo, ref_hi) = (b.binance(p, slots, 0, marks, high) for b in (_impl.adl_bounds_kernel, adlbounds))
    assert ((lo == 0) & (hi == 0)).tolist() == ((ref_lo == 0) & (ref_hi == 0)).tolist()
    assert np.allclose(lo, ref_lo, rtol=1e-12, atol=0) and np.allclose(hi, ref_hi, rtol=1e-12, atol=0)
    ids = np.arange(p.n_accounts, dtype=np.int64)
    got = _impl.adl_bounds_kernel.candidates(p, ids, 0, long, 2**62, marks, "binance", high)
    want = adlqueue._columns(p, ids, 0, long, 2**62, marks, "binance", high)
    assert got[5].tolist() == want[5].tolist() and np.allclose(got[3], want[3], rtol=1e-12, atol=0)


@pytest.mark.parametrize("bounds", BOUNDS_IMPLEMENTATIONS)
@settings(max_examples=5, deadline=None)
@given(portfolios())
def test_bybit_bounds_take_one_set_of_marks_only(bounds, case):
    p, mark = case
    with pytest.raises(ValueError):
        bounds.bybit(p, np.flatnonzero(p.pos_qty_lots != 0), 0, np.array([mark], np.int64), mark + 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0, 2.0, 2.5, -1.0, -np.inf]), max_size=40), st.integers(0, 40),
       st.integers(0, 40))
def test_a_merged_prefix_is_the_first_of_the_whole_order(values, n, k):
    """A prefix of the stable descending order of the first ``n`` values, with the indices from ``n`` on merged
    in: the first of the stable descending order of all of them (ties by index)."""
    v = np.array(values, dtype=np.float64)
    n = min(n, len(v))
    prefix = np.argsort(-v[:n], kind="stable")[:k]
    merged = adlqueue._merged_prefix(prefix, v, n, np.arange(n, len(v)))
    assert len(merged) >= len(prefix)
    assert merged.tolist() == np.argsort(-v, kind="stable")[:len(merged)].tolist()


def test_rows_written_names_every_account_whose_rows_changed():
    ex = crowd("binance", 200, seed=2)
    monitor = ex.monitor
    ex.apply(SetMarkPrice(SYMBOL, 9_500))
    before = {a: monitor.written(a) for a in ex.ledger.accounts if monitor.row_of(a) is not None}
    _, mark = monitor.rows_written(None)
    assert monitor.rows_written(mark)[0].tolist() == []
    for price in (9_000, 8_500, 8_000):
        ex.apply(SetMarkPrice(SYMBOL, price))
    monitor.mirror(set())
    written = set(monitor.rows_written(mark)[0].tolist())
    changed = {monitor.row_of(a) for a, rows in before.items() if monitor.written(a) != rows}
    assert changed and changed <= written


@pytest.mark.parametrize("profile", ["binance", "dydx"])
def test_kept_candidates_give_the_oracles_order_through_small_mark_steps(profile, monkeypatch):
    """Marks of two symbols stepping by 0.4 % (within binance's span), down and back up: the queue keeps
    each side's candidates across commands, patches the rows written since (and, binance, re-scores at the
    new marks within the span, filtering by the bounds at the marks now); every ADL order is the oracle's."""
    ex = crowd(profile, 400, seed=5, symbols=(SYMBOL, OTHER))
    queue = ex.liquidation.adl_queue
    seen, calls = Counter(), []
    for name in ("_patch", "_candidates"):
        method = getattr(queue, name)
        monkeypatch.setattr(queue, name, lambda *a, _m=method, _n=name: _counted(seen, _n, _m, *a))
    tightened = adlqueue._tightened
    monkeypatch.setattr(adlqueue, "_tightened", lambda *a: _counted(seen, "_tightened", tightened, *a))
    order = queue.order

    def checked(symbol, long, ranking, seed, changing, liquidated):
        expected = deleveraging.ranked(ex.risk, symbol, long, ranking, seed)
        got = list(order(symbol, long, ranking, seed, changing, liquidated))
        assert got == expected
        calls.append(len(expected))
        return iter(got)

    monkeypatch.setattr(queue, "order", checked)
    for mark in [*range(9_960, 6_000, -40), *range(6_040, 8_000, 40)]:
        for symbol in (SYMBOL, OTHER):
            ex.apply(SetMarkPrice(symbol, mark))
    assert len(calls) > 20 and seen["_patch", True] > 5
    if profile == "binance":
        assert seen["_tightened"] > 5 and seen["_candidates"] < len(calls)


def _counted(seen: Counter, name: str, method, *args):
    result = method(*args)
    seen[(name, result) if isinstance(result, bool) else name] += 1
    return result
