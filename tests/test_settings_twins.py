"""The compiled handlers of index prices and account settings (``exchange/_handlers.pyx``: ``set_index``,
``set_position_mode``, ``set_margin_mode``, ``set_leverage``, ``set_initial_margin_rate``, ``adjust_isolated_margin``,
``fund_insurance``) against the reference's.

- A seeded flow of settings changes (``tests.streams.settings_commands``) on idle accounts, on accounts with
  positions, resting or only conditional orders, and on accounts not opened yet, with fills, liquidations, index
  and mark moves between them, drawn while the reference runs it: under every profile the compiled exchange gives
  the same events, command by command, and the same state hash, and the stream reaches every refusal the
  settings have (each named below).
- What goes to the reference: every refusal, and only the cases the compiled path leaves to it (a margin-mode
  or position-mode change of an account with a position or an open order). A leverage or rate change and an
  isolated margin move are compiled whatever the account holds: the reference's handler sees only their refusals.
"""
import dataclasses

import pytest

from exchange import Exchange, FundInsurance, Rejected
from exchange.commands import AdjustIsolatedMargin, SetIndexPrice, SetInitialMarginRate, SetLeverage, SetMarginMode, SetPositionMode
from exchange.enums import RejectCode
from exchange.profiles import PROFILES
from tests.conftest import COMPILED, make_instrument
from tests.streams import settings_commands
from tests.test_adl_queue import OTHER, SYMBOL

HANDLERS = {SetPositionMode: "_set_position_mode", SetMarginMode: "_set_margin_mode", SetLeverage: "_set_leverage",
            SetInitialMarginRate: "_set_initial_margin_rate", SetIndexPrice: "_set_index",
            AdjustIsolatedMargin: "_adjust_isolated_margin", FundInsurance: "_fund_insurance"}
REFUSALS = {  # what the flow must reach, by command
    SetPositionMode: {RejectCode.NO_NEED_TO_CHANGE_POSITION_SIDE, RejectCode.POSITION_SIDE_OPEN_ORDERS,
                      RejectCode.POSITION_SIDE_OPEN_POSITION},
    SetMarginMode: {RejectCode.NO_NEED_TO_CHANGE_MARGIN_TYPE, RejectCode.MARGIN_TYPE_OPEN_ORDERS,
                    RejectCode.MARGIN_TYPE_OPEN_POSITION, RejectCode.MALFORMED},
    SetLeverage: {RejectCode.INVALID_LEVERAGE, RejectCode.ISOLATED_LEVERAGE_REDUCTION,
                  RejectCode.MAX_POSITION_AT_LEVERAGE, RejectCode.LEVERAGE_INSUFFICIENT_MARGIN},
    SetInitialMarginRate: {RejectCode.INVALID_LEVERAGE},
    AdjustIsolatedMargin: {RejectCode.POSITION_SIDE_MISMATCH, RejectCode.ISOLATED_ONLY, RejectCode.NO_ISOLATED_POSITION,
                           RejectCode.CROSS_BALANCE_INSUFFICIENT, RejectCode.ISOLATED_BALANCE_INSUFFICIENT},
    FundInsurance: {RejectCode.MALFORMED},  # (past the money bound)
}


def _venue(profile: str, implementation: str) -> Exchange:
    return Exchange([make_instrument(), dataclasses.replace(make_instrument(), symbol=OTHER)], profile=profile,
                    implementation=implementation)


@pytest.mark.skipif(not COMPILED, reason="compiled core not active")
@pytest.mark.parametrize("profile", list(PROFILES))
def test_settings_are_the_references_on_the_compiled_path(profile, monkeypatch):
    reference, commands, want = _venue(profile, "python"), [], []
    for command in settings_commands(11, 3_000, reference, (SYMBOL, OTHER)):
        commands.append(command)
        want.append(reference.apply(command))
    codes = {cls: set() for cls in REFUSALS}
    changed = {cls: 0 for cls in HANDLERS}
    for command, events in zip(commands, want):
        if type(command) in codes:
            codes[type(command)] |= {e.code for e in events if type(e) is Rejected}
        if type(command) in changed and not any(type(e) is Rejected for e in events):
            changed[type(command)] += 1
    for cls, needed in REFUSALS.items():
        if len(reference.risk.brackets[SYMBOL]) == 1:  # (dydx: one tier at the instrument's max leverage)
            needed = needed - {RejectCode.MAX_POSITION_AT_LEVERAGE}
        assert needed <= codes[cls], f"{cls.__name__} never refused with {needed - codes[cls]}"
    assert min(changed.values()) > 8, changed  # (and every command kind also took effect, several times)

    handed = {cls: [] for cls in HANDLERS}
    for cls, name in HANDLERS.items():
        monkeypatch.setattr(Exchange, name, lambda ex, cmd, _cls=cls, _was=getattr(Exchange, name): (
            handed[_cls].append(cmd), _was(ex, cmd))[1])
    compiled = _venue(profile, "cython")
    for i, command in enumerate(commands):
        assert compiled.apply(command) == want[i], f"command #{i} {command!r}"
    compiled.check_invariants()
    assert compiled.state_hash() == reference.state_hash()

    refused = {cls: [c for c, events in zip(commands, want) if type(c) is cls and any(type(e) is Rejected for e in events)]
               for cls in HANDLERS}
    for cls in (SetLeverage, SetInitialMarginRate, SetIndexPrice, AdjustIsolatedMargin, FundInsurance):  # always compiled
        assert handed[cls] == refused[cls], cls.__name__
    for cls in (SetPositionMode, SetMarginMode):  # the refusals, and changes with something open
        assert set(map(id, refused[cls])) <= set(map(id, handed[cls]))
        assert len(handed[cls]) < len(refused[cls]) + changed[cls]  # (some changes took the compiled path)
