"""The pieces of a run of several processes that need no processes: which rows each
process holds (inference/sharding.py `process_rows`, `chain_and_data_shape`), and the
reparameterization pass's counts and scale estimates made from each process's rows and
summed (passes/group_sizes.py `shared_rows`), checked here against the whole data by
playing both processes of a run in one, in turn: the first records what it adds, the
second adds it. The 2-process runs over loopback are tests/test_distributed.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

import pplc
from pplc.inference.sharding import chain_and_data_shape, process_rows
from pplc.passes.group_sizes import (SharedRows, moment_scales, observations_per_element,
                                     shared_rows)

GROUPS = """
data N: int
data J: int
data g: int[N]
data y: real[N]
mu ~ Normal(0, 5)
tau ~ HalfNormal(5)
sigma ~ HalfNormal(5)
for j in range(J):
    theta[j] ~ Normal(mu, tau)
for n in range(N):
    y[n] ~ Normal(theta[g[n]], sigma)
"""


def test_each_process_holds_its_block_of_the_rows_padded_to_every_device():
    # 999 rows over 2 processes: padded to 1000 whether 2 or 4 devices in all
    for devices in (2, 4):
        assert [process_rows(999, devices, p, 2) for p in range(2)] == [(0, 500, 0),
                                                                        (500, 999, 1)]
    # 10 rows over 4 processes of 2 devices: padded to 16; the last holds only padding
    assert [process_rows(10, 8, p, 4) for p in range(4)] == [(0, 4, 0), (4, 8, 0),
                                                             (8, 10, 2), (10, 10, 4)]


def test_over_processes_the_chains_divide_each_processs_devices():
    assert chain_and_data_shape(4, 2, True) == (2, 2)
    assert chain_and_data_shape(4, 2, True, processes=2) == (2, 2)   # a chain per device
    assert chain_and_data_shape(4, 2, True, processes=4) == (1, 4)   # one device each
    assert chain_and_data_shape(2, 2, True, processes=2) == (1, 2)


def _as_two_processes(graph, size, data, split, what):
    """`what(graph)` computed as process 1 (rows split..N) and then as process 0 (rows
    0..split), each summing with the other: process 1 records what it adds, process 0's
    reducer adds it, call by call (every process makes the same calls)."""
    length = int(np.shape(data["g"])[0])
    recorded = []

    def record(values):
        recorded.append(np.asarray(values).copy())
        return values

    def rows(a, b):
        return {k: np.asarray(data[k])[a:b] for k in ("g", "y")}

    with shared_rows(SharedRows(size, split, length, rows(split, length), record)):
        what(graph)
    added = iter(recorded)
    with shared_rows(SharedRows(size, 0, split, rows(0, split),
                                lambda values: values + next(added))):
        out = what(graph)
    assert next(added, None) is None, "process 0 made fewer reductions than process 1"
    return out


@pytest.mark.parametrize("split", [0, 1, 137, 400])
def test_counts_and_scales_from_each_processs_rows_equal_the_whole_datas(split):
    rng = np.random.default_rng(3)
    n, groups = 400, 12
    g = np.minimum(rng.geometric(0.25, n) - 1, groups - 1)   # unbalanced groups
    y = rng.normal(size=groups)[g] * 2 + rng.normal(size=n)
    data = {"N": n, "J": groups, "g": g, "y": y}
    graph = pplc.compile(GROUPS).condition(data).unoptimized_graph
    whole = observations_per_element(graph, "theta")
    assert whole.sum() == n and whole.min() >= 0
    shared = _as_two_processes(graph, "N", data, split,
                               lambda gr: observations_per_element(gr, "theta"))
    np.testing.assert_array_equal(shared, whole)
    tau, low, precision = moment_scales(graph, "theta")
    s_tau, s_low, s_precision = _as_two_processes(graph, "N", data, split,
                                                  lambda gr: moment_scales(gr, "theta"))
    # the same estimates; the pooled within-group variance is summed from per-group sums
    # of squares instead of from deviations, which differ in the last bits only
    np.testing.assert_allclose([s_tau, s_low], [tau, low], rtol=1e-9)
    np.testing.assert_allclose(s_precision, precision, rtol=1e-9)
