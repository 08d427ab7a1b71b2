"""ADVI: the optimum it must find where the answer is known in closed form, Stan's
convergence rule, and no recompilation on a new seed.

Tolerances. The fitted parameters are noisy because the gradient is a one-draw Monte Carlo
estimate. Measured on the diagonal Gaussian below (16 seeds, eta = 1 chosen by the search,
averaged iterates): after 3000 iterations with grad_samples=1 the error of the mean is
0.01-0.03 posterior sd (rms over seeds) and of log sd 0.005-0.016; with grad_samples=10
it is 0.004-0.006 sd and 0.003-0.005 in log sd. The tests use grad_samples=10 and 3000
iterations and allow 0.03 sd in the mean and 0.03 in log sd (relative sd): five or more
times the measured rms, so a fixed seed fails only if the optimizer is wrong or biased.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.errors import PplcError
from pplc.inference.advi import ADVIState, build_step, entropy, fit_advi, init, sample

LONG = dict(grad_samples=10, max_iterations=3000, tol_rel_obj=0.0)  # run all iterations




def _diag_gaussian(x, data):
    return -0.5 * jnp.sum(((x - data["m"]) / data["s"]) ** 2)


DIAG = {"m": np.array([1.0, -2.0, 3.0]), "s": np.array([0.5, 1.0, 2.0])}


def _gaussian(x, data):
    return -0.5 * x @ data["Q"] @ x


COV = np.array([[1.0, 0.8], [0.8, 1.0]])
CORR = {"Q": np.linalg.inv(COV)}


def _long_fit(*args, **kwargs):
    # tol_rel_obj=0 runs max_iterations on purpose; its not-converged warning is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fit_advi(*args, **LONG, **kwargs)


def test_meanfield_recovers_a_diagonal_gaussian_exactly():
    # q's family contains the target, so the optimum is the target itself: KL = 0.
    r = _long_fit(_diag_gaussian, DIAG, np.zeros(3), jax.random.key(0))
    np.testing.assert_array_less(np.abs(r.mean - DIAG["m"]) / DIAG["s"], 0.03)
    np.testing.assert_array_less(np.abs(np.log(r.scale_or_cov / DIAG["s"])), 0.03)
    # The draws come from q: their mean is within 4 MCSE (sd / sqrt(n)) of q's mean.
    n = r.draws.shape[0]
    assert r.draws.shape == (1000, 3)
    np.testing.assert_array_less(np.abs(r.draws.mean(0) - r.mean), 4 * r.scale_or_cov / np.sqrt(n))


def test_fullrank_recovers_a_correlated_gaussian():
    r = _long_fit(_gaussian, CORR, np.zeros(2), jax.random.key(1), method="fullrank")
    cov = r.scale_or_cov
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert abs(corr - 0.8) < 0.05
    np.testing.assert_array_less(np.abs(np.log(np.sqrt(np.diag(cov)))), 0.03)  # sd 1
    np.testing.assert_array_less(np.abs(r.mean), 0.03)  # sd 1, so 0.03 sd
    # Draws: sample covariance within 4 standard errors; Var(s_ij) = (S_ij^2 + S_ii S_jj) / n.
    n = r.draws.shape[0]
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    np.testing.assert_array_less(np.abs(np.cov(r.draws.T) - cov), 4 * se)


def test_meanfield_on_a_correlated_gaussian_gives_the_mean_field_solution():
    # For a Gaussian target N(m, Q^-1), the KL(q || p)-optimal factorized Gaussian has mean m
    # and sd_i = 1 / sqrt(Q_ii) (Bishop, PRML 10.1.2): 0.6 here, not the marginal sd of 1.
    r = _long_fit(_gaussian, CORR, np.zeros(2), jax.random.key(2))
    expected = 1 / np.sqrt(np.diag(CORR["Q"]))
    np.testing.assert_array_less(np.abs(np.log(r.scale_or_cov / expected)), 0.03)
    np.testing.assert_array_less(np.abs(r.mean) / expected, 0.03)


def _regression(x, data):
    """y ~ N(X beta, 1), beta ~ N(0, 10^2): a Gaussian posterior with a closed-form mean."""
    return -0.5 * jnp.sum((data["y"] - data["X"] @ x) ** 2) - 0.5 * jnp.sum(x**2) / 100


def _regression_data(seed, n=100):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = X @ np.array([2.0, -1.0, 0.5]) + rng.normal(size=n)
    precision = X.T @ X + np.eye(3) / 100
    return {"X": X, "y": y}, np.linalg.solve(precision, X.T @ y), np.sqrt(np.diag(np.linalg.inv(precision)))


@pytest.mark.parametrize("method", ["meanfield", "fullrank"])
def test_regression_converges_by_stans_rule_and_recovers_the_posterior_mean(method):
    # Stan's defaults (tol_rel_obj=0.01, eval_elbo=100): measured over 4 seeds it stops after
    # 300-500 of 10000 iterations with the mean within 0.1 posterior sd (1.5% of each
    # coefficient). Mean-field's optimal mean is the exact mean for a Gaussian posterior.
    data, exact, sd = _regression_data(0)
    r = fit_advi(_regression, data, np.zeros(3), jax.random.key(0), method=method)
    assert r.converged and r.iterations < 10000
    assert r.iterations % 100 == 0 and len(r.elbo_trace) == r.iterations // 100
    np.testing.assert_array_less(np.abs(r.mean - exact), 0.25 * sd)
    np.testing.assert_allclose(r.mean, exact, rtol=0.03)
    assert np.all(np.isfinite(r.elbo_trace))
    # Eta search: 5 candidates x 50 iterations, then one gradient per iteration.
    assert r.n_grad_evals == 5 * 50 + r.iterations
    assert r.learning_rate in (100.0, 10.0, 1.0, 0.1, 0.01)


def test_new_seed_and_new_data_compile_nothing(count_compiles):
    data, _, _ = _regression_data(1)
    fit_advi(_regression, data, np.zeros(3), jax.random.key(0), num_draws=200)
    new_data, exact, sd = _regression_data(2)
    with count_compiles() as compiles:
        r = fit_advi(_regression, new_data, np.zeros(3), jax.random.key(5), num_draws=200)
    assert compiles == []
    assert r.compile_seconds == 0.0
    np.testing.assert_array_less(np.abs(r.mean - exact), 0.25 * sd)  # data is a runtime input


def test_same_seed_same_result_and_progress_reports():
    calls = []
    a = fit_advi(_regression, _regression_data(0)[0], np.zeros(3), jax.random.key(3),
                 progress=lambda *args: calls.append(args))
    b = fit_advi(_regression, _regression_data(0)[0], np.zeros(3), jax.random.key(3))
    np.testing.assert_array_equal(a.draws, b.draws)
    assert calls[0] == ("adaptation", 250, 250, 0)
    assert [c[1] for c in calls[1:]] == list(range(100, a.iterations + 1, 100))
    assert all(c[0] == "optimization" and c[2] == 10000 for c in calls[1:])


def test_fixed_learning_rate_skips_the_search_and_max_iterations_is_exact():
    # grad_samples as LONG's: the program of the fits above (it is compiled once per
    # density, method and grad_samples; eta and the counts are its arguments), and a count
    # of gradients that is not the iterations'.
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = fit_advi(_diag_gaussian, DIAG, np.zeros(3), jax.random.key(0), learning_rate=0.1,
                     max_iterations=250, tol_rel_obj=0.0, grad_samples=10)
    assert r.iterations == 250 and not r.converged and r.learning_rate == 0.1
    assert r.n_grad_evals == 250 * 10
    assert len(r.elbo_trace) == 3  # after 100, 200 and 250 iterations


def test_entropy_is_the_gaussian_entropy():
    rng = np.random.default_rng(0)
    rho = np.tril(rng.normal(size=(3, 3)))
    L = np.tril(rho, -1) + np.diag(np.exp(np.diag(rho)))
    expected = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * L @ L.T)[1]
    np.testing.assert_allclose(entropy("fullrank", rho), expected, rtol=1e-12)
    omega = rng.normal(size=3)
    expected = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.diag(np.exp(2 * omega)))[1]
    np.testing.assert_allclose(entropy("meanfield", omega), expected, rtol=1e-12)


def test_kernel_api_and_a_non_finite_gradient_is_skipped():
    # The blackjax-like pieces: init -> step -> sample; a step whose gradient is not finite
    # leaves the state unchanged and says so (a value, not an exception, inside jit).
    f = lambda x: jnp.where(x[0] > 100.0, -jnp.inf, -0.5 * jnp.sum(x**2))
    state = init(jnp.array([1e6, 0.0]))
    step = jax.jit(build_step(f, "meanfield"))
    new, info = step(jax.random.key(0), state, 0.1)
    assert bool(info.skipped)
    np.testing.assert_array_equal(new.mu, state.mu)
    good, info = step(jax.random.key(0), init(jnp.zeros(2)), 0.1)
    assert not bool(info.skipped) and isinstance(good, ADVIState)
    assert sample(jax.random.key(1), good, 7, "meanfield").shape == (7, 2)


def test_non_finite_elbo_at_the_start_is_a_user_error():
    with pytest.raises(PplcError, match="ELBO at the initial values is not finite"):
        fit_advi(lambda x, d: -jnp.inf * jnp.sum(x**2), {}, np.zeros(2), jax.random.key(0))


def test_bad_method():
    with pytest.raises(ValueError, match="method"):
        fit_advi(_diag_gaussian, DIAG, np.zeros(3), jax.random.key(0), method="lowrank")


def test_pareto_k_says_when_the_approximation_is_far_from_the_posterior():
    """An ELBO that stopped changing says nothing of how far q is from p; the PSIS k-hat of
    p/q at the draws does (Yao et al. 2018). Where q's family holds the target, q is p and
    the ratios are flat (k-hat 0.11 measured, seed 0). Mean-field q of a Gaussian with
    correlation 0.99 has the sd sqrt(1 - 0.99^2) along the long axis instead of sqrt(1.99):
    the ratios' true tail index is 1 - 0.0199 / 1.99 = 0.99 (k-hat 0.80 measured already at
    correlation 0.95), far above 0.7, and the fit warns in plain words."""
    exact = _long_fit(_diag_gaussian, DIAG, np.zeros(3), jax.random.key(0))
    assert exact.pareto_k < 0.5
    cov = np.array([[1.0, 0.99], [0.99, 1.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        far = fit_advi(_gaussian, {"Q": np.linalg.inv(cov)}, np.zeros(2), jax.random.key(2),
                       **LONG)
    assert far.pareto_k > 0.7
    assert any("far from the posterior" in str(w.message) for w in caught)


def test_a_fit_is_one_program_and_other_settings_compile_nothing(count_compiles):
    """The initial ELBO, the eta search, every chunk and the final draws are one compiled
    program (advi.py's docstring); before, four programs and six eager key operations
    (benchmarks/advi_compile.md). Eta, the step counts, the number of draws and the
    averaging are its runtime arguments: other settings compile nothing."""
    def quartic(x, data):   # a density of this test's own: its program is compiled here
        return -0.5 * jnp.sum(((x - data["m"]) / data["s"]) ** 2) - 1e-3 * jnp.sum(x ** 4)

    keys = [jax.random.key(seed) for seed in range(3)]   # (making a key is a program too)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with count_compiles() as first:
            fit_advi(quartic, DIAG, np.zeros(3), keys[0], num_draws=50, max_iterations=300)
        with count_compiles() as again:
            fit_advi(quartic, DIAG, np.zeros(3), keys[1], num_draws=130, eval_elbo=40,
                     adapt_iter=20, average_iterates=False, max_iterations=200)
            fit_advi(quartic, DIAG, np.zeros(3), keys[2], learning_rate=0.5,
                     max_iterations=150, tol_rel_obj=0.0)
    assert len(first) == 1
    assert again == []
