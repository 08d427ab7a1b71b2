"""Minibatch ADVI (inference/minibatch.py): the gradient estimator is unbiased, the fit
matches full-batch ADVI, and what cannot be subsampled is refused with its location.

The data: a logistic regression with N = 10^5 rows and K = 3 covariates, simulated with a
fixed seed (benchmarks/minibatch.py runs 10^6 and 10^7).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from pplc.errors import PplcError
from pplc.inference.advi import fit_advi
from pplc.inference.batches import BatchSource
from pplc.inference.minibatch import head_data, minibatch_fit, plan_minibatch
from pplc.inference.minibatch_advi import full_gradient

LOGREG = """
data N: int
data K: int
data X: real[N, K]
data y: int[N]

alpha ~ Normal(0, 5)
beta: real[K] ~ Normal(0, 5)

y ~ Bernoulli(logits=alpha + X @ beta)
"""

N, K, B = 100_000, 3, 1000
U = jnp.array([0.1, 0.5, -0.2, 0.4])   # away from the mode: the gradient is large


@pytest.fixture(scope="module")
def logreg():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(N, K))
    logits = 0.3 + X @ np.array([1.0, -0.5, 0.25])
    y = (rng.random(N) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    data = dict(N=N, K=K, X=X, y=y)
    return pplc.compile(LOGREG).condition(data), data


def test_plan_reuses_the_sharding_decision(logreg):
    conditioned, _ = logreg
    plan = plan_minibatch(conditioned.lowered, B)
    assert (plan.size, plan.extent) == ("N", N)
    assert dict(plan.axes) == dict(conditioned.lowered.plan.sharding.axes) == {"X": 0, "y": 0}
    assert dict(plan.weights) == {"y": N / B}   # the priors keep weight 1


def test_gradient_estimator_is_unbiased(logreg):
    """The mean over M batches of the minibatch gradient at a fixed point equals the full
    gradient. Each coordinate's batch gradients have a sample sd s; their mean has
    standard error s / sqrt(M), and the test allows 4 standard errors (a coordinate fails
    by chance with probability 6e-5). A weight of 1 instead of N/B misses by about N/B
    times the likelihood's gradient, thousands of standard errors."""
    conditioned, data = logreg
    plan = plan_minibatch(conditioned.lowered, B)
    batch_model = conditioned.model.condition(head_data(plan, data))
    weights = dict(plan.weights)
    density = lambda u, d: batch_model.lowered.weighted_log_density(u, d, weights)
    u = U   # away from the mode: the gradient is large
    full = np.asarray(jax.grad(conditioned.unconstrained_log_density)(u))
    M = 400
    source = BatchSource({k: np.asarray(data[k]) for k in plan.axes}, plan.axes, N, B, seed=3)
    batches = source.stacked(M)
    fixed = {k: v for k, v in conditioned.data.items() if k not in plan.axes}
    grads = np.asarray(jax.jit(jax.vmap(lambda b: jax.grad(density)(u, {**fixed, **b})))(
        batches))
    se = grads.std(axis=0, ddof=1) / np.sqrt(M)
    assert np.all(np.abs(grads.mean(axis=0) - full) < 4 * se), (grads.mean(0), full, se)
    assert np.all(np.abs(full) > 20 * se)   # the check has power: the gradient is not ~0


