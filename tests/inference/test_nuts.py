"""NUTS recovers known distributions; diagnostics (divergences, tree depth) mean what they say.

Tolerances come from the Monte Carlo standard error, MCSE = sd / sqrt(ESS) with ESS from
ArviZ (rank-normalized bulk ESS over all chains). A check |estimate - truth| < 4 MCSE fails
with probability about 6e-5 per check if the sampler is right and the CLT holds; the seeds
are fixed, so the tests are deterministic, and a wrong sampler (e.g. a biased proposal or a
wrong U-turn rule) is off by many MCSEs at these sample sizes.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

from pplc.inference import build_kernel, init, sample_nuts


def _mcse_check(draws, truth, what):
    """|mean(draws) - truth| < 4 MCSE for a (chains, draws) array of a scalar quantity."""
    ess = float(az.ess(np.asarray(draws)))
    mcse = np.std(draws) / np.sqrt(ess)
    err = abs(np.mean(draws) - truth)
    assert err < 4 * mcse, f"{what}: |{np.mean(draws):.4f} - {truth:.4f}| = {err:.4g} >= 4 MCSE = {4 * mcse:.4g} (ESS {ess:.0f})"


def _check_moments(positions, mean, var):
    """Means, and variances through the second moment y = (x - mean)^2, whose MCSE is sd(y)/sqrt(ESS(y))."""
    for i in range(positions.shape[-1]):
        x = positions[..., i]
        _mcse_check(x, mean[i], f"mean[{i}]")
        _mcse_check((x - mean[i]) ** 2, var[i], f"var[{i}]")


def _std_normal(x, data):
    return -0.5 * jnp.sum(x**2)


def test_standard_normal_10d():
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-2, 2, (4, 10))
    r = sample_nuts(_std_normal, {}, x0, jax.random.key(0), num_warmup=500, num_samples=1000)
    _check_moments(r.positions, np.zeros(10), np.ones(10))
    assert r.stats["diverging"].sum() == 0


def _correlated(x, data):
    z = jnp.linalg.solve(data["chol"], x - data["mu"])
    return -0.5 * jnp.sum(z**2)


def test_correlated_gaussian_2d():
    # Non-unit scales (3 and 0.2) and correlation 0.9: the diagonal metric fixes the scales,
    # NUTS has to handle the correlation.
    sd = np.array([3.0, 0.2])
    corr = np.array([[1.0, 0.9], [0.9, 1.0]])
    cov = corr * np.outer(sd, sd)
    mu = np.array([1.0, -2.0])
    data = {"chol": np.linalg.cholesky(cov), "mu": mu}
    r = sample_nuts(_correlated, data, np.zeros((4, 2)), jax.random.key(1), num_warmup=500, num_samples=1000)
    _check_moments(r.positions, mu, np.diag(cov))
    # The covariance through y = (x0 - mu0)(x1 - mu1), same MCSE argument.
    y = (r.positions[..., 0] - mu[0]) * (r.positions[..., 1] - mu[1])
    _mcse_check(y, cov[0, 1], "cov[0, 1]")


def _normal_mean(x, data):
    # mu ~ Normal(m0, s0); y_i ~ Normal(mu, sigma), sigma known.
    mu = x[0]
    prior = -0.5 * ((mu - data["m0"]) / data["s0"]) ** 2
    return prior - 0.5 * jnp.sum(((data["y"] - mu) / data["sigma"]) ** 2)


def test_conjugate_normal_mean():
    rng = np.random.default_rng(42)
    sigma, m0, s0, n = 2.0, 1.0, 3.0, 50
    y = rng.normal(0.7, sigma, n)
    # Exact posterior: precision = 1/s0^2 + n/sigma^2; mean = (m0/s0^2 + sum(y)/sigma^2) / precision.
    precision = 1 / s0**2 + n / sigma**2
    post_mean = (m0 / s0**2 + y.sum() / sigma**2) / precision
    post_var = 1 / precision
    data = {"y": y, "sigma": np.array(sigma), "m0": np.array(m0), "s0": np.array(s0)}
    r = sample_nuts(_normal_mean, data, np.zeros((4, 1)), jax.random.key(2), num_warmup=500, num_samples=1000)
    _check_moments(r.positions, [post_mean], [post_var])


def _funnel(x, data):
    # Neal's funnel, centered: v ~ Normal(0, 3), x_i ~ Normal(0, exp(v / 2)).
    v, z = x[0], x[1:]
    return -0.5 * (v / 3.0) ** 2 - 0.5 * jnp.sum(z**2) * jnp.exp(-v) - 0.5 * z.shape[0] * v


def test_divergences_detected_on_funnel():
    # The neck of the funnel has curvature no single step size can follow: Stan reports
    # divergences there for every step size that also moves in the mouth.
    x0 = np.random.default_rng(0).uniform(-2, 2, (4, 10))
    r = sample_nuts(_funnel, {}, x0, jax.random.key(3), num_warmup=500, num_samples=500)
    assert r.stats["diverging"].sum() + r.num_warmup_divergences > 0


def test_no_divergences_on_standard_normal():
    # Only the draws are checked. Warmup does diverge a few times on a Gaussian, as Stan's
    # does: right after each dual-averaging restart the first step size is about
    # exp(mu) = 10 * eps, beyond the leapfrog stability limit of 2 * scale.
    r = sample_nuts(_std_normal, {}, np.zeros((2, 10)), jax.random.key(4), num_warmup=300, num_samples=300)
    assert r.stats["diverging"].sum() == 0


def _ill_conditioned(x, data):
    return -0.5 * jnp.sum((x / jnp.linspace(0.01, 1.0, x.shape[0])) ** 2)


def test_tree_depth_cap():
    # tree_depth counts accepted doublings (Stan's treedepth__), so with a cap of 2 it is at
    # most 2, and the leapfrog steps are at most 2^0 + 2^1 = 3. The target is so badly
    # scaled for a unit metric (no warmup) that uncapped trajectories would be far longer,
    # so the cap must bind.
    r = sample_nuts(_ill_conditioned, {}, np.full((2, 5), 0.01), jax.random.key(5),
                    num_warmup=0, num_samples=200, max_tree_depth=2)
    assert r.stats["tree_depth"].max() == 2
    assert r.stats["n_steps"].max() == 3
    assert np.all(r.stats["n_steps"] <= 2 ** (r.stats["tree_depth"] + 1) - 1)


def test_kernel_divergence_info():
    # One transition from the funnel's neck with a huge step diverges, and the chain stays put.
    f = jax.value_and_grad(lambda x: _funnel(x, None))
    kernel = jax.jit(build_kernel(f, divergence_threshold=1000.0))
    state = init(jnp.concatenate([jnp.array([-6.0]), jnp.full(9, 0.01)]), f)
    new, info = kernel(jax.random.key(0), state, 5.0, jnp.ones(10))
    assert bool(info.is_divergent)
    assert int(info.tree_depth) == 0 and int(info.num_steps) == 1
    np.testing.assert_array_equal(new.position, state.position)


def test_kernel_compiles_to_one_loop_without_copies_of_its_checkpoints():
    # Machinery per leapfrog step (issue 16, benchmarks/profile_notes.md): XLA:CPU runs a
    # while loop's body op by op through its thunk executor (3-5 us per NUTS leaf) unless the
    # loop is compiled as one function ("small" loops; pplc/jax_x64.py raises the size
    # limit), and a checkpoint row read after the array was updated in place makes XLA copy
    # the whole (max_depth + 1, dim) array at every leaf (2 of them, before this was fixed).
    f = jax.value_and_grad(_std_normal_1arg)
    kernel = build_kernel(f, max_tree_depth=10)
    text = jax.jit(kernel).lower(jax.random.key(0), init(jnp.zeros(7), f), 0.3, jnp.ones(7)).compile().as_text()
    entry = text[text.index("\nENTRY"):]
    assert " while(" not in entry and 'xla_cpu_small_call="true"' in entry
    per_leaf = [line for line in text.splitlines() if "= f64[11,7]{1,0} copy(" in line and "while/body" in line]
    assert per_leaf == [], per_leaf


def _std_normal_1arg(x):
    return -0.5 * jnp.sum(x**2)


def test_vmapped_kernel_compiles_to_one_loop():
    # chain_method="vectorized": vmap makes each chain's checkpoint row write a scatter, which
    # XLA:CPU never compiles into a one-function loop; the kernel's batching rule writes rows
    # by a select instead (eight schools: 2.5 -> 1.1 us of machinery per step).
    f = jax.value_and_grad(_std_normal_1arg)
    kernel = jax.vmap(build_kernel(f, max_tree_depth=10), in_axes=(0, 0, None, None))
    states = jax.vmap(lambda x: init(x, f))(jnp.zeros((2, 7)))
    text = jax.jit(kernel).lower(jax.random.split(jax.random.key(0)), states, 0.3, jnp.ones(7)).compile().as_text()
    entry = text[text.index("\nENTRY"):]
    assert " while(" not in entry and 'xla_cpu_small_call="true"' in entry
