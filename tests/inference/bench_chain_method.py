"""Benchmark (not a test): chain methods and NUTS overhead on this machine.

Run: python tests/inference/bench_chain_method.py   (prints a table; takes ~1-2 minutes)

Measures warm warmup+sampling seconds (compile excluded) of 4 chains x (1000 + 1000) for
"vectorized", "sequential" and "parallel", on a cheap density (eight schools, noncentered,
10-d) and an expensive one (logistic regression, 5000 rows x 5 covariates plus 50 group
intercepts, noncentered), and the overhead of the sampler: sampling wall time divided by
n_grad_evals x the cost of one gradient evaluated inside a compiled loop, on a 1000 x 10
linear regression with the sequential method.
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from pplc.inference import sample_nuts  # noqa: E402

Y8 = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
S8 = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(x, data):
    mu, log_tau, z = x[0], x[1], x[2:]
    tau = jnp.exp(log_tau)
    theta = mu + tau * z
    lp = -0.5 * (mu / 5.0) ** 2
    lp += -jnp.log1p((tau / 5.0) ** 2) + log_tau  # half-Cauchy(0, 5) on tau, log-Jacobian
    lp += -0.5 * jnp.sum(z**2)
    return lp - 0.5 * jnp.sum(((data["y"] - theta) / data["sigma"]) ** 2)


def logistic(x, data):
    k, g = data["X"].shape[1], data["n_groups"].shape[0]
    beta, mu_a, log_sa, z = x[:k], x[k], x[k + 1], x[k + 2 : k + 2 + g]
    alpha = mu_a + jnp.exp(log_sa) * z
    eta = data["X"] @ beta + alpha[data["group"]]
    lp = jnp.sum(data["y"] * eta - jnp.logaddexp(0.0, eta))
    lp += -0.5 * jnp.sum(beta**2) - 0.5 * mu_a**2 - 0.5 * jnp.sum(z**2)
    lp += -0.5 * jnp.exp(log_sa) ** 2 + log_sa  # half-normal(0, 1) on sigma_a
    return lp


def linreg(x, data):
    beta, log_s = x[:-1], x[-1]
    r = (data["y"] - data["X"] @ beta) / jnp.exp(log_s)
    return -0.5 * jnp.sum(r**2) - data["y"].shape[0] * log_s - 0.5 * jnp.sum(beta**2)


def logistic_data(rng, n=5000, k=5, g=50):
    X = rng.normal(size=(n, k))
    group = rng.integers(0, g, n)
    alpha = rng.normal(0, 1, g)
    eta = X @ rng.normal(0, 0.5, k) + alpha[group]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(np.float64)
    return {"X": X, "y": y, "group": group.astype(np.int32), "n_groups": np.zeros(g)}, k + 2 + g


def run(fn, data, dim, method, seed=0):
    x0 = np.random.default_rng(seed).uniform(-2, 2, (4, dim))
    sample_nuts(fn, data, x0, jax.random.key(seed), num_warmup=20, num_samples=20, chain_method=method)  # compile
    r = sample_nuts(fn, data, x0, jax.random.key(seed), chain_method=method)
    return r


def grad_in_loop_seconds(fn, data, dim, n=2000):
    """Cost of one gradient inside a compiled loop, each evaluation depending on the last."""
    g = jax.grad(lambda x, d: fn(x, d))

    @jax.jit
    def loop(x, d):
        return jax.lax.fori_loop(0, n, lambda i, x: x + 1e-9 * g(x, d), x)

    x = jnp.zeros(dim) + 0.1
    jax.block_until_ready(loop(x, data))
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        jax.block_until_ready(loop(x, data))
        best = min(best, time.perf_counter() - t)
    return best / n


def main():
    rng = np.random.default_rng(0)
    models = {
        "eight_schools": (eight_schools, {"y": Y8, "sigma": S8}, 10),
        "hier_logistic": (logistic, *logistic_data(rng)),
    }
    methods = sys.argv[1:] or ["vectorized", "sequential", "parallel"]
    for name, (fn, data, dim) in models.items():
        for method in methods:
            r = run(fn, data, dim, method)
            wall = r.warmup_seconds + r.sampling_seconds
            print(f"{name:15s} {method:11s} warm {wall:7.2f} s  (warmup {r.warmup_seconds:.2f}, sampling "
                  f"{r.sampling_seconds:.2f})  grads {r.n_grad_evals}  compile {r.compile_seconds:.2f} s", flush=True)

    X = rng.normal(size=(1000, 10))
    data = {"X": X, "y": X @ rng.normal(size=10) + rng.normal(size=1000)}
    r = run(linreg, data, 11, "sequential")
    per_grad = grad_in_loop_seconds(linreg, data, 11)
    sampling_grads = int(r.stats["n_steps"].sum())
    print(f"linreg 1000x10 sequential: in-loop grad {per_grad * 1e6:.2f} us; sampling {r.sampling_seconds:.3f} s "
          f"for {sampling_grads} grads -> overhead {r.sampling_seconds / (sampling_grads * per_grad):.2f}; "
          f"warmup+sampling {r.warmup_seconds + r.sampling_seconds:.3f} s for {r.n_grad_evals} grads -> "
          f"{(r.warmup_seconds + r.sampling_seconds) / (r.n_grad_evals * per_grad):.2f}")


if __name__ == "__main__":
    main()
