"""A Binance USDⓈ-M–compatible REST + WebSocket gateway in front of the exchange (``exchange-sim serve``).

See ``docs/gateway.md``. Modules: :mod:`.config` (accounts, instruments), :mod:`.auth` (HMAC signing),
:mod:`.sequencer` (the one engine task, group commit), :mod:`.records` (orders, trades, income built from
engine events), :mod:`.market` (depth ids, candles), :mod:`.wire` (Binance JSON), :mod:`.rest_market`,
:mod:`.rest_account`, :mod:`.rest_orders`, :mod:`.rest_algo`, :mod:`.ws`, :mod:`.admin`, :mod:`.clock`,
:mod:`.app` (wiring and the server's life cycle).
"""
