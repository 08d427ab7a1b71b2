"""Stan's warmup: dual-averaging step size and a windowed diagonal or dense metric.

Why Stan's scheme: it is what users compare against, and its parts are each well founded.
  * Step size: Nesterov dual averaging of log(eps) towards a target mean acceptance
    statistic (Hoffman & Gelman 2014, section 3.2), with Stan's constants gamma = 0.05,
    t0 = 10, kappa = 0.75 and mu = log(10 * eps0). The final step size is the iterate
    average exp(log_step_size_avg), which is less noisy than the last iterate.
  * Initial step size: Stan's heuristic doubles or halves eps until one leapfrog step from
    the current point crosses an acceptance of 0.8 (`base_hmc::init_stepsize`).
  * Metric: the inverse mass matrix is the regularized sample variance of the draws of a
    "slow" window, (n / (n + 5)) * var + 1e-3 * (5 / (n + 5)), which shrinks towards a
    small multiple of the identity when n is small (Stan's `var_adaptation`). With
    `metric="dense"` it is the regularized sample covariance, (n / (n + 5)) * cov +
    1e-3 * (5 / (n + 5)) * I (Stan's `covar_adaptation`): on a correlated posterior the
    metric then undoes the correlation as well as the scales, at O(dim^2) per leapfrog
    step and O(dim^3) per metric update (the square root of M for the momentum draws).
  * Windows: an initial fast window of 75 iterations (step size only, while the chain
    finds the typical set), slow windows of 25, 50, 100, ... (the last one stretched to the
    terminal window), and a terminal fast window of 50 (Stan's `windowed_adaptation`). If
    num_warmup < 20 only the step size is adapted; if 75 + 25 + 50 does not fit, the windows
    are 15% / 75% / 10% of num_warmup. After the first metric update the step size is
    searched again and the dual averaging restarts, because the scale of the problem has
    changed from the unit metric's; after the later ones it runs on (Stan restarts after
    every window: `schedule.STEP_SIZE_RESTARTS`, which says why and what it measured).

The schedule is precomputed in Python as per-iteration flags (inference/schedule.py), so that a
whole chunk of warmup runs as one `lax.scan` with no Python in the loop; the iteration that
scan runs, these parts put together, is inference/adaptive_step.py's.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.inference.integrator import (
    IntegratorState,
    LogDensityAndGrad,
    energy,
    sample_momentum,
    velocity_verlet,
)
from pplc.inference import metric as metrics
from pplc.inference.metric import fisher_diagonal, fisher_low_rank, low_rank_dense, pack_low_rank
from pplc.inference.nuts import NUTSState
from pplc.inference.schedule import build_schedule, warmup_schedule  # noqa: F401  (re-exported)

Array = jax.Array


# ----------------------------------------------------------------------------- step size


class DualAveragingState(NamedTuple):
    """Nesterov dual averaging of x = log(eps) (Hoffman & Gelman 2014, eq. 6)."""

    log_step_size: Array  # x_t, the step size used during warmup
    log_step_size_avg: Array  # x_bar_t, the step size kept after warmup
    gradient_avg: Array  # H_bar_t (Stan's s_bar)
    count: Array  # t
    mu: Array  # shrinkage point, log(10 * eps0)


def dual_averaging_init(step_size: Array) -> DualAveragingState:
    """Restart at `step_size`: mu = log(10 * eps), counters at zero.

    x_bar starts at log(eps) rather than Stan's 0; the first update gives it weight
    1^-kappa = 1, so this only matters when there is no warmup at all, where it makes the
    sampling step size the heuristic one.
    """
    log_eps = jnp.log(step_size)
    zero = jnp.zeros_like(log_eps)
    return DualAveragingState(log_eps, log_eps, zero, zero, jnp.log(10.0) + log_eps)


def dual_averaging_update(
    state: DualAveragingState,
    accept_stat: Array,
    target: float = 0.8,
    gamma: float = 0.05,
    t0: float = 10.0,
    kappa: float = 0.75,
) -> DualAveragingState:
    """One step of Stan's `stepsize_adaptation::learn_stepsize`."""
    accept_stat = jnp.minimum(jnp.where(jnp.isnan(accept_stat), 0.0, accept_stat), 1.0)
    t = state.count + 1.0
    eta = 1.0 / (t + t0)
    h_bar = (1.0 - eta) * state.gradient_avg + eta * (target - accept_stat)  # H_bar_t
    x = state.mu - h_bar * jnp.sqrt(t) / gamma  # x_t = mu - sqrt(t)/gamma * H_bar_t
    x_eta = t ** (-kappa)
    x_bar = (1.0 - x_eta) * state.log_step_size_avg + x_eta * x  # x_bar_t
    return DualAveragingState(x, x_bar, h_bar, t, state.mu)


