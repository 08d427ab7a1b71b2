"""The language's numerical special form `integrate` (LANGUAGE.md, "Special forms"); `ode`
is in runtime/ode.py, its solver in runtime/tsit5.py.

Both are pure JAX and can be jitted, vmapped and differentiated. The callables `f` are
JAX-traceable Python functions, which the lowering builds from the model's `def`s.

`integrate` uses a fixed-order Gauss-Legendre rule on [a, b], so one integral costs a
fixed number of evaluations of `f` and compiles to straight-line code. `ode` uses
Tsit5 (an explicit 5(4) Runge-Kutta pair, like the Dormand-Prince RK45 of
Stan's `integrate_ode_rk45` and scipy's `RK45`) with an adaptive step size. Inside jit,
a failed solve is a value (NaN rows), not an exception (STYLE.md: failures under jit as
values).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

__all__ = ["integrate", "DEFAULT_NUM_NODES", "DEFAULT_NUM_NODES_INFINITE"]

Array = jax.Array

# 32 nodes integrate polynomials of degree <= 63 exactly. For an integrand analytic in the
# Bernstein ellipse with parameter rho around [a, b] the error is O(rho ** -64); the
# supernova integrand 1 / E(z) is near machine precision (about 1e-16 relative) and
# 1 / (1 + x^2) on [0, 10], whose poles at +-i are close to the interval, reaches about 1e-13.
DEFAULT_NUM_NODES = 32
# An infinite range mapped onto a finite one (x = a + s / (1 - s)) gives an integrand that is
# smooth but not analytic at the open end (f decays there), so Gauss-Legendre converges more
# slowly: 64 nodes reach about 1e-13 on exp(-x), exp(-x^2) and 1 / (1 + x^2) on [0, inf).
DEFAULT_NUM_NODES_INFINITE = 64


@functools.lru_cache(maxsize=None)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (computed once per order, in float64)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"num_nodes must be a positive integer, got {n!r}")
    t, w = np.polynomial.legendre.leggauss(int(n))
    t.setflags(write=False)
    w.setflags(write=False)
    return t, w


# at import, so that tracing never pays for them
_leggauss(DEFAULT_NUM_NODES), _leggauss(DEFAULT_NUM_NODES_INFINITE)


def _concrete_inf(x) -> tuple[np.ndarray, np.ndarray] | None:
    """(x == -inf, x == +inf) as numpy arrays if `x` is a concrete value, else None.

    A traced limit is assumed finite: whether it is infinite can't be known while tracing,
    and a traced infinite limit makes the result NaN.
    """
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        v = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
        return None
    return np.isneginf(v), np.isposinf(v)


# The kinds of integration range, after orienting [a, b] so that an infinite limit sits on
# the side it points to (the sign of the result records the swap).
_FINITE, _UPPER_INF, _LOWER_INF, _BOTH_INF, _EMPTY = range(5)


def _classify(a, b, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Static per-element (kind, sign, take_a) for concrete infinite limits.

    Returns None when every element is finite (or the limits are traced): the plain affine
    map applies. `take_a` says whether the one finite limit of a semi-infinite range is `a`
    (otherwise it is `b`).
    """
    ia, ib = _concrete_inf(a), _concrete_inf(b)
    a_ninf, a_pinf = ia if ia is not None else (np.False_, np.False_)
    b_ninf, b_pinf = ib if ib is not None else (np.False_, np.False_)
    a_ninf, a_pinf, b_ninf, b_pinf = (np.broadcast_to(m, shape)
                                      for m in (a_ninf, a_pinf, b_ninf, b_pinf))
    if not (a_ninf.any() or a_pinf.any() or b_ninf.any() or b_pinf.any()):
        return None
    a_fin, b_fin = ~(a_ninf | a_pinf), ~(b_ninf | b_pinf)
    kind = np.full(shape, _FINITE)
    sign = np.ones(shape)
    take_a = np.zeros(shape, dtype=bool)
    # [a, inf) and (inf, b] = -[b, inf)
    m = a_fin & b_pinf
    kind[m], take_a[m] = _UPPER_INF, True
    m = a_pinf & b_fin
    kind[m], sign[m] = _UPPER_INF, -1.0
    # (-inf, b] and [a, -inf) = -(-inf, a]
    m = a_ninf & b_fin
    kind[m] = _LOWER_INF
    m = a_fin & b_ninf
    kind[m], sign[m], take_a[m] = _LOWER_INF, -1.0, True
    # (-inf, inf) and (inf, -inf)
    kind[a_ninf & b_pinf] = _BOTH_INF
    m = a_pinf & b_ninf
    kind[m], sign[m] = _BOTH_INF, -1.0
    kind[(a_ninf & b_ninf) | (a_pinf & b_pinf)] = _EMPTY
    return kind, sign, take_a


