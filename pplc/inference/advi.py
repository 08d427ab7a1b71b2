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
from the initial q with it. All candidates run in one compiled `vmap` with common random
numbers, so they are compared on the same draws and cost one program call. A candidate
whose ELBO is not finite loses; if every candidate fails, `PplcError`. Stan tries
candidates in order and stops early once they get worse; evaluating all of them at once
costs five times 50 gradients. `learning_rate=x` skips the search and uses eta = x.

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
iteration T the run goes on for another T iterations (capped at max_iterations) and
reports the plain average of those iterates (the average restarts at T). Measured on
examples/linear_regression, 8 seeds: meanfield 600-1200 iterations in all, worst mean
error 0.07-0.19 posterior sd; fullrank 1400-3800 iterations, 0.09-0.46 sd (sigma is the
slowest), sds within 13% (tests/test_fit_models.py). With `average_iterates=False` there
is no extra phase. Draws whose log density is not finite are dropped from an estimate, as
Stan drops them; an estimate with every draw dropped raises `PplcError`. A gradient step
whose gradient is not finite is skipped inside the compiled loop (a value, not an
exception) and counted. One departure from Stan: its buffer starts empty, so a small eta
whose ELBO barely moves could "converge" at the first evaluation (full-rank on eight
schools stopped after 200 iterations, far from the optimum); here the rule needs
`MIN_EVALUATIONS` entries in the buffer first.

Compiled chunks, as in `mcmc.py`: one `lax.scan` of `eval_elbo` steps plus the ELBO
estimate per program call; Python only applies the convergence rule between calls. Every
program is compiled once per (log density, shapes, settings) through `programs`, with `data`
and eta as runtime arguments, so a rerun with a new seed or new data compiles nothing.
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
from pplc.inference.psis import far_from_posterior, psis

Array = jax.Array
ProgressFn = Callable[[str, int, int, int], None]

METHODS = ("meanfield", "fullrank")
ETA_CANDIDATES = (100.0, 10.0, 1.0, 0.1, 0.01)  # Stan's eta sequence
TAU = 1.0  # Stan's tau in the step size
POST_FACTOR = 0.1  # Stan's weight of the new g^2 in s_t
AVG_POWER = 4.0  # iterate-averaging weights grow like t^AVG_POWER
EXTRA_FRACTION = 1.0
EXTRA_POWER = 0.0


class ADVIState(NamedTuple):
    """Variational parameters and the optimizer state (see the module docstring for `rho`)."""

    mu: Array
    rho: Array
    opt_state: Any


class ADVIInfo(NamedTuple):
    """Per step: the one-sample ELBO estimate and whether the step was skipped (non-finite)."""

    elbo: Array
    skipped: Array


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


# -- the family ----------------------------------------------------------------------------

def _chol(method: str, rho: Array) -> Array:
    """L from rho: fullrank puts exp on the diagonal; meanfield is diag(exp(omega))."""
    if method == "meanfield":
        return jnp.diag(jnp.exp(rho))
    return jnp.tril(rho, -1) + jnp.diag(jnp.exp(jnp.diag(rho)))


def _transform(method: str, mu: Array, rho: Array, eps: Array) -> Array:
    """zeta = mu + L eps for a batch eps of shape (n, dim)."""
    if method == "meanfield":
        return mu + eps * jnp.exp(rho)
    return mu + eps @ _chol(method, rho).T


def entropy(method: str, rho: Array) -> Array:
    """H[N(mu, L L^T)] = sum(log diag L) + dim/2 (1 + log 2 pi)."""
    log_diag = rho if method == "meanfield" else jnp.diag(rho)
    dim = log_diag.shape[0]
    return jnp.sum(log_diag) + 0.5 * dim * (1.0 + jnp.log(2.0 * jnp.pi))


def init(position: Array, method: str = "meanfield") -> ADVIState:
    """q = N(position, I), as Stan starts (omega = 0, L = I), and a fresh step-size state (t = 0, s = 0)."""
    mu = jnp.asarray(position)
    dim = mu.shape[0]
    rho = jnp.zeros(dim, mu.dtype) if method == "meanfield" else jnp.zeros((dim, dim), mu.dtype)
    return ADVIState(mu, rho, _init_opt(mu, rho))


