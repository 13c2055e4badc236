"""The one place that decides which implementation runs, and the one place that imports the compiled twins.

``EXCHANGE_PUREPYTHON=1`` forces the pure-Python reference; otherwise the compiled modules must import (an
installed package whose extension is missing is a broken install, reported loudly). Everything else asks
this module, never the compiled modules directly:

- ``core``: ``exchange.orders._matching`` (built from ``exchange/orders/_matching.pyx``), the compiled twin
  of :mod:`exchange.orders.matching`; None under the reference.
- ``sweep_kernel``: ``exchange.clearing._sweep`` (built from ``exchange/clearing/_sweep.pyx``), the compiled
  twin of :mod:`exchange.clearing.sweep` and of :mod:`exchange.liquidation.index`'s band entries; None under
  the reference.
- ``pretrade_kernel``: ``exchange.accounts._pretrade`` (built from ``exchange/accounts/_pretrade.pyx``), the compiled
  twin of the order sums and holds of :mod:`exchange.accounts.pretrade` (``Risk(compiled=True)`` binds it), and
  ``RiskPrice``, the compiled ``Exchange.risk_price`` (the risk stage's ``mark_of``); None under the reference.
- ``records_kernel``: ``exchange._records`` (built from ``exchange/_records.pyx``): ``RecordMaker``, a frozen slotted
  dataclass record made in C (the compiled risk stage's position views, the compiled monitor stage's records), and
  ``record_init``, the ``__init__`` this module gives every command and event class when the compiled core is
  active (each field stored in its slot, not set through ``object.__setattr__``: the same records); None under the
  reference.
- ``fills_kernel``: ``exchange.clearing._fills`` (built from ``exchange/clearing/_fills.pyx``), the compiled
  twin of :func:`exchange.clearing.fills.clear_fill` and of the engine's drain (matching rows -> events,
  clearing, order sums, trim, holds; the compiled ``Exchange`` binds it as ``_drain``); None under the reference.
- ``entry_kernel``: ``exchange.orders._entry`` (built from ``exchange/orders/_entry.pyx``), the compiled twin
  of order entry (the engine's ``PlaceOrder``, ``CancelOrder``, ``AmendOrder`` and ``CancelAll`` handlers, bound by
  the compiled ``Exchange``); None under the reference.
- ``handlers_kernel``: ``exchange._handlers`` (built from ``exchange/_handlers.pyx``), the compiled twin of the
  engine's handlers of prices, money and account settings (``SetMarkPrice``, ``SetIndexPrice``, ``Deposit``,
  ``Withdraw``, ``FundInsurance``, ``SetPositionMode``, ``SetMarginMode``, ``SetLeverage``, ``SetInitialMarginRate``,
  ``AdjustIsolatedMargin``; bound by the compiled ``Exchange``); None under the reference.
- ``funding_kernel``: ``exchange.funding._settle`` (built from ``exchange/funding/_settle.pyx``), the compiled twin of
  the funding stage's payments (:func:`exchange.funding.stage.pay`; a compiled ``Funding`` binds it); None under the
  reference.
- ``adl_bounds_kernel``: ``exchange.liquidation.adl._bounds`` (built from ``exchange/liquidation/adl/_bounds.pyx``), the
  compiled twin of :mod:`exchange.liquidation.adl.bounds` and of the ADL queue's candidate selection; None under
  the reference.
- ``batch_kernel``: ``exchange.boundary._batch`` (built from ``exchange/boundary/_batch.pyx``), the compiled twin
  of the batch path of :mod:`exchange.boundary.batch` (``make_records``, ``EventRows``, ``apply_records``: the
  command records of ``apply_batch``'s rows, its apply loop and its event tables); None under the reference.
- ``validate_kernel``: ``exchange.boundary._validate`` (built from ``exchange/boundary/_validate.pyx``), the compiled
  twin of the validation boundary's fast check (:mod:`exchange.boundary.validate`); None under the reference.
- ``positions_kernel``: ``exchange.accounts._positions`` (built from ``exchange/accounts/_positions.pyx``), the
  compiled ledger's compact positions (an account's one position as a ``OnePosition``; the compiled ``Exchange``
  hands it to its ``Ledger``); None under the reference.
- ``monitor_kernel``: ``exchange.liquidation._monitor`` (built from ``exchange/liquidation/_monitor.pyx``), the
  compiled twin of the risk monitor's per-command methods (``sync``, ``liquidatable``, ``margin_stage``; a compiled
  ``RiskMonitor`` binds them); None under the reference.
- ``waterfall_kernel``: ``exchange.liquidation._waterfall`` (built from ``exchange/liquidation/_waterfall.pyx``), the
  compiled twin of the liquidation waterfall's per-step glue (``Liquidator._book``, ``_takeover``, ``_transfer``,
  ``cancel_orders``, ``_kept_lots``, ``_bankruptcy_ticks``; a compiled ``Liquidator`` binds them) and of
  ``InsuranceFunds.sync`` and ``equity`` (a compiled ``InsuranceFunds`` binds them); None under the reference.
- ``engine_kernel``: ``exchange._engine`` (built from ``exchange/_engine.pyx``), the compiled twin of the engine's
  command loop (``Exchange.apply``, ``_apply_valid``, ``_run``; the compiled ``Exchange`` binds its ``Loop``); None
  under the reference.
- :func:`matching_engine_class`: the ``MatchingEngine`` class of either implementation.
"""
import os

