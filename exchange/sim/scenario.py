"""Scenario files (docs/scenarios.md): one TOML file describes a whole run.

A scenario names the instruments and the venue profile, the insurance fund, the price path, the population
(market makers, arbitrageurs, noise and momentum takers, leveraged traders), the traders' margin policies, the
worlds of the margin-mode study and the seeds. :func:`load_scenario` reads a file (or the embedded default,
``exchange/sim/scenarios/margin-modes.toml``), checks every key against :data:`SCHEMA` and returns a
:class:`Scenario`: a resolved, immutable nested mapping with every default filled in. Human values are
converted exactly: money (``"10000"``) to units of 1e-8, fractions (``0.25``) to ×1e8 integers, durations
(``"30m"``) to ns. A bad file raises :class:`~exchange.units.InputError` naming the key.

``Scenario.override({"traders.count": 20, "path.drop": 0.4})`` returns a new scenario (sweeps use it).
"""
from __future__ import annotations

import copy
import json
import re
import sys
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..units import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

E8 = 10**8
DEFAULT_NAME = "margin-modes"
POLICIES = ("isolated", "cross", "hybrid", "dynamic")
MIXED = "mixed"
PATH_KINDS = ("crash_recovery", "gbm_jump", "regime_switching", "klines", "agg_trades")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h|d)\s*$")
_UNIT_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}


