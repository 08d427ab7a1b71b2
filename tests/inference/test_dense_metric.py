"""Dense metric: the pieces agree with their math, and the adapted metric pays off.

Unit checks first (Welford covariance against numpy, the mass-matrix square root, the dense
kernel reducing to the diagonal one on a diagonal matrix), then whole runs on Gaussians with
correlation 0.99, where a diagonal metric cannot help and a dense one whitens the target.
Statistical tolerances come from the MCSE or from the sampling variance of a covariance
estimate, never a bare rtol.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

from pplc.inference import build_kernel, init, sample_nuts
from pplc.inference.adaptation import regularized_variance, welford_init, welford_update
from pplc.inference.integrator import (
    IntegratorState,
    kinetic_energy,
    mass_matrix_sqrt,
    sample_momentum,
    velocity_verlet,
)


def _spd(d, seed=0):
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def test_welford_covariance_and_stan_regularization():
    x = np.random.default_rng(0).normal(size=(60, 3)) @ np.linalg.cholesky(_spd(3)).T
    w = welford_init(3, dense=True)
    for row in x:
        w = welford_update(w, jnp.asarray(row))
    n = 60
    expected = (n / (n + 5)) * np.cov(x.T) + 1e-3 * (5 / (n + 5)) * np.eye(3)
    np.testing.assert_allclose(regularized_variance(w), expected, rtol=1e-12)


def test_mass_matrix_sqrt_is_a_square_root_of_the_metric():
    inv = _spd(5)
    s = np.asarray(mass_matrix_sqrt(jnp.asarray(inv)))
    np.testing.assert_allclose(s @ s.T, np.linalg.inv(inv), rtol=1e-10, atol=1e-12)


def test_momentum_covariance_is_the_metric():
    # p = S z with S S^T = M: whitened by M^{-1/2}, the sample covariance of n draws is
    # Wishart / n, entries with sd sqrt(2/n) (diagonal) and sqrt(1/n) (off-diagonal).
    inv = _spd(3, seed=1)
    n = 20000
    keys = jax.random.split(jax.random.key(0), n)
    p = np.asarray(jax.vmap(lambda k: sample_momentum(k, jnp.zeros(3), jnp.asarray(inv)))(keys))
    chol_m = np.linalg.cholesky(np.linalg.inv(inv))
    white = np.linalg.solve(chol_m, p.T)
    err = white @ white.T / n - np.eye(3)
    assert np.all(np.abs(err) < 5 * np.sqrt((1 + np.eye(3)) / n)), err


def test_dense_kinetic_energy_and_leapfrog_reduce_to_diagonal():
    v = np.array([0.5, 2.0, 3.0])
    p = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(kinetic_energy(p, np.diag(v)), kinetic_energy(p, v), rtol=1e-14)
    f = jax.value_and_grad(lambda x: -0.5 * jnp.sum(x**2 * jnp.arange(1.0, 4.0)))
    step = velocity_verlet(f)
    x = jnp.array([1.0, -0.5, 0.2])
    s0 = IntegratorState(x, jnp.asarray(p), *f(x))
    a, b = step(s0, 0.1, jnp.asarray(v)), step(s0, 0.1, jnp.asarray(np.diag(v)))
    for u, w in zip(a, b):
        np.testing.assert_allclose(u, w, rtol=1e-13)


def test_dense_kernel_on_a_diagonal_matrix_matches_the_diagonal_kernel():
    # Same momentum (S = diag(1/sqrt(v)) exactly), same leapfrog, same U-turn vectors:
    # the transitions agree to rounding, which tests the dense U-turn criterion and energy.
    f = jax.value_and_grad(lambda x: -0.5 * jnp.sum((x / jnp.array([1.0, 3.0, 0.3])) ** 2))
    kernel = jax.jit(build_kernel(f))
    v = jnp.array([1.0, 9.0, 0.09])
    s_diag = s_dense = init(jnp.array([0.5, 1.0, -0.1]), f)
    for i in range(30):
        key = jax.random.key(i)
        s_diag, i_diag = kernel(key, s_diag, 0.4, v)
        s_dense, i_dense = kernel(key, s_dense, 0.4, jnp.diag(v))
        assert int(i_diag.num_steps) == int(i_dense.num_steps)
        np.testing.assert_allclose(s_dense.position, s_diag.position, rtol=1e-9, atol=1e-12)


def _gaussian(x, data):
    z = jax.scipy.linalg.solve_triangular(data["chol"], x, lower=True)
    return -0.5 * jnp.sum(z**2)


def _correlated_cov(d, rho=0.99):
    sd = np.array([1.0, 2.0]) if d == 2 else np.linspace(0.5, 2.0, d)
    corr = np.full((d, d), rho)
    np.fill_diagonal(corr, 1.0)
    return corr * np.outer(sd, sd)


def _mcse_check(draws, truth, what):
    ess = float(az.ess(np.asarray(draws)))
    mcse = np.std(draws) / np.sqrt(ess)
    err = abs(np.mean(draws) - truth)
    assert err < 4 * mcse, f"{what}: |{np.mean(draws):.4f} - {truth:.4f}| = {err:.4g} >= 4 MCSE = {4 * mcse:.4g}"


def _min_ess_per_grad(r):
    ess = min(float(az.ess(r.positions[..., i])) for i in range(r.positions.shape[-1]))
    return ess / r.stats["n_steps"].sum()


@pytest.mark.parametrize("d", [2, 10])
def test_dense_adaptation_on_correlated_gaussian(d):
    cov = _correlated_cov(d)
    data = {"chol": np.linalg.cholesky(cov)}
    kw = dict(num_warmup=1000, num_samples=1000, chain_method="sequential")
    dense = sample_nuts(_gaussian, data, np.zeros((4, d)), jax.random.key(0), metric="dense", **kw)
    diag = sample_nuts(_gaussian, data, np.zeros((4, d)), jax.random.key(0), **kw)
    assert dense.inverse_mass_matrix.shape == (4, d, d) and diag.inverse_mass_matrix.shape == (4, d)

    # The metric is the regularized covariance of the last slow window's n = 500 draws
    # (iterations 450-949). Whitened by the true covariance (W = L^-1 S L^-T), the
    # sample covariance of n_eff independent Gaussian draws has entries with sd
    # sqrt(2 / n_eff) on the diagonal and sqrt(1 / n_eff) off it (Wishart). With a dense
    # metric NUTS gives about 0.5 effective draws per draw for second moments on this
    # target (measured: ESS(x^2) / draws = 0.49), so n_eff ~ 250; we assume n_eff = 125 to
    # cover the window's first draws, taken with the previous window's metric, and allow
    # 4 sd on the max over entries and chains. Stan's shrinkage is part of the expectation.
    n, n_eff = 500, 125
    chol = np.linalg.cholesky(cov)
    prec_white = np.linalg.solve(chol, np.linalg.solve(chol, np.eye(d)).T)  # L^-1 I L^-T
    expected = (n / (n + 5)) * np.eye(d) + 1e-3 * (5 / (n + 5)) * prec_white
    sd = np.sqrt((1 + np.eye(d)) / n_eff)
    for m in dense.inverse_mass_matrix:
        np.testing.assert_allclose(m, m.T, rtol=1e-12)
        white = np.linalg.solve(chol, np.linalg.solve(chol, m).T)
        z = np.abs(white - expected) / sd
        assert z.max() < 4, z.max()

    # Efficiency: the dense metric turns the target into a unit Gaussian; the diagonal one
    # leaves a condition number of (1 + rho) / (1 - rho) ~ 200 (2-d).
    assert _min_ess_per_grad(dense) > 3 * _min_ess_per_grad(diag)

    # Correctness of the draws: means, variances and one covariance within 4 MCSE.
    x = dense.positions
    for i in range(d):
        _mcse_check(x[..., i], 0.0, f"mean[{i}]")
        _mcse_check(x[..., i] ** 2, cov[i, i], f"var[{i}]")
    _mcse_check(x[..., 0] * x[..., 1], cov[0, 1], "cov[0, 1]")
    assert dense.stats["diverging"].sum() == 0


def test_dense_vectorized_runs_and_unknown_metric_is_rejected():
    cov = _correlated_cov(3)
    data = {"chol": np.linalg.cholesky(cov)}
    r = sample_nuts(_gaussian, data, np.zeros((2, 3)), jax.random.key(1), num_warmup=150,
                    num_samples=50, metric="dense", chain_method="vectorized")
    assert r.inverse_mass_matrix.shape == (2, 3, 3)
    assert np.all(np.linalg.eigvalsh(r.inverse_mass_matrix) > 0)
    with pytest.raises(ValueError, match="metric"):
        sample_nuts(_gaussian, data, np.zeros((2, 3)), jax.random.key(1), metric="full")
