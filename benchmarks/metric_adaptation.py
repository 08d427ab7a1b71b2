"""ESS per gradient of the metric adaptations (issue 16 item 3): diag, dense, diag-grad, low-rank.

Why ESS per gradient: it is what the metric changes; the cost of a gradient and the
sampler's machinery are measured elsewhere (gradfloor.py, profile_notes.md). Each run is
4 chains x (1000 warmup + 1000 draws; --warmup and --seed change them), float64, chains
sequential, on a JAX log density written directly (the same target the .ppl model lowers
to), so a run here isolates the adaptation. Gradients count every leapfrog step of warmup and sampling and
the step-size searches (MCMCResult.n_grad_evals), as nutpie's figures in the issue do.

Models:
  * corr_gaussian_100: benchmarks/models/corr_gaussian.ppl's target, a 100-d Gaussian with a
    random rotation and standard deviations 0.1..10 along its axes (datasets.py, seed 0).
  * scaled_gaussian_100: independent coordinates, standard deviations 0.01..100 (what a
    diagonal metric can fix entirely).
  * collinear_regression: y = a + X b + e, N rows and K = 24 predictors that share one
    latent factor (pairwise correlation ~0.96), b ~ N(0, 5), a ~ N(0, 5), sigma ~
    half-N(0, 1) sampled as log sigma; the posterior of b is strongly correlated.

Run: python -m benchmarks.metric_adaptation [--n-rows 1000] [--metrics diag,dense,...]
Prints a markdown table; benchmarks/metric_adaptation.md holds the measured one.
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from benchmarks.datasets import corr_gaussian_scale_tril  # noqa: E402
from pplc.inference import sample_nuts  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az  # noqa: E402


def corr_gaussian(dim: int = 100):
    chol = np.asarray(corr_gaussian_scale_tril(dim, 0))

    def logdensity(x, data):
        z = jax.scipy.linalg.solve_triangular(data["L"], x, lower=True)
        return -0.5 * jnp.sum(z**2)

    return logdensity, {"L": chol}, dim


def scaled_gaussian(dim: int = 100):
    sd = np.geomspace(0.01, 100.0, dim)

    def logdensity(x, data):
        return -0.5 * jnp.sum((x / data["sd"]) ** 2)

    return logdensity, {"sd": sd}, dim


def collinear_regression(n_rows: int = 1000, k: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n_rows, 1))
    x = factor + 0.2 * rng.normal(size=(n_rows, k))
    beta = rng.normal(size=k)
    y = 1.0 + x @ beta + rng.normal(size=n_rows)

    def logdensity(theta, data):
        a, b, log_sigma = theta[0], theta[1:-1], theta[-1]
        sigma = jnp.exp(log_sigma)
        resid = data["y"] - a - data["x"] @ b
        lik = -data["y"].shape[0] * log_sigma - 0.5 * jnp.sum(resid**2) / sigma**2
        prior = -0.5 * (a / 5.0) ** 2 - 0.5 * jnp.sum((b / 5.0) ** 2) - 0.5 * sigma**2 + log_sigma
        return lik + prior

    return logdensity, {"x": x, "y": y}, k + 2


def write_brms_data(path, n_rows: int = 5000, k: int = 24, noise: float = 0.03, seed: int = 0) -> str:
    """Data of benchmarks/models/collinear_regression.ppl, the brms-style regression of issue 16:
    24 predictors = one shared factor + 0.03 x independent noise (pairwise correlation
    1 / (1 + 0.03^2) = 0.9991), not centered; with Stan's diagonal metric NUTS takes ~700
    leapfrog steps per draw on it (the issue's "~800 gradients per iteration")."""
    import json

    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(n_rows, 1))
    x = factor + noise * rng.normal(size=(n_rows, k))
    beta = rng.normal(size=k) * 0.5
    y = 1.0 + x @ beta + rng.normal(size=n_rows)
    with open(path, "w") as f:
        json.dump({"N": n_rows, "K": k, "X": x.tolist(), "y": y.tolist()}, f)
    return str(path)


