"""Velocity Verlet (leapfrog) integration of Hamiltonian dynamics with a diagonal metric.

Hamiltonian Monte Carlo simulates H(x, p) = -log p(x) + 0.5 * p^T M^{-1} p. The leapfrog
scheme is symplectic and time-reversible, so its energy error stays O(eps^2) over long
trajectories instead of drifting (Leimkuhler & Reich 2004; Neal 2011, section 5.2.3). That is
what makes the Metropolis / multinomial correction of HMC and NUTS cheap and exact.

Only a diagonal inverse mass matrix is supported here: it is what Stan's default
(`diag_e`) adapts, and it keeps each step O(dim).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

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


def kinetic_energy(momentum: Array, inverse_mass_matrix: Array) -> Array:
    """K(p) = 0.5 * p^T M^{-1} p, the negative log density of p ~ Normal(0, M)."""
    return 0.5 * jnp.sum(momentum * inverse_mass_matrix * momentum)


def energy(state: IntegratorState, inverse_mass_matrix: Array) -> Array:
    """H(x, p) = -log p(x) + K(p)."""
    return -state.logdensity + kinetic_energy(state.momentum, inverse_mass_matrix)


def sample_momentum(rng_key: Array, position: Array, inverse_mass_matrix: Array) -> Array:
    """p ~ Normal(0, M) with M = diag(1 / inverse_mass_matrix)."""
    z = jax.random.normal(rng_key, position.shape, position.dtype)
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
        position = state.position + step_size * inverse_mass_matrix * momentum  # x(t + eps)
        logdensity, grad = logdensity_and_grad(position)
        momentum = momentum + half * grad  # p(t + eps)
        return IntegratorState(position, momentum, logdensity, grad)

    return step
