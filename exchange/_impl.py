"""The one place that decides which implementation runs.

``EXCHANGE_PUREPYTHON=1`` forces the pure-Python reference; otherwise the compiled ``exchange._core``
must import (an installed package whose extension is missing is a broken install, reported loudly).
"""
import os

PURE_PYTHON = os.environ.get("EXCHANGE_PUREPYTHON", "") not in ("", "0")

if PURE_PYTHON:
    core = None
    IMPLEMENTATION = "python"
else:
    try:
        from exchange import _core as core
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "exchange._core is not built. Reinstall with `pip install -e .` (needs a C compiler and Cython) "
            "or set EXCHANGE_PUREPYTHON=1 to run the pure-Python reference."
        ) from exc
    IMPLEMENTATION = "cython"