def kernel_timing(dims=(200, 500, 1000, 2000), rank: int = 50, steps: int = 2000, repeats: int = 5) -> None:
    """Seconds per leapfrog step (gradient of an isotropic Gaussian, ~free) with the metric
    applied densely, (dim, dim), and packed at `rank`: what the O(dim * rank) kernel saves.
    Interleaved repeats, the minimum kept (the machine is shared)."""
    from pplc.inference.integrator import IntegratorState, velocity_verlet
    from pplc.inference.metric import identity_packed, low_rank_dense

    f = jax.value_and_grad(lambda x: -0.5 * jnp.dot(x, x))
    step = velocity_verlet(f)

    @jax.jit
    def run(state, metric):
        return jax.lax.fori_loop(0, steps, lambda i, s: step(s, 1e-3, metric), state)

    print("| dim | rank | dense us / step | packed us / step | dense / packed |")
    print("|---|---|---|---|---|")
    for dim in dims:
        packed = identity_packed(dim, rank)
        rng = np.random.default_rng(0)
        u, _ = np.linalg.qr(rng.normal(size=(dim, rank)))
        packed = packed.at[0, 1:].set(u.T).at[1, 0, :rank].set(np.exp(rng.normal(size=rank)))
        dense = low_rank_dense(packed)
        x = jnp.asarray(rng.normal(size=dim))
        lp, g = f(x)
        state = IntegratorState(x, jnp.asarray(rng.normal(size=dim)), lp, g)
        best = {"dense": np.inf, "packed": np.inf}
        for metric, m in (("dense", dense), ("packed", packed)):
            jax.block_until_ready(run(state, m))  # compile
        for _ in range(repeats):
            for metric, m in (("dense", dense), ("packed", packed)):
                t = time.perf_counter()
                jax.block_until_ready(run(state, m))
                best[metric] = min(best[metric], (time.perf_counter() - t) / steps)
        print(f"| {dim} | {rank} | {best['dense'] * 1e6:.2f} | {best['packed'] * 1e6:.2f} "
              f"| {best['dense'] / best['packed']:.1f}x |", flush=True)


def measure(model, metric: str, seed: int = 0, num_warmup: int = 1000) -> dict:
    logdensity, data, dim = model
    init = np.random.default_rng(seed).uniform(-2, 2, size=(4, dim))
    t0 = time.perf_counter()
    r = sample_nuts(logdensity, data, init, jax.random.key(seed), num_warmup=num_warmup, num_samples=1000,
                    metric=metric, chain_method="sequential")
    wall = time.perf_counter() - t0
    ess = np.asarray(az.ess(az.convert_to_dataset({"x": r.positions}))["x"].values)
    steps = r.stats["n_steps"]
    return {"metric": metric, "grads": r.n_grad_evals, "min_ess": float(ess.min()),
            "ess_per_grad": float(ess.min()) / r.n_grad_evals, "steps_per_draw": float(steps.mean()),
            "divergences": int(r.stats["diverging"].sum()), "wall_s": wall,
            "sampling_s": r.sampling_seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-rows", type=int, default=1000)
    parser.add_argument("--metrics", default="diag,dense,diag-grad,low-rank")
    parser.add_argument("--models", default="corr_gaussian_100,collinear_regression")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--write-brms", metavar="PATH",
                        help="write the brms-style regression's data (5000 x 24) to PATH and stop")
    parser.add_argument("--kernel-timing", action="store_true",
                        help="time a leapfrog step with the dense and the packed low-rank metric")
    args = parser.parse_args()
    if args.kernel_timing:
        kernel_timing()
        return
    if args.write_brms:
        print(write_brms_data(args.write_brms))
        return
    models = {"corr_gaussian_100": lambda: corr_gaussian(100), "scaled_gaussian_100": lambda: scaled_gaussian(100),
              "collinear_regression": lambda: collinear_regression(args.n_rows)}
    print("| model | metric | gradients | min bulk ESS | ESS / gradient | leapfrog steps / draw "
          "| divergences | wall s (compile incl.) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = models[name]()
        for metric in args.metrics.split(","):
            m = measure(model, metric, args.seed, args.warmup)
            print(f"| {name} | {metric} | {m['grads']:,} | {m['min_ess']:.0f} | {m['ess_per_grad']:.2e} "
                  f"| {m['steps_per_draw']:.1f} | {m['divergences']} | {m['wall_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
