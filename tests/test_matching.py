"""Matching engine scenarios against the contract in docs/matching.md (active implementation).

The test instrument (tests/conftest.py): tick 0.01, lot 1, K = 10⁶ units per tick·lot, maker fee 0.0002,
taker fee 0.0005, band 1.15 / 0.85, no min notional. Prices are written in ticks (100.00 = 10000).
A fill of q lots at p ticks has notional p × q × 10⁶ units, so its maker fee is p × q × 200 units and its
taker fee p × q × 500 units, exactly (no rounding at this K; rounding is tested with a finer lot).

Every test drives the engine through :class:`Checked`, which runs ``check_invariants()`` after each command
and, for every rejected command, checks that exactly one REJECTED row was appended and that
``canonical_state()`` did not change.
"""
import numpy as np
import pytest

from conftest import ActiveMatchingEngine, make_instrument
from exchange.commands import COMMAND_DTYPE
from exchange.enums import CancelReason, CommandKind, EventKind, OrderType, RejectCode, Side, STPMode
from exchange.enums import TimeInForce as TIF
from exchange.events import EVENT_DTYPE

BUY, SELL = int(Side.BUY), int(Side.SELL)
A, B, C = 1, 2, 3  # account ids
NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH = (int(m) for m in STPMode)


class Checked:
    """The engine, with invariants checked after every command and rejects checked to change nothing."""

    COMMANDS = {"place", "cancel", "amend", "cancel_all", "set_mark", "set_time", "run_batch"}
    REJECTABLE = {"place", "cancel", "amend"}

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        attribute = getattr(self.engine, name)
        if name not in self.COMMANDS:
            return attribute

        def command(*args):
            state_before, rows_before = self.engine.canonical_state(), self.engine.event_count()
            result = attribute(*args)
            self.engine.check_invariants()
            if name in self.REJECTABLE and result != 0:
                assert self.engine.canonical_state() == state_before, f"rejected {name} changed the state"
                new_rows = self.engine.events()[rows_before:]
                assert len(new_rows) == 1, f"rejected {name} appended {len(new_rows)} rows"
                assert new_rows[0]["kind"] == EventKind.REJECTED and new_rows[0]["code"] == result
            return result

        return command


@pytest.fixture
def eng(engine):
    return Checked(engine)


def engine_with(**instrument_overrides):
    return Checked(ActiveMatchingEngine(make_instrument(**instrument_overrides)))


# -- commands, shortened ---------------------------------------------------------------------------
def limit(e, order_id, account_id, side, price_ticks, qty_lots, tif=TIF.GTC, stp=NONE, reduce_only=0, expire_ns=0):
    return e.place(order_id, account_id, side, OrderType.LIMIT, tif, price_ticks, qty_lots, stp, reduce_only,
                   expire_ns)


def market(e, order_id, account_id, side, qty_lots, stp=NONE, reduce_only=0):
    return e.place(order_id, account_id, side, OrderType.MARKET, TIF.IOC, 0, qty_lots, stp, reduce_only, 0)


# -- expected rows (EVENT_FIELDS order) -----------------------------------------------------------
def accepted(order_id, account_id, side, price_ticks, qty_lots):
    return (EventKind.ACCEPTED, order_id, account_id, side, price_ticks, qty_lots, qty_lots, 0, 0, 0, 0, 0, 0)


def rejected(order_id, account_id, side, price_ticks, qty_lots, code):
    return (EventKind.REJECTED, order_id, account_id, side, price_ticks, qty_lots, 0, code, 0, 0, 0, 0, 0)


def canceled(order_id, account_id, side, price_ticks, qty_lots, reason):
    return (EventKind.CANCELED, order_id, account_id, side, price_ticks, qty_lots, 0, reason, 0, 0, 0, 0, 0)


def amended(order_id, account_id, side, price_ticks, leaves_lots, priority_kept):
    return (EventKind.AMENDED, order_id, account_id, side, price_ticks, 0, leaves_lots, int(priority_kept),
            0, 0, 0, 0, 0)


def fill(taker, taker_account, side, price_ticks, qty_lots, taker_leaves, maker, maker_account, maker_leaves,
         maker_fee=None, taker_fee=None):
    """A FILL row; fees default to the test instrument's exact p × q × 200 (maker) and × 500 (taker)."""
    maker_fee = price_ticks * qty_lots * 200 if maker_fee is None else maker_fee
    taker_fee = price_ticks * qty_lots * 500 if taker_fee is None else taker_fee
    return (EventKind.FILL, taker, taker_account, side, price_ticks, qty_lots, taker_leaves, 0, maker,
            maker_account, maker_leaves, maker_fee, taker_fee)


def rows(e):
    """Take the buffered events as a list of plain tuples."""
    return [tuple(row) for row in e.take_events().tolist()]


def ids(e):
    """Resting order ids in canonical (priority) order."""
    return [entry[0] for entry in e.canonical_state()[3:]]


# == time in force ==================================================================================
def test_gtc_rests_without_matching(eng):
    assert limit(eng, 1, A, SELL, 10000, 5) == 0
    assert rows(eng) == [accepted(1, A, SELL, 10000, 5)]
    assert eng.order(1) == (1, A, SELL, 10000, 5, TIF.GTC, NONE, 0, 0)
    assert (eng.best_bid(), eng.best_ask(), eng.order_count()) == (0, 10000, 1)


def test_gtc_fills_what_crosses_and_rests_the_remainder_at_its_price(eng):
    limit(eng, 1, A, SELL, 10000, 3)
    eng.clear_events()
    assert limit(eng, 2, B, BUY, 10100, 5) == 0
    assert rows(eng) == [accepted(2, B, BUY, 10100, 5), fill(2, B, BUY, 10000, 3, 2, 1, A, 0)]
    assert eng.order(2) == (2, B, BUY, 10100, 2, TIF.GTC, NONE, 0, 0)
    assert (eng.best_bid(), eng.best_ask(), eng.last_price()) == (10100, 0, 10000)


