"""Sampler diagnostics: E-BFMI has its known values, saturation and divergences are counted,
and `diagnose` speaks up exactly when a check fails."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.signal import lfilter

from pplc.inference import sample_nuts
from pplc.inference.diagnostics import diagnose, e_bfmi, tree_depth_saturation


def test_e_bfmi_exact_on_short_sequences():
    # [0, 1, 0, 1]: squared differences 1 + 1 + 1 = 3, squared deviations 4 * 0.25 = 1.
    # [0, 1, 2, 3]: 3 / (2.25 + 0.25 + 0.25 + 2.25) = 0.6. Chains are independent rows.
    np.testing.assert_allclose(e_bfmi(np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 2.0, 3.0]])), [3.0, 0.6])
    assert np.isnan(e_bfmi(np.ones((1, 5)))[0])  # constant energy: undefined, not a warning


@pytest.mark.parametrize("r", [0.0, 0.5, 0.9])
def test_e_bfmi_of_ar1_energies(r):
    # For a stationary AR(1), E[(E_n - E_{n-1})^2] = 2 var (1 - r), so E-BFMI -> 2 (1 - r).
    # Over 200 seeds at N = 20000 the estimator's sd was 0.014, 0.012 and 0.006 for
    # r = 0, 0.5, 0.9; the tolerance 0.07 is >= 5 sd in every case.
    n = 20000
    eps = np.random.default_rng(int(10 * r)).normal(size=(2, n))
    energy = lfilter([1.0], [1.0, -r], eps, axis=1)[:, 1000:]  # drop the transient
    np.testing.assert_allclose(e_bfmi(energy), 2 * (1 - r), atol=0.07)


def _std_normal(x, data):
    return -0.5 * jnp.sum(x**2)


def test_well_behaved_model_has_high_e_bfmi_and_no_warnings():
    # On a Gaussian the energy is resampled almost freely each transition: E-BFMI near 1,
    # far above 0.3.
    r = sample_nuts(_std_normal, {}, np.zeros((2, 5)), jax.random.key(0), num_warmup=300, num_samples=500)
    bfmi = e_bfmi(r.stats["energy"])
    assert np.all(bfmi > 0.3), bfmi
    summary = {f"x[{i}]": {"r_hat": 1.001, "ess_bulk": 900.0, "ess_tail": 800.0} for i in range(5)}
    assert diagnose(r.stats, summary, 10) == []


def _ill_conditioned(x, data):
    return -0.5 * jnp.sum((x / jnp.linspace(0.01, 1.0, x.shape[0])) ** 2)


def test_tree_depth_saturation_detected():
    # No warmup, unit metric, scales 0.01..1: the step size suits the narrowest direction,
    # so a trajectory of 2^1 - 1 leapfrog steps is far too short to U-turn in the wide one.
    r = sample_nuts(_ill_conditioned, {}, np.full((2, 5), 0.01), jax.random.key(5),
                    num_warmup=0, num_samples=200, max_tree_depth=1)
    hit = r.stats["reached_max_treedepth"]
    assert hit.sum() > 0
    # Saturation means every allowed doubling was accepted, with no U-turn or divergence.
    assert np.all(r.stats["tree_depth"][hit] == 1) and not r.stats["diverging"][hit].any()
    assert tree_depth_saturation(r.stats) == hit.sum()
    messages = diagnose(r.stats, None, max_tree_depth=1)
    assert any("maximum tree depth of 1" in m and f"{hit.sum()} of 400" in m for m in messages), messages


def test_saturation_is_rare_with_the_default_depth():
    r = sample_nuts(_std_normal, {}, np.zeros((2, 5)), jax.random.key(1), num_warmup=200, num_samples=200)
    assert r.stats["reached_max_treedepth"].sum() == 0


def test_saturation_falls_back_to_tree_depth_without_the_flag():
    stats = {"tree_depth": np.array([[3, 10, 10], [9, 10, 2]])}
    assert tree_depth_saturation(stats, 10) == 3


def _stats(chains=4, draws=100, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "diverging": np.zeros((chains, draws), bool),
        "reached_max_treedepth": np.zeros((chains, draws), bool),
        "energy": rng.normal(size=(chains, draws)),  # i.i.d.: E-BFMI ~ 2
    }


def test_diagnose_reports_each_failed_check():
    stats = _stats()
    assert diagnose(stats, None) == []
    stats["diverging"][0, :3] = True
    stats["reached_max_treedepth"][1, :5] = True
    stats["energy"][2] = np.cumsum(stats["energy"][2])  # a random walk: E-BFMI ~ 0
    summary = {
        "mu": {"r_hat": 1.2, "ess_bulk": 50.0, "ess_tail": 900.0},
        "tau": {"r_hat": 1.0, "ess_bulk": 900.0, "ess_tail": 300.0},
        "L[0,0]": {"r_hat": float("nan"), "ess_bulk": float("nan"), "ess_tail": float("nan")},
        "sigma": {"r_hat": 1.005, "ess_bulk": 1000.0, "ess_tail": 1000.0},
    }
    messages = diagnose(stats, summary, 10)
    assert len(messages) == 5, messages
    div, depth, bfmi, rhat, ess = messages
    assert div.startswith("3 of 400 (0.75%) transitions ended with a divergence")
    assert depth.startswith("5 of 400 (1.2%) transitions hit the maximum tree depth of 10")
    assert "chain 2" in bfmi and "chain 0" not in bfmi
    assert "mu" in rhat and "tau" not in rhat and "sigma" not in rhat and "L[0,0]" not in rhat
    # 100 per chain x 4 chains: mu (bulk 50) and tau (tail 300) are below 400.
    assert "400" in ess and "mu" in ess and "tau" in ess and "sigma" not in ess
