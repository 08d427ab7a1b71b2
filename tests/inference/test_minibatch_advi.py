"""Minibatch ADVI (inference/minibatch.py): the gradient estimator is unbiased, the fit
finds the optimum full-batch ADVI seeks, and what cannot be subsampled is refused with its
location.

The data: a logistic regression with N = 10^5 rows and K = 3 covariates, simulated with a
fixed seed (benchmarks/minibatch.py runs 10^6 and 10^7).
"""

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from pplc.errors import PplcError
from pplc.inference.batches import BatchSource
from pplc.inference.minibatch import head_data, minibatch_fit, plan_minibatch
from pplc.inference.minibatch_advi import full_gradient
from benchmarks.minibatch import MODEL as LOGREG, laplace_in_memory   # the model measured there

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


def test_posterior_means_match_the_mean_field_optimum(logreg):
    """Minibatch ADVI at N/B = 1000 (B = 100, as 10^6 rows at B = 1000: the batch noise in
    posterior sds, and so the difficulty, depends on N/B; benchmarks/minibatch.py runs
    10^6) against the optimum that full-batch mean-field ADVI seeks, eta = 1, Stan's
    convergence rule, in units of the optimum's sds (about 0.008 here).

    The optimum, in closed form: the posterior of a logistic regression with 10^5 rows is
    close to Gaussian (the Laplace approximation: mode and precision H by Newton's method
    over all rows, benchmarks/minibatch.py `laplace_in_memory`), and the mean-field
    Gaussian closest to it in KL(q || p) has its mean and sds 1 / sqrt(H_ii). (Before, the
    reference was a full-batch ADVI fit: one more compiled program and thousands of
    passes over the rows, issue 16 item 7, and 0.06 sd of Monte Carlo error of its own.)

    Monte Carlo error, measured (docs/scaling.md): minibatch fits with the control variate
    (seeds 0-4) differed from a full-batch fit by up to 0.25 sd, root mean square 0.10, of
    which the full-batch fit's own error was about 0.06; with the phase's steps in q's sds
    and its windows, as now, keys 0-1 gave means within 0.13 sd and sds 0.99-1.07 times
    the Laplace approximation's (tests/inference/test_minibatch_scales.py's oracle). The
    test allows 0.45 sd, over 4.5 times the error (a coordinate fails by chance with
    probability below 1e-5). Without the control variate (control_variate=False, the same
    schedule) the means were 1.3-1.7 sd off in the worst coordinate (sds up to 3.1 times),
    which this bound fails.

    The sds: the test allows ratios in (0.7, 1.5) (one-draw gradients move mean-field sds
    more than means: 0.90-1.29 times a full-batch fit's over those 5 fits). A likelihood
    weighted 1 instead of N/B (a fit to 0.1% of the rows) has sds 30 times wider."""
    conditioned, data = logreg
    key = jax.random.key(0)
    init = np.zeros(conditioned.dim)
    mode, H = laplace_in_memory(data, steps=12)
    optimum = SimpleNamespace(mean=mode, scale_or_cov=1 / np.sqrt(np.diag(H)))
    mini = minibatch_fit(conditioned, data, N // 1000, key, init, learning_rate=1.0,
                         num_draws=10)
    assert mini.converged
    sd = optimum.scale_or_cov
    assert np.all(np.abs(mini.mean - optimum.mean) < 0.45 * sd), (mini.mean - optimum.mean) / sd
    ratio = mini.scale_or_cov / sd
    assert np.all((0.7 < ratio) & (ratio < 1.5)), ratio
    # The ELBO optimum: the full-data ELBO at both, on the same 500 draws of eps
    # (common random numbers, so the estimates' noise mostly cancels). Against the KL
    # between the two: a mean 0.45 sd off costs 0.1 nats a coordinate, an sd ratio r
    # costs (r^2 - 1) / 2 - log r (0.06 nats at r = 1.3): under 0.7 nats over 4
    # coordinates at the bounds above. The test allows 1; a weight of 1 is hundreds of
    # nats off.
    eps = jax.random.normal(jax.random.key(9), (500, conditioned.dim))
    # the draws one at a time (lax.map): a vmap would hold 500 copies of the 10^5 rows
    log_p = jax.jit(lambda draws: jax.lax.map(
        lambda u: conditioned.lowered.log_density(u, conditioned.data), draws))
    elbo = lambda fit: float(jnp.mean(log_p(fit.mean + eps * fit.scale_or_cov))
                             + np.sum(np.log(fit.scale_or_cov)))   # + a shared constant
    assert abs(elbo(mini) - elbo(optimum)) < 1.0, (elbo(mini), elbo(optimum))


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
    """`pplc fit --batch-size` on a folder of .npy files and sizes in JSON (streamed), and a
    located refusal of a batch larger than the rows, exit status 1 with no traceback."""
    from pplc.cli import main

    rng = np.random.default_rng(0)
    n = 2000
    X = rng.normal(size=(n, K))
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5, 0.25]))))).astype(int)
    (tmp_path / "rows").mkdir()   # a folder of NAME.npy files, streamed (pplc/streaming.py)
    np.save(tmp_path / "rows" / "X.npy", X)
    np.save(tmp_path / "rows" / "y.npy", y)
    (tmp_path / "sizes.json").write_text(f'{{"N": {n}, "K": {K}}}')
    (tmp_path / "m.ppl").write_text(LOGREG)
    args = ["fit", str(tmp_path / "m.ppl"), "--data", str(tmp_path / "sizes.json"), "--data",
            str(tmp_path / "rows"), "--quiet",
            "--no-cache", "--max-iterations", "300", "--draws", "100"]
    assert main(args + ["--batch-size", "100"]) == 0
    assert "beta[2]" in capsys.readouterr().out
    assert main(args + ["--batch-size", str(n + 1)]) == 1
    err = capsys.readouterr().err
    assert "m.ppl:5:" in err and f"between 1 and N = {n}" in err and "Traceback" not in err


