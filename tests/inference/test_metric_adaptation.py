"""Gradient-informed metrics ("diag-grad", "low-rank"): the estimators match their closed
forms, and NUTS with them samples a Gaussian correctly.

On a Gaussian target the gradient is linear in the draw, g = -S^{-1} x, so the Fisher
estimates are exact functions of the draws: the diagonal one equals the true variance and
the low-rank one the true covariance for any set of draws that spans the space, which lets
the unit tests use tight tolerances (rounding and the 1e-5 ridge), not sampling ones.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

from pplc.inference import sample_nuts
from pplc.inference.adaptation import welford_init, welford_update, window_metric
from pplc.inference.metric import fisher_diagonal, fisher_low_rank, shrink


def _welford(rows, dense):
    w = welford_init(rows.shape[1], dense=dense)
    for row in rows:
        w = welford_update(w, jnp.asarray(row))
    return w


def test_fisher_diagonal_recovers_very_different_scales_exactly():
    # Independent Gaussian, sd from 1e-2 to 1e2: g_j = -x_j / sd_j^2, so var(g_j) =
    # var(x_j) / sd_j^4 for the *sample* variances too, and sqrt(var(x) / var(g)) = sd^2
    # whatever the draws. Stan's sample variance of 30 draws is off by ~sqrt(2/29) = 26%.
    sd = np.geomspace(1e-2, 1e2, 7)
    x = np.random.default_rng(0).normal(size=(30, 7)) * sd
    g = -x / sd**2
    n = 30.0
    var_x, var_g = x.var(0, ddof=1), g.var(0, ddof=1)
    np.testing.assert_allclose(fisher_diagonal(var_x, var_g, n), shrink(sd**2, n), rtol=1e-12)
    # Through the adaptation's own window statistics, as warmup calls it.
    got = window_metric(_welford(x, False), _welford(g, False))
    np.testing.assert_allclose(got, shrink(sd**2, n), rtol=1e-10)
    stan = window_metric(_welford(x, False), None)
    assert np.max(np.abs(np.log(stan / shrink(sd**2, n)))) > 0.1  # the draws-only estimate is not exact


def test_fisher_diagonal_falls_back_to_draw_variance_when_the_gradient_is_constant():
    got = fisher_diagonal(jnp.array([4.0, 2.0]), jnp.array([1.0, 0.0]), 1e12)
    np.testing.assert_allclose(got, [2.0, 2.0], rtol=1e-10)


def _spiked_covariance(d, spikes, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = np.geomspace(0.3, 3.0, d)  # unequal coordinate scales on top of the spikes
    u = q[:, : len(spikes)]
    cov = np.eye(d) + (u * (np.asarray(spikes) - 1.0)) @ u.T
    return cov * np.outer(scales, scales), u


def test_low_rank_metric_recovers_the_covariance_and_its_top_eigenvectors():
    d = 20
    cov, _ = _spiked_covariance(d, [100.0, 30.0], seed=1)
    x = np.random.default_rng(2).normal(size=(200, d)) @ np.linalg.cholesky(cov).T
    g = -np.linalg.solve(cov, x.T).T
    cx, cg = np.cov(x.T), np.cov(g.T)
    # Keeping every direction (cutoff 1): Sigma C_g Sigma = C_x has the solution Sigma = S
    # exactly (C_g = S^-1 C_x S^-1), whatever the diagonal scaling; only the 1e-5 ridge
    # on the scaled, order-one covariances perturbs it.
    full, *_ = fisher_low_rank(jnp.asarray(cx), jnp.asarray(cg), 1e12, cutoff=1.0 + 1e-9)
    np.testing.assert_allclose(full, cov, rtol=1e-3, atol=1e-3 * np.abs(cov).max())
    # Default cutoff: the directions left to the diagonal are those within a factor 2 of it;
    # the two spikes (variance 100 and 30 against ~1) are kept, so the metric's top two
    # eigenvectors are the covariance's.
    inv, diag, u, lam = fisher_low_rank(jnp.asarray(cx), jnp.asarray(cg), 1e12)
    assert int(np.sum(np.asarray(lam) != 1.0)) < d  # some directions were dropped
    w_true, v_true = np.linalg.eigh(cov)
    w_got, v_got = np.linalg.eigh(np.asarray(inv))
    for k in (1, 2):
        assert abs(v_true[:, -k] @ v_got[:, -k]) > 0.999, k
        # The dropped directions are set to the diagonal's scale, which is not orthogonal to
        # the spikes in the unscaled space: their variance moves by 0.2% and 1.5% here.
        np.testing.assert_allclose(w_got[-k], w_true[-k], rtol=5e-2)


def _check_moments(r, mean, var, what):
    # |sample mean - truth| < 4 MCSE for E[x_j] and E[(x_j - mu_j)^2], per coordinate; MCSE
    # = sd / sqrt(ESS) of the quantity (central limit theorem for MCMC). 4 MCSE over 2 * d
    # checks: a false alarm chance of about 2 * d * 6e-5 for a fresh seed.
    for j in range(r.positions.shape[-1]):
        x = r.positions[..., j]
        for q, truth, name in ((x, mean[j], "mean"), ((x - mean[j]) ** 2, var[j], "variance")):
            mcse = np.std(q) / np.sqrt(float(az.ess(np.asarray(q))))
            err = abs(np.mean(q) - truth)
            assert err < 4 * mcse, f"{what} {name}[{j}]: |{np.mean(q):.4g} - {truth:.4g}| >= 4 MCSE {4 * mcse:.3g}"


def _gaussian(x, data):
    z = jax.scipy.linalg.solve_triangular(data["chol"], x - data["mu"], lower=True)
    return -0.5 * jnp.sum(z**2)


@pytest.mark.parametrize("metric", ["diag-grad", "low-rank"])
def test_sampling_with_the_gradient_informed_metric_is_right(metric):
    d = 6
    cov, _ = _spiked_covariance(d, [50.0], seed=3)
    mu = np.linspace(-2.0, 3.0, d)
    data = {"chol": np.linalg.cholesky(cov), "mu": mu}
    r = sample_nuts(_gaussian, data, np.zeros((4, d)), jax.random.key(0), num_warmup=500,
                    num_samples=500, chain_method="sequential", metric=metric)
    shape = (4, d, d) if metric == "low-rank" else (4, d)
    assert r.inverse_mass_matrix.shape == shape
    _check_moments(r, mu, np.diag(cov), metric)
    if metric == "low-rank":  # the adapted metric found the spike (variance 50 x scales)
        w_true, v_true = np.linalg.eigh(cov)
        for m in r.inverse_mass_matrix:
            assert abs(np.linalg.eigh(m)[1][:, -1] @ v_true[:, -1]) > 0.95


@pytest.mark.parametrize("metric", ["diag-grad", "low-rank", "dense"])
def test_a_window_with_an_unusable_estimate_keeps_the_previous_metric(metric):
    # A NaN in a window's statistics (a draw at the edge of overflow, say) must not become the
    # metric: every later transition would be NaN. The window is skipped instead.
    from pplc.inference import build_kernel
    from pplc.inference.adaptation import initial_chain_state
    from pplc.inference.adaptive_step import build_adaptive_step
    from pplc.inference.schedule import ScheduleRow

    f = jax.value_and_grad(lambda x: -0.5 * jnp.sum(x**2))
    step = jax.jit(build_adaptive_step(build_kernel(f), f))
    cs = jax.tree.map(lambda a: a[0], initial_chain_state(np.zeros((1, 3)), jax.random.split(jax.random.key(0), 1), metric))
    bad = cs.adaptation.welford._replace(count=jnp.asarray(10.0), m2=jnp.full_like(cs.adaptation.welford.m2, jnp.nan))
    cs = cs._replace(adaptation=cs.adaptation._replace(welford=bad))
    row = ScheduleRow(*(jnp.asarray(v) for v in (0, True, True, True, True, True)))
    new, _ = step(cs, row)
    np.testing.assert_array_equal(new.adaptation.inverse_mass_matrix, cs.adaptation.inverse_mass_matrix)
    if metric != "diag-grad":
        assert np.all(np.isfinite(new.adaptation.mass_matrix_sqrt))


def test_the_low_rank_metric_starts_its_windows_early_and_diag_keeps_stans():
    # Stan's slow windows for 1000 iterations: 75-99, 100-149, 150-249, 250-449, 450-949;
    # the low-rank metric's: 10-19, 20-39, 40-79, 80-159, 160-319, 320-949 (LOW_RANK_WINDOWS),
    # both with Stan's terminal window of 50.
    from pplc.inference.adaptation import build_schedule

    for metric, ends, first in (("diag", [99, 149, 249, 449, 949], 75), ("dense", [99, 149, 249, 449, 949], 75),
                                ("low-rank", [19, 39, 79, 159, 319, 949], 10)):
        rows = build_schedule(1000, 5, metric)
        assert list(np.flatnonzero(rows.window_end)) == ends, metric
        assert np.flatnonzero(rows.in_window)[0] == first and np.flatnonzero(rows.in_window)[-1] == 949
        assert list(np.flatnonzero(rows.reinit)) == [0, ends[0] + 1]   # STEP_SIZE_RESTARTS
