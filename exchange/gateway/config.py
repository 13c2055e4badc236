"""Gateway configuration: instruments, profile and accounts (API key, secret, initial deposit).

Read from a TOML file (``docs/gateway.md``) or the defaults; missing keys are generated. The resolved
configuration is kept in ``DIR/gateway-meta.json`` beside the journal so ``--restore`` finds the same keys.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal

from ..spec import Instrument

try:
    import tomllib
except ImportError:  # pragma: no cover - python 3.10
    import tomli as tomllib

DAY_MS = 86_400_000
MAKER_ACCOUNT = 1_000_000  # the realtime market maker's account

DEFAULT_INSTRUMENTS = [
    {"symbol": "BTCUSDT", "tick_size": "0.1", "lot_size": "0.001", "min_notional": "5", "price": "50000",
     "max_price": "1000000", "max_qty": "10000"},
    {"symbol": "ETHUSDT", "tick_size": "0.01", "lot_size": "0.001", "min_notional": "5", "price": "3000",
     "max_price": "100000", "max_qty": "100000"},
]
DEFAULT_ACCOUNTS = [{"account_id": 1, "deposit": "100000"}, {"account_id": 2, "deposit": "100000"}]


class ConfigError(ValueError):
    pass


@dataclass
class Account:
    account_id: int
    api_key: str
    secret: str
    deposit: str = "0"


@dataclass
class GatewayConfig:
    instruments: list[dict]
    accounts: list[Account]
    profile: str = "binance"
    epoch_ms: int = 0
    admin_token: str = ""
    extra: dict = field(default_factory=dict)

    def build_instruments(self) -> list[Instrument]:
        out = []
        for spec in self.instruments:
            params = {k: v for k, v in spec.items() if k not in ("symbol", "price")}
            try:
                out.append(Instrument.linear(spec["symbol"], **params))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"instrument {spec.get('symbol')!r}: {exc}") from None
        return out

    def initial_prices(self) -> dict[str, str]:
        return {spec["symbol"]: str(spec["price"]) for spec in self.instruments if spec.get("price")}

    def to_json(self) -> dict:
        return {"instruments": self.instruments, "profile": self.profile, "epoch_ms": self.epoch_ms,
                "admin_token": self.admin_token,
                "accounts": [vars(a) for a in self.accounts]}

    @classmethod
    def from_json(cls, data: dict) -> "GatewayConfig":
        return cls(instruments=data["instruments"], accounts=[Account(**a) for a in data["accounts"]],
                   profile=data.get("profile", "binance"), epoch_ms=int(data["epoch_ms"]),
                   admin_token=data.get("admin_token", ""))


def load(path: str | None, admin_token: str | None = None) -> GatewayConfig:
    """The configuration from ``path`` (TOML) or the defaults, with generated keys and the epoch fixed."""
    data: dict = {}
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    instruments = [dict(i) for i in data.get("instruments", DEFAULT_INSTRUMENTS)]
    for spec in instruments:
        if not isinstance(spec.get("symbol"), str):
            raise ConfigError("every [[instruments]] needs a symbol")
        for k, v in list(spec.items()):
            if isinstance(v, float):
                spec[k] = str(Decimal(repr(v)))
    accounts = []
    seen = set()
    for raw in data.get("accounts", DEFAULT_ACCOUNTS):
        try:
            account_id = int(raw["account_id"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError("every [[accounts]] needs an integer account_id") from None
        if account_id in seen or not 1 <= account_id < MAKER_ACCOUNT:
            raise ConfigError(f"account_id {account_id}: duplicate or outside 1..{MAKER_ACCOUNT - 1}")
        seen.add(account_id)
        accounts.append(Account(account_id, str(raw.get("api_key") or secrets.token_hex(32)),
                                str(raw.get("secret") or secrets.token_hex(32)), str(raw.get("deposit", "0"))))
    keys = [a.api_key for a in accounts]
    if len(set(keys)) != len(keys):
        raise ConfigError("api keys must be distinct")
    epoch_ms = int(data.get("epoch_ms") or (int(time.time() * 1000) // DAY_MS) * DAY_MS)
    config = GatewayConfig(instruments, accounts, str(data.get("profile", "binance")), epoch_ms,
                           admin_token or str(data.get("admin_token") or secrets.token_hex(16)))
    config.build_instruments()  # fail early
    return config


def save(config: GatewayConfig, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(config.to_json(), f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_saved(path: str) -> GatewayConfig:
    with open(path) as f:
        return GatewayConfig.from_json(json.load(f))
