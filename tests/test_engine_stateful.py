"""A hypothesis state machine over the whole engine: deposits, withdrawals, orders, marks, index prices,
time, leverage and margin modes, fund seeding. After every step: every rules §9 invariant holds, nothing is
left liquidatable (the sweep ran to the end), and a rejected command changed nothing."""
import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from exchange import (
    AdvanceTime, Deposit, Exchange, FundInsurance, MarginMode, OrderType, PlaceOrder, Rejected, SetIndexPrice,
    SetLeverage, SetMarginMode, SetMarkPrice, Side, TimeInForce, Withdraw,
)
from tests.conftest import make_instrument

SYMBOL = "TESTUSDT"
USDT = 10**8
accounts = st.integers(1, 4)
prices = st.integers(7_000, 13_000)  # 70.00 .. 130.00 around the 100.00 start


class EngineMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ex = Exchange([make_instrument()])
        self.now = 0
        self.mark = 10_000
        self.ex.apply(SetMarkPrice(SYMBOL, self.mark))

    def apply(self, command):
        before = self.ex.state_hash()
        events = self.ex.apply(command)
        if len(events) == 1 and isinstance(events[0], Rejected):
            assert self.ex.state_hash() == before

    @rule(account=accounts, amount=st.sampled_from([USDT, 20 * USDT, 300 * USDT]))
    def deposit(self, account, amount):
        self.apply(Deposit(account, amount))

    @rule(account=accounts, amount=st.sampled_from([USDT, 50 * USDT]))
    def withdraw(self, account, amount):
        self.apply(Withdraw(account, amount))

    @rule(account=accounts, side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 5),
          offset=st.integers(-300, 300), tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC]),
          reduce_only=st.booleans())
    def limit(self, account, side, qty, offset, tif, reduce_only):
        self.apply(PlaceOrder(account, SYMBOL, side, qty, self.mark + offset, tif=tif, reduce_only=reduce_only))

    @rule(account=accounts, side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 5))
    def market(self, account, side, qty):
        self.apply(PlaceOrder(account, SYMBOL, side, qty, 0, OrderType.MARKET))

    @rule(price=prices)
    def set_mark(self, price):
        self.mark = price
        self.apply(SetMarkPrice(SYMBOL, price))

    @rule(offset=st.integers(-100, 100))
    def set_index(self, offset):
        self.apply(SetIndexPrice(SYMBOL, self.mark + offset))

    @rule(step=st.integers(1, 50))
    def advance(self, step):
        self.now += step
        self.apply(AdvanceTime(self.now))

    @rule(account=accounts, leverage=st.sampled_from([2, 10, 20, 50]))
    def leverage(self, account, leverage):
        self.apply(SetLeverage(account, SYMBOL, leverage))

    @rule(account=accounts, mode=st.sampled_from(list(MarginMode)))
    def margin_mode(self, account, mode):
        self.apply(SetMarginMode(account, SYMBOL, mode))

    @rule(amount=st.sampled_from([USDT, 100 * USDT]))
    def seed_fund(self, amount):
        self.apply(FundInsurance(SYMBOL, amount))

    @invariant()
    def conserved_and_swept(self):
        self.ex.check_invariants()
        assert self.ex.liquidatable() == []


EngineMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestEngine = EngineMachine.TestCase