def _write_npz(path, n):
    """X (n, K), y (n,) and the sizes in an uncompressed .npz (numpy.savez)."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(n, K))
    y = rng.random(n) < 1 / (1 + np.exp(-(0.3 + X @ np.array([1.0, -0.5, 0.25]))))
    np.savez(path, N=n, K=K, X=X, y=y.astype(np.int64))
    return path


# Runs its command and prints the command's peak RSS (KiB). Why a go-between: Linux counts
# in a child's ru_maxrss the peak RSS of the process it was forked (vforked) from, up to
# the exec; the test process holds hundreds of MiB, this one about 10.
_MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.exit(r.returncode)")


def _peak_rss_mib(args, cache=None):
    """Run the pplc CLI from this checkout; (exit status, output, its peak RSS in MiB).
    `cache`: the folder of its compiled programs (PPLC_CACHE_DIR)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "pplc.cli",
                          *map(str, args)], cwd=Path(__file__).resolve().parents[2],
                         text=True, capture_output=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore",
                              # glibc's per-thread malloc arenas (XLA's threads) make the
                              # peak of identical runs differ by up to ~40 MiB (measured
                              # 390-431 MiB at one N); two arenas: 400-417 over 3 runs.
                              "MALLOC_ARENA_MAX": "2",
                              # a fixed threshold: every block over 128 KiB (a pass's 4 MiB
                              # of rows, stacked batches) is its own mapping, returned when
                              # freed. glibc's default raises the threshold after the first
                              # such free, so the pass's blocks came from the heap and grew
                              # it over the first groups: ~+20 MiB at 10N, not at N
                              "MALLOC_MMAP_THRESHOLD_": "131072",
                              **({"PPLC_CACHE_DIR": str(cache)} if cache else {})})
    peak = [line for line in out.stdout.splitlines() if line.startswith("PEAK ")]
    return out.returncode, out.stdout + out.stderr, int(peak[-1].split()[1]) / 1024