def test_posterior_means_match_full_batch_advi(logreg):
    """Minibatch ADVI at N/B = 1000 (B = 100, as 10^6 rows at B = 1000: the batch noise in
    posterior sds, and so the difficulty, depends on N/B; benchmarks/minibatch.py runs
    10^6) against full-batch ADVI, both mean-field, eta = 1, Stan's convergence rule, in
    units of the full-batch fit's sds (about 0.008 here).

    Monte Carlo error, measured (docs/scaling.md): full-batch fits with seeds 1-4 differ
    from seed 0's by up to 0.13 sd in the means (an error of about 0.06 sd a fit), and
    minibatch fits with the control variate (seeds 0-4) by up to 0.25 sd, root mean square
    0.10: the difference's sd. The test allows 0.45 sd, 4.5 times it (a coordinate fails
    by chance with probability below 1e-5). Without the control variate
    (control_variate=False, the same schedule) the means were 1.3-1.7 sd off in the worst
    coordinate (sds up to 3.1 times), which this bound fails.

    The sds: minibatch over full batch 0.90-1.29 over those 5 fits, full batch over full
    batch 0.84-1.17 (one-draw gradients move mean-field sds more than means); the test
    allows (0.7, 1.5). A likelihood weighted 1 instead of N/B (a fit to 0.1% of the rows)
    has sds 30 times wider."""
    conditioned, data = logreg
    key = jax.random.key(0)
    init = np.zeros(conditioned.dim)
    full = fit_advi(conditioned.lowered.log_density, conditioned.data, init, key,
                    learning_rate=1.0, num_draws=10)
    mini = minibatch_fit(conditioned, data, N // 1000, key, init, learning_rate=1.0,
                         num_draws=10)
    assert mini.converged
    sd = full.scale_or_cov
    assert np.all(np.abs(mini.mean - full.mean) < 0.45 * sd), (mini.mean - full.mean) / sd
    ratio = mini.scale_or_cov / sd
    assert np.all((0.7 < ratio) & (ratio < 1.5)), ratio
    # The ELBO optimum: the full-data ELBO at both fits, on the same 500 draws of eps
    # (common random numbers, so the estimates' noise mostly cancels). Against the KL
    # between the fits: a mean 0.45 sd off costs 0.1 nats a coordinate, an sd ratio r
    # costs (r^2 - 1) / 2 - log r (0.06 nats at r = 1.3): under 0.7 nats over 4
    # coordinates at the bounds above. The test allows 1; a weight of 1 is hundreds of
    # nats off.
    eps = jax.random.normal(jax.random.key(9), (500, conditioned.dim))
    # the draws one at a time (lax.map): a vmap would hold 500 copies of the 10^5 rows
    log_p = jax.jit(lambda draws: jax.lax.map(
        lambda u: conditioned.lowered.log_density(u, conditioned.data), draws))
    elbo = lambda fit: float(jnp.mean(log_p(fit.mean + eps * fit.scale_or_cov))
                             + np.sum(np.log(fit.scale_or_cov)))   # + a shared constant
    assert abs(elbo(mini) - elbo(full)) < 1.0, (elbo(mini), elbo(full))


@pytest.mark.parametrize("n", [1000, 1003])   # N mod B = 0 and 3: the padded last batch
def test_full_gradient_pass_is_the_gradient_on_all_rows(tmp_path, logreg, n):
    """The control variate's pass (minibatch_advi.full_gradient) reads the rows B at a time
    and gives the gradient of the log density on all of them: equal to rounding, from
    arrays in memory and from .npy files read by pread."""
    conditioned, data = logreg
    rows = {"X": data["X"][:n], "y": data["y"][:n]}
    small = conditioned.model.condition({"N": n, "K": K, **rows})
    plan = plan_minibatch(small.lowered, 100)
    batch_model = small.model.condition(head_data(plan, {"N": n, "K": K, **rows}))
    density = lambda u, d, w: batch_model.lowered.weighted_log_density(u, d, {"y": w})
    exact = np.asarray(jax.grad(small.unconstrained_log_density)(U))
    for name, value in rows.items():
        np.save(tmp_path / f"{name}.npy", value)
    mapped = {k: np.load(tmp_path / f"{k}.npy", mmap_mode="r") for k in rows}
    for arrays in (rows, mapped):
        source = BatchSource(arrays, plan.axes, n, 100, seed=0)
        got, _ = full_gradient(density, {}, source, U)
        np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-9)
    assert set(source.files) == {"X", "y"}


def _refusal(source, data, batch_size=2):
    conditioned = pplc.compile(source).condition(data)
    with pytest.raises(PplcError) as info:
        conditioned.fit("advi", batch_size=batch_size, max_iterations=100)
    return str(info.value)


def test_refuses_local_latents():
    text = _refusal("data N: int\ndata y: real[N]\nz: real[N] ~ Normal(0, 1)\n"
                    "y ~ Normal(z, 1)\n", {"N": 4, "y": [0.1, 0.2, 0.3, 0.4]})
    assert "latent 'z' runs over N" in text and ":3:" in text, text


def test_refuses_recurrences_as_the_plan_says():
    text = _refusal("data T: int\ndata y: real[T]\nrho ~ Normal(0, 1)\n"
                    "for t in range(1, T):\n    y[t] ~ Normal(rho * y[t - 1], 1)\n",
                    {"T": 4, "y": [0.1, 0.2, 0.3, 0.4]})
    assert "recurrence on line 5" in text and ":2:" in text, text


