"""Final settlement (``SettleSymbol``): every position of a delisted symbol closed at one price.

The rule (venue-rules: dYdX ``x/clob/keeper/deleveraging.go``): at final settlement a subaccount with total
net collateral ≥ 0 is deleveraged at the *oracle* price; one with negative TNC at its *bankruptcy* price, the
loss landing on the opposite side. dYdX's documented example ("contract loss mechanism"): A and B each deposit
$100, A goes long and B short 500 ABC at $1; at $2 B's equity is −$400, B's bankruptcy price is $1.20, and A is
closed at $1.20 (+$100) while B ends at $0. The profiles with an insurance backstop pay a bankrupt part's
deficit from the fund while it can (the waterfall's order: fund first, then ADL).

Expected numbers are derived by hand in the comments; ABC has tick 0.01, lot 1, no fees, 5x (IM 20 %)."""
import pytest

from exchange import (
    ADLFill, BalanceReason, Client, FundInsurance, InsuranceReason, Instrument, OrderCanceled, PlaceOrder, RejectCode,
    Rejected, SetIndexPrice, SetMarkPrice, SettleSymbol, SettlementFill, Side, SymbolSettled,
)
from exchange.enums import CancelReason
from exchange.events import BalanceChanged
from tests.checked import USDT, CheckedExchange, of, rejected, units

COIN = "ABCUSDT"
A, B, MAKER = 1, 2, 3


def instrument(symbol=COIN) -> Instrument:
    return Instrument.linear(symbol, tick_size="0.01", lot_size="1", min_qty="1", maker_fee="0", taker_fee="0",
                             min_notional="0", max_leverage=5, brackets=(("1000000000", "0.1", 5),))


def ticks(price: str) -> int:
    return instrument().price_to_ticks(price)


def two_sided(profile: str, fund: str | None = None, instruments=None) -> CheckedExchange:
    """A long and B short 500 ABC at 1.00, each with 100 USDT, 5x; a maker's bid rests at 0.90."""
    ex = CheckedExchange(instruments or [instrument()], profile=profile)
    ex.apply(SetMarkPrice(COIN, ticks("1")))
    for account in (A, B):
        Client(ex, account).deposit("100")
        Client(ex, account).set_leverage(COIN, 5)
    Client(ex, MAKER).deposit("1000")
    Client(ex, B).sell(COIN, "500", "1")
    Client(ex, A).buy(COIN, "500", "1")
    Client(ex, MAKER).buy(COIN, "10", "0.9")
    if fund is not None:
        ex.apply(FundInsurance(COIN, units(fund)))
    assert ex.position(A, COIN).lots == 500 and ex.position(B, COIN).lots == -500
    return ex


@pytest.mark.parametrize("profile", ["binance", "bybit", "bitmex", "dydx", "hyperliquid"])
def test_solvent_positions_close_at_the_oracle_price(profile):
    # Index 1.05: A realizes 500 × 0.05 = +25, B −25 (B's balance 75 stays above its MM 52.5, so nobody was
    # liquidated before); nobody is bankrupt, nothing is deleveraged.
    ex = two_sided(profile)
    ex.apply(SetIndexPrice(COIN, ticks("1.05")))
    events = ex.apply(SettleSymbol(COIN))
    fills = of(events, SettlementFill)
    assert [(f.account_id, f.side, f.price_ticks, f.qty_lots, f.counterparty_id) for f in fills] == [
        (A, Side.SELL, ticks("1.05"), 500, B), (B, Side.BUY, ticks("1.05"), 500, A)]
    assert not of(events, ADLFill)
    assert of(events, SymbolSettled) == [SymbolSettled(COIN, ticks("1.05"), 500)]
    assert ex.wallet(A) == units("125") and ex.wallet(B) == units("75")
    assert ex.position(A, COIN) is None and ex.position(B, COIN) is None
    # the maker's resting bid was canceled by the settlement
    canceled = of(events, OrderCanceled)
    assert [(c.account_id, c.reason) for c in canceled] == [(MAKER, CancelReason.SETTLEMENT)]
    assert ex.open_orders(MAKER, COIN) == []


