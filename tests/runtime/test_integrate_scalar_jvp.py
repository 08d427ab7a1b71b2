"""integrate's derivative on a finite range (runtime/special.py `_finite`): a scalar argument's
tangent is the rule applied to df/ds in the forward pass, so that the backward pass has no
reduction of the [nodes, batch] grid, which XLA:CPU makes a YNNPACK fusion that keeps a
sampler's loop from being compiled as one function (profile_notes.md, "The supernova's
gradient loop"). The values and derivatives must be those of the rule differentiated as
written (the reference below, what integrate computed before), to 1e-12 relative."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.gradfloor import loop_hoisting
from pplc.runtime.special import integrate

T, W = np.polynomial.legendre.leggauss(32)
Z = np.random.default_rng(0).uniform(0.015, 1.414, 580)   # the Union2.1 redshifts' range


def plain_rule(f, a, b, *args):
    """The 32-node Gauss-Legendre rule on [a, b], differentiated by JAX as written."""
    a, b = jnp.asarray(a, float), jnp.asarray(b, float)
    c, h = (a + b) / 2, (b - a) / 2
    shape = jnp.broadcast_shapes(a.shape, b.shape)
    values = jax.vmap(lambda x: f(x, *args))(c + h * T.reshape((-1,) + (1,) * len(shape)))
    return jnp.tensordot(W, values, axes=1) * h


def inv_e(x, om):
    return 1 / jnp.sqrt(om * (1 + x) ** 3 + 1 - om)


def supernova_like(form):
    """A log density in (log H0, logit Om) through the integral, as the supernova model's."""
    def lp(theta, z):
        h0, om = jnp.exp(theta[0]), jax.nn.sigmoid(theta[1])
        d = (1 + z) * (3e5 / h0) * form(inv_e, 0.0, z, om)
        return -0.5 * jnp.sum((5 * jnp.log10(d) + 25 - 40.0) ** 2)
    return lp


def close(got, want, rtol=1e-12):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=0)


@pytest.mark.parametrize("theta", [(4.25, -0.9), (4.0, 0.5), (4.6, 2.5)])
def test_supernova_value_and_gradient_equal_the_rule_as_written(theta):
    theta = jnp.asarray(theta)
    got = jax.jit(jax.value_and_grad(supernova_like(integrate)))(theta, Z)
    want = jax.jit(jax.value_and_grad(supernova_like(plain_rule)))(theta, Z)
    close(got[0], want[0])
    close(got[1], want[1])


def test_second_derivative_vmap_and_jacobian_in_the_scalar():
    def checks(form):
        om = 0.3
        oms = jnp.asarray([0.1, 0.3, 0.7, 0.95])   # chains batched, as the vectorized sampler
        return (jax.grad(jax.grad(lambda o: jnp.sum(form(inv_e, 0.0, Z, o))))(om),
                jax.vmap(jax.grad(lambda o: jnp.sum(jnp.log(form(inv_e, 0.0, Z, o)))))(oms),
                jax.jacfwd(lambda o: form(inv_e, 0.0, Z[:7], o))(om))

    got, want = jax.jit(lambda: checks(integrate))(), jax.jit(lambda: checks(plain_rule))()
    close(got[0], want[0], 1e-11)
    close(got[1:], want[1:])


def test_traced_limits_array_arguments_and_closures_keep_their_derivatives():
    k = jnp.linspace(0.5, 2.0, 6)                # an array argument: the plain derivative

    def f(x, s, k, n):
        return jnp.exp(-s * k * x) * x ** n

    def both(form, a, b, s, k):
        return jnp.sum(form(f, a, b, s, k, 2) ** 2)

    args = (jnp.full(6, 0.2), jnp.linspace(1.0, 3.0, 6), 0.7, k)
    close(jax.jit(jax.grad(lambda *v: both(integrate, *v), argnums=(0, 1, 2, 3)))(*args),
          jax.jit(jax.grad(lambda *v: both(plain_rule, *v), argnums=(0, 1, 2, 3)))(*args))

    def closed(form, p, q):                      # f closes over traced values
        return jnp.sum(form(lambda x, s: jnp.sin(p * x) + q * s * x, 0.0, Z[:9], 1.5))

    close(jax.jit(jax.grad(lambda p, q: closed(integrate, p, q), argnums=(0, 1)))(0.8, 0.3),
          jax.jit(jax.grad(lambda p, q: closed(plain_rule, p, q), argnums=(0, 1)))(0.8, 0.3))


def test_the_supernova_gradient_loop_is_compiled_as_one_function():
    # the rule as written: two YNNPACK fusions (the grid summed back onto Om) keep it op by op
    before = loop_hoisting(supernova_like(plain_rule), np.full(2, 0.1), Z)
    assert before["hoisted"] is False and before.get("YNNPACK fusion", 0) >= 1
    assert loop_hoisting(supernova_like(integrate), np.full(2, 0.1), Z) == {"hoisted": True}
