"""Stan-like initialization: uniform(-2, 2), retried while the density is not finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.errors import PplcError
from pplc.inference import initial_positions


def _half_space(x, data):
    # Finite only for x[0] > 1.5: a uniform(-2, 2) draw lands there with probability 1/8,
    # so 100 tries fail with probability (7/8)^100 ~ 2e-6 per chain.
    return jnp.where(x[0] > data["cut"], -0.5 * jnp.sum(x**2), -jnp.inf)


def test_retries_past_non_finite_region():
    x = initial_positions(_half_space, {"cut": 1.5}, 3, 8, jax.random.key(0))
    assert x.shape == (8, 3)
    assert np.all(x[:, 0] > 1.5) and np.all(np.abs(x) < 2.0)


def test_first_try_is_uniform_on_radius():
    x = initial_positions(lambda x, d: -jnp.sum(x**2), {}, 2, 1000, jax.random.key(1), radius=0.5)
    assert np.all(np.abs(x) < 0.5) and x.std() > 0.25  # uniform(-0.5, 0.5) has sd 0.29


def test_raises_when_nowhere_finite():
    with pytest.raises(PplcError, match="could not find a finite starting point after 100 tries"):
        initial_positions(lambda x, d: -jnp.inf * jnp.sum(x**2), {}, 2, 3, jax.random.key(0))


def test_non_finite_gradient_is_rejected():
    # sqrt has an infinite gradient at 0 only; on x[0] < 0 it is NaN: both must be retried.
    f = lambda x, d: jnp.sqrt(x[0]) - jnp.sum(x**2)  # noqa: E731
    x = initial_positions(f, {}, 2, 16, jax.random.key(2))
    assert np.all(x[:, 0] > 0)