def test_ioc_remainder_is_canceled_not_rested(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    eng.clear_events()
    assert limit(eng, 2, B, BUY, 10000, 5, tif=TIF.IOC) == 0
    assert rows(eng) == [accepted(2, B, BUY, 10000, 5), fill(2, B, BUY, 10000, 2, 3, 1, A, 0),
                         canceled(2, B, BUY, 10000, 3, CancelReason.IOC)]
    assert eng.order_count() == 0


def test_ioc_on_an_empty_side_is_accepted_then_canceled(eng):
    assert limit(eng, 1, A, BUY, 10000, 4, tif=TIF.IOC) == 0
    assert rows(eng) == [accepted(1, A, BUY, 10000, 4), canceled(1, A, BUY, 10000, 4, CancelReason.IOC)]


def test_fok_fills_completely_across_levels(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, B, SELL, 10010, 3)
    eng.clear_events()
    assert limit(eng, 3, C, BUY, 10010, 5, tif=TIF.FOK) == 0
    assert rows(eng) == [accepted(3, C, BUY, 10010, 5), fill(3, C, BUY, 10000, 2, 3, 1, A, 0),
                         fill(3, C, BUY, 10010, 3, 0, 2, B, 0)]
    assert eng.order_count() == 0


def test_fok_rejected_when_only_part_is_available(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, B, SELL, 10010, 3)  # beyond the FOK's limit: does not count
    eng.clear_events()
    assert limit(eng, 3, C, BUY, 10000, 3, tif=TIF.FOK) == RejectCode.FOK_NOT_FILLED
    assert rows(eng) == [rejected(3, C, BUY, 10000, 3, RejectCode.FOK_NOT_FILLED)]
    assert eng.depth(5) == ([], [(10000, 2, 1), (10010, 3, 1)])


def test_gtx_rejected_when_it_would_take(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    eng.clear_events()
    assert limit(eng, 2, B, BUY, 10000, 1, tif=TIF.GTX) == RejectCode.POST_ONLY_WOULD_TAKE
    assert limit(eng, 3, B, BUY, 10050, 1, tif=TIF.GTX) == RejectCode.POST_ONLY_WOULD_TAKE
    assert rows(eng) == [rejected(2, B, BUY, 10000, 1, RejectCode.POST_ONLY_WOULD_TAKE),
                         rejected(3, B, BUY, 10050, 1, RejectCode.POST_ONLY_WOULD_TAKE)]


def test_gtx_accepted_when_it_rests(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    eng.clear_events()
    assert limit(eng, 2, B, BUY, 9999, 1, tif=TIF.GTX) == 0
    assert limit(eng, 3, B, SELL, 10100, 1, tif=TIF.GTX) == 0  # same side as the best: never takes
    assert rows(eng) == [accepted(2, B, BUY, 9999, 1), accepted(3, B, SELL, 10100, 1)]
    assert eng.order(2)[5] == TIF.GTX


def test_gtd_rests_with_its_expiry_and_expires_when_time_reaches_it(eng):
    eng.set_time(1_000)
    assert limit(eng, 1, A, BUY, 10000, 3, tif=TIF.GTD, expire_ns=2_000) == 0
    assert eng.order(1) == (1, A, BUY, 10000, 3, TIF.GTD, NONE, 0, 2_000)
    eng.clear_events()
    assert eng.set_time(1_999) == 0
    assert eng.order_count() == 1
    assert eng.set_time(2_000) == 1
    assert rows(eng) == [canceled(1, A, BUY, 10000, 3, CancelReason.GTD_EXPIRED)]
    assert eng.order_count() == 0 and eng.now() == 2_000


def test_gtd_expiry_cancels_the_remaining_leaves(eng):
    limit(eng, 1, A, SELL, 10000, 5, tif=TIF.GTD, expire_ns=500)
    limit(eng, 2, B, BUY, 10000, 2)
    eng.clear_events()
    assert eng.set_time(500) == 1
    assert rows(eng) == [canceled(1, A, SELL, 10000, 3, CancelReason.GTD_EXPIRED)]


def test_gtd_orders_expire_in_time_then_id_order(eng):
    limit(eng, 5, A, BUY, 9000, 1, tif=TIF.GTD, expire_ns=300)
    limit(eng, 3, B, BUY, 9100, 1, tif=TIF.GTD, expire_ns=300)
    limit(eng, 4, A, SELL, 9500, 2, tif=TIF.GTD, expire_ns=250)
    limit(eng, 6, A, SELL, 9600, 1, tif=TIF.GTD, expire_ns=301)
    eng.clear_events()
    assert eng.set_time(300) == 3
    assert rows(eng) == [canceled(4, A, SELL, 9500, 2, CancelReason.GTD_EXPIRED),
                         canceled(3, B, BUY, 9100, 1, CancelReason.GTD_EXPIRED),
                         canceled(5, A, BUY, 9000, 1, CancelReason.GTD_EXPIRED)]
    assert ids(eng) == [6]


def test_filled_gtd_order_does_not_expire_later(eng):
    limit(eng, 1, A, SELL, 10000, 2, tif=TIF.GTD, expire_ns=100)
    limit(eng, 2, B, BUY, 10000, 2)
    eng.clear_events()
    assert eng.set_time(100) == 0
    assert rows(eng) == []


@pytest.mark.parametrize("expire_ns", [1_000, 999, 0])
def test_gtd_rejected_when_expiry_is_not_in_the_future(eng, expire_ns):
    eng.set_time(1_000)
    code = limit(eng, 1, A, BUY, 10000, 1, tif=TIF.GTD, expire_ns=expire_ns)
    assert code == RejectCode.GTD_TIME_INVALID
    assert rows(eng) == [rejected(1, A, BUY, 10000, 1, RejectCode.GTD_TIME_INVALID)]


def test_expire_ns_is_ignored_and_stored_as_zero_for_other_tifs(eng):
    eng.set_time(1_000)
    assert limit(eng, 1, A, BUY, 10000, 1, tif=TIF.GTC, expire_ns=5) == 0
    assert eng.order(1)[8] == 0
    assert eng.set_time(2_000) == 0 and eng.order_count() == 1


# == market orders ==================================================================================
def test_market_walks_levels_at_each_makers_price(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, B, SELL, 10050, 3)
    eng.clear_events()
    assert market(eng, 3, C, BUY, 4) == 0
    assert rows(eng) == [accepted(3, C, BUY, 0, 4), fill(3, C, BUY, 10000, 2, 2, 1, A, 0),
                         fill(3, C, BUY, 10050, 2, 0, 2, B, 1)]
    assert eng.order(2)[4] == 1 and eng.last_price() == 10050


def test_market_buy_stops_at_the_band_and_the_rest_expires(eng):
    limit(eng, 1, A, SELL, 11500, 1)  # mark 100.00 × 1.15 = 115.00 → band 11500
    limit(eng, 2, A, SELL, 11501, 5)
    eng.set_mark(10000)
    eng.clear_events()
    assert market(eng, 3, B, BUY, 3) == 0
    assert rows(eng) == [accepted(3, B, BUY, 0, 3), fill(3, B, BUY, 11500, 1, 2, 1, A, 0),
                         canceled(3, B, BUY, 0, 2, CancelReason.PRICE_BAND)]
    assert eng.best_ask() == 11501


def test_market_sell_stops_at_the_band_rounded_up(eng):
    limit(eng, 1, A, BUY, 8501, 1)  # mark 100.01 × 0.85 = 85.0085 → band ceil = 8501
    limit(eng, 2, A, BUY, 8500, 1)
    eng.set_mark(10001)
    eng.clear_events()
    assert market(eng, 3, B, SELL, 2) == 0
    assert rows(eng) == [accepted(3, B, SELL, 0, 2), fill(3, B, SELL, 8501, 1, 1, 1, A, 0),
                         canceled(3, B, SELL, 0, 1, CancelReason.PRICE_BAND)]


def test_market_without_a_mark_is_unlimited(eng):
    limit(eng, 1, A, SELL, 10000, 1)
    limit(eng, 2, A, SELL, 90000, 1)
    eng.clear_events()
    assert market(eng, 3, B, BUY, 2) == 0
    assert rows(eng)[-1] == fill(3, B, BUY, 90000, 1, 0, 2, A, 0)


def test_market_on_an_empty_book_expires_with_no_liquidity(eng):
    assert market(eng, 1, A, BUY, 5) == 0
    assert rows(eng) == [accepted(1, A, BUY, 0, 5), canceled(1, A, BUY, 0, 5, CancelReason.NO_LIQUIDITY)]


def test_market_that_exhausts_the_book_expires_with_no_liquidity(eng):
    limit(eng, 1, A, BUY, 10000, 2)
    eng.clear_events()
    assert market(eng, 2, B, SELL, 5) == 0
    assert rows(eng) == [accepted(2, B, SELL, 0, 5), fill(2, B, SELL, 10000, 2, 3, 1, A, 0),
                         canceled(2, B, SELL, 0, 3, CancelReason.NO_LIQUIDITY)]


def test_market_ignores_tif_and_expire_ns(eng):
    assert eng.place(1, A, BUY, OrderType.MARKET, 0, 0, 1, NONE, 0, 12345) == 0
    assert eng.place(2, A, BUY, OrderType.MARKET, 99, 0, 1, NONE, 0, 0) == 0


def test_market_min_notional_uses_the_mark():
    e = engine_with(min_notional="5")  # 5 USDT = 5 × 10⁸ units; at mark 1.00 one lot is 10⁸ units
    assert market(e, 1, A, BUY, 4) == 0  # no mark: the check is skipped
    e.set_mark(100)
    e.clear_events()
    assert market(e, 2, A, BUY, 4) == RejectCode.NOTIONAL_TOO_SMALL  # 4 × 10⁸ < 5 × 10⁸
    assert market(e, 3, A, BUY, 5) == 0
    assert market(e, 4, A, BUY, 4, reduce_only=1) == 0
    assert rows(e)[0] == rejected(2, A, BUY, 0, 4, RejectCode.NOTIONAL_TOO_SMALL)


def test_market_quantity_limit():
    e = engine_with(max_market_qty="10")
    assert market(e, 1, A, BUY, 11) == RejectCode.MARKET_QTY_GREATER_THAN_MAX
    assert market(e, 2, A, BUY, 10) == 0
    assert limit(e, 3, A, BUY, 10000, 11) == 0  # the market limit does not apply to LIMIT


# == self-trade prevention ==========================================================================
def test_stp_none_trades_with_itself(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    eng.clear_events()
    assert limit(eng, 2, A, BUY, 10000, 2, stp=NONE) == 0
    assert rows(eng) == [accepted(2, A, BUY, 10000, 2), fill(2, A, BUY, 10000, 2, 0, 1, A, 0)]


def test_stp_is_decided_by_the_takers_mode(eng):
    limit(eng, 1, A, SELL, 10000, 2, stp=EXPIRE_BOTH)
    eng.clear_events()
    assert limit(eng, 2, A, BUY, 10000, 2, stp=NONE) == 0
    assert rows(eng)[1] == fill(2, A, BUY, 10000, 2, 0, 1, A, 0)


def test_stp_expire_taker_keeps_the_maker_and_expires_the_rest(eng):
    limit(eng, 1, B, SELL, 10000, 1)
    limit(eng, 2, A, SELL, 10000, 2)
    limit(eng, 3, B, SELL, 10010, 2)
    eng.clear_events()
    assert limit(eng, 4, A, BUY, 10010, 4, stp=EXPIRE_TAKER) == 0
    assert rows(eng) == [accepted(4, A, BUY, 10010, 4), fill(4, A, BUY, 10000, 1, 3, 1, B, 0),
                         canceled(4, A, BUY, 10010, 3, CancelReason.STP_TAKER)]
    assert ids(eng) == [2, 3]


def test_stp_expire_maker_removes_own_makers_and_continues(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, B, SELL, 10000, 1)
    limit(eng, 3, B, SELL, 10010, 2)
    eng.clear_events()
    assert limit(eng, 4, A, BUY, 10010, 3, stp=EXPIRE_MAKER) == 0
    assert rows(eng) == [accepted(4, A, BUY, 10010, 3), canceled(1, A, SELL, 10000, 2, CancelReason.STP_MAKER),
                         fill(4, A, BUY, 10000, 1, 2, 2, B, 0), fill(4, A, BUY, 10010, 2, 0, 3, B, 0)]
    assert eng.order_count() == 0


def test_stp_expire_both_cancels_maker_then_taker(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, B, SELL, 10010, 2)
    eng.clear_events()
    assert limit(eng, 3, A, BUY, 10010, 3, stp=EXPIRE_BOTH) == 0
    assert rows(eng) == [accepted(3, A, BUY, 10010, 3), canceled(1, A, SELL, 10000, 2, CancelReason.STP_MAKER),
                         canceled(3, A, BUY, 10010, 3, CancelReason.STP_TAKER)]
    assert ids(eng) == [2]


def test_stp_on_a_market_taker_cancels_it_at_price_zero(eng):
    limit(eng, 1, A, BUY, 10000, 2)
    eng.clear_events()
    assert market(eng, 2, A, SELL, 1, stp=EXPIRE_TAKER) == 0
    assert rows(eng) == [accepted(2, A, SELL, 0, 1), canceled(2, A, SELL, 0, 1, CancelReason.STP_TAKER)]


def test_fok_with_expire_maker_does_not_count_own_makers(eng):
    limit(eng, 1, A, SELL, 10000, 5)
    limit(eng, 2, B, SELL, 10000, 2)
    eng.clear_events()
    assert limit(eng, 3, A, BUY, 10000, 3, tif=TIF.FOK, stp=EXPIRE_MAKER) == RejectCode.FOK_NOT_FILLED
    assert limit(eng, 4, A, BUY, 10000, 2, tif=TIF.FOK, stp=EXPIRE_MAKER) == 0
    assert rows(eng) == [rejected(3, A, BUY, 10000, 3, RejectCode.FOK_NOT_FILLED), accepted(4, A, BUY, 10000, 2),
                         canceled(1, A, SELL, 10000, 5, CancelReason.STP_MAKER),
                         fill(4, A, BUY, 10000, 2, 0, 2, B, 0)]


@pytest.mark.parametrize("stp", [EXPIRE_TAKER, EXPIRE_BOTH])
def test_fok_walk_stops_at_an_own_maker(eng, stp):
    limit(eng, 1, B, SELL, 10000, 1)
    limit(eng, 2, A, SELL, 10000, 1)
    limit(eng, 3, B, SELL, 10000, 5)  # behind the own maker: not reachable
    eng.clear_events()
    assert limit(eng, 4, A, BUY, 10000, 2, tif=TIF.FOK, stp=stp) == RejectCode.FOK_NOT_FILLED
    assert limit(eng, 5, A, BUY, 10000, 1, tif=TIF.FOK, stp=stp) == 0
    assert rows(eng)[-1] == fill(5, A, BUY, 10000, 1, 0, 1, B, 0)
    assert ids(eng) == [2, 3]


def test_fok_with_stp_none_counts_own_makers(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    assert limit(eng, 2, A, BUY, 10000, 2, tif=TIF.FOK, stp=NONE) == 0
    assert eng.order_count() == 0


# == amend ==========================================================================================
def two_bids_at_100(e):
    """A's order 1 then B's order 2, 5 lots each at 100.00; the buffer is cleared."""
    limit(e, 1, A, BUY, 10000, 5)
    limit(e, 2, B, BUY, 10000, 5)
    e.clear_events()


def test_amend_decrease_keeps_priority(eng):
    two_bids_at_100(eng)
    assert eng.amend(1, A, 10000, 3) == 0
    assert rows(eng) == [amended(1, A, BUY, 10000, 3, priority_kept=True)]
    assert eng.depth(1) == ([(10000, 8, 2)], [])
    assert limit(eng, 3, C, SELL, 10000, 3) == 0  # a later sell hits order 1 first
    assert rows(eng)[1] == fill(3, C, SELL, 10000, 3, 0, 1, A, 0)
    assert ids(eng) == [2]


def test_amend_increase_loses_priority(eng):
    two_bids_at_100(eng)
    assert eng.amend(1, A, 10000, 6) == 0
    assert rows(eng) == [amended(1, A, BUY, 10000, 6, priority_kept=False)]
    assert ids(eng) == [2, 1]
    limit(eng, 3, C, SELL, 10000, 5)
    assert rows(eng)[1] == fill(3, C, SELL, 10000, 5, 0, 2, B, 0)


@pytest.mark.parametrize("new_qty", [5, 4])
def test_amend_price_change_loses_priority_even_with_smaller_qty(eng, new_qty):
    limit(eng, 1, A, BUY, 9990, 5)
    limit(eng, 2, B, BUY, 10000, 5)
    eng.clear_events()
    assert eng.amend(1, A, 10000, new_qty) == 0
    assert rows(eng) == [amended(1, A, BUY, 10000, new_qty, priority_kept=False)]
    assert ids(eng) == [2, 1]
    assert eng.depth(5) == ([(10000, 5 + new_qty, 2)], [])


def test_amend_that_crosses_matches_then_rests(eng):
    limit(eng, 1, B, SELL, 10000, 3)
    limit(eng, 2, A, BUY, 9990, 5)
    eng.clear_events()
    assert eng.amend(2, A, 10000, 5) == 0
    assert rows(eng) == [amended(2, A, BUY, 10000, 5, priority_kept=False),
                         fill(2, A, BUY, 10000, 3, 2, 1, B, 0)]
    assert eng.order(2) == (2, A, BUY, 10000, 2, TIF.GTC, NONE, 0, 0)
    assert (eng.best_bid(), eng.best_ask()) == (10000, 0)


def test_amend_that_crosses_applies_the_orders_stp(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    limit(eng, 2, A, BUY, 9990, 1, stp=EXPIRE_TAKER)
    eng.clear_events()
    assert eng.amend(2, A, 10000, 1) == 0
    assert rows(eng) == [amended(2, A, BUY, 10000, 1, priority_kept=False),
                         canceled(2, A, BUY, 10000, 1, CancelReason.STP_TAKER)]
    assert eng.order(2) is None and ids(eng) == [1]


def test_amend_keeps_tif_and_gtd_expiry(eng):
    limit(eng, 1, A, BUY, 9990, 2, tif=TIF.GTD, expire_ns=50)
    assert eng.amend(1, A, 9995, 3) == 0
    assert eng.order(1) == (1, A, BUY, 9995, 3, TIF.GTD, NONE, 0, 50)
    eng.clear_events()
    assert eng.set_time(50) == 1
    assert rows(eng) == [canceled(1, A, BUY, 9995, 3, CancelReason.GTD_EXPIRED)]


def test_gtx_amend_that_would_take_is_rejected(eng):
    limit(eng, 1, B, SELL, 10000, 1)
    limit(eng, 2, A, BUY, 9990, 1, tif=TIF.GTX)
    eng.clear_events()
    assert eng.amend(2, A, 10000, 1) == RejectCode.POST_ONLY_WOULD_TAKE
    assert eng.amend(2, A, 9995, 1) == 0
    assert rows(eng) == [rejected(2, A, 0, 10000, 1, RejectCode.POST_ONLY_WOULD_TAKE),
                         amended(2, A, BUY, 9995, 1, priority_kept=False)]


def test_amend_without_change_is_rejected(eng):
    limit(eng, 1, A, BUY, 10000, 5)
    eng.clear_events()
    assert eng.amend(1, A, 10000, 5) == RejectCode.NO_NEED_TO_MODIFY
    assert rows(eng) == [rejected(1, A, 0, 10000, 5, RejectCode.NO_NEED_TO_MODIFY)]


def test_amend_unknown_or_foreign_order_is_rejected(eng):
    limit(eng, 1, A, BUY, 10000, 5)
    eng.clear_events()
    assert eng.amend(9, A, 10000, 4) == RejectCode.NO_SUCH_ORDER
    assert eng.amend(1, B, 10000, 4) == RejectCode.NO_SUCH_ORDER
    assert rows(eng) == [rejected(9, A, 0, 10000, 4, RejectCode.NO_SUCH_ORDER),
                         rejected(1, B, 0, 10000, 4, RejectCode.NO_SUCH_ORDER)]


@pytest.mark.parametrize("price_ticks, qty_lots, code", [
    (10000, 0, RejectCode.QTY_LESS_THAN_ZERO),
    (0, 0, RejectCode.QTY_LESS_THAN_ZERO),  # quantity is checked before price
    (10000, 100_001, RejectCode.QTY_GREATER_THAN_MAX_QTY),
    (0, 5, RejectCode.PRICE_LESS_THAN_ZERO),
    (10_000_001, 5, RejectCode.PRICE_GREATER_THAN_MAX_PRICE),
    (11501, 5, RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP),  # mark 100.00: band 115.00
])
def test_amend_quantity_and_price_checks(eng, price_ticks, qty_lots, code):
    limit(eng, 1, A, BUY, 10000, 5)
    eng.set_mark(10000)
    assert eng.amend(1, A, price_ticks, qty_lots) == code


def test_amend_sell_below_the_band_is_rejected(eng):
    limit(eng, 1, A, SELL, 10000, 5)
    eng.set_mark(10000)
    assert eng.amend(1, A, 8499, 5) == RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN
    assert eng.amend(1, A, 8500, 5) == 0


def test_amend_min_notional_unless_reduce_only():
    e = engine_with(min_notional="5")  # 5 × 10⁸ units; at 1.00 one lot is 10⁸ units
    limit(e, 1, A, BUY, 100, 5)
    limit(e, 2, A, BUY, 100, 5, reduce_only=1)
    assert e.amend(1, A, 100, 4) == RejectCode.NOTIONAL_TOO_SMALL
    assert e.amend(2, A, 100, 4) == 0


# == cancel =========================================================================================
def test_cancel_removes_the_remaining_leaves(eng):
    limit(eng, 1, A, SELL, 10000, 5)
    limit(eng, 2, B, BUY, 10000, 2)
    eng.clear_events()
    assert eng.cancel(1, A) == 0
    assert rows(eng) == [canceled(1, A, SELL, 10000, 3, CancelReason.USER)]
    assert eng.order(1) is None and eng.best_ask() == 0


def test_cancel_unknown_or_foreign_order_is_rejected(eng):
    limit(eng, 1, A, SELL, 10000, 5)
    eng.clear_events()
    assert eng.cancel(7, A) == RejectCode.UNKNOWN_ORDER
    assert eng.cancel(1, B) == RejectCode.UNKNOWN_ORDER
    assert rows(eng) == [rejected(7, A, 0, 0, 0, RejectCode.UNKNOWN_ORDER),
                         rejected(1, B, 0, 0, 0, RejectCode.UNKNOWN_ORDER)]


def test_cancel_of_a_filled_order_is_rejected(eng):
    limit(eng, 1, A, SELL, 10000, 1)
    limit(eng, 2, B, BUY, 10000, 1)
    assert eng.cancel(1, A) == RejectCode.UNKNOWN_ORDER


def test_cancel_all_cancels_in_ascending_order_id(eng):
    limit(eng, 7, A, BUY, 9900, 1)
    limit(eng, 3, A, SELL, 10100, 2)
    limit(eng, 4, B, BUY, 9950, 1)
    limit(eng, 5, A, BUY, 9990, 3)
    eng.clear_events()
    assert eng.orders_of(A) == [3, 5, 7]
    assert eng.cancel_all(A) == 3
    assert rows(eng) == [canceled(3, A, SELL, 10100, 2, CancelReason.USER),
                         canceled(5, A, BUY, 9990, 3, CancelReason.USER),
                         canceled(7, A, BUY, 9900, 1, CancelReason.USER)]
    assert ids(eng) == [4] and eng.orders_of(A) == []


def test_cancel_all_without_orders_does_nothing(eng):
    assert eng.cancel_all(A) == 0
    assert eng.event_count() == 0


# == place validation: every code, in contract order ================================================
@pytest.mark.parametrize("args, code", [
    # (order_id, account_id, side, order_type, tif, price_ticks, qty_lots, stp, reduce_only, expire_ns)
    ((1, A, 0, OrderType.LIMIT, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.INVALID_SIDE),
    ((1, A, 3, OrderType.LIMIT, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.INVALID_SIDE),
    ((1, A, BUY, OrderType.STOP, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.INVALID_ORDER_TYPE),
    ((1, A, BUY, 0, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.INVALID_ORDER_TYPE),
    ((1, A, BUY, OrderType.LIMIT, 0, 10000, 1, NONE, 0, 0), RejectCode.INVALID_TIF),
    ((1, A, BUY, OrderType.LIMIT, 6, 10000, 1, NONE, 0, 0), RejectCode.INVALID_TIF),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 1, 0, 0, 0), RejectCode.MALFORMED),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 1, 5, 0, 0), RejectCode.MALFORMED),
    ((0, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.MALFORMED),
    ((-1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.MALFORMED),
    ((1, -1, BUY, OrderType.LIMIT, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.MALFORMED),
    ((1, A, BUY, OrderType.MARKET, TIF.GTC, 10000, 1, NONE, 0, 0), RejectCode.MALFORMED),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 0, NONE, 0, 0), RejectCode.QTY_LESS_THAN_ZERO),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, -3, NONE, 0, 0), RejectCode.QTY_LESS_THAN_ZERO),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10000, 100_001, NONE, 0, 0), RejectCode.QTY_GREATER_THAN_MAX_QTY),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 0, 1, NONE, 0, 0), RejectCode.PRICE_LESS_THAN_ZERO),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, -100, 1, NONE, 0, 0), RejectCode.PRICE_LESS_THAN_ZERO),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 10_000_001, 1, NONE, 0, 0), RejectCode.PRICE_GREATER_THAN_MAX_PRICE),
    # precedence: the first failing check wins
    ((0, A, 0, OrderType.LIMIT, TIF.GTC, 10000, 0, NONE, 0, 0), RejectCode.INVALID_SIDE),
    ((1, A, BUY, OrderType.STOP, 0, 10000, 1, 0, 0, 0), RejectCode.INVALID_ORDER_TYPE),
    ((1, A, BUY, OrderType.LIMIT, 0, 10000, 1, 0, 0, 0), RejectCode.INVALID_TIF),
    ((1, -1, BUY, OrderType.LIMIT, TIF.GTC, 0, 0, NONE, 0, 0), RejectCode.MALFORMED),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTC, 0, 0, NONE, 0, 0), RejectCode.QTY_LESS_THAN_ZERO),
    ((1, A, BUY, OrderType.LIMIT, TIF.GTD, 0, 1, NONE, 0, 0), RejectCode.PRICE_LESS_THAN_ZERO),
])
def test_place_rejects_with_a_rejected_row(eng, args, code):
    assert eng.place(*args) == code
    order_id, account_id, side, _, _, price_ticks, qty_lots = args[:7]
    assert rows(eng) == [rejected(order_id, account_id, side, price_ticks, qty_lots, code)]


