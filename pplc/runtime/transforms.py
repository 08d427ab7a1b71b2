"""Bijections from the real line onto a support, with log-Jacobians, for latent variables.

HMC and ADVI move in unconstrained space: a latent `x` with support S is written
`x = forward(u)` for real `u`, and the log density in `u` is
`log p(forward(u)) + log_abs_det_jacobian(u)` (Stan Reference Manual, "Constraint
Transforms"). Every function is elementwise and broadcasts `u` with the bounds; bounds may
be traced values that depend on other variables (`b ~ Uniform(0, 1 - a)`), so everything is
differentiable in them too.

The transforms themselves live by kind: the `Transform` type and the elementwise ones
(real, positive, unit, interval) in elementwise_transforms.py, the vector ones (ordered,
positive_ordered, simplex, corr_cholesky, cov; Stan's conventions, as its docstring's
table says) in vector_transforms.py. This module picks one for a support
(`transform_for`), or the function u -> (x, log|det J|) that a built module calls
(`constrain_function`), and keeps every name importable from here.


Discrete supports (`nonnegative_int`, `boolean`, `int_interval`) have no transform: the
compiler marginalizes or rejects latent discrete variables before it asks for one.
"""

from __future__ import annotations

import math

import jax.numpy as jnp  # noqa: F401 - transform_for's doctest uses it

from pplc.runtime import vector_transforms
from pplc.runtime.elementwise_transforms import (  # noqa: F401 - importable from here
    Array, POSITIVE, REAL, UNIT, Transform, constrain_interval, constrain_lower_bounded,
    constrain_upper_bounded, interval_transform, lower_bounded_transform,
    upper_bounded_transform)
from pplc.runtime.vector_transforms import (  # noqa: F401 - importable from here
    COV, CORR_CHOLESKY, ORDERED, POSITIVE_ORDERED, SIMPLEX, constrain_corr_cholesky,
    constrain_cov, constrain_ordered, constrain_positive_ordered, constrain_simplex,
    corr_cholesky_free_shape, cov_free_shape, simplex_free_shape, vector_free_shape)

DISCRETE_KINDS = ("nonnegative_int", "boolean", "int_interval")


VECTOR_KINDS = ("simplex", "ordered", "positive_ordered", "corr_cholesky", "cov")


def constrain_function(kind: str, has_lower: bool = False, has_upper: bool = False):
    """The function u -> (x, log|det J|) of a vector kind, or of an interval with the
    bounds given (None for the identity of an unbounded one)."""
    if kind in VECTOR_KINDS:
        return getattr(vector_transforms, f"constrain_{kind}")
    if kind != "interval":
        raise ValueError(f"no constraining function for support '{kind}'")
    if has_lower and has_upper:
        return constrain_interval
    if has_lower:
        return constrain_lower_bounded
    return constrain_upper_bounded if has_upper else None


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
    kind: "real", "positive", "unit" or "interval" (elementwise), or one of
        VECTOR_KINDS: "simplex", "ordered", "positive_ordered" (last axis),
        "corr_cholesky", "cov" (last two axes).
    lower, upper: bounds for "interval" (arrays, floats or traced values broadcasting
        with `u`); either may be None (or an infinite Python number) for a one-sided or
        unbounded interval. Not accepted for the other kinds.

    Raises ValueError for discrete kinds, which have no bijection to the reals, and for
    unknown kinds.

    >>> t = transform_for("interval", lower=0.0, upper=2.0)
    >>> float(t.forward(0.0)), float(t.inverse(1.0))
    (1.0, 0.0)
    >>> s = transform_for("simplex")
    >>> s.unconstrained_shape((2, 3)), s.forward(jnp.zeros((2, 2))).round(6).tolist()
    ((2, 2), [[0.333333, 0.333333, 0.333333], [0.333333, 0.333333, 0.333333]])
    """
    if kind in DISCRETE_KINDS:
        raise ValueError(f"support '{kind}' is discrete and has no constraint transform")
    if kind != "interval":
        if lower is not None or upper is not None:
            raise ValueError(f"support '{kind}' takes no bounds (use kind='interval')")
        try:
            return {"real": REAL, "positive": POSITIVE, "unit": UNIT,
                    "simplex": SIMPLEX, "ordered": ORDERED,
                    "positive_ordered": POSITIVE_ORDERED,
                    "corr_cholesky": CORR_CHOLESKY, "cov": COV}[kind]
        except KeyError:
            raise ValueError(f"unknown support kind '{kind}'") from None
    has_lower, has_upper = _given(lower), _given(upper)
    if has_lower and has_upper:
        return interval_transform(lower, upper)
    if has_lower:
        return lower_bounded_transform(lower)
    if has_upper:
        return upper_bounded_transform(upper)
    return REAL