def test_refuses_reads_of_other_rows():
    text = _refusal("data N: int\ndata x: real[N]\ndata y: real[N]\nb ~ Normal(0, 1)\n"
                    "for n in range(1, N):\n    y[n] ~ Normal(b * x[n - 1], 1)\n",
                    {"N": 4, "x": [1.0, 2.0, 3.0, 4.0], "y": [0.1, 0.2, 0.3, 0.4]})
    assert "reads x at another row than its own" in text and ":6:" in text, text


def test_refuses_nothing_to_split():
    text = _refusal("data y: real\nmu ~ Normal(0, 1)\ny ~ Normal(mu, 1)\n", {"y": 0.5},
                    batch_size=1)
    assert "cannot subsample" in text and ":3:" in text, text


def test_refuses_batch_size_for_map():
    conditioned = pplc.compile("data N: int\ndata y: real[N]\nmu ~ Normal(0, 1)\n"
                               "y ~ Normal(mu, 1)\n").condition({"N": 4, "y": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(PplcError, match="batch_size is for method advi or fullrank"):
        conditioned.fit("map", batch_size=2)


def test_streaming_reads_the_rows_of_a_memory_mapped_file(tmp_path, logreg):
    """fit_streaming conditions on a probe of B rows and reads batches from .npy files by
    os.pread: the rows read are the file's rows, and the fit lands where the in-memory
    minibatch fit does (the same batches from the same seed: equal to rounding)."""
    from pplc.inference.minibatch import fit_streaming

    conditioned, data = logreg
    np.save(tmp_path / "X.npy", data["X"])
    np.save(tmp_path / "y.npy", data["y"])
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    y = np.load(tmp_path / "y.npy", mmap_mode="r")
    source = BatchSource({"X": X, "y": y}, {"X": 0, "y": 0}, N, B, seed=0)
    assert set(source.files) == {"X", "y"}   # read by pread, not through the mapping
    index = source.indices()
    batch = source.take(index)
    assert np.array_equal(batch["X"], data["X"][index])
    assert np.array_equal(batch["y"], data["y"][index])
    options = dict(learning_rate=1.0, max_iterations=200, tol_rel_obj=0.0, num_draws=10)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        streamed, head = fit_streaming(conditioned.model, {"N": N, "K": K, "X": X, "y": y},
                                       B, seed=5, **options)
    assert head.lowered.data.sizes["N"] == B
    plan = plan_minibatch(conditioned.lowered, B)
    in_memory = BatchSource({k: data[k] for k in plan.axes}, plan.axes, N, B, seed=5)
    batch_model = conditioned.model.condition(head_data(plan, data))
    density = lambda u, d, w: batch_model.lowered.weighted_log_density(u, d, {"y": w})
    from pplc.inference.minibatch import fit_minibatch_advi
    from pplc.inference.initialize import initial_positions
    init_key, run_key = jax.random.split(jax.random.PRNGKey(5))
    init = initial_positions(batch_model.lowered.log_density, batch_model.data,
                             batch_model.dim, 1, init_key)[0]
    with pytest.warns(RuntimeWarning, match="did not converge"):
        memory = fit_minibatch_advi(density, {}, in_memory, init, run_key, **options)
    np.testing.assert_allclose(streamed.mean, memory.mean, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # 300 iterations may not converge
def test_cli_fit_with_batch_size(tmp_path, capsys):
    """`pplc fit --batch-size` on a data file: the conditioned model's data are JAX arrays
    and its sizes are not among them (both once broke the path), and a located refusal
    is exit status 1 with no traceback."""
    from pplc.cli import main

    rng = np.random.default_rng(0)
    n = 2000
    X = rng.normal(size=(n, K))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5, 0.25]))))).astype(int)
    np.savez(tmp_path / "d.npz", N=n, K=K, X=X, y=y)
    (tmp_path / "m.ppl").write_text(LOGREG)
    args = ["fit", str(tmp_path / "m.ppl"), "--data", str(tmp_path / "d.npz"), "--quiet",
            "--no-cache", "--max-iterations", "300", "--draws", "100"]
    assert main(args + ["--batch-size", "100"]) == 0
    assert "beta[2]" in capsys.readouterr().out
    assert main(args + ["--batch-size", str(n + 1)]) == 1
    err = capsys.readouterr().err
    assert "m.ppl:5:" in err and f"between 1 and N = {n}" in err and "Traceback" not in err

