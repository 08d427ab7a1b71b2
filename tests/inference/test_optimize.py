"""MAP by L-BFGS and the Laplace approximation: exact modes and covariances where they are
known in closed form, scipy's BFGS as the oracle elsewhere."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from pplc.errors import PplcError
from pplc.inference.laplace import laplace
from pplc.inference.optimize import find_map




def _quadratic(x, data):
    d = x - data["m"]
    return -0.5 * d @ data["Q"] @ d


def _quadratic_data(seed, dim=4):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim))
    return {"m": rng.normal(size=dim), "Q": A @ A.T + dim * np.eye(dim)}


def test_quadratic_mode_is_exact():
    data = _quadratic_data(0)
    r = find_map(_quadratic, data, np.zeros(4))
    assert r.converged and r.grad_norm < 1e-8
    # |x - m| <= |g| / lambda_min(Q), and lambda_min >= dim = 4 by construction.
    np.testing.assert_allclose(r.position, data["m"], atol=1e-8)
    assert abs(r.logdensity) < 1e-15


def _rosenbrock(x, data):
    return -jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def test_rosenbrock():
    r = find_map(_rosenbrock, {}, np.array([-1.2, 1.0]))
    assert r.converged and r.iterations < 1000
    np.testing.assert_allclose(r.position, [1.0, 1.0], atol=1e-6)


def _logistic(beta, data):
    """Bernoulli-logit likelihood with a N(0, 2^2) prior on each coefficient."""
    eta = data["X"] @ beta
    return jnp.sum(data["y"] * eta - jnp.logaddexp(0.0, eta)) - 0.5 * jnp.sum(beta**2) / 4.0


def _logistic_data(seed, n=200, k=4):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    p = 1 / (1 + np.exp(-X @ np.array([0.5, -1.0, 2.0, 0.0])))
    return {"X": X, "y": (rng.uniform(size=n) < p).astype(float)}


def test_logistic_regression_matches_scipy_bfgs():
    data = _logistic_data(0)
    r = find_map(_logistic, data, np.zeros(4))
    f = jax.jit(lambda b: -_logistic(b, data))
    g = jax.jit(jax.grad(lambda b: -_logistic(b, data)))
    ref = scipy.optimize.minimize(lambda b: float(f(b)), np.zeros(4), jac=lambda b: np.asarray(g(b)),
                                  method="BFGS", options={"gtol": 1e-9})
    # scipy may report "precision loss" at f ~ 88 before gtol; its gradient is what matters.
    assert np.max(np.abs(ref.jac)) < 1e-6 and r.converged
    # Both end with |g| <= 1e-6 on a posterior whose negative Hessian has eigenvalues of
    # order 1 or more (smallest: prior 1/4 plus data), so each is within ~1e-6 of the mode.
    np.testing.assert_allclose(r.position, ref.x, atol=1e-6)
    np.testing.assert_allclose(r.logdensity, -ref.fun, rtol=1e-12)


def test_new_data_compiles_nothing_and_max_iterations_is_reported(count_compiles):
    find_map(_logistic, _logistic_data(1), np.zeros(4))
    with count_compiles() as compiles:
        r = find_map(_logistic, _logistic_data(2), np.zeros(4))
    assert compiles == [] and r.compile_seconds == 0.0 and r.converged
    with pytest.warns(RuntimeWarning, match="max_iterations=2"):
        r = find_map(_rosenbrock, {}, np.array([-1.2, 1.0]), max_iterations=2)
    assert r.iterations == 2 and not r.converged


def test_laplace_on_a_gaussian_is_exact():
    data = _quadratic_data(3)
    mode = find_map(_quadratic, data, np.zeros(4))
    n = 4000
    r = laplace(_quadratic, data, mode, jax.random.key(0), num_draws=n)
    cov = np.linalg.inv(data["Q"])
    # The Hessian of a quadratic is exact under autodiff: only rounding remains.
    np.testing.assert_allclose(r.cov, cov, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(r.mean, data["m"], atol=1e-8)
    assert r.draws.shape == (n, 4)
    sd = np.sqrt(np.diag(cov))
    # Draws: mean within 4 MCSE (sd / sqrt(n)); variance within 4 standard errors of the
    # sample variance, sqrt(2 / (n - 1)) * var.
    np.testing.assert_array_less(np.abs(r.draws.mean(0) - data["m"]), 4 * sd / np.sqrt(n))
    var = np.diag(cov)
    np.testing.assert_array_less(np.abs(r.draws.var(0, ddof=1) - var), 4 * np.sqrt(2 / (n - 1)) * var)


def test_laplace_at_a_saddle_is_a_user_error():
    saddle = lambda x, data: -0.5 * x[0] ** 2 + 0.5 * x[1] ** 2  # stationary at 0, not a max
    with pytest.raises(PplcError, match="not a strict maximum"):
        laplace(saddle, {}, np.zeros(2), jax.random.key(0))


def test_laplace_at_the_logistic_mode_matches_the_observed_information():
    # -H = X^T diag(p (1 - p)) X + I / 4 at the mode, in closed form.
    data = _logistic_data(0)
    mode = find_map(_logistic, data, np.zeros(4)).position
    r = laplace(_logistic, data, mode, jax.random.key(1), num_draws=10)
    p = 1 / (1 + np.exp(-data["X"] @ mode))
    info = data["X"].T @ (data["X"] * (p * (1 - p))[:, None]) + np.eye(4) / 4
    np.testing.assert_allclose(r.cov, np.linalg.inv(info), rtol=1e-10)
    np.testing.assert_allclose(r.log_density_at_mode, _logistic(mode, data), rtol=1e-14)
