"""The `Transform` type, and the elementwise bijections from the real line onto a support.

transforms.py picks a transform for a support (`transform_for`); its docstring says how
HMC and ADVI use them. Here are the elementwise ones: real (the identity), positive
(exp), unit (sigmoid), and intervals with a lower bound, an upper bound or both, whose
bounds may be traced values that depend on other variables (`b ~ Uniform(0, 1 - a)`). The
vector ones (simplex, ordered, ...) are in vector_transforms.py and use the same type.
`constrain_lower_bounded`, `constrain_upper_bounded` and `constrain_interval` are what a
built module calls (copied by source, codegen/constraints.py), and the interval transforms
here are made from them, so both compute the same numbers.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


def _same_shape(shape: tuple) -> tuple:
    return tuple(shape)


class Transform(NamedTuple):
    """A bijection from the reals onto a support.

    For `event_ndim` 0 all three functions are elementwise. Otherwise the last
    `event_ndim` axes of x form one event, `forward` maps u of shape
    `unconstrained_shape(x.shape)` to x (leading axes are a batch), and
    `log_abs_det_jacobian(u)` has the batch shape: one log|det J| per event, J taken over
    the event's free coordinates (see vector_transforms.py's docstring).
    """

    forward: Callable[[Array], Array]  # unconstrained u -> constrained x
    inverse: Callable[[Array], Array]  # x -> u
    log_abs_det_jacobian: Callable[[Array], Array]  # log|dx/du| at u
    event_ndim: int = 0  # constrained event rank: 0 elementwise, 1 vector, 2 matrix
    unconstrained_shape: Callable[[tuple], tuple] = _same_shape  # x's shape -> u's shape


def _identity(u) -> Array:
    return jnp.asarray(u)


def _zeros(u) -> Array:
    return jnp.zeros_like(jnp.asarray(u, dtype=jnp.result_type(u, float)))


def _log_sigmoid_product(u) -> Array:
    """log(sigmoid(u)) + log(1 - sigmoid(u)), finite for every finite u."""
    return -jax.nn.softplus(-u) - jax.nn.softplus(u)


def _broadcast_like(value: Array, *others) -> Array:
    """`value` broadcast to its shape joined with the bounds' shapes (one entry per x)."""
    return jnp.broadcast_to(value, jnp.broadcast_shapes(jnp.shape(value),
                                                        *(jnp.shape(o) for o in others)))


REAL = Transform(_identity, _identity, _zeros)

POSITIVE = Transform(jnp.exp, jnp.log, _identity)

def _unit_forward(u) -> Array:
    # sigmoid(u) as 1 - sigmoid(-u) for u > 0: the same value, but its derivative,
    # sigmoid(-u)(1 - sigmoid(-u)), then avoids the cancellation in 1 - sigmoid(u).
    return jnp.where(u <= 0, jax.nn.sigmoid(u), 1.0 - jax.nn.sigmoid(-u))


UNIT = Transform(
    _unit_forward,
    lambda x: jnp.log(x) - jnp.log1p(-x),
    _log_sigmoid_product,
)


def constrain_lower_bounded(u, lower):
    """x = lower + exp(u) on (lower, inf), and log|dx/du| = u per element."""
    return lower + jnp.exp(u), _broadcast_like(jnp.asarray(u), lower)


def constrain_upper_bounded(u, upper):
    """x = upper - exp(u) on (-inf, upper) (Stan's convention: decreasing in u), and
    log|dx/du| = u per element."""
    return upper - jnp.exp(u), _broadcast_like(jnp.asarray(u), upper)


def constrain_interval(u, lower, upper):
    """x = lower + (upper - lower) sigmoid(u), measured from the nearer bound so that the
    gap to it keeps full relative precision; log|dx/du| = log(upper - lower) +
    log sigmoid(u) + log(1 - sigmoid(u))."""
    width = upper - lower
    x = jnp.where(u <= 0, lower + width * jax.nn.sigmoid(u), upper - width * jax.nn.sigmoid(-u))
    return x, jnp.log(width) + _log_sigmoid_product(u)


def lower_bounded_transform(lower) -> Transform:
    return Transform(
        lambda u: constrain_lower_bounded(u, lower)[0],
        lambda x: jnp.log(x - lower),
        lambda u: constrain_lower_bounded(u, lower)[1],
    )


def upper_bounded_transform(upper) -> Transform:
    return Transform(
        lambda u: constrain_upper_bounded(u, upper)[0],
        lambda x: jnp.log(upper - x),
        lambda u: constrain_upper_bounded(u, upper)[1],
    )


def interval_transform(lower, upper) -> Transform:
    return Transform(
        lambda u: constrain_interval(u, lower, upper)[0],
        lambda x: jnp.log(x - lower) - jnp.log(upper - x),
        lambda u: constrain_interval(u, lower, upper)[1],
    )