def test_account_zero_is_valid(eng):
    assert limit(eng, 1, 0, BUY, 10000, 1) == 0


def test_duplicate_resting_id_is_rejected_before_quantity(eng):
    limit(eng, 1, A, BUY, 10000, 1)
    assert limit(eng, 1, B, SELL, 20000, 1) == RejectCode.DUPLICATE_ORDER_ID
    assert limit(eng, 1, B, SELL, 20000, 0) == RejectCode.DUPLICATE_ORDER_ID
    eng.cancel(1, A)
    assert limit(eng, 1, B, SELL, 20000, 1) == 0  # only a resting id is a duplicate


def test_min_qty_and_min_price():
    e = engine_with(min_qty="5", min_price="1")  # 5 lots; 1.00 = 100 ticks
    assert limit(e, 1, A, BUY, 10000, 4) == RejectCode.QTY_LESS_THAN_MIN_QTY
    assert limit(e, 2, A, BUY, 99, 5) == RejectCode.PRICE_LESS_THAN_MIN_PRICE
    assert limit(e, 3, A, BUY, 100, 5) == 0


def test_spec_example_7_price_band_and_min_notional():
    """Mark 100, band up 1.15 / down 0.85, min notional 5."""
    e = engine_with(min_notional="5")
    e.set_mark(10000)
    assert limit(e, 1, A, BUY, 11501, 1) == RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP  # 115.01
    assert limit(e, 2, A, SELL, 8499, 1) == RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN  # 84.99
    assert limit(e, 3, A, BUY, 1000, 1) == 0  # BUY at 10: no lower band for buys
    assert limit(e, 4, A, BUY, 499, 1) == RejectCode.NOTIONAL_TOO_SMALL  # 4.99 × 1 lot = 4.99 < 5
    assert limit(e, 5, A, BUY, 499, 1, reduce_only=1) == 0
    assert e.order(5) == (5, A, BUY, 499, 1, TIF.GTC, NONE, 1, 0)