def elbo_estimate(logdensity: Callable[[Array], Array], method: str, mu: Array, rho: Array,
                  rng_key: Array, num_samples: int) -> Array:
    """Monte Carlo ELBO with non-finite draws dropped (Stan's `calc_ELBO`); nan if all are."""
    eps = jax.random.normal(rng_key, (num_samples, mu.shape[0]), mu.dtype)
    lp = jax.vmap(logdensity)(_transform(method, mu, rho, eps))
    finite = jnp.isfinite(lp)
    n = jnp.sum(finite)
    mean_lp = jnp.where(n > 0, jnp.sum(jnp.where(finite, lp, 0.0)) / jnp.maximum(n, 1), jnp.nan)
    return mean_lp + entropy(method, rho)


class StepState(NamedTuple):
    """Stan's step-size sequence state: t (steps taken) and s, the running mean of g^2."""

    count: Array
    sq_grad: tuple


def _init_opt(mu: Array, rho: Array) -> StepState:
    return StepState(jnp.zeros((), jnp.int32), (jnp.zeros_like(mu), jnp.zeros_like(rho)))


def build_step(logdensity: Callable[[Array], Array], method: str, grad_samples: int = 1):
    """`step(rng_key, state, eta) -> (state, info)`: one step of Stan's stochastic gradient
    ascent on the reparameterized ELBO (module docstring)."""

    def neg_elbo(params, eps):
        mu, rho = params
        lp = jax.vmap(logdensity)(_transform(method, mu, rho, eps))
        return -(jnp.mean(lp) + entropy(method, rho))

    def step(rng_key: Array, state: ADVIState, eta: Array) -> tuple[ADVIState, ADVIInfo]:
        eps = jax.random.normal(rng_key, (grad_samples, state.mu.shape[0]), state.mu.dtype)
        params = (state.mu, state.rho)
        loss, grads = jax.value_and_grad(neg_elbo)(params, eps)
        ok = jnp.isfinite(loss) & jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in grads]))
        count = state.opt_state.count + 1
        first = count == 1
        # s_1 = g_1^2; s_t = 0.1 g_t^2 + 0.9 s_{t-1} (Stan's pre/post factors)
        sq = jax.tree.map(lambda s, g: jnp.where(first, g * g, POST_FACTOR * g * g
                                                 + (1.0 - POST_FACTOR) * s),
                          state.opt_state.sq_grad, grads)
        t = count.astype(state.mu.dtype)
        scale = eta * t ** -0.5  # Stan's eta / sqrt(t)
        mu, rho = jax.tree.map(lambda x, g, s: x - scale * g / (TAU + jnp.sqrt(s)),
                               params, grads, sq)
        new = ADVIState(mu, rho, StepState(count, sq))
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, state)  # skip a bad step
        return new, ADVIInfo(-loss, ~ok)

    return step


def sample(rng_key: Array, state: ADVIState, num_draws: int, method: str) -> Array:
    """num_draws draws from q, shape (num_draws, dim)."""
    eps = jax.random.normal(rng_key, (num_draws, state.mu.shape[0]), state.mu.dtype)
    return _transform(method, state.mu, state.rho, eps)


# -- compiled programs ---------------------------------------------------------------------

def _chunk_program(logdensity_fn: Callable, method: str, grad_samples: int, elbo_samples: int,
                   length: int, average: bool):
    """(state, avg, eta, key, n_active, power, data) -> (state, avg, elbo, n_skipped):
    `length` steps, of which the first n_active act (the last chunk before max_iterations
    is partial), then an ELBO estimate at the reported parameters (avg, or the iterate).
    avg = (mu, rho, n): the average of the n iterates since it was (re)started, weights
    growing like their index^power."""

    def run(state: ADVIState, avg: tuple, eta: Array, key: Array, n_active: Array,
            power: Array, data: Any):
        logdensity = lambda x: logdensity_fn(x, data)
        step = build_step(logdensity, method, grad_samples)
        step_key, elbo_key = jax.random.split(key)

        def body(carry, i):
            state, avg = carry
            new, info = step(jax.random.fold_in(step_key, i), state, eta)
            active = i < n_active
            new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            # avg_n = avg_{n-1} + w_n (x_n - avg_{n-1}), w_n = (k + 1) / (n + k): weights
            # growing like n^k (module docstring); w_1 = 1 starts the average afresh
            m_mu, m_rho, n = avg
            use = active & ~info.skipped
            n = n + use.astype(n.dtype)
            w = jnp.where(use, (power + 1.0) / (n + power), 0.0)
            avg = (m_mu + w * (new.mu - m_mu), m_rho + w * (new.rho - m_rho), n)
            return (new, avg), active & info.skipped

        (state, avg), skipped = lax.scan(body, (state, avg), jnp.arange(length))
        mu, rho = avg[:2] if average else (state.mu, state.rho)
        elbo = elbo_estimate(logdensity, method, mu, rho, elbo_key, elbo_samples)
        return state, avg, elbo, jnp.sum(skipped)

    return run


