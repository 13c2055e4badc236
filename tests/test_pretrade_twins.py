"""The compiled order sums and holds (exchange/accounts/_pretrade.pyx) against the reference
(exchange/accounts/pretrade.py), value for value, on their int64 path and on their Python-int fallback.

- :func:`sums_hold` on hypothesis inputs, most within int64, some beyond it or with an intermediate product
  beyond it, at int and Fraction leverages.
- A reference and a compiled :class:`~exchange.accounts.pretrade.Risk` over twin ledgers, fed the same
  ``track_order`` calls (new orders, amended leaves, removals, reduce-only and hedge orders, prices and lots up
  to 2⁸⁰): after each call ``order_sums``, the reduce-only test, ``key_hold`` (with an extra order, a
  replaced one and a leverage), ``store_holds`` and ``available`` agree, and the compiled sums equal a recomputation.
- Deterministic cases that must take the fallback (sums beyond int64, an extra order beyond it, a product
  beyond it with small inputs), and empty buckets.
"""
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.accounts import pretrade
from exchange.accounts.ledger import EMPTY, Ledger, Position
from exchange.accounts.pretrade import Risk
from exchange.enums import PositionMode, PositionSide, Side
from exchange.profiles import RiskOptions
from tests.conftest import COMPILED, make_instrument

pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled core not active")

SYM = "TESTUSDT"
INT64 = 2**63
BOTH, LONG, SHORT = PositionSide.BOTH, PositionSide.LONG, PositionSide.SHORT

small = st.integers(0, 10**6)
wide = st.one_of(small, st.integers(0, 2**80), st.sampled_from([INT64 - 1, INT64, INT64 + 1, 2**62, 2**31]))
signed_wide = st.one_of(st.integers(-10**6, 10**6), st.integers(-2**80, 2**80),
                        st.sampled_from([-INT64, -INT64 + 1, INT64 - 1, INT64]))
leverages = st.one_of(st.integers(1, 125), st.sampled_from([1, 2**62, INT64, 2**70]),
                      st.fractions(1, 200).filter(lambda f: f >= 1))


def _kernel():
    from exchange import _impl

    return _impl.pretrade_kernel


@given(k=st.one_of(st.integers(1, 10**8), st.sampled_from([2**40, INT64 - 1, INT64, 2**70])), leverage=leverages,
       position=signed_wide, buy_lots=wide, buy_cost=wide, sell_lots=wide, sell_cost=wide)
@settings(max_examples=400, deadline=None)
def test_sums_hold_is_the_reference(k, leverage, position, buy_lots, buy_cost, sell_lots, sell_cost):
    args = (k, leverage, position, buy_lots, buy_cost, sell_lots, sell_cost)
    assert _kernel().sums_hold(*args) == pretrade.sums_hold(*args)


def test_sums_hold_falls_back_on_a_product_beyond_int64_and_refuses_a_leverage_below_one():
    # every input fits int64, cost × K × (lots − closable) does not: the Python-int path gives the value
    args = (10**6, 3, -5, 10**6, 10**9 * 10**6, 7, 7 * 10**9)
    assert _kernel().sums_hold(*args) == pretrade.sums_hold(*args)
    assert pretrade.sums_hold(*args)[1] > INT64  # (the value itself is beyond int64)
    for leverage in (0, -1, Fraction(1, 2)):
        with pytest.raises(ValueError):
            _kernel().sums_hold(100, leverage, 0, 1, 100, 0, 0)
        with pytest.raises(ValueError):
            pretrade.sums_hold(100, leverage, 0, 1, 100, 0, 0)


def _risk(compiled: bool, k_units: int, hedge: bool, position_lots: int):
    """A Risk over a ledger of account 1 (one-way or hedge) with a position, on an instrument of ``k_units``."""
    inst = make_instrument()
    instruments = {SYM: SimpleNamespace(k_units=k_units, brackets=inst.brackets)}
    ledger = Ledger({SYM: 20})
    account = ledger.open(1)
    account.wallet_units = 10**12
    if hedge:
        account.position_mode = PositionMode.HEDGE
        if position_lots:
            account.positions = {(SYM, LONG): Position(abs(position_lots), 0),
                                 (SYM, SHORT): Position(-abs(position_lots), 0)}
    elif position_lots:
        account.positions = {(SYM, BOTH): Position(position_lots, 0)}
    return Risk(instruments, ledger, RiskOptions(), lambda symbol: 100, lambda account_id, symbol: [],
                compiled=compiled), account


def _state(order_id, side, price, lots, reduce_only):
    """A book ``order(order_id)`` tuple as the risk stage reads it (id, account, side, price, lots, -, -,
    reduce-only)."""
    return order_id, 1, side, price, lots, 0, 0, reduce_only


