"""The boundary: where a command enters (rules §1, ``docs/commands.md``).

- :mod:`~exchange.boundary.validate` — the validation boundary: type and range of every command field,
  before any stage runs.
- :mod:`~exchange.boundary.client` — :class:`~exchange.boundary.client.Client`, a trader's view with human
  values (str / Decimal / int) in and commands out (``exchange.Client``).
"""
