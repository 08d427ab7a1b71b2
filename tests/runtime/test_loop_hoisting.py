"""benchmarks.gradfloor.loop_hoisting, the check behind profile_notes.md's "Summed-out mixture":
a gradient loop whose body holds a scatter (a gather's transpose) is not compiled by XLA:CPU
as one function, and the tool says so and names the scatter; one without is."""

import jax.numpy as jnp
import numpy as np

from benchmarks.gradfloor import loop_hoisting

INDEX = np.array([0, 2, 1, 2])


def test_a_gather_in_the_density_keeps_the_gradient_loop_op_by_op():
    gathered = loop_hoisting(lambda x, g: -jnp.sum(x[g] ** 2), np.full(3, 0.1), INDEX)
    assert gathered["hoisted"] is False and gathered["scatter"] >= 1
    # the same density, the entries picked by a select and a sum (runtime/densities.py take_last)
    picked = loop_hoisting(
        lambda x, g: -jnp.sum(jnp.sum(jnp.where(jnp.arange(3) == g[:, None], x, 0.0), -1) ** 2),
        np.full(3, 0.1), INDEX)
    assert picked == {"hoisted": True}
