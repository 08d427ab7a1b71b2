"""ADVI: a Gaussian fitted to the posterior on the unconstrained space by stochastic ELBO ascent.

Why ADVI, as Stan decides it (Kucukelbir+ 2017, "Automatic Differentiation Variational
Inference", JMLR 18): after the model's transforms every parameter lives on R^dim, where a
Gaussian q is a sensible family. Two families:
  * "meanfield": q = N(mu, diag(exp(omega))^2); the state's `rho` is omega = log sd.
  * "fullrank":  q = N(mu, L L^T) with L lower triangular; `rho` holds L's strict lower
    triangle as is and log of its diagonal, so the diagonal stays positive (the upper
    triangle of `rho` is ignored and, receiving zero gradient, stays zero).
The objective is ELBO(q) = E_q[log p(zeta)] + H[q]. The entropy is closed form,
H = sum(log diag L) + dim/2 (1 + log 2 pi); the expectation is estimated with
`grad_samples` reparameterized draws zeta = mu + L eps, eps ~ N(0, I) (Stan's default is
one), and differentiated through the draws (the reparameterization gradient, section 3.3).

Optimizer: Stan's own step sequence (`advi::stochastic_gradient_ascent`), per coordinate
    s_1 = g_1^2,  s_t = 0.1 g_t^2 + 0.9 s_{t-1},  x_t = x_{t-1} + eta t^(-1/2) g_t / (1 + sqrt(s_t))
(tau = 1). Why not Adam: Adam's step is about eta whatever the gradient's scale, so Stan's
eta grid below means something else for it; on examples/linear_regression the search then
picked eta = 1 and fullrank diverged (means off by tens of posterior sds after 10000
iterations) while meanfield needed 6200 iterations. With tau = 1 small gradients give
plain SGD with rate eta t^(-1/2) and large ones a normalized step, which is what the grid is
tuned for. The t^(-1/2) decay shrinks the jitter from the one-draw gradient and still sums
to infinity (Robbins-Monro).

Eta adaptation (Stan's `adapt_eta`, `adapt_engaged=True`): each candidate eta in
(100, 10, 1, 0.1, 0.01) runs `adapt_iter` (50) iterations from the initial q, and the one
with the best ELBO estimate at its last iterate (as Stan) wins; the main run then restarts
from the initial q with it. The candidates run one after another through the fit's one
program with common random numbers (the same key), so they are compared on the same
draws. A candidate whose ELBO is not finite loses; if every candidate fails, `PplcError`.
Stan tries candidates in order and stops early once they get worse; evaluating all of
them costs five times 50 gradients. `learning_rate=x` skips the search and uses eta = x.

Iterate averaging (not in Stan): the reported q, and the ELBO estimates the convergence
rule sees, are the average of the iterates with weights growing like t^4 (w_t = 5 / (t + 4),
polynomial-decay averaging, Shamir & Zhang 2013). The t-weighted average used before gives
the first half of the run a quarter of the weight, so the early transient (q starting at
N(init, I), far from a posterior with sds of 0.06) biased the result by 1-2 posterior sds
on the regression; with t^4 the first half weighs 3%. `average_iterates=False` reports the
last iterate, as Stan does.

Convergence (Stan's rule) plus an averaging phase: every `eval_elbo` iterations the ELBO is
estimated with `elbo_samples` draws, the relative change |ELBO_t - ELBO_{t-1}| / |ELBO_t| is
pushed into a circular buffer of max(0.1 * max_iterations / eval_elbo, 2) entries, and
the rule fires when the buffer's mean or its median is below `tol_rel_obj`. The ELBO
cannot see errors of a fraction of a posterior sd (0.25 sd in one coordinate costs 0.03
nats; the estimate's noise is about 0.2 nats at 100 draws), so when the rule fires at
iteration T an averaging phase follows (advi_steps.py, shared with minibatch ADVI): its
steps move the mean by at most 0.05 of q's sd (the step above is eta / sqrt(t) in the
parameters' units, tens of posterior sds where the posterior is narrow, and its jitter
drowned the log-sd gradient: a logistic regression with covariates x10 came out 1 sd off
with sds 1.44x, fullrank 3-5 sds off, converged and silent; tests/inference/
test_advi_narrow_posterior.py), in windows of max(T/2, 500) iterations that run until
two windows' plain averages agree, else max_iterations stops them, and a warning says the
fit was still moving and `converged` is False. The last window's average is reported.
Measured before the phase (then T more iterations at the step above) on
examples/linear_regression, 8 seeds: meanfield 600-1200 iterations in all, worst mean
error 0.07-0.19 posterior sd; fullrank 1400-3800 iterations, 0.09-0.46 sd (sigma is the
slowest), sds within 13% (tests/test_fit_models.py); with it, benchmarks/advi_steps.md.
With `average_iterates=False` there is no extra phase. Draws whose log density is not
finite are dropped from an estimate, as Stan drops them; an estimate with every draw
dropped raises `PplcError`. A gradient step whose gradient is not finite is skipped
inside the compiled loop (a value, not an exception) and counted. One departure from
Stan: its buffer starts empty, so a small eta whose ELBO barely moves could "converge" at
the first evaluation (full-rank on eight schools stopped after 200 iterations, far from
the optimum); here the rule needs `MIN_EVALUATIONS` entries in the buffer first.

One compiled program (`run_program`) serves the whole fit, as `mcmc.py`'s chunk does:
`n_steps` steps (a `fori_loop` with a runtime trip count), then an ELBO estimate at the
iterate or at the average (a runtime flag) that also returns its draws and their log
importance ratios. The same executable, with the learning rate, the number of steps, the
averaging weights and the random stream as runtime arguments, gives the ELBO at the
initial values (0 steps), each eta candidate (`adapt_iter` steps from the initial q, the
same key for all: common random numbers), every chunk of `eval_elbo` steps of the main
run, and the final draws (0 steps at the fitted q, `elbo_samples` draws per call). Python
applies the convergence rule between calls (a few microseconds, and it reports progress).
Before, the initial ELBO, the vmapped eta search, the chunk and the final draws were four
programs, each compiling the log density and its gradient again; the keys were split and
folded eagerly, each an XLA program of its own (benchmarks/advi_compile.md). Compiled
once per (log density, method, grad_samples, elbo_samples, shapes) through `programs`,
with `data` a runtime argument: a rerun with a new seed, new data or other iteration
settings compiles nothing, and `pplc fit` loads it from disk (`persist_executables`).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.errors import error
from pplc.inference import programs
from pplc.inference.advi_steps import Windows, phase_step, window_length
from pplc.inference.advi_kernel import (  # noqa: F401 - the kernel API, re-exported
    METHODS, ADVIInfo, ADVIState, StepState, build_step, covariance_numpy, elbo_estimate,
    entropy, finite_mean_elbo, init, log_q, sample, transform)
from pplc.inference.gaussian_noise import normal_draws
from pplc.inference.psis import far_from_posterior, psis

Array = jax.Array
ProgressFn = Callable[[str, int, int, int], None]

ETA_CANDIDATES = (100.0, 10.0, 1.0, 0.1, 0.01)  # Stan's eta sequence
AVG_POWER = 4.0  # iterate-averaging weights grow like t^AVG_POWER
EXTRA_POWER = 0.0
MIN_EVALUATIONS = 5  # relative ELBO changes needed before the convergence rule may fire

# The random streams of one fit: the program folds (stream, call) into the user's key.
INIT_STREAM, ADAPT_STREAM, RUN_STREAM, DRAW_STREAM = 0, 1, 2, 3


class ADVIResult(NamedTuple):
    """The fitted approximation and draws from it, all on the unconstrained space.

    scale_or_cov: the sd vector (meanfield) or the covariance matrix (fullrank).
    elbo_trace[k]: the ELBO estimate after (k + 1) * eval_elbo iterations.
    n_grad_evals: gradients of the log density, eta search included.
    seconds: wall time of the fit, compilation excluded (that is compile_seconds).
    learning_rate: the eta used (chosen by the search or given).
    num_skipped: gradient steps skipped because the gradient was not finite.
    pareto_k: the Pareto k-hat of the importance ratios p/q at the draws (Yao, Vehtari,
        Simpson & Gelman 2018): an ELBO that stopped changing says nothing of how far q is
        from the posterior; k-hat above 0.7 says it is far.
    """

    draws: np.ndarray
    mean: np.ndarray
    scale_or_cov: np.ndarray
    elbo_trace: np.ndarray
    iterations: int
    converged: bool
    compile_seconds: float
    seconds: float
    n_grad_evals: int
    learning_rate: float = float("nan")
    num_skipped: int = 0
    pareto_k: float = float("nan")   # PSIS k-hat of p/q at the draws (psis.py): > 0.7, far off


def run_program(logdensity_fn: Callable, method: str, grad_samples: int, elbo_samples: int):
    """The fit's one program (module docstring):
    (state, avg, eta, key, stream, call, n_steps, power, use_avg, phase, data)
    -> (state, avg, elbo, n_skipped, draws, log_ratios).

    n_steps optimizer steps from `state`, then `elbo_samples` draws from q at the average
    (use_avg) or at the iterate, the ELBO estimate from them, and their log p - log q.
    avg = (mu, rho, n): the average of the n iterates since it was (re)started, weights
    growing like their index^power. The key is the user's; (stream, call) are folded in.
    With phase, the steps are the averaging phase's, in q's sds (advi_steps.phase_step)."""

    def run(state: ADVIState, avg: tuple, eta: Array, key: Array, stream: Array, call: Array,
            n_steps: Array, power: Array, use_avg: Array, phase: Array, data: Any):
        logdensity = lambda x: logdensity_fn(x, data)
        step = phase_step(build_step(logdensity, method, grad_samples), method)
        key = jax.random.fold_in(jax.random.fold_in(key, stream), call)
        step_key, elbo_key = jax.random.split(key)

        def body(i, carry):
            state, avg, skipped = carry
            new, info = step(jax.random.fold_in(step_key, i), state, eta, phase)
            # avg_n = avg_{n-1} + w_n (x_n - avg_{n-1}), w_n = (k + 1) / (n + k): weights
            # growing like n^k (module docstring); w_1 = 1 starts the average afresh
            m_mu, m_rho, n = avg
            use = ~info.skipped
            n = n + use.astype(n.dtype)
            w = jnp.where(use, (power + 1.0) / (n + power), 0.0)
            avg = (m_mu + w * (new.mu - m_mu), m_rho + w * (new.rho - m_rho), n)
            return new, avg, skipped + info.skipped.astype(jnp.int32)

        state, avg, skipped = lax.fori_loop(0, n_steps, body, (state, avg, jnp.int32(0)))
        mu = jnp.where(use_avg, avg[0], state.mu)
        rho = jnp.where(use_avg, avg[1], state.rho)
        eps = normal_draws(elbo_key, (elbo_samples, mu.shape[0]), mu.dtype)
        draws = transform(method, mu, rho, eps)
        lp = jax.vmap(logdensity)(draws)
        elbo = finite_mean_elbo(lp, method, rho)
        return state, avg, elbo, skipped, draws, lp - log_q(method, mu, rho, eps)

    return run


def _relative_change(prev: float, curr: float) -> float:
    """Stan's rel_difference: |curr - prev| / |curr|."""
    return abs((curr - prev) / curr) if curr != 0 else math.inf