def _compare(ref, ref_account, comp, comp_account, hedge, extra, replacing, leverage):
    sides = (LONG, SHORT) if hedge else (BOTH,)
    assert comp.order_sums(1, SYM) == ref.order_sums(1, SYM)
    assert comp.track_order.__self__.reduce_only(1, SYM) == any(
        sums[4] or sums[5] for sums in ref.order_sums(1, SYM).values())
    for side in sides:
        for args in ((), (extra,), (extra, replacing), (None, replacing, leverage), (extra, replacing, leverage)):
            assert comp.key_hold(comp_account, SYM, side, *args) == ref.key_hold(ref_account, SYM, side, *args)
    ref.store_holds(ref_account, SYM)
    comp.store_holds(comp_account, SYM)
    assert comp_account.holds == ref_account.holds
    assert (comp_account.holds is EMPTY) == (ref_account.holds is EMPTY)
    assert comp.available(comp_account) == ref.available(ref_account)  # wallet − Σ holds (+ positions)


operations = st.lists(st.tuples(st.integers(1, 6), st.sampled_from([Side.BUY, Side.SELL]), wide,
                                st.one_of(st.integers(1, 1000), st.integers(1, 2**70)), st.booleans(), st.booleans()),
                      min_size=1, max_size=25)


@given(ops=operations, hedge=st.booleans(), position=signed_wide,
       k=st.one_of(st.integers(1, 10**6), st.sampled_from([INT64 - 1, 2**70])),
       extra=st.tuples(st.sampled_from([Side.BUY, Side.SELL]), wide, st.one_of(st.integers(1, 1000), wide)),
       replacing=st.integers(0, 7), leverage=leverages)
@settings(max_examples=250, deadline=None)
def test_order_sums_and_holds_are_the_reference(ops, hedge, position, k, extra, replacing, leverage):
    (ref, ref_account), (comp, comp_account) = (_risk(c, k, hedge, position) for c in (False, True))
    resting = {}
    for order_id, side, price, lots, reduce_only, remove in ops:
        position_side = (LONG if order_id % 2 else SHORT) if hedge else BOTH
        if remove:
            state = None
            resting.pop(order_id, None)
        else:
            state = _state(order_id, int(side), price, lots, reduce_only)
            resting[order_id] = (SYM, state, position_side)
        for risk in (ref, comp):
            risk.track_order(SYM, order_id, position_side, state)
        _compare(ref, ref_account, comp, comp_account, hedge, extra, replacing, leverage)
    comp.check_order_sums(resting.values())
    ref.check_order_sums(resting.values())


def test_sums_beyond_int64_move_the_bucket_to_python_ints_and_stay_exact():
    (ref, ref_account), (comp, comp_account) = (_risk(c, 10**6, False, 3) for c in (False, True))
    steps = [(1, _state(1, int(Side.BUY), 2**62, 1, False)), (2, _state(2, int(Side.BUY), 2**62, 3, False)),
             (3, _state(3, int(Side.SELL), 7, 2, True)), (2, None), (1, _state(1, int(Side.BUY), 5, 1, False))]
    for order_id, state in steps:
        for risk in (ref, comp):
            risk.track_order(SYM, order_id, BOTH, state)
        _compare(ref, ref_account, comp, comp_account, False, (Side.SELL, 2**70, 3), 1, 10)
    assert comp._orders[(1, SYM)].big is not None  # the fallback layout was taken (and kept)


def test_small_sums_stay_in_c_fields_and_an_emptied_bucket_is_dropped():
    (ref, ref_account), (comp, comp_account) = (_risk(c, 10**6, True, -4) for c in (False, True))
    for order_id, side in ((1, Side.BUY), (2, Side.SELL)):
        for risk in (ref, comp):
            risk.track_order(SYM, order_id, LONG if order_id % 2 else SHORT, _state(order_id, int(side), 100, 5, False))
        _compare(ref, ref_account, comp, comp_account, True, (Side.BUY, 10**60, 1), order_id, 3)
    assert comp._orders[(1, SYM)].big is None
    assert list(comp.order_sums(1, SYM)) == list(ref.order_sums(1, SYM)) == [LONG, SHORT]  # first-seen order
    for order_id in (1, 2):
        for risk in (ref, comp):
            risk.track_order(SYM, order_id, LONG if order_id % 2 else SHORT, None)
        _compare(ref, ref_account, comp, comp_account, True, (Side.SELL, 100, 1), 0, 0)
    assert comp.order_sums(1, SYM) == {} and not comp._orders
    assert comp_account.holds is EMPTY
