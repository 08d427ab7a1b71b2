"""`ode(f, y0, t0, ts, ...)`: the language's ODE solver (Tsit5, runtime/tsit5.py).

Why its own module: the special form's contract (argument normalization, NaN rows on
failure) and its derivatives live here; the stepping lives in tsit5.py. Derivatives are
forward sensitivities (`jax.custom_jvp`): a tangent of the solution is the sensitivity
matrix times the inputs' tangents, so reverse mode transposes a product and never a loop,
and a sampler's program compiles one while loop per solve (benchmarks/ode_compile.md).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from pplc.runtime.tsit5 import directions, solve

Array = jax.Array


def ode(f: Callable[..., Array], y0, t0, ts, *args, rtol: float = 1e-6, atol: float = 1e-6,
        max_steps: int = 4096) -> Array:
    """Solution of dy/dt = f(t, y, *args), y(t0) = y0, at the times `ts`.

    Why Tsit5 with a PID step-size controller (the method and controller of diffrax, which
    pplc used before): an explicit 5(4) Runge-Kutta pair of the same family as the
    Dormand-Prince RK45 that Stan's `integrate_ode_rk45` and scipy's `RK45` use, suited to
    the non-stiff models the language targets (Lotka-Volterra, oscillators). At the same
    tolerances it is more accurate than Dopri5 for about the same number of steps: on
    Lotka-Volterra over [0, 20] at the defaults (rtol = atol = 1e-6) its global relative
    error is about 3e-6 against 1.1e-5 (about 65 steps vs 58). The global error is not
    bounded by rtol: it can be several times rtol over long ranges. Outputs come from the
    method's dense interpolant at `ts`, so output times don't shorten the steps.

    Derivatives in y0, args, t0 and ts are exact derivatives of the discrete solve for its
    sequence of steps (forward sensitivities carried through the same steps; the step
    sizes are not differentiated, as in diffrax), so they agree with the derivatives of the
    exact solution to about the solver's tolerance. A gradient costs the solve with one
    extra state per input entry that is differentiated (entries with zero tangent cost
    nothing), then a product: no reverse loop, no checkpoints.

    Failure: if the solve doesn't reach ts[-1] in `max_steps` steps (stiffness, blow-up,
    NaN parameters), it does not raise, inside jit or outside; every row of the result,
    and of its derivatives, is NaN instead, so a log density that uses it is non-finite
    and the sampler treats the point as divergent (rejected). Stiff systems are out of
    scope: an explicit method needs very many steps on them.

    Parameters
    ----------
    f : callable `f(t, y, *args)`; `y` is an array of shape (len(y0),). It may return an
        array of that shape or a list/tuple of scalars (as a model's `[du_dt, dv_dt]`).
    y0 : initial state, shape (n,).
    t0 : initial time; t0 <= ts[0]. If ts[0] == t0 the first row is y0.
    ts : output times, shape (m,), non-decreasing.
    args : extra arguments to `f` (differentiable where they are floating-point).
    rtol, atol : relative and absolute local error tolerances of the step-size controller.
    max_steps : the most steps (accepted and rejected) before the solve counts as failed.

    Returns
    -------
    Array of shape (len(ts), len(y0)): row k is y(ts[k]).

    Example
    -------
    >>> import jax.numpy as jnp
    >>> y = ode(lambda t, y, k: -k * y, jnp.array([1.0]), 0.0, jnp.array([1.0]), 0.5)
    >>> bool(abs(y[0, 0] - jnp.exp(-0.5)) < 1e-6)
    True
    """
    y0, t0, ts = jnp.asarray(y0), jnp.asarray(t0), jnp.asarray(ts)  # lists and ints from data
    dtype = jnp.result_type(float, y0, t0, ts)
    y0 = y0.astype(dtype)
    if y0.ndim != 1:
        raise ValueError(f"ode: the initial state y0 must be a vector, got shape {y0.shape}")
    ts = ts.astype(dtype)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ode: ts must be a non-empty vector of times, got shape {ts.shape}")
    t0 = t0.astype(dtype)
    leaves, treedef = jax.tree.flatten(tuple(args))
    # Floating-point arguments are the differentiable inputs; integer arrays are passed
    # along unchanged; other values (Python ints) stay as they are, static.
    floats = [i for i, x in enumerate(leaves) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    fixed = [i for i, x in enumerate(leaves) if i not in floats and isinstance(x, jax.Array)]

    def field(t, y, float_leaves, fixed_leaves):
        merged = list(leaves)
        for i, x in [*zip(floats, float_leaves), *zip(fixed, fixed_leaves)]:
            merged[i] = x
        dy = f(t, y, *jax.tree.unflatten(treedef, merged))
        dy = jnp.stack(dy) if isinstance(dy, (list, tuple)) else jnp.asarray(dy)
        return jnp.reshape(dy, y.shape).astype(y.dtype)

    settings = (float(rtol), float(atol), int(max_steps))
    solution = jax.custom_jvp(functools.partial(_ode_values, field, settings))
    solution.defjvp(functools.partial(_ode_jvp, field, settings), symbolic_zeros=True)
    return solution(y0, t0, ts, [jnp.asarray(leaves[i]) for i in floats],
                    [leaves[i] for i in fixed])


def _one_at_a_time(fn: Callable) -> Callable:
    """`fn` that `vmap` runs member by member (`lax.map`) instead of in lockstep.

    Why: a batched while loop runs every member until the slowest is done and turns each
    update of its carry into a select; for a solve of a few states on a CPU that was
    about 10x the CPU per member (4 chains' value and gradient, and the 4000 draws' solves
    of a recorded deterministic), and it compiled to twice the code
    (benchmarks/ode_compile.md). Arguments not batched are shared by every member.
    """
    mapped = jax.custom_batching.custom_vmap(fn)

    @mapped.def_vmap
    def rule(axis_size, in_batched, *args):
        flat, tree = jax.tree.flatten(args)
        flags = jax.tree.leaves(in_batched)
        if not any(flags):   # only tangents batched (forward mode over it): nothing to map
            out = fn(*args)
            return out, jax.tree.map(lambda _: False, out)

        def member(batched):
            members = iter(batched)
            return mapped(*jax.tree.unflatten(
                tree, [next(members) if b else x for x, b in zip(flat, flags)]))

        out = lax.map(member, [x for x, b in zip(flat, flags) if b])
        return out, jax.tree.map(lambda _: True, out)

    return mapped


def _ode_values(field: Callable, settings: tuple, y0, t0, ts, params, fixed) -> Array:
    def run(y0, t0, ts, params, fixed):
        s0, dparams = directions(y0, params, False)
        sol = solve(lambda t, y, p: field(t, y, p, fixed), y0, t0, ts, params, s0, dparams,
                    *settings)
        return jnp.where(sol.ok, sol.ys, jnp.nan)

    return _one_at_a_time(run)(y0, t0, ts, params, fixed)


def _ode_jvp(field: Callable, settings: tuple, primals, tangents):
    """The solution and its tangent: sensitivities (m, n, K) times the inputs' tangents,
    K counting only the inputs whose tangents are not symbolic zeros."""
    y0, t0, ts, params, fixed = primals
    dy0, dt0, dts, dparams, _ = tangents
    live = [i for i, d in enumerate(dparams) if not isinstance(d, SymbolicZero)]
    moves_y0 = not isinstance(dy0, SymbolicZero)
    moves_t0 = not isinstance(dt0, SymbolicZero)
    with_y0 = moves_y0 or moves_t0

    def run(y0, t0, ts, params, fixed):
        def field_live(t, y, live_params):   # the other parameters held at their values
            merged = list(params)
            for i, x in zip(live, live_params):
                merged[i] = x
            return field(t, y, merged, fixed)

        live_params = [params[i] for i in live]
        s0, directions_of_params = directions(y0, live_params, with_y0)
        sol = solve(field_live, y0, t0, ts, live_params, s0, directions_of_params, *settings)
        return jnp.where(sol.ok, sol.ys, jnp.nan), jnp.where(sol.ok, sol.sens, jnp.nan)

    ys, sens = _one_at_a_time(run)(y0, t0, ts, params, fixed)
    out = jnp.zeros_like(ys)
    n = y0.shape[0]
    offset = n if with_y0 else 0
    if moves_y0:
        out = out + sens[..., :n] @ dy0
    if moves_t0:   # d y(t) / d t0 = -(d y(t) / d y0) f(t0, y0)
        out = out - (sens[..., :n] @ field(t0, y0, params, fixed)) * dt0
    for i in live:
        size = params[i].size
        out = out + sens[..., offset:offset + size] @ jnp.ravel(dparams[i])
        offset += size
    if not isinstance(dts, SymbolicZero):   # d y(ts[k]) / d ts[k] = f(ts[k], y(ts[k]))
        out = out + jax.vmap(lambda t, y: field(t, y, params, fixed))(ts, ys) * dts[:, None]
    return ys, out
