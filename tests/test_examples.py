"""Every example runs end to end and gets one known number right."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

import pplc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_linear_regression_recovers_the_simulated_truth():
    """The true values used by simulate.py lie inside the posterior's central intervals.

    For one parameter the 90% interval misses the truth 10% of the time; checking all five
    at once, each at 99% (|truth - mean| < 2.576 sd, the posterior being Gaussian here)
    keeps the family's miss rate below 5% (Bonferroni) for data simulated at random."""
    folder = EXAMPLES / "linear_regression"
    import importlib.util

    spec = importlib.util.spec_from_file_location("simulate", folder / "simulate.py")
    simulate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(simulate)
    assert json.loads((folder / "data.json").read_text()) == json.loads(
        json.dumps(simulate.simulate()))  # data.json is what simulate.py makes
    posterior = pplc.compile(folder / "model.ppl").condition(folder / "data.json") \
        .sample(chains=4, warmup=500, draws=500, seed=0)
    summary = posterior.summary()
    truth = {"alpha": simulate.TRUE["alpha"], "sigma": simulate.TRUE["sigma"],
             **{f"beta[{i}]": b for i, b in enumerate(simulate.TRUE["beta"])}}
    for name, value in truth.items():
        assert abs(summary[name]["mean"] - value) < 2.576 * summary[name]["sd"], \
            (name, summary[name])


def _grid_posterior(data: dict, h0: np.ndarray, om: np.ndarray) -> np.ndarray:
    """log p(H0, Om | data) on a grid, flat priors, by direct quadrature (scipy)."""
    z, mu, err = (np.asarray(data[k]) for k in ("z", "mu", "mu_err"))
    logp = np.empty((len(h0), len(om)))
    for j, m in enumerate(om):
        # One vector-valued quadrature over s in [0, 1] gives every integral over [0, z_i]
        # (x = z_i * s, dx = z_i ds).
        integral = integrate.quad_vec(
            lambda s: z / np.sqrt(m * (1 + z * s) ** 3 + 1 - m), 0, 1,
            epsabs=1e-12, epsrel=1e-10)[0]
        base = 5 * np.log10((1 + z) * 299792.458 * integral) + 25
        model = base[None, :] - 5 * np.log10(h0)[:, None]
        logp[:, j] = np.sum(-0.5 * ((mu - model) / err) ** 2, axis=1)
    return logp


@pytest.mark.slow
def test_supernova_matches_a_brute_force_grid_posterior():
    folder = EXAMPLES / "supernova"
    data = json.loads((folder / "data.json").read_text())
    posterior = pplc.compile(folder / "model.ppl").condition(data) \
        .sample(chains=4, warmup=500, draws=1000, seed=0)
    summary = posterior.summary()
    # A 241 x 241 grid over the posterior's bulk (+-8 sd): the grid's own error on a mean is
    # below 1e-3 sd, negligible against the Monte Carlo error below.
    h0 = np.linspace(67.0, 73.0, 241)
    om = np.linspace(0.16, 0.40, 241)
    logp = _grid_posterior(data, h0, om)
    weights = np.exp(logp - logp.max())
    weights /= weights.sum()
    grid = {"H0": (h0, weights.sum(axis=1)), "Om": (om, weights.sum(axis=0))}
    for name, (values, marginal) in grid.items():
        mean = np.sum(values * marginal)
        sd = np.sqrt(np.sum((values - mean) ** 2 * marginal))
        got = summary[name]
        mcse = sd / np.sqrt(got["ess_bulk"])
        assert abs(got["mean"] - mean) < 4 * mcse, (name, got, mean, sd)
        # sd of Gaussian-like draws: MCSE about sd / sqrt(2 ESS).
        assert abs(got["sd"] - sd) < 4 * sd / np.sqrt(2 * got["ess_bulk"]), (name, got, sd)
    assert abs(summary["Om"]["mean"] - 0.28) < 0.03 and abs(summary["H0"]["mean"] - 70) < 1