def integrate(f: Callable[..., Array], a, b, *args, num_nodes: int | None = None) -> Array:
    """Definite integral of `f(x, *args)` over [a, b], by Gauss-Legendre quadrature.

    Why a fixed rule: it is one vectorized evaluation of `f` at `num_nodes` points, cheap
    to compile and to differentiate, and its gradient is exact for the rule. The gradient
    comes from differentiating the rule: d/db of sum_i w_i h f(c + h t_i), with
    c = (a + b) / 2 and h = (b - a) / 2, is the same rule applied to d/db of the mapped
    integrand, which equals f(b) (fundamental theorem of calculus) to quadrature accuracy;
    d/dargs is the rule applied to df/dargs.

    Accuracy contract: exact (to rounding) for polynomials of degree <= 2 * num_nodes - 1;
    for integrands analytic on and near [a, b] the error falls geometrically with
    `num_nodes` (about 1e-13 relative or better at the default 32 for the models'
    integrands, such as 1 / E(z) in LambdaCDM). No error estimate is made, so it is NOT
    reliable for integrands with singularities in or near [a, b] (log or power
    singularities at an endpoint converge only algebraically), kinks or jumps, sharp peaks
    narrower than about (b - a) / num_nodes, or oscillations with more than about
    num_nodes / 3 periods on [a, b]: raise `num_nodes` or split the range there.

    Infinite limits: when a limit is a concrete +-inf (a literal, not a traced value),
    [a, inf) is mapped to [0, 1) by x = a + s / (1 - s), dx = ds / (1 - s)^2, (-inf, b] by
    x = b - s / (1 - s), and (-inf, inf) by x = t / (1 - t^2); Gauss nodes never touch the
    open end, and the default order is then 64: about 1e-10 relative or better for
    integrands of unit scale (1e-13 for exp(-x), exp(-x^2), 1 / (1 + x^2) on [0, inf);
    2e-12 for exp(-x / 2); 1e-10 for exp(-x^2) on the whole line). The maps assume the
    integrand's mass lies within a distance O(1) of the finite limit (of 0 for the whole
    line): rescale or shift
    the variable otherwise (exp(-x / 100) on [0, inf) is only good to about 1e-3, and a
    Cauchy density centred at 50 on the whole line is wrong). Tails that decay like
    1 / x^p with p < 2 are inaccurate. A traced infinite limit gives NaN.

    Parameters
    ----------
    f : callable `f(x, *args)`. `x` has the broadcast shape of `a` and `b` (the
        quadrature nodes are vmapped over), so one call integrates a batch of ranges;
        `f` must act elementwise in `x`.
    a, b : lower and upper limits (scalars or broadcastable arrays; a > b gives the
        negative of the integral over [b, a]).
    args : extra arguments to `f`, passed through unchanged (differentiable).
    num_nodes : Gauss-Legendre order (default `DEFAULT_NUM_NODES` = 32, or
        `DEFAULT_NUM_NODES_INFINITE` = 64 when a limit is infinite).

    Returns
    -------
    The integral, with the broadcast shape of `a`, `b` (and of `f`'s values).

    Example
    -------
    >>> import jax.numpy as jnp
    >>> round(float(integrate(lambda x, c: jnp.exp(-c * x), 0.0, jnp.inf, 2.0)), 6)  # 1 / c
    0.5
    """
    a_j, b_j = jnp.asarray(a), jnp.asarray(b)
    dtype = jnp.result_type(float, a_j, b_j)
    a_j, b_j = a_j.astype(dtype), b_j.astype(dtype)
    shape = jnp.broadcast_shapes(a_j.shape, b_j.shape)
    cls = _classify(a, b, shape)
    if num_nodes is None:
        num_nodes = DEFAULT_NUM_NODES if cls is None else DEFAULT_NUM_NODES_INFINITE
    t_np, w_np = _leggauss(num_nodes)
    if cls is None:
        # NumPy constants: the rule's custom derivative must not close over traced values
        return _finite(f, t_np.astype(dtype).reshape((-1,) + (1,) * len(shape)),
                       w_np.astype(dtype), shape, a_j, b_j, args)
    t = jnp.asarray(t_np, dtype).reshape((-1,) + (1,) * len(shape))
    w = jnp.asarray(w_np, dtype)

    kind, sign_np, take_a = cls
    def fin(v):  # keep inf out of the branches that jnp.select discards
        return jnp.where(jnp.isfinite(v), v, 0.0)

    a_f, b_f = jnp.broadcast_to(fin(a_j), shape), jnp.broadcast_to(fin(b_j), shape)
    p = jnp.where(take_a, a_f, b_f)                  # the finite limit of a half-line
    c, h = (a_f + b_f) / 2, (b_f - a_f) / 2
    s = (1 + t) / 2                                  # s in (0, 1)
    u = s / (1 - s)
    half_line_jac = 0.5 / (1 - s) ** 2               # ds = dt / 2
    x_whole = t / (1 - t * t)                        # t in (-1, 1)
    jac_whole = (1 + t * t) / (1 - t * t) ** 2
    x = jnp.select([kind == _FINITE, kind == _UPPER_INF, kind == _LOWER_INF,
                    kind == _BOTH_INF],
                   [c + h * t, p + u, p - u, x_whole], 0.0)
    jac = jnp.select([kind == _FINITE, (kind == _UPPER_INF) | (kind == _LOWER_INF),
                      kind == _BOTH_INF],
                     [jnp.broadcast_to(h, x.shape), half_line_jac, jac_whole], 0.0)
    jac = jnp.broadcast_to(jac, x.shape)
    sign = jnp.asarray(sign_np, dtype)
    values = jax.vmap(lambda xi: jnp.asarray(f(xi, *args)))(x)
    jac = jac.reshape(jac.shape + (1,) * (values.ndim - jac.ndim))
    integrand = jac * values
    # A node at which the weight is zero (an empty range) must not spread a NaN or inf.
    integrand = jnp.where(jac == 0, 0.0, integrand)
    out = jnp.tensordot(w.astype(integrand.dtype), integrand, axes=1)
    return sign.reshape(sign.shape + (1,) * (out.ndim - sign.ndim)) * out


