"""Insurance funds (exchange.liquidation.insurance): seeding, takeover limits, the fund as counterparty, unwinding on
AdvanceTime, top-ups, shared scope, history, and the socialized-loss rule. Hand-derived values; coin: tick
0.01, lot 1, K = 10⁶ (1 lot at 100.00 = 100 USDT); account 1 is a cross long of 10 at 100 with 60 USDT
(liquidated at 94: balance 0 ≤ MM 3.76; bankruptcy price 94.00)."""
import dataclasses

import pytest

from exchange import (
    ADLFill, AdvanceTime, Client, Deposit, FundInsurance, InputError, FundLimits, InsuranceReason, LiquidationConfig, LiquidationFill,
    Rejected, RejectCode, SetMarkPrice,
)
from exchange.profiles import PROFILES, InsuranceScope, LossRule
from tests.checked import CheckedExchange, of, rejected, units
from tests.test_adl_engine import COIN, coin, mark, venue


def test_seeding_is_a_deposit_into_the_funds_reserved_account_with_history():
    ex = CheckedExchange([coin()])
    events = ex.apply(FundInsurance(COIN, units("500")))
    assert [(e.delta_units, e.balance_units, e.reason) for e in events] == [(units("500"), units("500"), InsuranceReason.SEED)]
    assert ex.insurance_balance(COIN) == units("500") and ex.ledger.deposits_units == units("500")
    assert [(h.seq, h.balance_units) for h in ex.insurance_history(COIN)] == [(0, units("500"))]
    ex.apply(FundInsurance(COIN, units("1")))
    assert [(h.seq, h.delta_units) for h in ex.insurance_history()][1:] == [(1, units("1"))]
    assert rejected(ex.apply(FundInsurance(COIN, 0))).code == RejectCode.MALFORMED
    assert rejected(ex.apply(FundInsurance("NOPE", 1))).code == RejectCode.INVALID_SYMBOL


def test_no_user_command_may_name_a_funds_account():
    ex = CheckedExchange([coin()])
    fund = ex.insurance_fund_account_id(COIN)
    assert rejected(ex.apply(Deposit(fund, 10**8))).code == RejectCode.MALFORMED
    with pytest.raises(InputError, match="reserved"):
        Client(ex, fund)


def test_a_takeover_stops_at_the_max_position_and_adl_takes_the_rest():
    ex, _ = venue(fund="1000", limits=FundLimits(max_position_lots=4))
    events = mark(ex, 9_400)
    fund = ex.insurance_fund_account_id(COIN)
    assert [(e.qty_lots, e.counterparty_id) for e in of(events, LiquidationFill)] == [(4, fund)]
    assert [(e.account_id, e.qty_lots) for e in of(events, ADLFill)] == [(1, 6), (2, 6)]
    assert ex.position(fund, COIN).lots == 4  # open interest: maker short 10 − 6 = 4 = the fund's long


def test_an_empty_fund_takes_nothing_over():
    ex, _ = venue()
    events = mark(ex, 9_400)
    assert of(events, LiquidationFill) == [] and len(of(events, ADLFill)) == 2


def test_the_fund_unwinds_into_the_book_on_advance_time_within_one_percent_of_the_mark():
    ex, bidder = venue(fund="1000")
    mark(ex, 9_400)  # the fund takes 10 over at 94.00
    fund = ex.insurance_fund_account_id(COIN)
    bidder.buy(COIN, "3", "93.50")  # 0.53 % under the mark: inside the 1 % limit (93.06)
    bidder.buy(COIN, "5", "92")  # outside: not hit
    ex.apply(AdvanceTime(1))
    assert ex.position(fund, COIN).lots == 7
    # realized 3 × (93.50 − 94.00) = −1.50 (no fees on this coin)
    assert ex.insurance_balance(COIN) == units("998.50")
    assert ex.insurance_history(COIN)[-1].reason == InsuranceReason.TRADING
    ex.apply(SetMarkPrice(COIN, 9_290))  # now 92 is within 1 % (91.98)
    ex.apply(AdvanceTime(2))
    assert ex.position(fund, COIN).lots == 2


def test_a_negative_cross_balance_is_topped_up_to_zero_by_the_fund():
    ex, _ = venue("hyperliquid", fund="100")  # ADL at the mark leaves −10 (see test_adl_engine)
    fund_before = ex.insurance_balance(COIN)
    ex.apply(SetMarkPrice(COIN, 9_300))  # balance −10 < 2/3 MM: the vault takes over at BP 94.00 instead
    assert ex.wallet(1) == 0 and ex.insurance_balance(COIN) == fund_before


def test_a_shared_fund_serves_every_symbol():
    shared = dataclasses.replace(PROFILES["binance"], name="shared", insurance_scope=InsuranceScope.SHARED)
    second = dataclasses.replace(coin(), symbol="BBBUSDT")
    ex = CheckedExchange([coin(), second], profile=shared)
    assert ex.insurance_fund_account_id(COIN) == ex.insurance_fund_account_id("BBBUSDT")
    ex.apply(FundInsurance("BBBUSDT", units("7")))
    assert ex.insurance_balance(COIN) == units("7")


def test_socialized_loss_haircuts_the_winners_pro_rata_to_cover_the_funds_shortfall():
    # hyperliquid's market liquidation can fill below bankruptcy; without the vault the deficit reaches the fund
    profile = dataclasses.replace(PROFILES["hyperliquid"], name="hl-socialized", loss_rule=LossRule.SOCIALIZED,
                                  backstop_equity_e8=0)
    ex = CheckedExchange([coin("0")], profile=profile, liquidation=LiquidationConfig())
    a, maker, bidder = Client(ex, 1), Client(ex, 2), Client(ex, 3)
    for client, amount in ((a, "1000"), (maker, "100000"), (bidder, "100000")):
        client.deposit(amount)
    ex.apply(SetMarkPrice(COIN, 10_000))
    a.set_margin_mode(COIN, "ISOLATED")
    a.set_leverage(COIN, 10)
    maker.sell(COIN, "10", "100")
    a.buy(COIN, "10", "100")  # isolated margin 100
    bidder.buy(COIN, "10", "86")
    events = ex.apply(SetMarkPrice(COIN, 8_500))  # balance 100 − 150 = −50: a market sell fills 10 at 86
    # realized 10 × (86 − 100) = −140 on 100: −40 covered by the (empty) fund -> fund −40, socialized:
    # winners at 85: maker short 10 from 100 (+150), bidder long 10 from 86 (−10, a loser) -> the maker pays 40
    assert ex.wallet(1) == units("900")
    assert ex.insurance_balance(COIN) == 0
    assert ex.wallet(2) == units("100000") - units("40")
    assert [h.reason for h in ex.insurance_history(COIN)][-2:] == [InsuranceReason.TOP_UP, InsuranceReason.SOCIALIZED]
    assert not of(events, Rejected)
