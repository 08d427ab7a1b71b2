"""ADVI's pieces: the Gaussian family, its entropy, the ELBO estimate and one optimizer step.

Why a module of its own: these are the blackjax-like kernel (init -> step -> sample) that
the driver (`advi.py`) and minibatch ADVI (`minibatch_advi.py`) both compile into their
programs; the driver's job, the compiled loop and Stan's convergence rule, is another.
The family and the optimizer are described in `advi.py`'s docstring:
  * "meanfield": q = N(mu, diag(exp(omega))^2); the state's `rho` is omega = log sd.
  * "fullrank":  q = N(mu, L L^T) with L lower triangular; `rho` holds L's strict lower
    triangle as is and log of its diagonal (the upper triangle is ignored and, receiving
    zero gradient, stays zero).
Everything here is traceable; `init` builds its zeros in NumPy, so calling it eagerly
compiles no XLA program.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from pplc.inference.gaussian_noise import normal_draws

Array = jax.Array

METHODS = ("meanfield", "fullrank")
TAU = 1.0  # Stan's tau in the step size
POST_FACTOR = 0.1  # Stan's weight of the new g^2 in s_t


class ADVIState(NamedTuple):
    """Variational parameters and the optimizer state (see the module docstring for `rho`)."""

    mu: Array
    rho: Array
    opt_state: Any


class ADVIInfo(NamedTuple):
    """Per step: the one-sample ELBO estimate and whether the step was skipped (non-finite)."""

    elbo: Array
    skipped: Array


class StepState(NamedTuple):
    """Stan's step-size sequence state: t (steps taken) and s, the running mean of g^2."""

    count: Array
    sq_grad: tuple


def chol(method: str, rho: Array) -> Array:
    """L from rho: fullrank puts exp on the diagonal; meanfield is diag(exp(omega))."""
    if method == "meanfield":
        return jnp.diag(jnp.exp(rho))
    return jnp.tril(rho, -1) + jnp.diag(jnp.exp(jnp.diag(rho)))


def transform(method: str, mu: Array, rho: Array, eps: Array) -> Array:
    """zeta = mu + L eps for a batch eps of shape (n, dim)."""
    if method == "meanfield":
        return mu + eps * jnp.exp(rho)
    return mu + eps @ chol(method, rho).T


def entropy(method: str, rho: Array) -> Array:
    """H[N(mu, L L^T)] = sum(log diag L) + dim/2 (1 + log 2 pi)."""
    log_diag = rho if method == "meanfield" else jnp.diag(rho)
    dim = log_diag.shape[0]
    return jnp.sum(log_diag) + 0.5 * dim * (1.0 + jnp.log(2.0 * jnp.pi))


def init(position: Any, method: str = "meanfield") -> ADVIState:
    """q = N(position, I), as Stan starts (omega = 0, L = I), and a fresh step-size state
    (t = 0, s = 0). A NumPy position gives NumPy leaves (no eager XLA program)."""
    mu = position if isinstance(position, jax.Array) else np.asarray(position)
    dim = mu.shape[0]
    dtype = np.dtype(mu.dtype)
    rho = np.zeros(dim, dtype) if method == "meanfield" else np.zeros((dim, dim), dtype)
    return ADVIState(mu, rho, StepState(np.zeros((), np.int32),
                                        (np.zeros(mu.shape, dtype), np.zeros_like(rho))))


def finite_mean_elbo(lp: Array, method: str, rho: Array) -> Array:
    """Mean of the finite log densities plus the entropy (Stan's `calc_ELBO` drops the
    non-finite draws); nan if every draw is dropped."""
    finite = jnp.isfinite(lp)
    n = jnp.sum(finite)
    mean_lp = jnp.where(n > 0, jnp.sum(jnp.where(finite, lp, 0.0)) / jnp.maximum(n, 1), jnp.nan)
    return mean_lp + entropy(method, rho)


def elbo_estimate(logdensity: Callable[[Array], Array], method: str, mu: Array, rho: Array,
                  rng_key: Array, num_samples: int) -> Array:
    """Monte Carlo ELBO with non-finite draws dropped (Stan's `calc_ELBO`); nan if all are."""
    eps = normal_draws(rng_key, (num_samples, mu.shape[0]), mu.dtype)
    lp = jax.vmap(logdensity)(transform(method, mu, rho, eps))
    return finite_mean_elbo(lp, method, rho)


def log_q(method: str, mu: Array, rho: Array, eps: Array) -> Array:
    """log q(mu + L eps) for a batch eps: N(eps; 0, I) / |det L|, where
    entropy = log|det L| + dim/2 (1 + log 2 pi)."""
    return -0.5 * jnp.sum(eps ** 2, axis=1) - entropy(method, rho) + 0.5 * mu.shape[0]


def build_step(logdensity: Callable[[Array], Array], method: str, grad_samples: int = 1):
    """`step(rng_key, state, eta) -> (state, info)`: one step of Stan's stochastic gradient
    ascent on the reparameterized ELBO (`advi.py`'s docstring)."""

    def neg_elbo(params, eps):
        mu, rho = params
        lp = jax.vmap(logdensity)(transform(method, mu, rho, eps))
        return -(jnp.mean(lp) + entropy(method, rho))

    def step(rng_key: Array, state: ADVIState, eta: Array) -> tuple[ADVIState, ADVIInfo]:
        eps = normal_draws(rng_key, (grad_samples, state.mu.shape[0]), state.mu.dtype)
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
    eps = normal_draws(rng_key, (num_draws, state.mu.shape[0]), state.mu.dtype)
    return transform(method, state.mu, state.rho, eps)


def covariance_numpy(method: str, rho: np.ndarray) -> np.ndarray:
    """q's sd vector (meanfield) or covariance matrix (fullrank), in NumPy: no eager XLA
    program after the fit."""
    rho = np.asarray(rho)
    if method == "meanfield":
        return np.exp(rho)
    L = np.tril(rho, -1) + np.diag(np.exp(np.diag(rho)))
    return L @ L.T