def test_band_limits_are_rounded_inside_the_band(eng):
    eng.set_mark(10001)  # up: 115.0115 → floor 11501; down: 85.0085 → ceil 8501
    assert limit(eng, 1, A, BUY, 11502, 1) == RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP
    assert limit(eng, 2, A, BUY, 11501, 1) == 0
    assert limit(eng, 3, B, SELL, 8500, 1) == RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN
    assert limit(eng, 4, B, SELL, 11502, 1) == 0  # a sell above the mark is not banded


def test_band_is_checked_before_notional_and_notional_before_gtd():
    e = engine_with(min_notional="5")
    e.set_time(100)
    e.set_mark(10000)
    assert limit(e, 1, A, SELL, 499, 1) == RejectCode.PRICE_LOWER_THAN_MULTIPLIER_DOWN
    assert limit(e, 2, A, BUY, 499, 1, tif=TIF.GTD, expire_ns=50) == RejectCode.NOTIONAL_TOO_SMALL
    assert limit(e, 3, A, BUY, 500, 1, tif=TIF.GTD, expire_ns=50) == RejectCode.GTD_TIME_INVALID


# == fees ===========================================================================================
def test_fill_fees_at_the_test_instrument(eng):
    limit(eng, 1, A, SELL, 10000, 2)
    eng.clear_events()
    limit(eng, 2, B, BUY, 10000, 2)
    # notional 100.00 × 2 = 200 USDT = 2 × 10¹⁰ units; maker 0.02% = 4,000,000; taker 0.05% = 10,000,000
    assert rows(eng)[1] == fill(2, B, BUY, 10000, 2, 0, 1, A, 0, maker_fee=4_000_000, taker_fee=10_000_000)