def find_reasonable_step_size(
    rng_key: Array,
    state: NUTSState,
    step_size: Array,
    inverse_mass_matrix: Array,
    logdensity_and_grad: LogDensityAndGrad,
    active: Array = True,
    max_iterations: int = 100,
    sqrt_mass: Array | None = None,
) -> tuple[Array, Array]:
    """Stan's heuristic: double (or halve) eps until one leapfrog step crosses acceptance 0.8.

    Each trial draws a fresh momentum, as Stan does. The first trial only sets the
    direction. It runs as a `while_loop` that does nothing when `active` is False, so that
    calling it on every warmup iteration costs nothing on the iterations that do not need
    it, even under `vmap` (a `lax.cond` would run both branches there).

    Returns:
        (step_size, number of gradient evaluations spent)
    """
    step = velocity_verlet(logdensity_and_grad)
    dtype = state.position.dtype
    log_target = jnp.log(jnp.asarray(0.8, dtype))
    start = (jnp.int32(0), jnp.asarray(step_size, dtype), jnp.asarray(1.0, dtype), jnp.array(False))

    def cond(carry):
        i, eps, _, done = carry
        return active & ~done & (i < max_iterations)

    def body(carry):
        i, eps, direction, _ = carry
        momentum = sample_momentum(jax.random.fold_in(rng_key, i), state.position, inverse_mass_matrix, sqrt_mass)
        point = IntegratorState(state.position, momentum, state.logdensity, state.logdensity_grad)
        h0 = energy(point, inverse_mass_matrix)
        h = energy(step(point, eps, inverse_mass_matrix), inverse_mass_matrix)
        delta_h = h0 - jnp.where(jnp.isnan(h), jnp.inf, h)
        first = i == 0
        direction = jnp.where(first, jnp.where(delta_h > log_target, 1.0, -1.0), direction)
        keep_going = jnp.where(direction > 0, delta_h > log_target, delta_h < log_target)
        move = ~first & keep_going
        new_eps = jnp.where(move, jnp.where(direction > 0, 2.0 * eps, 0.5 * eps), eps)
        out_of_range = (new_eps > 1e7) | (new_eps < 1e-12)
        done = (~first & ~keep_going) | out_of_range
        return i + 1, jnp.clip(new_eps, 1e-12, 1e7), direction, done

    n, eps, _, _ = lax.while_loop(cond, body, start)
    return eps, n


# ----------------------------------------------------------------------------- metric


class WelfordState(NamedTuple):
    """Running mean and sum of squared deviations (Welford 1962).

    m2 is (dim,) for a diagonal metric (one sum per coordinate) and (dim, dim) for a dense
    one (the sum of outer products of deviations, Stan's `welford_covar_estimator`).
    """

    count: Array
    mean: Array
    m2: Array


def welford_init(dim: int, dtype=jnp.float64, dense: bool = False) -> WelfordState:
    m2 = jnp.zeros((dim, dim) if dense else dim, dtype)
    return WelfordState(jnp.zeros((), dtype), jnp.zeros(dim, dtype), m2)


def welford_update(state: WelfordState, x: Array) -> WelfordState:
    count = state.count + 1.0
    delta = x - state.mean  # x - mean_{n-1}
    mean = state.mean + delta / count
    if state.m2.ndim == 2:  # M2_n = M2_{n-1} + (x - mean_n)(x - mean_{n-1})^T
        return WelfordState(count, mean, state.m2 + jnp.outer(x - mean, delta))
    return WelfordState(count, mean, state.m2 + delta * (x - mean))


def regularized_variance(state: WelfordState) -> Array:
    """Stan's (n / (n + 5)) * var + 1e-3 * (5 / (n + 5)): shrink towards 1e-3 * I for small n.

    For a dense estimate, (n / (n + 5)) * cov + 1e-3 * (5 / (n + 5)) * I, the covariance
    symmetrized against rounding (Stan's `covar_adaptation::learn_covariance`).
    """
    n = state.count
    var = state.m2 / jnp.maximum(n - 1.0, 1.0)
    if var.ndim == 2:
        cov = 0.5 * (var + var.T)
        eye = jnp.eye(cov.shape[0], dtype=cov.dtype)
        return (n / (n + 5.0)) * cov + 1e-3 * (5.0 / (n + 5.0)) * eye
    return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))


def window_metric(draws: WelfordState, grads: WelfordState | None) -> Array:
    """The inverse metric a slow window ends with: Stan's from the draws alone (`grads` None),
    else the Fisher-optimal one from draws and gradients (inference/metric.py), diagonal or
    low-rank plus diagonal as the estimates' shapes say."""
    if grads is None:
        return regularized_variance(draws)
    if draws.m2.ndim == 2:
        return window_low_rank_dense(draws, grads)[0]
    return fisher_diagonal(*_covariances(draws, grads), draws.count)


def _covariances(draws: WelfordState, grads: WelfordState) -> tuple[Array, Array]:
    n = jnp.maximum(draws.count - 1.0, 1.0)
    return draws.m2 / n, grads.m2 / n


