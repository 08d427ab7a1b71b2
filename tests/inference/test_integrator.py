"""The leapfrog integrator: what the math guarantees (numpyro `test_velocity_verlet`)."""

import jax
import jax.numpy as jnp
import numpy as np

from pplc.inference.integrator import IntegratorState, energy, velocity_verlet

SCALES = jnp.array([0.5, 1.0, 2.0])
INV_MASS = jnp.array([1.0, 0.5, 2.0])


def _gaussian(x):
    return jax.value_and_grad(lambda z: -0.5 * jnp.sum((z / SCALES) ** 2))(x)


def _start():
    x = jnp.array([1.0, -0.5, 2.0])
    lp, g = _gaussian(x)
    return IntegratorState(x, jnp.array([0.3, 1.0, -0.7]), lp, g)


def _integrate(state, step_size, n):
    step = velocity_verlet(_gaussian)
    return jax.lax.fori_loop(0, n, lambda _, s: step(s, step_size, INV_MASS), state)


def test_energy_error_is_second_order():
    # Over a fixed time T the global energy error of a second-order scheme scales as eps^2:
    # halving eps should divide it by 4 (3-5 allows for higher-order terms at this eps).
    start = _start()
    h0 = energy(start, INV_MASS)
    t_end = 1.0
    errors = []
    for n in (20, 40, 80):
        end = _integrate(start, t_end / n, n)
        errors.append(abs(float(energy(end, INV_MASS) - h0)))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.0 < r < 5.0 for r in ratios), (errors, ratios)


def test_time_reversible():
    # Flipping the momentum and integrating again retraces the path (up to rounding).
    start = _start()
    end = _integrate(start, 0.1, 25)
    back = _integrate(end._replace(momentum=-end.momentum), 0.1, 25)
    np.testing.assert_allclose(back.position, start.position, atol=1e-12)
    np.testing.assert_allclose(-back.momentum, start.momentum, atol=1e-12)


def test_negative_step_integrates_backwards():
    start = _start()
    end = _integrate(start, 0.1, 10)
    back = _integrate(end, -0.1, 10)
    np.testing.assert_allclose(back.position, start.position, atol=1e-12)
    np.testing.assert_allclose(back.momentum, start.momentum, atol=1e-12)