PURE_PYTHON = os.environ.get("EXCHANGE_PUREPYTHON", "") not in ("", "0")

if PURE_PYTHON:
    core = None
    sweep_kernel = None
    pretrade_kernel = None
    fills_kernel = None
    records_kernel = None
    entry_kernel = None
    handlers_kernel = None
    funding_kernel = None
    adl_bounds_kernel = None
    batch_kernel = None
    validate_kernel = None
    engine_kernel = None
    monitor_kernel = None
    waterfall_kernel = None
    positions_kernel = None
    IMPLEMENTATION = "python"
else:
    try:
        from exchange.orders import _matching as core
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "exchange.orders._matching is not built. Reinstall with `pip install -e .` (needs a C compiler and "
            "Cython) or set EXCHANGE_PUREPYTHON=1 to run the pure-Python reference."
        ) from exc
    # missing = a broken install, reported like the matching core
    from exchange.clearing import _sweep as sweep_kernel
    from exchange.accounts import _positions as positions_kernel
    from exchange.accounts import _pretrade as pretrade_kernel
    from exchange import _records as records_kernel
    from exchange.clearing import _fills as fills_kernel
    from exchange.orders import _entry as entry_kernel
    from exchange import _handlers as handlers_kernel
    from exchange.funding import _settle as funding_kernel
    from exchange.liquidation.adl import _bounds as adl_bounds_kernel
    from exchange.boundary import _batch as batch_kernel
    from exchange.boundary import _validate as validate_kernel
    from exchange.liquidation import _monitor as monitor_kernel
    from exchange.liquidation import _waterfall as waterfall_kernel
    from exchange import _engine as engine_kernel
    IMPLEMENTATION = "cython"
    # the command and event records made by Python code (a user's commands, the stages that are not compiled)
    # store their fields in C: records_kernel.record_init (the same records; the dataclass __init__ otherwise)
    from exchange import commands as _commands, events as _events
    for _cls in (*_commands.COMMAND_TYPES.values(), *_events.event_classes()):
        _cls.__init__ = records_kernel.record_init(_cls)


def matching_engine_class(implementation: str | None = None):
    """The MatchingEngine class of ``implementation`` ("python" or "cython"; default: the active one)."""
    implementation = implementation or IMPLEMENTATION
    if implementation == "python":
        from .orders.matching import MatchingEngine

        return MatchingEngine
    if implementation == "cython":
        if core is None:
            raise RuntimeError("the compiled core is not active (EXCHANGE_PUREPYTHON=1 or not built)")
        return core.MatchingEngine
    raise ValueError(f"unknown implementation {implementation!r}")