def window_low_rank_dense(draws: WelfordState, grads: WelfordState) -> tuple[Array, Array]:
    """The low-rank metric a slow window ends with, as the dense M^{-1} it equals, and the
    number of eigen-directions it keeps (0: the Fisher diagonal), which the run reports."""
    inverse, _, _, lam = fisher_low_rank(*_covariances(draws, grads), draws.count)
    return inverse, jnp.sum(lam != 1.0).astype(jnp.int32)


def window_low_rank(draws: WelfordState, grads: WelfordState, rank: int) -> tuple[Array, Array]:
    """The low-rank metric a slow window ends with, packed for the O(dim * rank) kernel:
    (the dense M^{-1} it applies, for reports; the packed form, for the kernel)."""
    _, diag, u, lam = fisher_low_rank(*_covariances(draws, grads), draws.count)
    packed = pack_low_rank(diag, u, lam, rank)
    return low_rank_dense(packed), packed


# ----------------------------------------------------------------------------- chain state


class AdaptationState(NamedTuple):
    """`inverse_mass_matrix` is (dim,) or (dim, dim); `mass_matrix_sqrt` is None for a
    diagonal metric and `integrator.mass_matrix_sqrt(inverse_mass_matrix)` for a dense one,
    refreshed only when the metric changes. `grad_welford` (None for Stan's metrics) holds the
    gradients' running variance for the gradient-informed ones ("diag-grad", "low-rank").
    `low_rank` is the packed low-rank metric the kernel runs (inference/metric.py) when the
    model is large enough for it (`metric.packed_rank`), else None; `inverse_mass_matrix` is
    then the dense matrix it equals, kept for the run's report only. `directions` (low-rank
    only) counts the eigen-directions the metric keeps, 0 while it is the Fisher diagonal:
    what `auto` ended with per chain, which the run's header reports."""

    dual: DualAveragingState
    welford: WelfordState
    inverse_mass_matrix: Array
    mass_matrix_sqrt: Array | None = None
    grad_welford: WelfordState | None = None
    low_rank: Array | None = None
    directions: Array | None = None


class ChainState(NamedTuple):
    """Everything one chain carries from iteration to iteration, warmup and sampling alike."""

    nuts: NUTSState
    adaptation: AdaptationState
    rng_key: Array  # the chain's key; iteration t uses fold_in(rng_key, t)
    n_extra_grads: Array  # gradient evaluations spent by step-size searches


def initial_chain_state(positions: np.ndarray, rng_keys: Array, metric: str = "diag") -> ChainState:
    """Host-built states for chains at `positions` (chains, dim): unit metric, eps = 1.

    `metric` is "diag", "dense", "diag-grad" or "low-rank"; all start from the identity, as
    Stan's do.

    The log density and gradient are left as placeholders: the first iteration's `reinit`
    evaluates them inside the compiled program, which avoids compiling a separate init.
    """
    positions = np.asarray(positions)
    n, dim = positions.shape
    if metric in ("dense", "low-rank"):
        metrics.ensure_lapack()  # their program may come from the compile cache, unlowered
    f = lambda *shape: np.zeros((n, *shape), positions.dtype)  # noqa: E731
    log_eps = f()
    dual = DualAveragingState(log_eps, log_eps, f(), f(), log_eps + np.log(10.0))
    rank = metrics.packed_rank(dim) if metric == "low-rank" else None
    if rank is not None:  # the O(dim * rank) kernel: no square root of M to keep
        eye = np.broadcast_to(np.eye(dim, dtype=positions.dtype), (n, dim, dim)).copy()
        unit = np.asarray(metrics.identity_packed(dim, rank, positions.dtype))
        adaptation = AdaptationState(dual, WelfordState(f(), f(dim), f(dim, dim)), eye, None,
                                     WelfordState(f(), f(dim), f(dim, dim)),
                                     np.broadcast_to(unit, (n, *unit.shape)).copy(),
                                     np.zeros(n, np.int32))
    elif metric in ("dense", "low-rank"):
        eye = np.broadcast_to(np.eye(dim, dtype=positions.dtype), (n, dim, dim)).copy()
        low_rank = metric == "low-rank"
        grads = WelfordState(f(), f(dim), f(dim, dim)) if low_rank else None
        adaptation = AdaptationState(dual, WelfordState(f(), f(dim), f(dim, dim)), eye, eye.copy(), grads,
                                     None, np.zeros(n, np.int32) if low_rank else None)
    elif metric in ("diag", "diag-grad"):
        grads = WelfordState(f(), f(dim), f(dim)) if metric == "diag-grad" else None
        adaptation = AdaptationState(dual, WelfordState(f(), f(dim), f(dim)), np.ones((n, dim), positions.dtype),
                                     None, grads)
    else:
        raise ValueError(f"metric must be 'diag', 'dense', 'diag-grad' or 'low-rank', not {metric!r}")
    nuts_state = NUTSState(positions, f(), f(dim))
    return ChainState(nuts_state, adaptation, rng_keys, np.zeros(n, np.int32))
