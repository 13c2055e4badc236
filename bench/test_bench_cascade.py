"""Benchmark: a 30 % crash over 1,000 mark ticks through the whole Exchange, with the liquidation sweep.

Workload (seeded, ``build``): two linear symbols (tick 0.01, lot 1, K = 10⁶, default BTC-style tiers; mark
100.00), ``n`` accounts: 40 % isolated (a long or a short in S1), 40 % cross (positions in both symbols),
20 % hybrid (isolated in S1, cross in S2); leverage uniform in 2..50, notional 500..20,000 USDT, entry
within ±1 % of the mark; wallets and isolated margins = the initial margin × U(1, 1.5) (so the 2..50x
accounts liquidate at very different points of the crash). A market maker (account 0) holds the opposite
of every position and quotes a ladder of bids and asks (10 lots every 0.10 down to 60.00) so liquidation
orders find some liquidity; each fund is seeded with 1,000,000 USDT (takeovers, then ADL when the book and
the fund cannot). The state is built directly in the ledger (set-up, outside the timed region) and checked
against SPEC §9 before the run.

Timed: 1,000 ``SetMarkPrice`` commands per symbol moving both marks linearly from 100.00 to 70.00 (the crash),
each followed by the liquidation sweep. Reported: liquidations (``LiquidationStarted``) per second, time per
mark tick, and the ratio to the pure-Python reference run in the same process on ``REFERENCE_ACCOUNTS``
accounts (per account·tick: the sweep's cost is a full scan of the holders by ``Exchange.liquidatable()``,
O(accounts) per tick until the incremental index replaces it).

Run: ``python bench/test_bench_cascade.py [n_accounts]`` (markdown table for docs/liquidation.md), or
``python -m pytest bench/test_bench_cascade.py`` (a 2,000-account smoke run that checks the result).
"""
from __future__ import annotations

import random
import sys
import time

import pytest

from exchange import Exchange, FundInsurance, LiquidationStarted, PlaceOrder, SetMarkPrice, Side, _impl
from exchange.accounts import Position
from exchange.enums import MarginMode, PositionSide
from exchange.spec import Instrument

N_ACCOUNTS, REFERENCE_ACCOUNTS, TICKS, SEED = 100_000, 5_000, 1_000, 7
SYMBOLS = ("S1USDT", "S2USDT")
USDT = 10**8


def instruments() -> list[Instrument]:
    return [Instrument.linear(s, lot_size="1", min_qty="1", min_notional="0", max_qty="10000000",
                              max_price="1000", band_down="0.5", band_up="1.5") for s in SYMBOLS]


def build(n_accounts: int, implementation: str, seed: int = SEED) -> Exchange:
    """The seeded exchange of the module docstring (set-up; not timed)."""
    rng = random.Random(seed)
    ex = Exchange(instruments(), implementation=implementation)
    ledger, k = ex.ledger, ex.instruments[SYMBOLS[0]].k_units
    for symbol in SYMBOLS:
        ex.apply(SetMarkPrice(symbol, 10_000))
    maker = ledger.open(0)
    net = {symbol: [0, 0] for symbol in SYMBOLS}  # lots, entry cost the maker must take the other side of
    for account_id in range(1, n_accounts + 1):
        account = ledger.open(account_id)
        kind = rng.random()
        if kind < 0.4:
            legs = [(SYMBOLS[0], True)]  # isolated
        else:
            legs = [(SYMBOLS[0], kind >= 0.8), (SYMBOLS[1], False)]  # cross, or hybrid (isolated S1 + cross S2)
        for symbol, isolated in legs:
            leverage = rng.randint(2, 50)
            price = 10_000 + rng.randint(-100, 100)
            lots = rng.choice((-1, 1)) * max(1, rng.randint(500, 20_000) // 100)
            im = abs(lots) * price * k // leverage
            margin = im * rng.randint(100, 150) // 100
            ledger.set_settings(account, symbol, MarginMode.ISOLATED if isolated else MarginMode.CROSS, leverage)
            position = Position(lots, lots * price, margin if isolated else 0)
            account.wallet_units += 0 if isolated else margin
            ledger.deposits_units += margin
            ledger.store(account, symbol, PositionSide.BOTH, position)
            net[symbol][0] += lots
            net[symbol][1] += lots * price
    for symbol in SYMBOLS:
        lots, cost = net[symbol]
        ledger.set_settings(maker, symbol, MarginMode.CROSS, 1)
        ledger.store(maker, symbol, PositionSide.BOTH, Position(-lots, -cost, 0))
    maker.wallet_units += 10**9 * USDT
    ledger.deposits_units += 10**9 * USDT
    for symbol in SYMBOLS:
        ex.apply(FundInsurance(symbol, 1_000_000 * USDT))
        for step in range(1, 400):
            ex.apply(PlaceOrder(0, symbol, Side.BUY, 10, 10_000 - 10 * step))
            ex.apply(PlaceOrder(0, symbol, Side.SELL, 10, 10_000 + 10 * step))
    ex.check_invariants()
    return ex


def crash(ex: Exchange, ticks: int = TICKS) -> tuple[float, int]:
    """Timed: the 30 % crash; returns (seconds, liquidations)."""
    marks = [10_000 - (3_000 * i) // ticks for i in range(1, ticks + 1)]
    started = 0
    t0 = time.perf_counter()
    for mark in marks:
        for symbol in SYMBOLS:
            started += sum(isinstance(e, LiquidationStarted) for e in ex.apply(SetMarkPrice(symbol, mark)))
    return time.perf_counter() - t0, started


def measure(n_accounts: int, implementation: str, ticks: int = TICKS) -> dict:
    ex = build(n_accounts, implementation)
    seconds, liquidations = crash(ex, ticks)
    ex.check_invariants()
    assert not ex.liquidatable()
    return {"implementation": implementation, "accounts": n_accounts, "ticks": ticks, "seconds": seconds,
            "liquidations": liquidations, "liq_per_s": liquidations / seconds,
            "ms_per_tick": 1000 * seconds / ticks, "us_per_account_tick": 1e6 * seconds / (ticks * n_accounts)}


def test_cascade_smoke_liquidates_and_conserves():
    result = measure(2_000, _impl.IMPLEMENTATION, ticks=100)
    assert result["liquidations"] > 100


@pytest.mark.skipif(_impl.core is None, reason="compiled core not active")
def test_compiled_and_reference_agree_on_the_crash():
    runs = []
    for implementation in ("python", "cython"):
        ex = build(500, implementation)
        crash(ex, 50)
        runs.append(ex.state_hash())
    assert runs[0] == runs[1]


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else N_ACCOUNTS
    scale = min(n, REFERENCE_ACCOUNTS)  # the reference runs here; the ratio compares equal scales (cost is superlinear)
    runs = [measure(n, _impl.IMPLEMENTATION)]
    if scale != n:
        runs.append(measure(scale, _impl.IMPLEMENTATION))
    runs.append(measure(scale, "python"))
    print("| run | accounts | ticks | liquidations | liquidations/s | ms per tick | µs per account·tick |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['implementation']} | {r['accounts']:,} | {r['ticks']:,} | {r['liquidations']:,} | "
              f"{r['liq_per_s']:,.0f} | {r['ms_per_tick']:,.1f} | {r['us_per_account_tick']:.2f} |")
    print(f"ratio at {scale:,} accounts (reference ÷ {runs[-2]['implementation']} time): "
          f"{runs[-1]['seconds'] / runs[-2]['seconds']:.2f}")