@pytest.mark.parametrize("maker_fee, maker_fee_units", [
    ("-0.0001", -8_641),  # rebate −8,641.5 rounds toward zero (toward +∞)
    ("0.0003", 25_925),  # fee 25,924.5 rounds up
])
def test_fees_round_toward_plus_infinity(maker_fee, maker_fee_units):
    e = engine_with(lot_size="0.001", min_qty="0.001", max_qty="100", maker_fee=maker_fee)
    # K = 0.01 × 0.001 × 10⁸ = 1,000; 123.45 × 0.007 → 12,345 × 7 × 1,000 = 86,415,000 units
    limit(e, 1, A, SELL, 12345, 7)
    e.clear_events()
    limit(e, 2, B, BUY, 12345, 7)
    # taker 0.0005 × 86,415,000 = 43,207.5 → 43,208
    assert rows(e)[1] == fill(2, B, BUY, 12345, 7, 0, 1, A, 0, maker_fee=maker_fee_units, taker_fee=43_208)


# == priority, depth, queries =======================================================================
def test_better_prices_fill_first_across_levels(eng):
    limit(eng, 1, A, SELL, 10020, 1)
    limit(eng, 2, A, SELL, 10000, 1)
    limit(eng, 3, A, SELL, 10010, 1)
    eng.clear_events()
    limit(eng, 4, B, BUY, 10020, 3)
    assert rows(eng)[1:] == [fill(4, B, BUY, 10000, 1, 2, 2, A, 0), fill(4, B, BUY, 10010, 1, 1, 3, A, 0),
                             fill(4, B, BUY, 10020, 1, 0, 1, A, 0)]


