"""Pathfinder: exact factors, near-exact approximations of Gaussians, PSIS, no recompiles.

Statistical tolerances are 4 MCSE (fixed seeds). The resampled draws are correlated through
repeats, so their MCSE uses Kish's effective size of the repeat counts, N^2 / sum(c_i^2),
which folds in both the importance weights' spread and the resampling noise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from pplc.errors import PplcError
from pplc.inference.pathfinder import (
    Approximation,
    _gaussian,
    _log_q,
    _draw,
    _path_program,
    init_from_pathfinder,
    inverse_hessian,
    pathfinder,
)
from pplc.inference.psis import psis


def _gauss_logp(x, data):
    r = x - data["mu"]
    return -0.5 * r @ data["prec"] @ r


def _gaussian_case(kind, dim, seed):
    rng = np.random.default_rng(seed)
    if kind == "diag":
        cov = np.diag(np.exp(rng.normal(size=dim)))
    else:
        a = rng.normal(size=(dim, dim))
        cov = a @ a.T / dim + 0.5 * np.eye(dim)
    mu = rng.normal(size=dim)
    return mu, cov, {"mu": mu, "prec": np.linalg.inv(cov)}


def _kl(mq, sq, mp, sp):
    """KL(N(mq, sq) || N(mp, sp))."""
    pi = np.linalg.inv(sp)
    r = mp - mq
    return 0.5 * (np.trace(pi @ sq) + r @ pi @ r - len(mq)
                  + np.linalg.slogdet(sp)[1] - np.linalg.slogdet(sq)[1])


def _kish_ess(draws):
    _, counts = np.unique(draws, axis=0, return_counts=True)
    return len(draws) ** 2 / np.sum(counts.astype(float) ** 2)


def _inits(num_paths, dim, seed):
    return np.random.default_rng(seed).uniform(-2, 2, (num_paths, dim))


# --- the inverse Hessian factors -------------------------------------------------------


def _random_history(seed, dim=7, m=4, unused=1):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(dim, dim))
    hess = a @ a.T + np.eye(dim)
    S = rng.normal(size=(m, dim))
    Z = S @ hess
    S[:unused], Z[:unused] = 0.0, 0.0
    valid = np.arange(m) >= unused
    alpha = np.exp(rng.normal(size=dim))
    return Approximation(rng.normal(size=dim), rng.normal(size=dim), alpha, S, Z, valid)


def test_compact_factors_equal_recursive_bfgs():
    # Sigma = diag(alpha) + beta gamma beta^T must be the BFGS inverse update from
    # H0 = diag(alpha) applied pair by pair, oldest first (Byrd, Nocedal & Schnabel 1994);
    # unused slots must change nothing.
    a = _random_history(0)
    h = np.diag(a.alpha)
    for s, z in zip(a.S[a.valid], a.Z[a.valid]):
        rho = 1.0 / (s @ z)
        v = np.eye(len(s)) - rho * np.outer(z, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    np.testing.assert_allclose(inverse_hessian(a), h, rtol=1e-10, atol=1e-12)
    # secant condition on the newest pair
    np.testing.assert_allclose(inverse_hessian(a) @ a.Z[-1], a.S[-1], rtol=1e-10)


def test_draws_have_sigma_as_covariance_and_log_q_is_their_density():
    a = _random_history(1)
    g = _gaussian(a)
    sigma = np.asarray(inverse_hessian(a))
    # The sampler's square root T: phi - mu = alpha^1/2 T u, so Cov = alpha^1/2 T T^T alpha^1/2.
    dim = len(a.alpha)
    t = np.asarray(jax.vmap(lambda u: _draw(g, u)[0] - g.mean)(jnp.eye(dim))).T
    np.testing.assert_allclose(t @ t.T, sigma, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.mean, a.position + sigma @ a.grad, rtol=1e-10)
    u = jax.random.normal(jax.random.key(0), (5, dim), jnp.float64)
    phi, log_q = _draw(g, u)
    ref = scipy.stats.multivariate_normal(np.asarray(g.mean), sigma).logpdf(np.asarray(phi))
    np.testing.assert_allclose(log_q, ref, rtol=1e-10)
    np.testing.assert_allclose(_log_q(g, phi), ref, rtol=1e-10)


# --- PSIS -------------------------------------------------------------------------------


def test_psis_matches_arviz():
    arviz = pytest.importorskip("arviz")
    lr = np.random.default_rng(0).standard_t(3, size=4000)
    lw, k = psis(lr)
    lw_ref, k_ref = arviz.psislw(lr.copy())
    np.testing.assert_allclose(k, k_ref, rtol=1e-10)
    np.testing.assert_allclose(lw, lw_ref, atol=1e-10)


def test_psis_k_separates_light_and_heavy_tails():
    rng = np.random.default_rng(1)
    _, k_light = psis(0.1 * rng.normal(size=4000))  # lognormal(0, 0.1) weights: k << 0.5
    _, k_heavy = psis(np.log(rng.pareto(1.0, size=4000) + 1))  # Pareto tail with k = 1
    assert k_light < 0.3 and k_heavy > 0.7
    lw, k_exact = psis(np.full(1000, 3.0))  # an exact approximation: nothing to smooth
    assert k_exact == -np.inf and np.allclose(np.exp(lw), 1e-3)


# --- Gaussian targets ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["diag", "corr"])
def test_single_path_on_2d_gaussian_is_near_exact(kind):
    # In 2-d, L-BFGS sees every direction within two steps, so the chosen Gaussian is
    # close to exact. Measured KL over seeds 0-2 is <= 0.014: the bound 0.05 allows that
    # the 25-draw ELBO may pick an iterate just before convergence.
    mu, cov, data = _gaussian_case(kind, 2, 0)
    run = jax.jit(_path_program(_gauss_logp, 2, 6, 1000, 25))
    for seed in range(3):
        best, elbo, _, _, status = run(jnp.asarray(_inits(1, 2, seed)[0]), jax.random.key(seed), 1e-8, data)
        g = _gaussian(best)
        assert int(status) == 1  # converged
        assert _kl(np.asarray(g.mean), np.asarray(inverse_hessian(best)), mu, cov) < 0.05
        # ELBO <= log Z, up to the noise of 25 draws when the approximation is near exact
        log_z = 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]
        assert elbo < log_z + 0.1


def test_converged_iterate_on_10d_gaussian_recovers_the_mode_and_scales():
    # The ELBO-chosen iterate's mean is within 0.1 sd of the truth in every coordinate,
    # and its covariance has KL < 1 (measured 0.10-0.55 diagonal, 0.18-1.07 correlated over
    # seeds 0-2 with history 6 or 10: L-BFGS with an inexact line search does not recover
    # the Hessian exactly, Zhang+ 2022 Sec. 2); PSIS corrects the rest (next test).
    for kind in ("diag", "corr"):
        mu, cov, data = _gaussian_case(kind, 10, 1)
        run = jax.jit(_path_program(_gauss_logp, 10, 10, 1000, 25))
        best, _, _, _, _ = run(jnp.asarray(_inits(1, 10, 0)[0]), jax.random.key(0), 1e-8, data)
        g = _gaussian(best)
        assert np.all(np.abs(np.asarray(g.mean) - mu) < 0.1 * np.sqrt(np.diag(cov)))
        assert _kl(np.asarray(g.mean), np.asarray(inverse_hessian(best)), mu, cov) < 1.0


@pytest.mark.parametrize("kind,dim", [("diag", 2), ("corr", 2), ("diag", 10), ("corr", 10)])
def test_multi_path_draws_match_gaussian_moments(kind, dim):
    mu, cov, data = _gaussian_case(kind, dim, 2)
    r = pathfinder(_gauss_logp, data, _inits(4, dim, 3), jax.random.key(3), num_draws=1000)
    assert r.draws.shape == (1000, dim) and r.num_paths == 4
    assert r.pareto_k < 0.5  # measured <= 0.43 over seeds 0-4
    ess = _kish_ess(r.draws)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(r.draws.mean(0) - mu) < 4 * sd / np.sqrt(ess))
    # MCSE of a Gaussian sample variance: var * sqrt(2 / ess)
    assert np.all(np.abs(r.draws.var(0) - sd**2) < 4 * sd**2 * np.sqrt(2 / ess))
    np.testing.assert_allclose(r.log_density, jax.vmap(lambda x: _gauss_logp(x, data))(r.draws), rtol=1e-12)
    assert np.all(np.isfinite(r.log_q)) and np.isfinite(r.elbo)


# --- a skewed target ----------------------------------------------------------------------


def _banana(x, data):
    # x1 ~ N(0, 1), x2 | x1 ~ N(b (x1^2 - 1), 1): E[x] = (0, 0) exactly, but the mode is
    # (0, -b), so a Gaussian centred near the mode is biased by -b in x2.
    return -0.5 * x[0] ** 2 - 0.5 * (x[1] - data["b"] * (x[0] ** 2 - 1)) ** 2


def test_importance_resampling_moves_banana_mean_toward_truth():
    data = {"b": 1.0}
    x0 = _inits(4, 2, 0)
    r = pathfinder(_banana, data, x0, jax.random.key(0))
    raw = pathfinder(_banana, data, x0, jax.random.key(0), importance_resampling=False)
    # Same key: the same approximations and pool; only the resampling differs.
    err_is, err_raw = abs(r.draws[:, 1].mean()), abs(raw.draws[:, 1].mean())
    # Measured over seeds 0-2: raw -0.89 to -1.05, PSIS -0.18 to -0.46.
    assert err_raw > 0.8 and err_is < 0.6 * err_raw
    assert abs(r.draws[:, 0].mean()) < 0.15  # symmetric coordinate: 4 MCSE at ess ~ 700
    # k-hat is honest: the Gaussian misses the banana's tails.
    assert r.pareto_k > 0.5


# --- Bayesian logistic regression vs NUTS ----------------------------------------------------


def _logistic(beta, data):
    logits = data["X"] @ beta
    prior = -0.5 * jnp.sum(beta**2) / 2.5**2
    return prior + jnp.sum(data["y"] * logits - jnp.logaddexp(0.0, logits))


def _logistic_data(seed=0, n=200, dim=4):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((n, 1)), rng.normal(size=(n, dim - 1))], axis=1)
    beta = np.array([0.5, 1.0, -1.0, 0.3])[:dim]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    return {"X": X, "y": y}


def test_logistic_regression_posterior_mean_matches_nuts():
    pytest.importorskip("numpyro")
    from numpyro.diagnostics import effective_sample_size
    from numpyro.infer import MCMC, NUTS

    data = _logistic_data()
    dim = data["X"].shape[1]
    mcmc = MCMC(NUTS(potential_fn=lambda b: -_logistic(b, data)), num_warmup=1000,
                num_samples=4000, num_chains=1, progress_bar=False)
    mcmc.run(jax.random.key(1), init_params=jnp.zeros(dim))
    ref = np.asarray(mcmc.get_samples())
    ref_mean, ref_sd = ref.mean(0), ref.std(0)
    ref_ess = np.asarray(effective_sample_size(ref[None]))

    r = pathfinder(_logistic, data, _inits(4, dim, 0), jax.random.key(0))
    ess = _kish_ess(r.draws)
    mcse = np.sqrt(ref_sd**2 / ess + ref_sd**2 / ref_ess)
    assert r.pareto_k < 0.7
    assert np.all(np.abs(r.draws.mean(0) - ref_mean) < 4 * mcse)
    assert np.all(np.abs(r.draws.std(0) / ref_sd - 1) < 4 * np.sqrt(0.5 / ess + 0.5 / ref_ess))


# --- compilation, failures, initialization ----------------------------------------------


def test_rerun_with_new_seed_compiles_nothing():
    events = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            events.append(duration)

    def own(x, d):
        """A density of this test's own: its first run compiles whatever tests ran before in
        this worker (under `--dist worksteal` test_same_seed_same_draws, which compiles
        `_gauss_logp` at these shapes, may come first)."""
        return _gauss_logp(x, d)

    mu, cov, data = _gaussian_case("corr", 3, 4)
    first = pathfinder(own, data, _inits(4, 3, 0), jax.random.key(0), num_draws=200)
    assert first.compile_seconds > 0
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        _, _, data2 = _gaussian_case("corr", 3, 5)  # new data of the same shapes, 2 paths
        again = pathfinder(own, data2, _inits(2, 3, 1), jax.random.key(1), num_draws=200)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert events == [] and again.compile_seconds == 0.0
    assert not np.allclose(first.draws[:10], again.draws[:10])


def test_same_seed_same_draws():
    _, _, data = _gaussian_case("diag", 3, 6)
    a = pathfinder(_gauss_logp, data, _inits(2, 3, 0), jax.random.key(7), num_draws=200)
    b = pathfinder(_gauss_logp, data, _inits(2, 3, 0), jax.random.key(7), num_draws=200)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_failed_paths_are_dropped_and_all_failed_raises():
    # A standard normal cut off at x0 = 10: the second path starts where log p = -inf.
    half = lambda x, d: jnp.where(x[0] < 10, -0.5 * jnp.sum(x**2), -jnp.inf)  # noqa: E731
    inits = np.array([[1.0, 0.0], [20.0, 0.0]])
    r = pathfinder(half, {}, inits, jax.random.key(0), num_draws=50)
    assert r.num_paths == 1
    with pytest.raises(PplcError, match="pathfinder failed on all 1 paths"):
        pathfinder(half, {}, inits[1:], jax.random.key(0), num_draws=50)


def test_init_from_pathfinder_gives_finite_distinct_points():
    mu, cov, data = _gaussian_case("corr", 3, 8)
    r = pathfinder(_gauss_logp, data, _inits(4, 3, 0), jax.random.key(0), num_draws=200)
    x = init_from_pathfinder(r, 4, jax.random.key(1))
    assert x.shape == (4, 3) and np.all(np.isfinite(x))
    assert len(np.unique(x, axis=0)) == 4
    assert all(any(np.array_equal(row, d) for d in r.draws) for row in x)
    with pytest.raises(PplcError, match="distinct draws"):
        init_from_pathfinder(r, 10_000, jax.random.key(1))


def test_laplace_reports_pareto_k_of_its_draws():
    """A Gaussian at the mode of a Gaussian is exact (flat ratios). At the mode of an equal
    mixture of N(0, 0.3^2) and N(0, 3^2) the curvature is the narrow component's, so q is
    about 0.3 wide against the target's 3: the ratios' true tail index is about
    1 - 0.3^2 / 3^2 = 0.99 (k-hat 0.77-0.99 measured over six seeds, 0.92 with this one),
    and the approximation says it is far off."""
    import warnings

    from jax.scipy.special import logsumexp

    from pplc.inference.laplace import laplace

    exact = laplace(lambda x, d: -0.5 * jnp.sum(x ** 2), {}, np.zeros(2), jax.random.key(0))
    assert exact.pareto_k < 0.5

    def mixture(x, data):
        narrow = -0.5 * (x / 0.3) ** 2 - jnp.log(0.3)
        wide = -0.5 * (x / 3.0) ** 2 - jnp.log(3.0)
        return jnp.sum(logsumexp(jnp.stack([narrow, wide]), axis=0))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        far = laplace(mixture, {}, np.zeros(1), jax.random.key(0))
    assert far.pareto_k > 0.7
    assert any("far from the posterior" in str(w.message) for w in caught)
