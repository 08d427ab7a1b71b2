"""`normal_draws`: jax.random.normal's numbers, computed once in a compiled program however
many operations read them (XLA's CPU fusion otherwise copies the float64 erf_inv polynomial
into each reader: benchmarks/advi_compile.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.inference.gaussian_noise import normal_draws


def _optimized_size(draw) -> int:
    def f(key, a):   # eight readers of the draws, each its own fusion
        z = draw(key, (16, 5), jnp.float64)
        return [jnp.sum(jnp.exp(a[i] * z[:, i % 5]) * (i + 1)) for i in range(8)]

    text = jax.jit(f).lower(jax.random.key(0), np.ones(8)).compile().as_text()
    return sum(1 for line in text.splitlines() if " = " in line)


def test_the_same_numbers_as_jax_random_normal():
    for key in (jax.random.key(3), jax.random.PRNGKey(4)):
        np.testing.assert_array_equal(jax.jit(lambda k: normal_draws(k, (7, 3), jnp.float64))(key),
                                      jax.random.normal(key, (7, 3), jnp.float64))


def test_the_generator_is_not_copied_into_each_reader():
    plain, once = _optimized_size(jax.random.normal), _optimized_size(normal_draws)
    if plain < 1000:
        pytest.skip(f"this XLA does not copy the generator ({plain} instructions)")
    # measured (jax 0.10.2): 2428 instructions with jax.random.normal, 611 with normal_draws
    assert once < plain / 2, (plain, once)