def test_dydx_bankrupt_part_is_deleveraged_at_its_bankruptcy_price():
    # dYdX's example at settlement price 2.00: B's TNC = 100 − 500 = −400 < 0, so B is deleveraged at its
    # bankruptcy price (100 + 500 × 1) / 500 = 1.20 against A: A +100 → 200, B → 0. No fund money moves.
    ex = two_sided("dydx", fund="1000")
    events = ex.apply(SettleSymbol(COIN, ticks("2")))
    adl = of(events, ADLFill)
    assert [(f.account_id, f.price_ticks, f.qty_lots, f.liquidated) for f in adl] == [
        (B, ticks("1.2"), 500, True), (A, ticks("1.2"), 500, False)]
    assert not of(events, SettlementFill)
    assert ex.wallet(A) == units("200") and ex.wallet(B) == 0
    assert ex.insurance_balance(COIN) == units("1000")
    assert of(events, SymbolSettled) == [SymbolSettled(COIN, ticks("2"), 0)]


def test_binance_fund_pays_a_bankrupt_part_it_can_cover():
    # binance, fund 1,000: B's deficit at 2.00 is 400 ≤ 1,000, so both close at 2.00 (A +500 → 600, B −500 →
    # −400) and the fund tops B up by 400 (fund 600, B 0).
    ex = two_sided("binance", fund="1000")
    events = ex.apply(SettleSymbol(COIN, ticks("2")))
    assert [(f.account_id, f.price_ticks) for f in of(events, SettlementFill)] == [(A, ticks("2")), (B, ticks("2"))]
    top_ups = [e for e in of(events, BalanceChanged) if e.reason == BalanceReason.SETTLEMENT]
    assert [(e.account_id, e.delta_units) for e in top_ups] == [(B, units("400"))]
    assert ex.wallet(A) == units("600") and ex.wallet(B) == 0
    assert ex.insurance_balance(COIN) == units("600")


def test_binance_fund_too_small_deleverages_at_bankruptcy_price():
    # binance, fund 100 < deficit 400: B is closed at its bankruptcy price 1.20 against A (A +100, B 0); the
    # fund is not touched.
    ex = two_sided("binance", fund="100")
    events = ex.apply(SettleSymbol(COIN, ticks("2")))
    assert [(f.account_id, f.price_ticks, f.liquidated) for f in of(events, ADLFill)] == [
        (B, ticks("1.2"), True), (A, ticks("1.2"), False)]
    assert ex.wallet(A) == units("200") and ex.wallet(B) == 0
    assert ex.insurance_balance(COIN) == units("100")


def test_a_settled_symbol_trades_no_more_and_the_state_survives_a_snapshot(tmp_path):
    ex = two_sided("binance")
    ex.apply(SettleSymbol(COIN, ticks("1.05")))
    for command in (PlaceOrder(A, COIN, Side.BUY, 1, ticks("1")), SetMarkPrice(COIN, ticks("1")),
                    SetIndexPrice(COIN, ticks("1")), SettleSymbol(COIN, ticks("1"))):
        assert rejected(ex.apply(command)).code == RejectCode.SYMBOL_SETTLED
    restored = CheckedExchange.restore_bytes(ex.snapshot_bytes())
    assert restored.state_hash() == ex.state_hash()
    assert rejected(restored.apply(PlaceOrder(A, COIN, Side.BUY, 1, ticks("1")))).code == RejectCode.SYMBOL_SETTLED


def test_settlement_needs_a_price_and_a_known_symbol():
    ex = CheckedExchange([instrument()])
    assert rejected(ex.apply(SettleSymbol(COIN))).code == RejectCode.MALFORMED  # no index, no mark, no price
    assert rejected(ex.apply(SettleSymbol("XYZUSDT", 1))).code == RejectCode.INVALID_SYMBOL
    assert rejected(ex.apply(SettleSymbol(COIN, -5))).code == RejectCode.MALFORMED
    assert rejected(ex.apply(SettleSymbol(COIN, instrument().max_price_ticks + 1))).code == RejectCode.MALFORMED