def test_bids_fill_highest_first(eng):
    limit(eng, 1, A, BUY, 9990, 1)
    limit(eng, 2, A, BUY, 10000, 1)
    eng.clear_events()
    limit(eng, 3, B, SELL, 9990, 1)
    assert rows(eng)[1] == fill(3, B, SELL, 10000, 1, 0, 2, A, 0)


def test_earlier_orders_fill_first_within_a_level(eng):
    for order_id in (5, 3, 9):
        limit(eng, order_id, A, SELL, 10000, 2)
    eng.clear_events()
    limit(eng, 10, B, BUY, 10000, 5)
    assert rows(eng)[1:] == [fill(10, B, BUY, 10000, 2, 3, 5, A, 0), fill(10, B, BUY, 10000, 2, 1, 3, A, 0),
                             fill(10, B, BUY, 10000, 1, 0, 9, A, 1)]
    assert eng.order(9)[4] == 1


def test_depth_aggregates_levels_best_first(eng):
    limit(eng, 1, A, BUY, 10000, 2)
    limit(eng, 2, B, BUY, 10000, 3)
    limit(eng, 3, A, BUY, 9990, 4)
    limit(eng, 4, A, BUY, 9980, 1)
    limit(eng, 5, B, SELL, 10010, 6)
    limit(eng, 6, A, SELL, 10030, 1)
    assert eng.depth(2) == ([(10000, 5, 2), (9990, 4, 1)], [(10010, 6, 1), (10030, 1, 1)])
    assert eng.depth(0) == ([], [])
    limit(eng, 7, C, SELL, 10000, 3)  # fills order 1 (2) and 1 lot of order 2
    assert eng.depth(1) == ([(10000, 2, 1)], [(10010, 6, 1)])
    assert (eng.best_bid(), eng.best_ask(), eng.order_count()) == (10000, 10010, 5)
    assert eng.orders_of(A) == [3, 4, 6] and eng.orders_of(B) == [2, 5] and eng.orders_of(C) == []


