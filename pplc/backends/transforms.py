"""Bijections from the real line onto a support, with log-Jacobians, for latent variables.

HMC and ADVI move in unconstrained space: a latent `x` with support S is written
`x = forward(u)` for real `u`, and the log density in `u` is
`log p(forward(u)) + log_abs_det_jacobian(u)` (Stan Reference Manual, "Constraint
Transforms"). Every function is elementwise and broadcasts `u` with the bounds; bounds may
be traced values that depend on other variables (`b ~ Uniform(0, 1 - a)`), so everything is
differentiable in them too.

Conventions (as Stan):

====================  ===============================  ========================
kind                  forward(u)                       log|dx/du|
====================  ===============================  ========================
real                  u                                0
positive              exp(u)                           u
unit                  sigmoid(u)                       -softplus(-u) - softplus(u)
interval, lower only  lower + exp(u)                   u
interval, upper only  upper - exp(u)                   u
interval, both        lower + (upper-lower) sigmoid(u) log(upper-lower) - softplus(-u)
                                                       - softplus(u)
interval, neither     u                                0
====================  ===============================  ========================

The upper-only map is decreasing in `u` (Stan's choice: it mirrors the lower-only map).
`log sigmoid(u) + log(1 - sigmoid(u))` is written with softplus because the naive form is
`log(0) = -inf` once sigmoid(u) rounds to 1 (u > ~37 in float64).

The two-sided map (and `unit`) computes `x` from the nearer bound: `lower + w sigmoid(u)`
for u <= 0 but `upper - w sigmoid(-u)` for u > 0 (w = upper - lower). Both are the same
function; the second keeps the small gap `upper - x` to full relative precision, so `x`
does not round to exactly `upper` until that gap drops below the spacing of floats at
`upper`, and the inverse `log(x - lower) - log(upper - x)` (rather than
`logit((x - lower) / w)`) recovers `u` from either side without the cancellation in
`1 - (x - lower) / w`. It also gives autodiff an accurate dx/du for large u
(differentiating `sigmoid(u)` directly yields `sigmoid(u)(1 - sigmoid(u))`, which has lost
most digits by u ~ 15).

Discrete supports (`nonnegative_int`, `boolean`, `int_interval`) have no transform: the
compiler marginalizes or rejects latent discrete variables before it asks for one.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

DISCRETE_KINDS = ("nonnegative_int", "boolean", "int_interval")


class Transform(NamedTuple):
    """A bijection from the reals onto a support; all three functions are elementwise."""

    forward: Callable[[Array], Array]  # unconstrained u -> constrained x
    inverse: Callable[[Array], Array]  # x -> u
    log_abs_det_jacobian: Callable[[Array], Array]  # log|dx/du| at u


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


_REAL = Transform(_identity, _identity, _zeros)

_POSITIVE = Transform(jnp.exp, jnp.log, _identity)

def _unit_forward(u) -> Array:
    # sigmoid(u) as 1 - sigmoid(-u) for u > 0: the same value, but its derivative,
    # sigmoid(-u)(1 - sigmoid(-u)), then avoids the cancellation in 1 - sigmoid(u).
    return jnp.where(u <= 0, jax.nn.sigmoid(u), 1.0 - jax.nn.sigmoid(-u))


_UNIT = Transform(
    _unit_forward,
    lambda x: jnp.log(x) - jnp.log1p(-x),
    _log_sigmoid_product,
)


def _lower_bounded(lower) -> Transform:
    return Transform(
        lambda u: lower + jnp.exp(u),
        lambda x: jnp.log(x - lower),
        lambda u: _broadcast_like(jnp.asarray(u), lower),
    )


def _upper_bounded(upper) -> Transform:
    # Stan's convention: x = upper - exp(u), decreasing in u.
    return Transform(
        lambda u: upper - jnp.exp(u),
        lambda x: jnp.log(upper - x),
        lambda u: _broadcast_like(jnp.asarray(u), upper),
    )


def _bounded(lower, upper) -> Transform:
    def forward(u):
        width = upper - lower
        # Measure from the nearer bound, so the gap to it keeps full relative precision.
        return jnp.where(u <= 0, lower + width * jax.nn.sigmoid(u),
                         upper - width * jax.nn.sigmoid(-u))

    def inverse(x):
        return jnp.log(x - lower) - jnp.log(upper - x)

    def log_abs_det_jacobian(u):
        return jnp.log(upper - lower) + _log_sigmoid_product(u)

    return Transform(forward, inverse, log_abs_det_jacobian)


def _given(bound) -> bool:
    """A bound is absent if None or a concrete infinite Python number (`lower=-inf`)."""
    if bound is None:
        return False
    if isinstance(bound, (int, float)) and math.isinf(bound):
        return False
    return True


def transform_for(kind: str, lower=None, upper=None) -> Transform:
    """The constraint transform for a support of `kind` (`library.SUPPORT_KINDS`).

    Parameters
    ----------
    kind: "real", "positive", "unit" or "interval".
    lower, upper: bounds for "interval" (arrays, floats or traced values broadcasting
        with `u`); either may be None (or an infinite Python number) for a one-sided or
        unbounded interval. Not accepted for the other kinds.

    Raises ValueError for discrete kinds, which have no bijection to the reals, and for
    unknown kinds.

    >>> t = transform_for("interval", lower=0.0, upper=2.0)
    >>> float(t.forward(0.0)), float(t.inverse(1.0))
    (1.0, 0.0)
    """
    if kind in DISCRETE_KINDS:
        raise ValueError(f"support '{kind}' is discrete and has no constraint transform")
    if kind != "interval":
        if lower is not None or upper is not None:
            raise ValueError(f"support '{kind}' takes no bounds (use kind='interval')")
        try:
            return {"real": _REAL, "positive": _POSITIVE, "unit": _UNIT}[kind]
        except KeyError:
            raise ValueError(f"unknown support kind '{kind}'") from None
    has_lower, has_upper = _given(lower), _given(upper)
    if has_lower and has_upper:
        return _bounded(lower, upper)
    if has_lower:
        return _lower_bounded(lower)
    if has_upper:
        return _upper_bounded(upper)
    return _REAL
