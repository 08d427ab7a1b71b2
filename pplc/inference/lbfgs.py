"""L-BFGS pieces for Pathfinder's optimization path, pure JAX (usable inside `lax` loops).

The two-loop recursion for the search direction (Nocedal 1980), a weak Wolfe line search
by bisection and doubling (Lewis & Overton 2013), and the diagonal BFGS update of the
inverse Hessian along the path (Gilbert & Lemarechal 1989; Pathfinder paper Alg. 3).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

CURVATURE_EPS = 1e-12  # skip a pair unless s.z > eps * |z|^2 (paper Alg. 3; Stan's check)
_WOLFE_C1 = 1e-4  # sufficient decrease (Armijo)
_WOLFE_C2 = 0.9  # weak curvature condition, the usual one for quasi-Newton methods
_MAX_LINE_SEARCH = 30


def update_alpha(alpha: Array, s: Array, z: Array) -> Array:
    """Diagonal of the BFGS update of the Oren-Luenberger-scaled diag(1/alpha) (paper Alg. 3).

    1/alpha' = a/(b alpha) + z^2/b - a s^2 / (b c alpha^2),
    a = z^T diag(alpha) z, b = z^T s, c = s^T diag(1/alpha) s.
    """
    a = jnp.dot(z * alpha, z)
    b = jnp.dot(z, s)
    c = jnp.dot(s / alpha, s)
    return 1.0 / (a / (b * alpha) + z**2 / b - a * s**2 / (b * c * alpha**2))


def lbfgs_direction(G: Array, S: Array, Y: Array, valid: Array) -> Array:
    """-H G by the two-loop recursion, H0 = (s.y / y.y) I from the newest pair (Nocedal 1980)."""
    sy = jnp.sum(S * Y, axis=1)
    rho = jnp.where(valid, 1.0 / jnp.where(valid, sy, 1.0), 0.0)

    def backward(q, i):
        a = rho[i] * jnp.dot(S[i], q)
        return q - a * Y[i], a

    m = S.shape[0]
    q, a = lax.scan(backward, G, jnp.arange(m - 1, -1, -1))
    a = a[::-1]  # a[i] belongs to pair i
    yy = jnp.dot(Y[-1], Y[-1])
    scale = jnp.where(valid[-1], sy[-1] / jnp.where(valid[-1], yy, 1.0), 1.0)

    def forward(r, i):
        b = rho[i] * jnp.dot(Y[i], r)
        return r + S[i] * (a[i] - b), None

    r, _ = lax.scan(forward, scale * q, jnp.arange(m))
    return -r


def line_search(value_and_grad: Callable, x: Array, F0: Array, G0: Array, d: Array, t0: Array):
    """Weak Wolfe line search on F(x + t d) by bisection and doubling (Lewis & Overton 2013).

    Returns (ok, t, F, G, evaluations); when the Wolfe conditions are never met it falls
    back to the last point with sufficient decrease, and reports failure only without one.
    """
    dphi0 = jnp.dot(G0, d)
    inf = jnp.asarray(jnp.inf, x.dtype)

    def cond(c):
        i, done = c[0], c[1]
        return ~done & (i < _MAX_LINE_SEARCH)

    def body(c):
        i, _, lo, hi, t, best = c
        F, G = value_and_grad(x + t * d)
        finite = jnp.isfinite(F) & jnp.all(jnp.isfinite(G))
        armijo = finite & (F <= F0 + _WOLFE_C1 * t * dphi0)
        curvature = jnp.dot(G, d) >= _WOLFE_C2 * dphi0
        done = armijo & curvature
        best = lax.cond(armijo, lambda: (jnp.array(True), t, F, G), lambda: best)
        hi = jnp.where(armijo, hi, t)
        lo = jnp.where(armijo & ~curvature, t, lo)
        t_next = jnp.where(jnp.isinf(hi), 2.0 * t, 0.5 * (lo + hi))
        return i + 1, done, lo, hi, t_next, best

    best0 = (jnp.array(False), jnp.zeros_like(t0), F0, G0)
    start = (jnp.int32(0), jnp.array(False), jnp.zeros_like(t0), inf, t0, best0)
    n, _, _, _, _, (ok, t, F, G) = lax.while_loop(cond, body, start)
    return ok, t, F, G, n