def test_cli_streams_batches_from_npz_with_bounded_memory(tmp_path):
    """`pplc fit --batch-size` with the arrays in an uncompressed .npz reads B rows a step
    and B at a time in the control variate's passes, never a whole array: its peak RSS
    (ru_maxrss of the child, which counts the mapped file's pages it touched) is the same
    at N = 2*10^5 and 2*10^6 rows. The bound, 30 MiB more at 10N: the 10N file holds 61 MiB
    (X 46, y 15). Measured: 395 and 390 MiB streamed; the same runs in memory (the files
    read whole, as before streaming) 816 and 966 MiB, which fails. Each run converges and
    runs the control-variate phase (two passes over the rows).

    Both measured runs load their programs from a cache that unmeasured runs at the same
    two N filled first. Compiling in the measured process put XLA's compile memory (~100
    MiB, spread over malloc arenas) into the peak: identical runs differed by up to 40 MiB,
    which failed the bound by chance (397 and 427 MiB in one CI run), and it hid a whole
    file read under the compile peak. Now (load ~1): 288-303 MiB at both N; with `take`
    reading the whole file, 295 and 347 MiB, which fails.

    What is compared is the least peak of each N: a pair (N, then 10N) over the bound is
    measured once more, interleaved, and the bound holds on the minimum of each N's runs.
    Why: a run's peak still carries up to ~50 MiB of timing noise when the other xdist
    worker keeps the second core busy (340 vs 386 MiB in one CI run); the noise only adds
    to a peak, so the minimum of two runs sheds it, while a whole-file read raises every
    run at 10N (each of its two is over). The second pair runs only when the first fails,
    so a passing run costs what it did. The children's fixed malloc mmap threshold
    (_peak_rss_mib) takes out a rise at 10N that was not noise. Measured, N then 10N, on
    2 cores with two busy loops beside (load 5-9): before, 321/343, 334/349, 336/344,
    338/346 MiB; now 330/325, 330/340, 331/324; with the rows' reader holding the whole
    array (_RowFile read whole once, then indexed) 329/412, and in this test 328/413 then
    334/401, which fails."""
    import json
    model = tmp_path / "m.ppl"
    model.write_text(LOGREG)
    cache = tmp_path / "programs"
    small, large = 200_000, 2_000_000
    files = {n: _write_npz(tmp_path / f"rows_{n}.npz", n) for n in (small, large)}
    peaks, outputs = {small: [], large: []}, []

    def fit(n, measured):
        summary = tmp_path / f"s_{n}_{len(peaks[n])}_{int(measured)}.json"
        status, out, peak = _peak_rss_mib(
            ["fit", model, "--data", files[n], "--method", "advi", "--batch-size", 100,
             "--quiet", "--draws", 100, "--max-iterations", 3000, "--summary", summary],
            cache=cache)
        assert status == 0, out
        if measured:
            peaks[n].append(peak)
            outputs.append((n, out, summary))

    for n in (small, large):   # these compile the programs: not measured
        fit(n, False)
    for _ in range(2):
        for n in (small, large):
            fit(n, True)
        if min(peaks[large]) < min(peaks[small]) + 30:
            break
    print("peak RSS (MiB) by N:", peaks)
    assert min(peaks[large]) < min(peaks[small]) + 30, peaks
    for n, out, summary in outputs:
        assert "streamed" in out and "beta[2]" in out, out
        summary = json.loads(summary.read_text())
        # the two passes counted as N/B batch gradients each: the phase ran
        assert summary["n_grad_evals"] > 2 * n // 100, summary["n_grad_evals"]
        means = [summary["parameters"][k]["mean"] for k in ("alpha", "beta[0]")]
        assert np.allclose(means, [0.3, 1.0], atol=0.05), means   # the simulation's


def test_streamed_rows_are_checked_before_the_fit(tmp_path):
    """A value the declarations refuse in a row no batch has read yet (NaN in X, in the
    second block of check_rows) is refused before the fit, naming the entry's row in the
    whole array, not in its block."""
    from pplc.inference.minibatch import CHECK_ROWS, fit_streaming

    n = CHECK_ROWS + 500
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, K))
    X[CHECK_ROWS + 7, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", (rng.random(n) < 0.5).astype(np.int64))
    data = {"N": n, "K": K, **{k: np.load(tmp_path / f"{k}.npy", mmap_mode="r")
                               for k in ("X", "y")}}
    with pytest.raises(PplcError, match=rf"X\[{CHECK_ROWS + 7},1\]' is missing") as info:
        fit_streaming(pplc.compile(LOGREG), data, 100, max_iterations=100)
    assert f"in rows {CHECK_ROWS}..{n - 1}" in str(info.value)
