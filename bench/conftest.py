"""Shared, seeded workloads for the matching benchmarks (see bench/README.md). Generated once per session,
outside every timed region."""
from __future__ import annotations

import numpy as np
import pytest

from bench_support import N_COMMANDS, N_REFERENCE, SEED
from exchange.workload import standard_workload


@pytest.fixture(scope="session")
def workload():
    """``(instrument, rows)`` of the standard workload."""
    return standard_workload(N_COMMANDS, SEED)


@pytest.fixture(scope="session")
def reference_prefix(workload):
    instrument, rows = workload
    return instrument, np.ascontiguousarray(rows[:N_REFERENCE])
