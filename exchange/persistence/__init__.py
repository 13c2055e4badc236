"""Persistence: the durable journal, snapshots and recovery (``docs/journal.md``, ``docs/snapshot.md``).

- :mod:`~exchange.persistence.journal` — the command journal: framed, checksummed records; writing and reading.
- :mod:`~exchange.persistence.snapshot` — the complete state in one checksummed file.
- :mod:`~exchange.persistence.recovery` — ``replay``, ``replay_file`` and ``recover()``: a journal (from the
  newest usable snapshot on) back into an exchange.
"""