def test_initial_queries(eng):
    assert (eng.best_bid(), eng.best_ask(), eng.last_price(), eng.mark(), eng.now()) == (0, 0, 0, 0, 0)
    assert eng.order(1) is None and eng.order_count() == 0 and eng.depth(5) == ([], [])
    eng.set_mark(12345)
    eng.set_time(678)
    assert (eng.mark(), eng.now()) == (12345, 678)


def test_canonical_state_lists_bids_then_asks_in_priority_order(eng):
    eng.set_mark(10000)
    eng.set_time(7)
    limit(eng, 1, A, BUY, 9990, 1)
    limit(eng, 2, B, BUY, 10000, 2, stp=EXPIRE_MAKER)
    limit(eng, 3, A, SELL, 10020, 3, tif=TIF.GTD, expire_ns=99)
    limit(eng, 4, C, SELL, 10010, 4, tif=TIF.GTX, reduce_only=1)
    limit(eng, 5, A, BUY, 10000, 5)
    limit(eng, 6, C, SELL, 10010, 6)
    limit(eng, 7, C, SELL, 9990, 1)  # fills 1 lot of order 2
    assert eng.canonical_state() == [
        ("mark", 10000), ("now", 7), ("last", 10000),
        (2, B, BUY, 10000, 1, TIF.GTC, EXPIRE_MAKER, 0, 0),
        (5, A, BUY, 10000, 5, TIF.GTC, NONE, 0, 0),
        (1, A, BUY, 9990, 1, TIF.GTC, NONE, 0, 0),
        (4, C, SELL, 10010, 4, TIF.GTX, NONE, 1, 0),
        (6, C, SELL, 10010, 6, TIF.GTC, NONE, 0, 0),
        (3, A, SELL, 10020, 3, TIF.GTD, NONE, 0, 99),
    ]


