"""Compiled twins of the ADL queue's per-step helpers (``exchange.liquidation.adl._bounds``) against their
references in ``exchange.liquidation.adl.queue`` / ``bounds``, on the same inputs (hypothesis)."""
import copy
import gc
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from exchange import SetMarkPrice, _impl
from exchange.enums import PositionSide
from exchange.liquidation.adl import bounds as adlbounds, queue as adlqueue
from tests.test_adl_queue import OTHER, SYMBOL, assert_bounds_agree, crowd, marks_down_and_up, portfolios

kernel = _impl.adl_bounds_kernel
compiled = pytest.mark.skipif(kernel is None, reason="compiled core not active")


@compiled
@settings(max_examples=200, deadline=None)
@given(portfolios(), st.booleans(), st.integers(0, 8), st.sampled_from(["binance", "bybit", "bitmex", None]),
       st.integers(0, 20))
def test_candidates_with_their_first_prefixes_are_the_references(case, long, n_funds, ranking, k):
    """``candidates_top``: the columns of ``candidates`` (the numpy ones' twin: same rows, ids, sides and zero
    flags, bounds equal up to float rounding), and its prefixes exactly the stable descending order's first ``k`` of its own
    lower bounds and of its upper bounds with the zero candidates' at -inf (as the reference ``_columns_top``
    gives of the numpy bounds)."""
    p, mark = case
    ids = np.arange(p.n_accounts, dtype=np.int64) * 3 + 5
    ids[:n_funds] += 2**62
    marks = np.array([mark], np.int64)
    got = kernel.candidates_top(p, ids, 0, long, 2**62, marks, ranking, k)
    want = adlqueue._columns_top(p, ids, 0, long, 2**62, marks, ranking, k)
    assert len(got) == len(want) == 8
    for g, w in zip(got[:3] + got[5:6], want[:3] + want[5:6]):
        assert g.dtype == w.dtype and g.tolist() == w.tolist()
    assert got[3].dtype == want[3].dtype == got[4].dtype == want[4].dtype
    assert_bounds_agree(got[3], got[4], want[3], want[4])
    reach = [np.where(cols[5], -math.inf, cols[4]) for cols in (got, want)]  # the zero candidates' hi at -inf
    for values, top in ((got[3], got[6]), (reach[0], got[7]), (want[3], want[6]), (reach[1], want[7])):
        assert top.dtype == np.int64
        assert top.tolist() == np.argsort(-values, kind="stable")[:k].tolist()
    plain = kernel.candidates(p, ids, 0, long, 2**62, marks, ranking)
    for g, w in zip(got[:6], plain):
        assert g.tolist() == w.tolist()  # the same columns as candidates, bit for bit


@compiled
@settings(max_examples=10, deadline=None)
@given(portfolios())
def test_candidates_reject_an_unknown_ranking(case):
    p, mark = case
    ids = np.arange(p.n_accounts, dtype=np.int64)
    with pytest.raises(ValueError):
        kernel.candidates(p, ids, 0, True, 2**62, np.array([mark], np.int64), "deribit")


@compiled
@pytest.mark.parametrize("n,k", [(300, 256), (1_000, 256), (4_000, 257), (10_000, 2_000)])
def test_top_k_on_both_sides_of_its_heap_threshold(n, k):
    """The heap now serves any k up to HEAP_K (256) whatever the length; above it and n/16, numpy's path."""
    rng = np.random.default_rng(n * k)
    for v in (np.arange(n, dtype=np.float64), rng.integers(0, 7, n).astype(np.float64), rng.random(n),
              np.zeros(n), np.where(rng.random(n) < 0.5, -math.inf, math.inf)):
        assert kernel.top_k(v, k).tolist() == np.argsort(-v, kind="stable")[:k].tolist()
        assert kernel.top_k(v[::2], k).tolist() == np.argsort(-v[::2], kind="stable")[:k].tolist()  # strided


KERNELS = [pytest.param(None, id="reference"), pytest.param(
    "compiled", id="compiled", marks=pytest.mark.skipif(kernel is None, reason="compiled core not active"))]