def _adapt_program(logdensity_fn: Callable, method: str, grad_samples: int, elbo_samples: int,
                   adapt_iter: int, average: bool):
    """Every eta candidate from the same state and the same key, in one vmap."""
    run = _chunk_program(logdensity_fn, method, grad_samples, elbo_samples, adapt_iter, False)
    return jax.vmap(run, in_axes=(None, None, 0, None, None, None, None))


def _init_program(logdensity_fn: Callable, method: str, elbo_samples: int):
    """(state, key, data) -> the ELBO at the state (the initial one)."""

    def run(state: ADVIState, key: Array, data: Any):
        k1, _ = jax.random.split(key)
        logdensity = lambda x: logdensity_fn(x, data)
        return elbo_estimate(logdensity, method, state.mu, state.rho, k1, elbo_samples)

    return run


def _draws_program(logdensity_fn: Callable, method: str, num_draws: int):
    """(state, key, data) -> (draws, log p - log q at them): the final draws (the same as
    `_init_program`'s for the same key) and their importance ratios, the log density
    mapped over the draws one at a time (a vmap would hold every draw's data at once)."""

    def run(state: ADVIState, key: Array, data: Any):
        _, k2 = jax.random.split(key)
        eps = jax.random.normal(k2, (num_draws, state.mu.shape[0]), state.mu.dtype)
        draws = _transform(method, state.mu, state.rho, eps)
        log_p = lax.map(lambda x: logdensity_fn(x, data), draws)
        # q(mu + L eps) = N(eps; 0, I) / |det L|, and entropy = log|det L| + d/2 (1 + log 2pi)
        log_q = -0.5 * jnp.sum(eps ** 2, axis=1) - entropy(method, state.rho) \
            + 0.5 * state.mu.shape[0]
        return draws, log_p - log_q

    return run


def _relative_change(prev: float, curr: float) -> float:
    """Stan's rel_difference: |curr - prev| / |curr|."""
    return abs((curr - prev) / curr) if curr != 0 else math.inf