# == event buffer and batch =========================================================================
def test_event_buffer_api(eng):
    assert eng.events().dtype == EVENT_DTYPE and len(eng.events()) == 0
    limit(eng, 1, A, BUY, 10000, 1)
    limit(eng, 2, A, BUY, 10000, 1)
    assert eng.event_count() == 2
    copy = eng.events()
    copy["order_id"] = 99
    assert eng.events()["order_id"].tolist() == [1, 2]
    taken = eng.take_events()
    assert len(taken) == 2 and eng.event_count() == 0
    limit(eng, 3, A, BUY, 10000, 1)
    eng.clear_events()
    assert eng.event_count() == 0 and len(eng.take_events()) == 0


def scripted_commands():
    """A short session touching every command kind: (kind, fields...) in COMMAND_FIELDS order."""
    P, X, M, CA, SM, ST = (int(k) for k in CommandKind)
    L, MK = int(OrderType.LIMIT), int(OrderType.MARKET)
    return [
        (SM, 0, 0, 0, 0, 0, 10000, 0, 0, 0, 0, 0),
        (ST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10),
        (P, 1, A, SELL, L, TIF.GTC, 10010, 5, NONE, 0, 0, 0),
        (P, 2, A, SELL, L, TIF.GTD, 10020, 3, NONE, 0, 50, 0),
        (P, 3, B, BUY, L, TIF.GTC, 9990, 4, NONE, 0, 0, 0),
        (P, 4, C, BUY, MK, 0, 0, 6, NONE, 0, 0, 0),
        (P, 5, C, BUY, L, TIF.GTC, 12000, 1, NONE, 0, 0, 0),  # outside the band: rejected
        (M, 3, B, 0, 0, 0, 9995, 2, 0, 0, 0, 0),
        (X, 9, B, 0, 0, 0, 0, 0, 0, 0, 0, 0),  # unknown: rejected
        (P, 6, A, BUY, L, TIF.GTC, 9980, 1, NONE, 0, 0, 0),
        (ST, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60),
        (CA, 0, A, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ]


def run_one_by_one(e, commands):
    results = []
    for row in commands:
        kind, order_id, account_id, side, order_type, tif, price, qty, stp, reduce_only, expire_ns, time_ns = row
        if kind == CommandKind.PLACE:
            results.append(e.place(order_id, account_id, side, order_type, tif, price, qty, stp, reduce_only,
                                   expire_ns))
        elif kind == CommandKind.CANCEL:
            results.append(e.cancel(order_id, account_id))
        elif kind == CommandKind.AMEND:
            results.append(e.amend(order_id, account_id, price, qty))
        elif kind == CommandKind.CANCEL_ALL:
            results.append(e.cancel_all(account_id))
        elif kind == CommandKind.SET_MARK:
            e.set_mark(price)
            results.append(0)
        else:
            results.append(e.set_time(time_ns))
    return results


def test_run_batch_equals_the_per_command_methods(eng, instrument):
    commands = scripted_commands()
    single = Checked(ActiveMatchingEngine(instrument))
    expected_results = run_one_by_one(single, commands)
    results, events = eng.run_batch(np.array(commands, dtype=COMMAND_DTYPE))
    assert results.dtype == np.int64
    assert results.tolist() == expected_results
    assert expected_results == [0, 0, 0, 0, 0, 0, RejectCode.PRICE_HIGHER_THAN_MULTIPLIER_UP, 0,
                                RejectCode.UNKNOWN_ORDER, 0, 1, 1]
    assert events.dtype == EVENT_DTYPE and events.tolist() == single.take_events().tolist()
    assert eng.event_count() == 0
    assert eng.canonical_state() == single.canonical_state()
    assert ids(eng) == [3]


def test_run_batch_returns_earlier_buffered_rows_first(eng):
    limit(eng, 1, A, BUY, 10000, 1)
    commands = np.array([(CommandKind.CANCEL, 1, A) + (0,) * 9], dtype=COMMAND_DTYPE)
    results, events = eng.run_batch(commands)
    assert results.tolist() == [0]
    assert [tuple(r) for r in events.tolist()] == [accepted(1, A, BUY, 10000, 1),
                                                    canceled(1, A, BUY, 10000, 1, CancelReason.USER)]


def test_run_batch_of_nothing(eng):
    results, events = eng.run_batch(np.zeros(0, dtype=COMMAND_DTYPE))
    assert len(results) == 0 and len(events) == 0 and events.dtype == EVENT_DTYPE


def test_run_batch_refuses_an_unknown_kind_before_running_any_row(eng):
    set_mark = (CommandKind.SET_MARK, 0, 0, 0, 0, 0, 10000, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        eng.run_batch(np.array([set_mark, (99,) + (0,) * 11], dtype=COMMAND_DTYPE))
    assert eng.mark() == 0


def test_depth_of_no_levels_is_empty(eng):
    limit(eng, 1, A, BUY, 10000, 1)
    assert eng.depth(0) == ([], []) and eng.depth(-1) == ([], [])
