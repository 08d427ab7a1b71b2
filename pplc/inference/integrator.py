"""Velocity Verlet (leapfrog) integration of Hamiltonian dynamics, diagonal or dense metric.

Hamiltonian Monte Carlo simulates H(x, p) = -log p(x) + 0.5 * p^T M^{-1} p. The leapfrog
scheme is symplectic and time-reversible, so its energy error stays O(eps^2) over long
trajectories instead of drifting (Leimkuhler & Reich 2004; Neal 2011, section 5.2.3). That is
what makes the Metropolis / multinomial correction of HMC and NUTS cheap and exact.

The inverse mass matrix M^{-1} is either a vector (diagonal metric, Stan's default
`diag_e`: each step O(dim)) or a (dim, dim) matrix (dense metric, Stan's `dense_e`: each
step one O(dim^2) matrix-vector product, worth it when the posterior is strongly
correlated). Which one is decided by `inverse_mass_matrix.ndim` at trace time, so the
diagonal path contains no matrix operations at all.

A dense metric also needs a square root of M to draw p ~ Normal(0, M). Factoring M^{-1}
on every transition would cost O(dim^3), so it is computed once per metric update
(`mass_matrix_sqrt`) and passed along with M^{-1}.

A low-rank-plus-diagonal metric packed as a (2, rank + 1, dim) array (inference/metric.py)
is applied at O(dim * rank) per step, never as a dim x dim matrix.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from pplc.inference.metric import is_low_rank, low_rank_momentum, low_rank_velocity

Array = jax.Array
LogDensityAndGrad = Callable[[Array], tuple[Array, Array]]


class IntegratorState(NamedTuple):
    """A point of phase space and the log density and its gradient at `position`.

    The gradient is carried so that each leapfrog step costs one gradient evaluation,
    not two (the final half-step of one step and the first half-step of the next share it).
    """

    position: Array
    momentum: Array
    logdensity: Array
    logdensity_grad: Array


def is_dense(inverse_mass_matrix: Array) -> bool:
    """A (dim, dim) inverse metric is dense, a (dim,) one diagonal (static: decided at trace time)."""
    return jnp.ndim(inverse_mass_matrix) == 2


def velocity(momentum: Array, inverse_mass_matrix: Array) -> Array:
    """dx/dt = M^{-1} p (Stan's `dtau_dp`), also the vector of the U-turn criterion."""
    if is_low_rank(inverse_mass_matrix):
        return low_rank_velocity(momentum, inverse_mass_matrix)
    if is_dense(inverse_mass_matrix):
        return inverse_mass_matrix @ momentum
    return momentum * inverse_mass_matrix


def kinetic_energy(momentum: Array, inverse_mass_matrix: Array) -> Array:
    """K(p) = 0.5 * p^T M^{-1} p, the negative log density of p ~ Normal(0, M)."""
    if is_low_rank(inverse_mass_matrix):
        return 0.5 * jnp.dot(momentum, low_rank_velocity(momentum, inverse_mass_matrix))
    if is_dense(inverse_mass_matrix):
        return 0.5 * jnp.dot(momentum, inverse_mass_matrix @ momentum)
    return 0.5 * jnp.sum(momentum * inverse_mass_matrix * momentum)


def mass_matrix_sqrt(inverse_mass_matrix: Array) -> Array:
    """S with S S^T = M for a dense M^{-1}: S = L^{-T} where M^{-1} = L L^T (Cholesky).

    Then S S^T = L^{-T} L^{-1} = (L L^T)^{-1} = M. S is upper triangular; going through L
    avoids forming M = (M^{-1})^{-1} explicitly, which loses accuracy when M^{-1} is
    ill-conditioned.
    """
    chol = jnp.linalg.cholesky(inverse_mass_matrix)
    eye = jnp.eye(chol.shape[-1], dtype=chol.dtype)
    return jax.scipy.linalg.solve_triangular(chol, eye, lower=True).T


def energy(state: IntegratorState, inverse_mass_matrix: Array) -> Array:
    """H(x, p) = -log p(x) + K(p)."""
    return -state.logdensity + kinetic_energy(state.momentum, inverse_mass_matrix)


def sample_momentum(
    rng_key: Array, position: Array, inverse_mass_matrix: Array, sqrt_mass: Array | None = None
) -> Array:
    """p ~ Normal(0, M): z / sqrt(M^{-1}) for a diagonal metric, S z for a dense one.

    `sqrt_mass` is `mass_matrix_sqrt(inverse_mass_matrix)`; for a dense metric it is
    computed here when not given (O(dim^3): pass it when calling repeatedly).
    """
    z = jax.random.normal(rng_key, position.shape, position.dtype)
    if is_low_rank(inverse_mass_matrix):
        return low_rank_momentum(z, inverse_mass_matrix)
    if is_dense(inverse_mass_matrix):
        if sqrt_mass is None:
            sqrt_mass = mass_matrix_sqrt(inverse_mass_matrix)
        return sqrt_mass @ z  # Cov = S S^T = M
    return z / jnp.sqrt(inverse_mass_matrix)


def velocity_verlet(
    logdensity_and_grad: LogDensityAndGrad,
) -> Callable[[IntegratorState, Array, Array], IntegratorState]:
    """Build one leapfrog step `step(state, step_size, inverse_mass_matrix) -> state`.

    A negative `step_size` integrates backwards in time, which is how NUTS extends a
    trajectory to the left.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda x: (-0.5 * jnp.sum(x**2), -x)
        >>> step = velocity_verlet(f)
        >>> x = jnp.ones(2); lp, g = f(x)
        >>> s = step(IntegratorState(x, jnp.zeros(2), lp, g), 0.1, jnp.ones(2))
    """

    def step(state: IntegratorState, step_size: Array, inverse_mass_matrix: Array) -> IntegratorState:
        half = 0.5 * step_size
        momentum = state.momentum + half * state.logdensity_grad  # p(t + eps/2)
        if is_low_rank(inverse_mass_matrix):
            position = state.position + step_size * low_rank_velocity(momentum, inverse_mass_matrix)
        elif is_dense(inverse_mass_matrix):
            position = state.position + step_size * (inverse_mass_matrix @ momentum)  # x(t + eps)
        else:
            position = state.position + step_size * inverse_mass_matrix * momentum  # x(t + eps)
        logdensity, grad = logdensity_and_grad(position)
        momentum = momentum + half * grad  # p(t + eps)
        return IntegratorState(position, momentum, logdensity, grad)

    return step