def test_other_symbols_keep_trading_and_cross_accounts_keep_their_other_positions():
    # A and B deposit 10 more and also hold 10 XYZ each way (XYZ unchanged at 1.00). Settling ABC at 1.05
    # realizes A +25 (→ 135), B −25 (→ 85); the XYZ positions are untouched and XYZ still trades.
    xyz = instrument("XYZUSDT")
    ex = two_sided("binance", instruments=[instrument(), xyz])
    ex.apply(SetMarkPrice("XYZUSDT", ticks("1")))
    Client(ex, A).deposit("10")
    Client(ex, B).deposit("10")
    Client(ex, B).sell("XYZUSDT", "10", "1")
    Client(ex, A).buy("XYZUSDT", "10", "1")
    ex.apply(SettleSymbol(COIN, ticks("1.05")))
    assert ex.wallet(A) == units("135") and ex.wallet(B) == units("85")
    assert ex.position(A, "XYZUSDT").lots == 10 and ex.position(B, "XYZUSDT").lots == -10
    assert not of(Client(ex, MAKER).buy("XYZUSDT", "1", "0.95"), Rejected)  # accepted
    assert ex.wallet(A) + ex.wallet(B) + ex.wallet(MAKER) == 1220 * USDT


# ==== random runs: both implementations, the journal, conservation ===========================================
@pytest.mark.parametrize("profile", ["binance", "bybit", "bitmex", "dydx", "hyperliquid"])
def test_settling_after_a_random_run_closes_everything_on_both_implementations(profile):
    """A seeded run with liquidations, then both symbols settled at prices away from the mark (some parts
    bankrupt): both implementations give the same events and state hashes, every invariant holds after every
    command (CheckedExchange), no position is left, and the journal replays to the same state."""
    import dataclasses
    import io

    from exchange import dump_journal, replay
    from exchange.persistence.journal import read as read_journal
    from tests.conftest import COMPILED, make_instrument
    from tests.streams import liquidation_commands

    instruments = [make_instrument(), dataclasses.replace(make_instrument(), symbol="XYZUSDT")]
    symbols = ("TESTUSDT", "XYZUSDT")
    commands = list(liquidation_commands(11, 1_500, symbols))
    runs = []
    for implementation in ("python", "cython") if COMPILED else ("python",):
        ex = CheckedExchange(instruments, implementation=implementation, profile=profile)
        events = [ex.apply(c) for c in commands]
        marks = {s: ex.mark_price(s) for s in symbols}
        events.append(ex.apply(SettleSymbol("TESTUSDT", max(1, marks["TESTUSDT"] // 4))))  # longs bankrupt
        events.append(ex.apply(SettleSymbol("XYZUSDT", marks["XYZUSDT"] * 3)))  # shorts bankrupt
        settled = [e for batch in events[-2:] for e in batch]
        assert len(of(settled, SymbolSettled)) == 2
        # some parts were bankrupt at these prices: deleveraged at their bankruptcy price or topped up by the fund
        assert of(settled, ADLFill) or [e for e in of(settled, BalanceChanged) if e.reason == BalanceReason.SETTLEMENT]
        for symbol in symbols:
            assert not [h for h in ex.ledger.holders[symbol] if ex.ledger.accounts[h].positions_in(symbol)]
        runs.append((events, ex.state_hash()))
        buffer = io.BytesIO()
        dump_journal(ex.instruments.values(), ex.journal, buffer, profile=ex.profile)
        buffer.seek(0)
        contents = read_journal(buffer)
        replayed, _ = replay(contents.instruments, contents.commands, profile=contents.profile)
        assert replayed.state_hash() == ex.state_hash()
    assert all(run == runs[0] for run in runs)