def _side(lo, hi, rows, which):
    """A side's ``_Candidates`` over the given bounds, with the first prefixes ``ADLQueue._candidates`` gives it,
    by the reference helpers or the compiled ones."""
    lo, hi, rows = np.array(lo, np.float64), np.array(hi, np.float64), np.array(rows, np.int32)
    zero = (lo == 0) & (hi == 0)
    k = adlqueue.TOP
    if which is None:
        select, prefix, reach = adlbounds.top_k, adlqueue._live_prefix, adlqueue._live_reach
        top, hi_top = select(lo, k), select(adlqueue._reach_values(hi, zero), k)
    else:
        select, prefix, reach = kernel.top_k, kernel.live_prefix, kernel.live_reach
        top, hi_top = kernel.top_k(lo, k), kernel.top_k(np.where(zero, -math.inf, hi), k)
    c = adlqueue._Candidates(rows, rows.astype(np.int64), np.zeros(len(rows), np.int8), lo, hi, zero, top,
                             select=select, prefix=prefix, reach=reach)
    if len(hi_top):
        c.hi_top, c._hi_desc = hi_top, np.where(zero[hi_top], math.inf, -hi[hi_top])
    return c


BOUND_VALUES = st.sampled_from([0.0, -1.0, 1.0, 2.0, 3.5, -math.inf, math.inf])


@st.composite
def sides(draw):
    """Candidates (up to 700: past the first prefixes of TOP, so they grow) with bounds lo ≤ hi from a few
    values (many ties, zero candidates, ±inf), owned by a few rows of which some are skipped; bounds to reach,
    in call order."""
    n = draw(st.integers(0, 700))
    pairs = [sorted((draw(BOUND_VALUES), draw(BOUND_VALUES))) for _ in range(n)]
    rows = [draw(st.integers(0, 9)) for _ in range(n)]
    skipped = draw(st.lists(st.booleans(), min_size=10, max_size=10))
    return [p[0] for p in pairs], [p[1] for p in pairs], rows, skipped, draw(st.lists(BOUND_VALUES, min_size=1, max_size=4))


@pytest.mark.parametrize("which", KERNELS)
@settings(max_examples=150, deadline=None)
@given(sides())
def test_reaching_live_is_every_live_nonzero_candidate_whose_upper_bound_reaches(which, side):
    """The oracle: candidates outside skipped rows, not known to score 0, with ``hi ≥ bound``, by ``hi``
    descending then index (the zero candidates are left to the caller: in the result only at a bound of -inf,
    where it drops them); and :meth:`highest_live` the first k live ones by ``lo`` descending then index."""
    lo, hi, rows, skipped, bounds = side
    c = _side(lo, hi, rows, which)
    skip = np.array(skipped)
    for bound in bounds:
        got = c.reaching_live(bound, skip)
        got = got[~c.zero[got]] if bound == -math.inf else got
        want = sorted((j for j in range(len(lo)) if not skipped[rows[j]] and not (lo[j] == 0 == hi[j]) and hi[j] >= bound),
                      key=lambda j: (-hi[j], j))
        assert got.tolist() == want
        for k in (1, 8, 300):
            live = sorted((j for j in range(len(lo)) if not skipped[rows[j]]), key=lambda j: (-lo[j], j))
            assert c.highest_live(k, skip).tolist() == live[:k]


@compiled
@pytest.mark.parametrize("profile", ["binance", "bybit", "dydx", "bitmex"])
def test_the_compiled_stale_pass_leaves_what_the_reference_leaves(profile, monkeypatch):
    """``stale_look`` (the compiled pass of ``ADLQueue._stale`` over the accounts it looks at) against
    ``queue._look`` on copies of the same state, at every pass of a crash that ends in ADL: the same stale
    scores and their order, suspects, fresh set, skipped rows and mask, and exact scores kept by the queue."""
    ex = crowd(profile, 200, seed=5)
    queue = ex.liquidation.adl_queue
    assert queue._look is kernel.stale_look
    passes = []

    def both(queue, c, look, holders, symbol, long, ranking, liquidated):
        shadow = SimpleNamespace(suspects=dict(c.suspects), stale=dict(c.stale), stale_order=list(c.stale_order),
                                 fresh=set(c.fresh), skipped=set(c.skipped), skip=c.skip.copy(), unskipped=c.unskipped)
        shadow_queue = copy.copy(queue)
        shadow_queue._scores = dict(queue._scores)
        adlqueue._look(shadow_queue, shadow, set(look), holders, symbol, long, ranking, liquidated)
        kernel.stale_look(queue, c, look, holders, symbol, long, ranking, liquidated)
        for name in ("suspects", "stale", "stale_order", "fresh", "skipped", "unskipped"):
            assert getattr(c, name) == getattr(shadow, name), name
        assert np.array_equal(c.skip, shadow.skip)
        assert queue._scores == shadow_queue._scores
        # what the compiled pass keeps through the command stays out of the cycle collector (_records.pxd)
        assert not [s for s in c.suspects.values() if gc.is_tracked(s)]
        assert not [v for v in queue._scores.values() if gc.is_tracked(v) or gc.is_tracked(v[1])]
        passes.append(len(look))

    monkeypatch.setattr(queue, "_look", both)
    for mark in marks_down_and_up():
        ex.apply(SetMarkPrice(SYMBOL, mark))
    assert len(passes) > 20 and max(passes) > 3


