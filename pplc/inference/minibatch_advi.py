"""The optimizer of minibatch ADVI: advi.py's steps on batch gradients, with a control
variate that takes the batch noise out once the fit is near the optimum.

Why a control variate. A batch gradient (N/B) * sum over B rows is unbiased, but its noise
grows like N / sqrt(B) while the posterior narrows like 1 / sqrt(N). Averaged over T steps,
the iterates' error has variance about (N/B) / T posterior variances (Polyak & Juditsky
1992: the average's variance is H^-1 S H^-1 / T, with S the batch gradient's covariance,
about N^2/B times one row's Fisher information, and H = N times it); so matching
full-batch ADVI to 0.1 posterior sd would take 100 epochs at any B, and a decaying step or
a larger B does not change that count of rows read. Measured at 10^6 rows and B = 1000:
5000 plain steps left the means up to 1.15 full-batch sds off (docs/scaling.md).

The remedy (SVRG, Johnson & Zhang 2013; for stochastic variational inference, e.g.
Wang, Chen, Smola & Xing 2013): at a reference point u_ref, one pass over all rows gives
the exact gradient G = grad log p(u_ref | all rows), and each step ascends

    log p_batch(u) + <G - grad log p_batch(u_ref), u>,

whose value and gradient are unbiased as before (the added term's mean over batches is
0) but whose noise is the batch gradient's change between u and u_ref: about
|u - u_ref| times the rows' Hessians' spread, so within a few posterior sds of u_ref the
batch noise is about 1/sqrt(B) of the one-draw noise full-batch ADVI has anyway
(measured in docs/scaling.md). One pass costs an epoch's reading, sequential (by
`BatchSource.block`, B rows at a time, so memory stays bounded by the batch), at about
the speed of full batch's one step.

When: advi.py's schedule, unchanged up to Stan's convergence rule (the step-size search,
the t^4-weighted average, the rule on the ELBO of one fixed batch). When the rule fires at
iteration T, u_ref is the average so far, G is computed, and the averaging phase runs with
the control variate, in windows of max(T/2, MIN_WINDOW) iterations: each window starts
from the last one's average (u_ref moves there, a pass; the iterate restarts there) and
averages its own iterates plainly (a transient would widen the average). The phase ends
when a window's average differs from the one before by less than MEAN_TOL q-sds in every
mean and SD_TOL in every log sd (both times sqrt(2 log 2d): the largest of d noises), or
at max_iterations; then, unless settled, a warning says the fit was still moving and by
how much, and `converged` is False. Why windows and that rule: Stan's rule watches the
ELBO, whose relative change at 10^7 rows is tiny (the ELBO is -6.5 * 10^6) long before
the sds have converged, so it fired at its earliest while the sds were still 1.5-3 times
the posterior's, and that was reported as a fit.

The phase's step is measured in q's sds, and its windows and their rule are
advi_steps.py's (shared with full-batch ADVI; its docstring says why): advi.py's step,
eta / sqrt(t) in the parameters' units, is 40 posterior sds at 10^7 rows; in q's sds the
sds settled within 200-300 iterations there, at 1.01-1.06 times the Laplace
approximation's. A coordinate that must travel far along a ridge (tau of a noncentered
hierarchical model) keeps its windows moving for longer (measured: 24 windows in
tests/inference/test_minibatch_parameterization.py), or says it did not settle.
`control_variate=False` keeps plain batch gradients throughout (what the tests break to
see the difference; at N/B = 1000 the phase then never settles, and says so).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.errors import error
from pplc.inference import advi
from pplc.inference.advi_steps import Windows, phase_step, window_length
from pplc.inference.batches import BatchSource

Array = jax.Array
# rows read at once in a full pass (with B, a multiple of it): what the pass holds
PASS_BYTES = 4 * 2 ** 20


def _chunk_program(batch_density: Callable, method: str, grad_samples: int,
                   elbo_samples: int, average: bool, weight: float):
    """(state, avg, eta, key, n_active, power, fixed, batches, eval_batch, ref, full_grad,
    use_cv, phase) -> (state, avg, elbo, n_skipped): one step per stacked batch (the first
    n_active act), the average as in advi.py, then the ELBO on the fixed evaluation batch.
    With use_cv, each batch's density gets the control variate's linear term (module
    docstring), the gradient at `ref` taken on the same batch. With phase, the step is
    the averaging phase's, in q's sds (advi_steps.phase_step)."""

    def corrected(batch, ref, full_grad, use_cv):
        density = lambda u: batch_density(u, batch, weight)
        shift = lax.cond(use_cv, lambda: full_grad - jax.grad(density)(ref),
                         lambda: jnp.zeros_like(ref))
        return lambda u: density(u) + jnp.dot(shift, u)

    def run(state, avg, eta, key, n_active, power, fixed, batches, eval_batch, ref,
            full_grad, use_cv, phase):
        step_key, elbo_key = jax.random.split(key)

        def body(carry, xs):
            state, avg = carry
            i, batch = xs
            density = corrected({**fixed, **batch}, ref, full_grad, use_cv)
            step = phase_step(advi.build_step(density, method, grad_samples), method)
            new, info = step(jax.random.fold_in(step_key, i), state, eta, phase)
            active = i < n_active
            new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            m_mu, m_rho, n = avg   # avg_n = avg_{n-1} + (k + 1) / (n + k) (x_n - avg_{n-1})
            use = active & ~info.skipped
            n = n + use.astype(n.dtype)
            w = jnp.where(use, (power + 1.0) / (n + power), 0.0)
            avg = (m_mu + w * (new.mu - m_mu), m_rho + w * (new.rho - m_rho), n)
            return (new, avg), active & info.skipped

        length = jax.tree.leaves(batches)[0].shape[0]
        (state, avg), skipped = lax.scan(body, (state, avg), (jnp.arange(length), batches))
        mu, rho = avg[:2] if average else (state.mu, state.rho)
        elbo = advi.elbo_estimate(corrected({**fixed, **eval_batch}, ref, full_grad, use_cv),
                                  method, mu, rho, elbo_key, elbo_samples)
        return state, avg, elbo, jnp.sum(skipped)

    return run


def full_gradient(batch_density: Callable, fixed: Mapping[str, Any], source: BatchSource,
                  position: Array, program=None) -> tuple[np.ndarray, Any]:
    """The gradient of the log density on all N rows at `position`, reading the rows once
    in order, B at a time (the compiled batch's shape), a few batches per call.

    The density is linear in the rows' weight w: grad f(u; rows, w) - grad f(u; rows, 0)
    is w times the rows' likelihood gradient, and grad f(u; rows, 0) is the prior's (with
    the Jacobian). The last N mod B = r rows are padded to B with copies of row N-1, and a
    batch of B copies of it, weighted -(B - r)/B, takes the copies out again. Padding
    batches to fill a call are weighted 0. Returns (gradient, the compiled program)."""
    if program is None:
        def program(position, fixed, stacked, weights):
            def one(batch, w):
                data = {**fixed, **batch}
                return jax.grad(lambda u: batch_density(u, data, w)
                                - batch_density(u, data, 0.0))(position)
            first = jax.tree.map(lambda a: a[0], stacked)
            prior = jax.grad(lambda u: batch_density(u, {**fixed, **first}, 0.0))(position)
            return jnp.sum(jax.vmap(one)(stacked, weights), axis=0), prior
        program = jax.jit(program)
    B, N = source.batch_size, source.extent
    full, r = divmod(N, B)
    plan: list[tuple[Any, float]] = [((j * B, (j + 1) * B), 1.0) for j in range(full)]
    if r:
        last = np.full(B, N - 1)
        plan.append((np.concatenate([np.arange(N - r, N), last[:B - r]]), 1.0))
        plan.append((last, -(B - r) / B))
    group = max(1, min(len(plan), PASS_BYTES // max(1, B * source.row_bytes())))
    total, prior = None, None
    for lo in range(0, len(plan), group):
        part = plan[lo:lo + group]
        part = part + [(part[0][0], 0.0)] * (group - len(part))   # padding: weight 0
        blocks = [source.block(*rows) if isinstance(rows, tuple) else source.take(rows)
                  for rows, _ in part]
        stacked = {k: np.stack([b[k] for b in blocks]) for k in blocks[0]}
        weights = np.asarray([w for _, w in part])
        if total is not None:
            # JAX dispatches asynchronously: without this wait a reader faster than the
            # computation queues call after call, each holding its group of rows, so memory
            # would grow with N. One call in flight while the next group is read.
            total.block_until_ready()
        summed, prior = program(position, fixed, stacked, weights)
        total = summed if total is None else total + summed
    return np.asarray(total + prior), program


def fit_minibatch_advi(batch_density: Callable[[Array, Any, Any], Array],
                       fixed: Mapping[str, Any], source: BatchSource, init_position: Any,
                       rng_key: Array, *, method: str = "meanfield", num_draws: int = 1000,
                       grad_samples: int = 1, elbo_samples: int = 100, eval_elbo: int = 100,
                       tol_rel_obj: float = 0.01, max_iterations: int = 10000,
                       learning_rate: float | None = None, adapt_iter: int = 50,
                       average_iterates: bool = True, control_variate: bool = True,
                       ) -> advi.ADVIResult:
    """ADVI on minibatches (module docstring). `batch_density(u, data, w)`: the log
    density of a batch (plate size B) with its rows' terms weighted w (N/B for a batch);
    `fixed`: the data not indexed by the plate; `source`: where batches and full passes
    come from. The draws' importance ratios would need the full data, so `pareto_k` is
    not computed (nan). `control_variate` (with `average_iterates`): the averaging phase
    uses the full-gradient control variate."""
    if method not in advi.METHODS:
        raise ValueError(f"method must be one of {advi.METHODS}, not {method!r}")
    start = time.perf_counter()
    compile_seconds = 0.0
    fixed = {k: jnp.asarray(v) for k, v in fixed.items()}
    position = jnp.asarray(init_position, jnp.float64)
    dtype, dim = position.dtype, int(position.shape[0])
    weight = source.extent / source.batch_size
    state0 = advi.init(position, method)
    avg0 = (state0.mu, state0.rho, jnp.zeros((), dtype))
    power = np.asarray(advi.AVG_POWER, dtype)
    average = bool(average_iterates)
    adapt_key, run_key, draw_key = jax.random.split(rng_key, 3)
    eval_batch = source.take(source.indices())
    program = _chunk_program(batch_density, method, grad_samples, elbo_samples, average,
                             weight)
    chunk = jax.jit(program)
    ref, full_grad = np.zeros_like(position), np.zeros_like(position)
    no_cv = np.asarray(False)
    n_grad_evals, num_skipped, passes, pass_program = 0, 0, 0, None

    def timed(fn, *args):
        began = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        return out, time.perf_counter() - began

    if learning_rate is None:   # advi.py's search: every candidate on the same batches
        etas = np.asarray(advi.ETA_CANDIDATES, dtype)
        adapt = jax.jit(jax.vmap(_chunk_program(batch_density, method, grad_samples,
                                                elbo_samples, False, weight),
                                 in_axes=(None, None, 0) + (None,) * 10))
        batches = source.stacked(adapt_iter)
        (_, _, elbos, _), seconds = timed(adapt, state0, avg0, etas, adapt_key,
                                          np.asarray(adapt_iter, np.int32), power, fixed,
                                          batches, eval_batch, ref, full_grad, no_cv,
                                          no_cv)
        compile_seconds += seconds   # mostly compilation at these sizes
        elbos = np.asarray(elbos)
        n_grad_evals += len(etas) * adapt_iter * grad_samples
        if not np.isfinite(elbos).any():
            raise error(f"minibatch ADVI: every step-size candidate "
                        f"{tuple(float(e) for e in etas)} failed (the ELBO is not finite)",
                        hint="give learning_rate, or check the model")
        eta = float(etas[np.argmax(np.where(np.isfinite(elbos), elbos, -np.inf))])
    else:
        eta = float(learning_rate)
    eta_arr = np.asarray(eta, dtype)

    def snapshot(at):
        nonlocal pass_program, passes, compile_seconds
        began = time.perf_counter()
        grad, pass_program = full_gradient(batch_density, fixed, source, at, pass_program)
        if passes == 0:
            compile_seconds += time.perf_counter() - began   # compilation and one pass
        passes += 1
        if not np.all(np.isfinite(grad)):
            raise error("minibatch ADVI: the gradient over all rows is not finite at the "
                        "fit so far", hint="run with a smaller learning_rate")
        return np.asarray(at), grad

    cb_size = max(int(0.1 * max_iterations / eval_elbo), 2)
    rel_changes: list[float] = []
    trace: list[float] = []
    state, avg, elbo_prev = state0, avg0, None
    iterations, converged, k, stop_at = 0, False, 0, max_iterations
    use_cv, phase = no_cv, np.asarray(False)
    window, windows = 0, Windows(method, dim)
    while iterations < stop_at:
        n_active = min(eval_elbo, stop_at - iterations)
        batches = source.stacked(eval_elbo)
        (state, avg, elbo, skipped), seconds = timed(
            chunk, state, avg, eta_arr, jax.random.fold_in(run_key, k),
            np.asarray(n_active, np.int32), power, fixed, batches, eval_batch, ref,
            full_grad, use_cv, phase)
        if k == 0:
            compile_seconds += seconds
        elbo, k = float(elbo), k + 1
        iterations += n_active
        num_skipped += int(skipped)
        n_grad_evals += n_active * grad_samples * (2 if use_cv else 1)
        if not np.isfinite(elbo):
            raise error(f"minibatch ADVI: the ELBO estimate is not finite after "
                        f"{iterations} iterations", hint="try a smaller learning_rate")
        trace.append(elbo)
        if converged:   # the averaging phase
            if iterations < stop_at:
                continue
            if windows.close(avg) or iterations + window > max_iterations:   # it ends here
                break
            # the next window: u_ref moves to this one's average, the iterate restarts
            # there, and the average restarts (the transient would widen it)
            if control_variate:
                ref, full_grad = snapshot(avg[0])
            state = state._replace(mu=avg[0], rho=avg[1])
            avg = (avg[0], avg[1], jnp.zeros((), dtype))
            stop_at = iterations + window
            continue
        if elbo_prev is not None:
            rel_changes = (rel_changes + [abs((elbo - elbo_prev) / elbo)])[-cb_size:]
        elbo_prev = elbo
        if len(rel_changes) >= min(cb_size, advi.MIN_EVALUATIONS) and (
                np.mean(rel_changes) < tol_rel_obj or np.median(rel_changes) < tol_rel_obj):
            converged = True
            # windows of half the iterations so far, as advi.py's (advi_steps.py)
            window = window_length(iterations, eval_elbo) if average else 0
            stop_at = min(iterations + window, max_iterations)
            if window:
                avg = (avg[0], avg[1], jnp.zeros((), dtype))
                power = np.asarray(advi.EXTRA_POWER, dtype)
                phase = np.asarray(True)
                if control_variate:
                    ref, full_grad = snapshot(avg[0])
                    use_cv = np.asarray(True)
                # the iterate restarts at the average: u_ref's neighbourhood
                state = state._replace(mu=avg[0], rho=avg[1])
    if average:
        state = state._replace(mu=avg[0], rho=avg[1])
    unsettled_warning = windows.warning("minibatch ADVI", window, iterations, max_iterations,
                                        "max_iterations or the batch size")
    if not converged:
        warnings.warn(f"minibatch ADVI did not converge in {max_iterations} iterations",
                      RuntimeWarning, stacklevel=2)
    elif unsettled_warning:
        warnings.warn(unsettled_warning, RuntimeWarning, stacklevel=2)
    if num_skipped:
        warnings.warn(f"minibatch ADVI skipped {num_skipped} gradient steps whose gradient "
                      "was not finite", RuntimeWarning, stacklevel=2)
    n_grad_evals += passes * source.extent // source.batch_size
    draws = advi.sample(draw_key, state, num_draws, method)
    mu = np.asarray(state.mu)
    if method == "meanfield":
        scale_or_cov = np.exp(np.asarray(state.rho))
    else:
        rho = np.asarray(state.rho)
        L = np.tril(rho, -1) + np.diag(np.exp(np.diag(rho)))
        scale_or_cov = L @ L.T
    return advi.ADVIResult(
        draws=np.asarray(draws), mean=mu, scale_or_cov=scale_or_cov,
        elbo_trace=np.asarray(trace), iterations=iterations,
        converged=converged and unsettled_warning is None,
        compile_seconds=compile_seconds,
        seconds=time.perf_counter() - start - compile_seconds, n_grad_evals=n_grad_evals,
        learning_rate=eta, num_skipped=num_skipped)