def _nodes_values(f, t, a, b, args):
    """f at the rule's nodes on [a, b]: x = c + h t (dx = h dt), one row per node."""
    c, h = (a + b) / 2, (b - a) / 2
    return jax.vmap(lambda xi: jnp.asarray(f(xi, *args)))(c + h * t)


def _weighted_sum(w, values, a, b, shape):
    """h sum_i w_i values[i]. The same h at every node: applied once to the sum, not at each
    node (on the supernova model a [32, 580] product fewer each way of the gradient)."""
    h = (b - a) / 2
    out = jnp.tensordot(jnp.asarray(w, jnp.result_type(values.dtype, h.dtype)), values,
                        axes=1)
    return out * jnp.reshape(jnp.broadcast_to(h, shape), shape + (1,) * (out.ndim - len(shape)))


def _finite(f, t, w, shape, a, b, args):
    """The rule on a finite range, with a derivative in which a scalar argument's tangent is
    the rule applied to df/ds, computed in the forward pass.

    Why: differentiated as written, a scalar argument s of f (Om in the supernova model) is
    broadcast onto the [nodes, batch] grid, and the backward pass sums the grid's cotangent
    back to a scalar. XLA:CPU turns that full reduction into a YNNPACK library fusion, and a
    while loop holding one is not compiled as one function, so a sampler's loop over this
    gradient ran fusion by fusion (benchmarks/profile_notes.md, "The supernova's gradient
    loop"). Here d out = h sum_i w_i (df/ds)(x_i) ds, with df/ds from a forward-mode
    derivative at the nodes beside the values: the backward pass sums over the batch only.
    The limits and the other arguments (arrays, integers) keep the derivative of the rule as
    written. The value is the same expression as without the rule, so the same number.
    """
    # Values f closes over that a derivative flows through become arguments of the rule.
    f_closed, consts = jax.closure_convert(f, jnp.zeros(shape, a.dtype), *args)

    def value(a, b, *rest):
        return _weighted_sum(w, _nodes_values(f_closed, t, a, b, rest), a, b, shape)

    def with_(primals, moved: dict):
        return [moved.get(i, p) for i, p in enumerate(primals)]

    def value_jvp(primals, tangents):
        a, b, *rest = primals
        moving = [i for i, d in enumerate(tangents) if not isinstance(d, SymbolicZero)]
        scalar = [i for i in moving if i >= 2 and jnp.ndim(primals[i]) == 0
                  and jnp.issubdtype(jnp.result_type(primals[i]), jnp.floating)]
        plain = [i for i in moving if i not in scalar]
        out = d_out = None
        if plain:
            out, d_out = jax.jvp(lambda *v: value(*with_(primals, dict(zip(plain, v)))),
                                 [primals[i] for i in plain], [tangents[i] for i in plain])
        for i in scalar:
            def nodes(v, i=i):
                full = with_(primals, {i: v})
                return _nodes_values(f_closed, t, full[0], full[1], full[2:])
            values, d_values = jax.jvp(nodes, (primals[i],), (jnp.ones_like(primals[i]),))
            if out is None:  # the sum from these values: f evaluated once at the nodes
                out = _weighted_sum(w, values, a, b, shape)
            term = _weighted_sum(w, d_values, a, b, shape) * tangents[i]
            d_out = term if d_out is None else d_out + term
        if out is None:  # nothing moves
            out = value(*primals)
            return out, jnp.zeros_like(out)
        return out, jnp.broadcast_to(d_out, out.shape).astype(out.dtype)

    rule = jax.custom_jvp(value)
    rule.defjvp(value_jvp, symbolic_zeros=True)
    return rule(a, b, *args, *consts)