def fit_advi(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    init_position: Any,
    rng_key: Array,
    *,
    method: str = "meanfield",
    num_draws: int = 1000,
    grad_samples: int = 1,
    elbo_samples: int = 100,
    eval_elbo: int = 100,
    tol_rel_obj: float = 0.01,
    max_iterations: int = 10000,
    learning_rate: float | None = None,
    adapt_iter: int = 50,
    average_iterates: bool = True,
    progress: ProgressFn | None = None,
) -> ADVIResult:
    """Fit a Gaussian to the posterior on the unconstrained space (Stan's ADVI), then draw.

    Parameters:
        logdensity_fn: pure, traceable `(position, data) -> scalar`, not jitted.
        data: pytree of arrays, a runtime argument of the compiled programs.
        init_position: (dim,) the initial mean; the initial q is N(init_position, I).
        rng_key: a JAX key.
        method: "meanfield" or "fullrank".
        learning_rate: eta; None searches Stan's candidates (module docstring).
        average_iterates: report the t^4-weighted average of the iterates, and after
            convergence run the averaging phase (steps in q's sds, in windows until two
            windows' plain averages agree) and report its last window's average (module
            docstring); False reports the last iterate and stops, as Stan does.
        progress: called as `progress(phase, done, total, skipped)` between compiled calls,
            phase "adaptation" or "optimization", skipped = gradient steps skipped so far.

    Returns an `ADVIResult`; warns (RuntimeWarning) when max_iterations is reached first.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> f = lambda x, data: -0.5 * jnp.sum((x - data["mu"]) ** 2)
        >>> r = fit_advi(f, {"mu": np.ones(2)}, np.zeros(2), jax.random.key(0), num_draws=10)
        >>> r.draws.shape
        (10, 2)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    for name, value in (("num_draws", num_draws), ("grad_samples", grad_samples),
                        ("elbo_samples", elbo_samples), ("eval_elbo", eval_elbo),
                        ("max_iterations", max_iterations), ("adapt_iter", adapt_iter)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    position = programs.float_positions(init_position, 1, "init_position must have shape (dim,)")
    dtype, dim = position.dtype, int(position.shape[0])
    data = programs.device_data(data)
    grad_samples, elbo_samples, eval_elbo = int(grad_samples), int(elbo_samples), int(eval_elbo)
    num_draws, max_iterations, adapt_iter = int(num_draws), int(max_iterations), int(adapt_iter)

    start = time.perf_counter()
    state0 = init(position, method)   # NumPy leaves: no eager XLA program
    avg0 = (state0.mu, state0.rho, np.zeros((), dtype))
    average = bool(average_iterates)
    program, compile_seconds = programs.compiled(
        logdensity_fn, ("advi", method, grad_samples, elbo_samples),
        lambda: run_program(logdensity_fn, method, grad_samples, elbo_samples),
        state0, avg0, np.asarray(1.0, dtype), rng_key, np.int32(0), np.int32(0), np.int32(0),
        np.asarray(AVG_POWER, dtype), np.bool_(False), np.bool_(False), data)

    def call(state, avg, eta, stream, k, n_steps, power=AVG_POWER, use_avg=False,
             phase=False):
        return program(state, avg, np.asarray(eta, dtype), rng_key, np.int32(stream),
                       np.int32(k), np.int32(n_steps), np.asarray(power, dtype),
                       np.bool_(use_avg), np.bool_(phase), data)

    elbo_init = call(state0, avg0, 1.0, INIT_STREAM, 0, 0)[2]
    if not np.isfinite(float(elbo_init)):
        raise error(
            "ADVI: the ELBO at the initial values is not finite: the log density is not "
            "finite at any of the draws from N(init, I) on the unconstrained space",
            hint="check the model and data, or give other initial values")

    n_grad_evals = 0
    num_skipped = 0
    if learning_rate is None:
        etas = np.asarray(ETA_CANDIDATES, dtype)
        # the same key for every candidate: compared on the same draws
        elbos = np.array([float(call(state0, avg0, eta, ADAPT_STREAM, 0, adapt_iter)[2])
                          for eta in etas])
        n_grad_evals += len(etas) * adapt_iter * grad_samples
        if progress is not None:
            progress("adaptation", len(etas) * adapt_iter, len(etas) * adapt_iter, 0)
        finite = np.isfinite(elbos)
        if not finite.any():
            raise error(
                "ADVI: every step-size candidate "
                f"{tuple(float(e) for e in etas)} failed (the ELBO is not finite after "
                f"{adapt_iter} iterations): the model may be severely ill-conditioned or "
                "misspecified", hint="give learning_rate, or check the model")
        eta = float(etas[np.argmax(np.where(finite, elbos, -np.inf))])
    else:
        eta = float(learning_rate)
        if not eta > 0:
            raise ValueError(f"learning_rate must be positive, not {learning_rate!r}")

    cb_size = max(int(0.1 * max_iterations / eval_elbo), 2)  # Stan's circular buffer size
    rel_changes: list[float] = []
    trace: list[float] = []
    state, avg, elbo_prev = state0, avg0, float(elbo_init)
    iterations, converged, k = 0, False, 0
    stop_at = max_iterations
    power = AVG_POWER
    window, windows = 0, Windows(method, dim)
    while iterations < stop_at:
        n_active = min(eval_elbo, stop_at - iterations)
        state, avg, elbo, skipped, _, _ = call(state, avg, eta, RUN_STREAM, k, n_active,
                                               power, average, bool(window))
        elbo, k = float(elbo), k + 1
        iterations += n_active
        num_skipped += int(skipped)
        n_grad_evals += n_active * grad_samples
        if progress is not None:
            progress("optimization", iterations, max_iterations, num_skipped)
        if not np.isfinite(elbo):
            raise error(
                f"ADVI: the ELBO estimate is not finite after {iterations} iterations: "
                f"every one of {elbo_samples} draws from the approximation has a log "
                "density that is not finite", hint="try a smaller learning_rate")
        trace.append(elbo)
        if converged:   # the averaging phase (advi_steps.py)
            if iterations < stop_at:
                continue
            if windows.close(avg) or iterations + window > max_iterations:   # it ends here
                break
            # the next window: the iterate and the average restart at this one's average
            state = state._replace(mu=avg[0], rho=avg[1])
            avg = (avg[0], avg[1], np.zeros((), dtype))
            stop_at = iterations + window
            continue
        rel_changes = (rel_changes + [_relative_change(elbo_prev, elbo)])[-cb_size:]
        elbo_prev = elbo
        if len(rel_changes) >= min(cb_size, MIN_EVALUATIONS) and (
                np.mean(rel_changes) < tol_rel_obj or np.median(rel_changes) < tol_rel_obj):
            converged = True
            window = window_length(iterations, eval_elbo) if average else 0
            stop_at = min(iterations + window, max_iterations)
            if window:   # the iterate restarts at the average, which restarts
                state = state._replace(mu=avg[0], rho=avg[1])
                avg = (avg[0], avg[1], np.zeros((), dtype))
                power = EXTRA_POWER

    if average:
        state = state._replace(mu=avg[0], rho=avg[1])
    unsettled_warning = windows.warning("ADVI", window, iterations, max_iterations,
                                        "max_iterations")
    # The final draws: the same program, 0 steps, elbo_samples draws per call.
    batches = [call(state, avg, eta, DRAW_STREAM, j, 0)[4:]
               for j in range(-(-num_draws // elbo_samples))]
    draws = np.concatenate([np.asarray(d) for d, _ in batches])[:num_draws]
    log_ratios = np.concatenate([np.asarray(r) for _, r in batches])[:num_draws]
    _, pareto_k = psis(log_ratios)
    if not converged:
        warnings.warn(
            f"ADVI did not converge in {max_iterations} iterations (mean relative ELBO "
            f"change {np.mean(rel_changes):.3g}, median {np.median(rel_changes):.3g}, "
            f"tol_rel_obj {tol_rel_obj})", RuntimeWarning, stacklevel=2)
    elif unsettled_warning:
        warnings.warn(unsettled_warning, RuntimeWarning, stacklevel=2)
    far = far_from_posterior(f"the {method} ADVI approximation", float(pareto_k), num_draws)
    if far:
        warnings.warn(far, RuntimeWarning, stacklevel=2)
    if num_skipped:
        warnings.warn(f"ADVI skipped {num_skipped} gradient steps whose gradient was not "
                      "finite", RuntimeWarning, stacklevel=2)
    return ADVIResult(
        draws=draws,
        mean=np.asarray(state.mu),
        scale_or_cov=covariance_numpy(method, state.rho),
        elbo_trace=np.asarray(trace),
        iterations=iterations,
        converged=converged and unsettled_warning is None,
        compile_seconds=compile_seconds,
        seconds=time.perf_counter() - start - compile_seconds,
        n_grad_evals=n_grad_evals,
        learning_rate=eta,
        num_skipped=num_skipped,
        pareto_k=float(pareto_k),
    )