# ==== value kinds =====================================================================================
def _decimal(key: str, value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{key}: expected a number or a decimal string, got {value!r}")
    try:
        d = Decimal(value if isinstance(value, str) else repr(value))
    except InvalidOperation:
        raise InputError(f"{key}: {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise InputError(f"{key}: {value!r} is not a finite number")
    return d


def to_units(key: str, value, *, low=0) -> int:
    """Money (quote currency, ``"10000"`` or ``10000``) → exact units of 1e-8."""
    d = _decimal(key, value) * E8
    if d != d.to_integral_value():
        raise InputError(f"{key}: {value!r} has more than 8 decimals")
    if d < low * E8 or d >= 2**62:
        raise InputError(f"{key}: {value!r} is out of range")
    return int(d)


def to_e8(key: str, value, *, low: float | None = 0, high: float | None = None) -> int:
    """A fraction (``0.25`` = 25 %) → exact ×1e8 integer."""
    d = _decimal(key, value)
    if (low is not None and d < Decimal(repr(low))) or (high is not None and d > Decimal(repr(high))):
        raise InputError(f"{key}: {value!r} is outside [{low}, {high}]")
    scaled = d * E8
    if scaled != scaled.to_integral_value():
        raise InputError(f"{key}: {value!r} has more than 8 decimals")
    return int(scaled)


def to_ns(key: str, value) -> int:
    """A duration: ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"500ms"`` (or an int of ns)."""
    if type(value) is int and value >= 0:
        return value
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None:
        raise InputError(f"{key}: expected a duration such as '30s', '15m', '2h' or an int of ns, got {value!r}")
    ns = Decimal(m.group(1)) * _UNIT_NS[m.group(2)]
    if ns != ns.to_integral_value():
        raise InputError(f"{key}: {value!r} is not a whole number of ns")
    return int(ns)


def _int(key, value, low=None, high=None):
    if type(value) is not int:
        raise InputError(f"{key}: expected an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{key}: {value} is outside [{low}, {high}]")
    return value


def _real(key, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{key}: expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{key}: {value} is outside [{low}, {high}]")
    return float(value)


def _str(key, value):
    if not isinstance(value, str):
        raise InputError(f"{key}: expected a string, got {value!r}")
    return value


def _bool(key, value):
    if not isinstance(value, bool):
        raise InputError(f"{key}: expected true or false, got {value!r}")
    return value


def _list(key, value, item, *, length=None, min_length=0):
    if not isinstance(value, list):
        raise InputError(f"{key}: expected a list, got {value!r}")
    if (length is not None and len(value) != length) or len(value) < min_length:
        want = length if length is not None else f"at least {min_length}"
        raise InputError(f"{key}: expected {want} items, got {len(value)}")
    return [item(f"{key}[{i}]", v) for i, v in enumerate(value)]


# Each key: (converter, default). Converters take (key, raw) and return the resolved value; the stored
# scenario keeps the *raw* TOML values (so it can be written back) and resolves on access.
K = dict
_money = to_units
_frac = to_e8
_dur = to_ns


def _opt(conv):
    def check(key, value):
        return None if value is None else conv(key, value)
    return check


def _pos_int(key, value):
    return _int(key, value, 1, 10**6)


def _nonneg_int(key, value):
    return _int(key, value, 0, 10**6)


def _leverage(key, value):
    return _int(key, value, 1, 125)


def _vol(key, value):
    return _real(key, value, 0.0, 100.0)


def _pair(conv):
    return lambda key, value: _list(key, value, conv, length=2)


def _take_profits(key, value):
    return _list(key, value, lambda k, v: _list(k, v, lambda kk, vv: to_e8(kk, vv, low=0, high=10), length=2))


SCHEMA: dict[str, dict[str, tuple]] = {
    "": K(name=(_str, DEFAULT_NAME), description=(_str, ""), seed=(lambda k, v: _int(k, v, 0, 2**32 - 1), 1),
          seeds=(lambda k, v: _int(k, v, 1, 1000), 5), profile=(_str, "binance")),
    "insurance": K(fund=(_money, "2000")),
    "path": K(kind=(_str, "crash_recovery"), start=(_dur, "0s"), bar=(_dur, "1m"), substeps=(_pos_int, 8),
              correlation=(_opt(lambda k, v: _real(k, v, -1.0, 1.0)), None),
              volatility=(_vol, 0.6), pre=(_dur, "30m"), drop=(lambda k, v: _real(k, v, 0.0, 0.99), 0.3),
              crash=(_dur, "30m"), hold=(_dur, "0s"), recovery=(lambda k, v: _real(k, v, 0.0, 10.0), 0.2),
              recovery_time=(_dur, "60m"), post=(_dur, "0s"), duration=(_dur, "4h"), drift=(lambda k, v: _real(k, v, -100, 100), 0.0),
              jump_intensity=(lambda k, v: _real(k, v, 0.0, 1e6), 0.0), jump_mean=(lambda k, v: _real(k, v, -5, 5), 0.0),
              jump_std=(lambda k, v: _real(k, v, 0.0, 5), 0.0),
              regimes=(lambda k, v: _list(k, v, _pair(lambda kk, vv: _real(kk, vv, -100, 100)), min_length=1), [[0.0, 0.5], [-2.0, 2.0]]),
              transition=(lambda k, v: _list(k, v, lambda kk, vv: _list(kk, vv, lambda a, b: _real(a, b, 0, 1))), [[0.98, 0.02], [0.1, 0.9]]),
              files=(lambda k, v: _check_files(k, v), {}), gaps=(_str, "error")),
    "makers": K(per_symbol=(_nonneg_int, 1), capital=(_money, "5000000"), leverage=(_leverage, 5), levels=(_pos_int, 5),
                half_spread=(lambda k, v: to_e8(k, v, low=0, high=0.1), 0.0004),
                spacing=(lambda k, v: to_e8(k, v, low=0, high=0.1), 0.0004), depth=(_money, "100000"),
                skew=(lambda k, v: _real(k, v, 0.0, 1e6), 0.0), widen_vol=(_vol, 1.5), pull_vol=(_vol, 3.0),
                stressed_levels=(_pos_int, 1), stressed_size=(lambda k, v: to_e8(k, v, low=0, high=1), 0.5)),
    "arbitrageurs": K(count=(_nonneg_int, 1), capital=(_money, "1000000"), leverage=(_leverage, 5),
                      threshold=(lambda k, v: to_e8(k, v, low=0, high=0.5), 0.002), clip=(_money, "100000"),
                      max_position=(_money, "2000000")),
    "noise": K(per_symbol=(_nonneg_int, 2), capital=(_money, "200000"), leverage=(_leverage, 5),
               trade_prob=(lambda k, v: _real(k, v, 0, 1), 0.3), buy_prob=(lambda k, v: _real(k, v, 0, 1), 0.5),
               median=(_money, "5000"), sigma=(lambda k, v: _real(k, v, 0, 5), 0.8), max_position=(_money, "200000")),
    "momentum": K(per_symbol=(_nonneg_int, 1), capital=(_money, "200000"), leverage=(_leverage, 5),
                  lookback=(_pos_int, 12), threshold=(lambda k, v: to_e8(k, v, low=0, high=1), 0.005),
                  clip=(_money, "5000"), max_position=(_money, "100000")),
    "traders": K(count=(_nonneg_int, 40), capital=(_money, "10000"), reserve=(_money, "0"), intentions=(_pos_int, 2),
                 leverages=(lambda k, v: _list(k, v, _leverage, min_length=1), [5, 10, 20]),
                 long_prob=(lambda k, v: _real(k, v, 0, 1), 0.7),
                 size=(_pair(lambda k, v: to_e8(k, v, low=0, high=1)), [0.5, 1.0]),
                 entry_window=(_pair(_dur), ["5m", "30m"]), hold=(_pair(_dur), ["60m", "180m"]),
                 slippage=(lambda k, v: to_e8(k, v, low=0, high=0.1), 0.01),
                 stop_loss=(_opt(lambda k, v: to_e8(k, v, low=0, high=1)), None),
                 trailing_callback=(_opt(lambda k, v: to_e8(k, v, low=0, high=0.1)), None),
                 take_profits=(_take_profits, []),
                 topup_ratio=(_opt(lambda k, v: to_e8(k, v, low=0, high=10)), None), topup=(_money, "0"),
                 max_topups=(_nonneg_int, 1), cooldown=(_dur, "5m"), max_reentries=(_nonneg_int, 1)),
    "policies.isolated": K(share=(lambda k, v: to_e8(k, v, low=0, high=1), 0.25)),
    "policies.cross": K(share=(lambda k, v: to_e8(k, v, low=0, high=1), 0.25)),
    "policies.hybrid": K(isolated_share=(lambda k, v: to_e8(k, v, low=0, high=1), 0.3),
                         share=(lambda k, v: to_e8(k, v, low=0, high=1), 0.25), conviction_symbol=(_str, "")),
    "policies.dynamic": K(share=(lambda k, v: to_e8(k, v, low=0, high=1), 0.25),
                          defend_ratio=(lambda k, v: to_e8(k, v, low=0, high=10), 0.15), extreme_vol=(_vol, 3.0),
                          cushion=(lambda k, v: to_e8(k, v, low=0, high=10), 0.5), min_steps_between=(_pos_int, 4),
                          max_refusals=(_pos_int, 3)),
    "study": K(worlds=(lambda k, v: _list(k, v, _str, min_length=1), [*POLICIES, MIXED]),
               metrics_every=(_pos_int, 1)),
}

INSTRUMENT_SCHEMA = K(
    symbol=(_str, None), price=(lambda k, v: _decimal(k, v), None), tick_size=(_str, "0.1"), lot_size=(_str, "0.001"),
    min_qty=(_opt(_str), None), max_qty=(_str, "1000"), min_notional=(_str, "5"), maker_fee=(_str, "0.0002"),
    taker_fee=(_str, "0.0005"), max_leverage=(_leverage, 125), band_up=(_str, "1.15"), band_down=(_str, "0.85"),
    max_price=(_str, "1000000"), liquidation_fee=(_str, "0.0125"), funding_interval=(_dur, "8h"),
)


def _check_files(key, value):
    """``path.files``: ``{SYMBOL = {klines = [...], index_klines = [...], mark_klines = [...], funding = [...],
    agg_trades = [...]}}`` (a single file may be a string)."""
    if not isinstance(value, dict):
        raise InputError(f"{key}: expected a table of symbol = {{klines = [...], ...}}")
    out = {}
    for symbol, kinds in value.items():
        if not isinstance(kinds, dict):
            raise InputError(f"{key}.{symbol}: expected a table of file lists")
        out[symbol] = {}
        for kind, files in kinds.items():
            if kind not in ("klines", "index_klines", "mark_klines", "funding", "agg_trades"):
                raise InputError(f"{key}.{symbol}.{kind}: unknown file kind (klines, index_klines, mark_klines, "
                                 f"funding, agg_trades)")
            files = [files] if isinstance(files, str) else files
            out[symbol][kind] = _list(f"{key}.{symbol}.{kind}", files, _str, min_length=1)
    return out


# ==== the scenario ====================================================================================
class Scenario:
    """A checked scenario: ``raw`` holds the TOML values with defaults filled in (JSON-serialisable, what
    :meth:`to_json` writes); item access ``scenario["traders.count"]`` returns the *resolved* value (units, e8,
    ns). ``base_dir`` resolves relative file names of historical paths."""

    def __init__(self, raw: Mapping[str, Any], base_dir: Path | None = None):
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.raw = _fill(copy.deepcopy(dict(raw)))
        self._resolved = _resolve(self.raw)
        self._check_consistency()

    # -- access ---------------------------------------------------------------------------------------
    def __getitem__(self, dotted: str):
        section, _, key = dotted.rpartition(".")
        try:
            return self._resolved[section][key]
        except KeyError:
            raise KeyError(dotted) from None

    def section(self, name: str) -> dict:
        return dict(self._resolved[name])

    @property
    def name(self) -> str:
        return self["name"]

    @property
    def symbols(self) -> list[str]:
        return [i["symbol"] for i in self.raw["instruments"]]

    @property
    def worlds(self) -> list[str]:
        return list(self["study.worlds"])

    @property
    def seeds(self) -> list[int]:
        return [self["seed"] + i for i in range(self["seeds"])]

    def instruments(self):
        from ..spec import FundingParams, Instrument

        out = []
        for i, spec in enumerate(self.raw["instruments"]):
            key = f"instruments[{i}]"
            kwargs = {k: spec[k] for k in ("tick_size", "lot_size", "max_qty", "min_notional", "maker_fee",
                                           "taker_fee", "band_up", "band_down", "max_price", "liquidation_fee")}
            kwargs["min_qty"] = spec["min_qty"] if spec["min_qty"] is not None else spec["lot_size"]
            interval = to_ns(f"{key}.funding_interval", spec["funding_interval"])
            try:
                out.append(Instrument.linear(spec["symbol"], max_leverage=spec["max_leverage"],
                                             funding=FundingParams(interval_ns=interval), **kwargs))
            except InputError as exc:
                raise InputError(f"{key}: {exc}") from None
        return out

    def start_prices(self) -> list[str]:
        return [str(i["price"]) for i in self.raw["instruments"]]

    # -- derived scenarios ----------------------------------------------------------------------------
    def override(self, changes: Mapping[str, Any]) -> "Scenario":
        """A new scenario with dotted keys replaced (``{"traders.count": 20, "policies.isolated.share": 0.5}``);
        ``instruments.N.key`` addresses an instrument."""
        raw = copy.deepcopy(self.raw)
        for dotted, value in changes.items():
            parts = dotted.split(".")
            if parts[0] == "instruments":
                if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(raw["instruments"]):
                    raise InputError(f"{dotted}: expected instruments.<index>.<key> with an index below "
                                     f"{len(raw['instruments'])}")
                if parts[2] not in INSTRUMENT_SCHEMA:
                    raise InputError(f"{dotted}: unknown instrument key")
                raw["instruments"][int(parts[1])][parts[2]] = value
                continue
            section, key = ".".join(parts[:-1]), parts[-1]
            if section not in SCHEMA or key not in SCHEMA[section]:
                raise InputError(f"{dotted}: unknown scenario key")
            target = raw
            for p in parts[:-1]:
                target = target.setdefault(p, {})
            target[key] = value
        return Scenario(raw, self.base_dir)

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True, default=str)

    def _check_consistency(self) -> None:
        symbols = self.symbols
        if len(set(symbols)) != len(symbols):
            raise InputError(f"instruments: duplicate symbol in {symbols}")
        for world in self.worlds:
            if world not in (*POLICIES, MIXED):
                raise InputError(f"study.worlds: unknown world {world!r} (known: {', '.join((*POLICIES, MIXED))})")
        conviction = self["policies.hybrid.conviction_symbol"]
        if conviction and conviction not in symbols:
            raise InputError(f"policies.hybrid.conviction_symbol: {conviction!r} is not an instrument")
        kind = self["path.kind"]
        if kind not in PATH_KINDS:
            raise InputError(f"path.kind: unknown kind {kind!r} (known: {', '.join(PATH_KINDS)})")
        if kind in ("klines", "agg_trades"):
            files = self["path.files"]
            for symbol in symbols:
                need = "klines" if kind == "klines" else "agg_trades"
                if need not in files.get(symbol, {}):
                    raise InputError(f"path.files.{symbol}.{need}: required for path.kind = {kind!r}")
        lo, hi = self["traders.entry_window"]
        if lo >= hi:
            raise InputError("traders.entry_window: the start must be before the end")
        lo, hi = self["traders.hold"]
        if lo > hi or lo <= 0:
            raise InputError("traders.hold: expected 0 < min ≤ max")
        from ..profiles import PROFILES
        if self["profile"] not in PROFILES:
            raise InputError(f"profile: unknown profile {self['profile']!r} (known: {', '.join(PROFILES)})")
        from ..engine import Exchange
        try:  # every instrument is valid and fits the profile (e.g. its funding interval)
            Exchange(self.instruments(), profile=self["profile"], implementation="python")
        except ValueError as exc:
            raise InputError(f"instruments: {exc}") from None


def _fill(raw: dict) -> dict:
    """Check the keys and fill defaults (raw values)."""
    out: dict = {}
    known_top = {k for k in SCHEMA[""]} | {"instruments", "policies"} | {s for s in SCHEMA if s and "." not in s}
    for key in raw:
        if key not in known_top:
            raise InputError(f"{key}: unknown scenario key (known: {', '.join(sorted(known_top))})")
    for section, keys in SCHEMA.items():
        if section == "":
            src = raw
        else:
            src = raw
            for p in section.split("."):
                src = src.get(p, {}) if isinstance(src, dict) else None
                if not isinstance(src, dict):
                    raise InputError(f"{section}: expected a table")
        for key in src:
            if section == "" and key in known_top - set(keys):
                continue
            if key not in keys:
                raise InputError(f"{section + '.' if section else ''}{key}: unknown key (known: {', '.join(keys)})")
        target = out
        if section:
            for p in section.split("."):
                target = target.setdefault(p, {})
        for key, (_, default) in keys.items():
            target[key] = src.get(key, copy.deepcopy(default))
    policies = raw.get("policies", {})
    for name in policies:
        if name not in POLICIES:
            raise InputError(f"policies.{name}: unknown policy (known: {', '.join(POLICIES)})")
    instruments = raw.get("instruments")
    if not isinstance(instruments, list) or not instruments:
        raise InputError("instruments: expected one or more [[instruments]] tables")
    out["instruments"] = []
    for i, spec in enumerate(instruments):
        if not isinstance(spec, dict):
            raise InputError(f"instruments[{i}]: expected a table")
        for key in spec:
            if key not in INSTRUMENT_SCHEMA:
                raise InputError(f"instruments[{i}].{key}: unknown key (known: {', '.join(INSTRUMENT_SCHEMA)})")
        for key in ("symbol", "price"):
            if key not in spec:
                raise InputError(f"instruments[{i}].{key}: required")
        out["instruments"].append({k: spec.get(k, d) for k, (_, d) in INSTRUMENT_SCHEMA.items()})
    return out


def _resolve(raw: dict) -> dict:
    resolved: dict = {}
    for section, keys in SCHEMA.items():
        src = raw
        for p in section.split(".") if section else ():
            src = src[p]
        resolved[section] = {key: conv(f"{section + '.' if section else ''}{key}", src[key])
                             for key, (conv, _) in keys.items()}
    for i, spec in enumerate(raw["instruments"]):
        for key, (conv, _) in INSTRUMENT_SCHEMA.items():
            conv(f"instruments[{i}].{key}", spec[key])
        price = _decimal(f"instruments[{i}].price", spec["price"])
        if price <= 0:
            raise InputError(f"instruments[{i}].price: must be > 0")
    return resolved


def load_scenario(source=None, overrides: Mapping[str, Any] | None = None) -> Scenario:
    """Read a scenario: ``source`` is a path to a TOML file, TOML text (``str`` containing a newline), or
    ``None`` for the embedded default (``margin-modes``). ``overrides`` are dotted keys applied after.
    Invalid content raises :class:`InputError` naming the key; a missing or unreadable file ``OSError``."""
    base_dir = None
    if source is None:
        text = resources.files("exchange.sim").joinpath("scenarios", "margin-modes.toml").read_text("utf-8")
    elif isinstance(source, str) and "\n" in source:
        text = source
    else:
        path = Path(source)
        try:
            text = path.read_text("utf-8")  # a missing or unreadable file raises OSError
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
        base_dir = path.parent
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"scenario: not valid TOML ({exc})") from None
    scenario = Scenario(raw, base_dir)
    return scenario.override(overrides) if overrides else scenario


def default_scenario_text() -> str:
    """The embedded default scenario's TOML text (``exchange-sim scenario`` prints it)."""
    return resources.files("exchange.sim").joinpath("scenarios", "margin-modes.toml").read_text("utf-8")


__all__ = ["Scenario", "load_scenario", "default_scenario_text", "SCHEMA", "INSTRUMENT_SCHEMA", "POLICIES",
           "MIXED", "PATH_KINDS", "to_units", "to_e8", "to_ns"]
