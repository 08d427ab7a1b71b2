"""Chains spread over several JAX devices (`jax.shard_map` on a "chain" mesh).

JAX fixes its device count when it starts, so each check runs in a fresh Python process with
XLA_FLAGS=--xla_force_host_platform_device_count=4: four CPU devices, the same code path a
machine with four GPUs takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from pplc.inference import mcmc, nuts_programs
    from pplc.inference.mcmc import sample_nuts

    def logdensity(x, data):  # independent normals: mean mu, sd s
        return -0.5 * jnp.sum(((x - data["mu"]) / data["s"]) ** 2)

    data = {"mu": np.array([0.0, 1.0, 2.0]), "s": np.array([1.0, 10.0, 0.1])}
    x0 = np.random.default_rng(0).uniform(-2, 2, (4, 3))
    out = {"devices": jax.device_count(),
           "mesh": {n: (m.devices.size if (m := nuts_programs.chain_mesh(n)) else 1) for n in (1, 2, 3, 4, 6, 8)},
           "auto": nuts_programs.auto_method(4)}

    # Short runs with no warmup: sharded chains must equal unsharded ones to rounding.
    short = dict(num_warmup=0, num_samples=30)
    seq = sample_nuts(logdensity, data, x0 + 0.1, jax.random.key(3), chain_method="sequential", **short)
    shard = sample_nuts(logdensity, data, x0 + 0.1, jax.random.key(3), chain_method="vectorized", **short)
    out["short_max_diff"] = float(np.abs(seq.positions - shard.positions).max())

    # A full run, twice with one seed: identical draws; moments right.
    runs = [sample_nuts(logdensity, data, x0, jax.random.key(0), num_warmup=500, num_samples=1000,
                        chain_method="auto") for _ in range(2)]
    out["repeat_identical"] = bool(np.array_equal(runs[0].positions, runs[1].positions))
    out["second_compile_s"] = runs[1].compile_seconds
    draws = runs[0].positions.reshape(-1, 3)
    out["mean"] = draws.mean(0).tolist()
    out["sd"] = draws.std(0).tolist()
    out["divergences"] = int(runs[0].stats["diverging"].sum())
    print(json.dumps(out))
    """
)


def _run_child(n_devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_devices}",
               JAX_ENABLE_X64="1")
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def four_devices() -> dict:
    return _run_child(4)


def test_mesh_uses_the_most_devices_that_divide_the_chains(four_devices):
    assert four_devices["devices"] == 4
    assert four_devices["mesh"] == {"1": 1, "2": 2, "3": 3, "4": 4, "6": 3, "8": 4}
    assert four_devices["auto"] == "vectorized"


def test_sharded_chains_equal_unsharded_ones(four_devices):
    # Same per-chain random streams on every device; only rounding may differ (~1e-16 per
    # step), and 30 draws without warmup do not give NUTS time to amplify it.
    assert four_devices["short_max_diff"] < 1e-9


def test_sharded_run_is_reproducible_and_correct(four_devices):
    assert four_devices["repeat_identical"]
    assert four_devices["second_compile_s"] == 0.0
    # 4000 draws of independent normals; ESS per coordinate is >= ~1000 with NUTS here, so
    # the mean's MCSE is <= sd/31; 5 MCSE = sd/6. The sd's relative MCSE is about
    # 1/sqrt(2 ESS) <= 2.3%, so 12% is > 5 MCSE.
    for m, sd, mu, s in zip(four_devices["mean"], four_devices["sd"], [0.0, 1.0, 2.0], [1.0, 10.0, 0.1]):
        assert abs(m - mu) < s / 6
        assert abs(sd / s - 1) < 0.12
    assert four_devices["divergences"] == 0