@compiled
@pytest.mark.parametrize("profile", ["binance", "bybit", "hyperliquid", "bitmex"])
def test_the_compiled_exact_rank_is_the_references(profile):
    """``ExactRank`` (the compiled ``_rank(score_ratio(...))``) against the reference on every position of every
    holder, on both sides, and on keys without a position (an empty one is scored), after every mark of a crash
    and recovery: the same float and the same exact ratio (numerator and denominator, unreduced)."""
    ex = crowd(profile, 120, seed=9)
    queue = ex.liquidation.adl_queue
    ranking = ex.profile.adl_ranking
    assert isinstance(queue._rank, kernel.ExactRank)
    checked = 0
    for mark in marks_down_and_up()[::3]:
        ex.apply(SetMarkPrice(SYMBOL, mark))
        for account_id in sorted(ex.ledger.accounts):
            for side in PositionSide:
                key = (account_id, side)
                got, want = queue._rank(SYMBOL, key, ranking), queue._rank_reference(SYMBOL, key, ranking)
                assert got[0] == want[0]
                assert (got[1].numerator, got[1].denominator) == (want[1].numerator, want[1].denominator)
                assert not gc.is_tracked(got) and not gc.is_tracked(got[1])  # (kept through a command: _records.pxd)
                checked += 1
    assert checked > 1_000


@compiled
@pytest.mark.parametrize("profile,log_min", [("binance", 4096), ("bybit", 4096), ("binance", 3), ("dydx", 0)])
def test_the_kept_side_slots_filter_as_every_slot_would(profile, log_min, monkeypatch):
    """The compiled queue filters a side's candidates from the slots it kept since the previous command
    (``_bounds.SideSlots``, followed through the monitor's writer's log of the accounts it wrote) instead of
    every mirror slot: at every candidate build of a two-symbol crash that ends in ADL, the kept slots are
    ascending, without repeats, hold every slot of the side, and give the same columns and first prefixes as the
    full filter. With a tiny log the log starts over (a new epoch) at most commands, so the full filter runs too."""
    ex = crowd(profile, 300, seed=11, symbols=(SYMBOL, OTHER))
    ex.monitor._writer.log_min = log_min
    queue = ex.liquidation.adl_queue
    builds, epochs, full = [], set(), kernel.candidates_top

    def checked(p, ids, symbol, long, fund_base, marks, ranking, k, kept):
        got = full(p, ids, symbol, long, fund_base, marks, ranking, k, kept)
        kept.check(p, ids, fund_base)
        assert len(kept) == len(got[0])
        want = full(p, ids, symbol, long, fund_base, marks, ranking, k)
        for mine, theirs in zip(got, want):
            assert np.array_equal(mine, theirs)
        builds.append(len(kept))
        epochs.add(ex.monitor._writer.log_epoch)
        return got

    monkeypatch.setattr(queue, "_columns", checked)
    for mark in marks_down_and_up():
        for symbol in (SYMBOL, OTHER):
            ex.apply(SetMarkPrice(symbol, mark))
    assert len(builds) > 20 and max(builds) > 50
    assert (len(epochs) > 5) == (log_min < 10)  # (tiny log: it starts over again and again)


@compiled
def test_kept_side_slots_refuse_another_side_or_an_unfollowed_portfolio():
    ex = crowd("binance", 300, seed=11)
    queue, m = ex.liquidation.adl_queue, ex.monitor
    p, ids, version = m.mirror(set())
    kept = kernel.SideSlots(0, True)
    marks = np.array([10_000], np.int64)
    with pytest.raises(ValueError, match="not this side"):
        kernel.candidates(p, ids, 0, True, 2**62, marks, "binance", kept)  # never followed
    kept.follow(p, ids, 2**62, m._writer)
    kept.check(p, ids, 2**62)
    with pytest.raises(ValueError, match="not this side"):
        kernel.candidates(p, ids, 0, False, 2**62, marks, "binance", kept)
    got = kernel.candidates(p, ids, 0, True, 2**62, marks, "binance", kept)
    assert np.array_equal(got[0], kernel.candidates(p, ids, 0, True, 2**62, marks, "binance")[0])