MIN_EVALUATIONS = 5  # relative ELBO changes needed before the convergence rule may fire


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
            convergence run as many iterations again and report their plain average
            (module docstring); False reports the last iterate and stops, as Stan does.
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
    dtype = position.dtype
    data = programs.device_data(data)
    grad_samples, elbo_samples, eval_elbo = int(grad_samples), int(elbo_samples), int(eval_elbo)
    num_draws, max_iterations, adapt_iter = int(num_draws), int(max_iterations), int(adapt_iter)

    start = time.perf_counter()
    compile_seconds = 0.0
    state0 = jax.device_put(init(position, method))
    avg0 = (state0.mu, state0.rho, jnp.zeros((), dtype))
    power = np.asarray(AVG_POWER, dtype)
    average = bool(average_iterates)
    init_key, adapt_key, run_key, draw_key = jax.random.split(rng_key, 4)
    n_active_full = np.asarray(eval_elbo, np.int32)

    def compiled(static, build, *args):
        nonlocal compile_seconds
        program, seconds = programs.compiled(logdensity_fn, static, build, *args)
        compile_seconds += seconds
        return program

    init_program = compiled(("advi-init", method, elbo_samples),
                            lambda: _init_program(logdensity_fn, method, elbo_samples),
                            state0, init_key, data)
    elbo_init = init_program(state0, init_key, data)
    if not np.isfinite(float(elbo_init)):
        raise error(
            "ADVI: the ELBO at the initial values is not finite: the log density is not "
            "finite at any of the draws from N(init, I) on the unconstrained space",
            hint="check the model and data, or give other initial values")

    n_grad_evals = 0
    num_skipped = 0
    if learning_rate is None:
        etas = np.asarray(ETA_CANDIDATES, dtype)
        adapt = compiled(
            ("advi-adapt", method, grad_samples, elbo_samples, adapt_iter, average),
            lambda: _adapt_program(logdensity_fn, method, grad_samples, elbo_samples, adapt_iter,
                                   average),
            state0, avg0, etas, adapt_key, np.asarray(adapt_iter, np.int32), power, data)
        _, _, elbos, _ = adapt(state0, avg0, etas, adapt_key, np.asarray(adapt_iter, np.int32),
                               power, data)
        elbos = np.asarray(elbos)
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

    chunk = compiled(
        ("advi-chunk", method, grad_samples, elbo_samples, eval_elbo, average),
        lambda: _chunk_program(logdensity_fn, method, grad_samples, elbo_samples, eval_elbo,
                               average),
        state0, avg0, np.asarray(eta, dtype), run_key, n_active_full, power, data)

    cb_size = max(int(0.1 * max_iterations / eval_elbo), 2)  # Stan's circular buffer size
    rel_changes: list[float] = []
    trace: list[float] = []
    state, avg, elbo_prev = state0, avg0, float(elbo_init)
    iterations, converged, k = 0, False, 0
    stop_at = max_iterations
    eta_arr = np.asarray(eta, dtype)
    while iterations < stop_at:
        n_active = min(eval_elbo, stop_at - iterations)
        state, avg, elbo, skipped = chunk(state, avg, eta_arr, jax.random.fold_in(run_key, k),
                                          np.asarray(n_active, np.int32), power, data)
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
        if converged:
            continue  # the averaging phase
        rel_changes = (rel_changes + [_relative_change(elbo_prev, elbo)])[-cb_size:]
        elbo_prev = elbo
        if len(rel_changes) >= min(cb_size, MIN_EVALUATIONS) and (
                np.mean(rel_changes) < tol_rel_obj or np.median(rel_changes) < tol_rel_obj):
            converged = True
            extra = int(EXTRA_FRACTION * iterations) // eval_elbo * eval_elbo if average else 0
            stop_at = min(iterations + extra, max_iterations)
            if extra:
                avg = (avg[0], avg[1], jnp.zeros((), dtype))
                power = np.asarray(EXTRA_POWER, dtype)

    if average:
        state = state._replace(mu=avg[0], rho=avg[1])
    draws_program = compiled(("advi-draws", method, num_draws),
                             lambda: _draws_program(logdensity_fn, method, num_draws),
                             state, draw_key, data)
    draws, log_ratios = draws_program(state, draw_key, data)
    _, pareto_k = psis(np.asarray(log_ratios))
    if not converged:
        warnings.warn(
            f"ADVI did not converge in {max_iterations} iterations (mean relative ELBO "
            f"change {np.mean(rel_changes):.3g}, median {np.median(rel_changes):.3g}, "
            f"tol_rel_obj {tol_rel_obj})", RuntimeWarning, stacklevel=2)
    far = far_from_posterior(f"the {method} ADVI approximation", float(pareto_k), num_draws)
    if far:
        warnings.warn(far, RuntimeWarning, stacklevel=2)
    if num_skipped:
        warnings.warn(f"ADVI skipped {num_skipped} gradient steps whose gradient was not "
                      "finite", RuntimeWarning, stacklevel=2)
    mu = np.asarray(state.mu)
    if method == "meanfield":
        scale_or_cov = np.exp(np.asarray(state.rho))
    else:
        L = np.asarray(_chol(method, state.rho))
        scale_or_cov = L @ L.T
    return ADVIResult(
        draws=np.asarray(draws),
        mean=mu,
        scale_or_cov=scale_or_cov,
        elbo_trace=np.asarray(trace),
        iterations=iterations,
        converged=converged,
        compile_seconds=compile_seconds,
        seconds=time.perf_counter() - start - compile_seconds,
        n_grad_evals=n_grad_evals,
        learning_rate=eta,
        num_skipped=num_skipped,
        pareto_k=float(pareto_k),
    )
