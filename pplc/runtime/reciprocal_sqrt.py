"""`a / sqrt(v)` with one division in its gradient instead of three.

Differentiated as written, `1 / sqrt(v)` costs a square root and three float64 divisions
per element: the quotient, the derivative of the square root (0.5 / sqrt(v)) and that of
the quotient (1 / sqrt(v)^2). On the supernova model (1 / E(z) at 32 quadrature nodes for
each of 580 supernovae) those divisions were a quarter of the gradient's cost. Written as
r = 1 / sqrt(v), with dr/dv = -r^3 / 2 from r itself, the gradient needs only multiplies
beyond r. The value is the same expression, so the same number; the derivative equals the
chain rule's to rounding. The evaluator (backends/evaluate.py) reads `a / sqrt(v)` in a model
as `a * rsqrt(v)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rsqrt(v):
    """1 / sqrt(v), computed as written, with the derivative -r^3 / 2 (module docstring)."""
    v = jnp.asarray(v)
    return _rsqrt(v if jnp.issubdtype(v.dtype, jnp.floating) else v.astype(jnp.float64))


@jax.custom_jvp
def _rsqrt(v):
    return 1 / jnp.sqrt(v)


@_rsqrt.defjvp
def _rsqrt_jvp(primals, tangents):
    (v,), (dv,) = primals, tangents
    r = 1 / jnp.sqrt(v)
    return r, -0.5 * r * r * r * dv
