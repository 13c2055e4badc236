"""Self-trade prevention per profile (rules §3 "Self-trade prevention", §10): dYdX and Hyperliquid always cancel
the resting order of the same account, whatever STP mode the taker asks for; Binance (and bybit, bitmex) use the
taker's own mode. Checked on both implementations (identical events and state hashes).

Sources:
- Hyperliquid: https://hyperliquid.gitbook.io/hyperliquid-docs/trading/self-trade-prevention ("trades between the
  same address cancel the resting order instead of resulting in a fill"; venue notes §5.6);
- dYdX v4: dydxprotocol/v4-chain protocol/x/clob/memclob/memclob.go — a maker of the taker's own subaccount is
  removed with REMOVAL_REASON_INVALID_SELF_TRADE and matching continues (venue notes §4.5).

Coin: tick 0.01, lot 1, fees 0. Account 1 rests SELL 5 @ 100.00 (order 1), account 2 rests SELL 5 @ 100.01
(order 2); then account 1 sends BUY 5 @ 100.01."""
import pytest

from exchange import (
    CancelReason, Client, Exchange, Fill, Instrument, OrderCanceled, PositionChanged, Rejected, SetMarkPrice,
)
from exchange.enums import RejectCode
from exchange.profiles import PROFILES
from tests.checked import CheckedExchange, of
from tests.conftest import COMPILED
from tests.streams import random_commands

COIN = "AAAUSDT"


def coin() -> Instrument:
    return Instrument.linear(COIN, lot_size="1", min_qty="1", maker_fee="0", taker_fee="0", min_notional="0",
                             max_qty="100000", max_price="100000")


def book_with_own_maker(profile: str, implementation: str | None = None):
    ex = CheckedExchange([coin()], profile=profile, implementation=implementation)
    a, b = Client(ex, 1), Client(ex, 2)
    for client in (a, b):
        client.deposit("100000")
    ex.apply(SetMarkPrice(COIN, 10_000))
    a.sell(COIN, "5", "100.00")  # order 1
    b.sell(COIN, "5", "100.01")  # order 2
    return ex, a


@pytest.mark.parametrize("profile", ["dydx", "hyperliquid"])
@pytest.mark.parametrize("stp", ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"])
def test_dydx_and_hyperliquid_always_cancel_the_resting_order(profile, stp):
    ex, a = book_with_own_maker(profile)
    events = a.buy(COIN, "5", "100.01", stp=stp)
    # the own maker (order 1, 5 @ 100.00) is canceled, the taker goes on and buys account 2's 5 @ 100.01
    assert [(e.order_id, e.canceled_lots, e.reason) for e in of(events, OrderCanceled)] == [(1, 5, CancelReason.STP_MAKER)]
    assert [(e.maker_order_id, e.price_ticks, e.qty_lots) for e in of(events, Fill)] == [(2, 10_001, 5)]
    assert ex.position(1, COIN).lots == 5
    assert ex.book(COIN).best_ask() == 0


@pytest.mark.parametrize("stp, canceled, fills, lots", [
    ("NONE", [], [(1, 10_000, 5)], None),  # trades with itself: the position stays flat
    ("EXPIRE_TAKER", [(3, 5, CancelReason.STP_TAKER)], [], None),  # the taker (order 3) expires, order 1 stays
    ("EXPIRE_MAKER", [(1, 5, CancelReason.STP_MAKER)], [(2, 10_001, 5)], 5),
    ("EXPIRE_BOTH", [(1, 5, CancelReason.STP_MAKER), (3, 5, CancelReason.STP_TAKER)], [], None),
])
def test_binance_uses_the_takers_own_mode(stp, canceled, fills, lots):
    ex, a = book_with_own_maker("binance")
    events = a.buy(COIN, "5", "100.01", stp=stp)
    assert [(e.order_id, e.canceled_lots, e.reason) for e in of(events, OrderCanceled)] == canceled
    assert [(e.maker_order_id, e.price_ticks, e.qty_lots) for e in of(events, Fill)] == fills
    position = ex.position(1, COIN)
    assert (position.lots if position is not None else None) == lots


def test_fok_counts_past_the_own_maker_under_hyperliquid_but_not_under_binance_expire_taker():
    ex, a = book_with_own_maker("binance")
    (event,) = a.buy(COIN, "5", "100.01", tif="FOK", stp="EXPIRE_TAKER")
    assert isinstance(event, Rejected) and event.code == RejectCode.FOK_NOT_FILLED  # the walk stops at order 1
    ex, a = book_with_own_maker("hyperliquid")
    events = a.buy(COIN, "5", "100.01", tif="FOK", stp="EXPIRE_TAKER")  # the override skips the own maker
    assert [(e.maker_order_id, e.qty_lots) for e in of(events, Fill)] == [(2, 5)]


def test_a_fired_stop_order_gets_the_override_too():
    ex, a = book_with_own_maker("hyperliquid")
    ex.apply(SetMarkPrice(COIN, 9_950))
    a.buy(COIN, "5", order_type="STOP_MARKET", stop_price="100.00", stp="NONE")
    events = ex.apply(SetMarkPrice(COIN, 10_000))  # fires: a market BUY 5 of account 1
    assert [(e.order_id, e.reason) for e in of(events, OrderCanceled)] == [(1, CancelReason.STP_MAKER)]
    assert [(e.maker_order_id, e.price_ticks) for e in of(events, Fill)] == [(2, 10_001)]
    assert [e.lots for e in of(events, PositionChanged) if e.account_id == 1] == [5]


def test_the_profile_field_is_validated():
    with pytest.raises(ValueError, match="stp_override"):
        PROFILES["binance"].__class__("x", stp_override=9)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active (EXCHANGE_PUREPYTHON=1)")
@pytest.mark.parametrize("profile", ["dydx", "hyperliquid", "binance"])
def test_both_implementations_agree_on_seeded_streams_with_self_trades(profile):
    """tests.streams.random_commands: 4 accounts, every STP mode, prices within ±6 ticks (many self-trades)."""
    runs = []
    for implementation in ("python", "cython"):
        ex = Exchange([Instrument.linear("TESTUSDT", tick_size="0.01", lot_size="1", min_qty="1", max_qty="100000",
                                         max_price="100000", min_notional="0", maker_fee="0.0002",
                                         taker_fee="0.0005")], implementation=implementation, profile=profile)
        events = []
        for command in random_commands(11, 2_500):
            events.append(ex.apply(command))
            events.append(ex.state_hash())
        runs.append(events)
    assert runs[0] == runs[1]
    stp_reasons = {e.reason for batch in runs[0] if isinstance(batch, list) for e in of(batch, OrderCanceled)
                   if e.reason in (CancelReason.STP_MAKER, CancelReason.STP_TAKER)}
    # the override leaves only maker cancels; binance shows both kinds
    assert stp_reasons == ({CancelReason.STP_MAKER} if profile != "binance" else
                           {CancelReason.STP_MAKER, CancelReason.STP_TAKER})
